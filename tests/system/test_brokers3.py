"""Three Kafka brokers (scripts/kafka.sh, KAFKA_BROKERS=3: replication 3,
min.insync.replicas 2, the transaction and offsets topics alike) losing
brokers under load, with the storm tests' exactly-once checks
(conftest.check_storm) and no false success (conftest.check_client_answers):
  (a) SIGKILL of the leader of a busy partition, restarted later;
  (b) a rolling restart of the three brokers (SIGTERM, one at a time);
  (c) a broker (a leader) and a worker SIGKILLed at the same moment;
  (d) two brokers down: writes fail cleanly (exit 3, outcome unknown) and
      resume with nothing lost once one broker returns;
  (e) a worker run from docker/Dockerfile's image (podman; skipped without
      it) commits on the three brokers.
Load: loadgen processes writing lock proposals straight to the log, plus
probe threads running `smc propose --wait` (each proposal a fresh object)
as clients do. The unavailability window of a case is the longest gap
between two successful `smc propose` answers from the fault on; it is
printed at the end of each test (past pytest's output capture).

The module starts its own cluster (KAFKA_PORT=$SMC_KAFKA3_PORT, default
24092: clients on 24092/24094/24096, controllers one port above each) with
KAFKA_FRESH=1 and stops it at the end, also when a test fails."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import (MACHINES, SRC, Cluster, check_client_answers, check_storm, loadgen_ids,
                      partition_of, wait_for)

KAFKA_SH = os.environ.get("SMC_KAFKA_SCRIPT") or os.path.join(SRC, "scripts", "kafka.sh")
PORT = int(os.environ.get("SMC_KAFKA3_PORT", "24092"))
LOCK = os.path.join(MACHINES, "lock.yaml")
PARTITIONS = 4


class Brokers:
    """scripts/kafka.sh with KAFKA_BROKERS=3 on PORT."""

    def __init__(self):
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("KAFKA_") or k == "KAFKA_VERSION"}
        self.env.update(KAFKA_BROKERS="3", KAFKA_PORT=str(PORT))
        self.boot = ",".join("127.0.0.1:%d" % (PORT + 2 * i) for i in range(3))

    def run(self, *args, timeout=300, check=True, fresh=False):
        env = dict(self.env, KAFKA_FRESH="1") if fresh else self.env
        r = subprocess.run([KAFKA_SH] + [str(a) for a in args], env=env, capture_output=True,
                           text=True, timeout=timeout)
        assert not check or r.returncode == 0, (args, r.stdout, r.stderr[-3000:])
        return r

    def running(self):
        out = self.run("status", check=False).stdout
        return [i for i in (1, 2, 3) if "broker %d: running" % i in out]

    def leader(self, topic, partition):
        return int(self.run("leader", topic, partition).stdout.strip())

    def kill(self, i):
        self.run("kill", i)

    def start(self, i):
        self.run("start-one", i)

    def whole(self):
        """Every broker up and every partition fully replicated."""
        for i in set((1, 2, 3)) - set(self.running()):
            self.start(i)
        self.run("wait-in-sync", 180, timeout=240)


def _sigterm(signum, frame):
    # ctest's timeout or a CI cancel: unwind so the brokers get stopped
    sys.exit(128 + signum)


@pytest.fixture(scope="module")
def brokers():
    if not shutil.which("java"):
        if os.environ.get("SMC_BOOTSTRAP"):
            pytest.fail("java not found: make test runs the three-broker tests")
        pytest.skip("java not found (scripts/deps.sh test)")
    b = Brokers()
    b.run("stop", check=False)  # leftovers of a run that was killed
    old = signal.signal(signal.SIGTERM, _sigterm)
    try:
        b.run("start", fresh=True)
        yield b
    finally:
        b.run("stop", check=False, timeout=120)
        signal.signal(signal.SIGTERM, old)


@pytest.fixture
def c3(brokers, tmp_path):
    brokers.whole()
    c = Cluster(tmp_path, partitions=PARTITIONS, boot=brokers.boot, replication=3)
    yield c
    c.close()


class Load:
    """procs loadgen processes (objects x ops each at rate/s) and probes
    threads running `smc propose lock <fresh object> create --wait 5s` in a
    loop, each proposal's outcome recorded with its time."""

    def __init__(self, cluster, tag, procs=3, objects=30, ops=40, rate=40, probes=2):
        self.cluster, self.tag = cluster, tag
        self.spec = (objects, ops)
        self.t0 = time.monotonic()
        self.gens = [cluster.loadgen("%s%d" % (tag, i), objects, ops, rate=rate)
                     for i in range(procs)]
        self.stop = threading.Event()
        self.t_fault = None
        self.probes = []  # (call, ret, rc, id, answer or None, stderr tail)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.probe, args=(k,), daemon=True)
                        for k in range(probes)]
        for t in self.threads:
            t.start()

    def probe(self, k):
        n = 0
        while not self.stop.is_set():
            n += 1
            obj = "%s-pr%d-%d" % (self.tag, k, n)
            call = time.monotonic()
            rc, conf, r = self.cluster.propose("lock", obj, "create", wait="5s", pid=obj)
            ret = time.monotonic()
            with self.lock:
                self.probes.append((call, ret, rc, obj, conf, r.stderr[-300:]))
            time.sleep(0.05)

    def successes(self):
        with self.lock:
            return [p for p in self.probes if p[2] == 0 and p[4] and p[4].get("outcome") == "committed"]

    def finish(self, timeout=300):
        """Wait for the loadgens, stop the probes; (sent, maybe, answers)."""
        sent, maybe = [], []
        objects, ops = self.spec
        for i, g in enumerate(self.gens):
            out, _ = g.communicate(timeout=timeout)
            assert g.returncode == 0, out
            failed = set(json.loads(out)["failed"])
            ids = loadgen_ids("%s%d" % (self.tag, i), objects, ops)
            sent += [p for p in ids if p not in failed]
            maybe += [p for p in ids if p in failed]
        time.sleep(2)
        self.stop.set()
        for t in self.threads:
            t.join(timeout=150)
        self.end = time.monotonic()
        answers = [p[4] for p in self.successes()]
        # a probe answer is 0 (committed) or 3 (outcome unknown): anything
        # else is a write that did not fail cleanly
        bad = [p for p in self.probes if p[2] not in (0, 3) or (p[2] == 0 and p not in
                                                                 self.successes())]
        assert not bad, "probes neither committed nor unknown: %s" % bad[:5]
        sent += ["warm-up"] + [a["proposal"] for a in answers]
        maybe += [p[3] for p in self.probes if p[2] == 3]
        return sent, maybe, answers

    def fault(self):
        """Marks the start of the fault: gaps are measured from here."""
        self.t_fault = time.monotonic()

    def longest_gap(self):
        """Longest time (s) without a successful answer from the fault to
        the end of the load, and when it began (s after the fault)."""
        ts = sorted([self.t_fault] + [p[1] for p in self.successes() if p[1] > self.t_fault] +
                    [self.end])
        gaps = [(b - a, a - self.t_fault) for a, b in zip(ts, ts[1:])]
        return max(gaps)


def report(capsys, case, load, extra=""):
    gap, at = load.longest_gap()
    ok = len(load.successes())
    # producers the transaction watchdog gave up on (a call librdkafka never
    # returned from: docs/operations.md "The transaction watchdog")
    stuck = sum(w.log().count("abandoning the transactional producer")
                for w in load.cluster.workers)
    line = ("brokers3 %s: longest gap between successful proposals %.1f s (from %.1f s after "
            "the fault); %d probe proposals, %d committed, %d unknown; load %.0f s; %d producers "
            "abandoned%s" %
            (case, gap, at, len(load.probes), ok, sum(1 for p in load.probes if p[2] == 3),
             load.end - load.t0, stuck, extra))
    with capsys.disabled():
        print("\n" + line, flush=True)
    return gap


def start_workers(c3):
    for i in (1, 2, 3):
        c3.worker("n%d" % i, voter="node-%d" % i)
    c3.apply(LOCK)
    # every committer in the group before the load, so that the group's
    # first rebalances do not count as the fault's
    assert wait_for(lambda: all("committer: assigned" in w.log() for w in c3.workers), 120), \
        [w.log()[-2000:] for w in c3.workers]
    # a first proposal commits
    rc, conf, r = c3.propose("lock", "warm-up", "create", wait="60s", pid="warm-up")
    assert rc == 0, r.stdout + r.stderr


def last_lines(c3):
    """Each worker's committer's last log line: a committer wedged inside
    librdkafka past the watchdog (docs/operations.md, "The transaction
    watchdog") logs nothing more, while its voter may."""
    out = []
    for w in c3.workers:
        lines = [l for l in w.log().splitlines() if 'msg="committer:' in l]
        out.append("%s: %s" % (w.name, lines[-1][:200] if lines else "-"))
    return "\n".join(out)


def finish(c3, load):
    sent, maybe, answers = load.finish()
    try:
        confs = check_storm(c3, sent, [LOCK], maybe)
    except AssertionError as e:
        raise AssertionError("%s\nlast log line of each worker (now %s):\n%s" %
                             (e, time.strftime("%H:%M:%S", time.gmtime()), last_lines(c3)))
    check_client_answers(confs, answers)
    r = c3.smc("verify", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    for w in c3.workers:
        assert w.alive(), w.log()[-3000:]
    for w in c3.workers:
        assert w.stop() == 0, w.log()[-3000:]
    return sent


def busy_leader(brokers, c3, tag):
    """The leader of the proposals partition of the loadgen's first object."""
    p = partition_of("%s0-o0" % tag, PARTITIONS)
    return brokers.leader(c3.prefix + "proposals", p)


def test_a_leader_sigkill(brokers, c3, capsys):
    start_workers(c3)
    load = Load(c3, "a", ops=40)
    time.sleep(6)
    victim = busy_leader(brokers, c3, "a")
    load.fault()
    brokers.kill(victim)
    time.sleep(20)
    brokers.start(victim)
    sent = finish(c3, load)
    assert len(sent) > 3000
    report(capsys, "(a) SIGKILL of leader broker %d" % victim, load)


def test_b_rolling_restart(brokers, c3, capsys):
    start_workers(c3)
    load = Load(c3, "b", ops=60)
    time.sleep(5)
    load.fault()
    for i in (1, 2, 3):
        brokers.run("restart-one", i)
        brokers.run("wait-in-sync", 180, timeout=240)
    sent = finish(c3, load)
    assert len(sent) > 3000
    report(capsys, "(b) rolling restart", load)


def test_c_broker_and_worker_sigkill(brokers, c3, capsys):
    start_workers(c3)
    load = Load(c3, "c", ops=40)
    time.sleep(6)
    victim = busy_leader(brokers, c3, "c")
    w = c3.workers[0]
    load.fault()
    k = subprocess.Popen([KAFKA_SH, "kill", str(victim)], env=brokers.env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    w.kill()
    assert k.wait(timeout=60) == 0
    time.sleep(2)
    w.start()
    time.sleep(18)
    brokers.start(victim)
    sent = finish(c3, load)
    assert len(sent) > 3000
    report(capsys, "(c) SIGKILL of leader broker %d and worker %s" % (victim, w.name), load)


def test_d_two_brokers_down(brokers, c3, capsys):
    start_workers(c3)
    load = Load(c3, "d", ops=50)
    time.sleep(6)
    first = busy_leader(brokers, c3, "d")
    second = first % 3 + 1
    load.fault()
    ks = [subprocess.Popen([KAFKA_SH, "kill", str(i)], env=brokers.env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
          for i in (first, second)]
    assert all(k.wait(timeout=60) == 0 for k in ks)
    t_down = time.monotonic()
    time.sleep(25)
    t_back = time.monotonic()
    brokers.start(first)
    t_started = time.monotonic()
    # writes resume with one broker back (two of three replicas, a
    # controller majority)
    assert wait_for(lambda: any(p[0] > t_back for p in load.successes()), 180, step=1), \
        "no proposal committed within 180 s of broker %d's return" % first
    resumed = min(p[1] for p in load.successes() if p[0] > t_back)
    brokers.start(second)
    sent = finish(c3, load)
    # no write succeeded while two brokers were down: every probe that ran
    # entirely inside the outage answered "unknown" (exit 3)
    inside = [p for p in load.probes if p[0] > t_down + 1 and p[1] < t_back]
    assert inside, "no probe ran while two brokers were down"
    assert all(p[2] == 3 for p in inside), [p for p in inside if p[2] != 3][:5]
    assert len(sent) > 3000
    report(capsys, "(d) brokers %d and %d SIGKILLed for %.0f s" % (first, second,
                                                                   t_back - t_down), load,
           "; first commit %.1f s after start-one %d began (%.1f s after it returned)" %
           (resumed - t_back, first, resumed - t_started))


# ---- a worker from docker/Dockerfile's image --------------------------------

IMAGE = "localhost/smc:brokers3-test"
BASE = "docker.io/library/debian:12"


def podman_flags():
    """(global, run) podman arguments that run a container here: none, or
    runc with the open-file and process limits below the caller's (crun
    cannot set rlimits nor use hybrid cgroups inside some containers).
    Skips when podman, the base image or a working runtime is missing."""
    if not shutil.which("podman"):
        pytest.skip("podman not found (apt-get install podman)")
    if subprocess.run(["podman", "image", "exists", BASE]).returncode != 0:
        r = subprocess.run([os.path.join(SRC, "scripts", "podman-base.sh")], capture_output=True,
                           text=True, timeout=900)
        if r.returncode != 0:
            pytest.skip("no %s image and scripts/podman-base.sh failed: %s" % (BASE,
                                                                              r.stderr[-500:]))
    limits = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]
    tries = [([], [])]
    if shutil.which("runc"):
        tries.append((["--runtime", shutil.which("runc")], limits))
    why = ""
    for g, run in tries:
        r = subprocess.run(["podman"] + g + ["run", "--rm", "--network", "host"] + run +
                           [BASE, "true"], capture_output=True, text=True, timeout=300)
        if r.returncode == 0:
            return g, run
        why += r.stderr[-300:]
    pytest.skip("podman cannot run a container here: %s" % why)


def test_e_worker_in_container(brokers, c3, capsys):
    g, run = podman_flags()
    t0 = time.monotonic()
    r = subprocess.run(["podman"] + g + ["build", "--network", "host", "--pull=never"] + run +
                       ["-f", os.path.join(SRC, "docker", "Dockerfile"), "-t", IMAGE, SRC],
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    built = time.monotonic() - t0
    name = "smc-" + c3.prefix.rstrip(".")
    http = "127.0.0.1:%d" % (PORT + 50)
    # docker/compose.yaml's smc-1, on this cluster's brokers, prefix and port
    cmd = ["worker", "--bootstrap", brokers.boot, "--prefix", c3.prefix, "--node-id", "node-1",
           "--voter", "node-1", "--http", http, "--data-dir", "/var/lib/smc"]
    r = subprocess.run(["podman"] + g + ["run", "-d", "--name", name, "--network", "host"] + run +
                       [IMAGE] + cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    try:
        c3.apply(LOCK)
        rc, conf, r = c3.propose("lock", "in-container", "create", wait="90s", pid="ic-1")
        logs = subprocess.run(["podman"] + g + ["logs", name], capture_output=True, text=True)
        assert rc == 0 and conf["outcome"] == "committed", \
            r.stdout + r.stderr + logs.stdout[-2000:] + logs.stderr[-2000:]
        assert "committer: joined group" in logs.stdout + logs.stderr
        # the gateway answers from inside the container
        import urllib.request
        with urllib.request.urlopen("http://%s/machine/lock/object/in-container" % http,
                                    timeout=30) as resp:
            assert json.loads(resp.read())["version"] == 1
        r = subprocess.run(["podman"] + g + ["stop", "-t", "30", name], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        code = subprocess.run(["podman"] + g + ["inspect", "--format", "{{.State.ExitCode}}",
                                                 name], capture_output=True, text=True).stdout
        assert code.strip() == "0", code  # SIGTERM: a clean stop
    finally:
        subprocess.run(["podman"] + g + ["rm", "-f", name], capture_output=True, timeout=120)
    with capsys.disabled():
        print("\nbrokers3 (e): worker from %s (built in %.0f s) committed on the three brokers"
              % (IMAGE, built), flush=True)
