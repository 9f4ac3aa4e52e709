#!/usr/bin/env bash
# cmalloc-run --compare against the allocators installed here: its JSON,
# markdown and text reports are parsed, and its warnings provoked.
#
#   compare.sh CMALLOC_RUN
set -euo pipefail

run=$1
if [[ ! -x /usr/bin/time ]]; then
  echo "skipped: cmalloc-run --compare needs GNU time (/usr/bin/time)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
  printf 'FAIL: %s\n' "$*"
  failures=$((failures + 1))
}
pass() { printf 'ok: %s\n' "$*"; }

# The peers at their Debian library paths: each one installed must be run.
multiarch=$(dirname -- "$(LD_TRACE_LOADED_OBJECTS=1 /bin/true | awk '$1 == "libc.so.6" { print $3 }')")
expected=(glibc cmalloc)
for peer in jemalloc:libjemalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4 mimalloc:libmimalloc.so.2; do
  [[ -f /usr$multiarch/${peer#*:} || -f $multiarch/${peer#*:} ]] && expected+=("${peer%%:*}")
done
compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-$(uname -m).so" >/dev/null &&
  expected+=(scudo)
echo "expected allocators: ${expected[*]}"

# A workload with allocations and a deterministic output.
seq 1 20000 | sed 's/$/ some words to sort/' | shuf --random-source=<(yes) >"$work/input"

echo "== --compare-format=json"
"$run" --compare --compare-runs=2 --compare-format=json sort "$work/input" >"$work/out.json" 2>"$work/err.txt"
cat "$work/out.json" "$work/err.txt"
if python3 - "$work/out.json" "${expected[@]}" <<'PYEOF'; then pass "JSON: every allocator, medians and ratios"; else fail "JSON report"; fi
import json, sys
report = json.load(open(sys.argv[1]))
names = [a["name"] for a in report["allocators"]]
assert names == sys.argv[2:], (names, sys.argv[2:])
assert report["runs"] == 2 and report["program"][0] == "sort"
glibc = report["allocators"][0]
assert glibc["library"] == "" and glibc["wall_ratio"] == 1 and glibc["rss_ratio"] == 1
for a in report["allocators"]:
    assert a["wall_s"] > 0 and a["peak_rss_kib"] > 0 and a["cpu_s"] >= 0, a
    assert abs(a["rss_ratio"] - a["peak_rss_kib"] / glibc["peak_rss_kib"]) < 0.01, a
    assert a["exit_status"] == 0 and a["warning"] is None, a
    if a["name"] != "glibc":
        assert a["library"].startswith("/"), a
assert report["allocators"][1]["library"].endswith("libcmalloc.so.1")
PYEOF
if grep -q warning "$work/err.txt"; then fail "warnings on a deterministic program"; else pass "no warning on a deterministic program"; fi

echo "== --compare-format=markdown"
"$run" --compare --compare-runs=1 --compare-format=markdown sort "$work/input" >"$work/out.md" 2>/dev/null
cat "$work/out.md"
rows=$(grep -cE '^\| [a-z]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+x \| [0-9.]+x \| [0-9.]+x \|$' "$work/out.md" || true)
if [[ $rows == "${#expected[@]}" ]] && grep -q '^| glibc | .* | 1.00x | 1.00x | 1.00x |$' "$work/out.md"; then
  pass "markdown: a row per allocator, glibc's ratios 1.00x"
else
  fail "markdown: $rows rows for ${#expected[@]} allocators"
fi

echo "== text, the default"
"$run" --compare --compare-runs=1 sort "$work/input" >"$work/out.txt" 2>/dev/null
cat "$work/out.txt"
for name in "${expected[@]}"; do
  if grep -qE "^$name +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+x +[0-9.]+x +[0-9.]+x$" "$work/out.txt"; then
    pass "text: a row for $name"
  else
    fail "text: no row for $name"
  fi
done

echo "== warnings"
"$run" --compare --compare-runs=1 bash -c 'echo $RANDOM$RANDOM' >/dev/null 2>"$work/err.txt"
cat "$work/err.txt"
if grep -q '^cmalloc-run: warning: cmalloc: output differs from glibc' "$work/err.txt"; then
  pass "a warning when the output differs"
else
  fail "no warning for a different output"
fi
"$run" --compare --compare-runs=1 --compare-format=json bash -c 'exit 3' >"$work/st.json" 2>"$work/err.txt"
if python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert all(a["exit_status"] == 3 and a["warning"] is None for a in r["allocators"])' "$work/st.json" &&
  ! grep -q warning "$work/err.txt"; then
  pass "the same failing exit status everywhere: reported, no warning"
else
  fail "exit status 3 everywhere"
fi
# Exit status 0 on glibc, 1 on anything preloaded.
"$run" --compare --compare-runs=1 bash -c '[[ -z ${LD_PRELOAD:-} ]]' >/dev/null 2>"$work/err.txt"
if grep -q "^cmalloc-run: warning: cmalloc: exit status 1, glibc's was 0" "$work/err.txt"; then
  pass "a warning when the exit status differs"
else
  cat "$work/err.txt"
  fail "no warning for a different exit status"
fi

echo "== bad usage"
for bad in --compare-runs=0 --compare-format=xml; do
  if "$run" --compare "$bad" true 2>/dev/null; then fail "$bad accepted"; else pass "$bad rejected"; fi
done
if "$run" --compare --leaks true 2>/dev/null; then fail "--compare --leaks accepted"; else pass "--compare --leaks rejected"; fi

if ((failures > 0)); then
  printf '%d check(s) failed\n' "$failures"
  exit 1
fi
echo "all checks passed"
