"""(e) Add and remove workers under load: committers join and leave the
group (clean SIGTERM stops) while proposals flow; every proposal still gets
exactly one confirmation and `smc verify` agrees."""
import json
import os
import time

from conftest import MACHINES, check_exactly_once, loadgen_ids


def test_add_and_remove_workers_under_load(cluster):
    n1 = cluster.worker("n1", voter="node-1")
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    gens = [cluster.loadgen("e%d" % i, 50, 40, rate=250) for i in range(2)]
    time.sleep(2)
    n2 = cluster.worker("n2", voter="node-2")
    time.sleep(3)
    n3 = cluster.worker("n3", voter="node-3")
    time.sleep(3)
    assert n1.stop() == 0, n1.log()[-3000:]  # a clean leave hands its partitions on
    time.sleep(2)
    cluster.worker("n4", voter="node-1")  # a second member of voter identity node-1
    time.sleep(2)
    assert n2.stop() == 0, n2.log()[-3000:]
    sent = []
    for i, g in enumerate(gens):
        out, _ = g.communicate(timeout=120)
        assert g.returncode == 0
        failed = set(json.loads(out)["failed"])
        sent += [p for p in loadgen_ids("e%d" % i, 50, 40) if p not in failed]
    confs, missing = cluster.wait_confirmed(sent, timeout=180)
    assert not missing, sorted(missing)[:5]
    check_exactly_once(confs, sent)
    # The clean leaves committed their last transaction before revoking.
    assert "committer: leaving group" in n1.log()
    r = cluster.smc("verify", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    for w in cluster.workers:
        if w.alive():
            assert w.stop() == 0, w.log()[-3000:]
    assert n3.proc.returncode == 0
