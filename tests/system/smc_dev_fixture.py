"""Start `smc dev` for a test module and talk HTTP to it (stdlib only)."""
import http.client
import json
import os
import signal
import socket
import subprocess
import time

ROOT = os.environ.get("SMC_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def smc_bin():
    b = os.environ.get("SMC_BIN")
    if b:
        return b
    for cand in ("build/smc", "build-gw/smc"):
        p = os.path.join(ROOT, cand)
        if os.path.exists(p):
            return p
    raise RuntimeError("set SMC_BIN to the smc binary")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Dev:
    """`smc dev --examples` on a free port; stop() checks it exits 0."""

    def __init__(self, *extra):
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.url = "http://" + self.addr
        self.proc = subprocess.Popen(
            [smc_bin(), "dev", "--examples", "--http", self.addr] + list(extra),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.time() + 180
        self.lines = []
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("smc dev exited: %s" % "".join(self.lines))
            self.lines.append(line)
            if "ready" in line:
                return
        raise RuntimeError("smc dev did not get ready")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc.stdout.close()
        return rc

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers dict, raw body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        try:
            try:
                conn.request(method, path, body=body, headers=h)
            except (BrokenPipeError, ConnectionResetError):
                # The server may answer before reading the whole body (413)
                # and close: its answer is still there to read.
                pass
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None, timeout=60):
        """(status, parsed JSON body or None)."""
        st, _, raw = self.request(method, path, body, headers, timeout)
        return st, (json.loads(raw) if raw.strip() else None)
