/* Private declarations shared by the gateway's files (not a public API). */
#ifndef SMC_GATEWAY_GW_INTERNAL_H
#define SMC_GATEWAY_GW_INTERNAL_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "base/lru.h"
#include "gateway/gateway.h"
#include "node/answers.h"
#include "smc/client.h"
#include "smc/machine.h"

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
void smc_gw_record_confirmation(gw_follower_t *f, const char *text, size_t len);
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
  gw_nodes_t *nodes;     /* the node table, fed by the follower */
  int64_t node_down_ms;  /* a node not heard of for this long is down */
  unsigned http_threads; /* libmicrohttpd's epoll threads */
  struct MHD_Daemon *daemon;
  struct gw_loop *loop; /* loop.c */
  atomic_int connections;
  atomic_int stopping;
};

typedef struct gw_ctx gw_ctx_t;

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
  gw_ctx_t *ctx;       /* the request's state across suspensions */
  int deferred;        /* on a blocking-pool thread: answers are kept, queued on resume */
  int no_forward;      /* forwarding failed: serve it here */
} gw_req_t;

/* ---- the event loop (loop.c) ---- */
typedef struct gw_loop gw_loop_t;
/* What runs when a suspended request is resumed: answers (or waits again). */
typedef enum MHD_Result (*gw_cont_t)(gw_req_t *r);
/* A blocking route run on a pool thread (answers with r->deferred set). */
typedef void (*gw_job_t)(gw_req_t *r);

/* A request's state from its first header to its end (gateway.c owns it). */
struct gw_ctx {
  gw_req_t req; /* valid once the body is complete */
  char *path;   /* req.segs point into it */
  char *body;
  size_t len, cap;
  int too_large;
  int answered; /* a reply was queued during upload */
  int routed;   /* the request was handed to its route */
  int64_t start_ms;
  /* suspension (loop.c) */
  pthread_mutex_t mu;
  int suspended, woken;
  gw_cont_t cont;
  int64_t deadline;
  size_t heap_idx;
  gw_job_t job;
  gw_ctx_t *job_next;
  /* an answer kept by a pool thread, queued when resumed */
  struct MHD_Response *resp;
  unsigned status;
  /* a route's state while it waits, and how to let it go */
  void *state;
  void (*release)(gw_req_t *r);
};

int smc_gw_loop_start(smc_gateway_t *gw);
/* Wake every waiting request now and wait until none is suspended. */
void smc_gw_loop_drain(smc_gateway_t *gw);
void smc_gw_loop_stop(smc_gateway_t *gw);
/* Wait (without a thread) until smc_gw_wake, deadline_ms (INT64_MAX: none)
 * or the gateway's stop, then run cont on an HTTP thread. Returns what the handler returns
 * now. Call with no lock held; cont may run at once, from this call. */
enum MHD_Result smc_gw_wait(gw_req_t *r, int64_t deadline_ms, gw_cont_t cont);
/* Wake a request suspended by smc_gw_wait (or mark it woken if it is not
 * suspended yet). Any thread; never blocks for long. */
void smc_gw_wake(gw_ctx_t *c);
/* Drop the request's deadline. */
void smc_gw_disarm(gw_req_t *r);
/* Run job on a pool thread with r->deferred set, then resume r with the
 * answer it queued (or r->ctx->cont). 0, or -1 when no thread could run it. */
int smc_gw_offload(gw_req_t *r, gw_job_t job);
/* Queue resp as r's answer now, or keep it for the resume (r->deferred).
 * Takes resp. */
enum MHD_Result smc_gw_queue(gw_req_t *r, unsigned status, struct MHD_Response *resp);
/* The route of r run again (resumed after its forwarding failed). */
enum MHD_Result smc_gw_dispatch(gw_req_t *r);

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
/* A query parameter's duration (base/duration.h: "500ms", "5s", "2m", "3"
 * seconds) in ms; -1 when it is none. */
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
