/*
 * ReadIndex rounds (readindex.h): the end offsets a linearizable read waits
 * for, asked of the broker in shared rounds.
 *
 * A read must wait for an end offset taken after it began. Asking one per
 * read queues the requests behind each other on the connection (the broker
 * answers a connection's requests one at a time), so 16 concurrent reads
 * waited for up to 16 round trips. Here one round is in flight at a time
 * and asks every partition in one ListOffsets request; a read that arrives
 * while a round is in flight cannot use it (it began before the read) and
 * takes the next one, which every read that arrived meanwhile shares: a read
 * waits for at most two round trips, however many run at once (etcd batches
 * its ReadIndex requests the same way).
 */
#include "kafka/readindex.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "kafka/kconf.h"

struct smc_read_index {
  rd_kafka_t *rk; /* a consumer handle without a group: requests only */
  char *topic;
  int32_t nparts;
  pthread_mutex_t mu;
  pthread_cond_t work;    /* the round thread: an ask arrived, or stop */
  pthread_cond_t settled; /* synchronous askers: a round finished */
  uint64_t started, done; /* rounds started and finished */
  smc_read_index_wait_t *waiting;
  int stop;
  pthread_t thread;
  int64_t *ends; /* [nparts] of the last finished round, -1 = failed */
};

#define ROUND_TIMEOUT_MS 5000

/* One round: every partition's high watermark in one request (per leader).
 * Called without the lock; fills ends (-1 for a partition that failed). */
static void ask_round(smc_read_index_t *ri, int timeout_ms, int64_t *ends) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(ri->nparts);
  for (int32_t p = 0; p < ri->nparts; p++)
    rd_kafka_topic_partition_list_add(l, ri->topic, p)->offset = RD_KAFKA_OFFSET_END;
  rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(ri->rk, l, timeout_ms);
  for (int32_t p = 0; p < ri->nparts; p++)
    ends[p] = -1;
  for (int i = 0; !e && i < l->cnt; i++) {
    const rd_kafka_topic_partition_t *t = &l->elems[i];
    if (!t->err && t->offset >= 0 && t->partition >= 0 && t->partition < ri->nparts)
      ends[t->partition] = t->offset;
  }
  rd_kafka_topic_partition_list_destroy(l);
}

/* Answer (under the lock) every ask the finished round covers. */
static void settle(smc_read_index_t *ri) {
  for (smc_read_index_wait_t **pp = &ri->waiting; *pp;) {
    smc_read_index_wait_t *w = *pp;
    if (w->need > ri->done && !ri->stop) {
      pp = &w->next;
      continue;
    }
    *pp = w->next;
    int64_t end = ri->stop ? -1 : ri->ends[w->partition];
    w->done(w, end < 0 ? SMC_EUNAVAILABLE : 0, end);
  }
  pthread_cond_broadcast(&ri->settled);
}

/* The round thread: while asks wait, one round after another. A round
 * answers the asks made before it started; the asks that arrive while it is
 * in flight share the next one. */
static void *round_main(void *arg) {
  smc_read_index_t *ri = arg;
  int64_t *ends = malloc((size_t)ri->nparts * sizeof *ends);
  pthread_mutex_lock(&ri->mu);
  while (!ri->stop) {
    if (!ri->waiting) {
      pthread_cond_wait(&ri->work, &ri->mu);
      continue;
    }
    uint64_t mine = ++ri->started;
    pthread_mutex_unlock(&ri->mu);
    if (ends)
      ask_round(ri, ROUND_TIMEOUT_MS, ends);
    pthread_mutex_lock(&ri->mu);
    for (int32_t q = 0; q < ri->nparts; q++)
      ri->ends[q] = ends ? ends[q] : -1;
    ri->done = mine;
    settle(ri);
  }
  settle(ri); /* stopping: every ask left fails */
  pthread_mutex_unlock(&ri->mu);
  free(ends);
  return NULL;
}

int smc_read_index_new(const char *bootstrap, const char *const *props, const char *topic,
                       int32_t nparts, smc_read_index_t **out, smc_error_t *err) {
  *out = NULL;
  char errstr[512];
  smc_read_index_t *ri = calloc(1, sizeof *ri);
  rd_kafka_conf_t *conf = NULL;
  if (!ri || nparts < 1 || !(ri->topic = strdup(topic)) ||
      !(ri->ends = malloc((size_t)nparts * sizeof *ri->ends))) {
    smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  ri->nparts = nparts;
  if (!(conf = smc_kconf_new(bootstrap, NULL, errstr, sizeof errstr)))
    goto conf_fail;
  /* the high watermark, not the last stable offset: a write completed
   * before the read may lie behind an open transaction (a machine
   * registration), and the read must wait for it too */
  if (rd_kafka_conf_set(conf, "isolation.level", "read_uncommitted", errstr, sizeof errstr) !=
      RD_KAFKA_CONF_OK)
    goto conf_fail;
  for (size_t i = 0; props && props[i] && props[i + 1]; i += 2)
    if (rd_kafka_conf_set(conf, props[i], props[i + 1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
      goto conf_fail;
  if (!(ri->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr)))
    goto conf_fail;
  pthread_mutex_init(&ri->mu, NULL);
  smc_cond_init_monotonic(&ri->work);
  smc_cond_init_monotonic(&ri->settled);
  if (pthread_create(&ri->thread, NULL, round_main, ri)) {
    smc_error_set(err, SMC_ENOMEM, NULL, "cannot start the read index thread");
    rd_kafka_destroy(ri->rk);
    pthread_mutex_destroy(&ri->mu);
    pthread_cond_destroy(&ri->work);
    pthread_cond_destroy(&ri->settled);
    conf = NULL;
    goto fail;
  }
  *out = ri;
  return 0;
conf_fail:
  smc_error_set(err, SMC_EKAFKA, NULL, "read index client: %s", errstr);
  if (conf)
    rd_kafka_conf_destroy(conf);
fail:
  if (ri) {
    free(ri->topic);
    free(ri->ends);
    free(ri);
  }
  return err && err->code ? err->code : SMC_ENOMEM;
}

void smc_read_index_destroy(smc_read_index_t *ri) {
  if (!ri)
    return;
  pthread_mutex_lock(&ri->mu);
  ri->stop = 1;
  pthread_cond_signal(&ri->work);
  pthread_mutex_unlock(&ri->mu);
  pthread_join(ri->thread, NULL);
  rd_kafka_destroy(ri->rk);
  pthread_mutex_destroy(&ri->mu);
  pthread_cond_destroy(&ri->work);
  pthread_cond_destroy(&ri->settled);
  free(ri->topic);
  free(ri->ends);
  free(ri);
}

void smc_read_index_start(smc_read_index_t *ri, smc_read_index_wait_t *w) {
  pthread_mutex_lock(&ri->mu);
  if (ri->stop || w->partition < 0 || w->partition >= ri->nparts) {
    w->done(w, SMC_EUNAVAILABLE, -1);
    pthread_mutex_unlock(&ri->mu);
    return;
  }
  /* the first round that starts from now on: one in flight started before
   * this read began */
  w->need = ri->started + 1;
  w->next = ri->waiting;
  ri->waiting = w;
  pthread_cond_signal(&ri->work);
  pthread_mutex_unlock(&ri->mu);
}

/* Remove w from the asks (under the lock): 1 when it was there. */
static int unlink_wait(smc_read_index_t *ri, smc_read_index_wait_t *w) {
  for (smc_read_index_wait_t **pp = &ri->waiting; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      return 1;
    }
  return 0;
}

int smc_read_index_cancel(smc_read_index_t *ri, smc_read_index_wait_t *w) {
  pthread_mutex_lock(&ri->mu); /* done() runs under it: after this, it has returned */
  int was = unlink_wait(ri, w);
  pthread_mutex_unlock(&ri->mu);
  return was;
}

typedef struct sync_wait {
  smc_read_index_wait_t w; /* first: done() gets this struct */
  int fired, rc;
  int64_t end;
} sync_wait_t;

static void sync_done(smc_read_index_wait_t *w, int rc, int64_t end) {
  sync_wait_t *s = (sync_wait_t *)w;
  s->fired = 1;
  s->rc = rc;
  s->end = end;
}

int smc_read_index_end(smc_read_index_t *ri, int32_t p, int timeout_ms, int64_t *end) {
  if (!ri || p < 0 || p >= ri->nparts)
    return SMC_EINVALID_ARGUMENT;
  int64_t deadline = smc_now_ms() + timeout_ms;
  sync_wait_t s = {.w = {.partition = p, .done = sync_done}};
  smc_read_index_start(ri, &s.w);
  pthread_mutex_lock(&ri->mu);
  while (!s.fired) {
    int64_t left = deadline - smc_now_ms();
    if (left <= 0) {
      unlink_wait(ri, &s.w);
      s.rc = SMC_EUNAVAILABLE;
      break;
    }
    struct timespec ts = smc_deadline_ts(CLOCK_MONOTONIC, left);
    pthread_cond_timedwait(&ri->settled, &ri->mu, &ts);
  }
  pthread_mutex_unlock(&ri->mu);
  if (!s.rc)
    *end = s.end;
  return s.rc;
}
