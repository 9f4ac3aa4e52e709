#!/usr/bin/env bash
# Run-time options (CMALLOC_OPTIONS and CMALLOC_<KEY>): good values take
# effect, a bad value or an unknown key gets exactly one warning line that
# names it and leaves the default in force. What is in force is read from
# the line that verbose=on prints at start-up.
#
#   options.sh LIBCMALLOC
set -uo pipefail

lib=$1
prog=$(type -P true)
failures=0
defaults="3 arenas at most|mmap threshold 1048577|thread cache up to 32768 bytes|trim threshold 33554432|purge delay 1000 ms|background purge off|stats at exit off|stats signal 0|hardened off"

# run ENV...: what a run of a dynamically linked program prints with these
# variables set.
run() {
  env -u CMALLOC_OPTIONS LD_PRELOAD="$lib" "$@" "$prog" 2>&1
}

fail() {
  printf 'FAIL: %s\n' "$*"
  failures=$((failures + 1))
}

# expect_in_force OUTPUT DESCRIPTION FRAGMENT...: the start-up line has them.
expect_in_force() {
  local out=$1 what=$2 line f
  shift 2
  line=$(grep -m1 'cmalloc: version ' <<<"$out")
  for f in "$@"; do
    [[ $line == *"$f"* ]] || { fail "$what: '$f' not in force: $line"; return; }
  done
  printf 'ok: %s\n' "$what"
}

# The number of arenas defaults to the CPU count: take it from a plain run.
base=$(run CMALLOC_VERBOSE=on)
ncpu_arenas=$(sed -n 's/.*: \([0-9]*\) arenas at most.*/\1/p' <<<"$base")
defaults=${defaults/3 arenas/$ncpu_arenas arenas}
IFS='|' read -r -a default_fragments <<<"$defaults"
expect_in_force "$base" "defaults" "${default_fragments[@]}"
[[ $(grep -c 'cmalloc:' <<<"$base") -eq 1 ]] || fail "a plain verbose run printed more than its start-up line"

out=$(run CMALLOC_OPTIONS=verbose=on,arenas=3,mmap_threshold=256k,tcache=16k,trim_threshold=8m,purge_delay_ms=0,stats_at_exit=off,hardened=on)
expect_in_force "$out" "good values in CMALLOC_OPTIONS" "3 arenas at most" "mmap threshold 262144" \
  "thread cache up to 16384 bytes" "trim threshold 8388608" "purge delay 0 ms" "hardened on"
out=$(run CMALLOC_OPTIONS=verbose=on,tcache=off,trim_threshold=1g)
expect_in_force "$out" "tcache=off, g suffix" "thread cache up to 0 bytes" "trim threshold 1073741824"
out=$(run CMALLOC_OPTIONS=verbose=on,arenas=2 CMALLOC_ARENAS=4 CMALLOC_MMAP_THRESHOLD=2M)
expect_in_force "$out" "CMALLOC_<KEY> wins over CMALLOC_OPTIONS" "4 arenas at most" "mmap threshold 2097152"
out=$(run CMALLOC_VERBOSE=on CMALLOC_BACKGROUND_PURGE=on)
expect_in_force "$out" "background purge from CMALLOC_BACKGROUND_PURGE" "background purge on"
out=$(run CMALLOC_OPTIONS=verbose=on,background_purge=yes)
expect_in_force "$out" "background purge from CMALLOC_OPTIONS" "background purge on"
out=$(run CMALLOC_OPTIONS=verbose=on,stats_signal=USR2)
expect_in_force "$out" "stats_signal by name" "stats signal $(kill -l USR2)"

# Each bad setting: one warning naming the key, the default in force.
while IFS='|' read -r setting key; do
  [[ -n $setting ]] || continue
  out=$(run CMALLOC_VERBOSE=on "$setting")
  warnings=$(grep -v 'cmalloc: version ' <<<"$out" | grep -c 'cmalloc:')
  if ((warnings != 1)); then
    fail "$setting: $warnings warning lines, expected 1: $out"
  elif ! grep -v 'cmalloc: version ' <<<"$out" | grep -q -- "$key"; then
    fail "$setting: the warning does not name '$key': $out"
  else
    expect_in_force "$out" "$setting: warned, default kept" "${default_fragments[@]}"
  fi
done <<'EOF_CASES'
CMALLOC_OPTIONS=arenas=0|arenas
CMALLOC_OPTIONS=arenas=300|arenas
CMALLOC_OPTIONS=arenas=many|arenas
CMALLOC_ARENAS=-1|arenas
CMALLOC_OPTIONS=mmap_threshold=12q|mmap_threshold
CMALLOC_OPTIONS=mmap_threshold=|mmap_threshold
CMALLOC_OPTIONS=tcache=maybe|tcache
CMALLOC_OPTIONS=tcache=2m|tcache
CMALLOC_OPTIONS=purge_delay_ms=-5|purge_delay_ms
CMALLOC_OPTIONS=trim_threshold=k|trim_threshold
CMALLOC_OPTIONS=stats_at_exit=xml|stats_at_exit
CMALLOC_OPTIONS=stats_signal=KILL|stats_signal
CMALLOC_OPTIONS=hardened=perhaps|hardened
CMALLOC_BACKGROUND_PURGE=sometimes|background_purge
CMALLOC_HARDENED=2|hardened
CMALLOC_OPTIONS=colour=blue|colour
CMALLOC_OPTIONS=arenas|arenas
EOF_CASES

if ((failures > 0)); then
  printf '%d check(s) failed\n' "$failures"
  exit 1
fi
echo "all checks passed"
