/* The worker node: copies its configuration and runs the roles (node.h). */
#include "node/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/vote_sig.h"
#include "kafka/admin.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"
#include "kafka/txn.h"
#include "node/heartbeat.h"
#include "node/log.h"
#include "base/metrics.h"
#include "node/replay.h"
#include "node/roles.h"

#ifndef SMC_ROCKSDB_VERSION /* CMakeLists.txt reads it from rocksdb/version.h */
#define SMC_ROCKSDB_VERSION "unknown"
#endif

struct smc_node {
  smc_node_config_t cfg; /* every string is an owned copy */
  char **props;          /* owned copy of cfg.kafka_props */
  smc_committer_t *committer;
  smc_voter_t *voter;
  smc_heartbeat_t *heartbeat;
};

void smc_node_config_default(smc_node_config_t *c) {
  *c = (smc_node_config_t){.prefix = "smc.",
                           .node_id = "node",
                           .data_dir = "./smc-data",
                           .committer = 1,
                           .vote_hook_timeout_ms = 5000,
                           .commit_interval_ms = 10,
                           .commit_max_interval_ms = 100,
                           .commit_max_records = 1000,
                           .changelog = 1,
                           .tick_ms = 200,
                           .session_timeout_ms = 10000,
                           .txn_deadline_ms = SMC_TXN_DEADLINE_MS,
                           .heartbeat_ms = 2000,
                           .log_level = SMC_LOG_INFO,
                           .store_cache_bytes = (size_t)16 << 20,
                           .store_write_buffer_bytes = (size_t)4 << 20};
  smc_fold_config_t fc;
  smc_fold_config_default(&fc);
  c->max_event_bytes = fc.max_event_bytes;
  c->max_queue = fc.max_queue;
  c->limits = fc.limits;
}

void smc_node_fold_config(const smc_node_config_t *cfg, int32_t partitions, smc_fold_config_t *fc) {
  smc_fold_config_default(fc);
  fc->partitions = partitions;
  if (cfg->max_event_bytes)
    fc->max_event_bytes = cfg->max_event_bytes;
  if (cfg->max_queue)
    fc->max_queue = cfg->max_queue;
  fc->registration_key = cfg->registration_key;
  const smc_limits_t *l = &cfg->limits;
  if (l->expr_steps)
    fc->limits.expr_steps = l->expr_steps;
  if (l->regex_match_limit)
    fc->limits.regex_match_limit = l->regex_match_limit;
  if (l->regex_depth_limit)
    fc->limits.regex_depth_limit = l->regex_depth_limit;
  if (l->definition_max_bytes)
    fc->limits.definition_max_bytes = l->definition_max_bytes;
  if (l->data_max_bytes)
    fc->limits.data_max_bytes = l->data_max_bytes;
}

int smc_reply_to_allowed(const char *topic, const char *prefix, const char *allow) {
  if (!topic || !*topic)
    return 0;
  if (!prefix || !*prefix)
    prefix = "smc.";
  if (!strncmp(topic, prefix, strlen(prefix)))
    return 0; /* the cluster's own topics: never */
  if (!allow || !*allow)
    return 1;
  size_t tl = strlen(topic);
  for (const char *p = allow; *p;) {
    size_t n = strcspn(p, ",");
    const char *e = p + n;
    while (p < e && *p == ' ')
      p++;
    size_t m = (size_t)(e - p);
    while (m > 0 && p[m - 1] == ' ')
      m--;
    if (m > 0 && p[m - 1] == '*' ? (tl >= m - 1 && !strncmp(topic, p, m - 1))
                                 : (m > 0 && m == tl && !strncmp(topic, p, m)))
      return 1;
    p = *e ? e + 1 : e;
  }
  return 0;
}

char *smc_node_group_name(const char *prefix, const char *role) {
  if (!prefix || !*prefix)
    prefix = "smc.";
  size_t pl = strlen(prefix);
  while (pl > 0 && prefix[pl - 1] == '.')
    pl--;
  size_t n = pl + strlen(role) + 2;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%.*s-%s", (int)pl, prefix, role);
  return s;
}

static smc_kafka_t *group_consumer(const smc_node_config_t *cfg, const char *group,
                                   const char *client_id, smc_kafka_rebalance_fn rebalance_cb,
                                   const smc_kafka_group_handler_t *h, const char *const *props,
                                   void *opaque, const char *what, smc_error_t *err) {
  char errstr[512];
  char sto[32];
  snprintf(sto, sizeof sto, "%d", cfg->session_timeout_ms);
  /* Prefetch bounds (queued.*): librdkafka's defaults, 100,000 messages per
   * partition and 64 MB, let a deep backlog fill the worker's memory with
   * fetched records the fold needs seconds to reach. */
  const char *kv[] = {"partition.assignment.strategy",
                      "cooperative-sticky",
                      "session.timeout.ms",
                      sto,
                      "queued.min.messages",
                      "10000",
                      "queued.max.messages.kbytes",
                      "16384",
                      NULL};
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_CONSUMER,
                           .bootstrap = cfg->bootstrap,
                           .group_id = group,
                           .client_id = client_id,
                           .eof = 1,
                           .base = kv,
                           .props = props ? props : cfg->kafka_props,
                           .rebalance_cb = rebalance_cb,
                           .group = h,
                           .opaque = opaque};
  smc_kafka_t *rk = smc_kafka_open(&spec, errstr, sizeof errstr);
  if (!rk)
    smc_error_set(err, SMC_EKAFKA, NULL, "%s: %s", what, errstr);
  return rk;
}

smc_kafka_t *smc_node_group_consumer(const smc_node_config_t *cfg, const char *group,
                                     const char *client_id, smc_kafka_rebalance_fn rebalance_cb,
                                     void *opaque, const char *what, smc_error_t *err) {
  return group_consumer(cfg, group, client_id, rebalance_cb, NULL, NULL, opaque, what, err);
}

smc_kafka_t *smc_node_group_member(const smc_node_config_t *cfg, const char *group,
                                   const char *client_id, const smc_kafka_group_handler_t *h,
                                   const char *const *props, void *opaque, const char *what,
                                   smc_error_t *err) {
  return group_consumer(cfg, group, client_id, NULL, h, props, opaque, what, err);
}

void smc_node_store_options(const smc_node_config_t *cfg, smc_store_options_t *o) {
  smc_store_options_default(o);
  if (cfg->store_cache_bytes)
    o->block_cache_bytes = cfg->store_cache_bytes;
  if (cfg->store_write_buffer_bytes)
    o->write_buffer_bytes = cfg->store_write_buffer_bytes;
}

int smc_node_mkdirs(const char *path) {
  char tmp[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(tmp, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (tmp[i] == '/' || tmp[i] == '\0') {
      char c = tmp[i];
      tmp[i] = '\0';
      if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return -1;
      tmp[i] = c;
    }
  }
  return 0;
}

static char *dup_or_null(const char *s, int *oom) {
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    *oom = 1;
  return d;
}

static void node_free(smc_node_t *n) {
  if (!n)
    return;
  free((char *)n->cfg.bootstrap);
  free((char *)n->cfg.prefix);
  free((char *)n->cfg.node_id);
  free((char *)n->cfg.data_dir);
  free((char *)n->cfg.voter_id);
  free((char *)n->cfg.vote_hook);
  free((char *)n->cfg.vote_key);
  free((char *)n->cfg.reply_to_allow);
  free((char *)n->cfg.registration_key);
  for (size_t i = 0; n->props && n->props[i]; i++)
    free(n->props[i]);
  free(n->props);
  free(n);
}

static int valid_id(const char *s) {
  if (!s || !*s || strlen(s) > 200)
    return 0;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '_' || *p == '.'))
      return 0;
  return 1;
}

/* HELP and TYPE lines for every metric the roles record (idempotent). */
static void describe_metrics(void) {
  static const struct {
    const char *name;
    smc_metric_type_t type;
    const char *help;
  } m[] = {
      {"smc_records_folded_total", SMC_METRIC_COUNTER,
       "Records of the proposals topic folded, by role."},
      {"smc_confirmations_total", SMC_METRIC_COUNTER,
       "Confirmations published, by machine and outcome (committed, rejected, expired, or "
       "duplicate: an id decided before, answered again)."},
      {"smc_proposals_awaiting_votes_total", SMC_METRIC_COUNTER,
       "Proposals that became active and wait for votes."},
      {"smc_replies_total", SMC_METRIC_COUNTER, "Read replies published."},
      {"smc_votes_total", SMC_METRIC_COUNTER, "Votes this node's voter produced, by accept."},
      {"smc_events_dropped_total", SMC_METRIC_COUNTER,
       "Records of the proposals topic, or copies of outputs, dropped unanswered, by reason "
       "(bad_request, too_large, wrong_partition, ...; reply_to_forbidden, reply_to_missing)."},
      {"smc_votes_bad_signature_total", SMC_METRIC_COUNTER,
       "Votes of keyed voters not counted: unsigned or forged (bad_signature)."},
      {"smc_txn_commits_total", SMC_METRIC_COUNTER, "Committer transactions committed."},
      {"smc_txn_commit_seconds", SMC_METRIC_HISTOGRAM,
       "Committer transaction latency: handing a batch over to its commit returning."},
      {"smc_txn_records_total", SMC_METRIC_COUNTER, "Records committed in committer transactions."},
      {"smc_store_write_seconds", SMC_METRIC_HISTOGRAM,
       "One atomic batch write to the RocksDB state store (WAL and memtables; a stall "
       "waiting for a flush or compaction shows here), by role."},
      {"smc_committer_txn_aborts_total", SMC_METRIC_COUNTER, "Committer transactions aborted."},
      {"smc_committer_producer_rebuilds_total", SMC_METRIC_COUNTER,
       "Transactional producers re-created after fatal, fenced or indefinite errors."},
      {"smc_committer_producer_abandoned_total", SMC_METRIC_COUNTER,
       "Transactional producers abandoned by the watchdog: a call ran past "
       "--txn-deadline-ms (a new producer fenced each one)."},
      {"smc_ticks_total", SMC_METRIC_COUNTER, "Tick events written for pending timers."},
      {"smc_timer_pending", SMC_METRIC_GAUGE, "1 when a timer is pending in the partition."},
      {"smc_fold_lag_records", SMC_METRIC_GAUGE, "Records of the partition not folded yet."},
      {"smc_build_info", SMC_METRIC_GAUGE,
       "Always 1; the labels say smc's version and the librdkafka and RocksDB it runs on."},
      {"smc_heartbeats_total", SMC_METRIC_COUNTER,
       "Node table records this node wrote to <prefix>nodes."},
      {"smc_local_reads_total", SMC_METRIC_COUNTER,
       "Reads the committer answered from its fold for a gateway of this process."},
  };
  for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
    smc_metrics_describe(m[i].name, m[i].type, m[i].help);
  /* Counters start at 0 for the label sets known now (a rate() needs the 0);
   * smc_confirmations_total gets its machines' series as they are registered
   * (the gateway's catalog) or first counted. */
  static const char *const zero[][2] = {
      {"smc_records_folded_total", "role=\"committer\""},
      {"smc_records_folded_total", "role=\"voter\""},
      {"smc_proposals_awaiting_votes_total", NULL},
      {"smc_replies_total", NULL},
      {"smc_votes_total", "accept=\"false\""},
      {"smc_votes_total", "accept=\"true\""},
      {"smc_votes_bad_signature_total", NULL},
      {"smc_events_dropped_total", "reason=\"bad_request\""},
      {"smc_events_dropped_total", "reason=\"too_large\""},
      {"smc_events_dropped_total", "reason=\"wrong_partition\""},
      {"smc_events_dropped_total", "reason=\"reply_to_forbidden\""},
      {"smc_events_dropped_total", "reason=\"reply_to_missing\""},
      {"smc_txn_commits_total", NULL},
      {"smc_txn_records_total", NULL},
      {"smc_committer_txn_aborts_total", NULL},
      {"smc_committer_producer_rebuilds_total", NULL},
      {"smc_committer_producer_abandoned_total", NULL},
      {"smc_ticks_total", NULL},
      {"smc_heartbeats_total", NULL},
      {"smc_local_reads_total", NULL},
  };
  for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
    smc_metrics_counter_add(zero[i][0], zero[i][1], 0);
  char labels[256];
  snprintf(labels, sizeof labels, "librdkafka=\"%s\",rocksdb=\"%s\",version=\"%s\"",
           smc_kafka_version(), SMC_ROCKSDB_VERSION, SMC_VERSION);
  smc_metrics_gauge_set("smc_build_info", labels, 1);
}

/*
 * The fold's clock is the largest record timestamp, so the proposals topic
 * must have the broker stamp every record (LogAppendTime): with producer
 * timestamps (CreateTime) any client moves the clock, fires timers early,
 * defeats duplicate detection and lets replicas disagree. Refuse to serve
 * such a topic (SMC_EINVALID_ARGUMENT). A topic that does not exist yet is
 * left to `smc topics create` (which sets LogAppendTime), with a warning.
 */
static int check_timestamp_type(const smc_node_config_t *cfg, smc_error_t *err) {
  char *topic = smc_topic(cfg->prefix, "proposals");
  if (!topic)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  char v[64];
  smc_error_t e;
  smc_error_clear(&e);
  int rc = smc_topic_config_get(cfg->bootstrap, cfg->kafka_props, topic, "message.timestamp.type",
                                v, sizeof v, 15000, &e);
  if (rc == SMC_ENOT_FOUND) {
    smc_log(SMC_LOG_WARN, cfg->node_id, -1,
            "%s: cannot check message.timestamp.type (%s); it must be LogAppendTime", topic,
            e.message);
    rc = 0;
  } else if (rc == SMC_EUNAVAILABLE) { /* no broker answered: say so, in one line */
    rc = smc_kafka_topic_error(err, rc, topic, cfg->bootstrap);
  } else if (rc < 0) {
    rc = smc_error_set(err, rc, NULL, "cannot check the timestamps of %s: %s", topic, e.message);
  } else if (strcmp(v, "LogAppendTime")) {
    rc = smc_error_set(err, SMC_EINVALID_ARGUMENT, "message.timestamp.type",
                       "%s has message.timestamp.type=%s: producers choose its record "
                       "timestamps, which are the fold's clock; refusing to serve it (set "
                       "message.timestamp.type=LogAppendTime, as `smc topics create` does)",
                       topic, v);
  }
  free(topic);
  return rc;
}

int smc_node_start(const smc_node_config_t *cfg, smc_node_t **out, smc_error_t *err) {
  *out = NULL;
  describe_metrics();
  if (!cfg)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no configuration");
  if (!valid_id(cfg->node_id))
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, "node_id",
                         "node id must be 1-200 of [A-Za-z0-9._-]");
  if (cfg->voter_id && !valid_id(cfg->voter_id))
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, "voter_id",
                         "voter id must be 1-200 of [A-Za-z0-9._-]");
  if (!cfg->committer && !cfg->voter_id)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL,
                         "no role: enable the committer or give a voter id");
  if (cfg->commit_interval_ms < 1 || cfg->commit_max_interval_ms < 1 ||
      cfg->commit_max_records < 1 || cfg->tick_ms < 1 || cfg->session_timeout_ms < 1000 ||
      cfg->vote_hook_timeout_ms < 1 || cfg->txn_deadline_ms < 1000)
    return smc_error_set(
        err, SMC_EINVALID_ARGUMENT, NULL,
        "intervals must be positive (session timeout and transaction deadline at least 1000 ms)");
  if (cfg->voter_id && cfg->vote_key) { /* a local mistake is said before any broker is asked */
    EVP_PKEY *k = NULL;
    int krc = smc_vote_sig_load_private(cfg->vote_key, &k, err);
    EVP_PKEY_free(k);
    if (krc)
      return krc;
  }
  if (cfg->registration_key) { /* say why here, not as a failed fold */
    EVP_PKEY *k = NULL;
    smc_error_t kerr;
    smc_error_clear(&kerr);
    if (smc_vote_sig_parse_public(cfg->registration_key, &k, &kerr))
      return smc_error_set(err, SMC_EINVALID_ARGUMENT, "registration_key",
                           "the registration key is not an Ed25519 public key: %s", kerr.message);
    EVP_PKEY_free(k);
  }
  smc_node_t *n = calloc(1, sizeof *n);
  if (!n)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  int oom = 0, rc = 0;
  n->cfg = *cfg;
  n->cfg.bootstrap = dup_or_null(cfg->bootstrap, &oom);
  n->cfg.prefix = dup_or_null(cfg->prefix && *cfg->prefix ? cfg->prefix : "smc.", &oom);
  n->cfg.node_id = dup_or_null(cfg->node_id, &oom);
  n->cfg.data_dir =
      dup_or_null(cfg->data_dir && *cfg->data_dir ? cfg->data_dir : "./smc-data", &oom);
  n->cfg.voter_id = dup_or_null(cfg->voter_id, &oom);
  n->cfg.vote_hook = dup_or_null(cfg->vote_hook, &oom);
  n->cfg.vote_key = dup_or_null(cfg->vote_key, &oom);
  n->cfg.reply_to_allow = dup_or_null(cfg->reply_to_allow, &oom);
  n->cfg.registration_key = dup_or_null(cfg->registration_key, &oom);
  size_t np = 0;
  while (cfg->kafka_props && cfg->kafka_props[np])
    np++;
  if (np % 2) {
    node_free(n);
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "kafka properties must be pairs");
  }
  n->props = calloc(np + 1, sizeof *n->props);
  if (!n->props)
    oom = 1;
  for (size_t i = 0; n->props && i < np; i++)
    n->props[i] = dup_or_null(cfg->kafka_props[i], &oom);
  n->cfg.kafka_props = (const char *const *)n->props;
  if (oom) {
    node_free(n);
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  }
  smc_log_set_level(cfg->log_level);
  smc_msgrec_clamp_time(n->cfg.trust_producer_time);
  if (!n->cfg.trust_producer_time && (rc = check_timestamp_type(&n->cfg, err)) < 0)
    goto fail;
  if (n->cfg.committer && (rc = smc_committer_start(&n->cfg, &n->committer, err)) < 0)
    goto fail;
  if (n->cfg.voter_id && (rc = smc_voter_start(&n->cfg, &n->voter, err)) < 0)
    goto fail;
  if (n->cfg.heartbeat_ms > 0 && (rc = smc_heartbeat_start(&n->cfg, n, &n->heartbeat, err)) < 0)
    goto fail;
  smc_log(SMC_LOG_INFO, n->cfg.node_id, -1,
          "node started (committer %s, voter %s, prefix %s, smc %s, librdkafka %s)",
          n->committer ? "on" : "off", n->voter ? n->cfg.voter_id : "off", n->cfg.prefix,
          SMC_VERSION, smc_kafka_version());
  *out = n;
  return 0;
fail:
  smc_voter_stop(n->voter);
  smc_committer_stop(n->committer);
  node_free(n);
  return rc;
}

void smc_node_stop(smc_node_t *n) {
  if (!n)
    return;
  smc_log(SMC_LOG_INFO, n->cfg.node_id, -1, "node stopping");
  smc_heartbeat_stop(n->heartbeat);
  smc_voter_stop(n->voter);
  smc_committer_stop(n->committer);
  smc_log(SMC_LOG_INFO, n->cfg.node_id, -1, "node stopped");
  node_free(n);
}

size_t smc_node_partitions(smc_node_t *n, int32_t *out, size_t max) {
  return n && n->committer ? smc_committer_partitions(n->committer, out, max) : 0;
}

int64_t smc_node_lag(smc_node_t *n, int32_t p) {
  return n && n->committer ? smc_committer_lag(n->committer, p) : -1;
}

void smc_node_set_http(smc_node_t *n, const char *address) {
  if (n)
    smc_heartbeat_set_http(n->heartbeat, address);
}

int smc_node_healthy(smc_node_t *n) {
  if (!n)
    return 0;
  if (n->committer && !smc_committer_healthy(n->committer))
    return 0;
  if (n->voter && !smc_voter_healthy(n->voter))
    return 0;
  return 1;
}

const char *smc_node_id(const smc_node_t *n) { return n ? n->cfg.node_id : NULL; }

int smc_node_store_open(const smc_node_config_t *cfg, const char *dir, smc_store_t **out,
                        smc_error_t *err) {
  if (smc_node_mkdirs(cfg->data_dir) < 0)
    return smc_error_set(err, SMC_EIO, NULL, "data dir %s: %s", cfg->data_dir, strerror(errno));
  smc_store_options_t so;
  smc_node_store_options(cfg, &so);
  return smc_store_open(dir, &so, out, err);
}

int32_t smc_node_topic_partitions(const smc_node_config_t *cfg, smc_kafka_t *rk, const char *topic,
                                  smc_error_t *err) {
  int32_t n = smc_kafka_partitions(rk, topic, 10000);
  return n < 0 ? smc_kafka_topic_error(err, n, topic, cfg->bootstrap) : n;
}

int smc_node_fold_new(const smc_node_config_t *cfg, int32_t n,
                      void (*log)(void *opaque, const smc_fold_log_t *line), void *opaque,
                      smc_fold_t **out, smc_error_t *err) {
  smc_fold_config_t fc;
  smc_node_fold_config(cfg, n, &fc);
  int rc = smc_fold_new(&fc, out);
  if (rc < 0)
    return smc_error_set(err, rc, NULL, "fold: %s", smc_strerror(rc));
  smc_fold_set_logger(*out, log, opaque);
  return 0;
}

int smc_node_thread_start(pthread_t *t, void *(*main)(void *), void *arg, smc_error_t *err) {
  int rc = pthread_create(t, NULL, main, arg);
  return rc ? smc_error_set(err, SMC_EIO, NULL, "pthread_create: %s", strerror(rc)) : 0;
}
