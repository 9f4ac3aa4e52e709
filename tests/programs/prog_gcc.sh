#!/usr/bin/env bash
# gcc (driver, cc1, as, collect2/ld all inherit LD_PRELOAD) compiling a C
# file, then the compiled program running under cmalloc.  The object file
# and the assembly must be byte-for-byte the same as without cmalloc.
# shellcheck source=tests/programs/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

require gcc sha256sum

workload() {
  local mode=$1 dir=$2
  cp -- "$PROG_TEST_DIR/sample.c" "$dir/sample.c"
  cd -- "$dir" || return 1
  run_in_mode "$mode" gcc -O2 -Wall -Wextra -c sample.c -o sample.o
  run_in_mode "$mode" gcc -O2 -S sample.c -o sample.s
  run_in_mode "$mode" gcc -O2 -Wall -o sample sample.c
  echo "object $(sha256sum <sample.o | cut -d' ' -f1)"
  echo "assembly $(sha256sum <sample.s | cut -d' ' -f1)"
  run_in_mode "$mode" ./sample
}

compare_modes 10
