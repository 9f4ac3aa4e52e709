# shellcheck shell=bash
# Shared driver of the "real program" tests (prog_*.sh), sourced by them.
#
# A test script defines a function
#     workload MODE DIR
# that runs its program(s) through `run_in_mode MODE PROGRAM ARGS...`,
# writes the results that must not depend on the allocator to stdout, and
# may use DIR (empty, private to this mode) as scratch space.  It then calls
#     compare_modes MIN_STATS
# which runs the workload three times:
#     ref    plain, with glibc malloc;
#     cm     under cmalloc-run;
#     stats  under cmalloc-run --stats;
# and fails unless all three succeed with identical stdout and the stats run
# printed at least MIN_STATS cmalloc statistics blocks (one per process that
# exited under cmalloc), each with a non-zero Total.
#
# Usage of a test script: prog_X.sh CMALLOC_RUN [LIBRARY]
#   CMALLOC_RUN  the cmalloc-run wrapper to test with
#   LIBRARY      optional: the libcmalloc.so to preload (cmalloc-run --lib)
# Exit status: 0 pass, 1 fail, 77 skip (a program is not installed).

set -u
set -o pipefail

PROG_TEST_NAME=$(basename -- "$0" .sh)
# shellcheck disable=SC2034 # used by the scripts that source this file
PROG_TEST_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)

say() { printf '%s: %s\n' "$PROG_TEST_NAME" "$*"; }
fail() {
  printf '%s: FAIL: %s\n' "$PROG_TEST_NAME" "$*" >&2
  exit 1
}
skip() {
  printf '%s: SKIP: %s\n' "$PROG_TEST_NAME" "$*"
  exit 77
}

# require PROGRAM...: skip the test when one is not installed
require() {
  local p
  for p in "$@"; do
    if [[ $p == */* ]]; then
      [[ -x $p ]] || skip "$p is not installed"
    else
      command -v -- "$p" >/dev/null 2>&1 || skip "$p is not installed"
    fi
  done
}

(($# >= 1)) || fail "usage: $0 CMALLOC_RUN [LIBRARY]"
CMALLOC_RUN=$1
CMALLOC_LIBRARY=${2:-}
[[ -x $CMALLOC_RUN ]] || fail "cmalloc-run wrapper not found or not executable: $CMALLOC_RUN"
if [[ -n $CMALLOC_LIBRARY && ! -f $CMALLOC_LIBRARY ]]; then
  fail "library not found: $CMALLOC_LIBRARY"
fi
run_cmalloc=("$CMALLOC_RUN")
[[ -n $CMALLOC_LIBRARY ]] && run_cmalloc+=(--lib "$CMALLOC_LIBRARY")

# A clean, reproducible environment: nothing preloaded in the reference run.
unset LD_PRELOAD CMALLOC_STATS_AT_EXIT MALLOC_CHECK_ MALLOC_PERTURB_ GLIBC_TUNABLES
export LC_ALL=C TZ=UTC

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cmalloc-$PROG_TEST_NAME.XXXXXX") || fail "mktemp"
trap 'rm -rf -- "$WORK"' EXIT

# run_in_mode MODE PROGRAM ARGS...
run_in_mode() {
  local mode=$1
  shift
  case $mode in
    ref) "$@" ;;
    cm) "${run_cmalloc[@]}" -- "$@" ;;
    stats) "${run_cmalloc[@]}" --stats -- "$@" ;;
    *) fail "unknown mode $mode" ;;
  esac
}

# check_stats FILE MIN: FILE (stderr of the stats run) holds at least MIN
# cmalloc statistics blocks, and every Total section shows memory.
check_stats() {
  local file=$1 min=$2 blocks
  blocks=$(grep -cE '^cmalloc [0-9]+\.[0-9]+\.[0-9]+: ' "$file")
  if ((blocks < min)); then
    say "stderr of the --stats run:"
    tail -n 40 -- "$file" >&2
    fail "expected at least $min cmalloc statistics blocks, found $blocks (was the program served by cmalloc?)"
  fi
  # Every "Total (incl. mmap):" section must be followed by a system bytes
  # and an in use bytes line, at least one of them non-zero.
  awk '
    /^Total \(incl\. mmap\):$/ { total++; want = 2; sys = -1; use = -1; next }
    want == 2 && /^system bytes *= *[0-9]+$/ { sys = $NF; want = 1; next }
    want == 1 && /^in use bytes *= *[0-9]+$/ {
      use = $NF; want = 0
      if (sys + 0 > 0 || use + 0 > 0) good++
      else { printf "empty Total section #%d\n", total > "/dev/stderr" }
      next
    }
    want > 0 { printf "malformed Total section #%d at: %s\n", total, $0 > "/dev/stderr"; want = 0 }
    END {
      if (total == 0) { print "no Total (incl. mmap) section" > "/dev/stderr"; exit 1 }
      if (good != total) exit 1
    }' "$file" || fail "malformed or empty malloc_stats output in $file"
  say "cmalloc statistics blocks: $blocks"
}

# compare_modes MIN_STATS
compare_modes() {
  local min_stats=$1 mode rc start end
  declare -A status
  for mode in ref cm stats; do
    mkdir -p -- "$WORK/$mode" || fail "mkdir"
    start=$(date +%s.%N)
    (
      set -e
      workload "$mode" "$WORK/$mode"
    ) >"$WORK/$mode.out" 2>"$WORK/$mode.err"
    rc=$?
    end=$(date +%s.%N)
    status[$mode]=$rc
    say "$mode run: exit status $rc, $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f s", b - a }'), $(wc -l <"$WORK/$mode.out") output lines"
  done
  if ((status[ref] != 0)); then
    tail -n 30 -- "$WORK/ref.err" >&2
    fail "the reference run (without cmalloc) failed with status ${status[ref]}"
  fi
  [[ -s $WORK/ref.out ]] || fail "the reference run printed nothing"
  if grep -qE '^cmalloc [0-9]+\.[0-9]+\.[0-9]+: ' "$WORK/ref.err"; then
    fail "the reference run printed cmalloc statistics: the environment preloads cmalloc"
  fi
  for mode in cm stats; do
    if ((status[$mode] != 0)); then
      say "stderr of the $mode run:"
      tail -n 30 -- "$WORK/$mode.err" >&2
      fail "the $mode run (under cmalloc-run) failed with status ${status[$mode]}"
    fi
    if ! cmp -s -- "$WORK/ref.out" "$WORK/$mode.out"; then
      diff -u -- "$WORK/ref.out" "$WORK/$mode.out" | head -n 40 >&2
      fail "the output of the $mode run differs from the reference run"
    fi
  done
  if grep -qE '^cmalloc [0-9]+\.[0-9]+\.[0-9]+: ' "$WORK/cm.err"; then
    fail "statistics printed without --stats"
  fi
  # Diagnostics too must be the same (no warnings from the allocator).
  if ! cmp -s -- "$WORK/ref.err" "$WORK/cm.err"; then
    diff -u -- "$WORK/ref.err" "$WORK/cm.err" | head -n 40 >&2
    fail "the cm run wrote different messages to stderr than the reference run"
  fi
  check_stats "$WORK/stats.err" "$min_stats"
  say "PASS"
}
