"""Unit tests of scripts/lib/bench_report.py, the benchmark report.

Run by ctest (bench_report, label unit) as
    python3 -m unittest discover -s tests/unit -p 'test_bench_report.py'
with CMALLOC_SCRIPTS_LIB pointing to scripts/lib."""

import math
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.environ.get("CMALLOC_SCRIPTS_LIB",
                                  os.path.join(os.path.dirname(__file__), "..", "..",
                                               "scripts", "lib")))
import bench_report as br  # noqa: E402

HEADER = "workload\talloc\trep\twall_s\trss_kib\tuser_s\tsys_s\tstatus\tdigest"


def write_dir(rows, allocs=("glibc", "tcmalloc", "cmalloc"), faults=False, extra=None):
    """A results directory with raw.tsv made of (workload, alloc, rep, wall,
    rss[, status[, faults]]) tuples."""
    d = tempfile.mkdtemp(prefix="bench-report-test.")
    header = HEADER + ("\tminflt" if faults else "")
    lines = [header]
    workloads = []
    for r in rows:
        w, a, rep, wall, rss = r[:5]
        status = r[5] if len(r) > 5 else "ok"
        line = [w, a, str(rep), "%.4f" % wall, str(rss), "%.3f" % (wall * 0.9), "0.010",
                status, "abc"]
        if faults:
            line.append(str(r[6] if len(r) > 6 else 1000))
        lines.append("\t".join(line))
        if w not in workloads:
            workloads.append(w)
    with open(os.path.join(d, "raw.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(d, "allocators.txt"), "w") as f:
        f.write(" ".join(allocs) + "\n")
    with open(os.path.join(d, "workloads.tsv"), "w") as f:
        for w in workloads:
            f.write("%s\tthreads\tcmd %s\n" % (w, w))
    with open(os.path.join(d, "header.md"), "w") as f:
        f.write("# cmalloc benchmark results\n\n- Machine: Test CPU, 2 CPUs, 4 GiB; Linux\n")
    for name, text in (extra or {}).items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return d


class StatisticsTest(unittest.TestCase):
    def test_median(self):
        self.assertEqual(br.median([3, 1, 2]), 2)
        self.assertEqual(br.median([4, 1, 3, 2]), 2.5)
        self.assertIsNone(br.median([]))

    def test_geomean(self):
        self.assertAlmostEqual(br.geomean([0.5, 2.0]), 1.0)
        self.assertAlmostEqual(br.geomean([1.0, 4.0, None]), 2.0)
        self.assertIsNone(br.geomean([]))

    def test_paired_ratio_and_noise(self):
        a = br.Stat({1: 0.9, 2: 1.0, 3: 1.2})
        b = br.Stat({1: 1.0, 2: 1.0, 3: 1.0})
        r = br.Ratio(a, b)
        self.assertAlmostEqual(r.value, 1.0)
        self.assertAlmostEqual(r.lo, 0.9)
        self.assertAlmostEqual(r.hi, 1.2)
        self.assertTrue(r.noise())
        self.assertTrue(r.text().startswith("~"))
        clear = br.Ratio(br.Stat({1: 0.5, 2: 0.6}), br.Stat({1: 1.0, 2: 1.0}))
        self.assertFalse(clear.noise())
        self.assertEqual(clear.text(), "0.55× (0.50–0.60)")

    def test_unpaired_ratio_uses_the_widest_range(self):
        r = br.Ratio(br.Stat({1: 2.0, 2: 4.0}), br.Stat({3: 1.0, 4: 2.0}))
        self.assertAlmostEqual(r.value, 2.0)
        self.assertAlmostEqual(r.lo, 1.0)
        self.assertAlmostEqual(r.hi, 4.0)

    def test_missing_side_is_not_a_ratio(self):
        r = br.Ratio(br.Stat({}), br.Stat({1: 1.0}))
        self.assertFalse(r.ok())
        self.assertFalse(r.noise())
        self.assertEqual(r.text(), "n/a")


class ResultsTest(unittest.TestCase):
    def setUp(self):
        rows = []
        for rep in (1, 2, 3):
            rows += [
                ("larson-1t", "glibc", rep, 1.0, 10000, "ok", 500),
                ("larson-1t", "tcmalloc", rep, 0.5 + 0.01 * rep, 12000, "ok", 600),
                ("larson-1t", "cmalloc", rep, 0.8, 20000, "ok", 900),
                ("larson-8t", "glibc", rep, 4.0, 40000, "ok", 500),
                ("larson-8t", "tcmalloc", rep, 2.0, 40000, "ok", 500),
                ("larson-8t", "cmalloc", rep, 3.9 + 0.1 * rep, 41000, "ok", 500),
            ]
        # One wrong result and one crash: never timed.
        rows.append(("larson-1t", "cmalloc", 4, 0.01, 1, "wrong", 1))
        rows.append(("larson-8t", "tcmalloc", 4, 0.01, 1, "crash", 1))
        self.dir = write_dir(rows, faults=True, extra={
            "callgrind.tsv": "alloc\tsize\tmode\tn\tir_n\tir_2n\tper_pair\n"
                             "glibc\t64\tpair\t10\t1\t2\t139.0\ncmalloc\t64\tpair\t10\t1\t2\t55.0\n",
            "problems.txt": "larson-1t on cmalloc, run 4: wrong\n"})

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_bad_runs_are_flagged_and_not_timed(self):
        res = br.Results(self.dir)
        c = res.cell("larson-1t", "cmalloc")
        self.assertEqual((c.n_ok, c.n_runs), (3, 4))
        self.assertEqual(c.flag_text(), "wrong:1")
        self.assertAlmostEqual(c.wall.med, 0.8)
        self.assertEqual(res.cell("larson-8t", "tcmalloc").flag_text(), "crash:1")

    def test_geomean_of_ratios(self):
        res = br.Results(self.dir)
        g, n = res.geomeans("tcmalloc", "wall")
        self.assertEqual(n, 2)
        self.assertAlmostEqual(g, math.sqrt(0.52 * 0.5), places=6)
        g, _ = res.geomeans("cmalloc", "rss")
        self.assertAlmostEqual(g, math.sqrt(2.0 * 41000 / 40000), places=6)

    def test_summary(self):
        br.write_report(self.dir)
        with open(os.path.join(self.dir, "summary.md")) as f:
            text = f.read()
        self.assertIn("## Time against glibc", text)
        self.assertIn("## Peak RSS against glibc", text)
        # CPU time is 0.9 × wall + 0.01 s in these runs.
        self.assertIn("## CPU time against glibc", text)
        self.assertIn("| larson-8t | 3.610 s (3.610–3.610) |", text)
        self.assertIn("## Page faults against glibc", text)
        self.assertIn("| larson-1t | 1.000 s (1.000–1.000) | 0.52× (0.51–0.53) | 0.80× (0.80–0.80)"
                      " **wrong:1** |", text)
        # cmalloc at 8 threads: 4.0..4.2 s against 4.0: noise.
        self.assertIn("~1.02× (1.00–1.05)", text)
        self.assertIn("**geometric mean**", text)
        # Behind tcmalloc by far at 8 threads, though not slower than glibc
        # beyond noise; and twice glibc's RSS at 1 thread.
        self.assertIn("## Where cmalloc trails", text)
        self.assertRegex(text, r"\| larson-8t \| time ~1\.02× .* best tcmalloc 0\.50× \|")
        self.assertRegex(text, r"\| larson-1t \| time 0\.80× .*; peak RSS 2\.00× .* best glibc 1\.00× \|")
        # Scaling: 8 × 1.0 / 4.0 for glibc.
        self.assertIn("| larson, 8 threads | 2.00", text)
        self.assertIn("## Fast path", text)
        self.assertIn("| 64 B, pair | 139.0 | 55.0 |", text)
        self.assertIn("- larson-1t on cmalloc, run 4: wrong", text)
        with open(os.path.join(self.dir, "medians.tsv")) as f:
            med = f.read().splitlines()
        self.assertEqual(med[0].split("\t")[:4], ["workload", "alloc", "n_ok", "n_runs"])
        self.assertIn("larson-1t\tcmalloc\t3\t4\t0.8000\t20000\twrong:1", "\n".join(med))

    def test_chart(self):
        if not br_has_matplotlib():
            self.skipTest("matplotlib is not installed")
        self.assertIsNone(br.write_report(self.dir))
        with open(os.path.join(self.dir, "chart.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_progress_line(self):
        line = br.progress_line(br.Results(self.dir), "larson-8t")
        self.assertEqual(line, "glibc 4.00s 39M | tcmalloc 0.50× 1.00× | cmalloc 1.02× 1.02×")

    def test_main_rejects_a_directory_without_results(self):
        empty = tempfile.mkdtemp(prefix="bench-report-test.")
        try:
            self.assertEqual(br.main(["bench_report.py", "report", empty]), 1)
        finally:
            shutil.rmtree(empty)
        self.assertEqual(br.main(["bench_report.py"]), 2)


class GeomeanTest(unittest.TestCase):
    def test_only_workloads_every_allocator_ran(self):
        # cmalloc crashed on y: y leaves every allocator's mean.
        d = write_dir([("x", "glibc", 1, 1.0, 100), ("x", "tcmalloc", 1, 0.5, 100),
                       ("x", "cmalloc", 1, 2.0, 100),
                       ("y", "glibc", 1, 1.0, 100), ("y", "tcmalloc", 1, 0.1, 100),
                       ("y", "cmalloc", 1, 9.0, 100, "crash")])
        try:
            res = br.Results(d)
            self.assertEqual(res.geomeans("tcmalloc", "wall"), (0.5, 1))
            self.assertEqual(res.geomeans("cmalloc", "wall"), (2.0, 1))
        finally:
            shutil.rmtree(d)


class WithoutFaultsTest(unittest.TestCase):
    def test_no_fault_section_without_the_column(self):
        d = write_dir([("x", "glibc", 1, 1.0, 100), ("x", "cmalloc", 1, 1.0, 100)],
                      allocs=("glibc", "cmalloc"))
        try:
            text = br.summary(br.Results(d))
            self.assertNotIn("Page faults", text)
            self.assertIn("## Scaling", text)
            self.assertIn("(no threaded workload with a 1-thread run in this run)", text)
            self.assertIn("None: every run finished", text)
        finally:
            shutil.rmtree(d)


def br_has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    unittest.main()


class MetricsTest(unittest.TestCase):
    def test_medians_of_the_workloads_own_figures(self):
        rows = [("idle", a, rep, 3.0, 5000) for rep in (1, 2, 3) for a in ("glibc", "cmalloc")]
        metrics = "workload\talloc\trep\tmetric\tvalue\n" + "".join(
            "idle\t%s\t%d\trss_mib_2s\t%s\n" % (a, rep, v)
            for a, vals in (("glibc", (1.9, 2.1, 2.0)), ("cmalloc", (3.0, 9.0, 3.2)))
            for rep, v in zip((1, 2, 3), vals))
        d = write_dir(rows, allocs=("glibc", "cmalloc"), extra={"metrics.tsv": metrics})
        try:
            br.write_report(d)
            with open(os.path.join(d, "summary.md")) as f:
                text = f.read()
            self.assertIn("## What the workloads measured themselves", text)
            self.assertIn("| idle | rss_mib_2s | 2 | 3.2 |", text)
        finally:
            shutil.rmtree(d)

    def test_no_section_without_metrics(self):
        res = br.Results(write_dir([("idle", "glibc", 1, 1.0, 100)], allocs=("glibc",)))
        try:
            self.assertEqual(br.metrics_section(res, []), "")
        finally:
            shutil.rmtree(res.dir)
