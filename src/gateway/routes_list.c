/*
 * Routes answered from the folds' state rather than from one object's read:
 *  - GET /machine/{m}/object?limit=&after=  a page of the machine's objects,
 *    by id: each node lists the partitions its committer folds (through the
 *    local-answers hub), the gateway asks the other nodes of the node table
 *    for theirs (forwarded with X-Smc-Forwarded, which answers only the
 *    local part) and merges;
 *  - GET /machine/{m}/object/{o}/history?limit=&after=  the object's
 *    committed versions, from the fold's per-object history, on the node
 *    that folds its partition (forwarded there like a read);
 *  - GET /machine/{m}/object/{o}/pending  the proposals queued on the
 *    object, with the votes of the one waiting for them (read like the
 *    history, on the node that folds the partition);
 *  - GET /proposal/{id}  a proposal's decision as any gateway sees it: this
 *    gateway's cache, else the local folds' decided ids (the dedup window),
 *    else the other nodes' (each asks its own folds).
 */
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "core/codec.h"
#include "core/util.h"
#include "core/view.h"
#include "gateway/gw_internal.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000
#define ASK_TIMEOUT_MS 10000

/* ?limit= (1..1000, default 100) and ?after= as text: 0, or -1 answered. */
static int page_args(gw_req_t *r, size_t *limit, const char **after, enum MHD_Result *res) {
  const char *l = smc_gw_arg(r, "limit");
  *limit = DEFAULT_LIMIT;
  *after = smc_gw_arg(r, "after");
  if (l) {
    char *end = NULL;
    long v = strtol(l, &end, 10);
    if (!*l || *end || v < 1 || v > MAX_LIMIT) {
      *res = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST, "limit must be 1 to %d", MAX_LIMIT);
      return -1;
    }
    *limit = (size_t)v;
  }
  return 0;
}

/* What every route here checks first: GET or HEAD, a known machine. 0, or
 * -1 with *res answered. */
static int route_args(gw_req_t *r, const char *machine, enum MHD_Result *res) {
  if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD")) {
    *res = smc_gw_reply_error(r, 405, SMC_EBAD_REQUEST, "method %s not allowed here", r->method);
    return -1;
  }
  if (!smc_gw_catalog_get_exists(r->gw->follower, machine)) {
    *res = smc_gw_reply_error(r, 404, SMC_EUNKNOWN_MACHINE, "no machine named '%s'", machine);
    return -1;
  }
  return 0;
}

/* A route about one object: 1 with *res answered when the id is bad or the
 * request went to the node that folds its partition, 0 to answer here. */
static int object_elsewhere(gw_req_t *r, const char *object, enum MHD_Result *res) {
  if (!*object || strlen(object) > SMC_CODEC_MAX_ID) {
    *res = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST, "bad object id: 1 to %d bytes",
                              SMC_CODEC_MAX_ID);
    return 1;
  }
  return smc_gw_maybe_forward(r, object, ASK_TIMEOUT_MS + 5000, res);
}

/* The answer when the local folds could not give what (the history, the
 * proposals) of object: rc from the answers hub. */
static enum MHD_Result ask_failed(gw_req_t *r, int rc, const char *what, const char *object) {
  if (rc == SMC_ENOT_FOUND)
    return smc_gw_reply_error(r, 503, SMC_EUNAVAILABLE,
                              "no node that folds the partition of '%s' answered", object);
  return smc_gw_reply_error(r, 503, rc, "the %s of '%s' could not be read in time", what, object);
}

/* The other nodes that are up and serve HTTP: a new array of their records. */
static json_t *other_nodes(gw_req_t *r) {
  json_t *all = smc_gw_nodes_list(r->gw->nodes, r->gw->node_down_ms), *out = json_array();
  size_t i;
  json_t *n;
  json_array_foreach(all, i, n) {
    const char *id = json_string_value(json_object_get(n, "node"));
    const char *http = json_string_value(json_object_get(n, "http"));
    const char *st = json_string_value(json_object_get(n, "status"));
    if (!http || !*http || !st || strcmp(st, "up") ||
        (id && r->gw->node_id && !strcmp(id, r->gw->node_id)) ||
        (r->gw->address && !strcmp(http, r->gw->address)))
      continue;
    json_array_append(out, n);
  }
  json_decref(all);
  return out;
}

/* The same request asked of another node (a record of other_nodes): its
 * answer when it gave a 200 with JSON, else NULL. */
static json_t *ask_node(gw_req_t *r, const json_t *node) {
  unsigned status = 0;
  char *body = NULL;
  size_t len = 0;
  if (smc_gw_fetch(r, json_string_value(json_object_get(node, "http")), ASK_TIMEOUT_MS, &status,
                   &body, &len) < 0)
    return NULL;
  json_t *ans = status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
  free(body);
  return ans;
}

static int cmp_object(const void *a, const void *b) {
  return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "object")),
                json_string_value(json_object_get(*(json_t *const *)b, "object")));
}

/* Ask the other nodes for the partitions nobody answered yet. */
static void list_remote(gw_req_t *r, json_t *objs, unsigned char *served, int32_t n) {
  json_t *nodes = other_nodes(r);
  size_t i, k;
  json_t *node, *p;
  json_array_foreach(nodes, i, node) {
    int wanted = 0;
    json_array_foreach(json_object_get(node, "partitions"), k, p) {
      json_int_t v = json_integer_value(p);
      wanted |= v >= 0 && v < n && !served[v];
    }
    if (!wanted)
      continue;
    json_t *ans = ask_node(r, node);
    json_t *po = json_object_get(ans, "partitions"), *oo = json_object_get(ans, "objects");
    if (json_is_array(po) && json_is_array(oo)) {
      json_array_foreach(oo, k, p) {
        const char *id = json_string_value(json_object_get(p, "object"));
        int32_t part = id ? smc_partition_for(id, strlen(id), n) : -1;
        if (part >= 0 && !served[part]) /* one answer per partition */
          json_array_append(objs, p);
      }
      json_array_foreach(po, k, p) {
        json_int_t v = json_integer_value(p);
        if (v >= 0 && v < n)
          served[v] = 1;
      }
    }
    json_decref(ans);
  }
  json_decref(nodes);
}

enum MHD_Result smc_gw_route_list(gw_req_t *r) {
  const char *machine = r->segs[1];
  enum MHD_Result res;
  size_t limit;
  const char *after;
  if (route_args(r, machine, &res) < 0 || page_args(r, &limit, &after, &res) < 0)
    return res;
  int32_t n = smc_answers_partitions(r->gw->answers);
  if (n <= 0)
    return smc_gw_reply_error(r, 503, SMC_EUNAVAILABLE,
                              "this gateway's node folds no partition yet: no listing");
  unsigned char *served = calloc((size_t)n, 1);
  void *got = NULL;
  int rc = served ? smc_answers_list(r->gw->answers, machine, after, limit,
                                     smc_now_ms() + ASK_TIMEOUT_MS, &got, served)
                  : SMC_ENOMEM;
  json_t *objs = got;
  if (rc) {
    free(served);
    return smc_gw_reply_error(r, 503, rc, "the local folds did not answer in time");
  }
  if (smc_gw_header(r, "X-Smc-Forwarded")) { /* another gateway merges */
    json_t *parts = json_array();
    for (int32_t p = 0; p < n; p++)
      if (served[p])
        json_array_append_new(parts, json_integer(p));
    free(served);
    return smc_gw_reply_json(r, 200, json_pack("{s:o, s:o}", "objects", objs, "partitions", parts));
  }
  list_remote(r, objs, served, n);
  char missing[256] = "";
  for (int32_t p = 0; p < n; p++)
    if (!served[p] && strlen(missing) < sizeof(missing) - 16)
      snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%d",
               missing[0] ? ", " : "", p);
  free(served);
  if (missing[0]) {
    json_decref(objs);
    return smc_gw_reply_error(r, 503, SMC_EUNAVAILABLE,
                              "no node answered for partitions %s: the listing would be partial",
                              missing);
  }
  size_t total = json_array_size(objs);
  json_t **v = calloc(total + 1, sizeof *v);
  json_t *page = json_array();
  for (size_t i = 0; v && i < total; i++)
    v[i] = json_array_get(objs, i);
  if (v)
    qsort(v, total, sizeof *v, cmp_object);
  for (size_t i = 0; v && i < total && i < limit; i++)
    json_array_append_new(page, smc_view_object(v[i], NULL, machine));
  json_t *next =
      total >= limit && v ? json_incref(json_object_get(v[limit - 1], "object")) : json_null();
  free(v);
  json_decref(objs);
  return smc_gw_reply_json(
      r, 200, json_pack("{s:s, s:o, s:o}", "machine", machine, "objects", page, "next", next));
}

enum MHD_Result smc_gw_route_history(gw_req_t *r) {
  const char *machine = r->segs[1], *object = r->segs[3];
  enum MHD_Result res;
  size_t limit;
  const char *after;
  if (route_args(r, machine, &res) < 0 || page_args(r, &limit, &after, &res) < 0)
    return res;
  long long av = 0;
  if (after) {
    char *end = NULL;
    errno = 0;
    av = strtoll(after, &end, 10);
    if (!*after || *end || av < 0 || errno == ERANGE)
      return smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                                "after must be a version (a non-negative integer)");
  }
  if (object_elsewhere(r, object, &res))
    return res;
  char *text = NULL;
  size_t len = 0;
  int rc = smc_answers_history(r->gw->answers, object, av, limit, smc_now_ms() + ASK_TIMEOUT_MS,
                               &text, &len);
  if (rc)
    return ask_failed(r, rc, "history", object);
  /* {versions, history_from?, machine?} (smc_fold_history) */
  json_t *ans = json_loadb(text, len, 0, NULL);
  free(text);
  json_t *arr = json_object_get(ans, "versions"), *first = json_array_get(arr, 0);
  json_t *from = json_object_get(ans, "history_from");
  const char *mc = json_string_value(json_object_get(first ? first : ans, "machine"));
  if (mc && strcmp(mc, machine)) {
    json_decref(ans);
    return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_OBJECT, "no object '%s' of machine '%s'", object,
                              machine);
  }
  if (!first && av == 0 && !from) { /* no version at all */
    json_decref(ans);
    return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_OBJECT,
                              "no committed version of '%s' of machine '%s'", object, machine);
  }
  json_t *versions = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(arr, i, c) {
    json_t *v = smc_view_answer(c, object, machine, NULL);
    json_object_del(v, "outcome");
    json_array_append_new(versions, v);
  }
  json_t *next = json_array_size(arr) >= limit
                     ? json_incref(json_object_get(json_array_get(arr, limit - 1), "version"))
                     : json_null();
  json_t *out = json_pack("{s:s, s:s, s:o, s:o}", "object", object, "machine", machine, "versions",
                          versions, "next", next);
  /* a node restored from the changelog holds no versions before this one */
  if (out && json_is_integer(from))
    json_object_set(out, "history_from", from);
  json_decref(ans);
  return smc_gw_reply_json(r, 200, out);
}

enum MHD_Result smc_gw_route_pending(gw_req_t *r) {
  const char *machine = r->segs[1], *object = r->segs[3];
  enum MHD_Result res;
  if (route_args(r, machine, &res) < 0 || object_elsewhere(r, object, &res))
    return res;
  char *text = NULL;
  size_t len = 0;
  int rc = smc_answers_pending(r->gw->answers, object, smc_now_ms() + ASK_TIMEOUT_MS, &text, &len);
  if (rc)
    return ask_failed(r, rc, "proposals", object);
  json_t *ans = json_loadb(text, len, 0, NULL);
  free(text);
  const char *mc = json_string_value(json_object_get(ans, "machine"));
  json_t *props = json_object_get(ans, "proposals");
  /* an object not created yet has only its queued create proposals: they
   * name the machine they would create */
  if (!mc && json_array_size(props) > 0) {
    size_t i;
    json_t *p;
    json_array_foreach(props, i, p) if (!mc) mc = json_string_value(json_object_get(p, "machine"));
  }
  if (!json_is_array(props) || (mc && strcmp(mc, machine)) ||
      (!json_is_true(json_object_get(ans, "found")) && json_array_size(props) == 0)) {
    json_decref(ans);
    return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_OBJECT, "no object '%s' of machine '%s'", object,
                              machine);
  }
  json_t *out = json_pack("{s:s, s:s, s:O, s:O}", "object", object, "machine", machine, "version",
                          json_object_get(ans, "version"), "proposals", props);
  json_decref(ans);
  return smc_gw_reply_json(r, 200, out);
}

int smc_gw_proposal_decided_locally(gw_req_t *r, const char *id) {
  char *text = NULL;
  size_t len = 0;
  if (smc_answers_proposal(r->gw->answers, id, smc_now_ms() + ASK_TIMEOUT_MS, &text, &len))
    return 0;
  json_t *ans = json_loadb(text, len, 0, NULL);
  free(text);
  const char *st = json_string_value(json_object_get(ans, "status"));
  int decided = st && strcmp(st, "pending");
  json_decref(ans);
  return decided;
}

/* A proposal record in the order the gateway's cache writes it:
 * {proposal, status, object, machine, transition, confirmation?}. Takes ans. */
static json_t *proposal_record(json_t *ans) {
  json_t *out = json_object();
  static const char *const keys[] = {"proposal",   "status",       "object", "machine",
                                     "transition", "confirmation", NULL};
  for (size_t i = 0; keys[i]; i++)
    if (json_object_get(ans, keys[i]))
      json_object_set(out, keys[i], json_object_get(ans, keys[i]));
  json_decref(ans);
  return out;
}

enum MHD_Result smc_gw_route_proposal(gw_req_t *r) {
  if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))
    return smc_gw_reply_error(r, 405, SMC_EBAD_REQUEST, "method %s not allowed here", r->method);
  const char *id = r->segs[1];
  json_t *rec = smc_gw_proposal_get(r->gw->follower, id);
  const char *st = json_string_value(json_object_get(rec, "status"));
  if (st && strcmp(st, "pending") && strcmp(st, "unknown"))
    return smc_gw_reply_json(r, 200, rec); /* decided, as this gateway saw it */
  char *text = NULL;
  size_t len = 0;
  if (smc_answers_proposal(r->gw->answers, id, smc_now_ms() + ASK_TIMEOUT_MS, &text, &len) == 0) {
    json_t *ans = json_loadb(text, len, 0, NULL);
    free(text);
    const char *ast = json_string_value(json_object_get(ans, "status"));
    if (ans && (!rec || (ast && strcmp(ast, "pending")))) {
      json_decref(rec);
      return smc_gw_reply_json(r, 200, proposal_record(ans));
    }
    json_decref(ans);
  }
  if (!smc_gw_header(r, "X-Smc-Forwarded")) { /* the folds of the other nodes */
    json_t *nodes = other_nodes(r);
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node) {
      json_t *ans = ask_node(r, node);
      const char *ast = json_string_value(json_object_get(ans, "status"));
      if (ans && (!rec || (ast && strcmp(ast, "pending") && strcmp(ast, "unknown")))) {
        json_decref(nodes);
        json_decref(rec);
        return smc_gw_reply_json(r, 200, ans);
      }
      json_decref(ans);
    }
    json_decref(nodes);
  }
  if (rec)
    return smc_gw_reply_json(r, 200, rec);
  return smc_gw_reply_error(r, 404, SMC_ENOT_FOUND,
                            "no node knows proposal '%s' (never sent, or decided more than the "
                            "dedup window ago)",
                            id);
}
