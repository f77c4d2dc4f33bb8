#!/usr/bin/env python3
"""Compare two `make bench` result files: bench/compare.py A.json B.json [FILTER]

Prints, for every numeric metric the two files have in common, its value in A,
its value in B and the ratio B/A, grouped by scenario (raw, eos, fast, half,
voted, replay, consume, rest, million, and the `ratios` run.py computed).
Scenarios or metrics present in only one file are listed, not compared (files
of different runs often hold different BENCH_SCENARIOS). FILTER keeps the
metrics whose name (`scenario.metric`) contains it, e.g. `throughput` or
`fast.`. The head of the output says when and where each file was measured:
compare ratios between runs on one machine, not absolute rates across machines.

Exit status: 0 when at least one metric was compared, 1 when none was, 2 on
usage or unreadable files.
"""
import json
import sys

# Run settings, not measurements: the same in both files unless a run was
# configured differently, and never a result to compare.
SETTINGS = {"inflight", "objects", "threads", "mode", "prefix", "seconds", "rate"}
# Top-level entries that are not scenarios.
META = {"machine", "bootstrap", "scenarios", "started", "metrics", "inflight", "objects",
        "partitions", "seconds", "warmup_s"}


def load(path):
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit("compare: %s: %s" % (path, e)) from None
    if not isinstance(d, dict):
        raise SystemExit("compare: %s: not a bench result (a JSON object)" % path)
    return d


def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def metrics(d):
    """{scenario: {metric: value}} of the numeric measurements in a result."""
    out = {}
    for name, v in d.items():
        if name in META or not isinstance(v, dict):
            continue
        m = {k: x for k, x in v.items() if number(x) and k not in SETTINGS}
        if m:
            out[name] = m
    return out


def describe(label, path, d):
    m = d.get("machine") or {}
    load = m.get("loadavg_start")
    parts = [d.get("started", "?")]
    if m:
        parts.append("%s, %s cores, %s MB, kernel %s" % (m.get("cpu_model", "?"), m.get("nproc", "?"),
                                                        m.get("memory_mb", "?"), m.get("kernel", "?")))
    if load:
        parts.append("load %.1f at start" % load[0])
    if "warmup_s" in d:
        parts.append("broker warm-up %g s" % d["warmup_s"])
    return "%s: %s (%s)" % (label, path, "; ".join(parts))


def fmt(v):
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 1000):
        return "{:,}".format(int(v))
    return "{:,.4g}".format(v) if abs(v) < 1000 else "{:,.1f}".format(v)


def ratio(a, b):
    if a == 0:
        return "=" if b == 0 else "new"
    return "%.3f" % (b / a)


def main(argv):
    if len(argv) not in (3, 4) or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    pa, pb = argv[1], argv[2]
    flt = argv[3] if len(argv) == 4 else ""
    a, b = load(pa), load(pb)
    ma, mb = metrics(a), metrics(b)
    print(describe("A", pa, a))
    print(describe("B", pb, b))
    ca, cb = (a.get("machine") or {}).get("cpu_model"), (b.get("machine") or {}).get("cpu_model")
    if ca != cb:
        print("note: different CPUs (%s, %s): absolute rates are not comparable" % (ca, cb))
    only_a = sorted(set(ma) - set(mb))
    only_b = sorted(set(mb) - set(ma))
    if only_a:
        print("only in A: " + ", ".join(only_a))
    if only_b:
        print("only in B: " + ", ".join(only_b))

    rows, skipped = [], []
    for sc in sorted(set(ma) & set(mb)):
        for k in sorted(set(ma[sc]) | set(mb[sc])):
            name = "%s.%s" % (sc, k)
            if flt and flt not in name:
                continue
            if k not in ma[sc] or k not in mb[sc]:
                skipped.append(name)
                continue
            rows.append((name, ma[sc][k], mb[sc][k]))
    if rows:
        w = max(len(r[0]) for r in rows)
        print("%-*s %14s %14s %8s" % (w, "metric", "A", "B", "B/A"))
        for name, va, vb in rows:
            print("%-*s %14s %14s %8s" % (w, name, fmt(va), fmt(vb), ratio(va, vb)))
    if skipped:
        print("in one file only: " + ", ".join(skipped))
    if not rows:
        print("no metric in common")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
