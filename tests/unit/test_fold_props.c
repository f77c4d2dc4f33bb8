/*
 * Property tests of the fold over thousands of seeded random logs (creates,
 * valid and invalid proposals, votes, reads, ticks, duplicates, malformed
 * and misplaced events, on three machines with rules, votes and timers):
 *  - the same log gives the same output bytes;
 *  - a log split at a random point (state carried over in a second overlay,
 *    or in RocksDB closed and reopened at the split, with a fresh fold
 *    object) gives the same output bytes, and re-fed records are skipped;
 *  - per object, committed versions are 1, 2, 3... without gaps;
 *  - every proposal id is decided at most once per partition (duplicate
 *    re-emits and unrecorded rejections aside);
 *  - every object's checksum chain verifies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "core/kv.h"
#include "core/util.h"
#include "smc/fold.h"
#include "store/store.h"

static const char LOCK[] =
    "name: lock\nstates:\n  free: {}\n  held:\n    fields:\n"
    "      owner: {type: string, required: true}\n  retired: {final: true}\n"
    "transitions:\n  create: {from: null, to: free}\n"
    "  acquire: {from: free, to: held, $dst: {owner: {type: string, required: true, "
    "regex: '^[a-z]+$'}}}\n"
    "  release: {from: held, to: free, $src: {owner: {eq: '${input.owner}'}}, "
    "set: {owner: null}}\n"
    "  retire: {from: free, to: retired}\n";
static const char VOTED[] =
    "name: voted\nstates: {draft: {}, approved: {}}\n"
    "transitions:\n  create: {from: null, to: draft}\n"
    "  approve: {from: draft, to: approved, votes: {quorum: 2, voters: [a, b, c], "
    "timeout: 10s}}\n  edit: {from: '*', to: draft}\n";
static const char LEASE[] =
    "name: lease\nstates: {free: {}, held: {}}\n"
    "transitions:\n  create: {from: null, to: free}\n  take: {from: free, to: held}\n"
    "  renew: {from: held, to: held}\n  expire: {from: held, to: free, after: 30s}\n";

static const char *const MACHINES[] = {LOCK, VOTED, LEASE};
static const char *const MNAMES[] = {"lock", "voted", "lease"};
static const char *const TRANS[] = {"create", "acquire", "release", "retire", "approve",
                                    "edit",   "take",    "renew",   "expire", "nope"};
static const char *const OWNERS[] = {"alice", "bob", "BAD!"};
static const char *const VOTERS[] = {"a", "b", "c", "zed"};

typedef struct rec {
  int32_t p;
  int64_t off, t;
  char *key;
  char *value;
} rec_t;

typedef struct logv {
  rec_t *r;
  size_t n, cap;
  int32_t parts;
} logv_t;

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}
#define R(n) ((int)(rnd(s) % (uint64_t)(n)))

static void add(logv_t *l, int32_t p, int64_t t, const char *key, const char *value,
                int64_t *next) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->r = realloc(l->r, l->cap * sizeof(rec_t));
  }
  rec_t *r = &l->r[l->n++];
  r->p = p;
  r->off = next[p]++;
  r->t = t;
  r->key = key ? strdup(key) : NULL;
  r->value = strdup(value);
}

/* A random log; every partition starts with the machine registrations. */
static void gen(uint64_t seed, logv_t *l) {
  uint64_t st = seed * 0x9e3779b97f4a7c15ull + 1, *s = &st;
  memset(l, 0, sizeof(*l));
  l->parts = 1 + R(3);
  int64_t next[4] = {0}, t = 1000;
  for (int32_t p = 0; p < l->parts; p++)
    for (int m = 0; m < 3; m++) {
      json_t *e = json_pack("{s:s,s:s,s:s}", "type", "machine", "name", MNAMES[m], "definition",
                            MACHINES[m]);
      char *v = json_dumps(e, JSON_COMPACT);
      add(l, p, 0, MNAMES[m], v, next);
      free(v);
      json_decref(e);
    }
  int nobj = 2 + R(5), n = 20 + R(80);
  char pids[16][16];
  int npids = 0;
  for (int i = 0; i < n; i++) {
    t += R(8) == 0 ? R(40000) : R(3000);
    if (R(20) == 0)
      t -= 500; /* a timestamp going back: the clock does not */
    char obj[16];
    snprintf(obj, sizeof(obj), "o%d", R(nobj));
    int32_t p = smc_partition_for(obj, strlen(obj), l->parts);
    const char *key = obj;
    json_t *e = NULL;
    char *raw = NULL;
    int kind = R(100);
    if (kind < 50) { /* proposal */
      e = json_pack("{s:s,s:s}", "type", "proposal", "object", obj);
      if (R(4)) {
        char id[16];
        snprintf(id, sizeof(id), "p%d", R(40));
        json_object_set_new(e, "id", json_string(id));
        if (npids < 16)
          snprintf(pids[npids++], 16, "%s", id);
        else
          snprintf(pids[R(16)], 16, "%s", id);
      }
      /* mostly the object's own machine (o<i> follows machine i % 3) and
       * its transitions; sometimes anything */
      static const char *const own[3][4] = {{"create", "acquire", "release", "retire"},
                                            {"create", "approve", "edit", "edit"},
                                            {"create", "take", "renew", "take"}};
      int mi = (obj[1] - '0') % 3;
      const char *tr = R(4) ? own[mi][R(4)] : TRANS[R(10)];
      json_object_set_new(e, "transition", json_string(tr));
      if (!strcmp(tr, "create") || R(6) == 0)
        json_object_set_new(e, "machine", json_string(R(5) ? MNAMES[mi] : MNAMES[R(3)]));
      if (R(2))
        json_object_set_new(e, "data", json_pack("{s:s}", "owner", OWNERS[R(3)]));
      if (R(5) == 0)
        json_object_set_new(e, "expect_version", json_integer(R(4)));
      if (R(3) == 0)
        json_object_set_new(e, "correlation", json_string("c"));
    } else if (kind < 68) { /* vote */
      e = json_pack("{s:s,s:s,s:s,s:b}", "type", "vote", "object", obj, "proposal",
                    npids ? pids[R(npids)] : "p0", "voter", VOTERS[R(4)], "accept", R(3) != 0);
    } else if (kind < 76) {
      e = json_pack("{s:s,s:s,s:s}", "type", "read", "id", "r", "object", obj);
    } else if (kind < 86) {
      e = json_pack("{s:s}", "type", "tick");
      p = R(l->parts);
      key = NULL;
    } else if (kind < 90) { /* a duplicate: re-send an earlier record as is */
      if (l->n > 3) {
        rec_t *old = &l->r[3 + R((int)l->n - 3)];
        if (old->key && strncmp(old->value, "{\"type\":\"machine\"", 17)) {
          add(l, old->p, t, old->key, old->value, next);
          continue;
        }
      }
      e = json_pack("{s:s}", "type", "tick");
      p = R(l->parts);
      key = NULL;
    } else if (kind < 94) { /* malformed */
      static const char *const bad[] = {
          "garbage", "[1]", "{\"type\":\"proposal\",\"object\":\"o1\",\"data\":7,\"id\":\"px\"}",
          "{\"type\":\"vote\",\"object\":\"o1\"}", "{\"type\":\"read\",\"object\":3}"};
      raw = strdup(bad[R(5)]);
    } else if (kind < 97) { /* misplaced: wrong partition or wrong key */
      e = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "proposal", "id", "pm", "object", obj,
                    "machine", "lock", "transition", "create");
      if (l->parts > 1)
        p = (p + 1) % l->parts;
      else
        key = "not-the-object";
    } else {
      e = json_pack("{s:s,s:s,s:s}", "type", "read", "id", "r2", "object", obj);
    }
    if (e) {
      raw = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
      json_decref(e);
    }
    add(l, p, t, key, raw, next);
    free(raw);
  }
}

static void log_free(logv_t *l) {
  for (size_t i = 0; i < l->n; i++) {
    free(l->r[i].key);
    free(l->r[i].value);
  }
  free(l->r);
}

typedef struct outbuf {
  char *p;
  size_t len, cap;
} outbuf_t;

static int emit(void *opaque, const smc_output_t *o) {
  outbuf_t *b = opaque;
  size_t need = o->json_len + strlen(o->key) + (o->reply_to ? strlen(o->reply_to) : 0) + 64;
  if (b->len + need > b->cap) {
    b->cap = (b->len + need) * 2;
    b->p = realloc(b->p, b->cap);
  }
  b->len += (size_t)sprintf(b->p + b->len, "%d|%d|%lld|%s|%s|", (int)o->kind, (int)o->partition,
                            (long long)o->offset, o->key, o->reply_to ? o->reply_to : "-");
  memcpy(b->p + b->len, o->json, o->json_len);
  b->len += o->json_len;
  b->p[b->len++] = '\n';
  b->p[b->len] = 0;
  return 0;
}

static smc_fold_t *new_fold(int32_t parts) {
  smc_fold_config_t cfg;
  smc_fold_config_default(&cfg);
  cfg.partitions = parts;
  cfg.max_queue = 3;
  smc_fold_t *f;
  assert_int_equal(smc_fold_new(&cfg, &f), 0);
  return f;
}

static void apply(smc_fold_t *f, smc_kv_t *kv, const rec_t *r, outbuf_t *out) {
  smc_record_t rec = {r->p,     r->off,           r->t, r->key, r->key ? strlen(r->key) : 0,
                      r->value, strlen(r->value), NULL, NULL};
  assert_int_equal(smc_fold_apply(f, kv, &rec, emit, out), 0);
}

static void run_whole(const logv_t *l, outbuf_t *out) {
  smc_fold_t *f = new_fold(l->parts);
  smc_overlay_t *ov = smc_overlay_new(NULL);
  smc_kv_t kv = smc_overlay_kv(ov);
  for (size_t i = 0; i < l->n; i++)
    apply(f, &kv, &l->r[i], out);
  smc_overlay_destroy(ov);
  smc_fold_destroy(f);
}

static int copy_fn(void *opaque, smc_cf_t cf, const void *key, size_t klen, const void *val,
                   size_t vlen) {
  smc_kv_t *dst = opaque;
  return val ? smc_kv_put(dst, cf, key, klen, val, vlen) : smc_kv_del(dst, cf, key, klen);
}

/* Split at `at`: the first part in one overlay and fold object, its state
 * copied into a second overlay and folded on with a fresh fold object.
 * Records before the split are re-fed first and must be skipped. */
static void run_split_overlay(const logv_t *l, size_t at, outbuf_t *out) {
  smc_fold_t *f = new_fold(l->parts);
  smc_overlay_t *ov = smc_overlay_new(NULL);
  smc_kv_t kv = smc_overlay_kv(ov);
  for (size_t i = 0; i < at; i++)
    apply(f, &kv, &l->r[i], out);
  smc_fold_destroy(f);
  smc_overlay_t *ov2 = smc_overlay_new(NULL);
  smc_kv_t kv2 = smc_overlay_kv(ov2);
  assert_int_equal(smc_overlay_foreach(ov, copy_fn, &kv2), 0);
  smc_overlay_destroy(ov);
  f = new_fold(l->parts);
  size_t before = out->len;
  for (size_t i = at > 5 ? at - 5 : 0; i < at; i++)
    apply(f, &kv2, &l->r[i], out);
  assert_int_equal(out->len, before);
  for (size_t i = at; i < l->n; i++)
    apply(f, &kv2, &l->r[i], out);
  smc_overlay_destroy(ov2);
  smc_fold_destroy(f);
}

/* The same through RocksDB: batches of up to 7 records per atomic write,
 * the store closed and reopened at the split. */
static void run_split_store(const logv_t *l, size_t at, const char *dir, outbuf_t *out) {
  smc_error_t err;
  smc_store_t *st = NULL;
  smc_error_clear(&err);
  assert_int_equal(smc_store_open(dir, NULL, &st, &err), 0);
  for (int phase = 0; phase < 2; phase++) {
    smc_kv_t base = smc_store_kv(st);
    smc_overlay_t *ov = smc_overlay_new(&base);
    smc_kv_t kv = smc_overlay_kv(ov);
    smc_fold_t *f = new_fold(l->parts);
    size_t from = phase ? at : 0, to = phase ? l->n : at;
    for (size_t i = from; i < to; i++) {
      apply(f, &kv, &l->r[i], out);
      if (i % 7 == 6 || i + 1 == to) {
        assert_int_equal(smc_store_apply(st, ov, &err), 0);
        smc_overlay_clear(ov);
      }
    }
    smc_fold_destroy(f);
    smc_overlay_destroy(ov);
    smc_store_close(st);
    st = NULL;
    if (!phase)
      assert_int_equal(smc_store_open(dir, NULL, &st, &err), 0);
  }
}

static void sha_hex(const char *s, size_t n, char out[65]) {
  unsigned char md[32];
  SHA256((const unsigned char *)s, n, md);
  for (int i = 0; i < 32; i++)
    sprintf(out + 2 * i, "%02x", md[i]);
}

typedef struct objst {
  char id[16];
  json_int_t version;
  char sum[65];
} objst_t;

/* Versions without gaps, ids decided once, checksum chains. */
static void check_invariants(const outbuf_t *out, uint64_t seed) {
  objst_t objs[32];
  size_t nobjs = 0;
  json_t *decided = json_object();
  char *copy = strdup(out->p ? out->p : "");
  for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    if (line[0] != '1') /* confirmations only */
      continue;
    char *js = line;
    for (int bars = 0; bars < 5; js++)
      if (*js == '|')
        bars++;
    json_t *c = json_loads(js, 0, NULL);
    assert_non_null(c);
    const char *outcome = json_string_value(json_object_get(c, "outcome"));
    const char *id = json_string_value(json_object_get(c, "proposal"));
    const char *code = json_string_value(json_object_get(json_object_get(c, "error"), "code"));
    int dup = json_is_true(json_object_get(c, "duplicate"));
    int unrecorded = code && (!strcmp(code, "bad_request") || !strcmp(code, "wrong_partition") ||
                              !strcmp(code, "queue_full"));
    if (!dup && !unrecorded) { /* ids are remembered per partition */
      char pid[64];
      snprintf(pid, sizeof(pid), "%c|%s", line[2], id);
      if (json_object_get(decided, pid))
        fail_msg("seed %llu: proposal %s decided twice", (unsigned long long)seed, pid);
      json_object_set_new(decided, pid, json_true());
    }
    if (!dup && !strcmp(outcome, "committed")) {
      const char *o = json_string_value(json_object_get(c, "object"));
      size_t k = 0;
      while (k < nobjs && strcmp(objs[k].id, o))
        k++;
      if (k == nobjs) {
        assert_true(nobjs < 32);
        snprintf(objs[k].id, sizeof(objs[k].id), "%s", o);
        objs[k].version = 0;
        memset(objs[k].sum, '0', 64);
        objs[k].sum[64] = 0;
        nobjs++;
      }
      json_int_t v = json_integer_value(json_object_get(c, "version"));
      if (v != objs[k].version + 1)
        fail_msg("seed %llu: %s went from version %lld to %lld", (unsigned long long)seed, o,
                 (long long)objs[k].version, (long long)v);
      objs[k].version = v;
      char sum[65];
      snprintf(sum, sizeof(sum), "%s", json_string_value(json_object_get(c, "checksum")));
      json_object_del(c, "checksum");
      char *text = json_dumps(c, JSON_SORT_KEYS | JSON_COMPACT);
      size_t tl = strlen(text);
      char *buf = malloc(64 + tl);
      memcpy(buf, objs[k].sum, 64);
      memcpy(buf + 64, text, tl);
      char want[65];
      sha_hex(buf, 64 + tl, want);
      if (strcmp(want, sum))
        fail_msg("seed %llu: checksum of %s v%lld does not verify", (unsigned long long)seed, o,
                 (long long)v);
      memcpy(objs[k].sum, sum, 65);
      free(buf);
      free(text);
    }
    json_decref(c);
  }
  free(copy);
  json_decref(decided);
}

typedef struct stats {
  size_t records, outputs, commits, rejects, expired, votes, dups, timers;
} stats_t;

static void count(const outbuf_t *o, stats_t *st) {
  for (const char *p = o->p; p && *p; p = strchr(p, '\n') + 1) {
    st->outputs++;
    const char *nl = strchr(p, '\n');
    const char *q;
    if ((q = strstr(p, "\"outcome\":\"committed\"")) && q < nl)
      st->commits++;
    if ((q = strstr(p, "\"outcome\":\"rejected\"")) && q < nl)
      st->rejects++;
    if ((q = strstr(p, "\"outcome\":\"expired\"")) && q < nl)
      st->expired++;
    if (p[0] == '3')
      st->votes++;
    if ((q = strstr(p, "\"duplicate\":true")) && q < nl)
      st->dups++;
    if ((q = strstr(p, "\"proposal\":\"timer:")) && q < nl)
      st->timers++;
  }
}

static void random_logs_in_memory(void **state) {
  (void)state;
  stats_t st;
  memset(&st, 0, sizeof(st));
  /* SEEDS=n overrides the number of logs */
  uint64_t nseeds = getenv("SEEDS") ? strtoull(getenv("SEEDS"), NULL, 10) : 2000;
  for (uint64_t seed = 1; seed <= nseeds; seed++) {
    logv_t l;
    gen(seed, &l);
    outbuf_t a = {0}, b = {0}, c = {0};
    run_whole(&l, &a);
    run_whole(&l, &b);
    if (a.len != b.len || memcmp(a.p, b.p, a.len))
      fail_msg("seed %llu: two runs differ", (unsigned long long)seed);
    uint64_t s = seed;
    size_t at = (size_t)(rnd(&s) % (l.n + 1));
    run_split_overlay(&l, at, &c);
    if (a.len != c.len || memcmp(a.p, c.p, a.len))
      fail_msg("seed %llu: split at %zu differs", (unsigned long long)seed, at);
    check_invariants(&a, seed);
    st.records += l.n;
    count(&a, &st);
    free(a.p);
    free(b.p);
    free(c.p);
    log_free(&l);
  }
  print_message("%llu logs, %zu records, %zu outputs: %zu committed, %zu rejected, %zu "
                "expired, %zu vote requests, %zu duplicates, %zu timer decisions\n",
                (unsigned long long)nseeds, st.records, st.outputs, st.commits, st.rejects,
                st.expired, st.votes, st.dups, st.timers);
  /* the generator must exercise every path */
  assert_true(st.commits > 1000 && st.rejects > 1000 && st.expired > 10 && st.votes > 100 &&
              st.dups > 100 && st.timers > 10);
}

static void random_logs_rocksdb(void **state) {
  (void)state;
  char tmpl[] = "/tmp/smc-fold-props-XXXXXX";
  char *root = mkdtemp(tmpl);
  assert_non_null(root);
  for (uint64_t seed = 5001; seed <= 5040; seed++) {
    logv_t l;
    gen(seed, &l);
    outbuf_t a = {0}, c = {0};
    run_whole(&l, &a);
    uint64_t s = seed;
    size_t at = (size_t)(rnd(&s) % (l.n + 1));
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/%llu", root, (unsigned long long)seed);
    run_split_store(&l, at, dir, &c);
    if (a.len != c.len || memcmp(a.p, c.p, a.len))
      fail_msg("seed %llu: RocksDB run split at %zu differs", (unsigned long long)seed, at);
    free(a.p);
    free(c.p);
    log_free(&l);
  }
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(random_logs_in_memory),
      cmocka_unit_test(random_logs_rocksdb),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
