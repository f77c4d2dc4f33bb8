/*
 * librdkafka's in-memory mock cluster for unit tests: one broker, owned by
 * a producer handle of its own. Header-only (each test is one executable).
 */
#ifndef SMC_TEST_MOCK_KAFKA_H
#define SMC_TEST_MOCK_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <string.h>

#include "kafka/kconf.h"

typedef struct test_mock {
  rd_kafka_t *rk; /* owns the mock cluster */
  rd_kafka_mock_cluster_t *mc;
  const char *bootstrap;
} test_mock_t;

static inline void test_mock_stop(test_mock_t *m) {
  if (m->mc)
    rd_kafka_mock_cluster_destroy(m->mc);
  if (m->rk)
    rd_kafka_destroy(m->rk);
  memset(m, 0, sizeof *m);
}

/* A cluster with topics[0..] (NULL-terminated) of `partitions` each, and
 * librdkafka's log at warnings. 0, or -1 (m stopped). */
static inline int test_mock_start(test_mock_t *m, const char *const *topics, int partitions) {
  char errstr[256];
  smc_kconf_set_log_level(2);
  rd_kafka_conf_t *conf = smc_kconf_new("", NULL, errstr, sizeof errstr);
  m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!m->rk || !(m->mc = rd_kafka_mock_cluster_new(m->rk, 1)))
    return test_mock_stop(m), -1;
  m->bootstrap = rd_kafka_mock_cluster_bootstraps(m->mc);
  for (int i = 0; topics[i]; i++)
    if (rd_kafka_mock_topic_create(m->mc, topics[i], partitions, 1))
      return test_mock_stop(m), -1;
  return 0;
}

#endif
