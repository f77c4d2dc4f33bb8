/*
 * Unit tests of the expression language, templates and the regex wrapper
 * (src/core/expr_*.c, src/core/regex.c).
 *
 * Most cases are rows of data-driven tables; each row is registered as its
 * own cmocka test so a failure names the expression. The rest are
 * hand-written tests for budgets, regex limits, templates, threads.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/expr.h"

/* ---- the fixed evaluation context ---- */

static json_t *g_src, *g_dst, *g_input, *g_vars, *g_value;

static void ctx_init(smc_eval_ctx_t *c, uint64_t steps) {
  memset(c, 0, sizeof(*c));
  c->src = g_src;
  c->dst = g_dst;
  c->input = g_input;
  c->vars = g_vars;
  c->value = g_value;
  c->object = "obj-1";
  c->state = "held";
  c->proposer = "node-1";
  c->version = 7;
  c->time = 1700000000000;
  c->steps_left = steps;
  c->regex_match_limit = 100000;
  c->regex_depth_limit = 1000;
}

static json_t *load(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
  if (!j)
    fail_msg("bad test JSON %s: %s", text, e.text);
  return j;
}

static int group_setup(void **state) {
  (void)state;
  g_src = load("{\"count\": 3, \"owner\": \"alice\", \"items\": [1, 2, 3], "
               "\"nested\": {\"a\": {\"b\": \"deep\"}}, \"nul\": null, \"price\": 2.5, "
               "\"tags\": {\"x\": 1, \"b\": 2, \"a\": 3}, \"uni\": \"h\\u00e9llo w\\u00f6rld\", "
               "\"flag\": true}");
  g_dst = load("{\"owner\": \"bob\", \"count\": 4}");
  g_input = load("{\"owner\": \"alice\", \"count\": 4, \"s\": \"  padded \\t\", \"n\": \"42\", "
                 "\"bad\": \"4x\"}");
  g_vars = load("{\"limit\": 10, \"name\": \"bob\", \"badre\": \"[\", \"re\": \"^a.*e$\"}");
  g_value = load("\"v-123\"");
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  json_decref(g_src);
  json_decref(g_dst);
  json_decref(g_input);
  json_decref(g_vars);
  json_decref(g_value);
  return 0;
}

/* ---- table rows ---- */

typedef struct {
  const char *expr;
  const char *expect; /* JSON of the result, NULL when an error is expected */
  int code;           /* expected error code (0 = success) */
  int column;         /* expected err.column for errors, 0 = not checked */
} row_t;

#define OK(e, j)                                                                                   \
  { e, j, 0, 0 }
#define ERR(e, c)                                                                                  \
  { e, NULL, c, 0 }
#define ERRC(e, c, col)                                                                            \
  { e, NULL, c, col }
#define BADX SMC_EBAD_EXPRESSION
#define TYPE SMC_EVALIDATION_FAILED

static const row_t rows[] = {
    /* literals */
    OK("1", "1"),
    OK("-5", "-5"),
    OK("1.5", "1.5"),
    OK("1e3", "1000.0"),
    OK("'it\\'s'", "\"it's\""),
    OK("\"x\\ny\\t\\\"\"", "\"x\\ny\\t\\\"\""),
    OK("'\\u00e9'", "\"\\u00e9\""),
    OK("'\\ud83d\\ude00'", "\"\\ud83d\\ude00\""),
    OK("true", "true"),
    OK("false", "false"),
    OK("null", "null"),
    OK("[1, 'a', null, [true]]", "[1, \"a\", null, [true]]"),
    OK("[]", "[]"),
    OK("[src.count, 1 + 1]", "[3, 2]"),
    OK("-9223372036854775808", "-9223372036854775808"),
    OK("9223372036854775807", "9223372036854775807"),
    /* paths */
    OK("src.count", "3"),
    OK("src.owner", "\"alice\""),
    OK("src.missing", "null"),
    OK("src.missing.deeper.still", "null"),
    OK("src.count.x", "null"),
    OK("src.nested.a.b", "\"deep\""),
    OK("src.nested['a'].b", "\"deep\""),
    OK("src['nested']['a']['b']", "\"deep\""),
    OK("src.items[1]", "2"),
    OK("src.items[1 + 1]", "3"),
    OK("src.items[5]", "null"),
    OK("src.items[-1]", "null"),
    OK("[10, 20][1]", "20"),
    OK("keys(src.tags)[0]", "\"a\""),
    OK("src.nul", "null"),
    OK("src.items", "[1, 2, 3]"),
    OK("input.owner", "\"alice\""),
    OK("dst.owner", "\"bob\""),
    OK("vars.limit", "10"),
    OK("limit", "10"),
    OK("name + '!'", "\"bob!\""),
    OK("nothing", "null"),
    OK("value", "\"v-123\""),
    OK("src.in", "null"),
    OK("meta.object", "\"obj-1\""),
    OK("meta.version", "7"),
    OK("meta.state", "\"held\""),
    OK("meta.proposer", "\"node-1\""),
    OK("meta.time", "1700000000000"),
    ERR("src.items['x']", TYPE),
    ERR("src.nested[1]", TYPE),
    /* arithmetic */
    OK("1 + 2 * 3", "7"),
    OK("(1 + 2) * 3", "9"),
    OK("7 / 2", "3"),
    OK("-7 / 2", "-3"),
    OK("7 % 3", "1"),
    OK("-7 % 3", "-1"),
    OK("7.0 / 2", "3.5"),
    OK("7.5 % 2", "1.5"),
    OK("1 + 1.5", "2.5"),
    OK("10 - 2 - 3", "5"),
    OK("2 * -3", "-6"),
    OK("- -3", "3"),
    OK("-src.price", "-2.5"),
    OK("src.count + 1", "4"),
    OK("src.price * 2", "5.0"),
    ERR("1 / 0", TYPE),
    ERR("1 % 0", TYPE),
    ERR("1.0 / 0", TYPE),
    ERR("1 % 0.0", TYPE),
    ERR("9223372036854775807 + 1", TYPE),
    ERR("-9223372036854775807 - 2", TYPE),
    ERR("9223372036854775807 * 2", TYPE),
    ERR("-9223372036854775808 / -1", TYPE),
    ERR("-(-9223372036854775808)", TYPE),
    ERR("1e308 * 10", TYPE),
    ERR("'a' - 1", TYPE),
    ERR("true * 2", TYPE),
    ERR("null + 1", TYPE),
    ERR("-'a'", TYPE),
    /* + on strings and arrays */
    OK("'a' + 1", "\"a1\""),
    OK("1 + 'a'", "\"1a\""),
    OK("'n=' + null", "\"n=null\""),
    OK("'b=' + true", "\"b=true\""),
    OK("'x' + 1.5", "\"x1.5\""),
    OK("'x' + [1, 'y']", "\"x[1,\\\"y\\\"]\""),
    OK("'t' + src.tags", "\"t{\\\"a\\\":3,\\\"b\\\":2,\\\"x\\\":1}\""),
    OK("[1] + [2, 3]", "[1, 2, 3]"),
    OK("'' + ''", "\"\""),
    ERR("[1] + 1", TYPE),
    ERR("true + false", TYPE),
    /* comparison */
    OK("1 < 2", "true"),
    OK("2 <= 2", "true"),
    OK("3 > 2.5", "true"),
    OK("2 >= 3", "false"),
    OK("'abc' < 'abd'", "true"),
    OK("'ab' < 'abc'", "true"),
    OK("'B' < 'a'", "true"),
    OK("'b' >= 'b'", "true"),
    ERR("1 < 'a'", TYPE),
    ERR("null < 1", TYPE),
    ERR("[1] < [2]", TYPE),
    OK("1 == 1.0", "true"),
    OK("'a' == 'a'", "true"),
    OK("[1, 2] == [1, 2.0]", "true"),
    OK("[1, 2] == [2, 1]", "false"),
    OK("src.tags == src.tags", "true"),
    OK("1 == '1'", "false"),
    OK("null == null", "true"),
    OK("src.missing == null", "true"),
    OK("1 != 2", "true"),
    OK("'a' != 'a'", "false"),
    OK("src.owner == input.owner", "true"),
    OK("vars == vars", "true"),
    /* precedence and associativity */
    OK("1 + 2 == 3", "true"),
    OK("1 < 2 == true", "true"),
    OK("true || false && false", "true"),
    OK("(true || false) && false", "false"),
    OK("!true || true", "true"),
    OK("!(true || true)", "false"),
    OK("1 + 2 * 3 - 4 / 2", "5"),
    OK("2 * 3 % 4", "2"),
    OK("true ? 1 : 2", "1"),
    OK("false ? 1 : true ? 2 : 3", "2"),
    OK("true ? false ? 1 : 2 : 3", "2"),
    OK("1 < 2 ? 'y' : 'n'", "\"y\""),
    OK("'a' + 'b' in ['ab']", "true"),
    OK("2 in [1, 2] == true", "true"),
    OK("1 == 1 && 2 == 2", "true"),
    /* logic and short-circuit */
    OK("true && false", "false"),
    OK("true && true", "true"),
    OK("false || true", "true"),
    OK("false || false", "false"),
    OK("false && (1 / 0 == 1)", "false"),
    OK("true || (1 / 0 == 1)", "true"),
    OK("false && undefined_fn_result", "false"),
    OK("true ? 1 : 1 / 0", "1"),
    OK("!false", "true"),
    ERR("true && 1", TYPE),
    ERR("1 && true", TYPE),
    ERR("false || 'x'", TYPE),
    ERR("!1", TYPE),
    ERR("!null", TYPE),
    ERR("1 ? 2 : 3", TYPE),
    /* in */
    OK("2 in [1, 2, 3]", "true"),
    OK("2.0 in [1, 2]", "true"),
    OK("4 in src.items", "false"),
    OK("'x' in src.tags", "true"),
    OK("'z' in src.tags", "false"),
    OK("'ell' in 'hello'", "true"),
    OK("'' in 'hello'", "true"),
    OK("'elx' in 'hello'", "false"),
    OK("src.owner in ['alice', 'bob']", "true"),
    OK("[1] in [[1], [2]]", "true"),
    OK("'limit' in vars", "true"),
    ERR("1 in 'abc'", TYPE),
    ERR("1 in 5", TYPE),
    ERR("1 in src.tags", TYPE),
    ERR("1 in null", TYPE),
    /* len */
    OK("len('h\\u00e9llo')", "5"),
    OK("len(src.uni)", "11"),
    OK("len('\\ud83d\\ude00')", "1"),
    OK("len('')", "0"),
    OK("len(src.items)", "3"),
    OK("len(src.tags)", "3"),
    OK("len([])", "0"),
    ERR("len(1)", TYPE),
    ERR("len(null)", TYPE),
    /* substr */
    OK("substr('h\\u00e9llo', 1)", "\"\\u00e9llo\""),
    OK("substr('h\\u00e9llo', 1, 2)", "\"\\u00e9l\""),
    OK("substr(src.uni, 6)", "\"w\\u00f6rld\""),
    OK("substr('abc', 5)", "\"\""),
    OK("substr('abc', -2, 2)", "\"ab\""),
    OK("substr('abc', 1, 100)", "\"bc\""),
    OK("substr('abc', 1, -1)", "\"\""),
    OK("substr('abc', 0)", "\"abc\""),
    OK("substr('\\ud83d\\ude00x\\ud83d\\ude00', 1, 1)", "\"x\""),
    OK("substr('\\ud83d\\ude00x\\ud83d\\ude00', 2)", "\"\\ud83d\\ude00\""),
    ERR("substr(1, 1)", TYPE),
    ERR("substr('abc', '1')", TYPE),
    ERR("substr('abc', 1, 1.5)", TYPE),
    /* lower, upper, trim */
    OK("lower('AbC-1')", "\"abc-1\""),
    OK("upper('abc-1')", "\"ABC-1\""),
    OK("upper('\\u00e9a')", "\"\\u00e9A\""),
    OK("trim(input.s)", "\"padded\""),
    OK("trim('   ')", "\"\""),
    OK("trim('a b')", "\"a b\""),
    ERR("lower(1)", TYPE),
    ERR("upper(null)", TYPE),
    ERR("trim([])", TYPE),
    /* concat */
    OK("concat('a', 1, true, null)", "\"a1truenull\""),
    OK("concat('x')", "\"x\""),
    OK("concat([1], [2, 3], [])", "[1, 2, 3]"),
    OK("concat([1], 'a')", "\"[1]a\""),
    OK("concat(src.owner, '/', meta.version)", "\"alice/7\""),
    /* contains, startsWith, endsWith */
    OK("contains('hello', 'ell')", "true"),
    OK("contains([1, 2], 3)", "false"),
    OK("contains(src.items, 3)", "true"),
    OK("contains(src.tags, 'a')", "true"),
    ERR("contains(1, 1)", TYPE),
    OK("startsWith('hello', 'he')", "true"),
    OK("startsWith('he', 'hello')", "false"),
    OK("startsWith('hello', '')", "true"),
    OK("endsWith('hello', 'lo')", "true"),
    OK("endsWith('hello', 'he')", "false"),
    OK("endsWith('hello', '')", "true"),
    ERR("startsWith(1, 'a')", TYPE),
    ERR("endsWith('a', 1)", TYPE),
    /* matches */
    OK("matches('abc-123', '^[a-z]+-[0-9]+$')", "true"),
    OK("matches('ABC', '^abc$')", "false"),
    OK("matches('ABC', '(?i)^abc$')", "true"),
    OK("matches('h\\u00e9llo', '^h.llo$')", "true"),
    OK("matches(src.owner, vars.re)", "true"),
    OK("matches(src.owner, name)", "false"),
    OK("matches(value, '^v-' + '[0-9]{3}$')", "true"),
    ERR("matches(1, 'a')", TYPE),
    ERR("matches('a', 1)", BADX),
    ERR("matches('a', vars.badre)", TYPE),
    ERR("matches('a', src.count)", TYPE),
    ERRC("matches('a', '[')", SMC_EBAD_REGEX, 14),
    ERRC("matches('a', 'ab(c')", SMC_EBAD_REGEX, 14),
    ERRC("matches('a', '\\t[')", SMC_EBAD_REGEX, 14),
    /* sha256 */
    OK("sha256('abc')", "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""),
    OK("sha256('')", "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\""),
    OK("sha256(1)", "\"6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b\""),
    OK("sha256('a' + 'bc') == sha256('abc')", "true"),
    /* has */
    OK("has(src.count)", "true"),
    OK("has(src.nul)", "true"),
    OK("has(src.missing)", "false"),
    OK("has(src.missing.x)", "false"),
    OK("has(src.nested.a.b)", "true"),
    OK("has(src.nested['a'])", "true"),
    OK("has(src.items[2])", "true"),
    OK("has(src.items[3])", "false"),
    OK("has(limit)", "true"),
    OK("has(nope)", "false"),
    OK("has(meta.state)", "true"),
    OK("has(value)", "true"),
    OK("has(src)", "true"),
    ERR("has(src.items[nothing])", TYPE), /* found by fuzz_expr: bad free */
    ERR("has(src.tags[1])", TYPE),
    ERR("has(src.items[1 / 0])", TYPE),
    OK("has(src.items[0].x)", "false"),
    ERR("src.items[lower('X')]", TYPE),
    ERR("src.tags[1 + 1]", TYPE),
    OK("src.tags[lower('X')]", "1"),
    ERRC("has(1)", BADX, 5),
    ERRC("has(len('a'))", BADX, 5),
    /* int */
    OK("int('42')", "42"),
    OK("int(input.n) + 1", "43"),
    OK("int('-7')", "-7"),
    OK("int('+7')", "7"),
    OK("int(3.9)", "3"),
    OK("int(-3.9)", "-3"),
    OK("int(5)", "5"),
    OK("int('-9223372036854775808')", "-9223372036854775808"),
    ERR("int(input.bad)", TYPE),
    ERR("int('')", TYPE),
    ERR("int('-')", TYPE),
    ERR("int(' 1')", TYPE),
    ERR("int('1.5')", TYPE),
    ERR("int('9223372036854775808')", TYPE),
    ERR("int(1e300)", TYPE),
    ERR("int(true)", TYPE),
    ERR("int(null)", TYPE),
    /* string */
    OK("string(1)", "\"1\""),
    OK("string(-12)", "\"-12\""),
    OK("string('a')", "\"a\""),
    OK("string(null)", "\"null\""),
    OK("string(false)", "\"false\""),
    OK("string(1.5)", "\"1.5\""),
    OK("string([1, 'a'])", "\"[1,\\\"a\\\"]\""),
    OK("string(src.tags)", "\"{\\\"a\\\":3,\\\"b\\\":2,\\\"x\\\":1}\""),
    /* keys */
    OK("keys(src.tags)", "[\"a\", \"b\", \"x\"]"),
    OK("keys(vars)", "[\"badre\", \"limit\", \"name\", \"re\"]"),
    OK("keys(src.nested.a)", "[\"b\"]"),
    ERR("keys(1)", TYPE),
    ERR("keys(src.items)", TYPE),
    /* runtime errors carry the column of the failing operator */
    ERRC("1 + ('a' - 1)", TYPE, 10),
    ERRC("len(5)", TYPE, 1),
    /* compile errors with columns */
    ERRC("foo(1)", BADX, 1),
    ERRC("1 + foo(1)", BADX, 5),
    ERRC("src.count + bar()", BADX, 13),
    ERRC("len(1, 2)", BADX, 1),
    ERRC("substr('a')", BADX, 1),
    ERRC("substr('a', 1, 2, 3)", BADX, 1),
    ERRC("concat()", BADX, 1),
    ERRC("keys()", BADX, 1),
    ERRC("1 +", BADX, 4),
    ERRC("(1", BADX, 3),
    ERRC("1 = 1", BADX, 3),
    ERRC("true & false", BADX, 6),
    ERRC("'abc", BADX, 1),
    ERRC("1 2", BADX, 3),
    ERRC("", BADX, 1),
    ERRC("   ", BADX, 4),
    ERRC("meta.foo", BADX, 6),
    ERRC("meta", BADX, 1),
    ERRC("meta[0]", BADX, 1),
    ERRC("src.", BADX, 5),
    ERRC("src.1", BADX, 5),
    ERRC("@", BADX, 1),
    ERRC("a # b", BADX, 3),
    ERRC("'\\q'", BADX, 2),
    ERRC("'\\u12'", BADX, 2),
    ERRC("'\\ud800'", BADX, 2),
    ERRC("'\\udc00'", BADX, 2),
    ERRC("9223372036854775808", BADX, 1),
    ERRC("99999999999999999999999", BADX, 1),
    ERRC("1e999", BADX, 1),
    ERRC("12abc", BADX, 3),
    ERRC("[1,,2]", BADX, 4),
    ERRC("[1, 2", BADX, 6),
    ERRC("true ? 1", BADX, 9),
    ERRC("len(1", BADX, 6),
    ERRC("in", BADX, 1),
    ERRC("1 in", BADX, 5),
    ERRC("src.items[0", BADX, 12),
    ERRC("{1}", BADX, 1),
    ERRC("1 }", BADX, 3),
    ERRC("'\xff'", BADX, 2),
    ERRC("'\xc3\x28'", BADX, 2),
};

static void test_row(void **state) {
  const row_t *r = *state;
  smc_expr_t *e = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  int rc = smc_expr_compile(r->expr, &e, &err);
  if (rc == 0) {
    smc_eval_ctx_t ctx;
    ctx_init(&ctx, 10000);
    json_t *out = NULL;
    rc = smc_expr_eval(e, &ctx, &out, &err);
    if (rc == 0 && r->expect) {
      json_t *want = load(r->expect);
      if (!json_equal(out, want)) {
        char *got = json_dumps(out, JSON_ENCODE_ANY);
        print_error("%s: got %s, want %s\n", r->expr, got, r->expect);
        free(got);
        json_decref(want);
        json_decref(out);
        smc_expr_destroy(e);
        fail();
      }
      json_decref(want);
    }
    json_decref(out);
    assert_true(ctx.steps_left < 10000);
    smc_expr_destroy(e);
  } else {
    assert_null(e);
  }
  if (rc != r->code)
    print_error("%s: rc %s (%s), want %s\n", r->expr, smc_code_name(rc), err.message,
                smc_code_name(r->code));
  assert_int_equal(rc, r->code);
  if (r->code) {
    assert_int_equal(err.code, r->code);
    assert_true(err.message[0] != '\0');
    if (r->column && err.column != r->column)
      print_error("%s: column %d, want %d (%s)\n", r->expr, err.column, r->column, err.message);
    if (r->column)
      assert_int_equal(err.column, r->column);
  }
}

/* ---- hand-written tests ---- */

static int compile_eval(const char *src, uint64_t steps, json_t **out, smc_error_t *err,
                        uint64_t *steps_left) {
  smc_expr_t *e = NULL;
  smc_error_clear(err);
  int rc = smc_expr_compile(src, &e, err);
  if (rc)
    return rc;
  smc_eval_ctx_t ctx;
  ctx_init(&ctx, steps);
  rc = smc_expr_eval(e, &ctx, out, err);
  if (steps_left)
    *steps_left = ctx.steps_left;
  smc_expr_destroy(e);
  return rc;
}

static void test_budget_exact(void **state) {
  (void)state;
  json_t *out = NULL;
  smc_error_t err;
  uint64_t left = 0;
  /* "1 + 2": three nodes, three steps */
  assert_int_equal(compile_eval("1 + 2", 3, &out, &err, &left), 0);
  assert_int_equal(json_integer_value(out), 3);
  assert_int_equal(left, 0);
  json_decref(out);
  out = NULL;
  assert_int_equal(compile_eval("1 + 2", 2, &out, &err, &left), SMC_ELIMIT_EXCEEDED);
  assert_null(out);
  assert_int_equal(err.code, SMC_ELIMIT_EXCEEDED);
  assert_int_equal(left, 0);
  assert_int_equal(compile_eval("1", 0, &out, &err, NULL), SMC_ELIMIT_EXCEEDED);
}

/* A long chain of string doublings through vars: each step is cheap to
 * write but the strings grow, and the budget (1 step per 64 bytes) stops it. */
static void test_budget_expensive_concat(void **state) {
  (void)state;
  json_t *vars = json_object();
  char *big = malloc(64 * 1024 + 1);
  memset(big, 'x', 64 * 1024);
  big[64 * 1024] = '\0';
  json_object_set_new(vars, "s", json_string(big));
  free(big);
  smc_expr_t *e = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_expr_compile("len(s + s + s + s + s + s + s + s + s + s) > 0", &e, &err), 0);
  smc_eval_ctx_t ctx;
  ctx_init(&ctx, 1000);
  ctx.vars = vars;
  int ok = 0;
  assert_int_equal(smc_expr_eval_bool(e, &ctx, &ok, &err), SMC_ELIMIT_EXCEEDED);
  assert_int_equal(err.code, SMC_ELIMIT_EXCEEDED);
  assert_int_equal(ctx.steps_left, 0);
  /* the same expression with a big enough budget passes */
  smc_error_clear(&err);
  ctx_init(&ctx, 1000000);
  ctx.vars = vars;
  assert_int_equal(smc_expr_eval_bool(e, &ctx, &ok, &err), 0);
  assert_true(ok);
  smc_expr_destroy(e);
  json_decref(vars);
}

/* Strings built at run time are capped at SMC_EXPR_MAX_STRING even with an
 * unlimited step budget. */
static void test_string_size_cap(void **state) {
  (void)state;
  json_t *vars = json_object();
  size_t n = SMC_EXPR_MAX_STRING / 2 + 1;
  char *big = malloc(n + 1);
  memset(big, 'y', n);
  big[n] = '\0';
  json_object_set_new(vars, "s", json_string(big));
  free(big);
  smc_expr_t *e = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_expr_compile("concat(s, s)", &e, &err), 0);
  smc_eval_ctx_t ctx;
  ctx_init(&ctx, UINT64_MAX);
  ctx.vars = vars;
  json_t *out = NULL;
  assert_int_equal(smc_expr_eval(e, &ctx, &out, &err), SMC_ELIMIT_EXCEEDED);
  assert_null(out);
  smc_expr_destroy(e);
  json_decref(vars);
}

static void test_budget_big_list_membership(void **state) {
  (void)state;
  json_t *vars = json_object();
  json_t *arr = json_array();
  for (int i = 0; i < 100000; i++)
    json_array_append_new(arr, json_integer(i));
  json_object_set_new(vars, "big", arr);
  smc_expr_t *e = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_expr_compile("-1 in big || -2 in big || -3 in big", &e, &err), 0);
  smc_eval_ctx_t ctx;
  ctx_init(&ctx, 10000);
  ctx.vars = vars;
  int res;
  assert_int_equal(smc_expr_eval_bool(e, &ctx, &res, &err), SMC_ELIMIT_EXCEEDED);
  smc_expr_destroy(e);
  json_decref(vars);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_regex_catastrophic(void **state) {
  (void)state;
  const char *subject = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab";
  smc_regex_t *re = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_regex_compile("(a+)+$", NULL, &re, &err), 0);
  double t0 = now_s();
  assert_int_equal(smc_regex_match(re, subject, strlen(subject), 100000, 1000),
                   SMC_ELIMIT_EXCEEDED);
  double dt = now_s() - t0;
  print_message("(a+)+$ hit the match limit in %.3f ms\n", dt * 1e3);
  /* default limits (0) stop it too */
  assert_int_equal(smc_regex_match(re, subject, strlen(subject), 0, 0), SMC_ELIMIT_EXCEEDED);
  /* and a subject that matches is fine */
  assert_int_equal(smc_regex_match(re, "aaaa", 4, 100000, 1000), 1);
  smc_regex_destroy(re);

  /* the depth limit applies to a compiled pattern too */
  assert_int_equal(smc_regex_compile("(a+)+$", NULL, &re, &err), 0);
  assert_int_equal(smc_regex_match(re, subject, strlen(subject), 100000000, 3),
                   SMC_ELIMIT_EXCEEDED);
  assert_int_equal(smc_regex_match(re, "aaa", 3, 0, 0), 1);
  smc_regex_destroy(re);

  /* A definition's pattern (smc_regex_compile: field regex rules, matches()
   * with a literal) and one computed at run time (smc_regex_compile_ex:
   * matches(s, expr)) reach limit_exceeded at exactly the same subject, for
   * the match limit and for the depth limit: the outcome may not depend on
   * how a pattern was written, or on the CPU (no JIT). */
  static const struct {
    const char *pattern, *unit, *tail;
    uint32_t match_limit, depth_limit;
  } lim[] = {{"(a+)+$", "a", "b", 5000, 0}, {"^(a|b)*$", "a", "", 0, 50}};
  for (size_t c = 0; c < sizeof(lim) / sizeof(lim[0]); c++) {
    smc_regex_t *def = NULL, *run = NULL;
    assert_int_equal(smc_regex_compile(lim[c].pattern, NULL, &def, &err), 0);
    assert_int_equal(smc_regex_compile_ex(lim[c].pattern, strlen(lim[c].pattern), NULL, &run, &err),
                     0);
    char subj[200];
    int boundary = -1;
    for (int k = 1; k < 150; k++) {
      memset(subj, lim[c].unit[0], (size_t)k);
      strcpy(subj + k, lim[c].tail);
      size_t n = strlen(subj);
      int a = smc_regex_match(def, subj, n, lim[c].match_limit, lim[c].depth_limit);
      int b = smc_regex_match(run, subj, n, lim[c].match_limit, lim[c].depth_limit);
      assert_int_equal(a, b);
      if (a == SMC_ELIMIT_EXCEEDED && boundary < 0)
        boundary = k;
    }
    print_message("%s: limit_exceeded from %d repetitions on\n", lim[c].pattern, boundary);
    assert_true(boundary > 1); /* short subjects pass, long ones hit the limit */
    smc_regex_destroy(def);
    smc_regex_destroy(run);
  }

  /* and through an expression: limit_exceeded */
  json_t *out = NULL;
  char src[200];
  snprintf(src, sizeof(src), "matches('%s', '(a+)+$')", subject);
  assert_int_equal(compile_eval(src, 1000, &out, &err, NULL), SMC_ELIMIT_EXCEEDED);
  assert_int_equal(err.code, SMC_ELIMIT_EXCEEDED);
  snprintf(src, sizeof(src), "matches('%s', '(a+)' + '+$')", subject);
  assert_int_equal(compile_eval(src, 1000, &out, &err, NULL), SMC_ELIMIT_EXCEEDED);
}

static void test_regex_api(void **state) {
  (void)state;
  smc_regex_t *re = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_regex_compile("ab(", NULL, &re, &err), SMC_EBAD_REGEX);
  assert_null(re);
  assert_int_equal(err.column, 4);
  assert_non_null(strstr(err.message, "offset"));

  smc_error_clear(&err);
  assert_int_equal(smc_regex_compile("abc", "q", &re, &err), SMC_EBAD_REGEX);

  assert_int_equal(smc_regex_compile("^a.c$", "is", &re, &err), 0);
  assert_string_equal(smc_regex_pattern(re), "^a.c$");
  assert_int_equal(smc_regex_match(re, "A\nC", 3, 0, 0), 1);
  assert_int_equal(smc_regex_match(re, "abd", 3, 0, 0), 0);
  smc_regex_destroy(re);

  assert_int_equal(smc_regex_compile("^b$", "m", &re, &err), 0);
  assert_int_equal(smc_regex_match(re, "a\nb\nc", 5, 0, 0), 1);
  smc_regex_destroy(re);

  assert_int_equal(smc_regex_compile("a b # comment", "x", &re, &err), 0);
  assert_int_equal(smc_regex_match(re, "ab", 2, 0, 0), 1);
  smc_regex_destroy(re);

  /* invalid UTF-8 in the subject is not an error and not a crash */
  assert_int_equal(smc_regex_compile("b", NULL, &re, &err), 0);
  assert_int_equal(smc_regex_match(re,
                                   "\xff\xfe"
                                   "b",
                                   3, 0, 0),
                   1);
  assert_int_equal(smc_regex_match(re, "\xff\xfe", 2, 0, 0), 0);
  assert_int_equal(smc_regex_match(re, "", 0, 0, 0), 0);
  smc_regex_destroy(re);

  /* slashed form */
  assert_int_equal(smc_regex_compile_slashed("/ab+c/i", &re, &err), 0);
  assert_string_equal(smc_regex_pattern(re), "ab+c");
  assert_int_equal(smc_regex_match(re, "xABBCx", 6, 0, 0), 1);
  smc_regex_destroy(re);
  assert_int_equal(smc_regex_compile_slashed("/a/b/", &re, &err), 0);
  assert_string_equal(smc_regex_pattern(re), "a/b");
  smc_regex_destroy(re);
  smc_error_clear(&err);
  assert_int_equal(smc_regex_compile_slashed("abc", &re, &err), SMC_EBAD_REGEX);
  smc_error_clear(&err);
  assert_int_equal(smc_regex_compile_slashed("/abc", &re, &err), SMC_EBAD_REGEX);
  smc_error_clear(&err);
  assert_int_equal(smc_regex_compile_slashed("/a(/", &re, &err), SMC_EBAD_REGEX);
  assert_int_equal(err.column, 4);
  smc_error_clear(&err);
  assert_int_equal(smc_regex_compile_slashed("/a/z", &re, &err), SMC_EBAD_REGEX);
  assert_null(re);

  /* explicit length: NUL bytes in the pattern, and the interpreter only */
  assert_int_equal(smc_regex_compile_ex("a\0b", 3, NULL, &re, &err), 0);
  assert_int_equal(smc_regex_match(re, "xa\0b", 4, 0, 0), 1);
  assert_int_equal(smc_regex_match(re, "ab", 2, 0, 0), 0);
  smc_regex_destroy(re);
  /* too long */
  char *longpat = malloc(10000);
  memset(longpat, 'a', 9999);
  longpat[9999] = '\0';
  smc_error_clear(&err);
  assert_int_equal(smc_regex_compile(longpat, NULL, &re, &err), SMC_EBAD_REGEX);
  free(longpat);
}

/* Comparing big containers costs steps in proportion to their size. */
static void test_budget_container_equality(void **state) {
  (void)state;
  json_t *vars = json_object();
  json_t *arr = json_array();
  for (int i = 0; i < 5000; i++)
    json_array_append_new(arr, json_integer(i));
  json_object_set_new(vars, "a", arr);
  json_object_set_new(vars, "b", json_deep_copy(arr));
  smc_expr_t *e = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_expr_compile("a == b && a == b && a == b", &e, &err), 0);
  smc_eval_ctx_t ctx;
  ctx_init(&ctx, 10000);
  ctx.vars = vars;
  int res = 0;
  assert_int_equal(smc_expr_eval_bool(e, &ctx, &res, &err), SMC_ELIMIT_EXCEEDED);
  ctx_init(&ctx, 100000);
  ctx.vars = vars;
  smc_error_clear(&err);
  assert_int_equal(smc_expr_eval_bool(e, &ctx, &res, &err), 0);
  assert_true(res);
  smc_expr_destroy(e);
  json_decref(vars);
}

typedef struct {
  const smc_expr_t *e;
  const smc_regex_t *re;
  int failures;
} thread_arg_t;

static void *thread_main(void *p) {
  thread_arg_t *a = p;
  for (int i = 0; i < 2000; i++) {
    smc_eval_ctx_t ctx;
    ctx_init(&ctx, 1000);
    int res = 0;
    smc_error_t err;
    smc_error_clear(&err);
    if (smc_expr_eval_bool(a->e, &ctx, &res, &err) || !res)
      a->failures++;
    const char *s = (i & 1) ? "node-17" : "bad id";
    if (smc_regex_match(a->re, s, strlen(s), 0, 0) != (i & 1))
      a->failures++;
  }
  return NULL;
}

/* One compiled expression and one regex shared by several threads. */
static void test_threads(void **state) {
  (void)state;
  smc_expr_t *e = NULL;
  smc_regex_t *re = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_expr_compile("matches(meta.proposer, '^node-[0-9]+$') && "
                                    "src.owner in ['alice', 'bob'] && len(src.owner + 'x') == 6",
                                    &e, &err),
                   0);
  assert_int_equal(smc_regex_compile("^node-[0-9]+$", NULL, &re, &err), 0);
  pthread_t th[4];
  thread_arg_t args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (thread_arg_t){e, re, 0};
    assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(args[i].failures, 0);
  }
  smc_expr_destroy(e);
  smc_regex_destroy(re);
}

static void test_nesting_limits(void **state) {
  (void)state;
  smc_expr_t *e = NULL;
  smc_error_t err;
  char *buf = malloc(8192);
  /* 100 nested parentheses: rejected, no stack overflow */
  size_t n = 0;
  for (int i = 0; i < 100; i++)
    buf[n++] = '(';
  buf[n++] = '1';
  for (int i = 0; i < 100; i++)
    buf[n++] = ')';
  buf[n] = '\0';
  smc_error_clear(&err);
  assert_int_equal(smc_expr_compile(buf, &e, &err), SMC_EBAD_EXPRESSION);
  assert_non_null(strstr(err.message, "nested"));
  /* 30 nested parentheses are fine */
  n = 0;
  for (int i = 0; i < 30; i++)
    buf[n++] = '(';
  buf[n++] = '1';
  for (int i = 0; i < 30; i++)
    buf[n++] = ')';
  buf[n] = '\0';
  assert_int_equal(smc_expr_compile(buf, &e, &err), 0);
  smc_expr_destroy(e);
  /* deep unary chains, lists and calls */
  const char *units[] = {"!", "-", "[", "len("};
  for (int u = 0; u < 4; u++) {
    n = 0;
    for (int i = 0; i < 1000 && n + 8 < 4000; i++)
      n += (size_t)sprintf(buf + n, "%s", units[u]);
    buf[n++] = '1';
    buf[n] = '\0';
    smc_error_clear(&err);
    assert_int_equal(smc_expr_compile(buf, &e, &err), SMC_EBAD_EXPRESSION);
  }
  /* a long flat chain: the tree height limit */
  n = 0;
  n += (size_t)sprintf(buf + n, "1");
  for (int i = 0; i < 1000; i++)
    n += (size_t)sprintf(buf + n, "+1");
  smc_error_clear(&err);
  assert_int_equal(smc_expr_compile(buf, &e, &err), SMC_EBAD_EXPRESSION);
  /* a long member chain too */
  n = (size_t)sprintf(buf, "src");
  for (int i = 0; i < 500; i++)
    n += (size_t)sprintf(buf + n, ".a");
  smc_error_clear(&err);
  assert_int_equal(smc_expr_compile(buf, &e, &err), SMC_EBAD_EXPRESSION);
  /* but 50 terms are fine and evaluate */
  n = (size_t)sprintf(buf, "1");
  for (int i = 0; i < 49; i++)
    n += (size_t)sprintf(buf + n, " + 1");
  json_t *out = NULL;
  assert_int_equal(compile_eval(buf, 1000, &out, &err, NULL), 0);
  assert_int_equal(json_integer_value(out), 50);
  json_decref(out);
  /* source longer than the bound */
  memset(buf, ' ', SMC_EXPR_MAX_SOURCE + 10);
  buf[0] = '1';
  buf[SMC_EXPR_MAX_SOURCE + 10] = '\0';
  smc_error_clear(&err);
  assert_int_equal(smc_expr_compile(buf, &e, &err), SMC_EBAD_EXPRESSION);
  assert_int_equal(err.column, SMC_EXPR_MAX_SOURCE + 1);
  free(buf);
}

static void test_eval_bool(void **state) {
  (void)state;
  smc_expr_t *e = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  smc_eval_ctx_t ctx;
  int res = -1;
  assert_int_equal(smc_expr_compile("src.count + 1 == dst.count", &e, &err), 0);
  assert_string_equal(smc_expr_source(e), "src.count + 1 == dst.count");
  ctx_init(&ctx, 100);
  assert_int_equal(smc_expr_eval_bool(e, &ctx, &res, &err), 0);
  assert_int_equal(res, 1);
  smc_expr_destroy(e);
  assert_int_equal(smc_expr_compile("src.count", &e, &err), 0);
  ctx_init(&ctx, 100);
  assert_int_equal(smc_expr_eval_bool(e, &ctx, &res, &err), SMC_EVALIDATION_FAILED);
  assert_non_null(strstr(err.message, "integer"));
  smc_expr_destroy(e);
}

/* Context strings are C strings the caller vouches for; a result built from
 * invalid UTF-8 is refused with a clear error, comparisons still work. */
static void test_invalid_utf8_context(void **state) {
  (void)state;
  smc_expr_t *e = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  smc_eval_ctx_t ctx;
  json_t *out = NULL;
  assert_int_equal(smc_expr_compile("'id:' + meta.object", &e, &err), 0);
  ctx_init(&ctx, 100);
  ctx.object = "bad\xff";
  assert_int_equal(smc_expr_eval(e, &ctx, &out, &err), SMC_EVALIDATION_FAILED);
  assert_null(out);
  assert_non_null(strstr(err.message, "UTF-8"));
  smc_expr_destroy(e);
  assert_int_equal(smc_expr_compile("meta.object == 'bad' || len(meta.object) == 4", &e, &err), 0);
  ctx_init(&ctx, 100);
  ctx.object = "bad\xff";
  int res = 0;
  smc_error_clear(&err);
  assert_int_equal(smc_expr_eval_bool(e, &ctx, &res, &err), 0);
  assert_true(res);
  smc_expr_destroy(e);
}

/* A context with everything NULL: roots are null, vars is {}. */
static void test_empty_context(void **state) {
  (void)state;
  static const row_t empty_rows[] = {
      OK("src", "null"),
      OK("src.a", "null"),
      OK("has(src)", "false"),
      OK("has(src.a)", "false"),
      OK("vars", "{}"),
      OK("keys(vars)", "[]"),
      OK("len(vars)", "0"),
      OK("x", "null"),
      OK("has(x)", "false"),
      OK("meta.state", "null"),
      OK("has(meta.state)", "false"),
      OK("meta.version", "0"),
      OK("value", "null"),
      OK("'k' in vars", "false"),
  };
  for (size_t i = 0; i < sizeof(empty_rows) / sizeof(empty_rows[0]); i++) {
    smc_expr_t *e = NULL;
    smc_error_t err;
    smc_error_clear(&err);
    assert_int_equal(smc_expr_compile(empty_rows[i].expr, &e, &err), 0);
    smc_eval_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.steps_left = 100;
    json_t *out = NULL;
    int rc = smc_expr_eval(e, &ctx, &out, &err);
    if (rc)
      print_error("%s: %s\n", empty_rows[i].expr, err.message);
    assert_int_equal(rc, 0);
    json_t *want = load(empty_rows[i].expect);
    if (!json_equal(out, want))
      print_error("%s: unexpected result\n", empty_rows[i].expr);
    assert_true(json_equal(out, want));
    json_decref(want);
    json_decref(out);
    smc_expr_destroy(e);
  }
}

static void test_json_equal(void **state) {
  (void)state;
  json_t *a = load("{\"x\": [1, 2.0, {\"y\": null}], \"z\": \"s\"}");
  json_t *b = load("{\"z\": \"s\", \"x\": [1.0, 2, {\"y\": null}]}");
  json_t *c = load("{\"z\": \"s\", \"x\": [1.0, 2, {\"y\": false}]}");
  json_t *d = load("{\"z\": \"s\"}");
  assert_true(smc_json_equal(a, b));
  assert_false(smc_json_equal(a, c));
  assert_false(smc_json_equal(a, d));
  assert_false(smc_json_equal(d, a));
  json_t *nul = json_null();
  assert_true(smc_json_equal(NULL, nul));
  assert_true(smc_json_equal(nul, NULL));
  assert_true(smc_json_equal(NULL, NULL));
  assert_false(smc_json_equal(NULL, a));
  json_t *s1 = json_stringn("a\0b", 3), *s2 = json_stringn("a\0c", 3);
  assert_false(smc_json_equal(s1, s2));
  json_t *i1 = json_integer(1), *r1 = json_real(1.0), *t = json_true();
  assert_true(smc_json_equal(i1, r1));
  assert_false(smc_json_equal(i1, t));
  json_decref(a), json_decref(b), json_decref(c), json_decref(d);
  json_decref(s1), json_decref(s2), json_decref(i1), json_decref(r1), json_decref(t);
  json_decref(nul);
}

/* ---- templates ---- */

typedef struct {
  const char *tpl;
  const char *expect;
  int code;
  int column;
  int constant;
} trow_t;

static const trow_t trows[] = {
    {"hello", "\"hello\"", 0, 0, 1},
    {"", "\"\"", 0, 0, 1},
    {"${input.count}", "4", 0, 0, 0},
    {"${src.items}", "[1, 2, 3]", 0, 0, 0},
    {"${src.missing}", "null", 0, 0, 0},
    {"x${src.missing}", "\"xnull\"", 0, 0, 0},
    {"n=${src.count}!", "\"n=3!\"", 0, 0, 0},
    {"${name}-${limit}", "\"bob-10\"", 0, 0, 0},
    {"${ src.count + 1 }", "4", 0, 0, 0},
    {"$${x}", "\"${x}\"", 0, 0, 1},
    {"cost $$5", "\"cost $5\"", 0, 0, 1},
    {"price $5 $", "\"price $5 $\"", 0, 0, 1},
    {"a ${'}'} b", "\"a } b\"", 0, 0, 0},
    {"${meta.object}/${meta.version}", "\"obj-1/7\"", 0, 0, 0},
    {"${src.owner == input.owner}", "true", 0, 0, 0},
    {"h\xc3\xa9 ${upper(name)}", "\"h\\u00e9 BOB\"", 0, 0, 0},
    {"${src.tags}!", "\"{\\\"a\\\":3,\\\"b\\\":2,\\\"x\\\":1}!\"", 0, 0, 0},
    {"$${${limit}}", "\"${10}\"", 0, 0, 0},
    {"${", NULL, SMC_EBAD_EXPRESSION, 3, 0},
    {"${}", NULL, SMC_EBAD_EXPRESSION, 3, 0},
    {"abc ${1 +}", NULL, SMC_EBAD_EXPRESSION, 10, 0},
    {"${foo(1)}", NULL, SMC_EBAD_EXPRESSION, 3, 0},
    {"ok ${src.count", NULL, SMC_EBAD_EXPRESSION, 15, 0},
    {"${1} ${'a' - 1}", NULL, SMC_EVALIDATION_FAILED, 12, 0},
    {"${'a' - 1}", NULL, SMC_EVALIDATION_FAILED, 7, 0},
    {"bad \xff", NULL, SMC_EBAD_EXPRESSION, 5, 0},
};

static void test_template_row(void **state) {
  const trow_t *r = *state;
  smc_template_t *t = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  int rc = smc_template_compile(r->tpl, &t, &err);
  json_t *out = NULL;
  if (rc == 0) {
    assert_int_equal(smc_template_is_constant(t), r->constant);
    assert_string_equal(smc_template_source(t), r->tpl);
    smc_eval_ctx_t ctx;
    ctx_init(&ctx, 1000);
    rc = smc_template_eval(t, &ctx, &out, &err);
    smc_template_destroy(t);
  }
  if (rc != r->code)
    print_error("template '%s': rc %s (%s), want %s\n", r->tpl, smc_code_name(rc), err.message,
                smc_code_name(r->code));
  assert_int_equal(rc, r->code);
  if (rc) {
    assert_null(out);
    if (r->column != err.column)
      print_error("template '%s': column %d, want %d\n", r->tpl, err.column, r->column);
    assert_int_equal(err.column, r->column);
    return;
  }
  json_t *want = load(r->expect);
  if (!json_equal(out, want)) {
    char *got = json_dumps(out, JSON_ENCODE_ANY);
    print_error("template '%s': got %s, want %s\n", r->tpl, got, r->expect);
    free(got);
  }
  assert_true(json_equal(out, want));
  json_decref(want);
  json_decref(out);
}

static void test_template_budget(void **state) {
  (void)state;
  smc_template_t *t = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_template_compile("a ${1 + 2 + 3 + 4} b ${limit}", &t, &err), 0);
  smc_eval_ctx_t ctx;
  ctx_init(&ctx, 4);
  json_t *out = NULL;
  assert_int_equal(smc_template_eval(t, &ctx, &out, &err), SMC_ELIMIT_EXCEEDED);
  assert_null(out);
  smc_error_clear(&err);
  ctx_init(&ctx, 100);
  assert_int_equal(smc_template_eval(t, &ctx, &out, &err), 0);
  assert_string_equal(json_string_value(out), "a 10 b 10");
  json_decref(out);
  smc_template_destroy(t);
  /* a template longer than the bound */
  char *big = malloc(SMC_TEMPLATE_MAX_SOURCE + 2);
  memset(big, 'a', SMC_TEMPLATE_MAX_SOURCE + 1);
  big[SMC_TEMPLATE_MAX_SOURCE + 1] = '\0';
  smc_error_clear(&err);
  assert_int_equal(smc_template_compile(big, &t, &err), SMC_EBAD_EXPRESSION);
  free(big);
}

/* The result of an expression outlives the context data it came from. */
static void test_result_ownership(void **state) {
  (void)state;
  json_t *vars = load("{\"o\": {\"k\": [\"v\"]}}");
  smc_expr_t *e = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  const char *srcs[] = {"o.k",         "o",       "[o.k, 1][0]",        "substr(o.k[0], 0)",
                        "[o][0].k[0]", "keys(o)", "concat(o.k, o.k)[1]"};
  for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
    assert_int_equal(smc_expr_compile(srcs[i], &e, &err), 0);
    smc_eval_ctx_t ctx;
    ctx_init(&ctx, 100);
    ctx.vars = vars;
    json_t *out = NULL;
    assert_int_equal(smc_expr_eval(e, &ctx, &out, &err), 0);
    smc_expr_destroy(e);
    char *s = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
    assert_non_null(s);
    free(s);
    json_decref(out);
  }
  json_decref(vars);
}

int main(void) {
  size_t nrows = sizeof(rows) / sizeof(rows[0]);
  size_t ntrows = sizeof(trows) / sizeof(trows[0]);
  static const struct CMUnitTest fixed[] = {
      cmocka_unit_test(test_budget_exact),
      cmocka_unit_test(test_budget_expensive_concat),
      cmocka_unit_test(test_string_size_cap),
      cmocka_unit_test(test_budget_big_list_membership),
      cmocka_unit_test(test_budget_container_equality),
      cmocka_unit_test(test_regex_catastrophic),
      cmocka_unit_test(test_regex_api),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_nesting_limits),
      cmocka_unit_test(test_eval_bool),
      cmocka_unit_test(test_empty_context),
      cmocka_unit_test(test_invalid_utf8_context),
      cmocka_unit_test(test_json_equal),
      cmocka_unit_test(test_template_budget),
      cmocka_unit_test(test_result_ownership),
  };
  size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
  size_t total = nrows + ntrows + nfixed;
  struct CMUnitTest *tests = calloc(total, sizeof(*tests));
  char **names = calloc(nrows + ntrows, sizeof(*names));
  size_t k = 0;
  for (size_t i = 0; i < nrows; i++, k++) {
    names[k] = malloc(strlen(rows[i].expr) + 8);
    sprintf(names[k], "expr: %s", rows[i].expr);
    tests[k] = (struct CMUnitTest){names[k], test_row, NULL, NULL, (void *)&rows[i]};
  }
  for (size_t i = 0; i < ntrows; i++, k++) {
    names[k] = malloc(strlen(trows[i].tpl) + 12);
    sprintf(names[k], "template: %s", trows[i].tpl);
    tests[k] = (struct CMUnitTest){names[k], test_template_row, NULL, NULL, (void *)&trows[i]};
  }
  for (size_t i = 0; i < nfixed; i++)
    tests[k++] = fixed[i];
  int failed = _cmocka_run_group_tests("expr", tests, total, group_setup, group_teardown);
  for (size_t i = 0; i < nrows + ntrows; i++)
    free(names[i]);
  free(names);
  free(tests);
  return failed;
}
