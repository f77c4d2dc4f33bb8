"""A headless Chromium driven over the DevTools protocol (stdlib only).

Chromium is started with --remote-debugging-pipe: it reads protocol
messages (JSON, each ended by a NUL byte) from its fd 3 and writes answers
and events to its fd 4, so no port, no WebSocket client and no PyPI module
is needed. One page (target) per Browser, attached in flat mode.

    with Browser(screenshots_dir) as b:
        b.goto("http://127.0.0.1:8080/ui")
        b.wait("document.querySelectorAll('.machine-link').length > 0")
        b.screenshot("machines.png")
"""
import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class CdpError(RuntimeError):
    pass


class Browser:
    def __init__(self, shots_dir=None, width=1280, height=900):
        self.shots_dir = shots_dir
        self.width, self.height = width, height
        self.exceptions = []  # Runtime.exceptionThrown details
        self.log_errors = []  # Log.entryAdded of level error, other than network ones
        self._next = 0
        self._answers = {}
        self._cv = threading.Condition()
        self._closed = False

    # ------------------------------------------------------------ lifecycle
    def __enter__(self):
        exe = chromium_path()
        if not exe:
            raise CdpError("no chromium on PATH: scripts/deps.sh test installs Debian's")
        self.profile = tempfile.mkdtemp(prefix="smc-chromium-")
        to_r, self._to_w = os.pipe()      # we write commands, Chromium reads fd 3
        self._from_r, from_w = os.pipe()  # Chromium writes fd 4, we read
        # Chromium's ends above fd 4, so that moving them to 3 and 4 (and
        # closing the originals) cannot close one of them
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_r, from_w)]
        os.close(to_r)
        os.close(from_w)
        to_r, from_w = high
        args = [exe, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--mute-audio",
                "--hide-scrollbars", "--remote-debugging-pipe",
                "--user-data-dir=" + self.profile,
                "--window-size=%d,%d" % (self.width, self.height), "about:blank"]
        # the pipe ends become fds 3 and 4 of Chromium
        shell = 'exec "$@" 3<&%d 4>&%d %d<&- %d>&-' % (to_r, from_w, to_r, from_w)
        self.proc = subprocess.Popen(["bash", "-c", shell, "bash"] + args,
                                     pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(domain + ".enable")
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self.call("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_w)
        shutil.rmtree(self.profile, ignore_errors=True)

    # ------------------------------------------------------------ protocol
    def _read_loop(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cv:
                        self._answers[msg["id"]] = msg
                        self._cv.notify_all()
                else:
                    self._event(msg)
        os.close(self._from_r)
        with self._cv:
            self._answers[-1] = {"closed": True}
            self._cv.notify_all()

    def _event(self, msg):
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            self.exceptions.append(d.get("exception", {}).get("description") or d.get("text"))
        elif method == "Log.entryAdded":
            e = params.get("entry", {})
            # a 4xx answer the console shows on purpose is logged by source "network"
            if e.get("level") == "error" and e.get("source") != "network":
                self.log_errors.append("%s: %s" % (e.get("source"), e.get("text")))

    def call(self, method, session=None, timeout=60, **params):
        with self._cv:
            self._next += 1
            mid = self._next
        msg = {"id": mid, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        with self._cv:
            while mid not in self._answers:
                if -1 in self._answers:
                    raise CdpError("chromium exited during %s" % method)
                left = deadline - time.time()
                if left <= 0:
                    raise CdpError("no answer to %s in %d s" % (method, timeout))
                self._cv.wait(left)
            ans = self._answers.pop(mid)
        if "error" in ans:
            raise CdpError("%s: %s" % (method, ans["error"]))
        return ans.get("result", {})

    def send(self, method, timeout=60, **params):
        """A command to the page's session."""
        return self.call(method, session=self.session, timeout=timeout, **params)

    # ------------------------------------------------------------ page helpers
    def goto(self, url):
        self.send("Page.navigate", url=url)

    def js(self, expression, timeout=60):
        """Evaluate in the page (promises awaited); its value (JSON-able)."""
        r = self.send("Runtime.evaluate", expression=expression, awaitPromise=True,
                      returnByValue=True, timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CdpError("page: %s" % (d.get("exception", {}).get("description") or d.get("text")))
        return r.get("result", {}).get("value")

    def wait(self, expression, timeout=30, what=None):
        """Poll expression until it is truthy; its value. Fails with what the page shows."""
        deadline = time.time() + timeout
        last = None
        # an element found counts as true (returned by value it would be {})
        probe = "(() => { const v = (%s); return v instanceof Node ? true : v; })()" % expression
        while time.time() < deadline:
            try:
                last = self.js(probe)
            except CdpError as e:
                last = str(e)
            else:
                if last:
                    return last
            time.sleep(0.1)
        view = self.js("document.getElementById('view') ? document.getElementById('view').innerText : document.body.innerText")
        raise AssertionError("timed out waiting for %s (last value %r); the page shows:\n%s"
                             % (what or expression, last, view))

    def text(self, selector):
        return self.js("(() => { const e = document.querySelector(%s); return e ? e.textContent : null; })()"
                       % json.dumps(selector))

    def fill(self, selector, value):
        """Set a form field's value (input, textarea or select) as a user would."""
        ok = self.js("""(() => {
            const e = document.querySelector(%s);
            if (!e) return false;
            if (e.type === 'checkbox') e.checked = %s; else e.value = %s;
            e.dispatchEvent(new Event('input', {bubbles: true}));
            e.dispatchEvent(new Event('change', {bubbles: true}));
            return true; })()""" % (json.dumps(selector), json.dumps(bool(value)), json.dumps(value)))
        if not ok:
            raise AssertionError("no element %s to fill" % selector)

    def click(self, selector):
        ok = self.js("(() => { const e = document.querySelector(%s); if (!e) return false; e.click(); return true; })()"
                     % json.dumps(selector))
        if not ok:
            raise AssertionError("no element %s to click" % selector)

    def screenshot(self, name, full_page=True):
        """A PNG of the page into shots_dir/name (the whole page by default); its path."""
        if not self.shots_dir:
            return None
        os.makedirs(self.shots_dir, exist_ok=True)
        height = self.height
        if full_page:
            m = self.send("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m.get("contentSize")
            height = max(self.height, int(size["height"]))
            self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=height,
                      deviceScaleFactor=1, mobile=False)
        try:
            data = self.send("Page.captureScreenshot", format="png")["data"]
        finally:
            if full_page:
                self.send("Emulation.setDeviceMetricsOverride", width=self.width,
                          height=self.height, deviceScaleFactor=1, mobile=False)
        path = os.path.join(self.shots_dir, name)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
