/*
 * Gateway core: libmicrohttpd setup, per-connection request state (body
 * accumulation and limits), routing, answers and HTTP metrics.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/duration.h"
#include "gateway/gw_internal.h"
#include "base/metrics.h"
#include "smc/fold.h"

#define HARD_MARGIN 4096 /* connections above max_connections that still get a 503 */
/* the socket context of a connection that came beyond max_connections */
static char conn_over_limit;
#define CONN_OVER_LIMIT ((void *)&conn_over_limit)

#define MAX_HTTP_THREADS 16

void smc_gateway_config_default(smc_gateway_config_t *c) {
  memset(c, 0, sizeof(*c));
  c->listen = "127.0.0.1:8080";
  c->prefix = "smc.";
  c->max_body_bytes = 1024 * 1024;
  c->max_connections = 1024;
}

/* ------------------------------------------------------------- answers */

/*
 * The route template of a request path, for the HTTP metrics: the path with
 * its variable segments named ("/machine/{m}/object/{o}"), so that label
 * values stay few whatever clients send; "other" when no route matches.
 */
static const char *route_template(const char *url) {
  static const char *const fixed[] = {"/healthz", "/readyz",  "/metrics",      "/info",
                                      "/nodes",   "/machine", "/openapi.json", "/settings"};
  const char *seg[7];
  size_t len[7];
  int n = 0;
  for (const char *p = url ? url : ""; *p;) {
    while (*p == '/')
      p++;
    if (!*p)
      break;
    if (n == 7)
      return "other";
    seg[n] = p;
    len[n] = strcspn(p, "/");
    p += len[n++];
  }
  if (n == 1)
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
      if (len[0] == strlen(fixed[i]) - 1 && !strncmp(seg[0], fixed[i] + 1, len[0]))
        return fixed[i];
  if (n == 2 && len[0] == 8 && !strncmp(seg[0], "proposal", 8))
    return "/proposal/{id}";
  if ((n == 1 || n == 2) && len[0] == 2 && !strncmp(seg[0], "ui", 2))
    return n == 1 ? "/ui" : "/ui/{asset}";
  if (n < 2 || len[0] != 7 || strncmp(seg[0], "machine", 7))
    return "other";
  if (n == 2)
    return "/machine/{m}";
  if (n == 3 && len[2] == 7 && !strncmp(seg[2], "diagram", 7))
    return "/machine/{m}/diagram";
  if (n == 3 && len[2] == 6 && !strncmp(seg[2], "object", 6))
    return "/machine/{m}/object";
  if (n < 4 || len[2] != 6 || strncmp(seg[2], "object", 6))
    return "other";
  if (n == 4)
    return "/machine/{m}/object/{o}";
  if (n == 5 && len[4] == 5 && !strncmp(seg[4], "watch", 5))
    return "/machine/{m}/object/{o}/watch";
  if (n == 5 && len[4] == 7 && !strncmp(seg[4], "history", 7))
    return "/machine/{m}/object/{o}/history";
  if (n == 5 && len[4] == 7 && !strncmp(seg[4], "pending", 7))
    return "/machine/{m}/object/{o}/pending";
  if (n == 6 && len[4] == 10 && !strncmp(seg[4], "transition", 10))
    return "/machine/{m}/object/{o}/transition/{t}";
  return "other";
}

/* The method as a label value: the ones the API has, else "other". */
static const char *method_label(const char *m) {
  static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  for (size_t i = 0; m && i < sizeof(known) / sizeof(known[0]); i++)
    if (!strcmp(m, known[i]))
      return known[i];
  return "other";
}

static void observe(gw_req_t *r, unsigned status) {
  char labels[160];
  const char *route = route_template(r->url);
  snprintf(labels, sizeof(labels), "code=\"%u\",method=\"%s\",route=\"%s\"", status,
           method_label(r->method), route);
  smc_metrics_counter_add("smc_http_requests_total", labels, 1);
  snprintf(labels, sizeof(labels), "route=\"%s\"", route);
  smc_metrics_histogram_observe("smc_http_request_duration_seconds", labels,
                                (double)(smc_now_ms() - r->start_ms) / 1000.0);
}

/* The methods the route of r answers, for the Allow header of a 405. */
static const char *allowed_methods(const gw_req_t *r) {
  if (r->nsegs == 2 && !strcmp(r->segs[0], "machine"))
    return "GET, HEAD, POST";
  if (r->nsegs == 6 && !strcmp(r->segs[0], "machine"))
    return "PUT, PATCH";
  return "GET, HEAD";
}

enum MHD_Result smc_gw_queue(gw_req_t *r, unsigned status, struct MHD_Response *resp) {
  if (r->deferred) { /* a pool thread: queued on the HTTP thread that resumes it */
    if (r->ctx->resp)
      MHD_destroy_response(r->ctx->resp);
    r->ctx->resp = resp;
    r->ctx->status = status;
    return MHD_YES;
  }
  enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
  MHD_destroy_response(resp);
  return rc;
}

enum MHD_Result smc_gw_reply_raw(gw_req_t *r, unsigned status, const char *content_type, char *data,
                                 size_t len) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      len, data ? data : (char *)"", data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    free(data);
    return MHD_NO;
  }
  if (content_type)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (status == 503 || status == 413 || status == 501)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  if (status == 405)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allowed_methods(r));
  enum MHD_Result rc = smc_gw_queue(r, status, resp);
  observe(r, status);
  return rc;
}

enum MHD_Result smc_gw_reply_static(gw_req_t *r, unsigned status, const char *content_type,
                                    const void *data, size_t len, const char *const *hdrs) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, (void *)(data ? data : ""), MHD_RESPMEM_PERSISTENT);
  if (!resp)
    return MHD_NO;
  if (content_type)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  for (size_t i = 0; hdrs && hdrs[i] && hdrs[i + 1]; i += 2)
    MHD_add_response_header(resp, hdrs[i], hdrs[i + 1]);
  enum MHD_Result rc = smc_gw_queue(r, status, resp);
  observe(r, status);
  return rc;
}

enum MHD_Result smc_gw_reply_json(gw_req_t *r, unsigned status, json_t *body) {
  char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
  json_decref(body);
  if (!text) { /* out of memory, or a string that is not UTF-8 slipped in */
    static const char fallback[] =
        "{\"error\":{\"code\":\"internal\",\"message\":\"the answer could not be encoded\"}}";
    char *copy = strdup(fallback);
    return smc_gw_reply_raw(r, 500, "application/json", copy, copy ? strlen(copy) : 0);
  }
  size_t n = strlen(text);
  char *withnl = realloc(text, n + 2);
  if (withnl) {
    withnl[n++] = '\n';
    withnl[n] = '\0';
    text = withnl;
  }
  return smc_gw_reply_raw(r, status, "application/json", text, n);
}

enum MHD_Result smc_gw_reply_error(gw_req_t *r, unsigned status, int code, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  /* Messages and paths may quote client bytes: JSON strings must be UTF-8. */
  const char *path = r->url;
  if (!smc_gw_utf8_valid((const unsigned char *)path, strlen(path)))
    path = "(not valid UTF-8)";
  if (!smc_gw_utf8_valid((const unsigned char *)msg, strlen(msg)))
    snprintf(msg, sizeof(msg), "%s (details not valid UTF-8)", smc_strerror(code));
  return smc_gw_reply_json(r, status,
                           json_pack("{s:{s:s, s:s, s:s}}", "error", "code", smc_code_name(code),
                                     "message", msg, "path", path));
}

const char *smc_gw_arg(gw_req_t *r, const char *key) {
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *smc_gw_header(gw_req_t *r, const char *key) {
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, key);
}

int64_t smc_gw_parse_duration(const char *s) {
  int64_t ms;
  return smc_duration_parse(s, 0, &ms) < 0 ? -1 : ms;
}

int smc_gw_ctype_is(const char *ct, const char *mt) {
  if (!ct)
    return 0;
  while (*ct == ' ')
    ct++;
  size_t n = strlen(mt);
  return !strncasecmp(ct, mt, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
int smc_gw_utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    size_t k;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      k = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      k = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      k = 3, cp = c & 0x07;
    } else {
      return 0;
    }
    for (size_t j = 1; j <= k; j++) {
      if (i + j >= n || (s[i + j] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + j] & 0x3F);
    }
    if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += k + 1;
  }
  return 1;
}

json_t *smc_gw_body_json(gw_req_t *r, json_t *empty_default, enum MHD_Result *answered) {
  const char *ct = smc_gw_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (r->body_len == 0 && empty_default)
    return json_incref(empty_default);
  if (ct && !smc_gw_ctype_is(ct, "application/json")) {
    *answered = smc_gw_reply_error(r, 415, SMC_EBAD_REQUEST,
                                   "Content-Type must be application/json, not %s", ct);
    return NULL;
  }
  if (!smc_gw_utf8_valid((const unsigned char *)r->body, r->body_len)) {
    *answered = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST, "the body is not valid UTF-8");
    return NULL;
  }
  json_error_t je;
  json_t *v = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &je);
  if (!v) {
    *answered =
        smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST, "malformed JSON at line %d, column %d: %s",
                           je.line, je.column, je.text);
    return NULL;
  }
  return v;
}

/* ------------------------------------------------------------- routing */

static enum MHD_Result route_info(gw_req_t *r) {
  smc_gateway_t *gw = r->gw;
  json_t *parts = json_array();
  if (gw->owned_partitions) {
    int32_t buf[4096];
    size_t n = gw->owned_partitions(gw->opaque, buf, 4096);
    for (size_t i = 0; i < n && i < 4096; i++)
      json_array_append_new(parts, json_integer(buf[i]));
  }
  return smc_gw_reply_json(r, 200,
                           json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:b}", "node_id", gw->node_id,
                                     "roles", gw->roles, "bootstrap", gw->bootstrap, "prefix",
                                     gw->prefix, "http", gw->address, "partitions", parts,
                                     "catalog_loaded", smc_gw_follower_caught_up(gw->follower)));
}

int smc_gateway_ready(const smc_gateway_t *gw) {
  return smc_gw_follower_caught_up(gw->follower) && (gw->ready ? gw->ready(gw->opaque) : 1);
}

static enum MHD_Result route_readyz(gw_req_t *r) {
  smc_gateway_t *gw = r->gw;
  int caught = smc_gw_follower_caught_up(gw->follower);
  int restored = gw->ready ? gw->ready(gw->opaque) : 1;
  if (caught && restored)
    return smc_gw_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
  return smc_gw_reply_json(r, 503,
                           json_pack("{s:s, s:b, s:b}", "status", "starting", "catalog_loaded",
                                     caught, "partitions_restored", restored));
}

static enum MHD_Result route_metrics(gw_req_t *r) {
  char *text = smc_metrics_render();
  if (!text)
    return smc_gw_reply_error(r, 500, SMC_ENOMEM, "out of memory");
  return smc_gw_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
}

/* The OpenAPI document, docs/openapi.json compiled in (cmake/embed.cmake). */
static enum MHD_Result route_openapi(gw_req_t *r) {
  char *copy = malloc(smc_openapi_json_len + 1);
  if (!copy)
    return smc_gw_reply_error(r, 500, SMC_ENOMEM, "out of memory");
  memcpy(copy, smc_openapi_json, smc_openapi_json_len + 1);
  return smc_gw_reply_raw(r, 200, "application/json", copy, smc_openapi_json_len);
}

int smc_gw_split_path(char *path, char **segs, int max) {
  int n = 0;
  if (*path != '/')
    return SMC_GW_PATH_EMPTY_SEGMENT;
  if (!path[1])
    return 0; /* "/" */
  for (char *p = path + 1;;) {
    char *slash = strchr(p, '/');
    if (slash == p || !*p)
      return SMC_GW_PATH_EMPTY_SEGMENT; /* "//", or a trailing "/" */
    if (n == max)
      return SMC_GW_PATH_TOO_MANY;
    segs[n++] = p;
    if (!slash)
      return n;
    *slash = '\0';
    p = slash + 1;
  }
}

/* GET /settings: the fold settings (protocol.md "settings") in force in
 * each partition this node folds, from its folds; an empty list when it
 * folds none. */
static enum MHD_Result route_settings(gw_req_t *r) {
  char *text = NULL;
  int rc = smc_answers_settings(r->gw->answers, smc_now_ms() + 5000, &text);
  if (rc)
    return smc_gw_reply_error(r, 503, rc, "the folds did not answer: %s", smc_strerror(rc));
  json_t *parts = json_loads(text, 0, NULL);
  free(text);
  return smc_gw_reply_json(r, 200,
                           json_pack("{s:o, s:i}", "partitions", parts ? parts : json_array(),
                                     "fold", SMC_FOLD_VERSION));
}

/* Route the parsed path r->segs (parse_path ran, authorized passed). */
enum MHD_Result smc_gw_dispatch(gw_req_t *r) {
  int get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
  enum MHD_Result rc;
  if (smc_gw_check_query(r, &rc)) /* a query parameter the route does not take */
    return rc;
  if (r->nsegs == 1 && (!strcmp(r->segs[0], "healthz") || !strcmp(r->segs[0], "readyz") ||
                        !strcmp(r->segs[0], "metrics") || !strcmp(r->segs[0], "info") ||
                        !strcmp(r->segs[0], "nodes") || !strcmp(r->segs[0], "openapi.json") ||
                        !strcmp(r->segs[0], "settings"))) {
    if (!get)
      rc = smc_gw_reply_error(r, 405, SMC_EBAD_REQUEST, "method %s not allowed here", r->method);
    else if (!strcmp(r->segs[0], "healthz"))
      rc = smc_gw_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
    else if (!strcmp(r->segs[0], "readyz"))
      rc = route_readyz(r);
    else if (!strcmp(r->segs[0], "metrics"))
      rc = route_metrics(r);
    else if (!strcmp(r->segs[0], "openapi.json"))
      rc = route_openapi(r);
    else if (!strcmp(r->segs[0], "settings"))
      rc = route_settings(r);
    else if (!strcmp(r->segs[0], "nodes"))
      rc = smc_gw_reply_json(r, 200,
                             json_pack("{s:o, s:I}", "nodes",
                                       smc_gw_nodes_list(r->gw->nodes, r->gw->node_down_ms),
                                       "down_after_ms", (json_int_t)r->gw->node_down_ms));
    else
      rc = route_info(r);
  } else if (r->nsegs >= 1 && !strcmp(r->segs[0], "machine")) {
    if (r->nsegs >= 4 && !strcmp(r->segs[2], "object"))
      rc = smc_gw_route_object(r);
    else if (r->nsegs == 3 && !strcmp(r->segs[2], "object"))
      rc = smc_gw_route_list(r);
    else
      rc = smc_gw_route_machine(r);
  } else if (r->nsegs == 2 && !strcmp(r->segs[0], "proposal")) {
    rc = smc_gw_route_proposal(r);
  } else if (r->nsegs >= 1 && !strcmp(r->segs[0], "ui")) {
    rc = smc_gw_route_ui(r);
  } else {
    rc = smc_gw_reply_error(r, 404, SMC_ENOT_FOUND, "no such resource");
  }
  return rc;
}

/* Parse r->url once into r->segs (in copy, which the caller frees):
 * authorization and routing both read this parse, never the raw URL. 1
 * when the request may go on, else the error is queued in *rc. */
static int parse_path(gw_req_t *r, char *copy, enum MHD_Result *rc) {
  int n = smc_gw_split_path(copy, r->segs, (int)(sizeof(r->segs) / sizeof(r->segs[0])));
  r->nsegs = n > 0 ? n : 0;
  if (n == SMC_GW_PATH_EMPTY_SEGMENT) {
    *rc = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                             "the path has an empty segment (a doubled or trailing '/')");
    return 0;
  }
  if (n == SMC_GW_PATH_TOO_MANY) {
    *rc = smc_gw_reply_error(r, 404, SMC_ENOT_FOUND, "no such resource");
    return 0;
  }
  for (int i = 0; i < r->nsegs; i++)
    if (!smc_gw_utf8_valid((const unsigned char *)r->segs[i], strlen(r->segs[i]))) {
      *rc = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST, "the path is not valid UTF-8");
      return 0;
    }
  return 1;
}

/*
 * Bearer tokens file: {"<token>": GRANT, ...}, GRANT = {"machines": M,
 * "read_only": bool}. M is "*" (every path, every right), a list of machine
 * names (read, propose and vote on /machine/{name}/... of those), or an
 * object {"<machine>" | "*": ["read", "propose", "vote", "register"]}
 * giving rights per machine ("*" applies to every machine and to the paths
 * of no machine: /machine, /proposal/{id}, /metrics, /info). A request
 * needs one right: GET/HEAD read, PATCH vote, a write under
 * /machine/{name}/object/ propose, any other write register. read_only
 * leaves only read. /healthz, /readyz and /openapi.json stay open. GRANT may name a
 * "proposer": the meta.proposer of every proposal made with the token (an
 * X-Smc-Proposer header that differs is refused; routes_object.c).
 */
enum {
  RIGHT_READ = SMC_GW_RIGHT_READ,
  RIGHT_PROPOSE = SMC_GW_RIGHT_PROPOSE,
  RIGHT_VOTE = SMC_GW_RIGHT_VOTE,
  RIGHT_REGISTER = SMC_GW_RIGHT_REGISTER,
  RIGHT_ALL = 15
};

static const char *const right_names[] = {"read", "propose", "vote", "register"};

/* Rights a list of right names gives, or -1 when one is unknown. */
static int rights_of(const json_t *list) {
  int bits = 0;
  size_t i;
  json_t *v;
  if (!json_is_array(list))
    return -1;
  json_array_foreach(list, i, v) {
    int known = 0;
    for (int b = 0; b < 4 && json_is_string(v); b++)
      if (!strcmp(json_string_value(v), right_names[b]))
        bits |= 1 << b, known = 1;
    if (!known)
      return -1;
  }
  return bits;
}

/* Rights of grant g on machine name[0..n) (name NULL: a path of no machine). */
static int grant_rights(const json_t *g, const char *name, size_t n) {
  const json_t *m = json_object_get(g, "machines");
  int bits = 0;
  if (json_is_string(m)) {
    bits = !strcmp(json_string_value(m), "*") ? RIGHT_ALL : 0;
  } else if (json_is_array(m)) {
    size_t i;
    json_t *v;
    json_array_foreach(m, i, v) {
      const char *s = json_string_value(v);
      if (name && s && strlen(s) == n && !strncmp(s, name, n))
        bits = RIGHT_READ | RIGHT_PROPOSE | RIGHT_VOTE;
    }
  } else if (json_is_object(m)) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) {
      if (!strcmp(k, "*") || (name && strlen(k) == n && !strncmp(k, name, n))) {
        int r = rights_of(v);
        bits |= r > 0 ? r : 0;
      }
    }
  }
  if (json_is_true(json_object_get(g, "read_only")))
    bits &= RIGHT_READ;
  return bits;
}

int smc_gw_required_right(const char *method, char *const *segs, int nsegs, const char **machine) {
  *machine = NULL;
  int object_path = 0;
  if (nsegs >= 2 && !strcmp(segs[0], "machine")) {
    *machine = segs[1];
    object_path = nsegs >= 3 && !strcmp(segs[2], "object");
  }
  if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
    return SMC_GW_RIGHT_READ;
  if (!strcmp(method, "PATCH"))
    return SMC_GW_RIGHT_VOTE;
  return object_path ? SMC_GW_RIGHT_PROPOSE : SMC_GW_RIGHT_REGISTER;
}

/* Returns 1 when the request may go on, else queues 401/403. Reads the
 * parsed path (r->segs), the same one dispatch routes by; sets r->grant. */
static int authorized(gw_req_t *r, enum MHD_Result *rc) {
  if (!r->gw->tokens)
    return 1;
  if (r->nsegs == 1 && (!strcmp(r->segs[0], "healthz") || !strcmp(r->segs[0], "readyz") ||
                        !strcmp(r->segs[0], "openapi.json")))
    return 1;
  /* the console's files: the page itself asks for a token and sends it */
  if (r->nsegs >= 1 && r->nsegs <= 2 && !strcmp(r->segs[0], "ui"))
    return 1;
  const char *h = smc_gw_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
  json_t *grant =
      (h && !strncasecmp(h, "Bearer ", 7)) ? json_object_get(r->gw->tokens, h + 7) : NULL;
  if (!grant) {
    *rc = smc_gw_reply_error(r, 401, SMC_EUNAUTHORIZED, "a valid bearer token is required");
    return 0;
  }
  r->grant = grant;
  const char *name = NULL;
  int need = smc_gw_required_right(r->method, r->segs, r->nsegs, &name);
  if (grant_rights(grant, name, name ? strlen(name) : 0) & need)
    return 1;
  const char *what = need == SMC_GW_RIGHT_READ      ? "read"
                     : need == SMC_GW_RIGHT_VOTE    ? "vote on"
                     : need == SMC_GW_RIGHT_PROPOSE ? "propose to"
                                                    : "write";
  *rc = smc_gw_reply_error(r, 403, SMC_EFORBIDDEN, "this token may not %s %s", what, r->url);
  return 0;
}

/* A route of r that never blocks: it answers at once, or waits without a
 * thread (smc_gw_wait). The others run on the blocking pool. */
static int runs_inline(const gw_req_t *r) {
  int get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
  if (r->nsegs == 0)
    return 1;
  if (r->nsegs == 1)
    return strcmp(r->segs[0], "settings") && (get || strcmp(r->segs[0], "machine"));
  if (!strcmp(r->segs[0], "ui"))
    return 1;
  if (strcmp(r->segs[0], "machine") || r->nsegs < 4 || strcmp(r->segs[2], "object"))
    return 0;
  return (r->nsegs == 4 && get) ||
         (r->nsegs == 6 && !strcmp(r->segs[4], "transition") && !strcmp(r->method, "PUT"));
}

static void dispatch_job(gw_req_t *r) { smc_gw_dispatch(r); }

/* libmicrohttpd resumed r: queue the answer a pool thread kept, or run the
 * continuation of the route that waited. */
static enum MHD_Result on_resume(gw_ctx_t *ctx) {
  gw_req_t *r = &ctx->req;
  r->deferred = 0;
  if (ctx->resp) {
    struct MHD_Response *resp = ctx->resp;
    ctx->resp = NULL;
    enum MHD_Result rc = MHD_queue_response(r->conn, ctx->status, resp);
    MHD_destroy_response(resp);
    return rc;
  }
  gw_cont_t k = ctx->cont;
  ctx->cont = NULL;
  if (k)
    return k(r);
  return MHD_NO; /* nothing was queued (out of memory on the pool thread): close */
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls) {
  (void)version;
  smc_gateway_t *gw = cls;
  gw_ctx_t *ctx = *con_cls;
  if (ctx && ctx->routed)
    return on_resume(ctx);
  gw_req_t r = {.gw = gw, .conn = conn, .method = method, .url = url};
  if (!ctx) {
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
      return MHD_NO;
    pthread_mutex_init(&ctx->mu, NULL);
    ctx->heap_idx = SIZE_MAX;
    ctx->start_ms = smc_now_ms();
    *con_cls = ctx;
    r.start_ms = ctx->start_ms;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if ((ci && ci->socket_context == CONN_OVER_LIMIT) || atomic_load(&gw->stopping)) {
      ctx->answered = 1;
      return smc_gw_reply_error(&r, 503, SMC_EUNAVAILABLE, "too many connections; retry later");
    }
    /* Only "chunked" is a transfer coding libmicrohttpd reads; with another
     * ("gzip, chunked") it cannot find the body's end and would hold the
     * connection until its timeout. RFC 9112 6.1: 501, and close. */
    const char *te =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te && strcasecmp(te, "chunked")) {
      ctx->answered = 1;
      return smc_gw_reply_error(&r, 501, SMC_EBAD_REQUEST,
                                "Transfer-Encoding '%s' is not supported (only chunked)", te);
    }
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > gw->max_body_bytes) {
      ctx->answered = 1;
      return smc_gw_reply_error(&r, 413, SMC_ETOO_LARGE, "the body is larger than %zu bytes",
                                gw->max_body_bytes);
    }
    return MHD_YES;
  }
  r.start_ms = ctx->start_ms;
  if (*upload_size) {
    if (!ctx->too_large && !ctx->answered) {
      if (ctx->len + *upload_size > gw->max_body_bytes) {
        ctx->too_large = 1;
        free(ctx->body);
        ctx->body = NULL;
        ctx->len = ctx->cap = 0;
      } else {
        if (ctx->len + *upload_size + 1 > ctx->cap) {
          size_t cap = (ctx->len + *upload_size + 1) * 2;
          char *b = realloc(ctx->body, cap);
          if (!b)
            return MHD_NO;
          ctx->body = b;
          ctx->cap = cap;
        }
        memcpy(ctx->body + ctx->len, upload_data, *upload_size);
        ctx->len += *upload_size;
        ctx->body[ctx->len] = '\0';
      }
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (ctx->answered)
    return MHD_YES;
  ctx->answered = 1;
  if (ctx->too_large)
    return smc_gw_reply_error(&r, 413, SMC_ETOO_LARGE, "the body is larger than %zu bytes",
                              gw->max_body_bytes);
  r.body = ctx->body;
  r.body_len = ctx->len;
  r.ctx = ctx;
  ctx->req = r;
  ctx->routed = 1;
  gw_req_t *rq = &ctx->req;
  if (!(ctx->path = strdup(url)))
    return smc_gw_reply_error(rq, 500, SMC_ENOMEM, "out of memory");
  enum MHD_Result rc;
  static const char *const to_ui[] = {MHD_HTTP_HEADER_LOCATION, "../ui", NULL};
  if (!strcmp(url, "/ui/")) /* the console's one address is /ui (a path has no trailing '/') */
    rc = smc_gw_reply_static(rq, 308, "text/plain; charset=utf-8", "", 0, to_ui);
  else if (!parse_path(rq, ctx->path, &rc) || !authorized(rq, &rc))
    ; /* answered */
  else if (runs_inline(rq))
    rc = smc_gw_dispatch(rq);
  else
    rc = smc_gw_offload(rq, dispatch_job) == 0 ? MHD_YES : MHD_NO;
  return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls, (void)conn, (void)toe;
  gw_ctx_t *ctx = *con_cls;
  if (!ctx)
    return;
  if (ctx->routed) {
    if (ctx->release) /* a route still waiting (the client went away) */
      ctx->release(&ctx->req);
    smc_gw_disarm(&ctx->req);
  }
  if (ctx->resp)
    MHD_destroy_response(ctx->resp);
  pthread_mutex_lock(&ctx->mu); /* a waker that resumed it has let go */
  pthread_mutex_unlock(&ctx->mu);
  pthread_mutex_destroy(&ctx->mu);
  free(ctx->path);
  free(ctx->body);
  free(ctx);
  *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  (void)conn;
  smc_gateway_t *gw = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    /* the connections beyond max_connections, in the order they came, get
     * their 503 (and are closed); counting at the first request instead
     * would refuse every connection while many are open at once */
    if ((unsigned)atomic_fetch_add(&gw->connections, 1) >= gw->max_connections)
      *socket_context = CONN_OVER_LIMIT;
  } else {
    atomic_fetch_sub(&gw->connections, 1);
  }
  smc_metrics_gauge_set("smc_http_connections", NULL, atomic_load(&gw->connections));
}

/* ------------------------------------------------------------ lifecycle */

static char *dup_or(const char *s, const char *def) { return strdup(s ? s : def); }

static int copy_config(smc_gateway_t *gw, const smc_gateway_config_t *cfg) {
  gw->listen = dup_or(cfg->listen, "127.0.0.1:8080");
  gw->bootstrap = dup_or(cfg->bootstrap, "");
  gw->prefix = dup_or(cfg->prefix, "smc.");
  gw->node_id = dup_or(cfg->node_id, "gateway");
  gw->roles = dup_or(cfg->roles, "http");
  gw->max_body_bytes = cfg->max_body_bytes ? cfg->max_body_bytes : 1024 * 1024;
  gw->max_connections = cfg->max_connections ? cfg->max_connections : 1024;
  gw->cache_bytes = cfg->cache_bytes ? cfg->cache_bytes : SMC_GW_CACHE_BYTES_DEFAULT;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  gw->http_threads = cfg->http_threads         ? cfg->http_threads
                     : cpus < 2                ? 2
                     : cpus > MAX_HTTP_THREADS ? MAX_HTTP_THREADS
                                               : (unsigned)cpus;
  smc_limits_default(&gw->limits);
  if (cfg->max_definition_bytes)
    gw->limits.definition_max_bytes = cfg->max_definition_bytes;
  gw->owned_partitions = cfg->owned_partitions;
  gw->ready = cfg->ready;
  gw->opaque = cfg->opaque;
  size_t n = 0;
  while (cfg->kafka_props && cfg->kafka_props[n] && cfg->kafka_props[n + 1])
    n += 2;
  gw->kafka_props = calloc(n + 1, sizeof(char *));
  if (!gw->kafka_props)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (!(gw->kafka_props[i] = strdup(cfg->kafka_props[i])))
      return -1;
  return (gw->listen && gw->bootstrap && gw->prefix && gw->node_id && gw->roles) ? 0 : -1;
}

/* "host:port" -> sockaddr_in (IPv4). */
static int parse_listen(const char *listen, struct sockaddr_in *sa, smc_error_t *err) {
  const char *colon = strrchr(listen, ':');
  if (!colon || colon == listen)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "listen address '%s' is not HOST:PORT",
                         listen);
  char host[256];
  size_t hl = (size_t)(colon - listen);
  if (hl >= sizeof(host))
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "listen host too long");
  memcpy(host, listen, hl);
  host[hl] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535 || end == colon + 1)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "bad port in '%s'", listen);
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
  if (getaddrinfo(host, NULL, &hints, &ai) || !ai)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "cannot resolve '%s'", host);
  memcpy(sa, ai->ai_addr, sizeof(*sa));
  freeaddrinfo(ai);
  sa->sin_port = htons((uint16_t)port);
  return 0;
}

static int load_tokens(smc_gateway_t *gw, const char *file, smc_error_t *err) {
  json_error_t je;
  gw->tokens = json_load_file(file, 0, &je);
  if (!gw->tokens)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "tokens file %s: %s (line %d)", file,
                         je.text, je.line);
  if (!json_is_object(gw->tokens))
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "tokens file %s: not a JSON object",
                         file);
  /* refuse a grant we would misread rather than deny or allow by surprise */
  const char *tok;
  json_t *g;
  size_t idx = 1; /* entries are counted, never named: tokens are secrets */
  json_object_foreach(gw->tokens, tok, g) {
    json_t *m = json_is_object(g) ? json_object_get(g, "machines") : NULL;
    json_t *ro = json_is_object(g) ? json_object_get(g, "read_only") : NULL;
    json_t *pr = json_is_object(g) ? json_object_get(g, "proposer") : NULL;
    int ok = m && (!ro || json_is_boolean(ro)) &&
             (!pr || (json_is_string(pr) && json_string_length(pr) > 0 &&
                      smc_gw_utf8_valid((const unsigned char *)json_string_value(pr),
                                        json_string_length(pr))));
    if (ok && json_is_string(m)) {
      ok = !strcmp(json_string_value(m), "*");
    } else if (ok && json_is_array(m)) {
      size_t i;
      json_t *v;
      json_array_foreach(m, i, v) ok &= json_is_string(v);
    } else if (ok && json_is_object(m)) {
      const char *k;
      json_t *v;
      json_object_foreach(m, k, v) ok &= rights_of(v) >= 0;
    } else {
      ok = 0;
    }
    if (!ok)
      return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL,
                           "tokens file %s: entry %zu: \"machines\" must be \"*\", a "
                           "list of machine names or {machine: [read|propose|vote|register]}, "
                           "\"read_only\" a boolean, \"proposer\" a non-empty string",
                           file, idx);
    idx++;
  }
  return 0;
}

/* HELP lines of the gateway's counters, each exported from 0 for its known
 * label sets. */
static void describe_gateway_counters(void) {
  static const struct {
    const char *name, *help, *labels[2];
  } c[] = {
      {"smc_gateway_answers_total",
       "PUT answers by where the decision came from: a fold of this process or the "
       "confirmations topic.",
       {"source=\"confirmations\"", "source=\"fold\""}},
      {"smc_gateway_reads_total",
       "GET reads by path: this process's fold, or a read event through the log.",
       {"source=\"fold\"", "source=\"log\""}},
      {"smc_gateway_forwards_total",
       "Requests forwarded to the node folding the object's partition, by result.",
       {"result=\"answered\"", "result=\"failed\""}},
  };
  for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
    smc_metrics_describe(c[i].name, SMC_METRIC_COUNTER, c[i].help);
    for (size_t k = 0; k < 2; k++)
      smc_metrics_counter_add(c[i].name, c[i].labels[k], 0);
  }
  /* the first scrape's own series, so the family never shows without one */
  smc_metrics_counter_add("smc_http_requests_total",
                          "code=\"200\",method=\"GET\",route=\"/metrics\"", 0);
}

int smc_gateway_start(const smc_gateway_config_t *cfg, smc_gateway_t **out, smc_error_t *err) {
  int rc;
  *out = NULL;
  if (!cfg || !cfg->bootstrap || !*cfg->bootstrap)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "the gateway needs a Kafka bootstrap");
  smc_gateway_t *gw = calloc(1, sizeof(*gw));
  if (!gw)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  if (copy_config(gw, cfg) < 0) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  struct sockaddr_in sa;
  if ((rc = parse_listen(gw->listen, &sa, err)) < 0)
    goto fail;
  if (cfg->auth_tokens_file && (rc = load_tokens(gw, cfg->auth_tokens_file, err)) < 0)
    goto fail;
  smc_client_config_t cc = {.bootstrap = gw->bootstrap,
                            .prefix = gw->prefix,
                            .properties = (const char *const *)gw->kafka_props,
                            .client_id = "smc-gateway",
                            /* decisions come from the follower and the folds */
                            .no_confirmations = 1};
  if ((rc = smc_client_new(&cc, &gw->client, err)) < 0)
    goto fail;
  gw->node_down_ms = cfg->node_down_ms > 0 ? cfg->node_down_ms : 10000;
  if (!(gw->nodes = smc_gw_nodes_new())) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  gw->answers = cfg->answers;
  if (!gw->answers) { /* answers from smc.confirmations only */
    if (!(gw->answers = smc_answers_new())) {
      rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
      goto fail;
    }
    gw->own_answers = 1;
  }
  if ((rc = smc_gw_follower_start(gw, &gw->follower, err)) < 0)
    goto fail;
  /* Serve with the catalog loaded when the cluster allows (bounded wait). */
  for (int64_t until = smc_now_ms() + 10000;
       !smc_gw_follower_caught_up(gw->follower) && smc_now_ms() < until;)
    usleep(20 * 1000);
  smc_metrics_describe("smc_http_requests_total", SMC_METRIC_COUNTER,
                       "HTTP requests answered, by status code, method and route template.");
  smc_metrics_describe("smc_http_request_duration_seconds", SMC_METRIC_HISTOGRAM,
                       "HTTP request latency until the answer is queued, by route template.");
  smc_metrics_describe("smc_http_connections", SMC_METRIC_GAUGE, "Open HTTP connections.");
  describe_gateway_counters();
  if (smc_gw_loop_start(gw) < 0) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "cannot start the gateway's timer thread");
    goto fail;
  }
  /* A few epoll threads serve every connection; a waiting request is
   * suspended, holding none of them (loop.c). */
  gw->daemon = MHD_start_daemon(
      MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC, 0, NULL, NULL,
      on_request, gw, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
      gw->http_threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)(gw->max_connections + HARD_MARGIN),
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
      MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1024 * 1024),
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, gw, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
      gw, MHD_OPTION_END);
  if (!gw->daemon) {
    rc = smc_error_set(err, SMC_EIO, NULL, "cannot listen on %s", gw->listen);
    goto fail;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(gw->daemon, MHD_DAEMON_INFO_BIND_PORT);
  char addr[300], host[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host));
  snprintf(addr, sizeof(addr), "%s:%u", host,
           di ? (unsigned)di->port : (unsigned)ntohs(sa.sin_port));
  if (!(gw->address = strdup(addr))) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  *out = gw;
  return 0;
fail:
  smc_gateway_stop(gw);
  return rc;
}

void smc_gateway_stop(smc_gateway_t *gw) {
  if (!gw)
    return;
  atomic_store(&gw->stopping, 1);
  if (gw->follower)
    smc_gw_follower_halt(gw->follower); /* wakes watchers so pool jobs end */
  smc_gw_loop_drain(gw);                /* every suspended request answered and resumed */
  if (gw->daemon)
    MHD_stop_daemon(gw->daemon);
  smc_gw_loop_stop(gw);
  smc_gw_follower_stop(gw->follower);
  smc_client_destroy(gw->client);
  if (gw->own_answers)
    smc_answers_destroy(gw->answers);
  smc_gw_nodes_destroy(gw->nodes);
  json_decref(gw->tokens);
  for (char **p = gw->kafka_props; p && *p; p++)
    free(*p);
  free(gw->kafka_props);
  free(gw->listen);
  free(gw->bootstrap);
  free(gw->prefix);
  free(gw->node_id);
  free(gw->roles);
  free(gw->address);
  free(gw);
}

const char *smc_gateway_address(const smc_gateway_t *gw) { return gw->address; }
