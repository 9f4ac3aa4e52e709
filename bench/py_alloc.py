#!/usr/bin/env python3
"""Allocation-heavy Python workload of the benchmark suite (scripts/bench).

Run with PYTHONMALLOC=malloc, so that every object goes through the
allocator under test, and PYTHONHASHSEED=0.  Only the standard library:
nested dicts and lists through JSON, string building and regular
expressions, counters and sorting, an XML tree, a heap of tuples, and big
integer arithmetic (the bignum churn of cfrac-like programs).  Fixed seed;
prints one digest line that does not depend on the allocator.

Usage: py_alloc.py [SCALE]   (SCALE 1: about 1.5 s on the development
machine; work grows linearly with it)
"""

import collections
import hashlib
import heapq
import json
import random
import re
import sys
import xml.etree.ElementTree as ET

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
         "tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam "
         "quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo").split()


def records(rng, n):
    out = []
    for i in range(n):
        out.append({
            "id": i,
            "name": "user%06d" % rng.randrange(1000000),
            "tags": rng.sample(WORDS, rng.randint(1, 6)),
            "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40))),
            "scores": [rng.random() for _ in range(rng.randint(0, 12))],
            "nested": {"a": [i, i * 2, {"b": str(i)}], "c": None, "d": i % 7 == 0},
        })
    return out


def json_phase(rng, n, digest):
    data = records(rng, n)
    for _ in range(3):
        text = json.dumps(data, sort_keys=True)
        data = json.loads(text)
    digest.update(text.encode())
    return data


def text_phase(data, digest):
    counter = collections.Counter()
    by_tag = collections.defaultdict(list)
    pattern = re.compile(r"\b(\w)(\w*)\b")
    lines = []
    for rec in data:
        words = rec["text"].split()
        counter.update(words)
        for t in rec["tags"]:
            by_tag[t].append(rec["id"])
        lines.append(pattern.sub(lambda m: m.group(1).upper() + m.group(2), rec["text"]))
        lines.append("|".join("%s=%r" % kv for kv in sorted(rec["nested"].items())))
    blob = "\n".join(lines)
    digest.update(blob.encode())
    digest.update(repr(counter.most_common(10)).encode())
    digest.update(repr(sorted((k, len(v), sum(v)) for k, v in by_tag.items())).encode())


def sort_phase(rng, n, digest):
    rows = [(rng.randrange(1000), "k%07d" % rng.randrange(10 ** 7), rng.random()) for _ in range(n)]
    rows.sort()
    rows.sort(key=lambda r: (r[1], -r[0]))
    heap = []
    for r in rows:
        heapq.heappush(heap, (r[2], r[1]))
        if len(heap) > 1000:
            heapq.heappop(heap)
    digest.update(repr(sorted(heap)[:50]).encode())


def xml_phase(data, digest):
    root = ET.Element("records")
    for rec in data:
        e = ET.SubElement(root, "record", id=str(rec["id"]), name=rec["name"])
        for t in rec["tags"]:
            ET.SubElement(e, "tag").text = t
        ET.SubElement(e, "text").text = rec["text"]
    text = ET.tostring(root)
    back = ET.fromstring(text)
    digest.update(text)
    digest.update(str(sum(1 for _ in back.iter("tag"))).encode())


def bignum_phase(digits, digest):
    # pi by Machin's formula with integer arithmetic: many big temporaries.
    unity = 10 ** (digits + 10)

    def arccot(x):
        total = term = unity // x
        n, sign, x2 = 3, -1, x * x
        while term:
            term //= x2
            total += sign * (term // n)
            sign, n = -sign, n + 2
        return total

    pi = 4 * (4 * arccot(5) - arccot(239)) // 10 ** 10
    digest.update(str(pi % 10 ** 50).encode())
    # continued fraction of sqrt(N) (the expansion cfrac factors with)
    n = 10 ** 30 + 57
    a0 = int(n ** 0.5)
    while a0 * a0 > n:
        a0 -= 1
    while (a0 + 1) * (a0 + 1) <= n:
        a0 += 1
    m, d, a, terms = 0, 1, a0, []
    for _ in range(digits * 4):
        m = d * a - m
        d = (n - m * m) // d
        a = (a0 + m) // d
        terms.append(a)
    digest.update(repr(terms[-20:]).encode())


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    rng = random.Random(20261126)
    digest = hashlib.sha256()
    data = json_phase(rng, int(6000 * scale), digest)
    text_phase(data, digest)
    sort_phase(rng, int(60000 * scale), digest)
    xml_phase(data, digest)
    bignum_phase(int(12000 * scale), digest)
    print("py_alloc scale=%g digest=%s" % (scale, digest.hexdigest()[:32]))


if __name__ == "__main__":
    main()
