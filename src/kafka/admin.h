/*
 * Topic administration: the topic definitions of topics/topics.json and
 * `smc topics create` (librdkafka's admin API).
 */
#ifndef SMC_KAFKA_ADMIN_H
#define SMC_KAFKA_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "kafka/handle.h"
#include "smc/error.h"

/* One topic definition. partitions < 0 means "the cluster's N". */
typedef struct smc_topic_def {
  char *name; /* without prefix: "proposals" */
  int32_t partitions;
  size_t nconfig;
  char **config; /* k1, v1, k2, v2, ... (2 * nconfig entries) */
} smc_topic_def_t;

typedef struct smc_topic_defs {
  smc_topic_def_t *items;
  size_t count;
} smc_topic_defs_t;

/* Parse definitions from JSON text ({"topics":[{"name", "partitions": n |
 * "N", "config": {k: "v"}}]}). Bad input: SMC_EBAD_VALUE with a message
 * naming the entry. defs is filled on success; release with
 * smc_topic_defs_close. */
int smc_topic_defs_parse(const char *json, size_t len, smc_topic_defs_t *defs, smc_error_t *err);
/* The same from a file (SMC_EIO when it cannot be read). */
int smc_topic_defs_load(const char *path, smc_topic_defs_t *defs, smc_error_t *err);
void smc_topic_defs_close(smc_topic_defs_t *defs);

typedef enum smc_topic_status {
  SMC_TOPIC_CREATED = 1,
  SMC_TOPIC_EXISTED,  /* existed with the expected partition count */
  SMC_TOPIC_MISMATCH, /* existed with another partition count: an error */
  SMC_TOPIC_FAILED,   /* creation failed: message says why */
} smc_topic_status_t;

typedef struct smc_topic_result {
  char name[256]; /* with prefix */
  smc_topic_status_t status;
  int32_t partitions;      /* wanted */
  int32_t have_partitions; /* found (EXISTED, MISMATCH), else = partitions */
  char message[256];
} smc_topic_result_t;

typedef struct smc_topics_options {
  const char *bootstrap;         /* NULL: $SMC_BOOTSTRAP or localhost:9092 */
  const char *const *properties; /* librdkafka passthrough, k,v,...,NULL */
  const char *prefix;            /* NULL: "smc." */
  int32_t partitions;            /* N, default 12 */
  int replication;               /* -1 = the broker's default.replication.factor */
  int min_isr;    /* min.insync.replicas of the new topics; -1 = 2 when replication >= 3,
                     else the broker's default. A definition's own setting wins. */
  int timeout_ms; /* whole operation, default 30000 */
} smc_topics_options_t;

void smc_topics_options_default(smc_topics_options_t *o);

/*
 * Create every topic of defs that does not exist yet (TOPIC_ALREADY_EXISTS
 * is fine) and check the partition count of those that did. results must hold
 * defs->count entries and gets one per definition, in order. Returns 0 when
 * every topic now exists as defined, SMC_EINVALID_ARGUMENT for bad options,
 * SMC_EKAFKA when a topic failed or mismatched (see results), or
 * SMC_EUNAVAILABLE when the cluster did not answer in time.
 */
int smc_topics_create(const smc_topics_options_t *o, const smc_topic_defs_t *defs,
                      smc_topic_result_t *results, smc_error_t *err);

/* The value of one setting of a topic (DescribeConfigs: its own or the
 * broker's default) into out. 0; SMC_ENOT_FOUND when the topic does not
 * exist or has no such setting; SMC_EUNAVAILABLE / SMC_EKAFKA when it did not answer. */
int smc_topic_config_get(const char *bootstrap, const char *const *props, const char *topic,
                         const char *name, char *out, size_t cap, int timeout_ms, smc_error_t *err);

/* The committed offsets of group on topic's partitions 0..n-1 into out (-1:
 * none), asked without joining the group. 0, SMC_EKAFKA (no client) or
 * SMC_EUNAVAILABLE (no answer within timeout_ms). */
int smc_kafka_group_committed(const char *bootstrap, const char *const *props, const char *group,
                              const char *topic, int32_t n, int64_t *out, int timeout_ms);

/* DeleteRecords: delete topic's records before before[p] on each partition
 * p < n (before[p] < 0: leave p). errs[p] (n entries, the caller sets them
 * to NULL) gets the text of a partition's failure. Returns 0, or
 * SMC_EUNAVAILABLE / SMC_EKAFKA with why filled when the request failed. */
int smc_kafka_delete_records(smc_kafka_t *rk, const char *topic, int32_t n, const int64_t *before,
                             const char **errs, int timeout_ms, char *why, size_t len);

#endif
