"""Issue 18 on the real broker: what a client producing straight to Kafka
could forge (findings 4, 5 and 6 of docs/reliability.md "Security"). Each
test failed on the code before its fix."""
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

from conftest import BIN, BOOT, MACHINES, Cluster, partition_of, wait_for

RAWPRODUCE = os.environ.get("SMC_RAWPRODUCE") or os.path.join(
    os.path.dirname(BIN), "tests", "system", "smc_rawproduce")


def raw(cluster, records):
    """Produce (partition, key, value dict) records to the proposals topic."""
    lines = []
    for p, key, value in records:
        if p is None:
            p = partition_of(key, cluster.partitions)
        lines.append("%d %s %s" % (p, key.encode().hex(), json.dumps(value).encode().hex()))
    r = subprocess.run([RAWPRODUCE, BOOT, cluster.prefix + "proposals"],
                       input=("\n".join(lines) + "\n").encode(), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr


def wait_gateway(w):
    m = wait_for(lambda: re.search(r'http gateway on ([0-9.]+:[0-9]+)', w.log()), 60)
    assert m, w.log()[-3000:]
    return m.group(1)


def post_machine(addr, name, text, headers=None):
    req = urllib.request.Request("http://%s/machine/%s" % (addr, name), data=text.encode(),
                                 method="POST",
                                 headers=dict({"Content-Type": "application/yaml"}, **(headers or {})))
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# ---- finding 4: reply_to never names a topic of the cluster

def test_reply_to_never_writes_into_the_clusters_topics(cluster):
    w = cluster.worker("w1")
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    raw(cluster, [
        (None, "rt-1", {"type": "proposal", "id": "rt-1", "object": "rt-1", "machine": "lock",
                        "transition": "create", "reply_to": cluster.prefix + "confirmations"}),
        (None, "rt-2", {"type": "proposal", "id": "rt-2", "object": "rt-2", "machine": "lock",
                        "transition": "create", "reply_to": cluster.prefix + "machines"}),
        (None, "rt-3", {"type": "read", "id": "rt-3", "object": "rt-1",
                        "reply_to": cluster.prefix + "confirmations"}),
    ])
    confs, missing = cluster.wait_confirmed(["rt-1", "rt-2"], timeout=60)
    assert not missing, missing
    assert [c["proposal"] for c in confs].count("rt-1") == 1, confs
    assert all("proposal" not in c or c.get("type") != "read_reply" for c in confs)
    assert not any(c.get("id") == "rt-3" for c in confs), confs
    for rec in cluster.export("machines"):
        assert rec["value"]["type"] == "machine", rec
    assert wait_for(lambda: w.log().count("not published to reply_to") >= 3, 30), w.log()[-3000:]
    r = cluster.smc("verify", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


# ---- finding 5: a registration is all or nothing, and may need a key

SQUAT = "name: %s\nstates:\n  x: {}\ntransitions:\n  create: {from: null, to: x}\n"
REAL = "name: %s\nstates:\n  a: {}\n  b: {}\ntransitions:\n  create: {from: null, to: a}\n  go: {from: a, to: b}\n"


def test_a_conflict_on_one_partition_fails_the_registration(cluster, tmp_path):
    w = cluster.worker("w1", extra=["--http", "127.0.0.1:0"])
    addr = wait_gateway(w)
    # a client writes its own definitions of sqx and sqy to partition 1 only
    raw(cluster, [(1, "sqx", {"type": "machine", "name": "sqx", "definition": SQUAT % "sqx"}),
                  (1, "sqy", {"type": "machine", "name": "sqy", "definition": SQUAT % "sqy"})])
    f = tmp_path / "sqx.yaml"
    f.write_text(REAL % "sqx")
    r = cluster.smc("machine", "apply", str(f), "--timeout", "30s")
    assert r.returncode != 0, r.stdout + r.stderr
    assert "machine_exists" in r.stderr and "partition 1" in r.stderr, r.stderr
    st, body = post_machine(addr, "sqy", REAL % "sqy")
    assert st == 409 and body["error"]["code"] == "machine_exists", body
    # a name nobody squats registers on every partition
    st, body = post_machine(addr, "fine", REAL % "fine")
    assert st == 201, body
    f = tmp_path / "ok.yaml"
    f.write_text(REAL % "okm")
    r = cluster.smc("machine", "apply", str(f), "--timeout", "30s")
    assert r.returncode == 0, r.stdout + r.stderr
    r = cluster.smc("machine", "apply", str(f), "--timeout", "30s")  # again: every partition has it
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_registration_key_restricts_who_registers(cluster, tmp_path):
    r = subprocess.run([BIN, "keygen", "--out", str(tmp_path / "reg")], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    pub = r.stdout.strip()
    w = cluster.worker("w1", extra=["--registration-key", str(tmp_path / "reg.pub")])
    f = tmp_path / "m.yaml"
    f.write_text(REAL % "keyed")
    r = cluster.smc("machine", "apply", str(f), "--timeout", "30s")
    assert r.returncode != 0 and "bad_signature" in r.stderr, r.stdout + r.stderr
    # a raw machine event on one partition does nothing either
    raw(cluster, [(0, "raw1", {"type": "machine", "name": "raw1", "definition": SQUAT % "raw1"})])
    other = subprocess.run([BIN, "keygen", "--out", str(tmp_path / "other")], capture_output=True,
                           text=True, timeout=30)
    assert other.returncode == 0
    r = cluster.smc("machine", "apply", str(f), "--timeout", "30s", "--key", str(tmp_path / "other.key"))
    assert r.returncode != 0 and "bad_signature" in r.stderr, r.stdout + r.stderr
    r = cluster.smc("machine", "apply", str(f), "--timeout", "30s", "--key", str(tmp_path / "reg.key"))
    assert r.returncode == 0, r.stdout + r.stderr
    rc, conf, r = cluster.propose("keyed", "k-1", "create")
    assert rc == 0 and conf["outcome"] == "committed", r.stdout + r.stderr
    assert "bad_signature" in w.log()
    # verify folds with the same key: the same decisions
    r = cluster.smc("verify", "--registration-key", pub, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


# ---- finding 6: producer timestamps are refused

def test_a_proposals_topic_with_producer_timestamps_is_refused(tmp_path):
    topics = json.load(open(os.path.join(os.path.dirname(BIN), "..", "topics", "topics.json"))) \
        if os.path.exists(os.path.join(os.path.dirname(BIN), "..", "topics", "topics.json")) else None
    if topics is None:
        from conftest import SRC
        topics = json.load(open(os.path.join(SRC, "topics", "topics.json")))
    for t in topics["topics"]:
        if t["name"] == "proposals":
            t["config"]["message.timestamp.type"] = "CreateTime"
    f = tmp_path / "topics.json"
    f.write_text(json.dumps(topics))
    prefix = "ct%08x." % (int(time.time() * 1000) & 0xffffffff)
    r = subprocess.run([BIN, "topics", "create", "--partitions", "2", "--file", str(f),
                        "--bootstrap", BOOT, "--prefix", prefix], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    t0 = time.time()
    r = subprocess.run([BIN, "worker", "--bootstrap", BOOT, "--prefix", prefix, "--node-id", "ct1",
                        "--data-dir", str(tmp_path / "d")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0, r.stderr
    assert "message.timestamp.type=CreateTime" in r.stderr, r.stderr
    assert time.time() - t0 < 60
