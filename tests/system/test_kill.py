"""(b) SIGKILL a worker every few seconds under load (>= 5 kills, >= 20,000
proposals from 4 producer processes), restarting it on its data dir; then
every proposal has exactly one confirmation and `smc verify` agrees."""
import json
import os
import random
import time

from conftest import MACHINES, check_exactly_once, loadgen_ids


def test_sigkill_under_load(cluster):
    for i in (1, 2, 3):
        cluster.worker("n%d" % i, voter="node-%d" % i)
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    objects, ops, procs = 100, 50, 4  # 4 x 100 x 51 = 20,400 proposals
    gens = [cluster.loadgen("k%d" % i, objects, ops, rate=400) for i in range(procs)]
    rng = random.Random(7)
    kills = 0
    t0 = time.time()
    while kills < 5 or any(g.poll() is None for g in gens):
        time.sleep(3)
        w = rng.choice(cluster.workers)
        w.kill()
        kills += 1
        time.sleep(0.3)
        w.start()
        assert time.time() - t0 < 300, "load did not finish"
    sent = []
    for i, g in enumerate(gens):
        out, _ = g.communicate(timeout=60)
        assert g.returncode == 0
        res = json.loads(out)
        failed = set(res["failed"])
        sent += [p for p in loadgen_ids("k%d" % i, objects, ops) if p not in failed]
    assert len(sent) >= 20000 and kills >= 5
    confs, missing = cluster.wait_confirmed(sent, timeout=300)
    assert not missing, "%d never confirmed, e.g. %s" % (len(missing), sorted(missing)[:5])
    check_exactly_once(confs, sent)
    r = cluster.smc("verify", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    for w in cluster.workers:
        assert w.stop() == 0, w.log()[-3000:]
