"""Hostile inputs (tests/data/bad/*.jsonl, see its README.md): every case gets
its expected error code, and the system keeps working after it.

  events.jsonl   offline through `smc simulate` (a case, then a valid
                 proposal that must still commit), and raw through a real
                 worker on the broker (tests/system/rawproduce.c).
  machines.jsonl through `smc machine check -o json`.
  http.jsonl     against `smc dev --http`.
"""
import base64
import json
import os
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, BOOT, SRC, broker_up, partition_of, wait_for

BAD = os.path.join(SRC, "tests", "data", "bad")
LOCK = os.path.join(SRC, "examples", "machines", "lock.yaml")
APPROVAL = os.path.join(SRC, "examples", "machines", "approval.yaml")
PARTS = 4


def load(name):
    with open(os.path.join(BAD, name + ".jsonl")) as f:
        return [json.loads(l) for l in f if l.strip()]


def raw(case):
    if "input_b64" in case:
        return base64.b64decode(case["input_b64"])
    return case.get("input", "").encode("utf-8", "surrogatepass")


EVENTS, MACHINES, HTTP = load("events"), load("machines"), load("http")


def test_case_files_are_large_and_well_formed():
    assert len(EVENTS) + len(MACHINES) + len(HTTP) >= 100
    for fam in (EVENTS, MACHINES, HTTP):
        names = [c["name"] for c in fam]
        assert len(names) == len(set(names))
        for c in fam:
            assert c["expect_code"] and ("input" in c or "input_b64" in c or "method" in c)


# --------------------------------------------------------------- murmur2
def partition_for(key, n=PARTS):
    return partition_of(key, n)


# ------------------------------------------------------- events, offline
def strict_json_object(b):
    """The value as the simulate CLI would see it, or None when the CLI
    itself must refuse the line (not one JSON object jansson reads the same
    way: invalid UTF-8, duplicate keys, deep nesting, NUL, newlines...)."""
    if b"\n" in b or b"\x00" in b or len(b) > 2 * 1024 * 1024:
        return None
    try:
        text = b.decode("utf-8")
        dup = []

        def hook(pairs):
            keys = [k for k, _ in pairs]
            if len(keys) != len(set(keys)):
                dup.append(1)
            return dict(pairs)

        v = json.loads(text, object_pairs_hook=hook)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(v, dict) or dup or "\\ud8" in text or not in_int64(v):
        return None
    return v


def in_int64(v):
    if isinstance(v, dict):
        return all(in_int64(x) for x in v.values())
    if isinstance(v, list):
        return all(in_int64(x) for x in v)
    if isinstance(v, int) and not isinstance(v, bool):
        return -2**63 <= v < 2**63
    return True


def ok_proposal(name):
    return {"type": "proposal", "id": "ok-" + name, "object": "ok-" + name,
            "machine": "lock", "transition": "create", "expect_version": 0}


def run_simulate(lines, tmp):
    path = os.path.join(tmp, "log.jsonl")
    with open(path, "wb") as f:
        for l in lines:
            f.write(l + b"\n")
    r = subprocess.run([BIN, "simulate", LOCK, APPROVAL, "--log", path, "--partitions", str(PARTS)],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    outs = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    return outs, r.stderr.decode("utf-8", "replace")


def has_duplicate_keys(value):
    """True when value is a JSON object that is valid but for a repeated key."""
    dups = []

    def hook(pairs):
        if len({k for k, _ in pairs}) != len(pairs):
            dups.append(True)
        return dict(pairs)

    try:
        json.loads(value, object_pairs_hook=hook)
    except (ValueError, RecursionError):
        return False
    return bool(dups)


def offline_param(c):
    return c


@pytest.mark.parametrize("case", [offline_param(c) for c in EVENTS], ids=[c["name"] for c in EVENTS])
def test_event_case_offline(case, tmp_path):
    value = raw(case)
    if not value:
        # an empty line is no record for smc simulate (checked on the broker)
        outs, err = run_simulate([json.dumps(ok_proposal(case["name"])).encode()], str(tmp_path))
        assert outs[0]["outcome"] == "committed", (outs, err)
        return
    ev = strict_json_object(value)
    lines = []
    for s in case.get("setup", []):
        if s["type"] == "machine":  # machines are registered per partition
            lines += [json.dumps(dict(s, partition=p)).encode() for p in range(PARTS)]
        else:
            lines.append(json.dumps(s).encode())
    if ev is None:
        # The simulate CLI parses each line itself: refused there, with its
        # line number (the fold's own answer is checked on the broker).
        lines.append(value.replace(b"\n", b" "))
    else:
        if "key" in case:
            ev["key"] = case["key"]
        if case.get("partition") == "wrong":
            ev["partition"] = (partition_for(ev["object"]) + 1) % PARTS
        lines.append(json.dumps(ev).encode())
    lines.append(json.dumps(ok_proposal(case["name"])).encode())
    outs, err = run_simulate(lines, str(tmp_path))
    confs = [o for o in outs if o.get("kind") == "confirmation"]
    ok = [c for c in confs if c.get("object") == "ok-" + case["name"]]
    assert len(ok) == 1 and ok[0]["outcome"] == "committed" and ok[0]["version"] == 1, (outs, err)
    if ev is None:
        n = len(lines) - 1
        if has_duplicate_keys(value):
            # JSON with duplicate keys: simulate hands it to the fold as
            # written, which refuses it as it does on the broker.
            assert "unreadable event dropped: %s" % case["expect_code"] in err, err
        else:
            assert "log.jsonl:%d: malformed line skipped" % n in err, err
        return
    for c in confs:
        if c["proposal"].startswith("bad-setup") or c["proposal"] in {
                s.get("id") for s in case.get("setup", [])}:
            assert c["outcome"] == "committed", c
    codes = [c["error"]["code"] for c in confs if "error" in c]
    assert case["expect_code"] in codes or case["expect_code"] in err, (case["expect_code"], outs, err)
    # nothing bad ever commits
    assert not [c for c in confs if c["outcome"] == "committed" and c["object"].startswith("bad-")
                and c["proposal"] not in {s.get("id") for s in case.get("setup", [])}], confs


# ------------------------------------------------------------ machines
@pytest.mark.parametrize("case", MACHINES, ids=[c["name"] for c in MACHINES])
def test_machine_case(case, tmp_path):
    path = os.path.join(str(tmp_path), "m.yaml")
    with open(path, "wb") as f:
        f.write(raw(case))
    r = subprocess.run([BIN, "machine", "check", "-o", "json", path], capture_output=True,
                       timeout=60)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert out["ok"] is False
    codes = [d["code"] for d in out["diagnostics"] if d["severity"] == "error"]
    assert case["expect_code"] in codes, (codes, out)
    for d in out["diagnostics"]:
        assert d["message"]


# ------------------------------------------------------------------ http
@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    import smc_dev_fixture as fx

    class LoggedDev(fx.Dev):
        """smc_dev_fixture.Dev, with stderr kept in a file for the report."""

        def __init__(self, errpath, *extra):
            self.port = fx.free_port()
            self.errpath = errpath
            with open(errpath, "w") as err:
                self.proc = subprocess.Popen(
                    [fx.smc_bin(), "dev", "--examples", "--http", "127.0.0.1:%d" % self.port]
                    + list(extra), cwd=fx.ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError("smc dev exited")
                if "ready" in line:
                    return

    errpath = str(tmp_path_factory.mktemp("dev") / "dev.err")
    d = LoggedDev(errpath, "--voters", "0", "--partitions", "2")
    yield d
    rc = d.stop()
    with open(errpath, errors="replace") as f:
        tail = [l for l in f.read().splitlines() if "CONFWARN" not in l][-60:]
    assert rc == 0, "smc dev exit %s; stderr:\n%s" % (rc, "\n".join(tail))


def http_param(c):
    return c


@pytest.mark.parametrize("case", [http_param(c) for c in HTTP], ids=[c["name"] for c in HTTP])
def test_http_case(case, dev):
    headers = {k: v.encode("utf-8", "surrogateescape")
               for k, v in case.get("headers", {}).items()}
    body = raw(case) if ("input" in case or "input_b64" in case) else None
    status, _, data = dev.request(case["method"], case["path"], body, headers)
    assert status == case["expect_status"], (status, data[:300])
    out = json.loads(data)
    assert out["error"]["code"] == case["expect_code"], out
    assert out["error"]["message"]
    # still serving: a valid proposal commits
    st, ok = dev.json("PUT", "/machine/lock/object/ok-%s/transition/create?expect_version=0"
                      % case["name"], {})
    assert st == 200 and ok["version"] == 1, (st, ok)


# ------------------------------------------------------ events, on a broker
RAWPRODUCE = os.environ.get("SMC_RAWPRODUCE") or os.path.join(
    os.path.dirname(BIN), "tests", "system", "smc_rawproduce")


def test_event_cases_on_broker(cluster):
    """Every event case, produced raw (tests/system/rawproduce.c) to
    smc.proposals of a real worker, then a valid proposal: the case's code
    shows up as a rejection or in the worker's log line for that record's
    offset, nothing bad commits, and every valid proposal commits."""
    if not os.path.exists(RAWPRODUCE):
        pytest.skip("build smc_rawproduce (tests/system/CMakeLists.txt)")
    t_start = time.time()
    w = cluster.worker("h1")
    cluster.apply(LOCK)
    cluster.apply(APPROVAL)
    print("hostile on broker: machines applied in %.1f s" % (time.time() - t_start))
    n = cluster.partitions
    recs, where = [], {}  # (partition, key, value); case name -> index of its record

    def add(value, key):
        part = partition_for(key, n) if key else 0
        recs.append((part, key, value))
        return len(recs) - 1

    for case in EVENTS:
        for s in case.get("setup", []):
            if s["type"] == "machine":
                for p in range(n):
                    recs.append((p, None, json.dumps(s).encode()))
            else:
                add(json.dumps(s).encode(), s["object"])
        value = raw(case)
        ev = strict_json_object(value)
        obj = ev.get("object") if isinstance(ev, dict) else None
        obj = obj if isinstance(obj, str) and obj else "bad-1"
        key = case.get("key", obj)
        i = add(value, key)
        if case.get("partition") == "wrong":
            recs[i] = ((partition_for(key, n) + 1) % n, key, value)
        where[case["name"]] = (i, obj)
        add(json.dumps(ok_proposal(case["name"])).encode(), "ok-" + case["name"])
    text = "".join("%d %s %s\n" % (p, k.encode().hex() if k else "-", v.hex() or "-")
                   for p, k, v in recs)
    r = subprocess.run([RAWPRODUCE, BOOT, cluster.prefix + "proposals"], input=text.encode(),
                       capture_output=True, timeout=300)
    print("hostile on broker: produced at %.1f s" % (time.time() - t_start))
    delivered = {}
    for line in r.stdout.decode().splitlines():
        i, p, off = map(int, line.split())
        delivered[i] = (p, off)
    ok_ids = ["ok-" + c["name"] for c in EVENTS]
    t0 = time.time()
    confs, missing = cluster.wait_confirmed(ok_ids, timeout=240)
    print("hostile on broker: %d records produced, confirmed in %.1f s" % (len(recs), time.time() - t0))
    assert not missing, (sorted(missing)[:5], w.log()[-3000:])
    log = w.log()
    by_id = {}
    for c in confs:
        by_id.setdefault(c.get("proposal"), []).append(c)
    setup_ids = {s.get("id") for c in EVENTS for s in c.get("setup", [])}
    for pid in ok_ids:
        assert [c["outcome"] for c in by_id[pid]] == ["committed"], by_id[pid]
    for c in confs:
        if c.get("outcome") == "committed" and c["object"].startswith("bad-"):
            assert c["proposal"] in setup_ids, c
    for case in EVENTS:
        i, obj = where[case["name"]]
        if i not in delivered:
            # only the over-sized values may be refused by the broker itself
            assert case["expect_code"] == "too_large", (case["name"], r.stderr[-500:])
            continue
        p, off = delivered[i]
        codes = [c["error"]["code"] for c in confs
                 if "error" in c and c.get("offset") == off
                 and (c.get("object") == obj or partition_for(c.get("object") or "", n) == p)]
        mark = "partition=%d msg=\"committer: offset %d: " % (p, off)
        lines = [l for l in log.splitlines() if mark in l]
        assert case["expect_code"] in codes or any(case["expect_code"] in l for l in lines), (
            case["name"], case["expect_code"], codes, lines)
    assert w.stop() == 0, w.log()[-3000:]
