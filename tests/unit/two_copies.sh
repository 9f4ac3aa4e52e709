#!/usr/bin/env bash
# Two copies of libcmalloc.so.1 in one process, as a system-wide preload
# plus an LD_PRELOAD of another path, or a dlopen of a copy, make: only the
# copy that owns malloc (the first in the global scope) prints its start-up
# line and its exit report; the other stays dormant.
#
#   two_copies.sh LIBCMALLOC TWO_COPIES_PROGRAM
set -uo pipefail

lib=$1
prog=$2
failures=0
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/other"
cp "$(readlink -f "$lib")" "$dir/other/libcmalloc.so.1"
copy=$dir/other/libcmalloc.so.1

fail() {
  printf 'FAIL: %s\n' "$*"
  failures=$((failures + 1))
}

# check WHAT OUTPUT: one start-up line, one exit report.
check() {
  local what=$1 out=$2 starts reports
  starts=$(grep -c 'cmalloc: version ' <<<"$out")
  reports=$(grep -c '^Arena 0:$' <<<"$out")
  if [[ $starts == 1 && $reports == 1 ]]; then
    printf 'ok: %s\n' "$what"
  else
    fail "$what: $starts start-up lines and $reports reports, want 1 and 1:"
    printf '%s\n' "$out" | head -20
  fi
}

export CMALLOC_OPTIONS=verbose=on,stats_at_exit=text

# Two preloads of two paths (a system-wide preload and the user's own).
sorter=$(type -P sort)
out=$(printf 'b\na\n' | LD_PRELOAD="$lib $copy" "$sorter" 2>&1)
[[ $out == *$'a\nb'* ]] || fail "sort under two preloaded copies: $out"
check "two preloaded copies" "$out"

# The program's own copy (DT_NEEDED) and a dlopen of another path.
out=$("$prog" "$copy" 2>&1)
[[ $out == *"two copies: ok"* ]] || fail "dlopen of a copy: $out"
check "a copy loaded with dlopen" "$out"

# One copy alone still starts and reports.
out=$(LD_PRELOAD="$copy" "$sorter" </dev/null 2>&1)
check "one copy" "$out"

((failures == 0)) || { echo "$failures failure(s)"; exit 1; }
echo "two_copies: all ok"
