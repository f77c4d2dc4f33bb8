/* Consuming without librdkafka's types (consumer.h). */
#include "kafka/consumer.h"

#include <stdio.h>
#include <stdlib.h>

#include "smc/error.h"

smc_kafka_t *smc_kafka_bulk_reader(const char *bootstrap, const char *const *props,
                                   const char *group, const char *const *extra, smc_error_t *err) {
  char errstr[512];
  /* Bounded memory: the fetcher stops filling a queue (a fold thread's, in
   * a replay: every partition queue is forwarded to one) past
   * queued.max.messages.kbytes, so a reader holds at most that plus one
   * fetch response (fetch.max.bytes, 8 MiB). 32 MiB (~200,000 proposals,
   * over a second of one fold thread's work): with 4 MiB the fold threads
   * spent about half the time waiting for records (a 316k-record topic, 2
   * threads: 3.4-3.6 s wall for 3.9 s of CPU; 1 thread 6.5 s for 3.7 s),
   * with 8 MiB 2.4-2.5 s, with 16 or 32 MiB 1.8-1.95 s. */
  static const char *const kv[] = {"fetch.max.bytes", "8388608", "queued.max.messages.kbytes",
                                   "32768", NULL};
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_CONSUMER,
                           .bootstrap = bootstrap,
                           .group_id = group,
                           .eof = 1,
                           .base = kv,
                           .extra = extra,
                           .props = props};
  smc_kafka_t *rk = smc_kafka_open(&spec, errstr, sizeof errstr);
  if (!rk)
    smc_error_set(err, SMC_EKAFKA, NULL, "kafka consumer: %s", errstr);
  return rk;
}

static void msg_fill(smc_kafka_msg_t *m, rd_kafka_message_t *rkm) {
  *m = (smc_kafka_msg_t){.partition = rkm->partition, .offset = rkm->offset, .priv = rkm};
  m->topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : NULL;
  if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    m->eof = 1;
  } else if (rkm->err) {
    m->error = rd_kafka_message_errstr(rkm);
    m->fatal = rkm->err == RD_KAFKA_RESP_ERR__FATAL;
  } else {
    m->key = rkm->key;
    m->key_len = rkm->key_len;
    m->value = rkm->payload;
    m->value_len = rkm->len;
    m->timestamp = rd_kafka_message_timestamp(rkm, NULL);
  }
}

int smc_kafka_consume(smc_kafka_t *rk, int timeout_ms, smc_kafka_msg_t *m) {
  rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, timeout_ms);
  if (!rkm)
    return 0;
  msg_fill(m, rkm);
  if (m->error && !m->fatal)
    m->fatal = rd_kafka_fatal_error(rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
  return 1;
}

void smc_kafka_msg_release(smc_kafka_msg_t *m) {
  if (m->priv)
    rd_kafka_message_destroy(m->priv);
  m->priv = NULL;
}

void smc_kafka_msg_record(smc_msgrec_t *mr, const smc_kafka_msg_t *m) {
  smc_msgrec_init(mr, m->priv);
}

/* A partition list of tps, or NULL when out of memory. */
static rd_kafka_topic_partition_list_t *tp_list(const smc_kafka_tp_t *tps, int n) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
  for (int i = 0; l && i < n; i++)
    rd_kafka_topic_partition_list_add(l, tps[i].topic, tps[i].partition)->offset = tps[i].offset;
  return l;
}

static rd_kafka_topic_partition_list_t *part_list(const char *topic, const smc_kafka_part_t *parts,
                                                  int n) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
  for (int i = 0; l && i < n; i++)
    rd_kafka_topic_partition_list_add(l, topic, parts[i].partition)->offset = parts[i].offset;
  return l;
}

static int assign_list(smc_kafka_t *rk, rd_kafka_topic_partition_list_t *l, char *why, size_t len) {
  if (!l) {
    snprintf(why, len, "out of memory");
    return -1;
  }
  rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (e) {
    snprintf(why, len, "%s", rd_kafka_err2str(e));
    return -1;
  }
  return 0;
}

int smc_kafka_assign(smc_kafka_t *rk, const smc_kafka_tp_t *tps, int n, char *why, size_t len) {
  return assign_list(rk, tp_list(tps, n), why, len);
}

int smc_kafka_assign_parts(smc_kafka_t *rk, const char *topic, const smc_kafka_part_t *parts, int n,
                           char *why, size_t len) {
  return assign_list(rk, part_list(topic, parts, n), why, len);
}

void smc_kafka_unassign(smc_kafka_t *rk) { rd_kafka_assign(rk, NULL); }

int smc_kafka_subscribe(smc_kafka_t *rk, const char *topic, char *why, size_t len) {
  smc_kafka_tp_t tp = {topic, RD_KAFKA_PARTITION_UA, 0};
  rd_kafka_topic_partition_list_t *l = tp_list(&tp, 1);
  rd_kafka_resp_err_t e = l ? rd_kafka_subscribe(rk, l) : RD_KAFKA_RESP_ERR__NOENT;
  if (l)
    rd_kafka_topic_partition_list_destroy(l);
  if (e) {
    snprintf(why, len, "%s", rd_kafka_err2str(e));
    return -1;
  }
  return 0;
}

void smc_kafka_positions(smc_kafka_t *rk, const char *topic, smc_kafka_part_t *parts, int n) {
  rd_kafka_topic_partition_list_t *l = part_list(topic, parts, n);
  if (!l)
    return;
  rd_kafka_position(rk, l);
  for (int i = 0; i < n && i < l->cnt; i++)
    parts[i].offset = l->elems[i].offset;
  rd_kafka_topic_partition_list_destroy(l);
}

int smc_kafka_cached_high(smc_kafka_t *rk, const char *topic, int32_t p, int64_t *hi) {
  int64_t lo = 0;
  return rd_kafka_get_watermark_offsets(rk, topic, p, &lo, hi) ? -1 : 0;
}

void smc_kafka_wake(smc_kafka_t *rk) {
  rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
  if (q) {
    rd_kafka_queue_yield(q);
    rd_kafka_queue_destroy(q);
  }
}

/* One ListOffsets request for every partition of parts at offset `at`
 * (BEGINNING or END); the answers into low or high. */
static rd_kafka_resp_err_t list_offsets(smc_kafka_t *rk, const char *topic, smc_kafka_part_t *parts,
                                        int n, int64_t at, int timeout_ms) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
  if (!l)
    return RD_KAFKA_RESP_ERR__NOENT;
  for (int i = 0; i < n; i++)
    rd_kafka_topic_partition_list_add(l, topic, parts[i].partition)->offset = at;
  rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, l, timeout_ms);
  for (int i = 0; !e && i < l->cnt; i++)
    if (l->elems[i].err || l->elems[i].offset < 0)
      e = l->elems[i].err ? l->elems[i].err : RD_KAFKA_RESP_ERR__FAIL;
  for (int i = 0; !e && i < n; i++)
    *(at == RD_KAFKA_OFFSET_END ? &parts[i].high : &parts[i].low) = l->elems[i].offset;
  rd_kafka_topic_partition_list_destroy(l);
  return e;
}

static int offsets_error(rd_kafka_resp_err_t e, char *why, size_t len) {
  if (!e)
    return 0;
  snprintf(why, len, "%s", e == RD_KAFKA_RESP_ERR__NOENT ? "out of memory" : rd_kafka_err2str(e));
  return e == RD_KAFKA_RESP_ERR__TIMED_OUT ? SMC_EUNAVAILABLE : SMC_EKAFKA;
}

int smc_kafka_list_offsets(smc_kafka_t *rk, const char *topic, smc_kafka_part_t *parts, int n,
                           int timeout_ms, char *why, size_t len) {
  rd_kafka_resp_err_t e = list_offsets(rk, topic, parts, n, RD_KAFKA_OFFSET_BEGINNING, timeout_ms);
  if (!e)
    e = list_offsets(rk, topic, parts, n, RD_KAFKA_OFFSET_END, timeout_ms);
  return offsets_error(e, why, len);
}

int smc_kafka_end_offsets(smc_kafka_t *rk, const char *topic, smc_kafka_part_t *parts, int n,
                          int timeout_ms, char *why, size_t len) {
  return offsets_error(list_offsets(rk, topic, parts, n, RD_KAFKA_OFFSET_END, timeout_ms), why,
                       len);
}

void smc_kafka_commit_async(smc_kafka_t *rk, const char *topic, const smc_kafka_part_t *parts,
                            int n) {
  rd_kafka_topic_partition_list_t *l = part_list(topic, parts, n);
  if (!l)
    return;
  if (l->cnt > 0)
    rd_kafka_commit(rk, l, 1);
  rd_kafka_topic_partition_list_destroy(l);
}

void smc_kafka_pause(smc_kafka_t *rk, const char *topic, int32_t p) {
  smc_kafka_tp_t tp = {topic, p, 0};
  rd_kafka_topic_partition_list_t *l = tp_list(&tp, 1);
  if (!l)
    return;
  rd_kafka_pause_partitions(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
}

int smc_kafka_fatal(smc_kafka_t *rk) {
  return rd_kafka_fatal_error(rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

smc_kafka_queue_t *smc_kafka_queue_new(smc_kafka_t *rk) { return rd_kafka_queue_new(rk); }

void smc_kafka_queue_destroy(smc_kafka_queue_t *q) {
  if (q)
    rd_kafka_queue_destroy(q);
}

int smc_kafka_queue_forward(smc_kafka_t *rk, const char *topic, int32_t p, smc_kafka_queue_t *q) {
  rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(rk, topic, p);
  if (!pq)
    return -1;
  rd_kafka_queue_forward(pq, q);
  rd_kafka_queue_destroy(pq);
  return 0;
}

#define QUEUE_BATCH 512

int smc_kafka_queue_consume(smc_kafka_queue_t *q, int timeout_ms, smc_kafka_msg_t *msgs, int max) {
  rd_kafka_message_t *batch[QUEUE_BATCH];
  if (max > QUEUE_BATCH)
    max = QUEUE_BATCH;
  ssize_t got = rd_kafka_consume_batch_queue(q, 0, batch, (size_t)max);
  if (got == 0 && (batch[0] = rd_kafka_consume_queue(q, timeout_ms))) /* block for one at most */
    got = 1;
  if (got < 0)
    got = 0;
  for (ssize_t i = 0; i < got; i++)
    msg_fill(&msgs[i], batch[i]);
  return (int)got;
}
