/* Rule trees: compile from YAML nodes, evaluate against JSON (see rules.h). */
#include "core/rules.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { RK_AND, RK_OR, RK_NOT, RK_FIELD, RK_EXPR, RK_CHECKS, RK_REF } rkind_t;

enum { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_COUNT };
static const char *const cmp_names[CMP_COUNT] = {"eq", "ne", "lt", "le", "gt", "ge"};
static const char *const cmp_words[CMP_COUNT] = {"equal", "differ from", "be <",
                                                 "be <=", "be >",        "be >="};

enum {
  T_STRING = 1,
  T_NUMBER = 2,
  T_INTEGER = 4,
  T_BOOLEAN = 8,
  T_OBJECT = 16,
  T_ARRAY = 32,
  T_NULL = 64
};
static const char *const type_names[] = {"string", "number", "integer", "boolean",
                                         "object", "array",  "null"};

typedef struct rpath {
  size_t n;
  char **seg;
  size_t *len; /* strlen of each segment, for json_object_getn */
} rpath_t;

typedef struct operand {
  json_t *lit;
  smc_template_t *tpl;
} operand_t;

/* The members evaluation reads on every visit come first (one or two cache
 * lines); the rest is read only when its check is present. */
struct smc_rule {
  rkind_t kind;
  int has_vars;
  smc_rule_t **kids;
  size_t nkids;
  smc_template_t *message;
  /* RK_FIELD */
  rpath_t path;
  char *path_text;
  size_t path_len;
  smc_rule_t *field;
  /* RK_REF: the compiled definition (NULL = no rules) */
  smc_rule_t **target;
  int ref_block; /* the definition is a block (checks members, like fields) */
  /* RK_CHECKS */
  int required;
  unsigned types;
  int has_cmp; /* some cmp[] operand is set */
  int has_min, has_max;
  int has_src;
  smc_regex_t *regex[2];
  json_t *enum_vals;
  long long min_len, max_len; /* -1 = none */
  smc_template_t *matches;
  smc_rule_t *fields, *items;
  double min, max;
  operand_t cmp[CMP_COUNT];
  rpath_t src;
  /* RK_EXPR */
  smc_expr_t *expr;
  smc_vars_t vars;
  smc_rule_t *arena_next;
};

typedef struct def {
  const char *name;
  const smc_yaml_node_t *node;
  smc_rule_t *compiled; /* NULL = no rules */
  int field;            /* compiled as a field rule (else a block) */
  int done, busy;
} def_t;

struct smc_rules {
  smc_rule_t *rules;
  def_t *defs;
  size_t ndefs;
  const char *file;
  smc_diags_t *diags;
  /* owned compiled objects not attached to a rule */
  smc_expr_t **exprs;
  size_t nexprs;
  smc_template_t **tpls;
  size_t ntpls;
  smc_vars_t **vars;
  size_t nvars;
  /* every regex, compiled once per distinct pattern: an open-addressing
   * table keyed by "p:pattern" or "s:/pattern/flags" (rules borrow them) */
  struct re_slot {
    char *key;
    smc_regex_t *re;
  } * res;
  size_t nres, capres;
};

/* ------------------------------------------------------------------ */
/* arena and diagnostics */

static void diag(smc_rules_t *rs, int code, const smc_yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void diag(smc_rules_t *rs, int code, const smc_yaml_node_t *n, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  smc_diags_add(rs->diags, code, 0, rs->file, n ? n->line : 0, n ? n->col : 0, "%s", msg);
}

static smc_rule_t *rule_new(smc_rules_t *rs, rkind_t kind) {
  smc_rule_t *r = calloc(1, sizeof(*r));
  if (!r) {
    smc_diags_add(rs->diags, SMC_ENOMEM, 0, rs->file, 0, 0, "out of memory");
    return NULL;
  }
  r->kind = kind;
  r->min_len = r->max_len = -1;
  r->arena_next = rs->rules;
  rs->rules = r;
  return r;
}

static int add_kid(smc_rule_t *r, smc_rule_t *kid) {
  smc_rule_t **k = realloc(r->kids, (r->nkids + 1) * sizeof(*k));
  if (!k)
    return SMC_ENOMEM;
  r->kids = k;
  r->kids[r->nkids++] = kid;
  return 0;
}

static void path_free(rpath_t *p) {
  for (size_t i = 0; i < p->n; i++)
    free(p->seg[i]);
  free(p->seg);
  free(p->len);
  p->n = 0;
  p->seg = NULL;
  p->len = NULL;
}

static void vars_free(smc_vars_t *v) {
  for (size_t i = 0; i < v->n; i++) {
    free(v->names[i]);
    smc_expr_destroy(v->exprs[i]);
    json_decref(v->literals[i]);
  }
  free(v->names);
  free(v->exprs);
  free(v->literals);
  memset(v, 0, sizeof(*v));
}

static void rule_free(smc_rule_t *r) {
  free(r->kids);
  vars_free(&r->vars);
  smc_template_destroy(r->message);
  path_free(&r->path);
  free(r->path_text);
  smc_expr_destroy(r->expr);
  json_decref(r->enum_vals);
  for (int i = 0; i < CMP_COUNT; i++) {
    json_decref(r->cmp[i].lit);
    smc_template_destroy(r->cmp[i].tpl);
  }
  path_free(&r->src);
  smc_template_destroy(r->matches);
  free(r);
}

smc_rules_t *smc_rules_new(const smc_yaml_node_t *definitions, const char *file,
                           smc_diags_t *diags) {
  smc_rules_t *rs = calloc(1, sizeof(*rs));
  if (!rs)
    return NULL;
  rs->file = file;
  rs->diags = diags;
  if (definitions && definitions->kind == SMC_YAML_MAP && definitions->n) {
    rs->defs = calloc(definitions->n, sizeof(*rs->defs));
    if (!rs->defs) {
      free(rs);
      return NULL;
    }
    for (size_t i = 0; i < definitions->n; i++) {
      const smc_yaml_node_t *k = definitions->items[2 * i];
      if (k->kind != SMC_YAML_SCALAR) {
        diag(rs, SMC_EBAD_NAME, k, "a definition name must be a string");
        continue;
      }
      rs->defs[rs->ndefs].name = k->value;
      rs->defs[rs->ndefs].node = definitions->items[2 * i + 1];
      rs->ndefs++;
    }
  } else if (definitions && !smc_yaml_is_null(definitions) && definitions->kind != SMC_YAML_MAP) {
    diag(rs, SMC_EBAD_VALUE, definitions, "definitions must be a mapping of names to rules");
  }
  return rs;
}

void smc_rules_free(smc_rules_t *rs) {
  if (!rs)
    return;
  for (smc_rule_t *r = rs->rules, *next; r; r = next) {
    next = r->arena_next;
    rule_free(r);
  }
  for (size_t i = 0; i < rs->nexprs; i++)
    smc_expr_destroy(rs->exprs[i]);
  for (size_t i = 0; i < rs->ntpls; i++)
    smc_template_destroy(rs->tpls[i]);
  for (size_t i = 0; i < rs->nvars; i++) {
    vars_free(rs->vars[i]);
    free(rs->vars[i]);
  }
  for (size_t i = 0; i < rs->capres; i++) {
    free(rs->res[i].key);
    smc_regex_destroy(rs->res[i].re);
  }
  free(rs->res);
  free(rs->exprs);
  free(rs->tpls);
  free(rs->vars);
  free(rs->defs);
  free(rs);
}

/* ------------------------------------------------------------------ */
/* compile helpers */

static const char *const field_only_keys[] = {"type", "required", "regex",     "pattern",   "enum",
                                              "min",  "max",      "minLength", "maxLength", "eq",
                                              "ne",   "lt",       "le",        "gt",        "ge",
                                              "src",  "matches",  "fields",    "items",     NULL};
static const char *const shared_keys[] = {"all",  "any",   "not",     "expr",
                                          "$ref", "$vars", "message", NULL};

/* Edit distance of a and b (case-insensitive), capped at 9. */
static size_t distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), prev[33], cur[33];
  if (la > 32 || lb > 32)
    return 9;
  for (size_t j = 0; j <= lb; j++)
    prev[j] = j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t sub = prev[j - 1] + ((a[i - 1] | 32) != (b[j - 1] | 32));
      size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
    memcpy(prev, cur, (lb + 1) * sizeof(size_t));
  }
  return prev[lb] > 9 ? 9 : prev[lb];
}

const char *smc_rules_suggest(const char *word, const char *const *list) {
  const char *best = NULL;
  size_t bd = 3; /* at most 2 edits away */
  for (size_t i = 0; list && list[i]; i++) {
    size_t d = distance(word, list[i]);
    if (d < bd) {
      bd = d;
      best = list[i];
    }
  }
  return best;
}

/* " (did you mean 'x'?)" for an unknown field-rule key, or "". */
static void field_key_hint(const char *key, char *buf, size_t cap) {
  const char *s = smc_rules_suggest(key, field_only_keys);
  if (!s)
    s = smc_rules_suggest(key, shared_keys);
  if (s)
    snprintf(buf, cap, " (did you mean '%s'?)", s);
  else
    buf[0] = '\0';
}

static int is_str(const smc_yaml_node_t *n) {
  return n && n->kind == SMC_YAML_SCALAR && !smc_yaml_is_null(n);
}

/* Column of offset col1 (1-based) inside scalar n, for expression errors. */
static void diag_at_offset(smc_rules_t *rs, int code, const smc_yaml_node_t *n, int col1,
                           const char *what, const smc_error_t *e) {
  int col = n->col + (n->plain ? 0 : 1) + (col1 > 0 ? col1 - 1 : 0);
  if (strchr(n->value, '\n'))
    col = n->col;
  smc_diags_add(rs->diags, code, 0, rs->file, n->line, col, "%s '%s': %s", what, n->value,
                e->message[0] ? e->message : "does not parse");
}

static smc_expr_t *compile_expr(smc_rules_t *rs, const smc_yaml_node_t *n) {
  if (!is_str(n)) {
    diag(rs, SMC_EBAD_EXPRESSION, n, "an expression must be a string");
    return NULL;
  }
  smc_expr_t *e = NULL;
  smc_error_t err = {0};
  if (smc_expr_compile(n->value, &e, &err)) {
    /* a literal regex of matches() that does not compile is a bad_regex */
    diag_at_offset(rs, err.code == SMC_EBAD_REGEX ? SMC_EBAD_REGEX : SMC_EBAD_EXPRESSION, n,
                   err.column, "bad expression", &err);
    return NULL;
  }
  return e;
}

static smc_template_t *compile_tpl(smc_rules_t *rs, const smc_yaml_node_t *n) {
  if (!is_str(n)) {
    diag(rs, SMC_EBAD_VALUE, n, "a template must be a string");
    return NULL;
  }
  smc_template_t *t = NULL;
  smc_error_t err = {0};
  if (smc_template_compile(n->value, &t, &err)) {
    diag_at_offset(rs, err.code == SMC_EBAD_REGEX ? SMC_EBAD_REGEX : SMC_EBAD_EXPRESSION, n,
                   err.column, "bad template", &err);
    return NULL;
  }
  return t;
}

smc_expr_t *smc_rules_expr(smc_rules_t *rs, const smc_yaml_node_t *n) {
  smc_expr_t *e = compile_expr(rs, n);
  if (!e)
    return NULL;
  smc_expr_t **a = realloc(rs->exprs, (rs->nexprs + 1) * sizeof(*a));
  if (!a) {
    smc_expr_destroy(e);
    return NULL;
  }
  rs->exprs = a;
  return a[rs->nexprs++] = e;
}

smc_template_t *smc_rules_template(smc_rules_t *rs, const smc_yaml_node_t *n) {
  smc_template_t *t = compile_tpl(rs, n);
  if (!t)
    return NULL;
  smc_template_t **a = realloc(rs->tpls, (rs->ntpls + 1) * sizeof(*a));
  if (!a) {
    smc_template_destroy(t);
    return NULL;
  }
  rs->tpls = a;
  return a[rs->ntpls++] = t;
}

/* Split a dotted path; empty segments are bad names. */
static int parse_path(smc_rules_t *rs, const smc_yaml_node_t *n, const char *text, rpath_t *out) {
  memset(out, 0, sizeof(*out));
  size_t nseg = 1;
  for (const char *p = text; *p; p++)
    nseg += *p == '.';
  if (!(out->seg = calloc(nseg, sizeof(char *))) || !(out->len = calloc(nseg, sizeof(size_t)))) {
    path_free(out);
    return SMC_ENOMEM;
  }
  const char *start = text;
  for (;;) {
    const char *dot = strchr(start, '.');
    size_t len = dot ? (size_t)(dot - start) : strlen(start);
    if (!len) {
      diag(rs, SMC_EBAD_NAME, n, "field path '%s' has an empty segment", text);
      path_free(out);
      return SMC_EBAD_NAME;
    }
    if (!(out->seg[out->n] = strndup(start, len))) {
      path_free(out);
      return SMC_ENOMEM;
    }
    out->len[out->n] = len;
    out->n++;
    if (!dot)
      break;
    start = dot + 1;
  }
  return 0;
}

static int compile_vars(smc_rules_t *rs, const smc_yaml_node_t *n, smc_vars_t *v) {
  memset(v, 0, sizeof(*v));
  if (smc_yaml_is_null(n))
    return 0;
  if (n->kind != SMC_YAML_MAP) {
    diag(rs, SMC_EBAD_VALUE, n, "$vars must be a mapping of names to expressions");
    return SMC_EBAD_VALUE;
  }
  v->names = calloc(n->n + 1, sizeof(char *));
  v->exprs = calloc(n->n + 1, sizeof(smc_expr_t *));
  v->literals = calloc(n->n + 1, sizeof(json_t *));
  if (!v->names || !v->exprs || !v->literals)
    return SMC_ENOMEM;
  int rc = 0;
  for (size_t i = 0; i < n->n; i++) {
    const smc_yaml_node_t *k = n->items[2 * i], *val = n->items[2 * i + 1];
    if (!is_str(k)) {
      diag(rs, SMC_EBAD_NAME, k, "a $vars name must be a string");
      rc = SMC_EBAD_NAME;
      continue;
    }
    if (!(v->names[v->n] = strdup(k->value)))
      return SMC_ENOMEM;
    if (val->kind == SMC_YAML_SCALAR && smc_yaml_is_string(val) && !smc_yaml_is_pcre(val)) {
      if (!(v->exprs[v->n] = compile_expr(rs, val)))
        rc = SMC_EBAD_EXPRESSION;
    } else {
      v->literals[v->n] = smc_yaml_to_json(val);
    }
    v->n++;
  }
  return rc;
}

int smc_rules_vars(smc_rules_t *rs, const smc_yaml_node_t *n, smc_vars_t *v) {
  smc_vars_t *own = calloc(1, sizeof(*own));
  smc_vars_t **a = own ? realloc(rs->vars, (rs->nvars + 1) * sizeof(*a)) : NULL;
  if (!a) {
    free(own);
    return SMC_ENOMEM;
  }
  rs->vars = a;
  a[rs->nvars++] = own;
  int rc = compile_vars(rs, n, own);
  *v = *own;
  return rc;
}

static smc_rule_t *compile_block(smc_rules_t *rs, const smc_yaml_node_t *n);
static smc_rule_t *compile_field(smc_rules_t *rs, const smc_yaml_node_t *n);

static int infer_field(const smc_yaml_node_t *n, int depth);

/* Compile definition d once, in the context its content shows. */
static smc_rule_t *compile_def(smc_rules_t *rs, def_t *d) {
  if (!d->done) {
    d->field = infer_field(d->node, 0);
    d->busy = 1;
    d->compiled = d->field ? compile_field(rs, d->node) : compile_block(rs, d->node);
    d->busy = 0;
    d->done = 1;
  }
  return d->compiled;
}

/* $ref NAME: the definition is compiled once (as a block or as a field rule,
 * from its content) and shared. A block used where a field rule is expected
 * checks the members of the value; a field rule used in a block checks the
 * whole subject. A definition met again while compiling itself is a cycle. */
static smc_rule_t *compile_ref(smc_rules_t *rs, const smc_yaml_node_t *n) {
  if (!is_str(n)) {
    diag(rs, SMC_EBAD_VALUE, n, "$ref takes the name of a definition");
    return NULL;
  }
  def_t *d = NULL;
  for (size_t i = 0; i < rs->ndefs && !d; i++)
    if (!strcmp(rs->defs[i].name, n->value))
      d = &rs->defs[i];
  if (!d) {
    diag(rs, SMC_EUNKNOWN_REF, n, "$ref '%s' names no definition", n->value);
    return NULL;
  }
  if (d->busy) {
    diag(rs, SMC_EREF_CYCLE, n, "definition '%s' refers to itself through $ref", n->value);
    return NULL;
  }
  compile_def(rs, d);
  smc_rule_t *r = rule_new(rs, RK_REF);
  if (r) {
    r->target = &d->compiled;
    r->ref_block = !d->field;
  }
  return r;
}

static smc_rule_t *compile_list(smc_rules_t *rs, const smc_yaml_node_t *n, rkind_t kind,
                                int field_ctx, const char *what) {
  if (n->kind != SMC_YAML_SEQ || !n->n) {
    diag(rs, SMC_EBAD_VALUE, n, "%s takes a non-empty list of rules", what);
    return NULL;
  }
  smc_rule_t *r = rule_new(rs, kind);
  if (!r)
    return NULL;
  for (size_t i = 0; i < n->n; i++) {
    smc_rule_t *k = field_ctx ? compile_field(rs, n->items[i]) : compile_block(rs, n->items[i]);
    if (!k) { /* an empty alternative always passes */
      if (!(k = rule_new(rs, RK_AND)))
        return NULL;
    }
    if (add_kid(r, k))
      return NULL;
  }
  return r;
}

/* all / any / not / expr / $ref / $vars / message: shared by both contexts.
 * Returns 1 if key was one of them (and handled), 0 otherwise. */
static int compile_common(smc_rules_t *rs, smc_rule_t *r, const char *key, const smc_yaml_node_t *v,
                          int field_ctx) {
  smc_rule_t *k = NULL;
  if (!strcmp(key, "all") || !strcmp(key, "any")) {
    k = compile_list(rs, v, key[1] == 'l' ? RK_AND : RK_OR, field_ctx, key);
  } else if (!strcmp(key, "not")) {
    smc_rule_t *inner = field_ctx ? compile_field(rs, v) : compile_block(rs, v);
    if (inner && (k = rule_new(rs, RK_NOT)) && add_kid(k, inner))
      k = NULL;
  } else if (!strcmp(key, "expr")) {
    smc_expr_t *e = compile_expr(rs, v);
    if (e && !(k = rule_new(rs, RK_EXPR)))
      smc_expr_destroy(e);
    else if (k)
      k->expr = e;
  } else if (!strcmp(key, "$ref")) {
    k = compile_ref(rs, v);
  } else if (!strcmp(key, "$vars")) {
    r->has_vars = 1;
    vars_free(&r->vars);
    compile_vars(rs, v, &r->vars);
    return 1;
  } else if (!strcmp(key, "message")) {
    smc_template_destroy(r->message);
    r->message = compile_tpl(rs, v);
    return 1;
  } else {
    return 0;
  }
  if (k)
    add_kid(r, k);
  return 1;
}

/* A block: mapping of field paths to field rules (AND), or a list of blocks
 * (OR). NULL for null / empty. */
static smc_rule_t *compile_block(smc_rules_t *rs, const smc_yaml_node_t *n) {
  if (smc_yaml_is_null(n))
    return NULL;
  if (n->kind == SMC_YAML_SEQ)
    return compile_list(rs, n, RK_OR, 0, "a rule list");
  if (n->kind == SMC_YAML_SCALAR && smc_yaml_is_string(n)) {
    /* a bare string is a condition: short for {expr: ...} */
    smc_expr_t *e = compile_expr(rs, n);
    smc_rule_t *r = e ? rule_new(rs, RK_EXPR) : NULL;
    if (r)
      r->expr = e;
    else
      smc_expr_destroy(e);
    return r;
  }
  if (n->kind != SMC_YAML_MAP) {
    diag(rs, SMC_EBAD_VALUE, n, "rules must be a mapping of fields to rules, or a list of them");
    return NULL;
  }
  smc_rule_t *r = rule_new(rs, RK_AND);
  if (!r)
    return NULL;
  for (size_t i = 0; i < n->n; i++) {
    const smc_yaml_node_t *k = n->items[2 * i], *v = n->items[2 * i + 1];
    if (!is_str(k)) {
      diag(rs, SMC_EBAD_NAME, k, "a field name must be a string");
      continue;
    }
    if (compile_common(rs, r, k->value, v, 0))
      continue;
    if (k->value[0] == '$') {
      diag(rs, SMC_EUNKNOWN_KEY, k,
           "unknown key '%s' in rules (expected a field name, all, any, "
           "not, expr, $ref, $vars or message)",
           k->value);
      continue;
    }
    smc_rule_t *f = rule_new(rs, RK_FIELD);
    if (!f)
      return NULL;
    if (parse_path(rs, k, k->value, &f->path) || !(f->path_text = strdup(k->value)))
      continue;
    f->path_len = strlen(f->path_text);
    f->field = compile_field(rs, v);
    add_kid(r, f);
  }
  return r;
}

static int node_number(const smc_yaml_node_t *n, double *out) {
  json_t *j = n->kind == SMC_YAML_SCALAR ? smc_yaml_to_json(n) : NULL;
  int ok = json_is_number(j);
  if (ok)
    *out = json_number_value(j);
  json_decref(j);
  return ok;
}

static int compile_types(smc_rules_t *rs, smc_rule_t *r, const smc_yaml_node_t *v) {
  size_t cnt = v->kind == SMC_YAML_SEQ ? v->n : 1;
  for (size_t i = 0; i < cnt; i++) {
    const smc_yaml_node_t *t = v->kind == SMC_YAML_SEQ ? v->items[i] : v;
    size_t j = 0;
    if (t->kind == SMC_YAML_SCALAR)
      for (; j < 7; j++)
        if (!strcmp(t->value, type_names[j]))
          break;
    if (t->kind != SMC_YAML_SCALAR || j == 7) {
      diag(rs, SMC_EBAD_VALUE, t,
           "type must be string, number, integer, boolean, object, array or null (or a list)");
      return SMC_EBAD_VALUE;
    }
    r->types |= 1u << j;
  }
  if (!cnt) {
    diag(rs, SMC_EBAD_VALUE, v, "type takes a type name or a non-empty list of them");
    return SMC_EBAD_VALUE;
  }
  return 0;
}

static size_t str_hash(const char *k) {
  size_t h = 1469598103934665603u; /* FNV-1a */
  for (; *k; k++)
    h = (h ^ (unsigned char)*k) * 1099511628211u;
  return h;
}

/* The slot of key in the regex table (empty if absent); grows the table. */
static struct re_slot *re_slot(smc_rules_t *rs, const char *key) {
  if (2 * (rs->nres + 1) > rs->capres) {
    size_t cap = rs->capres ? 2 * rs->capres : 16;
    struct re_slot *t = calloc(cap, sizeof(*t));
    if (!t)
      return NULL;
    for (size_t i = 0; i < rs->capres; i++)
      if (rs->res[i].key)
        for (size_t j = str_hash(rs->res[i].key) & (cap - 1);; j = (j + 1) & (cap - 1))
          if (!t[j].key) {
            t[j] = rs->res[i];
            break;
          }
    free(rs->res);
    rs->res = t;
    rs->capres = cap;
  }
  for (size_t j = str_hash(key) & (rs->capres - 1);; j = (j + 1) & (rs->capres - 1))
    if (!rs->res[j].key || !strcmp(rs->res[j].key, key))
      return &rs->res[j];
}

/* regex / pattern: a plain string is the pattern, !!pcre is /pattern/flags.
 * The same pattern anywhere in the machine is compiled once. */
static int compile_regex(smc_rules_t *rs, smc_rule_t *r, int slot, const smc_yaml_node_t *v) {
  smc_error_t err = {0};
  int rc;
  if (!is_str(v)) {
    diag(rs, SMC_EBAD_REGEX, v, "a regex must be a string or !!pcre /pattern/flags");
    return SMC_EBAD_REGEX;
  }
  int slashed = smc_yaml_is_pcre(v);
  char *key = malloc(v->len + 3);
  if (!key)
    return SMC_ENOMEM;
  key[0] = slashed ? 's' : 'p';
  key[1] = ':';
  memcpy(key + 2, v->value, v->len + 1);
  struct re_slot *sl = re_slot(rs, key);
  if (!sl) {
    free(key);
    return SMC_ENOMEM;
  }
  if (sl->key) {
    free(key);
    r->regex[slot] = sl->re;
    return 0;
  }
  smc_regex_t *re = NULL;
  if (slashed)
    rc = smc_regex_compile_slashed(v->value, &re, &err);
  else
    rc = smc_regex_compile(v->value, NULL, &re, &err);
  if (rc) {
    free(key);
    smc_diags_add(rs->diags, SMC_EBAD_REGEX, 0, rs->file, v->line, v->col, "bad regex '%s': %s",
                  v->value, err.message[0] ? err.message : "invalid");
    return SMC_EBAD_REGEX;
  }
  sl->key = key;
  sl->re = re;
  rs->nres++;
  r->regex[slot] = re;
  return 0;
}

static int compile_operand(smc_rules_t *rs, operand_t *op, const smc_yaml_node_t *v) {
  if (v->kind == SMC_YAML_SCALAR && !v->plain && !v->tag && strstr(v->value, "${")) {
    return (op->tpl = compile_tpl(rs, v)) ? 0 : SMC_EBAD_EXPRESSION;
  }
  if (v->kind == SMC_YAML_SCALAR && v->plain && strstr(v->value, "${"))
    return (op->tpl = compile_tpl(rs, v)) ? 0 : SMC_EBAD_EXPRESSION;
  op->lit = smc_yaml_to_json(v);
  return op->lit ? 0 : SMC_ENOMEM;
}

static int compile_length(smc_rules_t *rs, const smc_yaml_node_t *v, long long *out,
                          const char *key) {
  double d;
  if (!node_number(v, &d) || d < 0 || d != floor(d) || d > 1e15) {
    diag(rs, SMC_EBAD_VALUE, v, "%s must be a non-negative integer", key);
    return SMC_EBAD_VALUE;
  }
  *out = (long long)d;
  return 0;
}

/* One field-rule key; returns 0 if the key is unknown. */
static int compile_check_key(smc_rules_t *rs, smc_rule_t *r, const char *key,
                             const smc_yaml_node_t *v) {
  if (compile_common(rs, r, key, v, 1))
    return 1;
  if (!strcmp(key, "type")) {
    compile_types(rs, r, v);
  } else if (!strcmp(key, "required")) {
    json_t *j = v->kind == SMC_YAML_SCALAR ? smc_yaml_to_json(v) : NULL;
    if (!json_is_boolean(j))
      diag(rs, SMC_EBAD_VALUE, v, "required must be true or false");
    else
      r->required = json_is_true(j);
    json_decref(j);
  } else if (!strcmp(key, "regex")) {
    compile_regex(rs, r, 0, v);
  } else if (!strcmp(key, "pattern")) {
    compile_regex(rs, r, 1, v);
  } else if (!strcmp(key, "enum")) {
    if (v->kind != SMC_YAML_SEQ || !v->n)
      diag(rs, SMC_EBAD_VALUE, v, "enum takes a non-empty list of values");
    else
      r->enum_vals = smc_yaml_to_json(v);
  } else if (!strcmp(key, "min") || !strcmp(key, "max")) {
    double d;
    if (!node_number(v, &d)) {
      diag(rs, SMC_EBAD_VALUE, v, "%s must be a number", key);
    } else if (key[1] == 'i') {
      r->has_min = 1;
      r->min = d;
    } else {
      r->has_max = 1;
      r->max = d;
    }
  } else if (!strcmp(key, "minLength")) {
    compile_length(rs, v, &r->min_len, key);
  } else if (!strcmp(key, "maxLength")) {
    compile_length(rs, v, &r->max_len, key);
  } else if (!strcmp(key, "src")) {
    if (!is_str(v))
      diag(rs, SMC_EBAD_VALUE, v, "src takes a field path of the current data");
    else if (!parse_path(rs, v, v->value, &r->src))
      r->has_src = 1;
  } else if (!strcmp(key, "matches")) {
    smc_template_destroy(r->matches);
    r->matches = compile_tpl(rs, v);
  } else if (!strcmp(key, "fields")) {
    if (v->kind != SMC_YAML_MAP && !smc_yaml_is_null(v) && v->kind != SMC_YAML_SEQ)
      diag(rs, SMC_EBAD_VALUE, v, "fields takes a mapping of member names to rules");
    else
      r->fields = compile_block(rs, v);
  } else if (!strcmp(key, "items")) {
    r->items = compile_field(rs, v);
  } else {
    for (int i = 0; i < CMP_COUNT; i++)
      if (!strcmp(key, cmp_names[i])) {
        compile_operand(rs, &r->cmp[i], v);
        return 1;
      }
    return 0;
  }
  return 1;
}

/* A field rule: a mapping of checks, or a list of field rules (OR). */
static smc_rule_t *compile_field(smc_rules_t *rs, const smc_yaml_node_t *n) {
  if (smc_yaml_is_null(n))
    return NULL;
  if (n->kind == SMC_YAML_SEQ)
    return compile_list(rs, n, RK_OR, 1, "a field rule list");
  if (n->kind != SMC_YAML_MAP) {
    diag(rs, SMC_EBAD_VALUE, n,
         "a field rule must be a mapping (type, required, regex, ...) or a list of them");
    return NULL;
  }
  smc_rule_t *r = rule_new(rs, RK_CHECKS);
  if (!r)
    return NULL;
  for (size_t i = 0; i < n->n; i++) {
    const smc_yaml_node_t *k = n->items[2 * i], *v = n->items[2 * i + 1];
    if (!is_str(k) || !compile_check_key(rs, r, k->value, v)) {
      char hint[64] = "";
      if (k->kind == SMC_YAML_SCALAR)
        field_key_hint(k->value, hint, sizeof(hint));
      diag(rs, SMC_EUNKNOWN_KEY, k, "unknown field rule key '%s'%s",
           k->kind == SMC_YAML_SCALAR ? k->value : "?", hint);
    }
  }
  for (int i = 0; i < CMP_COUNT; i++)
    r->has_cmp |= r->cmp[i].lit || r->cmp[i].tpl;
  return r;
}

smc_rule_t *smc_rules_block(smc_rules_t *rs, const smc_yaml_node_t *n) {
  return compile_block(rs, n);
}

smc_rule_t *smc_rules_field(smc_rules_t *rs, const smc_yaml_node_t *n) {
  return compile_field(rs, n);
}

static int in_list(const char *const *list, const char *s) {
  for (size_t i = 0; list[i]; i++)
    if (!strcmp(list[i], s))
      return 1;
  return 0;
}

/* Is n (a definition) a field rule rather than a block? A field-rule key says
 * yes, a field name says no; with only shared keys, the nested rules of
 * all/any/not decide; an empty or undecided one counts as a field rule. */
static int infer_field(const smc_yaml_node_t *n, int depth) {
  if (!n || depth > 32)
    return 1;
  if (n->kind == SMC_YAML_SEQ) {
    for (size_t i = 0; i < n->n; i++)
      if (n->items[i]->kind == SMC_YAML_MAP)
        return infer_field(n->items[i], depth + 1);
    return 1;
  }
  if (n->kind != SMC_YAML_MAP)
    return n->kind == SMC_YAML_SCALAR && smc_yaml_is_string(n) ? 0 : 1;
  for (size_t i = 0; i < n->n; i++) {
    const smc_yaml_node_t *k = n->items[2 * i];
    if (k->kind != SMC_YAML_SCALAR)
      continue;
    if (in_list(field_only_keys, k->value))
      return 1;
    if (!in_list(shared_keys, k->value))
      return 0;
  }
  static const char *const nest[] = {"all", "any", "not"};
  for (size_t j = 0; j < 3; j++) {
    const smc_yaml_node_t *v = smc_yaml_get(n, nest[j]);
    if (v && (v->kind == SMC_YAML_SEQ || v->kind == SMC_YAML_MAP))
      return infer_field(v, depth + 1);
  }
  return 1;
}

void smc_rules_finish(smc_rules_t *rs) {
  for (size_t i = 0; i < rs->ndefs; i++)
    compile_def(rs, &rs->defs[i]);
}

static int collect_names(const smc_rule_t *r, const char ***names, size_t *n, int depth) {
  if (!r || depth > 64)
    return 0;
  if (r->kind == RK_FIELD) {
    for (size_t i = 0; i < *n; i++)
      if (!strcmp((*names)[i], r->path.seg[0]))
        return 0;
    const char **a = realloc(*names, (*n + 2) * sizeof(*a));
    if (!a)
      return SMC_ENOMEM;
    *names = a;
    a[(*n)++] = r->path.seg[0];
    a[*n] = NULL;
    return 0;
  }
  if (r->kind == RK_REF)
    return collect_names(*r->target, names, n, depth + 1);
  if (r->kind == RK_AND || r->kind == RK_OR)
    for (size_t i = 0; i < r->nkids; i++)
      if (collect_names(r->kids[i], names, n, depth + 1))
        return SMC_ENOMEM;
  return 0;
}

const char **smc_rule_top_names(const smc_rule_t *r) {
  const char **names = calloc(1, sizeof(*names));
  size_t n = 0;
  if (!names || collect_names(r, &names, &n, 0)) {
    free(names);
    return NULL;
  }
  return names;
}

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
      len +=
          (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? " or " : "", type_names[i]);
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
