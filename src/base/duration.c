/* The one duration grammar (duration.h). */
#include "base/duration.h"

#include <string.h>

static int64_t unit_ms(const char *u) {
  static const struct {
    const char *name;
    int64_t ms;
  } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (!strcmp(u, units[i].name))
      return units[i].ms;
  return -1;
}

int smc_duration_parse(const char *s, int strict, int64_t *ms) {
  if (!s || *s < '0' || *s > '9')
    return -1;
  const char *p = s;
  int64_t whole = 0;
  /* strict: at most 13 digits' worth, as the machine compiler always read
   * them (a definition must decide as it did) */
  int64_t most = strict ? 1000000000000LL : SMC_DURATION_MAX_MS;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (whole > most)
      return -1;
    whole = whole * 10 + (*p - '0');
  }
  int64_t frac = 0, scale = 1; /* the fraction, frac / scale, to 9 digits */
  if (*p == '.' && !strict) {
    if (p[1] < '0' || p[1] > '9')
      return -1;
    for (p++; *p >= '0' && *p <= '9'; p++)
      if (scale < 1000000000) {
        frac = frac * 10 + (*p - '0');
        scale *= 10;
      }
  }
  int64_t mul = *p ? unit_ms(p) : strict ? -1 : 1000;
  if (mul <= 0 || whole > SMC_DURATION_MAX_MS / mul)
    return -1;
  int64_t r = whole * mul + frac * mul / scale;
  if (r > SMC_DURATION_MAX_MS || (strict && r <= 0))
    return -1;
  *ms = r;
  return 0;
}
