/*
 * The fold's decisions on one object: queueing, activation (protocol.md step
 * 5), votes (6), commit with the checksum chain (7), rejection and expiry.
 *
 * Every function here works on a loaded fold_obj_t that the caller saves
 * after; queued proposals are read and written through fold_state.c.
 */
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/fold_int.h"
#include "core/json_scan.h"
#include "core/util.h"
#include "core/vote_sig.h"

static const char ZERO_CHECKSUM[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static json_t *jstr_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *strs_json(const fold_strs_t *s) {
  json_t *a = json_array();
  for (size_t i = 0; i < s->n; i++)
    json_array_append_new(a, json_string(s->v[i]));
  return a;
}

json_t *fold_votes_json(const fold_prop_t *p) {
  return json_pack("{s:o,s:o}", "accept", strs_json(&p->accept), "reject", strs_json(&p->reject));
}

/* The typed fields of p's confirmation with o as it is now (fold_emit adds
 * the text). */
static smc_output_t conf_output(const fold_obj_t *o, const fold_prop_t *p, const char *machine,
                                const char *outcome) {
  return (smc_output_t){.kind = SMC_OUT_CONFIRMATION,
                        .key = o->id,
                        .id = p->id,
                        .reply_to = p->reply_to,
                        .machine = machine,
                        .outcome = outcome,
                        .version = o->version,
                        .accept = (const char *const *)p->accept.v,
                        .naccept = p->accept.n,
                        .reject = (const char *const *)p->reject.v,
                        .nreject = p->reject.n};
}

/* The fields every confirmation has; the caller adds the rest. */
static json_t *conf_base(fold_ctx_t *c, const fold_obj_t *o, const fold_prop_t *p,
                         const char *machine, const char *transition, const char *outcome) {
  json_t *j = json_object();
  json_object_set_new(j, "type", json_string("confirmation"));
  json_object_set_new(j, "proposal", json_string(p->id));
  json_object_set_new(j, "object", json_string(o->id));
  if (machine)
    json_object_set_new(j, "machine", json_string(machine));
  if (transition)
    json_object_set_new(j, "transition", json_string(transition));
  json_object_set_new(j, "outcome", json_string(outcome));
  json_object_set_new(j, "votes", fold_votes_json(p));
  if (p->correlation)
    json_object_set_new(j, "correlation", json_string(p->correlation));
  json_object_set_new(j, "offset", json_integer(c->offset));
  json_object_set_new(j, "time", json_integer(c->clock));
  return j;
}

/* Record the decision of p (DECIDED), emit its confirmation. */
static int decide(fold_ctx_t *c, const fold_obj_t *o, const fold_prop_t *p, const char *text,
                  size_t len, const char *machine, const char *outcome) {
  if (fold_decided_put(c, p->id, text, len))
    return c->rc;
  smc_output_t out = conf_output(o, p, machine, outcome);
  return fold_emit(c, &out, text, len);
}

/* Reject (or expire) p: confirmation with the error and o unchanged. */
static int reject(fold_ctx_t *c, const fold_obj_t *o, const fold_prop_t *p, const char *outcome,
                  const smc_error_t *err) {
  const char *machine = o->version > 0 ? o->machine : p->machine;
  json_t *j = conf_base(c, o, p, machine, p->out_name ? p->out_name : p->transition, outcome);
  json_object_set_new(j, "version", json_integer(o->version));
  json_object_set_new(j, "state", jstr_or_null(o->version > 0 ? o->state : NULL));
  if (o->version > 0 && o->checksum)
    json_object_set_new(j, "checksum", json_string(o->checksum));
  json_object_set_new(j, "error", fold_error_json(err));
  char *text = smc_json_canonical(j);
  json_decref(j);
  if (!text)
    return fold_fail(c, SMC_ENOMEM);
  /* an unknown machine's name is the proposer's, not a machine: no label */
  int rc = decide(c, o, p, text, strlen(text), err->code == SMC_EUNKNOWN_MACHINE ? NULL : machine,
                  outcome);
  free(text);
  return rc;
}

static void add_strs(smc_buf_t *b, const fold_strs_t *s) {
  smc_buf_addc(b, '[');
  for (size_t i = 0; i < s->n; i++) {
    if (i)
      smc_buf_addc(b, ',');
    smc_buf_add_jstr(b, s->v[i]);
  }
  smc_buf_addc(b, ']');
}

/* The canonical text of a committed confirmation without its checksum, for
 * o after the commit: the same bytes smc_json_canonical would give for the
 * object of conf_base + version, state, data (o->data is canonical). */
static void committed_text(fold_ctx_t *c, const fold_obj_t *o, const fold_prop_t *p,
                           const char *name, smc_buf_t *b) {
  smc_buf_addc(b, '{');
  if (p->correlation) {
    smc_buf_add_kstr(b, "\"correlation\":", p->correlation);
    smc_buf_addc(b, ',');
  }
  smc_buf_adds(b, "\"data\":");
  smc_buf_adds(b, o->data);
  smc_buf_add_kstr(b, ",\"machine\":", o->machine);
  smc_buf_add_kstr(b, ",\"object\":", o->id);
  smc_buf_add_ki64(b, ",\"offset\":", c->offset);
  smc_buf_add_kstr(b, ",\"outcome\":\"committed\",\"proposal\":", p->id);
  smc_buf_add_kstr(b, ",\"state\":", o->state);
  smc_buf_add_ki64(b, ",\"time\":", c->clock);
  smc_buf_add_kstr(b, ",\"transition\":", name);
  smc_buf_add_ki64(b, ",\"type\":\"confirmation\",\"version\":", o->version);
  smc_buf_adds(b, ",\"votes\":{\"accept\":");
  add_strs(b, &p->accept);
  smc_buf_adds(b, ",\"reject\":");
  add_strs(b, &p->reject);
  smc_buf_adds(b, "}}");
}

/* Commit p's validated outcome: the new version, the checksum chain, the
 * re-armed inactivity timer, the confirmation. */
static int commit(fold_ctx_t *c, fold_obj_t *o, const fold_prop_t *p, const char *machine,
                  smc_machine_t *m, const char *name, const char *state, json_t *data) {
  char *dtext = NULL;
  smc_buf_t d;
  smc_buf_init(&d);
  if (data && smc_buf_add_canonical(&d, data) == 0 && !d.oom) {
    dtext = d.p; /* ownership moves to dtext */
  } else {
    smc_buf_close(&d);
    dtext = smc_json_canonical(data);
  }
  if (!dtext)
    return fold_fail(c, SMC_ENOMEM);
  o->version++;
  /* names the compiled machine holds are borrowed, not copied: m stays in
   * the fold's cache while the fold lives */
  const char *mname = smc_machine_name(m);
  if (o->version == 1) {
    o->created = c->clock;
    if (!strcmp(mname, machine))
      fold_obj_borrow(o, OBJ_MACHINE, &o->machine, mname);
    else
      fold_obj_set(o, OBJ_MACHINE, &o->machine, strdup(machine));
  }
  if (!o->state || strcmp(o->state, state)) {
    long si = smc_machine_find_state(m, state);
    const smc_state_info_t *sinfo = si >= 0 ? smc_machine_state(m, (size_t)si) : NULL;
    if (sinfo)
      fold_obj_borrow(o, OBJ_STATE, &o->state, sinfo->name);
    else
      fold_obj_set(o, OBJ_STATE, &o->state, strdup(state));
  }
  fold_obj_set(o, OBJ_DATA, &o->data, dtext);
  o->updated = c->clock;
  if (!o->machine || !o->state)
    return fold_fail(c, SMC_ENOMEM);

  /* checksum = sha256(prev hex || canonical confirmation without checksum);
   * the text is built directly (keys in sorted order, strings escaped as
   * jansson does) after the previous checksum, in the fold's buffer after
   * PRE + HDR - 65 spare bytes: "checksum" sorts before every other key, so
   * the confirmation is then {"checksum":"<sum>", written over the spare
   * bytes, the previous checksum and the text's "{"; the PRE bytes before
   * it take 'D' and the time, which makes the whole buffer the DECIDED
   * value (fold_decided_put_value), with no copy. */
  enum { PRE = 9, HDR = 13 + 64 + 2 }; /* 'D' time(8); {"checksum":"  sum  ", */
  smc_buf_t *b = &c->f->conf;
  smc_buf_reset(b);
  smc_buf_reserve(b, 1024);
  smc_buf_add(b, "......................", PRE + HDR - 65);
  smc_buf_add(b, o->checksum ? o->checksum : ZERO_CHECKSUM, 64);
  committed_text(c, o, p, name, b);
  if (b->oom)
    return fold_fail(c, SMC_ENOMEM);
  char sum[65] = "";
  smc_sha256_hex(b->p + PRE + HDR - 65, b->len - (PRE + HDR - 65), sum);
  b->p[0] = 'D';
  smc_be64((uint8_t *)b->p + 1, (uint64_t)c->clock);
  memcpy(b->p + PRE, "{\"checksum\":\"", 13);
  memcpy(b->p + PRE + 13, sum, 64);
  memcpy(b->p + PRE + 77, "\",", 2);
  if (o->checksum && !(o->own & OBJ_CHECKSUM) && strlen(o->checksum) == 64)
    memcpy(o->checksum, sum, 64); /* in place, in the loaded record's block */
  else
    fold_obj_set(o, OBJ_CHECKSUM, &o->checksum, strdup(sum));
  if (!o->checksum)
    return fold_fail(c, SMC_ENOMEM);

  if (o->timer_deadline) {
    fold_timer_del(c, o->timer_deadline, o->id, 'a');
    o->timer_deadline = 0;
  }
  size_t ti = 0;
  int64_t after = 0;
  if (smc_machine_timer(m, o->state, &ti, &after) == 1 && after > 0) {
    uint8_t v[16];
    smc_be64(v, (uint64_t)o->version);
    smc_be64(v + 8, (uint64_t)ti);
    o->timer_deadline = smc_time_add(c->clock, after);
    fold_timer_put(c, o->timer_deadline, o->id, 'a', v, sizeof(v));
  }
  if (c->rc || fold_decided_put_value(c, p->id, b->p, b->len) ||
      fold_history_put(c, o->id, o->version, b->p + PRE, b->len - PRE))
    return c->rc;
  smc_output_t out = conf_output(o, p, o->machine, "committed");
  return fold_emit(c, &out, b->p + PRE, b->len - PRE);
}

/* Publish that p waits for votes. */
static int vote_request(fold_ctx_t *c, const fold_obj_t *o, const fold_prop_t *p,
                        const smc_vote_policy_t *vp, const char *machine) {
  json_t *voters = json_array();
  for (size_t i = 0; i < vp->nvoters; i++)
    json_array_append_new(voters, json_string(vp->voters[i]));
  json_t *j = json_object();
  json_object_set_new(j, "type", json_string("vote_request"));
  json_object_set_new(j, "proposal", json_string(p->id));
  json_object_set_new(j, "object", json_string(o->id));
  json_object_set_new(j, "machine", json_string(machine));
  json_object_set_new(j, "transition", json_string(p->out_name));
  json_object_set_new(j, "to", json_string(p->out_state));
  json_object_set_new(j, "data",
                      p->data_json ? json_incref((json_t *)p->data_json)
                      : p->data    ? smc_json_loads(p->data, 0)
                                   : json_object());
  json_object_set_new(j, "result", smc_json_loads(p->out_data, 0));
  if (p->has_expect)
    json_object_set_new(j, "expect_version", json_integer(p->expect));
  if (p->proposer)
    json_object_set_new(j, "proposer", json_string(p->proposer));
  json_object_set_new(j, "version", json_integer(o->version));
  json_object_set_new(j, "state", jstr_or_null(o->version > 0 ? o->state : NULL));
  json_object_set_new(j, "voters", voters);
  json_object_set_new(j, "quorum", json_integer((json_int_t)vp->quorum));
  json_object_set_new(j, "deadline", p->deadline ? json_integer(p->deadline) : json_null());
  char *text = fold_answer_text(c, j, p->correlation);
  if (!text)
    return SMC_ENOMEM; /* fold_fail recorded it */
  smc_output_t out = conf_output(o, p, NULL, NULL);
  out.kind = SMC_OUT_VOTE_REQUEST;
  out.reply_to = NULL;
  out.voters = (const char *const *)vp->voters;
  out.nvoters = vp->nvoters;
  int rc = fold_emit(c, &out, text, strlen(text));
  free(text);
  return rc;
}

enum { DONE = 0, WAITING = 1 };

/* Activate the head proposal p of o. Returns DONE (committed or rejected),
 * WAITING (votes needed; p updated, caller saves it), or a negative code. */
static int activate(fold_ctx_t *c, fold_obj_t *o, fold_prop_t *p) {
  smc_error_t err;
  smc_error_clear(&err);
  if (p->has_expect && p->expect != o->version) {
    smc_error_set(&err, SMC_EVERSION_CONFLICT, "expect_version",
                  "expected version %lld, the object is at version %lld", (long long)p->expect,
                  (long long)o->version);
    return reject(c, o, p, "rejected", &err);
  }
  const char *mname = o->version > 0 ? o->machine : p->machine;
  if (!mname) {
    smc_error_set(&err, SMC_EUNKNOWN_OBJECT, "object",
                  "object '%s' does not exist (a create proposal must name its machine)", o->id);
    return reject(c, o, p, "rejected", &err);
  }
  if (o->version > 0 && p->machine && strcmp(p->machine, o->machine)) {
    if (!fold_machine_get(c, p->machine)) { /* the machine named is no machine */
      if (c->rc)
        return c->rc;
      smc_error_set(&err, SMC_EUNKNOWN_MACHINE, "machine", "no machine '%s' is registered",
                    p->machine);
      return reject(c, o, p, "rejected", &err);
    }
    /* object ids are global: the id is taken, by an object of another machine */
    smc_error_set(&err, SMC_EOBJECT_EXISTS, "machine",
                  "object '%s' exists and belongs to machine '%s' (object ids are global)", o->id,
                  o->machine);
    return reject(c, o, p, "rejected", &err);
  }
  smc_machine_t *m = fold_machine_get(c, mname);
  if (!m) {
    if (c->rc)
      return c->rc;
    smc_error_set(&err, SMC_EUNKNOWN_MACHINE, "machine", "no machine '%s' is registered", mname);
    return reject(c, o, p, "rejected", &err);
  }
  /* an empty object's data needs no parse */
  json_t *src = !(o->version > 0 && o->data) ? NULL
                : strcmp(o->data, "{}")      ? smc_json_loads(o->data, 0)
                                             : json_object();
  json_t *input = p->data_json ? json_incref((json_t *)p->data_json)
                  : p->data    ? smc_json_loads(p->data, 0)
                               : NULL;
  smc_object_view_t ov = {o->id, o->version > 0 ? o->state : NULL, o->version, src};
  smc_proposal_view_t pv = {p->transition, p->to, input, p->proposer, c->clock};
  smc_outcome_t out;
  memset(&out, 0, sizeof(out));
  int rc = smc_machine_validate(m, &ov, &pv, &c->set.limits, &out, &err);
  json_decref(src);
  json_decref(input);
  if (rc) {
    if (rc == SMC_ENOMEM)
      return fold_fail(c, rc);
    if (!err.code)
      smc_error_set(&err, rc, NULL, "%s", smc_strerror(rc));
    return reject(c, o, p, "rejected", &err);
  }
  const smc_transition_info_t *ti = smc_machine_transition(m, out.transition);
  const smc_vote_policy_t *vp = ti ? ti->votes : NULL;
  if (!vp || vp->nvoters == 0 || vp->quorum == 0) {
    rc = commit(c, o, p, mname, m, out.name, out.state, out.data);
    json_decref(out.data);
    return rc < 0 ? rc : DONE;
  }
  /* votes needed: remember the outcome, wait */
  if (fold_prop_own(p)) {
    json_decref(out.data);
    return fold_fail(c, SMC_ENOMEM);
  }
  p->waiting = 1;
  p->tidx = (int64_t)out.transition;
  char *mcopy = strdup(mname); /* mname may be p->machine itself */
  free(p->machine);
  p->machine = mcopy;
  p->out_name = strdup(out.name);
  p->out_state = strdup(out.state);
  p->out_data = smc_json_canonical(out.data);
  json_decref(out.data);
  if (!p->machine || !p->out_name || !p->out_state || !p->out_data)
    return fold_fail(c, SMC_ENOMEM);
  p->deadline = vp->timeout_ms > 0 ? smc_time_add(c->clock, vp->timeout_ms) : 0;
  if (p->deadline) {
    o->vote_deadline = p->deadline;
    if (fold_timer_put(c, p->deadline, o->id, 'v', p->id, strlen(p->id)))
      return c->rc;
  }
  rc = vote_request(c, o, p, vp, p->machine);
  return rc < 0 ? rc : WAITING;
}

/* Drop the decided head of o's queue and activate the following ones until
 * one waits for votes or the queue is empty. head, if given, is the head
 * proposal already in memory (not yet stored); it is consumed. */
static int run_queue(fold_ctx_t *c, fold_obj_t *o, fold_prop_t *head) {
  while (o->qlen > 0 && !c->rc) {
    fold_prop_t p;
    int fresh = head != NULL;
    if (fresh) {
      p = *head;
      memset(head, 0, sizeof(*head));
      head = NULL;
    } else if (fold_prop_load(c, o->id, o->head_seq, &p)) {
      return c->rc;
    }
    if (p.waiting) { /* already active: nothing to do until votes or timeout */
      fold_prop_close(&p);
      return 0;
    }
    int rc = activate(c, o, &p);
    if (rc == WAITING) {
      fold_prop_save(c, o->id, o->head_seq, &p);
      if (fresh) /* a re-sent id must now be seen as queued */
        fold_decided_put_queued(c, p.id, o->id);
    } else if (rc == DONE && !fresh)
      fold_prop_del(c, o->id, o->head_seq);
    fold_prop_close(&p);
    if (rc != DONE)
      return rc < 0 ? rc : 0;
    o->head_seq++;
    o->qlen--;
  }
  return c->rc;
}

/* Finish the waiting head p of o (committed, rejected or expired) and move
 * on to the next proposal. */
static int finish_waiting(fold_ctx_t *c, fold_obj_t *o, fold_prop_t *p) {
  if (o->vote_deadline) {
    fold_timer_del(c, o->vote_deadline, o->id, 'v');
    o->vote_deadline = 0;
  }
  fold_prop_del(c, o->id, o->head_seq);
  o->head_seq++;
  o->qlen--;
  (void)p;
  return c->rc ? c->rc : run_queue(c, o, NULL);
}

int fold_enqueue(fold_ctx_t *c, fold_obj_t *o, fold_prop_t *p) {
  if (o->qlen >= (int64_t)c->set.max_queue) {
    smc_error_t err;
    smc_error_clear(&err);
    smc_error_set(&err, SMC_EQUEUE_FULL, NULL, "object '%s' has %lld proposals queued", o->id,
                  (long long)o->qlen);
    const char *machine = o->version > 0 ? o->machine : p->machine;
    json_t *j = conf_base(c, o, p, machine, p->transition, "rejected");
    json_object_set_new(j, "version", json_integer(o->version));
    json_object_set_new(j, "state", jstr_or_null(o->version > 0 ? o->state : NULL));
    json_object_set_new(
        j, "error",
        json_pack("{s:s,s:s,s:s}", "code", "queue_full", "message", err.message, "path", ""));
    char *text = smc_json_canonical(j);
    json_decref(j);
    smc_output_t out = conf_output(o, p, machine, "rejected");
    int rc = text ? fold_emit(c, &out, text, strlen(text)) : fold_fail(c, SMC_ENOMEM);
    free(text);
    fold_prop_close(p);
    return rc;
  }
  int64_t seq = o->next_seq++;
  o->qlen++;
  if (o->qlen == 1) {
    o->head_seq = seq;
    int rc = run_queue(c, o, p);
    fold_prop_close(p);
    return rc;
  }
  fold_prop_save(c, o->id, seq, p);
  fold_decided_put_queued(c, p->id, o->id);
  fold_prop_close(p);
  return c->rc;
}

int fold_vote(fold_ctx_t *c, const smc_event_t *ev) {
  fold_obj_t o;
  int rc = fold_obj_load(c, ev->object, &o);
  if (rc == SMC_ENOT_FOUND || (!rc && o.qlen == 0)) {
    fold_log(c, 2, "vote on '%s' ignored: no active proposal", ev->object);
    fold_obj_close(&o);
    return 0;
  }
  if (rc) {
    fold_obj_close(&o);
    return c->rc;
  }
  fold_prop_t p;
  if (fold_prop_load(c, o.id, o.head_seq, &p)) {
    fold_obj_close(&o);
    return c->rc;
  }
  smc_machine_t *m = p.waiting ? fold_machine_get(c, p.machine) : NULL;
  const smc_transition_info_t *ti = m ? smc_machine_transition(m, (size_t)p.tidx) : NULL;
  const smc_vote_policy_t *vp = ti ? ti->votes : NULL;
  if (!p.waiting || strcmp(p.id, ev->proposal) || !vp) {
    fold_log(c, 2, "vote on '%s' for '%s' ignored: not the active proposal", ev->object,
             ev->proposal);
    goto out;
  }
  if (ev->machine && strcmp(ev->machine, p.machine)) {
    /* a vote sent for machine X (a gateway path, a token's right on X)
     * never counts on a proposal of machine Y */
    fold_note(c, 1, SMC_FOLD_NOTE_VOTE_IGNORED, SMC_EUNKNOWN_MACHINE,
              "unknown_machine: vote of '%s' on proposal '%s' of '%s' not counted: it names "
              "machine '%s', the proposal is of '%s'",
              ev->voter, p.id, o.id, ev->machine, p.machine);
    goto out;
  }
  int eligible = 0;
  size_t vi = 0;
  for (; vi < vp->nvoters && !eligible; vi++)
    eligible = !strcmp(vp->voters[vi], ev->voter);
  if (!eligible) {
    fold_note(c, 1, SMC_FOLD_NOTE_VOTE_IGNORED, SMC_ENOT_A_VOTER,
              "not_a_voter: '%s' may not vote on proposal '%s' of '%s'", ev->voter, p.id, o.id);
    goto out;
  }
  if (vp->keys && vp->keys[vi - 1]) {
    smc_error_t serr;
    smc_error_clear(&serr);
    if (smc_vote_sig_verify_reason(vp->keys[vi - 1], ev->object, ev->proposal, ev->voter,
                                   ev->accept, ev->reason, ev->signature, &serr)) {
      fold_note(c, 1, SMC_FOLD_NOTE_VOTE_IGNORED, SMC_EBAD_SIGNATURE,
                "bad_signature: vote of '%s' on proposal '%s' of '%s' not counted: %s", ev->voter,
                p.id, o.id, serr.message);
      goto out;
    }
  }
  if (fold_strs_has(&p.accept, ev->voter) || fold_strs_has(&p.reject, ev->voter)) {
    fold_log(c, 2, "second vote of '%s' on proposal '%s' ignored", ev->voter, p.id);
    goto out;
  }
  if (fold_strs_add(ev->accept ? &p.accept : &p.reject, ev->voter)) {
    fold_fail(c, SMC_ENOMEM);
    goto out;
  }
  if (p.accept.n >= vp->quorum) {
    json_t *data = smc_json_loads(p.out_data, 0);
    if (!data)
      fold_fail(c, SMC_ESTORE);
    else
      commit(c, &o, &p, p.machine, m, p.out_name, p.out_state, data);
    json_decref(data);
    finish_waiting(c, &o, &p);
  } else if (vp->nvoters - p.reject.n < vp->quorum) {
    smc_error_t err;
    smc_error_clear(&err);
    smc_error_set(&err, SMC_EVOTE_REJECTED, NULL,
                  "%zu of %zu voters rejected; %zu accepts are needed", p.reject.n, vp->nvoters,
                  vp->quorum);
    reject(c, &o, &p, "rejected", &err);
    finish_waiting(c, &o, &p);
  } else {
    fold_prop_save(c, o.id, o.head_seq, &p);
  }
  if (!c->rc)
    fold_obj_save(c, &o);
out:
  fold_prop_close(&p);
  fold_obj_close(&o);
  return c->rc;
}

int fold_fire_vote_timeout(fold_ctx_t *c, fold_obj_t *o, const char *id) {
  o->vote_deadline = 0; /* the timer key is gone already */
  if (o->qlen == 0)
    return 0;
  fold_prop_t p;
  if (fold_prop_load(c, o->id, o->head_seq, &p))
    return c->rc;
  if (p.waiting && !strcmp(p.id, id)) {
    smc_error_t err;
    smc_error_clear(&err);
    smc_error_set(&err, SMC_EVOTE_TIMEOUT, NULL,
                  "no quorum before the deadline (%zu accepts, %zu rejects)", p.accept.n,
                  p.reject.n);
    reject(c, o, &p, "expired", &err);
    finish_waiting(c, o, &p);
  }
  fold_prop_close(&p);
  return c->rc;
}

/* An inactivity timer fired: queue the system proposal of its transition. */
int fold_fire_inactivity(fold_ctx_t *c, fold_obj_t *o, int64_t version, int64_t tidx) {
  o->timer_deadline = 0;
  if (o->version != version || !o->machine)
    return 0;
  smc_machine_t *m = fold_machine_get(c, o->machine);
  const smc_transition_info_t *ti = m ? smc_machine_transition(m, (size_t)tidx) : NULL;
  if (!ti)
    return c->rc;
  fold_prop_t p;
  memset(&p, 0, sizeof(p));
  smc_buf_t id;
  smc_buf_init(&id);
  smc_buf_adds(&id, "timer:");
  smc_buf_adds(&id, o->id);
  smc_buf_addc(&id, ':');
  smc_buf_add_i64(&id, version);
  smc_buf_addc(&id, ':');
  smc_buf_adds(&id, ti->name);
  if (id.oom)
    return fold_fail(c, SMC_ENOMEM);
  int st = 0;
  if (fold_decided_get(c, id.p, &st, NULL) || st) {
    smc_buf_close(&id);
    return c->rc;
  }
  p.id = id.p; /* ownership moves to p */
  p.machine = strdup(o->machine);
  p.transition = strdup(ti->name);
  p.proposer = strdup("smc.timer");
  p.has_expect = 1;
  p.expect = version;
  p.is_timer = 1;
  if (!p.machine || !p.transition || !p.proposer) {
    fold_prop_close(&p);
    return fold_fail(c, SMC_ENOMEM);
  }
  return fold_enqueue(c, o, &p);
}

int fold_reject_unrecorded(fold_ctx_t *c, const smc_event_t *ev, const smc_error_t *err) {
  json_t *j = json_object();
  json_object_set_new(j, "type", json_string("confirmation"));
  json_object_set_new(j, "proposal", json_string(ev->id));
  json_object_set_new(j, "object", json_string(ev->object));
  if (ev->machine)
    json_object_set_new(j, "machine", json_string(ev->machine));
  if (ev->transition)
    json_object_set_new(j, "transition", json_string(ev->transition));
  json_object_set_new(j, "outcome", json_string("rejected"));
  json_object_set_new(j, "error", fold_error_json(err));
  char *text = fold_answer_text(c, j, ev->correlation);
  if (!text)
    return SMC_ENOMEM; /* fold_fail recorded it */
  /* a bad event's machine is unchecked: no machine for the metrics */
  smc_output_t out = {.kind = SMC_OUT_CONFIRMATION,
                      .key = ev->object,
                      .id = ev->id,
                      .reply_to = ev->reply_to,
                      .outcome = "rejected"};
  int rc = fold_emit(c, &out, text, strlen(text));
  free(text);
  return rc;
}
