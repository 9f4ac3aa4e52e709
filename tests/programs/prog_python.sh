#!/usr/bin/env bash
# Python (PYTHONMALLOC=malloc, so every object comes from malloc) running a
# threaded workload: dicts, lists, strings, regexes, json round trips and a
# ThreadPoolExecutor.  Same output with and without cmalloc.
# shellcheck source=tests/programs/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

PYTHON=/usr/bin/python3 # not the pyenv shim that may come first on PATH
require "$PYTHON"

export PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP

workload() {
  local mode=$1
  run_in_mode "$mode" "$PYTHON" -I "$PROG_TEST_DIR/workload.py" 12
}

compare_modes 1
