"""The OpenAPI 3.1 contract (docs/openapi.json) against `smc dev`.

The document is valid OpenAPI 3.1 (openapi-spec-validator), names smc's
version, is what every gateway serves at GET /openapi.json, and covers every
route of docs/rest.md. Then schemathesis (property-based) drives every
operation of it against `smc dev --examples` and checks each answer's status,
content type, headers and body against the document, 405s with an exact
Allow header, and no 5xx beyond the documented `unavailable` of a sub-second
wait (tests/system/st_hooks.py). SMC_SCHEMATHESIS_EXAMPLES (default 25) and
SMC_SCHEMATHESIS_SEED (default fixed, "random" for a fresh one) tune the run.
Both tools come from PyPI through scripts/deps.sh test."""
import json
import os
import re
import subprocess
import sys

import pytest

from smc_dev_fixture import ROOT, Dev, smc_bin

DOC = os.path.join(ROOT, "docs", "openapi.json")
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def dev():
    d = Dev("--partitions", "4")
    yield d
    assert d.stop() == 0


def load_doc():
    with open(DOC, "rb") as f:
        return f.read()


def test_document_is_valid_openapi_31():
    from openapi_spec_validator import validate
    doc = json.loads(load_doc())
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    version = subprocess.run([smc_bin(), "--version"], capture_output=True, text=True).stdout
    # the first line; the second names the librdkafka it runs
    assert version.splitlines()[0] == "smc " + doc["info"]["version"]


def test_every_route_of_rest_md_is_documented():
    doc = json.loads(load_doc())
    with open(os.path.join(ROOT, "docs", "rest.md")) as f:
        rest = f.read()
    routes = re.findall(r"^\| `(GET|PUT|POST|PATCH|DELETE) (/[^`?]*)", rest, re.M)
    assert len(routes) >= 14
    for method, path in routes:
        # rest.md writes {name} and {m}/{o}/{t}; the document names them
        tmpl = re.sub(r"\{[^}]+\}", "{}", path)
        found = [p for p in doc["paths"] if re.sub(r"\{[^}]+\}", "{}", p) == tmpl]
        assert found, "%s %s is not in docs/openapi.json" % (method, path)
        assert method.lower() in doc["paths"][found[0]], "%s %s" % (method, path)


def test_every_error_code_is_in_the_document():
    doc = json.loads(load_doc())
    with open(os.path.join(ROOT, "include", "smc", "error.h")) as f:
        codes = re.findall(r'X\(\w+, "([a-z_]+)"', f.read())
    assert doc["components"]["schemas"]["ErrorCode"]["enum"] == codes


def test_served_document_is_the_file(dev):
    st, h, raw = dev.request("GET", "/openapi.json")
    assert st == 200 and h["content-type"] == "application/json"
    assert raw == load_doc()


def test_vote_without_body_is_answered(dev):
    """Regression: a PATCH with no body queued two answers, and the connection
    closed without any (found by schemathesis)."""
    st, body = dev.json("PATCH", "/machine/lock/object/o-1/transition/acquire")
    assert st == 400 and body["error"]["code"] == "bad_request", body


def test_405_lists_the_allowed_methods(dev):
    """Regression: 405 said `Allow: see docs/rest.md` (found by schemathesis)."""
    for method, path, allow in [
            ("DELETE", "/healthz", "GET, HEAD"),
            ("POST", "/machine", "GET, HEAD"),
            ("DELETE", "/machine/lock", "GET, HEAD, POST"),
            ("PUT", "/machine/lock/object/o-1", "GET, HEAD"),
            ("GET", "/machine/lock/object/o-1/transition/acquire", "PUT, PATCH")]:
        st, h, _ = dev.request(method, path)
        assert st == 405 and h["allow"] == allow, (method, path, h)


def schemathesis_cmd():
    try:
        import schemathesis.cli  # noqa: F401
    except ImportError:
        pytest.fail("schemathesis is missing: scripts/deps.sh test installs it")
    return [sys.executable, "-c", "import sys; from schemathesis.cli import schemathesis; "
            "sys.argv[0] = 'schemathesis'; schemathesis()"]


def test_schemathesis_against_the_document(dev, tmp_path):
    seed = os.environ.get("SMC_SCHEMATHESIS_SEED", "20261201")
    cmd = schemathesis_cmd() + [
        "run", dev.url + "/openapi.json",
        "--exclude-checks",
        # the data rules of a machine are not in the document, so a
        # schema-valid body may still be refused (422, 400 invalid_machine),
        # and the gateway takes more duration spellings than a pattern says
        "negative_data_rejection,positive_data_acceptance,not_a_server_error",
        "--max-examples", os.environ.get("SMC_SCHEMATHESIS_EXAMPLES", "25"),
        "--request-timeout", "40", "--workers", "1", "--no-color",
        "--report", "junit", "--report-dir", str(tmp_path)]
    if seed != "random":
        cmd += ["--seed", seed]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="st_hooks",
               PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=840,
                       cwd=str(tmp_path))
    print(r.stdout[-6000:])
    print(r.stderr[-3000:], file=sys.stderr)
    assert r.returncode == 0, "schemathesis found failures (output above)"
    with open(os.path.join(ROOT, "docs", "openapi.json")) as f:
        doc = json.load(f)
    # every operation but GET /openapi.json, which schemathesis loads, not tests
    ops = sum(1 for path, item in doc["paths"].items() for m in item
              if m in ("get", "put", "post", "patch", "delete") and path != "/openapi.json")
    assert re.search(r"Tested:\s+%d\b" % ops, r.stdout), "every operation must be tested"
