/* Producing without librdkafka's types (producer.h). */
#include "kafka/producer.h"

#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "base/clock.h"
#include "smc/error.h"

int smc_kafka_send(smc_kafka_t *rk, const char *topic, int32_t partition, const void *key,
                   size_t klen, const void *value, size_t vlen, void *msg_opaque,
                   const char **why) {
  return smc_kafka_send_until(rk, topic, partition, key, klen, value, vlen, msg_opaque, -1, why);
}

int smc_kafka_send_until(smc_kafka_t *rk, const char *topic, int32_t partition, const void *key,
                         size_t klen, const void *value, size_t vlen, void *msg_opaque,
                         int64_t deadline, const char **why) {
  smc_kafka_send_t s = {.m = {topic, partition, key, klen, value, vlen},
                        .msg_opaque = msg_opaque,
                        .deadline = deadline};
  return smc_kafka_send_msg(rk, &s, why);
}

int smc_kafka_send_msg(smc_kafka_t *rk, const smc_kafka_send_t *s, const char **why) {
  rd_kafka_vu_t vu[8];
  size_t n = 0;
  vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = s->m.topic};
  vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_PARTITION,
                            .u.i32 = s->m.partition < 0 ? RD_KAFKA_PARTITION_UA : s->m.partition};
  vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_KEY,
                            .u.mem = {(void *)s->m.key, s->m.key ? s->m.klen : 0}};
  vu[n++] =
      (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {(void *)s->m.value, s->m.vlen}};
  vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY};
  vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_OPAQUE, .u.ptr = s->msg_opaque};
  if (s->header)
    vu[n++] =
        (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_HEADER,
                        .u.header = {s->header, s->header_value, (ssize_t)strlen(s->header_value)}};
  for (;;) {
    rd_kafka_error_t *error = rd_kafka_produceva(rk, vu, n);
    if (!error)
      return 0;
    rd_kafka_resp_err_t e = rd_kafka_error_code(error);
    rd_kafka_error_destroy(error);
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      *why = rd_kafka_err2str(e);
      return smc_kafka_error_code(e, 1);
    }
    if (s->deadline >= 0 && smc_now_ms() >= s->deadline) {
      *why = "the producer's queue stayed full until the deadline";
      return SMC_EUNAVAILABLE;
    }
    rd_kafka_poll(rk, 10);
  }
}

void smc_kafka_drain(smc_kafka_t *rk, int ms) {
  rd_kafka_flush(rk, ms);
  rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_flush(rk, 1000); /* serve the purged messages' reports */
}

/* Fill why from e ("<step>: <text>") and free it. Returns the code. */
static int txn_error(rd_kafka_error_t *e, const char *step, char *why, size_t len) {
  int code = rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__TIMED_OUT ? SMC_EUNAVAILABLE : SMC_EKAFKA;
  snprintf(why, len, "%s: %s", step, rd_kafka_error_string(e));
  rd_kafka_error_destroy(e);
  return code;
}

int smc_kafka_txn_init(smc_kafka_t *rk, int timeout_ms, char *why, size_t len) {
  rd_kafka_error_t *e = rd_kafka_init_transactions(rk, timeout_ms);
  return e ? txn_error(e, "init", why, len) : 0;
}

/* A failed step: abort when librdkafka asks for it; the producer is dropped
 * in every case (the caller's rule: a transaction in doubt is settled by
 * the next producer's epoch). */
static int txn_fail(smc_kafka_t *rk, rd_kafka_error_t *e, const char *step, int *drop, char *why,
                    size_t len) {
  if (rd_kafka_error_txn_requires_abort(e)) {
    rd_kafka_error_t *ae = rd_kafka_abort_transaction(rk, 10000);
    if (ae)
      rd_kafka_error_destroy(ae);
  }
  *drop = 1;
  return txn_error(e, step, why, len);
}

int smc_kafka_txn_send(smc_kafka_t *rk, const smc_kafka_out_t *out, size_t n, int timeout_ms,
                       int *drop, char *why, size_t len) {
  *drop = 0;
  rd_kafka_error_t *e = rd_kafka_begin_transaction(rk);
  if (e)
    return txn_fail(rk, e, "begin", drop, why, len);
  for (size_t i = 0; i < n; i++) {
    const char *pe = NULL;
    if (smc_kafka_send(rk, out[i].topic, out[i].partition, out[i].key, out[i].klen, out[i].value,
                       out[i].vlen, NULL, &pe) < 0) {
      if ((e = rd_kafka_abort_transaction(rk, timeout_ms)))
        return txn_fail(rk, e, "abort", drop, why, len);
      snprintf(why, len, "produce: %s", pe);
      return SMC_EKAFKA;
    }
  }
  if ((e = rd_kafka_commit_transaction(rk, timeout_ms)))
    return txn_fail(rk, e, "commit", drop, why, len);
  return 0;
}
