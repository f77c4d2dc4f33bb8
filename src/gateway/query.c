/*
 * Query parameters: each route accepts a fixed set, and anything else is a
 * 400 naming the parameter, so a typo (?expected_version=7) never passes
 * silently as an unfenced request.
 */
#include <string.h>

#include "gateway/gw_internal.h"

typedef struct scan {
  const char *const *allowed;
  const char *bad; /* the first parameter not allowed (borrowed from MHD) */
} scan_t;

static enum MHD_Result check_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value) {
  (void)kind;
  (void)value;
  scan_t *s = cls;
  for (const char *const *a = s->allowed; *a; a++)
    if (key && !strcmp(key, *a))
      return MHD_YES;
  s->bad = key ? key : "";
  return MHD_NO;
}

/* The parameters the route of r accepts (NULL-terminated); NULL when r
 * names no route or a method the route does not have (the router answers
 * 404 or 405 then, with its Allow header). */
static const char *const *accepted(const gw_req_t *r) {
  static const char *const none[] = {NULL};
  static const char *const diagram[] = {"format", NULL};
  static const char *const list[] = {"limit", "after", NULL};
  static const char *const put[] = {"expect_version", "wait", "ack", NULL};
  static const char *const get[] = {"wait", NULL};
  static const char *const watch[] = {"after_version", "timeout", NULL};
  int n = r->nsegs, read = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
  const char *const *s = (const char *const *)r->segs;
  if (n >= 1 && !strcmp(s[0], "machine")) {
    if (n == 6 && !strcmp(s[2], "object") && !strcmp(s[4], "transition"))
      return !strcmp(r->method, "PUT") ? put : !strcmp(r->method, "PATCH") ? none : NULL;
    if (n == 2 && !strcmp(r->method, "POST"))
      return none;
    if (!read)
      return NULL;
    if (n == 3 && !strcmp(s[2], "diagram"))
      return diagram;
    if (n == 3 && !strcmp(s[2], "object"))
      return list;
    if (n <= 2)
      return none;
    if (n == 4 && !strcmp(s[2], "object"))
      return get;
    if (n == 5 && !strcmp(s[2], "object") && !strcmp(s[4], "watch"))
      return watch;
    if (n == 5 && !strcmp(s[2], "object") && !strcmp(s[4], "history"))
      return list;
    if (n == 5 && !strcmp(s[2], "object") && !strcmp(s[4], "pending"))
      return none;
    return NULL;
  }
  if (!read)
    return NULL;
  return n == 1 || (n == 2 && (!strcmp(s[0], "proposal") || !strcmp(s[0], "ui"))) ? none : NULL;
}

int smc_gw_check_query(gw_req_t *r, enum MHD_Result *res) {
  const char *const *allowed = accepted(r);
  if (!allowed)
    return 0;
  scan_t s = {allowed, NULL};
  MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, check_one, &s);
  if (!s.bad)
    return 0;
  char list[200] = "";
  for (const char *const *a = allowed; *a; a++)
    snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", a == allowed ? "" : ", ",
             *a);
  if (!smc_gw_utf8_valid((const unsigned char *)s.bad, strlen(s.bad)))
    s.bad = "(not valid UTF-8)";
  *res = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                            "unknown query parameter '%.100s' (this route accepts: %s)", s.bad,
                            allowed[0] ? list : "none");
  return 1;
}

int smc_gw_if_match(gw_req_t *r, int64_t *version) {
  const char *h = smc_gw_header(r, "If-Match");
  if (!h)
    return 0;
  while (*h == ' ')
    h++;
  if (!strncmp(h, "W/", 2))
    h += 2;
  size_t n = strlen(h);
  while (n && h[n - 1] == ' ')
    n--;
  if (n >= 2 && h[0] == '"' && h[n - 1] == '"') {
    h++;
    n -= 2;
  }
  if (n == 0 || n > 18)
    return -1;
  int64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (h[i] < '0' || h[i] > '9')
      return -1;
    v = v * 10 + (h[i] - '0');
  }
  *version = v;
  return 1;
}
