/*
 * The voter's text helpers (src/node/voter.h): reading members of the fold's
 * canonical JSON without jansson, and writing the vote event. Each is checked
 * against jansson on fixed cases and on random documents.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/codec.h"
#include "core/util.h"
#include "node/voter.h"

/* The member's raw text as a C string, or NULL when not found (r != 1). */
static char *member(const char *json, const char *name, int *r) {
  const char *v;
  size_t n;
  *r = smc_voter_json_member(json, strlen(json), name, &v, &n);
  return *r == 1 ? strndup(v, n) : NULL;
}

static void test_member_top_level_only(void **state) {
  (void)state;
  const char *j = "{\"data\":{\"proposal\":\"inner\",\"x\":[1,{\"proposal\":\"deep\"}]},"
                  "\"note\":\"a \\\"proposal\\\":\\\"fake\\\" } ] {\",\"proposal\":\"p-1\","
                  "\"voters\":[\"a\",\"b\"],\"n\":-12.5e3,\"t\":true,\"z\":null}";
  int r;
  char *v = member(j, "proposal", &r);
  assert_int_equal(r, 1);
  assert_string_equal(v, "\"p-1\"");
  free(v);
  v = member(j, "voters", &r);
  assert_string_equal(v, "[\"a\",\"b\"]");
  free(v);
  v = member(j, "n", &r);
  assert_string_equal(v, "-12.5e3");
  free(v);
  v = member(j, "z", &r);
  assert_string_equal(v, "null");
  free(v);
  v = member(j, "data", &r);
  assert_string_equal(v, "{\"proposal\":\"inner\",\"x\":[1,{\"proposal\":\"deep\"}]}");
  free(v);
  assert_null(member(j, "x", &r));
  assert_int_equal(r, 0);
  assert_null(member(j, "prop", &r));
  assert_int_equal(r, 0);
  assert_null(member("{}", "a", &r));
  assert_int_equal(r, 0);
  v = member(" { \"a\" : 1 , \"b\" : \"c\" } ", "b", &r);
  assert_string_equal(v, "\"c\"");
  free(v);
}

static void test_member_malformed(void **state) {
  (void)state;
  static const char *const bad[] = {"",
                                    "[]",
                                    "\"a\"",
                                    "{",
                                    "{\"a\"",
                                    "{\"a\":",
                                    "{\"a\":\"x",
                                    "{\"a\":1",
                                    "{\"a\":1,",
                                    "{a:1}",
                                    "{\"a\":{\"b\":1}",
                                    "{\"a\" 1}",
                                    "{\"a\":1 \"b\":2}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int r;
    assert_null(member(bad[i], "b", &r));
    assert_int_equal(r, -1);
  }
}

static void test_plain_string(void **state) {
  (void)state;
  const char *s;
  size_t n;
  assert_int_equal(smc_voter_json_plain_string("\"abc\"", 5, &s, &n), 1);
  assert_int_equal(n, 3);
  assert_memory_equal(s, "abc", 3);
  assert_int_equal(smc_voter_json_plain_string("\"\"", 2, &s, &n), 1);
  assert_int_equal(n, 0);
  assert_int_equal(smc_voter_json_plain_string("\"a\\\"b\"", 6, &s, &n), 0);
  assert_int_equal(smc_voter_json_plain_string("12", 2, &s, &n), 0);
  assert_int_equal(smc_voter_json_plain_string("\"", 1, &s, &n), 0);
}

static int has(const char *arr, const char *voter) {
  smc_buf_t b;
  smc_buf_init(&b);
  smc_buf_add_jstr(&b, voter);
  int r = smc_voter_json_array_has(arr, strlen(arr), b.p, b.len);
  smc_buf_close(&b);
  return r;
}

static void test_array_has(void **state) {
  (void)state;
  assert_int_equal(has("[\"node-1\",\"node-2\"]", "node-2"), 1);
  assert_int_equal(has("[\"node-1\",\"node-2\"]", "node-3"), 0);
  assert_int_equal(has("[\"node-1\",\"node-2\"]", "node"), 0);
  assert_int_equal(has("[]", "node-1"), 0);
  assert_int_equal(has("[\"a\\\"b\"]", "a\"b"), 1);
  /* An element with escapes that is not this voter's text: undecided. */
  assert_int_equal(has("[\"a\\u0062\"]", "ab"), -1);
  assert_int_equal(has("[\"x\",1]", "y"), -1);
  assert_int_equal(has("{\"a\":1}", "a"), -1);
  assert_int_equal(has("[\"a\"", "b"), -1);
}

/* The vote through jansson, as the voter wrote it before. */
static char *vote_jansson(const char *proposal, const char *object, const char *voter, int accept,
                          const char *reason, const char *sig) {
  json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:b}", "type", "vote", "proposal", proposal, "object",
                        object, "voter", voter, "accept", accept);
  assert_non_null(v);
  if (reason)
    json_object_set_new(v, "reason", json_string(reason));
  if (sig)
    json_object_set_new(v, "signature", json_string(sig));
  char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(v);
  return s;
}

static void check_vote(const char *proposal, const char *object, const char *voter, int accept,
                       const char *reason, const char *sig) {
  smc_buf_t b;
  smc_buf_init(&b);
  smc_voter_vote_json(&b, proposal, object, voter, accept, reason, sig);
  assert_false(b.oom);
  char *want = vote_jansson(proposal, object, voter, accept, reason, sig);
  assert_string_equal(b.p, want);
  free(want);
  smc_buf_close(&b);
}

static void test_vote_json_matches_jansson(void **state) {
  (void)state;
  check_vote("p-1", "orders-db", "node-1", 1, NULL, NULL);
  check_vote("p-1", "orders-db", "node-1", 0, "too \"much\"\n\tsaid \\ the hook", NULL);
  check_vote("e1ac7e63", "o/\x01\x1f\x7f", "org-a", 1, "ok", "c2lnbmF0dXJl+/==");
  check_vote("\xc3\xa9t\xc3\xa9", "\xe2\x82\xac 100", "v", 0, "\xf0\x9f\x91\x8d", "s");
  check_vote("", "o", "v", 1, "", NULL);
}

/* Random strings over an alphabet heavy in characters JSON escapes. */
static char *rand_str(unsigned *seed) {
  static const char *const parts[] = {
      "a", "Z", "9", "-", "_", "\"", "\\", "/",        "\n",           "\t",       "\x01",  "\x1f",
      " ", "{", "}", "[", "]", ",",  ":",  "\xc3\xa9", "\xe2\x82\xac", "proposal", "voters"};
  size_t n = (size_t)(rand_r(seed) % 12);
  char *s = calloc(1, n * 8 + 1);
  for (size_t i = 0; i < n; i++)
    strcat(s, parts[rand_r(seed) % (sizeof parts / sizeof *parts)]);
  return s;
}

/* Random vote requests in canonical text: every member read without jansson
 * equals jansson's, the voter lists agree, and so do the written votes. */
static void test_random_documents(void **state) {
  (void)state;
  unsigned seed = 20261128;
  for (int round = 0; round < 3000; round++) {
    char *proposal = rand_str(&seed), *object = rand_str(&seed), *me = rand_str(&seed);
    json_t *voters = json_array();
    int listed = 0;
    for (int i = rand_r(&seed) % 4; i > 0; i--) {
      char *x = rand_str(&seed);
      listed |= !strcmp(x, me);
      json_array_append_new(voters, json_string(x));
      free(x);
    }
    if (rand_r(&seed) % 2) {
      json_array_insert_new(voters, (size_t)rand_r(&seed) % (json_array_size(voters) + 1),
                            json_string(me));
      listed = 1;
    }
    json_t *data = json_pack("{s:s,s:[s,i],s:{s:s}}", "proposal", object, "voters", proposal, 7,
                             "x", "voters", me);
    json_t *req =
        json_pack("{s:s,s:s,s:s,s:o,s:o,s:i,s:n}", "type", "vote_request", "proposal", proposal,
                  "object", object, "voters", voters, "data", data, "quorum", 2, "deadline");
    assert_non_null(req);
    char *text = smc_json_canonical(req);
    size_t len = strlen(text);
    const char *val, *s;
    size_t vl, n;
    assert_int_equal(smc_voter_json_member(text, len, "proposal", &val, &vl), 1);
    if (smc_voter_json_plain_string(val, vl, &s, &n)) {
      assert_int_equal(n, strlen(proposal));
      assert_memory_equal(s, proposal, n);
    } else {
      assert_non_null(memchr(val, '\\', vl));
    }
    assert_int_equal(smc_voter_json_member(text, len, "voters", &val, &vl), 1);
    char *vtext = smc_json_canonical(voters);
    assert_int_equal(vl, strlen(vtext));
    assert_memory_equal(val, vtext, vl);
    free(vtext);
    smc_buf_t b;
    smc_buf_init(&b);
    smc_buf_add_jstr(&b, me);
    int r = smc_voter_json_array_has(val, vl, b.p, b.len);
    smc_buf_close(&b);
    if (r >= 0)
      assert_int_equal(r, listed);
    else
      assert_false(listed);
    assert_int_equal(smc_voter_json_member(text, len, "nothing", &val, &vl), 0);
    check_vote(proposal, object, me, round % 2, round % 3 ? NULL : object,
               round % 5 ? NULL : proposal);
    free(text);
    json_decref(req);
    free(proposal);
    free(object);
    free(me);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_member_top_level_only),
      cmocka_unit_test(test_member_malformed),
      cmocka_unit_test(test_plain_string),
      cmocka_unit_test(test_array_has),
      cmocka_unit_test(test_vote_json_matches_jansson),
      cmocka_unit_test(test_random_documents),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
