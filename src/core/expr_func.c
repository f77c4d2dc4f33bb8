/* The expression language: the built-in functions (see expr_int.h). */
#include "core/expr_int.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/util.h"

const expr_function_t expr_functions[] = {
    {"len", F_LEN, 1, 1},           {"substr", F_SUBSTR, 2, 3},     {"lower", F_LOWER, 1, 1},
    {"upper", F_UPPER, 1, 1},       {"trim", F_TRIM, 1, 1},         {"concat", F_CONCAT, 1, -1},
    {"contains", F_CONTAINS, 2, 2}, {"startsWith", F_STARTS, 2, 2}, {"endsWith", F_ENDS, 2, 2},
    {"matches", F_MATCHES, 2, 2},   {"sha256", F_SHA256, 1, 1},     {"has", F_HAS, 1, 1},
    {"int", F_INT, 1, 1},           {"string", F_STRING, 1, 1},     {"keys", F_KEYS, 1, 1},
};
const size_t expr_nfunctions = sizeof(expr_functions) / sizeof(expr_functions[0]);

int expr_need_bool(ev_t *ev, const node_t *n, const val_t *v, const char *what) {
  if (v->t == T_BOOL)
    return 0;
  return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "%s needs a boolean, got %s", what,
                      expr_type_name(v));
}

/* Number of code points in s[0..n) (input is valid UTF-8). */
static size_t utf8_count(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    c += ((unsigned char)s[i] & 0xc0) != 0x80;
  return c;
}

/* Byte offset of code point cp in s[0..n) (clamped to n). */
static size_t utf8_offset(const char *s, size_t n, int64_t cp) {
  size_t i = 0;
  while (i < n && cp > 0) {
    i++;
    while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80)
      i++;
    cp--;
  }
  return i;
}

/* Make out a slice s[off..off+len) of v, moving v's ownership into out. */
static void val_slice(val_t *v, size_t off, size_t len, val_t *out) {
  int whole = off == 0 && len == v->n;
  *out = *v;
  memset(v, 0, sizeof(*v));
  out->s += off;
  out->n = len;
  if (!whole)
    out->j = NULL; /* no longer that JSON string; ref/buf still keep s alive */
}

static const char *fn_name(const node_t *n) {
  for (size_t i = 0; i < expr_nfunctions; i++)
    if ((int)expr_functions[i].fn == n->op)
      return expr_functions[i].name;
  return "?";
}

static int arg_type(ev_t *ev, const node_t *n, const val_t *v, vtype_t t, int argno) {
  if (v->t == t)
    return 0;
  static const char *const names[] = {"null",     "a boolean", "an integer", "a number",
                                      "a string", "an array",  "an object"};
  return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "%s() argument %d must be %s, got %s",
                      fn_name(n), argno, names[t], expr_type_name(v));
}

static int fn_substr(ev_t *ev, const node_t *n, val_t *args, int nargs, val_t *out) {
  int rc = arg_type(ev, n, &args[0], T_STR, 1);
  if (!rc)
    rc = arg_type(ev, n, &args[1], T_INT, 2);
  if (!rc && nargs > 2)
    rc = arg_type(ev, n, &args[2], T_INT, 3);
  if (!rc)
    rc = expr_charge(ev, n, expr_bytes_cost(args[0].n));
  if (rc)
    return rc;
  int64_t start = args[1].i < 0 ? 0 : args[1].i;
  size_t off = utf8_offset(args[0].s, args[0].n, start);
  size_t end = args[0].n;
  if (nargs > 2) {
    int64_t len = args[2].i < 0 ? 0 : args[2].i;
    end = off + utf8_offset(args[0].s + off, args[0].n - off, len);
  }
  val_slice(&args[0], off, end - off, out);
  return 0;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int fn_case(ev_t *ev, const node_t *n, val_t *s, val_t *out) {
  int rc = arg_type(ev, n, s, T_STR, 1);
  if (!rc)
    rc = expr_charge(ev, n, expr_bytes_cost(s->n));
  if (rc)
    return rc;
  char *buf = malloc(s->n + 1);
  if (!buf)
    return expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
  for (size_t i = 0; i < s->n; i++) {
    char c = s->s[i];
    if (n->op == F_LOWER && c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    else if (n->op == F_UPPER && c >= 'a' && c <= 'z')
      c = (char)(c - 'a' + 'A');
    buf[i] = c;
  }
  buf[s->n] = '\0';
  expr_val_buf(out, buf, s->n);
  return 0;
}

static int fn_matches(ev_t *ev, const node_t *n, val_t *args, val_t *out) {
  int rc = arg_type(ev, n, &args[0], T_STR, 1);
  if (rc)
    return rc;
  smc_regex_t *tmp = NULL;
  const smc_regex_t *re = n->re;
  if (!re) {
    rc = arg_type(ev, n, &args[1], T_STR, 2);
    if (!rc)
      rc = expr_charge(ev, n, 16 + args[1].n);
    if (rc)
      return rc;
    smc_error_t rerr;
    smc_error_clear(&rerr);
    rc = smc_regex_compile_ex(args[1].s, args[1].n, NULL, &tmp, &rerr);
    if (rc)
      return expr_ev_fail(ev, n, rc == SMC_ENOMEM ? SMC_ENOMEM : SMC_EVALIDATION_FAILED,
                          "matches(): %s", rerr.message);
    re = tmp;
  }
  rc = expr_charge(ev, n, expr_bytes_cost(args[0].n));
  if (!rc) {
    int m = smc_regex_match(re, args[0].s, args[0].n, ev->ctx->regex_match_limit,
                            ev->ctx->regex_depth_limit);
    if (m == SMC_ELIMIT_EXCEEDED)
      rc = expr_ev_fail(ev, n, SMC_ELIMIT_EXCEEDED, "regex /%s/ hit its match limit",
                        smc_regex_pattern(re));
    else if (m < 0)
      rc = expr_ev_fail(ev, n, m, "regex /%s/ failed: %s", smc_regex_pattern(re), smc_strerror(m));
    else
      expr_val_bool(out, m);
  }
  smc_regex_destroy(tmp);
  return rc;
}

static int fn_int(ev_t *ev, const node_t *n, const val_t *v, val_t *out) {
  if (v->t == T_INT) {
    expr_val_int(out, v->i);
    return 0;
  }
  if (v->t == T_REAL) {
    double t = trunc(v->r);
    if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0))
      return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "int(): %g is out of the integer range",
                          v->r);
    expr_val_int(out, (int64_t)t);
    return 0;
  }
  if (v->t != T_STR)
    return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "int() needs a number or a string, got %s",
                        expr_type_name(v));
  size_t i = 0;
  int neg = 0;
  if (i < v->n && (v->s[i] == '-' || v->s[i] == '+'))
    neg = v->s[i++] == '-';
  if (i == v->n || v->n > 24)
    goto bad;
  uint64_t u = 0;
  for (; i < v->n; i++) {
    if (!expr_is_digit(v->s[i]))
      goto bad;
    unsigned d = (unsigned)(v->s[i] - '0');
    if (u > ((uint64_t)INT64_MAX + 1 - d) / 10)
      goto range;
    u = u * 10 + d;
  }
  if (!neg && u > (uint64_t)INT64_MAX)
    goto range;
  expr_val_int(out, neg ? (int64_t)(0 - u) : (int64_t)u);
  return 0;
range:
  return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "int(): '%.*s' is out of the integer range",
                      (int)(v->n > 40 ? 40 : v->n), v->s);
bad:
  return expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED, "int(): '%.*s' is not an integer",
                      (int)(v->n > 40 ? 40 : v->n), v->s);
}

static int key_cmp(const void *x, const void *y) {
  const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
  size_t an = json_string_length(a), bn = json_string_length(b);
  int c = memcmp(json_string_value(a), json_string_value(b), an < bn ? an : bn);
  return c ? c : (an > bn) - (an < bn);
}

static int fn_keys(ev_t *ev, const node_t *n, const val_t *v, val_t *out) {
  int rc = arg_type(ev, n, v, T_OBJ, 1);
  if (rc)
    return rc;
  size_t size = v->j ? json_object_size(v->j) : 0;
  rc = expr_charge(ev, n, 1 + size);
  if (rc)
    return rc;
  json_t *arr = json_array();
  json_t **items = size ? calloc(size, sizeof(*items)) : NULL;
  if (!arr || (size && !items))
    goto nomem;
  size_t count = 0;
  const char *k;
  json_t *val;
  json_object_foreach(v->j, k, val) {
    if (count == size)
      break;
    size_t kl = json_object_iter_key_len(json_object_key_to_iter(k));
    if (!(items[count] = json_stringn(k, kl)))
      goto nomem;
    count++;
  }
  if (count > 1)
    qsort(items, count, sizeof(*items), key_cmp);
  for (size_t i = 0; i < count; i++) {
    int bad = json_array_append_new(arr, items[i]);
    items[i] = NULL;
    if (bad)
      goto nomem;
  }
  free(items);
  expr_val_json_take(out, arr);
  return 0;
nomem:
  if (items)
    for (size_t i = 0; i < size; i++)
      json_decref(items[i]);
  free(items);
  json_decref(arr);
  return expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
}

static int fn_sha256(ev_t *ev, const node_t *n, const val_t *v, val_t *out) {
  const char *s;
  size_t len;
  char *tmp;
  int rc = expr_string_form(ev, n, v, &s, &len, &tmp);
  if (!rc)
    rc = expr_charge(ev, n, expr_bytes_cost(len));
  if (!rc) {
    char *hex = malloc(65);
    if (!hex) {
      rc = expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
    } else {
      smc_sha256_hex(s, len, hex);
      expr_val_buf(out, hex, 64);
    }
  }
  free(tmp);
  return rc;
}

static int eval_call_args(ev_t *ev, const node_t *n, val_t *out, val_t *args) {
  int rc = 0, r;
  switch ((fn_t)n->op) {
  case F_LEN:
    if (args[0].t == T_STR) {
      rc = expr_charge(ev, n, expr_bytes_cost(args[0].n));
      if (!rc)
        expr_val_int(out, (int64_t)utf8_count(args[0].s, args[0].n));
    } else if (args[0].t == T_ARR) {
      expr_val_int(out, (int64_t)json_array_size(args[0].j));
    } else if (args[0].t == T_OBJ) {
      expr_val_int(out, args[0].j ? (int64_t)json_object_size(args[0].j) : 0);
    } else {
      rc = expr_ev_fail(ev, n, SMC_EVALIDATION_FAILED,
                        "len() needs a string, array or object, got %s", expr_type_name(&args[0]));
    }
    return rc;
  case F_SUBSTR:
    return fn_substr(ev, n, args, n->nkids, out);
  case F_LOWER:
  case F_UPPER:
    return fn_case(ev, n, &args[0], out);
  case F_TRIM: {
    rc = arg_type(ev, n, &args[0], T_STR, 1);
    if (rc)
      return rc;
    size_t a = 0, b = args[0].n;
    while (a < b && is_space(args[0].s[a]))
      a++;
    while (b > a && is_space(args[0].s[b - 1]))
      b--;
    val_slice(&args[0], a, b - a, out);
    return 0;
  }
  case F_CONCAT: {
    int all_arrays = 1;
    for (int i = 0; i < n->nkids; i++)
      all_arrays &= args[i].t == T_ARR;
    return all_arrays ? expr_concat_arrays(ev, n, args, n->nkids, out)
                      : expr_concat_strings(ev, n, args, n->nkids, out);
  }
  case F_CONTAINS:
    rc = expr_contains(ev, n, &args[0], &args[1], &r);
    if (!rc)
      expr_val_bool(out, r);
    return rc;
  case F_STARTS:
  case F_ENDS: {
    rc = arg_type(ev, n, &args[0], T_STR, 1);
    if (!rc)
      rc = arg_type(ev, n, &args[1], T_STR, 2);
    if (rc)
      return rc;
    const val_t *s = &args[0], *x = &args[1];
    if (x->n > s->n) {
      expr_val_bool(out, 0);
      return 0;
    }
    const char *at = n->op == F_STARTS ? s->s : s->s + (s->n - x->n);
    expr_val_bool(out, x->n == 0 || memcmp(at, x->s, x->n) == 0);
    return 0;
  }
  case F_MATCHES:
    return fn_matches(ev, n, args, out);
  case F_SHA256:
    return fn_sha256(ev, n, &args[0], out);
  case F_INT:
    return fn_int(ev, n, &args[0], out);
  case F_STRING:
    if (args[0].t == T_STR) {
      *out = args[0];
      memset(&args[0], 0, sizeof(args[0]));
      return 0;
    }
    {
      const char *s;
      size_t len;
      char *tmp;
      rc = expr_string_form(ev, n, &args[0], &s, &len, &tmp);
      if (rc)
        return rc;
      if (!tmp) {
        tmp = strdup(s);
        if (!tmp)
          return expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
      }
      expr_val_buf(out, tmp, len);
      return 0;
    }
  case F_KEYS:
    return fn_keys(ev, n, &args[0], out);
  case F_HAS:
    break;
  }
  return expr_ev_fail(ev, n, SMC_EINTERNAL, "unhandled function");
}

int expr_eval_call(ev_t *ev, const node_t *n, val_t *out) {
  if (n->op == F_HAS) {
    val_t v;
    int found = 0;
    int rc = expr_eval_path(ev, n->kids[0], &v, &found);
    val_release(&v);
    if (!rc)
      expr_val_bool(out, found);
    return rc;
  }
  val_t small[4];
  val_t *args = n->nkids <= 4 ? small : calloc((size_t)n->nkids, sizeof(*args));
  if (!args)
    return expr_ev_fail(ev, n, SMC_ENOMEM, "out of memory");
  int done = 0, rc = 0;
  if (n->op == F_MATCHES && n->re) {
    /* the pattern is a literal compiled at compile time: skip its node */
    rc = expr_eval(ev, n->kids[0], &args[0]);
    memset(&args[1], 0, sizeof(args[1]));
    done = rc ? 0 : 2;
  } else {
    for (; done < n->nkids; done++) {
      rc = expr_eval(ev, n->kids[done], &args[done]);
      if (rc)
        break;
    }
  }
  if (!rc)
    rc = eval_call_args(ev, n, out, args);
  for (int i = 0; i < done; i++)
    val_release(&args[i]);
  if (args != small)
    free(args);
  return rc;
}
