"""Allocation-heavy, multithreaded, deterministic Python workload for the
cmalloc program tests (run with PYTHONMALLOC=malloc so that every Python
object comes from the C allocator).  Prints only results that do not depend
on scheduling or on the allocator."""

import collections
import hashlib
import json
import random
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def make_record(rng, i):
    name = "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 14)))
    return {
        "id": i,
        "name": name,
        "tags": [name[: rng.randint(0, len(name))] for _ in range(rng.randint(0, 6))],
        "values": [rng.randint(-10**9, 10**9) for _ in range(rng.randint(0, 30))],
        "ratio": rng.random(),
        "blob": name * rng.randint(1, 40),
        "nested": {str(k): [k] * (k % 5) for k in range(rng.randint(0, 8))},
    }


def task(seed):
    rng = random.Random(seed)
    records = {("r%05d" % i): make_record(rng, i) for i in range(800)}
    # json round trips
    text = json.dumps(records, sort_keys=True)
    back = json.loads(text)
    assert back == records, "json round trip"
    text2 = json.dumps(back, sort_keys=True, indent=1)
    assert json.loads(text2) == records
    # strings and regexes
    words = collections.Counter(re.findall(r"[a-z]{3,}", text))
    joined = "".join(r["blob"] for r in records.values())
    pieces = [joined[i : i + 11].upper()[::-1] for i in range(0, len(joined), 11)]
    rebuilt = "-".join(sorted(pieces, key=lambda s: (len(s), s))[:2000])
    # lists, sets, dicts, sorting
    by_len = sorted(records.values(), key=lambda r: (len(r["values"]), r["name"], r["id"]))
    index = collections.defaultdict(list)
    for r in records.values():
        for t in r["tags"]:
            index[t].append(r["id"])
    uniq = set()
    for r in by_len:
        uniq.update(r["values"])
    total = sum(v for r in records.values() for v in r["values"])
    # grow and shrink big containers
    big = [bytearray(rng.randint(0, 5000)) for _ in range(200)]
    for b in big[::3]:
        b.extend(b"x" * 3000)
    del big[::2]
    h = hashlib.sha256()
    h.update(text.encode())
    h.update(rebuilt.encode())
    h.update(repr(sorted(index.items())[:100]).encode())
    return (seed, len(text), len(text2), words.most_common(3), len(uniq), total,
            by_len[-1]["id"], sum(len(b) for b in big), h.hexdigest()[:32])


def shared_counter(nthreads, rounds):
    """Plain threads updating shared dicts and lists under a lock."""
    lock = threading.Lock()
    table = {}
    log = []

    def worker(tid):
        rng = random.Random(1000 + tid)
        for i in range(rounds):
            key = "k%d" % rng.randint(0, 500)
            item = [tid, i, "v" * rng.randint(0, 50)]
            with lock:
                table.setdefault(key, []).append(item)
                log.append(key)
                if len(table[key]) > 20:
                    del table[key][:10]

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(log), sorted(collections.Counter(log).most_common())[:5]


def main():
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    with ThreadPoolExecutor(max_workers=6) as pool:
        for result in pool.map(task, range(tasks)):
            print(result)
    print(shared_counter(8, 5000))
    print("done")


if __name__ == "__main__":
    main()
