"""(d) SIGSTOP a worker past its session timeout under load, then SIGCONT:
the group moves its partitions on, the stopped worker is fenced (its
transaction can no longer commit), publishes nothing stale, and rejoins."""
import json
import os
import signal
import time

from conftest import MACHINES, check_exactly_once, loadgen_ids, wait_for


def test_sigstop_past_session_timeout(cluster):
    n1 = cluster.worker("n1", voter="node-1")
    cluster.worker("n2", voter="node-2")
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    # Both committers must own partitions before n1 is frozen.
    assert wait_for(lambda: all("committer: assigned; serving" in w.log()
                                for w in cluster.workers), 60)
    time.sleep(2)
    gens = [cluster.loadgen("s%d" % i, 50, 30, rate=150) for i in range(2)]
    time.sleep(3)
    n1.signal(signal.SIGSTOP)
    time.sleep(cluster.session_ms / 1000.0 + 8)
    mark = len(n1.log())
    n1.signal(signal.SIGCONT)
    sent = []
    for i, g in enumerate(gens):
        out, _ = g.communicate(timeout=120)
        assert g.returncode == 0
        failed = set(json.loads(out)["failed"])
        sent += [p for p in loadgen_ids("s%d" % i, 50, 30) if p not in failed]
    confs, missing = cluster.wait_confirmed(sent, timeout=180)
    assert not missing, sorted(missing)[:5]
    check_exactly_once(confs, sent)
    # After SIGCONT n1 learned it lost its partitions (revoked or fenced) and
    # rejoined: it owns partitions again.
    after = lambda: n1.log()[mark:]
    assert wait_for(lambda: any(m in after() for m in (
        "committer: revoked", "committer: aborting", "committer: re-creating")), 30), \
        after()[-3000:]
    assert wait_for(lambda: "assigned; serving" in after(), 60), after()[-3000:]
    assert n1.alive()
    r = cluster.smc("verify", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    for w in cluster.workers:
        assert w.stop() == 0, w.log()[-3000:]
