#!/usr/bin/env python3
"""CPython compile and JSON workload of the benchmark suite (scripts/bench).

Run with PYTHONMALLOC=malloc and PYTHONHASHSEED=0.  Generates Python
modules (classes, functions, comprehensions, f-strings), parses them to
ASTs, compiles them to code objects, turns every AST into nested dicts and
lists, round-trips that through JSON and checks the copy equals the
original.  Prints one digest line that depends only on SCALE; exits with
status 1 if a round trip differs.

Usage: py_compile.py [SCALE]   (SCALE 1: about a second)
"""

import ast
import hashlib
import json
import random
import sys


def module_source(rng, k):
    lines = ["import math", ""]
    for c in range(8):
        name = "C%d_%d" % (k, c)
        lines.append("class %s:" % name)
        lines.append("    def __init__(self, a, b=%d):" % rng.randrange(100))
        lines.append("        self.a, self.b = a, b")
        for m in range(rng.randint(2, 6)):
            op = rng.choice(["+", "-", "*", "//", "%"])
            lines.append("    def m%d(self, x):" % m)
            lines.append("        ys = [x %s i for i in range(self.a) if i %% %d]"
                         % (op, rng.randint(2, 7)))
            lines.append("        return {f'k{i}': y for i, y in enumerate(ys)}")
        lines.append("")
    for f in range(10):
        lines.append("def f%d(n):" % f)
        lines.append("    total = 0")
        lines.append("    for i in range(n):")
        lines.append("        if i %% %d == 0:" % rng.randint(2, 9))
        lines.append("            total += math.isqrt(i) * %d" % rng.randrange(1000))
        lines.append("        else:")
        lines.append("            total -= len(str(i))")
        lines.append("    return total, [t for t in (n, total) if t]")
        lines.append("")
    return "\n".join(lines)


def to_plain(node):
    if isinstance(node, ast.AST):
        out = {"_": type(node).__name__}
        for field, value in ast.iter_fields(node):
            out[field] = to_plain(value)
        return out
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    return node


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    rng = random.Random(2718)
    digest = hashlib.sha256()
    n = max(1, int(60 * scale))
    for k in range(n):
        src = module_source(rng, k)
        tree = ast.parse(src, "mod%d.py" % k)
        code = compile(tree, "mod%d.py" % k, "exec")
        digest.update(code.co_code)
        digest.update(repr(code.co_names).encode())
        plain = to_plain(tree)
        text = json.dumps(plain, sort_keys=True)
        if json.loads(text) != plain:
            print("py_compile: JSON round trip differs in module %d" % k)
            return 1
        digest.update(text.encode())
        namespace = {}
        exec(code, namespace)
        digest.update(repr(namespace["f3"](500)).encode())
    print("py_compile scale=%g modules=%d digest=%s" % (scale, n, digest.hexdigest()[:32]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
