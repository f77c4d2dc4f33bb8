"""Unit tests of tests/system/linearizability.py: histories it must accept and
histories it must reject (no broker needed)."""
import random

from linearizability import check


def P(call, ret, expect, value, result, version=None):
    op = {"kind": "propose", "call": call, "ret": ret, "expect": expect,
          "value": value, "result": result}
    if result == "committed":
        op["version"] = expect + 1 if version is None else version
    return op


def R(call, ret, version, value, result="ok"):
    return {"kind": "read", "call": call, "ret": ret, "version": version,
            "value": value, "result": result}


def test_empty_and_sequential():
    assert check([])[0]
    h = [P(0, 1, 0, "a", "committed"), R(2, 3, 1, "a"), P(4, 5, 1, "b", "committed"),
         R(6, 7, 2, "b"), P(8, 9, 1, "c", "rejected")]
    ok, order = check(h)
    assert ok and order == [0, 1, 2, 3, 4]


def test_read_before_create_sees_nothing():
    assert check([R(0, 1, 0, None), P(2, 3, 0, "a", "committed")])[0]
    assert not check([R(2, 3, 0, None), P(0, 1, 0, "a", "committed")])[0]


def test_stale_read_after_committed_write_rejected():
    h = [P(0, 1, 0, "a", "committed"), P(2, 3, 1, "b", "committed"), R(4, 5, 1, "a")]
    ok, why = check(h)
    assert not ok and "no linearization" in why


def test_concurrent_read_may_see_old_or_new():
    base = [P(0, 1, 0, "a", "committed"), P(2, 6, 1, "b", "committed")]
    assert check(base + [R(3, 4, 1, "a")])[0]
    assert check(base + [R(3, 4, 2, "b")])[0]
    # but not new then old within one client's sequential reads
    assert not check(base + [R(3, 4, 2, "b"), R(4.5, 5, 1, "a")])[0]


def test_two_commits_with_same_version_rejected():
    h = [P(0, 5, 0, "a", "committed"), P(0, 5, 0, "b", "committed")]
    assert not check(h)[0]
    h = [P(0, 1, 0, "a", "committed"), P(2, 5, 1, "b", "committed"),
         P(2, 5, 1, "c", "committed")]
    assert not check(h)[0]


def test_commit_reporting_wrong_version_rejected():
    assert not check([P(0, 1, 0, "a", "committed", version=2)])[0]


def test_read_of_value_never_written_rejected():
    h = [P(0, 1, 0, "a", "committed"), R(2, 3, 1, "zzz")]
    assert not check(h)[0]
    assert not check([R(0, 1, 1, "a")])[0]


def test_rejected_conflict_needs_a_conflicting_state():
    # expect 1 rejected while the object is at version 1 and nothing runs
    # concurrently: impossible
    h = [P(0, 1, 0, "a", "committed"), P(2, 3, 1, "b", "rejected")]
    assert not check(h)[0]
    # a concurrent commit explains it
    h = [P(0, 1, 0, "a", "committed"), P(2, 5, 1, "c", "committed"),
         P(2, 6, 1, "b", "rejected")]
    assert check(h)[0]


def test_unknown_may_happen_late_or_never():
    # timed out create; a later read sees it: fine (took effect late)
    h = [P(0, 1, 0, "a", "unknown"), R(10, 11, 1, "a")]
    assert check(h)[0]
    # never happened: also fine
    h = [P(0, 1, 0, "a", "unknown"), R(10, 11, 0, None)]
    assert check(h)[0]
    # happened after the second read saw it gone? no: once seen it stays
    h = [P(0, 1, 0, "a", "unknown"), R(10, 11, 1, "a"), R(12, 13, 0, None)]
    assert not check(h)[0]
    # cannot take effect before its call
    h = [R(0, 1, 1, "a"), P(2, 3, 0, "a", "unknown")]
    assert not check(h)[0]


def test_failed_operations_are_unconstrained():
    h = [P(0, 1, 0, "a", "committed"), R(2, 3, 7, "q", result="fail"),
         P(4, 5, 9, "x", "failed")]
    assert check(h)[0]


def test_structured_values():
    h = [P(0, 1, 0, {"owner": "a", "n": [1, 2]}, "committed"),
         R(2, 3, 1, {"n": [1, 2], "owner": "a"})]
    assert check(h)[0]
    assert not check(h[:1] + [R(2, 3, 1, {"owner": "a", "n": [2, 1]})])[0]


def simulate(seed, clients=6, steps=60, corrupt=False):
    """A correct concurrent execution of a register, recorded as a history;
    corrupt=True then perturbs one read result."""
    rng = random.Random(seed)
    state = [0, None]
    t = 0.0
    history, pending = [], []
    for _ in range(steps):
        t += rng.random()
        if pending and (len(pending) >= clients or rng.random() < 0.5):
            op = pending.pop(rng.randrange(len(pending)))
            # linearize at a point between call and now
            if op["kind"] == "read":
                op["version"], op["value"] = state[0], state[1]
            else:
                if state[0] == op["expect"]:
                    state[:] = [op["expect"] + 1, op["value"]]
                    if op["result"] != "unknown":
                        op["result"], op["version"] = "committed", state[0]
                elif op["result"] != "unknown":
                    op["result"] = "rejected"
            t += rng.random() * 0.1
            op["ret"] = t
            history.append(op)
        else:
            if rng.random() < 0.4:
                op = {"kind": "read", "call": t, "result": "ok"}
            else:
                op = {"kind": "propose", "call": t, "expect": state[0] + rng.choice([0, 0, -1, 1]),
                      "value": rng.randrange(1000), "result": "unknown" if rng.random() < 0.1 else "?"}
            pending.append(op)
    for op in pending:
        if op["kind"] == "propose" and op["result"] == "?":
            op["result"] = "unknown"
            op["ret"] = t + 1
            history.append(op)
    if corrupt:
        reads = [o for o in history if o["kind"] == "read" and o["version"] > 0]
        if reads:
            r = rng.choice(reads)
            r["value"] = "never-written"
    return history


def test_random_correct_histories_accepted():
    for seed in range(40):
        h = simulate(seed)
        ok, why = check(h)
        assert ok, (seed, why)


def test_random_corrupted_histories_rejected():
    rejected = 0
    for seed in range(40):
        h = simulate(seed, corrupt=True)
        if any(o["kind"] == "read" and o["value"] == "never-written" for o in h):
            assert not check(h)[0], seed
            rejected += 1
    assert rejected >= 20
