"""`smc worker --http`: the node serves the REST gateway; /info reports its
node id, roles and the partitions its committer owns; /metrics carries the
committer's counters once it committed a transaction."""
import json
import os
import re
import subprocess
import urllib.request

from conftest import BIN, MACHINES, wait_for


def get(addr, path):
    try:
        with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_worker_serves_info_and_metrics(cluster):
    w = cluster.worker("h1", voter="node-1", extra=["--http", "127.0.0.1:0"])
    m = wait_for(lambda: re.search(r'http gateway on ([0-9.]+:[0-9]+)', w.log()), 30)
    assert m, w.log()[-3000:]
    addr = m.group(1)
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    rc, conf, r = cluster.propose("lock", "h-1", "create")
    assert rc == 0 and conf["outcome"] == "committed", r.stdout + r.stderr

    def info():
        st, body = get(addr, "/info")
        j = json.loads(body)
        return j if st == 200 and len(j["partitions"]) == cluster.partitions else None
    j = wait_for(info, 30)
    assert j, get(addr, "/info")
    assert j["node_id"] == "h1" and j["roles"] == "committer,voter,http"
    assert j["partitions"] == list(range(cluster.partitions))
    st, text = get(addr, "/metrics")
    assert st == 200
    assert re.search(r'^smc_confirmations_total\{machine="[a-z0-9._-]+",outcome="committed"\} [1-9]', text, re.M), text
    assert re.search(r'^smc_txn_commits_total [1-9]', text, re.M), text
    assert "smc_txn_commit_seconds_bucket" in text
    # the version `smc --version` prints (one source: CMake's project VERSION)
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.split()[1]
    assert re.search(r'^smc_build_info\{librdkafka="[0-9.]+",rocksdb="[0-9.]+",version="%s"\} 1$' % re.escape(version), text, re.M), text
    # every batch the committer folded was written to its store once
    assert re.search(r'^smc_store_write_seconds_count\{role="committer"\} [1-9]', text, re.M), text
    assert re.search(r'^smc_store_write_seconds_bucket\{role="committer",le="\+Inf"\} [1-9]',
                     text, re.M), text
    assert w.stop() == 0


def test_waiting_requests_hold_no_thread(cluster):
    """Hundreds of PUTs that wait for a decision (a voted transition with no
    voter running) are suspended, not parked on threads: the worker's thread
    count stays flat while they wait, each gets its own 202 when its wait
    ends, and a GET answers meanwhile (the HTTP threads are free)."""
    import threading
    import time
    w = cluster.worker("h1", extra=["--http", "127.0.0.1:0"])  # committer, no voter
    m = wait_for(lambda: re.search(r'http gateway on ([0-9.]+:[0-9]+)', w.log()), 30)
    assert m, w.log()[-3000:]
    addr = m.group(1)
    cluster.apply(os.path.join(MACHINES, "approval.yaml"))

    def call(method, path, body=None, timeout=30):
        req = urllib.request.Request("http://%s%s" % (addr, path), method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    assert wait_for(lambda: call("GET", "/readyz")[0] == 200, 60)
    assert wait_for(lambda: call("GET", "/machine/approval")[0] == 200, 60)
    n = 300
    for i in range(n):
        st, c = call("PUT", "/machine/approval/object/w-%03d/transition/request" % i,
                     {"requester": "ann", "amount": 5})
        assert st == 200, c
    threads_before = len(os.listdir("/proc/%d/task" % w.proc.pid))
    results = [None] * n

    def approve(i):
        results[i] = call("PUT", "/machine/approval/object/w-%03d/transition/approve?wait=4s" % i,
                          {})
    ts = [threading.Thread(target=approve, args=(i,)) for i in range(n)]
    start = time.monotonic()
    for t in ts:
        t.start()
    time.sleep(2)
    threads_waiting = len(os.listdir("/proc/%d/task" % w.proc.pid))
    st, got = call("GET", "/machine/approval/object/w-000", timeout=5)
    assert st == 200 and got["state"] == "pending", got
    assert time.monotonic() - start < 4, "a GET waited behind the waiting PUTs"
    for t in ts:
        t.join(60)
    # every waiter answered once, by its own deadline: pending, with its id
    assert all(r and r[0] == 202 and r[1]["status"] == "pending" for r in results), \
        [r for r in results if not r or r[0] != 202][:3]
    assert len({r[1]["proposal"] for r in results}) == n
    assert threads_waiting <= threads_before + 8, (threads_before, threads_waiting)
    assert w.stop() == 0


def test_locally_answered_proposals_commit_lazily(cluster):
    """A PUT the gateway answers from its own fold (ack=decided) is proposed
    with the header smc-ack: decided, and a batch of only such proposals is
    committed once --commit-max-interval-ms old, not every
    --commit-interval-ms: the answer does not wait for it. A proposal whose
    producer waits for its confirmation (ack=confirmed, a Kafka-native
    client) makes its batch urgent again: it commits at once, taking the
    held decisions with it. On stop the held batch is committed."""
    w = cluster.worker("h1", extra=["--http", "127.0.0.1:0", "--commit-max-interval-ms", "600000",
                                    "--commit-max-records", "100000"])
    m = wait_for(lambda: re.search(r'http gateway on ([0-9.]+:[0-9]+)', w.log()), 30)
    assert m, w.log()[-3000:]
    addr = m.group(1)
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))  # replies come in urgent batches

    def put(path, body, timeout=40):
        req = urllib.request.Request("http://%s%s" % (addr, path), method="PUT",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    assert wait_for(lambda: get(addr, "/readyz")[0] == 200, 60)
    assert wait_for(lambda: get(addr, "/machine/lock")[0] == 200, 60)
    held = []
    for i in range(5):
        st, body = put("/machine/lock/object/lazy-%d/transition/create" % i, {})
        assert st == 200 and body["state"] == "free", body
        held.append(body["proposal"])
    _, text = get(addr, "/metrics")
    assert re.search(r'^smc_gateway_answers_total\{source="fold"\} [5-9]', text, re.M), text
    # answered, in the log, decided; not yet confirmed: the batch is held
    ex = cluster.export("proposals")
    assert len([r for r in ex if r["value"].get("id") in held]) == 5
    assert not {c.get("proposal") for c in cluster.confirmations()} & set(held)
    # ack=confirmed: no header, an urgent batch, answered once committed
    st, body = put("/machine/lock/object/urgent-1/transition/create?ack=confirmed&wait=30s", {})
    assert st == 200 and body["state"] == "free", body
    confs, missing = cluster.wait_confirmed(held + [body["proposal"]], timeout=5)
    assert not missing, missing
    # a Kafka-native proposal is urgent too
    rc, conf, r = cluster.propose("lock", "urgent-2", "create", wait="30s")
    assert rc == 0 and conf["outcome"] == "committed", r.stdout + r.stderr
    # held again, then committed by the stop
    st, body = put("/machine/lock/object/lazy-9/transition/create", {})
    assert st == 200, body
    assert w.stop() == 0
    confs, missing = cluster.wait_confirmed([body["proposal"]], timeout=30)
    assert not missing, w.log()[-3000:]
