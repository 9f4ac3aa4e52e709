#!/usr/bin/env bash
# Runs the fuzz_malloc harness (tests/fuzz/fuzz_malloc.c), for ctest and
# scripts/fuzz.
#
#   run.sh fuzz HARNESS SECONDS WORKDIR SEEDS...
#       Fuzz for SECONDS from a copy of the seed directories SEEDS in
#       WORKDIR/corpus (the seeds themselves are never modified); crash,
#       timeout and out-of-memory inputs go to WORKDIR/findings.
#   run.sh replay HARNESS DIR...
#       Run every file in the DIRs once (README files excepted).
#
# Prints one summary line.  Exit status: 0 nothing found, 1 a finding or a
# failure, 77 HARNESS is "none" (clang with libFuzzer was not found when the
# build was configured).
set -euo pipefail

mode=${1:?usage: run.sh fuzz|replay HARNESS ...}
harness=${2:?usage: run.sh fuzz|replay HARNESS ...}
shift 2

if [[ $harness == none ]]; then
  echo "fuzz_malloc: skipped: no clang with libFuzzer (Debian: clang libclang-rt-14-dev)"
  exit 77
fi
[[ -x $harness ]] || { echo "fuzz_malloc: $harness is not built" >&2; exit 1; }

case $mode in
  fuzz)
    seconds=$1 workdir=$2
    shift 2
    rm -rf "$workdir/corpus"
    mkdir -p "$workdir/corpus" "$workdir/findings"
    for seeds in "$@"; do
      find "$seeds" -maxdepth 1 -type f ! -name 'README*' -exec cp -t "$workdir/corpus" {} +
    done
    seeds_count=$(find "$workdir/corpus" -type f | wc -l)
    log=$workdir/fuzz.log
    status=0
    # libFuzzer's own exit status for a finding is 77, ctest's "skipped":
    # any failure is reported as 1 below.  -timeout: an input that runs for
    # 30 s is a hang (a deadlock between the worker threads, say).
    "$harness" -max_total_time="$seconds" -max_len=4096 -timeout=30 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix="$workdir/findings/" \
      "$workdir/corpus" >"$log" 2>&1 || status=$?
    findings=$(find "$workdir/findings" -type f | wc -l)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    seed=$(sed -n 's/.*Seed: \([0-9]*\).*/\1/p' "$log" | head -n 1)
    corpus_count=$(find "$workdir/corpus" -type f | wc -l)
    echo "fuzz_malloc: ${runs:-?} executions in $seconds s (${rate:-?}/s, seed ${seed:-?})," \
      "corpus $seeds_count -> $corpus_count inputs, findings: $findings"
    if ((status != 0 || findings != 0)); then
      tail -n 60 "$log"
      echo "fuzz_malloc: FAILED (exit status $status); the input is in $workdir/findings:" \
        "replay it with '$harness FILE', and add it to tests/fuzz/regressions/ with the fix"
      exit 1
    fi
    ;;
  replay)
    inputs=()
    for dir in "$@"; do
      while IFS= read -r -d '' f; do
        inputs+=("$f")
      done < <(find "$dir" -maxdepth 1 -type f ! -name 'README*' -print0 | sort -z)
    done
    if ((${#inputs[@]} == 0)); then
      echo "fuzz_malloc: no inputs to replay"
      exit 0
    fi
    log=$(mktemp)
    status=0
    "$harness" "${inputs[@]}" >"$log" 2>&1 || status=$?
    if ((status != 0)); then
      cat "$log"
      rm -f "$log"
      echo "fuzz_malloc: replay FAILED (exit status $status)"
      exit 1
    fi
    rm -f "$log"
    echo "fuzz_malloc: replayed ${#inputs[@]} inputs: OK"
    ;;
  *)
    echo "run.sh: unknown mode $mode" >&2
    exit 1
    ;;
esac
