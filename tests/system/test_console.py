"""The web console (GET /ui, docs/console.md) in a real browser.

Headless Chromium from Debian (scripts/deps.sh test installs it), driven
over the DevTools protocol (tests/system/cdp.py, stdlib only), against
`smc dev --examples --voters 1`: open a machine and see its diagram, create
an object through the form, see a second client's change (made over HTTP
by this test) arrive live over SSE, see a rejected proposal's error as the
API gave it, see a pending proposal with its votes and vote through the
form, see the node table. Then the same console with bearer tokens. Every
step asserts on the page's DOM, and any script exception or CSP violation
fails the test.

Screenshots (PNG) go to SMC_SCREENSHOTS, default <dir of SMC_BIN>/console-
screenshots; docs/console.md shows copies of them from docs/img/.
"""
import json
import os
import tempfile

import pytest

from cdp import Browser, chromium_path
from smc_dev_fixture import Dev, smc_bin


def shots_dir():
    return os.environ.get("SMC_SCREENSHOTS") or os.path.join(
        os.path.dirname(os.path.abspath(smc_bin())), "console-screenshots")


@pytest.fixture(scope="module")
def dev():
    d = Dev("--voters", "1")
    yield d
    assert d.stop() == 0


@pytest.fixture(scope="module")
def browser():
    if not chromium_path():
        pytest.fail("chromium is missing: scripts/deps.sh test installs it")
    with Browser(shots_dir()) as b:
        yield b
        assert b.exceptions == [], "script exceptions in the console: %s" % b.exceptions
        assert b.log_errors == [], "errors logged by the page: %s" % b.log_errors


def js_str(s):
    return json.dumps(s)


# ------------------------------------------------------------------ over HTTP

def test_console_files_are_served_with_validators(dev):
    st, h, body = dev.request("GET", "/ui")
    assert st == 200 and h["content-type"] == "text/html; charset=utf-8"
    assert b'<script src="ui/console.js"' in body
    assert "script-src 'self'" in h["content-security-policy"]
    assert h["cache-control"] == "no-cache" and h["x-content-type-options"] == "nosniff"
    for asset, ctype in (("console.js", "text/javascript; charset=utf-8"),
                         ("console.css", "text/css; charset=utf-8")):
        st, h, body = dev.request("GET", "/ui/" + asset)
        assert st == 200 and h["content-type"] == ctype and len(body) > 1000
        etag = h["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        st, h2, body = dev.request("GET", "/ui/" + asset, headers={"If-None-Match": etag})
        assert st == 304 and body == b"" and h2["etag"] == etag
        st, _, _ = dev.request("GET", "/ui/" + asset, headers={"If-None-Match": '"other"'})
        assert st == 200


def test_console_paths_and_methods(dev):
    st, h, _ = dev.request("GET", "/ui/")
    assert st == 308 and h["location"] == "../ui"
    st, body = dev.json("GET", "/ui/nothing.js")
    assert st == 404 and body["error"]["code"] == "not_found"
    st, h, _ = dev.request("POST", "/ui")
    assert st == 405 and h["allow"] == "GET, HEAD"
    st, body = dev.json("GET", "/ui?x=1")
    assert st == 400 and "unknown query parameter 'x'" in body["error"]["message"]
    # metrics name the route templates, never the file asked for
    dev.request("GET", "/machine/lock/object/secret-ui-id/pending")
    st, _, text = dev.request("GET", "/metrics")
    text = text.decode()
    for route in ("/ui", "/ui/{asset}", "/machine/{m}/object/{o}/pending"):
        assert 'route="%s"' % route in text, route
    assert "nothing.js" not in text and "secret-ui-id" not in text


def test_pending_lists_votes(dev):
    """GET .../pending: the waiting proposal and the votes it has so far."""
    st, _ = dev.json("PUT", "/machine/approval/object/http-req/transition/request",
                     {"requester": "bob", "amount": 3})
    assert st == 200
    st, p = dev.json("PUT", "/machine/approval/object/http-req/transition/approve?wait=0s", {})
    assert st == 202
    st, body = dev.json("GET", "/machine/approval/object/http-req/pending")
    assert st == 200 and body["object"] == "http-req" and body["version"] == 1
    [w] = body["proposals"]
    assert w["proposal"] == p["proposal"] and w["status"] == "waiting"
    assert w["transition"] == "approve" and w["deadline"] > 0
    assert set(w["votes"]) == {"accept", "reject"}
    st, body = dev.json("GET", "/machine/lock/object/http-req/pending")
    assert st == 404 and body["error"]["code"] == "unknown_object"
    st, body = dev.json("GET", "/machine/approval/object/no-such-request/pending")
    assert st == 404 and body["error"]["code"] == "unknown_object"


# ------------------------------------------------------------------ in Chromium

def test_machines_and_a_diagram(dev, browser):
    b = browser
    b.goto(dev.url + "/ui")
    n = b.wait("document.querySelectorAll('#machines .machine-link').length >= 10 && "
               "document.querySelectorAll('#machines .machine-link').length", what="the machines")
    st, listed = dev.json("GET", "/machine")
    assert n == len(listed["machines"])
    assert b.js("Array.from(document.querySelectorAll('#machines .machine-link h2')).map(e => e.textContent)") \
        == [m["name"] for m in listed["machines"]]
    b.wait("document.getElementById('gateway-info').textContent.includes('gateway')")
    b.screenshot("machines.png", full_page=False)

    b.click('[data-machine="lock"]')
    b.wait("location.hash === '#/machine/lock'")
    # the diagram: Graphviz's SVG of `smc diagram`, a node per state
    b.wait("document.querySelectorAll('#diagram svg g.node').length >= 4", what="the SVG diagram")
    titles = b.js("Array.from(document.querySelectorAll('#diagram svg g.node title')).map(t => t.textContent)")
    assert {"free", "held", "retired"} <= set(titles)
    edges = b.js("Array.from(document.querySelectorAll('#diagram svg g.edge text')).map(t => t.textContent)")
    assert {"create", "acquire", "release", "retire"} <= set(edges)
    assert b.js("document.querySelectorAll('#transitions tbody tr').length") == 4
    # votes and timers are drawn on the edges, as smc diagram draws them
    b.goto(dev.url + "/ui#/machine/approval")
    b.wait("Array.from(document.querySelectorAll('#diagram svg g.edge text')).some(t => t.textContent.includes('2 of 3 votes'))",
           what="the vote quorum on the approve edge")
    b.goto(dev.url + "/ui#/machine/lease")
    b.wait("Array.from(document.querySelectorAll('#diagram svg g.edge text')).some(t => /after \\d/.test(t.textContent))",
           what="a timer on the lease diagram")
    b.goto(dev.url + "/ui#/machine/lock")
    b.wait("document.querySelectorAll('#diagram svg g.node').length >= 4")


def test_create_through_the_form_then_a_live_change_and_a_rejection(dev, browser):
    b = browser
    b.wait("location.hash === '#/machine/lock' && document.getElementById('create-form')")
    b.fill("#create-id", "ui-lock-1")
    b.fill("#create-transition", "create")
    b.fill("#create-data", "{}")
    b.click("#create-form button[type=submit]")
    b.wait("location.hash === '#/machine/lock/object/ui-lock-1'", what="the object page after create")
    b.wait("document.querySelector('#obj-state') && document.querySelector('#obj-state').textContent === 'free'")
    assert b.text("#obj-version") == "1"
    st, obj = dev.json("GET", "/machine/lock/object/ui-lock-1")
    assert st == 200 and obj["version"] == 1
    assert b.text("#obj-checksum") == obj["checksum"]
    b.wait("document.querySelectorAll('#history-table tbody tr').length === 1")
    b.wait("document.getElementById('live').textContent === 'live'", what="the SSE stream")

    # a second client changes the object: the page follows without a reload
    b.js("window.__marker = 'same page'")
    st, acq = dev.json("PUT", "/machine/lock/object/ui-lock-1/transition/acquire", {"owner": "svc-b"})
    assert st == 200 and acq["version"] == 2
    b.wait("document.querySelector('#obj-state').textContent === 'held'", what="the live change")
    assert b.js("window.__marker") == "same page"
    assert b.text("#obj-version") == "2"
    assert b.text("#obj-checksum") == acq["checksum"]
    assert json.loads(b.text("#obj-data")) == acq["data"]
    b.wait("document.querySelectorAll('#history-table tbody tr').length === 2")
    assert b.js("document.querySelector('#history-table tbody tr').dataset.version") == "2"
    assert b.js("document.querySelector('#diagram g.node.current title').textContent") == "held"
    b.screenshot("object.png")

    # a proposal the machine refuses: the API's code and message, as given
    b.fill("#propose-transition", "acquire")
    b.fill("#propose-data", '{"owner": "svc-c"}')
    b.fill("#propose-fence", False)
    b.click("#propose-form button[type=submit]")
    b.wait("document.querySelector('#propose-result .error-code')", what="the rejection")
    assert b.text("#propose-result .error-code") == "invalid_transition"
    assert b.text("#propose-result .error-message") == "transition 'acquire' is not allowed from state held"
    assert "422" in b.text("#propose-result .error-status")
    b.screenshot("rejected.png", full_page=False)

    # data the gateway cannot read: its 400 with line and column
    b.fill("#propose-transition", "release")
    b.fill("#propose-data", '{"owner": ')
    b.click("#propose-form button[type=submit]")
    b.wait("document.querySelector('#propose-result .error-code') && "
           "document.querySelector('#propose-result .error-code').textContent === 'bad_request'")
    assert b.text("#propose-result .error-message").startswith("malformed JSON at line 1")
    # a rule of the machine: only the owner may release
    b.fill("#propose-data", '{"owner": "svc-z"}')
    b.click("#propose-form button[type=submit]")
    b.wait("document.querySelector('#propose-result .error-code').textContent === 'validation_failed'")
    assert b.text("#propose-result .error-message") == "only the owner may release"
    # and one it accepts, fenced on the version shown
    b.fill("#propose-data", '{"owner": "svc-b"}')
    b.fill("#propose-fence", True)
    b.click("#propose-form button[type=submit]")
    b.wait("document.querySelector('#obj-state').textContent === 'free' && "
           "document.querySelector('#propose-result .result.ok')", what="the release")
    assert b.text("#obj-version") == "3"

    # the machine's object list finds it by id prefix
    b.goto(dev.url + "/ui#/machine/lock")
    b.wait("document.getElementById('object-search-form')")
    b.fill("#object-search", "ui-lock")
    b.click("#object-search-form button[type=submit]")
    b.wait("document.querySelector('#objects-table tr[data-object=\"ui-lock-1\"]')", what="the search hit")
    assert b.js("Array.from(document.querySelectorAll('#objects-table tbody tr')).every(r => r.dataset.object.startsWith('ui-lock'))")
    b.screenshot("machine.png")


def test_objects_are_paged(dev, browser):
    b = browser
    for i in range(55):
        st, _ = dev.json("PUT", "/machine/tally/object/page-%02d/transition/create" % i,
                         {"question": "q%d" % i})
        assert st in (200, 409)
    b.goto(dev.url + "/ui#/machine/tally")
    b.wait("document.querySelectorAll('#objects-table tbody tr').length === 50", what="a full page")
    b.click("#objects-next")
    b.wait("document.querySelector('#objects-table tbody tr') && "
           "document.querySelector('#objects-table tbody tr').dataset.object === 'page-50'",
           what="the second page")
    assert b.js("document.querySelectorAll('#objects-table tbody tr').length") == 5


def test_pending_proposal_votes_through_the_form(dev, browser):
    b = browser
    st, _ = dev.json("PUT", "/machine/approval/object/ui-req-1/transition/request",
                     {"requester": "alice", "amount": 250})
    assert st == 200
    b.goto(dev.url + "/ui#/machine/approval/object/ui-req-1")
    b.wait("document.getElementById('live').textContent === 'live'")
    b.fill("#propose-transition", "approve")
    b.fill("#propose-data", "{}")
    b.click("#propose-form button[type=submit]")
    # 2 of 3 voters: node-1 (the one voter of this smc dev) accepts, one more is needed
    b.wait("document.querySelector('#pending-result')", what="the 202 pending answer")
    b.wait("document.querySelector('#pending-table tr[data-proposal] .badge.accept')",
           what="node-1's vote on the pending proposal")
    assert b.text("#pending-table .badge.waiting") == "waiting"
    assert "node-1" in b.text("#pending-table .votes")
    b.screenshot("pending.png")
    b.click("#pending-table button")
    b.fill("#vote-voter", "node-2")
    b.fill("#vote-accept", "true")
    b.click("#vote-form button[type=submit]")
    b.wait("document.querySelector('#vote-result .result.ok')", what="the vote's 202")
    b.wait("document.querySelector('#obj-state').textContent === 'approved'", what="the approval, live")
    b.wait("document.getElementById('pending-none')")
    row = b.js("document.querySelector('#history-table tbody tr').innerText")
    assert "approve" in row and "node-1" in row and "node-2" in row


def test_node_table(dev, browser):
    b = browser
    b.click("#nav-nodes")
    b.wait("document.querySelectorAll('#nodes-table tbody tr').length === 3", what="three nodes")
    st, nodes = dev.json("GET", "/nodes")
    for n in nodes["nodes"]:
        row = "document.querySelector('#nodes-table tr[data-node=%s]')" % js_str(n["node"])
        assert b.js(row + ".querySelector('.badge').textContent") == n["status"] == "up"
        cells = b.js("Array.from(%s.cells).map(c => c.textContent)" % row)
        assert cells[2] == ", ".join(n["roles"])
        assert cells[4] == ", ".join(str(p) for p in n["partitions"])
        assert cells[8].endswith("ago")
    b.screenshot("nodes.png", full_page=False)


# ------------------------------------------------------------------ tokens

@pytest.fixture(scope="module")
def dev_tokens():
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"reader-token": {"machines": {"*": ["read"]}},
                   "lock-token": {"machines": ["lock"]}}, f)
        path = f.name
    d = Dev("--auth-tokens", path)
    yield d
    assert d.stop() == 0
    os.unlink(path)


def test_console_with_bearer_tokens(dev_tokens):
    d = dev_tokens
    st, _, _ = d.request("GET", "/ui")  # the files hold no data: open
    assert st == 200
    st, obj = d.json("PUT", "/machine/lock/object/tok-1/transition/create", {},
                     headers={"Authorization": "Bearer lock-token"})
    assert st == 200
    with Browser(shots_dir()) as b:
        b.goto(d.url + "/ui")
        b.wait("document.querySelector('#view .error-code')", what="the 401 without a token")
        assert b.text("#view .error-code") == "unauthorized"
        b.fill("#token-input", "reader-token")
        b.click("#token-form button[type=submit]")
        b.wait("document.querySelectorAll('#machines .machine-link').length >= 10")
        assert b.js("sessionStorage.getItem('smc.token')") == "reader-token"
        # the live view sends the token too (fetch streaming, not EventSource)
        b.goto(d.url + "/ui#/machine/lock/object/tok-1")
        b.wait("document.getElementById('live').textContent === 'live'", what="SSE with the token")
        st, _ = d.json("PUT", "/machine/lock/object/tok-1/transition/acquire", {"owner": "svc-t"},
                       headers={"Authorization": "Bearer lock-token"})
        assert st == 200
        b.wait("document.querySelector('#obj-state').textContent === 'held'", what="the live change")
        # a read-only token may not propose: the gateway's 403, shown as given
        b.fill("#propose-transition", "release")
        b.fill("#propose-data", '{"owner": "svc-t"}')
        b.click("#propose-form button[type=submit]")
        b.wait("document.querySelector('#propose-result .error-code')")
        assert b.text("#propose-result .error-code") == "forbidden"
        assert "may not propose" in b.text("#propose-result .error-message")
        b.click("#token-clear")
        b.wait("document.querySelector('#view .error-code') && "
               "document.querySelector('#view .error-code').textContent === 'unauthorized'")
        assert b.js("sessionStorage.getItem('smc.token')") is None
        assert b.exceptions == [] and b.log_errors == []


def test_diagram_without_graphviz_shows_the_dot_source():
    """A gateway whose host has no Graphviz answers the SVG with 500
    io_error: the console shows that error and the DOT text instead."""
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = "/nonexistent"  # smc dev finds no `dot`
    try:
        d = Dev()
    finally:
        os.environ["PATH"] = path
    try:
        with Browser(shots_dir()) as b:
            b.goto(d.url + "/ui#/machine/lock")
            b.wait("document.querySelector('#diagram pre')", what="the DOT fallback")
            assert b.text("#diagram pre").startswith('digraph "lock" {')
            assert b.text("#diagram .error-code") == "io_error"
            assert "dot -Tsvg" in b.text("#diagram .error-message")
            assert b.exceptions == [] and b.log_errors == []
    finally:
        assert d.stop() == 0
