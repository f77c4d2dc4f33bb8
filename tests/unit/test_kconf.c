/* Tests of the Kafka plumbing that need no broker: configuration, topic
 * names, the log line format, topic definitions, and that the producer
 * partitioner agrees with smc_partition_for (on librdkafka's mock cluster). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "kafka/admin.h"
#include "kafka/kconf.h"

static void assert_conf(rd_kafka_conf_t *conf, const char *key, const char *want) {
  char buf[512];
  size_t n = sizeof(buf);
  assert_int_equal(rd_kafka_conf_get(conf, key, buf, &n), RD_KAFKA_CONF_OK);
  assert_string_equal(buf, want);
}

static void test_topic_names(void **state) {
  (void)state;
  char *t = smc_topic(NULL, "proposals");
  assert_string_equal(t, "smc.proposals");
  free(t);
  t = smc_topic("", "replies");
  assert_string_equal(t, "smc.replies");
  free(t);
  t = smc_topic("t42.", "machines");
  assert_string_equal(t, "t42.machines");
  free(t);
}

static void test_conf_passthrough(void **state) {
  (void)state;
  char errstr[256];
  const char *props[] = {"client.id", "abc", "socket.timeout.ms", "1234", NULL};
  rd_kafka_conf_t *conf = smc_kconf_new("h1:9092,h2:9092", props, errstr, sizeof(errstr));
  assert_non_null(conf);
  assert_conf(conf, "bootstrap.servers", "h1:9092,h2:9092");
  assert_conf(conf, "client.id", "abc");
  assert_conf(conf, "socket.timeout.ms", "1234");
  assert_int_equal(smc_kconf_producer(conf, errstr, sizeof(errstr)), 0);
  assert_conf(conf, "partitioner", "murmur2_random");
  rd_kafka_conf_destroy(conf);

  /* a property librdkafka does not know: a clear error, no conf */
  const char *bad[] = {"no.such.property", "1", NULL};
  errstr[0] = '\0';
  assert_null(smc_kconf_new("h:1", bad, errstr, sizeof(errstr)));
  assert_non_null(strstr(errstr, "no.such.property"));
  /* an invalid value */
  const char *badv[] = {"socket.timeout.ms", "soon", NULL};
  assert_null(smc_kconf_new("h:1", badv, errstr, sizeof(errstr)));
  /* a key without a value */
  const char *odd[] = {"client.id", NULL};
  errstr[0] = '\0';
  assert_null(smc_kconf_new("h:1", odd, errstr, sizeof(errstr)));
  assert_non_null(strstr(errstr, "client.id"));
}

static void test_default_bootstrap(void **state) {
  (void)state;
  char errstr[256];
  unsetenv("SMC_BOOTSTRAP");
  assert_string_equal(smc_kafka_default_bootstrap(), "localhost:9092");
  setenv("SMC_BOOTSTRAP", "envhost:1234", 1);
  rd_kafka_conf_t *conf = smc_kconf_new(NULL, NULL, errstr, sizeof(errstr));
  assert_non_null(conf);
  assert_conf(conf, "bootstrap.servers", "envhost:1234");
  rd_kafka_conf_destroy(conf);
  unsetenv("SMC_BOOTSTRAP");
}

/* Capture what the log callback writes to stderr. */
static void test_log_line(void **state) {
  (void)state;
  char path[] = "/tmp/smc-kconf-log-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  smc_kconf_set_log_level(6);
  smc_kconf_log_cb(NULL, 4, "FAC", "broker went away");
  smc_kconf_log_cb(NULL, 7, "DBG", "filtered out");
  smc_kconf_log_cb(NULL, 3, "ERRF", "bad\nthing");
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char buf[1024] = {0};
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  unlink(path);
  assert_true(n > 0);
  /* the process's log format (text here): time, level, kafka, facility, msg */
  char *line2 = strchr(buf, '\n');
  assert_non_null(line2);
  *line2++ = '\0';
  assert_int_equal(strlen(buf) > 24 && buf[4] == '-' && buf[10] == 'T' && buf[23] == 'Z', 1);
  assert_string_equal(buf + 24, " level=warn kafka=- facility=FAC msg=\"broker went away\"");
  assert_null(strstr(line2, "filtered out"));
  assert_non_null(strstr(line2, " level=error kafka=- facility=ERRF msg=\"bad\\nthing\"\n"));
}

static void test_topic_defs_file(void **state) {
  (void)state;
  smc_topic_defs_t defs;
  smc_error_t err;
  smc_error_clear(&err);
  int rc = smc_topic_defs_load(SMC_SOURCE_DIR "/topics/topics.json", &defs, &err);
  if (rc)
    fail_msg("%s", err.message);
  assert_int_equal(defs.count, 6);
  const char *names[] = {"proposals", "confirmations", "replies", "machines", "nodes", "changelog"};
  for (size_t i = 0; i < 6; i++)
    assert_string_equal(defs.items[i].name, names[i]);
  assert_int_equal(defs.items[0].partitions, -1);
  assert_int_equal(defs.items[3].partitions, 1);
  /* proposals: kept forever, broker timestamps */
  int seen = 0;
  for (size_t j = 0; j < defs.items[0].nconfig; j++) {
    const char *k = defs.items[0].config[2 * j], *v = defs.items[0].config[2 * j + 1];
    if (!strcmp(k, "retention.ms"))
      assert_string_equal(v, "-1"), seen++;
    if (!strcmp(k, "message.timestamp.type"))
      assert_string_equal(v, "LogAppendTime"), seen++;
  }
  assert_int_equal(seen, 2);
  assert_string_equal(defs.items[2].config[1], "3600000");
  assert_string_equal(defs.items[3].config[1], "compact");
  assert_int_equal(defs.items[4].partitions, 1); /* nodes: the node table, compacted */
  assert_string_equal(defs.items[4].config[1], "compact");
  smc_topic_defs_close(&defs);

  smc_error_clear(&err);
  assert_int_equal(smc_topic_defs_load("/nonexistent/topics.json", &defs, &err), SMC_EIO);
}

static int parse_code(const char *json, char *msg, size_t msglen) {
  smc_topic_defs_t defs;
  smc_error_t err;
  smc_error_clear(&err);
  int rc = smc_topic_defs_parse(json, strlen(json), &defs, &err);
  if (!rc)
    smc_topic_defs_close(&defs);
  else
    snprintf(msg, msglen, "%s", err.message);
  return rc;
}

static void test_topic_defs_bad(void **state) {
  (void)state;
  char msg[512];
  assert_int_equal(parse_code("{", msg, sizeof msg), SMC_EBAD_VALUE);
  assert_int_equal(parse_code("[]", msg, sizeof msg), SMC_EBAD_VALUE);
  assert_int_equal(parse_code("{\"topics\":[]}", msg, sizeof msg), SMC_EBAD_VALUE);
  assert_int_equal(parse_code("{\"topics\":[{\"partitions\":1}]}", msg, sizeof msg),
                   SMC_EBAD_VALUE);
  assert_non_null(strstr(msg, "topics[0]"));
  assert_int_equal(parse_code("{\"topics\":[{\"name\":\"a\",\"partitions\":0}]}", msg, sizeof msg),
                   SMC_EBAD_VALUE);
  assert_int_equal(
      parse_code("{\"topics\":[{\"name\":\"a\",\"partitions\":\"M\"}]}", msg, sizeof msg),
      SMC_EBAD_VALUE);
  assert_int_equal(
      parse_code("{\"topics\":[{\"name\":\"a b\",\"partitions\":1}]}", msg, sizeof msg),
      SMC_EBAD_NAME);
  assert_int_equal(
      parse_code("{\"topics\":[{\"name\":\"a\",\"partitions\":1,\"config\":{\"x\":1}}]}", msg,
                 sizeof msg),
      SMC_EBAD_VALUE);
  assert_non_null(strstr(msg, "\"x\""));
  assert_int_equal(parse_code("{\"topics\":[{\"name\":\"a\",\"partitions\":1},"
                              "{\"name\":\"a\",\"partitions\":\"N\"}]}",
                              msg, sizeof msg),
                   SMC_EDUPLICATE_NAME);
  assert_int_equal(
      parse_code("{\"topics\":[{\"name\":\"a\",\"partitions\":\"N\"}]}", msg, sizeof msg), 0);
}

static void test_create_bad_options(void **state) {
  (void)state;
  smc_topic_defs_t defs;
  const char *j = "{\"topics\":[{\"name\":\"a\",\"partitions\":\"N\"}]}";
  assert_int_equal(smc_topic_defs_parse(j, strlen(j), &defs, NULL), 0);
  smc_topics_options_t o;
  smc_topics_options_default(&o);
  assert_int_equal(o.partitions, 12);
  smc_topic_result_t res[1];
  smc_error_t err;
  o.partitions = 0;
  smc_error_clear(&err);
  assert_int_equal(smc_topics_create(&o, &defs, res, &err), SMC_EINVALID_ARGUMENT);
  smc_topics_options_default(&o);
  o.replication = 0;
  assert_int_equal(smc_topics_create(&o, &defs, res, NULL), SMC_EINVALID_ARGUMENT);
  smc_topic_defs_close(&defs);
}

/* With nothing listening, a metadata lookup fails within its timeout with a
 * code, not a hang or a crash. */
static void test_partitions_unreachable(void **state) {
  (void)state;
  char errstr[256];
  const char *props[] = {"socket.connection.setup.timeout.ms", "1000", NULL};
  rd_kafka_conf_t *conf = smc_kconf_new("127.0.0.1:1", props, errstr, sizeof(errstr));
  smc_kconf_set_log_level(0);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  assert_non_null(rk);
  int32_t n = smc_kafka_partitions(rk, "smc.proposals", 500);
  assert_int_equal(n, SMC_EUNAVAILABLE);
  rd_kafka_destroy(rk);
  smc_kconf_set_log_level(6);
}

typedef struct dr_state {
  int delivered;
  int mismatches;
} dr_state_t;

static void check_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  dr_state_t *s = opaque;
  assert_int_equal(m->err, 0);
  int32_t want = smc_partition_for(m->key, m->key_len, 12);
  if (m->partition != want)
    s->mismatches++;
  s->delivered++;
}

/* smc's producers and the fold's partition check must agree:
 * partitioner=murmur2_random puts every key where smc_partition_for says. */
static void test_partitioner_matches(void **state) {
  (void)state;
  char errstr[256];
  const char *props[] = {"test.mock.num.brokers", "1", NULL};
  rd_kafka_conf_t *conf = smc_kconf_new("", props, errstr, sizeof(errstr));
  assert_non_null(conf);
  assert_int_equal(smc_kconf_producer(conf, errstr, sizeof(errstr)), 0);
  dr_state_t st = {0, 0};
  rd_kafka_conf_set_dr_msg_cb(conf, check_dr);
  rd_kafka_conf_set_opaque(conf, &st);
  smc_kconf_set_log_level(3);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  assert_non_null(rk);
  rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
  assert_non_null(mc);
  assert_int_equal(rd_kafka_mock_topic_create(mc, "smc.proposals", 12, 1), 0);
  for (int i = 0; i < 300; i++) {
    char key[32];
    snprintf(key, sizeof(key), i % 3 ? "object-%d" : "lock-%d", i);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("smc.proposals"),
                                       RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE("{}", 2),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
  }
  assert_int_equal(rd_kafka_flush(rk, 10000), 0);
  rd_kafka_poll(rk, 0);
  assert_int_equal(st.delivered, 300);
  assert_int_equal(st.mismatches, 0);
  /* the metadata helper sees the mock topic */
  assert_int_equal(smc_kafka_partitions(rk, "smc.proposals", 5000), 12);
  assert_int_equal(smc_kafka_partitions(rk, "smc.nope", 5000), SMC_ENOT_FOUND);
  rd_kafka_destroy(rk);
  smc_kconf_set_log_level(6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_topic_names),         cmocka_unit_test(test_conf_passthrough),
      cmocka_unit_test(test_default_bootstrap),   cmocka_unit_test(test_log_line),
      cmocka_unit_test(test_topic_defs_file),     cmocka_unit_test(test_topic_defs_bad),
      cmocka_unit_test(test_create_bad_options),  cmocka_unit_test(test_partitions_unreachable),
      cmocka_unit_test(test_partitioner_matches),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
