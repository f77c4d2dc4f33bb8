/*
 * Log lines on stderr, one write(2) per line, in one of three formats chosen
 * once per process (`--log-format`, SMC_LOG_FORMAT):
 *
 *   text    2026-11-28T01:02:03.456Z level=info node=n1 partition=3 msg="..."
 *   logfmt  time=2026-11-28T01:02:03.456Z level=info node=n1 partition=3 msg="..."
 *   json {"time":"2026-11-28T01:02:03.456Z","level":"info","node":"n1","partition":3,"msg":"..."}
 *
 * Every writer of the process (the node's roles through node/log.h,
 * librdkafka's own lines through kafka/kconf.c) goes through here, so a
 * process's stderr is in one format. Thread-safe.
 */
#ifndef SMC_CORE_LOGLINE_H
#define SMC_CORE_LOGLINE_H

#include <stddef.h>

enum { SMC_LOGFMT_TEXT = 0, SMC_LOGFMT_LOGFMT = 1, SMC_LOGFMT_JSON = 2 };

void smc_logline_set_format(int format);
int smc_logline_format(void);
/* "text", "logfmt" or "json"; -1 if none of them. */
int smc_logline_parse_format(const char *s);

/* One field after time and level: a string (str, NULL = left out) or, when
 * str is NULL and is_num is set, an integer. */
typedef struct smc_logfield {
  const char *key;
  const char *str;
  long long num;
  int is_num;
} smc_logfield_t;

/* Write a line: the time now (UTC, ms), level ("error", "warn", "info",
 * "debug"), the fields in order, then msg. Values are escaped for the
 * format (JSON strings stay valid UTF-8: a byte that is not is written as
 * U+FFFD; in text and logfmt control characters are escaped), so a line is
 * always one line that parses. The message is cut after 3000 bytes, a field
 * after 256 (with "..."), and at most 8 fields are written. */
void smc_logline_write(const char *level, const smc_logfield_t *fields, size_t n, const char *msg);

#endif
