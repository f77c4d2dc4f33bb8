"""A linearizability checker (Wing & Gong search with Lowe's memoization, as in
Porcupine) for a versioned register / lock: one object whose state is
(version, value), version 0 = does not exist.

Operations (one dict each; times are any comparable numbers, e.g. monotonic
seconds, with call <= ret):

  {"kind": "propose", "expect": E, "value": V, "call": t0, "ret": t1,
   "result": "committed", "version": N}
      took effect iff state.version == E; the new state is (E + 1, V), and N
      must be E + 1.
  {"kind": "propose", ..., "result": "rejected"}
      did not take effect; at its linearization point state.version != E
      (a version_conflict). Other rejections (validation, ...) that do not
      depend on the version should be left out of the history or given
      "result": "failed" (no effect, no constraint).
  {"kind": "propose", ..., "result": "unknown"}
      timed out: may have taken effect at any time after its call, or never.
      Modelled as an operation with an infinite return time that may also be
      left out of the linearization entirely.
  {"kind": "read", "call": t0, "ret": t1, "result": "ok",
   "version": N, "value": V}
      saw state (N, V) (N = 0, V = None: the object did not exist).
  {"kind": "read", ..., "result": "fail"}  no constraint (dropped).

check(history) returns (True, order) with a valid linearization (list of
indexes into history, unknown operations that never happened left out), or
(False, why) where why describes the longest prefix that could be
linearized. The search is exponential in the worst case; histories of a few
hundred operations with modest concurrency check in well under a second.
"""

INF = float("inf")


def _step(state, op):
    """The model: returns the next state if op may take effect in state, else
    None."""
    version, value = state
    if op["kind"] == "propose":
        res = op["result"]
        if res == "committed":
            if version != op["expect"] or op.get("version", op["expect"] + 1) != op["expect"] + 1:
                return None
            return (op["expect"] + 1, op["value"])
        if res == "rejected":
            return state if version != op["expect"] else None
        if res == "unknown":
            if version != op["expect"]:
                return None
            return (op["expect"] + 1, op["value"])
        return state
    if op["kind"] == "read":
        if op["result"] != "ok":
            return state
        return state if (op["version"], op["value"]) == (version, value) else None
    raise ValueError("unknown operation kind %r" % (op["kind"],))


def _freeze(v):
    """A hashable form of a JSON-like value (for the memo table)."""
    if isinstance(v, dict):
        return ("d", tuple(sorted((k, _freeze(x)) for k, x in v.items())))
    if isinstance(v, list):
        return ("l", tuple(_freeze(x) for x in v))
    return v


def check(history, initial=(0, None)):
    ops = []
    for i, op in enumerate(history):
        if op["kind"] == "read" and op.get("result") != "ok":
            continue
        if op["kind"] == "propose" and op.get("result") == "failed":
            continue
        if op["call"] > op.get("ret", INF) and op.get("result") != "unknown":
            raise ValueError("operation %d returns before it is called" % i)
        ret = INF if op.get("result") == "unknown" else op["ret"]
        ops.append((op["call"], ret, i, op.get("result") == "unknown"))
    n = len(ops)
    if n == 0:
        return True, []
    # Operation j may be linearized next only if no pending operation
    # returned before j was called (real-time order).
    ops.sort(key=lambda o: (o[0], o[1]))
    required = sum(1 for o in ops if not o[3])
    calls = [o[0] for o in ops]
    rets = [o[1] for o in ops]
    idx = [o[2] for o in ops]
    optional = [o[3] for o in ops]

    memo = set()
    best = [0, []]
    # Iterative DFS: stack of (done bitmask, state, order, committed count)
    start_state = (initial[0], _freeze(initial[1]))
    stack = [(0, start_state, [], 0)]
    while stack:
        done, state, order, ndone_req = stack.pop()
        if ndone_req == required:
            return True, order
        key = (done, state)
        if key in memo:
            continue
        memo.add(key)
        if ndone_req > best[0]:
            best[0], best[1] = ndone_req, order
        # the earliest return among pending operations bounds which calls may
        # go next; unknown operations may also be dropped (never happened),
        # which is modelled by simply never choosing them.
        min_ret = INF
        for j in range(n):
            if not (done >> j) & 1 and rets[j] < min_ret:
                min_ret = rets[j]
        for j in range(n):
            if (done >> j) & 1:
                continue
            if calls[j] > min_ret:
                break
            op = history[idx[j]]
            nxt = _step((state[0], state[1]), _thaw_op(op))
            if nxt is None:
                continue
            nstate = (nxt[0], _freeze(nxt[1]))
            stack.append((done | (1 << j), nstate, order + [idx[j]],
                          ndone_req + (0 if optional[j] else 1)))
    return False, ("no linearization: at most %d of %d completed operations could be "
                   "ordered; last good prefix %s" % (best[0], required, best[1][-10:]))


def _thaw_op(op):
    if op["kind"] == "propose" and op.get("result") in ("committed", "unknown"):
        o = dict(op)
        o["value"] = _freeze(op["value"])
        return o
    if op["kind"] == "read" and op.get("result") == "ok":
        o = dict(op)
        o["value"] = _freeze(op["value"])
        return o
    return op
