"""Signed votes in `smc dev` (mock cluster, no broker needed): with
`--vote-keys DIR`, voter node-<i> signs its votes with DIR/node-<i>.key. A
machine that lists both voters' public keys (quorum 2) commits when both
sign; when only node-1 has a key file, node-2's votes are unsigned, are not
counted, and the proposal stays pending."""
import os
import subprocess
import time
import uuid

from smc_dev_fixture import Dev, smc_bin

MACHINE = """name: %s
states:
  draft: {}
  signed: {final: true}
transitions:
  create: {from: null, to: draft}
  sign:
    from: draft
    to: signed
    votes:
      quorum: 2
      voters: [node-1, node-2]
      keys:
        node-1: '%s'
        node-2: '%s'
"""


def keygen(prefix):
    r = subprocess.run([smc_bin(), "keygen", "--out", prefix], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def propose_sign(dev, pub1, pub2):
    """Registers the machine, creates an object, proposes `sign`; returns
    the proposal id."""
    name = "signoff_" + uuid.uuid4().hex[:8]
    st, body = dev.json("POST", "/machine/" + name, MACHINE % (name, pub1, pub2),
                        {"Content-Type": "application/yaml"})
    assert st == 201, body
    base = "/machine/%s/object/doc-%s/transition/" % (name, uuid.uuid4().hex[:8])
    st, body = dev.json("PUT", base + "create", {})
    assert st == 200 and body["state"] == "draft", body
    st, p = dev.json("PUT", base + "sign?wait=200ms", {})
    # Pending after 200 ms, or already decided: with librdkafka 2.12.1's mock
    # cluster both signed votes and the commit can land within the wait (the
    # callers check the final status).
    assert (st == 202 and p["status"] == "pending") or (st == 200 and p["state"] == "signed"), p
    return p["proposal"]


def wait_status(dev, pid, seconds):
    deadline = time.time() + seconds
    while True:
        st, rec = dev.json("GET", "/proposal/" + pid)
        assert st == 200, rec
        if rec["status"] != "pending" or time.time() > deadline:
            return rec
        time.sleep(0.2)


def test_both_voters_sign(tmp_path):
    pub1 = keygen(str(tmp_path / "node-1"))
    pub2 = keygen(str(tmp_path / "node-2"))
    dev = Dev("--nodes", "2", "--partitions", "2", "--vote-keys", str(tmp_path))
    try:
        assert any("voter node-1 signs with" in l for l in dev.lines), dev.lines
        assert any("voter node-2 signs with" in l for l in dev.lines), dev.lines
        rec = wait_status(dev, propose_sign(dev, pub1, pub2), 30)
        assert rec["status"] == "committed", rec
        assert sorted(rec["confirmation"]["votes"]["accept"]) == ["node-1", "node-2"]
    finally:
        assert dev.stop() == 0


def test_unsigned_voter_is_not_counted(tmp_path):
    pub1 = keygen(str(tmp_path / "node-1"))
    os.makedirs(tmp_path / "elsewhere")  # node-2's key pair, not in the --vote-keys dir
    pub2 = keygen(str(tmp_path / "elsewhere" / "node-2"))
    dev = Dev("--nodes", "2", "--partitions", "2", "--vote-keys", str(tmp_path))
    try:
        assert not any("voter node-2 signs" in l for l in dev.lines), dev.lines
        pid = propose_sign(dev, pub1, pub2)
        # node-1's signed vote counts, node-2's unsigned one does not: no
        # quorum, however long it waits.
        rec = wait_status(dev, pid, 6)
        assert rec["status"] == "pending", rec
    finally:
        assert dev.stop() == 0
