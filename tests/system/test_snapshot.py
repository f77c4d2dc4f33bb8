"""Snapshots in <prefix>changelog (src/node/snapshot.h): a worker whose store
was wiped restores it from the changelog instead of folding the log, and its
state equals a full replay and `smc simulate` over the exported log; then
`smc topics trim` deletes the proposals below the checkpoints, and a fresh
node still restores from the changelog and continues exactly once."""
import json
import os
import re
import shutil
import urllib.error
import urllib.request

from conftest import MACHINES, Worker, check_exactly_once, final_states, loadgen_ids, \
    simulate_final_states, wait_for

LOCK = os.path.join(MACHINES, "lock.yaml")


def load(cluster, proc, objects, ops):
    g = cluster.loadgen(proc, objects=objects, ops=ops)
    out, _ = g.communicate(timeout=120)
    assert g.returncode == 0, out
    assert not json.loads(out)["failed"]
    return loadgen_ids(proc, objects, ops)


def serving(worker, n, start):
    """The worker (its start-th start) serves n partitions."""
    def ok():
        log = worker.log().split("=== start %d\n" % start)[-1]
        return log.count("committer: assigned; serving") >= n
    assert wait_for(ok, 120), worker.log()[-4000:]
    return worker.log().split("=== start %d\n" % start)[-1]


def digest(cluster, data_dir, *flags):
    """`smc replay` into data_dir (catching up to the log's end), with the
    store's digest: per column family, key count and sha256."""
    r = cluster.smc("replay", "--data-dir", data_dir, "--digest", "--quiet", *flags, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def state(d):
    """A digest without the history column family: the fold's state, which
    a restore must rebuild byte for byte (a restored partition's history
    starts at its checkpoint: the changelog does not carry it)."""
    return {cf: v for cf, v in d["digest"].items() if cf != "history"}


def get(addr, path):
    try:
        with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_restore_from_changelog_then_trim(cluster):
    n = cluster.partitions
    n1 = cluster.worker("n1")
    cluster.apply(LOCK)
    sent = load(cluster, "a", 40, 8)
    confs, missing = cluster.wait_confirmed(sent)
    assert not missing
    assert n1.stop() == 0

    # Wipe n1's store: on restart every partition comes back from the
    # changelog (machine registrations reach every partition), none from
    # folding the log.
    shutil.rmtree(os.path.join(n1.data_dir, "committer"))
    n1.start()
    log = serving(n1, n, 1)
    restored = re.findall(r"restored from the changelog: checkpoint (\d+)", log)
    assert len(restored) == n, log[-4000:]
    assert "replayed" not in log and "not usable" not in log, log[-4000:]
    assert "does not hold this partition" not in log, log[-4000:]
    n1.stop()
    old = os.path.join(cluster.tmp, "old")  # a store that will fall behind the trim
    shutil.copytree(n1.data_dir, old)
    n1.start()
    serving(n1, n, 2)

    # It continues where the snapshot left off: versions stay gapless.
    sent += load(cluster, "b", 40, 4)
    confs, missing = cluster.wait_confirmed(sent)
    assert not missing
    check_exactly_once(confs, sent)
    assert n1.stop() == 0, n1.log()[-3000:]

    # Its state equals a full replay of the log, byte for byte, and the
    # final states equal smc simulate's over the exported log. Its history
    # holds only what it folded after the checkpoints.
    mine = digest(cluster, n1.data_dir)
    full = digest(cluster, os.path.join(cluster.tmp, "full"), "--fresh")
    assert state(mine) == state(full)
    assert 0 < mine["digest"]["history"]["keys"] < full["digest"]["history"]["keys"]
    assert final_states(confs) == simulate_final_states(cluster, [LOCK])
    r = cluster.smc("verify", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]

    # Trim the log below the checkpoints.
    before = {rec["partition"]: rec["offset"] for rec in reversed(cluster.export("proposals"))}
    r = cluster.smc("topics", "trim", "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    trims = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(trims) == n
    assert all(t["complete"] and t["trim_to"] == t["checkpoint"] > 0 for t in trims), trims
    after = {rec["partition"]: rec["offset"]
             for rec in reversed(cluster.export("proposals"))}
    for t in trims:  # a partition trimmed to its end keeps no record at all
        p = t["partition"]
        assert before[p] == 0 and after.get(p, t["trim_to"]) >= t["trim_to"], (after, trims)
    assert len(after) < n or min(after.values()) > 0
    again = cluster.smc("topics", "trim", "-o", "json")  # nothing left to trim
    assert again.returncode == 0 and all(
        json.loads(l)["trim_to"] == -1 for l in again.stdout.splitlines()), again.stdout

    # A fresh node restores from the changelog and continues exactly once;
    # its voter (a fold of every partition) restores from it too.
    n2 = cluster.worker("n2", voter="node-2")
    log = serving(n2, n, 0)
    assert len(re.findall(r"committer: restored from the changelog", log)) == n, log[-4000:]
    assert wait_for(lambda: n2.log().count("voter node-2: restored from the changelog") == n,
                    60), n2.log()[-4000:]
    sent += load(cluster, "c", 40, 3)
    confs, missing = cluster.wait_confirmed(sent)
    assert not missing
    check_exactly_once(confs, sent)
    assert n2.stop() == 0, n2.log()[-3000:]

    # A node whose store is behind the trimmed log's start drops it and
    # restores from the changelog instead of folding a suffix of the log.
    n3 = Worker(cluster, "n3")
    cluster.workers.append(n3)
    shutil.copytree(old, n3.data_dir)
    n3.start()
    log = serving(n3, n, 0)
    assert len(re.findall(r"but the log starts at \d+: dropping it", log)) == n, log[-4000:]
    assert len(re.findall(r"committer: restored from the changelog", log)) == n, log[-4000:]
    sent += load(cluster, "d", 40, 2)
    confs, missing = cluster.wait_confirmed(sent)
    assert not missing
    check_exactly_once(confs, sent)
    assert n3.stop() == 0, n3.log()[-3000:]

    # smc replay --from-changelog builds the same store without the trimmed
    # log; without the changelog it cannot (the log's start is gone).
    from_cl = digest(cluster, os.path.join(cluster.tmp, "cl"), "--from-changelog")
    assert from_cl["changelog"]["partitions"] == n and from_cl["changelog"]["keys"] > 0
    assert from_cl["digest"]["history"]["keys"] == 0  # restored at the log's end: none folded
    assert state(from_cl) == state(digest(cluster, n3.data_dir))
    assert state(from_cl) == state(digest(cluster, n2.data_dir, "--store", "voter-node-2"))
    trimmed = digest(cluster, os.path.join(cluster.tmp, "full2"), "--fresh")
    assert state(trimmed) != state(from_cl)


def test_changelog_off_writes_nothing_and_restores_from_the_log(cluster):
    n1 = cluster.worker("n1", extra=["--changelog", "false"])
    cluster.apply(LOCK)
    sent = load(cluster, "a", 10, 3)
    confs, missing = cluster.wait_confirmed(sent)
    assert not missing
    assert n1.stop() == 0
    assert cluster.export("changelog") == []
    # A node with the changelog on finds no checkpoint: it folds the log and
    # its checkpoints say incomplete, so trim keeps everything.
    n2 = cluster.worker("n2")
    log = serving(n2, cluster.partitions, 0)
    assert "changelog not usable" in log and "replayed" in log, log[-4000:]
    assert "does not hold this partition" in log, log[-4000:]
    sent += load(cluster, "b", 10, 2)
    confs, missing = cluster.wait_confirmed(sent)
    assert not missing
    check_exactly_once(confs, sent)
    assert n2.stop() == 0
    r = cluster.smc("topics", "trim", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert all(json.loads(l)["trim_to"] == -1 for l in r.stdout.splitlines()), r.stdout


def test_restored_node_history(cluster):
    """A node restored from the changelog holds the history of what it
    folded after the checkpoint only: GET .../history says from which
    version (history_from), and smc history (the confirmations) still has
    every version."""
    def gateway(w, start):
        def addr():
            log = w.log().split("=== start %d\n" % start)[-1]
            m = re.search(r'http gateway on ([0-9.]+:[0-9]+)', log)
            return m.group(1) if m else None
        a = wait_for(addr, 60)
        assert a, w.log()[-3000:]
        return a

    def propose(obj, transition, data=None):
        rc, conf, r = cluster.propose("lock", obj, transition, data=data)
        assert rc == 0 and conf["outcome"] == "committed", r.stdout + r.stderr
        return conf

    n1 = cluster.worker("n1", extra=["--http", "127.0.0.1:0"])
    cluster.apply(LOCK)
    for obj in ("hx", "hy"):
        propose(obj, "create")
        propose(obj, "acquire", {"owner": "svc"})
        propose(obj, "release", {"owner": "svc"})
    addr = gateway(n1, 0)
    st, h = get(addr, "/machine/lock/object/hx/history")
    assert st == 200 and [v["version"] for v in h["versions"]] == [1, 2, 3], h
    assert "history_from" not in h
    assert n1.stop() == 0

    shutil.rmtree(os.path.join(n1.data_dir, "committer"))
    n1.start()
    serving(n1, cluster.partitions, 1)
    addr = gateway(n1, 1)
    assert propose("hx", "acquire", {"owner": "svc"})["version"] == 4
    propose("hz", "create")
    # hx: only version 4 was folded here; versions 1-3 are before the checkpoint
    st, h = get(addr, "/machine/lock/object/hx/history")
    assert st == 200, h
    assert [v["version"] for v in h["versions"]] == [4] and h["history_from"] == 4, h
    # hy: nothing since the checkpoint; it exists (not a 404), held from 4
    st, h = get(addr, "/machine/lock/object/hy/history")
    assert st == 200 and h["versions"] == [] and h["history_from"] == 4, h
    st, h = get(addr, "/machine/other/object/hy/history")
    assert st == 404, h
    # hz: created after the restore, whole
    st, h = get(addr, "/machine/lock/object/hz/history")
    assert st == 200 and [v["version"] for v in h["versions"]] == [1], h
    assert "history_from" not in h
    st, h = get(addr, "/machine/lock/object/nobody/history")
    assert st == 404, h
    # the confirmations keep every version
    r = cluster.smc("history", "hx", "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [v["version"] for v in json.loads(r.stdout)["versions"]] == [1, 2, 3, 4]
    assert n1.stop() == 0
