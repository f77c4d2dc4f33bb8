/* librdkafka configuration, logging, topic names (kconf.h). */
#include "kafka/kconf.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/logline.h"
#include "smc/error.h"

static atomic_int log_level = -1;

void smc_kconf_set_log_level(int level) { atomic_store(&log_level, level); }

static int current_log_level(void) {
  int l = atomic_load(&log_level);
  if (l >= 0)
    return l;
  const char *env = getenv("SMC_KAFKA_LOG_LEVEL");
  l = env && *env ? atoi(env) : 6;
  atomic_store(&log_level, l);
  return l;
}

static const char *level_name(int level) {
  if (level <= 3)
    return "error";
  if (level == 4)
    return "warn";
  if (level <= 6)
    return "info";
  return "debug";
}

void smc_kconf_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  if (level > current_log_level())
    return;
  smc_logfield_t f[2] = {{"kafka", rk ? rd_kafka_name(rk) : "-", 0, 0},
                         {"facility", fac ? fac : "-", 0, 0}};
  smc_logline_write(level_name(level), f, 2, buf ? buf : "");
}

const char *smc_kafka_default_bootstrap(void) {
  const char *b = getenv("SMC_BOOTSTRAP");
  return b && *b ? b : "localhost:9092";
}

rd_kafka_conf_t *smc_kconf_new(const char *bootstrap, const char *const *props, char *errstr,
                               size_t errlen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (!conf) {
    snprintf(errstr, errlen, "out of memory");
    return NULL;
  }
  if (!bootstrap || !*bootstrap)
    bootstrap = smc_kafka_default_bootstrap();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, errlen) != RD_KAFKA_CONF_OK)
    goto fail;
  rd_kafka_conf_set_log_cb(conf, smc_kconf_log_cb);
  for (size_t i = 0; props && props[i]; i += 2) {
    if (!props[i + 1]) {
      snprintf(errstr, errlen, "property '%s' has no value", props[i]);
      goto fail;
    }
    if (rd_kafka_conf_set(conf, props[i], props[i + 1], errstr, errlen) != RD_KAFKA_CONF_OK)
      goto fail;
  }
  return conf;
fail:
  rd_kafka_conf_destroy(conf);
  return NULL;
}

int smc_kconf_producer(rd_kafka_conf_t *conf, char *errstr, size_t errlen) {
  if (rd_kafka_conf_set(conf, "partitioner", "murmur2_random", errstr, errlen) != RD_KAFKA_CONF_OK)
    return -1;
  return 0;
}

char *smc_topic(const char *prefix, const char *name) {
  if (!prefix || !*prefix)
    prefix = SMC_TOPIC_PREFIX_DEFAULT;
  size_t n = strlen(prefix) + strlen(name) + 1;
  char *t = malloc(n);
  if (t)
    snprintf(t, n, "%s%s", prefix, name);
  return t;
}

int32_t smc_kafka_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms) {
  /* All topics: asking for one topic by name may make a broker with
   * auto.create.topics.enable create it. */
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
  if (e == RD_KAFKA_RESP_ERR__TIMED_OUT || e == RD_KAFKA_RESP_ERR__TRANSPORT ||
      e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    return SMC_EUNAVAILABLE; /* no broker answered */
  if (e)
    return SMC_EKAFKA;
  int32_t n = SMC_ENOT_FOUND;
  for (int i = 0; i < md->topic_cnt; i++) {
    if (strcmp(md->topics[i].topic, topic))
      continue;
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        md->topics[i].partition_cnt == 0)
      n = SMC_ENOT_FOUND;
    else if (md->topics[i].err)
      n = SMC_EKAFKA;
    else
      n = md->topics[i].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  return n;
}
