/* Snapshots of partition state in the changelog topic (snapshot.h). */
#include "node/snapshot.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "smc/fold.h"
#include "kafka/consumer.h"
#include "kafka/kconf.h"
#include "base/metrics.h"

/* Store writes per atomic restore batch, unless the bytes come first. */
#define RESTORE_BATCH 50000
#define RESTORE_BATCH_BYTES (64u << 20)

static const char cf_tags[SMC_CF_COUNT] = {
    [SMC_CF_OBJECTS] = 'o', [SMC_CF_QUEUES] = 'q', [SMC_CF_DECIDED] = 'd', [SMC_CF_MACHINES] = 'm',
    [SMC_CF_TIMERS] = 't',  [SMC_CF_META] = 'M',   [SMC_CF_HISTORY] = 'h',
};

/* ---- encoding ----------------------------------------------------------- */

int smc_snapshot_key(smc_cf_t cf, const void *key, size_t klen, uint8_t *out, size_t cap) {
  if ((int)cf < 0 || cf >= SMC_CF_COUNT || klen < 4 || klen + 1 > cap)
    return SMC_EINVALID_ARGUMENT;
  out[0] = (uint8_t)cf_tags[cf];
  memcpy(out + 1, key, klen);
  return (int)(klen + 1);
}

int smc_snapshot_parse_key(const void *k, size_t kl, smc_snapshot_rec_t *out) {
  const uint8_t *b = k;
  memset(out, 0, sizeof *out);
  if (!k || kl < 5)
    return SMC_EINVALID_ARGUMENT;
  out->partition = (int32_t)smc_get_be32(b + 1);
  if (b[0] == SMC_SNAPSHOT_TAG_CHECKPOINT) {
    if (kl != 5)
      return SMC_EINVALID_ARGUMENT;
    out->checkpoint = 1;
    return 0;
  }
  for (int cf = 0; cf < SMC_CF_COUNT; cf++)
    if (cf_tags[cf] == (char)b[0]) {
      out->cf = (smc_cf_t)cf;
      out->key = b + 1;
      out->klen = kl - 1;
      return 0;
    }
  return SMC_EINVALID_ARGUMENT;
}

void smc_snapshot_checkpoint_key(int32_t p, uint8_t out[5]) {
  out[0] = SMC_SNAPSHOT_TAG_CHECKPOINT;
  smc_be32(out + 1, (uint32_t)p);
}

int smc_snapshot_checkpoint_encode(const smc_checkpoint_t *cp, char *out, size_t cap) {
  int n = snprintf(out, cap,
                   "{\"type\":\"checkpoint\",\"format\":%d,\"partition\":%d,\"offset\":%lld,"
                   "\"complete\":%s}",
                   SMC_SNAPSHOT_FORMAT, (int)cp->partition, (long long)cp->offset,
                   cp->complete ? "true" : "false");
  return n < 0 || (size_t)n >= cap ? SMC_EINVALID_ARGUMENT : n;
}

int smc_snapshot_checkpoint_decode(const void *v, size_t vl, smc_checkpoint_t *cp) {
  if (!v)
    return SMC_EINVALID_ARGUMENT;
  json_t *root = json_loadb(v, vl, JSON_REJECT_DUPLICATES, NULL);
  int rc = SMC_EINVALID_ARGUMENT;
  if (!root)
    return rc;
  const char *type = json_string_value(json_object_get(root, "type"));
  json_t *fmt = json_object_get(root, "format"), *part = json_object_get(root, "partition");
  json_t *off = json_object_get(root, "offset"), *comp = json_object_get(root, "complete");
  if (type && !strcmp(type, "checkpoint") && json_is_integer(fmt) &&
      json_integer_value(fmt) == SMC_SNAPSHOT_FORMAT && json_is_integer(part) &&
      json_integer_value(part) >= 0 && json_integer_value(part) <= INT32_MAX &&
      json_is_integer(off) && json_integer_value(off) >= 0 && json_is_boolean(comp)) {
    cp->partition = (int32_t)json_integer_value(part);
    cp->offset = json_integer_value(off);
    cp->complete = json_is_true(comp);
    rc = 0;
  }
  json_decref(root);
  return rc;
}

/* ---- the completeness mark ---------------------------------------------- */

static void mark_key(int32_t p, uint8_t k[5]) {
  smc_be32(k, (uint32_t)p);
  k[4] = 's';
}

int smc_snapshot_marked(smc_store_t *store, int32_t p) {
  uint8_t k[5];
  mark_key(p, k);
  smc_kv_t kv = smc_store_kv(store);
  void *v = NULL;
  size_t vl = 0;
  int rc = smc_kv_get(&kv, SMC_CF_META, k, sizeof k, &v, &vl);
  free(v);
  return rc == 0;
}

int smc_snapshot_mark(smc_store_t *store, int32_t p, int on) {
  uint8_t k[5];
  mark_key(p, k);
  smc_kv_t kv = smc_store_kv(store);
  int rc = on ? smc_kv_put(&kv, SMC_CF_META, k, sizeof k, "1", 1)
              : smc_kv_del(&kv, SMC_CF_META, k, sizeof k);
  return rc == SMC_ENOT_FOUND ? 0 : rc;
}

static int is_mark(smc_cf_t cf, const uint8_t *k, size_t kl) {
  return cf == SMC_CF_META && kl == 5 && k[4] == 's';
}

/* Node-local keys: the completeness mark and the history floor. */
static int is_local(smc_cf_t cf, const uint8_t *k, size_t kl) {
  return is_mark(cf, k, kl) || smc_fold_is_history_floor(cf, k, kl);
}

int smc_snapshot_is_local(smc_cf_t cf, const void *key, size_t klen) {
  return is_local(cf, key, klen);
}

static int is_applied(smc_cf_t cf, const uint8_t *k, size_t kl) {
  return cf == SMC_CF_META && kl == 5 && k[4] == 'a';
}

/* ---- the writer ----------------------------------------------------------- */

struct smc_snapshot {
  char *topic;
  int32_t nparts;
  _Atomic unsigned char *complete; /* [nparts] */
  uint8_t *kbuf;                   /* commit thread: the key being produced */
  size_t kcap;
  smc_snapshot_produce_fn produce; /* during a write or a dump */
  void *opaque;
  int64_t written; /* during smc_snapshot_write: records produced */
};

smc_snapshot_t *smc_snapshot_new(const char *topic, int32_t nparts) {
  smc_snapshot_t *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->nparts = nparts;
  s->topic = strdup(topic);
  s->complete = calloc((size_t)(nparts > 0 ? nparts : 1), sizeof *s->complete);
  if (!s->topic || !s->complete) {
    smc_snapshot_destroy(s);
    return NULL;
  }
  return s;
}

void smc_snapshot_destroy(smc_snapshot_t *s) {
  if (!s)
    return;
  free(s->topic);
  free((void *)s->complete);
  free(s->kbuf);
  free(s);
}

void smc_snapshot_set_complete(smc_snapshot_t *s, int32_t p, int complete) {
  if (s && p >= 0 && p < s->nparts)
    atomic_store(&s->complete[p], complete ? 1 : 0);
}

/* Produce one record (val NULL: a tombstone). */
static int produce_one(smc_snapshot_t *s, int32_t p, const void *key, size_t klen, const void *val,
                       size_t vlen) {
  if (s->produce(s->opaque, s->topic, p, key, klen, val, val ? vlen : 0) < 0)
    return SMC_EKAFKA;
  s->written++;
  return 0;
}

static int write_one(void *opaque, smc_cf_t cf, const void *key, size_t klen, const void *val,
                     size_t vlen) {
  smc_snapshot_t *s = opaque;
  /* history is not fold state: it stays with the node that folded it */
  if (klen < 4 || cf == SMC_CF_HISTORY || is_local(cf, key, klen))
    return 0;
  int32_t p = (int32_t)smc_get_be32(key);
  if (p < 0 || p >= s->nparts)
    return 0;
  if (klen + 1 > s->kcap) {
    size_t cap = klen + 1 < 256 ? 256 : klen + 1;
    uint8_t *k = realloc(s->kbuf, cap);
    if (!k)
      return SMC_ENOMEM;
    s->kbuf = k;
    s->kcap = cap;
  }
  int n = smc_snapshot_key(cf, key, klen, s->kbuf, s->kcap);
  if (n < 0)
    return n;
  return produce_one(s, p, s->kbuf, (size_t)n, val, vlen);
}

int smc_snapshot_write(smc_snapshot_t *s, smc_snapshot_produce_fn produce, void *opaque,
                       smc_overlay_t *ov, const int64_t *next) {
  s->produce = produce;
  s->opaque = opaque;
  s->written = 0;
  int rc = smc_overlay_foreach(ov, write_one, s);
  for (int32_t p = 0; rc == 0 && p < s->nparts; p++) {
    if (next[p] < 0)
      continue;
    smc_checkpoint_t cp = {p, next[p], atomic_load(&s->complete[p])};
    uint8_t k[5];
    char v[192];
    smc_snapshot_checkpoint_key(p, k);
    int n = smc_snapshot_checkpoint_encode(&cp, v, sizeof v);
    rc = n < 0 ? n : produce_one(s, p, k, sizeof k, v, (size_t)n);
  }
  s->produce = NULL;
  smc_metrics_counter_add("smc_changelog_records_total", NULL, (double)s->written);
  return rc < 0 ? SMC_EKAFKA : 0;
}

/* ---- restore ------------------------------------------------------------ */

int smc_snapshot_topic_ok(smc_kafka_t *rk, const char *topic, int32_t nparts) {
  int32_t n = smc_kafka_partitions(rk, topic, 10000);
  if (n == SMC_ENOT_FOUND)
    return 0;
  if (n < 0)
    return n;
  return n == nparts;
}

static smc_kafka_t *restore_consumer(const smc_snapshot_restore_t *r, smc_error_t *err) {
  /* the end of a partition shows as an empty fetch: do not let the broker
   * hold it for the default 500 ms */
  static const char *const kv[] = {"fetch.wait.max.ms", "10", NULL};
  return smc_kafka_bulk_reader(r->bootstrap, r->props, "smc-restore", kv, err);
}

typedef int (*record_fn)(void *opaque, const smc_kafka_msg_t *m, smc_error_t *err);

/* Partition p's watermarks (through rk). */
static int watermarks(smc_kafka_t *rk, const char *topic, int32_t p, int64_t *lo, int64_t *hi,
                      smc_error_t *err) {
  if (smc_kafka_watermarks(rk, topic, p, lo, hi, 15000) < 0)
    return smc_error_set(err, SMC_EKAFKA, NULL, "%s [%d] watermarks: no answer", topic, (int)p);
  return 0;
}

/* Hand every record of the partitions of as (each from its offset,
 * read_committed) up to each one's end to fn, through rk; as[i].high is
 * set once partition i is done. Returns 0 or a negative code. */
static int read_parts(const smc_snapshot_restore_t *r, smc_kafka_t *rk, smc_kafka_part_t *as, int n,
                      record_fn fn, void *opaque, smc_error_t *err) {
  char why[256];
  if (n > 0 && smc_kafka_assign_parts(rk, r->topic, as, n, why, sizeof why) < 0)
    return smc_error_set(err, SMC_EKAFKA, NULL, "assign %s: %s", r->topic, why);
  int rc = 0, reading = n, idle_ms = r->idle_timeout_ms > 0 ? r->idle_timeout_ms : 60000;
  double last = smc_metrics_now_s();
  while (rc == 0 && reading > 0) {
    if (r->stop && atomic_load(r->stop)) {
      rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "restore stopped");
      break;
    }
    smc_kafka_msg_t m;
    int got = smc_kafka_consume(rk, 100, &m);
    double now = smc_metrics_now_s();
    if (!got) {
      if ((now - last) * 1000 > idle_ms)
        rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "%s: nothing for %d ms", r->topic, idle_ms);
      continue;
    }
    last = now;
    if (m.eof) {
      for (int i = 0; i < n; i++)
        if (as[i].partition == m.partition && !as[i].high)
          as[i].high = 1, reading--;
    } else if (m.error) {
      rc = smc_error_set(err, SMC_EKAFKA, NULL, "%s [%d]: %s", r->topic, (int)m.partition, m.error);
    } else {
      rc = fn(opaque, &m, err);
    }
    smc_kafka_msg_release(&m);
  }
  smc_kafka_unassign(rk);
  return rc;
}

/* read_parts of partition p from offset from. */
static int read_partition(const smc_snapshot_restore_t *r, smc_kafka_t *rk, int32_t p, int64_t from,
                          record_fn fn, void *opaque, smc_error_t *err) {
  smc_kafka_part_t as = {.partition = p, .offset = from};
  return read_parts(r, rk, &as, 1, fn, opaque, err);
}

/* Keep the last checkpoint of partition *(int32_t *)cp->partition. */
static int checkpoint_cb(void *opaque, const smc_kafka_msg_t *m, smc_error_t *err) {
  (void)err;
  smc_checkpoint_t *cp = opaque, got;
  smc_snapshot_rec_t rec;
  if (smc_snapshot_parse_key(m->key, m->key_len, &rec) == 0 && rec.checkpoint &&
      rec.partition == cp->partition && m->value &&
      smc_snapshot_checkpoint_decode(m->value, m->value_len, &got) == 0 &&
      got.partition == cp->partition)
    *cp = got;
  return 0;
}

int smc_snapshot_last_checkpoint(const smc_snapshot_restore_t *r, int32_t p, smc_checkpoint_t *out,
                                 smc_error_t *err) {
  *out = (smc_checkpoint_t){p, -1, 0};
  smc_kafka_t *rk = restore_consumer(r, err);
  if (!rk)
    return SMC_EKAFKA;
  int64_t lo = 0, hi = 0;
  int rc = watermarks(rk, r->topic, p, &lo, &hi, err);
  /* every transaction ends a partition's records with its checkpoint: look
   * at a growing tail until one shows up */
  for (int64_t window = 256; rc == 0 && hi > lo; window *= 16) {
    int64_t from = hi - window > lo ? hi - window : lo;
    rc = read_partition(r, rk, p, from, checkpoint_cb, out, err);
    if (out->offset >= 0 || from == lo)
      break;
  }
  smc_kafka_close(rk);
  return rc;
}

/* One partition of a restore: its held-back applied offset and last
 * checkpoint. */
typedef struct part_load {
  smc_snapshot_part_t *part;
  uint8_t *applied; /* the last value of the meta key partition|'a' (NULL: none) */
  size_t applied_len;
} part_load_t;

typedef struct restore_run {
  smc_snapshot_restore_t *r;
  smc_store_load_t *load;
  size_t bytes; /* pending in load */
  part_load_t *pl;
  size_t n;
} restore_run_t;

static part_load_t *part_of(restore_run_t *x, int32_t p) {
  for (size_t i = 0; i < x->n; i++)
    if (x->pl[i].part->partition == p)
      return &x->pl[i];
  return NULL;
}

/* Apply one changelog record. */
static int load_one(void *opaque, const smc_kafka_msg_t *m, smc_error_t *err) {
  restore_run_t *x = opaque;
  part_load_t *pl = part_of(x, m->partition);
  smc_snapshot_rec_t rec;
  x->r->records++;
  if (!pl || smc_snapshot_parse_key(m->key, m->key_len, &rec) < 0 || rec.partition != m->partition)
    return 0; /* not ours: ignored */
  if (rec.checkpoint) {
    smc_checkpoint_t cp;
    if (m->value && smc_snapshot_checkpoint_decode(m->value, m->value_len, &cp) == 0 &&
        cp.partition == rec.partition)
      pl->part->checkpoint = cp;
    return 0;
  }
  /* history records of a changelog written before history left it, and
   * node-local keys, are not loaded: a restored partition's history starts
   * at its checkpoint (smc_fold_history_floor) */
  if (rec.cf == SMC_CF_HISTORY || is_local(rec.cf, rec.key, rec.klen))
    return 0;
  if (is_applied(rec.cf, rec.key, rec.klen)) { /* written last (smc_snapshot_restore_parts) */
    free(pl->applied);
    pl->applied = NULL;
    pl->applied_len = 0;
    if (m->value) {
      if (!(pl->applied = malloc(m->value_len ? m->value_len : 1)))
        return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
      memcpy(pl->applied, m->value, m->value_len);
      pl->applied_len = m->value_len;
    }
    return 0;
  }
  int rc = smc_store_load_put(x->load, rec.cf, rec.key, rec.klen, m->value, m->value_len);
  if (rc < 0)
    return smc_error_set(err, rc, NULL, "restore: %s", smc_strerror(rc));
  x->r->keys++;
  x->bytes += rec.klen + m->value_len;
  if (smc_store_load_pending(x->load) >= RESTORE_BATCH || x->bytes >= RESTORE_BATCH_BYTES) {
    x->bytes = 0;
    return smc_store_load_write(x->load, err);
  }
  return 0;
}

/* Read every partition of x from its start to its end (one consumer for
 * all, so they are fetched together) into the load. */
static int load_all(restore_run_t *x, smc_error_t *err) {
  smc_snapshot_restore_t *r = x->r;
  smc_kafka_t *rk = restore_consumer(r, err);
  if (!rk)
    return SMC_EKAFKA;
  smc_kafka_part_t *as = calloc(x->n ? x->n : 1, sizeof *as);
  int reading = 0;
  int rc = as ? 0 : smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  for (size_t i = 0; rc == 0 && i < x->n; i++) {
    int64_t lo = 0, hi = 0;
    int32_t p = x->pl[i].part->partition;
    if ((rc = watermarks(rk, r->topic, p, &lo, &hi, err)) == 0 && hi > lo) {
      as[reading++] = (smc_kafka_part_t){.partition = p, .offset = SMC_KAFKA_OFFSET_BEGINNING};
    }
  }
  if (rc == 0)
    rc = read_parts(r, rk, as, reading, load_one, x, err);
  free(as);
  smc_kafka_close(rk);
  return rc;
}

/* Whether what was loaded for pl may be used: a complete checkpoint at
 * most its max_offset whose offset is the restored applied offset. */
static int usable(const part_load_t *pl) {
  const smc_checkpoint_t *cp = &pl->part->checkpoint;
  return cp->offset > 0 && cp->complete && cp->offset <= pl->part->max_offset && pl->applied &&
         pl->applied_len >= 8 && (int64_t)smc_get_be64(pl->applied) == cp->offset;
}

/* The applied offset (and the mark) of a usable partition, through the WAL. */
static int commit_part(smc_store_t *store, const part_load_t *pl) {
  smc_kv_t kv = smc_store_kv(store);
  int32_t p = pl->part->partition;
  uint8_t k[5];
  smc_be32(k, (uint32_t)p);
  k[4] = 'a';
  int rc = smc_kv_put(&kv, SMC_CF_META, k, 5, pl->applied, pl->applied_len);
  if (rc == 0)
    rc = smc_fold_history_floor_put(&kv, p, pl->part->checkpoint.offset);
  if (rc == 0 && pl->part->checkpoint.offset == pl->part->max_offset)
    rc = smc_snapshot_mark(store, p, 1);
  return rc;
}

int smc_snapshot_restore_parts(smc_snapshot_restore_t *r, smc_snapshot_part_t *parts, size_t n,
                               smc_error_t *err) {
  r->records = r->keys = 0;
  restore_run_t x = {.r = r, .n = n, .pl = calloc(n ? n : 1, sizeof(part_load_t))};
  if (!x.pl || !(x.load = smc_store_load_new(r->store))) {
    free(x.pl);
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  }
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    x.pl[i].part = &parts[i];
    parts[i].restored = 0;
    parts[i].checkpoint = (smc_checkpoint_t){parts[i].partition, -1, 0};
    rc = smc_store_drop_partition(r->store, parts[i].partition, err);
  }
  if (rc == 0)
    rc = load_all(&x, err);
  int any = 0;
  for (size_t i = 0; rc == 0 && i < n; i++)
    any |= usable(&x.pl[i]);
  /* the applied offsets go last, through the WAL, once everything loaded
   * is in table files (smc_store_load_finish) */
  if (rc == 0 && any)
    rc = smc_store_load_finish(x.load, err);
  int restored = 0;
  for (size_t i = 0; i < n; i++) {
    if (rc == 0 && usable(&x.pl[i])) {
      int c = commit_part(r->store, &x.pl[i]);
      if (c < 0)
        rc = smc_error_set(err, c, NULL, "restore: %s", smc_strerror(c));
      else
        parts[i].restored = 1, restored++;
    }
    if (!parts[i].restored) { /* unusable or failed: leave it empty */
      smc_error_t e2;
      smc_error_clear(&e2);
      int d = smc_store_drop_partition(r->store, parts[i].partition, &e2);
      if (rc == 0 && d < 0)
        rc = smc_error_set(err, d, NULL, "%s", e2.message);
    }
    free(x.pl[i].applied);
  }
  smc_store_load_destroy(x.load);
  free(x.pl);
  return rc < 0 ? rc : restored;
}

int smc_snapshot_restore(smc_snapshot_restore_t *r, int32_t p, int64_t max_offset,
                         smc_error_t *err) {
  smc_snapshot_part_t part = {.partition = p, .max_offset = max_offset};
  int rc = smc_snapshot_restore_parts(r, &part, 1, err);
  r->checkpoint = part.checkpoint;
  return rc;
}

/* ---- full dump ---------------------------------------------------------- */

/* A dump's produce: a plain producer, retrying a full queue. */
static int dump_produce(void *opaque, const char *topic, int32_t p, const void *key, size_t klen,
                        const void *val, size_t vlen) {
  const char *why = NULL;
  return smc_kafka_produce(opaque, topic, p, key, klen, val, vlen, &why) < 0 ? SMC_EKAFKA : 0;
}

int smc_snapshot_dump(smc_kafka_t *producer, const char *topic, smc_store_t *store, int32_t p,
                      int64_t *records, smc_error_t *err) {
  smc_snapshot_t *s = smc_snapshot_new(topic, p + 1);
  if (!s)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  s->produce = dump_produce;
  s->opaque = producer;
  smc_kv_t kv = smc_store_kv(store);
  uint8_t lo[4], hi[4];
  smc_be32(lo, (uint32_t)p);
  smc_be32(hi, (uint32_t)p + 1);
  int rc = 0;
  for (int cf = 0; rc == 0 && cf < SMC_CF_COUNT; cf++) {
    if (cf == SMC_CF_HISTORY)
      continue; /* not fold state (write_one) */
    uint8_t *from = NULL;
    size_t flen = 0;
    for (;;) {
      void *k = NULL, *v = NULL;
      size_t kl = 0, vl = 0;
      rc = smc_kv_seek(&kv, (smc_cf_t)cf, from ? from : lo, from ? flen : 4, hi, 4, &k, &kl, &v,
                       &vl);
      if (rc == SMC_ENOT_FOUND) {
        rc = 0;
        break;
      }
      if (rc == 0)
        rc = write_one(s, (smc_cf_t)cf, k, kl, v ? v : "", vl);
      free(v);
      free(from);
      from = NULL;
      if (rc < 0) {
        free(k);
        break;
      }
      /* the next key is the first one >= this key + one zero byte */
      if (!(from = realloc(k, kl + 1))) {
        free(k);
        rc = SMC_ENOMEM;
        break;
      }
      from[kl] = 0;
      flen = kl + 1;
    }
    free(from);
  }
  int64_t applied = 0;
  if (rc == 0) {
    uint8_t k[5];
    smc_be32(k, (uint32_t)p);
    k[4] = 'a';
    void *v = NULL;
    size_t vl = 0;
    int g = smc_kv_get(&kv, SMC_CF_META, k, 5, &v, &vl);
    if (g == 0 && vl >= 8)
      applied = (int64_t)smc_get_be64(v);
    free(v);
    if (g < 0 && g != SMC_ENOT_FOUND)
      rc = g;
  }
  if (rc == 0 && applied > 0) {
    smc_checkpoint_t cp = {p, applied, 1};
    uint8_t k[5];
    char v[192];
    smc_snapshot_checkpoint_key(p, k);
    int n = smc_snapshot_checkpoint_encode(&cp, v, sizeof v);
    rc = n < 0 ? n : produce_one(s, p, k, sizeof k, v, (size_t)n);
  }
  if (records)
    *records = s->written;
  smc_snapshot_destroy(s);
  if (rc < 0)
    return smc_error_set(err, rc, NULL, "dump of partition %d: %s", (int)p, smc_strerror(rc));
  return 0;
}
