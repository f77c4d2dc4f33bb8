/*
 * The expression language's evaluator (language.md, "Expressions"); the
 * lexer, parser, functions and templates are in the other expr_*.c files
 * (expr_int.h).
 *
 * A compiled smc_expr_t is immutable and may be evaluated from many threads
 * at once. Evaluation works on val_t, a small tagged value that borrows
 * strings, arrays and objects from the context and from literals, so the
 * common cases (paths, comparisons, arithmetic, `in`) allocate nothing.
 * Only values that are built (concatenations, lists, keys(), lower(), ...)
 * own memory, and a JSON node is created only when smc_expr_eval hands the
 * result out.
 */
#include "core/expr_int.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static const char *const op_names[] = {"==", "!=", "<", "<=", ">", ">=", "in",
                                       "+",  "-",  "*", "/",  "%", "!",  "-"};

/* ------------------------------------------------------------------ */
/* Values                                                               */
/* ------------------------------------------------------------------ */

static void val_from_json(const json_t *cj, val_t *v) {
  json_t *j = (json_t *)cj;
  memset(v, 0, sizeof(*v));
  if (!j)
    return;
  v->j = j;
  switch (json_typeof(j)) {
  case JSON_OBJECT:
    v->t = T_OBJ;
    break;
  case JSON_ARRAY:
    v->t = T_ARR;
    break;
  case JSON_STRING:
    v->t = T_STR;
    v->s = json_string_value(j);
    v->n = json_string_length(j);
    break;
  case JSON_INTEGER:
    v->t = T_INT, v->i = json_integer_value(j);
    break;
  case JSON_REAL:
    v->t = T_REAL, v->r = json_real_value(j);
    break;
  case JSON_TRUE:
    v->t = T_BOOL, v->b = 1;
    break;
  case JSON_FALSE:
    v->t = T_BOOL, v->b = 0;
    break;
  case JSON_NULL:
    v->t = T_NULL, v->j = NULL;
    break;
  }
}

void expr_val_bool(val_t *v, int b) {
  memset(v, 0, sizeof(*v));
  v->t = T_BOOL;
  v->b = !!b;
}
void expr_val_int(val_t *v, int64_t i) {
  memset(v, 0, sizeof(*v));
  v->t = T_INT;
  v->i = i;
}
static void val_real(val_t *v, double r) {
  memset(v, 0, sizeof(*v));
  v->t = T_REAL;
  v->r = r;
}
/* Take ownership of a malloc'd buffer. */
void expr_val_buf(val_t *v, char *buf, size_t n) {
  memset(v, 0, sizeof(*v));
  v->t = T_STR;
  v->buf = buf;
  v->s = buf;
  v->n = n;
}
/* Take ownership of a new reference. */
void expr_val_json_take(val_t *v, json_t *j) {
  val_from_json(j, v);
  v->ref = j;
}

const char *expr_type_name(const val_t *v) {
  switch (v->t) {
  case T_NULL:
    return "null";
  case T_BOOL:
    return "boolean";
  case T_INT:
    return "integer";
  case T_REAL:
    return "number";
  case T_STR:
    return "string";
  case T_ARR:
    return "array";
  case T_OBJ:
    return "object";
  }
  return "?";
}

static int is_num(const val_t *v) { return v->t == T_INT || v->t == T_REAL; }
static double num(const val_t *v) { return v->t == T_INT ? (double)v->i : v->r; }

/* New JSON reference for v (v is left untouched). NULL on allocation or
 * encoding failure. */
static json_t *val_json(const val_t *v) {
  if (v->j)
    return json_incref(v->j);
  switch (v->t) {
  case T_NULL:
    return json_null();
  case T_BOOL:
    return json_boolean(v->b);
  case T_INT:
    return json_integer(v->i);
  case T_REAL:
    return json_real(v->r);
  case T_STR:
    return json_stringn(v->s, v->n);
  case T_OBJ:
    return json_object(); /* vars when the context has none */
  default:
    return NULL; /* arrays always carry j */
  }
}

static int json_num_equal(const json_t *a, const json_t *b) {
  if (json_is_integer(a) && json_is_integer(b))
    return json_integer_value(a) == json_integer_value(b);
  return json_number_value(a) == json_number_value(b);
}

int smc_json_equal(const json_t *a, const json_t *b) {
  if (a == b)
    return 1;
  if (!a)
    return json_is_null(b);
  if (!b)
    return json_is_null(a);
  if (json_is_number(a) && json_is_number(b))
    return json_num_equal(a, b);
  if (json_typeof(a) != json_typeof(b))
    return 0;
  switch (json_typeof(a)) {
  case JSON_STRING:
    return json_string_length(a) == json_string_length(b) &&
           memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
  case JSON_ARRAY: {
    size_t n = json_array_size(a);
    if (n != json_array_size(b))
      return 0;
    for (size_t i = 0; i < n; i++)
      if (!smc_json_equal(json_array_get(a, i), json_array_get(b, i)))
        return 0;
    return 1;
  }
  case JSON_OBJECT: {
    if (json_object_size(a) != json_object_size(b))
      return 0;
    const char *k;
    json_t *va;
    void *tmp;
    json_object_foreach_safe((json_t *)a, tmp, k, va) {
      size_t kl = json_object_iter_key_len(json_object_key_to_iter(k));
      json_t *vb = json_object_getn(b, k, kl);
      if (!vb || !smc_json_equal(va, vb))
        return 0;
    }
    return 1;
  }
  default:
    return 1; /* true, false, null: same type is equal */
  }
}

static int val_equal(const val_t *a, const val_t *b) {
  if (is_num(a) && is_num(b)) {
    if (a->t == T_INT && b->t == T_INT)
      return a->i == b->i;
    return num(a) == num(b);
  }
  if (a->t != b->t)
    return 0;
  switch (a->t) {
  case T_NULL:
    return 1;
  case T_BOOL:
    return a->b == b->b;
  case T_STR:
    return a->n == b->n && (a->n == 0 || memcmp(a->s, b->s, a->n) == 0);
  default:
    if (!a->j || !b->j) /* an absent vars object is {} */
      return json_object_size(a->j ? a->j : b->j) == 0;
    return smc_json_equal(a->j, b->j);
  }
}

/* ------------------------------------------------------------------ */
/* Evaluator                                                            */
/* ------------------------------------------------------------------ */

/* Record a runtime error at node n (first error wins) and return code. */
int expr_ev_fail(ev_t *ev, const node_t *n, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  expr_verror(ev->err, code, n ? n->col : 0, fmt, ap);
  va_end(ap);
  return code;
}

/* Take units steps from the budget. */
int expr_charge(ev_t *ev, const node_t *n, uint64_t units) {
  if (ev->ctx->steps_left < units) {
    ev->ctx->steps_left = 0;
    return expr_ev_fail(ev, n, SMC_ELIMIT_EXCEEDED, "expression step budget exhausted");
  }
  ev->ctx->steps_left -= units;
  return 0;
}

/* Value of a path root; *found = whether it exists. */
static void root_value(ev_t *ev, root_t r, val_t *v, int *found) {
  const smc_eval_ctx_t *c = ev->ctx;
  memset(v, 0, sizeof(*v));
  *found = 1;
  switch (r) {
  case R_SRC:
  case R_DST:
  case R_INPUT:
  case R_VALUE: {
    const json_t *j = r == R_SRC     ? c->src
                      : r == R_DST   ? c->dst
                      : r == R_INPUT ? c->input
                                     : c->value;
    val_from_json(j, v);
    *found = j != NULL;
    break;
  }
  case R_VARS:
    val_from_json(c->vars, v);
    if (!c->vars)
      v->t = T_OBJ; /* NULL vars is {} (j stays NULL: members are absent) */
    break;
  case R_META_VERSION:
    expr_val_int(v, c->version);
    break;
  case R_META_TIME:
    expr_val_int(v, c->time);
    break;
  case R_META_OBJECT:
  case R_META_STATE:
  case R_META_PROPOSER: {
    const char *s = r == R_META_OBJECT ? c->object : r == R_META_STATE ? c->state : c->proposer;
    if (s) {
      v->t = T_STR;
      v->s = s;
      v->n = strlen(s);
    } else {
      *found = 0;
    }
    break;
  }
  }
}

/* Replace *base by its child json (borrowed from base's data; NULL = null),
 * keeping what base owned alive as long as the child needs it. Only arrays
 * and objects have children, and those never own a string buffer. */
static void step_into(val_t *base, json_t *child) {
  json_t *hold = child && base->ref ? json_incref(child) : NULL;
  val_release(base);
  val_from_json(child, base);
  base->ref = hold;
}

/* Evaluate a path (root, members, indexes). A missing member, an index out
 * of range or a member of a non-object yields null with *found = 0. */
int expr_eval_path(ev_t *ev, const node_t *n, val_t *out, int *found) {
  *found = 0;
  int rc = expr_charge(ev, n, 1);
  if (rc) {
    memset(out, 0, sizeof(*out));
    return rc;
  }
  if (n->kind == N_ROOT) {
    root_value(ev, (root_t)n->op, out, found);
    return 0;
  }
  if (n->kind != N_MEMBER && n->kind != N_INDEX) {
    *found = 1;
    return expr_eval(ev, n, out);
  }
  /* out holds the base value first, then becomes the child */
  rc = expr_eval_path(ev, n->kids[0], out, found);
  if (rc)
    return rc;
  json_t *child = NULL;
  if (n->kind == N_MEMBER) {
    if (out->t == T_OBJ && out->j)
      child = json_object_getn(out->j, n->name, n->name_len);
  } else {
    val_t idx;
    rc = expr_eval(ev, n->kids[1], &idx); /* on failure idx is empty */
    if (!rc && out->t == T_ARR) {
      if (idx.t != T_INT)
        rc = expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED,
                          "an array index must be an integer, got %s", expr_type_name(&idx));
      else if (idx.i >= 0 && (uint64_t)idx.i < json_array_size(out->j))
        child = json_array_get(out->j, (size_t)idx.i);
    } else if (!rc && out->t == T_OBJ) {
      if (idx.t != T_STR)
        rc = expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "an object key must be a string, got %s",
                          expr_type_name(&idx));
      else if (out->j)
        child = json_object_getn(out->j, idx.s, idx.n);
    }
    val_release(&idx);
    if (rc) {
      val_release(out);
      memset(out, 0, sizeof(*out));
      return rc;
    }
  }
  if (!child)
    *found = 0;
  step_into(out, child);
  return 0;
}

static int num_result(ev_t *ev, const node_t *n, double r, val_t *out) {
  if (!isfinite(r))
    return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "arithmetic overflow in '%s'",
                        op_names[n->op]);
  val_real(out, r);
  return 0;
}

static int arith(ev_t *ev, const node_t *n, const val_t *a, const val_t *b, val_t *out) {
  int op = n->op;
  if (!is_num(a) || !is_num(b))
    return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "'%s' needs numbers, got %s and %s",
                        op_names[op], expr_type_name(a), expr_type_name(b));
  if (a->t == T_INT && b->t == T_INT) {
    int64_t r = 0;
    int ovf = 0;
    switch (op) {
    case OP_ADD:
      ovf = __builtin_add_overflow(a->i, b->i, &r);
      break;
    case OP_SUB:
      ovf = __builtin_sub_overflow(a->i, b->i, &r);
      break;
    case OP_MUL:
      ovf = __builtin_mul_overflow(a->i, b->i, &r);
      break;
    case OP_DIV:
    case OP_MOD:
      if (b->i == 0)
        return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "%s by zero",
                            op == OP_DIV ? "division" : "modulo");
      if (a->i == INT64_MIN && b->i == -1)
        ovf = op == OP_DIV, r = 0;
      else
        r = op == OP_DIV ? a->i / b->i : a->i % b->i;
      break;
    }
    if (ovf)
      return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "integer overflow in '%s'", op_names[op]);
    expr_val_int(out, r);
    return 0;
  }
  double x = num(a), y = num(b);
  switch (op) {
  case OP_ADD:
    return num_result(ev, n, x + y, out);
  case OP_SUB:
    return num_result(ev, n, x - y, out);
  case OP_MUL:
    return num_result(ev, n, x * y, out);
  default:
    if (y == 0)
      return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "%s by zero",
                          op == OP_DIV ? "division" : "modulo");
    return num_result(ev, n, op == OP_DIV ? x / y : fmod(x, y), out);
  }
}

/* String form of v for concatenation and string(): the string itself, or
 * canonical JSON. On success (*s, *len) point at v's bytes or at *tmp, which
 * the caller frees. */
int expr_string_form(ev_t *ev, const node_t *n, const val_t *v, const char **s, size_t *len,
                     char **tmp) {
  *tmp = NULL;
  if (v->t == T_STR) {
    *s = v->s;
    *len = v->n;
    return 0;
  }
  char small[32];
  switch (v->t) {
  case T_NULL:
    *s = "null", *len = 4;
    return 0;
  case T_BOOL:
    *s = v->b ? "true" : "false", *len = v->b ? 4 : 5;
    return 0;
  case T_INT:
    *len = (size_t)snprintf(small, sizeof(small), "%lld", (long long)v->i);
    *tmp = malloc(*len + 1);
    if (!*tmp)
      return expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
    memcpy(*tmp, small, *len + 1);
    *s = *tmp;
    return 0;
  default: {
    json_t *j = val_json(v);
    *tmp = j ? smc_json_canonical(j) : NULL;
    json_decref(j);
    if (!*tmp)
      return expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
    *len = strlen(*tmp);
    *s = *tmp;
    return expr_charge(ev, n, expr_bytes_cost(*len));
  }
  }
}

/* Concatenate the string forms of vals[0..count) into out. */
int expr_concat_strings(ev_t *ev, const node_t *n, const val_t *vals, int count, val_t *out) {
  const char *parts_s[8];
  size_t parts_n[8];
  char *tmps[8];
  const char **ps = parts_s;
  size_t *pn = parts_n;
  char **pt = tmps;
  int rc = 0;
  char *buf = NULL;
  if (count > 8) {
    ps = calloc((size_t)count, sizeof(*ps));
    pn = calloc((size_t)count, sizeof(*pn));
    pt = calloc((size_t)count, sizeof(*pt));
    if (!ps || !pn || !pt) {
      rc = expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
      goto done;
    }
  }
  memset(pt, 0, (size_t)count * sizeof(*pt));
  size_t total = 0;
  for (int i = 0; i < count; i++) {
    rc = expr_string_form(ev, n, &vals[i], &ps[i], &pn[i], &pt[i]);
    if (rc)
      goto done;
    total += pn[i];
    if (total > SMC_EXPR_MAX_STRING) {
      rc = expr_ev_fail(ev, n, SMC_ELIMIT_EXCEEDED, "string longer than %d bytes",
                        SMC_EXPR_MAX_STRING);
      goto done;
    }
  }
  rc = expr_charge(ev, n, expr_bytes_cost(total));
  if (rc)
    goto done;
  buf = malloc(total + 1);
  if (!buf) {
    rc = expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
    goto done;
  }
  size_t off = 0;
  for (int i = 0; i < count; i++) {
    if (pn[i])
      memcpy(buf + off, ps[i], pn[i]);
    off += pn[i];
  }
  buf[total] = '\0';
  expr_val_buf(out, buf, total);
done:
  if (pt)
    for (int i = 0; i < count; i++)
      free(pt[i]);
  if (ps != parts_s) {
    free(ps);
    free(pn);
    free(pt);
  }
  return rc;
}

/* Concatenate arrays vals[0..count) into a new array. */
int expr_concat_arrays(ev_t *ev, const node_t *n, const val_t *vals, int count, val_t *out) {
  size_t total = 0;
  for (int i = 0; i < count; i++)
    total += json_array_size(vals[i].j);
  int rc = expr_charge(ev, n, 1 + total);
  if (rc)
    return rc;
  json_t *arr = json_array();
  if (!arr)
    return expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
  for (int i = 0; i < count; i++)
    if (json_array_extend(arr, vals[i].j)) {
      json_decref(arr);
      return expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
    }
  expr_val_json_take(out, arr);
  return 0;
}

/* x in container: element of an array, key of an object, substring of a
 * string. *res receives the answer. */
int expr_contains(ev_t *ev, const node_t *n, const val_t *container, const val_t *x, int *res) {
  *res = 0;
  if (container->t == T_ARR) {
    size_t size = json_array_size(container->j);
    int rc = expr_charge(ev, n, 1 + size / 8);
    if (rc)
      return rc;
    for (size_t i = 0; i < size; i++) {
      val_t el;
      val_from_json(json_array_get(container->j, i), &el);
      if (val_equal(x, &el)) {
        *res = 1;
        break;
      }
    }
    return 0;
  }
  if (container->t == T_OBJ) {
    if (x->t != T_STR)
      return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED,
                          "a key of an object must be a string, got %s", expr_type_name(x));
    *res = container->j && json_object_getn(container->j, x->s, x->n) != NULL;
    return 0;
  }
  if (container->t == T_STR) {
    if (x->t != T_STR)
      return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "a substring must be a string, got %s",
                          expr_type_name(x));
    int rc = expr_charge(ev, n, expr_bytes_cost(container->n));
    if (rc)
      return rc;
    *res = x->n == 0 || memmem(container->s, container->n, x->s, x->n) != NULL;
    return 0;
  }
  return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED,
                      "'in' and contains() need an array, object or string, got %s",
                      expr_type_name(container));
}

static int compare(ev_t *ev, const node_t *n, const val_t *a, const val_t *b, int *cmp) {
  if (is_num(a) && is_num(b)) {
    if (a->t == T_INT && b->t == T_INT)
      *cmp = (a->i > b->i) - (a->i < b->i);
    else
      *cmp = (num(a) > num(b)) - (num(a) < num(b));
    return 0;
  }
  if (a->t == T_STR && b->t == T_STR) {
    size_t m = a->n < b->n ? a->n : b->n;
    int c = m ? memcmp(a->s, b->s, m) : 0;
    *cmp = c ? (c > 0 ? 1 : -1) : (a->n > b->n) - (a->n < b->n);
    return 0;
  }
  return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED,
                      "'%s' needs two numbers or two strings, got %s and %s", op_names[n->op],
                      expr_type_name(a), expr_type_name(b));
}

static int eval_binary(ev_t *ev, const node_t *n, val_t *out) {
  val_t a, b;
  int rc = expr_eval(ev, n->kids[0], &a);
  if (rc)
    return rc;
  rc = expr_eval(ev, n->kids[1], &b);
  if (rc) {
    val_release(&a);
    return rc;
  }
  int r = 0;
  switch (n->op) {
  case OP_EQ:
  case OP_NE:
    /* deep comparison of containers costs their (top-level) size */
    if ((a.t == T_ARR || a.t == T_OBJ) && a.t == b.t)
      rc = expr_charge(ev, n, 1 + (a.t == T_ARR ? json_array_size(a.j) : json_object_size(a.j)));
    if (!rc)
      expr_val_bool(out, val_equal(&a, &b) == (n->op == OP_EQ));
    break;
  case OP_LT:
  case OP_LE:
  case OP_GT:
  case OP_GE:
    rc = compare(ev, n, &a, &b, &r);
    if (!rc)
      expr_val_bool(out, n->op == OP_LT   ? r < 0
                         : n->op == OP_LE ? r <= 0
                         : n->op == OP_GT ? r > 0
                                          : r >= 0);
    break;
  case OP_IN:
    rc = expr_contains(ev, n, &b, &a, &r);
    if (!rc)
      expr_val_bool(out, r);
    break;
  case OP_ADD:
    if (a.t == T_STR || b.t == T_STR) {
      val_t both[2] = {a, b};
      rc = expr_concat_strings(ev, n, both, 2, out);
    } else if (a.t == T_ARR && b.t == T_ARR) {
      val_t both[2] = {a, b};
      rc = expr_concat_arrays(ev, n, both, 2, out);
    } else {
      rc = arith(ev, n, &a, &b, out);
    }
    break;
  default:
    rc = arith(ev, n, &a, &b, out);
    break;
  }
  val_release(&a);
  val_release(&b);
  return rc;
}

static int eval_list(ev_t *ev, const node_t *n, val_t *out) {
  int rc = expr_charge(ev, n, (uint64_t)n->nkids);
  if (rc)
    return rc;
  json_t *arr = json_array();
  if (!arr)
    return expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
  for (int i = 0; i < n->nkids; i++) {
    val_t v;
    rc = expr_eval(ev, n->kids[i], &v);
    if (rc)
      break;
    json_t *j = val_json(&v);
    val_release(&v);
    if (!j || json_array_append_new(arr, j)) {
      rc = expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
      break;
    }
  }
  if (rc) {
    json_decref(arr);
    return rc;
  }
  expr_val_json_take(out, arr);
  return 0;
}

/* Evaluate n into *out. On failure *out is empty (nothing to release). */
int expr_eval(ev_t *ev, const node_t *n, val_t *out) {
  memset(out, 0, sizeof(*out));
  int rc;
  switch ((kind_t)n->kind) {
  case N_ROOT:
  case N_MEMBER:
  case N_INDEX: {
    int found;
    return expr_eval_path(ev, n, out, &found);
  }
  default:
    break;
  }
  rc = expr_charge(ev, n, 1);
  if (rc)
    return rc;
  switch ((kind_t)n->kind) {
  case N_LIT:
    val_from_json(n->lit, out);
    return 0;
  case N_LIST:
    return eval_list(ev, n, out);
  case N_UNARY: {
    val_t a;
    rc = expr_eval(ev, n->kids[0], &a);
    if (rc)
      return rc;
    if (n->op == OP_NOT) {
      rc = expr_need_bool(ev, n, &a, "'!'");
      if (!rc)
        expr_val_bool(out, !a.b);
    } else if (a.t == T_INT) {
      if (a.i == INT64_MIN)
        rc = expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "integer overflow in unary '-'");
      else
        expr_val_int(out, -a.i);
    } else if (a.t == T_REAL) {
      val_real(out, -a.r);
    } else {
      rc = expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "unary '-' needs a number, got %s",
                        expr_type_name(&a));
    }
    val_release(&a);
    return rc;
  }
  case N_BINARY:
    return eval_binary(ev, n, out);
  case N_AND:
  case N_OR: {
    int is_and = n->kind == N_AND;
    const char *what = is_and ? "'&&'" : "'||'";
    val_t a;
    rc = expr_eval(ev, n->kids[0], &a);
    if (rc)
      return rc;
    rc = expr_need_bool(ev, n, &a, what);
    int b = a.b;
    val_release(&a);
    if (rc)
      return rc;
    if (b != is_and) { /* false && ..., true || ... */
      expr_val_bool(out, b);
      return 0;
    }
    rc = expr_eval(ev, n->kids[1], &a);
    if (rc)
      return rc;
    rc = expr_need_bool(ev, n, &a, what);
    if (!rc)
      expr_val_bool(out, a.b);
    val_release(&a);
    return rc;
  }
  case N_COND: {
    val_t c;
    rc = expr_eval(ev, n->kids[0], &c);
    if (rc)
      return rc;
    rc = expr_need_bool(ev, n, &c, "'?:'");
    int b = c.b;
    val_release(&c);
    if (rc)
      return rc;
    return expr_eval(ev, n->kids[b ? 1 : 2], out);
  }
  case N_CALL:
    return expr_eval_call(ev, n, out);
  default:
    break;
  }
  return expr_ev_fail(ev, n, SMC_EINTERNAL, "unknown expression node");
}

/* The JSON result of v (new reference into *out). Only a string can fail
 * besides allocation: one built from context strings (meta.*) that are not
 * valid UTF-8. */
int expr_result_json(const val_t *v, json_t **out, smc_error_t *err) {
  *out = val_json(v);
  if (*out)
    return 0;
  if (v->t == T_STR && expr_utf8_check(v->s, v->n) < v->n)
    return smc_error_set(err, SMC_EVALIDATION_FAILED, NULL,
                         "the result is not valid UTF-8 (from a context string)");
  return smc_error_set(err, SMC_ENOMEM, NULL, "cannot build the result");
}

int expr_check_args(const void *e, const char *what, smc_eval_ctx_t *ctx, json_t **out,
                    smc_error_t *err) {
  if (out)
    *out = NULL;
  if (!ctx || !out)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "ctx and out are required");
  if (!e)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "%s is NULL", what);
  return 0;
}

int smc_expr_eval(const smc_expr_t *e, smc_eval_ctx_t *ctx, json_t **out, smc_error_t *err) {
  int rc = expr_check_args(e, "expression", ctx, out, err);
  if (rc)
    return rc;
  ev_t ev = {ctx, err};
  val_t v;
  rc = expr_eval(&ev, e->root, &v);
  if (rc)
    return rc;
  rc = expr_result_json(&v, out, err);
  val_release(&v);
  return rc;
}

int smc_expr_eval_bool(const smc_expr_t *e, smc_eval_ctx_t *ctx, int *result, smc_error_t *err) {
  if (!e || !ctx || !result)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL,
                         "expression, ctx and result are required");
  *result = 0;
  ev_t ev = {ctx, err};
  val_t v;
  int rc = expr_eval(&ev, e->root, &v);
  if (rc)
    return rc;
  if (v.t != T_BOOL) {
    rc = expr_ev_fail(&ev, e->root, SMC_EVALIDATION_FAILED,
                      "the expression must be true or false, got %s", expr_type_name(&v));
  } else {
    *result = v.b;
  }
  val_release(&v);
  return rc;
}
