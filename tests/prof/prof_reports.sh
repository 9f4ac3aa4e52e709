#!/usr/bin/env bash
# cmalloc-run --leaks and --profile on a program with known leaks and known
# allocation sites (prof_target.c): the reports must name the sites, with
# the right counts and bytes, largest first; the leak report must leave out
# what is still reachable (the C library's stdout buffer, a global's block)
# unless asked; google-pprof and go tool pprof must read the profiles.
#
#   prof_reports.sh CMALLOC_RUN PROF_TARGET
set -euo pipefail

run=$1
target=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
  printf 'FAIL: %s\n' "$*"
  failures=$((failures + 1))
}

pass() {
  printf 'ok: %s\n' "$*"
}

# expect_line FILE REGEX DESCRIPTION
expect_line() {
  if grep -Eq -- "$2" "$1"; then pass "$3"; else fail "$3 (no line matching '$2' in $1)"; fi
}

# folded_value FILE FUNCTION: the bytes of the stack whose innermost
# program frame is FUNCTION (allocate's caller), summed over its lines.
folded_value() {
  awk -v fn="$2" '{
      n = split($1, frames, ";")
      for (i = n; i > 0; i--)
        if (frames[i] == fn) { sum += $2; break }
    } END { print sum + 0 }' "$1"
}

# within VALUE EXPECTED PERCENT DESCRIPTION
within() {
  if awk -v v="$1" -v e="$2" -v p="$3" 'BEGIN { exit !(v >= e * (1 - p / 100) && v <= e * (1 + p / 100)) }'; then
    pass "$4: $1 (expected $2 +-$3%)"
  else
    fail "$4: $1, expected $2 +-$3%"
  fi
}

# --------------------------------------------------------------------------
echo "== --leaks"
"$run" --leaks "$target" leaks 2>"$work/leaks.txt"
cat "$work/leaks.txt"
expect_line "$work/leaks.txt" '^cmalloc leaks: 6998 bytes in 9 blocks lost \(96 bytes in 2 blocks of them indirectly\)' "summary line: lost blocks"
expect_line "$work/leaks.txt" '^cmalloc leaks: [0-9]+ bytes in [0-9]+ blocks still reachable at exit \(not listed' "summary line: reachable blocks"
# Each group: its header, then its frames up to the next blank line.
group_of() {
  awk -v hdr="$2" 'index($0, hdr) == 1 { on = 1 } on && /^$/ { exit } on { print }' "$1"
}
group_of "$work/leaks.txt" "5000 bytes in 1 blocks" >"$work/g1"
group_of "$work/leaks.txt" "300 bytes in 3 blocks" >"$work/g2"
group_of "$work/leaks.txt" "1554 bytes in 2 blocks" >"$work/g3"
group_of "$work/leaks.txt" "48 bytes in 1 blocks lost," >"$work/g4"
group_of "$work/leaks.txt" "96 bytes in 2 blocks indirectly lost," >"$work/g5"
expect_line "$work/g1" ' leak_big\+' "5000 bytes in 1 block from leak_big"
expect_line "$work/g1" ' main\+' "leak_big's stack goes up to main"
expect_line "$work/g2" ' leak_three\+' "300 bytes in 3 blocks from leak_three"
expect_line "$work/g3" ' leak_in_thread\+' "1554 bytes in 2 blocks from leak_in_thread (another thread)"
expect_line "$work/g4" ' leak_list\+' "the head of a lost list: lost, from leak_list"
expect_line "$work/g5" ' leak_list\+' "the rest of the list: indirectly lost"
expect_line "$work/g2" ' allocate\+.*prof_target\+0x' "frames carry module and offset"
expect_line "$work/g2" ' leak_three\+.*/prof_target\.c:[0-9]+$' "frames carry source file and line (debug information)"
if grep -q ' keep\+' "$work/leaks.txt"; then fail "a block a global points to is listed"; else pass "a block a global points to is not listed"; fi
"$run" --leaks --leaks-all "$target" leaks 2>"$work/leaks-all.txt"
group_of "$work/leaks-all.txt" "4444 bytes in 1 blocks still reachable," >"$work/g6"
expect_line "$work/g6" ' keep\+' "--leaks-all lists the block a global points to, still reachable"
if grep -q 'no_leak' "$work/leaks.txt"; then fail "freed blocks reported (no_leak)"; else pass "freed blocks not reported"; fi
sizes=$(grep -E '^[0-9]+ bytes in [0-9]+ blocks .*allocated from:' "$work/leaks.txt" | awk '{print $1}')
if sort -nrc <<<"$sizes" 2>/dev/null; then pass "groups largest first"; else fail "groups not sorted: $(tr '\n' ' ' <<<"$sizes")"; fi

"$run" --leaks="$work/leaks-file.txt" "$target" leaks 2>"$work/leaks-stderr.txt"
expect_line "$work/leaks-file.txt" '^300 bytes in 3 blocks lost, allocated from:' "--leaks=FILE writes the report to FILE"
if [[ -s $work/leaks-stderr.txt ]]; then fail "--leaks=FILE also wrote to stderr"; else pass "--leaks=FILE leaves stderr alone"; fi

echo "== --leaks on a program that loses 3 x 64 B and calls printf"
"$run" --leaks "$target" printf >"$work/printf.out" 2>"$work/printf.txt"
cat "$work/printf.txt"
expect_line "$work/printf.out" '^3 blocks of 64 bytes lost$' "the program's own output"
expect_line "$work/printf.txt" '^cmalloc leaks: 192 bytes in 3 blocks lost \(0 bytes' "exactly its 3 blocks are lost"
expect_line "$work/printf.txt" '^cmalloc leaks: [0-9]+ bytes in 1 blocks still reachable' "stdout's buffer is still reachable"
groups=$(grep -cE '^[0-9]+ bytes in [0-9]+ blocks' "$work/printf.txt" || true)
group_of "$work/printf.txt" "192 bytes in 3 blocks lost," >"$work/p1"
if [[ $groups == 1 ]] && grep -q ' lose_three+' "$work/p1"; then
  pass "one group listed: the 3 blocks from lose_three"
else
  fail "expected exactly one group, of lose_three's 3 blocks; got $groups groups"
fi
"$run" --leaks --leaks-all "$target" printf >/dev/null 2>"$work/printf-all.txt"
group_of "$work/printf-all.txt" "" >/dev/null
if grep -qE '^[0-9]+ bytes in 1 blocks still reachable, allocated from:' "$work/printf-all.txt" &&
  grep -q '_IO_file_doallocate' "$work/printf-all.txt"; then
  pass "--leaks-all lists stdout's buffer, still reachable"
else
  fail "--leaks-all does not list stdout's buffer"
fi

# The pprof readers: scripts/test installs them (scripts/lib/deps.sh); a
# package build may not have them, and skips what needs them.
have_gpprof=false have_go=false
command -v google-pprof >/dev/null && command -v dot >/dev/null && have_gpprof=true
command -v go >/dev/null && have_go=true
$have_gpprof || echo "SKIP: google-pprof checks (google-perftools and graphviz are not installed)"
$have_go || echo "SKIP: go tool pprof checks (golang-go is not installed)"

echo "== --leaks-format=pprof"
"$run" --leaks="$work/leaks.heap" --leaks-format=pprof "$target" printf >/dev/null
expect_line "$work/leaks.heap" '^heap profile: +3: +192 \[ *3: +192\] @ heapprofile$' "pprof header: 3 blocks, 192 bytes lost"
if $have_go; then
  go tool pprof -top -unit=B "$target" "$work/leaks.heap" >"$work/leaks.top" 2>&1 || true
  cat "$work/leaks.top"
  expect_line "$work/leaks.top" '^ +192B .* lose_three$' "go tool pprof: 192 B lost from lose_three"
fi

# --------------------------------------------------------------------------
echo "== --profile (pprof format), every allocation"
"$run" --profile="$work/exact.heap" --profile-interval=0 "$target" profile
head -n 3 "$work/exact.heap"
expect_line "$work/exact.heap" '^heap profile: +[0-9]+: +[0-9]+ \[ *[0-9]+: +[0-9]+\] @ heapprofile$' "pprof header"
expect_line "$work/exact.heap" '^MAPPED_LIBRARIES:$' "MAPPED_LIBRARIES section"
if $have_gpprof; then
  # google-pprof prints MB with one decimal: 1000000 B in use from hold_b,
  # and 64 MiB, 4000000 and 2000000 B allocated by churn, hold_a and hold_b.
  google-pprof --text "$target" "$work/exact.heap" >"$work/gp.txt" 2>"$work/gp.err" || cat "$work/gp.err"
  cat "$work/gp.txt"
  expect_line "$work/gp.txt" '^ +0\.0 +0\.0% +[0-9.]+% +1\.0 100\.0% hold_b$' "google-pprof --text: 1.0 MB in use from hold_b"
  google-pprof --text --alloc_space "$target" "$work/exact.heap" >"$work/gp-alloc.txt" 2>/dev/null || true
  expect_line "$work/gp-alloc.txt" ' 64\.0 +[0-9.]+% churn$' "google-pprof --alloc_space: 64.0 MB from churn"
  expect_line "$work/gp-alloc.txt" ' 3\.8 +[0-9.]+% hold_a$' "google-pprof --alloc_space: 3.8 MB from hold_a"
  google-pprof --svg "$target" "$work/exact.heap" >"$work/gp.svg" 2>/dev/null || true
  if head -c 200 "$work/gp.svg" | grep -q '<?xml' && grep -q hold_b "$work/gp.svg"; then
    pass "google-pprof --svg draws the graph"
  else
    fail "google-pprof --svg gave no SVG naming hold_b"
  fi
fi
if $have_go; then
  go tool pprof -top -unit=B "$target" "$work/exact.heap" >"$work/go.txt" 2>&1 || true
  cat "$work/go.txt"
  expect_line "$work/go.txt" '^ +1000000B +100% +100% +1000000B +100% +hold_b$' "go tool pprof -top: 1000000 B in use from hold_b"
  go tool pprof -top -unit=B -sample_index=alloc_space "$target" "$work/exact.heap" >"$work/go-alloc.txt" 2>&1 || true
  expect_line "$work/go-alloc.txt" '^ +67108864B .* churn$' "go tool pprof -sample_index=alloc_space: 67108864 B from churn"
  expect_line "$work/go-alloc.txt" '^ +4000000B .* hold_a$' "go tool pprof -sample_index=alloc_space: 4000000 B from hold_a"
fi

echo "== --profile-format=folded, every allocation: exact in-use bytes at exit"
"$run" --profile="$work/exact.folded" --profile-format=folded --profile-interval=0 "$target" profile
head -n 5 "$work/exact.folded"
within "$(folded_value "$work/exact.folded" hold_b)" 1000000 0 "in use from hold_b"
within "$(folded_value "$work/exact.folded" hold_a)" 0 0 "in use from hold_a (all freed)"
expect_line "$work/exact.folded" '^[^ ]*main;hold_b;allocate [0-9]+$' "folded line: frames outermost first, then the bytes"

echo "== --profile, sampled, allocated bytes"
"$run" --profile="$work/alloc.folded" --profile-format=folded --profile-interval=16k --profile-value=alloc "$target" profile
within "$(folded_value "$work/alloc.folded" churn)" 67108864 15 "sampled bytes allocated by churn"
within "$(folded_value "$work/alloc.folded" hold_a)" 4000000 25 "sampled bytes allocated by hold_a"
within "$(folded_value "$work/alloc.folded" hold_b)" 2000000 35 "sampled bytes allocated by hold_b"

echo "== --profile-signal"
"$run" --profile="$work/sig.folded" --profile-format=folded --profile-interval=16k --profile-signal=USR2 \
  "$target" signal "$(kill -l USR2)" "$work/sig.folded.1"
if [[ -s $work/sig.folded.1 ]]; then
  pass "the signal wrote FILE.1"
  within "$(folded_value "$work/sig.folded.1" hold_a)" 4000000 25 "in use from hold_a at the signal"
else
  fail "no profile written on the signal"
fi
if [[ -s $work/sig.folded ]]; then pass "the exit profile is written too"; else fail "no exit profile"; fi

echo "== --lib finds the profiler module next to the library"
mkdir "$work/elsewhere"
cp "$(dirname -- "$run")/cmalloc-run" "$work/elsewhere/"
if "$work/elsewhere/cmalloc-run" --lib "$(dirname -- "$run")/libcmalloc.so.1" --leaks "$target" printf \
  >/dev/null 2>"$work/lib.txt" && grep -q '^cmalloc leaks: 192 bytes in 3 blocks lost' "$work/lib.txt"; then
  pass "--lib BUILD/libcmalloc.so.1 --leaks, from another directory"
else
  cat "$work/lib.txt"
  fail "--lib BUILD/libcmalloc.so.1 --leaks did not find libcmalloc-prof.so"
fi

echo "== bad usage"
if "$run" --profile-value=bogus "$target" profile 2>"$work/err.txt"; then
  fail "--profile-value=bogus accepted"
else
  expect_line "$work/err.txt" "invalid value for --profile-value: 'bogus'" "--profile-value=bogus rejected by name"
fi
if "$run" --profile-interval=16k "$target" profile 2>"$work/err.txt"; then
  fail "--profile-interval without --profile accepted"
else
  pass "--profile-interval without --profile rejected"
fi
# The module, preloaded by hand (it sits next to cmalloc-run in a build tree).
CMALLOC_PROF_MODE=profile CMALLOC_PROF_OUTPUT="$work/x" CMALLOC_PROF_INTERVAL=lots \
  LD_PRELOAD="$(dirname -- "$run")/libcmalloc-prof.so" \
  "$run" "$target" profile 2>"$work/err.txt" || true
expect_line "$work/err.txt" "bad CMALLOC_PROF_INTERVAL.*'lots'" "a bad setting in the environment gets one warning naming it"

if ((failures > 0)); then
  printf '%d check(s) failed\n' "$failures"
  exit 1
fi
echo "all checks passed"
