/* The expression language: the parser (see expr_int.h). */
#include "core/expr_int.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void expr_node_free(node_t *n) {
  if (!n)
    return;
  for (int i = 0; i < n->nkids; i++)
    expr_node_free(n->kids[i]);
  free(n->kids);
  json_decref(n->lit);
  free(n->name);
  smc_regex_destroy(n->re);
  free(n);
}

/* ------------------------------------------------------------------ */
/* Parser                                                               */
/* ------------------------------------------------------------------ */

static node_t *node_new(parser_t *p, kind_t kind, int op, size_t offset) {
  node_t *n = calloc(1, sizeof(*n));
  if (!n) {
    expr_perr(p, offset, SMC_ENOMEM, "out of memory");
    return NULL;
  }
  n->kind = (uint8_t)kind;
  n->op = (uint8_t)op;
  n->col = (int)offset + 1;
  n->height = 1;
  return n;
}

/* Append kid to n (takes ownership of kid even on failure). */
static int node_add(parser_t *p, node_t *n, node_t *kid) {
  node_t **k = realloc(n->kids, (size_t)(n->nkids + 1) * sizeof(*k));
  if (!k) {
    expr_node_free(kid);
    expr_perr(p, 0, SMC_ENOMEM, "out of memory");
    return -1;
  }
  n->kids = k;
  n->kids[n->nkids++] = kid;
  if (kid->height + 1 > n->height)
    n->height = (uint16_t)(kid->height + 1);
  if (n->height > SMC_EXPR_MAX_HEIGHT) {
    expr_perr(p, (size_t)n->col - 1, SMC_EBAD_EXPRESSION,
              "expression nested too deeply (more than %d levels)", SMC_EXPR_MAX_HEIGHT);
    return -1;
  }
  return 0;
}

/* A node with up to three kids; frees the kids when it fails. */
static node_t *node_make(parser_t *p, kind_t kind, int op, size_t offset, node_t *a, node_t *b,
                         node_t *c) {
  node_t *kids[3] = {a, b, c};
  node_t *n = NULL;
  if (p->rc)
    goto fail;
  n = node_new(p, kind, op, offset);
  if (!n)
    goto fail;
  for (int i = 0; i < 3; i++) {
    if (!kids[i])
      continue;
    node_t *k = kids[i];
    kids[i] = NULL;
    if (node_add(p, n, k))
      goto fail;
  }
  return n;
fail:
  for (int i = 0; i < 3; i++)
    expr_node_free(kids[i]);
  expr_node_free(n);
  return NULL;
}

static node_t *parse_cond(parser_t *p);

static int enter(parser_t *p) {
  if (++p->depth > SMC_EXPR_MAX_NESTING) {
    expr_perr(p, p->tok.start, SMC_EBAD_EXPRESSION,
              "expression nested too deeply (more than %d levels)", SMC_EXPR_MAX_NESTING);
    return -1;
  }
  return 0;
}

static int find_function(const char *name, size_t n) {
  for (size_t i = 0; i < expr_nfunctions; i++)
    if (strlen(expr_functions[i].name) == n && memcmp(expr_functions[i].name, name, n) == 0)
      return (int)i;
  return -1;
}

static int is_path(const node_t *n) {
  while (n->kind == N_MEMBER || n->kind == N_INDEX)
    n = n->kids[0];
  return n->kind == N_ROOT;
}

/* At the opening token of a list of expressions separated by ',' (call
 * arguments, list elements): each one added to n as a kid, up to and past
 * close. 0, or -1 with the error recorded (wanted: what was expected after
 * an item, for the message). */
static int parse_items(parser_t *p, node_t *n, const char *close, const char *wanted) {
  expr_lex(p); /* the opening token */
  if (!expr_tok_is(p, close)) {
    for (;;) {
      node_t *item = parse_cond(p);
      if (!item || node_add(p, n, item))
        return -1;
      if (expr_tok_is(p, ",")) {
        expr_lex(p);
        continue;
      }
      if (expr_tok_is(p, close))
        break;
      expr_unexpected(p, wanted);
      return -1;
    }
  }
  if (p->rc)
    return -1;
  expr_lex(p); /* close */
  return 0;
}

/* After '(' of a call: arguments, arity check, literal regex compile. */
static node_t *parse_call(parser_t *p, size_t name_off, size_t name_len) {
  int fi = find_function(p->s + name_off, name_len);
  if (fi < 0) {
    expr_perr(p, name_off, SMC_EBAD_EXPRESSION, "unknown function '%.*s'", (int)name_len,
              p->s + name_off);
    return NULL;
  }
  node_t *n = node_new(p, N_CALL, expr_functions[fi].fn, name_off);
  if (!n)
    return NULL;
  if (parse_items(p, n, ")", "',' or ')'"))
    goto fail;
  if (n->nkids < expr_functions[fi].min ||
      (expr_functions[fi].max >= 0 && n->nkids > expr_functions[fi].max)) {
    if (expr_functions[fi].max == expr_functions[fi].min)
      expr_perr(p, name_off, SMC_EBAD_EXPRESSION, "%s() takes %d argument%s, got %d",
                expr_functions[fi].name, expr_functions[fi].min,
                expr_functions[fi].min == 1 ? "" : "s", n->nkids);
    else if (expr_functions[fi].max < 0)
      expr_perr(p, name_off, SMC_EBAD_EXPRESSION, "%s() takes at least %d argument%s, got %d",
                expr_functions[fi].name, expr_functions[fi].min,
                expr_functions[fi].min == 1 ? "" : "s", n->nkids);
    else
      expr_perr(p, name_off, SMC_EBAD_EXPRESSION, "%s() takes %d to %d arguments, got %d",
                expr_functions[fi].name, expr_functions[fi].min, expr_functions[fi].max, n->nkids);
    goto fail;
  }
  if (n->op == F_HAS && !is_path(n->kids[0])) {
    expr_perr(p, (size_t)n->kids[0]->col - 1, SMC_EBAD_EXPRESSION,
              "has() needs a path such as src.field or input.items[0]");
    goto fail;
  }
  if (n->op == F_MATCHES && n->kids[1]->kind == N_LIT) {
    const json_t *pat = n->kids[1]->lit;
    smc_error_t rerr;
    smc_error_clear(&rerr);
    if (!json_is_string(pat)) {
      expr_perr(p, (size_t)n->kids[1]->col - 1, SMC_EBAD_EXPRESSION,
                "matches() needs a string pattern");
      goto fail;
    }
    if (smc_regex_compile_ex(json_string_value(pat), json_string_length(pat), NULL, &n->re,
                             &rerr)) {
      /* the column is the pattern literal's; the message has the offset */
      expr_perr(p, (size_t)n->kids[1]->col - 1,
                rerr.code == SMC_ENOMEM ? SMC_ENOMEM : SMC_EBAD_REGEX, "%s", rerr.message);
      goto fail;
    }
  }
  return n;
fail:
  expr_node_free(n);
  return NULL;
}

static node_t *parse_list(parser_t *p) {
  node_t *n = node_new(p, N_LIST, 0, p->tok.start);
  if (!n)
    return NULL;
  if (parse_items(p, n, "]", "',' or ']'"))
    goto fail;
  /* constant fold a list of literals into one literal array */
  for (int i = 0; i < n->nkids; i++)
    if (n->kids[i]->kind != N_LIT)
      return n;
  json_t *arr = json_array();
  if (!arr)
    goto nomem;
  for (int i = 0; i < n->nkids; i++)
    if (json_array_append(arr, n->kids[i]->lit)) {
      json_decref(arr);
      goto nomem;
    }
  for (int i = 0; i < n->nkids; i++)
    expr_node_free(n->kids[i]);
  free(n->kids);
  n->kids = NULL;
  n->nkids = 0;
  n->kind = N_LIT;
  n->lit = arr;
  return n;
nomem:
  expr_perr(p, (size_t)n->col - 1, SMC_ENOMEM, "out of memory");
fail:
  expr_node_free(n);
  return NULL;
}

static node_t *lit_node(parser_t *p, json_t *v, size_t offset) {
  if (!v) {
    expr_perr(p, offset, SMC_ENOMEM, "out of memory");
    return NULL;
  }
  node_t *n = node_new(p, N_LIT, 0, offset);
  if (!n) {
    json_decref(v);
    return NULL;
  }
  n->lit = v;
  return n;
}

static node_t *member_node(parser_t *p, node_t *base, const char *name, size_t len, size_t offset) {
  node_t *n = node_make(p, N_MEMBER, 0, offset, base, NULL, NULL);
  if (!n)
    return NULL;
  n->name = malloc(len + 1);
  if (!n->name) {
    expr_node_free(n);
    expr_perr(p, offset, SMC_ENOMEM, "out of memory");
    return NULL;
  }
  memcpy(n->name, name, len);
  n->name[len] = '\0';
  n->name_len = len;
  return n;
}

static const struct {
  const char *name;
  root_t root;
} meta_members[] = {{"object", R_META_OBJECT},
                    {"version", R_META_VERSION},
                    {"state", R_META_STATE},
                    {"proposer", R_META_PROPOSER},
                    {"time", R_META_TIME}};

static node_t *parse_meta(parser_t *p, size_t off) {
  expr_lex(p);
  if (!expr_tok_is(p, ".")) {
    expr_perr(p, off, SMC_EBAD_EXPRESSION,
              "meta needs a member: meta.object, meta.version, meta.state, meta.proposer or "
              "meta.time");
    return NULL;
  }
  expr_lex(p);
  for (size_t i = 0; i < sizeof(meta_members) / sizeof(meta_members[0]); i++) {
    if (expr_tok_ident(p, meta_members[i].name)) {
      expr_lex(p);
      return node_new(p, N_ROOT, meta_members[i].root, off);
    }
  }
  if (p->tok.type == TK_IDENT)
    expr_perr(p, p->tok.start, SMC_EBAD_EXPRESSION,
              "unknown meta member '%.*s' (known: object, version, state, proposer, time)",
              (int)(p->tok.end - p->tok.start), p->s + p->tok.start);
  else
    expr_unexpected(p, "a meta member name");
  return NULL;
}

static node_t *parse_ident(parser_t *p) {
  size_t off = p->tok.start, len = p->tok.end - p->tok.start;
  const char *name = p->s + off;
  static const struct {
    const char *name;
    root_t root;
  } roots[] = {
      {"src", R_SRC}, {"dst", R_DST}, {"input", R_INPUT}, {"vars", R_VARS}, {"value", R_VALUE}};
  if (expr_tok_ident(p, "true") || expr_tok_ident(p, "false") || expr_tok_ident(p, "null")) {
    json_t *v = name[0] == 't' ? json_true() : name[0] == 'f' ? json_false() : json_null();
    expr_lex(p);
    return lit_node(p, v, off);
  }
  if (expr_tok_ident(p, "in")) {
    expr_unexpected(p, "an expression");
    return NULL;
  }
  expr_lex(p);
  if (expr_tok_is(p, "("))
    return parse_call(p, off, len);
  if (len == 4 && memcmp(name, "meta", 4) == 0) {
    /* re-lex from after "meta": parse_meta expects to start on it */
    p->pos = off + 4;
    return parse_meta(p, off);
  }
  for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
    if (strlen(roots[i].name) == len && memcmp(roots[i].name, name, len) == 0)
      return node_new(p, N_ROOT, roots[i].root, off);
  /* a bare name is vars.NAME */
  node_t *vars = node_new(p, N_ROOT, R_VARS, off);
  if (!vars)
    return NULL;
  return member_node(p, vars, name, len, off);
}

static node_t *parse_primary(parser_t *p) {
  size_t off = p->tok.start;
  switch (p->tok.type) {
  case TK_INT:
    if (p->tok.u > (uint64_t)INT64_MAX) {
      expr_perr(p, off, SMC_EBAD_EXPRESSION, "integer literal out of range");
      return NULL;
    }
    {
      json_t *v = json_integer((json_int_t)p->tok.u);
      expr_lex(p);
      return lit_node(p, v, off);
    }
  case TK_REAL: {
    json_t *v = json_real(p->tok.r);
    expr_lex(p);
    return lit_node(p, v, off);
  }
  case TK_STR: {
    json_t *v = p->tok.str;
    p->tok.str = NULL;
    expr_lex(p);
    return lit_node(p, v, off);
  }
  case TK_IDENT:
    return parse_ident(p);
  case TK_OP:
    if (expr_tok_is(p, "(")) {
      expr_lex(p);
      node_t *n = parse_cond(p);
      if (!n)
        return NULL;
      if (!expr_tok_is(p, ")")) {
        expr_unexpected(p, "')'");
        expr_node_free(n);
        return NULL;
      }
      expr_lex(p);
      return n;
    }
    if (expr_tok_is(p, "["))
      return parse_list(p);
    break;
  default:
    break;
  }
  expr_unexpected(p, "an expression");
  return NULL;
}

static node_t *parse_postfix(parser_t *p) {
  node_t *n = parse_primary(p);
  while (n && !p->rc) {
    size_t off = p->tok.start;
    if (expr_tok_is(p, ".")) {
      expr_lex(p);
      if (p->tok.type != TK_IDENT) {
        expr_unexpected(p, "a member name after '.'");
        expr_node_free(n);
        return NULL;
      }
      size_t noff = p->tok.start, nlen = p->tok.end - p->tok.start;
      expr_lex(p);
      n = member_node(p, n, p->s + noff, nlen, off);
    } else if (expr_tok_is(p, "[")) {
      expr_lex(p);
      node_t *idx = parse_cond(p);
      if (!idx) {
        expr_node_free(n);
        return NULL;
      }
      if (!expr_tok_is(p, "]")) {
        expr_unexpected(p, "']'");
        expr_node_free(n);
        expr_node_free(idx);
        return NULL;
      }
      expr_lex(p);
      n = node_make(p, N_INDEX, 0, off, n, idx, NULL);
    } else {
      break;
    }
  }
  if (n && p->rc) {
    expr_node_free(n);
    n = NULL;
  }
  return n;
}

static node_t *parse_unary(parser_t *p) {
  size_t off = p->tok.start;
  if (!expr_tok_is(p, "!") && !expr_tok_is(p, "-"))
    return parse_postfix(p);
  int neg = expr_tok_is(p, "-");
  if (enter(p))
    return NULL;
  expr_lex(p);
  node_t *n;
  /* -9223372036854775808 is a literal, not the negation of an overflow */
  if (neg && p->tok.type == TK_INT && p->tok.u == (uint64_t)INT64_MAX + 1) {
    size_t ioff = p->tok.start;
    expr_lex(p);
    n = lit_node(p, json_integer(INT64_MIN), ioff);
  } else {
    node_t *operand = parse_unary(p);
    n = operand ? node_make(p, N_UNARY, neg ? OP_NEG : OP_NOT, off, operand, NULL, NULL) : NULL;
  }
  p->depth--;
  return n;
}

/* The binary operators by precedence, loosest first. Each level is
 * left-associative over operands of the next level; the last level's
 * operands are unary expressions. */
static const struct binary_level {
  kind_t kind;
  int nops;
  const char *ops[5];
  int codes[5];
} levels[] = {
    {N_OR, 1, {"||"}, {0}},
    {N_AND, 1, {"&&"}, {0}},
    {N_BINARY, 2, {"==", "!="}, {OP_EQ, OP_NE}},
    {N_BINARY, 5, {"<", "<=", ">", ">=", "in"}, {OP_LT, OP_LE, OP_GT, OP_GE, OP_IN}},
    {N_BINARY, 2, {"+", "-"}, {OP_ADD, OP_SUB}},
    {N_BINARY, 3, {"*", "/", "%"}, {OP_MUL, OP_DIV, OP_MOD}},
};
enum { NLEVELS = sizeof levels / sizeof levels[0] };

/* An operand of level (a unary expression past the last level). */
static node_t *parse_binary(parser_t *p, int level);
static node_t *parse_operand(parser_t *p, int level) {
  return level < NLEVELS ? parse_binary(p, level) : parse_unary(p);
}

/* One left-associative binary level: operand (op operand)*. */
static node_t *parse_binary(parser_t *p, int level) {
  const struct binary_level *lv = &levels[level];
  node_t *l = parse_operand(p, level + 1);
  while (l && !p->rc) {
    int found = -1;
    for (int i = 0; i < lv->nops; i++) {
      if (strcmp(lv->ops[i], "in") == 0 ? expr_tok_ident(p, "in") : expr_tok_is(p, lv->ops[i])) {
        found = i;
        break;
      }
    }
    if (found < 0)
      break;
    size_t off = p->tok.start;
    expr_lex(p);
    node_t *r = parse_operand(p, level + 1);
    if (!r) {
      expr_node_free(l);
      return NULL;
    }
    l = node_make(p, lv->kind, lv->codes[found], off, l, r, NULL);
  }
  if (l && p->rc) {
    expr_node_free(l);
    l = NULL;
  }
  return l;
}

static node_t *parse_cond(parser_t *p) {
  if (enter(p))
    return NULL;
  node_t *c = parse_binary(p, 0);
  if (c && expr_tok_is(p, "?")) {
    size_t off = p->tok.start;
    expr_lex(p);
    node_t *a = parse_cond(p);
    node_t *b = NULL;
    if (a && !expr_tok_is(p, ":"))
      expr_unexpected(p, "':' of ?:");
    if (a && !p->rc) {
      expr_lex(p);
      b = parse_cond(p);
    }
    if (!a || !b || p->rc) {
      expr_node_free(c);
      expr_node_free(a);
      expr_node_free(b);
      c = NULL;
    } else {
      c = node_make(p, N_COND, 0, off, c, a, b);
    }
  }
  p->depth--;
  return c;
}

/* Parse one expression of s[start..len). With stop_brace the expression
 * must be followed by '}' (a template part) and *end receives the offset
 * after it; otherwise it must run to the end. */
node_t *expr_parse_top(const char *s, size_t len, size_t start, int stop_brace, size_t *end,
                       smc_error_t *err, int *rc) {
  parser_t p;
  memset(&p, 0, sizeof(p));
  p.s = s;
  p.len = len;
  p.pos = start;
  p.err = err;
  expr_lex(&p);
  node_t *n = NULL;
  if (!p.rc && p.tok.type == TK_EOF && !stop_brace)
    expr_perr(&p, p.tok.start, SMC_EBAD_EXPRESSION, "empty expression");
  if (!p.rc)
    n = parse_cond(&p);
  if (n && !p.rc) {
    if (stop_brace && !expr_tok_is(&p, "}"))
      expr_unexpected(&p, "'}' closing ${");
    else if (!stop_brace && p.tok.type != TK_EOF)
      expr_unexpected(&p, "an operator or the end");
  }
  if (p.rc) {
    expr_node_free(n);
    n = NULL;
  } else if (end) {
    *end = p.tok.end;
  }
  json_decref(p.tok.str);
  *rc = p.rc;
  return n;
}

int expr_check_source(const char *src, const char *what, int max, size_t *len, smc_error_t *err) {
  if (!src)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "%s is NULL", what);
  *len = strlen(src);
  int rc = 0, column = 0;
  if (*len > (size_t)max) {
    rc = smc_error_set(err, SMC_EBAD_EXPRESSION, NULL, "%s longer than %d bytes", what, max);
    column = max + 1;
  } else {
    size_t bad = expr_utf8_check(src, *len);
    if (bad < *len) {
      rc = smc_error_set(err, SMC_EBAD_EXPRESSION, NULL, "%s is not valid UTF-8", what);
      column = (int)bad + 1;
    }
  }
  if (rc && err && err->code == rc)
    err->column = column;
  return rc;
}

int smc_expr_compile(const char *src, smc_expr_t **out, smc_error_t *err) {
  *out = NULL;
  size_t len = 0;
  int rc = expr_check_source(src, "expression", SMC_EXPR_MAX_SOURCE, &len, err);
  if (rc)
    return rc;
  node_t *root = expr_parse_top(src, len, 0, 0, NULL, err, &rc);
  if (!root)
    return rc;
  smc_expr_t *e = calloc(1, sizeof(*e));
  if (!e || !(e->src = strdup(src))) {
    free(e);
    expr_node_free(root);
    return smc_error_set(err, SMC_ENOMEM, NULL, NULL);
  }
  e->root = root;
  *out = e;
  return 0;
}

void smc_expr_destroy(smc_expr_t *e) {
  if (!e)
    return;
  expr_node_free(e->root);
  free(e->src);
  free(e);
}

const char *smc_expr_source(const smc_expr_t *e) { return e ? e->src : NULL; }
