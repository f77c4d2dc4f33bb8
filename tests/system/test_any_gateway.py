"""Issue 19 on a real cluster of two workers with gateways:
GET /proposal/{id} answers the same from every gateway, also one that
started after the proposal was decided (its cache never saw it): from its
own fold's decided ids, or from the other node's; listing and history
merge over the nodes; `smc status` shows the node table and marks a
SIGKILLed worker down after --down-after."""
import json
import os
import time

from conftest import MACHINES, wait_for
from test_linearizable_rest import free_port, request


def test_proposal_listing_history_status_from_any_gateway(cluster):
    pa, pb = free_port(), free_port()
    a = cluster.worker("a", extra=["--http", "127.0.0.1:%d" % pa])
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    cluster.apply(os.path.join(MACHINES, "approval.yaml"))
    assert wait_for(lambda: request(pa, "GET", "/readyz")[0] == 200, 90)
    assert wait_for(lambda: request(pa, "GET", "/machine/lock")[0] == 200, 60)
    objs = ["any-%02d" % i for i in range(12)]
    ids = {}
    for o in objs:
        st, c = request(pa, "PUT", "/machine/lock/object/%s/transition/create" % o, {})
        assert st == 200, c
        ids[o] = c["proposal"]
    st, c = request(pa, "PUT", "/machine/lock/object/any-00/transition/acquire", {"owner": "ann"})
    assert st == 200 and c["version"] == 2
    st, r = request(pa, "PUT", "/machine/approval/object/req-any/transition/request",
                    {"requester": "bob", "amount": 5})
    assert st == 200
    st, pend = request(pa, "PUT", "/machine/approval/object/req-any/transition/approve?wait=0s",
                       {})
    assert st == 202, pend

    # b starts now: its gateway's cache has seen none of these
    b = cluster.worker("b", extra=["--http", "127.0.0.1:%d" % pb])
    assert wait_for(lambda: request(pb, "GET", "/readyz")[0] == 200, 90)

    def both_up():
        st, t = request(pa, "GET", "/nodes")
        nodes = {n["node"]: n for n in (t or {}).get("nodes", [])}
        parts = sum((n["partitions"] for n in nodes.values() if n["status"] == "up"), [])
        return set(nodes) == {"a", "b"} and nodes["b"]["partitions"] and \
            sorted(parts) == list(range(cluster.partitions))
    assert wait_for(both_up, 90)
    for port in (pa, pb):
        assert wait_for(lambda port=port: request(port, "GET", "/nodes")[0] == 200 and
                        len(request(port, "GET", "/nodes")[1]["nodes"]) == 2, 30)
        for o in objs:
            st, p = request(port, "GET", "/proposal/" + ids[o])
            assert st == 200 and p["status"] == "committed" and p["object"] == o, (port, o, p)
        st, p = request(port, "GET", "/proposal/" + pend["proposal"])
        assert st == 200 and p["status"] == "pending", p
        assert request(port, "GET", "/proposal/never-" + str(port))[0] == 404
        # listing merged over both nodes, in id order, paged
        got, after = [], "any-"
        while True:
            st, page = request(port, "GET", "/machine/lock/object?limit=5&after=" + after)
            assert st == 200, page
            got += [x["object"] for x in page["objects"]]
            if not page["next"]:
                break
            after = page["next"]
        assert got == objs, got
        # every version, unless the node that folds any-00's partition is b
        # and b restored it from the changelog when it joined: then its
        # history starts at the checkpoint and says from which version
        st, h = request(port, "GET", "/machine/lock/object/any-00/history")
        assert st == 200, h
        start = h.get("history_from", 1)
        assert "history_from" not in h or start > 1, h
        assert [v["transition"] for v in h["versions"]] == ["create", "acquire"][start - 1:], h

    # smc status: both up; a SIGKILLed node is down after --down-after
    r = cluster.smc("status", "-o", "json")
    assert r.returncode == 0, r.stderr
    nodes = {n["node"]: n for n in json.loads(r.stdout)["nodes"]}
    assert nodes["a"]["status"] == "up" and nodes["b"]["status"] == "up"
    assert nodes["a"]["http"] == "127.0.0.1:%d" % pa and "committer" in nodes["a"]["roles"]
    b.kill()
    time.sleep(4)
    r = cluster.smc("status", "--down-after", "3s", "-o", "json")
    nodes = {n["node"]: n for n in json.loads(r.stdout)["nodes"]}
    assert nodes["b"]["status"] == "down" and nodes["a"]["status"] == "up", nodes
    r = cluster.smc("status", "-o", "table")
    assert r.returncode == 0 and "NODE" in r.stdout.splitlines()[0]
