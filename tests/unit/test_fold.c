/* Scenario tests of the fold (include/smc/fold.h) over the in-memory
 * overlay: each test feeds records and checks every output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "core/kv.h"
#include "core/util.h"
#include "smc/fold.h"

static const char LOCK[] =
    "name: lock\n"
    "states:\n"
    "  free: {}\n"
    "  held:\n"
    "    fields:\n"
    "      owner: {type: string, required: true}\n"
    "  retired: {final: true}\n"
    "transitions:\n"
    "  create: {from: null, to: free}\n"
    "  acquire:\n"
    "    from: free\n"
    "    to: held\n"
    "    $dst: {owner: {type: string, required: true, regex: '^[a-z]+$'}}\n"
    "  release:\n"
    "    from: held\n"
    "    to: free\n"
    "    $src: {owner: {eq: '${input.owner}', message: 'only the owner may release'}}\n"
    "    set: {owner: null}\n"
    "  retire: {from: free, to: retired}\n";

static const char VOTED[] = "name: voted\n"
                            "states:\n"
                            "  draft: {}\n"
                            "  approved: {}\n"
                            "transitions:\n"
                            "  create: {from: null, to: draft}\n"
                            "  approve:\n"
                            "    from: draft\n"
                            "    to: approved\n"
                            "    votes: {quorum: 2, voters: [a, b, c], timeout: 10s}\n"
                            "  edit: {from: draft, to: draft}\n";

static const char LEASE[] = "name: lease\n"
                            "states:\n"
                            "  free: {}\n"
                            "  held: {}\n"
                            "transitions:\n"
                            "  create: {from: null, to: free}\n"
                            "  take: {from: free, to: held}\n"
                            "  renew: {from: held, to: held}\n"
                            "  expire: {from: held, to: free, after: 30s}\n";

typedef struct h {
  smc_fold_t *f;
  smc_overlay_t *ov;
  smc_kv_t kv;
  int32_t parts;
  int64_t off[16];
  json_t *outs; /* array of outputs, each with "kind" added */
  size_t seen;  /* outputs already consumed by take() */
  char logs[8192];
  char notes[1024]; /* "<note> <code>\n" of each line that reports one */
} h_t;

static void logger(void *opaque, const smc_fold_log_t *l) {
  h_t *h = opaque;
  size_t n = strlen(h->logs);
  snprintf(h->logs + n, sizeof(h->logs) - n, "%s\n", l->msg);
  if (l->note == SMC_FOLD_NOTE_NONE) {
    assert_int_equal(l->code, 0);
    return;
  }
  n = strlen(h->notes);
  snprintf(h->notes + n, sizeof(h->notes) - n, "%s %s\n",
           l->note == SMC_FOLD_NOTE_EVENT_DROPPED ? "dropped" : "vote_ignored",
           smc_code_name(l->code));
}

/* The typed votes of an output are the text's "votes" member. */
static void check_votes(const char *const *v, size_t n, const json_t *a) {
  assert_int_equal(n, json_array_size(a));
  for (size_t i = 0; i < n; i++)
    assert_string_equal(v[i], json_string_value(json_array_get(a, i)));
}

static int emit(void *opaque, const smc_output_t *out) {
  h_t *h = opaque;
  json_error_t e;
  json_t *j = json_loadb(out->json, out->json_len, 0, &e);
  assert_non_null(j);
  /* outputs are canonical */
  char *c = smc_json_canonical(j);
  assert_int_equal(strlen(c), out->json_len);
  assert_memory_equal(c, out->json, out->json_len);
  free(c);
  /* the typed fields say what the text says (voters read them, not json) */
  if (out->kind == SMC_OUT_VOTE_REQUEST) {
    json_t *vs = json_object_get(j, "voters");
    assert_int_equal(out->nvoters, json_array_size(vs));
    for (size_t i = 0; i < out->nvoters; i++)
      assert_string_equal(out->voters[i], json_string_value(json_array_get(vs, i)));
    assert_string_equal(out->id, json_string_value(json_object_get(j, "proposal")));
  } else {
    assert_null(out->voters);
    assert_int_equal(out->nvoters, 0);
  }
  if (out->kind == SMC_OUT_REPLY) {
    assert_int_equal(out->version, 0);
    assert_int_equal(out->naccept + out->nreject, 0);
  } else {
    /* version and votes as fields, so metrics and voters never scan json */
    assert_int_equal(out->version, json_integer_value(json_object_get(j, "version")));
    json_t *votes = json_object_get(j, "votes");
    check_votes(out->accept, out->naccept, json_object_get(votes, "accept"));
    check_votes(out->reject, out->nreject, json_object_get(votes, "reject"));
  }
  if (out->kind == SMC_OUT_CONFIRMATION) {
    assert_string_equal(out->id, json_string_value(json_object_get(j, "proposal")));
    assert_string_equal(out->outcome, json_string_value(json_object_get(j, "outcome")));
    assert_int_equal(out->duplicate, json_is_true(json_object_get(j, "duplicate")));
  }
  static const char *kinds[] = {"", "confirmation", "reply", "vote_request"};
  json_object_set_new(j, "kind", json_string(kinds[out->kind]));
  json_object_set_new(j, "_key", json_string(out->key));
  if (out->reply_to)
    json_object_set_new(j, "_reply_to", json_string(out->reply_to));
  json_array_append_new(h->outs, j);
  return 0;
}

static void h_init(h_t *h, int32_t parts, int64_t window, size_t max_queue) {
  memset(h, 0, sizeof(*h));
  smc_fold_config_t cfg;
  smc_fold_config_default(&cfg);
  cfg.partitions = parts;
  if (window)
    cfg.dedup_window_ms = window;
  if (max_queue)
    cfg.max_queue = max_queue;
  assert_int_equal(smc_fold_new(&cfg, &h->f), 0);
  smc_fold_set_logger(h->f, logger, h);
  h->ov = smc_overlay_new(NULL);
  h->kv = smc_overlay_kv(h->ov);
  h->parts = parts;
  h->outs = json_array();
}

static void h_close(h_t *h) {
  smc_fold_destroy(h->f);
  smc_overlay_destroy(h->ov);
  json_decref(h->outs);
}

/* Feed one record to partition p (-1: the object's partition) with key
 * (NULL: the event's object). */
static void feed_at(h_t *h, int32_t p, const char *key, int64_t t, const char *json) {
  json_t *j = json_loads(json, 0, NULL);
  const char *obj = j ? json_string_value(json_object_get(j, "object")) : NULL;
  if (!key)
    key = obj;
  if (p < 0)
    p = key ? smc_partition_for(key, strlen(key), h->parts) : 0;
  smc_record_t r = {p, h->off[p]++, t, key, key ? strlen(key) : 0, json, strlen(json), NULL, NULL};
  assert_int_equal(smc_fold_apply(h->f, &h->kv, &r, emit, h), 0);
  json_decref(j);
}

static void feed(h_t *h, int64_t t, const char *json) { feed_at(h, -1, NULL, t, json); }

static void machine(h_t *h, const char *def) {
  json_t *e = json_pack("{s:s,s:s,s:s}", "type", "machine", "name", "x", "definition", def);
  /* name: the definition's own (first line "name: X") */
  char name[32];
  sscanf(def, "name: %31s", name);
  json_object_set_new(e, "name", json_string(name));
  char *s = json_dumps(e, JSON_COMPACT);
  for (int32_t p = 0; p < h->parts; p++)
    feed_at(h, p, name, 0, s);
  free(s);
  json_decref(e);
}

/* The next output; fails when there is none. */
static json_t *take(h_t *h) {
  if (h->seen >= json_array_size(h->outs)) {
    for (size_t i = 0; i < json_array_size(h->outs); i++) {
      char *d = json_dumps(json_array_get(h->outs, i), JSON_COMPACT);
      print_message("output %zu: %s\n", i, d);
      free(d);
    }
    print_message("logs: %s\n", h->logs);
  }
  if (h->seen >= json_array_size(h->outs))
    fail_msg("expected another output (got %zu)", h->seen);
  return json_array_get(h->outs, h->seen++);
}

static void no_more(h_t *h) {
  if (h->seen != json_array_size(h->outs)) {
    char *s = json_dumps(json_array_get(h->outs, h->seen), 0);
    fail_msg("unexpected output: %s", s);
  }
}

static const char *S(json_t *j, const char *k) {
  json_t *v = json_object_get(j, k);
  return v ? json_string_value(v) : NULL;
}
static json_int_t I(json_t *j, const char *k) { return json_integer_value(json_object_get(j, k)); }
static const char *ERR(json_t *j) { return S(json_object_get(j, "error"), "code"); }

/* Expect a confirmation: outcome, and (committed) version and state, or
 * (rejected/expired) the error code. Returns it. */
static json_t *expect_conf(h_t *h, const char *proposal, const char *outcome,
                           const char *code_or_state, json_int_t version) {
  json_t *c = take(h);
  assert_string_equal(S(c, "kind"), "confirmation");
  if (proposal)
    assert_string_equal(S(c, "proposal"), proposal);
  assert_string_equal(S(c, "outcome"), outcome);
  if (!strcmp(outcome, "committed"))
    assert_string_equal(S(c, "state"), code_or_state);
  else
    assert_string_equal(ERR(c), code_or_state);
  assert_int_equal(I(c, "version"), version);
  return c;
}

static void sha_hex(const char *s, size_t n, char out[65]) {
  unsigned char md[32];
  SHA256((const unsigned char *)s, n, md);
  for (int i = 0; i < 32; i++)
    sprintf(out + 2 * i, "%02x", md[i]);
}

/* Recompute the chain of an object from its committed confirmations. */
static void verify_chain(h_t *h, const char *object) {
  char prev[65];
  memset(prev, '0', 64);
  prev[64] = 0;
  json_int_t v = 0;
  for (size_t i = 0; i < json_array_size(h->outs); i++) {
    json_t *c = json_array_get(h->outs, i);
    if (strcmp(S(c, "kind"), "confirmation") || strcmp(S(c, "object"), object) ||
        strcmp(S(c, "outcome"), "committed") || json_object_get(c, "duplicate"))
      continue;
    assert_int_equal(I(c, "version"), ++v);
    json_t *d = json_deep_copy(c);
    json_object_del(d, "checksum");
    json_object_del(d, "kind");
    json_object_del(d, "_key");
    json_object_del(d, "_reply_to");
    char *text = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
    size_t n = strlen(text);
    char *buf = malloc(64 + n);
    memcpy(buf, prev, 64);
    memcpy(buf + 64, text, n);
    char sum[65];
    sha_hex(buf, 64 + n, sum);
    assert_string_equal(sum, S(c, "checksum"));
    memcpy(prev, sum, 65);
    free(buf);
    free(text);
    json_decref(d);
  }
  assert_true(v > 0);
}

static void lock_lifecycle(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, LOCK);
  no_more(&h);
  feed(&h, 1000,
       "{\"type\":\"proposal\",\"id\":\"p1\",\"machine\":\"lock\",\"object\":\"l1\","
       "\"transition\":\"create\",\"correlation\":\"c1\",\"reply_to\":\"r.t\"}");
  json_t *c = expect_conf(&h, "p1", "committed", "free", 1);
  assert_string_equal(S(c, "correlation"), "c1");
  assert_string_equal(S(c, "_reply_to"), "r.t");
  assert_string_equal(S(c, "_key"), "l1");
  assert_string_equal(S(c, "machine"), "lock");
  assert_string_equal(S(c, "transition"), "create");
  assert_int_equal(I(c, "time"), 1000);
  assert_int_equal(I(c, "offset"), 1);
  assert_int_equal(json_array_size(json_object_get(json_object_get(c, "votes"), "accept")), 0);
  feed(&h, 1500,
       "{\"type\":\"proposal\",\"id\":\"p2\",\"object\":\"l1\",\"transition\":"
       "\"acquire\",\"data\":{\"owner\":\"alice\"}}");
  c = expect_conf(&h, "p2", "committed", "held", 2);
  assert_string_equal(S(json_object_get(c, "data"), "owner"), "alice");
  /* a rule with its custom message */
  feed(&h, 1600,
       "{\"type\":\"proposal\",\"id\":\"p3\",\"object\":\"l1\",\"transition\":"
       "\"release\",\"data\":{\"owner\":\"bob\"}}");
  c = expect_conf(&h, "p3", "rejected", "validation_failed", 2);
  assert_string_equal(S(json_object_get(c, "error"), "message"), "only the owner may release");
  assert_string_equal(S(c, "state"), "held");
  feed(&h, 1700,
       "{\"type\":\"proposal\",\"id\":\"p4\",\"object\":\"l1\",\"transition\":"
       "\"release\",\"data\":{\"owner\":\"alice\"}}");
  c = expect_conf(&h, "p4", "committed", "free", 3);
  assert_null(json_object_get(json_object_get(c, "data"), "owner"));
  /* errors of activation, in order */
  feed(&h, 1800,
       "{\"type\":\"proposal\",\"id\":\"p5\",\"object\":\"l1\",\"transition\":"
       "\"release\",\"data\":{\"owner\":\"alice\"}}");
  expect_conf(&h, "p5", "rejected", "invalid_transition", 3);
  feed(&h, 1800, "{\"type\":\"proposal\",\"id\":\"p6\",\"object\":\"l1\",\"transition\":\"fly\"}");
  expect_conf(&h, "p6", "rejected", "unknown_transition", 3);
  feed(&h, 1800,
       "{\"type\":\"proposal\",\"id\":\"p7\",\"object\":\"l1\",\"machine\":\"lock\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "p7", "rejected", "object_exists", 3);
  feed(&h, 1800,
       "{\"type\":\"proposal\",\"id\":\"p8\",\"object\":\"nope\",\"transition\":"
       "\"acquire\"}");
  expect_conf(&h, "p8", "rejected", "unknown_object", 0);
  feed(&h, 1800,
       "{\"type\":\"proposal\",\"id\":\"p9\",\"object\":\"l1\",\"machine\":\"other\","
       "\"transition\":\"retire\"}");
  expect_conf(&h, "p9", "rejected", "unknown_machine", 3);
  feed(&h, 1800,
       "{\"type\":\"proposal\",\"id\":\"p10\",\"object\":\"l2\",\"machine\":\"other\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "p10", "rejected", "unknown_machine", 0);
  feed(&h, 1900,
       "{\"type\":\"proposal\",\"id\":\"p11\",\"object\":\"l1\",\"transition\":"
       "\"retire\"}");
  expect_conf(&h, "p11", "committed", "retired", 4);
  feed(&h, 2000,
       "{\"type\":\"proposal\",\"id\":\"p12\",\"object\":\"l1\",\"transition\":"
       "\"acquire\",\"data\":{\"owner\":\"x\"}}");
  expect_conf(&h, "p12", "rejected", "final_state", 4);
  /* a read: the committed state */
  feed(&h, 2100, "{\"type\":\"read\",\"id\":\"r1\",\"object\":\"l1\",\"correlation\":\"rc\"}");
  c = take(&h);
  assert_string_equal(S(c, "kind"), "reply");
  assert_string_equal(S(c, "type"), "read");
  assert_string_equal(S(c, "id"), "r1");
  assert_true(json_is_true(json_object_get(c, "found")));
  assert_int_equal(I(c, "version"), 4);
  assert_string_equal(S(c, "state"), "retired");
  assert_string_equal(S(c, "correlation"), "rc");
  assert_int_equal(I(c, "offset"), 13);
  feed(&h, 2100, "{\"type\":\"read\",\"id\":\"r2\",\"object\":\"zz\"}");
  c = take(&h);
  assert_true(json_is_false(json_object_get(c, "found")));
  assert_int_equal(I(c, "version"), 0);
  no_more(&h);
  verify_chain(&h, "l1");
  /* the last committed checksum is the one the read reports */
  int64_t clock = 0, next = 0;
  assert_int_equal(smc_fold_clock(h.f, &h.kv, 0, &clock), 0);
  assert_int_equal(smc_fold_applied(h.f, &h.kv, 0, &next), 0);
  assert_int_equal(clock, 2100);
  assert_int_equal(next, 15);
  h_close(&h);
}

static void version_conflict(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, LOCK);
  feed(&h, 1,
       "{\"type\":\"proposal\",\"id\":\"c\",\"machine\":\"lock\",\"object\":\"o\","
       "\"transition\":\"create\",\"expect_version\":0}");
  expect_conf(&h, "c", "committed", "free", 1);
  feed(&h, 2,
       "{\"type\":\"proposal\",\"id\":\"c2\",\"machine\":\"lock\",\"object\":\"o\","
       "\"transition\":\"create\",\"expect_version\":0}");
  json_t *c = expect_conf(&h, "c2", "rejected", "version_conflict", 1);
  assert_string_equal(S(json_object_get(c, "error"), "path"), "expect_version");
  feed(&h, 3,
       "{\"type\":\"proposal\",\"id\":\"a\",\"object\":\"o\",\"transition\":\"acquire\","
       "\"data\":{\"owner\":\"z\"},\"expect_version\":5}");
  expect_conf(&h, "a", "rejected", "version_conflict", 1);
  feed(&h, 4,
       "{\"type\":\"proposal\",\"id\":\"a2\",\"object\":\"o\",\"transition\":\"acquire\","
       "\"data\":{\"owner\":\"z\"},\"expect_version\":1}");
  expect_conf(&h, "a2", "committed", "held", 2);
  no_more(&h);
  h_close(&h);
}

static void duplicates(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, LOCK);
  const char *create = "{\"type\":\"proposal\",\"machine\":\"lock\",\"object\":\"o\","
                       "\"transition\":\"create\",\"correlation\":\"first\"}";
  feed(&h, 10, create);
  json_t *orig = expect_conf(&h, NULL, "committed", "free", 1);
  /* derived id: sha256 of object, version, transition, data */
  char want[65];
  const char *pre = "o\n\ncreate\n{}";
  sha_hex(pre, strlen(pre), want);
  assert_string_equal(S(orig, "proposal"), want);
  feed(&h, 20,
       "{\"type\":\"proposal\",\"machine\":\"lock\",\"object\":\"o\","
       "\"transition\":\"create\",\"correlation\":\"second\",\"reply_to\":\"t2\"}");
  json_t *dup = take(&h);
  assert_true(json_is_true(json_object_get(dup, "duplicate")));
  assert_string_equal(S(dup, "correlation"), "second");
  assert_string_equal(S(dup, "_reply_to"), "t2");
  /* otherwise the original, byte for byte */
  json_t *a = json_deep_copy(orig), *b = json_deep_copy(dup);
  const char *drop[] = {"duplicate", "correlation", "_reply_to", "kind", "_key"};
  for (size_t i = 0; i < 5; i++) {
    json_object_del(a, drop[i]);
    json_object_del(b, drop[i]);
  }
  assert_true(json_equal(a, b));
  json_decref(a);
  json_decref(b);
  /* a rejected proposal is remembered too */
  feed(&h, 30, "{\"type\":\"proposal\",\"id\":\"r\",\"object\":\"o\",\"transition\":\"release\"}");
  expect_conf(&h, "r", "rejected", "invalid_transition", 1);
  feed(&h, 40, "{\"type\":\"proposal\",\"id\":\"r\",\"object\":\"o\",\"transition\":\"retire\"}");
  json_t *d2 = expect_conf(&h, "r", "rejected", "invalid_transition", 1);
  assert_true(json_is_true(json_object_get(d2, "duplicate")));
  no_more(&h);
  h_close(&h);
}

static void dedup_window_expires(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 1000, 0);
  machine(&h, LOCK);
  const char *c = "{\"type\":\"proposal\",\"id\":\"x\",\"machine\":\"lock\",\"object\":\"o\","
                  "\"transition\":\"create\"}";
  feed(&h, 100, c);
  expect_conf(&h, "x", "committed", "free", 1);
  feed(&h, 1099, c);
  json_t *d = take(&h); /* (json_is_true evaluates its argument twice) */
  assert_true(json_is_true(json_object_get(d, "duplicate")));
  feed(&h, 1100, c); /* 100 + 1000 <= 1100: forgotten, decided anew */
  json_t *j = expect_conf(&h, "x", "rejected", "object_exists", 1);
  assert_null(json_object_get(j, "duplicate"));
  no_more(&h);
  h_close(&h);
}

/* 1 if partition 0 still stores id as decided. */
static int stored_decided(h_t *h, const char *id) {
  uint8_t k[64] = {0, 0, 0, 0};
  size_t n = strlen(id);
  memcpy(k + 4, id, n);
  void *v = NULL;
  size_t vl = 0;
  int rc = smc_kv_get(&h->kv, SMC_CF_DECIDED, k, 4 + n, &v, &vl);
  free(v);
  assert_true(rc == 0 || rc == SMC_ENOT_FOUND);
  return rc == 0;
}

/* Expiry buckets (key P 'e' time seq) of partition 0 with time < before. */
static int stored_buckets(h_t *h, int64_t before) {
  uint8_t from[5] = {0, 0, 0, 0, 'e'}, lim[13] = {0, 0, 0, 0, 'e'};
  smc_be64(lim + 5, (uint64_t)before);
  int n = 0;
  for (;;) {
    void *k = NULL, *v = NULL;
    size_t kl = 0, vl = 0;
    int rc = smc_kv_seek(&h->kv, SMC_CF_META, from, 5, lim, 13, &k, &kl, &v, &vl);
    if (rc == SMC_ENOT_FOUND)
      return n;
    assert_int_equal(rc, 0);
    assert_int_equal(kl, 21);
    n++;
    assert_int_equal(smc_kv_del(&h->kv, SMC_CF_META, k, kl), 0); /* step on */
    free(k);
    free(v);
  }
}

/* The stored dedup entries go once their minute is out of the window; an
 * id decided again after it expired keeps its newer entry. */
static void dedup_entries_swept(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 1000, 0);
  machine(&h, LOCK);
  char ev[160];
  for (int i = 0; i < 100; i++) { /* two buckets (64 + 36), minute 0 */
    snprintf(ev, sizeof(ev),
             "{\"type\":\"proposal\",\"id\":\"s%d\",\"machine\":\"lock\",\"object\":\"o%d\","
             "\"transition\":\"create\"}",
             i, i);
    feed(&h, 100 + i, ev);
    expect_conf(&h, NULL, "committed", "free", 1);
  }
  const char *x =
      "{\"type\":\"proposal\",\"id\":\"x\",\"object\":\"o1\",\"transition\":\"retire\"}";
  feed(&h, 59500, x); /* decided in minute 0 */
  expect_conf(&h, "x", "committed", "retired", 2);
  assert_true(stored_decided(&h, "s0") && stored_decided(&h, "s99") && stored_decided(&h, "x"));
  feed(&h, 60600, x); /* forgotten (59500 + 1000 <= 60600): decided again */
  json_t *j = take(&h);
  assert_string_equal(S(j, "outcome"), "rejected");
  assert_null(json_object_get(j, "duplicate"));
  /* minute 0 is not yet wholly out of the window at 60600 (upto 59600) */
  assert_true(stored_decided(&h, "s0"));
  feed(&h, 120000, "{\"type\":\"tick\"}"); /* upto 119000: minute 0 swept */
  for (int i = 0; i < 100; i++) {
    snprintf(ev, sizeof(ev), "s%d", i);
    assert_false(stored_decided(&h, ev));
  }
  assert_true(stored_decided(&h, "x"));    /* its entry of 60600 is newer */
  feed(&h, 180000, "{\"type\":\"tick\"}"); /* minute 1 swept */
  assert_false(stored_decided(&h, "x"));
  assert_int_equal(stored_buckets(&h, 180000), 0);
  no_more(&h);
  h_close(&h);
}

static void votes(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, VOTED);
  feed(&h, 0,
       "{\"type\":\"proposal\",\"id\":\"c\",\"machine\":\"voted\",\"object\":\"d\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c", "committed", "draft", 1);
  feed(&h, 1000,
       "{\"type\":\"proposal\",\"id\":\"ap\",\"object\":\"d\",\"transition\":"
       "\"approve\"}");
  json_t *vr = take(&h);
  assert_string_equal(S(vr, "kind"), "vote_request");
  assert_string_equal(S(vr, "proposal"), "ap");
  assert_int_equal(I(vr, "quorum"), 2);
  assert_int_equal(I(vr, "deadline"), 11000);
  assert_int_equal(json_array_size(json_object_get(vr, "voters")), 3);
  /* queued behind the active proposal; a re-sent queued id is ignored */
  feed(&h, 1100, "{\"type\":\"proposal\",\"id\":\"e1\",\"object\":\"d\",\"transition\":\"edit\"}");
  feed(&h, 1100, "{\"type\":\"proposal\",\"id\":\"e1\",\"object\":\"d\",\"transition\":\"edit\"}");
  feed(&h, 1100,
       "{\"type\":\"proposal\",\"id\":\"ap\",\"object\":\"d\",\"transition\":\"approve\"}");
  no_more(&h);
  /* not a voter, wrong proposal, first vote wins */
  h.logs[0] = 0;
  feed(&h, 1200,
       "{\"type\":\"vote\",\"proposal\":\"ap\",\"object\":\"d\",\"voter\":\"zed\","
       "\"accept\":true}");
  assert_non_null(strstr(h.logs, "not_a_voter"));
  feed(&h, 1200,
       "{\"type\":\"vote\",\"proposal\":\"e1\",\"object\":\"d\",\"voter\":\"a\","
       "\"accept\":true}");
  feed(&h, 1300,
       "{\"type\":\"vote\",\"proposal\":\"ap\",\"object\":\"d\",\"voter\":\"a\","
       "\"accept\":true}");
  feed(&h, 1300,
       "{\"type\":\"vote\",\"proposal\":\"ap\",\"object\":\"d\",\"voter\":\"a\","
       "\"accept\":false}");
  feed(&h, 1400,
       "{\"type\":\"vote\",\"proposal\":\"ap\",\"object\":\"d\",\"voter\":\"b\","
       "\"accept\":false}");
  no_more(&h);
  feed(&h, 1500,
       "{\"type\":\"vote\",\"proposal\":\"ap\",\"object\":\"d\",\"voter\":\"c\","
       "\"accept\":true}");
  json_t *c = expect_conf(&h, "ap", "committed", "approved", 2);
  json_t *v = json_object_get(c, "votes");
  assert_int_equal(json_array_size(json_object_get(v, "accept")), 2);
  assert_string_equal(json_string_value(json_array_get(json_object_get(v, "accept"), 0)), "a");
  assert_string_equal(json_string_value(json_array_get(json_object_get(v, "accept"), 1)), "c");
  assert_string_equal(json_string_value(json_array_get(json_object_get(v, "reject"), 0)), "b");
  /* then the queued edit activates: approved has no edit */
  expect_conf(&h, "e1", "rejected", "invalid_transition", 2);
  no_more(&h);
  /* the vote timer was removed with the decision */
  int64_t dl = 0;
  assert_int_equal(smc_fold_next_deadline(h.f, &h.kv, 0, &dl), 0);
  /* the metadata's bound is left as it was (a removal does not seek): it
   * says "may be pending" with a bound no later than any real deadline */
  int64_t bound = 0;
  assert_int_equal(smc_fold_timer_bound(h.f, &h.kv, 0, &bound), 1);
  assert_true(bound > 0);
  verify_chain(&h, "d");
  h_close(&h);
}

static void vote_reject_and_timeout(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, VOTED);
  feed(&h, 0,
       "{\"type\":\"proposal\",\"id\":\"c\",\"machine\":\"voted\",\"object\":\"d\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c", "committed", "draft", 1);
  feed(&h, 0, "{\"type\":\"proposal\",\"id\":\"ap1\",\"object\":\"d\",\"transition\":\"approve\"}");
  assert_string_equal(S(take(&h), "kind"), "vote_request");
  feed(&h, 1,
       "{\"type\":\"vote\",\"proposal\":\"ap1\",\"object\":\"d\",\"voter\":\"a\","
       "\"accept\":false}");
  no_more(&h);
  feed(&h, 2,
       "{\"type\":\"vote\",\"proposal\":\"ap1\",\"object\":\"d\",\"voter\":\"c\","
       "\"accept\":false,\"reason\":\"no\"}");
  expect_conf(&h, "ap1", "rejected", "vote_rejected", 1);
  /* a new proposal at the same version: votes start over */
  feed(&h, 5000,
       "{\"type\":\"proposal\",\"id\":\"ap2\",\"object\":\"d\",\"transition\":"
       "\"approve\"}");
  json_t *vr = take(&h);
  assert_int_equal(I(vr, "deadline"), 15000);
  int64_t dl = 0, bound = 0;
  assert_int_equal(smc_fold_next_deadline(h.f, &h.kv, 0, &dl), 1);
  assert_int_equal(dl, 15000);
  assert_int_equal(smc_fold_timer_bound(h.f, &h.kv, 0, &bound), 1);
  assert_true(bound > 0 && bound <= dl);
  feed(&h, 6000,
       "{\"type\":\"vote\",\"proposal\":\"ap2\",\"object\":\"d\",\"voter\":\"a\","
       "\"accept\":true}");
  feed_at(&h, 0, "", 14999, "{\"type\":\"tick\"}");
  no_more(&h);
  feed_at(&h, 0, "", 15000, "{\"type\":\"tick\"}");
  json_t *e = expect_conf(&h, "ap2", "expired", "vote_timeout", 1);
  assert_int_equal(I(e, "time"), 15000);
  assert_int_equal(json_array_size(json_object_get(json_object_get(e, "votes"), "accept")), 1);
  /* late votes are ignored */
  feed(&h, 15001,
       "{\"type\":\"vote\",\"proposal\":\"ap2\",\"object\":\"d\",\"voter\":\"b\","
       "\"accept\":true}");
  no_more(&h);
  h_close(&h);
}

static void timers_order(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, LEASE);
  machine(&h, VOTED);
  const char *objs[] = {"x2", "x1", "x3"};
  for (int i = 0; i < 3; i++) {
    char b[256];
    snprintf(b, sizeof(b),
             "{\"type\":\"proposal\",\"id\":\"c%s\",\"machine\":\"lease\","
             "\"object\":\"%s\",\"transition\":\"create\"}",
             objs[i], objs[i]);
    feed(&h, 1000, b);
    expect_conf(&h, NULL, "committed", "free", 1);
    snprintf(b, sizeof(b),
             "{\"type\":\"proposal\",\"id\":\"t%s\",\"object\":\"%s\","
             "\"transition\":\"take\"}",
             objs[i], objs[i]);
    feed(&h, 1000, b);
    expect_conf(&h, NULL, "committed", "held", 2);
  }
  /* x3 renews later: its deadline moves */
  feed(&h, 5000,
       "{\"type\":\"proposal\",\"id\":\"r3\",\"object\":\"x3\",\"transition\":\"renew\"}");
  expect_conf(&h, "r3", "committed", "held", 3);
  /* a vote deadline before the leases' */
  feed(&h, 1000,
       "{\"type\":\"proposal\",\"id\":\"c\",\"machine\":\"voted\",\"object\":\"d\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c", "committed", "draft", 1);
  feed(&h, 1000,
       "{\"type\":\"proposal\",\"id\":\"ap\",\"object\":\"d\",\"transition\":"
       "\"approve\"}");
  assert_string_equal(S(take(&h), "kind"), "vote_request");
  int64_t dl = 0;
  assert_int_equal(smc_fold_next_deadline(h.f, &h.kv, 0, &dl), 1);
  assert_int_equal(dl, 15000); /* the clock is at 5000 already */
  feed_at(&h, 0, "", 30999, "{\"type\":\"tick\"}");
  expect_conf(&h, "ap", "expired", "vote_timeout", 1);
  no_more(&h);
  feed_at(&h, 0, "", 40000, "{\"type\":\"tick\"}");
  /* x1 before x2 (same deadline 31000, object order), x3 not yet (35000)... */
  json_t *e1 = expect_conf(&h, "timer:x1:2:expire", "committed", "free", 3);
  assert_int_equal(I(e1, "time"), 40000);
  expect_conf(&h, "timer:x2:2:expire", "committed", "free", 3);
  /* ...x3's deadline 35000 <= 40000 too, after them */
  expect_conf(&h, "timer:x3:3:expire", "committed", "free", 4);
  no_more(&h);
  assert_int_equal(smc_fold_next_deadline(h.f, &h.kv, 0, &dl), 0);
  verify_chain(&h, "x1");
  verify_chain(&h, "x3");
  h_close(&h);
}

/* A timer transition whose rules fail is rejected like any proposal and
 * stays disarmed until the next commit re-arms it. */
static void timer_rejected_is_disarmed(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, "name: sticky\nstates: {free: {}, held: {}}\ntransitions:\n"
              "  create: {from: null, to: free}\n"
              "  take: {from: free, to: held}\n"
              "  renew: {from: held, to: held}\n"
              "  expire: {from: held, to: free, after: 30s, $src: {mode: {eq: 'auto'}}}\n");
  feed(&h, 0,
       "{\"type\":\"proposal\",\"id\":\"c\",\"machine\":\"sticky\",\"object\":\"x\","
       "\"transition\":\"create\"}");
  feed(&h, 0,
       "{\"type\":\"proposal\",\"id\":\"t\",\"object\":\"x\",\"transition\":\"take\","
       "\"data\":{\"mode\":\"manual\"}}");
  expect_conf(&h, "c", "committed", "free", 1);
  expect_conf(&h, "t", "committed", "held", 2);
  feed_at(&h, 0, "", 30000, "{\"type\":\"tick\"}");
  expect_conf(&h, "timer:x:2:expire", "rejected", "validation_failed", 2);
  feed_at(&h, 0, "", 100000, "{\"type\":\"tick\"}");
  no_more(&h);
  int64_t dl = 0;
  assert_int_equal(smc_fold_next_deadline(h.f, &h.kv, 0, &dl), 0);
  /* timers fired (or were found gone) at the tick: the bound is exact, none */
  assert_int_equal(smc_fold_timer_bound(h.f, &h.kv, 0, &dl), 0);
  /* a commit re-arms it */
  feed(&h, 100000,
       "{\"type\":\"proposal\",\"id\":\"r\",\"object\":\"x\",\"transition\":"
       "\"renew\",\"data\":{\"mode\":\"auto\"}}");
  expect_conf(&h, "r", "committed", "held", 3);
  assert_int_equal(smc_fold_next_deadline(h.f, &h.kv, 0, &dl), 1);
  assert_int_equal(dl, 130000);
  feed_at(&h, 0, "", 130000, "{\"type\":\"tick\"}");
  expect_conf(&h, "timer:x:3:expire", "committed", "free", 4);
  no_more(&h);
  verify_chain(&h, "x");
  h_close(&h);
}

static void wrong_partition_and_key(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 4, 0, 0);
  machine(&h, LOCK);
  int32_t p = smc_partition_for("o", 1, 4);
  const char *ev = "{\"type\":\"proposal\",\"id\":\"w\",\"machine\":\"lock\",\"object\":\"o\","
                   "\"transition\":\"create\"}";
  feed_at(&h, (p + 1) % 4, NULL, 5, ev);
  json_t *c = take(&h);
  assert_string_equal(S(c, "outcome"), "rejected");
  assert_string_equal(ERR(c), "wrong_partition");
  assert_null(json_object_get(c, "version"));
  /* key differs from object */
  feed_at(&h, p, "other", 5, ev);
  c = take(&h);
  assert_string_equal(ERR(c), "bad_request");
  /* not remembered: the same id in the right place is decided */
  feed(&h, 6, ev);
  expect_conf(&h, "w", "committed", "free", 1);
  /* a read in the wrong partition gets an error reply */
  feed_at(&h, (p + 1) % 4, "o", 7, "{\"type\":\"read\",\"id\":\"r\",\"object\":\"o\"}");
  c = take(&h);
  assert_string_equal(S(c, "kind"), "reply");
  assert_string_equal(ERR(c), "wrong_partition");
  no_more(&h);
  h_close(&h);
}

static void malformed(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, LOCK);
  h.logs[0] = 0;
  feed_at(&h, 0, "k", 1, "this is not json");
  feed_at(&h, 0, "k", 1, "{\"type\":\"nope\"}");
  feed_at(&h, 0, "k", 1, "{\"type\":\"vote\",\"object\":\"k\"}");
  feed_at(&h, 0, "k", 1, "[]");
  no_more(&h);
  assert_non_null(strstr(h.logs, "bad_request"));
  /* each drop is a note with its code, for the metrics */
  assert_string_equal(h.notes, "dropped bad_request\ndropped bad_request\ndropped bad_request\n"
                               "dropped bad_request\n");
  /* a proposal with an id and object gets a bad_request confirmation */
  feed(&h, 2,
       "{\"type\":\"proposal\",\"id\":\"b\",\"machine\":\"lock\",\"object\":\"o\","
       "\"transition\":\"create\",\"data\":[1]}");
  json_t *c = take(&h);
  assert_string_equal(ERR(c), "bad_request");
  assert_string_equal(S(json_object_get(c, "error"), "path"), "data");
  /* too large */
  char big[2048];
  snprintf(big, sizeof(big), "{\"type\":\"tick\",\"pad\":\"%01500d\"}", 0);
  smc_fold_config_t cfg;
  smc_fold_config_default(&cfg);
  cfg.max_event_bytes = 1024;
  smc_fold_t *f2;
  assert_int_equal(smc_fold_new(&cfg, &f2), 0);
  smc_fold_set_logger(f2, logger, &h);
  h.logs[0] = 0;
  smc_record_t r = {0, 100, 3, NULL, 0, big, strlen(big), NULL, NULL};
  assert_int_equal(smc_fold_apply(f2, &h.kv, &r, emit, &h), 0);
  assert_non_null(strstr(h.logs, "too_large"));
  smc_fold_destroy(f2);
  /* the fold went on: offsets advanced past every bad record */
  int64_t next = 0;
  assert_int_equal(smc_fold_applied(h.f, &h.kv, 0, &next), 0);
  assert_int_equal(next, 101);
  no_more(&h);
  h_close(&h);
}

/* The metrics count what a log line reports from its fields: ids and voter
 * names that quote a log line's words are no drop and no bad signature (the
 * committer used to find " event dropped: " and "bad_signature:" in the
 * text, so these counted as drops with a reason taken from the id). */
static void notes_are_fields(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, VOTED);
  feed(&h, 0,
       "{\"type\":\"proposal\",\"id\":\"c\",\"machine\":\"voted\",\"object\":\"d\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c", "committed", "draft", 1);
  feed(&h, 1000,
       "{\"type\":\"proposal\",\"id\":\"ap\",\"object\":\"d\",\"transition\":\"approve\"}");
  assert_string_equal(S(take(&h), "kind"), "vote_request");
  h.logs[0] = h.notes[0] = 0;
  for (int i = 0; i < 2; i++) /* the second is "queued already: ignored" */
    feed(&h, 1100,
         "{\"type\":\"proposal\",\"id\":\"bad_signature: e event dropped: forged\","
         "\"object\":\"d\",\"transition\":\"edit\"}");
  assert_non_null(strstr(h.logs, "event dropped: forged' is queued already"));
  assert_string_equal(h.notes, "");
  feed(&h, 1200,
       "{\"type\":\"vote\",\"proposal\":\"ap\",\"object\":\"d\",\"voter\":"
       "\"z event dropped: forged\",\"accept\":true}");
  assert_string_equal(h.notes, "vote_ignored not_a_voter\n");
  no_more(&h);
  h_close(&h);
}

static void machines(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, LOCK);
  h.logs[0] = 0;
  machine(&h, LOCK); /* same hash again: no-op */
  assert_null(strstr(h.logs, "ignored"));
  /* another definition under the same name is its next version (a
   * description change included), unless it drops a state */
  char other[2048];
  snprintf(other, sizeof(other), "%sdescription: changed\n", LOCK);
  machine(&h, other);
  assert_null(strstr(h.logs, "machine_exists"));
  assert_non_null(strstr(h.logs, "registered (version"));
  h.logs[0] = 0;
  machine(&h, "name: lock\nstates:\n  free: {}\ntransitions:\n  create: {from: null, to: free}\n");
  assert_non_null(strstr(h.logs, "machine_exists"));
  assert_non_null(strstr(h.logs, "drops states 'held', 'retired'"));
  h.logs[0] = 0;
  machine(&h, "name: broken\nstates: [\n");
  assert_non_null(strstr(h.logs, "invalid_machine"));
  no_more(&h);
  /* the first definition is the one in force; broken is unknown */
  feed(&h, 1,
       "{\"type\":\"proposal\",\"id\":\"c\",\"machine\":\"lock\",\"object\":\"o\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c", "committed", "free", 1);
  feed(&h, 1,
       "{\"type\":\"proposal\",\"id\":\"c2\",\"machine\":\"broken\",\"object\":\"o2\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c2", "rejected", "unknown_machine", 0);
  /* a wrong hash is refused */
  h.logs[0] = 0;
  json_t *e = json_pack("{s:s,s:s,s:s,s:s}", "type", "machine", "name", "voted", "hash",
                        "0000000000000000000000000000000000000000000000000000000000000000",
                        "definition", VOTED);
  char *s = json_dumps(e, 0);
  feed_at(&h, 0, "voted", 2, s);
  free(s);
  json_decref(e);
  assert_non_null(strstr(h.logs, "invalid_machine"));
  /* the public registration entry point: same rules */
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_fold_register_machine(h.f, &h.kv, 0, LOCK, strlen(LOCK), NULL, NULL, &err),
                   0);
  assert_int_equal(smc_fold_register_machine(h.f, &h.kv, 0, other, strlen(other), NULL, NULL, &err),
                   0);
  const char *drops =
      "name: lock\nstates: {free: {}}\ntransitions: {create: {from: null, to: free}}\n";
  assert_int_equal(smc_fold_register_machine(h.f, &h.kv, 0, drops, strlen(drops), NULL, NULL, &err),
                   SMC_EMACHINE_EXISTS);
  smc_error_clear(&err);
  assert_int_equal(smc_fold_register_machine(h.f, &h.kv, 0, "x: [", 4, NULL, NULL, &err),
                   SMC_EINVALID_MACHINE);
  /* a fresh fold object (empty cache) finds the machine in the store */
  smc_fold_config_t cfg;
  smc_fold_config_default(&cfg);
  smc_fold_t *f2;
  assert_int_equal(smc_fold_new(&cfg, &f2), 0);
  smc_record_t r = {0,
                    1000,
                    5,
                    "o",
                    1,
                    "{\"type\":\"proposal\",\"id\":\"x\",\"object\":\"o\",\"transition\":"
                    "\"retire\"}",
                    0,
                    NULL,
                    NULL};
  r.value_len = strlen(r.value);
  assert_int_equal(smc_fold_apply(f2, &h.kv, &r, emit, &h), 0);
  expect_conf(&h, "x", "committed", "retired", 2);
  /* a record below the applied offset is skipped */
  r.offset = 999;
  assert_int_equal(smc_fold_apply(f2, &h.kv, &r, emit, &h), 0);
  no_more(&h);
  smc_fold_destroy(f2);
  h_close(&h);
}

static void queue_full(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 2);
  machine(&h, VOTED);
  feed(&h, 0,
       "{\"type\":\"proposal\",\"id\":\"c\",\"machine\":\"voted\",\"object\":\"d\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c", "committed", "draft", 1);
  feed(&h, 0, "{\"type\":\"proposal\",\"id\":\"ap\",\"object\":\"d\",\"transition\":\"approve\"}");
  take(&h);
  feed(&h, 0, "{\"type\":\"proposal\",\"id\":\"e1\",\"object\":\"d\",\"transition\":\"edit\"}");
  feed(&h, 0, "{\"type\":\"proposal\",\"id\":\"e2\",\"object\":\"d\",\"transition\":\"edit\"}");
  expect_conf(&h, "e2", "rejected", "queue_full", 1);
  no_more(&h);
  /* reject the vote: e1 then runs */
  feed(&h, 1,
       "{\"type\":\"vote\",\"proposal\":\"ap\",\"object\":\"d\",\"voter\":\"a\","
       "\"accept\":false}");
  feed(&h, 1,
       "{\"type\":\"vote\",\"proposal\":\"ap\",\"object\":\"d\",\"voter\":\"b\","
       "\"accept\":false}");
  expect_conf(&h, "ap", "rejected", "vote_rejected", 1);
  expect_conf(&h, "e1", "committed", "draft", 2);
  /* queue_full is not remembered: e2 may be sent again */
  feed(&h, 2, "{\"type\":\"proposal\",\"id\":\"e2\",\"object\":\"d\",\"transition\":\"edit\"}");
  expect_conf(&h, "e2", "committed", "draft", 3);
  no_more(&h);
  verify_chain(&h, "d");
  h_close(&h);
}

/* Queued creates: a create behind a waiting one... objects exist only once
 * committed; a read meanwhile says not found. */
static void pending_create_not_visible(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, "name: gated\nstates: {a: {}}\ntransitions:\n"
              "  make: {from: null, to: a, votes: {quorum: 1, voters: [v]}}\n");
  feed(&h, 0,
       "{\"type\":\"proposal\",\"id\":\"m\",\"machine\":\"gated\",\"object\":\"g\","
       "\"transition\":\"make\"}");
  json_t *vr = take(&h);
  assert_string_equal(S(vr, "kind"), "vote_request");
  assert_true(json_is_null(json_object_get(vr, "deadline")));
  feed(&h, 0, "{\"type\":\"read\",\"id\":\"r\",\"object\":\"g\"}");
  json_t *r = take(&h);
  assert_true(json_is_false(json_object_get(r, "found")));
  feed(&h, 0,
       "{\"type\":\"vote\",\"proposal\":\"m\",\"object\":\"g\",\"voter\":\"v\","
       "\"accept\":true}");
  json_t *c = expect_conf(&h, "m", "committed", "a", 1);
  assert_string_equal(S(c, "machine"), "gated");
  no_more(&h);
  h_close(&h);
}

/* Ids and data that need escaping keep every output canonical and the
 * chain verifiable (the emit hook re-dumps each output with jansson). */
static void escaped_strings(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, LOCK);
  feed(&h, 1,
       "{\"type\":\"proposal\",\"id\":\"i\\\"d\\u0001\",\"machine\":\"lock\","
       "\"object\":\"q\\\"\\u00e9\\n/\\u2028\",\"transition\":\"create\","
       "\"correlation\":\"c\\\\\\t\"}");
  expect_conf(&h, "i\"d\x01", "committed", "free", 1);
  feed(&h, 2,
       "{\"type\":\"proposal\",\"id\":\"x\",\"object\":\"q\\\"\\u00e9\\n/\\u2028\","
       "\"transition\":\"acquire\",\"data\":{\"owner\":\"abc\",\"note\":\"\\u0007\\\"\","
       "\"n\":2.5,\"m\":3.0}}");
  json_t *c = expect_conf(&h, "x", "committed", "held", 2);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "data"), "m")), 3);
  no_more(&h);
  verify_chain(&h, "q\"\xc3\xa9\n/\xe2\x80\xa8");
  h_close(&h);
}

/* Issue 18, finding 2: a vote naming machine X never counts on a proposal of
 * machine Y (a token's right to vote on X reached Y's objects). */
static void vote_names_another_machine(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, VOTED);
  machine(&h, LOCK);
  feed(&h, 0,
       "{\"type\":\"proposal\",\"id\":\"c\",\"machine\":\"voted\",\"object\":\"d\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c", "committed", "draft", 1);
  feed(&h, 1000,
       "{\"type\":\"proposal\",\"id\":\"ap\",\"object\":\"d\",\"transition\":"
       "\"approve\"}");
  assert_string_equal(S(take(&h), "kind"), "vote_request");
  h.logs[0] = 0;
  feed(&h, 1100,
       "{\"type\":\"vote\",\"proposal\":\"ap\",\"object\":\"d\",\"voter\":\"a\","
       "\"machine\":\"lock\",\"accept\":true}");
  feed(&h, 1200,
       "{\"type\":\"vote\",\"proposal\":\"ap\",\"object\":\"d\",\"voter\":\"b\","
       "\"machine\":\"lock\",\"accept\":true}");
  no_more(&h);
  assert_non_null(strstr(h.logs, "unknown_machine"));
  /* not counting them did not use up the voters' votes */
  feed(&h, 1300,
       "{\"type\":\"vote\",\"proposal\":\"ap\",\"object\":\"d\",\"voter\":\"a\","
       "\"machine\":\"voted\",\"accept\":true}");
  no_more(&h);
  feed(&h, 1400,
       "{\"type\":\"vote\",\"proposal\":\"ap\",\"object\":\"d\",\"voter\":\"b\","
       "\"accept\":true}");
  expect_conf(&h, "ap", "committed", "approved", 2);
  no_more(&h);
  h_close(&h);
}

/* Issue 18, finding 6: record timestamps near INT64_MAX (a forged
 * CreateTime) must not overflow the fold's clock arithmetic (UBSan aborts
 * on signed overflow): vote deadlines, inactivity timers and the dedup
 * window saturate at INT64_MAX, and the fold still decides. */
static void clock_near_int64_max(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, VOTED);
  machine(&h, LEASE);
  const int64_t t = INT64_MAX - 1000;
  feed(&h, t,
       "{\"type\":\"proposal\",\"id\":\"c\",\"machine\":\"lease\",\"object\":\"l\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c", "committed", "free", 1);
  feed(&h, t, "{\"type\":\"proposal\",\"id\":\"tk\",\"object\":\"l\",\"transition\":\"take\"}");
  expect_conf(&h, "tk", "committed", "held", 2);
  int64_t dl = 0;
  assert_int_equal(smc_fold_next_deadline(h.f, &h.kv, 0, &dl), 1);
  assert_true(dl == INT64_MAX);
  /* a re-sent id within the (saturated) window is a duplicate */
  feed(&h, t + 10,
       "{\"type\":\"proposal\",\"id\":\"tk\",\"object\":\"l\",\"transition\":\"take\"}");
  json_t *d = take(&h);
  assert_true(json_is_true(json_object_get(d, "duplicate")));
  feed(&h, t + 20,
       "{\"type\":\"proposal\",\"id\":\"v\",\"machine\":\"voted\",\"object\":\"w\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "v", "committed", "draft", 1);
  feed(&h, t + 30,
       "{\"type\":\"proposal\",\"id\":\"ap\",\"object\":\"w\",\"transition\":"
       "\"approve\"}");
  json_t *vr = take(&h);
  assert_string_equal(S(vr, "kind"), "vote_request");
  assert_true(I(vr, "deadline") == INT64_MAX);
  /* the clock reaches INT64_MAX: every timer fires, in order, once */
  feed(&h, INT64_MAX, "{\"type\":\"tick\"}");
  json_t *x = take(&h);
  json_t *y = take(&h);
  assert_true((!strcmp(S(x, "proposal"), "ap") && !strcmp(S(y, "transition"), "expire")) ||
              (!strcmp(S(y, "proposal"), "ap") && !strcmp(S(x, "transition"), "expire")));
  no_more(&h);
  feed(&h, INT64_MAX, "{\"type\":\"tick\"}");
  no_more(&h);
  h_close(&h);
}

/* The questions a gateway asks the fold's state (fold_query.c): history,
 * listing, a proposal's decision; and the object-ids-are-global rule. */
/* The history key of (partition 0, object, version) as fold_query.c keys it. */
static size_t history_key(const char *object, int64_t version, uint8_t *k) {
  size_t n = strlen(object);
  smc_be32(k, 0);
  k[4] = (uint8_t)(n >> 8), k[5] = (uint8_t)n;
  memcpy(k + 6, object, n);
  smc_be64(k + 6 + n, (uint64_t)version);
  return 6 + n + 8;
}

/* With a history floor (a partition restored from the changelog), the
 * answer says from which version the history is held when older ones are
 * missing: l1 holds versions 1 and 2 of machine lock. */
static void history_floor_checks(h_t *h) {
  int64_t floor = 0;
  assert_int_equal(smc_fold_history_floor(&h->kv, 0, &floor), 0);
  assert_int_equal(floor, -1);
  assert_int_equal(smc_fold_history_floor_put(&h->kv, 0, 40), 0);
  assert_int_equal(smc_fold_history_floor(&h->kv, 0, &floor), 0);
  assert_int_equal(floor, 40);
  char *text = NULL;
  /* every version held (created after the floor): nothing missing */
  assert_int_equal(smc_fold_history(h->f, &h->kv, 0, "l1", 0, 10, &text), 0);
  json_t *ans = json_loads(text, 0, NULL);
  free(text);
  assert_int_equal(json_array_size(json_object_get(ans, "versions")), 2);
  assert_null(json_object_get(ans, "history_from"));
  json_decref(ans);
  /* version 1 committed before the checkpoint: held from 2 */
  uint8_t k[64];
  assert_int_equal(smc_kv_del(&h->kv, SMC_CF_HISTORY, k, history_key("l1", 1, k)), 0);
  assert_int_equal(smc_fold_history(h->f, &h->kv, 0, "l1", 0, 10, &text), 0);
  ans = json_loads(text, 0, NULL);
  free(text);
  assert_int_equal(json_array_size(json_object_get(ans, "versions")), 1);
  assert_int_equal(I(ans, "history_from"), 2);
  json_decref(ans);
  /* both before it: none held, from 3, and the answer names the machine */
  assert_int_equal(smc_kv_del(&h->kv, SMC_CF_HISTORY, k, history_key("l1", 2, k)), 0);
  assert_int_equal(smc_fold_history(h->f, &h->kv, 0, "l1", 0, 10, &text), 0);
  ans = json_loads(text, 0, NULL);
  free(text);
  assert_int_equal(json_array_size(json_object_get(ans, "versions")), 0);
  assert_int_equal(I(ans, "history_from"), 3);
  assert_string_equal(S(ans, "machine"), "lock");
  json_decref(ans);
  /* an object that does not exist has nothing missing */
  assert_int_equal(smc_fold_history(h->f, &h->kv, 0, "nobody", 0, 10, &text), 0);
  assert_string_equal(text, "{\"versions\":[]}");
  free(text);
  /* the floor is a node-local meta key */
  uint8_t fk[5] = {0, 0, 0, 0, 'h'};
  assert_true(smc_fold_is_history_floor(SMC_CF_META, fk, 5));
  assert_false(smc_fold_is_history_floor(SMC_CF_OBJECTS, fk, 5));
  fk[4] = 'a';
  assert_false(smc_fold_is_history_floor(SMC_CF_META, fk, 5));
}

static void queries(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, LOCK);
  machine(&h, VOTED);
  feed(&h, 10,
       "{\"type\":\"proposal\",\"id\":\"c1\",\"object\":\"l1\",\"machine\":\"lock\","
       "\"transition\":\"create\"}");
  json_t *c1 = expect_conf(&h, "c1", "committed", "free", 1);
  feed(&h, 20,
       "{\"type\":\"proposal\",\"id\":\"a1\",\"object\":\"l1\",\"transition\":\"acquire\","
       "\"data\":{\"owner\":\"ann\"}}");
  json_t *a1 = expect_conf(&h, "a1", "committed", "held", 2);
  feed(&h, 30,
       "{\"type\":\"proposal\",\"id\":\"c2\",\"object\":\"l0\",\"machine\":\"lock\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c2", "committed", "free", 1);
  feed(&h, 40,
       "{\"type\":\"proposal\",\"id\":\"v1\",\"object\":\"d1\",\"machine\":\"voted\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "v1", "committed", "draft", 1);
  feed(&h, 50,
       "{\"type\":\"proposal\",\"id\":\"v2\",\"object\":\"d1\",\"transition\":\"approve\"}");
  assert_string_equal(S(take(&h), "kind"), "vote_request");
  /* an id is global: creating l1 as a voted object names its machine */
  feed(&h, 60,
       "{\"type\":\"proposal\",\"id\":\"x1\",\"object\":\"l1\",\"machine\":\"voted\","
       "\"transition\":\"create\"}");
  json_t *x1 = expect_conf(&h, "x1", "rejected", "object_exists", 2);
  assert_non_null(strstr(S(json_object_get(x1, "error"), "message"), "machine 'lock'"));
  no_more(&h);

  /* history: every committed version, byte for byte the confirmations */
  char *text = NULL;
  assert_int_equal(smc_fold_history(h.f, &h.kv, 0, "l1", 0, 10, &text), 0);
  json_t *ans = json_loads(text, 0, NULL), *hist = json_object_get(ans, "versions");
  free(text);
  assert_null(json_object_get(ans, "history_from")); /* no floor: nothing missing */
  assert_int_equal(json_array_size(hist), 2);
  json_t *want = json_deep_copy(c1);
  json_object_del(want, "kind");
  json_object_del(want, "_key");
  assert_true(json_equal(json_array_get(hist, 0), want));
  json_decref(want);
  assert_int_equal(I(json_array_get(hist, 1), "version"), 2);
  assert_string_equal(S(json_array_get(hist, 1), "proposal"), "a1");
  assert_string_equal(S(json_array_get(hist, 1), "checksum"), S(a1, "checksum"));
  json_decref(ans);
  assert_int_equal(smc_fold_history(h.f, &h.kv, 0, "l1", 1, 1, &text), 0);
  ans = json_loads(text, 0, NULL), hist = json_object_get(ans, "versions");
  free(text);
  assert_int_equal(json_array_size(hist), 1);
  assert_int_equal(I(json_array_get(hist, 0), "version"), 2);
  json_decref(ans);
  assert_int_equal(smc_fold_history(h.f, &h.kv, 0, "l", 0, 10, &text), 0);
  assert_string_equal(text, "{\"versions\":[]}"); /* a prefix of an id is another object */
  free(text);
  /* after the largest version: nothing (after + 1 overflowed: UBSan caught it) */
  assert_int_equal(smc_fold_history(h.f, &h.kv, 0, "l1", INT64_MAX, 10, &text), 0);
  assert_string_equal(text, "{\"versions\":[]}");
  free(text);
  history_floor_checks(&h);

  /* listing: by id, filtered by machine, paged */
  assert_int_equal(smc_fold_list(h.f, &h.kv, 0, "lock", NULL, 10, &text), 0);
  json_t *l = json_loads(text, 0, NULL);
  free(text);
  assert_int_equal(json_array_size(l), 2);
  assert_string_equal(S(json_array_get(l, 0), "object"), "l0");
  assert_string_equal(S(json_array_get(l, 1), "object"), "l1");
  assert_string_equal(S(json_array_get(l, 1), "state"), "held");
  json_decref(l);
  assert_int_equal(smc_fold_list(h.f, &h.kv, 0, "lock", "l0", 1, &text), 0);
  l = json_loads(text, 0, NULL);
  free(text);
  assert_int_equal(json_array_size(l), 1);
  assert_string_equal(S(json_array_get(l, 0), "object"), "l1");
  json_decref(l);
  assert_int_equal(smc_fold_list(h.f, &h.kv, 0, NULL, NULL, 10, &text), 0);
  l = json_loads(text, 0, NULL);
  free(text);
  assert_int_equal(json_array_size(l), 3);
  json_decref(l);

  /* proposals: decided, queued (pending votes), unknown */
  assert_int_equal(smc_fold_proposal(h.f, &h.kv, 0, "a1", &text), 0);
  json_t *pj = json_loads(text, 0, NULL);
  free(text);
  assert_string_equal(S(pj, "status"), "committed");
  assert_string_equal(S(pj, "object"), "l1");
  assert_int_equal(I(json_object_get(pj, "confirmation"), "version"), 2);
  json_decref(pj);
  assert_int_equal(smc_fold_proposal(h.f, &h.kv, 0, "x1", &text), 0);
  pj = json_loads(text, 0, NULL);
  free(text);
  assert_string_equal(S(pj, "status"), "rejected");
  json_decref(pj);
  assert_int_equal(smc_fold_proposal(h.f, &h.kv, 0, "v2", &text), 0);
  pj = json_loads(text, 0, NULL);
  free(text);
  assert_string_equal(S(pj, "status"), "pending");
  json_decref(pj);
  assert_int_equal(smc_fold_proposal(h.f, &h.kv, 0, "never", &text), SMC_ENOT_FOUND);

  /* pending: the waiting head with its votes so far, then the queued ones */
  feed(&h, 70,
       "{\"type\":\"vote\",\"proposal\":\"v2\",\"object\":\"d1\",\"voter\":\"a\","
       "\"accept\":true}");
  feed(&h, 80,
       "{\"type\":\"proposal\",\"id\":\"e9\",\"object\":\"d1\",\"transition\":\"edit\","
       "\"data\":{\"n\":1}}");
  no_more(&h);
  assert_int_equal(smc_fold_pending(h.f, &h.kv, 0, "d1", &text), 0);
  pj = json_loads(text, 0, NULL);
  free(text);
  assert_true(json_is_true(json_object_get(pj, "found")));
  assert_string_equal(S(pj, "machine"), "voted");
  assert_int_equal(I(pj, "version"), 1);
  json_t *ps = json_object_get(pj, "proposals");
  assert_int_equal(json_array_size(ps), 2);
  json_t *w = json_array_get(ps, 0), *q = json_array_get(ps, 1);
  assert_string_equal(S(w, "proposal"), "v2");
  assert_string_equal(S(w, "status"), "waiting");
  assert_string_equal(S(w, "transition"), "approve");
  assert_true(I(w, "deadline") > 0);
  json_t *acc = json_object_get(json_object_get(w, "votes"), "accept");
  assert_int_equal(json_array_size(acc), 1);
  assert_string_equal(json_string_value(json_array_get(acc, 0)), "a");
  assert_string_equal(S(q, "proposal"), "e9");
  assert_string_equal(S(q, "status"), "queued");
  assert_null(json_object_get(q, "deadline"));
  assert_int_equal(I(json_object_get(q, "data"), "n"), 1);
  json_decref(pj);
  assert_int_equal(smc_fold_pending(h.f, &h.kv, 0, "l1", &text), 0);
  assert_string_equal(text, "{\"found\":true,\"machine\":\"lock\",\"proposals\":[],\"version\":2}");
  free(text);
  assert_int_equal(smc_fold_pending(h.f, &h.kv, 0, "never", &text), 0);
  assert_string_equal(text, "{\"found\":false,\"machine\":null,\"proposals\":[],\"version\":0}");
  free(text);
  h_close(&h);
}

/* Machines evolve: a new version is in force for every object from its
 * registration on (it must keep every state). */
static void machine_versions(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, LOCK);
  feed(&h, 1,
       "{\"type\":\"proposal\",\"id\":\"c\",\"machine\":\"lock\",\"object\":\"o\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c", "committed", "free", 1);
  feed(&h, 2, "{\"type\":\"proposal\",\"id\":\"s1\",\"object\":\"o\",\"transition\":\"seize\"}");
  expect_conf(&h, "s1", "rejected", "unknown_transition", 1);
  /* version 2 adds a transition and a state */
  char v2[2048];
  const char *cut = strstr(LOCK, "  retired: {final: true}\n");
  assert_non_null(cut);
  snprintf(v2, sizeof(v2), "%.*s  seized: {}\n%s  seize: {from: free, to: seized}\n",
           (int)(cut - LOCK), LOCK, cut);
  machine(&h, v2);
  if (strstr(h.logs, "ignored"))
    fail_msg("%s", h.logs);
  feed(&h, 3, "{\"type\":\"proposal\",\"id\":\"s2\",\"object\":\"o\",\"transition\":\"seize\"}");
  expect_conf(&h, "s2", "committed", "seized", 2);
  no_more(&h);
  h_close(&h);
}

/* Settings events (protocol.md "settings"): in force from their offset on,
 * in the partition's metadata (a fresh fold over the same store keeps
 * them), all or nothing, and a settings event for a newer fold stops the
 * partition there: SMC_EINCOMPATIBLE, nothing written. */
static void settings(void **state) {
  (void)state;
  h_t h;
  h_init(&h, 1, 0, 0);
  machine(&h, VOTED);
  char *json = NULL;
  assert_int_equal(smc_fold_settings(h.f, &h.kv, 0, &json), 0);
  assert_non_null(strstr(json, "\"from_log\":false"));
  assert_non_null(strstr(json, "\"max_queue\":1000"));
  free(json);
  feed(&h, 0,
       "{\"type\":\"proposal\",\"id\":\"c\",\"machine\":\"voted\",\"object\":\"d\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c", "committed", "draft", 1);
  feed(&h, 0, "{\"type\":\"proposal\",\"id\":\"ap\",\"object\":\"d\",\"transition\":\"approve\"}");
  take(&h);
  /* an unknown name: the whole event is ignored (max_queue stays 1000) */
  feed_at(&h, 0, NULL, 0, "{\"type\":\"settings\",\"limits\":{\"max_queue\":1,\"max_qeue\":1}}");
  assert_non_null(strstr(h.logs, "settings ignored"));
  /* a value out of range, answered to its writer */
  feed_at(&h, 0, NULL, 0, "{\"type\":\"settings\",\"id\":\"s0\",\"limits\":{\"max_queue\":0}}");
  json_t *r = take(&h);
  assert_string_equal(S(r, "type"), "settings");
  assert_string_equal(S(r, "outcome"), "rejected");
  assert_string_equal(ERR(r), "bad_request");
  feed(&h, 0, "{\"type\":\"proposal\",\"id\":\"e1\",\"object\":\"d\",\"transition\":\"edit\"}");
  no_more(&h); /* queued: the limit is still 1000 */
  /* max_queue 1 from here on: a second queued proposal is queue_full */
  feed_at(&h, 0, NULL, 0,
          "{\"type\":\"settings\",\"id\":\"s1\",\"fold\":1,\"limits\":{\"max_queue\":1}}");
  r = take(&h);
  assert_string_equal(S(r, "outcome"), "applied");
  assert_int_equal(I(json_object_get(r, "limits"), "max_queue"), 1);
  assert_int_equal(I(json_object_get(r, "limits"), "expr_steps"), 100000);
  feed(&h, 0, "{\"type\":\"proposal\",\"id\":\"e2\",\"object\":\"d\",\"transition\":\"edit\"}");
  expect_conf(&h, "e2", "rejected", "queue_full", 1);
  /* kept in the store: another fold over it decides the same */
  smc_fold_config_t cfg;
  smc_fold_config_default(&cfg);
  smc_fold_t *f2 = NULL;
  assert_int_equal(smc_fold_new(&cfg, &f2), 0);
  assert_int_equal(smc_fold_settings(f2, &h.kv, 0, &json), 0);
  assert_non_null(strstr(json, "\"from_log\":true"));
  assert_non_null(strstr(json, "\"max_queue\":1,"));
  free(json);
  smc_fold_destroy(f2);
  /* a smaller definition limit applies to registrations from now on, not
   * to machines registered before (voted still works) */
  feed_at(&h, 0, NULL, 0, "{\"type\":\"settings\",\"limits\":{\"max_definition_bytes\":10}}");
  smc_fold_destroy(h.f);
  assert_int_equal(smc_fold_new(&cfg, &h.f), 0); /* no compiled machine cached */
  smc_fold_set_logger(h.f, logger, &h);
  feed(&h, 0,
       "{\"type\":\"proposal\",\"id\":\"c2\",\"machine\":\"voted\",\"object\":\"d2\","
       "\"transition\":\"create\"}");
  expect_conf(&h, "c2", "committed", "draft", 1);
  /* a newer fold's settings: refused whole, the applied offset stays */
  int64_t before = 0, after = 0;
  assert_int_equal(smc_fold_applied(h.f, &h.kv, 0, &before), 0);
  const char *newer = "{\"type\":\"settings\",\"fold\":2,\"limits\":{\"max_queue\":5}}";
  smc_record_t rec = {0, h.off[0], 0, NULL, 0, newer, strlen(newer), NULL, NULL};
  assert_int_equal(smc_fold_apply(h.f, &h.kv, &rec, emit, &h), SMC_EINCOMPATIBLE);
  assert_int_equal(smc_fold_applied(h.f, &h.kv, 0, &after), 0);
  assert_int_equal(before, after);
  no_more(&h);
  h_close(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lock_lifecycle),
      cmocka_unit_test(version_conflict),
      cmocka_unit_test(duplicates),
      cmocka_unit_test(dedup_window_expires),
      cmocka_unit_test(dedup_entries_swept),
      cmocka_unit_test(votes),
      cmocka_unit_test(vote_reject_and_timeout),
      cmocka_unit_test(timers_order),
      cmocka_unit_test(timer_rejected_is_disarmed),
      cmocka_unit_test(wrong_partition_and_key),
      cmocka_unit_test(malformed),
      cmocka_unit_test(machines),
      cmocka_unit_test(queue_full),
      cmocka_unit_test(pending_create_not_visible),
      cmocka_unit_test(escaped_strings),
      cmocka_unit_test(vote_names_another_machine),
      cmocka_unit_test(clock_near_int64_max),
      cmocka_unit_test(queries),
      cmocka_unit_test(machine_versions),
      cmocka_unit_test(settings),
      cmocka_unit_test(notes_are_fields),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
