/* Snapshots of partition state in the changelog topic (snapshot.h). */
#include "node/snapshot.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "kafka/kconf.h"
#include "node/metrics.h"

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

int smc_snapshot_is_mark(smc_cf_t cf, const void *key, size_t klen) {
  return is_mark(cf, key, klen);
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
  rd_kafka_t *producer; /* during smc_snapshot_write */
  int64_t written;      /* during smc_snapshot_write: records produced */
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

/* Produce one record (val NULL: a tombstone), retrying a full queue. */
static int produce_one(smc_snapshot_t *s, int32_t p, const void *key, size_t klen, const void *val,
                       size_t vlen) {
  for (;;) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        s->producer, RD_KAFKA_V_TOPIC(s->topic), RD_KAFKA_V_PARTITION(p),
        RD_KAFKA_V_KEY((void *)key, klen), RD_KAFKA_V_VALUE((void *)val, val ? vlen : 0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      s->written++;
      return 0;
    }
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
      return SMC_EKAFKA;
    rd_kafka_poll(s->producer, 10);
  }
}

static int write_one(void *opaque, smc_cf_t cf, const void *key, size_t klen, const void *val,
                     size_t vlen) {
  smc_snapshot_t *s = opaque;
  if (klen < 4 || is_mark(cf, key, klen))
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

int smc_snapshot_write(smc_snapshot_t *s, rd_kafka_t *producer, smc_overlay_t *ov,
                       const int64_t *next) {
  s->producer = producer;
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
  s->producer = NULL;
  smc_metrics_counter_add("smc_changelog_records_total", NULL, (double)s->written);
  return rc < 0 ? SMC_EKAFKA : 0;
}

/* ---- restore ------------------------------------------------------------ */

int smc_snapshot_topic_ok(rd_kafka_t *rk, const char *topic, int32_t nparts) {
  int32_t n = smc_kafka_partitions(rk, topic, 10000);
  if (n == SMC_ENOT_FOUND)
    return 0;
  if (n < 0)
    return n;
  return n == nparts;
}

static rd_kafka_t *restore_consumer(const smc_snapshot_restore_t *r, smc_error_t *err) {
  char errstr[512];
  rd_kafka_conf_t *conf = smc_kconf_new(r->bootstrap, r->props, errstr, sizeof errstr);
  if (!conf) {
    smc_error_set(err, SMC_EKAFKA, NULL, "kafka configuration: %s", errstr);
    return NULL;
  }
  static const char *const kv[] = {"group.id",
                                   "smc-restore",
                                   "enable.auto.commit",
                                   "false",
                                   "enable.auto.offset.store",
                                   "false",
                                   "isolation.level",
                                   "read_committed",
                                   "enable.partition.eof",
                                   "true",
                                   "auto.offset.reset",
                                   "earliest",
                                   "fetch.max.bytes",
                                   "8388608",
                                   "queued.max.messages.kbytes",
                                   "32768",
                                   NULL};
  for (size_t i = 0; kv[i]; i += 2)
    if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      smc_error_set(err, SMC_EKAFKA, NULL, "kafka configuration: %s", errstr);
      return NULL;
    }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    smc_error_set(err, SMC_EKAFKA, NULL, "kafka consumer: %s", errstr);
    return NULL;
  }
  rd_kafka_poll_set_consumer(rk);
  return rk;
}

/* A restore in progress: the pending store writes and the held-back
 * applied offset of the partition. */
typedef struct loader {
  smc_snapshot_restore_t *r;
  int32_t p;
  smc_kv_t storekv;
  smc_overlay_t *ov;
  smc_kv_t ovkv;
  uint8_t *applied; /* the last value of the meta key partition|'a' (NULL: none) */
  size_t applied_len;
} loader_t;

static int flush(loader_t *l, smc_error_t *err) {
  if (smc_overlay_pending(l->ov) == 0)
    return 0;
  int rc = smc_store_apply(l->r->store, l->ov, err);
  smc_overlay_clear(l->ov);
  return rc;
}

/* Apply one changelog record of partition l->p. */
static int load_one(loader_t *l, const rd_kafka_message_t *m, smc_error_t *err) {
  smc_snapshot_rec_t rec;
  l->r->records++;
  if (smc_snapshot_parse_key(m->key, m->key_len, &rec) < 0 || rec.partition != l->p)
    return 0; /* not ours: ignored */
  if (rec.checkpoint) {
    smc_checkpoint_t cp;
    if (m->payload && smc_snapshot_checkpoint_decode(m->payload, m->len, &cp) == 0 &&
        cp.partition == l->p)
      l->r->checkpoint = cp;
    return 0;
  }
  if (is_mark(rec.cf, rec.key, rec.klen))
    return 0;
  if (is_applied(rec.cf, rec.key, rec.klen)) { /* written last (smc_snapshot_restore) */
    free(l->applied);
    l->applied = NULL;
    l->applied_len = 0;
    if (m->payload) {
      if (!(l->applied = malloc(m->len)))
        return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
      memcpy(l->applied, m->payload, m->len);
      l->applied_len = m->len;
    }
    return 0;
  }
  int rc = m->payload ? smc_kv_put(&l->ovkv, rec.cf, rec.key, rec.klen, m->payload, m->len)
                      : smc_kv_del(&l->ovkv, rec.cf, rec.key, rec.klen);
  if (rc < 0)
    return smc_error_set(err, rc, NULL, "restore: %s", smc_strerror(rc));
  l->r->keys++;
  if (smc_overlay_pending(l->ov) >= RESTORE_BATCH ||
      smc_overlay_bytes(l->ov) >= RESTORE_BATCH_BYTES)
    return flush(l, err);
  return 0;
}

typedef int (*record_fn)(void *opaque, const rd_kafka_message_t *m, smc_error_t *err);

/* Partition p's watermarks (through rk). */
static int watermarks(rd_kafka_t *rk, const char *topic, int32_t p, int64_t *lo, int64_t *hi,
                      smc_error_t *err) {
  rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, lo, hi, 15000);
  if (e)
    return smc_error_set(err, SMC_EKAFKA, NULL, "%s [%d] watermarks: %s", topic, (int)p,
                         rd_kafka_err2str(e));
  return 0;
}

/* Hand every record of partition p from offset from (read_committed) to
 * its end to fn, through rk. Returns 0 or a negative code. */
static int read_partition(const smc_snapshot_restore_t *r, rd_kafka_t *rk, int32_t p, int64_t from,
                          record_fn fn, void *opaque, smc_error_t *err) {
  rd_kafka_topic_partition_list_t *as = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(as, r->topic, p)->offset = from;
  rd_kafka_resp_err_t e = rd_kafka_assign(rk, as);
  rd_kafka_topic_partition_list_destroy(as);
  if (e)
    return smc_error_set(err, SMC_EKAFKA, NULL, "assign %s: %s", r->topic, rd_kafka_err2str(e));
  int rc = 0, idle_ms = r->idle_timeout_ms > 0 ? r->idle_timeout_ms : 60000;
  double last = smc_metrics_now_s();
  for (;;) {
    if (r->stop && atomic_load(r->stop)) {
      rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "restore stopped");
      break;
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    double now = smc_metrics_now_s();
    if (!m) {
      if ((now - last) * 1000 > idle_ms) {
        rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "%s [%d]: nothing for %d ms", r->topic,
                           (int)p, idle_ms);
        break;
      }
      continue;
    }
    last = now;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      rd_kafka_message_destroy(m);
      break;
    }
    if (m->err) {
      rc = smc_error_set(err, SMC_EKAFKA, NULL, "%s [%d]: %s", r->topic, (int)p,
                         rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      break;
    }
    rc = fn(opaque, m, err);
    rd_kafka_message_destroy(m);
    if (rc < 0)
      break;
  }
  rd_kafka_assign(rk, NULL);
  return rc;
}

static int load_cb(void *opaque, const rd_kafka_message_t *m, smc_error_t *err) {
  return load_one(opaque, m, err);
}

/* Read partition l->p of the changelog from its start to its end into the
 * store. Returns 0 or a negative code. */
static int load_partition(loader_t *l, smc_error_t *err) {
  smc_snapshot_restore_t *r = l->r;
  rd_kafka_t *rk = restore_consumer(r, err);
  if (!rk)
    return SMC_EKAFKA;
  int64_t lo = 0, hi = 0;
  int rc = watermarks(rk, r->topic, l->p, &lo, &hi, err);
  if (rc == 0 && hi > lo)
    rc = read_partition(r, rk, l->p, RD_KAFKA_OFFSET_BEGINNING, load_cb, l, err);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return rc;
}

/* Keep the last checkpoint of partition *(int32_t *)cp->partition. */
static int checkpoint_cb(void *opaque, const rd_kafka_message_t *m, smc_error_t *err) {
  (void)err;
  smc_checkpoint_t *cp = opaque, got;
  smc_snapshot_rec_t rec;
  if (smc_snapshot_parse_key(m->key, m->key_len, &rec) == 0 && rec.checkpoint &&
      rec.partition == cp->partition && m->payload &&
      smc_snapshot_checkpoint_decode(m->payload, m->len, &got) == 0 &&
      got.partition == cp->partition)
    *cp = got;
  return 0;
}

int smc_snapshot_last_checkpoint(const smc_snapshot_restore_t *r, int32_t p, smc_checkpoint_t *out,
                                 smc_error_t *err) {
  *out = (smc_checkpoint_t){p, -1, 0};
  rd_kafka_t *rk = restore_consumer(r, err);
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
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return rc;
}

/* Whether what was loaded may be used: a complete checkpoint at most
 * max_offset whose offset is the restored applied offset. */
static int usable(const loader_t *l, int64_t max_offset) {
  const smc_checkpoint_t *cp = &l->r->checkpoint;
  return cp->offset > 0 && cp->complete && cp->offset <= max_offset && l->applied &&
         l->applied_len >= 8 && (int64_t)smc_get_be64(l->applied) == cp->offset;
}

int smc_snapshot_restore(smc_snapshot_restore_t *r, int32_t p, int64_t max_offset,
                         smc_error_t *err) {
  r->records = r->keys = 0;
  r->checkpoint = (smc_checkpoint_t){p, -1, 0};
  loader_t l = {.r = r, .p = p, .storekv = smc_store_kv(r->store)};
  int rc = smc_store_drop_partition(r->store, p, err);
  if (rc < 0)
    return rc;
  if (!(l.ov = smc_overlay_new(&l.storekv)))
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  l.ovkv = smc_overlay_kv(l.ov);
  if ((rc = load_partition(&l, err)) == 0 && (rc = flush(&l, err)) == 0) {
    if (usable(&l, max_offset)) {
      uint8_t k[5];
      smc_be32(k, (uint32_t)p);
      k[4] = 'a';
      if ((rc = smc_kv_put(&l.ovkv, SMC_CF_META, k, 5, l.applied, l.applied_len)) == 0 &&
          r->checkpoint.offset == max_offset) {
        k[4] = 's';
        rc = smc_kv_put(&l.ovkv, SMC_CF_META, k, 5, "1", 1);
      }
      if (rc == 0 && (rc = flush(&l, err)) == 0)
        rc = 1;
    }
  }
  if (rc <= 0) { /* unusable or failed: leave p empty */
    smc_error_t e2;
    smc_error_clear(&e2);
    int drc = smc_store_drop_partition(r->store, p, &e2);
    if (rc == 0 && drc < 0)
      rc = smc_error_set(err, drc, NULL, "%s", e2.message);
  }
  smc_overlay_destroy(l.ov);
  free(l.applied);
  return rc;
}
