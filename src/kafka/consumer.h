/*
 * Consuming without librdkafka's types: what a role or command needs of a
 * consumer opened by smc_kafka_open (handle.h). A message comes back as an
 * smc_kafka_msg_t (a record, the end of a partition, or an error event);
 * partitions are named by (topic, partition, offset) arrays. Every message
 * taken must be released with smc_kafka_msg_release.
 */
#ifndef SMC_KAFKA_CONSUMER_H
#define SMC_KAFKA_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "kafka/group.h"
#include "kafka/handle.h"
#include "kafka/record.h"
#include "smc/error.h"

#define SMC_KAFKA_OFFSET_END (-1) /* RD_KAFKA_OFFSET_END: the partition's end */

/* A message taken from a consumer or a queue. */
typedef struct smc_kafka_msg {
  const char *topic; /* NULL for a client-level error */
  int32_t partition;
  int64_t offset;
  int eof;           /* the consumer reached the end of the partition at offset */
  const char *error; /* non-NULL (and not eof): an error event, its text */
  int fatal;         /* with error: the client has failed for good */
  const void *key;
  size_t key_len;
  const void *value; /* NULL: a tombstone */
  size_t value_len;
  int64_t timestamp; /* the record's timestamp (ms), < 0 when unknown */
  void *priv;        /* the librdkafka message */
} smc_kafka_msg_t;

/* One (topic, partition, offset) of an assignment. */
typedef struct smc_kafka_tp {
  const char *topic;
  int32_t partition;
  int64_t offset; /* SMC_KAFKA_OFFSET_BEGINNING / _END or an offset */
} smc_kafka_tp_t;

typedef struct rd_kafka_queue_s smc_kafka_queue_t;

/* A consumer for reading partitions by assignment to their ends (replay,
 * restore): eof on, read_committed, large fetches with a bounded queue,
 * then extra (k, v, ..., NULL), then the -X props. In group (never
 * joined: librdkafka wants one for assign). NULL with err filled. */
smc_kafka_t *smc_kafka_bulk_reader(const char *bootstrap, const char *const *props,
                                   const char *group, const char *const *extra, smc_error_t *err);

/* Wait up to timeout_ms for a message of rk: 1 with *m filled (release it),
 * 0 when none came. */
int smc_kafka_consume(smc_kafka_t *rk, int timeout_ms, smc_kafka_msg_t *m);
void smc_kafka_msg_release(smc_kafka_msg_t *m);
/* m (a record) as a fold record; smc_msgrec_close releases it, m must
 * outlive it. */
void smc_kafka_msg_record(smc_msgrec_t *mr, const smc_kafka_msg_t *m);

/* Assign exactly tps (n = 0: nothing). 0, or -1 with why filled. */
int smc_kafka_assign(smc_kafka_t *rk, const smc_kafka_tp_t *tps, int n, char *why, size_t len);
/* The same for partitions of one topic, each from its offset. */
int smc_kafka_assign_parts(smc_kafka_t *rk, const char *topic, const smc_kafka_part_t *parts, int n,
                           char *why, size_t len);
void smc_kafka_unassign(smc_kafka_t *rk);
/* Subscribe rk (a group consumer) to topic: 0, or -1 with why filled. */
int smc_kafka_subscribe(smc_kafka_t *rk, const char *topic, char *why, size_t len);
/* The consumer's position on each partition into parts[i].offset (< 0 when
 * it has none yet). */
void smc_kafka_positions(smc_kafka_t *rk, const char *topic, smc_kafka_part_t *parts, int n);
/* The log start (low) and end (high) of each partition of parts, in two
 * ListOffsets requests for them all. 0; SMC_EUNAVAILABLE on timeout or
 * SMC_EKAFKA, with why filled. */
int smc_kafka_list_offsets(smc_kafka_t *rk, const char *topic, smc_kafka_part_t *parts, int n,
                           int timeout_ms, char *why, size_t len);
/* The same, only the ends (high), in one request. */
int smc_kafka_end_offsets(smc_kafka_t *rk, const char *topic, smc_kafka_part_t *parts, int n,
                          int timeout_ms, char *why, size_t len);
/* Commit parts[i].offset for the group, without waiting. */
void smc_kafka_commit_async(smc_kafka_t *rk, const char *topic, const smc_kafka_part_t *parts,
                            int n);
/* The high watermark of topic's partition p as last fetched (no request):
 * 0, or -1 when none is known yet. */
int smc_kafka_cached_high(smc_kafka_t *rk, const char *topic, int32_t p, int64_t *hi);
/* Wake a thread waiting in smc_kafka_consume on rk (any thread may call it). */
void smc_kafka_wake(smc_kafka_t *rk);
/* Stop fetching partition p of topic. */
void smc_kafka_pause(smc_kafka_t *rk, const char *topic, int32_t p);
/* 1 when the client has failed for good (fatal error), else 0. */
int smc_kafka_fatal(smc_kafka_t *rk);

/* A queue of rk that partitions can be forwarded to (a fold thread's own). */
smc_kafka_queue_t *smc_kafka_queue_new(smc_kafka_t *rk);
void smc_kafka_queue_destroy(smc_kafka_queue_t *q);
/* From now on, messages of topic's partition p go to q: 0, or -1. */
int smc_kafka_queue_forward(smc_kafka_t *rk, const char *topic, int32_t p, smc_kafka_queue_t *q);
/* Up to max messages of q: those already queued, else waits up to
 * timeout_ms for one. Returns how many were put in msgs (release each). */
int smc_kafka_queue_consume(smc_kafka_queue_t *q, int timeout_ms, smc_kafka_msg_t *msgs, int max);

#endif
