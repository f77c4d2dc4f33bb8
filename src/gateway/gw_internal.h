/* Private declarations shared by the gateway's files (not a public API). */
#ifndef SMC_GATEWAY_GW_INTERNAL_H
#define SMC_GATEWAY_GW_INTERNAL_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gateway/gateway.h"
#include "node/answers.h"
#include "smc/client.h"
#include "smc/machine.h"

/* ---- bounded LRU of JSON values keyed by string (follower.c) ---- */
typedef struct gw_lru gw_lru_t;
/* At most capacity entries and, when max_bytes > 0, at most about max_bytes
 * of memory (each entry's cost is estimated by smc_gw_json_cost). */
gw_lru_t *smc_gw_lru_new(size_t capacity);
void smc_gw_lru_set_max_bytes(gw_lru_t *l, size_t max_bytes);
void smc_gw_lru_destroy(gw_lru_t *l);
/* Insert or replace; takes a new reference of v. Evicts the least recently
 * used until both bounds hold (the newest entry always stays). */
void smc_gw_lru_put(gw_lru_t *l, const char *key, json_t *v);
/* The same, keeping a number with the entry (smc_gw_lru_get_num returns it). */
void smc_gw_lru_put_num(gw_lru_t *l, const char *key, json_t *v, int64_t num);
size_t smc_gw_lru_count(const gw_lru_t *l);
/* Estimated bytes of the entries held. */
size_t smc_gw_lru_bytes(const gw_lru_t *l);
/* Estimated heap bytes of a jansson value (its allocations with malloc's
 * per-chunk overhead); a value shared by two entries counts in both. */
size_t smc_gw_json_cost(const json_t *v);
/* New reference to the value, or NULL; marks it used. */
json_t *smc_gw_lru_get(gw_lru_t *l, const char *key);
/* The same; *num (when not NULL) gets the entry's number. */
json_t *smc_gw_lru_get_num(gw_lru_t *l, const char *key, int64_t *num);

/* ---- follower: machine catalog + confirmations (follower.c) ---- */
/* the longest proposal or object id an event can carry (codec.h) */
#define SMC_GW_ID_MAX 1024
/* The fields of a confirmation the follower indexes it by. */
typedef struct gw_conf_fields {
  char proposal[SMC_GW_ID_MAX + 1], object[SMC_GW_ID_MAX + 1], outcome[16];
  int64_t version; /* 0 when absent */
} gw_conf_fields_t;
/* Find proposal, object, outcome (strings without escapes) and version at the
 * top level of a confirmation's text without parsing the rest: 0, or -1 when
 * the text is not a JSON object with those three strings as the scan takes
 * them (the caller then parses it). */
int smc_gw_scan_confirmation(const char *text, size_t len, gw_conf_fields_t *cf);
typedef struct gw_follower gw_follower_t;
int smc_gw_follower_start(smc_gateway_t *gw, gw_follower_t **out, smc_error_t *err);
void smc_gw_follower_stop(gw_follower_t *f);
/* End every wait now (shutdown); the follower stops reading. */
void smc_gw_follower_halt(gw_follower_t *f);
/* 0 once halted. */
int smc_gw_follower_running(gw_follower_t *f);
/* 1 once the catalog has read <prefix>machines up to its end at start. */
int smc_gw_follower_caught_up(gw_follower_t *f);
/* The compiled machine of that name (new reference) or NULL. */
smc_machine_t *smc_gw_catalog_get(gw_follower_t *f, const char *name);
/* 1 when a machine of that name is in the catalog. */
int smc_gw_catalog_get_exists(gw_follower_t *f, const char *name);
/* Record a confirmation the gateway received directly (as if followed). */
void smc_gw_record_confirmation(gw_follower_t *f, json_t *c);
/* Add a machine the gateway registered itself (takes a new reference). */
void smc_gw_catalog_put(gw_follower_t *f, smc_machine_t *m);
/* Sorted JSON array of {name, hash, description} (new reference). */
json_t *smc_gw_catalog_list(gw_follower_t *f);
/* Proposal status record {proposal, status, object, machine, transition,
 * confirmation?} (new reference) or NULL when never seen. */
json_t *smc_gw_proposal_get(gw_follower_t *f, const char *id);
/* Remember a proposal this gateway sent (status "pending" or "unknown"),
 * unless a confirmation for it is known already. */
void smc_gw_proposal_sent(gw_follower_t *f, const char *id, const char *object, const char *machine,
                          const char *transition, const char *status);
/* Id of the newest proposal this gateway saw sent for (object, transition)
 * that is still pending (no confirmation yet), into out[65]; 0 if none. */
int smc_gw_proposal_pending_for(gw_follower_t *f, const char *object, const char *transition,
                                char out[65]);
/* Latest committed confirmation of object seen (new reference) or NULL. */
json_t *smc_gw_object_latest(gw_follower_t *f, const char *object);
/* Wait until a committed confirmation of object with version > after arrives
 * or deadline_ms (CLOCK_MONOTONIC ms) passes; returns it (new ref) or NULL. */
json_t *smc_gw_object_wait(gw_follower_t *f, const char *object, int64_t after,
                           int64_t deadline_ms);

/* ---- the node table (nodes.c) ---- */
typedef struct gw_nodes gw_nodes_t;
gw_nodes_t *smc_gw_nodes_new(void);
void smc_gw_nodes_destroy(gw_nodes_t *t);
/* A record of <prefix>nodes (key = node id; an empty value removes it). */
void smc_gw_nodes_put(gw_nodes_t *t, const char *key, size_t key_len, const char *text, size_t len);
/* Every node sorted by id, each its latest record plus "status" ("up" or
 * "down": no record for down_after_ms, or stopped) and "last_seen_ms". */
json_t *smc_gw_nodes_list(gw_nodes_t *t, int64_t down_after_ms);
/* The HTTP address of an up node other than self whose committer serves
 * partition (the freshest record wins) into addr: 1, or 0 when none. */
int smc_gw_nodes_route(gw_nodes_t *t, int32_t partition, const char *self, int64_t down_after_ms,
                       char addr[256]);

/* ---- the gateway ---- */
struct smc_gateway {
  char *listen, *bootstrap, *prefix, *node_id, *roles, *address;
  char **kafka_props; /* k,v,...,NULL copy */
  size_t max_body_bytes;
  size_t cache_bytes; /* the follower's caches together */
  unsigned max_connections;
  smc_limits_t limits; /* definition_max_bytes for PUT /machine */
  size_t (*owned_partitions)(void *opaque, int32_t *out, size_t max);
  int (*ready)(void *opaque);
  void *opaque;
  json_t *tokens; /* {token: {"machines": [...] | "*", "write": bool}} or NULL */
  smc_client_t *client;
  gw_follower_t *follower;
  smc_answers_t *answers; /* the node's (local folds), or the gateway's own */
  int own_answers;
  gw_nodes_t *nodes;    /* the node table, fed by the follower */
  int64_t node_down_ms; /* a node not heard of for this long is down */
  struct MHD_Daemon *daemon;
  atomic_int connections;
  atomic_int stopping;
};

/* One HTTP request as the routes see it. */
typedef struct gw_req {
  smc_gateway_t *gw;
  struct MHD_Connection *conn;
  const char *method, *url;
  char *segs[8]; /* path segments, percent-decoded */
  int nsegs;
  const char *body;
  size_t body_len;
  int64_t start_ms;
  const json_t *grant; /* the bearer token's grant (tokens configured), else NULL */
} gw_req_t;

/* Split a decoded request path ("/a/b/c", NUL-terminated, modified in
 * place) into at most max segments: their count (0 for "/"), or
 * SMC_GW_PATH_EMPTY_SEGMENT when the path does not start with '/' or has an
 * empty segment ("//", a trailing '/'), SMC_GW_PATH_TOO_MANY past max.
 * Authorization and routing both read this one parse. */
#define SMC_GW_PATH_EMPTY_SEGMENT (-2)
#define SMC_GW_PATH_TOO_MANY (-1)
int smc_gw_split_path(char *path, char **segs, int max);
/* Token rights, and the one a request needs: GET/HEAD read, PATCH vote, a
 * write under /machine/{m}/object/ propose, any other write register.
 * *machine: segs[1] when segs[0] is "machine" (the machine whose rights
 * count), else NULL (a path of no machine). */
enum {
  SMC_GW_RIGHT_READ = 1,
  SMC_GW_RIGHT_PROPOSE = 2,
  SMC_GW_RIGHT_VOTE = 4,
  SMC_GW_RIGHT_REGISTER = 8
};
int smc_gw_required_right(const char *method, char *const *segs, int nsegs, const char **machine);

/* Route outcome: status and a JSON body (taken), or a raw body. */
int64_t smc_gw_now_ms(void);
/* Queue a JSON answer; takes ownership of body. */
enum MHD_Result smc_gw_reply_json(gw_req_t *r, unsigned status, json_t *body);
/* Queue {"error":{code,message,path}} with the wire name of code. */
enum MHD_Result smc_gw_reply_error(gw_req_t *r, unsigned status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
enum MHD_Result smc_gw_reply_raw(gw_req_t *r, unsigned status, const char *content_type, char *data,
                                 size_t len); /* takes data (malloc'd) */
/* A query argument or NULL. */
const char *smc_gw_arg(gw_req_t *r, const char *key);
const char *smc_gw_header(gw_req_t *r, const char *key);
/* Parse "5s", "500ms", "2m", "3" (seconds) into ms; -1 when malformed. */
int64_t smc_gw_parse_duration(const char *s);
/* Parse the body as JSON; on failure queues the 400/415 answer and returns
 * NULL with *answered set. Empty body gives empty_default (may be NULL). */
json_t *smc_gw_body_json(gw_req_t *r, json_t *empty_default, enum MHD_Result *answered);
/* Strict UTF-8 check (no overlongs, surrogates or code points > U+10FFFF). */
int smc_gw_utf8_valid(const unsigned char *s, size_t n);
/* Does content type ct (may be NULL) name media type mt (ignoring params)? */
int smc_gw_ctype_is(const char *ct, const char *mt);

/* Forward r to the gateway at addr and queue its answer (*res): 0; -1 when
 * no answer came (nothing queued: the caller serves r itself). forward.c */
int smc_gw_forward(gw_req_t *r, const char *addr, int timeout_ms, enum MHD_Result *res);
/* Forward r when this node does not fold partition p and an up node of the
 * table does (and r was not forwarded to us already): 1 with *res queued,
 * else 0. routes_object.c */
int smc_gw_maybe_forward(gw_req_t *r, const char *object, int timeout_ms, enum MHD_Result *res);
/* The same request sent to addr, its answer returned instead of relayed:
 * 0 with *status and *body (malloc'd, *len bytes) set; -1 when none came. */
int smc_gw_fetch(gw_req_t *r, const char *addr, int timeout_ms, unsigned *status, char **body,
                 size_t *len);
/* routes_list.c: GET /machine/{m}/object (a page of objects), GET
 * /machine/{m}/object/{o}/history and .../pending, and GET /proposal/{id}
 * from the folds. */
enum MHD_Result smc_gw_route_list(gw_req_t *r);
enum MHD_Result smc_gw_route_history(gw_req_t *r);
enum MHD_Result smc_gw_route_pending(gw_req_t *r);
/* 1 when a fold of this process decided proposal id (smc_answers_proposal),
 * as GET /proposal/{id} would answer it. */
int smc_gw_proposal_decided_locally(gw_req_t *r, const char *id);

/* Routes (routes_machine.c, routes_object.c). Each queues exactly one answer. */
/* query.c: answer 400 (returns 1, *res set) when the query names a parameter
 * the route does not accept; 0 otherwise. */
int smc_gw_check_query(gw_req_t *r, enum MHD_Result *res);
/* If-Match: "<version>" (also W/"N" or a bare N): 1 with *version set, 0
 * when absent, -1 when it is not a version. */
int smc_gw_if_match(gw_req_t *r, int64_t *version);
enum MHD_Result smc_gw_route_machine(gw_req_t *r);
enum MHD_Result smc_gw_route_object(gw_req_t *r);
enum MHD_Result smc_gw_route_proposal(gw_req_t *r);
/* SSE stream of an object's commits (routes_object.c). */
enum MHD_Result smc_gw_watch_stream(gw_req_t *r, const char *object, int64_t after,
                                    int64_t timeout_ms);

/* docs/openapi.json as built in (generated by cmake/embed.cmake; NUL-terminated,
 * len without the NUL). GET /openapi.json serves it. */
extern const unsigned char smc_openapi_json[];
extern const size_t smc_openapi_json_len;

/* One file of the web console, compiled in (generated by cmake/embed_ui.cmake
 * from src/gateway/ui/; data NUL-terminated, len without the NUL, etag a
 * quoted strong validator). */
typedef struct smc_gw_asset {
  const char *name, *content_type;
  const unsigned char *data;
  size_t len;
  const char *etag;
} smc_gw_asset_t;
extern const smc_gw_asset_t smc_gw_ui_assets[];
extern const size_t smc_gw_ui_asset_count;
/* GET /ui (the console's page) and GET /ui/{asset} (routes_ui.c): open
 * without a token (the files hold no data; the page asks for one). */
enum MHD_Result smc_gw_route_ui(gw_req_t *r);
/* Queue a static body (not copied, not freed) with extra headers: hdrs is
 * NULL or {name, value, ..., NULL}. */
enum MHD_Result smc_gw_reply_static(gw_req_t *r, unsigned status, const char *content_type,
                                    const void *data, size_t len, const char *const *hdrs);

#endif
