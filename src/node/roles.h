/*
 * The roles of a worker node (private to src/node). Each role runs in its own
 * thread with its own consumer group, store and fold; node.c starts and
 * stops them. cfg must outlive the role (node.c owns a deep copy).
 */
#ifndef SMC_NODE_ROLES_H
#define SMC_NODE_ROLES_H

#include <stddef.h>
#include <stdint.h>

#include "kafka/group.h"
#include "kafka/handle.h"
#include "node/node.h"
#include "smc/error.h"
#include "store/store.h"

typedef struct smc_committer smc_committer_t;
typedef struct smc_voter smc_voter_t;

/* Committer: consumer group "<prefix minus '.'>-committer", exactly-once
 * confirmations, ticks (committer.c). */
int smc_committer_start(const smc_node_config_t *cfg, smc_committer_t **out, smc_error_t *err);
void smc_committer_stop(smc_committer_t *c);
size_t smc_committer_partitions(smc_committer_t *c, int32_t *out, size_t max);
int smc_committer_healthy(smc_committer_t *c);
/* The last measured fold lag of p (records), -1 when unknown or not served. */
int64_t smc_committer_lag(smc_committer_t *c, int32_t p);

/* Voter: consumer group "<prefix minus '.'>-voter-<id>", folds and votes
 * (voter.c). */
int smc_voter_start(const smc_node_config_t *cfg, smc_voter_t **out, smc_error_t *err);
void smc_voter_stop(smc_voter_t *v);
int smc_voter_healthy(smc_voter_t *v);
/* Run a vote hook (`/bin/sh -c hook`, json on stdin). Returns 1 accept (exit
 * 0), 0 reject; reason gets the hook's stdout or why it failed or timed out. */
int smc_voter_run_hook(const char *hook, const char *json, int timeout_ms, char *reason,
                       size_t cap);

/* 1 when the committer may publish a copy of an output to reply_to topic:
 * never a topic under prefix (the cluster's own), and, when allow is a
 * non-empty list (node.h reply_to_allow), only a topic it names. */
int smc_reply_to_allowed(const char *topic, const char *prefix, const char *allow);

/* "<prefix without its trailing '.'>-<role>" (prefix "smc." + "committer" =
 * "smc-committer"), malloc'd. */
char *smc_node_group_name(const char *prefix, const char *role);

/* A consumer in `group` with the settings every role uses (cooperative-sticky
 * assignment, offsets committed by hand, read_committed, from the earliest
 * offset, partition ends reported: the end of a partition moves a role's
 * folded end past transaction markers; cfg's session timeout), then the
 * user's passthrough properties, with rebalance_cb called with opaque.
 * Returns NULL with err filled ("<what>: ...") on failure. */
smc_kafka_t *smc_node_group_consumer(const smc_node_config_t *cfg, const char *group,
                                     const char *client_id, smc_kafka_rebalance_fn rebalance_cb,
                                     void *opaque, const char *what, smc_error_t *err);
/* The same with the rebalance skeleton of kafka/group.h calling h (which
 * must outlive the consumer) with opaque; props (NULL: cfg->kafka_props) are
 * the pass-through properties. */
smc_kafka_t *smc_node_group_member(const smc_node_config_t *cfg, const char *group,
                                   const char *client_id, const smc_kafka_group_handler_t *h,
                                   const char *const *props, void *opaque, const char *what,
                                   smc_error_t *err);

/* The fold configuration of a role: the defaults, then cfg's limits (a zero
 * limit keeps its default), for a topic of `partitions` partitions. */
void smc_node_fold_config(const smc_node_config_t *cfg, int32_t partitions, smc_fold_config_t *fc);

/* The store options of a role: the store's defaults with cfg's cache and
 * write buffer sizes (a zero size keeps the store's default). */
void smc_node_store_options(const smc_node_config_t *cfg, smc_store_options_t *o);

/* mkdir -p; 0 or -1 with errno set. */
int smc_node_mkdirs(const char *path);

/* A role's store at dir (below cfg->data_dir, which is created as needed),
 * opened with the role's options. 0, or negative with err filled. */
int smc_node_store_open(const smc_node_config_t *cfg, const char *dir, smc_store_t **out,
                        smc_error_t *err);

/* The partition count of topic through rk, or negative with err naming the
 * topic and the broker. */
int32_t smc_node_topic_partitions(const smc_node_config_t *cfg, smc_kafka_t *rk, const char *topic,
                                  smc_error_t *err);

/* A role's fold over n partitions (smc_node_fold_config) whose lines go to
 * log with opaque. 0, or negative with err filled. */
int smc_node_fold_new(const smc_node_config_t *cfg, int32_t n,
                      void (*log)(void *opaque, const smc_fold_log_t *line), void *opaque,
                      smc_fold_t **out, smc_error_t *err);

/* Start a role's thread: 0, or SMC_EIO with err filled. */
int smc_node_thread_start(pthread_t *t, void *(*main)(void *), void *arg, smc_error_t *err);

#endif
