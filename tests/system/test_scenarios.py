"""Run every examples/scenarios/<machine>.sh against a gateway and compare its
output with <machine>.expected.

By default the gateway is `smc dev --examples --voters 0` (votes come only
from the scenarios). With SMC_BOOTSTRAP set, a committer-only `smc worker
--http` on that broker, on topics of a fresh prefix, serves instead; the example machines are registered
through POST /machine first (an existing identical machine answers 200).

Volatile fields are normalised on both sides: 64-hex-digit strings
(checksums and derived proposal ids; checksums cover the commit time),
millisecond timestamps, log offsets, and the run suffix (printed as {run})."""
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from smc_dev_fixture import ROOT, Dev, free_port, smc_bin

SCEN = os.path.join(ROOT, "examples", "scenarios")
SCRIPTS = sorted(glob.glob(os.path.join(SCEN, "*.sh")))


def normalise(text):
    text = re.sub(r"\b[0-9a-f]{64}\b", "<hex>", text)
    text = re.sub(r"\b1[0-9]{12}\b", "<time>", text)
    text = re.sub(r'"offset":[0-9]+', '"offset":<n>', text)
    return text


class Worker:
    """`smc worker --http` on the broker at SMC_BOOTSTRAP (committer only)."""

    def __init__(self, bootstrap):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.dir = tempfile.mkdtemp(prefix="smc-scen-")
        # A fresh topic prefix: the broker may be new (no smc.* topics) or shared
        # with other tests (other definitions of the example machines).
        self.prefix = "scen%s." % uuid.uuid4().hex[:8]
        subprocess.run([smc_bin(), "topics", "create", "--bootstrap", bootstrap,
                        "--prefix", self.prefix, "--partitions", "4"],
                       cwd=ROOT, check=True, capture_output=True, timeout=120)
        self.proc = subprocess.Popen(
            [smc_bin(), "worker", "--bootstrap", bootstrap, "--node-id", "scen-%d" % os.getpid(),
             "--prefix", self.prefix,
             "--http", "127.0.0.1:%d" % self.port, "--data-dir", self.dir],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline:
            r = subprocess.run(["curl", "-sf", self.url + "/readyz"], capture_output=True)
            if r.returncode == 0:
                break
            time.sleep(0.5)
        else:
            self.stop()
            raise RuntimeError("smc worker did not get ready")
        for y in sorted(glob.glob(os.path.join(ROOT, "examples", "machines", "*.yaml"))):
            name = os.path.basename(y)[:-5]
            r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                                "-H", "Content-Type: application/yaml", "--data-binary", "@" + y,
                                self.url + "/machine/" + name], capture_output=True, text=True)
            assert r.stdout in ("200", "201"), (name, r.stdout)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


@pytest.fixture(scope="module")
def gateway():
    if os.environ.get("SMC_BOOTSTRAP"):
        g = Worker(os.environ["SMC_BOOTSTRAP"])
    else:
        g = Dev("--voters", "0", "--partitions", "4")
    yield g
    assert g.stop() == 0


def test_every_example_has_a_scenario():
    machines = {os.path.basename(p)[:-5] for p in glob.glob(os.path.join(ROOT, "examples", "machines", "*.yaml"))}
    scenarios = {os.path.basename(p)[:-3] for p in SCRIPTS}
    assert machines <= scenarios, machines - scenarios
    for s in scenarios:
        assert os.path.exists(os.path.join(SCEN, s + ".expected")), s


@pytest.mark.parametrize("script", SCRIPTS, ids=[os.path.basename(s)[:-3] for s in SCRIPTS])
def test_scenario(gateway, script):
    env = dict(os.environ, SMC_URL=gateway.url, SMC_RUN="r" + uuid.uuid4().hex[:8])
    r = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with open(script[:-3] + ".expected") as f:
        want = f.read()
    got = normalise(r.stdout)
    if got != normalise(want):
        import difflib
        diff = "\n".join(difflib.unified_diff(normalise(want).splitlines(), got.splitlines(),
                                              "expected", "got", lineterm=""))
        pytest.fail("scenario output differs:\n" + diff)
