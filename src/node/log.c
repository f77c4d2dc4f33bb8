/* Worker log lines (see log.h). */
#include "node/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/logline.h"

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
  smc_logfield_t f[2] = {{"node", node, 0, 0}, {"partition", NULL, partition, partition >= 0}};
  smc_logline_write(level_names[level], f, 2, msg);
}
