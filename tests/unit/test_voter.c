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

/* The member's raw text as a C string, or NULL when not found (r != 1). */
static char *vote_jansson(const char *proposal, const char *object, const char *voter, int accept,
                          const char *machine, const char *reason, const char *sig) {
  json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:b}", "type", "vote", "proposal", proposal, "object",
                        object, "voter", voter, "accept", accept);
  assert_non_null(v);
  if (machine)
    json_object_set_new(v, "machine", json_string(machine));
  if (reason)
    json_object_set_new(v, "reason", json_string(reason));
  if (sig)
    json_object_set_new(v, "signature", json_string(sig));
  char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(v);
  return s;
}

static void check_vote_in(const char *proposal, const char *object, const char *voter, int accept,
                          const char *machine, const char *reason, const char *sig) {
  smc_buf_t b;
  smc_buf_init(&b);
  smc_codec_vote_json(&b, proposal, object, voter, accept, machine, reason, sig);
  assert_false(b.oom);
  char *want = vote_jansson(proposal, object, voter, accept, machine, reason, sig);
  assert_string_equal(b.p, want);
  free(want);
  smc_buf_close(&b);
}

/* The same without a machine (the voter's votes). */
static void check_vote(const char *proposal, const char *object, const char *voter, int accept,
                       const char *reason, const char *sig) {
  check_vote_in(proposal, object, voter, accept, NULL, reason, sig);
}

static void test_vote_json_matches_jansson(void **state) {
  (void)state;
  check_vote("p-1", "orders-db", "node-1", 1, NULL, NULL);
  check_vote("p-1", "orders-db", "node-1", 0, "too \"much\"\n\tsaid \\ the hook", NULL);
  check_vote("e1ac7e63", "o/\x01\x1f\x7f", "org-a", 1, "ok", "c2lnbmF0dXJl+/==");
  check_vote("\xc3\xa9t\xc3\xa9", "\xe2\x82\xac 100", "v", 0, "\xf0\x9f\x91\x8d", "s");
  check_vote("", "o", "v", 1, "", NULL);
  /* with a machine (the client's votes: a gateway path names one) */
  check_vote_in("p-1", "orders-db", "node-1", 1, "lock", NULL, NULL);
  check_vote_in("p", "o", "v", 0, "m\"\xc3\xa9", "r", "s");
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

/* Random ids with quotes, escapes, control characters and UTF-8: the
 * written votes equal jansson's. */
static void test_random_votes(void **state) {
  (void)state;
  unsigned seed = 20261128;
  for (int round = 0; round < 3000; round++) {
    char *proposal = rand_str(&seed), *object = rand_str(&seed), *me = rand_str(&seed);
    check_vote_in(proposal, object, me, round % 2, round % 7 ? NULL : me, round % 3 ? NULL : object,
                  round % 5 ? NULL : proposal);
    free(proposal);
    free(object);
    free(me);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vote_json_matches_jansson),
      cmocka_unit_test(test_random_votes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
