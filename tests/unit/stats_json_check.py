#!/usr/bin/env python3
"""Checks cmalloc's JSON statistics reports (schema "cmalloc-stats" 1).

Reads text on stdin, picks the lines that are reports (they start with
'{"schema":"cmalloc-stats"'), parses each with json.loads and checks the
schema: every field with its type, and the sums and bounds that tie the
fields together (README.md, "Statistics").

  stats_json_check.py [--min N] [--max N] [--strict] [--print KEY.PATH ...]

--min/--max   how many reports there must be (default: at least 1)
--strict      also the checks that hold only while no other thread
              allocates (held from the OS covers arenas and huge blocks)
--print       print the value at a dotted path of the last report, one per
              line (e.g. totals.bytes_in_use); for the C tests
Exit status 0 when everything holds, 1 otherwise (the reasons on stderr).
"""
import json
import sys

SEGMENT = 4 << 20
ARENA_KEYS = {
    "index": int, "traced": bool, "exact": bool, "threads": int,
    "segments": int, "segments_peak": int, "bytes_held": int,
    "bytes_held_peak": int, "bytes_in_use": int, "bytes_out": int,
    "bytes_out_peak": int, "bytes_free_pages": int, "bytes_dirty_pages": int,
    "free_runs": (int, type(None)), "bytes_requested": (int, type(None)),
    "nmalloc": int, "nfree": int, "classes": list,
}
CLASS_KEYS = ("class", "size", "runs", "blocks_in_use", "blocks_free", "nmalloc", "nfree")
HUGE_KEYS = ("count", "bytes", "count_peak", "bytes_peak", "bytes_cached")
OS_KEYS = ("bytes_held", "bytes_held_peak", "bytes_mapped", "bytes_unmapped",
           "bytes_purged", "bytes_returned")
TOTAL_KEYS = {"arenas": int, "threads": int, "exact": bool,
              "bytes_requested": (int, type(None)), "bytes_in_use": int,
              "bytes_held": int, "bytes_held_peak": int, "bytes_returned": int}


class Bad(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Bad(what)


def typed(obj, key, kind, where):
    need(key in obj, f"{where}: no '{key}'")
    value = obj[key]
    # bool is an int in Python: keep counts and flags apart
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    need(ok, f"{where}.{key}: {value!r} is not {kind}")
    if isinstance(value, int) and not isinstance(value, bool):
        need(value >= 0, f"{where}.{key}: negative ({value})")
    return value


def check_class(c, where, with_bytes):
    for key in CLASS_KEYS:
        typed(c, key, int, where)
    need(1 <= c["class"] <= 60, f"{where}: class {c['class']} out of range")
    need(c["runs"] > 0 or c["nmalloc"] > 0, f"{where}: an unused class is listed")
    if with_bytes:
        need(typed(c, "bytes_in_use", int, where) == c["blocks_in_use"] * c["size"],
             f"{where}: bytes_in_use is not blocks_in_use * size")


def check_report(r, strict):
    need(r.get("schema") == "cmalloc-stats", "schema is not cmalloc-stats")
    need(r.get("schema_version") == 1, "schema_version is not 1")
    need(isinstance(r.get("version"), str) and r["version"].count(".") == 2, "bad version")
    typed(r, "pid", int, "report")
    arenas = typed(r, "arenas", list, "report")
    need(arenas, "no arenas")
    sums = {}
    requested = []
    for i, a in enumerate(arenas):
        where = f"arenas[{i}]"
        for key, kind in ARENA_KEYS.items():
            typed(a, key, kind, where)
        need(a["index"] == i, f"{where}: index {a['index']}")
        need(a["bytes_held"] == a["segments"] * SEGMENT, f"{where}: bytes_held != segments * 4 MiB")
        need(a["bytes_held_peak"] == a["segments_peak"] * SEGMENT, f"{where}: bytes_held_peak")
        need(a["segments_peak"] >= a["segments"], f"{where}: segments_peak < segments")
        need(a["bytes_out_peak"] >= a["bytes_out"], f"{where}: bytes_out_peak < bytes_out")
        need(a["bytes_dirty_pages"] <= a["bytes_free_pages"] <= a["bytes_held"],
             f"{where}: dirty <= free <= held does not hold")
        need(a["exact"] == (a["free_runs"] is not None), f"{where}: free_runs vs exact")
        if a["exact"]:
            need(a["bytes_in_use"] <= a["bytes_out"], f"{where}: in use > out")
        need(not a["traced"] or i == len(arenas) - 1, f"{where}: traced arena is not last")
        last = 0
        for c in a["classes"]:
            check_class(c, f"{where}.classes[class {c.get('class')}]", False)
            need(c["class"] > last, f"{where}: classes not in order")
            last = c["class"]
            s = sums.setdefault(c["class"], dict.fromkeys(CLASS_KEYS[2:], 0))
            for key in s:
                s[key] += c[key]
        need(a["nmalloc"] == sum(c["nmalloc"] for c in a["classes"]), f"{where}: nmalloc sum")
        need(a["nfree"] == sum(c["nfree"] for c in a["classes"]), f"{where}: nfree sum")
        need(a["bytes_in_use"] == sum(c["blocks_in_use"] * c["size"] for c in a["classes"]),
             f"{where}: bytes_in_use is not the sum of its classes")
        requested.append(a["bytes_requested"])
    classes = typed(r, "classes", list, "report")
    for c in classes:
        check_class(c, f"classes[class {c.get('class')}]", True)
        s = sums.pop(c["class"], None)
        need(s is not None, f"classes: class {c['class']} is in no arena")
        for key, value in s.items():
            need(c[key] == value, f"classes[class {c['class']}].{key} is not the arenas' sum")
    need(not sums, f"classes: missing {sorted(sums)}")
    huge = typed(r, "huge", dict, "report")
    for key in HUGE_KEYS:
        typed(huge, key, int, "huge")
    need(huge["count_peak"] >= huge["count"] and huge["bytes_peak"] >= huge["bytes"], "huge peaks")
    os_ = typed(r, "os", dict, "report")
    for key in OS_KEYS:
        typed(os_, key, int, "os")
    need(os_["bytes_held"] == os_["bytes_mapped"] - os_["bytes_unmapped"], "os: held != mapped - unmapped")
    need(os_["bytes_held_peak"] >= os_["bytes_held"], "os: held_peak < held")
    need(os_["bytes_returned"] == os_["bytes_purged"] + os_["bytes_unmapped"], "os: returned")
    t = typed(r, "totals", dict, "report")
    for key, kind in TOTAL_KEYS.items():
        typed(t, key, kind, "totals")
    need(t["arenas"] == sum(not a["traced"] for a in arenas), "totals.arenas")
    need(t["threads"] == sum(a["threads"] for a in arenas), "totals.threads")
    need(t["exact"] == all(a["exact"] for a in arenas), "totals.exact")
    if t["bytes_requested"] is None:
        need(all(x is None for x in requested), "bytes_requested: null and not null")
    else:
        need(t["bytes_requested"] == sum(requested), "totals.bytes_requested is not the sum")
    need(t["bytes_in_use"] == sum(a["bytes_in_use"] for a in arenas) + huge["bytes"],
         "totals.bytes_in_use is not arenas + huge")
    need(t["bytes_held"] == os_["bytes_held"] and t["bytes_held_peak"] == os_["bytes_held_peak"],
         "totals.bytes_held* differ from os")
    need(t["bytes_returned"] == os_["bytes_returned"], "totals.bytes_returned")
    if strict:
        held = sum(a["bytes_held"] for a in arenas) + huge["bytes"] + huge["bytes_cached"]
        need(os_["bytes_held"] >= held, f"os.bytes_held {os_['bytes_held']} < arenas + huge {held}")
        need(t["bytes_in_use"] <= os_["bytes_held"], "in use > held")


def main(argv):
    lo, hi, strict, paths = 1, None, False, []
    args = iter(argv)
    for arg in args:
        if arg == "--min":
            lo = int(next(args))
        elif arg == "--max":
            hi = int(next(args))
        elif arg == "--strict":
            strict = True
        elif arg == "--print":
            paths.extend(args)
        else:
            print(f"stats_json_check: unknown argument {arg}", file=sys.stderr)
            return 2
    reports = []
    for n, line in enumerate(sys.stdin, 1):
        if not line.startswith('{"schema":"cmalloc-stats"'):
            continue
        try:
            report = json.loads(line)
            check_report(report, strict)
        except (ValueError, Bad) as e:
            print(f"stats_json_check: report on line {n}: {e}", file=sys.stderr)
            return 1
        reports.append(report)
    if len(reports) < lo or (hi is not None and len(reports) > hi):
        print(f"stats_json_check: {len(reports)} reports, want {lo} to {hi}", file=sys.stderr)
        return 1
    for path in paths:
        value = reports[-1]
        for key in path.split("."):
            value = value[int(key)] if isinstance(value, list) else value[key]
        print(json.dumps(value))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
