"""Where the committer's outputs go: confirmations on the input's partition
number; read replies to <prefix>replies; a reply_to naming a topic of the
cluster (here <prefix>replies) gets no copy (docs/protocol.md, reply_to
policy; copies to an allowed topic: test_security_kafka.py); a reply_to
naming a missing topic is logged and skipped without blocking the
partition."""
import json
import os
import subprocess

from conftest import BIN, BOOT, LOADGEN, MACHINES, wait_for


def send(cluster, event, key):
    p = subprocess.run([LOADGEN, "--bootstrap", BOOT, "--topic", cluster.prefix + "proposals",
                        "--key", key, "--value", json.dumps(event)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_confirmation_and_reply_destinations(cluster):
    w = cluster.worker("n1")
    outside = cluster.prefix.rstrip(".") + "-"  # a prefix that is not the cluster's
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    replies = cluster.prefix + "replies"
    send(cluster, {"type": "proposal", "id": "c1", "machine": "lock", "object": "o1",
                   "transition": "create", "reply_to": replies}, "o1")
    send(cluster, {"type": "proposal", "id": "c2", "machine": "lock", "object": "o1",
                   "transition": "acquire", "data": {"owner": "svc-a"},
                   "reply_to": outside + "nosuch"}, "o1")
    send(cluster, {"type": "read", "id": "r1", "object": "o1"}, "o1")
    send(cluster, {"type": "proposal", "id": "c3", "object": "o1", "transition": "release",
                   "data": {"owner": "svc-a"}}, "o1")
    confs, missing = cluster.wait_confirmed(["c1", "c2", "c3"], timeout=60)
    assert not missing, missing
    by_id = {c["proposal"]: c for c in confs}
    assert [by_id[i]["version"] for i in ("c1", "c2", "c3")] == [1, 2, 3]
    conf_recs = cluster.export("confirmations")
    prop_recs = cluster.export("proposals")
    part = {r["value"].get("id"): r["partition"] for r in prop_recs
            if isinstance(r["value"], dict)}
    for r in conf_recs:  # same partition number as the input, key = object
        assert r["partition"] == part[r["value"]["proposal"]] and r["key"] == "o1"
    def reps():  # the registration's per-partition replies aside
        return [r["value"] for r in cluster.export("replies")
                if r["value"].get("type") != "registration"]
    got = wait_for(lambda: len(reps()) >= 1 and reps(), 30)
    assert got, reps()
    kinds = sorted(v["type"] for v in got)
    assert kinds == ["read"], got  # no copy of c1's confirmation: a topic of the cluster
    read = got[0]
    assert read["id"] == "r1" and read["found"] is True and read["version"] == 2
    assert "not published to reply_to '%sreplies'" % cluster.prefix in w.log()
    assert "not published to reply_to '%snosuch': the topic does not exist" % outside in w.log()
    # ... and the committer did not create it (allow.auto.create.topics=false).
    r = subprocess.run([BIN, "export", "--topic", "nosuch", "--bootstrap", BOOT, "--prefix",
                        outside], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "nosuch" in r.stderr
    assert w.stop() == 0
