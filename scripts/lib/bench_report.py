#!/usr/bin/env python3
"""Statistics, tables and chart of cmalloc's benchmark suite (scripts/bench).

scripts/bench runs the workloads and writes the raw results into a
directory; this script turns them into the report.  Standard library only,
and matplotlib for the chart (skipped with a warning when it is missing).

  bench_report.py report DIR
      write DIR/medians.tsv, DIR/summary.md and DIR/chart.png
  bench_report.py progress DIR WORKLOAD
      print one line with the medians of WORKLOAD so far

The directory holds:
  raw.tsv        one line per run, with a header line naming the columns:
                 workload alloc rep wall_s rss_kib user_s sys_s status digest,
                 and optionally a page-fault count (minflt, faults or
                 page_faults); columns are found by name, so more may follow
  allocators.txt the allocators in run order, the reference (base) first
  workloads.tsv  workload, group, command: the order of the tables
  header.md      the title block of summary.md
  callgrind.tsv, retmem.tsv, problems.txt   optional sections

Statuses: ok, crash, timeout, diff (the output differs from the reference
run's), wrong (the workload's own check of its output failed).  Only ok
runs are timed: a run whose result is wrong never enters a median.
"""

import math
import os
import re
import sys

FAULT_COLUMNS = ("faults", "page_faults", "minflt")
BAD_STATUSES = ("crash", "timeout", "diff", "wrong")


# ---------------------------------------------------------------------------
# Reading


def read_tsv(path):
    """Rows of a TSV file with a header line, as dicts keyed by column name."""
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    if not lines:
        return []
    names = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        fields = line.split("\t")
        fields += [""] * (len(names) - len(fields))
        rows.append(dict(zip(names, fields)))
    return rows


def number(text):
    """A float from a field, or None when it is empty or not a number."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


class Run:
    __slots__ = ("workload", "alloc", "rep", "wall", "rss", "cpu", "faults", "status")

    def __init__(self, row, fault_column):
        self.workload = row["workload"]
        self.alloc = row["alloc"]
        self.rep = int(number(row.get("rep")) or 0)
        self.wall = number(row.get("wall_s"))
        self.rss = number(row.get("rss_kib"))
        user, system = number(row.get("user_s")), number(row.get("sys_s"))
        self.cpu = user + system if user is not None and system is not None else None
        self.faults = number(row.get(fault_column)) if fault_column else None
        self.status = row.get("status", "ok") or "ok"


def read_runs(path):
    rows = read_tsv(path)
    fault_column = None
    if rows:
        fault_column = next((c for c in FAULT_COLUMNS if c in rows[0]), None)
    return [Run(r, fault_column) for r in rows], fault_column is not None


# ---------------------------------------------------------------------------
# Statistics


def median(values):
    v = sorted(values)
    n = len(v)
    if n == 0:
        return None
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def geomean(values):
    v = [x for x in values if x is not None and x > 0]
    if not v:
        return None
    return math.exp(sum(math.log(x) for x in v) / len(v))


class Stat:
    """Median, minimum and maximum of one measure over the timed runs, and
    the values by repetition (for paired ratios)."""

    def __init__(self, by_rep):
        self.by_rep = {r: v for r, v in by_rep.items() if v is not None}
        values = list(self.by_rep.values())
        self.med = median(values)
        self.lo = min(values) if values else None
        self.hi = max(values) if values else None

    def ok(self):
        return self.med is not None and self.med > 0


class Cell:
    """One workload on one allocator."""

    def __init__(self, runs):
        timed = [r for r in runs if r.status == "ok"]
        self.n_runs = len(runs)
        self.n_ok = len(timed)
        self.flags = {}
        for r in runs:
            if r.status != "ok":
                self.flags[r.status] = self.flags.get(r.status, 0) + 1
        self.wall = Stat({r.rep: r.wall for r in timed})
        self.rss = Stat({r.rep: r.rss for r in timed})
        self.cpu = Stat({r.rep: r.cpu for r in timed})
        self.faults = Stat({r.rep: r.faults for r in timed})

    def flag_text(self):
        order = list(BAD_STATUSES) + sorted(set(self.flags) - set(BAD_STATUSES))
        return ",".join("%s:%d" % (s, self.flags[s]) for s in order if s in self.flags) or "-"


class Ratio:
    """An allocator's median over the base's, with its spread.

    The runs are interleaved, so repetition i of both was measured at about
    the same time: the spread is the range of the ratios of repetitions run
    together.  With no repetitions in common it is the widest range the two
    spreads allow (min over max, max over min).  A ratio whose spread
    contains 1.0 is noise: the two are not told apart by this run."""

    def __init__(self, a, b):
        self.value = self.lo = self.hi = None
        if not (a.ok() and b.ok()):
            return
        self.value = a.med / b.med
        common = sorted(set(a.by_rep) & set(b.by_rep))
        pairs = [a.by_rep[r] / b.by_rep[r] for r in common if b.by_rep[r] > 0]
        if pairs:
            self.lo, self.hi = min(pairs), max(pairs)
        else:
            self.lo, self.hi = a.lo / b.hi, a.hi / b.lo

    def ok(self):
        return self.value is not None

    def noise(self):
        return self.ok() and self.lo <= 1.0 <= self.hi

    def text(self):
        if not self.ok():
            return "n/a"
        s = "%.2f× (%.2f–%.2f)" % (self.value, self.lo, self.hi)
        return "~" + s if self.noise() else s


class Results:
    def __init__(self, directory):
        self.dir = directory
        self.runs, self.has_faults = read_runs(os.path.join(directory, "raw.tsv"))
        self.allocs = self.read_allocators()
        self.base = self.allocs[0]
        self.workloads, self.groups = self.read_workloads()
        grouped = {}
        for r in self.runs:
            grouped.setdefault((r.workload, r.alloc), []).append(r)
        self.cells = {k: Cell(v) for k, v in grouped.items()}
        # A fault count of 0 in every run means the column was not measured.
        self.has_faults = self.has_faults and any(r.faults for r in self.runs)

    def read_allocators(self):
        path = os.path.join(self.dir, "allocators.txt")
        allocs = []
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                allocs = f.read().split()
        for r in self.runs:
            if r.alloc not in allocs:
                allocs.append(r.alloc)
        if not allocs:
            raise SystemExit("bench_report: no allocator in %s" % self.dir)
        return allocs

    def read_workloads(self):
        order, groups = [], {}
        path = os.path.join(self.dir, "workloads.tsv")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    fields = line.rstrip("\n").split("\t")
                    if fields[0] and fields[0] not in groups:
                        order.append(fields[0])
                        groups[fields[0]] = fields[1] if len(fields) > 1 else ""
        for r in self.runs:
            if r.workload not in groups:
                order.append(r.workload)
                groups[r.workload] = ""
        seen = {r.workload for r in self.runs}
        return [w for w in order if w in seen], groups

    def cell(self, workload, alloc):
        return self.cells.get((workload, alloc))

    def ratio(self, workload, alloc, measure):
        a, b = self.cell(workload, alloc), self.cell(workload, self.base)
        if a is None or b is None:
            return Ratio(Stat({}), Stat({}))
        return Ratio(getattr(a, measure), getattr(b, measure))

    def geomeans(self, alloc, measure):
        """Geometric mean of alloc's ratios over the base, and the count.
        Only the workloads where every allocator has a ratio count, so that
        the means of the allocators are over the same workloads."""
        common = [w for w in self.workloads
                  if all(self.ratio(w, a, measure).ok() for a in self.allocs[1:])]
        values = [self.ratio(w, alloc, measure).value for w in common]
        return geomean(values), len(values)


# ---------------------------------------------------------------------------
# Markdown


def table(header, rows, align=None):
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def fmt_time(stat):
    if not stat.ok():
        return "n/a"
    return "%.3f s (%.3f–%.3f)" % (stat.med, stat.lo, stat.hi)


def fmt_mib(stat):
    if not stat.ok():
        return "n/a"
    return "%.1f MiB (%.1f–%.1f)" % (stat.med / 1024, stat.lo / 1024, stat.hi / 1024)


def fmt_count(stat):
    if not stat.ok():
        return "n/a"
    return "%.0f (%.0f–%.0f)" % (stat.med, stat.lo, stat.hi)


def fmt_gm(value):
    return "%.3f×" % value if value is not None else "n/a"


def flagged(text, cell):
    if cell is None:
        return "n/a"
    f = cell.flag_text()
    return text if f == "-" else "%s **%s**" % (text, f)


def ratio_table(res, measure, base_fmt):
    others = res.allocs[1:]
    header = ["workload", res.base] + others
    rows = []
    for w in res.workloads:
        bc = res.cell(w, res.base)
        row = [w, flagged(base_fmt(getattr(bc, measure)) if bc else "n/a", bc)]
        for a in others:
            row.append(flagged(res.ratio(w, a, measure).text(), res.cell(w, a)))
        rows.append(row)
    gm = ["**geometric mean**", ""]
    for a in others:
        g, n = res.geomeans(a, measure)
        gm.append("**%s** (%d)" % (fmt_gm(g), n) if g is not None else "n/a")
    rows.append(gm)
    return table(header, rows)


def scaling_rows(res, ncpu):
    """Rows of the scaling table: families NAME-Nt with a NAME-1t run."""
    families = []
    for w in res.workloads:
        m = re.fullmatch(r"(.+)-(\d+)t", w)
        # threads-Nt runs a fixed number of threads in all, N at a time: its
        # work does not grow with N, so it has no place here.
        if m and int(m.group(2)) > 1 and m.group(1) != "threads":
            families.append((m.group(1), int(m.group(2))))
    rows = []
    for fam, th in families:
        w1, wt = "%s-1t" % fam, "%s-%dt" % (fam, th)
        row, any_value = ["%s, %d threads" % (fam, th)], False
        par = min(th, ncpu)
        for a in res.allocs:
            c1, ct = res.cell(w1, a), res.cell(wt, a)
            if c1 and ct and c1.wall.ok() and ct.wall.ok():
                text = "%.2f" % (th * c1.wall.med / ct.wall.med)
                if c1.cpu.ok() and ct.cpu.ok():
                    text += " (%.2f)" % (par * th * c1.cpu.med / ct.cpu.med)
                row.append(text)
                any_value = True
            else:
                row.append("n/a")
        if any_value:
            rows.append(row)
    return rows


def trailing(res, subject="cmalloc"):
    """Where SUBJECT loses: slower than the base by more than 5%, peak RSS
    above 1.25× the base's, or more than 5% behind the best other
    allocator, ratios that are noise left out.  Rows of text."""
    if subject not in res.allocs or subject == res.base:
        return []
    peers = [a for a in res.allocs if a != subject]
    out = []
    for w in res.workloads:
        notes = []
        for measure, label, limit in (("wall", "time", 1.05), ("rss", "peak RSS", 1.25)):
            own = res.ratio(w, subject, measure)
            if not own.ok():
                continue
            best_a, best_v = None, None
            for p in peers:
                v = 1.0 if p == res.base else res.ratio(w, p, measure).value
                if v is not None and (best_v is None or v < best_v):
                    best_a, best_v = p, v
            behind = best_v is not None and own.value > best_v * 1.05
            if own.noise() and not behind:
                continue
            if own.value > limit or behind:
                notes.append("%s %s vs %s; best %s %.2f×" % (
                    label, own.text(), res.base, best_a, best_v))
        if notes:
            out.append([w] + ["; ".join(notes)])
    return out


def summary(res):
    lines = []
    add = lines.append
    header_path = os.path.join(res.dir, "header.md")
    header = ""
    if os.path.exists(header_path):
        with open(header_path, encoding="utf-8") as f:
            header = f.read().rstrip("\n")
    add(header or "# cmalloc benchmark results")
    m = re.search(r"^- Machine: .*?, (\d+) CPUs,", header, re.M)
    ncpu = int(m.group(1)) if m else (os.cpu_count() or 1)
    base = res.base
    add("")
    add("## Time against %s" % base)
    add("")
    add("Wall time. The %s column gives its median and, in parentheses, the range "
        "(min–max) of its runs. Every other cell is the allocator's median over %s's "
        "(below 1 is better), and in parentheses the range of the ratios of the "
        "repetitions that ran together (the runs are interleaved). A ratio marked **~** "
        "is noise: its range contains 1.0. Flags: **crash** (non-zero exit or signal), "
        "**timeout**, **diff** (output differs from the reference run), **wrong** (the "
        "workload's own check of its output failed), with the number of runs; such runs "
        "are left out of the medians. The last row is the geometric mean over the "
        "workloads where every allocator has a ratio (their number in parentheses)." % (base, base))
    add("")
    add(ratio_table(res, "wall", fmt_time))
    add("")
    add("## CPU time against %s" % base)
    add("")
    add("User plus system CPU time of the process, laid out as the time table. On a "
        "machine shared with other work, wall time also counts the time a program "
        "waited for a CPU; CPU time does not, so it is the steadier figure there (the "
        "load average is in the header), though it misses time lost to waiting on "
        "locks and counts time spent spinning on them.")
    add("")
    add(ratio_table(res, "cpu", fmt_time))
    add("")
    add("## Peak RSS against %s" % base)
    add("")
    add("Peak resident set size (maximum RSS of the process, from the kernel), "
        "laid out as the time table.")
    add("")
    add(ratio_table(res, "rss", fmt_mib))
    if res.has_faults:
        add("")
        add("## Page faults against %s" % base)
        add("")
        add("Minor page faults of the process (each a page the kernel had to map, "
            "often a page given back and touched again), laid out as the time table.")
        add("")
        add(ratio_table(res, "faults", fmt_count))
    add("")
    add("## Geometric means")
    add("")
    rows = []
    measures = [("wall", "time"), ("cpu", "CPU time"), ("rss", "peak RSS")]
    if res.has_faults:
        measures.append(("faults", "page faults"))
    for a in res.allocs[1:]:
        row = [a]
        for measure, _ in measures:
            g, n = res.geomeans(a, measure)
            row.append("%s (%d)" % (fmt_gm(g), n) if g is not None else "n/a")
        rows.append(row)
    add(table(["allocator"] + ["%s / %s" % (label, base) for _, label in measures], rows))
    trail = trailing(res)
    if trail:
        add("")
        add("## Where cmalloc trails")
        add("")
        add("Workloads where cmalloc is more than 5%% slower than %s, has a peak RSS "
            "above 1.25× %s's, or is more than 5%% behind the best of the others "
            "(noise left out unless it is behind the best)." % (base, base))
        add("")
        add(table(["workload", "cmalloc"], trail, ["---", "---"]))
    add("")
    add("## Scaling")
    add("")
    add("Throughput with T threads over throughput with 1 thread. Every thread does "
        "the same work, so this is T × time(1t) / time(Tt); the thread-churn workload, "
        "whose total work is fixed, is left out. The machine has %d CPUs: the ideal "
        "is min(T, %d), and more threads are oversubscribed. In parentheses, the same "
        "from CPU time instead of wall time, min(T, CPUs) × T × cpu(1t) / cpu(Tt): "
        "what the scaling would be on an otherwise idle machine if the threads' CPU "
        "time stayed as measured. It is the figure to read when other work shares "
        "the machine (see the load average above)." % (ncpu, ncpu))
    add("")
    rows = scaling_rows(res, ncpu)
    if rows:
        add(table(["workload"] + res.allocs, rows))
    else:
        add("(no threaded workload with a 1-thread run in this run)")
    cg = os.path.join(res.dir, "callgrind.tsv")
    if os.path.exists(cg) and os.path.getsize(cg) > 0:
        add("")
        add(callgrind_section(res, read_tsv(cg)))
    rm = os.path.join(res.dir, "retmem.tsv")
    if os.path.exists(rm) and os.path.getsize(rm) > 0:
        add("")
        add(retmem_section(read_tsv(rm)))
    mt = os.path.join(res.dir, "metrics.tsv")
    if os.path.exists(mt):
        section = metrics_section(res, read_tsv(mt))
        if section:
            add("")
            add(section)
    add("")
    add("## Problems")
    add("")
    problems = []
    pp = os.path.join(res.dir, "problems.txt")
    if os.path.exists(pp):
        with open(pp, encoding="utf-8") as f:
            problems = [line.rstrip("\n") for line in f if line.strip()]
    if problems:
        add("Runs that crashed, timed out or printed a wrong or different result "
            "(their output is in logs/):")
        add("")
        lines.extend("- " + p for p in problems)
    else:
        add("None: every run finished and printed the reference output.")
    return "\n".join(lines) + "\n"


def callgrind_section(res, rows):
    out = ["## Fast path: instructions per malloc+free pair", ""]
    out.append("Counted with `valgrind --tool=callgrind` (deterministic): the instructions "
               "of `bench_fastpath SIZE 2N MODE` minus those of `bench_fastpath SIZE N "
               "MODE`, divided by N, so start-up and exit cancel out. *pair*: malloc then "
               "free of one block, N times; *batch*: 32 mallocs, then 32 frees, N/32 "
               "times, which goes deeper into the thread cache.")
    out.append("")
    out.append("These counts are not the allocator's alone: both the pair and the batch "
               "count include the benchmark harness, that is the loop and the two PLT "
               "jumps (to malloc and to free): about 10 instructions per pair in *pair* "
               "mode and about 14 in *batch* mode, the same for every allocator. The "
               "allocator's own cost is the count minus these.")
    out.append("")
    keys, values = [], {}
    for r in rows:
        k = "%s B, %s" % (r.get("size", "?"), r.get("mode", "?"))
        if k not in keys:
            keys.append(k)
        values[k, r.get("alloc")] = r.get("per_pair", "n/a") or "n/a"
    allocs = [a for a in res.allocs if any((k, a) in values for k in keys)]
    allocs += sorted({a for _, a in values} - set(allocs))
    out.append(table(["block size"] + allocs,
                     [[k] + [values.get((k, a), "n/a") for a in allocs] for k in keys]))
    return "\n".join(out)


def retmem_section(rows):
    mib = rows[0].get("mib", "?") if rows else "?"
    out = ["## Returning memory", ""]
    out.append("`bench_retmem %s`: %s MiB of 16–256 B blocks are allocated, then all "
               "freed; RSS above the program's starting RSS, in MiB: with every block "
               "live, just after the last free, the lowest in the second after it (the "
               "program sleeps and makes no allocator calls), and after "
               "`malloc_trim(0)`. *ms to 10%%*: when RSS first fell below 10%% of %s MiB "
               "(0: at once; never: not within the second)." % (mib, mib, mib))
    out.append("")
    body = []
    for r in rows:
        if r.get("status", "ok") != "ok":
            body.append([r.get("alloc", "?")] + ["**%s**" % r.get("status")] + [""] * 4)
        else:
            body.append([r.get(k, "") for k in
                         ("alloc", "live", "after_free", "low_1s", "ms_to_10pct", "after_trim")])
    out.append(table(["allocator", "live", "after free", "lowest in 1 s", "ms to 10%",
                      "after malloc_trim(0)"], body))
    return "\n".join(out)


def metrics_section(res, rows):
    """What workloads measured themselves ("metric k=v" lines on stderr:
    the idle workload's RSS, the latency workload's percentiles), the median
    over the repetitions, or "" when there are none."""
    values, keys = {}, []
    for r in rows:
        v = number(r.get("value"))
        if v is None:
            continue
        k = (r.get("workload", "?"), r.get("metric", "?"))
        if k not in keys:
            keys.append(k)
        values.setdefault((k, r.get("alloc")), []).append(v)
    if not keys:
        return ""
    allocs = [a for a in res.allocs if any((k, a) in values for k in keys)]
    out = ["## What the workloads measured themselves", ""]
    out.append("Medians over the repetitions of the figures the memory workloads print "
               "(idle: RSS in MiB while the process makes no call; latency: ns per call).")
    out.append("")

    def cell(k, a):
        vs = values.get((k, a))
        return "%g" % median(vs) if vs else "n/a"
    out.append(table(["workload", "metric"] + allocs,
                     [[k[0], k[1]] + [cell(k, a) for a in allocs] for k in keys]))
    return "\n".join(out)


def medians_tsv(res):
    cols = ["workload", "alloc", "n_ok", "n_runs", "med_wall", "med_rss_kib", "flags",
            "med_cpu", "min_wall", "max_wall", "min_rss_kib", "max_rss_kib", "med_faults"]
    out = ["\t".join(cols)]

    def f(v, fmt="%.4f"):
        return fmt % v if v is not None else "NaN"

    for w in res.workloads:
        for a in res.allocs:
            c = res.cell(w, a)
            if c is None:
                continue
            out.append("\t".join([
                w, a, str(c.n_ok), str(c.n_runs), f(c.wall.med), f(c.rss.med, "%.0f"),
                c.flag_text(), f(c.cpu.med), f(c.wall.lo), f(c.wall.hi),
                f(c.rss.lo, "%.0f"), f(c.rss.hi, "%.0f"), f(c.faults.med, "%.0f")]))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Chart


def chart(res, path):
    """Two panels, time and peak RSS over the base, one bar per other
    allocator and workload (log scale), with the spread as error bars and
    the geometric means last.  Returns an error message or None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (package python3-matplotlib): no chart"
    others = res.allocs[1:]
    if not others or not res.workloads:
        return None
    labels = res.workloads + ["geomean"]
    width = max(10.0, min(48.0, 0.22 * len(labels) * (len(others) + 1) + 3))
    fig, axes = plt.subplots(2, 1, figsize=(width, 9), constrained_layout=True)
    bar = 0.8 / len(others)
    for ax, (measure, label) in zip(axes, (("wall", "time"), ("rss", "peak RSS"))):
        shown = [1.0]
        for i, a in enumerate(others):
            vals, lo, hi = [], [], []
            for w in res.workloads:
                r = res.ratio(w, a, measure)
                vals.append(r.value if r.ok() else float("nan"))
                lo.append(r.value - r.lo if r.ok() else 0.0)
                hi.append(r.hi - r.value if r.ok() else 0.0)
            g, _ = res.geomeans(a, measure)
            vals.append(g if g is not None else float("nan"))
            lo.append(0.0)
            hi.append(0.0)
            xs = [k + (i - (len(others) - 1) / 2) * bar for k in range(len(labels))]
            # Bars grow from 1.0, up when worse than the base, down when better.
            ax.bar(xs, [v - 1.0 for v in vals], bar, bottom=1.0, label=a,
                   yerr=[lo, hi], error_kw={"elinewidth": 0.6, "capsize": 1.5})
            shown += [v + h for v, h in zip(vals, hi) if not math.isnan(v)]
            shown += [v - d for v, d in zip(vals, lo) if not math.isnan(v)]
        ax.set_yscale("log", base=2)
        low, high = min(shown) / 1.08, max(shown) * 1.08
        ax.set_ylim(low, high)
        ticks = [t for t in (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1, 1.125, 1.25, 1.375,
                             1.5, 1.75, 2, 2.5, 3, 4, 6, 8, 16) if low <= t <= high]
        ax.set_yticks(ticks)
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.axhline(1.0, color="black", linewidth=1.2)
        ax.set_ylabel("%s / %s %s" % (label, res.base, label))
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=50, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.grid(axis="y", alpha=0.4)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.suptitle("cmalloc benchmark suite: median against %s (below 1 is better; "
                 "bars: range of the interleaved repetitions)" % res.base)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


# ---------------------------------------------------------------------------
# Commands


def progress_line(res, workload):
    base = res.cell(workload, res.base)
    if base and base.wall.ok():
        parts = ["%s %.2fs %.0fM" % (res.base, base.wall.med, (base.rss.med or 0) / 1024)]
    else:
        parts = ["%s n/a" % res.base]
    for a in res.allocs[1:]:
        t, m = res.ratio(workload, a, "wall"), res.ratio(workload, a, "rss")
        if t.ok():
            parts.append("%s %.2f× %s" % (a, t.value, "%.2f×" % m.value if m.ok() else "n/a"))
        else:
            parts.append("%s n/a" % a)
    return " | ".join(parts)


def write_report(directory):
    res = Results(directory)
    with open(os.path.join(directory, "medians.tsv"), "w", encoding="utf-8") as f:
        f.write(medians_tsv(res))
    with open(os.path.join(directory, "summary.md"), "w", encoding="utf-8") as f:
        f.write(summary(res))
    return chart(res, os.path.join(directory, "chart.png"))


def main(argv):
    if len(argv) >= 3 and argv[1] == "report":
        if not os.path.exists(os.path.join(argv[2], "raw.tsv")):
            print("bench_report: no raw.tsv in %s" % argv[2], file=sys.stderr)
            return 1
        problem = write_report(argv[2])
        if problem:
            print("bench_report: %s" % problem, file=sys.stderr)
        return 0
    if len(argv) >= 4 and argv[1] == "progress":
        print(progress_line(Results(argv[2]), argv[3]))
        return 0
    print("usage: bench_report.py report DIR | progress DIR WORKLOAD", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
