/* librdkafka configuration, logging, topic names (kconf.h). */
#include "kafka/kconf.h"

#include <pthread.h>
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

/* The last error librdkafka logged (printed or not), for one-line reports. */
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_error[512];

void smc_kconf_last_error(char *out, size_t n) {
  pthread_mutex_lock(&last_lock);
  snprintf(out, n, "%s", last_error);
  pthread_mutex_unlock(&last_lock);
}

void smc_kconf_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  if (level <= 3) {
    pthread_mutex_lock(&last_lock);
    snprintf(last_error, sizeof(last_error), "%s", buf ? buf : "");
    for (char *p = last_error; *p; p++)
      if ((unsigned char)*p < 0x20)
        *p = ' ';
    pthread_mutex_unlock(&last_lock);
  }
  if (level > current_log_level())
    return;
  smc_logfield_t f[2] = {{"kafka", rk ? rd_kafka_name(rk) : "-", 0, 0},
                         {"facility", fac ? fac : "-", 0, 0}};
  smc_logline_write(level_name(level), f, 2, buf ? buf : "");
}

int smc_kconf_consumer_only(const char *key) {
  static const char *const keys[] = {"group.id",
                                     "group.instance.id",
                                     "isolation.level",
                                     "auto.offset.reset",
                                     "enable.auto.commit",
                                     "enable.auto.offset.store",
                                     "auto.commit.interval.ms",
                                     "enable.partition.eof",
                                     "fetch.wait.max.ms",
                                     "fetch.min.bytes",
                                     "fetch.max.bytes",
                                     "fetch.message.max.bytes",
                                     "fetch.error.backoff.ms",
                                     "queued.min.messages",
                                     "queued.max.messages.kbytes",
                                     "session.timeout.ms",
                                     "heartbeat.interval.ms",
                                     "max.poll.interval.ms",
                                     "partition.assignment.strategy",
                                     "check.crcs",
                                     NULL};
  for (size_t i = 0; keys[i]; i++)
    if (!strcmp(key, keys[i]))
      return 1;
  return 0;
}

int smc_kafka_topic_error(smc_error_t *err, int code, const char *topic, const char *bootstrap) {
  char last[512];
  smc_kconf_last_error(last, sizeof(last));
  if (code == SMC_ENOT_FOUND)
    return smc_error_set(err, code, NULL,
                         "topic %s does not exist (create the topics with `smc topics create`)",
                         topic);
  if (code == SMC_EUNAVAILABLE)
    return smc_error_set(err, code, NULL, "the Kafka broker is unreachable (bootstrap %s)%s%s",
                         bootstrap && *bootstrap ? bootstrap : smc_kafka_default_bootstrap(),
                         last[0] ? ": " : "", last);
  return smc_error_set(err, code, NULL, "topic %s: %s", topic, smc_strerror(code));
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
  /* TCP_NODELAY: smc's requests are small and latency-bound (a proposal, an
   * offset query); with Nagle a request sent while the previous one is
   * unacknowledged waits for that ACK, up to the peer's delayed-ACK time */
  if (rd_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr, errlen) != RD_KAFKA_CONF_OK)
    goto fail;
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
