#!/usr/bin/env bash
# Run a test program under valgrind memcheck.
#
# usage: memcheck.sh PROGRAM [ARGS...]
#   VALGRIND (environment) names the valgrind executable (default: valgrind
#   from PATH).  Exit status 77 (skip) when valgrind is not installed,
#   99 when memcheck found errors, otherwise the program's status.
#
# --soname-synonyms=somalloc=nouserintercepts keeps valgrind from replacing
# malloc in the test program and its non-libc libraries: the calls reach
# cmalloc, which describes its blocks to memcheck (src/valgrind.c), and any
# error memcheck reports, in the program or in cmalloc, fails the test.
set -u
valgrind=${VALGRIND:-valgrind}
if ! command -v -- "$valgrind" >/dev/null 2>&1; then
  echo "SKIP: valgrind is not installed"
  exit 77
fi
(($# >= 1)) || { echo "usage: $0 PROGRAM [ARGS...]" >&2; exit 2; }
export CK_FORK=no
exec "$valgrind" --error-exitcode=99 --soname-synonyms=somalloc=nouserintercepts \
  --leak-check=no --errors-for-leak-kinds=none "$@"
