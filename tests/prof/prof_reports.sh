#!/usr/bin/env bash
# cmalloc-run --leaks and --profile on a program with known leaks and known
# allocation sites (prof_target.c): the reports must name the sites, with
# the right counts and bytes, largest first.
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
expect_line "$work/leaks.txt" '^cmalloc leaks: [0-9]+ bytes in [0-9]+ blocks still allocated at exit' "summary line"
# Each group: its header, then its frames up to the next blank line.
group_of() {
  awk -v hdr="$2" 'index($0, hdr) == 1 { on = 1 } on && /^$/ { exit } on { print }' "$1"
}
group_of "$work/leaks.txt" "5000 bytes in 1 blocks" >"$work/g1"
group_of "$work/leaks.txt" "300 bytes in 3 blocks" >"$work/g2"
group_of "$work/leaks.txt" "1554 bytes in 2 blocks" >"$work/g3"
expect_line "$work/g1" ' leak_big\+' "5000 bytes in 1 block from leak_big"
expect_line "$work/g1" ' main\+' "leak_big's stack goes up to main"
expect_line "$work/g2" ' leak_three\+' "300 bytes in 3 blocks from leak_three"
expect_line "$work/g3" ' leak_in_thread\+' "1554 bytes in 2 blocks from leak_in_thread (another thread)"
expect_line "$work/g2" ' allocate\+.*prof_target\+0x' "frames carry module and offset"
if grep -q 'no_leak' "$work/leaks.txt"; then fail "freed blocks reported (no_leak)"; else pass "freed blocks not reported"; fi
sizes=$(grep -E '^[0-9]+ bytes in [0-9]+ blocks allocated from:' "$work/leaks.txt" | awk '{print $1}')
if sort -nrc <<<"$sizes" 2>/dev/null; then pass "groups largest first"; else fail "groups not sorted: $(tr '\n' ' ' <<<"$sizes")"; fi

"$run" --leaks="$work/leaks-file.txt" "$target" leaks 2>"$work/leaks-stderr.txt"
expect_line "$work/leaks-file.txt" '^300 bytes in 3 blocks allocated from:' "--leaks=FILE writes the report to FILE"
if [[ -s $work/leaks-stderr.txt ]]; then fail "--leaks=FILE also wrote to stderr"; else pass "--leaks=FILE leaves stderr alone"; fi

# --------------------------------------------------------------------------
echo "== --profile, every allocation: exact in-use bytes at exit"
"$run" --profile="$work/exact.folded" --profile-interval=0 "$target" profile
head -n 5 "$work/exact.folded"
within "$(folded_value "$work/exact.folded" hold_b)" 1000000 0 "in use from hold_b"
within "$(folded_value "$work/exact.folded" hold_a)" 0 0 "in use from hold_a (all freed)"
expect_line "$work/exact.folded" '^[^ ]*main;hold_b;allocate [0-9]+$' "folded line: frames outermost first, then the bytes"

echo "== --profile, sampled, allocated bytes"
"$run" --profile="$work/alloc.folded" --profile-interval=16k --profile-value=alloc "$target" profile
within "$(folded_value "$work/alloc.folded" churn)" 67108864 15 "sampled bytes allocated by churn"
within "$(folded_value "$work/alloc.folded" hold_a)" 4000000 25 "sampled bytes allocated by hold_a"
within "$(folded_value "$work/alloc.folded" hold_b)" 2000000 35 "sampled bytes allocated by hold_b"

echo "== --profile-signal"
"$run" --profile="$work/sig.folded" --profile-interval=16k --profile-signal=USR2 \
  "$target" signal "$(kill -l USR2)" "$work/sig.folded.1"
if [[ -s $work/sig.folded.1 ]]; then
  pass "the signal wrote FILE.1"
  within "$(folded_value "$work/sig.folded.1" hold_a)" 4000000 25 "in use from hold_a at the signal"
else
  fail "no profile written on the signal"
fi
if [[ -s $work/sig.folded ]]; then pass "the exit profile is written too"; else fail "no exit profile"; fi

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
