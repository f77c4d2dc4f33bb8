/* Rule trees: compiling them from YAML nodes (see rules.h, rules_int.h). */
#include "core/rules_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"

static const char *const cmp_names[CMP_COUNT] = {"eq", "ne", "lt", "le", "gt", "ge"};

typedef struct def {
  const char *name;
  const smc_yaml_node_t *node;
  smc_rule_t *compiled; /* NULL = no rules */
  int field;            /* compiled as a field rule (else a block) */
  int done, busy;
} def_t;

/* A compiled object the rules own without a rule to hang it on. */
typedef struct owned {
  enum { OWN_EXPR, OWN_TEMPLATE, OWN_VARS } kind;
  union {
    smc_expr_t *expr;
    smc_template_t *tpl;
    smc_vars_t *vars;
  } u;
} owned_t;

struct smc_rules {
  smc_rule_t *rules;
  def_t *defs;
  size_t ndefs;
  const char *file;
  smc_diags_t *diags;
  /* compiled objects not attached to a rule, freed with the rules */
  struct owned *owned;
  size_t nowned, capowned;
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

/* An error of the rules at node n (line 0 when n is NULL). */
#define diag(rs, code, n, ...) smc_diags_at((rs)->diags, (rs)->file, code, n, 0, __VA_ARGS__)

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

static void owned_free(owned_t *o) {
  if (o->kind == OWN_EXPR) {
    smc_expr_destroy(o->u.expr);
  } else if (o->kind == OWN_TEMPLATE) {
    smc_template_destroy(o->u.tpl);
  } else {
    vars_free(o->u.vars);
    free(o->u.vars);
  }
}

/* Keep o until the rules go: 0, or -1 (o freed) when out of memory. */
static int own(smc_rules_t *rs, owned_t o) {
  if (smc_array_reserve(&rs->owned, &rs->capowned, rs->nowned + 1, sizeof *rs->owned, 16)) {
    owned_free(&o);
    return -1;
  }
  rs->owned[rs->nowned++] = o;
  return 0;
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
  for (size_t i = 0; i < rs->nowned; i++)
    owned_free(&rs->owned[i]);
  for (size_t i = 0; i < rs->capres; i++) {
    free(rs->res[i].key);
    smc_regex_destroy(rs->res[i].re);
  }
  free(rs->res);
  free(rs->owned);
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

/* Report that the text of scalar n did not compile (e, at its column e's
 * column, 1-based): bad_regex for a literal regex of matches() that does not
 * compile, bad_expression otherwise. */
static void compile_error(smc_rules_t *rs, const smc_yaml_node_t *n, const char *what,
                          const smc_error_t *e) {
  int col = n->col + (n->plain ? 0 : 1) + (e->column > 0 ? e->column - 1 : 0);
  if (strchr(n->value, '\n'))
    col = n->col;
  smc_diags_add(rs->diags, e->code == SMC_EBAD_REGEX ? SMC_EBAD_REGEX : SMC_EBAD_EXPRESSION, 0,
                rs->file, n->line, col, "%s '%s': %s", what, n->value,
                e->message[0] ? e->message : "does not parse");
}

static smc_expr_t *compile_expr(smc_rules_t *rs, const smc_yaml_node_t *n) {
  smc_expr_t *e = NULL;
  smc_error_t err = {0};
  if (!is_str(n))
    diag(rs, SMC_EBAD_EXPRESSION, n, "an expression must be a string");
  else if (smc_expr_compile(n->value, &e, &err))
    compile_error(rs, n, "bad expression", &err);
  return e;
}

static smc_template_t *compile_tpl(smc_rules_t *rs, const smc_yaml_node_t *n) {
  smc_template_t *t = NULL;
  smc_error_t err = {0};
  if (!is_str(n))
    diag(rs, SMC_EBAD_VALUE, n, "a template must be a string");
  else if (smc_template_compile(n->value, &t, &err))
    compile_error(rs, n, "bad template", &err);
  return t;
}

smc_expr_t *smc_rules_expr(smc_rules_t *rs, const smc_yaml_node_t *n) {
  smc_expr_t *e = compile_expr(rs, n);
  return e && own(rs, (owned_t){OWN_EXPR, {.expr = e}}) == 0 ? e : NULL;
}

smc_template_t *smc_rules_template(smc_rules_t *rs, const smc_yaml_node_t *n) {
  smc_template_t *t = compile_tpl(rs, n);
  return t && own(rs, (owned_t){OWN_TEMPLATE, {.tpl = t}}) == 0 ? t : NULL;
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
  smc_vars_t *kept = calloc(1, sizeof(*kept));
  if (!kept || own(rs, (owned_t){OWN_VARS, {.vars = kept}}))
    return SMC_ENOMEM;
  int rc = compile_vars(rs, n, kept);
  *v = *kept;
  return rc;
}

static smc_rule_t *compile_list(smc_rules_t *rs, const smc_yaml_node_t *n, rkind_t kind,
                                int field_ctx, const char *what);
static smc_rule_t *compile_block(smc_rules_t *rs, const smc_yaml_node_t *n);
static smc_rule_t *compile_field(smc_rules_t *rs, const smc_yaml_node_t *n);

/* A rule where a field rule (field) or a block is expected: null is none, a
 * list is its alternatives (OR), anything else a field rule
 * (compile_field) or a block (compile_block). */
static smc_rule_t *compile_rule(smc_rules_t *rs, const smc_yaml_node_t *n, int field) {
  if (smc_yaml_is_null(n))
    return NULL;
  if (n->kind == SMC_YAML_SEQ)
    return compile_list(rs, n, RK_OR, field, field ? "a field rule list" : "a rule list");
  return field ? compile_field(rs, n) : compile_block(rs, n);
}

static int infer_field(const smc_yaml_node_t *n, int depth);

/* Compile definition d once, in the context its content shows. */
static smc_rule_t *compile_def(smc_rules_t *rs, def_t *d) {
  if (!d->done) {
    d->field = infer_field(d->node, 0);
    d->busy = 1;
    d->compiled = compile_rule(rs, d->node, d->field);
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
    smc_rule_t *k = compile_rule(rs, n->items[i], field_ctx);
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
    smc_rule_t *inner = compile_rule(rs, v, field_ctx);
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

/* A block (not null, not a list: compile_rule): a mapping of field paths to
 * field rules (AND), or a bare string (a condition). */
static smc_rule_t *compile_block(smc_rules_t *rs, const smc_yaml_node_t *n) {
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
    f->field = compile_rule(rs, v, 1);
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
        if (!strcmp(t->value, smc_rules_type_names[j]))
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
      r->fields = compile_rule(rs, v, 0);
  } else if (!strcmp(key, "items")) {
    r->items = compile_rule(rs, v, 1);
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

/* A field rule (not null, not a list: compile_rule): a mapping of checks. */
static smc_rule_t *compile_field(smc_rules_t *rs, const smc_yaml_node_t *n) {
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
  return compile_rule(rs, n, 0);
}

smc_rule_t *smc_rules_field(smc_rules_t *rs, const smc_yaml_node_t *n) {
  return compile_rule(rs, n, 1);
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
