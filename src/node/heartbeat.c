/*
 * The node table's writer (node.h, "Node table"): every heartbeat_ms a node
 * writes one record about itself to the compacted <prefix>nodes topic, keyed
 * by its node id, and a last one marked "stopped" when it stops cleanly:
 *
 *   {"type":"node","node":"n1","roles":["committer","http"],
 *    "http":"127.0.0.1:8080","partitions":[0,3],"lag":{"0":0,"3":12},
 *    "voter":null,"version":"0.1.0","started":1796..,"time":1796..,
 *    "heartbeat_ms":2000,"stopped":false}
 *
 * "time" is the node's wall clock (ms) when it wrote the record. Readers (the
 * gateway's GET /nodes and its forwarding, `smc status`) take a node as down
 * when no record newer than their down-after setting arrived. A heartbeat is
 * best effort: a cluster without the topic runs as before (one warning).
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"
#include "node/heartbeat.h"
#include "node/log.h"
#include "base/metrics.h"
#include "node/roles.h"

struct smc_heartbeat {
  const smc_node_config_t *cfg;
  smc_node_t *node;
  char *topic;
  smc_kafka_t *rk;
  pthread_t thread;
  int started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
  char *http; /* under mu */
  int64_t started_ms;
  int warned;
};

/* The record of this node now (malloc'd text). */
static char *record(smc_heartbeat_t *h, int stopped) {
  json_t *j = json_object(), *roles = json_array(), *parts = json_array(), *lag = json_object();
  int32_t own[4096];
  size_t n = smc_node_partitions(h->node, own, 4096);
  if (n > 4096)
    n = 4096;
  if (h->cfg->committer)
    json_array_append_new(roles, json_string("committer"));
  if (h->cfg->voter_id)
    json_array_append_new(roles, json_string("voter"));
  pthread_mutex_lock(&h->mu);
  if (h->http)
    json_array_append_new(roles, json_string("http"));
  json_object_set_new(j, "http", h->http ? json_string(h->http) : json_null());
  pthread_mutex_unlock(&h->mu);
  for (size_t i = 0; i < n && !stopped; i++) {
    char key[16];
    json_array_append_new(parts, json_integer(own[i]));
    snprintf(key, sizeof key, "%d", (int)own[i]);
    int64_t l = smc_node_lag(h->node, own[i]);
    json_object_set_new(lag, key, l >= 0 ? json_integer(l) : json_null());
  }
  json_object_set_new(j, "type", json_string("node"));
  json_object_set_new(j, "node", json_string(h->cfg->node_id));
  json_object_set_new(j, "roles", roles);
  json_object_set_new(j, "partitions", parts);
  json_object_set_new(j, "lag", lag);
  json_object_set_new(j, "voter", h->cfg->voter_id ? json_string(h->cfg->voter_id) : json_null());
  json_object_set_new(j, "version", json_string(SMC_VERSION));
  json_object_set_new(j, "started", json_integer(h->started_ms));
  json_object_set_new(j, "time", json_integer(smc_wall_ms()));
  json_object_set_new(j, "heartbeat_ms", json_integer(h->cfg->heartbeat_ms));
  json_object_set_new(j, "stopped", json_boolean(stopped));
  char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  return text;
}

static void beat(smc_heartbeat_t *h, int stopped) {
  char *text = record(h, stopped);
  if (!text)
    return;
  const char *id = h->cfg->node_id;
  const char *why;
  if (smc_kafka_produce(h->rk, h->topic, -1, id, strlen(id), text, strlen(text), &why) < 0 &&
      !h->warned++)
    smc_log(SMC_LOG_WARN, id, -1, "heartbeat to %s: %s", h->topic, why);
  free(text);
}

static void delivered(void *opaque, const char *error) {
  smc_heartbeat_t *h = opaque;
  if (error && !h->warned++)
    smc_log(SMC_LOG_WARN, h->cfg->node_id, -1,
            "heartbeat to %s: %s (the node table will not show this node; create the topics "
            "with `smc topics create`)",
            h->topic, error);
  else if (!error)
    smc_metrics_counter_add("smc_heartbeats_total", NULL, 1);
}

static void *heartbeat_main(void *arg) {
  smc_heartbeat_t *h = arg;
  pthread_mutex_lock(&h->mu);
  while (!h->stop) {
    pthread_mutex_unlock(&h->mu);
    beat(h, 0);
    smc_kafka_poll(h->rk, 0);
    pthread_mutex_lock(&h->mu);
    struct timespec ts = smc_deadline_ts(CLOCK_REALTIME, h->cfg->heartbeat_ms);
    if (!h->stop)
      pthread_cond_timedwait(&h->cv, &h->mu, &ts);
  }
  pthread_mutex_unlock(&h->mu);
  beat(h, 1);
  smc_kafka_flush(h->rk, 2000);
  return NULL;
}

int smc_heartbeat_start(const smc_node_config_t *cfg, smc_node_t *node, smc_heartbeat_t **out,
                        smc_error_t *err) {
  *out = NULL;
  smc_heartbeat_t *h = calloc(1, sizeof *h);
  if (!h)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  h->cfg = cfg;
  h->node = node;
  h->started_ms = smc_wall_ms();
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  char errstr[512];
  if (!(h->topic = smc_topic(cfg->prefix, "nodes")))
    goto oom;
  const char *kv[] = {"enable.idempotence", "true",  "linger.ms", "5",
                      "message.timeout.ms", "30000", NULL};
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_PRODUCER,
                           .bootstrap = cfg->bootstrap,
                           .base = kv,
                           .props = cfg->kafka_props,
                           .report_cb = delivered,
                           .opaque = h};
  if (!(h->rk = smc_kafka_open(&spec, errstr, sizeof errstr)))
    goto kafka;
  int rc = smc_node_thread_start(&h->thread, heartbeat_main, h, err);
  if (rc < 0) {
    smc_heartbeat_stop(h);
    return rc;
  }
  h->started = 1;
  *out = h;
  return 0;
oom:
  smc_heartbeat_stop(h);
  return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
kafka:
  smc_heartbeat_stop(h);
  return smc_error_set(err, SMC_EKAFKA, NULL, "heartbeat producer: %s", errstr);
}

void smc_heartbeat_set_http(smc_heartbeat_t *h, const char *address) {
  if (!h)
    return;
  char *copy = address ? strdup(address) : NULL;
  pthread_mutex_lock(&h->mu);
  free(h->http);
  h->http = copy;
  pthread_cond_signal(&h->cv); /* announce it now */
  pthread_mutex_unlock(&h->mu);
}

void smc_heartbeat_stop(smc_heartbeat_t *h) {
  if (!h)
    return;
  if (h->started) {
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
  }
  if (h->rk)
    smc_kafka_close(h->rk);
  free(h->topic);
  free(h->http);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
  free(h);
}
