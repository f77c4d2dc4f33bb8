"""Parallel `smc replay` and `smc verify`: the store a replay with several
fold threads builds holds exactly what a one-thread replay builds (same keys
and values in every column family, `--digest`), from scratch and when it
resumes from a store's applied offsets; verify reports the same with one or
two threads; a bad thread count is a usage error."""
import json
import os
import re
import subprocess

from conftest import BIN, BOOT, HERE, MACHINES, loadgen_ids, wait_for


def replay(cluster, d, *args, env=None):
    cmd = [BIN, "replay", "--data-dir", d, "--digest", "--quiet", "--bootstrap", BOOT,
           "--prefix", cluster.prefix] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, **(env or {})))
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def run_load(cluster, proc, objects, ops):
    g = cluster.loadgen(proc, objects=objects, ops=ops)
    g.communicate(timeout=120)
    assert g.returncode == 0
    _, missing = cluster.wait_confirmed(loadgen_ids(proc, objects, ops))
    assert not missing


def test_parallel_replay_builds_the_same_store(cluster):
    n1 = cluster.worker("n1", voter="node-1")
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    cluster.apply(os.path.join(HERE, "machines", "shortlease.yaml"))
    run_load(cluster, "a", 30, 6)
    # Leases acquired last: timers still pending at the end of the log.
    for i in range(4):
        rc, _, r = cluster.propose("shortlease", "tl-%d" % i, "create")
        assert rc == 0, r.stderr
        rc, _, r = cluster.propose("shortlease", "tl-%d" % i, "acquire", {"holder": "h%d" % i})
        assert rc == 0, r.stderr
    assert n1.stop() == 0  # its ticks append to the log too
    nrecords = len(cluster.export("proposals"))

    # From scratch: one thread, two, and more threads than partitions.
    t = cluster.tmp
    one = replay(cluster, os.path.join(t, "one"), "--fresh", "--threads", "1")
    two = replay(cluster, os.path.join(t, "two"), "--fresh", "--threads", "2")
    many = replay(cluster, os.path.join(t, "many"), "--fresh",
                  env={"SMC_REPLAY_THREADS": str(cluster.partitions + 3)})
    assert one["threads"] == 1 and two["threads"] == 2
    assert many["threads"] == cluster.partitions
    for rep in (one, two, many):
        assert rep["records"] == nrecords
    for cf in ("objects", "decided", "machines", "meta", "timers"):
        assert one["digest"][cf]["keys"] > 0, one["digest"]
    assert two["digest"] == one["digest"]
    assert many["digest"] == one["digest"]

    # Resume: more history, then the two-thread store catches up from its
    # applied offsets; it must equal a one-thread store built from scratch.
    n1.start()
    run_load(cluster, "b", 20, 4)
    assert n1.stop() == 0
    nrecords2 = len(cluster.export("proposals"))
    assert nrecords2 > nrecords
    inc = replay(cluster, os.path.join(t, "two"), "--threads", "2")
    assert inc["records"] == nrecords2 - nrecords
    full = replay(cluster, os.path.join(t, "full"), "--fresh", "--threads", "1")
    assert full["records"] == nrecords2
    assert inc["digest"] == full["digest"]
    assert inc["digest"] != one["digest"]
    again = replay(cluster, os.path.join(t, "two"), "--threads", "2")
    assert again["records"] == 0 and again["digest"] == full["digest"]

    # verify: the same report with one and two fold threads.
    reps = []
    for n in ("1", "2"):
        r = cluster.smc("verify", "--threads", n)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json.loads(r.stdout)
        del rep["seconds"]
        reps.append(rep)
    assert reps[0] == reps[1]
    assert reps[0]["ok"] and reps[0]["records"] == nrecords2 and reps[0]["confirmations"] > 0


def test_bad_thread_counts_are_usage_errors(cluster):
    d = os.path.join(cluster.tmp, "bad")
    for cmd, args in (("replay", ["--data-dir", d]), ("verify", [])):
        for bad in ("0", "-1", "two", "", "257", "3x"):
            r = cluster.smc(cmd, *args, "--threads", bad)
            assert r.returncode == 2, (cmd, bad, r.stdout, r.stderr)
            assert "--threads wants a number of threads from 1 to 256" in r.stderr, r.stderr
        r = subprocess.run([BIN, cmd] + args + ["--bootstrap", BOOT, "--prefix", cluster.prefix],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, SMC_REPLAY_THREADS="many"))
        assert r.returncode == 2, r.stdout + r.stderr
        assert "SMC_REPLAY_THREADS wants a number of threads" in r.stderr, r.stderr
    assert not os.path.exists(d)


def replay_run(cluster, d, *args):
    """smc replay without --fresh: (summary, stderr)."""
    r = subprocess.run([BIN, "replay", "--data-dir", d, "--digest", "--bootstrap", BOOT,
                        "--prefix", cluster.prefix] + list(args),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout), r.stderr


def test_interrupted_fresh_replay_is_rebuilt(cluster):
    """A --fresh replay writes without RocksDB's WAL and keeps the REBUILDING
    marker in the store until everything is flushed: a replay killed before
    that leaves the marker, and the next replay (without --fresh) rebuilds
    from scratch; so does one that finds the marker put back into a finished
    store (as a crash after a flush leaves it). A worker that opens such a
    store starts from an empty one and restores every partition from 0."""
    n1 = cluster.worker("n1", voter="node-1")
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    run_load(cluster, "k", 40, 10)
    assert n1.stop() == 0
    nrecords = len(cluster.export("proposals"))
    ref = replay(cluster, os.path.join(cluster.tmp, "ref"), "--fresh", "--threads", "1")
    assert ref["records"] == nrecords

    d = os.path.join(cluster.tmp, "w1")
    marker = os.path.join(d, "committer", "REBUILDING")
    p = subprocess.Popen([BIN, "replay", "--data-dir", d, "--fresh", "--quiet", "--threads", "2",
                          "--bootstrap", BOOT, "--prefix", cluster.prefix],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: os.path.exists(marker) or p.poll() is not None, 60, step=0.001)
    p.kill()
    p.wait(timeout=60)
    cut = os.path.exists(marker)  # else it had finished before the kill
    assert cut or p.returncode == 0
    rep, err = replay_run(cluster, d, "--threads", "2")
    assert ("did not finish; rebuilding from scratch" in err) == cut, err
    assert rep["records"] == (nrecords if cut else 0)
    assert rep["digest"] == ref["digest"]
    assert not os.path.exists(marker)

    open(marker, "w").close()
    rep, err = replay_run(cluster, d, "--threads", "2")
    assert "did not finish; rebuilding from scratch" in err, err
    assert rep["records"] == nrecords and rep["digest"] == ref["digest"]
    assert not os.path.exists(marker)

    # A worker finds the marker: it drops the store and starts from an empty
    # one, so every partition comes back from the snapshot in smc.changelog
    # (n1 wrote it) or, without one, by folding the log from 0.
    open(marker, "w").close()
    w1 = cluster.worker("w1")
    assert wait_for(lambda: w1.log().count("committer: assigned; serving") >= cluster.partitions,
                    60), w1.log()[-3000:]
    restores = re.findall(r"restore: applied (\d+), committed (-?\d+)", w1.log())
    assert len(restores) == cluster.partitions, w1.log()[-3000:]
    from_changelog = len(re.findall(r"restored from the changelog: checkpoint", w1.log()))
    assert all(a == "0" for a, _ in restores) or from_changelog == cluster.partitions, \
        (restores, w1.log()[-3000:])
    assert all(a == c for a, c in restores) or all(a == "0" for a, _ in restores), restores
    assert any(int(c) > 0 for _, c in restores), restores
    assert not os.path.exists(marker)
    assert w1.stop() == 0
