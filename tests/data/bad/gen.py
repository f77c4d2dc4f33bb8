#!/usr/bin/env python3
"""Writes the hostile-input case files of this directory (events.jsonl,
machines.jsonl, http.jsonl). Run it after editing; the .jsonl files are
committed, so the tests never depend on running it."""
import base64
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def j(o):
    return json.dumps(o, separators=(",", ":"))


def b64(b):
    return {"input_b64": base64.b64encode(b).decode()}


# ------------------------------------------------------------------ events
# Each case is one raw record value for smc.proposals. Object ids use "bad-"
# so that they never collide with the valid follow-up proposal ("ok-...").
P = {"type": "proposal", "object": "bad-1", "machine": "lock", "transition": "create"}


def prop(**kw):
    d = dict(P)
    for k, v in kw.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d


events = []


def ev(name, value, code, **extra):
    c = {"name": name, "expect_code": code}
    if isinstance(value, bytes):
        c.update(b64(value))
    elif isinstance(value, str):
        c["input"] = value
    else:
        c["input"] = j(value)
    c.update(extra)
    events.append(c)


# not JSON / not an object
ev("empty_value", b"", "bad_request")
ev("not_json_text", "hello world", "bad_request")
ev("truncated_json", '{"type":"proposal","object":"bad-1"', "bad_request")
ev("json_array", "[1,2,3]", "bad_request")
ev("json_string", '"proposal"', "bad_request")
ev("json_number", "42", "bad_request")
ev("json_null", "null", "bad_request")
ev("trailing_garbage", j(P) + "xyz", "bad_request")
ev("two_objects", j(P) + j(P), "bad_request")
ev("binary_noise", bytes(range(256)), "bad_request")
ev("nul_bytes", b'{"type":"proposal",\x00"object":"bad-1"}', "bad_request")
ev("invalid_utf8_in_id", b'{"type":"proposal","object":"bad-\xff\xfe","machine":"lock","transition":"create"}',
   "bad_request")
ev("overlong_utf8", b'{"type":"proposal","object":"bad-\xc0\xaf","machine":"lock","transition":"create"}',
   "bad_request")
ev("lone_surrogate_escape", '{"type":"proposal","object":"bad-\\ud800","machine":"lock","transition":"create"}',
   "bad_request")
ev("duplicate_keys", '{"type":"proposal","object":"bad-1","object":"bad-2","machine":"lock","transition":"create"}',
   "bad_request")
ev("deep_nesting_5000", '{"type":"proposal","object":"bad-1","data":' + "[" * 5000 + "]" * 5000 + "}",
   "bad_request")
# type field
ev("missing_type", {"object": "bad-1", "machine": "lock"}, "bad_request")
ev("type_number", {"type": 1, "object": "bad-1"}, "bad_request")
ev("type_null", {"type": None, "object": "bad-1"}, "bad_request")
ev("type_unknown", {"type": "explode", "object": "bad-1"}, "bad_request")
ev("type_case", {"type": "PROPOSAL", "object": "bad-1"}, "bad_request")
# proposal fields with wrong types / missing
ev("proposal_missing_object", prop(object=None), "bad_request")
ev("object_number", prop(object=12), "bad_request")
ev("object_array", prop(object=["bad-1"]), "bad_request")
ev("object_null", prop(object=None, **{}) | {"object": None}, "bad_request")
ev("object_empty", prop(object=""), "bad_request")
ev("object_too_long", prop(object="bad-" + "x" * 2000), "bad_request")
ev("id_number", prop(id=5), "bad_request")
ev("id_object", prop(id={"a": 1}), "bad_request")
ev("id_empty_string", prop(id=""), "bad_request")
ev("id_too_long", prop(id="i" * 2000), "bad_request")
ev("transition_number", prop(transition=7, id="bad-t7"), "bad_request")
ev("machine_number", prop(machine=3, id="bad-m3"), "bad_request")
ev("data_array", prop(data=[1, 2], id="bad-da"), "bad_request")
ev("data_string", prop(data="x", id="bad-ds"), "bad_request")
ev("expect_version_negative", prop(expect_version=-1, id="bad-ev1"), "bad_request")
ev("expect_version_float", prop(expect_version=1.5, id="bad-ev2"), "bad_request")
ev("expect_version_string", prop(expect_version="1", id="bad-ev3"), "bad_request")
ev("expect_version_huge", '{"type":"proposal","id":"bad-ev4","object":"bad-1","machine":"lock",'
   '"transition":"create","expect_version":99999999999999999999999}', "bad_request")
ev("proposer_number", prop(proposer=1, id="bad-pr"), "bad_request")
ev("correlation_number", prop(correlation=1, id="bad-co"), "bad_request")
ev("reply_to_number", prop(reply_to=[], id="bad-rt"), "bad_request")
# size
ev("value_over_1mib", prop(id="bad-big", data={"blob": "x" * (1024 * 1024 + 10)}), "too_large")
ev("value_over_1mib_not_json", b"x" * (1024 * 1024 + 100), "too_large")
# placement
ev("key_differs_from_object", prop(id="bad-key"), "bad_request", key="bad-other")
ev("wrong_partition", prop(id="bad-wp", object="bad-wp-obj"), "wrong_partition",
   partition="wrong")
# decisions on well-formed proposals
ev("unknown_machine", prop(machine="no-such-machine", id="bad-um"), "unknown_machine")
ev("unknown_object", prop(object="bad-absent", transition="acquire", machine=None, id="bad-uo",
                          data={"owner": "a"}), "unknown_object")
ev("unknown_transition", prop(object="bad-ut", transition="teleport", machine=None, id="bad-ut2"),
   "unknown_transition", setup=[prop(object="bad-ut", id="bad-ut1")])
ev("version_conflict_create", prop(expect_version=5, id="bad-vc"), "version_conflict")
ev("rule_violation_owner", prop(object="bad-held", transition="acquire", machine=None,
                                id="bad-rv", data={"owner": "NOT VALID!"}), "validation_failed",
   setup=[prop(object="bad-held", id="bad-setup-create")])
ev("object_exists", prop(object="bad-ex", id="bad-oe2"), "object_exists",
   setup=[prop(object="bad-ex", id="bad-oe1")])
ev("invalid_transition", prop(object="bad-it", transition="release", machine=None, id="bad-it2",
                              data={"owner": "a"}), "invalid_transition",
   setup=[prop(object="bad-it", id="bad-it1")])
ev("final_state", prop(object="bad-fin", transition="acquire", machine=None, id="bad-fin3",
                       data={"owner": "a"}), "final_state",
   setup=[prop(object="bad-fin", id="bad-fin1"),
          prop(object="bad-fin", transition="retire", machine=None, id="bad-fin2",
               data={"reason": "gone"})])
ev("huge_data_string_rule", prop(object="bad-hd", transition="acquire", machine=None, id="bad-hd2",
                                 data={"owner": "a" * 100000}), "validation_failed",
   setup=[prop(object="bad-hd", id="bad-hd1")])
ev("machine_mismatch", prop(object="bad-mm", transition="acquire", machine="lease", id="bad-mm2",
                            data={"owner": "a"}), "unknown_machine",
   setup=[prop(object="bad-mm", id="bad-mm1")])
# object ids are global: the id of a lock cannot be created as an approval
ev("id_of_another_machine", prop(object="bad-mg", transition="request", machine="approval",
                                 id="bad-mg2", data={"requester": "a", "amount": 1}),
   "object_exists", setup=[prop(object="bad-mg", id="bad-mg1")])
# votes, reads, machines, ticks
ev("vote_missing_voter", {"type": "vote", "object": "bad-1", "proposal": "p", "accept": True},
   "bad_request")
ev("vote_accept_string", {"type": "vote", "object": "bad-1", "proposal": "p", "voter": "v",
                          "accept": "yes"}, "bad_request")
ev("vote_voter_number", {"type": "vote", "object": "bad-1", "proposal": "p", "voter": 1,
                         "accept": True}, "bad_request")
ev("vote_from_non_voter", {"type": "vote", "object": "bad-vote", "proposal": "bad-vote-p",
                           "voter": "mallory", "accept": True}, "not_a_voter",
   machine="approval",
   setup=[{"type": "proposal", "id": "bad-vote-r", "object": "bad-vote", "machine": "approval",
           "transition": "request", "data": {"requester": "r", "amount": 1}},
          {"type": "proposal", "id": "bad-vote-p", "object": "bad-vote", "transition": "approve"}])
# signed votes: voter "k" of machine "sv" has an Ed25519 public key
SV = ("name: sv\nstates:\n  a: {}\n  b: {}\ntransitions:\n  create: {from: null, to: a}\n"
      "  go:\n    from: a\n    to: b\n    votes:\n      voters: [k, u]\n"
      "      keys: {k: 'MlTjlqbzkdjPvWROai0jNlYLLxu+bxEmfDmcQjeWE5s='}\n")
for name, extra_field, code in (
        ("vote_keyed_voter_unsigned", {}, "bad_signature"),
        ("vote_keyed_voter_garbage_signature", {"signature": "!" + "x" * 5000},
         "bad_signature"),
        ("vote_keyed_voter_zero_signature", {"signature": "A" * 86 + "=="}, "bad_signature"),
        ("vote_signature_number", {"signature": 64}, "bad_request")):
    obj = "bad-" + name.replace("_", "-")
    ev(name, dict({"type": "vote", "object": obj, "proposal": obj + "-p", "voter": "k",
                   "accept": True}, **extra_field), code,
       setup=[{"type": "machine", "name": "sv", "definition": SV},
              {"type": "proposal", "id": obj + "-c", "object": obj, "machine": "sv",
               "transition": "create"},
              {"type": "proposal", "id": obj + "-p", "object": obj, "transition": "go"}])
RX = ("name: rx\nstates:\n  a:\n    fields:\n      s: {type: string, regex: '(a+)+$'}\n"
      "transitions:\n  go: {from: null, to: a}\n")
ev("regex_catastrophic_backtracking", {"type": "proposal", "id": "bad-rx2", "object": "bad-rx",
                                       "machine": "rx", "transition": "go",
                                       "data": {"s": "a" * 5000 + "!"}}, "limit_exceeded",
   setup=[{"type": "machine", "name": "rx", "definition": RX}])
ev("read_object_number", {"type": "read", "id": "r", "object": 5}, "bad_request")
ev("read_missing_object", {"type": "read", "id": "r"}, "bad_request")
ev("machine_event_missing_definition", {"type": "machine", "name": "x"}, "bad_request")
ev("machine_event_definition_number", {"type": "machine", "name": "x", "definition": 5},
   "bad_request")
ev("machine_event_invalid_yaml", {"type": "machine", "name": "bad-y", "definition": "a: [b"},
   "invalid_machine")
ev("machine_event_redefine_lock", {"type": "machine", "name": "lock",
                                   "definition": "name: lock\nstates: {a: {}}\n"
                                                 "transitions: {c: {from: null, to: a}}\n"},
   "machine_exists")

# -------------------------------------------------------------- machines
machines = []


def mc(name, text, code):
    c = {"name": name, "expect_code": code}
    if isinstance(text, bytes):
        c.update(b64(text))
    else:
        c["input"] = text
    machines.append(c)


OK_TAIL = "states:\n  a: {}\n  b: {}\ntransitions:\n  go: {from: null, to: a}\n"
mc("empty_file", "", "missing_key")
mc("yaml_unclosed_flow", "name: x\nstates: [a\n", "yaml_syntax")
mc("yaml_bad_indent", "name: x\n states:\n  a: {}\n b: 1\n", "yaml_syntax")
mc("yaml_tab_indent", "name: x\nstates:\n\ta: {}\n", "yaml_syntax")
mc("yaml_two_documents", "name: x\n" + OK_TAIL + "---\nname: y\n", "yaml_syntax")
mc("yaml_invalid_utf8", b"name: x\xff\xfe\n" + OK_TAIL.encode(), "yaml_syntax")
mc("yaml_nul_byte", b"name: x\x00\n" + OK_TAIL.encode(), "yaml_syntax")
mc("not_a_mapping", "- a\n- b\n", "bad_value")
mc("scalar_document", "just text\n", "bad_value")
mc("billion_laughs",
   "a: &a [x, x, x, x, x, x, x, x, x]\n"
   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
   "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
   "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
   "name: x\n" + OK_TAIL, "yaml_syntax")
mc("alias_bomb_in_states", "name: x\nstates: &s {a: {}}\nx: &x [*s, *s]\n"
   "transitions:\n  go: {from: null, to: a}\n", "unknown_key")
mc("unknown_top_key", "name: x\nfoo: 1\n" + OK_TAIL, "unknown_key")
mc("unknown_state_key", "name: x\nstates:\n  a: {colour: red}\n"
   "transitions:\n  go: {from: null, to: a}\n", "unknown_key")
mc("unknown_transition_key", "name: x\nstates:\n  a: {}\n"
   "transitions:\n  go: {from: null, to: a, speed: 3}\n", "unknown_key")
mc("missing_name", OK_TAIL, "missing_key")
mc("missing_states", "name: x\ntransitions:\n  go: {from: null, to: a}\n", "missing_key")
mc("name_list", "name: [5]\n" + OK_TAIL, "bad_name")
mc("name_with_space", "name: a b\n" + OK_TAIL, "bad_name")
mc("name_too_long", "name: " + "n" * 300 + "\n" + OK_TAIL, "bad_name")
mc("name_slash", "name: a/b\n" + OK_TAIL, "bad_name")
mc("name_invalid_utf8_escape", 'name: "\\xff"\n' + OK_TAIL, "bad_name")
mc("state_bad_name", "name: x\nstates:\n  'a b': {}\ntransitions:\n  go: {from: null, to: 'a b'}\n",
   "bad_name")
mc("duplicate_state_key", "name: x\nstates:\n  a: {}\n  a: {}\ntransitions:\n"
   "  go: {from: null, to: a}\n", "duplicate_name")
mc("transition_to_unknown", "name: x\nstates:\n  a: {}\ntransitions:\n  go: {from: null, to: zz}\n",
   "unknown_state")
mc("transition_from_unknown", "name: x\nstates:\n  a: {}\ntransitions:\n"
   "  go: {from: null, to: a}\n  g2: {from: qq, to: a}\n", "unknown_state")
mc("bad_duration_word", "name: x\nstates:\n  a: {}\n  b: {}\ntransitions:\n"
   "  go: {from: null, to: a}\n  t: {from: a, to: b, after: soon}\n", "bad_duration")
mc("bad_duration_negative", "name: x\nstates:\n  a: {}\n  b: {}\ntransitions:\n"
   "  go: {from: null, to: a}\n  t: {from: a, to: b, after: -5s}\n", "bad_duration")
mc("bad_duration_unit", "name: x\nstates:\n  a: {}\n  b: {}\ntransitions:\n"
   "  go: {from: null, to: a}\n  t: {from: a, to: b, after: 5y}\n", "bad_duration")
mc("bad_duration_overflow", "name: x\nstates:\n  a: {}\n  b: {}\ntransitions:\n"
   "  go: {from: null, to: a}\n  t: {from: a, to: b, after: 99999999999999999999d}\n",
   "bad_duration")
mc("regex_does_not_compile", "name: x\nstates:\n  a:\n    fields:\n      s: {type: string, regex: '(a'}\n"
   "transitions:\n  go: {from: null, to: a}\n", "bad_regex")
mc("bad_expression", "name: x\nstates:\n  a: {}\ntransitions:\n"
   "  go: {from: null, to: a, when: {expr: '1 +* 2'}}\n", "bad_expression")
mc("ref_unknown", "name: x\nstates:\n  a:\n    fields:\n      s: {$ref: nothing}\n"
   "transitions:\n  go: {from: null, to: a}\n", "unknown_ref")
mc("ref_cycle", "name: x\ndefinitions:\n  p: {$ref: q}\n  q: {$ref: p}\n"
   "states:\n  a:\n    fields:\n      s: {$ref: p}\ntransitions:\n  go: {from: null, to: a}\n",
   "ref_cycle")
mc("votes_quorum_too_big", "name: x\nstates:\n  a: {}\ntransitions:\n"
   "  go: {from: null, to: a, votes: {voters: [v1], quorum: 5}}\n", "bad_votes")
SVK = ("name: x\nstates:\n  a: {}\ntransitions:\n  go:\n    from: null\n    to: a\n"
       "    votes: {voters: [v1], keys: {%s}}\n")
mc("votes_key_for_non_voter", SVK % "v2: 'MlTjlqbzkdjPvWROai0jNlYLLxu+bxEmfDmcQjeWE5s='",
   "bad_votes")
mc("votes_key_bad_base64", SVK % "v1: '%s'" % ("\\x00" * 2000), "bad_value")
mc("votes_key_wrong_type_pem", SVK % ("v1: \"-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VuAyEAc8Fkx"
                                      "U6f6epsJaUokXcPfAqH6IksKgUCFrtUpAnnZTw=\\n-----END "
                                      "PUBLIC KEY-----\\n\""), "bad_value")
mc("deep_nesting_flow", "name: x\nstates:\n  a: {}\ntransitions:\n  go: {from: null, to: a}\n"
   "description: " + "[" * 200 + "]" * 200 + "\n", "yaml_syntax")
mc("huge_definition", "name: x\n" + "states:\n" + "".join("  s%d: {}\n" % i for i in range(120000))
   + "transitions:\n  go: {from: null, to: s0}\n", "too_large")
mc("kind_unknown", "name: x\nkind: quantum\n" + OK_TAIL, "bad_value")
mc("states_list", "name: x\nstates: [a, b]\ntransitions:\n  go: {from: null, to: a}\n",
   "bad_value")

# -------------------------------------------------------------- http
http = []


def hc(name, method, path, status, code, body=None, headers=None):
    c = {"name": name, "method": method, "path": path, "expect_status": status,
         "expect_code": code}
    if isinstance(body, bytes):
        c.update(b64(body))
    elif body is not None:
        c["input"] = body
    if headers:
        c["headers"] = headers
    http.append(c)


JS = {"Content-Type": "application/json"}
PUT = "/machine/lock/object/bad-http-1/transition/create"
hc("malformed_json", "PUT", PUT, 400, "bad_request", "{", JS)
hc("json_trailing_comma", "PUT", PUT, 400, "bad_request", '{"a":1,}', JS)
hc("json_array_body", "PUT", PUT, 400, "bad_request", "[1]", JS)
hc("json_string_body", "PUT", PUT, 400, "bad_request", '"x"', JS)
hc("json_duplicate_key", "PUT", PUT, 400, "bad_request", '{"a":1,"a":2}', JS)
hc("json_5000_deep", "PUT", PUT, 400, "bad_request", "{\"a\":" + "[" * 5000 + "]" * 5000 + "}", JS)
hc("body_invalid_utf8", "PUT", PUT, 400, "bad_request", b'{"owner":"\xff\xfe"}', JS)
hc("body_nul", "PUT", PUT, 400, "bad_request", b'{"owner":"a\x00"}', JS)
hc("wrong_content_type", "PUT", PUT, 415, "bad_request", "{}", {"Content-Type": "text/plain"})
hc("wrong_content_type_xml", "PUT", PUT, 415, "bad_request", "<a/>", {"Content-Type": "application/xml"})
hc("oversize_body", "PUT", PUT, 413, "too_large", '{"a":"' + "x" * (1024 * 1024 + 16) + '"}', JS)
hc("path_invalid_utf8_object", "PUT", "/machine/lock/object/bad-%FF%FE/transition/create", 400,
   "bad_request", "{}", JS)
hc("path_invalid_utf8_read", "GET", "/machine/lock/object/bad-%C0%AF", 400, "bad_request")
hc("path_object_too_long", "GET", "/machine/lock/object/" + "o" * 1100, 400, "bad_request")
hc("put_object_too_long", "PUT", "/machine/lock/object/" + "o" * 1100 + "/transition/create", 400,
   "bad_request", "{}", JS)
hc("bad_method_delete", "DELETE", "/machine/lock", 405, "bad_request")
hc("bad_method_patch_object", "PATCH", "/machine/lock/object/bad-http-1", 405, "bad_request")
hc("unknown_route", "GET", "/nothing/here", 404, "not_found")
hc("unknown_machine_put", "PUT", "/machine/nope/object/bad-http-2/transition/create", 404,
   "unknown_machine", "{}", JS)
hc("unknown_transition_put", "PUT", "/machine/lock/object/bad-http-2/transition/fly", 404,
   "unknown_transition", "{}", JS)
hc("expect_version_word", "PUT", PUT + "?expect_version=abc", 400, "bad_request", "{}", JS)
hc("expect_version_negative", "PUT", PUT + "?expect_version=-1", 400, "bad_request", "{}", JS)
hc("expect_version_float", "PUT", PUT + "?expect_version=1.5", 400, "bad_request", "{}", JS)
hc("expect_version_overflow", "PUT", PUT + "?expect_version=999999999999999999999999", 400,
   "bad_request", "{}", JS)
hc("wait_bad_unit", "PUT", PUT + "?wait=5parsecs", 400, "bad_request", "{}", JS)
hc("wait_too_long", "PUT", PUT + "?wait=10m", 400, "bad_request", "{}", JS)
hc("read_wait_garbage", "GET", "/machine/lock/object/bad-http-1?wait=x", 400, "bad_request")
hc("watch_after_version_word", "GET", "/machine/lock/object/bad-http-1/watch?after_version=x",
   400, "bad_request")
hc("diagram_bad_format", "GET", "/machine/lock/diagram?format=png", 400, "bad_request")
hc("register_invalid_yaml", "POST", "/machine/hx", 400, "invalid_machine", "name: hx\nstates: [",
   {"Content-Type": "application/yaml"})
hc("register_billion_laughs", "POST", "/machine/hx", 400, "invalid_machine",
   machines[[m["name"] for m in machines].index("billion_laughs")]["input"],
   {"Content-Type": "application/yaml"})
hc("register_name_mismatch", "POST", "/machine/other", 400, "bad_request",
   "name: hx\n" + OK_TAIL, {"Content-Type": "application/yaml"})
hc("register_empty_body", "POST", "/machine/hx", 400, "bad_request", "",
   {"Content-Type": "application/yaml"})
hc("register_wrong_type", "POST", "/machine/hx", 415, "bad_request", "name: hx",
   {"Content-Type": "image/png"})
hc("register_redefine_lock", "POST", "/machine/lock", 409, "machine_exists",
   "name: lock\n" + OK_TAIL, {"Content-Type": "application/yaml"})
hc("proposer_header_invalid_utf8", "PUT", PUT, 400, "bad_request", "{}",
   {"Content-Type": "application/json", "X-Smc-Proposer": "\udcff\udcfe"})
hc("idempotency_key_too_long", "PUT", PUT, 400, "bad_request", "{}",
   {"Content-Type": "application/json", "Idempotency-Key": "k" * 100})

for name, rows in (("events", events), ("machines", machines), ("http", http)):
    names = [r["name"] for r in rows]
    assert len(set(names)) == len(names), name
    with open(os.path.join(HERE, name + ".jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r, sort_keys=True) + "\n")
print(len(events), len(machines), len(http), len(events) + len(machines) + len(http))
