/*
 * smc worker node: wires the roles of one worker process together.
 *
 * A node runs, each in its own thread, the committer role (consumer group
 * "<prefix>committer", exactly-once fold + confirmations) and/or the voter
 * role (consumer group "<prefix>voter-<id>", fold + votes). The HTTP gateway
 * is started separately by the CLI (src/gateway).
 *
 * Ownership: the config strings are copied by smc_node_start; the caller may
 * free them afterwards. smc_node_stop frees the node.
 */
#ifndef SMC_NODE_NODE_H
#define SMC_NODE_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "smc/error.h"
#include "smc/fold.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smc_node smc_node_t;

typedef struct smc_node_config {
  const char *bootstrap;
  const char *const *kafka_props; /* k,v,...,NULL passthrough to librdkafka */
  /* non-NULL: the committer's consumer takes these instead of kafka_props
   * (smc dev: a shorter fetch wait, which the mock cluster needs) */
  const char *const *committer_kafka_props;
  const char *prefix;         /* topic prefix, default "smc." */
  const char *node_id;        /* for logs, /info, transactional.id = "smc-committer-<node_id>" */
  const char *data_dir;       /* RocksDB dirs: <data_dir>/committer, <data_dir>/voter-<id> */
  int committer;              /* run the committer role */
  const char *voter_id;       /* non-NULL: run the voter role as this voter identity */
  const char *vote_key;       /* optional PEM Ed25519 private key: the voter signs its votes */
  const char *vote_hook;      /* optional command; proposal JSON on stdin; exit 0 accepts,
                                 else rejects with its stdout as the reason */
  int vote_hook_timeout_ms;   /* default 5000; a timeout rejects */
  int commit_interval_ms;     /* default 10 */
  int commit_max_interval_ms; /* default 100: when no record of the batch needs its
                                 confirmation soon (all carry smc-ack: decided) */
  int commit_max_records;     /* default 1000 */
  int tick_ms;                /* default 200 */
  int session_timeout_ms;     /* default 10000 */
  int txn_deadline_ms;        /* committer: the longest wait for one transactional call
                                 before its producer is abandoned (kafka/txn.h; 40000) */
  int log_level;              /* 0 error .. 3 debug */
  /* Memory of each RocksDB store the node opens (the committer's, the
   * voter's): the shared block cache, and the memtable size per column
   * family (all memtables of a store together stay under 4x that). */
  size_t store_cache_bytes;        /* default 16 MiB */
  size_t store_write_buffer_bytes; /* default 4 MiB */
  /* Topics a proposal's or read's reply_to may name: comma-separated names,
   * a trailing '*' matching a prefix ("orders.*,audit"); NULL or "" = any.
   * A topic under prefix never is: a reply_to naming one (smc.confirmations,
   * smc.machines, ...) is not published there (logged, counted in
   * smc_events_dropped_total{reason="reply_to_forbidden"}). Where copies go
   * decides nothing, so nodes may differ here; the fold's outputs do not. */
  const char *reply_to_allow;
  /* The proposals topic may keep producer timestamps (smc dev's mock
   * cluster): the committer and voter then skip the LogAppendTime check and
   * clamp each record's timestamp to this host's clock. Never in production:
   * replicas of the fold would see different clocks. */
  int trust_producer_time;
  /* The cluster's registration key (smc_fold_config_t registration_key):
   * base64 or PEM text; NULL = machine events need no signature. */
  const char *registration_key;
  /* Fold limits (docs/reliability.md "Limits"); 0 = the fold's default. Every
   * node of a cluster must use the same values: they decide outcomes. */
  size_t max_event_bytes; /* larger records are dropped as too_large (1 MiB) */
  size_t max_queue;       /* proposals queued per object, then queue_full (1000) */
  smc_limits_t limits;    /* expression steps, regex match/depth, definition, data */
  /* Optional (not copied; must outlive the node): the hub through which the
   * committer hands its decisions and reads to a gateway of this process
   * (src/node/answers.h). */
  struct smc_answers *answers;
  /* Node table (<prefix>nodes): a record about this node every heartbeat_ms
   * (default 2000; 0 = none). */
  int heartbeat_ms;
  /* Snapshots (src/node/snapshot.h): the committer writes the state its
   * batches touched to <prefix>changelog in each transaction and restores an
   * empty store from it. Default 1; 0 = off (every restore folds the log). */
  int changelog;
} smc_node_config_t;

/* Fill c with the defaults above (prefix "smc.", node_id "node", data_dir
 * "./smc-data", committer on, no voter). */
void smc_node_config_default(smc_node_config_t *c);

/* Validate cfg, open the stores and start the role threads. On success *out
 * holds the node; on failure nothing is left running and err says why. */
int smc_node_start(const smc_node_config_t *cfg, smc_node_t **out, smc_error_t *err);

/* Clean shutdown: commit (or abort) the open transaction, close the
 * consumers, join the threads, close the stores; frees n. NULL is accepted. */
void smc_node_stop(smc_node_t *n);

/* Partitions the committer owns now (restored and serving), sorted, up to
 * max of them into out; returns how many it owns (may exceed max). */
size_t smc_node_partitions(smc_node_t *n, int32_t *out, size_t max);

/* 1 while every started role is running; 0 once a role stopped on a fatal
 * error (the CLI then exits non-zero). */
int smc_node_healthy(smc_node_t *n);

/* Records of partition p the committer has not folded yet (its last
 * measure, about every second), or -1 when unknown or not served. */
int64_t smc_node_lag(smc_node_t *n, int32_t p);

/* The HTTP address of the gateway serving beside the node, for the node
 * table (copied; NULL = none). */
void smc_node_set_http(smc_node_t *n, const char *address);

/* Node id as configured (owned by n). */
const char *smc_node_id(const smc_node_t *n);

#ifdef __cplusplus
}
#endif
#endif
