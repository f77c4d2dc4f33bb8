/*
 * The web console: GET /ui is its page, GET /ui/{asset} its script and
 * style sheet, all compiled into the binary from src/gateway/ui/
 * (cmake/embed_ui.cmake), so every gateway serves the same console as its
 * own API with nothing to install. The page is plain HTML, JavaScript and
 * CSS; it talks to this gateway's REST API only (relative URLs, the bearer
 * token of its token field on every request), so the files themselves hold
 * no data and are served without a token.
 *
 * Caching: a strong ETag (the file's SHA-256) and `Cache-Control: no-cache`,
 * so a browser revalidates each load and gets 304 until the binary changes.
 * The page's Content-Security-Policy allows this origin only: no inline
 * script, no other host (no CDN is ever needed).
 */
#include <string.h>

#include "gateway/gw_internal.h"

#define CSP                                                                                        \
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "                \
  "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

static const smc_gw_asset_t *find_asset(const char *name) {
  for (size_t i = 0; i < smc_gw_ui_asset_count; i++)
    if (!strcmp(smc_gw_ui_assets[i].name, name))
      return &smc_gw_ui_assets[i];
  return NULL;
}

/* Does an If-None-Match header (a list of validators, or "*") match etag? */
static int etag_matches(const char *inm, const char *etag) {
  if (!inm)
    return 0;
  size_t n = strlen(etag);
  for (const char *p = inm; *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    if (*p == '*')
      return 1;
    if (!strncmp(p, "W/", 2)) /* weak comparison, RFC 9110 13.1.2 */
      p += 2;
    if (!strncmp(p, etag, n) && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
      return 1;
    p += strcspn(p, ",");
  }
  return 0;
}

enum MHD_Result smc_gw_route_ui(gw_req_t *r) {
  if (r->nsegs > 2)
    return smc_gw_reply_error(r, 404, SMC_ENOT_FOUND, "no such resource");
  if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))
    return smc_gw_reply_error(r, 405, SMC_EBAD_REQUEST, "method %s not allowed here", r->method);
  const smc_gw_asset_t *a = find_asset(r->nsegs == 1 ? "index.html" : r->segs[1]);
  if (!a)
    return smc_gw_reply_error(r, 404, SMC_ENOT_FOUND, "the console has no file '%s'", r->segs[1]);
  int html = !strncmp(a->content_type, "text/html", 9);
  const char *hdrs[] = {MHD_HTTP_HEADER_ETAG,
                        a->etag,
                        MHD_HTTP_HEADER_CACHE_CONTROL,
                        "no-cache",
                        "X-Content-Type-Options",
                        "nosniff",
                        "Referrer-Policy",
                        "no-referrer",
                        html ? "Content-Security-Policy" : NULL,
                        CSP,
                        NULL};
  if (etag_matches(smc_gw_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), a->etag))
    return smc_gw_reply_static(r, 304, NULL, "", 0, hdrs);
  return smc_gw_reply_static(r, 200, a->content_type, a->data, a->len, hdrs);
}
