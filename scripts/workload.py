#!/usr/bin/env python3
"""A small but real allocation-heavy workload for cmalloc's main job.

scripts/setup runs it as
    PYTHONMALLOC=malloc build/cmalloc-run --stats python3 scripts/workload.py
so that every object Python creates goes through cmalloc's malloc/free.

It builds a synthetic order book of nested dicts, lists and strings,
round-trips it through JSON, indexes and aggregates it, does the same
from several threads at once, and allocates a few large buffers.  The
output is deterministic (apart from the timing line) so runs can be
compared.  Usage: workload.py [SCALE]  (default 1; about a second).
"""

import collections
import hashlib
import json
import random
import sys
import threading
import time

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo "
    "lima mike november oscar papa quebec romeo sierra tango uniform "
    "victor whiskey xray yankee zulu arena cache bin page run heap slab"
).split()


def make_records(rng, n):
    records = []
    for i in range(n):
        n_items = rng.randint(1, 8)
        records.append({
            "id": i,
            "customer": "cust-%05d" % rng.randrange(5000),
            "tags": rng.sample(WORDS, rng.randint(0, 5)),
            "note": " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30))),
            "items": [
                {
                    "sku": "%s-%d" % (rng.choice(WORDS), rng.randrange(1000)),
                    "qty": rng.randint(1, 20),
                    "price": round(rng.uniform(0.5, 500.0), 2),
                }
                for _ in range(n_items)
            ],
        })
    return records


def aggregate(records):
    """Totals per customer and word counts: many short-lived dicts and strings."""
    totals = collections.defaultdict(float)
    words = collections.Counter()
    for rec in records:
        totals[rec["customer"]] += sum(it["qty"] * it["price"] for it in rec["items"])
        words.update(rec["note"].split())
        words.update(rec["tags"])
    return totals, words


def json_roundtrips(records, rounds):
    text = ""
    for _ in range(rounds):
        text = json.dumps(records, sort_keys=True)
        records = json.loads(text)
    return records, text


def thread_worker(seed, n, results, index):
    rng = random.Random(seed)
    records = make_records(rng, n)
    records, text = json_roundtrips(records, 2)
    # Grow and shrink strings: realloc-heavy.
    pieces = []
    for rec in records:
        pieces.append(rec["note"].upper())
        if len(pieces) > 64:
            pieces = ["|".join(pieces)[: 4096]]
    results[index] = (len(records), hashlib.sha256(text.encode()).hexdigest()[:16])


def large_buffers(rounds):
    """Blocks far above any size class: served by mmap, then given back."""
    checksum = 0
    for r in range(rounds):
        bufs = [bytearray(((r + k) % 7 + 1) * 1024 * 1024) for k in range(4)]
        for b in bufs:
            b[0] = 1
            b[-1] = 2
            checksum += len(b) + b[0] + b[-1]
        big = bytes(8 * 1024 * 1024)
        checksum += len(big)
        del bufs, big
    return checksum


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    n = max(100, int(6000 * scale))
    start = time.perf_counter()

    rng = random.Random(12345)
    records = make_records(rng, n)
    records, text = json_roundtrips(records, 3)
    digest = hashlib.sha256(text.encode()).hexdigest()
    totals, words = aggregate(records)
    top_customers = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:3]

    # Index by tag, then drop half the records: leaves holes to be reused.
    by_tag = collections.defaultdict(list)
    for rec in records:
        for tag in rec["tags"]:
            by_tag[tag].append(rec["id"])
    records = [rec for rec in records if rec["id"] % 2 == 0]
    refill = make_records(random.Random(54321), n // 2)
    records.extend(refill)

    n_threads = 4
    results = [None] * n_threads
    threads = [
        threading.Thread(target=thread_worker, args=(1000 + t, n // 4, results, t))
        for t in range(n_threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    big = large_buffers(max(1, int(8 * scale)))
    elapsed = time.perf_counter() - start

    print("records:        %d built, %d after churn" % (n, len(records)))
    print("json:           %d bytes, sha256 %s" % (len(text), digest[:16]))
    print("customers:      %d; top %s" % (
        len(totals), ", ".join("%s=%.2f" % kv for kv in top_customers)))
    print("words:          %d distinct; most common %s" % (
        len(words), ", ".join("%s=%d" % kv for kv in words.most_common(3))))
    print("tags indexed:   %d tags, %d entries" % (
        len(by_tag), sum(len(v) for v in by_tag.values())))
    for i, (count, h) in enumerate(results):
        print("thread %d:       %d records, sha256 %s" % (i, count, h))
    print("large buffers:  checksum %d" % big)
    print("elapsed:        %.2f s" % elapsed)


if __name__ == "__main__":
    main()
