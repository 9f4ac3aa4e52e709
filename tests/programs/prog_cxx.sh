#!/usr/bin/env bash
# A C++ program built with g++ and run under cmalloc: libstdc++'s operator
# new and delete (plain, sized, array, aligned and nothrow) must reach
# cmalloc and work unchanged, and g++ itself runs under cmalloc too.
# shellcheck source=tests/programs/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

require g++

workload() {
  local mode=$1 dir=$2
  cp -- "$PROG_TEST_DIR/sample.cpp" "$dir/sample.cpp"
  cd -- "$dir" || return 1
  run_in_mode "$mode" g++ -O2 -std=c++17 -pthread -o sample sample.cpp
  run_in_mode "$mode" ./sample
}

compare_modes 5
