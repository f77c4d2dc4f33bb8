"""The REST gateway against `smc dev`: every endpoint, every error status,
bad input, and thousands of concurrent connections.

smc dev runs with --voters 0 so that votes come only from the tests."""
import json
import resource
import socket
import threading
import time
import uuid

import pytest

from smc_dev_fixture import Dev


@pytest.fixture(scope="module")
def dev():
    d = Dev("--voters", "0", "--partitions", "4")
    yield d
    assert d.stop() == 0, "smc dev must exit 0 on SIGTERM"


def uid(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def assert_error(status, body, want_status, want_code):
    assert status == want_status, body
    assert body["error"]["code"] == want_code, body
    assert body["error"]["message"]
    assert "path" in body["error"]


# ---------------------------------------------------------------- operations

def test_health_ready_info_metrics(dev):
    assert dev.json("GET", "/healthz") == (200, {"status": "ok"})
    assert dev.json("GET", "/readyz")[0] == 200
    st, info = dev.json("GET", "/info")
    assert st == 200
    assert info["node_id"] and info["roles"] and info["bootstrap"]
    assert sorted(info["partitions"]) == [0, 1, 2, 3]
    st, h, raw = dev.request("GET", "/metrics")
    assert st == 200 and h["content-type"].startswith("text/plain")
    text = raw.decode()
    assert "# TYPE smc_http_requests_total counter" in text
    assert 'smc_http_requests_total{code="200",method="GET",route="/healthz"}' in text
    assert "# TYPE smc_http_request_duration_seconds histogram" in text
    assert 'smc_http_request_duration_seconds_bucket{route="/healthz",le="+Inf"}' in text


def test_machine_list_get_diagram(dev):
    st, body = dev.json("GET", "/machine")
    assert st == 200
    names = [m["name"] for m in body["machines"]]
    assert names == sorted(names) and {"lock", "lease", "approval"} <= set(names)
    st, m = dev.json("GET", "/machine/lock")
    assert st == 200 and m["name"] == "lock" and len(m["hash"]) == 64
    assert "acquire" in [t["name"] for t in m["transitions"]]
    assert "held" in [s["name"] for s in m["states"]]
    st, h, raw = dev.request("GET", "/machine/lock", headers={"Accept": "application/yaml"})
    assert st == 200 and h["content-type"] == "application/yaml" and b"name: lock" in raw
    st, h, raw = dev.request("GET", "/machine/lock/diagram?format=dot")
    assert st == 200 and b"digraph" in raw and b"acquire" in raw
    st, h, raw = dev.request("GET", "/machine/lock/diagram?format=mermaid")
    assert st == 200 and b"stateDiagram" in raw
    st, h, raw = dev.request("GET", "/machine/lock/diagram")
    assert st == 200 and h["content-type"] == "image/svg+xml" and b"<svg" in raw
    assert_error(*dev.json("GET", "/machine/lock/diagram?format=png"), 400, "bad_request")
    assert_error(*dev.json("GET", "/machine/nope"), 404, "unknown_machine")
    assert_error(*dev.json("GET", "/machine/nope/diagram"), 404, "unknown_machine")


TOGGLE = """name: %s
kind: ndfsm
states:
  off: {}
  on: {}
transitions:
  make: {from: null, to: off}
  flip: {from: off, to: on}
  flop: {from: on, to: off}
"""


def test_register_machine(dev):
    name = uid("toggle").replace("-", "_")
    y = TOGGLE % name
    st, body = dev.json("POST", "/machine/" + name, y, {"Content-Type": "application/yaml"})
    assert st == 201 and body["name"] == name and len(body["hash"]) == 64
    st, again = dev.json("POST", "/machine/" + name, y, {"Content-Type": "application/yaml"})
    assert st == 200 and again["hash"] == body["hash"]
    # another definition is the machine's next version when it keeps every
    # state (here a transition renamed), machine_exists when it drops one
    other = y.replace("flop", "flap")
    st, v2 = dev.json("POST", "/machine/" + name, other, {"Content-Type": "application/yaml"})
    assert st == 201 and v2["previous"] == body["hash"] and v2["hash"] != body["hash"], v2
    dropped = other.replace("  on: {}\n", "").replace("  flip: {from: off, to: on}\n", "").replace(
        "  flap: {from: on, to: off}\n", "")
    assert_error(*dev.json("POST", "/machine/" + name, dropped, {"Content-Type": "application/yaml"}),
                 409, "machine_exists")
    # The name in the path must be the definition's.
    assert_error(*dev.json("POST", "/machine/other_name", y, {"Content-Type": "application/yaml"}),
                 400, "bad_request")
    # A JSON definition works as well, and the machine is usable at once.
    jname = uid("jtoggle").replace("-", "_")
    jdef = {"name": jname, "kind": "ndfsm", "states": {"a": {}, "b": {}},
            "transitions": {"make": {"from": None, "to": "a"}, "go": {"from": "a", "to": "b"}}}
    st, body = dev.json("POST", "/machine/" + jname, jdef)
    assert st == 201, body
    st, obj = dev.json("PUT", "/machine/%s/object/%s/transition/make" % (jname, uid("o")), {})
    assert st == 200 and obj["state"] == "a"
    st, body = dev.json("GET", "/machine")
    assert {name, jname} <= {m["name"] for m in body["machines"]}


def test_register_invalid_definition_lists_every_error(dev):
    bad = """name: broken
kind: ndfsm
states:
  a: {}
transitions:
  t1: {from: a, to: nowhere}
  t2: {from: elsewhere, to: a}
  t3: {from: a, to: a, bogus_key: 1}
"""
    st, body = dev.json("POST", "/machine/broken", bad, {"Content-Type": "application/yaml"})
    assert st == 400, body
    err = body["error"]
    assert err["code"] == "invalid_machine"
    assert len(err["errors"]) >= 3, err
    for e in err["errors"]:
        assert e["code"] and e["message"] and e["line"] > 0 and e["column"] > 0, e
    assert {e["line"] for e in err["errors"]} >= {6, 7, 8}
    st, body = dev.json("POST", "/machine/broken", "name: [unclosed", {"Content-Type": "application/yaml"})
    assert st == 400 and body["error"]["code"] == "invalid_machine"
    assert body["error"]["errors"][0]["line"] >= 1
    assert_error(*dev.json("POST", "/machine/broken", "", {"Content-Type": "application/yaml"}),
                 400, "bad_request")
    st, body = dev.json("POST", "/machine/x", "name: x", {"Content-Type": "text/plain"})
    assert_error(st, body, 415, "bad_request")


def test_propose_lifecycle_and_errors(dev):
    o = uid("lock")
    base = "/machine/lock/object/%s/transition/" % o
    st, c = dev.json("PUT", base + "create?expect_version=0", {})
    assert st == 200, c
    for k in ("object", "machine", "state", "version", "data", "checksum", "updated", "proposal"):
        assert k in c, k
    assert (c["object"], c["machine"], c["state"], c["version"]) == (o, "lock", "free", 1)
    assert len(c["checksum"]) == 64
    # With expect_version the same body derives the same proposal id: the
    # original decision again (test_semantics.py: without it, a new proposal).
    st, dup = dev.json("PUT", base + "create?expect_version=0", {})
    assert st == 200 and dup.get("duplicate") is True and dup["proposal"] == c["proposal"]
    # Another proposal (its own id) to create it is refused.
    assert_error(*dev.json("PUT", base + "create", {}, {"Idempotency-Key": uid("k")}), 409, "object_exists")
    st, c = dev.json("PUT", base + "acquire", {"owner": "svc-a"})
    assert st == 200 and c["state"] == "held" and c["data"] == {"owner": "svc-a", "token": 2}
    assert_error(*dev.json("PUT", base + "release?expect_version=1", {"owner": "svc-a"}), 409, "version_conflict")
    st, body = dev.json("PUT", base + "release", {"owner": "svc-b"})
    assert_error(st, body, 422, "validation_failed")
    assert body["error"]["message"] == "only the owner may release"
    assert_error(*dev.json("PUT", base + "acquire", {"owner": "svc-b"}), 422, "invalid_transition")
    assert_error(*dev.json("PUT", base + "teleport", {}), 404, "unknown_transition")
    assert_error(*dev.json("PUT", "/machine/nope/object/x/transition/create", {}), 404, "unknown_machine")
    assert_error(*dev.json("PUT", "/machine/lock/object/%s/transition/acquire" % uid("ghost"),
                           {"owner": "a"}), 404, "unknown_object")
    assert_error(*dev.json("PUT", base + "release?expect_version=x", {}), 400, "bad_request")
    assert_error(*dev.json("PUT", base + "release?wait=forever", {}), 400, "bad_request")
    assert_error(*dev.json("PUT", base + "release", [1, 2]), 400, "bad_request")
    # Idempotency-Key = proposal id: the second send answers the same decision.
    key = uid("idem")
    st, c1 = dev.json("PUT", base + "release", {"owner": "svc-a"}, {"Idempotency-Key": key})
    assert st == 200 and c1["proposal"] == key and c1["version"] == 3
    st, c2 = dev.json("PUT", base + "release", {"owner": "svc-a"}, {"Idempotency-Key": key})
    assert st == 200 and c2["version"] == 3 and c2.get("duplicate") is True
    assert c2["checksum"] == c1["checksum"]
    assert_error(*dev.json("PUT", base + "release", {}, {"Idempotency-Key": "x" * 65}), 400, "bad_request")
    # GET /proposal/{id} knows what this gateway saw.
    st, p = dev.json("GET", "/proposal/" + key)
    assert st == 200 and p["status"] == "committed" and p["object"] == o
    assert_error(*dev.json("GET", "/proposal/never-sent-" + uid("p")), 404, "not_found")


def test_read(dev):
    o = uid("lock")
    dev.json("PUT", "/machine/lock/object/%s/transition/create" % o, {})
    st, v = dev.json("GET", "/machine/lock/object/" + o)
    assert st == 200
    assert (v["object"], v["machine"], v["state"], v["version"], v["data"]) == (o, "lock", "free", 1, {})
    assert len(v["checksum"]) == 64
    assert_error(*dev.json("GET", "/machine/lock/object/" + uid("ghost")), 404, "unknown_object")
    # The object exists, but not as a lease.
    assert_error(*dev.json("GET", "/machine/lease/object/" + o), 404, "unknown_object")
    assert_error(*dev.json("GET", "/machine/nope/object/" + o), 404, "unknown_machine")


def test_watch_long_poll_and_sse(dev):
    o = uid("lock")
    base = "/machine/lock/object/%s" % o
    dev.json("PUT", base + "/transition/create", {})
    st, v = dev.json("GET", base + "/watch?after_version=0&timeout=5s")
    assert st == 200 and v["version"] == 1
    st, _, raw = dev.request("GET", base + "/watch?after_version=1&timeout=1s")
    assert st == 204 and raw == b""
    assert_error(*dev.json("GET", base + "/watch?timeout=soon"), 400, "bad_request")

    def later():
        time.sleep(1.0)
        dev.json("PUT", base + "/transition/acquire", {"owner": "svc-w"})
    t = threading.Thread(target=later)
    t.start()
    t0 = time.time()
    st, v = dev.json("GET", base + "/watch?after_version=1&timeout=20s")
    t.join()
    assert st == 200 and v["version"] == 2 and v["state"] == "held", v
    assert time.time() - t0 < 15

    def later2():
        time.sleep(1.0)
        dev.json("PUT", base + "/transition/release", {"owner": "svc-w"})
    t = threading.Thread(target=later2)
    t.start()
    st, h, raw = dev.request("GET", base + "/watch?after_version=2&timeout=4s",
                             headers={"Accept": "text/event-stream"})
    t.join()
    assert st == 200 and h["content-type"] == "text/event-stream"
    text = raw.decode()
    assert "event: commit" in text and "id: 3" in text, text
    data = [l[len("data: "):] for l in text.splitlines() if l.startswith("data: ")]
    assert json.loads(data[0])["state"] == "free"


def test_votes(dev):
    o = uid("req")
    base = "/machine/approval/object/%s/transition/" % o
    st, c = dev.json("PUT", base + "request", {"requester": "alice", "amount": 10})
    assert st == 200 and c["state"] == "pending"
    # Nothing to vote on yet.
    assert_error(*dev.json("PATCH", base + "approve", {"voter": "node-1", "accept": True}), 404, "not_found")
    st, p = dev.json("PUT", base + "approve?wait=500ms", {})
    assert st == 202 and p["status"] == "pending" and len(p["proposal"]) == 64, p
    pid = p["proposal"]
    st, rec = dev.json("GET", "/proposal/" + pid)
    assert st == 200 and rec["status"] == "pending"
    assert_error(*dev.json("PATCH", base + "approve", {"voter": "node-1"}), 400, "bad_request")
    assert_error(*dev.json("PATCH", base + "approve", "{nope", {"Content-Type": "application/json"}),
                 400, "bad_request")
    st, v = dev.json("PATCH", base + "approve", {"voter": "node-1", "accept": True, "reason": "ok"})
    assert st == 202 and v["proposal"] == pid
    st, v = dev.json("PATCH", base + "approve", {"voter": "node-2", "accept": True, "proposal": pid})
    assert st == 202
    deadline = time.time() + 20
    while time.time() < deadline:
        st, rec = dev.json("GET", "/proposal/" + pid)
        if rec["status"] != "pending":
            break
        time.sleep(0.2)
    assert rec["status"] == "committed", rec
    assert sorted(rec["confirmation"]["votes"]["accept"]) == ["node-1", "node-2"]
    st, obj = dev.json("GET", "/machine/approval/object/" + o)
    assert st == 200 and obj["state"] == "approved"
    # Decided: nothing to vote on any more.
    assert_error(*dev.json("PATCH", base + "approve", {"voter": "node-3", "accept": True, "proposal": pid}),
                 404, "not_found")


def test_votes_rejected(dev):
    o = uid("req")
    base = "/machine/approval/object/%s/transition/" % o
    dev.json("PUT", base + "request", {"requester": "bob", "amount": 99})
    st, p = dev.json("PUT", base + "approve?wait=300ms", {})
    assert st == 202
    for voter in ("node-1", "node-3"):
        st, _ = dev.json("PATCH", base + "approve", {"voter": voter, "accept": False, "reason": "no"})
        assert st == 202
    # Re-sending the proposal (same id) answers its decision: rejected.
    st, body = dev.json("PUT", base + "approve?wait=10s", {}, {"Idempotency-Key": p["proposal"]})
    assert_error(st, body, 422, "vote_rejected")
    assert body["outcome"] == "rejected"


# ------------------------------------------------------------------ bad input

def test_bad_input(dev):
    base = "/machine/lock/object/%s/transition/create" % uid("bad")
    assert_error(*dev.json("PUT", base, "{not json", {"Content-Type": "application/json"}), 400, "bad_request")
    assert_error(*dev.json("PUT", base, "{}", {"Content-Type": "text/xml"}), 415, "bad_request")
    assert_error(*dev.json("PUT", base, b'{"owner":"\xff\xfe"}', {"Content-Type": "application/json"}),
                 400, "bad_request")
    assert_error(*dev.json("PUT", base, b'{"a":"\xc0\xaf"}', {"Content-Type": "application/json"}),
                 400, "bad_request")  # overlong encoding
    deep = "[" * 5000 + "]" * 5000
    assert_error(*dev.json("PUT", base, deep, {"Content-Type": "application/json"}), 400, "bad_request")
    deep_obj = '{"a":' * 5000 + "1" + "}" * 5000
    assert_error(*dev.json("PUT", base, deep_obj, {"Content-Type": "application/json"}), 400, "bad_request")
    # Content-Length over the limit: 413 at once, before the body is sent.
    s = socket.create_connection(("127.0.0.1", dev.port))
    s.sendall(b"PUT " + base.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2097152\r\n\r\n")
    s.settimeout(10)
    resp = b""
    while b"}}" not in resp:
        part = s.recv(4096)
        if not part:
            break
        resp += part
    s.close()
    assert resp.startswith(b"HTTP/1.1 413"), resp
    assert b'"code":"too_large"' in resp
    # Just over the limit, sent in full.
    # 2,000 deep is within jansson's limit: the cluster must survive it.
    o = uid("deep")
    dev.json("PUT", "/machine/lock/object/%s/transition/create" % o, {})
    st, _, raw = dev.request("PUT", "/machine/lock/object/%s/transition/acquire" % o,
                             '{"owner":"a","x":' + "[" * 2000 + "]" * 2000 + "}",
                             {"Content-Type": "application/json"})
    assert st == 200 and b'"version":2' in raw  # (too deep for Python's json module)
    st, _, raw = dev.request("GET", "/machine/lock/object/" + o)
    assert st == 200 and raw.count(b"[") == 2000
    # Deeply nested YAML definitions are refused by the compiler, not a crash.
    st, body = dev.json("POST", "/machine/deep", "name: deep\nstates: " + "[" * 5000 + "]" * 5000 + "\n",
                        {"Content-Type": "application/yaml"})
    assert st == 400 and body["error"]["code"] == "invalid_machine"
    assert body["error"]["errors"][0]["line"] == 2
    big = '{"x":"' + "a" * (1024 * 1024) + '"}'
    try:
        st, body = dev.json("PUT", base, big, {"Content-Type": "application/json"})
        assert_error(st, body, 413, "too_large")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before the whole body is sent
    assert_error(*dev.json("PUT", base, '{"a":1,"a":2}', {"Content-Type": "application/json"}), 400, "bad_request")
    assert_error(*dev.json("DELETE", "/machine/lock"), 405, "bad_request")
    assert_error(*dev.json("POST", "/healthz"), 405, "bad_request")
    assert_error(*dev.json("GET", base), 405, "bad_request")
    assert_error(*dev.json("POST", "/machine/lock/object/x"), 405, "bad_request")
    assert_error(*dev.json("GET", "/nope"), 404, "not_found")
    assert_error(*dev.json("GET", "/machine/lock/object/x/transition/a/b/c"), 404, "not_found")
    # Path segments: invalid UTF-8 and over-long object ids.
    assert_error(*dev.json("GET", "/machine/lock/object/%FF%FE"), 400, "bad_request")
    assert_error(*dev.json("PUT", "/machine/lock/object/%C0%AF/transition/create", {}), 400, "bad_request")
    assert_error(*dev.json("PUT", "/machine/lock/object/x/transition/create", {},
                           {"X-Smc-Proposer": "caf\xe9".encode("latin-1").decode("latin-1")}), 400, "bad_request")
    long_id = "o" * 5000
    assert_error(*dev.json("GET", "/machine/lock/object/" + long_id), 400, "bad_request")
    assert_error(*dev.json("PUT", "/machine/lock/object/%s/transition/create" % long_id, {}), 400, "bad_request")
    assert_error(*dev.json("GET", "/machine/lock/object/%s/watch?timeout=1s" % long_id), 400, "bad_request")
    # Chunked body over the limit (no Content-Length): still 413.
    s = socket.create_connection(("127.0.0.1", dev.port))
    s.sendall(b"PUT " + base.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"a" * 65536
    try:
        for _ in range(20):
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    s.settimeout(10)
    head = s.recv(100)
    s.close()
    assert head.startswith(b"HTTP/1.1 413"), head
    assert dev.json("GET", "/healthz")[0] == 200


# ---------------------------------------------------------------- connections

def test_two_thousand_concurrent_connections(dev):
    n = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", dev.port), timeout=60)
        socks.append(s)
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    for s in socks:
        s.sendall(req)
    statuses = {}
    for s in socks:
        buf = b""
        while b"\r\n\r\n" not in buf:
            part = s.recv(4096)
            if not part:
                break
            buf += part
        line = buf.split(b"\r\n", 1)[0]
        code = line.split(b" ")[1].decode() if line.startswith(b"HTTP/1.1 ") else "closed:" + repr(line)
        statuses[code] = statuses.get(code, 0) + 1
    for s in socks:
        s.close()
    assert set(statuses) <= {"200", "503"}, statuses
    assert statuses.get("200", 0) >= 1000, statuses  # max_connections is 1024
    assert statuses.get("503", 0) >= 1, statuses
    time.sleep(1)
    assert dev.json("GET", "/healthz")[0] == 200
    o = uid("lock")
    assert dev.json("PUT", "/machine/lock/object/%s/transition/create" % o, {})[0] == 200


# ---------------------------------------------------------------------- auth

def test_bearer_tokens(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({
        "admin-secret": {"machines": "*"},
        "lock-secret": {"machines": ["lock"]},
        "reader-secret": {"machines": "*", "read_only": True},
    }))
    d = Dev("--voters", "0", "--partitions", "2", "--nodes", "1", "--auth-tokens", str(tokens))
    try:
        assert d.json("GET", "/healthz")[0] == 200
        assert d.json("GET", "/readyz")[0] == 200
        assert_error(*d.json("GET", "/machine"), 401, "unauthorized")
        assert_error(*d.json("GET", "/machine", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        admin = {"Authorization": "Bearer admin-secret"}
        assert d.json("GET", "/machine", headers=admin)[0] == 200
        lock = {"Authorization": "Bearer lock-secret"}
        o = uid("lock")
        st, c = d.json("PUT", "/machine/lock/object/%s/transition/create" % o, {}, lock)
        assert st == 200, c
        assert_error(*d.json("PUT", "/machine/lease/object/%s/transition/create" % o, {}, lock), 403, "forbidden")
        assert_error(*d.json("GET", "/metrics", headers=lock), 403, "forbidden")
        reader = {"Authorization": "Bearer reader-secret"}
        st, v = d.json("GET", "/machine/lock/object/" + o, headers=reader)
        assert st == 200 and v["version"] == 1
        assert_error(*d.json("PUT", "/machine/lock/object/%s/transition/acquire" % o, {"owner": "x"}, reader),
                     403, "forbidden")
    finally:
        assert d.stop() == 0


def test_token_rights_per_machine(tmp_path):
    """{"machines": {name | "*": [read|propose|vote|register]}}: each request
    needs exactly its right on its machine; a malformed grant stops the start."""
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({
        "proposer": {"machines": {"lock": ["propose"]}},
        "voter": {"machines": {"lock": ["read", "vote"]}},
        "registrar": {"machines": {"*": ["register"]}},
        "ro-all": {"machines": {"*": ["read", "propose"]}, "read_only": True},
    }))
    d = Dev("--voters", "0", "--partitions", "2", "--nodes", "1", "--auth-tokens", str(tokens))
    try:
        def h(t):
            return {"Authorization": "Bearer " + t}
        o = uid("lock")
        path = "/machine/lock/object/%s/transition/create" % o
        st, c = d.json("PUT", path, {}, h("proposer"))
        assert st == 200 and c["version"] == 1, c
        # propose only: no reads, no votes, no other machine, no registration
        assert_error(*d.json("GET", "/machine/lock/object/" + o, headers=h("proposer")), 403, "forbidden")
        assert_error(*d.json("PATCH", path, {"voter": "v", "accept": True}, h("proposer")), 403, "forbidden")
        assert_error(*d.json("PUT", "/machine/lease/object/%s/transition/create" % o, {}, h("proposer")),
                     403, "forbidden")
        # read + vote: reads, and a vote passes the gate (whatever the cluster says)
        st, v = d.json("GET", "/machine/lock/object/" + o, headers=h("voter"))
        assert st == 200 and v["version"] == 1, v
        st, _ = d.json("PATCH", path, {"voter": "v", "accept": True}, h("voter"))
        assert st not in (401, 403), st
        assert_error(*d.json("PUT", "/machine/lock/object/%s/transition/acquire" % o, {"owner": "x"}, h("voter")),
                     403, "forbidden")
        # register: POST /machine passes the gate, reading does not
        st, _ = d.json("POST", "/machine", "name: [", {"Authorization": "Bearer registrar",
                                                        "Content-Type": "application/yaml"})
        assert st not in (401, 403), st
        assert_error(*d.json("GET", "/machine", headers=h("registrar")), 403, "forbidden")
        # read_only removes propose
        assert d.json("GET", "/machine/lock/object/" + o, headers=h("ro-all"))[0] == 200
        assert_error(*d.json("PUT", "/machine/lock/object/%s/transition/acquire" % o, {"owner": "x"}, h("ro-all")),
                     403, "forbidden")
    finally:
        assert d.stop() == 0
    tokens.write_text(json.dumps({"t": {"machines": {"lock": ["admin"]}}}))
    with pytest.raises(RuntimeError):
        Dev("--voters", "0", "--partitions", "2", "--nodes", "1", "--auth-tokens", str(tokens))


def test_outcome_unknown_then_resend(dev):
    """wait=1ms cannot see the decision: 504 with the proposal id; re-sending
    with that id as Idempotency-Key learns the outcome."""
    o = uid("lock")
    base = "/machine/lock/object/%s/transition/create" % o
    st, body = dev.json("PUT", base + "?wait=1ms", {})
    if st == 200:
        pytest.skip("the cluster decided within 1 ms")
    assert_error(st, body, 504, "unavailable")
    pid = body["proposal"]
    assert len(pid) == 64
    st, rec = dev.json("GET", "/proposal/" + pid)
    assert st == 200 and rec["status"] in ("unknown", "committed"), rec
    st, c = dev.json("PUT", base + "?wait=10s", {}, {"Idempotency-Key": pid})
    assert st == 200 and c["proposal"] == pid and c["version"] == 1, c
    st, rec = dev.json("GET", "/proposal/" + pid)
    assert st == 200 and rec["status"] == "committed"
