#!/usr/bin/env bash
# In steady state no small or medium malloc/free makes a system call: a
# million pairs (steady_loop) under cmalloc may make only the few memory
# system calls that growing the heap to its working size takes.
#
# usage: steady_syscalls.sh STEADY_LOOP LIBCMALLOC
# Exit status: 0 pass, 1 fail, 77 skip (strace not installed).
set -u
loop=$1 lib=$2
command -v strace >/dev/null 2>&1 || { echo "SKIP: strace is not installed"; exit 77; }
report=$(mktemp) || exit 1
trap 'rm -f -- "$report"' EXIT
strace -f -c -o "$report" -E LD_PRELOAD="$lib" "$loop" >/dev/null || {
  echo "FAIL: steady_loop failed under strace"
  exit 1
}
# strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall
calls=$(awk '$NF ~ /^(brk|mmap|munmap|mremap|madvise|futex)$/ { n += $4 } END { print n + 0 }' "$report")
cat -- "$report"
limit=40
if ((calls > limit)); then
  echo "FAIL: $calls memory/lock system calls for 1000000 malloc/free pairs (at most $limit expected)"
  exit 1
fi
echo "PASS: $calls memory/lock system calls for 1000000 malloc/free pairs"
