#!/usr/bin/env bash
# perl: hashes, regexes, substitutions and sort on a generated word list.
# shellcheck source=tests/programs/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

require perl
export PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0
unset PERL5LIB PERLLIB PERL5OPT

workload() {
  local mode=$1
  run_in_mode "$mode" perl "$PROG_TEST_DIR/workload.pl" 80000
}

compare_modes 1
