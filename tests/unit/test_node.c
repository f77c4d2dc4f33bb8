/* Unit tests of the worker node's pure parts: log lines, group names,
 * configuration validation, the vote hook. (The Kafka loops are covered by
 * tests/system.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "node/log.h"
#include "node/node.h"
#include "node/replay.h"
#include "node/roles.h"

/* Run smc_log with stderr redirected into a pipe; returns what was written. */
static char *capture_log(int level, const char *node, int32_t partition, const char *msg) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  int saved = dup(2);
  dup2(fds[1], 2);
  smc_log(level, node, partition, "%s", msg);
  dup2(saved, 2);
  close(saved);
  close(fds[1]);
  char *buf = calloc(1, 8192);
  ssize_t n = read(fds[0], buf, 8191);
  close(fds[0]);
  if (n < 0)
    n = 0;
  buf[n] = '\0';
  return buf;
}

static void test_log_line_format(void **state) {
  (void)state;
  smc_log_set_level(SMC_LOG_INFO);
  char *line = capture_log(SMC_LOG_INFO, "n1", 3, "restored \"p\"\nnext");
  /* 2026-11-28T01:02:03.456Z level=info node=n1 partition=3 msg="..." */
  assert_true(strlen(line) > 25);
  assert_true(line[4] == '-' && line[7] == '-' && line[10] == 'T' && line[13] == ':' &&
              line[19] == '.' && line[23] == 'Z');
  assert_string_equal(line + 24,
                      " level=info node=n1 partition=3 msg=\"restored \\\"p\\\"\\nnext\"\n");
  free(line);
  line = capture_log(SMC_LOG_WARN, NULL, -1, "x");
  assert_string_equal(line + 24, " level=warn msg=\"x\"\n");
  free(line);
}

static void test_log_level_filter(void **state) {
  (void)state;
  smc_log_set_level(SMC_LOG_WARN);
  char *line = capture_log(SMC_LOG_INFO, "n1", 0, "dropped");
  assert_string_equal(line, "");
  free(line);
  line = capture_log(SMC_LOG_ERROR, "n1", 0, "kept");
  assert_non_null(strstr(line, "level=error"));
  free(line);
  smc_log_set_level(SMC_LOG_INFO);
}

static void test_log_parse_level(void **state) {
  (void)state;
  assert_int_equal(smc_log_parse_level("error"), 0);
  assert_int_equal(smc_log_parse_level("WARN"), 1);
  assert_int_equal(smc_log_parse_level("warning"), 1);
  assert_int_equal(smc_log_parse_level("info"), 2);
  assert_int_equal(smc_log_parse_level("3"), 3);
  assert_int_equal(smc_log_parse_level("4"), -1);
  assert_int_equal(smc_log_parse_level("loud"), -1);
  assert_int_equal(smc_log_parse_level(NULL), -1);
}

static void test_group_names(void **state) {
  (void)state;
  char *g = smc_node_group_name("smc.", "committer");
  assert_string_equal(g, "smc-committer");
  free(g);
  g = smc_node_group_name("t1234.", "voter-org-b");
  assert_string_equal(g, "t1234-voter-org-b");
  free(g);
  g = smc_node_group_name(NULL, "committer");
  assert_string_equal(g, "smc-committer");
  free(g);
  g = smc_node_group_name("plain", "committer");
  assert_string_equal(g, "plain-committer");
  free(g);
}

static void test_config_validation(void **state) {
  (void)state;
  smc_node_config_t c;
  smc_node_config_default(&c);
  assert_string_equal(c.prefix, "smc.");
  assert_int_equal(c.commit_interval_ms, 10);
  assert_int_equal(c.commit_max_records, 1000);
  assert_int_equal(c.tick_ms, 200);
  assert_int_equal(c.vote_hook_timeout_ms, 5000);
  assert_int_equal(c.session_timeout_ms, 10000);
  assert_true(c.committer);
  smc_node_t *n = NULL;
  smc_error_t err;

  c.node_id = "has space";
  smc_error_clear(&err);
  assert_int_equal(smc_node_start(&c, &n, &err), SMC_EINVALID_ARGUMENT);
  assert_null(n);
  assert_string_equal(err.path, "node_id");

  c.node_id = "n1";
  c.committer = 0;
  smc_error_clear(&err);
  assert_int_equal(smc_node_start(&c, &n, &err), SMC_EINVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "no role"));

  c.committer = 1;
  c.voter_id = "bad/voter";
  smc_error_clear(&err);
  assert_int_equal(smc_node_start(&c, &n, &err), SMC_EINVALID_ARGUMENT);
  assert_string_equal(err.path, "voter_id");

  c.voter_id = NULL;
  c.tick_ms = 0;
  smc_error_clear(&err);
  assert_int_equal(smc_node_start(&c, &n, &err), SMC_EINVALID_ARGUMENT);

  c.tick_ms = 200;
  static const char *const odd[] = {"linger.ms", NULL};
  c.kafka_props = odd;
  smc_error_clear(&err);
  assert_int_equal(smc_node_start(&c, &n, &err), SMC_EINVALID_ARGUMENT);
  assert_null(n);
  c.kafka_props = NULL;
  c.registration_key = "not a key"; /* issue 18: refused before any role starts */
  smc_error_clear(&err);
  assert_int_equal(smc_node_start(&c, &n, &err), SMC_EINVALID_ARGUMENT);
  assert_string_equal(err.path, "registration_key");
  assert_null(n);
  smc_node_stop(NULL); /* accepted */
  assert_int_equal(smc_node_partitions(NULL, NULL, 0), 0);
}

static void test_conf_apply(void **state) {
  (void)state;
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  static const char *const good[] = {"linger.ms", "7", "client.id", "x", NULL};
  assert_int_equal(smc_kafka_conf_apply(conf, good, 0, errstr, sizeof errstr), 0);
  char v[32];
  size_t vl = sizeof v;
  assert_int_equal(rd_kafka_conf_get(conf, "linger.ms", v, &vl), RD_KAFKA_CONF_OK);
  assert_string_equal(v, "7");
  static const char *const bad[] = {"no.such.property", "1", NULL};
  assert_int_equal(smc_kafka_conf_apply(conf, bad, 0, errstr, sizeof errstr), -1);
  assert_non_null(strstr(errstr, "no.such.property"));
  static const char *const novalue[] = {"linger.ms", NULL};
  assert_int_equal(smc_kafka_conf_apply(conf, novalue, 0, errstr, sizeof errstr), -1);
  /* a producer skips the consumer-only keys of a node's -X list */
  static const char *const mixed[] = {"group.id", "g", "linger.ms", "9", NULL};
  assert_int_equal(smc_kafka_conf_apply(conf, mixed, 1, errstr, sizeof errstr), 0);
  vl = sizeof v;
  assert_int_equal(rd_kafka_conf_get(conf, "linger.ms", v, &vl), RD_KAFKA_CONF_OK);
  assert_string_equal(v, "9");
  vl = sizeof v;
  v[0] = 0;
  assert_true(rd_kafka_conf_get(conf, "group.id", v, &vl) != RD_KAFKA_CONF_OK || strcmp(v, "g"));
  rd_kafka_conf_destroy(conf);
}

static const char *REQ = "{\"object\":\"req-1\",\"proposal\":\"p1\",\"result\":{\"amount\":99999}}";

static void test_hook_accepts_on_exit_0(void **state) {
  (void)state;
  char reason[256];
  assert_int_equal(smc_voter_run_hook("cat >/dev/null; exit 0", REQ, 5000, reason, sizeof reason),
                   1);
  assert_string_equal(reason, "");
  assert_int_equal(smc_voter_run_hook("echo looks fine", REQ, 5000, reason, sizeof reason), 1);
  assert_string_equal(reason, "looks fine");
}

static void test_hook_rejects_with_stdout(void **state) {
  (void)state;
  char reason[256];
  assert_int_equal(smc_voter_run_hook("echo 'no budget'; exit 3", REQ, 5000, reason, sizeof reason),
                   0);
  assert_string_equal(reason, "no budget");
  assert_int_equal(smc_voter_run_hook("exit 4", REQ, 5000, reason, sizeof reason), 0);
  assert_string_equal(reason, "vote hook exited with status 4");
  assert_int_equal(smc_voter_run_hook("kill -9 $$", REQ, 5000, reason, sizeof reason), 0);
  assert_string_equal(reason, "vote hook killed by signal 9");
}

static void test_hook_reads_the_proposal(void **state) {
  (void)state;
  char reason[256];
  const char *hook = "grep -q '\"amount\":99999' && { echo too big; exit 1; }; exit 0";
  assert_int_equal(smc_voter_run_hook(hook, REQ, 5000, reason, sizeof reason), 0);
  assert_string_equal(reason, "too big");
  assert_int_equal(
      smc_voter_run_hook(hook, "{\"result\":{\"amount\":5}}", 5000, reason, sizeof reason), 1);
}

static void test_hook_timeout_rejects(void **state) {
  (void)state;
  char reason[256];
  int64_t t0 = smc_now_ms();
  assert_int_equal(smc_voter_run_hook("sleep 10", REQ, 300, reason, sizeof reason), 0);
  int64_t took = smc_now_ms() - t0;
  assert_true(took >= 300 && took < 3000);
  assert_string_equal(reason, "vote hook timed out after 300 ms");
  /* A hook that closes stdout but keeps running is also timed out. */
  t0 = smc_now_ms();
  assert_int_equal(smc_voter_run_hook("exec >&-; sleep 10", REQ, 300, reason, sizeof reason), 0);
  assert_true(smc_now_ms() - t0 < 3000);
}

static void test_hook_large_input_and_output(void **state) {
  (void)state;
  /* 1 MiB of input the hook never reads must not block the voter. */
  size_t n = 1 << 20;
  char *big = malloc(n + 1);
  memset(big, 'x', n);
  big[n] = '\0';
  char reason[64];
  assert_int_equal(smc_voter_run_hook("exit 0", big, 5000, reason, sizeof reason), 1);
  assert_int_equal(smc_voter_run_hook("wc -c; exit 1", big, 5000, reason, sizeof reason), 0);
  assert_string_equal(reason, "1048576");
  free(big);
  /* Output beyond the reason buffer is truncated, not overflowed. */
  assert_int_equal(
      smc_voter_run_hook("yes | head -c 10000; exit 1", REQ, 5000, reason, sizeof reason), 0);
  assert_int_equal(strlen(reason), sizeof reason - 1);
}

/* Issue 18, finding 4: reply_to never names a topic of the cluster, and
 * with an allow-list only the topics it names. */
static void test_reply_to_policy(void **state) {
  (void)state;
  assert_false(smc_reply_to_allowed("smc.confirmations", "smc.", NULL));
  assert_false(smc_reply_to_allowed("smc.machines", "smc.", ""));
  assert_false(smc_reply_to_allowed("smc.anything", NULL, NULL));
  assert_false(smc_reply_to_allowed("prod.proposals", "prod.", "prod.*"));
  assert_false(smc_reply_to_allowed("", "smc.", NULL));
  assert_false(smc_reply_to_allowed(NULL, "smc.", NULL));
  assert_true(smc_reply_to_allowed("orders", "smc.", NULL));
  assert_true(smc_reply_to_allowed("smc-audit", "smc.", NULL)); /* not under "smc." */
  const char *allow = "orders.*, audit ,billing";
  assert_true(smc_reply_to_allowed("orders.eu", "smc.", allow));
  assert_true(smc_reply_to_allowed("orders.", "smc.", allow));
  assert_true(smc_reply_to_allowed("audit", "smc.", allow));
  assert_true(smc_reply_to_allowed("billing", "smc.", allow));
  assert_false(smc_reply_to_allowed("billing2", "smc.", allow));
  assert_false(smc_reply_to_allowed("audi", "smc.", allow));
  assert_false(smc_reply_to_allowed("orders", "smc.", allow));
  assert_true(smc_reply_to_allowed("x", "smc.", "*"));
  assert_false(smc_reply_to_allowed("smc.replies", "smc.", "*"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_log_line_format),
      cmocka_unit_test(test_log_level_filter),
      cmocka_unit_test(test_log_parse_level),
      cmocka_unit_test(test_group_names),
      cmocka_unit_test(test_config_validation),
      cmocka_unit_test(test_reply_to_policy),
      cmocka_unit_test(test_conf_apply),
      cmocka_unit_test(test_hook_accepts_on_exit_0),
      cmocka_unit_test(test_hook_rejects_with_stdout),
      cmocka_unit_test(test_hook_reads_the_proposal),
      cmocka_unit_test(test_hook_timeout_rejects),
      cmocka_unit_test(test_hook_large_input_and_output),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
