#!/usr/bin/env bash
# sort (coreutils) on a generated 200k-line file: several keys, unique,
# reverse, and a run with a small buffer that spills to temporary files and
# merges with several threads.
# shellcheck source=tests/programs/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

require sort awk sha256sum

INPUT=$WORK/input.txt
# 200,000 lines "word number word" from a fixed linear congruential generator
awk 'BEGIN {
  s = 7
  for (i = 0; i < 200000; i++) {
    line = ""
    for (f = 0; f < 3; f++) {
      s = (s * 1103515245 + 12345) % 2147483648
      if (f == 1) { line = line " " int(s / 1024) % 1000000; continue }
      n = 1 + int(s / 65536) % 12; w = ""
      for (k = 0; k < n; k++) {
        s = (s * 69069 + 1) % 4294967296
        w = w sprintf("%c", 97 + int(s / 16777216) % 26)
      }
      line = line (f ? " " : "") w
    }
    print line
  }
}' >"$INPUT" || fail "cannot generate the input"
[[ $(wc -l <"$INPUT") -eq 200000 ]] || fail "input has the wrong size"

workload() {
  local mode=$1 dir=$2 out
  out=$dir/sorted
  run_in_mode "$mode" sort "$INPUT" >"$out.plain"
  run_in_mode "$mode" sort -t ' ' -k2,2n -k1,1 "$INPUT" >"$out.numeric"
  run_in_mode "$mode" sort -u -k3,3 -k1,1r "$INPUT" >"$out.unique"
  run_in_mode "$mode" sort -r -S 256K --parallel=4 -T "$dir" "$INPUT" >"$out.spill"
  run_in_mode "$mode" sort -c "$out.plain"
  tac "$out.spill" | cmp -s - "$out.plain" || { echo "sort -r is not the reverse of sort" >&2; return 1; }
  # the results, not the files (their paths differ per mode)
  for f in plain numeric unique spill; do
    printf '%s %s %s\n' "$f" "$(wc -l <"$out.$f")" "$(sha256sum <"$out.$f" | cut -d' ' -f1)"
  done
  head -n 3 "$out.numeric"
  tail -n 3 "$out.unique"
}

compare_modes 5
