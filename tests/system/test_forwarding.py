"""Routing between nodes: the node table (GET /nodes) and forwarding.

Two workers with gateways split the partitions. A request sent to the
gateway whose node does not fold the object's partition is forwarded to the
one that does (found in the node table): it is answered from that node's fold
(no read event in the log) and counted in smc_gateway_forwards_total. With the
other worker SIGKILLed, its partitions move, the table marks it down, and
every request is still answered."""
import http.client
import json
import os
import time

from conftest import MACHINES, partition_of, wait_for
from test_linearizable_rest import free_port, metric, request


def test_node_table_and_forwarding(cluster):
    ports = {"a": free_port(), "b": free_port()}
    for name, port in ports.items():
        cluster.worker(name, extra=["--http", "127.0.0.1:%d" % port])
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    for p in ports.values():
        assert wait_for(lambda p=p: request(p, "GET", "/readyz")[0] == 200, 90)
        assert wait_for(lambda p=p: request(p, "GET", "/machine/lock")[0] == 200, 60)

    def table(port):
        st, body = request(port, "GET", "/nodes")
        assert st == 200, body
        return {n["node"]: n for n in body["nodes"]}

    # both nodes announce themselves with their partitions (6 between them)
    def split():
        t = table(ports["a"])
        if set(t) != {"a", "b"} or any(t[n]["status"] != "up" for n in t):
            return None
        parts = t["a"]["partitions"] + t["b"]["partitions"]
        return t if sorted(parts) == list(range(cluster.partitions)) and \
            t["a"]["partitions"] and t["b"]["partitions"] else None
    t = wait_for(split, 60)
    assert t, table(ports["a"])
    assert t["a"]["http"] == "127.0.0.1:%d" % ports["a"] and "committer" in t["a"]["roles"]
    assert set(t["b"]["lag"]) == {str(p) for p in t["b"]["partitions"]}

    # objects on b's partitions, written and read through a's gateway
    theirs = [o for o in ("f-%d" % i for i in range(200))
              if partition_of(o, cluster.partitions) in t["b"]["partitions"]][:10]
    assert len(theirs) == 10
    before = len(cluster.export("proposals"))
    for o in theirs:
        st, conf = request(ports["a"], "PUT",
                           "/machine/lock/object/%s/transition/create?expect_version=0" % o, {})
        assert st == 200 and conf["version"] == 1, conf
        st, rep = request(ports["a"], "GET", "/machine/lock/object/%s" % o)
        assert st == 200 and rep["version"] == 1, rep
    assert metric(ports["a"], 'smc_gateway_forwards_total{result="answered"}') == 20
    assert metric(ports["b"], 'smc_gateway_reads_total{source="fold"}') == 10
    assert metric(ports["b"], 'smc_gateway_answers_total{source="fold"}') == 10
    assert len(cluster.export("proposals")) - before == 10  # the creates, no read event
    # a forwarded request is not forwarded again (X-Smc-Forwarded)
    st, rep = request(ports["b"], "GET", "/machine/lock/object/%s" % theirs[0],
                      headers={"X-Smc-Forwarded": "test"})
    assert st == 200 and rep["version"] == 1, rep

    # b dies: its partitions move to a; a's table marks it down; nothing is lost
    cluster.workers[1].kill()
    def b_down():
        t = table(ports["a"])
        return t["b"]["status"] == "down" and \
            sorted(t["a"]["partitions"]) == list(range(cluster.partitions))
    assert wait_for(b_down, 90), table(ports["a"])
    for o in theirs:
        st, rep = request(ports["a"], "GET", "/machine/lock/object/%s" % o)
        assert st == 200 and rep["version"] == 1, rep
        st, conf = request(ports["a"], "PUT",
                           "/machine/lock/object/%s/transition/acquire?expect_version=1" % o,
                           {"owner": "svc-a"})
        assert st == 200 and conf["version"] == 2, conf
    assert cluster.workers[0].stop() == 0
