/* Fuzz target: the pure request-parsing helpers of the gateway
 * (src/gateway/gw_internal.h). Request routing itself lives inside the
 * libmicrohttpd callbacks of gateway.c and has no pure entry point; it is
 * covered by tests/data/bad/http.jsonl against `smc dev --http`.
 *  - smc_gw_utf8_valid agrees with an independent strict UTF-8 decoder
 *    (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF);
 *  - smc_gw_parse_duration returns -1 or a value in [0, 6e13] ms, and for
 *    inputs "<digits>ms" / "<digits>s" / "<digits>m" (up to 9 digits) exactly
 *    the number times its unit;
 *  - smc_gw_ctype_is never reads past the string and matches
 *    "application/json" case-insensitively when the input starts with it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/gw_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what) {
  fprintf(stderr, "fuzz_http: %s\n", what);
  abort();
}

/* Reference strict UTF-8 validator, written from RFC 3629's table. */
static int ref_utf8(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (n - i < len)
      return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += len;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!!smc_gw_utf8_valid(data, size) != ref_utf8(data, size))
    fail("smc_gw_utf8_valid disagrees with the reference decoder");

  char *s = malloc(size + 1);
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = 0;
  int64_t d = smc_gw_parse_duration(s);
  if (d != -1 && (d < 0 || d > 60000000000000LL))
    fail("parse_duration out of range");
  if (d != smc_gw_parse_duration(s))
    fail("parse_duration not deterministic");
  size_t digits = strspn(s, "0123456789");
  if (digits >= 1 && digits <= 9 && strlen(s) == size) {
    long long v = strtoll(s, NULL, 10);
    const char *unit = s + digits;
    long long want = -2;
    if (!strcmp(unit, "ms"))
      want = v;
    else if (!strcmp(unit, "s") || !*unit)
      want = v * 1000;
    else if (!strcmp(unit, "m"))
      want = v * 60000;
    if (want != -2 && d != want)
      fail("parse_duration wrong for a plain duration");
  }
  int is = smc_gw_ctype_is(s, "application/json");
  const char *p = s;
  while (*p == ' ')
    p++;
  if (!strncasecmp(p, "application/json", 16) && (p[16] == 0 || p[16] == ';' || p[16] == ' ') &&
      !is)
    fail("ctype_is misses application/json");
  if (is && strncasecmp(p, "application/json", 16))
    fail("ctype_is accepts another type");
  free(s);
  return 0;
}
