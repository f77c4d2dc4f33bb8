/*
 * Worker logs: one line per event on stderr, in the process's log format
 * (core/logline.h: text, logfmt or json), e.g. as text
 *   2026-11-28T01:02:03.456Z level=info node=n1 partition=3 msg="..."
 * Levels: 0 error, 1 warn, 2 info, 3 debug. Thread-safe (one write per line).
 */
#ifndef SMC_NODE_LOG_H
#define SMC_NODE_LOG_H

#include <stdint.h>

enum { SMC_LOG_ERROR = 0, SMC_LOG_WARN = 1, SMC_LOG_INFO = 2, SMC_LOG_DEBUG = 3 };

/* Lines above level are dropped (default SMC_LOG_INFO). */
void smc_log_set_level(int level);
int smc_log_level(void);
/* Parse "error|warn|info|debug" or "0".."3"; -1 if neither. */
int smc_log_parse_level(const char *s);

/* Log one line. node may be NULL (field omitted); partition < 0 omits the
 * partition field. The message is quoted with " and \ and control characters
 * escaped, so a line always parses as key=value pairs. */
void smc_log(int level, const char *node, int32_t partition, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
