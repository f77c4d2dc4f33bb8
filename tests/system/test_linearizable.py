"""Linearizability of a versioned register on a real broker, while workers are
SIGKILLed and restarted and the broker itself is restarted once: 8 client
threads propose writes (`smc propose --expect-version N --wait`) and read
(`smc get`) two objects of a one-state register machine against 3 workers;
every operation's invocation and response time is recorded, and each object's
history must pass the checker in tests/system/linearizability.py. Timed-out
proposals (exit 3) count as "may have happened"; failed reads (exit 3)
constrain nothing.

The broker restart (scripts/kafka.sh restart) needs the local broker of
$KAFKA_PORT (make test exports it); against any other broker only the
workers are killed, and the test says so."""
import json
import os
import random
import subprocess
import threading
import time

from conftest import SRC, broker_up, wait_for
from linearizability import check

KAFKA_SH = os.path.join(SRC, "scripts", "kafka.sh")

REG = """name: reg
kind: ndfsm
description: a versioned register (linearizability test)
states:
  s: {}
transitions:
  create: {from: null, to: s}
  write: {from: s, to: s}
"""

CLIENTS = 8
DURATION = 90.0  # seconds of load at least; it goes on until every fault is done
KILLS = 4  # at least this many worker SIGKILLs, whatever the broker restart takes
OBJECTS = ("lin-a", "lin-b")


def can_restart_broker():
    port = os.environ.get("KAFKA_PORT", "9092")
    return os.environ.get("SMC_BOOTSTRAP", "127.0.0.1:9092") in ("127.0.0.1:" + port,
                                                                "localhost:" + port)


def restart_broker():
    try:
        r = subprocess.run([KAFKA_SH, "restart"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        if not broker_up():
            subprocess.run([KAFKA_SH, "start"], timeout=300)
    assert wait_for(broker_up, 60)


def test_register_is_linearizable_under_kills_and_broker_restart(cluster):
    for i in (1, 2, 3):
        cluster.worker("n%d" % i)
    path = os.path.join(cluster.tmp, "reg.yaml")
    with open(path, "w") as f:
        f.write(REG)
    cluster.apply(path)
    # every worker up: a first proposal commits
    rc, conf, r = cluster.propose("reg", "lin-warm", "create", {"v": 0}, wait="60s")
    assert rc == 0, r.stdout + r.stderr

    histories = {o: [] for o in OBJECTS}
    lock = threading.Lock()
    start = time.monotonic()
    done = threading.Event()  # set once the faults are over and the load ran long enough
    errors = []

    def client(k):
        rng = random.Random(k)
        known = {o: 0 for o in OBJECTS}
        n = 0
        try:
            while not done.is_set():
                obj = rng.choice(OBJECTS)
                n += 1
                if rng.random() < 0.4:
                    t0 = time.monotonic()
                    r = cluster.smc("get", obj, "--wait", "5s", timeout=60)
                    t1 = time.monotonic()
                    lines = r.stdout.strip().splitlines()
                    rep = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
                    if r.returncode == 0 and rep and rep.get("object") == obj:  # exit 0: found
                        op = {"kind": "read", "result": "ok", "version": rep["version"],
                              "value": rep.get("data", {}).get("v")}
                        known[obj] = max(known[obj], rep["version"])
                    elif r.returncode == 1 and "not found" in r.stderr:
                        op = {"kind": "read", "result": "ok", "version": 0, "value": None}
                    else:
                        op = {"kind": "read", "result": "fail"}
                else:
                    expect = known[obj]
                    value = "%d-%d" % (k, n)
                    tr = "create" if expect == 0 else "write"
                    t0 = time.monotonic()
                    r = cluster.smc("propose", "reg", obj, tr, "--data", json.dumps({"v": value}),
                                    "--expect-version", str(expect), "--id", "lin-%d-%d" % (k, n),
                                    "--wait", "5s", timeout=60)
                    t1 = time.monotonic()
                    out = r.stdout.strip().splitlines()
                    conf = json.loads(out[-1]) if out and out[-1].startswith("{") else None
                    op = {"kind": "propose", "expect": expect, "value": value}
                    if r.returncode == 0 and conf and conf.get("outcome") == "committed":
                        op.update(result="committed", version=conf["version"])
                        known[obj] = conf["version"]
                    elif r.returncode == 1 and conf and conf.get("error", {}).get("code") in (
                            "version_conflict", "object_exists", "unknown_object"):
                        op["result"] = "rejected"
                        known[obj] = max(known[obj], conf.get("version") or 0)
                    elif r.returncode == 3:
                        op["result"] = "unknown"
                    else:
                        op["result"] = "failed"
                        errors.append((op, r.returncode, r.stdout[-300:], r.stderr[-300:]))
                op.update(call=t0, ret=t1, client=k)
                with lock:
                    histories[obj].append(op)
        except Exception as e:  # surfaced by the assertion below
            errors.append(("exception", repr(e)))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    rng = random.Random(11)
    kills = restarts = 0
    restarted_at = None
    restart = can_restart_broker()
    if not restart:
        print("linearizable: SMC_BOOTSTRAP is not the local broker of $KAFKA_PORT: "
              "no broker restart, worker kills only")
    try:
        time.sleep(8)
        step = 0
        while kills < KILLS or time.monotonic() < start + DURATION - 12:
            step += 1
            if step == 3 and restart:
                # the third fault: the broker goes down and comes back (15-30 s)
                restart_broker()
                restarts += 1
                restarted_at = time.monotonic()
                time.sleep(8)
                continue
            w = rng.choice(cluster.workers)
            w.kill()
            kills += 1
            time.sleep(1.0)
            w.start()
            time.sleep(12)
    finally:
        done.set()
    for t in threads:
        t.join(timeout=120)
    assert not [e for e in errors if e[0] == "exception"], errors[:3]
    assert not errors, "unexpected proposal failures: %s" % errors[:3]
    assert kills >= KILLS
    assert restarts == (1 if restart else 0)

    total = sum(len(h) for h in histories.values())
    committed = sum(1 for h in histories.values() for o in h if o.get("result") == "committed")
    reads = sum(1 for h in histories.values() for o in h
                if o["kind"] == "read" and o["result"] == "ok")
    unknown = sum(1 for h in histories.values() for o in h if o.get("result") == "unknown")
    print("linearizable: %d operations (%d committed, %d reads ok, %d unknown), %d kills, "
          "%d broker restarts, %.0f s of load" % (total, committed, reads, unknown, kills, restarts,
                                                  time.monotonic() - start))
    assert total >= 100 and committed >= 10 and reads >= 10
    if restarted_at is not None:  # the cluster recovered: commits after the restart
        after = sum(1 for h in histories.values() for o in h
                    if o.get("result") == "committed" and o["call"] > restarted_at)
        print("linearizable: %d commits after the broker restart" % after)
        assert after >= 5, after
    for obj, h in histories.items():
        ok, why = check(h)
        assert ok, "object %s: %s" % (obj, why)
    for w in cluster.workers:
        assert w.stop() == 0, w.log()[-3000:]
