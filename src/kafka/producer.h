/*
 * Producing without librdkafka's types, beyond handle.h's smc_kafka_produce:
 * messages whose delivery report is handed back with the caller's pointer
 * (smc_kafka_spec_t.delivery_cb), a drain before close, and one-shot
 * transactions (a few messages committed together: the client's machine
 * and settings registrations; the committer's session is not this).
 */
#ifndef SMC_KAFKA_PRODUCER_H
#define SMC_KAFKA_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "kafka/handle.h"

/* Produce a copy of value (key may be NULL) to topic's partition (< 0: the
 * configured partitioner), retrying while the queue is full; msg_opaque
 * comes back in the message's smc_kafka_delivery_t. Returns 0, or
 * SMC_ETOO_LARGE (larger than the producer takes) / SMC_EKAFKA with *why
 * set to librdkafka's reason; no report comes then. */
int smc_kafka_send(smc_kafka_t *rk, const char *topic, int32_t partition, const void *key,
                   size_t klen, const void *value, size_t vlen, void *msg_opaque, const char **why);

/* The same, giving up (SMC_EUNAVAILABLE) when the queue is still full at
 * deadline (smc_now_ms; 0: after one attempt, -1: never). */
int smc_kafka_send_until(smc_kafka_t *rk, const char *topic, int32_t partition, const void *key,
                         size_t klen, const void *value, size_t vlen, void *msg_opaque,
                         int64_t deadline, const char **why);

/* Wait up to ms for the queued messages, then drop what is left (queued and
 * in flight) and serve their reports for up to 1 s: every report has been
 * called once this returns (those of dropped messages with an error). */
void smc_kafka_drain(smc_kafka_t *rk, int ms);

/* One message of a transaction. */
typedef struct smc_kafka_out {
  const char *topic;
  int32_t partition;
  const void *key;
  size_t klen;
  const void *value;
  size_t vlen;
} smc_kafka_out_t;

/* One message for smc_kafka_send_msg: smc_kafka_send_until's arguments,
 * and at most one header (name and NUL-terminated value; NULL: none). */
typedef struct smc_kafka_send {
  smc_kafka_out_t m;
  const char *header, *header_value;
  void *msg_opaque;
  int64_t deadline;
} smc_kafka_send_t;

int smc_kafka_send_msg(smc_kafka_t *rk, const smc_kafka_send_t *s, const char **why);

/* init_transactions of a producer opened with a transactional.id. 0, or
 * SMC_EUNAVAILABLE (timed out) / SMC_EKAFKA with why filled. */
int smc_kafka_txn_init(smc_kafka_t *rk, int timeout_ms, char *why, size_t len);

/* Begin a transaction, produce out[0..n-1], commit. 0; else the transaction
 * was aborted or its outcome is unknown: SMC_EUNAVAILABLE (timed out) or
 * SMC_EKAFKA, why says at which step ("begin: ...", "produce: ...",
 * "commit: ...", "abort: ..."), and *drop is set when the producer must
 * not be used again (a new one settles the old transaction). */
int smc_kafka_txn_send(smc_kafka_t *rk, const smc_kafka_out_t *out, size_t n, int timeout_ms,
                       int *drop, char *why, size_t len);

#endif
