#!/usr/bin/env bash
# git on a generated repository: init, add many files, a series of commits,
# log, diff, blame, grep, gc (pack-objects, repack, prune run as children)
# and fsck.  Fixed author/committer names and dates make every object id
# identical with and without cmalloc.
# shellcheck source=tests/programs/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

require git awk sha256sum

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME="Test Author" GIT_AUTHOR_EMAIL=author@example.org
export GIT_COMMITTER_NAME="Test Committer" GIT_COMMITTER_EMAIL=committer@example.org
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES

# make_files DIR ROUND: (re)write a deterministic set of files for a round
make_files() {
  awk -v dir="$1" -v round="$2" 'BEGIN {
    s = 1000 + round
    for (d = 0; d < 8; d++) {
      system("mkdir -p " dir "/dir" d)
      for (f = 0; f < 30; f++) {
        # each round touches about a third of the files
        if (round > 0 && (f + d + round) % 3 != 0) continue
        path = dir "/dir" d "/file" f ".txt"
        lines = 20 + (f * 7 + d) % 60
        for (l = 0; l < lines; l++) {
          s = (s * 1103515245 + 12345) % 2147483648
          printf "line %d of %d/%d: value %d round %d\n", l, d, f, s % 100000, (l % 9 == 0 ? round : 0) > path
        }
        close(path)
      }
    }
  }'
}

workload() {
  local mode=$1 dir=$2 round
  export HOME=$dir/home
  mkdir -p "$HOME"
  g() { run_in_mode "$mode" git "$@"; }
  g init -q -b main "$dir/repo"
  cd -- "$dir/repo" || return 1
  g config gc.auto 0
  g config pack.threads 2
  for round in 0 1 2 3 4 5 6 7; do
    export GIT_AUTHOR_DATE="2021-03-0$((round + 1))T12:00:00Z"
    export GIT_COMMITTER_DATE="2021-03-0$((round + 1))T12:30:00Z"
    make_files . "$round"
    if ((round == 4)); then
      rm -f dir3/file1.txt dir7/file2.txt
      g mv dir5/file5.txt dir5/renamed.txt
    fi
    g add -A
    g commit -q -m "round $round" -m "Generated content for round $round."
    if ((round == 2)); then
      g tag -a -m "release 1" v1
      g branch side
    fi
  done
  g log --stat --format='commit %H%nauthor %an <%ae> %ad%n%n    %s%n' --date=iso-strict
  g rev-list --all --objects | sort
  g diff --stat v1 main
  g diff v1 main -- dir1 | sha256sum
  g blame --porcelain dir2/file0.txt | sha256sum
  g grep -c 'round 5' main -- dir4
  g gc -q
  g fsck --full --strict
  g count-objects -v | grep -E '^(count|in-pack|packs):'
  g log --oneline --graph --all
  g show --stat v1
  g status --porcelain
  g archive --format=tar main | sha256sum
}

compare_modes 35
