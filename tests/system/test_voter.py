"""Voters: a voter identity that joins late (fresh store) replays history
without voting on decided proposals, then votes on new ones; a proposal that
cannot reach its quorum expires at its vote deadline (ticks on an idle
partition)."""
import os
import time

from conftest import MACHINES, wait_for


def votes_by(cluster, voter):
    return [r["value"] for r in cluster.export("proposals")
            if isinstance(r["value"], dict) and r["value"].get("type") == "vote"
            and r["value"].get("voter") == voter]


def test_late_voter_and_vote_timeout(cluster):
    cluster.worker("n1", voter="node-1")
    n2 = cluster.worker("n2", voter="node-2")
    cluster.apply(os.path.join(MACHINES, "approval.yaml"))
    rc, c, r = cluster.propose("approval", "req-1", "request",
                               {"requester": "alice", "amount": 5}, proposer="alice")
    assert rc == 0 and c["outcome"] == "committed", r.stdout + r.stderr
    rc, c1, r = cluster.propose("approval", "req-1", "approve", wait="60s")
    assert rc == 0 and c1["outcome"] == "committed", r.stdout + r.stderr
    assert sorted(c1["votes"]["accept"]) == ["node-1", "node-2"]

    # node-3 joins with an empty store: it replays req-1's history, sees the
    # vote request, and also its decision: no vote on a decided proposal.
    n3 = cluster.worker("n3", voter="node-3", committer=False)
    assert wait_for(lambda: n3.log().count("caught up at offset") >= cluster.partitions, 60), \
        n3.log()[-2000:]
    time.sleep(1)
    assert votes_by(cluster, "node-3") == []

    # With node-2 stopped, req-2 needs node-3's vote (node-1 and node-2
    # alone could decide it before node-3 folds the request, and a voter
    # never votes on a decided proposal).
    assert n2.stop() == 0
    rc, c, r = cluster.propose("approval", "req-2", "request",
                               {"requester": "bob", "amount": 7}, proposer="bob")
    assert rc == 0 and c["outcome"] == "committed"
    rc, c2, r = cluster.propose("approval", "req-2", "approve", wait="60s")
    assert rc == 0 and c2["outcome"] == "committed", r.stdout + r.stderr
    assert sorted(c2["votes"]["accept"]) == ["node-1", "node-3"], c2
    assert wait_for(lambda: [v for v in votes_by(cluster, "node-3")
                             if v["proposal"] == c2["proposal"]], 30)
    assert all(v["proposal"] != c1["proposal"] for v in votes_by(cluster, "node-3"))

    # Only node-1 left voting: quorum 2 cannot be reached; the proposal
    # expires at its 10 s deadline, fired by ticks on an idle partition.
    assert n3.stop() == 0
    rc, c, r = cluster.propose("approval", "req-3", "request",
                               {"requester": "carol", "amount": 9}, proposer="carol")
    assert rc == 0 and c["outcome"] == "committed"
    t0 = time.time()
    rc, c3, r = cluster.propose("approval", "req-3", "approve", wait="40s")
    assert c3 is not None and c3["outcome"] == "expired", r.stdout + r.stderr
    assert c3["votes"]["accept"] == ["node-1"]
    assert 9 <= time.time() - t0 <= 25
