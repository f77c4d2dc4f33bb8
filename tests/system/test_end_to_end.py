"""(a) Three workers (committer + voter each), quorum 2: the lock and the
approval examples end to end, checked from the confirmations topic."""
import json
import os

from conftest import (MACHINES, HERE, check_exactly_once, final_states, loadgen_ids,
                      simulate_final_states)


def test_lock_and_approval(cluster):
    # node-3 rejects anything of amount 99999 through its hook; the others accept.
    hook = os.path.join(HERE, "reject_big.sh")
    for i in (1, 2, 3):
        cluster.worker("n%d" % i, voter="node-%d" % i, hook=hook if i == 3 else None)
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    cluster.apply(os.path.join(MACHINES, "approval.yaml"))

    # Lock traffic straight into the log from two producers.
    gens = [cluster.loadgen("a%d" % i, objects=20, ops=10) for i in range(2)]
    sent = []
    for i, g in enumerate(gens):
        out, _ = g.communicate(timeout=120)
        assert g.returncode == 0
        res = json.loads(out)
        assert res["failed"] == []
        sent += loadgen_ids("a%d" % i, 20, 10)

    # Approval: request (no votes) then approve (2 of 3 voters, automatic).
    rc, conf, r = cluster.propose("approval", "req-1", "request",
                                  {"requester": "alice", "amount": 10}, proposer="alice")
    assert rc == 0 and conf["outcome"] == "committed", r.stdout + r.stderr
    sent.append(conf["proposal"])
    rc, conf, r = cluster.propose("approval", "req-1", "approve", wait="60s")
    assert rc == 0 and conf["outcome"] == "committed", r.stdout + r.stderr
    assert conf["state"] == "approved"
    assert len(conf["votes"]["accept"]) >= 2
    sent.append(conf["proposal"])

    # A big amount: node-3's hook rejects, node-1 and node-2 accept: committed
    # with node-3 among the rejecters (once its vote landed first) or not.
    rc, conf, r = cluster.propose("approval", "req-2", "request",
                                  {"requester": "bob", "amount": 99999}, proposer="bob")
    assert rc == 0 and conf["outcome"] == "committed", r.stdout + r.stderr
    sent.append(conf["proposal"])
    rc, conf, r = cluster.propose("approval", "req-2", "approve", wait="60s")
    assert rc == 0 and conf["outcome"] == "committed", r.stdout + r.stderr
    assert "node-3" not in conf["votes"]["accept"]
    sent.append(conf["proposal"])

    # A rule failure is a rejection with a stable code, not a crash.
    rc, conf, r = cluster.propose("approval", "req-3", "request",
                                  {"requester": "carol", "amount": -5}, proposer="carol")
    assert conf is not None and conf["outcome"] == "rejected", r.stdout + r.stderr
    assert conf["error"]["code"] == "validation_failed"
    sent.append(conf["proposal"])

    confs, missing = cluster.wait_confirmed(sent)
    assert not missing, sorted(missing)[:10]
    versions = check_exactly_once(confs, sent)
    assert versions["req-1"] == [1, 2]
    assert len(versions) == 40 + 2  # 40 locks + req-1, req-2 (req-3 never created)

    # Replaying the log offline gives the same final states.
    assert simulate_final_states(cluster, [os.path.join(MACHINES, "lock.yaml"),
                                           os.path.join(MACHINES, "approval.yaml")]) \
        == final_states(confs)

    r = cluster.smc("verify")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["ok"] is True

    # The hook's reject is a real vote. Above, node-1 and node-2 may decide
    # req-2 before node-3 has folded the request (a voter never votes on a
    # decided proposal), so make node-3's vote necessary: with node-2
    # stopped, node-1 accepts and node-3's hook rejects: a second accept could
    # still come (2 of 3 voters have not rejected), so the proposal waits and
    # expires at its vote deadline with both votes recorded.
    assert cluster.workers[1].stop() == 0, cluster.workers[1].log()[-3000:]
    rc, conf, r = cluster.propose("approval", "req-4", "request",
                                  {"requester": "dan", "amount": 99999}, proposer="dan")
    assert rc == 0 and conf["outcome"] == "committed", r.stdout + r.stderr
    rc, conf, r = cluster.propose("approval", "req-4", "approve", wait="60s")
    assert conf is not None and conf["outcome"] == "expired", r.stdout + r.stderr
    assert conf["votes"] == {"accept": ["node-1"], "reject": ["node-3"]}, conf
    assert "voted reject on proposal" in cluster.workers[2].log()

    for w in cluster.workers:
        assert w.stop() == 0, w.log()[-3000:]
    assert "node stopped" in cluster.workers[0].log()
