/* Fuzz target: the pure request-parsing helpers of the gateway
 * (src/gateway/gw_internal.h). Request routing itself lives inside the
 * libmicrohttpd callbacks of gateway.c and has no pure entry point; it is
 * covered by tests/data/bad/http.jsonl against `smc dev --http`.
 *  - smc_gw_utf8_valid agrees with an independent strict UTF-8 decoder
 *    (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF);
 *  - smc_gw_parse_duration returns -1 or a value in [0, SMC_DURATION_MAX_MS] ms, and for
 *    inputs "<digits>ms" / "<digits>s" / "<digits>m" (up to 9 digits) exactly
 *    the number times its unit;
 *  - smc_gw_ctype_is never reads past the string and matches
 *    "application/json" case-insensitively when the input starts with it;
 *  - the request path (issue 18): the input as a URL path, percent-decoded
 *    by libmicrohttpd's MHD_http_unescape as the daemon does, then split by
 *    smc_gw_split_path: a path with an empty segment ("//", a trailing '/',
 *    no leading '/', also when made by %2F) is refused; an accepted one has
 *    segments that rejoin to exactly the decoded path; and the machine
 *    whose right smc_gw_required_right asks for is segs[1] of the same
 *    parse the router uses, for every method. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/duration.h"
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

/* Reference: does the decoded path p have an empty segment (or no leading
 * '/')? "/" alone has none. */
static int ref_empty_segment(const char *p) {
  if (*p != '/')
    return 1;
  if (!p[1])
    return 0;
  for (const char *q = p; *q; q++)
    if (*q == '/' && (q[1] == '/' || q[1] == '\0'))
      return 1;
  return 0;
}

static void check_path(const char *s) {
  char *path = strdup(s);
  char *copy = NULL;
  if (!path)
    return;
  MHD_http_unescape(path); /* what the daemon hands the gateway */
  copy = strdup(path);
  if (!copy)
    goto out;
  char *segs[8];
  int n = smc_gw_split_path(copy, segs, 8);
  int empty = ref_empty_segment(path);
  if (n >= 0 && empty)
    fail("split_path accepted a path with an empty segment");
  if (n == SMC_GW_PATH_EMPTY_SEGMENT && !empty)
    fail("split_path refused a path without an empty segment");
  if (n < 0)
    goto out;
  size_t at = 0, len = strlen(path);
  for (int i = 0; i < n; i++) { /* the segments rejoin to the path */
    size_t k = strlen(segs[i]);
    if (!k || strchr(segs[i], '/') || at >= len || path[at] != '/' ||
        strncmp(path + at + 1, segs[i], k))
      fail("split_path's segments do not rejoin to the path");
    at += 1 + k;
  }
  if (at != (n ? len : 1) && !(n == 0 && !strcmp(path, "/")))
    fail("split_path lost part of the path");
  static const char *const methods[] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"};
  for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
    const char *machine = NULL;
    int need = smc_gw_required_right(methods[m], segs, n, &machine);
    int routed_machine = n >= 2 && !strcmp(segs[0], "machine");
    if (routed_machine ? machine != segs[1] : machine != NULL)
      fail("the right is checked on another machine than the route's");
    int want = m < 2                                                    ? SMC_GW_RIGHT_READ
               : m == 4                                                 ? SMC_GW_RIGHT_VOTE
               : routed_machine && n >= 3 && !strcmp(segs[2], "object") ? SMC_GW_RIGHT_PROPOSE
                                                                        : SMC_GW_RIGHT_REGISTER;
    if (need != want)
      fail("required_right disagrees with the rights model");
  }
out:
  free(copy);
  free(path);
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
  if (d != -1 && (d < 0 || d > SMC_DURATION_MAX_MS))
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
  check_path(s);
  free(s);
  return 0;
}
