#!/usr/bin/env python3
"""ctest bench.compare: bench/compare.py on committed result files, one pair
with the same scenarios and one with different scenario sets."""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def run(*args):
    r = subprocess.run([sys.executable, os.path.join(HERE, "compare.py")] + list(args),
                       capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def row(out, metric):
    m = re.search(r"^%s +(\S+) +(\S+) +(\S+)$" % re.escape(metric), out, re.M)
    assert m, "no row for %s in:\n%s" % (metric, out)
    return m.groups()


a = os.path.join(RESULTS, "2026-11-28T115306Z.json")
b = os.path.join(RESULTS, "2026-12-06T200839Z.json")
c = os.path.join(RESULTS, "2026-12-06T222224Z.json")

rc, out = run(a, b)
assert rc == 0, out
# fast.throughput 16,891.2 -> 24,655.7 and raw 121,172 -> 154,956.2
assert row(out, "fast.throughput") == ("16,891.2", "24,655.7", "1.460"), out
assert row(out, "raw.throughput")[2] == "1.279", out
assert row(out, "ratios.fast_raw") == ("0.139", "0.159", "1.144"), out
assert "note: different CPUs" in out, out
assert "inflight" not in out and ".prefix" not in out, out  # settings are not metrics

rc, out = run(b, c, "throughput")
assert rc == 0, out
assert "only in A: consume, eos, half, replay, rest" in out, out
assert "only in B: million" in out, out
assert row(out, "voted.throughput")[2] == "0.558", out
assert "note: different CPUs" not in out, out
assert len(re.findall(r"\.throughput ", out)) == 3, out  # fast, raw, voted

rc, out = run(os.path.join(RESULTS, "2026-11-28T053412Z.json"),
              os.path.join(RESULTS, "2026-11-28T083012Z.json"))
assert rc == 1 and "no metric in common" in out, out
print("compare.py: ok")
