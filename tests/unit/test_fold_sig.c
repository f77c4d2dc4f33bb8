/*
 * Fold scenarios with Ed25519-signed votes (src/core/fold_decide.c and
 * vote_sig.c): a machine whose voters a and b have keys and c has none.
 * Signed votes count and reach the quorum; unsigned, forged, foreign-key and
 * re-targeted signatures are not counted and are logged as bad_signature;
 * a wrongly typed signature is a bad request; replaying the same records
 * gives identical outputs and logs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "core/kv.h"
#include "core/util.h"
#include "core/vote_sig.h"
#include "smc/fold.h"

/* ---- a small fold harness over the in-memory overlay ---- */

typedef struct h {
  smc_fold_t *f;
  smc_overlay_t *ov;
  smc_kv_t kv;
  int64_t off;
  json_t *outs; /* every output, with "kind" added */
  size_t seen;
  char logs[16384];
} h_t;

static void logger(void *opaque, const smc_fold_log_t *l) {
  h_t *h = opaque;
  size_t n = strlen(h->logs);
  snprintf(h->logs + n, sizeof(h->logs) - n, "%s\n", l->msg);
}

static int emit(void *opaque, const smc_output_t *out) {
  h_t *h = opaque;
  json_t *j = json_loadb(out->json, out->json_len, 0, NULL);
  assert_non_null(j);
  static const char *kinds[] = {"", "confirmation", "reply", "vote_request"};
  json_object_set_new(j, "kind", json_string(kinds[out->kind]));
  json_array_append_new(h->outs, j);
  return 0;
}

static void h_init(h_t *h) {
  memset(h, 0, sizeof(*h));
  smc_fold_config_t cfg;
  smc_fold_config_default(&cfg);
  cfg.partitions = 1;
  assert_int_equal(smc_fold_new(&cfg, &h->f), 0);
  smc_fold_set_logger(h->f, logger, h);
  h->ov = smc_overlay_new(NULL);
  h->kv = smc_overlay_kv(h->ov);
  h->outs = json_array();
}

static void h_close(h_t *h) {
  smc_fold_destroy(h->f);
  smc_overlay_destroy(h->ov);
  json_decref(h->outs);
}

static void feed(h_t *h, int64_t t, const char *key, const char *json) {
  smc_record_t r = {0, h->off++, t, key, strlen(key), json, strlen(json), NULL, NULL};
  assert_int_equal(smc_fold_apply(h->f, &h->kv, &r, emit, h), 0);
}

static json_t *take(h_t *h) {
  if (h->seen >= json_array_size(h->outs))
    fail_msg("expected another output (got %zu); logs:\n%s", h->seen, h->logs);
  return json_array_get(h->outs, h->seen++);
}

static void no_more(h_t *h) {
  if (h->seen != json_array_size(h->outs)) {
    char *s = json_dumps(json_array_get(h->outs, h->seen), 0);
    fail_msg("unexpected output: %s", s);
  }
}

static const char *S(json_t *j, const char *k) { return json_string_value(json_object_get(j, k)); }

/* ---- keys and signed votes ---- */

static EVP_PKEY *key_a, *key_b, *key_x; /* x: nobody's key */
static char machine_yaml[2048];

static int setup(void **state) {
  (void)state;
  key_a = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  key_b = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  key_x = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  char pa[45], pb[45];
  if (!key_a || !key_b || !key_x || smc_vote_sig_public_b64(key_a, pa, NULL) ||
      smc_vote_sig_public_b64(key_b, pb, NULL))
    return -1;
  snprintf(machine_yaml, sizeof(machine_yaml),
           "name: signed\n"
           "states:\n"
           "  draft: {}\n"
           "  approved: {}\n"
           "transitions:\n"
           "  create: {from: null, to: draft}\n"
           "  approve:\n"
           "    from: draft\n"
           "    to: approved\n"
           "    votes:\n"
           "      quorum: 2\n"
           "      voters: [a, b, c]\n"
           "      keys: {a: '%s', b: '%s'}\n",
           pa, pb);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  EVP_PKEY_free(key_a);
  EVP_PKEY_free(key_b);
  EVP_PKEY_free(key_x);
  return 0;
}

static void start(h_t *h) {
  h_init(h);
  json_t *e =
      json_pack("{s:s,s:s,s:s}", "type", "machine", "name", "signed", "definition", machine_yaml);
  char *s = json_dumps(e, JSON_COMPACT);
  feed(h, 0, "signed", s);
  free(s);
  json_decref(e);
  feed(h, 10, "doc",
       "{\"type\":\"proposal\",\"id\":\"c1\",\"machine\":\"signed\",\"object\":\"doc\","
       "\"transition\":\"create\"}");
  json_t *c = take(h);
  assert_string_equal(S(c, "outcome"), "committed");
  feed(h, 20, "doc",
       "{\"type\":\"proposal\",\"id\":\"ap\",\"object\":\"doc\",\"transition\":\"approve\"}");
  assert_string_equal(S(take(h), "kind"), "vote_request");
  no_more(h);
}

/* Feed a vote; sign_with NULL = unsigned; sig overrides the signature. */
static void vote(h_t *h, int64_t t, const char *voter, int accept, EVP_PKEY *sign_with,
                 const char *sig) {
  char s[SMC_VOTE_SIG_B64_LEN + 1];
  json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:b}", "type", "vote", "object", "doc", "proposal", "ap",
                        "voter", voter, "accept", accept);
  if (sign_with) {
    assert_int_equal(smc_vote_sig_sign(sign_with, "doc", "ap", voter, accept, s, NULL), 0);
    json_object_set_new(v, "signature", json_string(s));
  }
  if (sig)
    json_object_set_new(v, "signature", json_string(sig));
  char *text = json_dumps(v, JSON_COMPACT);
  feed(h, t, "doc", text);
  free(text);
  json_decref(v);
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

static void signed_votes_reach_quorum(void **state) {
  (void)state;
  h_t h;
  start(&h);
  vote(&h, 100, "a", 1, key_a, NULL);
  no_more(&h);
  vote(&h, 110, "b", 1, key_b, NULL);
  json_t *c = take(&h);
  assert_string_equal(S(c, "outcome"), "committed");
  assert_string_equal(S(c, "state"), "approved");
  assert_string_equal(S(c, "proposal"), "ap");
  no_more(&h);
  assert_int_equal(count(h.logs, "bad_signature"), 0);
  h_close(&h);
}

static void unsigned_voter_without_key_counts(void **state) {
  (void)state;
  h_t h;
  start(&h);
  vote(&h, 100, "c", 1, NULL, NULL); /* c has no key: unsigned as before */
  vote(&h, 110, "a", 1, key_a, NULL);
  assert_string_equal(S(take(&h), "outcome"), "committed");
  no_more(&h);
  h_close(&h);
}

static void unsigned_not_counted(void **state) {
  (void)state;
  h_t h;
  start(&h);
  vote(&h, 100, "a", 1, NULL, NULL);
  vote(&h, 110, "b", 1, NULL, NULL);
  no_more(&h); /* two unsigned accepts would have been a quorum */
  assert_int_equal(count(h.logs, "bad_signature"), 2);
  assert_non_null(strstr(h.logs, "unsigned"));
  /* the unsigned vote was not recorded: a's real vote still counts */
  vote(&h, 120, "a", 1, key_a, NULL);
  no_more(&h);
  vote(&h, 130, "b", 1, key_b, NULL);
  assert_string_equal(S(take(&h), "outcome"), "committed");
  no_more(&h);
  h_close(&h);
}

static void forged_not_counted(void **state) {
  (void)state;
  h_t h;
  start(&h);
  /* signed by a key that is not a's */
  vote(&h, 100, "a", 1, key_x, NULL);
  /* b's key used to sign as a */
  vote(&h, 101, "a", 1, key_b, NULL);
  /* a valid signature of b's, claimed by a */
  char s[SMC_VOTE_SIG_B64_LEN + 1];
  assert_int_equal(smc_vote_sig_sign(key_b, "doc", "ap", "b", 1, s, NULL), 0);
  vote(&h, 102, "a", 1, NULL, s);
  /* a's reject signature turned into an accept */
  assert_int_equal(smc_vote_sig_sign(key_a, "doc", "ap", "a", 0, s, NULL), 0);
  vote(&h, 103, "a", 1, NULL, s);
  /* a's signature for another proposal */
  assert_int_equal(smc_vote_sig_sign(key_a, "doc", "other", "a", 1, s, NULL), 0);
  vote(&h, 104, "a", 1, NULL, s);
  /* not base64 */
  vote(&h, 105, "a", 1, NULL, "!!!");
  vote(&h, 106, "c", 1, NULL, NULL); /* one real accept */
  no_more(&h);
  assert_int_equal(count(h.logs, "bad_signature"), 6);
  assert_int_equal(count(h.logs, "does not verify"), 5);
  /* a non-string signature is a bad request, dropped before the fold */
  feed(&h, 107, "doc",
       "{\"type\":\"vote\",\"object\":\"doc\",\"proposal\":\"ap\",\"voter\":\"a\","
       "\"accept\":true,\"signature\":42}");
  no_more(&h);
  assert_non_null(strstr(h.logs, "signature"));
  assert_non_null(strstr(h.logs, "bad_request"));
  /* a's own signed vote still counts */
  vote(&h, 120, "a", 1, key_a, NULL);
  assert_string_equal(S(take(&h), "outcome"), "committed");
  no_more(&h);
  h_close(&h);
}

static void signed_reject(void **state) {
  (void)state;
  h_t h;
  start(&h);
  vote(&h, 100, "a", 0, key_a, NULL);
  vote(&h, 110, "b", 0, NULL, NULL); /* not counted: the proposal stays open */
  no_more(&h);
  vote(&h, 120, "b", 0, key_b, NULL);
  json_t *c = take(&h);
  assert_string_equal(S(c, "outcome"), "rejected");
  assert_string_equal(S(json_object_get(c, "error"), "code"), "vote_rejected");
  no_more(&h);
  h_close(&h);
}

/* The same records through a fresh fold: identical outputs and logs. */
static void replay_identical(void **state) {
  (void)state;
  h_t run[2];
  char forged[SMC_VOTE_SIG_B64_LEN + 1];
  assert_int_equal(smc_vote_sig_sign(key_x, "doc", "ap", "b", 1, forged, NULL), 0);
  for (int i = 0; i < 2; i++) {
    start(&run[i]);
    /* the same bytes each run: signatures are deterministic, but pass them
     * explicitly anyway */
    vote(&run[i], 100, "a", 1, NULL, NULL);
    vote(&run[i], 110, "b", 1, NULL, forged);
    vote(&run[i], 120, "a", 1, key_a, NULL);
    vote(&run[i], 130, "b", 1, key_b, NULL);
  }
  char *o0 = json_dumps(run[0].outs, JSON_SORT_KEYS | JSON_COMPACT);
  char *o1 = json_dumps(run[1].outs, JSON_SORT_KEYS | JSON_COMPACT);
  assert_string_equal(o0, o1);
  assert_string_equal(run[0].logs, run[1].logs);
  assert_int_equal(count(run[0].logs, "bad_signature"), 2);
  json_t *last = json_array_get(run[0].outs, json_array_size(run[0].outs) - 1);
  assert_string_equal(S(last, "outcome"), "committed");
  free(o0);
  free(o1);
  h_close(&run[0]);
  h_close(&run[1]);
}

/* A signed vote's reason is covered by its signature: the signed reason
 * counts, the same signature with the reason changed or removed does not. */
static void reason_signed(void **state) {
  (void)state;
  h_t h;
  start(&h);
  char s[SMC_VOTE_SIG_B64_LEN + 1];
  assert_int_equal(smc_vote_sig_sign_reason(key_a, "doc", "ap", "a", 0, "over budget", s, NULL), 0);
  static const char *const texts[] = {
      "{\"type\":\"vote\",\"object\":\"doc\",\"proposal\":\"ap\",\"voter\":\"a\","
      "\"accept\":false,\"reason\":\"within budget\",\"signature\":\"%s\"}",
      "{\"type\":\"vote\",\"object\":\"doc\",\"proposal\":\"ap\",\"voter\":\"a\","
      "\"accept\":false,\"signature\":\"%s\"}",
      "{\"type\":\"vote\",\"object\":\"doc\",\"proposal\":\"ap\",\"voter\":\"a\","
      "\"accept\":false,\"reason\":\"over budget\",\"signature\":\"%s\"}"};
  char text[512];
  for (int i = 0; i < 3; i++) {
    snprintf(text, sizeof text, texts[i], s);
    feed(&h, 100 + i, "doc", text);
  }
  assert_int_equal(count(h.logs, "bad_signature"), 2);
  no_more(&h); /* a's reject counted once; one more is needed */
  char sb[SMC_VOTE_SIG_B64_LEN + 1];
  assert_int_equal(smc_vote_sig_sign_reason(key_b, "doc", "ap", "b", 0, "no", sb, NULL), 0);
  snprintf(text, sizeof text,
           "{\"type\":\"vote\",\"object\":\"doc\",\"proposal\":\"ap\",\"voter\":\"b\","
           "\"accept\":false,\"reason\":\"no\",\"signature\":\"%s\"}",
           sb);
  feed(&h, 110, "doc", text);
  json_t *c = take(&h);
  assert_string_equal(S(c, "outcome"), "rejected");
  no_more(&h);
  h_close(&h);
}

/* ---- issue 18, finding 5: registrations answer per partition, and a
 * cluster with a registration key takes only registrations it signed ---- */

static const char SIMPLE[] =
    "name: simple\nstates:\n  a: {}\ntransitions:\n  create: {from: null, to: a}\n";
static const char OTHER[] =
    "name: simple\nstates:\n  b: {}\ntransitions:\n  create: {from: null, to: b}\n";

/* A machine event for def with an id, signed by key (NULL: unsigned). */
static char *registration(const char *def, const char *id, EVP_PKEY *key) {
  smc_machine_t *m = NULL;
  smc_diags_t d;
  smc_diags_init(&d);
  assert_int_equal(smc_machine_compile(def, strlen(def), NULL, NULL, &m, &d), 0);
  smc_diags_close(&d);
  json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "machine", "name", smc_machine_name(m),
                        "hash", smc_machine_hash(m), "definition", def, "id", id);
  if (key) {
    char sig[SMC_VOTE_SIG_B64_LEN + 1];
    assert_int_equal(
        smc_registration_sign(key, smc_machine_name(m), smc_machine_hash(m), sig, NULL), 0);
    json_object_set_new(e, "signature", json_string(sig));
  }
  char *s = json_dumps(e, JSON_COMPACT);
  json_decref(e);
  smc_machine_destroy(m);
  return s;
}

static void h_init_key(h_t *h, EVP_PKEY *pub) {
  memset(h, 0, sizeof(*h));
  smc_fold_config_t cfg;
  smc_fold_config_default(&cfg);
  cfg.partitions = 1;
  char b64[45];
  if (pub) {
    assert_int_equal(smc_vote_sig_public_b64(pub, b64, NULL), 0);
    cfg.registration_key = b64;
  }
  assert_int_equal(smc_fold_new(&cfg, &h->f), 0);
  smc_fold_set_logger(h->f, logger, h);
  h->ov = smc_overlay_new(NULL);
  h->kv = smc_overlay_kv(h->ov);
  h->outs = json_array();
}

static void expect_registration(h_t *h, const char *id, const char *outcome, const char *code) {
  json_t *r = take(h);
  assert_string_equal(S(r, "kind"), "reply");
  assert_string_equal(S(r, "type"), "registration");
  assert_string_equal(S(r, "id"), id);
  assert_string_equal(S(r, "outcome"), outcome);
  if (code)
    assert_string_equal(S(json_object_get(r, "error"), "code"), code);
  else
    assert_null(json_object_get(r, "error"));
}

static void registration_outcomes(void **state) {
  (void)state;
  h_t h;
  h_init_key(&h, NULL);
  /* a squatter's definition reached this partition first */
  char *squat = registration(OTHER, "r0", NULL), *mine = registration(SIMPLE, "r1", NULL);
  feed(&h, 0, "simple", squat);
  expect_registration(&h, "r0", "registered", NULL);
  feed(&h, 1, "simple", mine);
  expect_registration(&h, "r1", "rejected", "machine_exists");
  feed(&h, 2, "simple", squat);
  expect_registration(&h, "r0", "existed", NULL);
  no_more(&h);
  free(squat);
  free(mine);
  h_close(&h);
  assert_int_equal(
      smc_fold_new(
          &(smc_fold_config_t){.partitions = 1, .max_queue = 1, .registration_key = "not a key"},
          &h.f),
      SMC_EINVALID_ARGUMENT);
}

static void registration_key_required(void **state) {
  (void)state;
  h_t h;
  h_init_key(&h, key_a);
  char *unsigned_ = registration(SIMPLE, "u", NULL), *foreign = registration(SIMPLE, "f", key_x);
  char *good = registration(SIMPLE, "g", key_a);
  feed(&h, 0, "simple", unsigned_);
  expect_registration(&h, "u", "rejected", "bad_signature");
  feed(&h, 1, "simple", foreign);
  expect_registration(&h, "f", "rejected", "bad_signature");
  assert_non_null(strstr(h.logs, "bad_signature"));
  /* nothing registered: a proposal finds no machine */
  feed(&h, 2, "o",
       "{\"type\":\"proposal\",\"id\":\"p\",\"object\":\"o\",\"machine\":\"simple\",\"transition\":"
       "\"create\"}");
  json_t *c = take(&h);
  assert_string_equal(S(json_object_get(c, "error"), "code"), "unknown_machine");
  /* a signature over another name or hash does not carry over */
  json_t *e = json_loads(good, 0, NULL);
  json_object_set_new(
      e, "hash", json_string("0000000000000000000000000000000000000000000000000000000000000000"));
  char *tampered = json_dumps(e, JSON_COMPACT);
  json_decref(e);
  feed(&h, 3, "simple", tampered);
  expect_registration(&h, "g", "rejected", "bad_signature");
  feed(&h, 4, "simple", good);
  expect_registration(&h, "g", "registered", NULL);
  feed(&h, 5, "o",
       "{\"type\":\"proposal\",\"id\":\"p2\",\"object\":\"o\",\"machine\":\"simple\","
       "\"transition\":\"create\"}");
  c = take(&h);
  assert_string_equal(S(c, "outcome"), "committed");
  no_more(&h);
  free(unsigned_);
  free(foreign);
  free(good);
  free(tampered);
  h_close(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(signed_votes_reach_quorum),
      cmocka_unit_test(unsigned_voter_without_key_counts),
      cmocka_unit_test(unsigned_not_counted),
      cmocka_unit_test(forged_not_counted),
      cmocka_unit_test(signed_reject),
      cmocka_unit_test(replay_identical),
      cmocka_unit_test(reason_signed),
      cmocka_unit_test(registration_outcomes),
      cmocka_unit_test(registration_key_required),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
