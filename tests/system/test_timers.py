"""(f) A lease on an idle partition expires within TTL + 2 x tick interval:
the committer writes ticks while a timer is pending, so the expiry fires
without any other traffic on the partition."""
import os
import time

from conftest import HERE


def test_lease_expires_on_idle_partition(cluster):
    cluster.worker("n1", voter="node-1")
    cluster.apply(os.path.join(HERE, "machines", "shortlease.yaml"))
    rc, conf, r = cluster.propose("shortlease", "l-1", "create")
    assert rc == 0 and conf["outcome"] == "committed", r.stdout + r.stderr
    rc, acq, r = cluster.propose("shortlease", "l-1", "acquire", {"holder": "svc-a"})
    assert rc == 0 and acq["outcome"] == "committed", r.stdout + r.stderr
    t_acq = time.time()
    ttl, tick = 2000, cluster.tick_ms
    expired = None
    while time.time() - t_acq < 30 and expired is None:
        time.sleep(0.5)
        for c in cluster.confirmations():
            if c["object"] == "l-1" and c.get("transition") == "expire":
                expired = c
    assert expired is not None, "the lease never expired"
    assert expired["outcome"] == "committed" and expired["state"] == "available"
    assert expired["version"] == acq["version"] + 1
    # Partition clock (LogAppendTime): fired at least TTL and at most
    # TTL + 2 ticks after the acquire.
    dt = expired["time"] - acq["updated"]  # the CLI says updated (REST's name)
    assert ttl <= dt <= ttl + 2 * tick, dt
    # Nothing but ticks moved the clock: no other proposals were written.
    recs = [x["value"] for x in cluster.export("proposals")]
    ticks = [v for v in recs if isinstance(v, dict) and v.get("type") == "tick"]
    assert ticks, "no ticks were written"
    # Far from the deadline only keep-alive ticks: about one at the start and
    # a few around the deadline, not one every tick for the whole TTL.
    assert len(ticks) <= ttl // tick // 2, len(ticks)
    # Once no timer is pending the ticks stop.
    n = len(ticks)
    time.sleep(2)
    recs = [x["value"] for x in cluster.export("proposals")]
    assert len([v for v in recs if isinstance(v, dict) and v.get("type") == "tick"]) <= n + 1
