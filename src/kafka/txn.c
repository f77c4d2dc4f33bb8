/* The transactional session and its watchdog (txn.h). */
#include "kafka/txn.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/metrics.h"
#include "kafka/handle.h"
#include "kafka/producer.h"
#include "smc/error.h"

enum { OP_NONE, OP_INIT, OP_BEGIN, OP_SEND_OFFSETS, OP_COMMIT, OP_ABORT, OP_QUIT, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"",
                                               "init_transactions",
                                               "begin_transaction",
                                               "send_offsets_to_transaction",
                                               "commit_transaction",
                                               "abort_transaction",
                                               "destroy"};
/* SMC_FAULT_TXN_HANG's names for the calls */
static const char *const fault_names[OP_COUNT] = {"",       "init",  "begin", "send_offsets",
                                                  "commit", "abort", ""};

/*
 * One transactional producer and the thread its blocking calls run on. The
 * session posts an op and waits (until the deadline) for done. Abandoned:
 * the session gave up on it and will never touch it again; the thread then
 * owns everything here and frees it once its call returns.
 */
typedef struct prod {
  rd_kafka_t *rk;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int op, done, abandoned;
  int timeout_ms;
  rd_kafka_topic_partition_list_t *offsets;  /* OP_SEND_OFFSETS */
  rd_kafka_consumer_group_metadata_t *group; /* OP_SEND_OFFSETS */
  rd_kafka_error_t *error;                   /* the call's result */
} prod_t;

struct smc_txn {
  smc_txn_config_t cfg;
  prod_t *p;    /* NULL: none (smc_txn_open makes one) */
  int open;     /* a transaction is open */
  int call_ms;  /* librdkafka's timeout of one call */
  int64_t stop; /* when the stop was first seen (0: not yet) */
};

/* ---- fault injection (SMC_FAULT_TXN_HANG) --------------------------------- */

static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
static int fault_op, fault_after;
static long fault_nth;
static atomic_long fault_calls[OP_COUNT]; /* calls of each kind so far */

static void fault_parse(void) {
  const char *s = getenv("SMC_FAULT_TXN_HANG");
  if (!s || !*s)
    return;
  size_t n = strcspn(s, ":");
  for (int op = OP_INIT; op < OP_QUIT; op++)
    if (strlen(fault_names[op]) == n && !strncmp(s, fault_names[op], n))
      fault_op = op;
  fault_nth = 1;
  if (s[n] == ':') {
    char *end = NULL;
    fault_nth = strtol(s + n + 1, &end, 10);
    fault_after = end && !strcmp(end, ":after");
  }
  if (fault_op)
    fprintf(stderr, "smc: SMC_FAULT_TXN_HANG: call %ld of %s hangs %s librdkafka's\n", fault_nth,
            op_names[fault_op], fault_after ? "after" : "before");
}

/* Block this producer thread for good. */
static void hang(int op) {
  fprintf(stderr, "smc: SMC_FAULT_TXN_HANG: %s hangs now\n", op_names[op]);
  for (;;)
    sleep(3600);
}

static rd_kafka_error_t *run_op(prod_t *p, int op) {
  int fault = op == fault_op && atomic_fetch_add(&fault_calls[op], 1) + 1 == fault_nth;
  if (fault && !fault_after)
    hang(op);
  rd_kafka_error_t *e = NULL;
  switch (op) {
  case OP_INIT:
    e = rd_kafka_init_transactions(p->rk, p->timeout_ms);
    break;
  case OP_BEGIN:
    e = rd_kafka_begin_transaction(p->rk);
    break;
  case OP_SEND_OFFSETS:
    e = rd_kafka_send_offsets_to_transaction(p->rk, p->offsets, p->group, p->timeout_ms);
    break;
  case OP_COMMIT:
    e = rd_kafka_commit_transaction(p->rk, p->timeout_ms);
    break;
  case OP_ABORT:
    e = rd_kafka_abort_transaction(p->rk, p->timeout_ms);
    break;
  default:
    break;
  }
  if (fault)
    hang(op);
  return e;
}

static void prod_free(prod_t *p) {
  if (p->error)
    rd_kafka_error_destroy(p->error);
  if (p->offsets)
    rd_kafka_topic_partition_list_destroy(p->offsets);
  if (p->group)
    rd_kafka_consumer_group_metadata_destroy(p->group);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
}

/* Purge what is queued or in flight and destroy the handle. */
static void prod_destroy_handle(prod_t *p) {
  rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_destroy(p->rk);
  p->rk = NULL;
}

static void *prod_main(void *arg) {
  prod_t *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->op)
      pthread_cond_wait(&p->cv, &p->mu);
    int op = p->op;
    pthread_mutex_unlock(&p->mu);
    rd_kafka_error_t *e = NULL;
    if (op == OP_QUIT)
      prod_destroy_handle(p);
    else
      e = run_op(p, op);
    pthread_mutex_lock(&p->mu);
    p->op = OP_NONE;
    p->error = e;
    p->done = 1;
    if (p->abandoned) {
      pthread_mutex_unlock(&p->mu);
      if (p->rk) /* the session gave up on it: nobody else will destroy it */
        prod_destroy_handle(p);
      prod_free(p);
      return NULL;
    }
    pthread_cond_broadcast(&p->cv);
    if (op == OP_QUIT)
      break;
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* ---- the session's side ----------------------------------------------------- */

static void tlog(smc_txn_t *t, int level, int32_t partition, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void tlog(smc_txn_t *t, int level, int32_t partition, const char *fmt, ...) {
  if (!t->cfg.log)
    return;
  va_list ap;
  va_start(ap, fmt);
  t->cfg.log(t->cfg.opaque, level, partition, fmt, ap);
  va_end(ap);
}

static int stopping(const smc_txn_t *t) { return t->cfg.stop && atomic_load(t->cfg.stop); }

static rd_kafka_t *new_handle(smc_txn_t *t, char *errstr, size_t len) {
  char tmo[32], mto[32];
  /* transaction.timeout.ms bounds how long a zombie's open transaction can
   * hold back read_committed readers; message.timeout.ms must stay below it. */
  snprintf(tmo, sizeof tmo, "%d", t->cfg.txn_timeout_ms);
  snprintf(mto, sizeof mto, "%d", t->cfg.txn_timeout_ms - 1000);
  const char *kv[] = {"transactional.id", t->cfg.txn_id, "transaction.timeout.ms", tmo,
                      "message.timeout.ms", mto, "client.id", t->cfg.txn_id,
                      /* reply_to names come from events: never create topics */
                      "allow.auto.create.topics", "false",
                      /* back-to-back transactions: the coordinator answers
                       * CONCURRENT_TRANSACTIONS until the previous one's
                       * markers are written; retry soon (the Java client
                       * uses 20 ms for this), not after the 100 ms default */
                      "retry.backoff.ms", "10", NULL};
  /* librdkafka >= 2.2 backs off exponentially between retries of one request
   * (up to 1 s by default: a CONCURRENT_TRANSACTIONS retry once waited 305 ms);
   * older versions do not know the property, and retry every 10 ms anyway. */
  const char *optional[] = {"retry.backoff.max.ms", "20", NULL};
  smc_kafka_spec_t spec = {.type = RD_KAFKA_PRODUCER,
                           .bootstrap = t->cfg.bootstrap,
                           .base = kv,
                           .optional = optional,
                           .props = t->cfg.props,
                           .murmur2 = 1};
  return smc_kafka_open(&spec, errstr, len);
}

/* A new producer with its thread, or NULL (errstr filled). */
static prod_t *prod_new(smc_txn_t *t, char *errstr, size_t len) {
  prod_t *p = calloc(1, sizeof *p);
  if (!p) {
    snprintf(errstr, len, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->timeout_ms = t->call_ms;
  if (!(p->rk = new_handle(t, errstr, len))) {
    prod_free(p);
    return NULL;
  }
  if (pthread_create(&p->thread, NULL, prod_main, p) != 0) {
    snprintf(errstr, len, "pthread_create: %s", strerror(errno));
    rd_kafka_destroy(p->rk);
    prod_free(p);
    return NULL;
  }
  return p;
}

/* The deadline of a call started now (smc_now_ms), shortened once a stop
 * was asked for. */
static int64_t call_deadline(smc_txn_t *t, int64_t start) {
  int64_t d = start + t->cfg.deadline_ms;
  if (stopping(t)) {
    if (!t->stop)
      t->stop = smc_now_ms();
    int64_t from = t->stop > start ? t->stop : start;
    if (d > from + SMC_TXN_STOP_GRACE_MS)
      d = from + SMC_TXN_STOP_GRACE_MS;
  }
  return d;
}

/*
 * Run op on t's producer and wait for it until its deadline. Returns 0 with
 * *e the call's error (NULL: success, the caller owns it), or -1 when the
 * deadline passed: the producer was abandoned (t->p is NULL; its thread now
 * owns it, and the offsets and group metadata handed over).
 */
static int prod_call(smc_txn_t *t, int op, rd_kafka_error_t **e) {
  prod_t *p = t->p;
  int64_t start = smc_now_ms();
  *e = NULL;
  pthread_mutex_lock(&p->mu);
  p->op = op;
  p->done = 0;
  p->error = NULL;
  pthread_cond_broadcast(&p->cv);
  while (!p->done) {
    int64_t now = smc_now_ms(), deadline = call_deadline(t, start);
    if (now >= deadline)
      break;
    int64_t wait = deadline - now < 100 ? deadline - now : 100; /* the stop is polled */
    struct timespec ts = smc_deadline_ts(CLOCK_REALTIME, wait);
    pthread_cond_timedwait(&p->cv, &p->mu, &ts);
  }
  if (p->done) {
    *e = p->error;
    p->error = NULL;
    pthread_mutex_unlock(&p->mu);
    return 0;
  }
  pthread_t thread = p->thread; /* p is the thread's from the unlock on */
  p->abandoned = 1;
  pthread_mutex_unlock(&p->mu);
  pthread_detach(thread);
  t->p = NULL;
  t->open = 0;
  smc_metrics_counter_add("smc_committer_producer_abandoned_total", NULL, 1);
  tlog(t, 0, -1,
       "%s did not return within %lld ms%s: abandoning the transactional producer (never "
       "called again; destroyed if the call ever returns, else leaked)%s",
       op_names[op], (long long)(smc_now_ms() - start), stopping(t) ? " (stopping)" : "",
       op == OP_QUIT || stopping(t) ? "" : "; a new one with the same transactional.id fences it");
  return -1;
}

/* Retire t's producer: destroyed on its thread, waited for up to the
 * deadline; past it, the thread is left to finish alone (logged). */
static void prod_retire(smc_txn_t *t) {
  prod_t *p = t->p;
  if (!p)
    return;
  rd_kafka_error_t *e = NULL;
  if (prod_call(t, OP_QUIT, &e) < 0)
    return;
  pthread_join(p->thread, NULL);
  prod_free(p);
  t->p = NULL;
  t->open = 0;
}

smc_txn_t *smc_txn_new(const smc_txn_config_t *cfg) {
  pthread_once(&fault_once, fault_parse);
  smc_txn_t *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->cfg = *cfg;
  if (t->cfg.deadline_ms <= 0)
    t->cfg.deadline_ms = SMC_TXN_DEADLINE_MS;
  t->call_ms = t->cfg.deadline_ms / 4 * 3;
  if (t->call_ms > 30000)
    t->call_ms = 30000;
  return t;
}

int smc_txn_is_open(const smc_txn_t *t) { return t->open; }

int smc_txn_open(smc_txn_t *t) {
  int64_t backoff = 200;
  for (;;) {
    if (stopping(t))
      return SMC_EUNAVAILABLE;
    if (!t->p) {
      char errstr[512];
      if (!(t->p = prod_new(t, errstr, sizeof errstr))) {
        tlog(t, 0, -1, "transactional producer: %s", errstr);
        return SMC_EKAFKA;
      }
    }
    rd_kafka_error_t *e = NULL;
    if (prod_call(t, OP_INIT, &e) == 0) {
      if (!e) {
        tlog(t, 2, -1, "transactional producer %s ready", t->cfg.txn_id);
        return 0;
      }
      tlog(t, 1, -1, "init_transactions: %s", rd_kafka_error_string(e));
      int fatal = rd_kafka_error_is_fatal(e);
      rd_kafka_error_destroy(e);
      if (fatal)
        prod_retire(t);
    }
    struct timespec ts = {(time_t)(backoff / 1000), (long)(backoff % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (backoff < 2000)
      backoff *= 2;
  }
}

/* Replace the producer (fatal, fenced, unknown outcome): the new epoch
 * fences the old one and settles its transaction. */
static void reset(smc_txn_t *t, const char *why) {
  tlog(t, 1, -1, "re-creating the transactional producer: %s", why);
  smc_metrics_counter_add("smc_committer_producer_rebuilds_total", NULL, 1);
  prod_retire(t);
  t->open = 0;
  smc_txn_open(t);
}

/* Abort the transaction; an abort that times out or fails fatally replaces
 * the producer instead (KAFKA-17754: never carry on after an indefinite
 * EndTxn). */
static void abort_txn(smc_txn_t *t, const char *why) {
  tlog(t, 1, -1, "aborting transaction: %s", why);
  smc_metrics_counter_add("smc_committer_txn_aborts_total", NULL, 1);
  t->open = 0;
  for (int attempt = 0; t->p && attempt < 3; attempt++) {
    rd_kafka_error_t *e = NULL;
    if (prod_call(t, OP_ABORT, &e) < 0) {
      reset(t, "abort_transaction past its deadline");
      return;
    }
    if (!e)
      return;
    int timed_out = rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__TIMED_OUT;
    int retry = rd_kafka_error_is_retriable(e) && !timed_out;
    char msg[512];
    snprintf(msg, sizeof msg, "abort_transaction: %s", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    if (!retry) {
      reset(t, msg);
      return;
    }
  }
  reset(t, "abort_transaction kept failing");
}

void smc_txn_abort(smc_txn_t *t, const char *why) {
  if (t->open)
    abort_txn(t, why);
}

/* Classify a failed call (examples/transactions.c): 1 when the same call may
 * be made again, else recovers (abort, or a new producer) and returns 0.
 * Takes e over. */
static int failed(smc_txn_t *t, rd_kafka_error_t *e, const char *what) {
  char msg[600];
  snprintf(msg, sizeof msg, "%s: %s", what, rd_kafka_error_string(e));
  rd_kafka_resp_err_t code = rd_kafka_error_code(e);
  int timed_out = code == RD_KAFKA_RESP_ERR__TIMED_OUT;
  int retriable = rd_kafka_error_is_retriable(e) && !timed_out;
  int abortable = rd_kafka_error_txn_requires_abort(e);
  if (code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
      code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH)
    tlog(t, 1, -1,
         "fenced: a newer producer with transactional.id %s took over (the broker timed out "
         "this node's transaction, or another node runs with the same node id)",
         t->cfg.txn_id);
  rd_kafka_error_destroy(e);
  if (retriable) {
    tlog(t, 1, -1, "%s (retrying)", msg);
    return 1;
  }
  if (abortable && !timed_out)
    abort_txn(t, msg);
  else
    reset(t, msg); /* fatal, fenced, unknown or indefinite */
  return 0;
}

/* A call past its deadline: the producer was abandoned; a new one. */
static int abandoned(smc_txn_t *t, int op) {
  char why[128];
  snprintf(why, sizeof why, "%s past its deadline", op_names[op]);
  reset(t, why);
  return -1;
}

int smc_txn_begin(smc_txn_t *t) {
  if (t->open)
    return 0;
  if (!t->p && smc_txn_open(t) < 0)
    return -1;
  rd_kafka_error_t *e = NULL;
  if (prod_call(t, OP_BEGIN, &e) < 0)
    return abandoned(t, OP_BEGIN);
  if (e) {
    failed(t, e, "begin_transaction");
    return -1;
  }
  t->open = 1;
  return 0;
}

int smc_txn_produce(smc_txn_t *t, const char *topic, int32_t partition, const void *key,
                    size_t klen, const void *value, size_t vlen) {
  const char *why = "no producer";
  if (t->p && smc_kafka_send_until(t->p->rk, topic, partition, key, klen, value, vlen, NULL,
                                   smc_now_ms() + t->cfg.deadline_ms, &why) == 0)
    return 0;
  tlog(t, 1, partition, "produce to %s: %s", topic, why);
  return SMC_EKAFKA;
}

int smc_txn_send_offsets(smc_txn_t *t, smc_kafka_t *consumer, const char *topic,
                         const int64_t *next, int32_t nparts) {
  rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(8);
  for (int32_t p = 0; p < nparts; p++)
    if (next[p] >= 0)
      rd_kafka_topic_partition_list_add(offs, topic, p)->offset = next[p];
  if (offs->cnt == 0) {
    rd_kafka_topic_partition_list_destroy(offs);
    return 0;
  }
  rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(consumer);
  int rc = 0;
  for (int attempt = 0;; attempt++) {
    if (!t->p) {
      rc = -1;
      break;
    }
    t->p->offsets = offs; /* the producer's thread owns them if it is abandoned */
    t->p->group = md;
    rd_kafka_error_t *e = NULL;
    if (prod_call(t, OP_SEND_OFFSETS, &e) < 0) {
      offs = NULL;
      md = NULL;
      rc = abandoned(t, OP_SEND_OFFSETS);
      break;
    }
    t->p->offsets = NULL;
    t->p->group = NULL;
    if (!e)
      break;
    if (!failed(t, e, "send_offsets_to_transaction") || attempt >= 5) {
      if (t->open)
        abort_txn(t, "send_offsets_to_transaction kept failing");
      rc = -1;
      break;
    }
  }
  if (md)
    rd_kafka_consumer_group_metadata_destroy(md);
  if (offs)
    rd_kafka_topic_partition_list_destroy(offs);
  return rc;
}

int smc_txn_commit(smc_txn_t *t) {
  for (int attempt = 0;; attempt++) {
    if (!t->p)
      return -1;
    rd_kafka_error_t *e = NULL;
    if (prod_call(t, OP_COMMIT, &e) < 0)
      return abandoned(t, OP_COMMIT);
    if (!e)
      break;
    if (!failed(t, e, "commit_transaction") || attempt >= 5) {
      if (t->open)
        reset(t, "commit_transaction kept failing");
      return -1;
    }
  }
  t->open = 0;
  return 0;
}

int smc_txn_topic_exists(smc_txn_t *t, const char *topic, int timeout_ms) {
  if (!t->p)
    return -1;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(t->p->rk, topic, NULL);
  if (!rkt)
    return 0;
  const struct rd_kafka_metadata *md = NULL;
  int exists = -1;
  if (rd_kafka_metadata(t->p->rk, 0, rkt, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    exists = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
             md->topics[0].partition_cnt > 0;
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(rkt);
  return exists;
}

void smc_txn_poll(smc_txn_t *t) {
  if (t->p)
    rd_kafka_poll(t->p->rk, 0);
}

void smc_txn_destroy(smc_txn_t *t) {
  if (!t)
    return;
  if (t->open && t->p)
    abort_txn(t, "shutdown");
  prod_retire(t);
  free(t);
}
