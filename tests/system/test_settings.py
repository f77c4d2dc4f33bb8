"""Fold settings live in the log, and a node whose code would decide
differently does not answer (docs/architecture.md, "Everything a decision
depends on is in the log").

On a real broker, one worker with its gateway:
- `smc cluster settings` changes a limit for every partition; the worker
  folds it from the log (GET /settings) and decides by it; a restarted
  worker (a fresh process over the same store) still does.
- a settings event written for a newer fold (`"fold": 99`) stops the one
  partition it is in: the worker neither decides nor answers for it (PUT and
  GET are 503 `incompatible_fold`, nothing is written), the other partitions
  go on, and after a SIGKILL and a restart the partition is still stopped at
  the same place with its objects unchanged.
"""
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import BIN, BOOT, SRC, Cluster, broker_up, partition_of, wait_for

LOCK = os.path.join(SRC, "examples", "machines", "lock.yaml")
RAWPRODUCE = os.environ.get("SMC_RAWPRODUCE") or os.path.join(
    os.path.dirname(BIN), "tests", "system", "smc_rawproduce")
PARTS = 4


def req(addr, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request("http://%s%s" % (addr, path), data=data, method=method,
                               headers={"Content-Type": "application/json",
                                        "Idempotency-Key": uuid.uuid4().hex})
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def this_start(w):
    """The log of the worker's latest start (the file keeps every start)."""
    return w.log().rsplit("=== start", 1)[-1]


def gateway(w):
    m = wait_for(lambda: re.search(r"http gateway on ([0-9.]+:[0-9]+)", this_start(w)), 60)
    assert m, w.log()[-3000:]
    addr = m.group(1)
    # ready: every partition assigned to this (only) worker and folded
    assert wait_for(lambda: len(req(addr, "GET", "/settings")[1].get("partitions", [])) == PARTS,
                    60), w.log()[-3000:]
    return addr


def obj_in(p, tag):
    """An object id in partition p."""
    i = 0
    while partition_of("%s-%d" % (tag, i), PARTS) != p:
        i += 1
    return "%s-%d" % (tag, i)


@pytest.fixture
def cluster(tmp_path):
    if not broker_up():
        if os.environ.get("SMC_BOOTSTRAP"):
            pytest.fail("no Kafka broker answers at %s" % BOOT)
        pytest.skip("no Kafka broker at %s (scripts/kafka.sh start)" % BOOT)
    c = Cluster(tmp_path, partitions=PARTS)
    yield c
    c.close()


def test_settings_from_the_log(cluster):
    w = cluster.worker("s1", extra=["--http", "127.0.0.1:0"])
    addr = gateway(w)
    cluster.apply(LOCK)
    assert wait_for(lambda: req(addr, "GET", "/machine/lock")[0] == 200, 60)
    st, body = req(addr, "GET", "/settings")
    assert all(not p["from_log"] and p["limits"]["max_data_bytes"] == 262144
               for p in body["partitions"]), body
    owner = {"owner": "svc-" + "a" * 40}
    assert req(addr, "PUT", "/machine/lock/object/big-0/transition/create?wait=30s")[0] == 200
    # max_data_bytes 20: the owner's data no longer fits
    r = cluster.smc("cluster", "settings", "--max-data-bytes", "20", "--timeout", "60s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["limits"]["max_data_bytes"] == 20, r.stdout
    st, body = req(addr, "GET", "/settings")
    assert all(p["from_log"] and p["limits"]["max_data_bytes"] == 20
               for p in body["partitions"]), body
    st, body = req(addr, "PUT", "/machine/lock/object/big-0/transition/acquire?wait=30s", owner)
    assert st == 422 and body["error"]["code"] == "too_large", (st, body)
    # a fresh process over the same store decides the same
    assert w.stop() == 0, w.log()[-3000:]
    w = cluster.worker("s1", extra=["--http", "127.0.0.1:0"])
    addr = gateway(w)
    st, body = req(addr, "PUT", "/machine/lock/object/big-0/transition/acquire?wait=30s", owner)
    assert st == 422 and body["error"]["code"] == "too_large", (st, body)
    r = cluster.smc("cluster", "settings", "--max-data-bytes", "262144", "--timeout", "60s")
    assert r.returncode == 0, r.stdout + r.stderr
    st, body = req(addr, "PUT", "/machine/lock/object/big-0/transition/acquire?wait=30s", owner)
    assert st == 200 and body["version"] == 2, (st, body)
    assert w.stop() == 0, w.log()[-3000:]


def test_newer_fold_stops_one_partition(cluster):
    if not os.path.exists(RAWPRODUCE):
        pytest.skip("build smc_rawproduce (tests/system/CMakeLists.txt)")
    w = cluster.worker("s2", extra=["--http", "127.0.0.1:0"])
    addr = gateway(w)
    cluster.apply(LOCK)
    assert wait_for(lambda: req(addr, "GET", "/machine/lock")[0] == 200, 60)
    stopped, other = 1, 2
    a, b = obj_in(stopped, "a"), obj_in(other, "b")
    for o in (a, b):
        st, body = req(addr, "PUT", "/machine/lock/object/%s/transition/create?wait=30s" % o)
        assert st == 200 and body["version"] == 1, (st, body)
    ev = json.dumps({"type": "settings", "fold": 99, "limits": {"max_queue": 5}}).encode()
    r = subprocess.run([RAWPRODUCE, BOOT, cluster.prefix + "proposals"],
                       input=("%d - %s\n" % (stopped, ev.hex())).encode(), capture_output=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr

    def refused():
        st, body = req(addr, "GET", "/machine/lock/object/%s" % a)
        return st == 503 and body["error"]["code"] == "incompatible_fold"
    assert wait_for(refused, 60), w.log()[-3000:]
    assert "stops here" in w.log(), w.log()[-3000:]
    st, body = req(addr, "PUT", "/machine/lock/object/%s/transition/acquire?wait=10s" % a,
                   {"owner": "svc-a"})
    assert st == 503 and body["error"]["code"] == "incompatible_fold", (st, body)
    assert "nothing was written" in body["error"]["message"], body
    # the other partitions go on
    st, body = req(addr, "PUT", "/machine/lock/object/%s/transition/acquire?wait=30s" % b,
                   {"owner": "svc-b"})
    assert st == 200 and body["version"] == 2, (st, body)
    st, body = req(addr, "GET", "/settings")
    assert sorted(p["partition"] for p in body["partitions"]) == [0, 2, 3], body
    with urllib.request.urlopen("http://%s/metrics" % addr, timeout=30) as resp:
        metrics = resp.read().decode()
    assert 'smc_partition_stopped{partition="%d"} 1' % stopped in metrics
    # SIGKILL and restart: the partition stops at the same record again, its
    # objects as they were (the settings record was never folded)
    w.kill()
    w = cluster.worker("s2", extra=["--http", "127.0.0.1:0"])
    m = wait_for(lambda: re.search(r"http gateway on ([0-9.]+:[0-9]+)", this_start(w)), 60)
    assert m, w.log()[-3000:]
    addr = m.group(1)
    assert wait_for(refused, 90), w.log()[-3000:]
    st, body = req(addr, "GET", "/machine/lock/object/%s" % b)
    assert st == 200 and body["version"] == 2, (st, body)
    # replaying the log stops there too, saying why
    r = cluster.smc("verify", timeout=300)
    assert r.returncode != 0 and "incompatible_fold" in (r.stdout + r.stderr), r.stdout + r.stderr
    assert w.stop() == 0, w.log()[-3000:]
