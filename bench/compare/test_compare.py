#!/usr/bin/env python3
"""Tests of compare.sh's helpers (no root, no cluster, a second or so):

    python3 -m unittest discover -s bench/compare -p 'test_*.py'
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fo  # noqa: E402
import summarize  # noqa: E402


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def confchg(members, left=(), transitional=False):
    ev = {"type": "confchg", "group": "g", "members": [{"nodeid": n, "pid": 10 + n} for n in members],
          "joined": [], "left": [{"nodeid": n, "pid": 10 + n, "reason": r} for n, r in left]}
    if transitional:
        ev["transitional"] = True
    return json.dumps(ev)


class FailoverLogs(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.l1 = os.path.join(self.dir, "l1")
        self.l2 = os.path.join(self.dir, "l2")
        write(self.l1, "\n".join([
            "100.000000 " + confchg([1, 2, 3]),
            '100.500000 {"type":"deliver","group":"g","nodeid":2,"pid":12}',
            "101.250000 " + confchg([1], [(2, "nodedown"), (3, "nodedown")], transitional=True),
            "101.260000 " + confchg([1, 2]),
            "not json at all",
        ]) + "\n")
        write(self.l2, "\n".join([
            "100.000000 " + confchg([1, 2, 3]),
            "101.300000 " + confchg([1, 2], [(3, "nodedown")]),
        ]) + "\n")

    def test_delays_from_the_kill(self):
        out = subprocess.run([sys.executable, os.path.join(HERE, "fo.py"), "delays", "3", "101.0", self.l1, self.l2],
                             capture_output=True, text=True, check=True).stdout.split()
        self.assertEqual(out, ["n1_cpg_confchg_ms=250", "n2_cpg_confchg_ms=300", "spurious_nodedown_events=1"])

    def test_changes_before_the_kill_do_not_count(self):
        self.assertIsNone(fo.first_gone(self.l1, 3, 101.255))
        self.assertEqual(fo.first_gone(self.l2, 3, 101.255), 101.3)

    def test_ready_and_gone(self):
        self.assertEqual(fo.main(["fo.py", "ready", "3", self.l2]), 1)  # last change has 2 members
        write(self.l2, "100.0 " + confchg([1, 2, 3]) + "\n")
        self.assertEqual(fo.main(["fo.py", "ready", "3", self.l2]), 0)
        self.assertEqual(fo.main(["fo.py", "gone", "3", "100.0", self.l1, self.l2]), 1)
        self.assertEqual(fo.main(["fo.py", "gone", "3", "100.0", self.l1]), 0)
        self.assertEqual(fo.main(["fo.py", "gone", "3", "100.0", os.path.join(self.dir, "missing")]), 1)


class Summary(unittest.TestCase):
    def setUp(self):
        self.out = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.out)
        c = os.path.join(self.out, "corosync-crypto-off")
        write(os.path.join(c, "tunables.txt"), "TRANSPORT=udpu SCHED_RR=no\n")
        write(os.path.join(c, "bench", "tput1-n1.txt"),
              "joined group\nTPUT size=64 sent=1 delivered=1 secs=2 own_msgs_s=20000 own_MB_s=1.280 all_msgs_s=1 tryagain=0\n")
        for n, rate in ((1, 1000), (2, 2000), (3, 3000)):
            write(os.path.join(c, "bench", f"tput3-n{n}.txt"), f"TPUT size=64 own_msgs_s={rate} own_MB_s={rate * 64 / 1e6}\n")
        write(os.path.join(c, "bench", "lat-n1.txt"), "LAT size=64 n=10 p50_us=200.0 p90_us=1 p99_us=400.0 max_us=1 mean_us=1\n")
        write(os.path.join(c, "failover-default", "failover.txt"),
              "# runtime token=3650ms consensus=4380ms transport=udpu\n"
              "round=1 n1_totem_ms=7900 n1_cpg_confchg_ms=7900 n2_totem_ms=7900 n2_cpg_confchg_ms=8000 spurious_nodedown_events=0\n")
        t = os.path.join(self.out, "totem-crypto-on", "bench")
        tp = lambda rate, **kw: {"size": 64, "own_msgs_s": rate, "own_mb_s": rate * 64 / 1e6, "lost": 0,
                                 "duplicates": 0, "reordered": 0, "unknown": 0, **kw}
        write(os.path.join(t, "tput-1sender.json"), json.dumps({"throughput": [tp(10000)]}))
        for n in (1, 2, 3):
            write(os.path.join(t, f"tput-3sender-n{n}.json"), json.dumps({"throughput": [tp(1000, lost=n == 2 and 5 or 0)]}))
        write(os.path.join(t, "lat.json"), json.dumps({"latency": [{"size": 64, "p50_us": 800.0, "p99_us": 400.0}]}))
        write(os.path.join(self.out, "totem-crypto-on", "failover-default", "failover.txt"),
              "# x\nround=1 n1_cpg_confchg_ms=3950 n2_cpg_confchg_ms=NA spurious_nodedown_events=4\n")

    def render(self):
        lines = []
        summarize.section(self.out, "off", lines)
        return "\n".join(lines)

    def test_rows_and_ratios(self):
        md = self.render()
        self.assertIn("| 64, 1 sender | 20000 | 10000 | 0.50x |", md)
        self.assertIn("| 64, 3 senders | 6000 | 3000 | 0.50x |", md)
        self.assertIn("| 64, 1 sender | 1.28 | 0.64 | 0.50x |", md)
        self.assertIn("| 64, p50 | 200 | 800 | 4.00x |", md)
        self.assertIn("| 64, p99 | 400 | 400 | 1.00x |", md)

    def test_crypto_off_uses_totemd_crypto_on_run_and_says_so(self):
        md = self.render()
        self.assertIn("totemd cannot turn crypto off", md)

    def test_failover_median_and_missing(self):
        md = self.render()
        self.assertIn("| default timeouts | 7950 (min 7900, max 8000; 1 rounds × 2 survivors) "
                      "| 3950 (min 3950, max 3950; 1 rounds × 2 survivors, 1 never seen, 4 spurious nodedown events: flapping) | 0.50x |", md)

    def test_faults_are_reported(self):
        self.assertIn("3 senders 64 B: lost 5", self.render())

    def test_missing_side_gives_dashes(self):
        lines = []
        summarize.section(self.out, "on", lines)
        md = "\n".join(lines)
        self.assertIn("Corosync: not run.", md)
        self.assertIn("| 64, 1 sender | - | 10000 | - |", md)


if __name__ == "__main__":
    unittest.main()
