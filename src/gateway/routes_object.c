/*
 * Object routes: propose (PUT .../transition/{t}), vote (PATCH same path),
 * linearizable read (GET .../object/{o}), watch (long-poll or SSE), and
 * GET /proposal/{id}.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "core/codec.h"
#include "core/util.h"
#include "core/view.h"
#include "gateway/gw_internal.h"
#include "base/metrics.h"
#include "smc/fold.h"

#define DEFAULT_WAIT_MS 5000
#define MAX_WAIT_MS 60000
#define DEFAULT_WATCH_MS 30000
#define MAX_WATCH_MS 300000
#define VOTE_TIMEOUT_MS 5000
#define SSE_KEEPALIVE_MS 15000
#define FORWARD_TIMEOUT_MS (MAX_WAIT_MS + 5000) /* the other gateway bounds its own wait */

/* The object as answered by the REST API: the schema the CLI prints too. */
static json_t *object_view(const json_t *src, const char *object, const char *machine) {
  return smc_view_object(src, object, machine);
}

static unsigned status_for_rejection(int code) {
  switch (code) {
  case SMC_EVERSION_CONFLICT:
  case SMC_EOBJECT_EXISTS:
    return 409;
  case SMC_EUNKNOWN_OBJECT:
  case SMC_EUNKNOWN_MACHINE:
  case SMC_EUNKNOWN_TRANSITION:
    return 404;
  default:
    return 422;
  }
}

static int parse_version(const char *s, int64_t *out) {
  if (!s)
    return 0;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || v < 0 || errno == ERANGE)
    return -1;
  *out = v;
  return 1;
}

static const smc_transition_info_t *find_transition(const smc_machine_t *m, const char *t) {
  for (size_t i = 0; i < smc_machine_transition_count(m); i++)
    if (!strcmp(smc_machine_transition(m, i)->name, t))
      return smc_machine_transition(m, i);
  return NULL;
}

/* Answer a decided proposal: 200 committed, else the rejection's status
 * (the body is smc_view_answer's, as `smc propose` prints it). */
static enum MHD_Result reply_confirmation(gw_req_t *r, json_t *c, const char *object,
                                          const char *machine) {
  const char *code = NULL;
  json_t *v = smc_view_answer(c, object, machine, &code);
  if (!code)
    return smc_gw_reply_json(r, 200, v);
  int ic = smc_code_from_name(code);
  int64_t im;
  if (ic == SMC_EVERSION_CONFLICT && smc_gw_if_match(r, &im) > 0)
    return smc_gw_reply_json(r, 412, v); /* a failed If-Match precondition */
  return smc_gw_reply_json(r, ic ? status_for_rejection(ic) : 422, v);
}

/* Wake the request whose slot or delivery report this is. */
static void wake_request(void *arg) { smc_gw_wake(arg); }

/* A slot of r's that wakes r when filled. */
static void slot_init(smc_answer_t *a, gw_req_t *r) {
  smc_answer_init(a);
  a->notify = wake_request;
  a->notify_arg = r->ctx;
}

/*
 * A proposal waiting for its decision (PUT .../transition/{t}), without a
 * thread: its slot is filled by its own decision (a local fold as soon as
 * it decided, ?ack=decided, or only the committed confirmation,
 * ?ack=confirmed), its delivery report says whether the broker has it
 * (acks=all), and its deadline ends the wait. Each wakes the request once.
 */
typedef struct put_wait {
  smc_answer_t a;
  int expected;      /* a is in the hub's table */
  smc_delivery_t *d; /* until its report was taken */
  int d_rc;          /* the report's result once taken (1: not yet) */
  int64_t own;       /* this request's record offset, once acknowledged */
  smc_error_t derr;  /* the report's error */
  int64_t end, wait_ms;
  int votes; /* the transition waits for votes: no decision in time is 202 */
  char id[65];
} put_wait_t;

static void put_release(gw_req_t *r) {
  put_wait_t *w = r->ctx->state;
  if (!w)
    return;
  if (w->expected)
    smc_answers_forget(r->gw->answers, &w->a);
  if (w->d)
    smc_client_send_finish(r->gw->client, w->d, 0, NULL, NULL);
  smc_answer_close(&w->a);
  free(w);
  r->ctx->state = NULL;
  r->ctx->release = NULL;
}

/* Take the delivery report if it came (never waits). */
static void put_take_report(gw_req_t *r, put_wait_t *w) {
  if (w->d && smc_client_delivery_done(r->gw->client, w->d)) {
    smc_error_clear(&w->derr);
    w->d_rc = smc_client_send_finish(r->gw->client, w->d, 0, &w->own, &w->derr);
    w->d = NULL;
  }
}

static enum MHD_Result put_answer(gw_req_t *r, put_wait_t *w, int rc, json_t *conf,
                                  smc_error_t *err);
static enum MHD_Result put_resume(gw_req_t *r);

/*
 * Send the proposal and suspend the request until its decision, its
 * failure or wait_ms. The decision implies the proposal is in the log below
 * the high watermark (folds read with read_committed); the delivery report
 * tells "not written" from "unknown" when no decision comes, and gives this
 * request's own offset: a decision caused by an earlier record of the same
 * id (another request in flight, or a retry racing the original) answers it
 * as the duplicate it is.
 */
static enum MHD_Result propose_start(gw_req_t *r, smc_propose_req_t *req, int64_t wait_ms,
                                     smc_answer_from_t from, int votes) {
  put_wait_t *w = calloc(1, sizeof *w);
  if (!w)
    return smc_gw_reply_error(r, 500, SMC_ENOMEM, "out of memory");
  slot_init(&w->a, r);
  w->d_rc = 1;
  w->own = -1;
  w->wait_ms = wait_ms;
  w->votes = votes;
  w->end = wait_ms ? smc_now_ms() + wait_ms : INT64_MAX;
  r->ctx->state = w;
  r->ctx->release = put_release;
  smc_error_t err;
  smc_error_clear(&err);
  int rc = smc_client_proposal_id(req, w->id, &err); /* the client's rule: one place */
  int serves = rc ? 0 : smc_answers_serves_object(r->gw->answers, req->object);
  /* a local fold answers: its committer need not hurry the confirmation */
  req->ack_decided = from == SMC_ANSWER_DECIDED && serves == 1;
  if (serves == SMC_EINCOMPATIBLE)
    rc = smc_error_set(&err, SMC_EINCOMPATIBLE, NULL,
                       "the partition of '%s' is stopped here at a settings event for a newer "
                       "fold than this node's (%d); nothing was written",
                       req->object, SMC_FOLD_VERSION);
  if (rc)
    return put_answer(r, w, rc, NULL, &err);
  req->id = w->id;
  if (wait_ms) { /* wait=0s: in the log, not waited for */
    smc_answers_expect(r->gw->answers, &w->a, w->id, from);
    w->expected = 1;
  }
  if ((rc = smc_client_send_start(r->gw->client, req, NULL, &w->d, &err)))
    return put_answer(r, w, rc, NULL, &err);
  smc_client_delivery_notify(r->gw->client, w->d, wake_request, r->ctx);
  return smc_gw_wait(r, w->end, put_resume);
}

static enum MHD_Result put_resume(gw_req_t *r) {
  put_wait_t *w = r->ctx->state;
  put_take_report(r, w);
  int decided = w->expected && smc_answer_wait(&w->a, 0);
  int more = smc_now_ms() < w->end && !atomic_load(&r->gw->stopping);
  smc_error_t err;
  smc_error_clear(&err);
  if (!decided) {
    /* the acknowledgement answers when nothing was written, and is the
     * whole answer of wait=0s (202 pending, or its error) */
    if (!w->d && (w->d_rc == SMC_EKAFKA || w->d_rc == SMC_ETOO_LARGE || !w->wait_ms))
      return put_answer(r, w, w->d_rc, NULL, &w->derr);
    if (more) /* end is INT64_MAX for wait=0s */
      return smc_gw_wait(r, w->end, put_resume);
    if (!w->wait_ms) /* stopping before the acknowledgement came */
      return put_answer(r, w, SMC_EUNAVAILABLE, NULL, &err);
    if (w->d) {
      w->d_rc = smc_client_send_finish(r->gw->client, w->d, 0, NULL, &w->derr);
      w->d = NULL;
    }
    if (w->d_rc == SMC_EKAFKA)
      return put_answer(r, w, SMC_EKAFKA, NULL, &w->derr);
    smc_error_set(&err, SMC_EUNAVAILABLE, NULL,
                  "no decision within %lld ms; outcome unknown; proposal id %s",
                  (long long)w->wait_ms, w->id);
    return put_answer(r, w, SMC_EUNAVAILABLE, NULL, &err);
  }
  if (w->d && more) /* decided: this request's own offset, to tell a duplicate */
    return smc_gw_wait(r, w->end, put_resume);
  smc_answers_forget(r->gw->answers, &w->a);
  w->expected = 0;
  json_t *conf = NULL;
  int rc = 0;
  if (w->a.status || !(conf = json_loadb(w->a.json, w->a.len, 0, NULL))) {
    rc = smc_error_set(&err, w->a.status ? w->a.status : SMC_EINTERNAL, NULL,
                       "the decision could not be read");
  } else {
    /* the gateway's cache learns the decision as the fold wrote it */
    smc_gw_record_confirmation(r->gw->follower, w->a.json, w->a.len);
    if (w->own >= 0 && !json_is_true(json_object_get(conf, "duplicate")) &&
        json_integer_value(json_object_get(conf, "offset")) < w->own)
      json_object_set_new(conf, "duplicate", json_true());
    smc_metrics_counter_add("smc_gateway_answers_total",
                            w->a.local ? "source=\"fold\"" : "source=\"confirmations\"", 1);
  }
  enum MHD_Result res = put_answer(r, w, rc, conf, &err);
  json_decref(conf);
  return res;
}

/* The node to forward a request about object to: 1 with addr set when
 * this node does not fold the object's partition and an up node of the
 * table does (and r was not forwarded to us already). */
static int forward_target(gw_req_t *r, const char *object, char addr[256]) {
  int32_t n = smc_answers_partitions(r->gw->answers);
  if (n <= 0 || r->no_forward || smc_gw_header(r, "X-Smc-Forwarded"))
    return 0;
  int32_t p = smc_partition_for(object, strlen(object), n);
  return !smc_answers_serves(r->gw->answers, p) &&
         smc_gw_nodes_route(r->gw->nodes, p, r->gw->node_id, r->gw->node_down_ms, addr) &&
         !(r->gw->address && !strcmp(addr, r->gw->address));
}

/* Pool thread: forward a request of an inline route (its object is
 * segs[3]); when no answer came, run its route again here. */
static void forward_job(gw_req_t *r) {
  char addr[256];
  enum MHD_Result res;
  if (!forward_target(r, r->segs[3], addr) ||
      smc_gw_forward(r, addr, FORWARD_TIMEOUT_MS, &res) != 0) {
    r->no_forward = 1;
    r->ctx->cont = smc_gw_dispatch;
  }
}

int smc_gw_maybe_forward(gw_req_t *r, const char *object, int timeout_ms, enum MHD_Result *res) {
  char addr[256];
  if (!forward_target(r, object, addr))
    return 0;
  if (!r->deferred) { /* forwarding blocks: on a pool thread */
    *res = smc_gw_offload(r, forward_job) == 0 ? MHD_YES : MHD_NO;
    return 1;
  }
  return smc_gw_forward(r, addr, timeout_ms, res) == 0;
}

static int valid_key(const char *k) {
  size_t n = strlen(k);
  if (n == 0 || n > 64)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (k[i] <= ' ' || k[i] > '~')
      return 0;
  return 1;
}

/* The proposer a PUT may name. With tokens configured it is the token's
 * "proposer" (none when the token names none), and an X-Smc-Proposer header
 * that differs is refused (0, 403 queued in *res); without tokens, the
 * header. */
static int bound_proposer(gw_req_t *r, const char **proposer, enum MHD_Result *res) {
  const char *h = smc_gw_header(r, "X-Smc-Proposer");
  *proposer = h;
  if (!r->gw->tokens)
    return 1;
  const char *bound = json_string_value(json_object_get(r->grant, "proposer"));
  if (h && (!bound || strcmp(h, bound))) {
    *res = smc_gw_reply_error(r, 403, SMC_EFORBIDDEN,
                              bound ? "X-Smc-Proposer must be this token's proposer, '%s'"
                                    : "this token names no proposer: send no X-Smc-Proposer%s",
                              bound ? bound : "");
    return 0;
  }
  *proposer = bound;
  return 1;
}

static enum MHD_Result put_transition(gw_req_t *r, const char *machine, const char *object,
                                      const char *tname) {
  const char *proposer = NULL;
  enum MHD_Result denied;
  if (!bound_proposer(r, &proposer, &denied))
    return denied;
  smc_machine_t *m = smc_gw_catalog_get(r->gw->follower, machine);
  if (!m)
    return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_MACHINE, "no machine named '%s'", machine);
  enum MHD_Result res = MHD_NO;
  json_t *data = NULL;
  const smc_transition_info_t *t = find_transition(m, tname);
  if (!t) {
    res = smc_gw_reply_error(r, 404, SMC_EUNKNOWN_TRANSITION, "machine '%s' has no transition '%s'",
                             machine, tname);
    goto done;
  }
  json_t *empty = json_object();
  data = smc_gw_body_json(r, empty, &res);
  json_decref(empty);
  if (!data)
    goto done;
  if (!json_is_object(data)) {
    res = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                             "the body (the proposal's data) must be a JSON object");
    goto done;
  }
  int64_t expect = -1;
  if (parse_version(smc_gw_arg(r, "expect_version"), &expect) < 0) {
    res = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                             "expect_version must be a non-negative integer");
    goto done;
  }
  int64_t im = -1; /* If-Match: "<version>" is expect_version, HTTP's way */
  int imr = smc_gw_if_match(r, &im);
  if (imr < 0 || (imr > 0 && expect >= 0 && im != expect)) {
    res = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                             imr < 0 ? "If-Match must be a version, like \"3\""
                                     : "If-Match and expect_version name different versions");
    goto done;
  }
  if (imr > 0)
    expect = im;
  const char *ws = smc_gw_arg(r, "wait");
  int64_t wait_ms = ws ? smc_gw_parse_duration(ws) : DEFAULT_WAIT_MS;
  if (wait_ms < 0 || wait_ms > MAX_WAIT_MS) {
    res = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                             "wait must be a duration like 500ms or 5s, at most 60s");
    goto done;
  }
  const char *ack = smc_gw_arg(r, "ack");
  if (ack && strcmp(ack, "decided") && strcmp(ack, "confirmed")) {
    res = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST, "ack must be decided or confirmed");
    goto done;
  }
  smc_answer_from_t from =
      ack && !strcmp(ack, "confirmed") ? SMC_ANSWER_CONFIRMED : SMC_ANSWER_DECIDED;
  const char *key = smc_gw_header(r, "Idempotency-Key");
  if (key && !valid_key(key)) {
    res = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                             "Idempotency-Key must be 1 to 64 printable ASCII characters");
    goto done;
  }
  const char *correlation = smc_gw_header(r, "X-Correlation-Id");
  if ((proposer && !smc_gw_utf8_valid((const unsigned char *)proposer, strlen(proposer))) ||
      (correlation &&
       !smc_gw_utf8_valid((const unsigned char *)correlation, strlen(correlation)))) {
    res = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                             "X-Smc-Proposer and X-Correlation-Id must be UTF-8");
    goto done;
  }
  smc_propose_req_t req = {.machine = machine,
                           .object = object,
                           .transition = tname,
                           .data = data,
                           .expect_version = expect,
                           .id = key,
                           .proposer = proposer,
                           .correlation = correlation};
  res = propose_start(r, &req, wait_ms, from, t->votes != 0);
done:
  json_decref(data);
  smc_machine_destroy(m);
  return res;
}

/* The answer to a PUT (w is released here): the decision (200, or the
 * rejection's status), 202 pending, 504 unknown, or the error of rc. */
static enum MHD_Result put_answer(gw_req_t *r, put_wait_t *w, int rc, json_t *conf,
                                  smc_error_t *err) {
  const char *machine = r->segs[1], *object = r->segs[3], *tname = r->segs[5];
  char id[65];
  snprintf(id, sizeof id, "%s", w->id);
  int votes = w->votes;
  put_release(r);
  if (rc == 0 && conf)
    return reply_confirmation(r, conf, object, machine);
  if (rc == 0 || (rc == SMC_EUNAVAILABLE && votes)) {
    smc_gw_proposal_sent(r->gw->follower, id, object, machine, tname, "pending");
    return smc_gw_reply_json(r, 202,
                             json_pack("{s:s, s:s, s:s, s:s}", "proposal", id, "status", "pending",
                                       "object", object, "transition", tname));
  }
  if (rc == SMC_EUNAVAILABLE) {
    smc_gw_proposal_sent(r->gw->follower, id, object, machine, tname, "unknown");
    return smc_gw_reply_json(
        r, 504,
        json_pack("{s:{s:s, s:s, s:s}, s:s}", "error", "code", "unavailable", "message",
                  "no decision in time: outcome unknown; re-send with the same "
                  "Idempotency-Key to learn it",
                  "path", r->url, "proposal", id));
  }
  unsigned st = rc == SMC_ETOO_LARGE     ? 413
                : rc == SMC_EBAD_REQUEST ? 400
                : rc == SMC_EQUEUE_FULL  ? 429
                                         : 503;
  return smc_gw_reply_error(r, st, rc, "%s", err->message[0] ? err->message : smc_strerror(rc));
}

static enum MHD_Result patch_vote(gw_req_t *r, const char *machine, const char *object,
                                  const char *tname) {
  smc_machine_t *m = smc_gw_catalog_get(r->gw->follower, machine);
  if (!m)
    return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_MACHINE, "no machine named '%s'", machine);
  int known_t = find_transition(m, tname) != NULL;
  smc_machine_destroy(m);
  if (!known_t)
    return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_TRANSITION,
                              "machine '%s' has no transition '%s'", machine, tname);
  enum MHD_Result res = MHD_NO;
  if (r->body_len == 0) /* answered here, once: smc_gw_body_json would queue a 400 too */
    return smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                              "the body must be {voter, accept, reason?, proposal?, signature?}");
  json_t *b = smc_gw_body_json(r, NULL, &res);
  if (!b)
    return res;
  json_t *jv = json_object_get(b, "voter"), *ja = json_object_get(b, "accept");
  json_t *jr = json_object_get(b, "reason"), *jp = json_object_get(b, "proposal");
  json_t *js = json_object_get(b, "signature"); /* passed through; the fold verifies it */
  if (!json_is_object(b) || !json_is_string(jv) || !json_is_boolean(ja) ||
      (jr && !json_is_string(jr) && !json_is_null(jr)) || (jp && !json_is_string(jp)) ||
      (js && !json_is_string(js) && !json_is_null(js))) {
    json_decref(b);
    return smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                              "the body must be {\"voter\": string, \"accept\": bool, \"reason\": "
                              "string?, \"proposal\": string?, \"signature\": string?}");
  }
  char id[65] = "";
  if (jp && !valid_key(json_string_value(jp))) { /* never cut to fit: 400 */
    json_decref(b);
    return smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                              "\"proposal\" must be 1 to 64 printable ASCII characters");
  }
  if (jp) {
    snprintf(id, sizeof(id), "%s", json_string_value(jp));
  } else if (!smc_gw_proposal_pending_for(r->gw->follower, object, tname, id)) {
    json_decref(b);
    return smc_gw_reply_error(r, 404, SMC_ENOT_FOUND,
                              "no pending '%s' proposal on '%s': nothing to vote on", tname,
                              object);
  }
  json_t *known = smc_gw_proposal_get(r->gw->follower, id);
  const char *st = known ? json_string_value(json_object_get(known, "status")) : NULL;
  const char *km = known ? json_string_value(json_object_get(known, "machine")) : NULL;
  const char *ko = known ? json_string_value(json_object_get(known, "object")) : NULL;
  int decided = st && strcmp(st, "pending") && strcmp(st, "unknown");
  if (!decided) /* a local fold may know it decided before this cache does */
    decided = smc_gw_proposal_decided_locally(r, id);
  /* a proposal of another machine or object is not this path's to vote on
   * (when this gateway has not seen it, the fold checks the vote's machine) */
  int elsewhere = (km && strcmp(km, machine)) || (ko && strcmp(ko, object));
  json_decref(known);
  if (decided || elsewhere) {
    json_decref(b);
    return smc_gw_reply_error(r, 404, SMC_ENOT_FOUND,
                              elsewhere ? "proposal %s is not a proposal of this machine's object"
                                        : "proposal %s is already decided: nothing to vote on",
                              id);
  }
  smc_error_t err;
  smc_error_clear(&err);
  int accept = json_is_true(ja);
  smc_vote_req_t vr = {.machine = machine, /* the fold counts it on this machine only */
                       .object = object,
                       .proposal = id,
                       .voter = json_string_value(jv),
                       .accept = accept,
                       .reason = json_string_value(jr),
                       .signature = json_string_value(js)};
  int rc = smc_client_vote_req(r->gw->client, &vr, VOTE_TIMEOUT_MS, &err);
  if (rc == 0)
    res = smc_gw_reply_json(r, 202,
                            json_pack("{s:s, s:s, s:s, s:b}", "proposal", id, "object", object,
                                      "voter", json_string_value(jv), "accept", accept));
  else
    res = smc_gw_reply_error(r,
                             rc == SMC_EUNAVAILABLE   ? 504
                             : rc == SMC_EBAD_REQUEST ? 400
                             : rc == SMC_ETOO_LARGE   ? 413
                                                      : 503,
                             rc, "%s", err.message[0] ? err.message : smc_strerror(rc));
  json_decref(b);
  return res;
}

/*
 * Linearizable read. *found_out: the reply when the object exists (new ref).
 * From a local fold when one serves the object's partition (it waits until
 * that fold passed the partition's end offset taken now: every write
 * completed before the read began is below it); otherwise through the log
 * (a read event the committer answers).
 */
static int read_object(gw_req_t *r, const char *object, int timeout_ms, json_t **found_out) {
  json_t *reply = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  *found_out = NULL;
  if (!*object || strlen(object) > SMC_CODEC_MAX_ID)
    return SMC_EBAD_REQUEST;
  char *text = NULL;
  size_t len = 0;
  int rc = smc_answers_read(r->gw->answers, object, smc_now_ms() + timeout_ms, &text, &len);
  if (rc == 0) {
    reply = json_loadb(text, len, 0, NULL);
    free(text);
    if (!reply)
      return SMC_EINTERNAL;
    smc_metrics_counter_add("smc_gateway_reads_total", "source=\"fold\"", 1);
  } else if (rc == SMC_ENOT_FOUND) {
    rc = smc_client_read(r->gw->client, object, timeout_ms, &reply, &err);
    if (rc == 0)
      smc_metrics_counter_add("smc_gateway_reads_total", "source=\"log\"", 1);
  }
  if (rc < 0)
    return rc;
  if (json_is_true(json_object_get(reply, "found")))
    *found_out = reply;
  else
    json_decref(reply);
  return 0;
}

static int machine_matches(const json_t *v, const char *machine) {
  const char *mc = json_string_value(json_object_get(v, "machine"));
  return !mc || !strcmp(mc, machine);
}

/* The answer to GET .../object/{o} from a read's result (takes reply). */
static enum MHD_Result object_answer(gw_req_t *r, const char *machine, const char *object, int rc,
                                     json_t *reply) {
  if (rc == SMC_EBAD_REQUEST)
    return smc_gw_reply_error(r, 400, rc, "bad object id: %s", smc_strerror(rc));
  if (rc == SMC_EUNAVAILABLE)
    return smc_gw_reply_error(r, 503, rc, "the latest state of '%s' could not be read in time",
                              object);
  if (rc < 0)
    return smc_gw_reply_error(r, 503, rc, "read failed: %s", smc_strerror(rc));
  if (!reply || !machine_matches(reply, machine)) {
    json_decref(reply);
    return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_OBJECT, "no object '%s' of machine '%s'", object,
                              machine);
  }
  json_t *v = object_view(reply, object, machine);
  if (!json_object_get(v, "updated")) {
    json_t *latest = smc_gw_object_latest(r->gw->follower, object);
    if (latest &&
        json_equal(json_object_get(latest, "version"), json_object_get(reply, "version")) &&
        json_object_get(latest, "time"))
      json_object_set(v, "updated", json_object_get(latest, "time"));
    json_decref(latest);
  }
  json_decref(reply);
  return smc_gw_reply_json(r, 200, v);
}

static int get_wait_ms(gw_req_t *r, int64_t *wait_ms) {
  const char *ws = smc_gw_arg(r, "wait");
  *wait_ms = ws ? smc_gw_parse_duration(ws) : DEFAULT_WAIT_MS;
  return *wait_ms > 0 && *wait_ms <= MAX_WAIT_MS;
}

/* Pool thread: a read through the log (no local fold serves the object). */
static void get_object_job(gw_req_t *r) {
  const char *machine = r->segs[1], *object = r->segs[3];
  int64_t wait_ms;
  get_wait_ms(r, &wait_ms);
  json_t *reply = NULL;
  int rc = read_object(r, object, (int)wait_ms, &reply);
  object_answer(r, machine, object, rc, reply);
}

/* A read from a local fold, waiting without a thread for its ReadIndex
 * round and for the fold to pass the round's offset. */
typedef struct get_wait {
  smc_answer_t a;
  int64_t end;
  int stopped; /* smc_answers_read_stop returned: nothing touches a */
} get_wait_t;

static void get_release(gw_req_t *r) {
  get_wait_t *w = r->ctx->state;
  if (!w)
    return;
  if (!w->stopped)
    smc_answers_read_stop(&w->a);
  smc_answer_close(&w->a);
  free(w);
  r->ctx->state = NULL;
  r->ctx->release = NULL;
}

static enum MHD_Result get_resume(gw_req_t *r) {
  get_wait_t *w = r->ctx->state;
  if (!smc_answer_wait(&w->a, 0) && smc_now_ms() < w->end && !atomic_load(&r->gw->stopping))
    return smc_gw_wait(r, w->end, get_resume);
  int rc = smc_answers_read_stop(&w->a) ? w->a.status : SMC_EUNAVAILABLE;
  w->stopped = 1;
  json_t *reply = NULL;
  if (rc == 0) {
    json_t *v = json_loadb(w->a.json, w->a.len, 0, NULL);
    if (!v)
      rc = SMC_EINTERNAL;
    else
      smc_metrics_counter_add("smc_gateway_reads_total", "source=\"fold\"", 1);
    if (json_is_true(json_object_get(v, "found")))
      reply = v;
    else
      json_decref(v);
  }
  get_release(r);
  return object_answer(r, r->segs[1], r->segs[3], rc, reply);
}

static enum MHD_Result get_object(gw_req_t *r, const char *machine, const char *object) {
  int64_t wait_ms;
  if (!get_wait_ms(r, &wait_ms))
    return smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                              "wait must be a duration like 500ms or 5s, at most 60s");
  if (!*object || strlen(object) > SMC_CODEC_MAX_ID)
    return object_answer(r, machine, object, SMC_EBAD_REQUEST, NULL);
  if (r->deferred) {
    get_object_job(r);
    return MHD_YES;
  }
  get_wait_t *w = calloc(1, sizeof *w);
  if (!w)
    return smc_gw_reply_error(r, 500, SMC_ENOMEM, "out of memory");
  slot_init(&w->a, r);
  w->end = smc_now_ms() + wait_ms;
  int rc = smc_answers_read_start(r->gw->answers, object, &w->a);
  if (rc) {
    smc_answer_close(&w->a);
    free(w);
    if (rc == SMC_ENOT_FOUND) /* no local fold: through the log, which blocks */
      return smc_gw_offload(r, get_object_job) == 0 ? MHD_YES : MHD_NO;
    return object_answer(r, machine, object, rc, NULL);
  }
  r->ctx->state = w;
  r->ctx->release = get_release;
  return smc_gw_wait(r, w->end, get_resume);
}

/* 1 when v (a confirmation or a read reply) is of machine: strictly, a
 * value without "machine" is of none. */
static int owned_by(const json_t *v, const char *machine) {
  const char *mc = json_string_value(json_object_get(v, "machine"));
  return mc && !strcmp(mc, machine);
}

/*
 * Watch: the object must exist and be of the path's machine (the one whose
 * rights the token was checked for), checked on what the gateway knows
 * (its latest confirmation) or else through a read; so a right on one
 * machine never reads, or waits for, an object of another, nor waits for an
 * id that is no object yet. Each commit handed out is checked again.
 */
static enum MHD_Result get_watch(gw_req_t *r, const char *machine, const char *object) {
  const char *ts = smc_gw_arg(r, "timeout");
  int64_t timeout_ms = ts ? smc_gw_parse_duration(ts) : DEFAULT_WATCH_MS;
  if (timeout_ms < 0 || timeout_ms > MAX_WATCH_MS)
    return smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                              "timeout must be a duration like 30s, at most 300s");
  int64_t after = -1;
  if (parse_version(smc_gw_arg(r, "after_version"), &after) < 0)
    return smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                              "after_version must be a non-negative integer");
  int64_t deadline = smc_now_ms() + timeout_ms;
  json_t *latest = smc_gw_object_latest(r->gw->follower, object);
  int64_t have = latest ? json_integer_value(json_object_get(latest, "version")) : -1;
  json_t *now = NULL;
  if (latest && !owned_by(latest, machine)) {
    json_decref(latest);
    return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_OBJECT, "no object '%s' of machine '%s'", object,
                              machine);
  }
  if (after < 0 || have <= after) {
    json_t *reply = NULL;
    int rc = read_object(r, object, DEFAULT_WAIT_MS, &reply);
    if (rc < 0) {
      json_decref(latest);
      if (rc == SMC_EBAD_REQUEST)
        return smc_gw_reply_error(r, 400, rc, "bad object id: %s", smc_strerror(rc));
      return smc_gw_reply_error(r, 503, rc, "the state of '%s' could not be read in time", object);
    }
    if (!reply || !owned_by(reply, machine)) {
      json_decref(reply);
      json_decref(latest);
      return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_OBJECT, "no object '%s' of machine '%s'",
                                object, machine);
    }
    int64_t rv = json_integer_value(json_object_get(reply, "version"));
    if (after < 0)
      after = rv > have ? rv : (have > 0 ? have : 0);
    if (rv > after)
      now = json_incref(reply);
    json_decref(reply);
  } else {
    now = json_incref(latest);
  }
  json_decref(latest);
  const char *accept = smc_gw_header(r, MHD_HTTP_HEADER_ACCEPT);
  if (accept && strstr(accept, "text/event-stream")) {
    json_decref(now);
    return smc_gw_watch_stream(r, object, after, timeout_ms);
  }
  if (!now)
    now = smc_gw_object_wait(r->gw->follower, object, after, deadline);
  if (!now)
    return smc_gw_reply_raw(r, 204, NULL, NULL, 0);
  if (!owned_by(now, machine)) {
    json_decref(now);
    return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_OBJECT, "no object '%s' of machine '%s'", object,
                              machine);
  }
  json_t *v = object_view(now, object, machine);
  json_decref(now);
  return smc_gw_reply_json(r, 200, v);
}

/* ---- SSE: one event per newer committed version until the timeout. ---- */

typedef struct sse {
  gw_follower_t *f;
  gw_req_t *r; /* the request (its state outlives the stream) */
  char *object, *machine;
  int64_t after, deadline;
  char *pending; /* bytes not yet handed out */
  size_t plen, poff;
  int waited; /* a pool thread waited: got holds what came (NULL: nothing) */
  json_t *got;
} sse_t;

static void sse_free(void *cls) {
  sse_t *s = cls;
  json_decref(s->got);
  free(s->object);
  free(s->machine);
  free(s->pending);
  free(s);
}

/* Pool thread: wait for the next commit or the keepalive time. */
static void sse_wait_job(gw_req_t *r) {
  sse_t *s = r->ctx->state;
  int64_t now = smc_now_ms();
  int64_t until = s->deadline < now + SSE_KEEPALIVE_MS ? s->deadline : now + SSE_KEEPALIVE_MS;
  s->got = smc_gw_object_wait(s->f, s->object, s->after, until);
  s->waited = 1;
}

/* The next event's bytes into s->pending: 1; 0 when the stream ends; -1
 * when nothing came yet (the connection is suspended until it does). */
static int sse_next(sse_t *s) {
  json_t *c;
  if (s->waited) {
    c = s->got;
    s->got = NULL;
    s->waited = 0;
  } else {
    if (smc_now_ms() >= s->deadline || !smc_gw_follower_running(s->f))
      return 0;
    c = smc_gw_object_wait(s->f, s->object, s->after, 0); /* only looks */
    if (!c) { /* wait on a pool thread, not on this HTTP thread */
      s->r->ctx->state = s;
      return smc_gw_offload(s->r, sse_wait_job) == 0 ? -1 : 0;
    }
  }
  if (!c) {
    if (smc_now_ms() >= s->deadline || !smc_gw_follower_running(s->f))
      return 0;
    s->pending = strdup(": keepalive\n\n");
  } else if (!owned_by(c, s->machine)) { /* never another machine's object */
    json_decref(c);
    return 0;
  } else {
    s->after = json_integer_value(json_object_get(c, "version"));
    json_t *v = object_view(c, s->object, s->machine);
    json_decref(c);
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(v);
    if (text) {
      size_t n = strlen(text) + 64;
      s->pending = malloc(n);
      if (s->pending)
        snprintf(s->pending, n, "id: %lld\nevent: commit\ndata: %s\n\n", (long long)s->after, text);
      free(text);
    }
  }
  return 1;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  sse_t *s = cls;
  while (s->poff >= s->plen) {
    free(s->pending);
    s->pending = NULL;
    s->plen = s->poff = 0;
    int more = sse_next(s);
    if (more < 0)
      return 0; /* suspended: libmicrohttpd asks again once resumed */
    if (more == 0)
      return MHD_CONTENT_READER_END_OF_STREAM;
    if (!s->pending)
      return MHD_CONTENT_READER_END_WITH_ERROR;
    s->plen = strlen(s->pending);
  }
  size_t n = s->plen - s->poff < max ? s->plen - s->poff : max;
  memcpy(buf, s->pending + s->poff, n);
  s->poff += n;
  return (ssize_t)n;
}

enum MHD_Result smc_gw_watch_stream(gw_req_t *r, const char *object, int64_t after,
                                    int64_t timeout_ms) {
  sse_t *s = calloc(1, sizeof(*s));
  if (!s || !(s->object = strdup(object)) || !(s->machine = strdup(r->segs[1]))) {
    if (s)
      sse_free(s);
    return smc_gw_reply_error(r, 500, SMC_ENOMEM, "out of memory");
  }
  s->f = r->gw->follower;
  s->r = r;
  s->after = after;
  s->deadline = smc_now_ms() + timeout_ms;
  struct MHD_Response *resp =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
  if (!resp) {
    sse_free(s);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  return smc_gw_queue(r, 200, resp);
}

enum MHD_Result smc_gw_route_object(gw_req_t *r) {
  /* segs: machine M object O [watch | history | pending | transition T] */
  const char *machine = r->segs[1], *object = r->segs[3];
  int get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
  if (r->nsegs == 4) {
    if (!get)
      return smc_gw_reply_error(r, 405, SMC_EBAD_REQUEST, "method %s not allowed here", r->method);
    if (!smc_gw_catalog_get_exists(r->gw->follower, machine))
      return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_MACHINE, "no machine named '%s'", machine);
    enum MHD_Result fwd;
    if (smc_gw_maybe_forward(r, object, FORWARD_TIMEOUT_MS, &fwd))
      return fwd;
    return get_object(r, machine, object);
  }
  if (r->nsegs == 5 && !strcmp(r->segs[4], "history"))
    return smc_gw_route_history(r);
  if (r->nsegs == 5 && !strcmp(r->segs[4], "pending"))
    return smc_gw_route_pending(r);
  if (r->nsegs == 5 && !strcmp(r->segs[4], "watch")) {
    if (!get)
      return smc_gw_reply_error(r, 405, SMC_EBAD_REQUEST, "method %s not allowed here", r->method);
    if (!smc_gw_catalog_get_exists(r->gw->follower, machine))
      return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_MACHINE, "no machine named '%s'", machine);
    return get_watch(r, machine, object);
  }
  if (r->nsegs == 6 && !strcmp(r->segs[4], "transition")) {
    enum MHD_Result fwd;
    if (!strcmp(r->method, "PUT") && smc_gw_maybe_forward(r, object, FORWARD_TIMEOUT_MS, &fwd))
      return fwd;
    if (!strcmp(r->method, "PUT"))
      return put_transition(r, machine, object, r->segs[5]);
    if (!strcmp(r->method, "PATCH"))
      return patch_vote(r, machine, object, r->segs[5]);
    return smc_gw_reply_error(r, 405, SMC_EBAD_REQUEST,
                              "method %s not allowed here (PUT proposes, PATCH votes)", r->method);
  }
  return smc_gw_reply_error(r, 404, SMC_ENOT_FOUND, "no such resource");
}
