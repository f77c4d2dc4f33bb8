"""`smc replay` rebuilds a committer store from the log (a worker started on it
has nothing left to restore), and `smc verify` accepts a clean history but
catches a forged confirmation."""
import json
import os
import re
import subprocess

from conftest import BOOT, LOADGEN, MACHINES, loadgen_ids


def test_replay_then_verify_catches_forgery(cluster):
    n1 = cluster.worker("n1", voter="node-1")
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    g = cluster.loadgen("r", objects=20, ops=10)
    g.communicate(timeout=60)
    assert g.returncode == 0
    confs, missing = cluster.wait_confirmed(loadgen_ids("r", 20, 10))
    assert not missing
    assert n1.stop() == 0
    nrecords = len(cluster.export("proposals"))

    # Rebuild a store into the data dir of a worker that never ran.
    d = os.path.join(cluster.tmp, "r1")
    r = cluster.smc("replay", "--data-dir", d)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["records"] == nrecords
    assert "100%" in r.stderr and "rec/s" in r.stderr
    r = cluster.smc("replay", "--data-dir", d)  # incremental: nothing new
    assert r.returncode == 0 and json.loads(r.stdout)["records"] == 0, r.stdout + r.stderr

    # A worker on the rebuilt store finds it level with the committed offsets.
    r1 = cluster.worker("r1")
    from conftest import wait_for
    assert wait_for(lambda: r1.log().count("committer: assigned; serving") >= cluster.partitions,
                    60), r1.log()[-3000:]
    restores = re.findall(r"restore: applied (\d+), committed (-?\d+)", r1.log())
    assert len(restores) == cluster.partitions
    assert all(a == c for a, c in restores), restores
    assert "replayed" not in r1.log()
    assert r1.stop() == 0

    r = cluster.smc("verify")
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["ok"] and rep["mismatches"] == 0 and rep["chain_checked"] >= 20

    # Forge: re-publish the last committed confirmation with another checksum.
    last = [c for c in confs if c["outcome"] == "committed"][-1]
    forged = dict(last, checksum="f" * 64)
    part = [x for x in cluster.export("confirmations") if x["value"] == last][0]["partition"]
    p = subprocess.run([LOADGEN, "--bootstrap", BOOT, "--topic", cluster.prefix + "confirmations",
                        "--partition", str(part), "--key", last["object"],
                        "--value", json.dumps(forged, sort_keys=True, separators=(",", ":"))],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    r = cluster.smc("verify")
    assert r.returncode == 1, r.stdout + r.stderr
    assert json.loads(r.stdout)["ok"] is False
    assert "nobody decided" in r.stderr and "checksum" in r.stderr
