#!/usr/bin/env bash
# The core names no feature: no object file of the core (every member of
# libcmalloc.a that is not built from src/ext/) may reference a symbol that
# a feature's object file defines, or any symbol of the features' families
# (guards, hooks, quarantine, traced blocks, Valgrind). The one seam entry
# the core calls, cm_ext_attach, is the exception by design (src/seam.h).
#
# usage: core_symbols.sh LIBCMALLOC.A NM
set -u
archive=$1
nm=${2:-nm}
features='^(dispatch|hooks|hardened|valgrind)\.c\.o$'
seam='^cm_ext_attach$'
family='(guard|hook|quarantin|traced|valgrind|sampl)'

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && ar x "$archive") || { echo "FAIL: cannot unpack $archive"; exit 1; }

core=() feat=()
for o in "$work"/*.o; do
  name=${o##*/}
  if [[ $name =~ $features ]]; then feat+=("$o"); else core+=("$o"); fi
done
((${#core[@]} > 5)) || { echo "FAIL: found only ${#core[@]} core objects in $archive"; exit 1; }
echo "core objects: ${#core[@]}; feature objects: ${#feat[@]}"

"$nm" --defined-only "${feat[@]}" 2>/dev/null | awk 'NF == 3 && $2 ~ /[A-Z]/ { print $3 }' |
  sort -u >"$work/feature_defs"

status=0
for o in "${core[@]}"; do
  name=${o##*/}
  "$nm" "$o" | awk '{ print $NF }' | sort -u >"$work/syms"
  # References are the undefined symbols: on i386 every object defines its
  # own copy of the compiler's __x86.get_pc_thunk.* helpers, features too.
  "$nm" --undefined-only "$o" | awk '{ print $NF }' | sort -u >"$work/refs"
  bad=$(grep -xFf "$work/feature_defs" "$work/refs" | grep -Ev "$seam")
  named=$(grep -Ei "$family" "$work/syms" | grep -Ev "$seam")
  if [[ -n $bad || -n $named ]]; then
    echo "FAIL: $name references feature symbols:" $bad $named
    status=1
  else
    echo "ok: $name"
  fi
done
if ((status == 0)); then
  echo "PASS: no core object references a feature symbol"
fi
exit $status
