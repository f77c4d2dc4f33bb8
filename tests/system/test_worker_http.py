"""`smc worker --http`: the node serves the REST gateway; /info reports its
node id, roles and the partitions its committer owns; /metrics carries the
committer's counters once it committed a transaction."""
import json
import os
import re
import subprocess
import urllib.request

from conftest import BIN, MACHINES, wait_for


def get(addr, path):
    with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=10) as r:
        return r.status, r.read().decode()


def test_worker_serves_info_and_metrics(cluster):
    w = cluster.worker("h1", voter="node-1", extra=["--http", "127.0.0.1:0"])
    m = wait_for(lambda: re.search(r'http gateway on ([0-9.]+:[0-9]+)', w.log()), 30)
    assert m, w.log()[-3000:]
    addr = m.group(1)
    cluster.apply(os.path.join(MACHINES, "lock.yaml"))
    rc, conf, r = cluster.propose("lock", "h-1", "create")
    assert rc == 0 and conf["outcome"] == "committed", r.stdout + r.stderr

    def info():
        st, body = get(addr, "/info")
        j = json.loads(body)
        return j if st == 200 and len(j["partitions"]) == cluster.partitions else None
    j = wait_for(info, 30)
    assert j, get(addr, "/info")
    assert j["node_id"] == "h1" and j["roles"] == "committer,voter,http"
    assert j["partitions"] == list(range(cluster.partitions))
    st, text = get(addr, "/metrics")
    assert st == 200
    assert re.search(r'^smc_confirmations_total\{machine="[a-z0-9._-]+",outcome="committed"\} [1-9]', text, re.M), text
    assert re.search(r'^smc_txn_commits_total [1-9]', text, re.M), text
    assert "smc_txn_commit_seconds_bucket" in text
    # the version `smc --version` prints (one source: CMake's project VERSION)
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.split()[1]
    assert re.search(r'^smc_build_info\{librdkafka="[0-9.]+",rocksdb="[0-9.]+",version="%s"\} 1$' % re.escape(version), text, re.M), text
    # every batch the committer folded was written to its store once
    assert re.search(r'^smc_store_write_seconds_count\{role="committer"\} [1-9]', text, re.M), text
    assert re.search(r'^smc_store_write_seconds_bucket\{role="committer",le="\+Inf"\} [1-9]',
                     text, re.M), text
    assert w.stop() == 0
