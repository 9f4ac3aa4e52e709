#!/usr/bin/env bash
# Memcheck's reports on cmalloc's blocks: each deliberately buggy program of
# tests/valgrind/ runs under memcheck three ways,
#   glibc      valgrind PROG                  (Valgrind's own allocator)
#   preloaded  LD_PRELOAD=LIB valgrind --soname-synonyms=somalloc=nouserintercepts PROG
#   linked     valgrind --soname-synonyms=somalloc=nouserintercepts PROG_linked
# and the last two must give the glibc run's report (the errors, the block
# each one is in, the leak summary), with the blocks allocated in cmalloc
# (its frames on the allocation stacks), plus what each program expects.
# And a block allocated before cmalloc's constructor has run (by EARLY's
# constructor) is known to memcheck: its free is no error.
#
# usage: memcheck_reports.sh BINDIR LIBRARY EARLY
#   BINDIR   where vg_BUG (plain) and vg_BUG_linked (linked with cmalloc) are
#   LIBRARY  libcmalloc.so to preload
#   EARLY    a library that allocates and frees in its constructor
#   VALGRIND (environment) the valgrind executable (default: from PATH)
# Exit status: 0 pass, 1 fail, 77 skip (valgrind is not installed).
set -u
valgrind=${VALGRIND:-valgrind}
if ! command -v -- "$valgrind" >/dev/null 2>&1; then
  echo "SKIP: valgrind is not installed"
  exit 77
fi
(($# == 3)) || { echo "usage: $0 BINDIR LIBRARY EARLY" >&2; exit 2; }
bindir=$1 lib=$2 early=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/cmalloc-memcheck.XXXXXX") || exit 1
trap 'rm -rf -- "$work"' EXIT
failures=0

fail() {
  printf 'FAIL: %s\n' "$*"
  failures=$((failures + 1))
}

# The lines of a report that must not depend on the allocator, without the
# pid prefix and addresses.
summary() {
  sed -n -E 's/^==[0-9]+== //p' "$1" |
    grep -E '^(Invalid |Conditional jump|Use of uninitialised| Address |[0-9,]+ bytes in [0-9,]+ blocks are|   (definitely|indirectly|possibly) lost:|ERROR SUMMARY:)' |
    sed -E 's/0x[0-9A-Fa-f]+/ADDR/g; s/ in loss record [0-9]+ of [0-9]+//'
}

# expect BUG CONFIG PATTERN...: each extended regex must match a line.
expect() {
  local bug=$1 config=$2 pattern
  shift 2
  for pattern in "$@"; do
    grep -Eq -- "$pattern" "$work/$bug.$config" || fail "$bug ($config): no line matches: $pattern"
  done
}

run() {
  local bug=$1 config=$2
  local opts=(--leak-check=full --track-origins=yes --num-callers=20)
  case $config in
    glibc) "$valgrind" "${opts[@]}" "$bindir/vg_$bug" ;;
    preloaded)
      LD_PRELOAD=$lib "$valgrind" --soname-synonyms=somalloc=nouserintercepts "${opts[@]}" \
        "$bindir/vg_$bug"
      ;;
    linked)
      "$valgrind" --soname-synonyms=somalloc=nouserintercepts "${opts[@]}" "$bindir/vg_${bug}_linked"
      ;;
  esac >/dev/null 2>"$work/$bug.$config"
}

for bug in leak overflow use_after_free uninit; do
  for config in glibc preloaded linked; do
    run "$bug" "$config"
  done
  summary "$work/$bug.glibc" >"$work/$bug.want"
  [[ -s $work/$bug.want ]] || fail "$bug (glibc): memcheck reported nothing"
  for config in preloaded linked; do
    summary "$work/$bug.$config" >"$work/$bug.$config.got"
    if ! diff -u "$work/$bug.want" "$work/$bug.$config.got" >"$work/diff"; then
      fail "$bug ($config): not the report memcheck gives on glibc:"
      cat "$work/diff"
    fi
    case $bug in
      leak)
        expect "$bug" "$config" '300 bytes in 3 blocks are definitely lost' \
          '^==[0-9]+== +by 0x[0-9A-F]+: leaky_function ' 'definitely lost: 300 bytes in 3 blocks'
        ;;
      overflow)
        expect "$bug" "$config" 'Invalid write of size 1' 'is 0 bytes after a block of size 10 alloc.d'
        ;;
      use_after_free)
        expect "$bug" "$config" 'Invalid write of size 1' 'is 5 bytes inside a block of size 32 free.d'
        ;;
      uninit)
        expect "$bug" "$config" 'Conditional jump or move depends on uninitialised value'
        ;;
    esac
    # The blocks came from cmalloc, not from Valgrind's allocator.
    expect "$bug" "$config" '^==[0-9]+== +(at|by) 0x[0-9A-F]+: cm_guard_after_alloc '
  done
done

LD_PRELOAD=$lib:$early "$valgrind" --soname-synonyms=somalloc=nouserintercepts /bin/true \
  2>"$work/early"
grep -q 'ERROR SUMMARY: 0 errors' "$work/early" || {
  fail "a block allocated before cmalloc's constructor ran:"
  cat "$work/early"
}

if ((failures)); then
  echo "memcheck output of the failed runs is above; $failures failure(s)"
  exit 1
fi
echo "memcheck reports on cmalloc's blocks match glibc's: leak, overflow, use_after_free, uninit; early block ok"
