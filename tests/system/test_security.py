"""Issue 18: rights that hold on every path, and inputs no client can use to
forge. Each test names the finding of docs/reliability.md ("Security") it
guards; each failed on the code before its fix.

HTTP tests run against `smc dev` with bearer tokens (--voters 0: votes come
only from the tests)."""
import json
import socket
import time
import uuid

import pytest

from smc_dev_fixture import Dev

TOKENS = {
    "admin": {"machines": "*", "proposer": "alice"},
    "bob": {"machines": "*", "proposer": "bob"},
    "nameless": {"machines": "*"},
    "lock-read": {"machines": {"lock": ["read"]}},
    "lock-vote": {"machines": {"lock": ["read", "vote"]}},
    "lock-register": {"machines": {"lock": ["register"]}},
    "register-only": {"machines": {"*": ["register"]}},
}


def h(token):
    return {"Authorization": "Bearer " + token}


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    f = tmp_path_factory.mktemp("sec") / "tokens.json"
    f.write_text(json.dumps(TOKENS))
    d = Dev("--voters", "0", "--partitions", "4", "--nodes", "1", "--auth-tokens", str(f))
    yield d
    assert d.stop() == 0, "smc dev must exit 0 on SIGTERM"


def uid(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def assert_error(status, body, want_status, want_code):
    assert status == want_status, body
    assert body["error"]["code"] == want_code, body


def new_cart(dev):
    c = uid("cart")
    st, v = dev.json("PUT", "/machine/cart/object/%s/transition/create" % c,
                     {"customer": "eve"}, h("admin"))
    assert st == 200, v
    return c


# ---- finding 1: watch checks the machine of the path

def test_watch_is_limited_to_the_paths_machine(dev):
    c = new_cart(dev)
    base = "/machine/lock/object/%s/watch" % c
    t0 = time.time()
    assert_error(*dev.json("GET", base + "?after_version=0&timeout=5s", headers=h("lock-read")),
                 404, "unknown_object")
    st, hd, raw = dev.request("GET", base + "?after_version=0&timeout=3s",
                              headers=dict(h("lock-read"), Accept="text/event-stream"))
    assert st == 404 and b"cart" not in raw.replace(c.encode(), b""), raw
    # the known-latest shortcut (after_version below the gateway's version) too
    assert_error(*dev.json("GET", base + "?timeout=2s", headers=h("lock-read")), 404, "unknown_object")
    # an id that is no object yet is not waited for
    missing = uid("nothing")
    assert_error(*dev.json("GET", "/machine/lock/object/%s/watch?after_version=0&timeout=30s" % missing,
                           headers=h("lock-read")), 404, "unknown_object")
    assert time.time() - t0 < 20
    # the machine's own objects are watched as before
    o = uid("lock")
    assert dev.json("PUT", "/machine/lock/object/%s/transition/create" % o, {}, h("admin"))[0] == 200
    st, v = dev.json("GET", "/machine/lock/object/%s/watch?after_version=0&timeout=5s" % o,
                     headers=h("lock-read"))
    assert st == 200 and v["machine"] == "lock" and v["version"] == 1, v
    st, hd, raw = dev.request("GET", "/machine/cart/object/%s/watch?after_version=0&timeout=2s" % c,
                              headers=dict(h("admin"), Accept="text/event-stream"))
    assert st == 200 and b'"machine":"cart"' in raw, raw


# ---- finding 2: a vote counts only on the machine of its path

def test_vote_through_another_machines_path_does_not_count(dev):
    a = uid("appr")
    base = "/machine/approval/object/%s/transition/" % a
    st, v = dev.json("PUT", base + "request", {"requester": "alice", "amount": 5}, h("admin"))
    assert st == 200, v
    st, v = dev.json("PUT", base + "approve?wait=0s", {}, h("admin"))
    assert st == 202, v
    pid = v["proposal"]
    wrong = "/machine/lock/object/%s/transition/create" % a
    for voter in ("node-1", "node-2"):
        st, v = dev.json("PATCH", wrong, {"voter": voter, "accept": True, "proposal": pid},
                         h("lock-vote"))
        assert st == 404, v
        st, v = dev.json("PATCH", wrong, {"voter": voter, "accept": True}, h("lock-vote"))
        assert st == 404, v
    time.sleep(1.0)
    st, rec = dev.json("GET", "/proposal/" + pid, headers=h("admin"))
    assert st == 200 and rec["status"] == "pending", rec
    # through its own path the same votes count
    for voter in ("node-1", "node-2"):
        st, v = dev.json("PATCH", base + "approve", {"voter": voter, "accept": True, "proposal": pid},
                         h("admin"))
        assert st == 202, v
    deadline = time.time() + 10
    while time.time() < deadline:
        st, rec = dev.json("GET", "/proposal/" + pid, headers=h("admin"))
        if rec["status"] == "committed":
            break
        time.sleep(0.2)
    assert rec["status"] == "committed", rec


# ---- finding 3: one parsed path for authorization and routing

@pytest.mark.parametrize("token,path", [
    ("register-only", "//machine/lock/object/{o}/transition/create"),
    ("lock-register", "/machine/lock//object/{o}/transition/create"),
    ("lock-register", "/machine/lock/object/{o}/transition/create/"),
    ("admin", "/machine/lock/object//{o}/transition/create"),
])
def test_empty_path_segments_are_refused(dev, token, path):
    o = uid("r")
    assert_error(*dev.json("PUT", path.format(o=o), {}, h(token)), 400, "bad_request")
    assert_error(*dev.json("GET", "/machine/lock/object/" + o, headers=h("admin")), 404, "unknown_object")


def test_percent_encoded_slashes_read_as_one_path(dev):
    """libmicrohttpd decodes %2F before the gateway sees the path: rights
    and routes read the same decoded segments."""
    o = uid("r")
    assert_error(*dev.json("PUT", "/machine/lock%%2F%%2Fobject/%s/transition/create" % o, {},
                           h("lock-register")), 400, "bad_request")
    assert_error(*dev.json("PUT", "/%%2Fmachine/lock/object/%s/transition/create" % o, {},
                           h("register-only")), 400, "bad_request")
    assert_error(*dev.json("GET", "/machine/lock/object/" + o, headers=h("admin")), 404, "unknown_object")


# ---- finding 7: the proposer comes from the token

def test_proposer_is_bound_to_the_token(dev):
    a = uid("appr")
    base = "/machine/approval/object/%s/transition/" % a
    st, v = dev.json("PUT", base + "request", {"requester": "alice", "amount": 5}, h("admin"))
    assert st == 200, v
    # bob claims to be alice: refused; as himself the rule refuses him
    assert_error(*dev.json("PUT", base + "withdraw", {}, dict(h("bob"), **{"X-Smc-Proposer": "alice"})),
                 403, "forbidden")
    assert_error(*dev.json("PUT", base + "withdraw", {}, dict(h("nameless"), **{"X-Smc-Proposer": "alice"})),
                 403, "forbidden")
    assert_error(*dev.json("PUT", base + "withdraw", {}, h("bob")), 422, "validation_failed")
    # alice's token proposes as alice, with or without the (agreeing) header
    # (a new Idempotency-Key: the derived id does not include the proposer,
    # so the same request is bob's decided proposal again)
    st, v = dev.json("PUT", base + "withdraw", {}, dict(h("admin"), **{"X-Smc-Proposer": "alice",
                                                                         "Idempotency-Key": uid("w")}))
    assert st == 200 and v["state"] == "withdrawn", v


# ---- finding 8: votes with bad bodies get one clean 400

def test_vote_with_an_empty_body_is_a_clean_400(dev):
    o = uid("lock")
    st, v = dev.json("PATCH", "/machine/lock/object/%s/transition/acquire" % o, b"", h("admin"))
    assert_error(st, v, 400, "bad_request")
    st, v = dev.json("PATCH", "/machine/lock/object/%s/transition/acquire" % o, b"",
                     dict(h("admin"), **{"Content-Type": "application/json"}))
    assert_error(st, v, 400, "bad_request")


def test_vote_for_a_proposal_id_over_64_characters_is_a_400(dev):
    o = uid("lock")
    st, v = dev.json("PATCH", "/machine/lock/object/%s/transition/acquire" % o,
                     {"voter": "node-1", "accept": True, "proposal": "p" * 65}, h("admin"))
    assert_error(st, v, 400, "bad_request")


# ---- finding 9: body limit, transfer codings

def test_a_body_of_exactly_one_mib_is_413_not_503(dev):
    o = uid("lock")
    pad = 1024 * 1024 - len('{"x":""}')
    body = ('{"x":"' + "a" * pad + '"}').encode()
    assert len(body) == 1024 * 1024
    st, _, raw = dev.request("PUT", "/machine/lock/object/%s/transition/create" % o, body,
                             dict(h("admin"), **{"Content-Type": "application/json"}))
    assert st in (200, 413), raw
    if st == 413:
        assert json.loads(raw)["error"]["code"] == "too_large"
    # a vote as large: the same
    body = ('{"voter":"node-1","accept":true,"reason":"' + "a" * (pad - 40) + '"}').encode()
    st, _, raw = dev.request("PATCH", "/machine/lock/object/%s/transition/create" % o, body,
                             dict(h("admin"), **{"Content-Type": "application/json"}))
    assert st in (202, 404, 413), raw


def test_transfer_encoding_other_than_chunked_is_answered_at_once(dev):
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", dev.port), timeout=20)
    try:
        s.sendall(("PUT /machine/lock/object/%s/transition/create HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: Bearer admin\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: gzip, chunked\r\n\r\n" % uid("te")).encode())
        data = s.recv(4096)
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 501"), data
    assert time.time() - t0 < 10
