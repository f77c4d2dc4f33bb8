#!/usr/bin/env python3
"""Cluster benchmarks against the raw-Kafka limit (`make bench`).

Builds Release into build-bench, starts a broker with scripts/kafka.sh on
BENCH_KAFKA_PORT (default 39092) unless one already listens there (and stops
it at the end if it started it), then runs each scenario under its own topic
prefix with fresh `smc worker` processes:

  raw     produce -> consume round trips of proposal-sized records (baseline)
  eos     the same round trips through a relay that copies each record into
          <prefix>confirmations inside Kafka transactions with the consumed
          offsets: the committer's Kafka work without the fold (baseline of
          what exactly-once costs on this broker)
  fast    (a) lock machine, no votes, 10,000 objects, max throughput
  fast_nochangelog  (a) again with `smc worker --changelog false`: the cost of
          writing snapshots to <prefix>changelog is fast against this
  half    (a) again, open loop at half the max rate of `fast`
  replay  (c) `smc replay --fresh` over the topics `fast` wrote, and the raw
          consume rate of the same topic (baseline, best of three runs)
  voted   (b) approval machine, 3 voters, quorum 2
  restore a fresh node's restore from <prefix>changelog against a full replay:
          BENCH_RESTORE_RECORDS (10,000,000) records of history over
          BENCH_RESTORE_OBJECTS (1,000,000) lock objects, raw-produced by
          bench_cluster --mode fill, for each kind of BENCH_RESTORE_KINDS
          ("cycles,reads": after the creates, acquire/release rounds, or read
          events); folded once by `smc replay --write-changelog` (its whole
          state into the changelog, as compaction leaves it), then timed:
          `smc replay --fresh` (the whole log) against `smc replay
          --from-changelog` (the snapshot, nothing left to fold)
  rest    (d) REST propose and read rates through `smc worker --http`
  million (opt-in) worker RSS with 1,000,000 lock objects (BENCH_MILLION_*)
  lock    (opt-in, `make bench-lock`) a lock service against etcd: the same Go
          client (bench/lockbench) loops acquire/release, one lock per client,
          against etcd (Debian's etcd-server, with --unsafe-no-fsync and with
          fsync) and against `smc worker --http` on the broker, at 16, 64 and
          256 clients; then 10,000 smc GETs and the records they added to
          <prefix>proposals (BENCH_LOCK_*; docs/benchmarks.md)

Prints a table and `fast/raw ratio: X`, writes bench/results/<date>.json
(not with BENCH_NO_RESULTS=1). BENCH_BOOTSTRAP: use the broker there (never
start one; BENCH_BOOTSTRAP_FROM_SMC=1: the one of SMC_BOOTSTRAP); BENCH_NO_BUILD=1 with BENCH_SMC and BENCH_CLIENT: use those
binaries (the ctest smoke run bench.restore_smoke).
Environment: BENCH_BUILD_DIR (build-bench), BENCH_SECONDS (20), BENCH_KAFKA_PORT (39092), BENCH_INFLIGHT
(1000), BENCH_OBJECTS (10000), BENCH_SCENARIOS (comma list, default all),
BENCH_REST_THREADS (16), BENCH_PARTITIONS (12), BENCH_WARMUP (60: seconds of
unmeasured traffic that a broker this script started gets first; 0 = none), BENCH_METRICS (0; 1 = workers
of the lock scenarios serve HTTP and the results include their transaction
count, records per transaction and mean commit time from /metrics, and the
committer's store writes: their mean, the histogram bucket under which 99 %
fell, and how many took over 25 and 100 ms).
Scenario lock: BENCH_LOCK_CLIENTS (16,64,256), BENCH_LOCK_SECONDS (12, measured
per row), BENCH_LOCK_WARMUP (3, unmeasured before each row), BENCH_LOCK_PEERS
(etcd-nofsync,etcd-fsync,smc), BENCH_LOCK_GETS (10000), BENCH_LOCK_GET_CLIENTS
(16), BENCH_LOCK_SMC_URL (empty: a fresh `smc worker --http`; a URL such as
http://127.0.0.1:8080: an already running gateway, e.g. `smc dev`, and no
broker is started when lock is the only scenario), BENCH_LOCK_SMC_WAIT (the
PUTs' wait=, default the gateway's), BENCH_LOCK_SMC_QUERY (more query
parameters for the PUTs, e.g. ack=confirmed), BENCH_LOCK_WORKER_ARGS (more
arguments for its `smc worker`, e.g. "-X fetch.wait.max.ms=10"),
BENCH_LOCK_ETCD_CONNS (0: one etcd connection per client; N: the clients
share N), BENCH_ETCD (etcd).
"""
import datetime
import http.client
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.environ.get("BENCH_BUILD_DIR") or os.path.join(ROOT, "build-bench")
SMC = os.environ.get("BENCH_SMC") or os.path.join(BUILD, "smc")
CLIENT = os.environ.get("BENCH_CLIENT") or os.path.join(BUILD, "bench", "bench_cluster")
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
PORT = int(os.environ.get("BENCH_KAFKA_PORT", "39092"))
EXTERNAL = bool(os.environ.get("BENCH_BOOTSTRAP")) or \
    os.environ.get("BENCH_BOOTSTRAP_FROM_SMC") == "1"
BOOT = os.environ.get("BENCH_BOOTSTRAP") or (
    os.environ.get("SMC_BOOTSTRAP", "127.0.0.1:9092") if EXTERNAL else "127.0.0.1:%d" % PORT)
INFLIGHT = int(os.environ.get("BENCH_INFLIGHT", "1000"))
OBJECTS = int(os.environ.get("BENCH_OBJECTS", "10000"))
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "12"))
REST_THREADS = int(os.environ.get("BENCH_REST_THREADS", "16"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "60"))
SCENARIOS = os.environ.get("BENCH_SCENARIOS",
                           "raw,eos,fast,fast_nochangelog,half,replay,voted,rest,restore").split(",")
RESTORE_OBJECTS = int(os.environ.get("BENCH_RESTORE_OBJECTS", "1000000"))
RESTORE_RECORDS = int(os.environ.get("BENCH_RESTORE_RECORDS", "10000000"))
RESTORE_KINDS = [k for k in os.environ.get("BENCH_RESTORE_KINDS", "cycles,reads").split(",") if k]
NO_BUILD = os.environ.get("BENCH_NO_BUILD") == "1"
TICK = os.sysconf("SC_CLK_TCK")
LOCKBENCH = os.path.join(BUILD, "lockbench")
LOCK_CLIENTS = [int(x) for x in os.environ.get("BENCH_LOCK_CLIENTS", "16,64,256").split(",") if x]
LOCK_SECONDS = float(os.environ.get("BENCH_LOCK_SECONDS", "12"))
LOCK_WARMUP = float(os.environ.get("BENCH_LOCK_WARMUP", "3"))
LOCK_PEERS = [x.strip() for x in
              os.environ.get("BENCH_LOCK_PEERS", "etcd-nofsync,etcd-fsync,smc").split(",") if x]
LOCK_GETS = int(os.environ.get("BENCH_LOCK_GETS", "10000"))
LOCK_GET_CLIENTS = int(os.environ.get("BENCH_LOCK_GET_CLIENTS", "16"))
LOCK_SMC_URL = os.environ.get("BENCH_LOCK_SMC_URL", "").rstrip("/")
LOCK_SMC_WAIT = os.environ.get("BENCH_LOCK_SMC_WAIT", "")
LOCK_SMC_QUERY = os.environ.get("BENCH_LOCK_SMC_QUERY", "")
LOCK_WORKER_ARGS = os.environ.get("BENCH_LOCK_WORKER_ARGS", "").split()
LOCK_ETCD_CONNS = int(os.environ.get("BENCH_LOCK_ETCD_CONNS", "0"))
ETCD = os.environ.get("BENCH_ETCD", "etcd")
RUN = "%08x" % random.getrandbits(32)


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def sh(*cmd, check=True, **kw):
    r = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise SystemExit("bench: %s failed (%d):\n%s%s" % (" ".join(cmd), r.returncode,
                                                           r.stdout, r.stderr))
    return r


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def proc_cpu(pid):
    """utime+stime of pid in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_hwm_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Cluster:
    """Topics under one fresh prefix and the workers serving them."""

    def __init__(self, tmp, name):
        self.prefix = "bench-%s-%s." % (RUN, name)
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.workers = []
        self.http_port = None
        self.smc("topics", "create", "--partitions", str(PARTITIONS))

    def smc(self, *args, timeout=120):
        return sh(SMC, *args, "--bootstrap", BOOT, "--prefix", self.prefix, timeout=timeout)

    def worker(self, node, voter=None, committer=True, http=None, extra=()):
        args = [SMC, "worker", "--bootstrap", BOOT, "--prefix", self.prefix, "--node-id", node,
                "--data-dir", os.path.join(self.dir, node), "--log-level", "warn",
                "--committer" if committer else "--no-committer"]
        if voter:
            args += ["--voter", voter]
        if http:
            args += ["--http", http]
            self.http_port = int(http.rsplit(":", 1)[1])
        args += list(extra)
        logf = open(os.path.join(self.dir, node + ".log"), "w")
        p = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        self.workers.append(p)
        return p

    def cpu(self):
        return sum(proc_cpu(p.pid) for p in self.workers)

    def hwm_mb(self):
        return max(proc_hwm_mb(p.pid) for p in self.workers)

    def stop(self):
        for p in self.workers:
            if p.poll() is None:
                p.terminate()
        for p in self.workers:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def client(mode, prefix, tag, rate=0, seconds=None, objects=None, inflight=None, drain=15):
    r = sh(CLIENT, "--mode", mode, "--prefix", prefix, "--bootstrap", BOOT, "--tag", tag,
           "--objects", str(objects or OBJECTS), "--inflight", str(inflight or INFLIGHT),
           "--rate", str(rate), "--seconds", str(seconds or SECONDS), "--drain", str(drain),
           check=False, timeout=(seconds or SECONDS) * 4 + drain + 600)
    if not r.stdout.strip():
        raise SystemExit("bench: bench_cluster %s printed nothing (rc %d): %s" %
                         (mode, r.returncode, r.stderr[-2000:]))
    res = json.loads(r.stdout.strip().splitlines()[-1])
    if r.returncode not in (0, 3):
        raise SystemExit("bench: bench_cluster %s failed (%d): %s" % (mode, r.returncode,
                                                                       r.stderr[-2000:]))
    return res


def warm(c, machine, obj, transition, data=None):
    """One proposal waited for: the worker owns its partitions and is ready."""
    a = ["propose", machine, obj, transition, "--wait", "60s"]
    if data:
        a += ["--data", json.dumps(data)]
    for _ in range(3):
        r = sh(SMC, *a, "--bootstrap", BOOT, "--prefix", c.prefix, check=False, timeout=120)
        if r.returncode == 0:
            return
    raise SystemExit("bench: warm-up proposal failed: %s%s" % (r.stdout, r.stderr))


def warm_round(mode, prefix):
    """An unmeasured 2 s round of the scenario's own workload (1,000 proposals
    over 200 objects of another tag) before the clock starts: the first write
    to each partition of a fresh topic, and a transaction's first write to it,
    cost the broker up to a second, which would otherwise land in the first
    measured second. Every scenario (raw included) gets the same round."""
    client(mode, prefix, "w%s%s" % (mode[0], RUN), rate=500, seconds=2, objects=200,
           inflight=100, drain=30)


def scrape(port):
    """The committer's transaction counters and store write histogram from
    GET /metrics (sum over label sets; the histogram's buckets as
    "smc_store_write_seconds_bucket:<le>", the committer's only); {} when
    unavailable."""
    want = ("smc_txn_commits_total", "smc_txn_commit_seconds_sum", "smc_txn_commit_seconds_count",
            "smc_records_folded_total", "smc_store_write_seconds_sum",
            "smc_store_write_seconds_count")
    got = {}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
    except (OSError, http.client.HTTPException):
        return got
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in want:
            got[name] = got.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        elif name == "smc_store_write_seconds_bucket" and 'role="committer"' in line:
            le = line.split(',le="', 1)[1].split('"', 1)[0]
            got[name + ":" + le] = float(line.rsplit(" ", 1)[1])
    return got


def store_write_figures(d):
    """From the difference d of two scrapes: the committer's store writes,
    their mean, the bucket bound under which 99 % of them fell, and how many
    took over 25 and over 100 ms (write stalls)."""
    cnt = d.get("smc_store_write_seconds_count", 0.0)
    if not cnt:
        return {}
    buckets = sorted((float(k.split(":", 1)[1]), v) for k, v in d.items()
                     if k.startswith("smc_store_write_seconds_bucket:"))
    p99 = next((le for le, v in buckets if v >= 0.99 * cnt), float("inf"))
    below = dict(buckets)
    return {"store_writes": int(cnt),
            "store_write_mean_ms": round(d["smc_store_write_seconds_sum"] * 1000.0 / cnt, 2),
            "store_write_p99_le_ms": p99 * 1000.0 if p99 != float("inf") else None,
            "store_writes_over_25ms": int(cnt - below.get(0.025, cnt)),
            "store_writes_over_100ms": int(cnt - below.get(0.1, cnt))}


def measured(c, fn):
    """Runs fn() and adds the workers' CPU seconds and peak RSS to its result,
    and, when the worker serves HTTP, its transaction count and mean commit
    time over the run (where a fast-path round trip's time goes)."""
    cpu0 = c.cpu()
    m0 = scrape(c.http_port) if c.http_port else {}
    res = fn()
    m1 = scrape(c.http_port) if c.http_port else {}
    if m0 and m1:
        d = {k: m1.get(k, 0.0) - m0.get(k, 0.0) for k in m1}
        commits = d.get("smc_txn_commits_total", 0.0)
        if commits:
            res["txn_commits"] = int(commits)
            res["records_per_txn"] = round(d.get("smc_records_folded_total", 0.0) / commits, 1)
        cnt = d.get("smc_txn_commit_seconds_count", 0.0)
        if cnt:
            res["txn_commit_mean_ms"] = round(d["smc_txn_commit_seconds_sum"] * 1000.0 / cnt, 2)
        res.update(store_write_figures(d))
    res["worker_cpu_s"] = round(c.cpu() - cpu0, 3)
    res["worker_rss_mb"] = round(c.hwm_mb(), 1)
    n = res.get("committed") or 0
    res["cpu_ms_per_transition"] = round(res["worker_cpu_s"] * 1000.0 / n, 4) if n else None
    return res


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lock_cluster(tmp, name, http=None, extra=()):
    """One committer serving the lock machine. With BENCH_METRICS=1 it also
    serves HTTP (on a free port) so that /metrics gives the transaction
    figures; off by default because the gateway keeps every confirmation it
    sees in its proposal LRU (100,000 entries), which adds to the worker's
    RSS and CPU."""
    if not http and os.environ.get("BENCH_METRICS") == "1":
        http = "127.0.0.1:%d" % free_port()
    c = Cluster(tmp, name)
    c.worker("node-1", http=http, extra=extra)
    c.smc("machine", "apply", os.path.join(ROOT, "examples", "machines", "lock.yaml"),
          "--timeout", "60s")
    warm(c, "lock", "warm-0", "create")
    warm_round("fast", c.prefix)
    return c


def warm_broker(tmp):
    """A broker that just started runs its first minute or so interpreted:
    its JIT compiler alone took 9-15% of the machine's CPU during the first
    scenarios, and three 15 s fast-path runs in a row on one fresh broker went
    13.1k, 14.3k, 19.4k/s. So before anything is measured, a new broker gets
    BENCH_WARMUP seconds (60) of unmeasured traffic of every kind the
    scenarios send: raw round trips, then the fast path through a committer
    (transactions, offsets, read_committed fetches) for the rest."""
    raw_s = min(10.0, WARMUP / 3)
    log("warming the new broker up (%gs unmeasured: raw %gs, fast path %gs)" %
        (WARMUP, raw_s, WARMUP - raw_s))
    client("raw", Cluster(tmp, "warmup-raw").prefix, "wr" + RUN, seconds=raw_s)
    c = lock_cluster(tmp, "warmup-fast")
    try:
        client("fast", c.prefix, "wf" + RUN, seconds=WARMUP - raw_s)
    finally:
        c.stop()


def scenario_raw(tmp, out):
    c = Cluster(tmp, "raw")  # no worker: the topic is only a Kafka topic here
    warm_round("raw", c.prefix)
    out["raw"] = client("raw", c.prefix, "r" + RUN)


def scenario_eos(tmp, out):
    """Round trips through bench_cluster's relay (a committer without the
    fold: consume, produce in a transaction with the offsets, commit every
    10 ms), measured by the client exactly like `fast`. The relay's CPU is
    reported like a worker's."""
    c = Cluster(tmp, "eos")  # topics only; the relay stands in for the worker
    logf = open(os.path.join(c.dir, "relay.log"), "w+")
    relay = subprocess.Popen([CLIENT, "--mode", "relay", "--prefix", c.prefix, "--bootstrap", BOOT,
                              "--seconds", str(SECONDS + 120)], stdout=logf,
                             stderr=subprocess.STDOUT)
    c.workers.append(relay)
    try:
        warm_round("eos", c.prefix)
        out["eos"] = measured(c, lambda: client("eos", c.prefix, "e" + RUN))
    finally:
        c.stop()
        logf.close()


def scenario_fast(tmp, out):
    c = lock_cluster(tmp, "fast")
    try:
        out["fast"] = measured(c, lambda: client("fast", c.prefix, "f" + RUN))
    finally:
        c.stop()
    out["_fast_prefix"] = c.prefix


def scenario_half(tmp, out):
    if "fast" not in out:
        return
    rate = max(1.0, out["fast"]["throughput"] / 2)
    c = lock_cluster(tmp, "half")
    try:
        out["half"] = measured(c, lambda: client("fast", c.prefix, "h" + RUN, rate=rate))
    finally:
        c.stop()


def scenario_replay(tmp, out):
    prefix = out.get("_fast_prefix")
    if not prefix:
        return
    # The consume baseline is over in a fraction of a second, so the client's
    # start and the first fetches weigh on it: one run each gave 392,648/s and
    # 1,557,352/s on the same machine. The best of three is the limit.
    runs = []
    for i in range(3):
        cons = sh(CLIENT, "--mode", "consume", "--prefix", prefix, "--bootstrap", BOOT,
                  "--tag", "c%d%s" % (i, RUN), timeout=600)
        runs.append(json.loads(cons.stdout.strip().splitlines()[-1]))
    out["consume"] = dict(max(runs, key=lambda r: r["records_per_s"]))
    out["consume"]["runs_records_per_s"] = [r["records_per_s"] for r in runs]
    ddir = os.path.join(tmp, "replay")
    errf = open(os.path.join(tmp, "replay.log"), "w+")
    t0 = time.monotonic()
    p = subprocess.Popen([SMC, "replay", "--bootstrap", BOOT, "--prefix", prefix, "--data-dir",
                          ddir, "--fresh", "--quiet"], stdout=errf, stderr=subprocess.STDOUT)
    # wait4: this child's own CPU time and peak RSS (not other children's).
    _, status, ru = os.wait4(p.pid, 0)
    secs = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    errf.seek(0)
    text = errf.read()
    errf.close()
    if p.returncode != 0:
        out["replay"] = {"error": text[-1000:], "seconds": round(secs, 3)}
        return
    n = out["consume"]["records"]
    # smc replay's own summary line (stdout): the fold threads it used.
    summary = {}
    for line in text.splitlines():
        if line.startswith("{") and '"records"' in line:
            summary = json.loads(line)
    out["replay"] = {
        "records": n, "seconds": round(secs, 3),
        "throughput": round(n / secs, 1) if secs > 0 else 0,
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
        "rss_mb": round(ru.ru_maxrss / 1024.0, 1),
        "threads": summary.get("threads", 1),
    }


def scenario_fast_nochangelog(tmp, out):
    c = lock_cluster(tmp, "fastnocl", extra=["--changelog", "false"])
    try:
        out["fast_nochangelog"] = measured(c, lambda: client("fast", c.prefix, "n" + RUN))
    finally:
        c.stop()


def timed_replay(tmp, c, name, *flags):
    """`smc replay` into a fresh data dir: its summary, wall time, own CPU
    and peak RSS (wait4)."""
    errf = open(os.path.join(tmp, name + ".log"), "w+")
    t0 = time.monotonic()
    p = subprocess.Popen([SMC, "replay", "--bootstrap", BOOT, "--prefix", c.prefix, "--data-dir",
                          os.path.join(c.dir, name), "--quiet"] + list(flags),
                         stdout=errf, stderr=subprocess.STDOUT)
    _, status, ru = os.wait4(p.pid, 0)
    secs = time.monotonic() - t0
    errf.seek(0)
    text = errf.read()
    errf.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("bench: smc replay %s failed:\n%s" % (" ".join(flags), text[-2000:]))
    summary = [json.loads(l) for l in text.splitlines() if l.startswith("{")][-1]
    summary.update({"wall_s": round(secs, 3), "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
                    "rss_mb": round(ru.ru_maxrss / 1024.0, 1)})
    return summary


def scenario_restore(tmp, out):
    """For each kind: raw-produce the history, fold it once into a store
    whose whole state goes to the changelog, then time a fresh node's two
    ways to that state: folding the whole log, or loading the snapshot."""
    res = {}
    for kind in RESTORE_KINDS:
        c = Cluster(tmp, "restore-" + kind)
        # no worker: the registration is in the log, nobody confirms it (exit
        # 3, "confirmed by 0 of N"). It must be in the log, though: with 1s
        # the first transaction on new topics could fail to flush, leaving no
        # machine (every proposal rejected, no objects) and an open
        # transaction that held read_committed readers back.
        reg = sh(SMC, "machine", "apply", os.path.join(ROOT, "examples", "machines", "lock.yaml"),
                 "--timeout", "10s", "--bootstrap", BOOT, "--prefix", c.prefix, check=False)
        if reg.returncode != 0 and "confirmed by 0 of" not in reg.stderr:
            raise SystemExit("bench: the registration is not in the log: %s" % reg.stderr)
        fill = sh(CLIENT, "--mode", "fill", "--prefix", c.prefix, "--bootstrap", BOOT, "--tag",
                  "h" + RUN, "--objects", str(RESTORE_OBJECTS), "--records",
                  str(RESTORE_RECORDS), "--fill-kind", kind, timeout=3600)
        fill = json.loads(fill.stdout.strip().splitlines()[-1])
        log("restore %s: %d records produced in %.1fs" % (kind, fill["records"],
                                                           fill["seconds"]))
        gen = timed_replay(tmp, c, "gen", "--fresh", "--write-changelog")
        log("restore %s: folded once in %.1fs, %d changelog records written in %.1fs" % (
            kind, gen["seconds"], gen["changelog_written"], gen["changelog_seconds"]))
        shutil.rmtree(os.path.join(c.dir, "gen"), ignore_errors=True)
        full = timed_replay(tmp, c, "full", "--fresh")
        shutil.rmtree(os.path.join(c.dir, "full"), ignore_errors=True)
        snap = timed_replay(tmp, c, "snap", "--from-changelog")
        shutil.rmtree(os.path.join(c.dir, "snap"), ignore_errors=True)
        if snap["changelog"]["partitions"] != PARTITIONS or snap["records"] != 0:
            raise SystemExit("bench: the restore did not come from the changelog: %s" % snap)
        res[kind] = {"objects": RESTORE_OBJECTS, "records": full["records"],
                     "changelog_records": snap["changelog"]["records"],
                     "full_s": full["wall_s"], "full_cpu_s": full["cpu_s"],
                     "full_rss_mb": full["rss_mb"], "full_threads": full["threads"],
                     "restore_s": snap["wall_s"], "restore_cpu_s": snap["cpu_s"],
                     "restore_rss_mb": snap["rss_mb"],
                     "speedup": round(full["wall_s"] / snap["wall_s"], 2) if snap["wall_s"] else 0,
                     "cpu_ratio": round(full["cpu_s"] / snap["cpu_s"], 2) if snap["cpu_s"] else 0,
                     "fold_once_s": gen["seconds"], "changelog_write_s": gen["changelog_seconds"],
                     "fill_s": fill["seconds"]}
    out["restore"] = res


def scenario_voted(tmp, out):
    c = Cluster(tmp, "voted")
    try:
        c.worker("node-1", voter="node-1")
        c.worker("node-2", voter="node-2", committer=False)
        c.worker("node-3", voter="node-3", committer=False)
        c.smc("machine", "apply", os.path.join(ROOT, "examples", "machines", "approval.yaml"),
              "--timeout", "60s")
        warm(c, "approval", "warm-0", "request", {"requester": "bench", "amount": 1})
        warm(c, "approval", "warm-0", "approve")
        warm_round("voted", c.prefix)
        out["voted"] = measured(c, lambda: client("voted", c.prefix, "v" + RUN))
    finally:
        c.stop()


def scenario_million(tmp, out):
    """Worker RSS with BENCH_MILLION_OBJECTS (1,000,000) lock objects: every
    create is sent at once (as fast as the producer takes them), then the
    objects cycle acquire/release until BENCH_MILLION_SECONDS; waits for every
    answer. Also the committer's rate on a deep backlog."""
    n = int(os.environ.get("BENCH_MILLION_OBJECTS", "1000000"))
    secs = float(os.environ.get("BENCH_MILLION_SECONDS", "60"))
    c = lock_cluster(tmp, "million")
    try:
        out["million"] = measured(c, lambda: client("fast", c.prefix, "m" + RUN, seconds=secs,
                                                   objects=n, inflight=n, drain=1800))
    finally:
        c.stop()


def rest_worker(port, stop_at, objs, stats, lock):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    lat_p, lat_r, errors = [], [], 0
    i = 0
    while time.monotonic() < stop_at:
        obj = objs[i % len(objs)]
        step = (i // len(objs)) % 2
        tr = "acquire" if step == 0 else "release"
        body = json.dumps({"owner": "svc-bench"})
        t0 = time.monotonic()
        try:
            conn.request("PUT", "/machine/lock/object/%s/transition/%s?wait=10s" % (obj, tr),
                         body=body, headers={"Content-Type": "application/json",
                                             "Idempotency-Key": "%s-%d" % (obj, i)})
            resp = conn.getresponse()
            resp.read()
            t1 = time.monotonic()
            if resp.status == 200:
                lat_p.append((t1 - t0) * 1000)
            else:
                errors += 1
            conn.request("GET", "/machine/lock/object/%s" % obj)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                lat_r.append((time.monotonic() - t1) * 1000)
            else:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i += 1
    conn.close()
    with lock:
        stats["p"] += lat_p
        stats["r"] += lat_r
        stats["errors"] += errors


def pct(v, p):
    v = sorted(v)
    return round(v[int(p * (len(v) - 1) + 0.5)], 2) if v else None


def scenario_rest(tmp, out):
    port = free_port()
    c = lock_cluster(tmp, "rest", http="127.0.0.1:%d" % port)
    try:
        # Create the objects first (one connection), then the timed mix.
        threads_n = REST_THREADS
        objs = ["rest-%d" % i for i in range(threads_n * 8)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(120):
            try:
                conn.request("GET", "/readyz")
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    break
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            time.sleep(0.5)
        for o in objs:
            conn.request("PUT", "/machine/lock/object/%s/transition/create?wait=30s" % o,
                         body="{}", headers={"Content-Type": "application/json"})
            conn.getresponse().read()
        conn.close()
        stats, lk = {"p": [], "r": [], "errors": 0}, threading.Lock()

        def run():
            stop_at = time.monotonic() + SECONDS
            t0 = time.monotonic()
            ts = [threading.Thread(target=rest_worker,
                                   args=(port, stop_at, objs[k::threads_n], stats, lk))
                  for k in range(threads_n)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            secs = time.monotonic() - t0
            return {"threads": threads_n, "seconds": round(secs, 3),
                    "committed": len(stats["p"]), "reads": len(stats["r"]),
                    "errors": stats["errors"],
                    "propose_per_s": round(len(stats["p"]) / secs, 1),
                    "read_per_s": round(len(stats["r"]) / secs, 1),
                    "propose_p50_ms": pct(stats["p"], 0.5), "propose_p99_ms": pct(stats["p"], 0.99),
                    "read_p50_ms": pct(stats["r"], 0.5), "read_p99_ms": pct(stats["r"], 0.99)}

        out["rest"] = measured(c, run)
    finally:
        c.stop()


# ---- lock: a lock service against etcd (opt-in) ----

def listener_pid(port):
    """The pid of the process listening on 127.0.0.1:port (ss -ltnp), or None."""
    r = sh("ss", "-ltnpH", "sport = :%d" % port, check=False)
    m = re.search(r"pid=(\d+)", r.stdout)
    return int(m.group(1)) if m else None


def http_json(base, method, path, body=None, ctype="application/json", timeout=30):
    """(status, parsed JSON or None) of one request to base (http://host:port)."""
    host = base.split("://", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": ctype} if body else {})
        r = conn.getresponse()
        raw = r.read()
    finally:
        conn.close()
    try:
        return r.status, json.loads(raw)
    except ValueError:
        return r.status, None


def wait_ready(base, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if http_json(base, "GET", "/readyz", timeout=5)[0] == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.5)
    raise SystemExit("bench: %s/readyz did not answer 200 in %ds" % (base, seconds))


def start_etcd(tmp, name, fsync):
    """One etcd member on loopback in a fresh data dir under tmp (the same
    disk as the broker's log). Returns (Popen, "127.0.0.1:<client port>")."""
    d = os.path.join(tmp, name)
    os.makedirs(d)
    cport, pport = free_port(), free_port()
    c, p = "http://127.0.0.1:%d" % cport, "http://127.0.0.1:%d" % pport
    args = [ETCD, "--name", "bench", "--data-dir", os.path.join(d, "data"),
            "--listen-client-urls", c, "--advertise-client-urls", c,
            "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
            "--initial-cluster", "bench=" + p, "--logger", "zap", "--log-level", "warn"]
    if not fsync:
        args.append("--unsafe-no-fsync")
    logf = open(os.path.join(d, "etcd.log"), "w")
    proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT)
    logf.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(os.path.join(d, "etcd.log")) as f:
                raise SystemExit("bench: etcd exited (%d): %s" % (proc.returncode, f.read()[-2000:]))
        try:
            st, js = http_json(c, "GET", "/health", timeout=2)
            if st == 200 and js and js.get("health") == "true":
                return proc, "127.0.0.1:%d" % cport
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("bench: etcd did not become healthy in 60 s")


def stop_proc(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def lockbench(peer, target, clients, ids, pids, mode="lock", seconds=None, warmup=None):
    """One run of bench/lockbench; its JSON result plus CPU per op. Errors
    (any answer that is not a committed 200, any failed CAS) are counted and
    printed, never dropped."""
    args = [LOCKBENCH, "-peer", peer, "-target", target, "-clients", str(clients), "-mode", mode,
            "-ids", ids, "-seconds", str(LOCK_SECONDS if seconds is None else seconds),
            "-warmup", str(LOCK_WARMUP if warmup is None else warmup), "-gets", str(LOCK_GETS),
            "-pids", ",".join("%s=%d" % kv for kv in pids.items() if kv[1])]
    if LOCK_SMC_WAIT:
        args += ["-smc-wait", LOCK_SMC_WAIT]
    if LOCK_SMC_QUERY:
        args += ["-smc-query", LOCK_SMC_QUERY]
    if LOCK_ETCD_CONNS:
        args += ["-etcd-conns", str(LOCK_ETCD_CONNS)]
    r = subprocess.run(args, capture_output=True, text=True,
                       timeout=LOCK_SECONDS + LOCK_WARMUP + 900)
    for line in r.stderr.splitlines():
        log(line)
    if r.returncode not in (0, 3) or not r.stdout.strip():
        raise SystemExit("bench: lockbench %s %s %d failed (rc %d): %s" %
                         (peer, mode, clients, r.returncode, r.stderr[-2000:]))
    res = json.loads(r.stdout.strip().splitlines()[-1])
    n = res["ops"]
    res["cpu_ms_per_op"] = {k: (round(v * 1000.0 / n, 4) if n else None)
                            for k, v in res["cpu_s"].items()}
    if res["errors"]:
        log("ERRORS: %s %s, %d clients: %d errors %s" % (peer, mode, clients, res["errors"],
                                                          json.dumps(res["error_kinds"])))
    return res


def proposals_end(bootstrap, prefix):
    """The records in <prefix>proposals: end offsets summed over partitions."""
    r = sh(CLIENT, "--mode", "offsets", "--prefix", prefix, "--bootstrap", bootstrap, timeout=120)
    return json.loads(r.stdout.strip().splitlines()[-1])["end_offsets"]


def lock_peer(peer, target, pids, tag, res):
    rows = {}
    for n in LOCK_CLIENTS:
        log("lock: %s, %d clients (%gs warm-up, %gs measured)" % (peer, n, LOCK_WARMUP,
                                                                  LOCK_SECONDS))
        r = lockbench("etcd" if peer.startswith("etcd") else "smc", target, n,
                      "lb-%s-%s-n%d" % (RUN, tag, n), pids)
        log("lock: %s %d: %.1f ops/s, p50 %s ms, p99 %s ms, errors %d, cpu %s, driver %.2f cores" %
            (peer, n, r["ops_per_s"], r["p50_ms"], r["p99_ms"], r["errors"],
             json.dumps(r["cpu_ms_per_op"]), r["driver_cores"]))
        rows[str(n)] = r
    res["runs"][peer] = rows


def lock_gets(peer, target, pids, tag, res, offsets=None):
    """LOCK_GETS reads over LOCK_GET_CLIENTS locks, set up (and cycled a
    moment) first; with offsets = (bootstrap, prefix), the records in the
    proposals topic before and after the reads."""
    ids = "lb-%s-%s-get" % (RUN, tag)
    p = "etcd" if peer.startswith("etcd") else "smc"
    lockbench(p, target, LOCK_GET_CLIENTS, ids, pids, seconds=0.5, warmup=0)
    before = after = None
    if offsets:
        time.sleep(1)
        before = proposals_end(*offsets)
    log("lock: %s, %d GETs over %d clients" % (peer, LOCK_GETS, LOCK_GET_CLIENTS))
    r = lockbench(p, target, LOCK_GET_CLIENTS, ids, pids, mode="get")
    if offsets:
        time.sleep(1)
        after = proposals_end(*offsets)
        r["proposals_before"], r["proposals_after"] = before, after
        r["proposals_added"] = after - before
        log("lock: %s GETs: %d records in %sproposals before, %d after (+%d)" %
            (peer, before, offsets[1], after, after - before))
    log("lock: %s GETs: p50 %s ms, p99 %s ms, errors %d" % (peer, r["p50_ms"], r["p99_ms"],
                                                             r["errors"]))
    res["gets"][peer] = r


def scenario_lock(tmp, out):
    """The lock service against etcd: see the module docstring and
    docs/benchmarks.md "Lock service against etcd"."""
    rev = sh("git", "-C", ROOT, "rev-parse", "--short", "HEAD", check=False).stdout.strip()
    dirty = sh("git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no",
               check=False).stdout.strip()
    # Settings and raw results nested (bench/compare.py compares only the
    # flat numbers, which lock_flatten adds at the end).
    res = {"settings": {"clients": LOCK_CLIENTS, "seconds": LOCK_SECONDS, "warmup": LOCK_WARMUP,
                        "peers": LOCK_PEERS, "gets": LOCK_GETS, "get_clients": LOCK_GET_CLIENTS,
                        "smc_wait": LOCK_SMC_WAIT, "smc_query": LOCK_SMC_QUERY,
                        "worker_args": LOCK_WORKER_ARGS, "etcd_conns": LOCK_ETCD_CONNS},
           "commit": rev + ("-dirty" if dirty else ""), "runs": {}, "gets": {}}
    out["lock"] = res
    for peer in LOCK_PEERS:
        if peer in ("etcd-nofsync", "etcd-fsync"):
            if not shutil.which(ETCD):
                raise SystemExit("bench: no %s (scripts/deps.sh bench installs etcd-server)" % ETCD)
            res["etcd_version"] = sh(ETCD, "--version").stdout.splitlines()[0]
            proc, target = start_etcd(tmp, peer, fsync=peer == "etcd-fsync")
            try:
                pids = {"etcd": proc.pid}
                lock_peer(peer, target, pids, peer, res)
                lock_gets(peer, target, pids, peer, res)
            finally:
                stop_proc(proc)
        elif peer == "smc":
            c = None
            try:
                if LOCK_SMC_URL:
                    base = LOCK_SMC_URL
                    wait_ready(base)
                    with open(os.path.join(ROOT, "examples", "machines", "lock.yaml")) as f:
                        st, js = http_json(base, "POST", "/machine/lock", f.read(),
                                           "application/yaml", timeout=90)
                    if st not in (200, 201):
                        raise SystemExit("bench: POST /machine/lock: %d %s" % (st, js))
                    info = http_json(base, "GET", "/info")[1] or {}
                    port = int(base.rsplit(":", 1)[1].split("/", 1)[0])
                    pids = {"gateway": listener_pid(port)}
                    offsets = ((info["bootstrap"], info["prefix"])
                               if info.get("bootstrap") and info.get("prefix") else None)
                    res["smc_target"] = base
                    res["smc_info"] = info
                else:
                    port = free_port()
                    base = "http://127.0.0.1:%d" % port
                    c = lock_cluster(tmp, "lock", http="127.0.0.1:%d" % port,
                                     extra=LOCK_WORKER_ARGS)
                    wait_ready(base)
                    pids = {"worker": c.workers[0].pid, "broker": listener_pid(PORT)}
                    if not pids["broker"]:
                        log("lock: no pid listens on %d: broker CPU not measured" % PORT)
                    offsets = (BOOT, c.prefix)
                    res["smc_target"] = "smc worker --http (1 committer, %d partitions, %s)" % (
                        PARTITIONS, BOOT)
                lock_peer("smc", base, pids, "smc", res)
                lock_gets("smc", base, pids, "smc", res, offsets)
            finally:
                if c:
                    c.stop()
                    # The worker logs at warn: whatever it said is shown.
                    with open(os.path.join(c.dir, "node-1.log"), errors="replace") as f:
                        lines = f.read().splitlines()
                    res["smc_worker_log"] = {"lines": len(lines), "tail": lines[-20:]}
                    if lines:
                        log("lock: the smc worker logged %d lines (warn and above); last ones:" %
                            len(lines))
                        for line in lines[-10:]:
                            log("  " + line)
        else:
            raise SystemExit("bench: unknown lock peer %r (etcd-nofsync, etcd-fsync, smc)" % peer)
    lock_flatten(res)


def lock_cpu(r):
    """(the server's own CPU ms/op, smc worker + broker ms/op or None)."""
    cpu = r["cpu_ms_per_op"]
    own = cpu.get("etcd", cpu.get("worker", cpu.get("gateway")))
    both = (own + cpu["broker"] if own is not None and "worker" in cpu and
            cpu.get("broker") is not None else None)
    return own, both


def lock_flatten(res):
    """The headline numbers as flat "<peer>.<clients>.<metric>" fields of
    res, for bench/compare.py."""
    keys = ("ops_per_s", "p50_ms", "p99_ms", "p999_ms", "errors", "driver_cores")
    for peer, runs in res["runs"].items():
        for n, r in runs.items():
            for k in keys:
                res["%s.%s.%s" % (peer, n, k)] = r[k]
            own, both = lock_cpu(r)
            res["%s.%s.cpu_ms_per_op" % (peer, n)] = own
            if both is not None:
                res["%s.%s.cpu_ms_per_op_with_broker" % (peer, n)] = round(both, 4)
    for peer, r in res["gets"].items():
        for k in keys:
            res["%s.get.%s" % (peer, k)] = r[k]
        if "proposals_added" in r:
            res["%s.get.proposals_added" % peer] = r["proposals_added"]


def ffmt(v, nd=1):
    """fmt of a number that JSON may have turned into an int."""
    return fmt(None if v is None else float(v), nd)


def lock_table(res):
    print("lock service: each client owns one lock and loops acquire -> release (%gs measured "
          "per row after %gs warm-up; latency per request, client-side)" %
          (res["settings"]["seconds"], res["settings"]["warmup"]))
    rows = [("peer", "clients", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "errors",
             "server ms/op", "+broker ms/op", "driver cores")]
    for peer, runs in res["runs"].items():
        for n, r in runs.items():
            own, both = lock_cpu(r)
            rows.append((peer, n, ffmt(r["ops_per_s"]), ffmt(r["p50_ms"], 2), ffmt(r["p99_ms"], 2),
                         ffmt(r["p999_ms"], 2), str(r["errors"]), ffmt(own, 3), ffmt(both, 3),
                         ffmt(r["driver_cores"], 2)))
    for peer, r in res["gets"].items():
        own, both = lock_cpu(r)
        rows.append((peer + " GET", str(r["clients"]), ffmt(r["ops_per_s"]), ffmt(r["p50_ms"], 2),
                     ffmt(r["p99_ms"], 2), ffmt(r["p999_ms"], 2), str(r["errors"]), ffmt(own, 3),
                     ffmt(both, 3), ffmt(r["driver_cores"], 2)))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(r[i].ljust(w[i]) if i == 0 else r[i].rjust(w[i]) for i in range(len(r))))
    g = res["gets"].get("smc")
    if g and "proposals_added" in g:
        print("smc: %d GETs added %d records to <prefix>proposals (%d -> %d)" % (
            g["ops"] + g["errors"], g["proposals_added"], g["proposals_before"],
            g["proposals_after"]))
    bad = [(p, n, r["errors"], r["error_kinds"]) for p, runs in res["runs"].items()
           for n, r in runs.items() if r["errors"]]
    bad += [(p + " GET", r["clients"], r["errors"], r["error_kinds"])
            for p, r in res["gets"].items() if r["errors"]]
    for p, n, e, k in bad:
        print("ERRORS: %s, %s clients: %d (%s)" % (p, n, e, json.dumps(k)))


def machine_info():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    # The librdkafka the workers and the load generator run (`smc --version`).
    r = sh(SMC, "--version", check=False)
    rdkafka = [l.split()[1] for l in r.stdout.splitlines() if l.startswith("librdkafka ")]
    return {"nproc": os.cpu_count(), "memory_mb": mem_kb // 1024, "cpu_model": model,
            "kernel": platform.release(), "loadavg_start": os.getloadavg(),
            "librdkafka": rdkafka[0] if rdkafka else None}


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%%.%df" % nd) % v
    return str(v)


def table(out):
    if "lock" in out:
        lock_table(out["lock"])
    rows = [("scenario", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "cpu ms/op", "rss MB")]
    for k, label in (("raw", "(e) raw produce->consume"),
                     ("eos", "(e) raw EOS relay round trips"), ("fast", "(a) fast path, max"),
                     ("fast_nochangelog", "(a) fast path, max, no changelog"),
                     ("half", "(a) fast path, half max"), ("voted", "(b) voted 2-of-3"),
                     ("million", "(a) 1M objects, backlog")):
        r = out.get(k)
        if r:
            rows.append((label, fmt(r["throughput"]), ffmt(r["p50_ms"], 2), ffmt(r["p99_ms"], 2),
                         ffmt(r["p999_ms"], 2), fmt(r.get("cpu_ms_per_transition"), 3),
                         fmt(r.get("worker_rss_mb"))))
    if "consume" in out:
        rows.append(("(e) raw consume", fmt(out["consume"]["records_per_s"]), "-", "-", "-", "-",
                     "-"))
    r = out.get("replay")
    if r and "throughput" in r:
        rows.append(("(c) smc replay --fresh, %d thread%s" % (r.get("threads", 1),
                                                              "" if r.get("threads", 1) == 1 else "s"),
                     fmt(r["throughput"]), "-", "-", "-",
                     fmt(r["cpu_s"] * 1000.0 / r["records"], 3) if r["records"] else "-",
                     fmt(r["rss_mb"])))
    r = out.get("rest")
    if r:
        rows.append(("(d) REST PUT", fmt(r["propose_per_s"]), fmt(r["propose_p50_ms"], 2),
                     fmt(r["propose_p99_ms"], 2), "-", fmt(r.get("cpu_ms_per_transition"), 3),
                     fmt(r.get("worker_rss_mb"))))
        rows.append(("(d) REST GET", fmt(r["read_per_s"]), fmt(r["read_p50_ms"], 2),
                     fmt(r["read_p99_ms"], 2), "-", "-", "-"))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows if len(rows) > 1 else []:
        print("  ".join(r[i].ljust(w[i]) if i == 0 else r[i].rjust(w[i]) for i in range(len(r))))
    # Where a confirmed round trip's time goes (bench_cluster stages(): send ->
    # in the log -> confirmation produced -> answered), each stage's p50/p99.
    # (A voted approve's first stage runs to its deciding vote in the log.)
    for kind, r in out.get("restore", {}).items():
        print("restore from the changelog (%s: %d objects, %d records, %d changelog records): "
              "%.1f s (%.1f s CPU) against full replay %.1f s (%.1f s CPU, %d threads): "
              "%.2fx faster" % (kind, r["objects"], r["records"], r["changelog_records"],
                                r["restore_s"], r["restore_cpu_s"], r["full_s"], r["full_cpu_s"],
                                r["full_threads"], r["speedup"]))
    for k in ("fast", "half", "voted"):
        r = out.get(k)
        if r and "to_log_p50_ms" in r:
            print("%s stages p50/p99 ms: to %s %s/%s, to output %s/%s, to answer %s/%s" % (
                k, "deciding vote" if k == "voted" else "log",
                fmt(r["to_log_p50_ms"], 1), fmt(r["to_log_p99_ms"], 1),
                fmt(r["to_output_p50_ms"], 1), fmt(r["to_output_p99_ms"], 1),
                fmt(r["to_answer_p50_ms"], 1), fmt(r["to_answer_p99_ms"], 1)))


def main():
    if not NO_BUILD:
        log("building Release into %s" % BUILD)
        sh("nice", "cmake", "-S", ROOT, "-B", BUILD, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release")
        sh("nice", "cmake", "--build", BUILD, "--target", "smc", "bench_cluster")
    names = [n.strip() for n in SCENARIOS]
    if "lock" in names:
        if not shutil.which("go"):
            raise SystemExit("bench: scenario lock needs the Go toolchain (go) for bench/lockbench")
        log("building bench/lockbench into %s" % LOCKBENCH)
        sh("nice", "go", "build", "-o", LOCKBENCH, ".", cwd=os.path.join(ROOT, "bench", "lockbench"),
           timeout=900)
    # The lock scenario alone needs no broker when its smc half is an already
    # running gateway (BENCH_LOCK_SMC_URL) or absent.
    need_kafka = any(n != "lock" for n in names) or ("smc" in LOCK_PEERS and not LOCK_SMC_URL)
    started = False
    if need_kafka and EXTERNAL:
        if not port_open(int(BOOT.split(",")[0].rpartition(":")[2])):
            log("no broker answers at %s (BENCH_BOOTSTRAP): skipped" % BOOT)
            sys.exit(77)
    elif need_kafka and not port_open(PORT):
        log("starting Kafka on port %d" % PORT)
        env = dict(os.environ, KAFKA_PORT=str(PORT))
        sh(os.path.join(ROOT, "scripts", "kafka.sh"), "start", env=env, timeout=600)
        started = True
    tmp = tempfile.mkdtemp(prefix="smc-bench-")
    out = {"machine": machine_info(), "seconds": SECONDS, "inflight": INFLIGHT,
           "objects": OBJECTS, "partitions": PARTITIONS, "bootstrap": BOOT,
           "scenarios": SCENARIOS, "metrics": os.environ.get("BENCH_METRICS") == "1",
           "warmup_s": WARMUP if started else 0,
           "started": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")}
    fns = {"raw": scenario_raw, "eos": scenario_eos, "fast": scenario_fast,
           "fast_nochangelog": scenario_fast_nochangelog, "restore": scenario_restore,
           "half": scenario_half,
           "replay": scenario_replay, "voted": scenario_voted, "rest": scenario_rest,
           "million": scenario_million, "lock": scenario_lock}
    try:
        if started and WARMUP > 0:
            warm_broker(tmp)
        for name in SCENARIOS:
            name = name.strip()
            if name not in fns:
                raise SystemExit("bench: unknown scenario %r (known: %s)" % (name, ",".join(fns)))
            log("scenario %s (%gs)" % (name, LOCK_SECONDS if name == "lock" else SECONDS))
            fns[name](tmp, out)
            if name in out:
                log("%s: %s" % (name, json.dumps(out[name])))
    finally:
        if started:
            log("stopping Kafka")
            sh(os.path.join(ROOT, "scripts", "kafka.sh"), "stop", check=False,
               env=dict(os.environ, KAFKA_PORT=str(PORT)), timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
    out.pop("_fast_prefix", None)
    out["machine"]["loadavg_end"] = os.getloadavg()
    ratios = {}
    if "fast" in out and "raw" in out and out["raw"]["throughput"]:
        ratios["fast_raw"] = round(out["fast"]["throughput"] / out["raw"]["throughput"], 3)
    if "fast" in out and "eos" in out and out["eos"]["throughput"]:
        ratios["fast_eos"] = round(out["fast"]["throughput"] / out["eos"]["throughput"], 3)
    if "voted" in out and "raw" in out and out["raw"]["throughput"]:
        ratios["voted_raw"] = round(out["voted"]["throughput"] / out["raw"]["throughput"], 3)
    if "fast" in out and out.get("fast_nochangelog", {}).get("throughput"):
        ratios["fast_changelog_off"] = round(out["fast"]["throughput"] /
                                             out["fast_nochangelog"]["throughput"], 3)
    for kind, r in out.get("restore", {}).items():
        ratios["restore_%s_speedup" % kind] = r["speedup"]
    if "throughput" in out.get("replay", {}) and out.get("consume", {}).get("records_per_s"):
        ratios["replay_consume"] = round(out["replay"]["throughput"] /
                                         out["consume"]["records_per_s"], 3)
    out["ratios"] = ratios
    path = None
    if os.environ.get("BENCH_NO_RESULTS") != "1":
        os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
        path = os.path.join(ROOT, "bench", "results",
                            datetime.datetime.utcnow().strftime("%Y-%m-%dT%H%M%SZ") + ".json")
        with open(path, "w") as f:
            json.dump(out, f, indent=2, sort_keys=True)
            f.write("\n")
    m = out["machine"]
    print("machine: %d cores, %d MB, %s; load average %.1f at start (shared machine); "
          "librdkafka %s" % (m["nproc"], m["memory_mb"], m["cpu_model"], m["loadavg_start"][0],
                             m.get("librdkafka")))
    table(out)
    for k, v in ratios.items():
        if k != "fast_raw":
            print("%s ratio: %s" % (k.replace("_", "/"), v))
    if path:
        print("results: %s" % os.path.relpath(path, ROOT))
    print("fast/raw ratio: %s" % ratios.get("fast_raw", "n/a"))


if __name__ == "__main__":
    main()
