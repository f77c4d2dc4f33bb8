#include "smc/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define COUNT_ (SMC_ERROR_LAST_ - SMC_ERROR_FIRST_ - 1)

static const char *const wire_names[] = {
#define X_(name, wire, meaning) wire,
    SMC_ERROR_TABLE(X_)
#undef X_
};

static const char *const meanings[] = {
#define X_(name, wire, meaning) meaning,
    SMC_ERROR_TABLE(X_)
#undef X_
};

static int table_index(int code) {
  if (code <= SMC_ERROR_FIRST_ || code >= SMC_ERROR_LAST_)
    return -1;
  return code - SMC_ERROR_FIRST_ - 1;
}

const char *smc_code_name(int code) {
  if (code == 0)
    return "ok";
  int i = table_index(code);
  return i < 0 ? "unknown" : wire_names[i];
}

const char *smc_strerror(int code) {
  if (code == 0)
    return "success";
  int i = table_index(code);
  return i < 0 ? "unknown error" : meanings[i];
}

int smc_code_from_name(const char *name) {
  if (!name)
    return 0;
  for (int i = 0; i < COUNT_; i++)
    if (strcmp(wire_names[i], name) == 0)
      return SMC_ERROR_FIRST_ + 1 + i;
  return 0;
}

/* Every field reads as empty afterwards; the text buffers are emptied by
 * their first byte only (1 KiB of memset per call showed in the fold's
 * profile: the fold clears one for every record). */
void smc_error_clear(smc_error_t *err) {
  if (!err)
    return;
  err->code = 0;
  err->message[0] = err->path[0] = err->file[0] = '\0';
  err->line = err->column = 0;
}

int smc_error_set(smc_error_t *err, int code, const char *path, const char *fmt, ...) {
  if (!err || err->code != 0)
    return code;
  err->code = code;
  if (path)
    snprintf(err->path, sizeof(err->path), "%s", path);
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
  } else {
    snprintf(err->message, sizeof(err->message), "%s", smc_strerror(code));
  }
  return code;
}
