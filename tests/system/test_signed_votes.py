"""Signed votes against a real broker: a machine whose two voters have
Ed25519 public keys (quorum 2). `smc worker --voter ... --vote-key` signs its
votes; forged votes for the second voter -- unsigned, signed with a wrong key,
and a bogus signature through the HTTP gateway -- are not counted (the
proposal stays pending) and are reported (committer log line bad_signature,
metric smc_votes_bad_signature_total). Then a vote signed by the openssl CLI
(an independent implementation of the documented message) and sent through the
gateway, or the second signing worker, completes the quorum. A reason is
signed too (the v2 message): a valid signature of the reasonless message sent
with a reason is not counted."""
import base64
import json
import os
import re
import subprocess
import urllib.request

from conftest import BIN, wait_for

MACHINE = """name: signoff
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
      voters: [v1, v2]
      keys:
        v1: '%s'
        v2: '%s'
"""


def keygen(tmp, name):
    r = subprocess.run([BIN, "keygen", "--out", os.path.join(tmp, name)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    pub = r.stdout.strip()
    assert len(base64.b64decode(pub, validate=True)) == 32
    return os.path.join(tmp, name + ".key"), pub


def http(addr, method, path, body):
    req = urllib.request.Request("http://%s%s" % (addr, path), method=method,
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def openssl_sign(key_file, message, tmp):
    """Sign with the openssl CLI, independently of smc's own code."""
    path = os.path.join(tmp, "msg.bin")
    with open(path, "wb") as f:
        f.write(message)
    r = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", key_file, "-in", path],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == 64
    return base64.b64encode(r.stdout).decode()


def confirmation_of(cluster, pid):
    for c in cluster.confirmations():
        if c.get("proposal") == pid and not c.get("duplicate"):
            return c
    return None


def test_signed_votes(cluster):
    k1, p1 = keygen(cluster.tmp, "v1")
    k2, p2 = keygen(cluster.tmp, "v2")
    kbad, _ = keygen(cluster.tmp, "mallory")
    path = os.path.join(cluster.tmp, "signoff.yaml")
    with open(path, "w") as f:
        f.write(MACHINE % (p1, p2))

    # committer + gateway + voter v1 (signing); v2 is not running yet.
    n1 = cluster.worker("n1", voter="v1", extra=["--vote-key", k1, "--http", "127.0.0.1:0"])
    m = wait_for(lambda: re.search(r"http gateway on ([0-9.]+:[0-9]+)", n1.log()), 30)
    assert m, n1.log()[-3000:]
    addr = m.group(1)
    cluster.apply(path)

    def round_(obj):
        rc, c, r = cluster.propose("signoff", obj, "create")
        assert rc == 0 and c["outcome"] == "committed", r.stdout + r.stderr
        rc, w, r = cluster.propose("signoff", obj, "sign", wait="0")
        assert rc == 0 and w["status"] == "written", r.stdout + r.stderr
        pid = w["proposal"]
        # v1's worker signs and votes: it is in the log, and not rejected.
        assert wait_for(lambda: [rec for rec in cluster.export("proposals")
                                 if isinstance(rec["value"], dict)
                                 and rec["value"].get("type") == "vote"
                                 and rec["value"].get("proposal") == pid
                                 and rec["value"].get("voter") == "v1"], 60)
        return pid

    # Round 1: forged votes for v2 must not complete the quorum.
    pid = round_("doc-1")
    before = n1.log().count("bad_signature")
    r = cluster.smc("vote", "signoff", "doc-1", "sign", "--voter", "v2", "--proposal", pid)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["signed"] is False
    r = cluster.smc("vote", "signoff", "doc-1", "sign", "--voter", "v2", "--proposal", pid,
                    "--key", kbad)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["signed"] is True
    st, v = http(addr, "PATCH", "/machine/signoff/object/doc-1/transition/sign",
                 {"voter": "v2", "accept": True, "proposal": pid,
                  "signature": base64.b64encode(b"\0" * 64).decode()})
    assert st == 202, v
    # A wrongly typed signature is refused at the gateway.
    st, v = http(addr, "PATCH", "/machine/signoff/object/doc-1/transition/sign",
                 {"voter": "v2", "accept": True, "proposal": pid, "signature": 7})
    assert st == 400 and v["error"]["code"] == "bad_request", v
    # v2's real signature over the reasonless (v1) message, sent with a
    # reason: the reason is signed too (v2 message), so this one is forged.
    v1msg = ("smc-vote-v1\n%s\n%s\n%s\n%s" % ("doc-1", pid, "v2", "accept")).encode()
    st, v = http(addr, "PATCH", "/machine/signoff/object/doc-1/transition/sign",
                 {"voter": "v2", "accept": True, "proposal": pid, "reason": "added later",
                  "signature": openssl_sign(k2, v1msg, cluster.tmp)})
    assert st == 202, v
    # All four are reported, and none counted.
    assert wait_for(lambda: n1.log().count("bad_signature") >= before + 4, 60), n1.log()[-3000:]
    log = n1.log()
    assert "voter 'v2' has a key but the vote is unsigned" in log
    assert log.count("the signature of 'v2' does not verify") >= 3
    assert confirmation_of(cluster, pid) is None
    with urllib.request.urlopen("http://%s/metrics" % addr, timeout=10) as resp:
        metrics = resp.read().decode()
    mm = re.search(r"^smc_votes_bad_signature_total (\d+)", metrics, re.M)
    assert mm and int(mm.group(1)) >= 4, metrics

    # v2's real vote with a reason, signed by the openssl CLI over the
    # documented v2 message and sent through the gateway, completes the quorum.
    msg = ("smc-vote-v2\n%s\n%s\n%s\n%s\n%s" % ("doc-1", pid, "v2", "accept",
                                                 "checked by v2")).encode()
    st, v = http(addr, "PATCH", "/machine/signoff/object/doc-1/transition/sign",
                 {"voter": "v2", "accept": True, "proposal": pid, "reason": "checked by v2",
                  "signature": openssl_sign(k2, msg, cluster.tmp)})
    assert st == 202, v
    c = wait_for(lambda: confirmation_of(cluster, pid), 60)
    assert c and c["outcome"] == "committed" and c["state"] == "signed", c
    assert sorted(c["votes"]["accept"]) == ["v1", "v2"]

    # Round 2: the second signing worker (voter v2) completes a quorum.
    pid2 = round_("doc-2")
    cluster.worker("n2", voter="v2", committer=False, extra=["--vote-key", k2])
    c = wait_for(lambda: confirmation_of(cluster, pid2), 90)
    assert c and c["outcome"] == "committed", c
    assert sorted(c["votes"]["accept"]) == ["v1", "v2"]
    votes = [rec["value"] for rec in cluster.export("proposals")
             if isinstance(rec["value"], dict) and rec["value"].get("type") == "vote"
             and rec["value"].get("proposal") == pid2]
    assert votes and all(len(base64.b64decode(v["signature"])) == 64 for v in votes)

    # A worker whose key file is not a private key refuses to start.
    r = subprocess.run([BIN, "worker", "--bootstrap", "127.0.0.1:1", "--node-id", "bad", "--no-committer",
                        "--voter", "v3", "--vote-key", path, "--data-dir",
                        os.path.join(cluster.tmp, "bad")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "not a PEM private key" in r.stderr, r.stderr
    for w in cluster.workers:
        assert w.stop() == 0
