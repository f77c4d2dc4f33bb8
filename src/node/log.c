/* Worker log lines (see log.h). */
#include "node/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = SMC_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void smc_log_set_level(int level) {
  if (level < SMC_LOG_ERROR)
    level = SMC_LOG_ERROR;
  if (level > SMC_LOG_DEBUG)
    level = SMC_LOG_DEBUG;
  atomic_store(&log_level, level);
}

int smc_log_level(void) { return atomic_load(&log_level); }

int smc_log_parse_level(const char *s) {
  if (!s)
    return -1;
  for (int i = 0; i < 4; i++)
    if (!strcasecmp(s, level_names[i]))
      return i;
  if (!strcasecmp(s, "warning"))
    return SMC_LOG_WARN;
  if (s[0] >= '0' && s[0] <= '3' && s[1] == '\0')
    return s[0] - '0';
  return -1;
}

/* Append src to dst (capacity cap, current length *n) with quoting escapes. */
static void append_escaped(char *dst, size_t cap, size_t *n, const char *src) {
  for (const unsigned char *p = (const unsigned char *)src; *p && *n + 7 < cap; p++) {
    if (*p == '"' || *p == '\\') {
      dst[(*n)++] = '\\';
      dst[(*n)++] = (char)*p;
    } else if (*p == '\n') {
      dst[(*n)++] = '\\';
      dst[(*n)++] = 'n';
    } else if (*p < 0x20) {
      *n += (size_t)snprintf(dst + *n, cap - *n, "\\x%02x", *p);
    } else {
      dst[(*n)++] = (char)*p;
    }
  }
}

void smc_log(int level, const char *node, int32_t partition, const char *fmt, ...) {
  if (level > atomic_load(&log_level))
    return;
  if (level < 0)
    level = 0;
  if (level > 3)
    level = 3;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char line[4096];
  size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ level=%s", ts.tv_nsec / 1000000L,
                        level_names[level]);
  if (node) {
    n += (size_t)snprintf(line + n, sizeof line - n, " node=");
    append_escaped(line, sizeof line, &n, node);
  }
  if (partition >= 0)
    n += (size_t)snprintf(line + n, sizeof line - n, " partition=%d", (int)partition);
  n += (size_t)snprintf(line + n, sizeof line - n, " msg=\"");
  append_escaped(line, sizeof line - 2, &n, msg);
  line[n++] = '"';
  line[n++] = '\n';
  /* One write(2) per line keeps lines from different threads whole. */
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}
