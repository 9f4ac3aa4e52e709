#!/usr/bin/env bash
# bash itself under cmalloc: a loop with arrays, associative arrays and
# string operations.
# shellcheck source=tests/programs/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

BASH_UNDER_TEST=/bin/bash
require "$BASH_UNDER_TEST"

workload() {
  local mode=$1
  run_in_mode "$mode" "$BASH_UNDER_TEST" --norc --noprofile "$PROG_TEST_DIR/workload.bash" 12000
}

compare_modes 1
