/* Metrics registry: families (name, type, help) each holding series keyed by
 * their label string. One mutex guards it all; updates are rare compared with
 * the work they measure, so contention is not a concern. */
#include "base/metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/array.h"

static const double SMC_METRICS_BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof(SMC_METRICS_BUCKETS) / sizeof(SMC_METRICS_BUCKETS[0]))

typedef struct series {
  char *labels; /* "" when none */
  double value; /* counter/gauge value, histogram sum */
  unsigned long long count;
  unsigned long long buckets[NBUCKETS]; /* non-cumulative */
} series_t;

typedef struct family {
  char *name;
  char *help; /* NULL when never described */
  smc_metric_type_t type;
  series_t *series;
  size_t nseries, capseries;
} family_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static family_t *families;
static size_t nfamilies, capfamilies;

static family_t *family_get(const char *name, smc_metric_type_t type) {
  for (size_t i = 0; i < nfamilies; i++)
    if (!strcmp(families[i].name, name))
      return families[i].type == type ? &families[i] : NULL;
  if (nfamilies == capfamilies) {
    size_t cap = capfamilies ? capfamilies * 2 : 32;
    family_t *f = realloc(families, cap * sizeof(*f));
    if (!f)
      return NULL;
    families = f;
    capfamilies = cap;
  }
  family_t *f = &families[nfamilies];
  memset(f, 0, sizeof(*f));
  f->name = strdup(name);
  if (!f->name)
    return NULL;
  f->type = type;
  nfamilies++;
  return f;
}

static series_t *series_get(family_t *f, const char *labels) {
  if (!labels)
    labels = "";
  for (size_t i = 0; i < f->nseries; i++)
    if (!strcmp(f->series[i].labels, labels))
      return &f->series[i];
  if (smc_array_reserve(&f->series, &f->capseries, f->nseries + 1, sizeof(*f->series), 4))
    return NULL;
  series_t *s = &f->series[f->nseries];
  memset(s, 0, sizeof(*s));
  s->labels = strdup(labels);
  if (!s->labels)
    return NULL;
  f->nseries++;
  return s;
}

static series_t *lookup(const char *name, const char *labels, smc_metric_type_t type) {
  if (!name || !*name)
    return NULL;
  family_t *f = family_get(name, type);
  return f ? series_get(f, labels) : NULL;
}

void smc_metrics_describe(const char *name, smc_metric_type_t type, const char *help) {
  if (!name || !*name)
    return;
  pthread_mutex_lock(&lock);
  family_t *f = family_get(name, type);
  if (f && help && !f->help)
    f->help = strdup(help);
  pthread_mutex_unlock(&lock);
}

void smc_metrics_counter_add(const char *name, const char *labels, double v) {
  if (!(v >= 0)) /* counters only go up; also rejects NaN */
    return;
  pthread_mutex_lock(&lock);
  series_t *s = lookup(name, labels, SMC_METRIC_COUNTER);
  if (s)
    s->value += v;
  pthread_mutex_unlock(&lock);
}

void smc_metrics_gauge_set(const char *name, const char *labels, double v) {
  pthread_mutex_lock(&lock);
  series_t *s = lookup(name, labels, SMC_METRIC_GAUGE);
  if (s)
    s->value = v;
  pthread_mutex_unlock(&lock);
}

void smc_metrics_gauge_add(const char *name, const char *labels, double v) {
  pthread_mutex_lock(&lock);
  series_t *s = lookup(name, labels, SMC_METRIC_GAUGE);
  if (s)
    s->value += v;
  pthread_mutex_unlock(&lock);
}

double smc_metrics_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void smc_metrics_histogram_observe(const char *name, const char *labels, double value_seconds) {
  if (isnan(value_seconds))
    return;
  pthread_mutex_lock(&lock);
  series_t *s = lookup(name, labels, SMC_METRIC_HISTOGRAM);
  if (s) {
    s->value += value_seconds;
    s->count++;
    for (size_t i = 0; i < NBUCKETS; i++)
      if (value_seconds <= SMC_METRICS_BUCKETS[i]) {
        s->buckets[i]++;
        break;
      }
  }
  pthread_mutex_unlock(&lock);
}

/* A growable output buffer; on allocation failure it drops its data and every
 * later append is a no-op, so render can check once at the end. */
typedef struct {
  char *p;
  size_t len, cap;
  int failed;
} buf_t;

__attribute__((format(printf, 2, 3))) static void bprintf(buf_t *b, const char *fmt, ...) {
  if (b->failed)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->failed = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap * 2 + (size_t)n + 1;
    char *p = realloc(b->p, cap);
    if (!p) {
      free(b->p);
      b->p = NULL;
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
}

static void fmt_double(char *out, size_t n, double v) {
  if (isinf(v))
    snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
  else if (v == floor(v) && fabs(v) < 1e15)
    snprintf(out, n, "%.0f", v);
  else {
    snprintf(out, n, "%.15g", v); /* the shortest that reads back the same */
    if (strtod(out, NULL) != v)
      snprintf(out, n, "%.17g", v);
  }
}

/* name{labels[,extra]} value */
static void line(buf_t *b, const char *name, const char *suffix, const char *labels,
                 const char *extra, double v) {
  char num[64];
  fmt_double(num, sizeof(num), v);
  int hl = labels && *labels, he = extra && *extra;
  if (hl || he)
    bprintf(b, "%s%s{%s%s%s} %s\n", name, suffix, hl ? labels : "", hl && he ? "," : "",
            he ? extra : "", num);
  else
    bprintf(b, "%s%s %s\n", name, suffix, num);
}

static void escape_help(buf_t *b, const char *help) {
  for (const char *c = help; *c; c++) {
    if (*c == '\\')
      bprintf(b, "\\\\");
    else if (*c == '\n')
      bprintf(b, "\\n");
    else
      bprintf(b, "%c", *c);
  }
}

static int cmp_family(const void *a, const void *b) {
  return strcmp((*(family_t *const *)a)->name, (*(family_t *const *)b)->name);
}
static int cmp_series(const void *a, const void *b) {
  return strcmp(((const series_t *)a)->labels, ((const series_t *)b)->labels);
}

static void render_family(buf_t *b, family_t *f) {
  static const char *const tnames[] = {"", "counter", "gauge", "histogram"};
  if (f->help) {
    bprintf(b, "# HELP %s ", f->name);
    escape_help(b, f->help);
    bprintf(b, "\n");
  }
  bprintf(b, "# TYPE %s %s\n", f->name, tnames[f->type]);
  if (f->nseries > 1) /* a described family may have no series yet */
    qsort(f->series, f->nseries, sizeof(series_t), cmp_series);
  for (size_t i = 0; i < f->nseries; i++) {
    series_t *s = &f->series[i];
    if (f->type != SMC_METRIC_HISTOGRAM) {
      line(b, f->name, "", s->labels, NULL, s->value);
      continue;
    }
    unsigned long long cum = 0;
    char le[64], num[48];
    for (size_t k = 0; k < NBUCKETS; k++) {
      cum += s->buckets[k];
      snprintf(num, sizeof(num), "%g", SMC_METRICS_BUCKETS[k]);
      snprintf(le, sizeof(le), "le=\"%s\"", num);
      line(b, f->name, "_bucket", s->labels, le, (double)cum);
    }
    line(b, f->name, "_bucket", s->labels, "le=\"+Inf\"", (double)s->count);
    line(b, f->name, "_sum", s->labels, NULL, s->value);
    line(b, f->name, "_count", s->labels, NULL, (double)s->count);
  }
}

/* The process_* metrics of the Prometheus client libraries, read from /proc
 * at each scrape: CPU time, resident and virtual memory, open and maximum file
 * descriptors, start time. A field that cannot be read is left out. */
static void render_process(buf_t *b) {
  double tick = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
  char stat[1024];
  FILE *f = fopen("/proc/self/stat", "r");
  size_t n = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
  if (f)
    fclose(f);
  stat[n] = '\0';
  /* fields after the command (which may hold spaces): state is field 3 */
  const char *p = strrchr(stat, ')');
  unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
  long long rss = 0;
  int have = p &&
             sscanf(p + 2,
                    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d "
                    "%*d %*d %*d %llu %llu %lld",
                    &utime, &stime, &start, &vsize, &rss) == 5 &&
             tick > 0;
  unsigned long long btime = 0;
  if ((f = fopen("/proc/stat", "r"))) {
    char line[256];
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "btime %llu", &btime) == 1)
        break;
    fclose(f);
  }
  if (have) {
    bprintf(b, "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
               "seconds.\n# TYPE process_cpu_seconds_total counter\n");
    line(b, "process_cpu_seconds_total", "", NULL, NULL, (double)(utime + stime) / tick);
  }
  long fds = 0;
  DIR *d = opendir("/proc/self/fd");
  for (struct dirent *e; d && (e = readdir(d));)
    fds += e->d_name[0] != '.';
  if (d) {
    closedir(d);
    bprintf(b, "# HELP process_open_fds Number of open file descriptors.\n"
               "# TYPE process_open_fds gauge\n");
    line(b, "process_open_fds", "", NULL, NULL, (double)(fds - 1)); /* less opendir's own */
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    bprintf(b, "# HELP process_max_fds Maximum number of open file descriptors.\n"
               "# TYPE process_max_fds gauge\n");
    line(b, "process_max_fds", "", NULL, NULL,
         rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur);
  }
  if (have) {
    bprintf(b, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
               "# TYPE process_resident_memory_bytes gauge\n");
    line(b, "process_resident_memory_bytes", "", NULL, NULL, (double)rss * page);
  }
  if (have && btime) {
    bprintf(b, "# HELP process_start_time_seconds Start time of the process since unix epoch "
               "in seconds.\n# TYPE process_start_time_seconds gauge\n");
    line(b, "process_start_time_seconds", "", NULL, NULL, (double)btime + (double)start / tick);
  }
  if (have) {
    bprintf(b, "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
               "# TYPE process_virtual_memory_bytes gauge\n");
    line(b, "process_virtual_memory_bytes", "", NULL, NULL, (double)vsize);
  }
}

char *smc_metrics_render(void) {
  buf_t b = {malloc(4096), 0, 4096, 0};
  if (!b.p)
    return NULL;
  b.p[0] = '\0';
  render_process(&b);
  pthread_mutex_lock(&lock);
  family_t **order = nfamilies ? malloc(nfamilies * sizeof(*order)) : NULL;
  if (nfamilies && !order)
    b.failed = 1;
  for (size_t i = 0; order && i < nfamilies; i++)
    order[i] = &families[i];
  if (order)
    qsort(order, nfamilies, sizeof(*order), cmp_family);
  for (size_t i = 0; order && i < nfamilies; i++)
    render_family(&b, order[i]);
  pthread_mutex_unlock(&lock);
  free(order);
  if (b.failed) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

void smc_metrics_reset(void) {
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < nfamilies; i++) {
    for (size_t k = 0; k < families[i].nseries; k++)
      free(families[i].series[k].labels);
    free(families[i].series);
    free(families[i].name);
    free(families[i].help);
  }
  free(families);
  families = NULL;
  nfamilies = capfamilies = 0;
  pthread_mutex_unlock(&lock);
}
