"""Shared plumbing of the system tests: a real broker, smc worker processes
under a unique topic prefix per test, and readers of the topics.

Environment: SMC_BIN (the smc binary), SMC_LOADGEN (tests/system/loadgen.c),
SMC_BOOTSTRAP (default 127.0.0.1:9092), SMC_SOURCE_DIR (repository root).
"""
import json
import os
import random
import signal
import socket
import shutil
import subprocess
import time
from collections import defaultdict

import pytest

SRC = os.environ.get("SMC_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("SMC_BIN") or os.path.join(SRC, "build", "smc")
LOADGEN = os.environ.get("SMC_LOADGEN") or os.path.join(
    os.path.dirname(BIN), "tests", "system", "smc_loadgen")
BOOT = os.environ.get("SMC_BOOTSTRAP", "127.0.0.1:9092")
MACHINES = os.path.join(SRC, "examples", "machines")
HERE = os.path.dirname(os.path.abspath(__file__))


def broker_up():
    host, _, port = BOOT.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            return True
    except OSError:
        return False


def murmur2(data):
    """Kafka's murmur2 (Utils.murmur2), as smc_partition_for uses it."""
    m, r = 0x5bd1e995, 24
    length = len(data)
    h = (0x9747b28c ^ length) & 0xffffffff
    i = 0
    while length - i >= 4:
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xffffffff
        k ^= k >> r
        k = (k * m) & 0xffffffff
        h = (h * m) & 0xffffffff
        h ^= k
        i += 4
    rem = length - i
    if rem == 3:
        h ^= data[i + 2] << 16
    if rem >= 2:
        h ^= data[i + 1] << 8
    if rem >= 1:
        h ^= data[i]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h


def partition_of(key, n):
    """The partition smc gives an object id among n (murmur2 & 0x7fffffff) % n."""
    return (murmur2(key.encode()) & 0x7fffffff) % n


class Worker:
    """One `smc worker` process with its own data dir and log file."""

    def __init__(self, cluster, name, voter=None, committer=True, hook=None, extra=(), env=None):
        self.cluster, self.name, self.voter = cluster, name, voter
        self.committer, self.hook, self.extra = committer, hook, list(extra)
        self.env = env  # added to the environment (None: as it is)
        self.data_dir = os.path.join(cluster.tmp, name)
        self.log_path = os.path.join(cluster.tmp, name + ".log")
        self.proc = None
        self.starts = 0

    def args(self):
        a = [BIN, "worker", "--bootstrap", self.cluster.boot, "--prefix", self.cluster.prefix,
             "--node-id", self.name, "--data-dir", self.data_dir,
             "--session-timeout-ms", str(self.cluster.session_ms),
             "--tick-ms", str(self.cluster.tick_ms), "--log-level", "info"]
        a.append("--committer" if self.committer else "--no-committer")
        if self.voter:
            a += ["--voter", self.voter]
        if self.hook:
            a += ["--vote-hook", self.hook]
        return a + self.extra

    def start(self):
        log = open(self.log_path, "a")
        log.write("=== start %d\n" % self.starts)
        log.flush()
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self.starts += 1
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout=60):
        """SIGTERM and wait: a clean stop exits 0."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.dump_stacks("no exit %d s after SIGTERM" % timeout)
            self.proc.kill()
            self.proc.wait()
            return "timeout"

    def dump_stacks(self, why):
        """Every thread's stack of the running worker (gdb, when installed),
        appended to its log: a worker that hangs says where."""
        gdb = shutil.which("gdb")
        if not gdb or not self.alive():
            return
        try:
            r = subprocess.run([gdb, "-p", str(self.proc.pid), "-batch", "-ex",
                                "thread apply all bt"], capture_output=True, text=True,
                               timeout=120)
            text = r.stdout
        except subprocess.TimeoutExpired:
            text = "gdb timed out\n"
        with open(self.log_path, "a") as f:
            f.write("=== stacks: %s\n%s" % (why, text))
        print("=== %s: stacks: %s\n%s" % (self.name, why, text))  # shown when the test fails

    def log(self):
        with open(self.log_path) as f:
            return f.read()


class Cluster:
    """Topics under a fresh prefix plus the workers of one test, on the
    brokers of boot (default SMC_BOOTSTRAP); replication: `smc topics create
    --replication` (default the broker's)."""

    def __init__(self, tmp, partitions=6, session_ms=6000, tick_ms=200, boot=None,
                 replication=None):
        self.tmp = str(tmp)
        self.boot = boot or BOOT
        self.prefix = "t%08x." % random.getrandbits(32)
        self.partitions = partitions
        self.session_ms, self.tick_ms = session_ms, tick_ms
        self.workers = []
        a = ["topics", "create", "--partitions", str(partitions)]
        if replication:
            a += ["--replication", str(replication)]
        r = self.smc(*a)
        assert r.returncode == 0, r.stderr

    def smc(self, *args, timeout=120, input=None):
        cmd = [BIN] + list(args) + ["--bootstrap", self.boot, "--prefix", self.prefix]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)

    def worker(self, name, **kw):
        w = Worker(self, name, **kw)
        self.workers.append(w)
        return w.start()

    def apply(self, path):
        r = self.smc("machine", "apply", path, "--timeout", "30s")
        assert r.returncode == 0, r.stdout + r.stderr

    def propose(self, machine, obj, transition, data=None, proposer=None, wait="30s", pid=None):
        a = ["propose", machine, obj, transition, "--wait", wait]
        if data is not None:
            a += ["--data", json.dumps(data)]
        if proposer:
            a += ["--proposer", proposer]
        if pid:
            a += ["--id", pid]
        r = self.smc(*a)
        out = r.stdout.strip().splitlines()
        return r.returncode, (json.loads(out[-1]) if out and out[-1].startswith("{") else None), r

    def export(self, topic):
        r = self.smc("export", "--topic", topic, timeout=300)
        assert r.returncode == 0, r.stderr
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def confirmations(self):
        return [rec["value"] for rec in self.export("confirmations")]

    def wait_confirmed(self, ids, timeout=180):
        """Poll the confirmations topic until every id has one; returns the list."""
        ids = set(ids)
        deadline = time.time() + timeout
        while True:
            r = self.smc("export", "--topic", "confirmations", timeout=300)
            if r.returncode == 3 and time.time() < deadline:
                # unavailable (exit 3), e.g. just after a broker restart while a
                # dead producer's transaction still holds the last stable offset:
                # the contract says retry
                time.sleep(2)
                continue
            assert r.returncode == 0, r.stderr
            confs = [json.loads(l)["value"] for l in r.stdout.splitlines() if l.strip()]
            seen = {c.get("proposal") for c in confs}
            missing = ids - seen
            if not missing or time.time() > deadline:
                return confs, missing
            time.sleep(2)

    def loadgen(self, proc, objects, ops, rate=0, machine="lock"):
        return subprocess.Popen(
            [LOADGEN, "--bootstrap", self.boot, "--prefix", self.prefix, "--proc", proc,
             "--objects", str(objects), "--ops", str(ops), "--rate", str(rate),
             "--machine", machine], stdout=subprocess.PIPE, text=True)

    def close(self):
        for w in self.workers:
            w.kill()


def loadgen_ids(proc, objects, ops):
    return ["%s-o%d-%d" % (proc, i, k) for k in range(ops + 1) for i in range(objects)]


def check_exactly_once(confs, sent_ids, maybe_ids=()):
    """Every sent id has exactly one non-duplicate confirmation, each of
    maybe_ids (writes that failed or timed out: they may or may not be in the
    log) at most one, nothing else is confirmed, and each object's committed
    versions run 1..n."""
    count = defaultdict(int)
    for c in confs:
        if c.get("duplicate"):
            continue
        count[c["proposal"]] += 1
    sent = set(sent_ids)
    dups = {p: n for p, n in count.items() if n > 1}
    assert not dups, "confirmed more than once: %s" % list(dups.items())[:10]
    missing = sent - set(count)
    assert not missing, "never confirmed: %s" % sorted(missing)[:10]
    unknown = set(count) - sent - set(maybe_ids)
    assert not unknown, "confirmed but never sent: %s" % sorted(unknown)[:10]
    versions = defaultdict(list)
    for c in confs:
        if c.get("outcome") == "committed" and not c.get("duplicate"):
            versions[c["object"]].append(c["version"])
    for obj, vs in versions.items():
        assert vs == list(range(1, len(vs) + 1)), "object %s versions %s" % (obj, vs[:20])
    return versions


def final_states(confs):
    """object -> (version, state, checksum) of its last committed confirmation."""
    out = {}
    for c in confs:
        if c.get("outcome") == "committed" and not c.get("duplicate"):
            cur = out.get(c["object"])
            if cur is None or c["version"] > cur[0]:
                out[c["object"]] = (c["version"], c["state"], c.get("checksum"))
    return out


def simulate_final_states(cluster, machine_files):
    """Run `smc simulate` over the exported proposals log; final states."""
    log_path = os.path.join(cluster.tmp, "proposals.jsonl")
    with open(log_path, "w") as f:
        for rec in cluster.export("proposals"):
            ev = rec["value"]
            if not isinstance(ev, dict):
                continue
            ev = dict(ev)
            ev["partition"], ev["offset"], ev["time"] = rec["partition"], rec["offset"], rec["timestamp"]
            ev["key"] = rec.get("key")
            f.write(json.dumps(ev) + "\n")
    r = subprocess.run([BIN, "simulate"] + list(machine_files) +
                       ["--log", log_path, "--partitions", str(cluster.partitions)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 1), r.stderr
    outs = [json.loads(l) for l in r.stdout.splitlines() if l.strip().startswith("{")]
    return final_states([o for o in outs if o.get("type") == "confirmation"])


def check_storm(cluster, sent_ids, machine_files, maybe_ids=(), timeout=300):
    """The exactly-once checks of the storm tests, once the writers stopped:
    every id of sent_ids, and every id of maybe_ids that reached the
    proposals log, gets exactly one confirmation (check_exactly_once:
    nothing else, versions gapless), and the final states equal `smc
    simulate` over the exported proposals log. Returns the confirmations."""
    logged = {rec["value"].get("id") for rec in cluster.export("proposals")
              if isinstance(rec["value"], dict)}
    lost = set(sent_ids) - logged
    assert not lost, "acknowledged but not in the log: %s" % sorted(lost)[:10]
    want = set(sent_ids) | (set(maybe_ids) & logged)
    confs, missing = cluster.wait_confirmed(want, timeout=timeout)
    assert not missing, "%d never confirmed, e.g. %s" % (len(missing), sorted(missing)[:5])
    check_exactly_once(confs, sent_ids, maybe_ids)
    assert simulate_final_states(cluster, machine_files) == final_states(confs)
    return confs


def check_client_answers(confs, answers):
    """No false success: every confirmation a client was given (a dict from
    `smc propose`) is on the confirmations topic as it was given, and not
    contradicted by a later version of its object in the final state."""
    by_id = {c["proposal"]: c for c in confs if not c.get("duplicate")}
    last = final_states(confs)
    for a in answers:
        c = by_id.get(a["proposal"])
        assert c is not None, "a client saw %s decided, the log has no decision" % a["proposal"]
        for k in ("outcome", "object", "version", "state", "checksum"):
            assert c.get(k) == a.get(k), "client saw %s, the log says %s" % (a, c)
        if a.get("outcome") == "committed":
            assert last[a["object"]][0] >= a["version"], (a, last[a["object"]])


@pytest.fixture
def cluster(tmp_path):
    if not broker_up():
        # make test exports SMC_BOOTSTRAP after starting the broker: a broker
        # that was promised but does not answer is a failure, not a skip.
        if os.environ.get("SMC_BOOTSTRAP"):
            pytest.fail("no Kafka broker answers at %s" % BOOT)
        pytest.skip("no Kafka broker at %s (scripts/kafka.sh start)" % BOOT)
    c = Cluster(tmp_path)
    yield c
    c.close()


def wait_for(pred, timeout, step=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()
