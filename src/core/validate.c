/*
 * smc_machine_validate: the hot path. Everything was resolved at compile time
 * (machine_internal.h); here we only walk precompiled rules. The resulting
 * data is built by shallow copies: unchanged subtrees are shared with the
 * object's data and the proposal input (all of them are treated as
 * immutable by the fold), so a validation allocates only what changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/machine_internal.h"

enum {
  STAGE_VARS = 1,
  STAGE_SRC,
  STAGE_WHEN,
  STAGE_SET,
  STAGE_DST,
  STAGE_FIELDS,
  STAGE_SIZE,
  STAGE_DONE
};

typedef struct attempt {
  size_t t;
  uint64_t steps; /* the budget left when the attempt started */
  int rc;
  int stage;
  uint64_t progress;
  json_t *data;
  smc_error_t err;
} attempt_t;

/* RFC 7396 merge patch of patch onto target (both borrowed); a new object
 * that shares unchanged members. */
static json_t *merge_patch(const json_t *target, const json_t *patch) {
  json_t *out = json_is_object(target) ? json_copy((json_t *)target) : json_object();
  const char *k;
  json_t *pv;
  if (!out)
    return NULL;
  json_object_foreach((json_t *)patch, k, pv) {
    if (json_is_null(pv)) {
      json_object_del(out, k);
    } else if (json_is_object(pv)) {
      json_t *sub = merge_patch(json_object_get(out, k), pv);
      if (!sub || json_object_set_new(out, k, sub))
        goto fail;
    } else if (json_object_set(out, k, pv)) {
      goto fail;
    }
  }
  return out;
fail:
  json_decref(out);
  return NULL;
}

/* Top-level keys the transition's `set` deletes with a literal null before
 * any computed entry: no expression can see them, so the data is built
 * without them instead of copied and then pruned. */
typedef struct drops {
  const char *key[8];
  size_t n;
} drops_t;

static void early_drops(const smc_mtrans_t *tr, drops_t *d) {
  d->n = 0;
  for (size_t i = 0; i < tr->nset && !tr->set[i].expr; i++) {
    const smc_set_entry_t *e = &tr->set[i];
    if (e->nseg == 1 && json_is_null(e->literal) && d->n < sizeof(d->key) / sizeof(d->key[0]))
      d->key[d->n++] = e->seg[0];
  }
}

static int dropped(const drops_t *d, const char *k) {
  for (size_t i = 0; i < d->n; i++)
    if (!strcmp(d->key[i], k))
      return 1;
  return 0;
}

/* The data a transition starts from, before its `set`: base (borrowed; an
 * object or not) merge-patched with patch (an object, or NULL for none),
 * leaving out the keys of d. The same members in the same order as
 * merge_patch(base, patch) (or a copy of base) followed by deleting d's
 * keys; one pass, no member added only to be removed. */
static json_t *start_data(const json_t *base, const json_t *patch, const drops_t *d) {
  json_t *out = json_object();
  const char *k;
  json_t *v;
  if (!out)
    return NULL;
  if (json_is_object(base)) {
    json_object_foreach((json_t *)base, k, v) {
      if (dropped(d, k))
        continue;
      json_t *pv = patch ? json_object_get(patch, k) : NULL;
      if (!pv) {
        if (json_object_set_new_nocheck(out, k, json_incref(v)))
          goto fail;
      } else if (json_is_object(pv)) {
        json_t *sub = merge_patch(v, pv);
        if (!sub || json_object_set_new_nocheck(out, k, sub))
          goto fail;
      } else if (!json_is_null(pv) && json_object_set_new_nocheck(out, k, json_incref(pv))) {
        goto fail;
      }
    }
  }
  if (patch) {
    int base_obj = json_is_object(base);
    json_object_foreach((json_t *)patch, k, v) {
      if (json_is_null(v) || dropped(d, k) || (base_obj && json_object_get(base, k)))
        continue;
      json_t *nv = json_is_object(v) ? merge_patch(NULL, v) : json_incref(v);
      if (!nv || json_object_set_new_nocheck(out, k, nv))
        goto fail;
    }
  }
  return out;
fail:
  json_decref(out);
  return NULL;
}

/* Set (or delete, when val is NULL/null) a dotted path in obj, copying the
 * objects along the path so shared subtrees are never modified. */
static int set_path(json_t *obj, char **seg, size_t nseg, json_t *val) {
  json_t *cur = obj;
  for (size_t i = 0; i + 1 < nseg; i++) {
    json_t *child = json_object_get(cur, seg[i]);
    json_t *copy = json_is_object(child) ? json_copy(child) : json_object();
    if (!copy || json_object_set_new(cur, seg[i], copy))
      return SMC_ENOMEM;
    cur = copy;
  }
  if (!val || json_is_null(val))
    return json_object_del(cur, seg[nseg - 1]), 0;
  return json_object_set(cur, seg[nseg - 1], val) ? SMC_ENOMEM : 0;
}

static int check_additional(const smc_machine_t *m, const smc_mstate_t *st, size_t s,
                            const json_t *data, smc_rule_eval_t *ev) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)data, k, v) {
    int known = 0;
    for (size_t i = 0; st->names && st->names[i] && !known; i++)
      known = !strcmp(st->names[i], k);
    if (!known) {
      size_t old = smc_rule_path_push(ev, k);
      smc_rule_fail(ev, SMC_EVALIDATION_FAILED, "%s is not allowed in state %s (additional: false)",
                    ev->path, m->state_info[s].name);
      smc_rule_path_pop(ev, old);
      return SMC_EVALIDATION_FAILED;
    }
  }
  return 0;
}

/* Run transition t's rules for proposal p on obj; a = the outcome. */
static void run(const smc_machine_t *m, size_t t, const smc_object_view_t *obj,
                const smc_proposal_view_t *p, size_t max_bytes, int quiet, smc_eval_ctx_t *ctx,
                attempt_t *a) {
  const smc_mtrans_t *tr = &m->trans[t];
  const json_t *src = obj && obj->state ? obj->data : NULL;
  json_t *vars = NULL, *data = NULL;
  smc_rule_eval_t ev = {.ctx = ctx, .err = &a->err, .quiet = quiet};
  int rc = 0;
  ctx->src = src;
  ctx->dst = NULL;
  ctx->vars = NULL;
  ctx->value = NULL;
  a->stage = STAGE_VARS;
  if (tr->has_vars) {
    if ((rc = smc_vars_eval(&tr->vars, ctx, NULL, &vars, &a->err)))
      goto out;
    ctx->vars = vars;
  }
  a->stage = STAGE_SRC;
  smc_rule_path_set(&ev, "src");
  if ((rc = smc_rule_eval(tr->src, src, &ev)))
    goto out;
  a->stage = STAGE_WHEN;
  smc_rule_path_set(&ev, "input");
  if ((rc = smc_rule_eval(tr->when, p->input, &ev)))
    goto out;
  a->stage = STAGE_SET;
  if (p->input && !json_is_object(p->input) && !json_is_null(p->input)) {
    rc = smc_rule_fail(&ev, SMC_EVALIDATION_FAILED, "the proposal data must be an object");
    goto out;
  }
  drops_t drops;
  early_drops(tr, &drops);
  if (tr->replace)
    data = start_data(p->input, NULL, &drops);
  else
    data = start_data(src, p->input && json_is_object(p->input) ? p->input : NULL, &drops);
  if (!data) {
    rc = smc_error_set(&a->err, SMC_ENOMEM, NULL, "out of memory");
    goto out;
  }
  ctx->dst = data;
  for (size_t i = 0; i < tr->nset; i++) {
    const smc_set_entry_t *e = &tr->set[i];
    json_t *val = NULL;
    if (e->expr) {
      if ((rc = smc_expr_eval(e->expr, ctx, &val, &a->err))) {
        if (!a->err.path[0])
          snprintf(a->err.path, sizeof(a->err.path), "dst.%s", e->seg[0]);
        goto out;
      }
    } else {
      /* containers are copied: the machine's literal must never be shared
       * with data a caller may modify */
      val = json_is_object(e->literal) || json_is_array(e->literal) ? json_deep_copy(e->literal)
                                                                    : json_incref(e->literal);
    }
    rc = set_path(data, e->seg, e->nseg, val);
    json_decref(val);
    if (rc) {
      smc_error_set(&a->err, rc, NULL, "out of memory");
      goto out;
    }
  }
  a->stage = STAGE_DST;
  smc_rule_path_set(&ev, "dst");
  if ((rc = smc_rule_eval(tr->dst, data, &ev)))
    goto out;
  a->stage = STAGE_FIELDS;
  const smc_mstate_t *st = &m->states[tr->to];
  if ((rc = smc_rule_eval(st->fields, data, &ev)))
    goto out;
  if (!st->additional && (rc = check_additional(m, st, tr->to, data, &ev)))
    goto out;
  a->stage = STAGE_SIZE;
  size_t size = smc_canonical_size(data, max_bytes);
  if (size > max_bytes) {
    smc_rule_path_set(&ev, "dst");
    rc = smc_rule_fail(&ev, SMC_ETOO_LARGE,
                       "the resulting data (%s%zu bytes) is larger than the "
                       "limit of %zu bytes",
                       size > max_bytes + 64 ? "over " : "", size, max_bytes);
    goto out;
  }
  a->stage = STAGE_DONE;
out:
  if (rc == SMC_EVALIDATION_FAILED && tr->message && !ev.custom && !quiet) {
    json_t *msg = NULL;
    smc_error_t tmp = {0};
    if (!smc_template_eval(tr->message, ctx, &msg, &tmp) && json_is_string(msg))
      snprintf(a->err.message, sizeof(a->err.message), "%s", json_string_value(msg));
    json_decref(msg);
  }
  if (rc && !a->err.code)
    smc_error_set(&a->err, rc, NULL, "%s", smc_strerror(rc));
  a->rc = rc;
  a->progress = ev.progress;
  if (rc)
    json_decref(data);
  else
    a->data = data;
  json_decref(vars);
  ctx->vars = NULL;
  ctx->dst = NULL;
  ctx->src = NULL;
}

static int name_eq(const smc_transition_info_t *ti, const char *name) {
  return !strcmp(ti->name, name);
}

/* Pick the candidate transitions for p (the early checks of the header's
 * order). Returns 0 with cand filled, or an error code with err set. */
static int candidates(const smc_machine_t *m, const smc_object_view_t *obj, long s,
                      const smc_proposal_view_t *p, size_t *cand, size_t *ncand, smc_error_t *err) {
  int exists = obj && obj->state;
  const char *oid = obj && obj->id ? obj->id : "";
  *ncand = 0;
  if (p->transition && exists && !m->state_info[s].final) {
    /* The common case first: transitions of that name leave the state.
     * Only when none does are the error cases below told apart. */
    smc_leave_iter_t it = {.m = m, .s = (size_t)s};
    size_t t;
    while (smc_leave_next(&it, &t))
      if (name_eq(&m->trans_info[t], p->transition))
        cand[(*ncand)++] = t;
  }
  if (p->transition && *ncand) {
    /* found above: has_name holds and no error applies */
  } else if (p->transition) {
    int has_name = 0, has_create = 0;
    for (size_t t = 0; t < m->ntrans; t++)
      if (name_eq(&m->trans_info[t], p->transition)) {
        has_name = 1;
        has_create |= m->trans_info[t].creates;
      }
    if (!exists) {
      if (!has_create)
        return smc_error_set(err, SMC_EUNKNOWN_OBJECT, NULL,
                             "object '%s' does not exist and '%s' is not a create transition", oid,
                             p->transition);
      for (size_t i = 0; i < m->ncreates; i++)
        if (name_eq(&m->trans_info[m->creates[i]], p->transition))
          cand[(*ncand)++] = m->creates[i];
    } else {
      if (m->state_info[s].final)
        return smc_error_set(err, SMC_EFINAL_STATE, NULL, "object '%s' is in the final state %s",
                             oid, obj->state);
      if (!has_name)
        return smc_error_set(err, SMC_EUNKNOWN_TRANSITION, NULL,
                             "machine %s has no transition '%s'", m->name, p->transition);
      /* none of that name leaves the state (the loop above found none) */
      int only_create = 1;
      for (size_t u = 0; u < m->ntrans; u++)
        if (name_eq(&m->trans_info[u], p->transition) && !m->trans_info[u].creates)
          only_create = 0;
      if (only_create)
        return smc_error_set(err, SMC_EOBJECT_EXISTS, NULL,
                             "object '%s' exists already; '%s' creates objects", oid,
                             p->transition);
      return smc_error_set(err, SMC_EINVALID_TRANSITION, NULL,
                           "transition '%s' is not allowed from state %s", p->transition,
                           obj->state);
    }
  } else {
    if (!m->dfsm)
      return smc_error_set(err, SMC_EUNKNOWN_TRANSITION, NULL,
                           "machine %s is ndfsm: the proposal must name a transition", m->name);
    if (!exists) {
      for (size_t i = 0; i < m->ncreates; i++)
        cand[(*ncand)++] = m->creates[i];
      if (!*ncand)
        return smc_error_set(err, SMC_EUNKNOWN_OBJECT, NULL,
                             "object '%s' does not exist and machine %s has no create transition",
                             oid, m->name);
    } else {
      if (m->state_info[s].final)
        return smc_error_set(err, SMC_EFINAL_STATE, NULL, "object '%s' is in the final state %s",
                             oid, obj->state);
      smc_leave_iter_t it = {.m = m, .s = (size_t)s};
      size_t t;
      while (smc_leave_next(&it, &t))
        if (!m->trans_info[t].after_ms) /* timers only fire or by name */
          cand[(*ncand)++] = t;
      if (!*ncand)
        return smc_error_set(err, SMC_ENO_TRANSITION, NULL, "no transition leaves state %s",
                             obj->state);
    }
  }
  if (p->to) {
    size_t n = 0;
    for (size_t i = 0; i < *ncand; i++)
      if (!strcmp(m->trans_info[cand[i]].to, p->to))
        cand[n++] = cand[i];
    if (!n) {
      if (p->transition)
        return smc_error_set(err, SMC_EINVALID_TRANSITION, NULL,
                             "transition '%s' does not lead to state %s from here", p->transition,
                             p->to);
      return smc_error_set(err, SMC_ENO_TRANSITION, NULL,
                           "no transition leads to state %s from "
                           "here",
                           p->to);
    }
    *ncand = n;
  }
  return 0;
}

static void attempt_init(attempt_t *a, size_t t, uint64_t steps) {
  a->t = t;
  a->steps = steps;
  a->rc = a->stage = 0;
  a->progress = 0;
  a->data = NULL;
  a->err.code = 0;
  a->err.message[0] = a->err.path[0] = a->err.file[0] = '\0';
  a->err.line = a->err.column = 0;
}

static int better(const attempt_t *a, const attempt_t *b) {
  return a->stage > b->stage || (a->stage == b->stage && a->progress > b->progress);
}

int smc_machine_validate(const smc_machine_t *m, const smc_object_view_t *obj,
                         const smc_proposal_view_t *p, const smc_limits_t *limits,
                         smc_outcome_t *out, smc_error_t *err) {
  smc_error_t local;
  size_t stack_cand[32], *cand = stack_cand, ncand = 0;
  int rc;
  if (!err)
    err = &local;
  err->code = 0; /* the rest is filled on failure */
  err->message[0] = err->path[0] = err->file[0] = '\0';
  err->line = err->column = 0;
  if (out)
    memset(out, 0, sizeof(*out));
  if (!m || !p || !out)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no machine, proposal or outcome");
  const smc_limits_t *lim = limits ? limits : &m->limits;
  long s = -1;
  if (obj && obj->state && (s = smc_machine_find_state(m, obj->state)) < 0)
    return smc_error_set(err, SMC_EINVALID_TRANSITION, NULL,
                         "object is in state %s, which machine %s does not define", obj->state,
                         m->name);
  if (m->ntrans > 32 && !(cand = malloc(m->ntrans * sizeof(*cand))))
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  if ((rc = candidates(m, obj, s, p, cand, &ncand, err)))
    goto done;
  smc_eval_ctx_t ctx = {
      .input = p->input,
      .object = obj ? obj->id : NULL,
      .state = obj ? obj->state : NULL,
      .proposer = p->proposer,
      .version = obj ? obj->version : 0,
      .time = p->time,
      .steps_left = lim->expr_steps,
      .regex_match_limit = lim->regex_match_limit,
      .regex_depth_limit = lim->regex_depth_limit,
  };
  /* One candidate: evaluate with messages. Several: probe each quietly (no
   * message formatting), then evaluate the decisive one again with
   * messages, from the same step budget, so the answer is the same. */
  attempt_t best, cur;
  int quiet = ncand > 1;
  size_t winner = 0, passes = 0;
  json_t *win_data = NULL;
  best.t = 0;
  best.rc = SMC_EVALIDATION_FAILED;
  best.stage = 0;
  best.progress = 0;
  best.steps = ctx.steps_left;
  for (size_t i = 0; i < ncand; i++) {
    attempt_init(&cur, cand[i], ctx.steps_left);
    run(m, cand[i], obj, p, lim->data_max_bytes, quiet, &ctx, &cur);
    if (!cur.rc) {
      if (++passes == 1) {
        winner = cand[i];
        win_data = cur.data;
        continue;
      }
      json_decref(cur.data);
      rc = smc_error_set(err, SMC_EAMBIGUOUS_TRANSITION, NULL,
                         "transitions '%s' (to %s) and '%s' (to %s) both apply",
                         m->trans_info[winner].name, m->trans_info[winner].to,
                         m->trans_info[cand[i]].name, m->trans_info[cand[i]].to);
      json_decref(win_data);
      goto done;
    }
    if (cur.rc != SMC_EVALIDATION_FAILED || i == 0 || better(&cur, &best))
      best = cur;
    if (cur.rc != SMC_EVALIDATION_FAILED) /* budgets and resources: decisive */
      break;
  }
  if (passes == 1 && best.rc == SMC_EVALIDATION_FAILED) {
    out->transition = winner;
    out->name = m->trans_info[winner].name;
    out->state = m->trans_info[winner].to;
    out->data = win_data;
    rc = 0;
    goto done;
  }
  json_decref(win_data);
  if (quiet) { /* the decisive failure again, with its message */
    ctx.steps_left = best.steps;
    attempt_init(&cur, best.t, best.steps);
    run(m, best.t, obj, p, lim->data_max_bytes, 0, &ctx, &cur);
    json_decref(cur.data); /* cannot pass where the probe failed; be safe */
    if (cur.rc) {
      cur.stage = best.stage;
      best = cur;
    }
  }
  if (best.rc == SMC_EVALIDATION_FAILED && !p->transition) {
    rc = smc_error_set(err, SMC_ENO_TRANSITION, best.err.path,
                       "no transition applies; closest: '%s' failed: %s",
                       m->trans_info[best.t].name, best.err.message);
  } else {
    *err = best.err;
    rc = best.rc;
  }
done:
  if (cand != stack_cand)
    free(cand);
  return rc;
}
