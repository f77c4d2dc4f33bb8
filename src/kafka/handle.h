/*
 * One way to open a librdkafka handle. Every smc consumer and producer is
 * made here from a spec: smc's settings for the role, then the user's -X
 * pass-through on top (the user wins; a producer skips the consumer-only
 * keys, see smc_kconf_consumer_only), with smc's log callback. The
 * configuration is freed on every failure path; a consumer comes back with
 * its main queue redirected to the consumer queue (rd_kafka_poll_set_consumer).
 */
#ifndef SMC_KAFKA_HANDLE_H
#define SMC_KAFKA_HANDLE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

typedef void (*smc_kafka_rebalance_fn)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                       rd_kafka_topic_partition_list_t *parts, void *opaque);
/* A producer's delivery report: error NULL when the message was written. */
typedef void (*smc_kafka_report_fn)(void *opaque, const char *error);

/* Every consumer reads read_committed, commits (if at all) by hand and
 * starts a partition without a committed offset at its beginning; these
 * come first, then group_id, client_id and eof, then the lists below. */
typedef struct smc_kafka_spec {
  rd_kafka_type_t type;                /* RD_KAFKA_CONSUMER or RD_KAFKA_PRODUCER */
  const char *bootstrap;               /* NULL or "": $SMC_BOOTSTRAP, else localhost:9092 */
  const char *group_id;                /* consumer: group.id (NULL: none) */
  const char *client_id;               /* client.id (NULL: librdkafka's) */
  int eof;                             /* consumer: enable.partition.eof */
  const char *const *base;             /* smc's settings, k1, v1, ..., NULL (may be NULL) */
  const char *const *optional;         /* set when this librdkafka knows them, else skipped */
  const char *const *extra;            /* a role's own additions after base (may be NULL) */
  const char *const *props;            /* the user's -X pass-through, applied last */
  int murmur2;                         /* producer: the Java client's partitioner */
  smc_kafka_rebalance_fn rebalance_cb; /* consumer, optional */
  smc_kafka_report_fn report_cb;       /* producer, optional (then close with smc_kafka_close) */
  void *opaque;                        /* for the callbacks */
} smc_kafka_spec_t;

/* Apply props (k, v, ..., NULL) to conf; producer = 1 skips consumer-only
 * keys. Returns 0, or -1 with errstr filled (unknown key, bad value, a key
 * without a value). */
int smc_kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *props, int producer,
                         char *errstr, size_t errlen);

/* A new handle per spec, or NULL with errstr filled. The caller owns it:
 * smc_kafka_close (consumers are closed first). */
rd_kafka_t *smc_kafka_open(const smc_kafka_spec_t *spec, char *errstr, size_t errlen);

/* consumer_close (for a consumer) then destroy; NULL is a no-op. */
void smc_kafka_close(rd_kafka_t *rk);

/* Destroy a handle without closing it first (a consumer that left its
 * group already); NULL is a no-op. */
void smc_kafka_destroy(rd_kafka_t *rk);

/* Produce a copy of value (key may be NULL) to topic, on partition (< 0:
 * by the configured partitioner), retrying while the queue is full (after a
 * 10 ms poll). Returns 0, or -1 with *why set to librdkafka's reason. */
int smc_kafka_produce(rd_kafka_t *rk, const char *topic, int32_t partition, const void *key,
                      size_t klen, const void *value, size_t vlen, const char **why);
/* The same, giving up (-1) once the queue is still full at deadline
 * (smc_now_ms; -1: never). */
int smc_kafka_produce_until(rd_kafka_t *rk, const char *topic, int32_t partition, const void *key,
                            size_t klen, const void *value, size_t vlen, int64_t deadline,
                            const char **why);
/* Serve delivery reports and other callbacks for up to ms. */
void smc_kafka_poll(rd_kafka_t *rk, int ms);
/* Wait up to ms for every queued message to be delivered: 0, or -1 when
 * some were not. */
int smc_kafka_flush(rd_kafka_t *rk, int ms);
/* The low and high watermarks of topic's partition: 0, or -1 when the
 * broker did not say within timeout_ms. */
int smc_kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t *lo,
                         int64_t *hi, int timeout_ms);

/* The version of the librdkafka linked, for --version and metrics. */
const char *smc_kafka_version(void);

#endif
