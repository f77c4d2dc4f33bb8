"""`smc worker` command line: usage errors, the config file, SMC_* variables
and flags in that order of precedence, librdkafka passthrough, clean stop."""
import os
import signal
import subprocess
import time

from conftest import BIN, BOOT, wait_for


def run_worker(args, env=None, timeout=30):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([BIN, "worker"] + args, capture_output=True, text=True,
                          timeout=timeout, env=e)


def test_usage_errors(tmp_path):
    r = run_worker(["--bootstrap", BOOT])
    assert r.returncode == 2 and "--node-id is required" in r.stderr
    r = run_worker(["--node-id", "n1", "--tick-ms", "zero"])
    assert r.returncode == 2 and "tick-ms" in r.stderr
    r = run_worker(["--node-id", "n1", "--log-level", "loud"])
    assert r.returncode == 2
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("bootstrap: x\nnode_idd: n1\n")
    r = run_worker(["--config", str(cfg)])
    assert r.returncode == 2 and "unknown key 'node_idd'" in r.stderr
    cfg.write_text("node_id: [1, 2\n")
    r = run_worker(["--config", str(cfg)])
    assert r.returncode == 2 and "bad.yaml" in r.stderr


def test_bad_kafka_property_fails_cleanly(cluster):
    r = run_worker(["--bootstrap", BOOT, "--prefix", cluster.prefix, "--node-id", "n1",
                    "--data-dir", os.path.join(cluster.tmp, "d"), "-X", "no.such.prop=1"])
    assert r.returncode == 1 and "no.such.prop" in r.stderr


def test_missing_topics_fail_cleanly(cluster, tmp_path):
    r = run_worker(["--bootstrap", BOOT, "--prefix", "nosuch%d." % os.getpid(),
                    "--node-id", "n1", "--data-dir", str(tmp_path / "d")], timeout=60)
    assert r.returncode == 1 and "smc topics create" in r.stderr


def test_config_env_flag_precedence_and_clean_stop(cluster, tmp_path):
    cfg = tmp_path / "smc.yaml"
    cfg.write_text("bootstrap: %s\nprefix: %s\nnode_id: from-file\nvoter: from-file\n"
                   "data_dir: %s\ntick_ms: 150\nkafka:\n  properties:\n    client.rack: r1\n"
                   % (BOOT, cluster.prefix, tmp_path / "data"))
    log = open(tmp_path / "w.log", "w")
    env = dict(os.environ, SMC_NODE_ID="from-env", SMC_VOTER="voter-env")
    p = subprocess.Popen([BIN, "worker", "--config", str(cfg), "--voter", "from-flag"],
                         stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        text = lambda: open(tmp_path / "w.log").read()
        assert wait_for(lambda: "node started" in text(), 30), text()
        line = [l for l in text().splitlines() if "node started" in l][0]
        assert "node=from-env" in line          # env beats the file
        assert "voter from-flag" in line        # the flag beats env and file
        assert "prefix %s" % cluster.prefix in line
        assert (tmp_path / "data" / "committer").is_dir()
        assert (tmp_path / "data" / "voter-from-flag").is_dir()
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=60) == 0
        assert "node stopped" in text()
    finally:
        if p.poll() is None:
            p.kill()
