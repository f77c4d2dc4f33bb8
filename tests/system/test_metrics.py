"""Metrics by Prometheus conventions, the Grafana dashboard and the alert
rules, against `smc dev`.

- confirmations are counted by machine and outcome from the fold's fields,
  not by scanning their JSON (whose data is the proposer's);
- HTTP metrics carry the route template, never a raw path, and a bounded
  method label;
- process_* and smc_build_info{version,librdkafka,rocksdb} are there, and
  every counter family has a sample from the start;
- every metric the dashboard (docker/grafana/smc-dashboard.json) and the
  alert rules (docker/prometheus/smc-alerts.yml) name is one smc exports,
  and `promtool check rules` passes (Debian's prometheus, scripts/deps.sh)."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from smc_dev_fixture import ROOT, Dev

DASHBOARD = os.path.join(ROOT, "docker", "grafana", "smc-dashboard.json")
ALERTS = os.path.join(ROOT, "docker", "prometheus", "smc-alerts.yml")
# series Prometheus makes itself
NOT_OURS = {"up"}


@pytest.fixture(scope="module")
def dev():
    d = Dev("--partitions", "4")
    yield d
    assert d.stop() == 0


def scrape(dev):
    st, _, raw = dev.request("GET", "/metrics")
    assert st == 200
    return raw.decode()


def samples(text):
    """{(name, labels text): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:\\.|[^"\\])*")*\})? (\S+)$',
                         line)
            assert m, "not a sample line: %r" % line
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def exported_names(text):
    names = {n for n, _ in samples(text)}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.add(name)
        if kind == "histogram":
            names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names


def confirmations(dev, machine, outcome):
    key = ("smc_confirmations_total", '{machine="%s",outcome="%s"}' % (machine, outcome))
    return samples(scrape(dev)).get(key)


def wait_count(dev, machine, outcome, want):
    deadline = time.time() + 20
    while time.time() < deadline:
        if confirmations(dev, machine, outcome) == want:
            return
        time.sleep(0.2)
    assert confirmations(dev, machine, outcome) == want, scrape(dev)


def test_confirmations_by_machine_and_outcome(dev):
    """Regression: the committer looked for "outcome":"rejected" and
    "duplicate":true anywhere in the confirmation, so a committed proposal
    whose data held those strings counted as rejected or duplicate."""
    before = {o: confirmations(dev, "lock", o) for o in ("committed", "rejected", "duplicate")}
    assert before == {"committed": 0, "rejected": 0, "duplicate": 0}, "exported from 0"
    tricky = {"owner": "svc-a", "note": {"outcome": "rejected", "duplicate": True}}
    # expect_version=0: the same request again is the same proposal (issue 19)
    st, body = dev.json("PUT", "/machine/lock/object/metrics-1/transition/create?expect_version=0",
                        tricky)
    assert st == 200, body
    wait_count(dev, "lock", "committed", 1)
    assert confirmations(dev, "lock", "rejected") == 0
    assert confirmations(dev, "lock", "duplicate") == 0
    st, body = dev.json("PUT", "/machine/lock/object/metrics-1/transition/create?expect_version=0",
                        tricky)
    assert st == 200 and body.get("duplicate") is True, body
    wait_count(dev, "lock", "duplicate", 1)
    st, body = dev.json("PUT", "/machine/lock/object/metrics-missing/transition/release", {})
    assert st == 404 and body["outcome"] == "rejected", body
    wait_count(dev, "lock", "rejected", 1)
    assert confirmations(dev, "lock", "committed") == 1
    # a proposal to a machine that does not exist adds no series for its name
    dev.json("PUT", "/machine/no-such-machine/object/x/transition/create", {})
    assert "no-such-machine" not in scrape(dev)


def test_http_metrics_use_route_templates(dev):
    dev.request("GET", "/machine/lock/object/secret-object-id-42")
    dev.request("GET", "/machine/lock/object/secret-object-id-42/watch?timeout=1ms")
    dev.request("GET", "/proposal/secret-proposal-id")
    dev.request("GET", "/no/such/route/secret-path")
    text = scrape(dev)
    assert "secret" not in text
    s = samples(text)
    for route in ("/machine/{m}/object/{o}", "/machine/{m}/object/{o}/watch", "/proposal/{id}",
                  "other"):
        assert any(n == "smc_http_requests_total" and 'route="%s"' % route in l
                   for n, l in s), route
        assert ("smc_http_request_duration_seconds_count", '{route="%s"}' % route) in s
    for n, l in s:
        if n == "smc_http_requests_total":
            assert re.fullmatch(r'\{code="\d{3}",method="(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|'
                                r'other)",route="[^"]+"\}', l), l


def test_process_metrics_and_build_info(dev):
    text = scrape(dev)
    s = samples(text)
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                 "process_start_time_seconds"):
        assert (name, "") in s, name
    assert "# TYPE process_cpu_seconds_total counter" in text
    assert 0 < time.time() - s[("process_start_time_seconds", "")] < 3600
    assert s[("process_resident_memory_bytes", "")] > 1 << 20
    info = [l for n, l in s if n == "smc_build_info"]
    assert len(info) == 1 and re.fullmatch(
        r'\{librdkafka="[0-9.]+",rocksdb="[0-9.]+",version="[0-9.]+"\}', info[0]), info


def test_every_counter_is_exported_from_the_start(dev):
    text = scrape(dev)
    names = {n for n, _ in samples(text)}
    counters = re.findall(r"^# TYPE (\S+) counter$", text, re.M)
    assert len(counters) >= 15
    assert [c for c in counters if c not in names] == []
    for c in counters:
        assert c.endswith("_total"), c
    s = samples(text)
    for key in [("smc_committer_producer_rebuilds_total", ""),
                ("smc_confirmations_total", '{machine="tally",outcome="expired"}'),
                ("smc_gateway_forwards_total", '{result="failed"}')]:
        assert s.get(key) == 0, key


# --- the dashboard and the alert rules ---------------------------------------------

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset"}


def promql_metric_names(expr):
    e = re.sub(r'"(\\.|[^"\\])*"', '""', expr)          # strings
    e = re.sub(r"\{[^}]*\}", "", e)                      # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                     # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", e):
        if m.group(2) or m.group(1) in PROMQL_WORDS:
            continue
        names.add(m.group(1))
    return names


def test_promql_name_extraction():
    assert promql_metric_names(
        'histogram_quantile(0.99, sum by (le, route) (rate(smc_x_bucket{a="b"}[5m])))') == \
        {"smc_x_bucket"}
    assert promql_metric_names("process_open_fds / process_max_fds > 0.8") == \
        {"process_open_fds", "process_max_fds"}


def test_dashboard_names_only_exported_metrics(dev):
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exported = exported_names(scrape(dev)) | NOT_OURS
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(dash["panels"]) >= 12 and len(exprs) >= len(dash["panels"])
    for p in dash["panels"]:
        assert p["title"] and p["type"] in ("timeseries", "table", "stat", "gauge")
        assert p["targets"], p["title"]
    used = set()
    for e in exprs:
        names = promql_metric_names(e)
        assert names, e
        used |= names
        assert names <= exported, "%s names %s, not exported" % (e, names - exported)
    for q in dash["templating"]["list"]:
        if q.get("definition"):
            # label_values(METRIC, LABEL)
            metric = re.match(r"label_values\((\w+),", q["definition"]).group(1)
            assert metric in exported, q["definition"]
    # the dashboard covers each area
    for must in ("smc_http_requests_total", "smc_confirmations_total", "smc_fold_lag_records",
                 "process_cpu_seconds_total", "smc_build_info"):
        assert must in used, must


def test_alert_rules_pass_promtool_and_name_exported_metrics(dev):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.fail("promtool is missing: scripts/deps.sh test installs Debian's prometheus")
    r = subprocess.run([promtool, "check", "rules", ALERTS], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    exported = exported_names(scrape(dev)) | NOT_OURS
    with open(ALERTS) as f:
        text = f.read()
    exprs = re.findall(r"expr: \|\n((?:\s{10}.*\n)+)|expr: (.*)", text)
    exprs = [a or b for a, b in exprs]
    assert len(exprs) >= 10
    for e in exprs:
        names = promql_metric_names(e)
        assert names and names <= exported, "%s names %s" % (e, names - exported)
