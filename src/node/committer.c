/*
 * The committer role: folds its assigned partitions of <prefix>proposals and
 * publishes confirmations and replies with exactly-once semantics.
 *
 * Two threads form a pipeline (librdkafka examples/transactions.c is the
 * model for each transaction). The fold thread polls records and folds them
 * into the front batch: an overlay of pending store writes plus the outputs
 * and consumed offsets, all kept in memory. When the batch is due (it is
 * commit_interval_ms old, or commit_max_interval_ms when every record came
 * from a gateway answering from its own fold, see batch_interval; or it
 * holds commit_max_records) and the commit thread
 * is idle, the batch is handed over and a fresh front batch is layered on top
 * of it, so folding goes on and reads see the handed batch's not yet stored
 * writes. The commit thread begins a transaction, produces the batch's
 * outputs, sends its offsets with the group metadata and commits. Only after
 * the commit succeeded does the fold thread write that batch to the store
 * (one atomic batch), so the store never runs ahead of Kafka and is written
 * strictly in order. While a commit is in flight the front batch keeps
 * growing (up to BATCH_HARD_FACTOR x commit_max_records): the interval is a
 * floor, and a slow broker gets bigger transactions instead of a stalled fold.
 * Kafka allows one open transaction per producer; between two batches none
 * is open.
 *
 * Recovery: a failed transaction is aborted (or, on a fatal error, fencing,
 * an indefinite (timed out) commit or abort, or a call still running at its
 * deadline, the transactional producer is replaced: init_transactions fences
 * the old epoch and settles the open transaction) by the commit thread,
 * through the transactional session (kafka/txn.h), which owns every
 * librdkafka transaction call and its watchdog. The fold thread then
 * drops both the failed batch and the front batch folded on top of it and
 * "resyncs": every assigned partition is restored to the group's committed
 * offset (replaying [applied, committed) silently when the store is behind)
 * and the consumer seeks there. The outcome of an unknown transaction is read
 * back from the committed offsets, never guessed.
 *
 * Ticks are produced with a separate plain idempotent producer, outside the
 * transactions: a tick decides nothing (it only advances the partition clock
 * to its LogAppendTime), so a duplicate or a zombie's tick is harmless, while
 * a tick inside a zombie's open transaction would hold back the partition's
 * last stable offset (read_committed) until the transaction timed out and
 * stall the new owner. Far from a deadline only a keep-alive tick is written
 * every few seconds (see tick_due).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/str.h"
#include "core/kv.h"
#include "kafka/consumer.h"
#include "kafka/group.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"
#include "kafka/producer.h"
#include "kafka/readindex.h"
#include "kafka/txn.h"
#include "node/answers.h"
#include "node/log.h"
#include "base/metrics.h"
#include "node/replay.h"
#include "node/roles.h"
#include "node/snapshot.h"
#include "smc/fold.h"
#include "store/store.h"

#define RESTORE_RETRY_MS 1000

/* Known reply_to topics (existence cached, re-checked after a minute). */
typedef struct topic_cache_entry {
  char *name;
  int exists;
  int64_t checked;
} topic_cache_entry_t;
#define TOPIC_CACHE 32

/* While a commit is in flight the front batch may grow to this many times
 * commit_max_records before the fold thread waits for the commit. */
#define BATCH_HARD_FACTOR 16
#define NO_REPLY ((size_t)-1)

/* One output of a batch, published when the batch's transaction runs. The
 * strings live in the batch's text buffer (offsets, NUL-terminated). */
typedef struct out_rec {
  smc_output_kind_t kind;
  int32_t partition;
  int64_t offset;
  size_t key, json, json_len, reply_to; /* reply_to NO_REPLY: none */
  size_t machine;                       /* confirmations: the machine ("" none) */
  unsigned char outcome, duplicate;     /* confirmations: OUTCOME_*, 0/1 */
} out_rec_t;

enum { OUTCOME_COMMITTED, OUTCOME_REJECTED, OUTCOME_EXPIRED, OUTCOME_COUNT };
static const char *const outcome_names[OUTCOME_COUNT] = {"committed", "rejected", "expired"};

/*
 * A batch of folded records: its overlay of store writes layered on `below`
 * (the store, or the batch being committed), the next offset to commit per
 * partition, and its outputs. Owned by the fold thread, except that the
 * commit thread reads next/outs/text while the batch is its job.
 */
typedef struct batch {
  smc_overlay_t *ov;
  smc_kv_t kv;     /* the overlay: what the fold reads and writes */
  smc_kv_t base;   /* forwards to *below (the overlay's base) */
  smc_kv_t *below; /* &storekv, or the in-flight batch's kv */
  int64_t *next;   /* [nparts]: next offset to commit, -1 = none */
  int records;
  int urgent;    /* a record's producer may wait for its confirmation */
  int64_t start; /* when its first record was folded (ms) */
  out_rec_t *outs;
  size_t nouts, outs_cap;
  char *text;
  size_t text_len, text_cap;
  size_t published; /* outputs already produced into the open transaction */
  int stream_err;   /* streaming failed: the transaction was aborted */
  size_t early;     /* outputs produced before the batch was handed over */
} batch_t;

enum { JOB_COMMIT = 1, JOB_ABORT };

struct smc_committer {
  const smc_node_config_t *cfg;
  char *topic_in, *topic_conf, *topic_replies, *group, *txn_id, *store_dir;
  int32_t nparts;
  smc_store_t *store;
  smc_fold_t *fold;
  smc_kv_t storekv;
  batch_t batch[2];
  int front;         /* index of the batch being folded into */
  batch_t *inflight; /* handed to the commit thread, not yet reaped */
  smc_kafka_t *consumer, *tickp;
  smc_txn_t *txn;       /* the transactional session: the commit thread's */
  smc_read_index_t *ri; /* end offsets for local reads, in shared rounds */
  pthread_t thread;
  int thread_started;
  atomic_int stop, healthy;

  pthread_mutex_t lock; /* guards serving[] for smc_committer_partitions */
  uint8_t *serving;     /* [nparts]: 1 restored and assigned; 2 assigned but
                         * stopped at a settings event for a newer fold */

  /* hand-off to the commit thread (guarded by jlock) */
  pthread_mutex_t jlock;
  pthread_cond_t jcond;
  pthread_t cthread;
  int cthread_started;
  batch_t *job;    /* JOB_COMMIT: the batch to commit */
  batch_t *stream; /* the front batch while no commit runs: its outputs are
                      produced early, into the next transaction */
  int job_kind, job_done, job_rc, cstop;

  char *scratch; /* commit thread only: an output copied out of the stream */
  size_t scratch_cap;
  int need_resync;    /* fold thread only */
  int64_t *last_tick; /* [nparts] */
  int64_t next_tick_check, next_lag_check;
  topic_cache_entry_t topics[TOPIC_CACHE]; /* commit thread only */

  /* Local answers (answers.h): folded_end[p] is the offset the fold has
   * passed in p (every record below it folded into the front batch's
   * view), -1 while unknown (after a drop, before the restore). Fold
   * thread only. Reads wait in `reads` (under rlock) until it passes
   * their target. */
  smc_answers_t *answers;
  int64_t *folded_end;
  pthread_mutex_t rlock;
  smc_answer_t *reads;
  atomic_int nreads;
  atomic_llong *lag; /* [nparts]: the last measured fold lag, -1 unknown */

  /* snapshots (snapshot.h): NULL when the changelog is off */
  smc_snapshot_t *snap;
  char *topic_changelog;
};

static void cmlog(smc_committer_t *c, int level, int32_t p, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* cmlog's body; also the transactional session's logger (txn.h). */
static void cmlogv(void *opaque, int level, int32_t p, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void cmlogv(void *opaque, int level, int32_t p, const char *fmt, va_list ap) {
  smc_committer_t *c = opaque;
  if (level > smc_log_level())
    return;
  char msg[1536];
  vsnprintf(msg, sizeof msg, fmt, ap);
  smc_log(level, c->cfg->node_id, p, "committer: %s", msg);
}

static void cmlog(smc_committer_t *c, int level, int32_t p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cmlogv(c, level, p, fmt, ap);
  va_end(ap);
}

/* The fold's log lines, and the metrics of what they report, counted from
 * the line's fields: its message quotes ids and voters the events chose. */
static void fold_logger(void *opaque, const smc_fold_log_t *l) {
  smc_committer_t *c = opaque;
  if (l->note == SMC_FOLD_NOTE_VOTE_IGNORED && l->code == SMC_EBAD_SIGNATURE)
    smc_metrics_counter_add("smc_votes_bad_signature_total", NULL, 1);
  if (l->note == SMC_FOLD_NOTE_EVENT_DROPPED) {
    char labels[64];
    snprintf(labels, sizeof labels, "reason=\"%s\"", smc_code_name(l->code));
    smc_metrics_counter_add("smc_events_dropped_total", labels, 1);
  }
  cmlog(c, l->level, l->partition, "offset %lld: %s", (long long)l->offset, l->msg);
}

static int is_serving(smc_committer_t *c, int32_t p) {
  return p >= 0 && p < c->nparts && c->serving[p] == 1;
}

/* A settings event at offset of p was written for a newer fold than this
 * code's (SMC_EINCOMPATIBLE): this node would decide what follows
 * differently, so it stops p there. Nothing of the record is folded or
 * committed: the group's offset stays on it, and a node with a newer fold
 * goes on from it. p stays stopped until it is assigned again. */
static void stop_partition(smc_committer_t *c, int32_t p, int64_t offset) {
  pthread_mutex_lock(&c->lock);
  c->serving[p] = 2;
  pthread_mutex_unlock(&c->lock);
  cmlog(c, SMC_LOG_ERROR, p,
        "offset %lld: a settings event for a newer fold than this node's (%d): the partition "
        "stops here until a node running a newer smc takes it",
        (long long)offset, SMC_FOLD_VERSION);
  char labels[32];
  snprintf(labels, sizeof labels, "partition=\"%d\"", (int)p);
  smc_metrics_gauge_set("smc_partition_stopped", labels, 1);
  smc_kafka_pause(c->consumer, c->topic_in, p);
}

static void set_serving(smc_committer_t *c, const smc_kafka_part_t *parts, int n, int on) {
  pthread_mutex_lock(&c->lock);
  for (int i = 0; i < n; i++) {
    int32_t p = parts[i].partition;
    if (p >= 0 && p < c->nparts) {
      if (c->serving[p] == 2) {
        char labels[32];
        snprintf(labels, sizeof labels, "partition=\"%d\"", (int)p);
        smc_metrics_gauge_set("smc_partition_stopped", labels, 0);
      }
      c->serving[p] = (uint8_t)on;
    }
  }
  pthread_mutex_unlock(&c->lock);
}

/* ---- producers -------------------------------------------------------- */

/* The transactional session (kafka/txn.h): its producer is made by the
 * commit thread's first smc_txn_open. */
static smc_txn_t *new_txn(smc_committer_t *c) {
  /* transaction.timeout.ms bounds how long a zombie's open transaction can
   * hold back read_committed readers of the confirmations */
  int txn_timeout = c->cfg->session_timeout_ms > 10000 ? c->cfg->session_timeout_ms : 10000;
  smc_txn_config_t tc = {.bootstrap = c->cfg->bootstrap,
                         .props = c->cfg->kafka_props,
                         .txn_id = c->txn_id,
                         .txn_timeout_ms = txn_timeout,
                         .deadline_ms = c->cfg->txn_deadline_ms,
                         .stop = &c->stop,
                         .log = cmlogv,
                         .opaque = c};
  return smc_txn_new(&tc);
}

static smc_kafka_t *new_tick_producer(smc_committer_t *c, smc_error_t *err) {
  char errstr[512];
  const char *kv[] = {"enable.idempotence", "true", "linger.ms", "0", NULL};
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_PRODUCER,
                           .bootstrap = c->cfg->bootstrap,
                           .base = kv,
                           .props = c->cfg->kafka_props};
  smc_kafka_t *rk = smc_kafka_open(&spec, errstr, sizeof errstr);
  if (!rk)
    smc_error_set(err, SMC_EKAFKA, NULL, "tick producer: %s", errstr);
  return rk;
}

/* ---- outputs ------------------------------------------------------------ */

/* 1 when topic exists (cached for a minute); reply_to names come from user
 * events, so a missing topic must not fail the transaction forever. */
static int reply_topic_exists(smc_committer_t *c, const char *topic) {
  int64_t now = smc_now_ms();
  topic_cache_entry_t *slot = NULL, *oldest = &c->topics[0];
  for (int i = 0; i < TOPIC_CACHE; i++) {
    topic_cache_entry_t *t = &c->topics[i];
    if (t->name && !strcmp(t->name, topic)) {
      if (now - t->checked < 60000)
        return t->exists;
      slot = t;
      break;
    }
    if (!t->name || t->checked < oldest->checked)
      oldest = t;
  }
  if (!slot) {
    slot = oldest;
    free(slot->name);
    slot->name = strdup(topic);
    if (!slot->name)
      return 0;
  }
  slot->checked = now;
  slot->exists = 0;
  int exists = smc_txn_topic_exists(c->txn, topic, 5000);
  if (exists < 0)
    slot->checked = 0; /* broker trouble: ask again next time */
  slot->exists = exists == 1;
  return slot->exists;
}

static int produce(smc_committer_t *c, const char *topic, int32_t partition, const char *key,
                   const char *json, size_t len) {
  return smc_txn_produce(c->txn, topic, partition, key, key ? strlen(key) : 0, json, len);
}

/* Count a published confirmation by machine and outcome (a duplicate, the
 * original decision answered again, counts as "duplicate"), from the fields
 * the fold gave with it: its JSON holds the proposer's data, which may say
 * anything. */
static void count_confirmation(const batch_t *b, const out_rec_t *o) {
  const char *outcome = o->duplicate ? "duplicate" : outcome_names[o->outcome];
  char labels[160];
  snprintf(labels, sizeof labels, "machine=\"%s\",outcome=\"%s\"", b->text + o->machine, outcome);
  smc_metrics_counter_add("smc_confirmations_total", labels, 1);
}

/* Publish one buffered output inside the open transaction (commit thread):
 * confirmations to <prefix>confirmations (same partition as the input) and
 * to reply_to; read replies to reply_to or <prefix>replies. */
/* Publish the copy of an output a proposal's or read's reply_to asks for,
 * when the policy allows the topic (roles.h smc_reply_to_allowed) and it
 * exists; else log and count it. Either way the fold's outputs are the
 * same: only where copies go depends on this node's settings. */
static int publish_reply_to(smc_committer_t *c, const out_rec_t *o, const char *reply_to,
                            const char *key, const char *json) {
  const char *why = NULL;
  if (!smc_reply_to_allowed(reply_to, c->cfg->prefix, c->cfg->reply_to_allow))
    why = "reply_to_forbidden";
  else if (!reply_topic_exists(c, reply_to))
    why = "reply_to_missing";
  if (!why)
    return produce(c, reply_to, -1, key, json, o->json_len);
  cmlog(c, SMC_LOG_WARN, o->partition, "offset %lld: not published to reply_to '%s': %s",
        (long long)o->offset, reply_to,
        !strcmp(why, "reply_to_forbidden") ? "a topic of the cluster, or not in --reply-to-allow"
                                           : "the topic does not exist");
  char labels[64];
  snprintf(labels, sizeof labels, "reason=\"%s\"", why);
  smc_metrics_counter_add("smc_events_dropped_total", labels, 1);
  return 0;
}

static int publish(smc_committer_t *c, const batch_t *b, const out_rec_t *o) {
  const char *key = b->text + o->key, *json = b->text + o->json;
  const char *reply_to = o->reply_to == NO_REPLY ? NULL : b->text + o->reply_to;
  int rc = 0;
  if (o->kind == SMC_OUT_CONFIRMATION) {
    rc = produce(c, c->topic_conf, o->partition, key, json, o->json_len);
    if (rc == 0 && reply_to)
      rc = publish_reply_to(c, o, reply_to, key, json);
    if (rc == 0)
      count_confirmation(b, o);
  } else if (o->kind == SMC_OUT_REPLY) {
    if (reply_to && strcmp(reply_to, c->topic_replies)) {
      rc = publish_reply_to(c, o, reply_to, key, json);
    } else {
      rc = produce(c, c->topic_replies, o->partition, key, json, o->json_len);
    }
    if (rc == 0)
      smc_metrics_counter_add("smc_replies_total", NULL, 1);
  }
  return rc;
}

/* Append s (n bytes) and a NUL to the batch's text; its offset into *at. */
static int text_add(batch_t *b, const char *s, size_t n, size_t *at) {
  if (b->text_len + n + 1 > b->text_cap) {
    size_t cap = b->text_cap ? b->text_cap : 4096;
    while (cap < b->text_len + n + 1)
      cap *= 2;
    char *t = realloc(b->text, cap);
    if (!t)
      return SMC_ENOMEM;
    b->text = t;
    b->text_cap = cap;
  }
  *at = b->text_len;
  memcpy(b->text + b->text_len, s, n);
  b->text[b->text_len + n] = '\0';
  b->text_len += n + 1;
  return 0;
}

/* Append one output to b (under jlock: the commit thread may be reading b). */
static int batch_add(batch_t *b, const smc_output_t *o) {
  if (b->nouts == b->outs_cap) {
    size_t cap = b->outs_cap ? b->outs_cap * 2 : 256;
    out_rec_t *n = realloc(b->outs, cap * sizeof *n);
    if (!n)
      return SMC_ENOMEM;
    b->outs = n;
    b->outs_cap = cap;
  }
  out_rec_t *r = &b->outs[b->nouts];
  *r = (out_rec_t){.kind = o->kind,
                   .partition = o->partition,
                   .offset = o->offset,
                   .json_len = o->json_len,
                   .reply_to = NO_REPLY};
  const char *key = o->key ? o->key : "";
  if (text_add(b, key, strlen(key), &r->key) < 0 || text_add(b, o->json, o->json_len, &r->json) < 0)
    return SMC_ENOMEM;
  if (o->reply_to && *o->reply_to &&
      text_add(b, o->reply_to, strlen(o->reply_to), &r->reply_to) < 0)
    return SMC_ENOMEM;
  if (o->kind == SMC_OUT_CONFIRMATION) {
    /* machine names are [a-z0-9._-]{1,64} (machine.c): anything else is no label */
    const char *m = o->machine ? o->machine : "";
    size_t ml = strlen(m);
    if (ml > 64 || strspn(m, "abcdefghijklmnopqrstuvwxyz0123456789._-") != ml)
      m = "", ml = 0;
    if (text_add(b, m, ml, &r->machine) < 0)
      return SMC_ENOMEM;
    r->outcome = o->outcome && !strcmp(o->outcome, "expired")    ? OUTCOME_EXPIRED
                 : o->outcome && !strcmp(o->outcome, "rejected") ? OUTCOME_REJECTED
                                                                 : OUTCOME_COMMITTED;
    r->duplicate = o->duplicate != 0;
  }
  b->nouts++;
  return 0;
}

/* Fold emit callback (fold thread): confirmations and replies are copied
 * into the front batch; the commit thread produces them (early, when no
 * commit is running) into the batch's transaction. Vote requests are the
 * voters' business. */
static int committer_emit(void *opaque, const smc_output_t *o) {
  smc_committer_t *c = opaque;
  batch_t *b = &c->batch[c->front];
  if (o->kind == SMC_OUT_VOTE_REQUEST) {
    smc_metrics_counter_add("smc_proposals_awaiting_votes_total", NULL, 1);
    return 0;
  }
  if (o->kind != SMC_OUT_CONFIRMATION && o->kind != SMC_OUT_REPLY)
    return 0;
  if (o->kind == SMC_OUT_CONFIRMATION)
    smc_answers_decided(c->answers, o->id, o->json, o->json_len, 1);
  pthread_mutex_lock(&c->jlock);
  int rc = batch_add(b, o);
  if (rc == 0 && c->stream == b)
    pthread_cond_signal(&c->jcond);
  pthread_mutex_unlock(&c->jlock);
  return rc;
}

/* ---- batches ------------------------------------------------------------ */

static int fwd_get(void *self, smc_cf_t cf, const void *k, size_t kl, void **v, size_t *vl) {
  return smc_kv_get(((batch_t *)self)->below, cf, k, kl, v, vl);
}
static int fwd_put(void *self, smc_cf_t cf, const void *k, size_t kl, const void *v, size_t vl) {
  return smc_kv_put(((batch_t *)self)->below, cf, k, kl, v, vl);
}
static int fwd_del(void *self, smc_cf_t cf, const void *k, size_t kl) {
  return smc_kv_del(((batch_t *)self)->below, cf, k, kl);
}
static int fwd_seek(void *self, smc_cf_t cf, const void *from, size_t fl, const void *limit,
                    size_t ll, void **k, size_t *kl, void **v, size_t *vl) {
  return smc_kv_seek(((batch_t *)self)->below, cf, from, fl, limit, ll, k, kl, v, vl);
}
static const smc_kv_ops_t fwd_ops = {fwd_get, fwd_put, fwd_del, fwd_seek};

static int batch_init(smc_committer_t *c, batch_t *b) {
  b->below = &c->storekv;
  b->base = (smc_kv_t){&fwd_ops, b};
  if (!(b->ov = smc_overlay_new(&b->base)))
    return SMC_ENOMEM;
  b->kv = smc_overlay_kv(b->ov);
  if (!(b->next = malloc((size_t)c->nparts * sizeof *b->next)))
    return SMC_ENOMEM;
  for (int32_t p = 0; p < c->nparts; p++)
    b->next[p] = -1;
  return 0;
}

/* Forget a batch's writes, outputs and offsets (kept buffers are reused). */
static void batch_reset(smc_committer_t *c, batch_t *b) {
  smc_overlay_clear(b->ov);
  b->records = 0;
  b->urgent = 0;
  b->nouts = 0;
  b->text_len = 0;
  b->published = 0;
  b->stream_err = 0;
  for (int32_t p = 0; p < c->nparts; p++)
    b->next[p] = -1;
}

static void batch_free(batch_t *b) {
  if (b->ov)
    smc_overlay_destroy(b->ov);
  free(b->next);
  free(b->outs);
  free(b->text);
}

/* ---- restore ------------------------------------------------------------ */

/* Snapshot hook of restore_partitions, with the group's committed offsets
 * cl. A partition with records to fold silently whose store is empty, or
 * behind the log's start (the log was trimmed past it: that store is of no
 * use), is loaded from the changelog when that holds its state (its applied
 * offset becomes the checkpoint). Without a usable snapshot it is folded
 * from the log's start, unless the log was trimmed: then its state cannot
 * be rebuilt here, and the restore fails (retried) rather than fold a
 * suffix of the log from nothing. One consumer reads every snapshot.
 * Returns 0 or a negative code. */
static int snapshot_restore(smc_committer_t *c, const smc_kafka_part_t *parts, int nparts) {
  smc_snapshot_part_t *sp = calloc((size_t)nparts + 1, sizeof *sp);
  int64_t *los = calloc((size_t)nparts + 1, sizeof *los);
  int rc = sp && los ? 0 : SMC_ENOMEM;
  size_t n = 0;
  smc_error_t err;
  smc_error_clear(&err);
  for (int i = 0; i < nparts && rc == 0; i++) {
    int32_t p = parts[i].partition;
    int64_t applied = 0, committed = parts[i].committed, lo = 0, hi = 0;
    if (committed <= 0)
      continue;
    if ((rc = smc_fold_applied(c->fold, &c->storekv, p, &applied)) < 0 || applied >= committed)
      continue;
    if (smc_kafka_watermarks(c->consumer, c->topic_in, p, &lo, &hi, 15000) < 0) {
      rc = SMC_EUNAVAILABLE;
      break;
    }
    if (applied > 0 && applied < lo) {
      cmlog(c, SMC_LOG_WARN, p, "store applied %lld, but the log starts at %lld: dropping it",
            (long long)applied, (long long)lo);
      if ((rc = smc_store_drop_partition(c->store, p, &err)) < 0)
        break;
      applied = 0;
    }
    if (applied == 0) {
      los[n] = lo;
      sp[n++] = (smc_snapshot_part_t){p, committed, 0, {p, -1, 0}};
    }
  }
  smc_snapshot_restore_t r = {.bootstrap = c->cfg->bootstrap,
                              .props = c->cfg->kafka_props,
                              .topic = c->topic_changelog,
                              .store = c->store,
                              .stop = &c->stop,
                              .idle_timeout_ms = 30000};
  int64_t t0 = smc_now_ms();
  if (rc == 0 && n > 0 && c->snap && (rc = smc_snapshot_restore_parts(&r, sp, n, &err)) < 0)
    cmlog(c, SMC_LOG_WARN, -1, "restore from the changelog: %s", err.message);
  for (size_t i = 0; rc >= 0 && i < n; i++) {
    if (sp[i].restored) {
      cmlog(c, SMC_LOG_INFO, sp[i].partition,
            "restored from the changelog: checkpoint %lld (%lld records, %lld keys for %zu "
            "partitions in %lld ms)",
            (long long)sp[i].checkpoint.offset, (long long)r.records, (long long)r.keys, n,
            (long long)(smc_now_ms() - t0));
    } else if (los[i] > 0) {
      cmlog(c, SMC_LOG_ERROR, sp[i].partition,
            "the log starts at %lld (trimmed) and the changelog %s: cannot rebuild this "
            "partition's state",
            (long long)los[i], c->snap ? "does not hold its state" : "is off");
      rc = SMC_EUNAVAILABLE;
    } else if (c->snap) {
      cmlog(c, SMC_LOG_INFO, sp[i].partition,
            "changelog not usable (last checkpoint %lld%s): folding the log from its start",
            (long long)sp[i].checkpoint.offset,
            sp[i].checkpoint.offset >= 0 && !sp[i].checkpoint.complete ? ", incomplete" : "");
    }
  }
  if (rc > 0)
    smc_metrics_counter_add("smc_changelog_restores_total", NULL, rc);
  free(sp);
  free(los);
  return rc < 0 ? rc : 0;
}

/* Snapshot hook of restore_partitions, after p's range is known (the store
 * applied up to applied, the group committed up to committed): whether the
 * changelog holds p's whole state, so that this node's checkpoints may say
 * complete (snapshot.h). With the changelog off, the mark goes: what this
 * node folds is not written. */
static int snapshot_assigned(smc_committer_t *c, int32_t p, int64_t applied, int64_t committed) {
  if (!c->snap)
    return smc_snapshot_mark(c->store, p, 0);
  int complete = committed <= 0 || (applied == committed && smc_snapshot_marked(c->store, p));
  if (!complete) {
    smc_error_t err;
    smc_error_clear(&err);
    smc_snapshot_restore_t r = {.bootstrap = c->cfg->bootstrap,
                                .props = c->cfg->kafka_props,
                                .topic = c->topic_changelog,
                                .stop = &c->stop,
                                .idle_timeout_ms = 30000};
    smc_checkpoint_t cp;
    int rc = smc_snapshot_last_checkpoint(&r, p, &cp, &err);
    if (rc < 0) {
      cmlog(c, SMC_LOG_WARN, p, "changelog checkpoint: %s", err.message);
      return rc;
    }
    complete = cp.complete && cp.offset == committed;
    if (!complete)
      cmlog(c, SMC_LOG_WARN, p,
            "the changelog does not hold this partition's state (last checkpoint %lld%s, "
            "committed %lld): its checkpoints say incomplete until it is rebuilt",
            (long long)cp.offset, cp.offset >= 0 && !cp.complete ? " incomplete" : "",
            (long long)committed);
  }
  int rc = smc_snapshot_mark(c->store, p, complete);
  if (rc < 0)
    return rc;
  smc_snapshot_set_complete(c->snap, p, complete);
  return 0;
}

/*
 * Bring the store of every partition of parts up to the group's committed
 * offset c without emitting anything, and set each element's offset to where
 * consumption continues (c; the log start when the group never committed).
 * A store ahead of Kafka (applied a > c) cannot happen when the store is
 * written after the commit, but is guarded: the partition is dropped and
 * rebuilt from the log start. Returns 0 or a negative code.
 */
static int restore_partitions(smc_committer_t *c, smc_kafka_part_t *parts, int nparts) {
  smc_error_t err;
  smc_error_clear(&err);
  smc_replay_part_t *rp = calloc((size_t)nparts + 1, sizeof *rp);
  int rc = 0;
  if (!rp) {
    rc = SMC_ENOMEM;
    goto out;
  }
  /* ---- snapshot hook: empty stores restore from the changelog ---- */
  if ((rc = snapshot_restore(c, parts, nparts)) < 0)
    goto out;
  /* ---- end of snapshot hook ---- */
  size_t n = 0;
  for (int i = 0; i < nparts; i++) {
    int32_t p = parts[i].partition;
    int64_t committed = parts[i].committed, applied = 0;
    if ((rc = smc_fold_applied(c->fold, &c->storekv, p, &applied)) < 0)
      goto out;
    int64_t start = committed;
    if (committed < 0) { /* the group never committed p */
      if (applied > 0) {
        cmlog(c, SMC_LOG_WARN, p, "store applied %lld but nothing committed: rebuilding",
              (long long)applied);
        if ((rc = smc_store_drop_partition(c->store, p, &err)) < 0)
          goto out;
      }
      start = SMC_KAFKA_OFFSET_BEGINNING;
    } else if (applied > committed) {
      cmlog(c, SMC_LOG_WARN, p, "store ahead of Kafka (applied %lld > committed %lld): rebuilding",
            (long long)applied, (long long)committed);
      if ((rc = smc_store_drop_partition(c->store, p, &err)) < 0)
        goto out;
      rp[n++] = (smc_replay_part_t){.partition = p, .from = 0, .to = committed};
    } else if (applied < committed) {
      rp[n++] = (smc_replay_part_t){.partition = p, .from = applied, .to = committed};
    }
    parts[i].offset = start;
    /* ---- snapshot hook: is p's whole state in the changelog? ---- */
    if ((rc = snapshot_assigned(c, p, applied, committed)) < 0)
      goto out;
    /* ---- end of snapshot hook ---- */
    c->folded_end[p] = committed >= 0 ? committed : 0;
    cmlog(c, SMC_LOG_INFO, p, "restore: applied %lld, committed %lld", (long long)applied,
          (long long)committed);
  }
  if (n > 0) {
    smc_replay_t r = {.bootstrap = c->cfg->bootstrap,
                      .props = c->cfg->kafka_props,
                      .topic = c->topic_in,
                      .fold = c->fold,
                      .store = c->store,
                      .stop = &c->stop,
                      .idle_timeout_ms = 30000};
    int64_t t0 = smc_now_ms();
    if ((rc = smc_replay_run(&r, rp, n, &err)) < 0) {
      cmlog(c, SMC_LOG_WARN, -1, "restore replay: %s", err.message);
      goto out;
    }
    for (size_t i = 0; i < n; i++)
      cmlog(c, SMC_LOG_INFO, rp[i].partition, "replayed %lld records silently in %lld ms",
            (long long)rp[i].records, (long long)(smc_now_ms() - t0));
  }
out:
  if (rc < 0 && err.code && !err.message[0])
    cmlog(c, SMC_LOG_WARN, -1, "restore failed");
  free(rp);
  return rc;
}

/* ---- transactions (commit thread) -------------------------------------- */

/* Whether b has outputs to stream now (jlock held). A batch nobody waits for
 * is produced at its commit instead, in fewer and larger requests (one per
 * partition, not one per linger period). */
static int stream_pending(const batch_t *b) {
  return b->urgent && !b->stream_err && b->published < b->nouts;
}

/*
 * Produce the stream batch's outputs not yet produced, opening the
 * transaction first (commit thread, jlock not held). Each output is copied
 * out under jlock, since the fold thread appends to the batch meanwhile.
 * Stops when b stops being the stream batch (it was handed over as a job, or
 * is being dropped). On failure the transaction is aborted and b marked.
 */
static void stream_outputs(smc_committer_t *c, batch_t *b) {
  for (;;) {
    pthread_mutex_lock(&c->jlock);
    if (c->stream != b || !stream_pending(b)) {
      pthread_mutex_unlock(&c->jlock);
      return;
    }
    out_rec_t o = b->outs[b->published];
    size_t end = o.reply_to != NO_REPLY ? o.reply_to + strlen(b->text + o.reply_to) + 1
                                        : o.json + o.json_len + 1;
    if (o.kind == SMC_OUT_CONFIRMATION) /* its machine comes last (batch_add) */
      end = o.machine + strlen(b->text + o.machine) + 1;
    size_t need = end - o.key; /* key, json, reply_to, machine are consecutive */
    if (need > c->scratch_cap) {
      char *t = realloc(c->scratch, need);
      if (!t) {
        b->stream_err = 1;
        pthread_mutex_unlock(&c->jlock);
        break;
      }
      c->scratch = t;
      c->scratch_cap = need;
    }
    memcpy(c->scratch, b->text + o.key, need);
    pthread_mutex_unlock(&c->jlock);
    batch_t one = {.text = c->scratch};
    size_t base = o.key;
    o.key -= base;
    o.json -= base;
    if (o.reply_to != NO_REPLY)
      o.reply_to -= base;
    if (o.kind == SMC_OUT_CONFIRMATION)
      o.machine -= base;
    if (smc_txn_begin(c->txn) < 0 || publish(c, &one, &o) < 0) {
      pthread_mutex_lock(&c->jlock);
      b->stream_err = 1;
      pthread_mutex_unlock(&c->jlock);
      break;
    }
    pthread_mutex_lock(&c->jlock);
    b->published++;
    pthread_mutex_unlock(&c->jlock);
  }
  smc_txn_abort(c->txn, "producing an output failed");
}

/* The changelog writer's produce (snapshot.h): into the open transaction. */
static int changelog_produce(void *opaque, const char *topic, int32_t p, const void *key,
                             size_t klen, const void *val, size_t vlen) {
  smc_committer_t *c = opaque;
  return smc_txn_produce(c->txn, topic, p, key, klen, val, vlen);
}

/*
 * Commit batch b: the transaction streaming opened (or a new one), its
 * outputs not yet produced, its offsets, commit. Returns 0 when committed,
 * -1 when the transaction was aborted or its outcome is unknown (the
 * producer was re-created); the fold thread then resyncs from the committed
 * offsets. Leaves no transaction open.
 */
static int run_job(smc_committer_t *c, batch_t *b) {
  int64_t t0 = smc_now_ms();
  if (b->stream_err) {
    smc_txn_abort(c->txn, "producing an output failed");
    return -1;
  }
  if (smc_txn_begin(c->txn) < 0)
    return -1;
  b->early = b->published;
  for (; b->published < b->nouts; b->published++)
    if (publish(c, b, &b->outs[b->published]) < 0) {
      smc_txn_abort(c->txn, "produce failed");
      return -1;
    }
  int64_t t_pub = smc_now_ms();
  /* ---- snapshot hook: the changelog of the keys this batch touched ---- */
  if (c->snap && smc_snapshot_write(c->snap, changelog_produce, c, b->ov, b->next) < 0) {
    smc_txn_abort(c->txn, "producing the changelog failed");
    return -1;
  }
  /* ---- end of snapshot hook ---- */
  if (smc_txn_send_offsets(c->txn, c->consumer, c->topic_in, b->next, c->nparts) < 0)
    return -1;
  int64_t t_off = smc_now_ms();
  if (smc_txn_commit(c->txn) < 0)
    return -1;
  int64_t t1 = smc_now_ms();
  cmlog(c, SMC_LOG_DEBUG, -1,
        "committed %d records, %zu outputs (%zu produced early): produce %lld ms, offsets %lld ms, "
        "commit %lld ms",
        b->records, b->nouts, b->early, (long long)(t_pub - t0), (long long)(t_off - t_pub),
        (long long)(t1 - t_off));
  smc_metrics_histogram_observe("smc_txn_commit_seconds", NULL, (double)(t1 - t0) / 1000.0);
  smc_metrics_counter_add("smc_txn_commits_total", NULL, 1);
  smc_metrics_counter_add("smc_txn_records_total", NULL, (double)b->records);
  return 0;
}

/* The commit thread: runs jobs (commit a batch, abort the open transaction)
 * one at a time; between jobs produces the stream batch's outputs and serves
 * the producer's events. */
static void *commit_main(void *arg) {
  smc_committer_t *c = arg;
  pthread_mutex_lock(&c->jlock);
  for (;;) {
    if (c->job_kind) {
      int kind = c->job_kind;
      batch_t *b = c->job;
      pthread_mutex_unlock(&c->jlock);
      int rc = 0;
      if (kind == JOB_COMMIT)
        rc = run_job(c, b);
      else
        smc_txn_abort(c->txn, "batch dropped");
      pthread_mutex_lock(&c->jlock);
      c->job = NULL;
      c->job_kind = 0;
      c->job_done = 1;
      c->job_rc = rc;
      pthread_cond_broadcast(&c->jcond);
      continue;
    }
    if (c->cstop)
      break;
    batch_t *st = c->stream;
    if (st && stream_pending(st)) {
      pthread_mutex_unlock(&c->jlock);
      stream_outputs(c, st);
      pthread_mutex_lock(&c->jlock);
      continue;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    if (pthread_cond_timedwait(&c->jcond, &c->jlock, &ts) != 0) {
      pthread_mutex_unlock(&c->jlock);
      smc_txn_poll(c->txn);
      pthread_mutex_lock(&c->jlock);
    }
  }
  pthread_mutex_unlock(&c->jlock);
  smc_txn_abort(c->txn, "shutdown");
  return NULL;
}

/* ---- the pipeline (fold thread) ----------------------------------------- */

/* Hand the front batch to the idle commit thread and layer a fresh front
 * batch on top of it. */
static void dispatch(smc_committer_t *c) {
  batch_t *b = &c->batch[c->front];
  pthread_mutex_lock(&c->jlock);
  c->job = b;
  c->job_kind = JOB_COMMIT;
  c->job_done = 0;
  c->stream = NULL;
  pthread_cond_broadcast(&c->jcond);
  pthread_mutex_unlock(&c->jlock);
  c->inflight = b;
  c->front ^= 1;
  c->batch[c->front].below = &b->kv;
}

/* The in-flight batch's transaction ended with rc: on success write it to the
 * store; on failure (or a failed store write) drop the front batch too, it was
 * folded on top, and resync. Either way the front batch now reads the store. */
static void reap(smc_committer_t *c, int rc) {
  batch_t *k = c->inflight, *f = &c->batch[c->front];
  if (rc == 0) {
    smc_error_t err;
    smc_error_clear(&err);
    double t0 = smc_metrics_now_s();
    int wrc = smc_store_apply(c->store, k->ov, &err);
    smc_metrics_histogram_observe("smc_store_write_seconds", "role=\"committer\"",
                                  smc_metrics_now_s() - t0);
    if (wrc < 0) {
      /* Kafka has the outputs; the store is behind: restore replays silently. */
      cmlog(c, SMC_LOG_ERROR, -1, "store write after commit failed: %s", err.message);
      c->need_resync = 1;
    }
  } else {
    c->need_resync = 1;
  }
  f->below = &c->storekv;
  batch_reset(c, k);
  if (c->need_resync)
    batch_reset(c, f); /* nothing of it was produced: it was not the stream */
  c->inflight = NULL;
  pthread_mutex_lock(&c->jlock);
  c->stream = f;
  pthread_cond_broadcast(&c->jcond);
  pthread_mutex_unlock(&c->jlock);
}

/* Reap the in-flight batch if its transaction ended (block: wait for it).
 * Returns 1 when nothing is in flight any more. */
static int settle(smc_committer_t *c, int block) {
  if (!c->inflight)
    return 1;
  pthread_mutex_lock(&c->jlock);
  while (block && !c->job_done)
    pthread_cond_wait(&c->jcond, &c->jlock);
  int done = c->job_done, rc = c->job_rc;
  c->job_done = 0;
  pthread_mutex_unlock(&c->jlock);
  if (done)
    reap(c, rc);
  return done;
}

/* Drop the front batch: wait for the in-flight transaction, have the commit
 * thread abort the transaction the front batch's outputs went into, forget
 * the batch. The caller resyncs. */
static void discard_front(smc_committer_t *c) {
  settle(c, 1);
  batch_t *f = &c->batch[c->front];
  if (c->cthread_started) {
    pthread_mutex_lock(&c->jlock);
    c->stream = NULL;
    c->job = NULL;
    c->job_kind = JOB_ABORT;
    c->job_done = 0;
    pthread_cond_broadcast(&c->jcond);
    while (!c->job_done)
      pthread_cond_wait(&c->jcond, &c->jlock);
    c->job_done = 0;
    pthread_mutex_unlock(&c->jlock);
  }
  batch_reset(c, f);
  pthread_mutex_lock(&c->jlock);
  c->stream = f;
  pthread_mutex_unlock(&c->jlock);
  for (int32_t p = 0; p < c->nparts; p++)
    c->folded_end[p] = -1; /* until the resync restores p */
}

/* Finish everything folded: wait for the in-flight transaction, then commit
 * the front batch (commit_front) or drop it and resync. */
static void drain(smc_committer_t *c, int commit_front) {
  settle(c, 1);
  batch_t *f = &c->batch[c->front];
  if (f->records == 0 && f->nouts == 0)
    return;
  if (commit_front && !c->need_resync && c->cthread_started) {
    dispatch(c);
    settle(c, 1);
  } else {
    discard_front(c);
    c->need_resync = 1;
  }
}

/*
 * The assignment was lost (or the rebalance failed): drop the front batch
 * without waiting for a commit in flight, which can take the transaction
 * timeout when the broker is gone and would hold up the whole group in this
 * rebalance callback. A front batch folded while a commit was in flight has
 * produced nothing yet; otherwise its outputs may be in the open
 * transaction, which the idle commit thread aborts. The resync that follows
 * waits for the commit in flight and reads its outcome back.
 */
static void drop_front_lost(smc_committer_t *c) {
  settle(c, 0);
  batch_t *f = &c->batch[c->front];
  int dropped = f->records > 0 || f->nouts > 0;
  if (c->inflight)
    batch_reset(c, f);
  else if (dropped)
    discard_front(c);
  if (c->inflight || dropped)
    c->need_resync = 1;
}

/* Rewind every assigned partition to its committed offset after an abort or
 * a producer rebuild. Returns 0 or a negative code (retried later). */
static int resync(smc_committer_t *c) {
  discard_front(c);
  smc_kafka_part_t *as = NULL;
  int n = 0, rc = 0;
  char why[512];
  if (smc_kafka_assignment(c->consumer, &as, &n, why, sizeof why) < 0) {
    cmlog(c, SMC_LOG_WARN, -1, "%s", why);
    return SMC_EUNAVAILABLE;
  }
  if (n > 0 && (rc = restore_partitions(c, as, n)) == 0 &&
      smc_kafka_seek(c->consumer, c->topic_in, as, n, why, sizeof why) < 0) {
    cmlog(c, SMC_LOG_WARN, -1, "%s", why);
    rc = SMC_EKAFKA;
  }
  free(as);
  if (rc == 0) {
    c->need_resync = 0;
    cmlog(c, SMC_LOG_INFO, -1, "resynced to the committed offsets");
  }
  return rc;
}

/* ---- rebalance ---------------------------------------------------------- */

/* Partitions given: restore each one's store to the group's committed
 * offset first, retrying until it works or the role stops. */
static int on_assign(void *opaque, smc_kafka_part_t *parts, int n, const char *error) {
  smc_committer_t *c = opaque;
  if (error)
    cmlog(c, SMC_LOG_WARN, -1, "committed offsets: %s", error);
  if (!error && restore_partitions(c, parts, n) == 0)
    return 0;
  if (atomic_load(&c->stop))
    return -1;
  struct timespec ts = {0, RESTORE_RETRY_MS * 1000000L};
  nanosleep(&ts, NULL);
  return 1;
}

static void on_assigned(void *opaque, const smc_kafka_part_t *parts, int n, const char *error) {
  smc_committer_t *c = opaque;
  if (error) {
    cmlog(c, SMC_LOG_ERROR, -1, "assign: %s", error);
    return;
  }
  set_serving(c, parts, n, 1);
  for (int i = 0; i < n; i++) {
    int32_t p = parts[i].partition;
    if (p >= 0 && p < c->nparts)
      c->last_tick[p] = 0;
    cmlog(c, SMC_LOG_INFO, p, "assigned; serving from offset %lld", (long long)parts[i].offset);
  }
}

/* Partitions taken away: commit what was folded (the partitions are still
 * ours), or drop it when the assignment was lost or the rebalance failed:
 * another node may already own them. */
static void on_revoke(void *opaque, const smc_kafka_part_t *parts, int n, int lost,
                      const char *error) {
  smc_committer_t *c = opaque;
  if (error)
    cmlog(c, SMC_LOG_ERROR, -1, "rebalance error: %s", error);
  else if (lost)
    cmlog(c, SMC_LOG_WARN, -1, "assignment lost: dropping the uncommitted batch");
  if (lost)
    drop_front_lost(c);
  else
    drain(c, 1);
  set_serving(c, parts, n, 0);
  for (int i = 0; !error && i < n; i++)
    cmlog(c, SMC_LOG_INFO, parts[i].partition, "revoked");
}

static const smc_kafka_group_handler_t group_handler = {
    .want_committed = 1, .assign = on_assign, .assigned = on_assigned, .revoke = on_revoke};

/* ---- local answers (answers.h) ------------------------------------------ */

/* Answer every queued read whose partition the fold has passed its target
 * (fold thread): from the front batch's view, which holds every record
 * folded so far, committed or not. A decision is a function of the log
 * prefix, so that view is what any node folding the same prefix holds. */
static void serve_reads(smc_committer_t *c) {
  if (atomic_load(&c->nreads) == 0)
    return;
  pthread_mutex_lock(&c->rlock);
  for (smc_answer_t **pp = &c->reads; *pp;) {
    smc_answer_t *a = *pp;
    int32_t p = a->partition;
    int serving = is_serving(c, p);
    if (serving && (c->need_resync || c->folded_end[p] < a->target)) {
      pp = &a->next;
      continue;
    }
    *pp = a->next;
    atomic_fetch_sub(&c->nreads, 1);
    char *json = NULL;
    int rc = serving ? smc_answers_fold_query(c->fold, &c->batch[c->front].kv, p, a, &json)
             : p >= 0 && p < c->nparts && c->serving[p] == 2 ? SMC_EINCOMPATIBLE
                                                             : SMC_EUNAVAILABLE;
    smc_answer_fill(a, rc, json, json ? strlen(json) : 0, 1);
    free(json);
    if (rc == 0)
      smc_metrics_counter_add("smc_local_reads_total", NULL, 1);
  }
  pthread_mutex_unlock(&c->rlock);
}

static int folder_serves(void *self, int32_t p) {
  smc_committer_t *c = self;
  if (p >= 0 && p < c->nparts && c->serving[p] == 2)
    return SMC_EINCOMPATIBLE;
  return p >= 0 && p < c->nparts && is_serving(c, p) && atomic_load(&c->healthy);
}

static void folder_read(void *self, smc_answer_t *a);

/* The read index round answered a's ask (round thread): queue the read. */
static void read_index_done(smc_read_index_wait_t *w, int rc, int64_t end) {
  smc_answer_t *a = (smc_answer_t *)((char *)w - offsetof(smc_answer_t, ri));
  if (rc) {
    smc_answer_fill(a, SMC_EUNAVAILABLE, NULL, 0, 1);
    return;
  }
  a->target = end;
  folder_read(a->fself, a);
}

static void folder_read_index(void *self, smc_answer_t *a) {
  smc_committer_t *c = self;
  a->ri.partition = a->partition;
  a->ri.done = read_index_done;
  smc_read_index_start(c->ri, &a->ri);
}

static void folder_read(void *self, smc_answer_t *a) {
  smc_committer_t *c = self;
  pthread_mutex_lock(&c->rlock);
  a->next = c->reads;
  c->reads = a;
  atomic_fetch_add(&c->nreads, 1);
  pthread_mutex_unlock(&c->rlock);
  smc_kafka_wake(c->consumer); /* the fold thread may be waiting in a poll */
}

static int folder_cancel(void *self, smc_answer_t *a) {
  smc_committer_t *c = self;
  if (smc_read_index_cancel(c->ri, &a->ri))
    return 1; /* still waiting for its round */
  int queued = 0;
  pthread_mutex_lock(&c->rlock);
  for (smc_answer_t **pp = &c->reads; *pp; pp = &(*pp)->next)
    if (*pp == a) {
      *pp = a->next;
      atomic_fetch_sub(&c->nreads, 1);
      queued = 1;
      break;
    }
  pthread_mutex_unlock(&c->rlock);
  return queued;
}

static const smc_folder_ops_t folder_ops = {folder_serves, folder_read_index, folder_read,
                                            folder_cancel};

/* Fail every queued read (the committer stops). */
static void fail_reads(smc_committer_t *c) {
  pthread_mutex_lock(&c->rlock);
  while (c->reads) {
    smc_answer_t *a = c->reads;
    c->reads = a->next;
    atomic_fetch_sub(&c->nreads, 1);
    smc_answer_fill(a, SMC_EUNAVAILABLE, NULL, 0, 1);
  }
  pthread_mutex_unlock(&c->rlock);
}

/* ---- the loop ----------------------------------------------------------- */

static void handle_message(smc_committer_t *c, smc_kafka_msg_t *m) {
  if (m->eof) {
    /* m->offset: where the next fetch starts, past transaction markers */
    int32_t p = m->partition;
    if (!c->need_resync && p >= 0 && p < c->nparts && is_serving(c, p) && c->folded_end[p] >= 0 &&
        m->offset > c->folded_end[p])
      c->folded_end[p] = m->offset;
    return;
  }
  if (m->error) {
    cmlog(c, SMC_LOG_WARN, m->partition, "consumer: %s", m->error);
    if (m->fatal) {
      cmlog(c, SMC_LOG_ERROR, -1, "fatal consumer error: %s", m->error);
      atomic_store(&c->healthy, 0);
      atomic_store(&c->stop, 1);
    }
    return;
  }
  /* After an abort, records fetched before the rewind are stale. */
  if (c->need_resync || !is_serving(c, m->partition))
    return;
  batch_t *b = &c->batch[c->front];
  if (b->records == 0)
    b->start = smc_now_ms();
  smc_msgrec_t mr;
  smc_kafka_msg_record(&mr, m);
  int rc = smc_fold_apply(c->fold, &b->kv, &mr.rec, committer_emit, c);
  int ack_decided = mr.ack_decided;
  smc_msgrec_close(&mr);
  if (rc == SMC_EINCOMPATIBLE) {
    stop_partition(c, m->partition, m->offset);
    return;
  }
  if (rc < 0) {
    /* This batch is dropped; the one in flight (if any) is not affected. */
    cmlog(c, SMC_LOG_WARN, m->partition, "fold of offset %lld failed: %s; re-folding",
          (long long)m->offset, smc_code_name(rc));
    smc_metrics_counter_add("smc_committer_txn_aborts_total", NULL, 1);
    discard_front(c);
    c->need_resync = 1;
    return;
  }
  b->next[m->partition] = m->offset + 1;
  c->folded_end[m->partition] = m->offset + 1;
  b->records++;
  if (!ack_decided && !b->urgent) { /* the commit thread reads it under jlock */
    pthread_mutex_lock(&c->jlock);
    b->urgent = 1;
    pthread_mutex_unlock(&c->jlock);
  }
  smc_metrics_counter_add("smc_records_folded_total", "role=\"committer\"", 1);
}

/* While a timer is pending in a served partition, write a tick to it about
 * every tick_ms so the deadline fires even when the partition is idle. */
/*
 * Whether partition p needs a tick now, given its earliest pending deadline.
 * Ticks come every tick_ms from two ticks before the deadline (by this node's
 * wall clock) on, so the first tick stamped at or after the deadline fires
 * it; far from the deadline only a keep-alive tick every TICK_KEEPALIVE_MS
 * is written. The keep-alive shows the broker's clock: when the partition
 * clock is ahead of this node's wall clock (this node's clock lags), the
 * wall clock is not trusted and ticks come every tick_ms until it fires.
 */
#define TICK_KEEPALIVE_MS 5000
static int tick_due(smc_committer_t *c, int32_t p, int64_t deadline, int64_t now) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  int64_t clock = 0;
  if (smc_fold_clock(c->fold, &c->batch[c->front].kv, p, &clock) < 0)
    return 1;
  int tick = c->cfg->tick_ms;
  return wall >= deadline - 2 * tick || clock > wall + tick ||
         now - c->last_tick[p] >= TICK_KEEPALIVE_MS;
}

static void maybe_tick(smc_committer_t *c, int64_t now) {
  if (now < c->next_tick_check)
    return;
  c->next_tick_check = now + c->cfg->tick_ms / 4 + 1;
  static const char tick[] = "{\"type\":\"tick\"}";
  for (int32_t p = 0; p < c->nparts; p++) {
    if (!is_serving(c, p))
      continue;
    /* The metadata's lower bound first: the timers themselves are read (a
     * seek that skips the tombstones of removed timers) only when it says a
     * tick may be due; a tick is never due earlier for the exact deadline. */
    int64_t deadline = 0;
    smc_kv_t *kv = &c->batch[c->front].kv;
    int pending = smc_fold_timer_bound(c->fold, kv, p, &deadline);
    char labels[32];
    snprintf(labels, sizeof labels, "partition=\"%d\"", (int)p);
    if (pending != 1) {
      smc_metrics_gauge_set("smc_timer_pending", labels, 0);
      continue;
    }
    if (now - c->last_tick[p] < c->cfg->tick_ms || !tick_due(c, p, deadline, now))
      continue;
    pending = smc_fold_next_deadline(c->fold, kv, p, &deadline);
    smc_metrics_gauge_set("smc_timer_pending", labels, pending == 1 ? 1 : 0);
    if (pending != 1 || !tick_due(c, p, deadline, now))
      continue;
    const char *why = NULL; /* one attempt: a full queue is not waited for */
    if (smc_kafka_send_until(c->tickp, c->topic_in, p, NULL, 0, tick, sizeof tick - 1, NULL, 0,
                             &why) < 0)
      cmlog(c, SMC_LOG_WARN, p, "tick: %s", why);
    else
      smc_metrics_counter_add("smc_ticks_total", NULL, 1);
    c->last_tick[p] = now;
  }
}

/* Fold lag per served partition: high watermark minus position. */
static void update_lag(smc_committer_t *c, int64_t now) {
  if (now < c->next_lag_check)
    return;
  c->next_lag_check = now + 1000;
  for (int32_t p = 0; p < c->nparts; p++) {
    char labels[32];
    snprintf(labels, sizeof labels, "partition=\"%d\"", (int)p);
    if (!is_serving(c, p)) {
      atomic_store(&c->lag[p], -1);
      continue;
    }
    int64_t hi = 0;
    if (smc_kafka_cached_high(c->consumer, c->topic_in, p, &hi) < 0)
      continue;
    smc_kafka_part_t at = {.partition = p, .offset = -1};
    smc_kafka_positions(c->consumer, c->topic_in, &at, 1);
    int64_t pos = at.offset;
    if (pos >= 0) {
      smc_metrics_gauge_set("smc_fold_lag_records", labels, (double)(hi - pos));
      atomic_store(&c->lag[p], hi - pos);
    } else if (c->folded_end[p] >= 0 && hi >= c->folded_end[p]) {
      atomic_store(&c->lag[p], hi - c->folded_end[p]);
    }
  }
}

/* How old batch b may grow before it is committed: commit_interval_ms when
 * some record's producer may be waiting for its confirmation (Kafka-native
 * clients, ack=confirmed, votes, ticks), else commit_max_interval_ms: every
 * record came from a gateway that answers from a local fold (header smc-ack:
 * decided), so nobody waits for this transaction but the log's readers, and
 * fewer, larger transactions cost the broker less per record. */
static int batch_interval(const smc_committer_t *c, const batch_t *b) {
  if (b->urgent || c->cfg->commit_max_interval_ms < c->cfg->commit_interval_ms)
    return c->cfg->commit_interval_ms;
  return c->cfg->commit_max_interval_ms;
}

/* Poll timeout for the fold loop: until the front batch is due; briefly when
 * it is due but the commit thread is busy (the batch keeps growing). */
static int poll_timeout(smc_committer_t *c, int64_t now) {
  const batch_t *f = &c->batch[c->front];
  if (f->records == 0)
    return 20;
  int64_t left = f->start + batch_interval(c, f) - now;
  if (left > 0)
    return (int)left;
  return c->inflight ? 1 : 0;
}

/* Take one message within ms and drop it (records read before a rewind are
 * read again after it); rebalances are served meanwhile. */
static void drop_message(smc_committer_t *c, int ms) {
  smc_kafka_msg_t m;
  if (smc_kafka_consume(c->consumer, ms, &m))
    smc_kafka_msg_release(&m);
}

static void *committer_main(void *arg) {
  smc_committer_t *c = arg;
  int rc = smc_txn_open(c->txn);
  if (rc < 0) {
    if (rc == SMC_EKAFKA)
      atomic_store(&c->healthy, 0);
    goto out;
  }
  if (pthread_create(&c->cthread, NULL, commit_main, c) != 0) {
    cmlog(c, SMC_LOG_ERROR, -1, "pthread_create: %s", strerror(errno));
    atomic_store(&c->healthy, 0);
    goto out;
  }
  c->cthread_started = 1;
  pthread_mutex_lock(&c->jlock);
  c->stream = &c->batch[c->front];
  pthread_mutex_unlock(&c->jlock);
  char why[256];
  if (smc_kafka_subscribe(c->consumer, c->topic_in, why, sizeof why) < 0) {
    cmlog(c, SMC_LOG_ERROR, -1, "subscribe: %s", why);
    atomic_store(&c->healthy, 0);
    goto out;
  }
  cmlog(c, SMC_LOG_INFO, -1, "joined group %s (%d partitions)", c->group, (int)c->nparts);
  int hard_cap = c->cfg->commit_max_records * BATCH_HARD_FACTOR;
  while (!atomic_load(&c->stop)) {
    settle(c, 0);
    if (c->need_resync && c->inflight) {
      /* resync once the commit in flight has ended; serve the group meanwhile
       * (records read now are re-read after the rewind) */
      drop_message(c, 10);
      continue;
    }
    if (c->need_resync && resync(c) < 0) {
      struct timespec ts = {0, 200 * 1000000L};
      nanosleep(&ts, NULL);
      drop_message(c, 0); /* serve rebalances */
      continue;
    }
    if (c->inflight && c->batch[c->front].records >= hard_cap) {
      settle(c, 1); /* the broker is far behind: wait for it */
      continue;
    }
    smc_kafka_msg_t m;
    if (smc_kafka_consume(c->consumer, poll_timeout(c, smc_now_ms()), &m)) {
      handle_message(c, &m);
      smc_kafka_msg_release(&m);
    }
    serve_reads(c);
    int64_t now = smc_now_ms();
    const batch_t *f = &c->batch[c->front];
    if (f->records > 0 && !c->need_resync &&
        (f->records >= c->cfg->commit_max_records || now - f->start >= batch_interval(c, f)) &&
        settle(c, 0) && !c->need_resync)
      dispatch(c);
    maybe_tick(c, now);
    update_lag(c, now);
    smc_kafka_poll(c->tickp, 0);
  }
out:
  drain(c, 1);
  cmlog(c, SMC_LOG_INFO, -1, "leaving group %s", c->group);
  smc_kafka_leave(c->consumer); /* revokes: commits or drops first */
  drain(c, 0);
  if (c->cthread_started) {
    pthread_mutex_lock(&c->jlock);
    c->cstop = 1;
    pthread_cond_broadcast(&c->jcond);
    pthread_mutex_unlock(&c->jlock);
    pthread_join(c->cthread, NULL);
    c->cthread_started = 0;
  }
  smc_kafka_flush(c->tickp, 2000);
  return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

/* The changelog writer when the changelog is on and its topic has the
 * proposals' partitions (without the topic: a warning, and none). */
static int snapshot_start(smc_committer_t *c, smc_error_t *err) {
  if (!c->cfg->changelog)
    return 0;
  if (!(c->topic_changelog = smc_topic(c->cfg->prefix, "changelog")))
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  int ok = smc_snapshot_topic_ok(c->consumer, c->topic_changelog, c->nparts);
  if (ok < 0)
    return smc_kafka_topic_error(err, ok, c->topic_changelog, c->cfg->bootstrap);
  if (!ok) {
    cmlog(c, SMC_LOG_WARN, -1,
          "topic %s missing or not %d partitions: no snapshots (smc topics create makes it)",
          c->topic_changelog, (int)c->nparts);
    return 0;
  }
  if (!(c->snap = smc_snapshot_new(c->topic_changelog, c->nparts)))
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  return 0;
}

static smc_kafka_t *new_consumer(smc_committer_t *c, smc_error_t *err) {
  return smc_node_group_member(c->cfg, c->group, c->txn_id, &group_handler,
                               c->cfg->committer_kafka_props, c, "committer consumer", err);
}

static void committer_free(smc_committer_t *c) {
  if (!c)
    return;
  smc_answers_remove_folder(c->answers, c);
  fail_reads(c);
  smc_kafka_close(c->consumer);
  smc_txn_destroy(c->txn);
  smc_kafka_close(c->tickp);
  smc_read_index_destroy(c->ri);
  batch_free(&c->batch[0]);
  batch_free(&c->batch[1]);
  if (c->fold)
    smc_fold_destroy(c->fold);
  smc_store_close(c->store);
  for (int i = 0; i < TOPIC_CACHE; i++)
    free(c->topics[i].name);
  free(c->topic_in);
  free(c->topic_conf);
  free(c->topic_replies);
  smc_snapshot_destroy(c->snap);
  free(c->topic_changelog);
  free(c->group);
  free(c->txn_id);
  free(c->store_dir);
  free(c->scratch);
  free(c->serving);
  free(c->last_tick);
  free(c->folded_end);
  free(c->lag);
  pthread_mutex_destroy(&c->rlock);
  pthread_mutex_destroy(&c->lock);
  pthread_mutex_destroy(&c->jlock);
  pthread_cond_destroy(&c->jcond);
  free(c);
}

int smc_committer_start(const smc_node_config_t *cfg, smc_committer_t **out, smc_error_t *err) {
  int rc = 0;
  *out = NULL;
  smc_committer_t *c = calloc(1, sizeof *c);
  if (!c)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  pthread_mutex_init(&c->lock, NULL);
  pthread_mutex_init(&c->rlock, NULL);
  pthread_mutex_init(&c->jlock, NULL);
  pthread_cond_init(&c->jcond, NULL);
  c->cfg = cfg;
  atomic_store(&c->healthy, 1);
  c->topic_in = smc_topic(cfg->prefix, "proposals");
  c->topic_conf = smc_topic(cfg->prefix, "confirmations");
  c->topic_replies = smc_topic(cfg->prefix, "replies");
  c->group = smc_node_group_name(cfg->prefix, "committer");
  c->store_dir = smc_strdupf("%s/committer", cfg->data_dir);
  c->txn_id = c->group ? smc_strdupf("%s-%s", c->group, cfg->node_id) : NULL;
  if (!c->topic_in || !c->topic_conf || !c->topic_replies || !c->group || !c->txn_id ||
      !c->store_dir) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  if ((rc = smc_node_store_open(cfg, c->store_dir, &c->store, err)) < 0)
    goto fail;
  c->storekv = smc_store_kv(c->store);
  if (!(c->consumer = new_consumer(c, err))) {
    rc = SMC_EKAFKA;
    goto fail;
  }
  int32_t n = smc_node_topic_partitions(cfg, c->consumer, c->topic_in, err);
  if (n < 0) {
    rc = n;
    goto fail;
  }
  int32_t nc = smc_kafka_partitions(c->consumer, c->topic_conf, 10000);
  if (nc != n) {
    rc =
        smc_error_set(err, nc < 0 ? nc : SMC_EINVALID_ARGUMENT, NULL, "topic %s: %s", c->topic_conf,
                      nc < 0 ? smc_strerror(nc) : "partition count differs from proposals");
    goto fail;
  }
  c->nparts = n;
  c->serving = calloc((size_t)n, 1);
  c->last_tick = calloc((size_t)n, sizeof *c->last_tick);
  c->folded_end = malloc((size_t)n * sizeof *c->folded_end);
  if (c->folded_end)
    for (int32_t p = 0; p < n; p++)
      c->folded_end[p] = -1;
  c->lag = malloc((size_t)n * sizeof *c->lag);
  for (int32_t p = 0; c->lag && p < n; p++)
    atomic_init(&c->lag[p], -1);
  if (!c->serving || !c->last_tick || !c->folded_end || !c->lag ||
      batch_init(c, &c->batch[0]) < 0 || batch_init(c, &c->batch[1]) < 0) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  /* ---- snapshot hook: the changelog writer ---- */
  if ((rc = snapshot_start(c, err)) < 0)
    goto fail;
  /* ---- end of snapshot hook ---- */
  if ((rc = smc_node_fold_new(cfg, n, fold_logger, c, &c->fold, err)) < 0)
    goto fail;
  if (!(c->txn = new_txn(c))) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  if (!(c->tickp = new_tick_producer(c, err))) {
    rc = SMC_EKAFKA;
    goto fail;
  }
  if ((rc = smc_read_index_new(c->cfg->bootstrap, c->cfg->kafka_props, c->topic_in, n, &c->ri,
                               err)) < 0)
    goto fail;
  if ((rc = smc_node_thread_start(&c->thread, committer_main, c, err)) < 0)
    goto fail;
  c->thread_started = 1;
  c->answers = cfg->answers;
  if (c->answers) {
    smc_answers_set_partitions(c->answers, n);
    smc_answers_add_folder(c->answers, &folder_ops, c);
  }
  *out = c;
  return 0;
fail:
  committer_free(c);
  return rc < 0 ? rc : SMC_EINTERNAL;
}

void smc_committer_stop(smc_committer_t *c) {
  if (!c)
    return;
  smc_answers_remove_folder(c->answers, c); /* no new reads; queued ones fail below */
  atomic_store(&c->stop, 1);
  if (c->thread_started)
    pthread_join(c->thread, NULL);
  committer_free(c);
}

size_t smc_committer_partitions(smc_committer_t *c, int32_t *out, size_t max) {
  size_t k = 0;
  pthread_mutex_lock(&c->lock);
  for (int32_t p = 0; p < c->nparts; p++)
    if (c->serving[p]) {
      if (k < max)
        out[k] = p;
      k++;
    }
  pthread_mutex_unlock(&c->lock);
  return k;
}

int smc_committer_healthy(smc_committer_t *c) { return atomic_load(&c->healthy); }

int64_t smc_committer_lag(smc_committer_t *c, int32_t p) {
  if (p < 0 || p >= c->nparts || !is_serving(c, p))
    return -1;
  return atomic_load(&c->lag[p]);
}
