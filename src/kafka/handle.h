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

/* A librdkafka handle as the other layers see it: opaque, the same type as
 * rd_kafka_t (so a role still on librdkafka passes its handle unchanged). */
typedef struct rd_kafka_s smc_kafka_t;
#define SMC_KAFKA_CONSUMER RD_KAFKA_CONSUMER
#define SMC_KAFKA_PRODUCER RD_KAFKA_PRODUCER

typedef void (*smc_kafka_rebalance_fn)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                       rd_kafka_topic_partition_list_t *parts, void *opaque);
struct smc_kafka_group_handler; /* group.h */
/* A producer's delivery report: error NULL when the message was written. */
typedef void (*smc_kafka_report_fn)(void *opaque, const char *error);
/* A message's delivery report in full (smc_kafka_spec_t.delivery_cb). */
typedef struct smc_kafka_delivery {
  void *msg_opaque; /* what smc_kafka_send was given */
  int32_t partition;
  int64_t offset; /* where it was written */
  /* 0: written; SMC_EKAFKA or SMC_ETOO_LARGE: certainly not written;
   * SMC_EUNAVAILABLE: may or may not have been written */
  int code;
  const char *error; /* librdkafka's text when code != 0 */
} smc_kafka_delivery_t;
typedef void (*smc_kafka_delivery_fn)(void *opaque, const smc_kafka_delivery_t *d);

/* Every consumer reads read_committed, commits (if at all) by hand and
 * starts a partition without a committed offset at its beginning; these
 * come first, then group_id, client_id and eof, then the lists below. */
typedef struct smc_kafka_spec {
  rd_kafka_type_t type;                /* SMC_KAFKA_CONSUMER or SMC_KAFKA_PRODUCER */
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
  /* consumer, instead of rebalance_cb: the rebalance skeleton of group.h
   * with this handler (must outlive the handle) */
  const struct smc_kafka_group_handler *group;
  smc_kafka_report_fn report_cb;     /* producer, optional (then close with smc_kafka_close) */
  smc_kafka_delivery_fn delivery_cb; /* producer, instead of report_cb: the full report */
  const char *transactional_id;      /* producer: transactional.id (NULL: none) */
  void *opaque;                      /* for the callbacks */
} smc_kafka_spec_t;

/* Apply props (k, v, ..., NULL) to conf; producer = 1 skips consumer-only
 * keys. Returns 0, or -1 with errstr filled (unknown key, bad value, a key
 * without a value). */
int smc_kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *props, int producer,
                         char *errstr, size_t errlen);

/* A new handle per spec, or NULL with errstr filled. The caller owns it:
 * smc_kafka_close (consumers are closed first). */
smc_kafka_t *smc_kafka_open(const smc_kafka_spec_t *spec, char *errstr, size_t errlen);
/* The same, saying why it failed: 0 with *out set; SMC_EINVALID_ARGUMENT
 * (a property unknown or invalid) or SMC_EKAFKA (the client could not be
 * created), errstr filled, *out NULL. */
int smc_kafka_new(const smc_kafka_spec_t *spec, smc_kafka_t **out, char *errstr, size_t errlen);

/* consumer_close (for a consumer, unless smc_kafka_leave did) then
 * destroy; NULL is a no-op. */
void smc_kafka_close(smc_kafka_t *rk);
/* A consumer leaves its group (consumer_close: revokes, commits nothing by
 * itself); the handle stays until smc_kafka_close. No-op for a producer. */
void smc_kafka_leave(smc_kafka_t *rk);

/* Produce a copy of value (key may be NULL) to topic, on partition (< 0:
 * by the configured partitioner), retrying while the queue is full (after a
 * 10 ms poll). Returns 0, or -1 with *why set to librdkafka's reason. */
int smc_kafka_produce(smc_kafka_t *rk, const char *topic, int32_t partition, const void *key,
                      size_t klen, const void *value, size_t vlen, const char **why);
/* Serve delivery reports and other callbacks for up to ms. */
void smc_kafka_poll(smc_kafka_t *rk, int ms);
/* Wait up to ms for every queued message to be delivered: 0, or -1 when
 * some were not. */
int smc_kafka_flush(smc_kafka_t *rk, int ms);
/* The low and high watermarks of topic's partition: 0, or SMC_EUNAVAILABLE
 * when the broker did not say within timeout_ms, SMC_EKAFKA on another
 * error (both negative). */
int smc_kafka_watermarks(smc_kafka_t *rk, const char *topic, int32_t partition, int64_t *lo,
                         int64_t *hi, int timeout_ms);

/* The SMC_E* code of a librdkafka error: 0 for none; SMC_ETOO_LARGE (a
 * message larger than the producer or broker takes) or SMC_EKAFKA when
 * not_persisted (certainly not written), else SMC_EUNAVAILABLE. */
int smc_kafka_error_code(rd_kafka_resp_err_t e, int not_persisted);

/* The version of the librdkafka linked, for --version and metrics. */
const char *smc_kafka_version(void);

#endif
