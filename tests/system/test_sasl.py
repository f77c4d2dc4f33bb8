"""librdkafka properties pass through to every smc command: the whole path
(topics, machine registration, a worker, propose, get) runs over a real
SASL_PLAINTEXT listener with the PLAIN mechanism, and a wrong password fails
in bounded time with exit 3 (unavailable) and librdkafka's authentication
error on stderr, never a hang.

The broker is the test broker of scripts/kafka.sh started with
KAFKA_SASL_PORT (scripts/test.sh does that and exports SMC_SASL_BOOTSTRAP);
its JAAS user is smc / smc-secret."""
import json
import os
import random
import subprocess
import time

import pytest

from conftest import BIN, MACHINES

SASL_BOOT = os.environ.get("SMC_SASL_BOOTSTRAP")
USER = os.environ.get("KAFKA_SASL_USER", "smc")
PASSWORD = os.environ.get("KAFKA_SASL_PASSWORD", "smc-secret")
AUTH_FAILED = "Authentication failed"


def sasl_props(password):
    return ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN",
            "-X", "sasl.username=" + USER, "-X", "sasl.password=" + password]


@pytest.fixture
def sasl():
    if not SASL_BOOT:
        pytest.skip("no SASL listener: start scripts/kafka.sh with KAFKA_SASL_PORT=P and "
                    "export SMC_SASL_BOOTSTRAP=127.0.0.1:P")
    return SASL_BOOT


def smc(boot, prefix, password, *args, timeout=120):
    cmd = [BIN] + list(args) + ["--bootstrap", boot, "--prefix", prefix] + sasl_props(password)
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - t0


def last_json(text):
    lines = text.strip().splitlines()
    return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None


def test_sasl_plain_end_to_end(sasl, tmp_path):
    prefix = "sasl%08x." % random.getrandbits(32)
    r, _ = smc(sasl, prefix, PASSWORD, "topics", "create", "--partitions", "3")
    assert r.returncode == 0, r.stderr
    log_path = str(tmp_path / "w1.log")
    with open(log_path, "w") as log:
        w = subprocess.Popen([BIN, "worker", "--bootstrap", sasl, "--prefix", prefix,
                              "--node-id", "w1", "--data-dir", str(tmp_path / "w1"),
                              "--session-timeout-ms", "6000"] + sasl_props(PASSWORD),
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        # after the worker: every partition's committer answers the
        # registration (apply waits for all of them)
        r, _ = smc(sasl, prefix, PASSWORD, "machine", "apply", os.path.join(MACHINES, "lock.yaml"),
                   "--timeout", "60s")
        assert r.returncode == 0, r.stdout + r.stderr + open(log_path).read()[-2000:]
        r, _ = smc(sasl, prefix, PASSWORD, "propose", "lock", "db", "create", "--wait", "60s")
        conf = last_json(r.stdout)
        assert r.returncode == 0 and conf and conf["outcome"] == "committed", \
            r.stdout + r.stderr + open(log_path).read()[-2000:]
        r, _ = smc(sasl, prefix, PASSWORD, "propose", "lock", "db", "acquire", "--data",
                   json.dumps({"owner": "svc-a"}), "--expect-version", "1", "--wait", "60s")
        conf = last_json(r.stdout)
        assert r.returncode == 0 and conf["version"] == 2 and conf["state"] == "held", \
            r.stdout + r.stderr
        r, _ = smc(sasl, prefix, PASSWORD, "get", "db", "--wait", "30s")
        rep = last_json(r.stdout)
        assert r.returncode == 0 and rep["object"] == "db" and rep["version"] == 2, r.stdout + r.stderr
        assert rep["data"]["owner"] == "svc-a"
        assert w.poll() is None
        # the worker did authenticate: no SASL error in its log
        assert "SASL authentication error" not in open(log_path).read()
    finally:
        w.terminate()
        rc = w.wait(timeout=60)
    assert rc == 0, open(log_path).read()[-3000:]


def test_sasl_wrong_password_fails_in_bounded_time(sasl, tmp_path):
    prefix = "sasl%08x." % random.getrandbits(32)
    # topics for the worker and the client to find, created with the right password
    r, _ = smc(sasl, prefix, PASSWORD, "topics", "create", "--partitions", "3")
    assert r.returncode == 0, r.stderr
    bad = "not-" + PASSWORD

    r, _ = smc(sasl, prefix + "x.", bad, "topics", "create", "--partitions", "3")
    assert r.returncode == 3, r.stdout + r.stderr
    assert AUTH_FAILED in r.stderr and "unavailable" in r.stderr, r.stderr[-2000:]

    for args in (("propose", "lock", "db", "create", "--wait", "5s"), ("get", "db", "--wait", "5s")):
        r, _ = smc(sasl, prefix, bad, *args)
        assert r.returncode == 3, r.stdout + r.stderr
        assert AUTH_FAILED in r.stderr and "unavailable" in r.stderr, r.stderr[-2000:]

    log_path = str(tmp_path / "w-bad.log")
    with open(log_path, "w") as log:
        w = subprocess.Popen([BIN, "worker", "--bootstrap", sasl, "--prefix", prefix,
                              "--node-id", "wbad", "--data-dir", str(tmp_path / "wbad")] +
                             sasl_props(bad), stdout=log, stderr=subprocess.STDOUT)
    try:
        rc = w.wait(timeout=120)
    except subprocess.TimeoutExpired:
        w.kill()
        w.wait()
        pytest.fail("a worker with a wrong password kept running: " + open(log_path).read()[-2000:])
    text = open(log_path).read()
    assert rc == 3, text[-2000:]
    assert AUTH_FAILED in text and "unavailable" in text, text[-2000:]
    # the listener still serves the right password afterwards
    r, _ = smc(sasl, prefix, PASSWORD, "topics", "describe", "--partitions", "3")
    assert r.returncode == 0, r.stdout + r.stderr
