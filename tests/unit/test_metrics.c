/* Metrics registry: exposition format, types, histogram buckets, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/metrics.h"

static int setup(void **state) {
  (void)state;
  smc_metrics_reset();
  return 0;
}

static void assert_contains(const char *text, const char *needle) {
  if (!strstr(text, needle))
    fail_msg("missing <%s> in:\n%s", needle, text);
}

/* Nothing registered: only the process_* metrics read from /proc. */
static void test_empty(void **state) {
  (void)state;
  char *t = smc_metrics_render();
  assert_non_null(t);
  assert_null(strstr(t, "smc_"));
  for (const char *l = t; *l; l = strchr(l, '\n') + 1)
    if (strncmp(l, "# HELP process_", 15) && strncmp(l, "# TYPE process_", 15) &&
        strncmp(l, "process_", 8))
      fail_msg("not a process metric: %s", l);
  free(t);
}

static double sample(const char *text, const char *name) {
  char key[128];
  snprintf(key, sizeof key, "\n%s ", name);
  const char *p = strstr(text, key);
  if (!p)
    fail_msg("no sample of %s in:\n%s", name, text);
  return strtod(p + strlen(key), NULL);
}

/* The process metrics, as the Prometheus client libraries name them. */
static void test_process(void **state) {
  (void)state;
  char *t = smc_metrics_render();
  assert_contains(t, "# TYPE process_cpu_seconds_total counter\n");
  assert_contains(t, "# TYPE process_resident_memory_bytes gauge\n");
  assert_true(sample(t, "process_cpu_seconds_total") >= 0);
  assert_true(sample(t, "process_resident_memory_bytes") > 1024 * 1024);
  assert_true(sample(t, "process_virtual_memory_bytes") >=
              sample(t, "process_resident_memory_bytes"));
  double fds = sample(t, "process_open_fds");
  assert_true(fds >= 3 && fds <= sample(t, "process_max_fds"));
  double start = sample(t, "process_start_time_seconds");
  double now = (double)time(NULL);
  assert_true(start <= now + 1 && start > now - 24 * 3600);
  free(t);
}

static void test_counter_and_help(void **state) {
  (void)state;
  smc_metrics_describe("smc_proposals_total", SMC_METRIC_COUNTER,
                       "Proposals by outcome.\nSecond line \\");
  smc_metrics_counter_add("smc_proposals_total", "outcome=\"committed\"", 2);
  smc_metrics_counter_add("smc_proposals_total", "outcome=\"committed\"", 1.5);
  smc_metrics_counter_add("smc_proposals_total", "outcome=\"rejected\"", 1);
  smc_metrics_counter_add("smc_proposals_total", "outcome=\"rejected\"", -5); /* ignored */
  smc_metrics_counter_add("smc_plain_total", NULL, 7);
  char *t = smc_metrics_render();
  assert_non_null(t);
  assert_contains(t, "# HELP smc_proposals_total Proposals by outcome.\\nSecond line \\\\\n");
  assert_contains(t, "# TYPE smc_proposals_total counter\n");
  assert_contains(t, "smc_proposals_total{outcome=\"committed\"} 3.5\n");
  assert_contains(t, "smc_proposals_total{outcome=\"rejected\"} 1\n");
  assert_contains(t, "# TYPE smc_plain_total counter\nsmc_plain_total 7\n");
  assert_null(strstr(t, "# HELP smc_plain_total"));
  /* sorted by name: smc_plain_total before smc_proposals_total */
  assert_true(strstr(t, "smc_plain_total") < strstr(t, "smc_proposals_total"));
  free(t);
}

/* A family described before any sample (as smc_node_start does) renders its
 * HELP and TYPE lines alone, without handing qsort a NULL array. */
static void test_described_without_series(void **state) {
  (void)state;
  smc_metrics_describe("smc_idle_total", SMC_METRIC_COUNTER, "Nothing yet.");
  smc_metrics_describe("smc_idle_seconds", SMC_METRIC_HISTOGRAM, "Nothing yet either.");
  char *t = smc_metrics_render();
  assert_non_null(t);
  assert_contains(t, "# HELP smc_idle_total Nothing yet.\n# TYPE smc_idle_total counter\n");
  assert_contains(t, "# TYPE smc_idle_seconds histogram\n");
  assert_null(strstr(t, "smc_idle_seconds_bucket"));
  free(t);
}

static void test_gauge_and_type_clash(void **state) {
  (void)state;
  smc_metrics_gauge_set("smc_lag", "partition=\"0\"", 10);
  smc_metrics_gauge_set("smc_lag", "partition=\"0\"", 4);
  smc_metrics_gauge_add("smc_lag", "partition=\"1\"", -2);
  smc_metrics_counter_add("smc_lag", NULL, 1); /* wrong type: ignored */
  char *t = smc_metrics_render();
  assert_contains(t, "# TYPE smc_lag gauge\n");
  assert_contains(t, "smc_lag{partition=\"0\"} 4\n");
  assert_contains(t, "smc_lag{partition=\"1\"} -2\n");
  assert_null(strstr(t, "smc_lag 1"));
  assert_null(strstr(t, "# TYPE smc_lag counter"));
  free(t);
}

static void test_histogram(void **state) {
  (void)state;
  smc_metrics_describe("smc_latency_seconds", SMC_METRIC_HISTOGRAM, "Latency.");
  smc_metrics_histogram_observe("smc_latency_seconds", "op=\"propose\"", 0.0003);
  smc_metrics_histogram_observe("smc_latency_seconds", "op=\"propose\"", 0.003);
  smc_metrics_histogram_observe("smc_latency_seconds", "op=\"propose\"", 0.003);
  smc_metrics_histogram_observe("smc_latency_seconds", "op=\"propose\"", 100);
  char *t = smc_metrics_render();
  assert_contains(t, "# TYPE smc_latency_seconds histogram\n");
  assert_contains(t, "smc_latency_seconds_bucket{op=\"propose\",le=\"0.0005\"} 1\n");
  assert_contains(t, "smc_latency_seconds_bucket{op=\"propose\",le=\"0.0025\"} 1\n");
  assert_contains(t, "smc_latency_seconds_bucket{op=\"propose\",le=\"0.005\"} 3\n");
  assert_contains(t, "smc_latency_seconds_bucket{op=\"propose\",le=\"10\"} 3\n");
  assert_contains(t, "smc_latency_seconds_bucket{op=\"propose\",le=\"+Inf\"} 4\n");
  assert_contains(t, "smc_latency_seconds_count{op=\"propose\"} 4\n");
  assert_contains(t, "smc_latency_seconds_sum{op=\"propose\"} 100.0063");
  free(t);
  smc_metrics_histogram_observe("smc_h2", NULL, 1);
  t = smc_metrics_render();
  assert_contains(t, "smc_h2_bucket{le=\"1\"} 1\n");
  assert_contains(t, "smc_h2_bucket{le=\"0.5\"} 0\n");
  assert_contains(t, "smc_h2_count 1\n");
  free(t);
}

static void *hammer(void *arg) {
  (void)arg;
  for (int i = 0; i < 10000; i++) {
    smc_metrics_counter_add("smc_threads_total", NULL, 1);
    smc_metrics_histogram_observe("smc_threads_seconds", NULL, 0.01);
    if (i % 1000 == 0)
      free(smc_metrics_render());
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  pthread_t th[8];
  for (int i = 0; i < 8; i++)
    assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
  for (int i = 0; i < 8; i++)
    pthread_join(th[i], NULL);
  char *t = smc_metrics_render();
  assert_contains(t, "smc_threads_total 80000\n");
  assert_contains(t, "smc_threads_seconds_count 80000\n");
  assert_contains(t, "smc_threads_seconds_bucket{le=\"0.01\"} 80000\n");
  free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_empty, setup),
      cmocka_unit_test_setup(test_process, setup),
      cmocka_unit_test_setup(test_counter_and_help, setup),
      cmocka_unit_test_setup(test_described_without_series, setup),
      cmocka_unit_test_setup(test_gauge_and_type_clash, setup),
      cmocka_unit_test_setup(test_histogram, setup),
      cmocka_unit_test_setup(test_threads, setup),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  smc_metrics_reset();
  return rc;
}
