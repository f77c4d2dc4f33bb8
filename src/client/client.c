/*
 * The smc client library (include/smc/client.h).
 *
 * One idempotent producer writes proposals, votes and reads to
 * <prefix>proposals (murmur2 partitioner, key = object). One consumer,
 * without a group, is assigned every partition of <prefix>confirmations and
 * <prefix>replies at their ends as of smc_client_new, and a background thread
 * dispatches what it reads to the calls waiting for it: by proposal id, by
 * read id, by object (watch). A waiter is registered before its event is
 * produced, so its answer cannot slip by.
 *
 * Delivery reports: each produced message carries a heap-allocated
 * delivery_t with two references (the call, the report), so a call that
 * gives up early never leaves the report writing to freed memory.
 */
#include "smc/client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/clock.h"
#include "core/codec.h"
#include "core/util.h"
#include "core/vote_sig.h"
#include "kafka/consumer.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"
#include "kafka/producer.h"
#include "smc/fold.h"
#include "smc/machine.h"

typedef enum { W_PROPOSAL = 1, W_READ, W_WATCH } waiter_kind_t;

/* A call waiting for events. Lives on the caller's stack; linked into the
 * client's list (under c->lock) only while the call runs. */
typedef struct waiter {
  waiter_kind_t kind;
  const char *key;     /* proposal id, read id or object */
  int64_t after;       /* watch: deliver versions above this */
  json_t *result;      /* proposal/read: the answer (owned) */
  json_t *queue;       /* watch: array of confirmations not yet handed out */
  pthread_cond_t cond; /* signalled (under c->lock) when this waiter gets an event */
  struct waiter *next;
} waiter_t;

typedef struct delivery {
  pthread_cond_t cond; /* signalled (under dlock) by the delivery report */
  int refs;            /* under the client's dlock */
  int done;
  int code;                  /* smc_kafka_delivery_t.code */
  const char *error;         /* its text (librdkafka's, static) */
  int64_t offset;            /* of the record in the log, once acknowledged */
  void (*notify)(void *arg); /* smc_client_delivery_notify, until finished */
  void *notify_arg;
} delivery_t;

struct smc_client {
  char *bootstrap, *client_id;
  char **props; /* copy of the caller's k,v,...,NULL */
  char *t_proposals, *t_confirmations, *t_replies, *t_machines;
  smc_kafka_t *producer;
  smc_kafka_t *consumer;
  pthread_t thread, poller;
  int thread_started, poller_started;
  atomic_int stop;
  pthread_mutex_t lock; /* waiters and their results */
  waiter_t *waiters;
  pthread_mutex_t dlock;    /* delivery_t refs and fields */
  pthread_mutex_t txn_lock; /* the lazily created transactional producer */
  smc_kafka_t *txn;
  int32_t partitions; /* of <prefix>proposals */
  int no_confirmations;
};

/* ---------- small helpers ---------- */

static int ms_left(int64_t end) {
  int64_t left = end - smc_now_ms();
  return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static void deadline_ts(struct timespec *ts, int ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static void delivery_unref(smc_client_t *c, delivery_t *d) {
  pthread_mutex_lock(&c->dlock);
  int last = --d->refs == 0;
  pthread_mutex_unlock(&c->dlock);
  if (last) {
    pthread_cond_destroy(&d->cond);
    free(d);
  }
}

static void dr_cb(void *opaque, const smc_kafka_delivery_t *r) {
  smc_client_t *c = opaque;
  delivery_t *d = r->msg_opaque;
  if (!d)
    return;
  pthread_mutex_lock(&c->dlock);
  d->done = 1;
  d->code = r->code;
  d->error = r->error;
  d->offset = r->offset;
  pthread_cond_signal(&d->cond);
  if (d->notify) /* under dlock: _finish clears it under dlock too */
    d->notify(d->notify_arg);
  pthread_mutex_unlock(&c->dlock);
  delivery_unref(c, d);
}

/* ---------- waiters ---------- */

static void waiter_add(smc_client_t *c, waiter_t *w) {
  pthread_cond_init(&w->cond, NULL);
  pthread_mutex_lock(&c->lock);
  w->next = c->waiters;
  c->waiters = w;
  pthread_mutex_unlock(&c->lock);
}

static void waiter_remove(smc_client_t *c, waiter_t *w) {
  pthread_mutex_lock(&c->lock);
  for (waiter_t **p = &c->waiters; *p; p = &(*p)->next)
    if (*p == w) {
      *p = w->next;
      break;
    }
  pthread_mutex_unlock(&c->lock);
  pthread_cond_destroy(&w->cond);
}

/* Hand one consumed event to every waiter it answers (under c->lock). */
static void dispatch(smc_client_t *c, json_t *ev) {
  const char *type = json_string_value(json_object_get(ev, "type"));
  if (!type)
    return;
  int conf = !strcmp(type, "confirmation"), read = !strcmp(type, "read");
  if (!conf && !read)
    return;
  const char *pid = json_string_value(json_object_get(ev, "proposal"));
  const char *rid = json_string_value(json_object_get(ev, "id"));
  const char *obj = json_string_value(json_object_get(ev, "object"));
  const char *outcome = json_string_value(json_object_get(ev, "outcome"));
  json_t *ver = json_object_get(ev, "version");
  int dup = json_is_true(json_object_get(ev, "duplicate"));
  pthread_mutex_lock(&c->lock);
  for (waiter_t *w = c->waiters; w; w = w->next) {
    int woke = 0;
    if (conf && w->kind == W_PROPOSAL && pid && !w->result && !strcmp(w->key, pid)) {
      w->result = json_incref(ev);
      woke = 1;
    } else if (read && w->kind == W_READ && rid && !w->result && !strcmp(w->key, rid)) {
      w->result = json_incref(ev);
      woke = 1;
    } else if (conf && w->kind == W_WATCH && obj && !strcmp(w->key, obj) && !dup && outcome &&
               !strcmp(outcome, "committed") && json_is_integer(ver) &&
               json_integer_value(ver) > w->after) {
      w->after = json_integer_value(ver);
      json_array_append(w->queue, ev);
      woke = 1;
    }
    if (woke) /* only the waiter this event answers */
      pthread_cond_signal(&w->cond);
  }
  pthread_mutex_unlock(&c->lock);
}

/* Serves the producer's delivery reports as they come: each wakes the one
 * call waiting for it (dr_cb). */
static void *poller_main(void *arg) {
  smc_client_t *c = arg;
  while (!atomic_load(&c->stop))
    smc_kafka_poll(c->producer, 100);
  return NULL;
}

static void *consumer_main(void *arg) {
  smc_client_t *c = arg;
  while (!atomic_load(&c->stop)) {
    smc_kafka_msg_t m;
    if (!smc_kafka_consume(c->consumer, 50, &m))
      continue;
    if (m.error)
      smc_kconf_log_cb(c->consumer, 4, "CONSUME", m.error);
    if (m.value && m.value_len) {
      json_t *ev = json_loadb(m.value, m.value_len, 0, NULL);
      if (json_is_object(ev))
        dispatch(c, ev);
      json_decref(ev);
    }
    smc_kafka_msg_release(&m);
  }
  return NULL;
}

/* ---------- setup ---------- */

static char **copy_props(const char *const *props) {
  size_t n = 0;
  while (props && props[n] && props[n + 1])
    n += 2;
  char **out = calloc(n + 1, sizeof(*out));
  if (!out)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (!(out[i] = strdup(props[i]))) {
      for (size_t j = 0; j < i; j++)
        free(out[j]);
      free(out);
      return NULL;
    }
  return out;
}

/* A handle of c per spec, with c's bootstrap, client id and -X properties
 * (on top of smc's settings; a producer skips the consumer-only ones); what
 * names it in err ("Kafka producer"). */
static smc_kafka_t *open_handle(smc_client_t *c, smc_kafka_spec_t *spec, const char *what,
                                smc_error_t *err) {
  char errstr[512];
  spec->bootstrap = c->bootstrap;
  spec->client_id = c->client_id;
  spec->props = (const char *const *)c->props;
  smc_kafka_t *rk = NULL;
  int rc = smc_kafka_new(spec, &rk, errstr, sizeof(errstr));
  if (rc == SMC_EINVALID_ARGUMENT)
    smc_error_set(err, rc, NULL, "%s configuration: %s", what, errstr);
  else if (rc)
    smc_error_set(err, rc, NULL, "cannot create a %s: %s", what, errstr);
  return rk;
}

/* The producer of c (txn_id: transactional). */
static smc_kafka_t *make_producer(smc_client_t *c, const char *txn_id, smc_error_t *err) {
  static const char *const base[] = {"enable.idempotence", "true",  "linger.ms", "1",
                                     "message.timeout.ms", "30000", NULL};
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_PRODUCER,
                           .base = base,
                           .murmur2 = 1,
                           .delivery_cb = dr_cb,
                           .transactional_id = txn_id,
                           .opaque = c};
  return open_handle(c, &spec, "Kafka producer", err);
}

static int random_id(const char *prefix, char *out, size_t outlen);

/* A consumer for assign() only: librdkafka wants a group.id for that, so it
 * gets the caller's or a unique one; it never joins, commits or subscribes. */
static smc_kafka_t *make_consumer(smc_client_t *c, int eof, smc_error_t *err) {
  char gid[200], rnd[40];
  if (random_id("", rnd, sizeof(rnd))) {
    smc_error_set(err, SMC_EIO, NULL, "no random bytes for the consumer group id");
    return NULL;
  }
  snprintf(gid, sizeof(gid), "%.100s-%s", c->client_id, rnd);
  /* offsets are always given: an out-of-range one means "from the end" */
  static const char *const base[] = {"fetch.wait.max.ms", "50", "auto.offset.reset", "latest",
                                     NULL};
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_CONSUMER, .group_id = gid, .eof = eof, .base = base};
  return open_handle(c, &spec, "Kafka consumer", err);
}

static int partitions_of(smc_client_t *c, smc_kafka_t *rk, const char *topic, int timeout_ms,
                         smc_error_t *err) {
  int32_t n = smc_kafka_partitions(rk, topic, timeout_ms);
  if (n == SMC_ENOT_FOUND)
    return smc_error_set(err, SMC_EKAFKA, NULL, "topic %s does not exist (run `smc topics create`)",
                         topic);
  if (n < 0) {
    char last[512];
    smc_kconf_last_error(last, sizeof(last));
    return smc_error_set(err, n, NULL, "cannot read the metadata of %s: %s (bootstrap %s)%s%s",
                         topic, n == SMC_EUNAVAILABLE ? "no broker answered" : smc_strerror(n),
                         c->bootstrap, last[0] ? ": " : "", last);
  }
  return n;
}

/* Assign every partition of confirmations and replies at their current ends
 * (the latest offsets the broker reports now), so nothing produced after
 * this call is missed. */
static int assign_at_end(smc_client_t *c, int timeout_ms, smc_error_t *err) {
  const char *topics[2] = {c->t_replies, c->t_confirmations};
  int32_t n[2] = {0, 0};
  for (int t = 0; t < (c->no_confirmations ? 1 : 2); t++)
    if ((n[t] = partitions_of(c, c->consumer, topics[t], timeout_ms, err)) < 0)
      return n[t];
  smc_kafka_tp_t *tps = calloc((size_t)(n[0] + n[1]) + 1, sizeof *tps);
  smc_kafka_part_t *ends = calloc((size_t)(n[0] > n[1] ? n[0] : n[1]) + 1, sizeof *ends);
  int rc = 0, k = 0;
  char why[256];
  if (!tps || !ends) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto done;
  }
  /* Leaders move (a topic just created, a broker restarting): retry until
   * the deadline. */
  int64_t end = smc_now_ms() + timeout_ms;
  for (int t = 0; t < 2 && n[t] > 0; t++) {
    for (int32_t p = 0; p < n[t]; p++)
      ends[p] = (smc_kafka_part_t){.partition = p};
    int e;
    while ((e = smc_kafka_end_offsets(c->consumer, topics[t], ends, n[t], ms_left(end), why,
                                      sizeof why)) < 0 &&
           smc_now_ms() + 100 < end) {
      struct timespec pause = {0, 100 * 1000000L};
      nanosleep(&pause, NULL);
    }
    if (e < 0) {
      rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "cannot look up the end offsets: %s", why);
      goto done;
    }
    for (int32_t p = 0; p < n[t]; p++)
      tps[k++] = (smc_kafka_tp_t){topics[t], p, ends[p].high};
  }
  if (smc_kafka_assign(c->consumer, tps, k, why, sizeof why) < 0)
    rc = smc_error_set(err, SMC_EKAFKA, NULL, "assign failed: %s", why);
done:
  free(tps);
  free(ends);
  return rc;
}

#define SETUP_TIMEOUT_MS 10000

int smc_client_new(const smc_client_config_t *cfg, smc_client_t **out, smc_error_t *err) {
  *out = NULL;
  if (!cfg)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no client configuration");
  smc_client_t *c = calloc(1, sizeof(*c));
  if (!c)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  int rc = 0;
  pthread_mutex_init(&c->lock, NULL);
  pthread_mutex_init(&c->dlock, NULL);
  pthread_mutex_init(&c->txn_lock, NULL);
  const char *bootstrap =
      cfg->bootstrap && *cfg->bootstrap ? cfg->bootstrap : smc_kafka_default_bootstrap();
  c->bootstrap = strdup(bootstrap);
  c->client_id = strdup(cfg->client_id ? cfg->client_id : "smc-client");
  c->props = copy_props(cfg->properties);
  c->t_proposals = smc_topic(cfg->prefix, "proposals");
  c->t_confirmations = smc_topic(cfg->prefix, "confirmations");
  c->t_replies = smc_topic(cfg->prefix, "replies");
  c->t_machines = smc_topic(cfg->prefix, "machines");
  c->no_confirmations = cfg->no_confirmations;
  if (!c->bootstrap || !c->client_id || !c->props || !c->t_proposals || !c->t_confirmations ||
      !c->t_replies || !c->t_machines) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  if (!(c->producer = make_producer(c, NULL, err)) || !(c->consumer = make_consumer(c, 0, err))) {
    rc = err && err->code ? err->code : SMC_EKAFKA;
    goto fail;
  }
  int setup_ms = cfg->setup_timeout_ms > 0 ? cfg->setup_timeout_ms : SETUP_TIMEOUT_MS;
  int64_t setup_end = smc_now_ms() + setup_ms;
  int n = partitions_of(c, c->producer, c->t_proposals, setup_ms, err);
  if (n < 0) {
    rc = n;
    goto fail;
  }
  c->partitions = n;
  if ((rc = assign_at_end(c, ms_left(setup_end) > 0 ? ms_left(setup_end) : 1, err)))
    goto fail;
  if (pthread_create(&c->thread, NULL, consumer_main, c)) {
    rc = smc_error_set(err, SMC_EINTERNAL, NULL, "cannot start the consumer thread");
    goto fail;
  }
  c->thread_started = 1;
  if (pthread_create(&c->poller, NULL, poller_main, c)) {
    rc = smc_error_set(err, SMC_EINTERNAL, NULL, "cannot start the producer thread");
    goto fail;
  }
  c->poller_started = 1;
  *out = c;
  return 0;
fail:
  smc_client_destroy(c);
  return rc;
}

void smc_client_destroy(smc_client_t *c) {
  if (!c)
    return;
  atomic_store(&c->stop, 1);
  if (c->thread_started)
    pthread_join(c->thread, NULL);
  if (c->poller_started)
    pthread_join(c->poller, NULL);
  smc_kafka_close(c->consumer);
  if (c->producer) {
    smc_kafka_drain(c->producer, 5000);
    smc_kafka_close(c->producer);
  }
  smc_kafka_close(c->txn);
  for (size_t i = 0; c->props && c->props[i]; i++)
    free(c->props[i]);
  free(c->props);
  free(c->bootstrap);
  free(c->client_id);
  free(c->t_proposals);
  free(c->t_confirmations);
  free(c->t_replies);
  free(c->t_machines);
  pthread_mutex_destroy(&c->lock);
  pthread_mutex_destroy(&c->dlock);
  pthread_mutex_destroy(&c->txn_lock);
  free(c);
}

/* ---------- producing ---------- */

/*
 * Produce value (keyed by key) to <prefix>proposals without waiting: *out
 * tracks its delivery report (delivery_finish waits for it and releases
 * it). 0, or SMC_EKAFKA when it could not even be queued.
 */
static int produce_start(smc_client_t *c, const char *key, const char *value, int ack_decided,
                         delivery_t **out, smc_error_t *err) {
  *out = NULL;
  delivery_t *d = calloc(1, sizeof(*d));
  if (!d)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  pthread_cond_init(&d->cond, NULL);
  d->refs = 2;
  const char *why = NULL;
  smc_kafka_send_t s = {.m = {c->t_proposals, -1, key, strlen(key), value, strlen(value)},
                        .header = ack_decided ? "smc-ack" : NULL,
                        .header_value = "decided",
                        .msg_opaque = d,
                        .deadline = -1};
  int e = smc_kafka_send_msg(c->producer, &s, &why);
  if (e < 0) {
    pthread_cond_destroy(&d->cond);
    free(d);
    return smc_error_set(err, e, NULL, "cannot produce to %s: %s", c->t_proposals, why);
  }
  *out = d;
  return 0;
}

/*
 * Wait up to timeout_ms (< 0: until librdkafka's message timeout; 0: only
 * look) for d's delivery report, then release d. Returns 0 once the broker
 * acknowledged it (acks=all), SMC_EKAFKA when it was certainly not written,
 * SMC_EUNAVAILABLE when it may or may not have been.
 */
static int delivery_finish(smc_client_t *c, delivery_t *d, int timeout_ms, int64_t *offset,
                           smc_error_t *err) {
  int64_t end = timeout_ms < 0 ? INT64_MAX : smc_now_ms() + timeout_ms;
  int rc = 0;
  pthread_mutex_lock(&c->dlock);
  while (!d->done && smc_now_ms() < end) { /* the poller thread serves the report */
    struct timespec ts;
    deadline_ts(&ts, ms_left(end));
    pthread_cond_timedwait(&d->cond, &c->dlock, &ts);
  }
  if (!d->done)
    rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL,
                       "the broker did not acknowledge the event within %d ms", timeout_ms);
  else if (d->code == SMC_EUNAVAILABLE)
    rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "the event may not have been written: %s",
                       d->error);
  else if (d->code)
    rc = smc_error_set(err, d->code, NULL, "the event was not written: %s", d->error);
  if (offset)
    *offset = rc == 0 ? d->offset : -1;
  d->notify = NULL;
  pthread_mutex_unlock(&c->dlock);
  delivery_unref(c, d);
  return rc;
}

static int produce_wait(smc_client_t *c, const char *key, const char *value, int timeout_ms,
                        smc_error_t *err) {
  delivery_t *d = NULL;
  int rc = produce_start(c, key, value, 0, &d, err);
  return rc ? rc : delivery_finish(c, d, timeout_ms, NULL, err);
}

/* Wait on w->cond until w has a result or timeout_ms passed (< 0: forever). */
static int wait_result(smc_client_t *c, waiter_t *w, int64_t end) {
  pthread_mutex_lock(&c->lock);
  while (!w->result && (end == INT64_MAX || smc_now_ms() < end)) {
    struct timespec ts;
    deadline_ts(&ts, ms_left(end));
    pthread_cond_timedwait(&w->cond, &c->lock, &ts);
  }
  int ok = w->result != NULL;
  pthread_mutex_unlock(&c->lock);
  return ok;
}

static int dump_event(json_t *ev, char **out, smc_error_t *err) {
  *out = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(ev);
  return *out ? 0 : smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
}

/* Whether s is valid UTF-8 (what JSON text may hold), as jansson checks it. */
static int utf8_valid(const char *s) {
  json_t *j = json_string(s);
  json_decref(j);
  return j != NULL;
}

static int check_id(const char *what, const char *s, int required, smc_error_t *err) {
  if (!s) {
    if (required)
      return smc_error_set(err, SMC_EBAD_REQUEST, what, "%s is required", what);
    return 0;
  }
  if (!*s || strlen(s) > SMC_CODEC_MAX_ID)
    return smc_error_set(err, SMC_EBAD_REQUEST, what, "%s must be 1 to %d bytes", what,
                         SMC_CODEC_MAX_ID);
  return 0;
}

/* The proposal event's text (the codec's encoder) into *out (malloc'd). */
static int proposal_text(const smc_propose_req_t *r, const char *id, char **out, smc_error_t *err) {
  const char *const strs[][2] = {{"id", id},
                                 {"object", r->object},
                                 {"machine", r->machine},
                                 {"transition", r->transition},
                                 {"to", r->to},
                                 {"proposer", r->proposer},
                                 {"correlation", r->correlation}};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
    if (strs[i][1] && !utf8_valid(strs[i][1]))
      return smc_error_set(err, SMC_EBAD_REQUEST, strs[i][0], "%s must be UTF-8", strs[i][0]);
  smc_codec_proposal_t p = {.id = id,
                            .object = r->object,
                            .machine = r->machine,
                            .transition = r->transition,
                            .to = r->to,
                            .proposer = r->proposer,
                            .correlation = r->correlation,
                            .data = r->data,
                            .expect_version = r->expect_version};
  smc_buf_t b;
  smc_buf_init(&b);
  smc_codec_proposal_json(&b, &p);
  if (b.oom) {
    smc_buf_close(&b);
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  }
  *out = b.p;
  return 0;
}

int smc_client_proposal_id(const smc_propose_req_t *req, char out[65], smc_error_t *err) {
  out[0] = '\0';
  if (!req || !req->object)
    return smc_error_set(err, SMC_EBAD_REQUEST, "object", "object is required");
  if (req->id) {
    if (!*req->id || strlen(req->id) > 64)
      return smc_error_set(err, SMC_EBAD_REQUEST, "id", "a proposal id is 1 to 64 bytes");
    snprintf(out, 65, "%s", req->id);
    return 0;
  }
  if (req->expect_version >= 0) {
    if (smc_proposal_derive_id(req->object, 1, req->expect_version, req->transition, req->data,
                               out))
      return smc_error_set(err, SMC_ENOMEM, NULL, "cannot derive the proposal id");
    return 0;
  }
  /* 256 random bits, written like a derived id (64 hex digits) */
  char half[40];
  for (int i = 0; i < 2; i++) {
    if (random_id("", half, sizeof half))
      return smc_error_set(err, SMC_EIO, NULL, "no random bytes for the proposal id");
    memcpy(out + 32 * i, half, 32);
  }
  out[64] = '\0';
  return 0;
}

/* Propose; wait for the decision unless send_only (then timeout_ms bounds the
 * wait for the broker's acknowledgement, < 0: librdkafka's message timeout). */
static int propose(smc_client_t *c, const smc_propose_req_t *req, int timeout_ms, int send_only,
                   json_t **confirmation, char id_out[65], delivery_t **started, smc_error_t *err) {
  if (confirmation)
    *confirmation = NULL;
  if (id_out)
    id_out[0] = '\0';
  int rc;
  if (!c || !req)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no client or request");
  if ((rc = check_id("object", req->object, 1, err)) ||
      (rc = check_id("machine", req->machine, 0, err)) ||
      (rc = check_id("transition", req->transition, 0, err)) ||
      (rc = check_id("to", req->to, 0, err)) || (rc = check_id("id", req->id, 0, err)))
    return rc;
  if (req->id && strlen(req->id) > 64) /* it must fit id_out */
    return smc_error_set(err, SMC_EBAD_REQUEST, "id", "a proposal id is at most 64 bytes");
  if (req->data && !json_is_object(req->data))
    return smc_error_set(err, SMC_EBAD_REQUEST, "data", "data must be a JSON object");
  if (req->expect_version < -1)
    return smc_error_set(err, SMC_EBAD_REQUEST, "expect_version",
                         "expect_version must be >= 0 (or -1 for no check)");
  char id[65];
  if ((rc = smc_client_proposal_id(req, id, err)))
    return rc;
  if (id_out)
    snprintf(id_out, 65, "%s", id);
  char *value = NULL;
  if ((rc = proposal_text(req, id, &value, err)))
    return rc;
  if (started) {
    rc = produce_start(c, req->object, value, req->ack_decided, started, err);
    free(value);
    return rc;
  }
  if (send_only) {
    rc = produce_wait(c, req->object, value, timeout_ms, err);
    free(value);
    return rc;
  }
  waiter_t w = {.kind = W_PROPOSAL, .key = id};
  if (timeout_ms != 0)
    waiter_add(c, &w);
  int64_t end = timeout_ms < 0 ? INT64_MAX : smc_now_ms() + timeout_ms;
  smc_error_t perr;
  smc_error_clear(&perr);
  rc = produce_wait(c, req->object, value, timeout_ms == 0 ? -1 : ms_left(end), &perr);
  free(value);
  if (rc) /* every unknown outcome names the id to retry with */
    smc_error_set(err, rc, NULL, "%s%s%s", perr.message,
                  rc == SMC_EUNAVAILABLE ? "; outcome unknown; proposal id " : "",
                  rc == SMC_EUNAVAILABLE ? id : "");
  if (rc || timeout_ms == 0)
    goto done;
  if (!wait_result(c, &w, end)) { /* in the log (acknowledged), not decided in time */
    rc = smc_error_set(err, SMC_EUNAVAILABLE, "decision",
                       "no confirmation within %d ms; outcome unknown; proposal id %s", timeout_ms,
                       id);
    goto done;
  }
  if (confirmation) {
    *confirmation = w.result;
    w.result = NULL;
  }
done:
  if (timeout_ms != 0)
    waiter_remove(c, &w);
  json_decref(w.result);
  return rc;
}

int smc_client_propose(smc_client_t *c, const smc_propose_req_t *req, int timeout_ms,
                       json_t **confirmation, char id_out[65], smc_error_t *err) {
  return propose(c, req, timeout_ms, 0, confirmation, id_out, NULL, err);
}

int smc_client_send(smc_client_t *c, const smc_propose_req_t *req, int timeout_ms, char id_out[65],
                    smc_error_t *err) {
  return propose(c, req, timeout_ms, 1, NULL, id_out, NULL, err);
}

int smc_client_send_start(smc_client_t *c, const smc_propose_req_t *req, char id_out[65],
                          smc_delivery_t **d, smc_error_t *err) {
  *d = NULL;
  delivery_t *dl = NULL;
  int rc = propose(c, req, -1, 1, NULL, id_out, &dl, err);
  *d = (smc_delivery_t *)dl;
  return rc;
}

int smc_client_send_finish(smc_client_t *c, smc_delivery_t *d, int timeout_ms, int64_t *offset,
                           smc_error_t *err) {
  return delivery_finish(c, (delivery_t *)d, timeout_ms, offset, err);
}

void smc_client_delivery_notify(smc_client_t *c, smc_delivery_t *d, void (*notify)(void *arg),
                                void *arg) {
  delivery_t *dl = (delivery_t *)d;
  pthread_mutex_lock(&c->dlock);
  if (dl->done) {
    pthread_mutex_unlock(&c->dlock);
    notify(arg);
    return;
  }
  dl->notify = notify;
  dl->notify_arg = arg;
  pthread_mutex_unlock(&c->dlock);
}

int smc_client_delivery_done(smc_client_t *c, smc_delivery_t *d) {
  pthread_mutex_lock(&c->dlock);
  int done = ((delivery_t *)d)->done;
  pthread_mutex_unlock(&c->dlock);
  return done;
}

struct smc_vote_key {
  EVP_PKEY *pkey;
};

int smc_vote_key_load(const char *pem_file, smc_vote_key_t **out, smc_error_t *err) {
  *out = NULL;
  smc_vote_key_t *k = calloc(1, sizeof(*k));
  if (!k)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  int rc = smc_vote_sig_load_private(pem_file, &k->pkey, err);
  if (rc)
    free(k);
  else
    *out = k;
  return rc;
}

void smc_vote_key_free(smc_vote_key_t *key) {
  if (!key)
    return;
  EVP_PKEY_free(key->pkey);
  free(key);
}

int smc_vote_key_sign(const smc_vote_key_t *key, const char *object, const char *proposal,
                      const char *voter, int accept, char out[89], smc_error_t *err) {
  if (!key || !object || !proposal || !voter)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no key, object, proposal or voter");
  return smc_vote_sig_sign(key->pkey, object, proposal, voter, accept, out, err);
}

int smc_vote_key_sign_reason(const smc_vote_key_t *key, const char *object, const char *proposal,
                             const char *voter, int accept, const char *reason, char out[89],
                             smc_error_t *err) {
  if (!key || !object || !proposal || !voter)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no key, object, proposal or voter");
  return smc_vote_sig_sign_reason(key->pkey, object, proposal, voter, accept, reason, out, err);
}

int smc_client_vote(smc_client_t *c, const char *object, const char *proposal, const char *voter,
                    int accept, const char *reason, int timeout_ms, smc_error_t *err) {
  return smc_client_vote_presigned(c, object, proposal, voter, accept, reason, NULL, timeout_ms,
                                   err);
}

int smc_client_vote_signed(smc_client_t *c, const char *object, const char *proposal,
                           const char *voter, int accept, const char *reason,
                           const smc_vote_key_t *key, int timeout_ms, smc_error_t *err) {
  char sig[SMC_VOTE_SIG_B64_LEN + 1];
  int rc;
  if (!key)
    return smc_client_vote_presigned(c, object, proposal, voter, accept, reason, NULL, timeout_ms,
                                     err);
  if ((rc = check_id("object", object, 1, err)) || (rc = check_id("proposal", proposal, 1, err)) ||
      (rc = check_id("voter", voter, 1, err)))
    return rc;
  if ((rc = smc_vote_key_sign_reason(key, object, proposal, voter, accept, reason, sig, err)))
    return rc;
  return smc_client_vote_presigned(c, object, proposal, voter, accept, reason, sig, timeout_ms,
                                   err);
}

int smc_client_vote_presigned(smc_client_t *c, const char *object, const char *proposal,
                              const char *voter, int accept, const char *reason,
                              const char *signature, int timeout_ms, smc_error_t *err) {
  smc_vote_req_t v = {.object = object,
                      .proposal = proposal,
                      .voter = voter,
                      .accept = accept,
                      .reason = reason,
                      .signature = signature};
  return smc_client_vote_req(c, &v, timeout_ms, err);
}

int smc_client_vote_req(smc_client_t *c, const smc_vote_req_t *v, int timeout_ms,
                        smc_error_t *err) {
  int rc;
  if (!c || !v)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no client or vote");
  if ((rc = check_id("object", v->object, 1, err)) ||
      (rc = check_id("proposal", v->proposal, 1, err)) ||
      (rc = check_id("voter", v->voter, 1, err)) || (rc = check_id("machine", v->machine, 0, err)))
    return rc;
  const char *const texts[][2] = {{"object", v->object}, {"proposal", v->proposal},
                                  {"voter", v->voter},   {"machine", v->machine},
                                  {"reason", v->reason}, {"signature", v->signature}};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    if (texts[i][1] && !utf8_valid(texts[i][1]))
      return smc_error_set(err, SMC_EBAD_REQUEST, texts[i][0], "%s is not UTF-8", texts[i][0]);
  smc_buf_t value;
  smc_buf_init(&value);
  smc_codec_vote_json(&value, v->proposal, v->object, v->voter, v->accept, v->machine, v->reason,
                      v->signature);
  rc = value.oom ? smc_error_set(err, SMC_ENOMEM, NULL, "out of memory")
                 : produce_wait(c, v->object, value.p, timeout_ms, err);
  smc_buf_close(&value);
  return rc;
}

static int random_id(const char *prefix, char *out, size_t outlen) {
  unsigned char r[16];
  size_t got = 0;
  while (got < sizeof(r)) {
    ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
    if (n <= 0)
      return SMC_EIO;
    got += (size_t)n;
  }
  size_t o = (size_t)snprintf(out, outlen, "%s", prefix);
  for (size_t i = 0; i < sizeof(r) && o + 2 < outlen; i++, o += 2)
    snprintf(out + o, outlen - o, "%02x", r[i]);
  return 0;
}

int smc_client_read(smc_client_t *c, const char *object, int timeout_ms, json_t **reply,
                    smc_error_t *err) {
  int rc;
  if (reply)
    *reply = NULL;
  if (!c)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no client");
  if ((rc = check_id("object", object, 1, err)))
    return rc;
  char id[40];
  if (random_id("r-", id, sizeof(id)))
    return smc_error_set(err, SMC_EIO, NULL, "no random bytes for the read id");
  json_t *ev = json_object();
  json_object_set_new(ev, "type", json_string("read"));
  json_object_set_new(ev, "id", json_string(id));
  json_object_set_new(ev, "object", json_string(object));
  char *value = NULL;
  if ((rc = dump_event(ev, &value, err)))
    return rc;
  waiter_t w = {.kind = W_READ, .key = id};
  waiter_add(c, &w);
  int64_t end = timeout_ms < 0 ? INT64_MAX : smc_now_ms() + timeout_ms;
  rc = produce_wait(c, object, value, timeout_ms < 0 ? -1 : ms_left(end), err);
  free(value);
  if (!rc && !wait_result(c, &w, end))
    rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "no read reply within %d ms", timeout_ms);
  waiter_remove(c, &w);
  if (!rc && reply) {
    *reply = w.result;
    w.result = NULL;
  }
  json_decref(w.result);
  return rc;
}

/*
 * The versions committed before the watch began: read the object through the
 * log (w is registered already, so nothing decided after the read's offset
 * slips by) and, when it is newer than after_version, put the read reply at
 * the head of the queue and drop queued confirmations it covers. With
 * after_version < 0 the watch starts after the current version.
 */
static int watch_catch_up(smc_client_t *c, waiter_t *w, const char *object, int64_t after_version,
                          int64_t end, smc_error_t *err) {
  json_t *cur = NULL;
  int left = end == INT64_MAX ? SETUP_TIMEOUT_MS : ms_left(end);
  int rc = smc_client_read(c, object, left > 0 ? left : 1, &cur, err);
  if (rc)
    return rc;
  int found = json_is_true(json_object_get(cur, "found"));
  int64_t v = found ? json_integer_value(json_object_get(cur, "version")) : 0;
  pthread_mutex_lock(&c->lock);
  while (json_array_size(w->queue) > 0 &&
         json_integer_value(json_object_get(json_array_get(w->queue, 0), "version")) <= v)
    json_array_remove(w->queue, 0);
  if (v > w->after)
    w->after = v;
  if (found && after_version >= 0 && v > after_version)
    json_array_insert(w->queue, 0, cur);
  pthread_mutex_unlock(&c->lock);
  json_decref(cur);
  return 0;
}

int smc_client_watch(smc_client_t *c, const char *object, int64_t after_version, int timeout_ms,
                     int (*cb)(void *opaque, const json_t *confirmation), void *opaque,
                     smc_error_t *err) {
  int rc;
  if (!c || !cb)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no client or callback");
  if ((rc = check_id("object", object, 1, err)))
    return rc;
  waiter_t w = {.kind = W_WATCH,
                .key = object,
                .after = after_version < 0 ? -1 : after_version,
                .queue = json_array()};
  if (!w.queue)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  waiter_add(c, &w);
  int64_t end = timeout_ms < 0 ? INT64_MAX : smc_now_ms() + timeout_ms;
  if ((rc = watch_catch_up(c, &w, object, after_version, end, err))) {
    waiter_remove(c, &w);
    json_decref(w.queue);
    return rc;
  }
  rc = SMC_EUNAVAILABLE;
  for (;;) {
    json_t *next = NULL;
    pthread_mutex_lock(&c->lock);
    while (json_array_size(w.queue) == 0 && (end == INT64_MAX || smc_now_ms() < end)) {
      struct timespec ts;
      deadline_ts(&ts, ms_left(end));
      pthread_cond_timedwait(&w.cond, &c->lock, &ts);
    }
    if (json_array_size(w.queue) > 0) {
      next = json_incref(json_array_get(w.queue, 0));
      json_array_remove(w.queue, 0);
    }
    pthread_mutex_unlock(&c->lock);
    if (!next)
      break;
    int stop = cb(opaque, next); /* outside the lock: cb may call the client */
    json_decref(next);
    if (stop) {
      rc = 0;
      break;
    }
  }
  waiter_remove(c, &w);
  json_decref(w.queue);
  if (rc)
    smc_error_set(err, rc, NULL, "no further confirmation of %s within %d ms", object, timeout_ms);
  return rc;
}

/* ---------- the machine catalog ---------- */

/* The watermarks of topic's partition p, retried while the partition has no
 * leader yet, until end. 0, or a negative code with err set. */
static int watermarks_retry(smc_kafka_t *rk, const char *topic, int32_t p, int64_t *lo, int64_t *hi,
                            int64_t end, smc_error_t *err) {
  int e;
  for (;;) {
    e = smc_kafka_watermarks(rk, topic, p, lo, hi, ms_left(end));
    if (!e || smc_now_ms() + 100 >= end)
      break;
    struct timespec pause = {0, 100 * 1000000L};
    nanosleep(&pause, NULL);
  }
  if (e)
    return smc_error_set(err, e, NULL, "cannot read the end of %s [%d]: %s", topic, (int)p,
                         smc_strerror(e));
  return 0;
}

/* Read <prefix>machines from its beginning to its end with a throwaway
 * consumer; the latest record per name wins, an empty value removes it. */
int smc_client_machines(smc_client_t *c, int timeout_ms, json_t **catalog, smc_error_t *err) {
  *catalog = NULL;
  if (!c)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no client");
  char errstr[512];
  int rc = 0;
  int64_t end = timeout_ms < 0 ? INT64_MAX : smc_now_ms() + timeout_ms;
  smc_kafka_t *rk = make_consumer(c, 1, err);
  if (!rk)
    return err && err->code ? err->code : SMC_EKAFKA;
  json_t *cat = json_object();
  int64_t lo = 0, hi = 0;
  if ((rc = watermarks_retry(rk, c->t_machines, 0, &lo, &hi, end, err)) < 0)
    goto done;
  if (hi <= lo)
    goto done; /* empty */
  smc_kafka_part_t part = {.partition = 0, .offset = lo};
  if (smc_kafka_assign_parts(rk, c->t_machines, &part, 1, errstr, sizeof errstr) < 0) {
    rc = smc_error_set(err, SMC_EKAFKA, NULL, "assign failed: %s", errstr);
    goto done;
  }
  for (;;) {
    if (smc_now_ms() >= end) {
      rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "%s was not read to its end in %d ms",
                         c->t_machines, timeout_ms);
      break;
    }
    smc_kafka_msg_t m;
    if (!smc_kafka_consume(rk, 100, &m))
      continue;
    int64_t off = m.offset;
    if (m.eof) {
      smc_kafka_msg_release(&m);
      break;
    }
    if (m.error) {
      smc_kconf_log_cb(rk, 4, "CATALOG", m.error);
      smc_kafka_msg_release(&m);
      continue;
    }
    if (m.key && m.key_len) {
      char *name = strndup(m.key, m.key_len);
      json_t *ev = m.value && m.value_len ? json_loadb(m.value, m.value_len, 0, NULL) : NULL;
      if (name && !m.value)
        json_object_del(cat, name);
      else if (name && json_is_object(ev) && json_is_string(json_object_get(ev, "definition")))
        json_object_set(cat, name, ev);
      json_decref(ev);
      free(name);
    }
    smc_kafka_msg_release(&m);
    if (off >= hi - 1)
      break;
  }
done:
  smc_kafka_close(rk);
  if (rc)
    json_decref(cat);
  else
    *catalog = cat;
  return rc;
}

/* ---------- registration ---------- */

/* The transactional producer, created on first use. A producer whose last
 * transaction ended in doubt is dropped so the next one starts fresh
 * (notes/kafka.md: a late EndTxn must not touch a later transaction). */
static smc_kafka_t *txn_producer(smc_client_t *c, int timeout_ms, smc_error_t *err) {
  if (c->txn)
    return c->txn;
  char tid[160], rnd[40], why[512];
  if (random_id("", rnd, sizeof(rnd))) {
    smc_error_set(err, SMC_EIO, NULL, "no random bytes for the transactional id");
    return NULL;
  }
  snprintf(tid, sizeof(tid), "%s-register-%s", c->client_id, rnd);
  smc_kafka_t *rk = make_producer(c, tid, err);
  if (!rk)
    return NULL;
  int rc = smc_kafka_txn_init(rk, timeout_ms, why, sizeof why);
  if (rc) {
    smc_error_set(err, rc, NULL, "cannot initialize transactions: %s", why);
    smc_kafka_close(rk);
    return NULL;
  }
  return c->txn = rk;
}

/* The machine (or settings) event to every partition of <prefix>proposals
 * and, with catalog, to <prefix>machines, in one transaction. Caller holds
 * txn_lock. */
static int write_registration(smc_client_t *c, const char *name, const char *value, int catalog,
                              int timeout_ms, smc_error_t *err) {
  smc_kafka_t *rk = txn_producer(c, timeout_ms, err);
  if (!rk)
    return err && err->code ? err->code : SMC_EKAFKA;
  size_t n = (size_t)c->partitions + (catalog ? 1 : 0);
  smc_kafka_out_t *out = calloc(n ? n : 1, sizeof *out);
  if (!out)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  for (size_t i = 0; i < n; i++) {
    int on_log = i < (size_t)c->partitions;
    out[i] = (smc_kafka_out_t){on_log ? c->t_proposals : c->t_machines,
                               on_log ? (int32_t)i : 0,
                               name,
                               strlen(name),
                               value,
                               strlen(value)};
  }
  char why[512];
  int drop = 0;
  int rc = smc_kafka_txn_send(rk, out, n, timeout_ms, &drop, why, sizeof why);
  free(out);
  if (drop) { /* fresh producer next time */
    smc_kafka_close(c->txn);
    c->txn = NULL;
  }
  if (rc)
    return smc_error_set(err, rc, NULL, "the registration transaction failed: %s", why);
  return 0;
}

static int compile_error(smc_diags_t *d, int rc, smc_error_t *err) {
  for (size_t i = 0; i < d->count; i++)
    if (!d->items[i].warning) {
      const smc_error_t *e = &d->items[i].err;
      if (err && !err->code) {
        *err = *e;
        snprintf(err->message, sizeof(err->message), "%s: %.450s", smc_code_name(e->code),
                 e->message);
        err->code = SMC_EINVALID_MACHINE;
      }
      return SMC_EINVALID_MACHINE;
    }
  return smc_error_set(err, rc ? rc : SMC_EINVALID_MACHINE, NULL,
                       "the definition does not compile");
}

/* A consumer of every partition of <prefix>replies from their ends now,
 * made before the registration is written so no outcome is missed. */
static smc_kafka_t *outcome_consumer(smc_client_t *c, int timeout_ms, smc_error_t *err) {
  smc_kafka_t *rk = make_consumer(c, 0, err);
  if (!rk)
    return NULL;
  int n = partitions_of(c, rk, c->t_replies, timeout_ms, err);
  smc_kafka_part_t *l = calloc(n > 0 ? (size_t)n : 1, sizeof *l);
  int e = l ? 0 : SMC_ENOMEM;
  char why[256] = "out of memory";
  for (int p = 0; !e && p < n; p++) {
    int64_t lo = 0, hi = 0;
    if ((e = smc_kafka_watermarks(rk, c->t_replies, p, &lo, &hi, timeout_ms)) < 0)
      snprintf(why, sizeof why, "%s", smc_strerror(e));
    l[p] = (smc_kafka_part_t){.partition = p, .offset = hi};
  }
  if (n > 0 && !e && smc_kafka_assign_parts(rk, c->t_replies, l, n, why, sizeof why) < 0)
    e = SMC_EKAFKA;
  free(l);
  if (n > 0 && !e)
    return rk;
  if (n > 0)
    smc_error_set(err, e, NULL, "cannot follow %s: %s", c->t_replies, why);
  smc_kafka_close(rk);
  return NULL;
}

/*
 * Collect the registration replies of id, one per partition of
 * <prefix>proposals (fold.c registration_reply), until each partition
 * answered or timeout_ms passed. 0 when every partition registered the
 * machine (or had it already); else the first partition's error:
 * SMC_EMACHINE_EXISTS (another definition holds the name there),
 * SMC_EBAD_SIGNATURE, SMC_EINVALID_MACHINE; SMC_EUNAVAILABLE when some
 * partitions did not answer in time (older workers never answer).
 */
static int await_outcomes(smc_client_t *c, smc_kafka_t *rk, const char *type_want, const char *id,
                          int timeout_ms, json_t **last, smc_error_t *err) {
  int32_t n = c->partitions, got = 0;
  uint8_t *seen = calloc((size_t)n, 1);
  if (!seen)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  int rc = 0;
  int64_t end = smc_now_ms() + timeout_ms;
  while (got < n && smc_now_ms() < end) {
    smc_kafka_msg_t m;
    if (!smc_kafka_consume(rk, ms_left(end) < 100 ? ms_left(end) : 100, &m))
      continue;
    json_t *r = m.value ? json_loadb(m.value, m.value_len, 0, NULL) : NULL;
    smc_kafka_msg_release(&m);
    const char *rid = json_string_value(json_object_get(r, "id"));
    const char *type = json_string_value(json_object_get(r, "type"));
    json_int_t p = json_integer_value(json_object_get(r, "partition"));
    if (rid && type && !strcmp(rid, id) && !strcmp(type, type_want) && p >= 0 && p < n &&
        !seen[p]) {
      seen[p] = 1, got++;
      const char *outcome = json_string_value(json_object_get(r, "outcome"));
      json_t *e = json_object_get(r, "error");
      const char *code = json_string_value(json_object_get(e, "code"));
      if (!rc && outcome && !strcmp(outcome, "rejected")) {
        int ic = code ? smc_code_from_name(code) : 0;
        rc = smc_error_set(err, ic ? ic : SMC_EMACHINE_EXISTS, NULL,
                           "partition %d refused the registration: %s: %s", (int)p,
                           code ? code : "rejected",
                           json_string_value(json_object_get(e, "message")));
      }
      if (last) {
        json_decref(*last);
        *last = json_incref(r);
      }
    }
    json_decref(r);
  }
  if (!rc && got < n)
    rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL,
                       "the %s was confirmed by %d of %d partitions in %d ms", type_want, (int)got,
                       (int)n, timeout_ms);
  free(seen);
  return rc;
}

/* smc_client_register with an optional signature (key, or made elsewhere). */
static int register_impl(smc_client_t *c, const char *definition, size_t len,
                         const smc_vote_key_t *key, const char *presigned, int timeout_ms,
                         smc_error_t *err) {
  if (!c || !definition)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no client or definition");
  if (timeout_ms <= 0)
    timeout_ms = 30000;
  smc_diags_t diags;
  smc_diags_init(&diags);
  smc_machine_t *m = NULL;
  int rc = smc_machine_compile(definition, len, NULL, NULL, &m, &diags);
  if (rc || !m) {
    rc = compile_error(&diags, rc, err);
    smc_diags_close(&diags);
    return rc;
  }
  smc_diags_close(&diags);
  const char *name = smc_machine_name(m), *hash = smc_machine_hash(m);
  json_t *cat = NULL;
  smc_kafka_t *outcomes = NULL;
  char sig[SMC_VOTE_SIG_B64_LEN + 1], id[40];
  pthread_mutex_lock(&c->txn_lock);
  if ((rc = smc_client_machines(c, timeout_ms, &cat, err)))
    goto done;
  json_t *cur = json_object_get(cat, name);
  const char *have = json_string_value(json_object_get(cur, "hash"));
  if (have && strcmp(have, hash)) { /* a new version: it must keep every state (as the fold) */
    const char *def = json_string_value(json_object_get(cur, "definition"));
    smc_machine_t *old = NULL;
    if (def && smc_machine_compile(def, strlen(def), NULL, NULL, &old, NULL) == 0 && old) {
      rc = smc_machine_evolves(old, m, err);
      smc_machine_destroy(old);
      if (rc)
        goto done;
    }
  }
  /* the same definition again is written again: its partitions answer
   * "existed", so a retry (after a timeout) learns every outcome too */
  if (key && (rc = smc_registration_sign(key->pkey, name, hash, sig, err)))
    goto done;
  if (random_id("reg-", id, sizeof(id))) {
    rc = smc_error_set(err, SMC_EIO, NULL, "no random bytes for the registration id");
    goto done;
  }
  if (!(outcomes = outcome_consumer(c, timeout_ms, err))) {
    rc = err && err->code ? err->code : SMC_EKAFKA;
    goto done;
  }
  json_t *ev = json_object();
  json_object_set_new(ev, "type", json_string("machine"));
  json_object_set_new(ev, "name", json_string(name));
  json_object_set_new(ev, "hash", json_string(hash));
  json_object_set_new(ev, "definition", json_stringn(definition, len));
  json_object_set_new(ev, "id", json_string(id));
  if (key || presigned)
    json_object_set_new(ev, "signature", json_string(key ? sig : presigned));
  char *value = NULL;
  if ((rc = dump_event(ev, &value, err)))
    goto done;
  rc = write_registration(c, name, value, 1, timeout_ms, err);
  free(value);
  if (!rc)
    rc = await_outcomes(c, outcomes, "registration", id, timeout_ms, NULL, err);
done:
  pthread_mutex_unlock(&c->txn_lock);
  smc_kafka_close(outcomes);
  json_decref(cat);
  smc_machine_destroy(m);
  return rc;
}

int smc_client_register(smc_client_t *c, const char *definition, size_t len, int timeout_ms,
                        smc_error_t *err) {
  return register_impl(c, definition, len, NULL, NULL, timeout_ms, err);
}

int smc_client_register_signed(smc_client_t *c, const char *definition, size_t len,
                               const smc_vote_key_t *key, const char *signature, int timeout_ms,
                               smc_error_t *err) {
  return register_impl(c, definition, len, key, signature, timeout_ms, err);
}

int smc_client_settings(smc_client_t *c, const json_t *limits, const smc_vote_key_t *key,
                        int timeout_ms, json_t **in_force, smc_error_t *err) {
  if (in_force)
    *in_force = NULL;
  if (!c || !json_is_object(limits) || json_object_size(limits) == 0)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no settings to write");
  if (timeout_ms <= 0)
    timeout_ms = 30000;
  const char *name;
  json_t *v;
  json_object_foreach((json_t *)limits, name, v) {
    if (!json_is_integer(v))
      return smc_error_set(err, SMC_EBAD_REQUEST, name, "setting '%s' must be a number", name);
    int rc = smc_fold_setting_check(name, json_integer_value(v), err);
    if (rc)
      return rc;
  }
  char id[40], digest[65], sig[SMC_VOTE_SIG_B64_LEN + 1];
  if (random_id("set-", id, sizeof(id)))
    return smc_error_set(err, SMC_EIO, NULL, "no random bytes for the settings id");
  int rc = smc_fold_settings_digest(SMC_FOLD_VERSION, limits, digest);
  if (!rc && key)
    rc = smc_registration_sign(key->pkey, "settings", digest, sig, err);
  if (rc)
    return rc;
  json_t *ev = json_pack("{s:s, s:O, s:i, s:s}", "type", "settings", "limits", limits, "fold",
                         SMC_FOLD_VERSION, "id", id);
  if (ev && key)
    json_object_set_new(ev, "signature", json_string(sig));
  char *value = NULL;
  if ((rc = dump_event(ev, &value, err)))
    return rc;
  pthread_mutex_lock(&c->txn_lock);
  smc_kafka_t *outcomes = outcome_consumer(c, timeout_ms, err);
  if (!outcomes)
    rc = err && err->code ? err->code : SMC_EKAFKA;
  if (!rc)
    rc = write_registration(c, "settings", value, 0, timeout_ms, err);
  if (!rc)
    rc = await_outcomes(c, outcomes, "settings", id, timeout_ms, in_force, err);
  pthread_mutex_unlock(&c->txn_lock);
  smc_kafka_close(outcomes);
  free(value);
  return rc;
}

/* ---------- reading a topic to its end ---------- */

int32_t smc_client_partition_of(smc_client_t *c, const char *object) {
  return c && object && c->partitions > 0 ? smc_partition_for(object, strlen(object), c->partitions)
                                          : -1;
}

int smc_client_scan(smc_client_t *c, const char *name, int32_t partition, int timeout_ms,
                    int (*cb)(void *opaque, const json_t *value, const char *key, int32_t partition,
                              int64_t offset),
                    void *opaque, smc_error_t *err) {
  if (!c || !name || !cb)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no client, topic or callback");
  /* the prefix is what precedes "machines" in the catalog's name */
  size_t tl = strlen(c->t_machines) - strlen("machines") + strlen(name) + 1;
  char *topic = malloc(tl);
  if (!topic)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  snprintf(topic, tl, "%.*s%s", (int)(strlen(c->t_machines) - strlen("machines")), c->t_machines,
           name);
  int64_t end = timeout_ms < 0 ? INT64_MAX : smc_now_ms() + timeout_ms;
  smc_kafka_t *rk = make_consumer(c, 1, err);
  if (!rk) {
    free(topic);
    return err && err->code ? err->code : SMC_EKAFKA;
  }
  int rc = 0, n = partitions_of(c, rk, topic, ms_left(end), err);
  smc_kafka_part_t *l = calloc(n > 0 ? (size_t)n : 1, sizeof *l);
  int64_t *hi = n > 0 ? calloc((size_t)n, sizeof *hi) : NULL;
  int left = 0;
  if (n < 0) {
    rc = n;
    goto done;
  }
  if (!hi || !l) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (int32_t p = 0; p < n; p++) {
    if (partition >= 0 && p != partition)
      continue;
    int64_t lo = 0;
    if ((rc = watermarks_retry(rk, topic, p, &lo, &hi[p], end, err)) < 0) {
      rc = SMC_EUNAVAILABLE;
      if (err)
        err->code = rc;
      goto done;
    }
    if (hi[p] > lo)
      l[left++] = (smc_kafka_part_t){.partition = p, .offset = lo};
  }
  char why[256];
  if (left && smc_kafka_assign_parts(rk, topic, l, left, why, sizeof why) < 0) {
    rc = smc_error_set(err, SMC_EKAFKA, NULL, "assign failed");
    goto done;
  }
  while (left > 0) {
    if (smc_now_ms() >= end) {
      rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "%s was not read to its end in %d ms", topic,
                         timeout_ms);
      break;
    }
    smc_kafka_msg_t m;
    if (!smc_kafka_consume(rk, 100, &m))
      continue;
    int32_t p = m.partition;
    int64_t off = m.offset;
    /* read_committed: an end before hi is a transaction still open (its
     * records come once it commits), not the end asked for */
    int at_end =
        p >= 0 && p < n && ((m.eof && off >= hi[p]) || (!m.eof && !m.error && off >= hi[p] - 1));
    int stop = 0;
    if (!m.eof && !m.error && m.value && m.value_len) {
      json_t *v = json_loadb(m.value, m.value_len, 0, NULL);
      char *key = m.key ? strndup(m.key, m.key_len) : NULL;
      if (json_is_object(v))
        stop = cb(opaque, v, key, p, off);
      free(key);
      json_decref(v);
    } else if (m.error) {
      smc_kconf_log_cb(rk, 4, "SCAN", m.error);
    }
    smc_kafka_msg_release(&m);
    if (stop)
      break;
    if (at_end && p >= 0 && p < n && hi[p] >= 0) {
      hi[p] = -1; /* this partition is done */
      left--;
    }
  }
done:
  free(hi);
  free(l);
  smc_kafka_close(rk);
  free(topic);
  return rc;
}
