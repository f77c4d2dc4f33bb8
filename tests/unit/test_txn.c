/*
 * The transactional session (kafka/txn.c) on librdkafka's mock cluster:
 * transactions commit and abort; a commit that never returns (the fault
 * switch SMC_FAULT_TXN_HANG, set in main) is given up on at its deadline,
 * its producer abandoned and counted, and the next transaction commits on
 * a new producer with the same transactional.id. (The mock cluster writes
 * no transaction markers, so what read_committed readers see is checked on
 * a real broker: tests/system/test_txn_watchdog.py.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/metrics.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"
#include "kafka/txn.h"
#include "mock_kafka.h"
#include "smc/error.h"

#define TOPIC_IN "t.in"
#define TOPIC_OUT "t.out"
#define DEADLINE_MS 1500

typedef struct fixture {
  test_mock_t mock;
  const char *bootstrap;
  rd_kafka_t *consumer; /* only for its group metadata */
  atomic_int stop;
} fixture_t;

static int teardown(void **state) {
  fixture_t *f = *state;
  if (f->consumer)
    smc_kafka_close(f->consumer);
  test_mock_stop(&f->mock);
  free(f);
  return 0;
}

static int setup(void **state) {
  char errstr[256];
  fixture_t *f = calloc(1, sizeof *f);
  *state = f;
  if (!f)
    return -1;
  static const char *const topics[] = {TOPIC_IN, TOPIC_OUT, NULL};
  if (test_mock_start(&f->mock, topics, 1) < 0)
    return teardown(state), -1;
  f->bootstrap = f->mock.bootstrap;
  smc_kafka_spec_t spec = {.type = RD_KAFKA_CONSUMER, .bootstrap = f->bootstrap, .group_id = "g"};
  if (!(f->consumer = smc_kafka_open(&spec, errstr, sizeof errstr)))
    return teardown(state), -1;
  return 0;
}

static void logger(void *opaque, int level, int32_t p, const char *fmt, va_list ap) {
  (void)opaque;
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  fprintf(stderr, "txn log %d [%d]: %s\n", level, (int)p, msg);
}

static smc_txn_t *session(fixture_t *f) {
  smc_txn_config_t cfg = {.bootstrap = f->bootstrap,
                          .txn_id = "test-txn",
                          .txn_timeout_ms = 10000,
                          .deadline_ms = DEADLINE_MS,
                          .stop = &f->stop,
                          .log = logger};
  smc_txn_t *t = smc_txn_new(&cfg);
  assert_non_null(t);
  assert_int_equal(smc_txn_open(t), 0);
  return t;
}

/* One transaction: an output and the input offset, then commit. */
static int one(fixture_t *f, smc_txn_t *t, int64_t next) {
  int64_t offs[1] = {next};
  assert_int_equal(smc_txn_begin(t), 0);
  assert_true(smc_txn_is_open(t));
  assert_int_equal(smc_txn_produce(t, TOPIC_OUT, 0, "k", 1, "v", 1), 0);
  int rc = smc_txn_send_offsets(t, f->consumer, TOPIC_IN, offs, 1);
  return rc < 0 ? rc : smc_txn_commit(t);
}

/* The value of an unlabelled counter in the metrics text (-1: none). */
static double counter(const char *name) {
  char *text = smc_metrics_render();
  double v = -1;
  char want[128];
  snprintf(want, sizeof want, "\n%s ", name);
  const char *at = text ? strstr(text, want) : NULL;
  if (at)
    v = strtod(at + strlen(want), NULL);
  free(text);
  return v;
}

static void commit_and_abort(void **state) {
  fixture_t *f = *state;
  smc_txn_t *t = session(f);
  assert_int_equal(one(f, t, 1), 0); /* the process's first commit */
  assert_false(smc_txn_is_open(t));
  assert_int_equal(smc_txn_begin(t), 0);
  assert_int_equal(smc_txn_produce(t, TOPIC_OUT, 0, "k", 1, "aborted", 7), 0);
  smc_txn_abort(t, "test");
  assert_false(smc_txn_is_open(t));
  assert_int_equal(smc_txn_topic_exists(t, TOPIC_OUT, 5000), 1);
  assert_int_equal(smc_txn_topic_exists(t, "t.none", 5000), 0);
  smc_txn_destroy(t);
}

static void hung_commit_is_abandoned(void **state) {
  fixture_t *f = *state;
  smc_txn_t *t = session(f);
  double before = counter("smc_committer_producer_abandoned_total");
  int64_t t0 = smc_now_ms();
  assert_int_equal(one(f, t, 2), -1); /* the second commit hangs */
  int64_t took = smc_now_ms() - t0;
  assert_true(took >= DEADLINE_MS && took < DEADLINE_MS + 5000);
  assert_false(smc_txn_is_open(t));
  assert_true(counter("smc_committer_producer_abandoned_total") == (before < 0 ? 0 : before) + 1);
  /* a new producer took over: the next transaction commits */
  assert_int_equal(one(f, t, 2), 0);
  smc_txn_destroy(t);
}

/* Once a stop is asked for, no new producer is made. */
static void stop_refuses_a_new_producer(void **state) {
  fixture_t *f = *state;
  smc_txn_t *t = session(f);
  atomic_store(&f->stop, 1);
  assert_int_equal(one(f, t, 3), 0); /* the producer there still commits */
  smc_txn_destroy(t);
  smc_txn_config_t cfg = {.bootstrap = f->bootstrap, .txn_id = "test-txn", .stop = &f->stop};
  t = smc_txn_new(&cfg);
  assert_int_equal(smc_txn_open(t), SMC_EUNAVAILABLE);
  assert_int_equal(smc_txn_begin(t), -1);
  smc_txn_destroy(t);
}

int main(void) {
  setenv("SMC_FAULT_TXN_HANG", "commit:2", 1); /* read at the first smc_txn_new */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(commit_and_abort, setup, teardown),
      cmocka_unit_test_setup_teardown(hung_commit_is_abandoned, setup, teardown),
      cmocka_unit_test_setup_teardown(stop_refuses_a_new_producer, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
