"""Issue 19, what users trip over, against `smc dev --voters 0` (no broker):
proposal ids (derived only with expect_version), watch catching up, unknown
query parameters and If-Match, global object ids, smc propose's exit codes,
failure paths without a broker, listing and history, GET /proposal from the
folds, `smc status`, and one object schema for REST and the CLI."""
import json
import os
import re
import socket
import subprocess
import time
import uuid

import pytest

from smc_dev_fixture import ROOT, Dev, free_port, smc_bin


@pytest.fixture(scope="module")
def dev():
    d = Dev("--voters", "0", "--partitions", "4")
    d.bootstrap = re.search(r"kafka bootstrap (\S+)", d.lines[0]).group(1)
    yield d
    assert d.stop() == 0


def uid(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def cli(dev, *args, timeout=60):
    r = subprocess.run([smc_bin()] + list(args) + ["--bootstrap", dev.bootstrap],
                       capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return r


def last_json(r):
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def put(dev, machine, obj, t, body=None, query="", headers=None):
    return dev.json("PUT", "/machine/%s/object/%s/transition/%s%s" % (machine, obj, t, query),
                    body if body is not None else {}, headers)


# 1 -------------------------------------------------------------- proposal ids

def test_identical_requests_without_expect_version_are_distinct(dev):
    o = uid("lk")
    assert put(dev, "lock", o, "create")[0] == 200
    seen = []
    for t in ("acquire", "release", "acquire"):
        st, c = put(dev, "lock", o, t, {"owner": "svca"})
        assert st == 200 and not c.get("duplicate"), c
        seen.append((c["version"], c["proposal"]))
    assert [v for v, _ in seen] == [2, 3, 4]
    assert seen[0][1] != seen[2][1] and all(len(p) == 64 for _, p in seen)
    st, g = dev.json("GET", "/machine/lock/object/" + o)
    assert (g["state"], g["version"]) == ("held", 4)


def test_resent_id_answers_the_original_outcome_marked_duplicate(dev):
    o = uid("lk")
    assert put(dev, "lock", o, "create")[0] == 200
    key = uid("k")
    st, c1 = put(dev, "lock", o, "acquire", {"owner": "ann"}, headers={"Idempotency-Key": key})
    assert st == 200 and c1["version"] == 2
    assert put(dev, "lock", o, "release", {"owner": "ann"})[0] == 200
    assert put(dev, "lock", o, "acquire", {"owner": "bob"})[0] == 200
    # the object moved on to version 4; the id still answers version 2
    st, c2 = put(dev, "lock", o, "acquire", {"owner": "ann"}, headers={"Idempotency-Key": key})
    assert st == 200 and c2.get("duplicate") is True and c2["version"] == 2, c2
    assert c2["checksum"] == c1["checksum"] and c2["proposal"] == key
    # the same with a derived id (expect_version given)
    st, d1 = put(dev, "lock", o, "release", {"owner": "bob"}, "?expect_version=4")
    assert st == 200 and d1["version"] == 5
    assert put(dev, "lock", o, "acquire", {"owner": "cy"})[0] == 200
    st, d2 = put(dev, "lock", o, "release", {"owner": "bob"}, "?expect_version=4")
    assert st == 200 and d2.get("duplicate") is True and d2["proposal"] == d1["proposal"]
    assert d2["version"] == 5


def test_cli_ids_random_unless_expect_version(dev):
    o = uid("lk")
    r = cli(dev, "propose", "lock", o, "create", "-o", "json")
    assert r.returncode == 0, r.stderr
    r1 = cli(dev, "propose", "lock", o, "acquire", "--data", '{"owner":"ann"}', "-o", "json")
    r2 = cli(dev, "propose", "lock", o, "release", "--data", '{"owner":"ann"}', "-o", "json")
    r3 = cli(dev, "propose", "lock", o, "acquire", "--data", '{"owner":"ann"}', "-o", "json")
    c1, c3 = last_json(r1), last_json(r3)
    assert (r1.returncode, r2.returncode, r3.returncode) == (0, 0, 0), r3.stderr
    assert c3["version"] == 4 and not c3.get("duplicate") and c1["proposal"] != c3["proposal"]
    # --expect-version: the same command is the same proposal
    a = cli(dev, "propose", "lock", o, "release", "--data", '{"owner":"ann"}',
            "--expect-version", "4")
    b = cli(dev, "propose", "lock", o, "release", "--data", '{"owner":"ann"}',
            "--expect-version", "4")
    ca, cb = last_json(a), last_json(b)
    assert a.returncode == 0 and b.returncode == 0
    assert cb["duplicate"] is True and ca["proposal"] == cb["proposal"] and cb["version"] == 5
    # --id of an old proposal: its outcome, marked duplicate
    r = cli(dev, "propose", "lock", o, "acquire", "--data", '{"owner":"ann"}', "--id",
            c1["proposal"])
    c = last_json(r)
    assert r.returncode == 0 and c["duplicate"] is True and c["version"] == 2
    # a vote must name its proposal now (no id to derive without a version)
    r = cli(dev, "vote", "approval", o, "approve", "--voter", "node-1")
    assert r.returncode == 2 and "--proposal" in r.stderr


# 2 ------------------------------------------------------------------- watch

def test_watch_after_version_returns_committed_versions_at_once(dev):
    o = uid("lk")
    assert put(dev, "lock", o, "create")[0] == 200
    assert put(dev, "lock", o, "acquire", {"owner": "ann"})[0] == 200
    assert put(dev, "lock", o, "release", {"owner": "ann"})[0] == 200
    t0 = time.time()
    r = cli(dev, "watch", o, "--after-version", "1", "--count", "1", "--timeout", "20s",
            "-o", "json")
    assert r.returncode == 0, r.stderr
    assert time.time() - t0 < 10
    w = last_json(r)
    st, rest = dev.json("GET", "/machine/lock/object/%s/watch?after_version=1&timeout=1s" % o)
    assert st == 200
    assert (w["version"], w["state"], w["checksum"]) == (3, "free", rest["checksum"])
    assert rest["version"] == 3
    # nothing newer than the current version: both wait, then time out
    r = cli(dev, "watch", o, "--after-version", "3", "--timeout", "1s")
    assert r.returncode == 3
    assert dev.json("GET", "/machine/lock/object/%s/watch?after_version=3&timeout=1s" % o)[0] == 204


# 3 ------------------------------------------------- query parameters, If-Match

def test_unknown_query_parameters_are_400(dev):
    o = uid("lk")
    assert put(dev, "lock", o, "create")[0] == 200
    st, b = put(dev, "lock", o, "acquire", {"owner": "ann"}, "?expected_version=7")
    assert st == 400 and b["error"]["code"] == "bad_request"
    assert "expected_version" in b["error"]["message"]
    assert dev.json("GET", "/machine/lock/object/" + o)[1]["version"] == 1  # nothing happened
    for path in ("/machine/lock/object/%s?wiat=1s" % o, "/machine/lock?x=1", "/healthz?x=1",
                 "/machine/lock/object/%s/watch?after=1" % o, "/proposal/x?wait=1s",
                 "/machine/lock/object?limt=1", "/machine/lock/diagram?fmt=dot"):
        st, b = dev.json("GET", path)
        assert st == 400 and b["error"]["code"] == "bad_request", (path, b)
    # every accepted one still works
    assert put(dev, "lock", o, "acquire", {"owner": "ann"},
               "?expect_version=1&wait=5s&ack=confirmed")[0] == 200
    assert dev.json("GET", "/machine/lock/object/%s?wait=2s" % o)[0] == 200
    assert dev.json("GET", "/machine/lock/object?limit=1&after=a")[0] == 200
    assert dev.request("GET", "/machine/lock/diagram?format=dot")[0] == 200


def test_if_match_is_expect_version(dev):
    o = uid("lk")
    assert put(dev, "lock", o, "create")[0] == 200
    st, b = put(dev, "lock", o, "acquire", {"owner": "ann"}, headers={"If-Match": '"7"'})
    assert st == 412 and b["error"]["code"] == "version_conflict", b
    st, b = put(dev, "lock", o, "acquire", {"owner": "ann"}, headers={"If-Match": '"1"'})
    assert st == 200 and b["version"] == 2
    st, b = put(dev, "lock", o, "release", {"owner": "ann"}, "?expect_version=2",
                headers={"If-Match": '"3"'})
    assert st == 400 and b["error"]["code"] == "bad_request"
    st, b = put(dev, "lock", o, "release", {"owner": "ann"}, headers={"If-Match": '"abc"'})
    assert st == 400
    # without If-Match a conflict stays 409
    st, b = put(dev, "lock", o, "release", {"owner": "ann"}, "?expect_version=1")
    assert st == 409 and b["error"]["code"] == "version_conflict"


# 4 ------------------------------------------------------------ global ids

def test_object_ids_are_global(dev):
    o = uid("shared")
    assert put(dev, "lock", o, "create")[0] == 200
    st, b = put(dev, "tally", o, "create", {"question": "q?"})
    assert st == 409 and b["error"]["code"] == "object_exists", b
    assert "'lock'" in b["error"]["message"] and b["machine"] == "lock"
    r = cli(dev, "propose", "tally", o, "create", "--data", '{"question":"q?"}', "-o", "json")
    assert r.returncode == 1 and last_json(r)["error"]["code"] == "object_exists"


# 5 ------------------------------------------------------------- exit codes

def test_propose_pending_votes_exit_4_with_json(dev):
    o = uid("req")
    r = cli(dev, "propose", "approval", o, "request", "--data",
            '{"requester":"bob","amount":5}')
    assert r.returncode == 0, r.stderr
    r = cli(dev, "propose", "approval", o, "approve", "--wait", "1s")
    assert r.returncode == 4, (r.stdout, r.stderr)
    p = last_json(r)
    assert p["status"] == "pending" and len(p["proposal"]) == 64 and p["object"] == o
    for voter in ("node-1", "node-2"):
        v = cli(dev, "vote", "approval", o, "approve", "--voter", voter, "--proposal",
                p["proposal"])
        assert v.returncode == 0, v.stderr
    r = cli(dev, "propose", "approval", o, "approve", "--id", p["proposal"], "--wait", "10s")
    c = last_json(r)
    assert r.returncode == 0 and c["state"] == "approved", (r.stdout, r.stderr)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "127.0.0.1:%d" % port


# 6 ------------------------------------------------------------ failure paths

def test_no_broker_one_line_within_the_wait():
    boot = closed_port()
    for args, wait in ((["get", "x", "--wait", "2s"], 2), (["propose", "lock", "x", "create",
                                                            "--wait", "2s"], 2)):
        t0 = time.time()
        r = subprocess.run([smc_bin()] + args + ["--bootstrap", boot], capture_output=True,
                           text=True, timeout=60)
        took = time.time() - t0
        assert r.returncode == 3, r.stderr
        assert took < wait + 1.5, took
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and "no broker answered" in lines[0], r.stderr
        assert "ERROR kafka" not in r.stderr


def test_worker_without_broker_says_unreachable(tmp_path):
    r = subprocess.run([smc_bin(), "worker", "--bootstrap", closed_port(), "--node-id", "w",
                        "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3
    last = r.stderr.strip().splitlines()[-1]
    assert "broker is unreachable" in last and "create the topics" not in last, r.stderr


def test_dev_start_clean_and_no_voters_wording(tmp_path):
    port = free_port()
    p = subprocess.Popen([smc_bin(), "dev", "--voters", "0", "--http", "127.0.0.1:%d" % port,
                          "--partitions", "2", "--nodes", "2"], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=open(tmp_path / "err", "w"), text=True)
    out = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            out.append(line)
            if "ready" in line:
                break
    finally:
        p.terminate()
        p.wait(60)
        p.stdout.close()
    text = "".join(out)
    assert "ready" in text, text
    assert "node-0" not in text and "no voters" in text, text
    err = open(tmp_path / "err").read()
    assert "CONFWARN" not in err, err


# 7, 8, 10, 11 ------------------------------------------------- status, list, history

def test_status_table_and_json(dev):
    r = cli(dev, "status", "-o", "json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    nodes = {n["node"]: n for n in s["nodes"]}
    assert set(nodes) == {"node-1", "node-2", "node-3"} and s["down_after_ms"] == 10000
    assert all(n["status"] == "up" for n in nodes.values())
    assert sorted(sum((n["partitions"] for n in nodes.values()), [])) == [0, 1, 2, 3]
    r = cli(dev, "status", "-o", "table")
    assert r.returncode == 0 and r.stdout.splitlines()[0].split()[:4] == [
        "NODE", "STATUS", "ROLES", "HTTP"]
    assert "node-2" in r.stdout and " up " in r.stdout
    time.sleep(0.2)
    r = cli(dev, "status", "--down-after", "1ms", "-o", "json")
    assert all(n["status"] == "down" for n in json.loads(r.stdout)["nodes"])


def test_list_and_history_rest_and_cli_agree(dev):
    m = "lock"
    objs = sorted(uid("zl") for _ in range(5))
    # ack=confirmed: the CLI below reads committed confirmations from the log
    for o in objs:
        assert put(dev, m, o, "create", query="?ack=confirmed")[0] == 200
    assert put(dev, m, objs[0], "acquire", {"owner": "ann"}, "?ack=confirmed")[0] == 200
    assert put(dev, m, objs[0], "release", {"owner": "ann"}, "?ack=confirmed")[0] == 200
    # REST pages by id
    after, got = objs[0][:3], []
    while True:
        st, page = dev.json("GET", "/machine/%s/object?limit=2&after=%s" % (m, after))
        assert st == 200 and len(page["objects"]) <= 2
        got += [x["object"] for x in page["objects"]]
        if not page["next"]:
            break
        after = page["next"]
    mine = [g for g in got if g in objs]
    assert mine == objs and got == sorted(got)
    # the CLI from the log says the same
    r = cli(dev, "list", m, "--after", objs[0][:3], "--limit", "1000", "-o", "json")
    assert r.returncode == 0, r.stderr
    cl = [x for x in json.loads(r.stdout)["objects"] if x["object"] in objs]
    st, page = dev.json("GET", "/machine/%s/object?limit=1000&after=%s" % (m, objs[0][:3]))
    rest = [x for x in page["objects"] if x["object"] in objs]
    assert [(x["object"], x["version"], x["checksum"]) for x in cl] == \
        [(x["object"], x["version"], x["checksum"]) for x in rest]
    # history: every version with its proposal, transition, votes, time
    st, h = dev.json("GET", "/machine/%s/object/%s/history" % (m, objs[0]))
    assert st == 200 and [v["version"] for v in h["versions"]] == [1, 2, 3]
    assert [v["transition"] for v in h["versions"]] == ["create", "acquire", "release"]
    for v in h["versions"]:
        assert len(v["proposal"]) == 64 and "votes" in v and v["updated"] > 0
    st, h2 = dev.json("GET", "/machine/%s/object/%s/history?after=1&limit=1" % (m, objs[0]))
    assert [v["version"] for v in h2["versions"]] == [2] and h2["next"] == 2
    r = cli(dev, "history", objs[0], "-o", "json")
    assert r.returncode == 0, r.stderr
    ch = json.loads(r.stdout)
    assert ch["versions"] == h["versions"] and ch["machine"] == m
    r = cli(dev, "history", objs[0], "-o", "table")
    assert r.stdout.splitlines()[0].split()[:4] == ["OBJECT", "MACHINE", "STATE", "VERSION"]
    assert "acquire" in r.stdout
    assert dev.json("GET", "/machine/%s/object/%s/history" % (m, uid("none")))[0] == 404
    assert cli(dev, "history", uid("none")).returncode == 1


def test_proposal_status_from_the_folds(dev):
    o = uid("req")
    r = cli(dev, "propose", "approval", o, "request", "--data", '{"requester":"a","amount":1}',
            "-o", "json")
    pid = last_json(r)["proposal"]
    st, p = dev.json("GET", "/proposal/" + pid)
    assert st == 200 and p["status"] == "committed" and p["object"] == o
    r = cli(dev, "propose", "approval", o, "approve", "--wait", "500ms")
    pend = last_json(r)["proposal"]
    st, p = dev.json("GET", "/proposal/" + pend)
    assert st == 200 and p["status"] == "pending", p
    assert dev.json("GET", "/proposal/" + uid("never"))[0] == 404


def test_one_schema_for_rest_and_cli(dev):
    o = uid("lk")
    st, c = put(dev, "lock", o, "create")
    r = cli(dev, "propose", "lock", o, "acquire", "--data", '{"owner":"ann"}', "-o", "json")
    cc = last_json(r)
    st, rc = put(dev, "lock", o, "release", {"owner": "ann"})
    assert set(cc) == set(rc), (cc, rc)
    assert "time" not in cc and "updated" in cc
    g = last_json(cli(dev, "get", o, "-o", "json"))
    st, rg = dev.json("GET", "/machine/lock/object/" + o)
    assert g == rg
    t = cli(dev, "get", o, "-o", "table")
    assert t.stdout.splitlines()[0].split()[:5] == ["OBJECT", "MACHINE", "STATE", "VERSION",
                                                    "UPDATED"]
    r = subprocess.run([smc_bin(), "machine", "check",
                        os.path.join(ROOT, "examples", "machines", "lock.yaml"), "-o", "json"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["machines"][0]["name"] == "lock"


# 9 ------------------------------------------------------------ machine versions

TOGGLE = """name: %s
description: %s
states:
  off: {}
  on: {}
transitions:
  create: {from: null, to: off}
  flip: {from: off, to: on}
"""


def test_machines_evolve(dev, tmp_path):
    name = uid("sw").replace("-", "_")
    y = "Content-Type", "application/yaml"
    st, v1 = dev.json("POST", "/machine/" + name, TOGGLE % (name, "v1"), dict([y]))
    assert st == 201, v1
    o = uid("sw")
    assert put(dev, name, o, "create")[0] == 200
    # a description change is a new version, not machine_exists
    st, v2 = dev.json("POST", "/machine/" + name, TOGGLE % (name, "v2"), dict([y]))
    assert st == 201 and v2["previous"] == v1["hash"] and v2["hash"] != v1["hash"], v2
    st, m = dev.json("GET", "/machine/" + name)
    assert m["hash"] == v2["hash"] and m["description"] == "v2"
    # v3 adds a transition: in force for the object created under v1
    v3 = (TOGGLE % (name, "v3")) + "  flop: {from: on, to: off}\n"
    f = tmp_path / "v3.yaml"
    f.write_text(v3)
    r = cli(dev, "machine", "apply", str(f))
    assert r.returncode == 0, r.stderr
    assert put(dev, name, o, "flip", query="?expect_version=1")[0] == 200

    def flopped():
        st, c = put(dev, name, o, "flop", query="?expect_version=2")
        return st == 200 and c["state"] == "off" and c["version"] == 3
    deadline = time.time() + 30
    while not flopped():  # the gateway learns v3 from the catalog
        assert time.time() < deadline
        time.sleep(0.3)
    # a version that drops a state is refused
    bad = "name: %s\nstates:\n  off: {}\ntransitions:\n  create: {from: null, to: off}\n" % name
    st, b = dev.json("POST", "/machine/" + name, bad, dict([y]))
    assert st == 409 and b["error"]["code"] == "machine_exists" and "'on'" in b["error"]["message"]
    f.write_text(bad)
    r = cli(dev, "machine", "apply", str(f))
    assert r.returncode == 1 and "machine_exists" in r.stderr
