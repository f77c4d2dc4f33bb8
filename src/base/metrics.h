/*
 * Process-wide metrics registry with Prometheus text exposition.
 *
 * Every function is thread-safe and may be called from any thread at any time
 * (no init needed). A metric is a name plus an optional label string written
 * exactly as it appears between the braces, e.g. "outcome=\"committed\"".
 * Names and labels are copied in. A name keeps the type it was first used or
 * described with; a call with a different type is ignored.
 *
 * Histograms use one fixed set of latency buckets (seconds), see
 * SMC_METRICS_BUCKETS in metrics.c: 0.0005 .. 10 s.
 */
#ifndef SMC_BASE_METRICS_H
#define SMC_BASE_METRICS_H

typedef enum {
  SMC_METRIC_COUNTER = 1,
  SMC_METRIC_GAUGE = 2,
  SMC_METRIC_HISTOGRAM = 3,
} smc_metric_type_t;

/* Declare a metric's type and HELP text (optional; a metric used without a
 * description gets "TYPE" from its first use and no HELP line). */
void smc_metrics_describe(const char *name, smc_metric_type_t type, const char *help);

void smc_metrics_counter_add(const char *name, const char *labels, double v);
void smc_metrics_gauge_set(const char *name, const char *labels, double v);
void smc_metrics_gauge_add(const char *name, const char *labels, double v);
void smc_metrics_histogram_observe(const char *name, const char *labels, double value_seconds);

/* Seconds on CLOCK_MONOTONIC, for timing what a histogram observes. */
double smc_metrics_now_s(void);

/* Everything registered, in the Prometheus text format (version 0.0.4),
 * metrics sorted by name, series by labels. malloc'd; caller frees. NULL only
 * when out of memory. */
char *smc_metrics_render(void);

/* Forget every metric (tests). */
void smc_metrics_reset(void);

#endif
