/*
 * Unit tests of Ed25519-signed votes (src/core/vote_sig.c and the `keys`
 * field of a vote policy in src/core/machine.c): the exact signed message,
 * a known answer made with the openssl CLI, sign/verify round trips, forged
 * and foreign signatures, every message field bound by the signature,
 * malformed base64, key parsing (raw base64 and PEM), concurrent verification
 * with one shared key, and the compile errors of bad keys with their positions.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/vote_sig.h"
#include "smc/machine.h"

/* A fixed key made with `openssl genpkey -algorithm ed25519`, its public
 * key (raw base64 and PEM), and the signature of
 * "smc-vote-v1\ndoc-1\np-1\nalice\naccept" made with
 * `openssl pkeyutl -sign -rawin` (Ed25519 is deterministic). */
static const char KAT_PRIV[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MC4CAQAwBQYDK2VwBCIEIIRZn+Zviq+KJqCAT/IMiRo1tSD+W8TvdA5rrNG4YOof\n"
                               "-----END PRIVATE KEY-----\n";
static const char KAT_PUB_B64[] = "MlTjlqbzkdjPvWROai0jNlYLLxu+bxEmfDmcQjeWE5s=";
static const char KAT_PUB_PEM[] = "-----BEGIN PUBLIC KEY-----\n"
                                  "MCowBQYDK2VwAyEAMlTjlqbzkdjPvWROai0jNlYLLxu+bxEmfDmcQjeWE5s=\n"
                                  "-----END PUBLIC KEY-----\n";
static const char KAT_SIG[] = "q7amhNQMnPI/1OAn0B91umcok4Qvav+eoLr/sx/pxLhFaRqtvRMjnMHfQnQOPtHDXX0"
                              "LJ101IXEF/9j4wFePCw==";
/* An X25519 public key: right PEM form, wrong key type. */
static const char X25519_PEM[] = "-----BEGIN PUBLIC KEY-----\n"
                                 "MCowBQYDK2VuAyEAc8FkxU6f6epsJaUokXcPfAqH6IksKgUCFrtUpAnnZTw=\n"
                                 "-----END PUBLIC KEY-----\n";

static EVP_PKEY *kat_private(void) {
  BIO *b = BIO_new_mem_buf(KAT_PRIV, -1);
  EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  BIO_free(b);
  assert_non_null(k);
  return k;
}

static EVP_PKEY *new_key(void) {
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  assert_non_null(k);
  return k;
}

/* A public-only copy of a private key, parsed the way the compiler does. */
static EVP_PKEY *public_of(EVP_PKEY *priv) {
  char b64[45];
  EVP_PKEY *pub = NULL;
  assert_int_equal(smc_vote_sig_public_b64(priv, b64, NULL), 0);
  assert_int_equal(smc_vote_sig_parse_public(b64, &pub, NULL), 0);
  return pub;
}

static void test_message_bytes(void **state) {
  (void)state;
  smc_buf_t b;
  smc_buf_init(&b);
  smc_vote_sig_message(&b, "doc-1", "p-1", "alice", 1);
  smc_buf_addc(&b, '|');
  smc_vote_sig_message(&b, "o", "p", "v", 0);
  assert_false(b.oom);
  const char want[] = "smc-vote-v1\ndoc-1\np-1\nalice\naccept|smc-vote-v1\no\np\nv\nreject";
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.p, want, b.len);
  smc_buf_close(&b);
}

static void test_known_answer(void **state) {
  (void)state;
  EVP_PKEY *priv = kat_private(), *pub = NULL, *pem = NULL;
  char sig[SMC_VOTE_SIG_B64_LEN + 1], b64[45];
  assert_int_equal(smc_vote_sig_sign(priv, "doc-1", "p-1", "alice", 1, sig, NULL), 0);
  assert_string_equal(sig, KAT_SIG);
  assert_int_equal(smc_vote_sig_public_b64(priv, b64, NULL), 0);
  assert_string_equal(b64, KAT_PUB_B64);
  assert_int_equal(smc_vote_sig_parse_public(KAT_PUB_B64, &pub, NULL), 0);
  assert_int_equal(smc_vote_sig_parse_public(KAT_PUB_PEM, &pem, NULL), 0);
  assert_int_equal(smc_vote_sig_verify(pub, "doc-1", "p-1", "alice", 1, KAT_SIG, NULL), 0);
  assert_int_equal(smc_vote_sig_verify(pem, "doc-1", "p-1", "alice", 1, KAT_SIG, NULL), 0);
  EVP_PKEY_free(priv);
  EVP_PKEY_free(pub);
  EVP_PKEY_free(pem);
}

static void test_round_trip(void **state) {
  (void)state;
  EVP_PKEY *priv = new_key(), *pub = public_of(priv);
  char sig[SMC_VOTE_SIG_B64_LEN + 1];
  for (int accept = 0; accept <= 1; accept++) {
    assert_int_equal(smc_vote_sig_sign(priv, "order-7", "prop-a", "bob", accept, sig, NULL), 0);
    assert_int_equal(strlen(sig), SMC_VOTE_SIG_B64_LEN);
    assert_int_equal(smc_vote_sig_verify(pub, "order-7", "prop-a", "bob", accept, sig, NULL), 0);
  }
  EVP_PKEY_free(priv);
  EVP_PKEY_free(pub);
}

static void test_forged(void **state) {
  (void)state;
  EVP_PKEY *priv = new_key(), *pub = public_of(priv), *other = new_key();
  char sig[SMC_VOTE_SIG_B64_LEN + 1], osig[SMC_VOTE_SIG_B64_LEN + 1];
  smc_error_t err;
  assert_int_equal(smc_vote_sig_sign(priv, "o", "p", "v", 1, sig, NULL), 0);
  /* every single flipped bit of the signature is caught */
  for (int i = 0; i < 86; i++) {
    char bad[sizeof(sig)];
    memcpy(bad, sig, sizeof(sig));
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    smc_error_clear(&err);
    assert_int_equal(smc_vote_sig_verify(pub, "o", "p", "v", 1, bad, &err), SMC_EBAD_SIGNATURE);
  }
  assert_string_equal(err.path, "signature");
  /* a valid signature by another key */
  assert_int_equal(smc_vote_sig_sign(other, "o", "p", "v", 1, osig, NULL), 0);
  smc_error_clear(&err);
  assert_int_equal(smc_vote_sig_verify(pub, "o", "p", "v", 1, osig, &err), SMC_EBAD_SIGNATURE);
  assert_non_null(strstr(err.message, "does not verify"));
  /* an all-zero signature */
  char zero[SMC_VOTE_SIG_B64_LEN + 1];
  memset(zero, 'A', SMC_VOTE_SIG_B64_LEN);
  memcpy(zero + 86, "==", 3);
  assert_int_equal(smc_vote_sig_verify(pub, "o", "p", "v", 1, zero, NULL), SMC_EBAD_SIGNATURE);
  EVP_PKEY_free(priv);
  EVP_PKEY_free(pub);
  EVP_PKEY_free(other);
}

static void test_fields_bound(void **state) {
  (void)state;
  EVP_PKEY *priv = new_key(), *pub = public_of(priv);
  char sig[SMC_VOTE_SIG_B64_LEN + 1];
  assert_int_equal(smc_vote_sig_sign(priv, "obj", "prop", "alice", 1, sig, NULL), 0);
  assert_int_equal(smc_vote_sig_verify(pub, "obj", "prop", "alice", 1, sig, NULL), 0);
  assert_int_equal(smc_vote_sig_verify(pub, "obj2", "prop", "alice", 1, sig, NULL),
                   SMC_EBAD_SIGNATURE);
  assert_int_equal(smc_vote_sig_verify(pub, "obj", "prop2", "alice", 1, sig, NULL),
                   SMC_EBAD_SIGNATURE);
  assert_int_equal(smc_vote_sig_verify(pub, "obj", "prop", "alicf", 1, sig, NULL),
                   SMC_EBAD_SIGNATURE);
  assert_int_equal(smc_vote_sig_verify(pub, "obj", "prop", "alice", 0, sig, NULL),
                   SMC_EBAD_SIGNATURE);
  /* the separators are part of the message: moving one is another message */
  assert_int_equal(smc_vote_sig_verify(pub, "obj\nprop", "", "alice", 1, sig, NULL),
                   SMC_EBAD_SIGNATURE);
  EVP_PKEY_free(priv);
  EVP_PKEY_free(pub);
}

static void test_malformed_signature(void **state) {
  (void)state;
  EVP_PKEY *priv = new_key(), *pub = public_of(priv);
  char sig[SMC_VOTE_SIG_B64_LEN + 1], bad[128];
  smc_error_t err;
  assert_int_equal(smc_vote_sig_sign(priv, "o", "p", "v", 0, sig, NULL), 0);
  smc_error_clear(&err);
  assert_int_equal(smc_vote_sig_verify(pub, "o", "p", "v", 0, NULL, &err), SMC_EBAD_SIGNATURE);
  assert_non_null(strstr(err.message, "unsigned"));
  const char *cases[] = {"", "abc", "not base64 at all", "====", NULL};
  for (int i = 0; cases[i]; i++)
    assert_int_equal(smc_vote_sig_verify(pub, "o", "p", "v", 0, cases[i], NULL),
                     SMC_EBAD_SIGNATURE);
  snprintf(bad, sizeof(bad), "%s", sig); /* drop the padding */
  bad[86] = 0;
  assert_int_equal(smc_vote_sig_verify(pub, "o", "p", "v", 0, bad, NULL), SMC_EBAD_SIGNATURE);
  snprintf(bad, sizeof(bad), "%sAAAA", sig); /* 67 bytes */
  assert_int_equal(smc_vote_sig_verify(pub, "o", "p", "v", 0, bad, NULL), SMC_EBAD_SIGNATURE);
  snprintf(bad, sizeof(bad), " %s", sig); /* whitespace */
  bad[strlen(bad) - 1] = 0;
  assert_int_equal(smc_vote_sig_verify(pub, "o", "p", "v", 0, bad, NULL), SMC_EBAD_SIGNATURE);
  snprintf(bad, sizeof(bad), "%s", sig); /* url-safe alphabet */
  bad[10] = '-';
  assert_int_equal(smc_vote_sig_verify(pub, "o", "p", "v", 0, bad, NULL), SMC_EBAD_SIGNATURE);
  snprintf(bad, sizeof(bad), "%s", sig); /* non-zero bits under the padding */
  bad[85] = bad[85] == 'A' ? 'B' : (char)(bad[85] + 1);
  if (bad[85] == '=' || bad[85] == '[')
    bad[85] = 'B';
  smc_error_clear(&err);
  assert_int_equal(smc_vote_sig_verify(pub, "o", "p", "v", 0, bad, &err), SMC_EBAD_SIGNATURE);
  EVP_PKEY_free(priv);
  EVP_PKEY_free(pub);
}

static void test_parse_public(void **state) {
  (void)state;
  EVP_PKEY *k = NULL;
  smc_error_t err;
  const char *bad[] = {
      "",
      "MlTjlqbzkdjPvWROai0jNlYLLxu+bxEmfDmcQjeWE5", /* truncated */
      "MlTjlqbzkdjPvWROai0jNlYLLxu+bxEmfDmcQjeWE5s=AAAA",
      "MlTjlqbzkdjPvWROai0jNlYLLxu+bxEmfDmcQjeW",     /* 30 bytes */
      "MlTjlqbzkdjPvWROai0jNlYLLxu+bxEmfDmcQjeWE5s!", /* bad character */
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
      "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n",
      X25519_PEM,
      NULL,
  };
  for (int i = 0; bad[i]; i++) {
    smc_error_clear(&err);
    assert_int_equal(smc_vote_sig_parse_public(bad[i], &k, &err), SMC_EBAD_VALUE);
    assert_null(k);
    assert_true(err.message[0] != 0);
  }
  smc_error_clear(&err);
  assert_int_equal(smc_vote_sig_parse_public(X25519_PEM, &k, &err), SMC_EBAD_VALUE);
  assert_non_null(strstr(err.message, "not an Ed25519"));
  assert_int_equal(smc_vote_sig_parse_public(KAT_PUB_PEM, &k, NULL), 0);
  EVP_PKEY_free(k);
}

static void test_load_private(void **state) {
  (void)state;
  char path[] = "/tmp/smc-test-vote-sig-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, KAT_PRIV, strlen(KAT_PRIV)), (ssize_t)strlen(KAT_PRIV));
  close(fd);
  EVP_PKEY *k = NULL;
  char b64[45];
  assert_int_equal(smc_vote_sig_load_private(path, &k, NULL), 0);
  assert_int_equal(smc_vote_sig_public_b64(k, b64, NULL), 0);
  assert_string_equal(b64, KAT_PUB_B64);
  EVP_PKEY_free(k);
  /* a public key is not a private key */
  FILE *f = fopen(path, "w");
  fputs(KAT_PUB_PEM, f);
  fclose(f);
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_vote_sig_load_private(path, &k, &err), SMC_EINVALID_ARGUMENT);
  assert_null(k);
  unlink(path);
  assert_int_equal(smc_vote_sig_load_private(path, &k, &err), SMC_EIO);
}

/* A compiled machine (and so its keys) is shared by the fold threads of
 * many partitions: concurrent verifications with one key must agree. */
typedef struct verify_job {
  EVP_PKEY *pub;
  const char *sig;
  int good, bad;
} verify_job_t;

static void *verify_many(void *arg) {
  verify_job_t *j = arg;
  for (int i = 0; i < 200; i++) {
    j->good += smc_vote_sig_verify(j->pub, "doc-1", "p-1", "alice", 1, j->sig, NULL) == 0;
    j->bad += smc_vote_sig_verify(j->pub, "doc-1", "p-1", "alice", 0, j->sig, NULL) != 0;
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  EVP_PKEY *pub = NULL;
  assert_int_equal(smc_vote_sig_parse_public(KAT_PUB_B64, &pub, NULL), 0);
  pthread_t t[4];
  verify_job_t jobs[4];
  for (int i = 0; i < 4; i++) {
    jobs[i] = (verify_job_t){pub, KAT_SIG, 0, 0};
    assert_int_equal(pthread_create(&t[i], NULL, verify_many, &jobs[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(jobs[i].good, 200);
    assert_int_equal(jobs[i].bad, 200);
  }
  EVP_PKEY_free(pub);
}

/* ---- the `keys` field of a vote policy ---- */

static const char *MACHINE_FMT = "name: signed\n"
                                 "votes:\n"
                                 "  quorum: 2\n"
                                 "  voters: [carol, alice, bob]\n"
                                 "  keys:\n"
                                 "%s"
                                 "states:\n"
                                 "  draft: {}\n"
                                 "  done: {final: true}\n"
                                 "transitions:\n"
                                 "  create: {from: null, to: draft, votes: none}\n"
                                 "  finish: {from: draft, to: done, votes: }\n"
                                 "  own:\n"
                                 "    from: draft\n"
                                 "    to: done\n"
                                 "    votes: {voters: [dave], keys: {dave: '%s'}}\n";

static int compile_keys(const char *keys, const char *own_key, smc_machine_t **m, smc_diags_t *d) {
  char text[4096];
  snprintf(text, sizeof(text), MACHINE_FMT, keys, own_key);
  smc_diags_init(d);
  return smc_machine_compile(text, strlen(text), "signed.yaml", NULL, m, d);
}

static const smc_vote_policy_t *policy_of(smc_machine_t *m, const char *tname) {
  for (size_t i = 0; i < smc_machine_transition_count(m); i++)
    if (!strcmp(smc_machine_transition(m, i)->name, tname))
      return smc_machine_transition(m, i)->votes;
  return NULL;
}

static void test_compile_keys(void **state) {
  (void)state;
  char keys[1024];
  snprintf(keys, sizeof(keys), "    alice: '%s'\n    bob: |\n      %s      %s      %s", KAT_PUB_B64,
           "-----BEGIN PUBLIC KEY-----\n",
           "MCowBQYDK2VwAyEAMlTjlqbzkdjPvWROai0jNlYLLxu+bxEmfDmcQjeWE5s=\n",
           "-----END PUBLIC KEY-----\n");
  smc_machine_t *m = NULL;
  smc_diags_t d;
  int rc = compile_keys(keys, KAT_PUB_B64, &m, &d);
  if (rc && d.count)
    fail_msg("%s:%d:%d %s", d.items[0].err.file, d.items[0].err.line, d.items[0].err.column,
             d.items[0].err.message);
  assert_int_equal(rc, 0);
  const smc_vote_policy_t *vp = policy_of(m, "finish");
  assert_non_null(vp);
  assert_non_null(vp->keys);
  /* voters are sorted; keys follow them */
  assert_string_equal(vp->voters[0], "alice");
  assert_string_equal(vp->voters[1], "bob");
  assert_string_equal(vp->voters[2], "carol");
  assert_non_null(vp->keys[0]);
  assert_non_null(vp->keys[1]);
  assert_null(vp->keys[2]);
  assert_int_equal(smc_vote_sig_verify(vp->keys[0], "doc-1", "p-1", "alice", 1, KAT_SIG, NULL), 0);
  assert_int_equal(smc_vote_sig_verify(vp->keys[1], "doc-1", "p-1", "alice", 1, KAT_SIG, NULL), 0);
  const smc_vote_policy_t *own = policy_of(m, "own");
  assert_non_null(own->keys);
  assert_non_null(own->keys[0]);
  assert_null(policy_of(m, "create"));
  smc_machine_destroy(m);
  smc_diags_close(&d);
}

/* One bad keys block: the first error's code and position. */
static void expect_error(const char *keys, const char *own_key, int code, int line, int col,
                         const char *words) {
  smc_machine_t *m = NULL;
  smc_diags_t d;
  assert_int_equal(compile_keys(keys, own_key, &m, &d), SMC_EINVALID_MACHINE);
  assert_null(m);
  assert_true(d.errors >= 1);
  const smc_error_t *e = &d.items[0].err;
  if (e->code != code || e->line != line || e->column != col || !strstr(e->message, words))
    fail_msg("got %s at %d:%d '%s', want %s at %d:%d '%s'", smc_code_name(e->code), e->line,
             e->column, e->message, smc_code_name(code), line, col, words);
  assert_string_equal(e->file, "signed.yaml");
  smc_diags_close(&d);
}

static void test_compile_errors(void **state) {
  (void)state;
  char keys[512];
  /* a key for someone who is not a voter */
  snprintf(keys, sizeof(keys), "    mallory: '%s'\n", KAT_PUB_B64);
  expect_error(keys, KAT_PUB_B64, SMC_EBAD_VOTES, 6, 5, "not in voters");
  /* bad base64 */
  expect_error("    alice: 'not*base64'\n", KAT_PUB_B64, SMC_EBAD_VALUE, 6, 12, "base64");
  /* wrong length (30 bytes) */
  expect_error("    alice: 'MlTjlqbzkdjPvWROai0jNlYLLxu+bxEmfDmcQjeW'\n", KAT_PUB_B64,
               SMC_EBAD_VALUE, 6, 12, "32 raw");
  /* wrong key type (X25519 PEM) */
  snprintf(keys, sizeof(keys), "    alice: |\n      %s      %s      %s",
           "-----BEGIN PUBLIC KEY-----\n",
           "MCowBQYDK2VuAyEAc8FkxU6f6epsJaUokXcPfAqH6IksKgUCFrtUpAnnZTw=\n",
           "-----END PUBLIC KEY-----\n");
  expect_error(keys, KAT_PUB_B64, SMC_EBAD_VALUE, 6, 12, "not an Ed25519");
  /* bad PEM */
  expect_error("    alice: \"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\"\n",
               KAT_PUB_B64, SMC_EBAD_VALUE, 6, 12, "does not parse");
  /* not a string / keys not a mapping */
  expect_error("    alice: [1, 2]\n", KAT_PUB_B64, SMC_EBAD_VALUE, 6, 12, "must be a string");
  expect_error("    - alice\n", KAT_PUB_B64, SMC_EBAD_VOTES, 6, 5, "mapping");
  /* a bad key in a transition's own policy */
  snprintf(keys, sizeof(keys), "    alice: '%s'\n", KAT_PUB_B64);
  expect_error(keys, "AAAA", SMC_EBAD_VALUE, 16, 42, "32 raw");
}

/* A reason is signed: the v2 message carries it, so it can be neither
 * changed, added nor removed; no reason (NULL or "") is the v1 message. */
static void test_reason_signed(void **state) {
  (void)state;
  smc_buf_t b;
  smc_buf_init(&b);
  smc_vote_sig_message_reason(&b, "doc-1", "p-1", "alice", 0, "too expensive");
  smc_buf_addc(&b, '|');
  smc_vote_sig_message_reason(&b, "doc-1", "p-1", "alice", 1, "");
  const char want[] = "smc-vote-v2\ndoc-1\np-1\nalice\nreject\ntoo expensive|"
                      "smc-vote-v1\ndoc-1\np-1\nalice\naccept";
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.p, want, b.len);
  smc_buf_close(&b);
  EVP_PKEY *priv = new_key(), *pub = public_of(priv);
  char sig[SMC_VOTE_SIG_B64_LEN + 1], v1[SMC_VOTE_SIG_B64_LEN + 1];
  assert_int_equal(smc_vote_sig_sign_reason(priv, "o", "p", "v", 0, "too expensive", sig, NULL), 0);
  assert_int_equal(smc_vote_sig_verify_reason(pub, "o", "p", "v", 0, "too expensive", sig, NULL),
                   0);
  smc_error_t err;
  static const char *const others[] = {NULL, "", "too expensivE", "too expensive ", "too"};
  for (size_t i = 0; i < sizeof others / sizeof *others; i++)
    assert_int_equal(smc_vote_sig_verify_reason(pub, "o", "p", "v", 0, others[i], sig, &err),
                     SMC_EBAD_SIGNATURE);
  /* a signature without a reason does not cover one added later */
  assert_int_equal(smc_vote_sig_sign_reason(priv, "o", "p", "v", 0, NULL, v1, NULL), 0);
  assert_int_equal(smc_vote_sig_verify(pub, "o", "p", "v", 0, v1, NULL), 0);
  assert_int_equal(smc_vote_sig_verify_reason(pub, "o", "p", "v", 0, "", v1, NULL), 0);
  assert_int_equal(smc_vote_sig_verify_reason(pub, "o", "p", "v", 0, "added", v1, &err),
                   SMC_EBAD_SIGNATURE);
  /* the old entry points are the v1 message */
  char old[SMC_VOTE_SIG_B64_LEN + 1];
  assert_int_equal(smc_vote_sig_sign(priv, "o", "p", "v", 0, old, NULL), 0);
  assert_string_equal(old, v1);
  EVP_PKEY_free(priv);
  EVP_PKEY_free(pub);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_message_bytes),  cmocka_unit_test(test_known_answer),
      cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_forged),
      cmocka_unit_test(test_fields_bound),   cmocka_unit_test(test_malformed_signature),
      cmocka_unit_test(test_parse_public),   cmocka_unit_test(test_load_private),
      cmocka_unit_test(test_threads),        cmocka_unit_test(test_compile_keys),
      cmocka_unit_test(test_compile_errors), cmocka_unit_test(test_reason_signed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
