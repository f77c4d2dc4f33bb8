"""The committer's watchdog (kafka/txn.h, operations.md "Transaction
watchdog"): a transactional call that never returns (librdkafka issues
#5456, #5511, made to happen here with SMC_FAULT_TXN_HANG) is given up
after --txn-deadline-ms; the producer is abandoned, a new one with the same
transactional.id fences it, and the committer goes on from the group's
committed offsets. Under load, with the storm tests' checks: every proposal
confirmed exactly once, versions gapless, final states equal to `smc
simulate` over the log.
  (a) send_offsets_to_transaction hangs before librdkafka sees it: the open
      transaction is settled (aborted) by the new producer's fencing;
  (b) commit_transaction hangs after it committed: the outcome is unknown
      to the committer, which reads it back from the committed offsets;
  (c) SIGTERM while a commit hangs (deadline far away): the worker still
      stops within the stop grace, and a restart picks up."""
import json
import os
import re
import time
import urllib.request

import pytest

from conftest import MACHINES, check_storm, loadgen_ids, wait_for

LOCK = os.path.join(MACHINES, "lock.yaml")


def metric(w, name):
    m = re.search(r'http gateway on ([0-9.]+:[0-9]+)', w.log())
    with urllib.request.urlopen("http://%s/metrics" % m.group(1), timeout=10) as r:
        text = r.read().decode()
    m = re.search(r"^%s (\S+)$" % name, text, re.M)
    return float(m.group(1)) if m else None


def run_load(cluster, tag, procs=2, objects=20, ops=20, rate=100):
    gens = [cluster.loadgen("%s%d" % (tag, i), objects, ops, rate=rate) for i in range(procs)]
    sent = []
    for i, g in enumerate(gens):
        out, _ = g.communicate(timeout=300)
        assert g.returncode == 0
        failed = set(json.loads(out)["failed"])
        sent += [p for p in loadgen_ids("%s%d" % (tag, i), objects, ops) if p not in failed]
    return sent


def hung_worker(cluster, name, fault, deadline_ms):
    w = cluster.worker(name, extra=["--txn-deadline-ms", str(deadline_ms), "--http",
                                    "127.0.0.1:0"],
                       env={"SMC_FAULT_TXN_HANG": fault})
    assert wait_for(lambda: "http gateway on" in w.log(), 60), w.log()[-3000:]
    return w


def check_recovered(cluster, w, call):
    log = w.log()
    assert "%s hangs now" % call in log, log[-3000:]
    assert re.search(r"%s did not return within \d+ ms: abandoning" % call, log), log[-3000:]
    # the first producer, then the one that fenced it
    assert len(re.findall(r"transactional producer \S+-committer-%s ready" % w.name, log)) >= 2
    assert metric(w, "smc_committer_producer_abandoned_total") == 1
    assert metric(w, "smc_committer_producer_rebuilds_total") >= 1


@pytest.mark.parametrize("fault,call", [
    ("send_offsets:30", "send_offsets_to_transaction"),  # (a)
    ("commit:30:after", "commit_transaction"),  # (b)
])
def test_call_hangs(cluster, fault, call):
    w = hung_worker(cluster, "w1", fault, 3000)
    cluster.apply(LOCK)
    sent = run_load(cluster, fault[0])
    check_storm(cluster, sent, [LOCK], timeout=180)
    check_recovered(cluster, w, call)
    assert w.stop(timeout=40) == 0, w.log()[-3000:]


def test_stop_while_a_commit_hangs(cluster):
    # the deadline is far away: only the stop bounds the wait
    w = hung_worker(cluster, "w1", "commit:30", 600000)
    cluster.apply(LOCK)
    gens = [cluster.loadgen("t0", 20, 20, rate=100)]
    assert wait_for(lambda: "commit_transaction hangs now" in w.log(), 120), w.log()[-3000:]
    t0 = time.monotonic()
    assert w.stop(timeout=40) == 0, w.log()[-3000:]
    took = time.monotonic() - t0
    assert took < 30, took
    assert re.search(r"commit_transaction did not return within \d+ ms \(stopping\)", w.log())
    out, _ = gens[0].communicate(timeout=300)
    assert gens[0].returncode == 0
    failed = set(json.loads(out)["failed"])
    sent = [p for p in loadgen_ids("t0", 20, 20) if p not in failed]
    w.env = None  # restarted without the fault: it folds on from the committed offsets
    w.start()
    check_storm(cluster, sent, [LOCK], timeout=180)
    print("stop while a commit hangs: %.1f s" % took)
    assert w.stop() == 0, w.log()[-3000:]
