/*
 * Unit tests of the machine compiler and validator (src/core/yaml.c,
 * machine.c, rules_compile.c, rules_eval.c, validate.c): every definition error code with its
 * position, all errors in one pass, YAML anchors/aliases/merge keys, !!pcre,
 * $ref and cycles, hash stability, each rule key, set/mode, dfsm choice,
 * object lifecycle errors, limits and hostile YAML.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "smc/machine.h"

/* ---- helpers ---- */

static const char *LOCK =
    "name: lock                 # [a-z0-9]...\n"
    "kind: dfsm\n"
    "description: versioned lock\n"
    "definitions:\n"
    "  owner: {type: string, required: true, regex: '^[a-z0-9-]{1,64}$',\n"
    "          message: 'owner must be a service name, not ${value}'}\n"
    "states:\n"
    "  free: {}\n"
    "  held:\n"
    "    fields:\n"
    "      owner: {$ref: owner}\n"
    "  retired: {final: true, description: gone}\n"
    "transitions:\n"
    "  create:  {from: null, to: free}\n"
    "  acquire:\n"
    "    from: free\n"
    "    to: held\n"
    "  release:\n"
    "    from: held\n"
    "    to: free\n"
    "    $src: {owner: {eq: '${input.owner}', message: 'only the owner may release'}}\n"
    "    set: {owner: null}\n"
    "  retire: {from: free, to: retired}\n"
    "  expire:\n"
    "    from: held\n"
    "    to: free\n"
    "    after: 30s\n"
    "    votes: none\n";

static json_t *J(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
  if (!j)
    fail_msg("bad test JSON %s: %s", text, e.text);
  return j;
}

static smc_machine_t *compile_ok(const char *text) {
  smc_diags_t d;
  smc_machine_t *m = NULL;
  smc_diags_init(&d);
  int rc = smc_machine_compile(text, strlen(text), "t.yaml", NULL, &m, &d);
  if (rc) {
    for (size_t i = 0; i < d.count; i++)
      print_error("%d:%d %s %s\n", d.items[i].err.line, d.items[i].err.column,
                  smc_code_name(d.items[i].err.code), d.items[i].err.message);
    fail_msg("compile failed: %s", smc_code_name(rc));
  }
  assert_int_equal(d.errors, 0);
  smc_diags_close(&d);
  return m;
}

/* Compile text that must fail; d filled. */
static void compile_bad(const char *text, smc_diags_t *d) {
  smc_machine_t *m = NULL;
  smc_diags_init(d);
  int rc = smc_machine_compile(text, strlen(text), "bad.yaml", NULL, &m, d);
  assert_int_not_equal(rc, 0);
  assert_null(m);
  assert_true(d->errors > 0);
}

/* Has d a diagnostic with code at line:col (col 0 = any column)? */
static int has_diag(const smc_diags_t *d, int code, int line, int col) {
  for (size_t i = 0; i < d->count; i++)
    if (d->items[i].err.code == code && d->items[i].err.line == line &&
        (!col || d->items[i].err.column == col))
      return 1;
  return 0;
}

static void dump_diags(const smc_diags_t *d) {
  for (size_t i = 0; i < d->count; i++)
    print_error("  %d:%d %s: %s\n", d->items[i].err.line, d->items[i].err.column,
                smc_code_name(d->items[i].err.code), d->items[i].err.message);
}

static void expect_error(const char *text, int code, int line, int col) {
  smc_diags_t d;
  compile_bad(text, &d);
  if (!has_diag(&d, code, line, col)) {
    dump_diags(&d);
    fail_msg("expected %s at %d:%d", smc_code_name(code), line, col);
  }
  assert_string_equal(d.items[0].err.file, "bad.yaml");
  smc_diags_close(&d);
}

typedef struct vres {
  int rc;
  smc_error_t err;
  smc_outcome_t out;
} vres_t;

/* Validate: state NULL = the object does not exist. data/input are JSON text
 * (NULL = none). The outcome's data is kept in r->out.data (caller frees). */
static int validate(const smc_machine_t *m, const char *state, const char *data,
                    const char *transition, const char *input, const smc_limits_t *lim, vres_t *r) {
  json_t *dj = data ? J(data) : NULL, *ij = input ? J(input) : NULL;
  smc_object_view_t o = {.id = "obj-1", .state = state, .version = state ? 3 : 0, .data = dj};
  smc_proposal_view_t p = {
      .transition = transition, .input = ij, .proposer = "node-1", .time = 1000};
  memset(r, 0, sizeof(*r));
  r->rc = smc_machine_validate(m, &o, &p, lim, &r->out, &r->err);
  if (r->rc)
    assert_int_equal(r->rc, r->err.code);
  json_decref(dj);
  json_decref(ij);
  return r->rc;
}

/* Validate and expect success; returns the canonical result data. */
static void expect_ok(const smc_machine_t *m, const char *state, const char *data,
                      const char *transition, const char *input, const char *want_state,
                      const char *want_data) {
  vres_t r;
  if (validate(m, state, data, transition, input, NULL, &r))
    fail_msg("validation failed: %s %s: %s", smc_code_name(r.rc), r.err.path, r.err.message);
  assert_string_equal(r.out.state, want_state);
  if (want_data) {
    char *s = json_dumps(r.out.data, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, want_data);
    free(s);
  }
  json_decref(r.out.data);
}

static void expect_fail(const smc_machine_t *m, const char *state, const char *data,
                        const char *transition, const char *input, int code, const char *path,
                        const char *msg_part) {
  vres_t r;
  if (!validate(m, state, data, transition, input, NULL, &r)) {
    json_decref(r.out.data);
    fail_msg("%s %s %s: validation passed, expected %s", state ? state : "-",
             transition ? transition : "-", input ? input : "-", smc_code_name(code));
  }
  if (r.rc != code)
    fail_msg("expected %s, got %s (%s: %s)", smc_code_name(code), smc_code_name(r.rc), r.err.path,
             r.err.message);
  if (path)
    assert_string_equal(r.err.path, path);
  if (msg_part && !strstr(r.err.message, msg_part))
    fail_msg("message '%s' lacks '%s'", r.err.message, msg_part);
  assert_null(r.out.data);
}

/* A machine with one transition `t` (free -> done) whose extra keys are
 * given, and a create transition; `done` has fields from done_fields. */
static smc_machine_t *one(const char *transition_keys, const char *done_fields) {
  char buf[8192];
  snprintf(buf, sizeof(buf),
           "name: one\n"
           "definitions:\n"
           "  sku: {type: string, regex: '^[A-Z]{3}-[0-9]+$'}\n"
           "  item: {sku: {$ref: sku, required: true}, qty: {type: integer, min: 1}}\n"
           "states:\n"
           "  free: {}\n"
           "  done:\n"
           "    fields: %s\n"
           "transitions:\n"
           "  make: {from: null, to: free}\n"
           "  t:\n"
           "    from: free\n"
           "    to: done\n"
           "%s",
           done_fields ? done_fields : "{}", transition_keys);
  return compile_ok(buf);
}

/* ---- compile and introspection ---- */

static void test_lock_introspection(void **state) {
  (void)state;
  smc_machine_t *m = compile_ok(LOCK);
  assert_string_equal(smc_machine_name(m), "lock");
  assert_int_equal(strlen(smc_machine_hash(m)), 64);
  assert_string_equal(smc_machine_source(m), LOCK);
  assert_string_equal(smc_machine_description(m), "versioned lock");
  assert_true(smc_machine_is_dfsm(m));
  assert_int_equal(smc_machine_state_count(m), 3);
  assert_int_equal(smc_machine_find_state(m, "held"), 1);
  assert_int_equal(smc_machine_find_state(m, "nope"), -1);
  assert_true(smc_machine_state(m, 2)->final);
  assert_string_equal(smc_machine_state(m, 2)->description, "gone");
  assert_null(smc_machine_state(m, 0)->description);
  assert_int_equal(smc_machine_transition_count(m), 5);
  const smc_transition_info_t *c = smc_machine_transition(m, 0);
  assert_string_equal(c->name, "create");
  assert_true(c->creates);
  assert_int_equal(c->nfrom, 0);
  const smc_transition_info_t *r = smc_machine_transition(m, 2);
  assert_string_equal(r->name, "release");
  assert_int_equal(r->nfrom, 1);
  assert_string_equal(r->from[0], "held");
  assert_string_equal(r->to, "free");
  assert_null(r->votes);
  size_t t = 0;
  int64_t after = 0;
  assert_int_equal(smc_machine_timer(m, "held", &t, &after), 1);
  assert_int_equal(t, 4);
  assert_int_equal(after, 30000);
  assert_int_equal(smc_machine_timer(m, "free", &t, &after), 0);
  assert_int_equal(smc_machine_timer(m, "bogus", &t, &after), 0);
  smc_machine_t *m2 = smc_machine_retain(m);
  smc_machine_destroy(m2);
  assert_string_equal(smc_machine_name(m), "lock");
  smc_machine_destroy(m);
  smc_machine_destroy(NULL);
}

static void test_votes_resolved(void **state) {
  (void)state;
  smc_machine_t *m =
      compile_ok("name: v\n"
                 "votes: {quorum: majority, voters: [n3, n1, n2], timeout: 10s}\n"
                 "states: {a: {}, b: {}}\n"
                 "transitions:\n"
                 "  mk: {from: null, to: a, votes: none}\n"
                 "  d: {from: a, to: b}\n"
                 "  all: {from: b, to: a, votes: {quorum: all, voters: [x, y]}}\n"
                 "  two: {from: [a, b], to: b, votes: {quorum: 2, voters: [p, q, r]}}\n"
                 "  dflt: {from: b, to: b, votes: }\n");
  assert_int_equal(smc_machine_transition(m, 4)->votes->nvoters, 3);
  assert_null(smc_machine_transition(m, 0)->votes);
  const smc_vote_policy_t *v = smc_machine_transition(m, 1)->votes;
  assert_non_null(v);
  assert_int_equal(v->quorum, 2);
  assert_int_equal(v->nvoters, 3);
  assert_string_equal(v->voters[0], "n1");
  assert_string_equal(v->voters[2], "n3");
  assert_int_equal(v->timeout_ms, 10000);
  v = smc_machine_transition(m, 2)->votes;
  assert_int_equal(v->quorum, 2);
  assert_int_equal(v->timeout_ms, 0);
  v = smc_machine_transition(m, 3)->votes;
  assert_int_equal(v->quorum, 2);
  assert_int_equal(v->nvoters, 3);
  assert_int_equal(smc_machine_transition(m, 3)->nfrom, 2);
  assert_false(smc_machine_is_dfsm(m));
  smc_machine_destroy(m);
}

/* ---- definition errors: each code with its position ---- */

static void test_error_yaml_syntax(void **state) {
  (void)state;
  expect_error("name: x\nstates: [a, b\n", SMC_EYAML_SYNTAX, 3, 0);
  expect_error("name: x\n  bad: indent\n", SMC_EYAML_SYNTAX, 2, 0);
  expect_error("a: *nope\n", SMC_EYAML_SYNTAX, 1, 4);
  expect_error("--- {name: a}\n--- {name: b}\n", SMC_EYAML_SYNTAX, 2, 1);
  expect_error("---\n---\nname: a\nstates: {a: {}}\n", SMC_EYAML_SYNTAX, 2, 1);
}

static void test_error_unknown_key(void **state) {
  (void)state;
  expect_error("name: x\ncolour: red\nstates: {a: {}}\n", SMC_EUNKNOWN_KEY, 2, 1);
  expect_error("name: x\nstates: {a: {final: false, colour: 1}}\n", SMC_EUNKNOWN_KEY, 2, 28);
  expect_error("name: x\nstates: {a: {}}\ntransitions:\n  t: {from: null, to: a, bogus: 1}\n",
               SMC_EUNKNOWN_KEY, 4, 26);
  expect_error("name: x\nstates: {a: {fields: {f: {type: string, lenght: 3}}}}\n", SMC_EUNKNOWN_KEY,
               2, 41);
  expect_error("name: x\nstates: {a: {fields: {$foo: 1}}}\n", SMC_EUNKNOWN_KEY, 2, 23);
  expect_error("name: x\nvotes: {voters: [a], quorom: 1}\nstates: {a: {}}\n", SMC_EUNKNOWN_KEY, 2,
               22);
}

/* Unknown keys close to a known one get a hint. */
static void test_unknown_key_hint(void **state) {
  (void)state;
  smc_diags_t d;
  compile_bad("name: x\nstaets: {a: {}}\nstates: {a: {fields: {f: {maxlenght: 3, zzzzz: 1}}}}\n",
              &d);
  assert_true(has_diag(&d, SMC_EUNKNOWN_KEY, 2, 1));
  assert_non_null(strstr(d.items[0].err.message, "did you mean 'states'?"));
  assert_true(has_diag(&d, SMC_EUNKNOWN_KEY, 3, 27));
  int seen = 0;
  for (size_t i = 0; i < d.count; i++) {
    if (strstr(d.items[i].err.message, "'maxlenght'")) {
      assert_non_null(strstr(d.items[i].err.message, "did you mean 'maxLength'?"));
      seen++;
    }
    if (strstr(d.items[i].err.message, "'zzzzz'")) {
      assert_null(strstr(d.items[i].err.message, "did you mean"));
      seen++;
    }
  }
  assert_int_equal(seen, 2);
  smc_diags_close(&d);
}

static void test_error_missing_key(void **state) {
  (void)state;
  expect_error("states: {a: {}}\n", SMC_EMISSING_KEY, 1, 1);
  expect_error("name: x\n", SMC_EMISSING_KEY, 1, 1);
  expect_error("name: x\nstates: {a: {}}\ntransitions:\n  t: {to: a}\n", SMC_EMISSING_KEY, 4, 6);
  expect_error("name: x\nstates: {a: {}}\ntransitions:\n  t: {from: a}\n", SMC_EMISSING_KEY, 4, 6);
  expect_error("", SMC_EMISSING_KEY, 1, 1);
}

static void test_error_bad_value(void **state) {
  (void)state;
  expect_error("name: x\nkind: fsm\nstates: {a: {}}\n", SMC_EBAD_VALUE, 2, 7);
  expect_error("- name\n", SMC_EBAD_VALUE, 1, 1);
  expect_error("name: x\nstates: {a: {final: maybe}}\n", SMC_EBAD_VALUE, 2, 21);
  expect_error("name: x\nstates: {}\n", SMC_EBAD_VALUE, 2, 9);
  expect_error("name: x\nstates: {a: {fields: {n: {min: ten}}}}\n", SMC_EBAD_VALUE, 2, 32);
  expect_error("name: x\nstates: {a: {fields: {n: {maxLength: -1}}}}\n", SMC_EBAD_VALUE, 2, 38);
  expect_error("name: x\nstates: {a: {fields: {n: {type: text}}}}\n", SMC_EBAD_VALUE, 2, 33);
  expect_error("name: x\nstates: {a: {}}\ntransitions:\n  t: {from: null, to: a, mode: patch}\n",
               SMC_EBAD_VALUE, 4, 32);
  expect_error("name: x\nstates: {a: {final: true}, b: {}}\ntransitions:\n"
               "  t: {from: a, to: b}\n",
               SMC_EBAD_VALUE, 4, 13);
  expect_error("name: x\nstates: {a: {}}\ntransitions:\n  t: {from: null, to: a, after: 5s}\n",
               SMC_EBAD_VALUE, 4, 33);
}

static void test_error_bad_name(void **state) {
  (void)state;
  expect_error("name: Lock\nstates: {a: {}}\n", SMC_EBAD_NAME, 1, 7);
  expect_error("name: -lock\nstates: {a: {}}\n", SMC_EBAD_NAME, 1, 7);
  expect_error("name: "
               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
               "states: {a: {}}\n",
               SMC_EBAD_NAME, 1, 7);
  expect_error("name: x\nstates: {'a b': {}}\n", SMC_EBAD_NAME, 2, 10);
  expect_error("name: x\nstates: {a: {}}\ntransitions: {'t!': {from: null, to: a}}\n",
               SMC_EBAD_NAME, 3, 15);
  expect_error("name: x\nstates: {a: {fields: {'x..y': {}}}}\n", SMC_EBAD_NAME, 2, 23);
}

static void test_error_duplicate_name(void **state) {
  (void)state;
  expect_error("name: x\nstates:\n  a: {}\n  a: {}\n", SMC_EDUPLICATE_NAME, 4, 3);
  expect_error("name: x\nname: y\nstates: {a: {}}\n", SMC_EDUPLICATE_NAME, 2, 1);
  expect_error("name: x\nvotes: {voters: [n1, n2, n1]}\nstates: {a: {}}\n", SMC_EDUPLICATE_NAME, 2,
               26);
  expect_error("name: x\nstates: {a: {}}\ntransitions:\n  t: {from: null, to: a}\n"
               "  t: {from: a, to: a}\n",
               SMC_EDUPLICATE_NAME, 5, 3);
}

static void test_error_unknown_state(void **state) {
  (void)state;
  expect_error("name: x\nstates: {a: {}}\ntransitions:\n  t: {from: b, to: a}\n",
               SMC_EUNKNOWN_STATE, 4, 13);
  expect_error("name: x\nstates: {a: {}}\ntransitions:\n  t: {from: [a, c], to: a}\n",
               SMC_EUNKNOWN_STATE, 4, 17);
  expect_error("name: x\nstates: {a: {}}\ntransitions:\n  t: {from: null, to: z}\n",
               SMC_EUNKNOWN_STATE, 4, 23);
}

static void test_error_refs(void **state) {
  (void)state;
  expect_error("name: x\nstates: {a: {fields: {f: {$ref: nope}}}}\n", SMC_EUNKNOWN_REF, 2, 33);
  /* a -> b -> a */
  expect_error("name: x\ndefinitions:\n  a: {x: {$ref: b}}\n  b: {y: {$ref: a}}\n"
               "states: {s: {fields: {$ref: a}}}\n",
               SMC_EREF_CYCLE, 4, 17);
  /* self reference, reported even though nothing uses it */
  expect_error("name: x\ndefinitions:\n  a: {type: object, fields: {next: {$ref: a}}}\n"
               "states: {s: {}}\n",
               SMC_EREF_CYCLE, 3, 43);
}

static void test_error_bad_regex(void **state) {
  (void)state;
  expect_error("name: x\nstates: {a: {fields: {f: {regex: '(ab'}}}}\n", SMC_EBAD_REGEX, 2, 34);
  expect_error("name: x\nstates: {a: {fields: {f: {pattern: !!pcre '/a[/'}}}}\n", SMC_EBAD_REGEX, 2,
               0);
  expect_error("name: x\nstates: {a: {fields: {f: {regex: [a]}}}}\n", SMC_EBAD_REGEX, 2, 34);
  /* a literal regex of matches() inside an expression */
  expect_error("name: x\nstates: {a: {fields: {f: {expr: \"matches(value, '[a')\"}}}}\n",
               SMC_EBAD_REGEX, 2, 0);
}

static void test_error_bad_expression(void **state) {
  (void)state;
  /* the column points into the expression: 'src.count +' starts at col 39 */
  smc_diags_t d;
  compile_bad("name: x\nstates: {a: {}}\ntransitions:\n"
              "  t: {from: null, to: a, set: {n: 'src.count + * 2'}}\n",
              &d);
  assert_int_equal(d.items[0].err.code, SMC_EBAD_EXPRESSION);
  assert_int_equal(d.items[0].err.line, 4);
  assert_true(d.items[0].err.column > 37 && d.items[0].err.column < 55);
  smc_diags_close(&d);
  expect_error("name: x\nstates: {a: {fields: {f: {expr: 'value >'}}}}\n", SMC_EBAD_EXPRESSION, 2,
               0);
  expect_error("name: x\nstates: {a: {fields: {f: {eq: '${input.'}}}}\n", SMC_EBAD_EXPRESSION, 2,
               0);
  expect_error("name: x\nstates: {a: {}}\ntransitions:\n  t: {from: null, to: a, "
               "$vars: {v: 'len('}}\n",
               SMC_EBAD_EXPRESSION, 4, 0);
  expect_error("name: x\nstates: {a: {}}\ntransitions:\n  t: {from: null, to: a, when: '1 +'}\n",
               SMC_EBAD_EXPRESSION, 4, 0);
}

static void test_error_bad_duration(void **state) {
  (void)state;
  const char *bad[] = {"5x", "30", "s", "-5s", "0s", "1.5h", "5 m"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char buf[256];
    snprintf(buf, sizeof(buf),
             "name: x\nstates: {a: {}, b: {}}\ntransitions:\n  t: {from: a, to: b, after: '%s'}\n",
             bad[i]);
    expect_error(buf, SMC_EBAD_DURATION, 4, 30);
  }
  expect_error("name: x\nvotes: {voters: [a], timeout: soon}\nstates: {a: {}}\n", SMC_EBAD_DURATION,
               2, 31);
  const char *good[] = {"500ms", "30s", "5m", "2h", "7d"};
  const int64_t ms[] = {500, 30000, 300000, 7200000, 604800000};
  for (size_t i = 0; i < 5; i++) {
    char buf[256];
    snprintf(buf, sizeof(buf),
             "name: x\nstates: {a: {}, b: {}}\ntransitions:\n  t: {from: a, to: b, after: %s}\n",
             good[i]);
    smc_machine_t *m = compile_ok(buf);
    assert_int_equal(smc_machine_transition(m, 0)->after_ms, ms[i]);
    smc_machine_destroy(m);
  }
}

static void test_error_bad_votes(void **state) {
  (void)state;
  expect_error("name: x\nvotes: {quorum: 4, voters: [a, b, c]}\nstates: {a: {}}\n", SMC_EBAD_VOTES,
               2, 17);
  expect_error("name: x\nvotes: {quorum: 0, voters: [a]}\nstates: {a: {}}\n", SMC_EBAD_VOTES, 2,
               17);
  expect_error("name: x\nvotes: {quorum: most, voters: [a]}\nstates: {a: {}}\n", SMC_EBAD_VOTES, 2,
               17);
  expect_error("name: x\nvotes: {voters: []}\nstates: {a: {}}\n", SMC_EBAD_VOTES, 2, 17);
  expect_error("name: x\nvotes: sometimes\nstates: {a: {}}\n", SMC_EBAD_VOTES, 2, 8);
  expect_error("name: x\nstates: {a: {}}\ntransitions:\n"
               "  t: {from: null, to: a, votes: {quorum: 3, voters: [a, b]}}\n",
               SMC_EBAD_VOTES, 4, 42);
}

static void test_warning_dfsm_overlap(void **state) {
  (void)state;
  const char *text = "name: x\nkind: dfsm\nstates: {a: {}, b: {}, c: {}}\ntransitions:\n"
                     "  mk: {from: null, to: a}\n"
                     "  one: {from: a, to: b}\n"
                     "  two: {from: a, to: c}\n"
                     "  three: {from: b, to: c, $src: {n: {eq: 1}}}\n"
                     "  four: {from: b, to: a, $src: {n: {eq: 2}}}\n"
                     "  tick: {from: a, to: c, after: 5s}\n";
  smc_diags_t d;
  smc_machine_t *m = NULL;
  smc_diags_init(&d);
  assert_int_equal(smc_machine_compile(text, strlen(text), "w.yaml", NULL, &m, &d), 0);
  assert_non_null(m);
  assert_int_equal(d.errors, 0);
  assert_int_equal(d.warnings, 1);
  assert_true(d.items[0].warning);
  assert_int_equal(d.items[0].err.code, SMC_EDFSM_OVERLAP);
  assert_int_equal(d.items[0].err.line, 7);
  assert_int_equal(d.items[0].err.column, 3);
  smc_machine_destroy(m);
  smc_diags_close(&d);
  /* the same machine as ndfsm: no warning */
  char buf[1024];
  snprintf(buf, sizeof(buf), "%s", text);
  memcpy(strstr(buf, "kind: dfsm"), "kind: nfsm", 10);
  memcpy(strstr(buf, "kind: nfsm"), "#ind: nfsm", 10);
  smc_diags_init(&d);
  assert_int_equal(smc_machine_compile(buf, strlen(buf), "w.yaml", NULL, &m, &d), 0);
  assert_int_equal(d.warnings, 0);
  smc_machine_destroy(m);
  smc_diags_close(&d);
}

static void test_all_errors_one_pass(void **state) {
  (void)state;
  const char *text = "name: Lock!\n"                                                 /* 1 */
                     "kind: weird\n"                                                 /* 2 */
                     "colour: red\n"                                                 /* 3 */
                     "votes: {quorum: 5, voters: [n1, n2]}\n"                        /* 4 */
                     "states:\n"                                                     /* 5 */
                     "  free: {fields: {x: {type: strin, regex: '(', expr: '+'}}}\n" /* 6 */
                     "  held: {}\n"                                                  /* 7 */
                     "transitions:\n"                                                /* 8 */
                     "  go: {from: nowhere, to: held, after: 5x}\n"                  /* 9 */
                     "  come: {to: free}\n"                                          /* 10 */
                     "  back: {from: held, to: free, $src: {y: {$ref: zz}}}\n";      /* 11 */
  smc_diags_t d;
  compile_bad(text, &d);
  int codes[] = {SMC_EBAD_NAME,    SMC_EBAD_VALUE,     SMC_EUNKNOWN_KEY,  SMC_EBAD_VOTES,
                 SMC_EBAD_REGEX,   SMC_EUNKNOWN_STATE, SMC_EBAD_DURATION, SMC_EMISSING_KEY,
                 SMC_EUNKNOWN_REF, SMC_EBAD_EXPRESSION};
  int lines[] = {1, 2, 3, 4, 6, 9, 9, 10, 11, 6};
  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
    if (!has_diag(&d, codes[i], lines[i], 0)) {
      dump_diags(&d);
      fail_msg("missing %s on line %d", smc_code_name(codes[i]), lines[i]);
    }
  assert_true(d.errors >= 11);
  /* in source order */
  for (size_t i = 1; i < d.count; i++)
    assert_true(d.items[i - 1].err.line < d.items[i].err.line ||
                (d.items[i - 1].err.line == d.items[i].err.line &&
                 d.items[i - 1].err.column <= d.items[i].err.column));
  smc_diags_close(&d);
}

/* ---- YAML features ---- */

static void test_anchors_aliases_merge(void **state) {
  (void)state;
  smc_machine_t *m = compile_ok("name: anchors\n"
                                "definitions:\n"
                                "  base: &base {type: string, minLength: 2}\n"
                                "states:\n"
                                "  a: {}\n"
                                "  b:\n"
                                "    fields:\n"
                                "      code: {<<: *base, maxLength: 3}\n"
                                "      name: *base\n"
                                "transitions:\n"
                                "  mk: {from: null, to: a}\n"
                                "  go: &go {from: a, to: b}\n"
                                "  again: {<<: *go, from: b}\n");
  expect_ok(m, "a", "{}", "go", "{\"code\":\"ab\",\"name\":\"xyz\"}", "b", NULL);
  expect_fail(m, "a", "{}", "go", "{\"code\":\"abcd\",\"name\":\"xyz\"}", SMC_EVALIDATION_FAILED,
              "dst.code", "at most 3");
  expect_fail(m, "a", "{}", "go", "{\"code\":\"ab\",\"name\":\"x\"}", SMC_EVALIDATION_FAILED,
              "dst.name", "at least 2");
  /* `again` got from: b (its own) and to: b (merged) */
  const smc_transition_info_t *t = smc_machine_transition(m, 2);
  assert_string_equal(t->name, "again");
  assert_string_equal(t->from[0], "b");
  assert_string_equal(t->to, "b");
  smc_machine_destroy(m);
}

static void test_billion_laughs(void **state) {
  (void)state;
  char buf[4096];
  size_t n = 0;
  n += (size_t)snprintf(buf + n, sizeof(buf) - n, "a0: &a0 [lol, lol, lol, lol, lol, lol]\n");
  for (int i = 1; i < 30; i++)
    n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                          "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i,
                          i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
  smc_diags_t d;
  compile_bad(buf, &d);
  assert_int_equal(d.items[0].err.code, SMC_EYAML_SYNTAX);
  assert_non_null(strstr(d.items[0].err.message, "budget"));
  smc_diags_close(&d);
  /* nesting through aliases counts */
  n = 0;
  n += (size_t)snprintf(buf + n, sizeof(buf) - n, "a0: &a0 [x]\n");
  for (int i = 1; i < 80; i++)
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "a%d: &a%d [*a%d]\n", i, i, i - 1);
  compile_bad(buf, &d);
  assert_int_equal(d.items[0].err.code, SMC_EYAML_SYNTAX);
  assert_non_null(strstr(d.items[0].err.message, "deeper"));
  smc_diags_close(&d);
  /* a recursive alias is refused too */
  expect_error("a: &x [1, *x]\n", SMC_EYAML_SYNTAX, 1, 11);
}

static void test_deep_nesting(void **state) {
  (void)state;
  char buf[512];
  size_t n = 0;
  for (int i = 0; i < 100; i++)
    buf[n++] = '[';
  buf[n] = '\0';
  smc_diags_t d;
  compile_bad(buf, &d);
  assert_int_equal(d.items[0].err.code, SMC_EYAML_SYNTAX);
  assert_int_equal(d.items[0].err.line, 1);
  assert_int_equal(d.items[0].err.column, 65);
  smc_diags_close(&d);
}

static void test_definition_too_large(void **state) {
  (void)state;
  smc_limits_t lim;
  smc_limits_default(&lim);
  lim.definition_max_bytes = 100;
  smc_diags_t d;
  smc_machine_t *m = NULL;
  smc_diags_init(&d);
  assert_int_equal(smc_machine_compile(LOCK, strlen(LOCK), NULL, &lim, &m, &d),
                   SMC_EINVALID_MACHINE);
  assert_int_equal(d.items[0].err.code, SMC_ETOO_LARGE);
  smc_diags_close(&d);
  /* diags may be NULL */
  assert_int_equal(smc_machine_compile("x: [", 4, NULL, NULL, &m, NULL), SMC_EINVALID_MACHINE);
  assert_null(m);
}

static void test_pcre_tag(void **state) {
  (void)state;
  smc_machine_t *m = one("", "{h: {regex: !!pcre '/^[A-F0-9]{4}$/i'}, p: {pattern: 'x+'}}");
  expect_ok(m, "free", "{}", "t", "{\"h\":\"ab12\"}", "done", NULL);
  expect_ok(m, "free", "{}", "t", "{\"h\":\"AB12\",\"p\":\"axxb\"}", "done", NULL);
  expect_fail(m, "free", "{}", "t", "{\"h\":\"ab1\"}", SMC_EVALIDATION_FAILED, "dst.h", "match");
  expect_fail(m, "free", "{}", "t", "{\"p\":\"abc\"}", SMC_EVALIDATION_FAILED, "dst.p", "x+");
  expect_fail(m, "free", "{}", "t", "{\"p\":12}", SMC_EVALIDATION_FAILED, "dst.p", "string");
  smc_machine_destroy(m);
  /* one pattern in many places (aliases too), and the same text as plain and
   * !!pcre (different regexes: the plain one matches slashes literally) */
  m = one("", "{a: &re {regex: '^[a-c]+$'}, b: *re, c: {regex: '^[a-c]+$', pattern: '^a'},\n"
              "      d: {regex: !!pcre '/x/'}, e: {regex: '/x/'}}");
  expect_ok(m, "free", "{}", "t",
            "{\"a\":\"abc\",\"b\":\"c\",\"c\":\"ab\",\"d\":\"x\",\"e\":\"/x/\"}", "done", NULL);
  expect_fail(m, "free", "{}", "t", "{\"b\":\"abd\"}", SMC_EVALIDATION_FAILED, "dst.b", "match");
  expect_fail(m, "free", "{}", "t", "{\"c\":\"bc\"}", SMC_EVALIDATION_FAILED, "dst.c", "^a");
  expect_fail(m, "free", "{}", "t", "{\"e\":\"x\"}", SMC_EVALIDATION_FAILED, "dst.e", NULL);
  smc_machine_destroy(m);
}

/* ---- hash ---- */

static void test_hash_stability(void **state) {
  (void)state;
  const char *a = "name: h\nstates:\n  a: {}\n  b: {final: true}\ntransitions:\n"
                  "  t: {from: a, to: b, set: {n: 'src.n + 1'}}\n";
  const char *b =
      "# comment\ntransitions:\n  t:\n    to: b   # target\n    set:\n"
      "      n: src.n + 1\n    from: a\nstates: {b: {final: yes_no_string_not}, a: {}}\n"
      "name: h\n";
  const char *c = "{\"states\": {\"b\": {\"final\": true}, \"a\": {}}, \"name\": \"h\",\n"
                  " \"transitions\": {\"t\": {\"set\": {\"n\": \"src.n + 1\"}, \"to\": \"b\", "
                  "\"from\": \"a\"}}}";
  const char *d = "name: h\nstates:\n  a: {}\n  b: {final: true}\ntransitions:\n"
                  "  t: {from: a, to: b, set: {n: 'src.n + 2'}}\n";
  smc_machine_t *ma = compile_ok(a), *mc = compile_ok(c), *md = compile_ok(d);
  assert_string_equal(smc_machine_hash(ma), smc_machine_hash(mc));
  assert_string_not_equal(smc_machine_hash(ma), smc_machine_hash(md));
  /* b differs only by a bad value: it must not compile */
  smc_diags_t dg;
  compile_bad(b, &dg);
  smc_diags_close(&dg);
  const char *e = "# comment\ntransitions:\n  t:\n    to: b   # target\n    set:\n"
                  "      n: src.n + 1\n    from: a\nstates: {b: {final: true}, a: {}}\n"
                  "name: h\n";
  smc_machine_t *me = compile_ok(e);
  assert_string_equal(smc_machine_hash(ma), smc_machine_hash(me));
  /* quoting a number changes the value and the hash */
  smc_machine_t *m1 = compile_ok("name: q\nstates: {a: {fields: {n: {eq: 1}}}}\n");
  smc_machine_t *m2 = compile_ok("name: q\nstates: {a: {fields: {n: {eq: '1'}}}}\n");
  assert_string_not_equal(smc_machine_hash(m1), smc_machine_hash(m2));
  smc_machine_destroy(ma);
  smc_machine_destroy(mc);
  smc_machine_destroy(md);
  smc_machine_destroy(me);
  smc_machine_destroy(m1);
  smc_machine_destroy(m2);
}

/* ---- validation: lifecycle checks in order ---- */

static void test_lifecycle_errors(void **state) {
  (void)state;
  smc_machine_t *m = compile_ok(LOCK);
  expect_ok(m, NULL, NULL, "create", NULL, "free", "{}");
  expect_fail(m, "free", "{}", "create", NULL, SMC_EOBJECT_EXISTS, "", "exists");
  expect_fail(m, NULL, NULL, "acquire", "{\"owner\":\"a\"}", SMC_EUNKNOWN_OBJECT, "", NULL);
  expect_fail(m, NULL, NULL, "nope", NULL, SMC_EUNKNOWN_OBJECT, "", NULL);
  expect_fail(m, "free", "{}", "nope", NULL, SMC_EUNKNOWN_TRANSITION, "", "nope");
  expect_fail(m, "free", "{}", "release", "{\"owner\":\"a\"}", SMC_EINVALID_TRANSITION, "", "free");
  expect_fail(m, "retired", "{}", "acquire", NULL, SMC_EFINAL_STATE, "", NULL);
  expect_fail(m, "retired", "{}", "nope", NULL, SMC_EFINAL_STATE, "", NULL);
  expect_fail(m, "retired", "{}", NULL, NULL, SMC_EFINAL_STATE, "", NULL);
  expect_fail(m, "free", "{}", "acquire", "[1]", SMC_EVALIDATION_FAILED, NULL, "object");
  /* the lock story */
  expect_ok(m, "free", "{}", "acquire", "{\"owner\":\"svc-a\"}", "held", "{\"owner\":\"svc-a\"}");
  expect_fail(m, "free", "{}", "acquire", "{\"owner\":\"Svc A\"}", SMC_EVALIDATION_FAILED,
              "dst.owner", "owner must be a service name, not Svc A");
  expect_fail(m, "free", "{}", "acquire", "{}", SMC_EVALIDATION_FAILED, "dst.owner",
              "owner must be a service name");
  expect_fail(m, "held", "{\"owner\":\"svc-a\"}", "release", "{\"owner\":\"svc-b\"}",
              SMC_EVALIDATION_FAILED, "src.owner", "only the owner may release");
  expect_ok(m, "held", "{\"owner\":\"svc-a\"}", "release", "{\"owner\":\"svc-a\"}", "free", "{}");
  /* timer transitions can be proposed by name */
  expect_ok(m, "held", "{\"owner\":\"svc-a\"}", "expire", NULL, "free", "{\"owner\":\"svc-a\"}");
  /* a wrong `to` is an invalid transition */
  smc_object_view_t o = {.id = "x", .state = "free", .version = 1, .data = NULL};
  smc_proposal_view_t p = {.transition = "acquire", .to = "retired"};
  smc_outcome_t out;
  smc_error_t err;
  assert_int_equal(smc_machine_validate(m, &o, &p, NULL, &out, &err), SMC_EINVALID_TRANSITION);
  o.state = "limbo";
  assert_int_equal(smc_machine_validate(m, &o, &p, NULL, &out, NULL), SMC_EINVALID_TRANSITION);
  smc_machine_destroy(m);
}

static void test_from_any_and_lists(void **state) {
  (void)state;
  smc_machine_t *m = compile_ok("name: any\nstates: {a: {}, b: {}, c: {}, end: {final: true}}\n"
                                "transitions:\n"
                                "  mk: {from: null, to: a}\n"
                                "  next: {from: [a, b], to: c}\n"
                                "  kill: {from: '*', to: end}\n"
                                "  idle: {from: '*', to: end, after: 1h}\n"
                                "  nap: {from: a, to: b, after: 30m}\n");
  size_t t = 0;
  int64_t after = 0;
  assert_int_equal(smc_machine_timer(m, "a", &t, &after), 1);
  assert_int_equal(after, 1800000);
  assert_string_equal(smc_machine_transition(m, t)->name, "nap");
  assert_int_equal(smc_machine_timer(m, "c", &t, &after), 1);
  assert_string_equal(smc_machine_transition(m, t)->name, "idle");
  assert_int_equal(smc_machine_timer(m, "end", &t, &after), 0);
  assert_int_equal(smc_machine_transition(m, 2)->from_any, 1);
  expect_ok(m, "a", "{}", "next", NULL, "c", NULL);
  expect_ok(m, "b", "{}", "next", NULL, "c", NULL);
  expect_fail(m, "c", "{}", "next", NULL, SMC_EINVALID_TRANSITION, "", NULL);
  expect_ok(m, "a", "{}", "kill", NULL, "end", NULL);
  expect_ok(m, "c", "{}", "kill", NULL, "end", NULL);
  expect_fail(m, "end", "{}", "kill", NULL, SMC_EFINAL_STATE, "", NULL);
  /* ndfsm: a proposal must name its transition */
  expect_fail(m, "a", "{}", NULL, NULL, SMC_EUNKNOWN_TRANSITION, "", "name");
  smc_machine_destroy(m);
}

static void test_ndfsm_targets(void **state) {
  (void)state;
  smc_machine_t *m =
      compile_ok("name: review\nstates: {open: {}, accepted: {}, rejected: {}, parked: {}}\n"
                 "transitions:\n"
                 "  mk: {from: null, to: open}\n"
                 "  decide: {from: open, to: [accepted, rejected]}\n"
                 "  park:\n"
                 "    - {from: open, to: parked, when: {reason: {required: true}}}\n"
                 "    - {from: open, to: rejected, when: {spam: {eq: true, required: true}}}\n");
  assert_int_equal(smc_machine_transition_count(m), 5);
  smc_object_view_t o = {.id = "r", .state = "open", .version = 1};
  smc_proposal_view_t p = {.transition = "decide", .to = "rejected"};
  smc_outcome_t out;
  smc_error_t err;
  assert_int_equal(smc_machine_validate(m, &o, &p, NULL, &out, &err), 0);
  assert_string_equal(out.state, "rejected");
  assert_int_equal(out.transition, 2);
  json_decref(out.data);
  p.to = NULL; /* two targets, both pass */
  assert_int_equal(smc_machine_validate(m, &o, &p, NULL, &out, &err), SMC_EAMBIGUOUS_TRANSITION);
  /* variants under one name: the rules choose */
  expect_ok(m, "open", "{}", "park", "{\"reason\":\"later\"}", "parked", NULL);
  expect_ok(m, "open", "{}", "park", "{\"spam\":true}", "rejected", NULL);
  expect_fail(m, "open", "{}", "park", "{\"spam\":false}", SMC_EVALIDATION_FAILED, "input.spam",
              NULL);
  smc_machine_destroy(m);
}

static void test_dfsm_choice(void **state) {
  (void)state;
  smc_machine_t *m =
      compile_ok("name: traffic\nkind: dfsm\n"
                 "states: {low: {}, mid: {}, high: {}}\n"
                 "transitions:\n"
                 "  mk: {from: null, to: low}\n"
                 "  up: {from: low, to: mid, when: {n: {gt: 10, required: true}}}\n"
                 "  way-up: {from: low, to: high, when: {n: {gt: 100, required: true}}}\n"
                 "  stay: {from: low, to: low, when: {n: {le: 10, required: true}}}\n"
                 "  cool: {from: [mid, high], to: low, after: 5m}\n");
  expect_ok(m, NULL, NULL, NULL, NULL, "low", "{}");
  expect_ok(m, "low", "{}", NULL, "{\"n\":50}", "mid", "{\"n\":50}");
  expect_ok(m, "low", "{}", NULL, "{\"n\":5}", "low", NULL);
  expect_fail(m, "low", "{}", NULL, "{\"n\":500}", SMC_EAMBIGUOUS_TRANSITION, NULL, "way-up");
  expect_fail(m, "low", "{}", NULL, "{\"m\":1}", SMC_ENO_TRANSITION, "input.n", "required");
  /* the closest failure keeps its custom message (ties: the first) */
  smc_machine_t *pick = compile_ok(
      "name: pick\nkind: dfsm\nstates: {a: {}, b: {}, c: {}}\ntransitions:\n"
      "  x: {from: a, to: b, when: {k: {required: true, eq: 1, message: 'x wants 1, not "
      "${value}'}}}\n"
      "  y: {from: a, to: c, when: {k: {required: true, eq: 2}, j: {required: true}}}\n");
  expect_ok(pick, "a", "{}", NULL, "{\"k\":1}", "b", NULL);
  expect_ok(pick, "a", "{}", NULL, "{\"k\":2,\"j\":0}", "c", NULL);
  expect_fail(pick, "a", "{}", NULL, "{\"k\":2}", SMC_ENO_TRANSITION, "input.j", "'y' failed");
  expect_fail(pick, "a", "{}", NULL, "{\"k\":5}", SMC_ENO_TRANSITION, "input.k",
              "'x' failed: x wants 1, not 5");
  smc_machine_destroy(pick);
  /* timer transitions are not chosen implicitly */
  expect_fail(m, "mid", "{}", NULL, NULL, SMC_ENO_TRANSITION, NULL, "mid");
  expect_ok(m, "mid", "{}", "cool", NULL, "low", NULL);
  /* to narrows the choice */
  smc_object_view_t o = {.id = "x", .state = "low", .version = 1};
  json_t *in = J("{\"n\":500}");
  smc_proposal_view_t p = {.to = "high", .input = in};
  smc_outcome_t out;
  smc_error_t err;
  assert_int_equal(smc_machine_validate(m, &o, &p, NULL, &out, &err), 0);
  assert_string_equal(out.name, "way-up");
  json_decref(out.data);
  p.to = "nowhere";
  assert_int_equal(smc_machine_validate(m, &o, &p, NULL, &out, &err), SMC_ENO_TRANSITION);
  json_decref(in);
  smc_machine_destroy(m);
}

/* ---- validation: field rule keys ---- */

static void test_rule_type_required(void **state) {
  (void)state;
  smc_machine_t *m = one("", "{s: {type: string}, i: {type: integer}, n: {type: number},\n"
                             "      b: {type: boolean}, o: {type: object}, a: {type: array},\n"
                             "      z: {type: null}, u: {type: [string, null]},\n"
                             "      r: {required: true}}");
  expect_ok(m, "free", "{}", "t",
            "{\"r\":0,\"s\":\"x\",\"i\":2,\"n\":2.5,\"b\":false,\"o\":{},\"a\":[],\"u\":\"x\"}",
            "done", NULL);
  expect_ok(m, "free", "{}", "t", "{\"r\":\"x\",\"i\":2.0,\"u\":null}", "done", NULL);
  expect_fail(m, "free", "{}", "t", "{}", SMC_EVALIDATION_FAILED, "dst.r", "required");
  const char *bad[][2] = {{"{\"r\":1,\"s\":1}", "dst.s"},     {"{\"r\":1,\"i\":1.5}", "dst.i"},
                          {"{\"r\":1,\"n\":\"1\"}", "dst.n"}, {"{\"r\":1,\"b\":0}", "dst.b"},
                          {"{\"r\":1,\"o\":[]}", "dst.o"},    {"{\"r\":1,\"a\":{}}", "dst.a"},
                          {"{\"r\":1,\"z\":0}", "dst.z"},     {"{\"r\":1,\"u\":1}", "dst.u"}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_fail(m, "free", "{}", "t", bad[i][0], SMC_EVALIDATION_FAILED, bad[i][1], "type");
  smc_machine_destroy(m);
}

static void test_rule_enum_min_max_length(void **state) {
  (void)state;
  smc_machine_t *m = one("", "{c: {enum: [red, 1, null, {a: 1}]}, n: {min: 1, max: 9.5},\n"
                             "      s: {minLength: 2, maxLength: 3}, l: {minLength: 1}}");
  expect_ok(m, "free", "{}", "t", "{\"c\":\"red\",\"n\":1,\"s\":\"\xc3\xa9\xc3\xa9\"}", "done",
            NULL);
  expect_ok(m, "free", "{}", "t", "{\"c\":1.0,\"n\":9.5,\"s\":[1,2,3],\"l\":{\"k\":1}}", "done",
            NULL);
  expect_ok(m, "free", "{}", "t", "{\"c\":{\"a\":1}}", "done", NULL);
  expect_fail(m, "free", "{}", "t", "{\"c\":\"blue\"}", SMC_EVALIDATION_FAILED, "dst.c", "one of");
  expect_fail(m, "free", "{}", "t", "{\"n\":0}", SMC_EVALIDATION_FAILED, "dst.n", ">= 1");
  expect_fail(m, "free", "{}", "t", "{\"n\":10}", SMC_EVALIDATION_FAILED, "dst.n", "<= 9.5");
  expect_fail(m, "free", "{}", "t", "{\"n\":\"5\"}", SMC_EVALIDATION_FAILED, "dst.n", "number");
  expect_fail(m, "free", "{}", "t", "{\"s\":\"a\"}", SMC_EVALIDATION_FAILED, "dst.s", "at least 2");
  expect_fail(m, "free", "{}", "t", "{\"s\":\"abcd\"}", SMC_EVALIDATION_FAILED, "dst.s",
              "at most 3");
  expect_fail(m, "free", "{}", "t", "{\"l\":{}}", SMC_EVALIDATION_FAILED, "dst.l", "at least 1");
  expect_fail(m, "free", "{}", "t", "{\"l\":5}", SMC_EVALIDATION_FAILED, "dst.l", "length");
  smc_machine_destroy(m);
}

static void test_rule_comparisons(void **state) {
  (void)state;
  smc_machine_t *m = one("    $dst:\n"
                         "      a: {eq: 5}\n"
                         "      b: {ne: '${src.b}'}\n"
                         "      c: {lt: 10, ge: '${input.floor}'}\n"
                         "      d: {le: 'm', gt: 'a'}\n"
                         "      e: {eq: '${src.e}-${input.a}'}\n",
                         NULL);
  expect_ok(m, "free", "{\"b\":1,\"e\":\"x\"}", "t",
            "{\"a\":5,\"b\":2,\"c\":3,\"floor\":3,\"d\":\"m\",\"e\":\"x-5\"}", "done", NULL);
  expect_fail(m, "free", "{}", "t", "{\"a\":6}", SMC_EVALIDATION_FAILED, "dst.a", "equal 5");
  expect_ok(m, "free", "{}", "t", "{\"a\":5.0}", "done", NULL);
  expect_fail(m, "free", "{\"b\":1}", "t", "{\"b\":1}", SMC_EVALIDATION_FAILED, "dst.b", "differ");
  expect_fail(m, "free", "{}", "t", "{\"c\":10,\"floor\":0}", SMC_EVALIDATION_FAILED, "dst.c",
              "< 10");
  expect_fail(m, "free", "{}", "t", "{\"c\":2,\"floor\":3}", SMC_EVALIDATION_FAILED, "dst.c",
              ">= 3");
  expect_fail(m, "free", "{}", "t", "{\"c\":\"2\",\"floor\":1}", SMC_EVALIDATION_FAILED, "dst.c",
              NULL);
  expect_fail(m, "free", "{}", "t", "{\"d\":\"n\"}", SMC_EVALIDATION_FAILED, "dst.d", "<=");
  expect_fail(m, "free", "{}", "t", "{\"d\":\"a\"}", SMC_EVALIDATION_FAILED, "dst.d", "> \"a\"");
  expect_fail(m, "free", "{\"e\":\"x\"}", "t", "{\"a\":5,\"e\":\"x-6\"}", SMC_EVALIDATION_FAILED,
              "dst.e", "x-5");
  smc_machine_destroy(m);
}

static void test_rule_src_matches_expr(void **state) {
  (void)state;
  smc_machine_t *m =
      one("    $vars: {half: 'substr(input.root, 0, 4)', two: 2}\n"
          "    $dst:\n"
          "      prev: {src: cur, message: 'prev must be ${src.cur}, not ${value}'}\n"
          "      root: {matches: '${half}${vars.half}'}\n"
          "      n: {expr: 'value % vars.two == 0'}\n"
          "      deep.x: {src: a.b}\n",
          NULL);
  expect_ok(m, "free", "{\"cur\":\"h1\",\"a\":{\"b\":7}}", "t",
            "{\"prev\":\"h1\",\"root\":\"abcdabcd\",\"n\":4,\"deep\":{\"x\":7}}", "done", NULL);
  expect_fail(m, "free", "{\"cur\":\"h1\"}", "t", "{\"prev\":\"h0\",\"root\":\"\"}",
              SMC_EVALIDATION_FAILED, "dst.prev", "prev must be h1, not h0");
  expect_fail(m, "free", "{}", "t", "{\"root\":\"abcdabce\"}", SMC_EVALIDATION_FAILED, "dst.root",
              "abcdabcd");
  expect_fail(m, "free", "{}", "t", "{\"n\":3,\"root\":\"\"}", SMC_EVALIDATION_FAILED, "dst.n",
              "value %");
  expect_fail(m, "free", "{\"a\":{\"b\":7}}", "t", "{\"deep\":{\"x\":8},\"root\":\"\"}",
              SMC_EVALIDATION_FAILED, "dst.deep.x", "src.a.b");
  smc_machine_destroy(m);
}

static void test_rule_fields_items_ref(void **state) {
  (void)state;
  smc_machine_t *m = one("    when:\n"
                         "      items: {type: array, maxLength: 3, items: {$ref: item}}\n"
                         "      address: {fields: {city: {type: string, required: true}}}\n"
                         "      billing: {$ref: item}\n",
                         NULL);
  expect_ok(m, "free", "{}", "t",
            "{\"items\":[{\"sku\":\"ABC-1\",\"qty\":2},{\"sku\":\"XYZ-22\"}],"
            "\"address\":{\"city\":\"Oslo\"}}",
            "done", NULL);
  expect_fail(m, "free", "{}", "t",
              "{\"items\":[{\"sku\":\"ABC-1\"},{\"sku\":\"ABC-2\"},{\"sku\":\"abc\"}]}",
              SMC_EVALIDATION_FAILED, "input.items[2].sku", "match");
  expect_fail(m, "free", "{}", "t", "{\"items\":[{\"qty\":1}]}", SMC_EVALIDATION_FAILED,
              "input.items[0].sku", "required");
  expect_fail(m, "free", "{}", "t", "{\"items\":[{\"sku\":\"ABC-1\",\"qty\":0}]}",
              SMC_EVALIDATION_FAILED, "input.items[0].qty", ">= 1");
  expect_fail(m, "free", "{}", "t", "{\"items\":{}}", SMC_EVALIDATION_FAILED, "input.items",
              "array");
  expect_fail(m, "free", "{}", "t", "{\"address\":{}}", SMC_EVALIDATION_FAILED,
              "input.address.city", "required");
  expect_fail(m, "free", "{}", "t", "{\"address\":\"Oslo\"}", SMC_EVALIDATION_FAILED,
              "input.address", "object");
  /* a block definition used as a field rule checks the members */
  expect_fail(m, "free", "{}", "t", "{\"billing\":{\"sku\":\"x\"}}", SMC_EVALIDATION_FAILED,
              "input.billing.sku", NULL);
  smc_machine_destroy(m);
}

static void test_rule_or_all_any_not(void **state) {
  (void)state;
  smc_machine_t *m = one("    $dst:\n"
                         "      - {kind: {eq: a}, a: {required: true, type: integer, min: 10}}\n"
                         "      - {kind: {eq: b}, b: {required: true}}\n"
                         "    when:\n"
                         "      any:\n"
                         "        - {x: {eq: 1}, y: {required: true}}\n"
                         "        - {z: {required: true}}\n"
                         "      not: {banned: {eq: true, required: true}}\n"
                         "      all: [{w: {ne: 0}}, {w: {ne: 1}}]\n",
                         NULL);
  expect_ok(m, "free", "{}", "t", "{\"kind\":\"a\",\"a\":10,\"z\":1}", "done", NULL);
  expect_ok(m, "free", "{}", "t", "{\"kind\":\"b\",\"b\":1,\"x\":1,\"y\":2}", "done", NULL);
  /* the error of the alternative that got furthest: kind a, a too small */
  expect_fail(m, "free", "{}", "t", "{\"kind\":\"a\",\"a\":3,\"z\":1}", SMC_EVALIDATION_FAILED,
              "dst.a", ">= 10");
  expect_fail(m, "free", "{}", "t", "{\"kind\":\"b\",\"z\":1}", SMC_EVALIDATION_FAILED, "dst.b",
              "required");
  /* any: first alternative got further (x passed) */
  expect_fail(m, "free", "{}", "t", "{\"kind\":\"b\",\"b\":1,\"x\":1}", SMC_EVALIDATION_FAILED,
              "input.y", "required");
  expect_fail(m, "free", "{}", "t", "{\"kind\":\"b\",\"b\":1,\"z\":1,\"banned\":true}",
              SMC_EVALIDATION_FAILED, "input", "not");
  expect_fail(m, "free", "{}", "t", "{\"kind\":\"b\",\"b\":1,\"z\":1,\"w\":1}",
              SMC_EVALIDATION_FAILED, "input.w", "differ from 1");
  smc_machine_destroy(m);
}

static void test_rule_field_level_combinators(void **state) {
  (void)state;
  smc_machine_t *m =
      one("", "{v: [{type: string, minLength: 3}, {type: integer, min: 100}],\n"
              "      w: {not: {enum: [root, admin]}, any: [{regex: '^u'}, {regex: '^g'}]},\n"
              "      e: {expr: 'len(value) == 2', message: 'need two, got ${len(value)}'}}");
  expect_ok(m, "free", "{}", "t", "{\"v\":\"abc\",\"w\":\"ux\",\"e\":[1,2]}", "done", NULL);
  expect_ok(m, "free", "{}", "t", "{\"v\":100,\"w\":\"gx\"}", "done", NULL);
  expect_fail(m, "free", "{}", "t", "{\"v\":99}", SMC_EVALIDATION_FAILED, "dst.v", ">= 100");
  expect_fail(m, "free", "{}", "t", "{\"v\":\"ab\"}", SMC_EVALIDATION_FAILED, "dst.v", "at least");
  expect_fail(m, "free", "{}", "t", "{\"w\":\"admin\"}", SMC_EVALIDATION_FAILED, "dst.w", NULL);
  expect_fail(m, "free", "{}", "t", "{\"w\":\"xx\"}", SMC_EVALIDATION_FAILED, "dst.w", "match");
  expect_fail(m, "free", "{}", "t", "{\"e\":[1]}", SMC_EVALIDATION_FAILED, "dst.e",
              "need two, got 1");
  smc_machine_destroy(m);
}

/* ---- set and mode ---- */

static void test_set_and_mode(void **state) {
  (void)state;
  smc_machine_t *m = compile_ok(
      "name: tally\nstates: {open: {}, closed: {final: true}}\n"
      "transitions:\n"
      "  mk: {from: null, to: open, set: {count: 0, voters: []}}\n"
      "  vote:\n"
      "    from: open\n"
      "    to: open\n"
      "    $src: {voters: {expr: '!(input.voter in value)', message: '${input.voter} voted'}}\n"
      "    set: {count: 'src.count + 1', voters: 'concat(src.voters, [input.voter])',\n"
      "          voter: null, stats.last: input.voter}\n"
      "  reset: {from: open, to: open, mode: replace, set: {count: 0}}\n"
      "  close: {from: open, to: closed, message: 'cannot close: ${input.why}',\n"
      "          $dst: {count: {min: 3}}}\n");
  expect_ok(m, NULL, NULL, "mk", "{\"note\":\"hi\"}", "open",
            "{\"count\":0,\"note\":\"hi\",\"voters\":[]}");
  expect_ok(m, "open", "{\"count\":1,\"voters\":[\"a\"],\"stats\":{\"n\":1}}", "vote",
            "{\"voter\":\"b\"}", "open",
            "{\"count\":2,\"stats\":{\"last\":\"b\",\"n\":1},\"voters\":[\"a\",\"b\"]}");
  expect_fail(m, "open", "{\"count\":1,\"voters\":[\"a\"]}", "vote", "{\"voter\":\"a\"}",
              SMC_EVALIDATION_FAILED, "src.voters", "a voted");
  /* merge patch: null deletes, objects merge */
  expect_ok(m, "open", "{\"count\":1,\"keep\":{\"a\":1,\"b\":2},\"gone\":1}", "reset", "{\"x\":1}",
            "open", "{\"count\":0,\"x\":1}");
  smc_machine_t *m2 = compile_ok("name: mp\nstates: {a: {}}\ntransitions:\n"
                                 "  t: {from: a, to: a}\n");
  expect_ok(m2, "a", "{\"keep\":{\"a\":1,\"b\":2},\"gone\":1,\"s\":\"x\"}", "t",
            "{\"keep\":{\"b\":null,\"c\":3},\"gone\":null,\"new\":[1]}", "a",
            "{\"keep\":{\"a\":1,\"c\":3},\"new\":[1],\"s\":\"x\"}");
  smc_machine_destroy(m2);
  /* the transition message replaces the generic one */
  expect_fail(m, "open", "{\"count\":1,\"voters\":[]}", "close", "{\"why\":\"early\"}",
              SMC_EVALIDATION_FAILED, "dst.count", "cannot close: early");
  expect_ok(m, "open", "{\"count\":3,\"voters\":[]}", "close", NULL, "closed", NULL);
  /* a type error inside a rule's expression names the field */
  smc_machine_t *m3 = one("    $dst: {n: {expr: 'value + 1 > 2'}}\n", NULL);
  expect_fail(m3, "free", "{}", "t", "{\"n\":{}}", SMC_EVALIDATION_FAILED, "dst.n", NULL);
  smc_machine_destroy(m3);
  /* a type error in set is a validation failure */
  expect_fail(m, "open", "{\"count\":{},\"voters\":[]}", "vote", "{\"voter\":\"c\"}",
              SMC_EVALIDATION_FAILED, NULL, NULL);
  smc_machine_destroy(m);
}

static void test_additional_false(void **state) {
  (void)state;
  smc_machine_t *m = compile_ok("name: strict\nstates:\n  a: {}\n"
                                "  b: {additional: false, fields: {x: {type: integer}, "
                                "y.z: {type: string}}}\n"
                                "transitions:\n  t: {from: a, to: b}\n");
  expect_ok(m, "a", "{}", "t", "{\"x\":1,\"y\":{\"z\":\"q\"}}", "b", NULL);
  expect_fail(m, "a", "{}", "t", "{\"x\":1,\"w\":2}", SMC_EVALIDATION_FAILED, "dst.w",
              "not allowed");
  expect_fail(m, "a", "{\"old\":1}", "t", "{}", SMC_EVALIDATION_FAILED, "dst.old", "not allowed");
  smc_machine_destroy(m);
}

/* ---- limits ---- */

static void test_limits(void **state) {
  (void)state;
  smc_machine_t *m = one("", "{s: {regex: '^(a+)+$'}, big: {type: array}}");
  char input[256];
  snprintf(input, sizeof(input), "{\"s\":\"%s\"}",
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab");
  vres_t r;
  smc_limits_t lim;
  smc_limits_default(&lim);
  validate(m, "free", "{}", "t", input, &lim, &r);
  assert_int_equal(r.rc, SMC_ELIMIT_EXCEEDED);
  assert_string_equal(r.err.path, "dst.s");
  assert_null(r.out.data);
  /* data_max_bytes on the result */
  lim.data_max_bytes = 64;
  validate(m, "free", "{}", "t",
           "{\"big\":[\"0123456789\",\"0123456789\",\"0123456789\",\"0123456789\",\"01\"]}", &lim,
           &r);
  assert_int_equal(r.rc, SMC_ETOO_LARGE);
  validate(m, "free", "{}", "t", "{\"big\":[\"0123456789\",\"0123456789\",\"01\"]}", &lim, &r);
  assert_int_equal(r.rc, 0);
  json_decref(r.out.data);
  smc_machine_destroy(m);
  /* the expression step budget */
  m = one("    $dst: {n: {expr: 'value + value + value + value + value > 0'}}\n", NULL);
  smc_limits_default(&lim);
  lim.expr_steps = 5;
  validate(m, "free", "{}", "t", "{\"n\":1}", &lim, &r);
  assert_int_equal(r.rc, SMC_ELIMIT_EXCEEDED);
  lim.expr_steps = 1000;
  validate(m, "free", "{}", "t", "{\"n\":1}", &lim, &r);
  assert_int_equal(r.rc, 0);
  json_decref(r.out.data);
  smc_machine_destroy(m);
}

/* Validation of the lock's acquire many times: no leaks, same answer. */
static void test_repeatable(void **state) {
  (void)state;
  smc_machine_t *m = compile_ok(LOCK);
  json_t *in = J("{\"owner\":\"svc-a\"}"), *data = J("{}");
  smc_object_view_t o = {.id = "l", .state = "free", .version = 4, .data = data};
  smc_proposal_view_t p = {.transition = "acquire", .input = in};
  for (int i = 0; i < 1000; i++) {
    smc_outcome_t out;
    smc_error_t err;
    assert_int_equal(smc_machine_validate(m, &o, &p, NULL, &out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out.data, "owner")), "svc-a");
    json_decref(out.data);
  }
  /* the inputs were not modified */
  assert_int_equal(json_object_size(data), 0);
  json_decref(in);
  json_decref(data);
  smc_machine_destroy(m);
}

/* One compiled machine shared by threads validating at once (the machine is
 * immutable; regex scratch space is per thread). */
static void *validate_thread(void *arg) {
  const smc_machine_t *m = arg;
  json_t *in = json_pack("{s:s}", "owner", "svc-t"), *bad = json_pack("{s:s}", "owner", "B A D");
  json_t *data = json_object();
  smc_object_view_t o = {.id = "l", .state = "free", .version = 1, .data = data};
  intptr_t failures = 0;
  for (int i = 0; i < 2000; i++) {
    smc_proposal_view_t p = {.transition = "acquire", .input = (i % 2) ? bad : in};
    smc_outcome_t out;
    smc_error_t err;
    int rc = smc_machine_validate(m, &o, &p, NULL, &out, &err);
    if ((i % 2) ? rc != SMC_EVALIDATION_FAILED || strcmp(err.path, "dst.owner") : rc != 0)
      failures++;
    json_decref(out.data);
  }
  json_decref(in);
  json_decref(bad);
  json_decref(data);
  return (void *)failures;
}

static void test_threads(void **state) {
  (void)state;
  smc_machine_t *m = compile_ok(LOCK);
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, validate_thread, smc_machine_retain(m)), 0);
  for (int i = 0; i < 4; i++) {
    void *res;
    assert_int_equal(pthread_join(th[i], &res), 0);
    assert_int_equal((intptr_t)res, 0);
    smc_machine_destroy(m);
  }
  smc_machine_destroy(m);
}

/* A large generated definition: 2000 states, 500 from: "*" transitions in a
 * dfsm (every pair overlaps). Compiles, with the warnings capped, and
 * validates; the overlap check and indexes stay linear-ish. */
static void test_large_definition(void **state) {
  (void)state;
  size_t cap = 1 << 20, n = 0;
  char *buf = malloc(cap);
  assert_non_null(buf);
  n += (size_t)snprintf(buf + n, cap - n, "name: big\nkind: dfsm\nstates:\n");
  for (int i = 0; i < 2000; i++)
    n += (size_t)snprintf(buf + n, cap - n, "  s%d: {}\n", i);
  n += (size_t)snprintf(buf + n, cap - n, "transitions:\n  mk: {from: null, to: s0}\n");
  for (int i = 0; i < 500; i++)
    n += (size_t)snprintf(buf + n, cap - n, "  t%d: {from: '*', to: s%d}\n", i, i % 2000);
  smc_diags_t d;
  smc_machine_t *m = NULL;
  smc_diags_init(&d);
  assert_int_equal(smc_machine_compile(buf, n, "big.yaml", NULL, &m, &d), 0);
  assert_int_equal(d.errors, 0);
  assert_int_equal(d.warnings, 500 * 499 / 2);
  assert_true(d.count <= 1000);
  assert_int_equal(smc_machine_transition_count(m), 501);
  expect_ok(m, "s1999", "{}", "t7", NULL, "s7", NULL);
  expect_fail(m, "s5", "{}", NULL, NULL, SMC_EAMBIGUOUS_TRANSITION, NULL, NULL);
  smc_machine_destroy(m);
  smc_diags_close(&d);
  free(buf);
}

/* `smc machine check` (src/cli/cmd_machine.c), run as a process: the text
 * and JSON outputs and the exit statuses. Needs the smc binary of this build. */
static int run_cli(const char *args, char *out, size_t cap) {
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "%s/smc machine check %s 2>&1", SMC_BINARY_DIR, args);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  size_t n = fread(out, 1, cap - 1, f);
  out[n] = '\0';
  int st = pclose(f);
  assert_true(WIFEXITED(st));
  return WEXITSTATUS(st);
}

static void test_cli_check(void **state) {
  (void)state;
  char bin[512], out[8192];
  snprintf(bin, sizeof(bin), "%s/smc", SMC_BINARY_DIR);
  if (access(bin, X_OK))
    fail_msg("%s is missing: build the smc target before this test", bin);
  char bad[] = "/tmp/smc_test_machine_XXXXXX";
  int fd = mkstemp(bad);
  assert_true(fd >= 0);
  const char *text = "name: x\nstates: {a: {}}\ntransitions:\n  t: {from: b, to: a}\n";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  char args[1024];
  snprintf(args, sizeof(args), "%s", bad);
  assert_int_equal(run_cli(args, out, sizeof(out)), 1);
  char want[512];
  snprintf(want, sizeof(want), "%s:4:13: error: unknown_state: ", bad);
  if (strncmp(out, want, strlen(want)))
    fail_msg("got '%s', want '%s...'", out, want);
  snprintf(args, sizeof(args), "-o json %s", bad);
  assert_int_equal(run_cli(args, out, sizeof(out)), 1);
  json_error_t je;
  json_t *j = json_loads(out, 0, &je);
  assert_non_null(j);
  json_t *d0 = json_array_get(json_object_get(j, "diagnostics"), 0);
  assert_string_equal(json_string_value(json_object_get(d0, "code")), "unknown_state");
  assert_int_equal(json_integer_value(json_object_get(d0, "line")), 4);
  assert_int_equal(json_integer_value(json_object_get(d0, "column")), 13);
  assert_string_equal(json_string_value(json_object_get(d0, "severity")), "error");
  assert_true(json_is_false(json_object_get(j, "ok")));
  json_decref(j);
  /* a good file: exit 0 and its name and hash */
  snprintf(args, sizeof(args), "%s/examples/machines/lock.yaml", SMC_SOURCE_DIR);
  assert_int_equal(run_cli(args, out, sizeof(out)), 0);
  assert_non_null(strstr(out, ": ok: lock "));
  assert_int_equal(run_cli("", out, sizeof(out)), 2);
  assert_int_equal(run_cli("-o yaml x", out, sizeof(out)), 2);
  assert_int_equal(run_cli("/nonexistent/file.yaml", out, sizeof(out)), 1);
  assert_non_null(strstr(out, "io_error"));
  unlink(bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lock_introspection),
      cmocka_unit_test(test_votes_resolved),
      cmocka_unit_test(test_error_yaml_syntax),
      cmocka_unit_test(test_error_unknown_key),
      cmocka_unit_test(test_unknown_key_hint),
      cmocka_unit_test(test_error_missing_key),
      cmocka_unit_test(test_error_bad_value),
      cmocka_unit_test(test_error_bad_name),
      cmocka_unit_test(test_error_duplicate_name),
      cmocka_unit_test(test_error_unknown_state),
      cmocka_unit_test(test_error_refs),
      cmocka_unit_test(test_error_bad_regex),
      cmocka_unit_test(test_error_bad_expression),
      cmocka_unit_test(test_error_bad_duration),
      cmocka_unit_test(test_error_bad_votes),
      cmocka_unit_test(test_warning_dfsm_overlap),
      cmocka_unit_test(test_all_errors_one_pass),
      cmocka_unit_test(test_anchors_aliases_merge),
      cmocka_unit_test(test_billion_laughs),
      cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_definition_too_large),
      cmocka_unit_test(test_pcre_tag),
      cmocka_unit_test(test_hash_stability),
      cmocka_unit_test(test_lifecycle_errors),
      cmocka_unit_test(test_from_any_and_lists),
      cmocka_unit_test(test_ndfsm_targets),
      cmocka_unit_test(test_dfsm_choice),
      cmocka_unit_test(test_rule_type_required),
      cmocka_unit_test(test_rule_enum_min_max_length),
      cmocka_unit_test(test_rule_comparisons),
      cmocka_unit_test(test_rule_src_matches_expr),
      cmocka_unit_test(test_rule_fields_items_ref),
      cmocka_unit_test(test_rule_or_all_any_not),
      cmocka_unit_test(test_rule_field_level_combinators),
      cmocka_unit_test(test_set_and_mode),
      cmocka_unit_test(test_additional_false),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_repeatable),
      cmocka_unit_test(test_large_definition),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_cli_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
