"""(c) Restart the Kafka broker mid-load (scripts/kafka.sh restart): the
committers' transactions fail or time out, they abort or re-create their
producers, resync from the committed offsets and carry on; afterwards every
proposal has exactly one confirmation. The broker is always left running."""
import json
import os
import subprocess
import time

from conftest import MACHINES, SRC, broker_up, check_exactly_once, loadgen_ids, wait_for

KAFKA_SH = os.path.join(SRC, "scripts", "kafka.sh")


def test_broker_restart_under_load(cluster):
    # scripts/kafka.sh restarts the broker on $KAFKA_PORT (make test exports
    # it); refuse to touch any other broker.
    port = os.environ.get("KAFKA_PORT", "9092")
    if os.environ.get("SMC_BOOTSTRAP", "127.0.0.1:9092") not in ("127.0.0.1:" + port,
                                                                 "localhost:" + port):
        import pytest
        pytest.skip("restarts only the local scripts/kafka.sh broker on $KAFKA_PORT")
    for i in (1, 2, 3):
        cluster.worker("n%d" % i, voter="node-%d" % i)
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    gens = [cluster.loadgen("b%d" % i, 40, 30, rate=100) for i in range(2)]
    time.sleep(4)
    try:
        r = subprocess.run([KAFKA_SH, "restart"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        if not broker_up():
            subprocess.run([KAFKA_SH, "start"], timeout=300)
    assert wait_for(broker_up, 60)
    sent = []
    for i, g in enumerate(gens):
        out, _ = g.communicate(timeout=300)
        assert g.returncode == 0
        failed = set(json.loads(out)["failed"])
        sent += [p for p in loadgen_ids("b%d" % i, 40, 30) if p not in failed]
    assert len(sent) > 1000
    confs, missing = cluster.wait_confirmed(sent, timeout=300)
    assert not missing, sorted(missing)[:5]
    check_exactly_once(confs, sent)
    for w in cluster.workers:
        assert w.alive(), w.log()[-3000:]
    r = cluster.smc("verify", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    for w in cluster.workers:
        assert w.stop() == 0, w.log()[-3000:]
