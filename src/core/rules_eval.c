/* Rule trees: evaluating them against JSON (see rules.h, rules_int.h). */
#include "core/rules_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const smc_rules_type_names[] = {"string", "number", "integer", "boolean",
                                            "object", "array",  "null"};
static const char *const cmp_words[CMP_COUNT] = {"equal", "differ from", "be <",
                                                 "be <=", "be >",        "be >="};

/* ------------------------------------------------------------------ */
/* evaluation */

/* Append .seg (seg[0..len)) to the path, truncating at the buffer's end. */
static size_t path_pushn(smc_rule_eval_t *st, const char *seg, size_t len) {
  size_t old = st->plen, room = sizeof(st->path) - 1 - st->plen;
  char *p = st->path + st->plen;
  if (old && room) {
    *p++ = '.';
    room--;
  }
  if (len > room)
    len = room;
  memcpy(p, seg, len);
  p[len] = '\0';
  st->plen = (size_t)(p + len - st->path);
  return old;
}

size_t smc_rule_path_push(smc_rule_eval_t *st, const char *seg) {
  return path_pushn(st, seg, strlen(seg));
}

size_t smc_rule_path_push_index(smc_rule_eval_t *st, size_t i) {
  size_t old = st->plen;
  int w = snprintf(st->path + st->plen, sizeof(st->path) - st->plen, "[%zu]", i);
  if (w > 0)
    st->plen =
        st->plen + (size_t)w < sizeof(st->path) ? st->plen + (size_t)w : sizeof(st->path) - 1;
  return old;
}

void smc_rule_path_pop(smc_rule_eval_t *st, size_t len) {
  st->plen = len;
  st->path[len] = '\0';
}

void smc_rule_path_set(smc_rule_eval_t *st, const char *root) {
  st->plen = 0;
  st->path[0] = '\0';
  if (root)
    smc_rule_path_push(st, root);
}

int smc_rule_fail(smc_rule_eval_t *st, int code, const char *fmt, ...) {
  if (st->err->code)
    return st->err->code;
  if (st->quiet) {
    st->err->code = code;
    return code;
  }
  char msg[sizeof(st->err->message)];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  smc_error_set(st->err, code, st->path, "%s", msg);
  return code;
}

static const char *pname(const smc_rule_eval_t *st) { return st->plen ? st->path : "value"; }

static const json_t *path_get(const json_t *v, const rpath_t *p) {
  for (size_t i = 0; i < p->n && v; i++) {
    if (json_is_object(v)) {
      v = json_object_getn(v, p->seg[i], p->len[i]);
    } else if (json_is_array(v)) {
      char *end;
      unsigned long idx = strtoul(p->seg[i], &end, 10);
      v = (*end || end == p->seg[i]) ? NULL : json_array_get(v, idx);
    } else {
      v = NULL;
    }
  }
  return v;
}

/* Short JSON text of v for messages. */
static void brief(const json_t *v, char *buf, size_t cap) {
  char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
  snprintf(buf, cap, "%s", s ? s : "null");
  if (s && strlen(s) >= cap && cap > 4)
    memcpy(buf + cap - 4, "...", 4);
  free(s);
}

static int step(smc_rule_eval_t *st) {
  if (!st->ctx->steps_left)
    return smc_rule_fail(st, SMC_ELIMIT_EXCEEDED, "evaluation step budget exceeded");
  st->ctx->steps_left--;
  return 0;
}

static int pass(smc_rule_eval_t *st) {
  st->progress++;
  return 0;
}

static int type_ok(unsigned types, const json_t *v) {
  if ((types & T_STRING) && json_is_string(v))
    return 1;
  if ((types & T_NUMBER) && json_is_number(v))
    return 1;
  if ((types & T_INTEGER) &&
      (json_is_integer(v) || (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)))))
    return 1;
  if ((types & T_BOOLEAN) && json_is_boolean(v))
    return 1;
  if ((types & T_OBJECT) && json_is_object(v))
    return 1;
  if ((types & T_ARRAY) && json_is_array(v))
    return 1;
  return (types & T_NULL) && json_is_null(v);
}

static int fail_type(smc_rule_eval_t *st, unsigned types) {
  char buf[96] = "";
  size_t len = 0;
  for (int i = 0; i < 7; i++)
    if (types & (1u << i))
      len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? " or " : "",
                              smc_rules_type_names[i]);
  return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must be of type %s", pname(st), buf);
}

static long long length_of(const json_t *v) {
  if (json_is_string(v)) {
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t n = json_string_length(v);
    long long count = 0;
    for (size_t i = 0; i < n; i++)
      count += (s[i] & 0xC0) != 0x80;
    return count;
  }
  if (json_is_array(v))
    return (long long)json_array_size(v);
  if (json_is_object(v))
    return (long long)json_object_size(v);
  return -1;
}

static int eval_operand(const operand_t *op, smc_rule_eval_t *st, json_t **out) {
  if (op->lit) {
    *out = json_incref(op->lit);
    return 0;
  }
  return smc_template_eval(op->tpl, st->ctx, out, st->err);
}

/* Ordering comparison: numbers by value, strings bytewise. 2 = incomparable. */
static int order(const json_t *a, const json_t *b) {
  if (json_is_number(a) && json_is_number(b)) {
    if (json_is_integer(a) && json_is_integer(b)) {
      json_int_t x = json_integer_value(a), y = json_integer_value(b);
      return (x > y) - (x < y);
    }
    double x = json_number_value(a), y = json_number_value(b);
    return (x > y) - (x < y);
  }
  if (json_is_string(a) && json_is_string(b)) {
    int c = strcmp(json_string_value(a), json_string_value(b));
    return (c > 0) - (c < 0);
  }
  return 2;
}

static int check_cmp(const smc_rule_t *r, const json_t *v, smc_rule_eval_t *st) {
  if (!r->has_cmp)
    return 0;
  for (int i = 0; i < CMP_COUNT; i++) {
    if (!r->cmp[i].lit && !r->cmp[i].tpl)
      continue;
    int rc;
    json_t *want = NULL;
    if ((rc = step(st)) || (rc = eval_operand(&r->cmp[i], st, &want)))
      return rc;
    int ok;
    if (i == CMP_EQ || i == CMP_NE) {
      ok = smc_json_equal(v, want) == (i == CMP_EQ);
    } else {
      int o = order(v, want);
      ok = o != 2 && ((i == CMP_LT && o < 0) || (i == CMP_LE && o <= 0) || (i == CMP_GT && o > 0) ||
                      (i == CMP_GE && o >= 0));
    }
    if (!ok) {
      char buf[200];
      brief(want, buf, sizeof(buf));
      json_decref(want);
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must %s %s", pname(st), cmp_words[i],
                           buf);
    }
    json_decref(want);
    pass(st);
  }
  return 0;
}

/* A regex check. The last string that matched is remembered: a value checked
 * by the same regex again (a $ref'd definition in $dst and in the state's
 * fields) costs its step but not a second match. The data under test does
 * not change while rules run, so the same node holds the same string. */
static int check_regex(const smc_regex_t *re, const json_t *v, smc_rule_eval_t *st) {
  int rc;
  if ((rc = step(st)))
    return rc;
  if (!json_is_string(v))
    return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must be a string matching /%s/", pname(st),
                         smc_regex_pattern(re));
  if (st->matched_re == re && st->matched == v)
    return pass(st);
  rc = smc_regex_match(re, json_string_value(v), json_string_length(v), st->ctx->regex_match_limit,
                       st->ctx->regex_depth_limit);
  if (rc == 1) {
    st->matched_re = re;
    st->matched = v;
  }
  if (rc < 0)
    return smc_rule_fail(st, rc, "%s: regex /%s/ exceeded its match limit", pname(st),
                         smc_regex_pattern(re));
  if (!rc)
    return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must match /%s/", pname(st),
                         smc_regex_pattern(re));
  return pass(st);
}

static int eval_rule(const smc_rule_t *r, const json_t *v, smc_rule_eval_t *st);

/* Forget a failure (an OR alternative or a NOT operand that failed). */
static void reset_err(smc_rule_eval_t *st) {
  if (st->quiet)
    st->err->code = 0;
  else
    smc_error_clear(st->err);
}

static int check_value(const smc_rule_t *r, const json_t *v, smc_rule_eval_t *st) {
  int rc;
  if (r->types) {
    if ((rc = step(st)))
      return rc;
    if (!type_ok(r->types, v))
      return fail_type(st, r->types);
    pass(st);
  }
  if (r->enum_vals) {
    size_t i;
    json_t *e;
    int found = 0;
    if ((rc = step(st)))
      return rc;
    json_array_foreach(r->enum_vals, i, e) if (smc_json_equal(v, e)) {
      found = 1;
      break;
    }
    if (!found) {
      char buf[200];
      brief(r->enum_vals, buf, sizeof(buf));
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must be one of %s", pname(st), buf);
    }
    pass(st);
  }
  if ((rc = check_cmp(r, v, st)))
    return rc;
  for (int i = 0; i < 2; i++)
    if (r->regex[i] && (rc = check_regex(r->regex[i], v, st)))
      return rc;
  if (r->has_min || r->has_max) {
    if ((rc = step(st)))
      return rc;
    if (!json_is_number(v))
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must be a number", pname(st));
    double d = json_number_value(v);
    if (r->has_min && d < r->min)
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must be >= %.17g", pname(st), r->min);
    if (r->has_max && d > r->max)
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must be <= %.17g", pname(st), r->max);
    pass(st);
  }
  if (r->min_len >= 0 || r->max_len >= 0) {
    if ((rc = step(st)))
      return rc;
    long long len = length_of(v);
    if (len < 0)
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED,
                           "%s must be a string, array or object to have a length", pname(st));
    if (r->min_len >= 0 && len < r->min_len)
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must have a length of at least %lld",
                           pname(st), r->min_len);
    if (r->max_len >= 0 && len > r->max_len)
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must have a length of at most %lld",
                           pname(st), r->max_len);
    pass(st);
  }
  if (r->has_src) {
    if ((rc = step(st)))
      return rc;
    const json_t *want = path_get(st->ctx->src, &r->src);
    if (!want || !smc_json_equal(v, want)) {
      char p[200] = "";
      for (size_t i = 0, len = 0; i < r->src.n && len < sizeof(p); i++)
        len += (size_t)snprintf(p + len, sizeof(p) - len, ".%s", r->src.seg[i]);
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must equal src%s", pname(st), p);
    }
    pass(st);
  }
  if (r->matches) {
    json_t *want = NULL;
    if ((rc = step(st)) || (rc = smc_template_eval(r->matches, st->ctx, &want, st->err)))
      return rc;
    int ok = smc_json_equal(v, want);
    if (!ok) {
      char buf[200];
      brief(want, buf, sizeof(buf));
      json_decref(want);
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must equal %s", pname(st), buf);
    }
    json_decref(want);
    pass(st);
  }
  if (r->fields) {
    if (!json_is_object(v))
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must be an object", pname(st));
    if ((rc = eval_rule(r->fields, v, st)))
      return rc;
  }
  if (r->items) {
    size_t i;
    json_t *item;
    if (!json_is_array(v))
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must be an array", pname(st));
    json_array_foreach(v, i, item) {
      size_t old = smc_rule_path_push_index(st, i);
      rc = eval_rule(r->items, item, st);
      smc_rule_path_pop(st, old);
      if (rc)
        return rc;
    }
  }
  for (size_t i = 0; i < r->nkids; i++)
    if ((rc = eval_rule(r->kids[i], v, st)))
      return rc;
  return 0;
}

/* OR: the first alternative that passes wins; if none does, the error of the
 * one that passed the most checks before failing (ties: the first). */
static int eval_or(const smc_rule_t *r, const json_t *v, smc_rule_eval_t *st) {
  smc_error_t best;
  uint64_t best_progress = 0;
  int best_custom = 0, have = 0;
  for (size_t i = 0; i < r->nkids; i++) {
    uint64_t before = st->progress;
    int custom = st->custom;
    int rc = eval_rule(r->kids[i], v, st);
    if (!rc)
      return 0;
    if (rc != SMC_EVALIDATION_FAILED)
      return rc;
    uint64_t got = st->progress - before;
    if (!have || got > best_progress) {
      if (!st->quiet)
        best = *st->err;
      else
        best.code = st->err->code;
      best_progress = got;
      best_custom = st->custom;
      have = 1;
    }
    reset_err(st);
    st->custom = custom;
    st->progress = before;
  }
  if (!have) /* no alternatives: compile_list never builds one */
    return 0;
  if (!st->quiet)
    *st->err = best;
  else
    st->err->code = best.code;
  st->custom = best_custom;
  st->progress += best_progress;
  return SMC_EVALIDATION_FAILED;
}

static int eval_kind(const smc_rule_t *r, const json_t *v, smc_rule_eval_t *st) {
  int rc;
  switch (r->kind) {
  case RK_AND:
    for (size_t i = 0; i < r->nkids; i++)
      if ((rc = eval_rule(r->kids[i], v, st)))
        return rc;
    return 0;
  case RK_OR:
    return eval_or(r, v, st);
  case RK_NOT: {
    uint64_t before = st->progress;
    int custom = st->custom;
    rc = eval_rule(r->kids[0], v, st);
    if (rc && rc != SMC_EVALIDATION_FAILED)
      return rc;
    reset_err(st);
    st->custom = custom;
    st->progress = before;
    if (!rc)
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s must not satisfy the 'not' rule",
                           pname(st));
    return pass(st);
  }
  case RK_FIELD: {
    const json_t *sub = v ? path_get(v, &r->path) : NULL;
    size_t old = path_pushn(st, r->path_text, r->path_len);
    rc = r->field ? eval_rule(r->field, sub, st) : 0;
    smc_rule_path_pop(st, old);
    return rc;
  }
  case RK_EXPR: {
    int ok = 0;
    if ((rc = smc_expr_eval_bool(r->expr, st->ctx, &ok, st->err)))
      return rc;
    if (!ok)
      return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s fails the condition '%s'", pname(st),
                           smc_expr_source(r->expr));
    return pass(st);
  }
  case RK_CHECKS:
    if (!v) {
      /* absent: only `required` applies, also inside $ref/all/any */
      if (r->required)
        return smc_rule_fail(st, SMC_EVALIDATION_FAILED, "%s is required", pname(st));
      for (size_t i = 0; i < r->nkids; i++)
        if ((r->kids[i]->kind == RK_REF && !r->kids[i]->ref_block) || r->kids[i]->kind == RK_AND ||
            r->kids[i]->kind == RK_OR || r->kids[i]->kind == RK_CHECKS)
          if ((rc = eval_rule(r->kids[i], v, st)))
            return rc;
      return 0;
    }
    if (r->required)
      pass(st);
    return check_value(r, v, st);
  case RK_REF:
    return *r->target ? eval_rule(*r->target, v, st) : 0;
  }
  return SMC_EINTERNAL;
}

/* Every node: charge a step, bind `value`, scope $vars, and put the node's
 * custom message on a failure from inside it (the innermost message wins). */
static int eval_rule(const smc_rule_t *r, const json_t *v, smc_rule_eval_t *st) {
  int rc;
  if ((rc = step(st)))
    return rc;
  const json_t *saved_value = st->ctx->value, *saved_vars = st->ctx->vars;
  json_t *vars = NULL;
  st->ctx->value = v;
  if (r->has_vars && (v || r->kind != RK_CHECKS)) {
    if ((rc = smc_vars_eval(&r->vars, st->ctx, saved_vars, &vars, st->err)))
      goto out;
    st->ctx->vars = vars;
  }
  rc = eval_kind(r, v, st);
  if (rc && !st->quiet && !st->err->path[0] && st->plen) /* expression errors: say where */
    snprintf(st->err->path, sizeof(st->err->path), "%s", st->path);
  if (rc == SMC_EVALIDATION_FAILED && r->message && !st->custom && !st->quiet) {
    json_t *msg = NULL;
    smc_error_t tmp = {0};
    if (!smc_template_eval(r->message, st->ctx, &msg, &tmp)) {
      if (json_is_string(msg))
        snprintf(st->err->message, sizeof(st->err->message), "%s", json_string_value(msg));
      else
        brief(msg, st->err->message, sizeof(st->err->message));
      st->custom = 1;
    }
    json_decref(msg);
  }
out:
  st->ctx->value = saved_value;
  st->ctx->vars = saved_vars;
  json_decref(vars);
  return rc;
}

int smc_rule_eval(const smc_rule_t *r, const json_t *value, smc_rule_eval_t *st) {
  if (!r)
    return 0;
  return eval_rule(r, value, st);
}

int smc_vars_eval(const smc_vars_t *v, smc_eval_ctx_t *ctx, const json_t *base, json_t **out,
                  smc_error_t *err) {
  json_t *vars = base ? json_copy((json_t *)base) : json_object();
  *out = NULL;
  if (!vars)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  const json_t *saved = ctx->vars;
  int rc = 0;
  ctx->vars = vars;
  for (size_t i = 0; i < v->n; i++) {
    json_t *val = NULL;
    if (v->exprs[i]) {
      if ((rc = smc_expr_eval(v->exprs[i], ctx, &val, err)))
        break;
    } else {
      val = json_incref(v->literals[i]);
    }
    if (json_object_set_new(vars, v->names[i], val ? val : json_null())) {
      rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
      break;
    }
  }
  ctx->vars = saved;
  if (rc) {
    json_decref(vars);
    return rc;
  }
  *out = vars;
  return 0;
}
