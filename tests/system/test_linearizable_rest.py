"""Linearizability over REST, with writes answered at decision and reads
answered from the local fold: 3 workers each serve the gateway (`--http`),
8 client threads send PUTs (expect_version, Idempotency-Key, the default
?ack=decided) and GETs of two objects to a random gateway, while workers are
SIGKILLed and restarted and the broker itself is restarted once. Every
operation's invocation and response time is recorded, and each object's
history must pass the checker in tests/system/linearizability.py.

A PUT that gets no answer (connection refused or reset, 5xx, timeout) counts
as "may have happened"; a failed GET constrains nothing. At the end the
workers' metrics must show that answers came from the folds.

A second test: with one worker (which folds every partition), 500 GETs add
no record to the proposals topic."""
import http.client
import json
import os
import random
import socket
import threading
import time

from conftest import wait_for
from linearizability import check
from test_linearizable import REG, can_restart_broker, restart_broker

CLIENTS = 8
DURATION = 90.0
KILLS = 4
OBJECTS = ("lin-a", "lin-b")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=10):
    """(status, parsed JSON or None); status None when there was no answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        h = {"Content-Type": "application/json"} if data else {}
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, None
    except (OSError, http.client.HTTPException):
        return None, None
    finally:
        conn.close()


def metric(port, name):
    """Sum of a counter's samples on /metrics (0 when absent or unreachable)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.split()[-1])
    return total


def test_rest_register_is_linearizable_with_answers_from_the_fold(cluster):
    ports = {}
    for i in (1, 2, 3):
        name = "n%d" % i
        ports[name] = free_port()
        cluster.worker(name, extra=["--http", "127.0.0.1:%d" % ports[name]])
    path = os.path.join(cluster.tmp, "reg.yaml")
    with open(path, "w") as f:
        f.write(REG)
    cluster.apply(path)
    for p in ports.values():
        assert wait_for(lambda p=p: request(p, "GET", "/readyz")[0] == 200, 90), p
        assert wait_for(lambda p=p: request(p, "GET", "/machine/reg")[0] == 200, 60), p
    st, body = request(ports["n1"], "PUT", "/machine/reg/object/lin-warm/transition/create?wait=60s",
                       {"v": 0}, timeout=70)
    assert st == 200, body

    histories = {o: [] for o in OBJECTS}
    lock = threading.Lock()
    start = time.monotonic()
    done = threading.Event()
    errors = []

    def client(k):
        rng = random.Random(k)
        known = {o: 0 for o in OBJECTS}
        n = 0
        try:
            while not done.is_set():
                obj = rng.choice(OBJECTS)
                port = rng.choice(list(ports.values()))
                n += 1
                if rng.random() < 0.4:
                    t0 = time.monotonic()
                    st, rep = request(port, "GET", "/machine/reg/object/%s?wait=5s" % obj)
                    t1 = time.monotonic()
                    if st == 200 and rep:
                        op = {"kind": "read", "result": "ok", "version": rep["version"],
                              "value": rep.get("data", {}).get("v")}
                        known[obj] = max(known[obj], rep["version"])
                    elif st == 404 and rep and rep["error"]["code"] == "unknown_object":
                        op = {"kind": "read", "result": "ok", "version": 0, "value": None}
                    else:
                        op = {"kind": "read", "result": "fail"}
                else:
                    expect = known[obj]
                    value = "%d-%d" % (k, n)
                    tr = "create" if expect == 0 else "write"
                    t0 = time.monotonic()
                    st, conf = request(
                        port, "PUT",
                        "/machine/reg/object/%s/transition/%s?expect_version=%d&wait=5s" %
                        (obj, tr, expect), {"v": value},
                        headers={"Idempotency-Key": "lin-%d-%d" % (k, n)})
                    t1 = time.monotonic()
                    op = {"kind": "propose", "expect": expect, "value": value}
                    if st == 200 and conf and conf.get("version"):
                        op.update(result="committed", version=conf["version"])
                        known[obj] = conf["version"]
                    elif st in (404, 409, 412, 422) and conf and conf.get("error", {}).get(
                            "code") in ("version_conflict", "object_exists", "unknown_object"):
                        op["result"] = "rejected"
                        known[obj] = max(known[obj], conf.get("version") or 0)
                    elif st is None or st >= 500:
                        op["result"] = "unknown"
                    else:
                        op["result"] = "failed"
                        errors.append((op, st, conf))
                op.update(call=t0, ret=t1, client=k)
                with lock:
                    histories[obj].append(op)
                # paced: answered from the folds, the clients would make a
                # history (tens of thousands of operations) the checker's
                # search takes minutes and gigabytes over
                time.sleep(rng.uniform(0.05, 0.1))
        except Exception as e:  # surfaced by the assertion below
            errors.append(("exception", repr(e)))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    rng = random.Random(17)
    kills = restarts = 0
    restarted_at = None
    restart = can_restart_broker()
    try:
        time.sleep(8)
        step = 0
        while kills < KILLS or time.monotonic() < start + DURATION - 12:
            step += 1
            if step == 3 and restart:
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
    assert not errors, "unexpected answers: %s" % errors[:3]
    assert kills >= KILLS

    total = sum(len(h) for h in histories.values())
    committed = sum(1 for h in histories.values() for o in h if o.get("result") == "committed")
    reads = sum(1 for h in histories.values() for o in h
                if o["kind"] == "read" and o["result"] == "ok")
    unknown = sum(1 for h in histories.values() for o in h if o.get("result") == "unknown")
    print("linearizable rest: %d operations (%d committed, %d reads ok, %d unknown), %d kills, "
          "%d broker restarts, %.0f s of load" % (total, committed, reads, unknown, kills, restarts,
                                                  time.monotonic() - start))
    assert total >= 200 and committed >= 20 and reads >= 20
    if restarted_at is not None:
        after = sum(1 for h in histories.values() for o in h
                    if o.get("result") == "committed" and o["call"] > restarted_at)
        assert after >= 5, after
    for obj, h in histories.items():
        ok, why = check(h)
        assert ok, "object %s: %s" % (obj, why)

    # the answers came from the folds (a gateway whose node does not fold the
    # object's partition reads through the log and waits for smc.confirmations)
    assert wait_for(lambda: all(request(p, "GET", "/readyz")[0] == 200 for p in ports.values()), 90)
    fold_reads = sum(metric(p, 'smc_gateway_reads_total{source="fold"}') for p in ports.values())
    fold_writes = sum(metric(p, 'smc_gateway_answers_total{source="fold"}')
                      for p in ports.values())
    print("linearizable rest: since the last restarts %d reads and %d writes answered by a local "
          "fold" % (fold_reads, fold_writes))
    assert fold_reads > 0 and fold_writes > 0
    for w in cluster.workers:
        assert w.stop(timeout=120) == 0, w.log()[-3000:]


def end_offsets(cluster):
    return len(cluster.export("proposals"))


def test_rest_reads_write_nothing_to_the_log(cluster):
    port = free_port()
    cluster.worker("solo", extra=["--http", "127.0.0.1:%d" % port])
    cluster.apply(_reg(cluster))
    assert wait_for(lambda: request(port, "GET", "/readyz")[0] == 200, 90)
    assert wait_for(lambda: request(port, "GET", "/machine/reg")[0] == 200, 60)
    st, body = request(port, "PUT", "/machine/reg/object/quiet/transition/create?wait=30s",
                       {"v": 1}, timeout=40)
    assert st == 200, body
    before = end_offsets(cluster)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(500):
        conn.request("GET", "/machine/reg/object/quiet")
        resp = conn.getresponse()
        rep = json.loads(resp.read())
        assert resp.status == 200 and rep["version"] == 1 and rep["data"] == {"v": 1}, rep
    conn.close()
    # a write right before a read is seen by it (read-your-writes through the fold)
    for v in range(2, 12):
        st, conf = request(port, "PUT", "/machine/reg/object/quiet/transition/write"
                           "?expect_version=%d" % (v - 1), {"v": v})
        assert st == 200 and conf["version"] == v, conf
        st, rep = request(port, "GET", "/machine/reg/object/quiet")
        assert st == 200 and rep["version"] == v, rep
    after = end_offsets(cluster)
    assert after - before == 10, (before, after)  # the ten writes, no read event
    assert metric(port, 'smc_gateway_reads_total{source="fold"}') == 510
    assert metric(port, 'smc_gateway_reads_total{source="log"}') == 0
    # ?ack=confirmed answers only once the confirmation is committed
    st, conf = request(port, "PUT", "/machine/reg/object/quiet/transition/write"
                       "?expect_version=11&ack=confirmed", {"v": 12})
    assert st == 200 and conf["version"] == 12, conf
    assert metric(port, 'smc_gateway_answers_total{source="confirmations"}') >= 1
    st, body = request(port, "PUT", "/machine/reg/object/quiet/transition/write?ack=maybe", {})
    assert st == 400 and body["error"]["code"] == "bad_request", body
    assert cluster.workers[0].stop() == 0


def _reg(cluster):
    path = os.path.join(cluster.tmp, "reg.yaml")
    with open(path, "w") as f:
        f.write(REG)
    return path
