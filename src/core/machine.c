/* Machine compiler and introspection (include/smc/machine.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "base/duration.h"
#include "core/digest.h"
#include "core/machine_internal.h"
#include "core/util.h"
#include "core/vote_sig.h"
#include "core/yaml.h"

#define MAX_DIAGS 1000

void smc_limits_default(smc_limits_t *l) {
  l->expr_steps = 100000;
  l->regex_match_limit = 100000;
  l->regex_depth_limit = 1000;
  l->definition_max_bytes = 1024 * 1024;
  l->data_max_bytes = 256 * 1024;
}

void smc_diags_init(smc_diags_t *d) { memset(d, 0, sizeof(*d)); }

void smc_diags_close(smc_diags_t *d) {
  if (!d)
    return;
  free(d->items);
  memset(d, 0, sizeof(*d));
}

static void diags_addv(smc_diags_t *d, int code, int warning, const char *file, int line, int col,
                       const char *fmt, va_list ap) {
  if (!d)
    return;
  smc_diag_t dg;
  memset(&dg, 0, sizeof(dg));
  dg.warning = warning;
  dg.err.code = code;
  dg.err.line = line;
  dg.err.column = col;
  if (file)
    snprintf(dg.err.file, sizeof(dg.err.file), "%s", file);
  vsnprintf(dg.err.message, sizeof(dg.err.message), fmt, ap);
  for (size_t i = 0; i < d->count && d->count < MAX_DIAGS; i++) {
    const smc_diag_t *o = &d->items[i];
    if (o->err.code == code && o->err.line == line && o->err.column == col &&
        !strcmp(o->err.message, dg.err.message))
      return;
  }
  if (warning)
    d->warnings++;
  else
    d->errors++;
  if (d->count >= MAX_DIAGS)
    return; /* counted, not stored */
  if (smc_array_reserve(&d->items, &d->cap, d->count + 1, sizeof(*d->items), 16))
    return;
  d->items[d->count++] = dg;
}

void smc_diags_add(smc_diags_t *d, int code, int warning, const char *file, int line, int col,
                   const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diags_addv(d, code, warning, file, line, col, fmt, ap);
  va_end(ap);
}

void smc_diags_at(smc_diags_t *d, const char *file, int code, const smc_yaml_node_t *n, int dflt,
                  const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diags_addv(d, code, 0, file, n ? n->line : dflt, n ? n->col : dflt, fmt, ap);
  va_end(ap);
}

static int diag_cmp(const void *a, const void *b) {
  const smc_diag_t *x = a, *y = b;
  if (x->err.line != y->err.line)
    return x->err.line < y->err.line ? -1 : 1;
  if (x->err.column != y->err.column)
    return x->err.column < y->err.column ? -1 : 1;
  return 0;
}

/* Stable sort (insertion: diagnostics lists are short). */
static void diags_sort(smc_diags_t *d, size_t from) {
  for (size_t i = from + 1; i < d->count; i++) {
    smc_diag_t t = d->items[i];
    size_t j = i;
    while (j > from && diag_cmp(&d->items[j - 1], &t) > 0) {
      d->items[j] = d->items[j - 1];
      j--;
    }
    d->items[j] = t;
  }
}

/* ------------------------------------------------------------------ */

typedef struct compiler {
  const char *file;
  smc_diags_t *diags;
  smc_machine_t *m;
  const smc_yaml_node_t *states_node;
  const smc_yaml_node_t **trans_nodes; /* per compiled transition: its mapping */
  const smc_yaml_node_t **trans_keys;  /* per compiled transition: its name node */
  smc_vote_policy_t default_votes;
  int has_default_votes;
} compiler_t;

/* An error of the definition at node n (line 1 when n is NULL). */
#define cdiag(c, code, n, ...) smc_diags_at((c)->diags, (c)->file, code, n, 1, __VA_ARGS__)

static int is_str(const smc_yaml_node_t *n) {
  return n && n->kind == SMC_YAML_SCALAR && !smc_yaml_is_null(n);
}

/* Keys of mapping n must be among allowed (NULL-terminated). */
static void check_keys(compiler_t *c, const smc_yaml_node_t *n, const char *const *allowed,
                       const char *where) {
  for (size_t i = 0; i < n->n; i++) {
    const smc_yaml_node_t *k = n->items[2 * i];
    int ok = 0;
    for (size_t j = 0; allowed[j] && !ok && k->kind == SMC_YAML_SCALAR; j++)
      ok = !strcmp(k->value, allowed[j]);
    if (ok)
      continue;
    const char *hint = k->kind == SMC_YAML_SCALAR ? smc_rules_suggest(k->value, allowed) : NULL;
    if (hint)
      cdiag(c, SMC_EUNKNOWN_KEY, k, "unknown key '%s' in %s (did you mean '%s'?)", k->value, where,
            hint);
    else
      cdiag(c, SMC_EUNKNOWN_KEY, k, "unknown key '%s' in %s",
            k->kind == SMC_YAML_SCALAR ? k->value : "?", where);
  }
}

static int machine_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 64 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
    return 0;
  for (size_t i = 1; i < n; i++)
    if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '.' ||
          s[i] == '_' || s[i] == '-'))
      return 0;
  return 1;
}

/* States and transitions: [A-Za-z0-9_][A-Za-z0-9_.-]{0,63} */
static int ident_ok(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 64 || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
    return 0;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-'))
      return 0;
  return 1;
}

/* A key whose value is one of two words: 0 for the first, 1 for the
 * second, -1 (reported) for anything else. */
static int choice_node(compiler_t *c, const smc_yaml_node_t *v, const char *key, const char *w0,
                       const char *w1) {
  for (int i = 0; i < 2; i++)
    if (is_str(v) && !strcmp(v->value, i ? w1 : w0))
      return i;
  cdiag(c, SMC_EBAD_VALUE, v, "%s must be %s or %s", key, w0, w1);
  return -1;
}

static int duration_node(compiler_t *c, const smc_yaml_node_t *n, int64_t *ms) {
  if (!is_str(n) || smc_duration_parse(n->value, 1, ms)) {
    cdiag(c, SMC_EBAD_DURATION, n, "bad duration '%s' (expected like 500ms, 30s, 5m, 2h or 7d)",
          n->kind == SMC_YAML_SCALAR ? n->value : "?");
    return -1;
  }
  return 0;
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void policy_free(smc_vote_policy_t *p) {
  for (size_t i = 0; i < p->nvoters; i++) {
    free(p->voters[i]);
    if (p->keys)
      EVP_PKEY_free(p->keys[i]);
  }
  free(p->voters);
  free(p->keys);
  memset(p, 0, sizeof(*p));
}

static int policy_copy(smc_vote_policy_t *dst, const smc_vote_policy_t *src) {
  *dst = *src;
  dst->keys = NULL;
  dst->voters = calloc(src->nvoters ? src->nvoters : 1, sizeof(char *));
  if (!dst->voters)
    return SMC_ENOMEM;
  for (size_t i = 0; i < src->nvoters; i++)
    if (!(dst->voters[i] = strdup(src->voters[i])))
      return SMC_ENOMEM;
  if (src->keys) { /* the keys are shared, counted by OpenSSL */
    if (!(dst->keys = calloc(src->nvoters, sizeof(*dst->keys))))
      return SMC_ENOMEM;
    for (size_t i = 0; i < src->nvoters; i++) {
      if (src->keys[i] && !EVP_PKEY_up_ref(src->keys[i]))
        return SMC_ENOMEM; /* never drop a key: its voter would vote unsigned */
      dst->keys[i] = src->keys[i];
    }
  }
  return 0;
}

/* keys: {voter: public key} of a policy whose voters are compiled (sorted):
 * each key is parsed once here into p->keys (vote_sig.h for the forms).
 * Returns 0, -1 after a diagnostic, or SMC_ENOMEM. */
static int compile_keys(compiler_t *c, const smc_yaml_node_t *n, smc_vote_policy_t *p) {
  if (n->kind != SMC_YAML_MAP) {
    cdiag(c, SMC_EBAD_VOTES, n, "keys must be a mapping {voter: public key}");
    return -1;
  }
  if (!(p->keys = calloc(p->nvoters ? p->nvoters : 1, sizeof(*p->keys))))
    return SMC_ENOMEM;
  int bad = 0;
  for (size_t i = 0; i < n->n; i++) {
    const smc_yaml_node_t *k = n->items[2 * i], *v = n->items[2 * i + 1];
    size_t vi = p->nvoters;
    for (size_t j = 0; j < p->nvoters && vi == p->nvoters && k->kind == SMC_YAML_SCALAR; j++)
      if (!strcmp(p->voters[j], k->value))
        vi = j;
    if (vi == p->nvoters) {
      cdiag(c, SMC_EBAD_VOTES, k, "key for '%s', who is not in voters",
            k->kind == SMC_YAML_SCALAR ? k->value : "?");
      bad = 1;
      continue;
    }
    if (!smc_yaml_is_string(v)) {
      cdiag(c, SMC_EBAD_VALUE, v, "the key of voter '%s' must be a string", k->value);
      bad = 1;
      continue;
    }
    smc_error_t err;
    smc_error_clear(&err);
    int rc = smc_vote_sig_parse_public(v->value, &p->keys[vi], &err);
    if (rc == SMC_ENOMEM)
      return rc;
    if (rc) {
      cdiag(c, SMC_EBAD_VALUE, v, "the key of voter '%s': %s", k->value, err.message);
      bad = 1;
    }
  }
  return bad ? -1 : 0;
}

/* {quorum: N|majority|all, voters: [...], timeout: D, keys: {voter: key}}
 * -> p. Errors go to diags; returns 0 only for a usable policy. */
static int compile_votes(compiler_t *c, const smc_yaml_node_t *n, smc_vote_policy_t *p) {
  static const char *const keys[] = {"quorum", "voters", "timeout", "keys", NULL};
  memset(p, 0, sizeof(*p));
  if (n->kind != SMC_YAML_MAP) {
    cdiag(c, SMC_EBAD_VOTES, n, "votes must be none or a mapping {quorum, voters, timeout, keys}");
    return -1;
  }
  check_keys(c, n, keys, "votes");
  int bad = 0;
  const smc_yaml_node_t *voters = smc_yaml_get(n, "voters"), *quorum = smc_yaml_get(n, "quorum");
  const smc_yaml_node_t *timeout = smc_yaml_get(n, "timeout");
  if (!voters) {
    cdiag(c, SMC_EMISSING_KEY, n, "votes needs voters");
    bad = 1;
  } else if (voters->kind != SMC_YAML_SEQ || !voters->n) {
    cdiag(c, SMC_EBAD_VOTES, voters, "voters must be a non-empty list of voter ids");
    bad = 1;
  } else {
    if (!(p->voters = calloc(voters->n, sizeof(char *))))
      return SMC_ENOMEM;
    for (size_t i = 0; i < voters->n; i++) {
      const smc_yaml_node_t *v = voters->items[i];
      if (!smc_yaml_is_string(v) && !(is_str(v) && v->kind == SMC_YAML_SCALAR)) {
        cdiag(c, SMC_EBAD_VOTES, v, "a voter id must be a string");
        bad = 1;
        continue;
      }
      int dup = 0;
      for (size_t j = 0; j < p->nvoters && !dup; j++)
        dup = !strcmp(p->voters[j], v->value);
      if (dup) {
        cdiag(c, SMC_EDUPLICATE_NAME, v, "voter '%s' is listed twice", v->value);
        bad = 1;
        continue;
      }
      if (!(p->voters[p->nvoters++] = strdup(v->value)))
        return SMC_ENOMEM;
    }
    qsort(p->voters, p->nvoters, sizeof(char *), str_cmp);
    const smc_yaml_node_t *kn = smc_yaml_get(n, "keys");
    if (kn && !smc_yaml_is_null(kn) && !bad) {
      int rc = compile_keys(c, kn, p);
      if (rc == SMC_ENOMEM)
        return rc;
      bad |= rc != 0;
    }
  }
  p->quorum = p->nvoters / 2 + 1;
  if (quorum) {
    json_t *q = quorum->kind == SMC_YAML_SCALAR ? smc_yaml_to_json(quorum) : NULL;
    if (json_is_string(q) && !strcmp(json_string_value(q), "majority")) {
      p->quorum = p->nvoters / 2 + 1;
    } else if (json_is_string(q) && !strcmp(json_string_value(q), "all")) {
      p->quorum = p->nvoters;
    } else if (json_is_integer(q) && json_integer_value(q) >= 1) {
      p->quorum = (size_t)json_integer_value(q);
      if (!bad && p->quorum > p->nvoters) {
        cdiag(c, SMC_EBAD_VOTES, quorum, "quorum %zu can never be met by %zu voters", p->quorum,
              p->nvoters);
        bad = 1;
      }
    } else {
      cdiag(c, SMC_EBAD_VOTES, quorum, "quorum must be a positive integer, majority or all");
      bad = 1;
    }
    json_decref(q);
  }
  if (timeout && !smc_yaml_is_null(timeout) && duration_node(c, timeout, &p->timeout_ms))
    bad = 1;
  if (bad) {
    policy_free(p);
    return -1;
  }
  return 0;
}

static void compile_state(compiler_t *c, size_t i, const smc_yaml_node_t *k,
                          const smc_yaml_node_t *v) {
  static const char *const keys[] = {"fields", "final", "additional", "description", NULL};
  smc_machine_t *m = c->m;
  smc_state_info_t *info = &m->state_info[i];
  smc_mstate_t *st = &m->states[i];
  info->name = k->value;
  st->additional = 1;
  if (!ident_ok(k->value))
    cdiag(c, SMC_EBAD_NAME, k, "bad state name '%s' (letters, digits, _ . -; at most 64)",
          k->value);
  if (smc_yaml_is_null(v))
    return;
  if (v->kind != SMC_YAML_MAP) {
    cdiag(c, SMC_EBAD_VALUE, v,
          "state '%s' must be a mapping (fields, final, additional, "
          "description)",
          k->value);
    return;
  }
  check_keys(c, v, keys, "a state");
  const smc_yaml_node_t *f;
  if ((f = smc_yaml_get(v, "description"))) {
    if (!is_str(f))
      cdiag(c, SMC_EBAD_VALUE, f, "description must be a string");
    else
      info->description = f->value;
  }
  for (int b = 0; b < 2; b++) {
    const char *key = b ? "additional" : "final";
    if (!(f = smc_yaml_get(v, key)))
      continue;
    json_t *j = f->kind == SMC_YAML_SCALAR ? smc_yaml_to_json(f) : NULL;
    if (!json_is_boolean(j))
      cdiag(c, SMC_EBAD_VALUE, f, "%s must be true or false", key);
    else if (b)
      st->additional = json_is_true(j);
    else
      info->final = json_is_true(j);
    json_decref(j);
  }
  if ((f = smc_yaml_get(v, "fields"))) {
    if (!smc_yaml_is_null(f) && f->kind != SMC_YAML_MAP)
      cdiag(c, SMC_EBAD_VALUE, f, "fields must be a mapping of field names to rules");
    else
      st->fields = smc_rules_block(m->rules, f);
  }
  if (!st->additional)
    st->names = smc_rule_top_names(st->fields);
}

static long state_index(const smc_machine_t *m, const char *name) {
  for (size_t i = 0; i < m->nstates; i++)
    if (!strcmp(m->state_info[i].name, name))
      return (long)i;
  return -1;
}

static long resolve_state(compiler_t *c, const smc_yaml_node_t *n, const char *what) {
  if (!is_str(n)) {
    cdiag(c, SMC_EBAD_VALUE, n, "%s must be a state name", what);
    return -1;
  }
  long i = state_index(c->m, n->value);
  if (i < 0)
    cdiag(c, SMC_EUNKNOWN_STATE, n, "%s state '%s' is not defined in states", what, n->value);
  return i;
}

static int compile_from(compiler_t *c, smc_transition_info_t *ti, smc_mtrans_t *t,
                        const smc_yaml_node_t *from) {
  if (smc_yaml_is_null(from)) {
    ti->creates = 1;
    return 0;
  }
  size_t cnt = from->kind == SMC_YAML_SEQ ? from->n : 1;
  if (from->kind == SMC_YAML_MAP || !cnt) {
    cdiag(c, SMC_EBAD_VALUE, from, "from must be a state, a list of states, \"*\" or null");
    return -1;
  }
  const char **names = calloc(cnt, sizeof(char *));
  t->from_idx = calloc(cnt, sizeof(long));
  if (!names || !t->from_idx) {
    free(names);
    return SMC_ENOMEM;
  }
  ti->from = names;
  for (size_t i = 0; i < cnt; i++) {
    const smc_yaml_node_t *s = from->kind == SMC_YAML_SEQ ? from->items[i] : from;
    if (s->kind == SMC_YAML_SCALAR && !strcmp(s->value, "*")) {
      ti->from_any = 1;
      continue;
    }
    long idx = resolve_state(c, s, "from");
    if (idx < 0)
      continue;
    if (c->m->state_info[idx].final)
      cdiag(c, SMC_EBAD_VALUE, s, "state '%s' is final: no transition may leave it", s->value);
    int dup = 0;
    for (size_t j = 0; j < ti->nfrom && !dup; j++)
      dup = t->from_idx[j] == idx;
    if (dup)
      continue;
    t->from_idx[ti->nfrom] = idx;
    names[ti->nfrom++] = c->m->state_info[idx].name;
  }
  if (ti->from_any) { /* "*" covers every non-final state */
    ti->nfrom = 0;
  }
  return 0;
}

static int compile_set(compiler_t *c, smc_mtrans_t *t, const smc_yaml_node_t *n) {
  if (smc_yaml_is_null(n))
    return 0;
  if (n->kind != SMC_YAML_MAP) {
    cdiag(c, SMC_EBAD_VALUE, n, "set must be a mapping of fields to expressions");
    return -1;
  }
  if (!(t->set = calloc(n->n ? n->n : 1, sizeof(*t->set))))
    return SMC_ENOMEM;
  for (size_t i = 0; i < n->n; i++) {
    const smc_yaml_node_t *k = n->items[2 * i], *v = n->items[2 * i + 1];
    smc_set_entry_t *e = &t->set[t->nset];
    if (!is_str(k)) {
      cdiag(c, SMC_EBAD_NAME, k, "a set field must be a name");
      continue;
    }
    size_t nseg = 1;
    for (const char *p = k->value; *p; p++)
      nseg += *p == '.';
    if (!(e->seg = calloc(nseg, sizeof(char *))))
      return SMC_ENOMEM;
    const char *start = k->value;
    int bad = 0;
    for (;;) {
      const char *dot = strchr(start, '.');
      size_t len = dot ? (size_t)(dot - start) : strlen(start);
      if (!len)
        bad = 1;
      if (!(e->seg[e->nseg++] = strndup(start, len)))
        return SMC_ENOMEM;
      if (!dot)
        break;
      start = dot + 1;
    }
    if (bad)
      cdiag(c, SMC_EBAD_NAME, k, "set field '%s' has an empty path segment", k->value);
    if (smc_yaml_is_string(v) && !smc_yaml_is_pcre(v)) {
      e->expr = smc_rules_expr(c->m->rules, v);
    } else {
      e->literal = smc_yaml_to_json(v);
    }
    t->nset++;
  }
  return 0;
}

static char *guard_canon(const smc_yaml_node_t *n) {
  static const char *const keys[] = {"$src", "$dst", "when", "$vars"};
  json_t *g = json_object();
  for (size_t i = 0; i < 4 && g; i++) {
    const smc_yaml_node_t *v = smc_yaml_get(n, keys[i]);
    if (v && !smc_yaml_is_null(v))
      json_object_set_new(g, keys[i], smc_yaml_to_json(v));
  }
  char *s = json_object_size(g) ? smc_json_canonical(g) : NULL;
  json_decref(g);
  return s;
}

/* One transition variant (the mapping n, target `to`). */
static void compile_transition(compiler_t *c, size_t ti_idx, const smc_yaml_node_t *name,
                               const smc_yaml_node_t *n, const smc_yaml_node_t *to) {
  smc_machine_t *m = c->m;
  smc_transition_info_t *ti = &m->trans_info[ti_idx];
  smc_mtrans_t *t = &m->trans[ti_idx];
  const smc_yaml_node_t *v;
  ti->name = name->value;
  c->trans_nodes[ti_idx] = n;
  c->trans_keys[ti_idx] = name;
  long to_idx = resolve_state(c, to, "to");
  t->to = to_idx < 0 ? 0 : (size_t)to_idx;
  ti->to = to_idx < 0 ? "" : m->state_info[to_idx].name;
  v = smc_yaml_get(n, "from");
  if (!v)
    cdiag(c, SMC_EMISSING_KEY, n, "transition '%s' needs from (a state, a list, \"*\" or null)",
          name->value);
  else
    compile_from(c, ti, t, v);
  if ((v = smc_yaml_get(n, "$vars"))) {
    t->has_vars = 1;
    smc_rules_vars(m->rules, v, &t->vars);
  }
  if ((v = smc_yaml_get(n, "$src")))
    t->src = smc_rules_block(m->rules, v);
  if ((v = smc_yaml_get(n, "$dst")))
    t->dst = smc_rules_block(m->rules, v);
  if ((v = smc_yaml_get(n, "when")))
    t->when = smc_rules_block(m->rules, v);
  if ((v = smc_yaml_get(n, "set")))
    compile_set(c, t, v);
  if ((v = smc_yaml_get(n, "mode")))
    t->replace = choice_node(c, v, "mode", "merge", "replace") == 1;
  if ((v = smc_yaml_get(n, "after"))) {
    if (!duration_node(c, v, &ti->after_ms) && ti->creates)
      cdiag(c, SMC_EBAD_VALUE, v, "a create transition (from: null) cannot have after:");
  }
  if ((v = smc_yaml_get(n, "message")))
    t->message = smc_rules_template(m->rules, v);
  if ((v = smc_yaml_get(n, "description")) && !is_str(v))
    cdiag(c, SMC_EBAD_VALUE, v, "description must be a string");
  if (t->message) {
    const smc_yaml_node_t *mv = smc_yaml_get(n, "message");
    ti->message = mv->value;
  }
  v = smc_yaml_get(n, "votes");
  if (v && smc_yaml_is_null(v))
    v = NULL; /* `votes:` with no value: the machine default */
  if (v && is_str(v) && !strcmp(v->value, "none")) {
    ti->votes = NULL;
  } else if (v) {
    if (!compile_votes(c, v, &m->policies[ti_idx]))
      ti->votes = &m->policies[ti_idx];
  } else if (c->has_default_votes) {
    if (!policy_copy(&m->policies[ti_idx], &c->default_votes))
      ti->votes = &m->policies[ti_idx];
  }
  t->guard_canon = guard_canon(n);
}

static size_t variant_count(const smc_yaml_node_t *v) {
  if (v->kind == SMC_YAML_MAP) {
    const smc_yaml_node_t *to = smc_yaml_get(v, "to");
    return to && to->kind == SMC_YAML_SEQ && to->n ? to->n : 1;
  }
  if (v->kind == SMC_YAML_SEQ) {
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++)
      n += v->items[i]->kind == SMC_YAML_MAP ? variant_count(v->items[i]) : 0;
    return n;
  }
  return 0;
}

static const char *const transition_keys[] = {"from",    "to",          "$vars", "$src",  "$dst",
                                              "when",    "set",         "mode",  "after", "votes",
                                              "message", "description", NULL};

/* A transition mapping n under name k: one compiled transition per target. */
static void compile_variants(compiler_t *c, size_t *next, const smc_yaml_node_t *k,
                             const smc_yaml_node_t *n) {
  check_keys(c, n, transition_keys, "a transition");
  const smc_yaml_node_t *to = smc_yaml_get(n, "to");
  if (!to) {
    cdiag(c, SMC_EMISSING_KEY, n, "transition '%s' needs to (the target state)", k->value);
    return;
  }
  if (to->kind == SMC_YAML_SEQ) {
    if (!to->n)
      cdiag(c, SMC_EBAD_VALUE, to, "to must be a state or a non-empty list of states");
    for (size_t i = 0; i < to->n; i++)
      compile_transition(c, (*next)++, k, n, to->items[i]);
    return;
  }
  compile_transition(c, (*next)++, k, n, to);
}

static int compile_transitions(compiler_t *c, const smc_yaml_node_t *tn) {
  smc_machine_t *m = c->m;
  if (smc_yaml_is_null(tn))
    return 0;
  if (tn->kind != SMC_YAML_MAP) {
    cdiag(c, SMC_EBAD_VALUE, tn, "transitions must be a mapping of names to transitions");
    return 0;
  }
  size_t total = 0;
  for (size_t i = 0; i < tn->n; i++)
    total += variant_count(tn->items[2 * i + 1]);
  m->trans_info = calloc(total + 1, sizeof(*m->trans_info));
  m->trans = calloc(total + 1, sizeof(*m->trans));
  m->policies = calloc(total + 1, sizeof(*m->policies));
  c->trans_nodes = calloc(total + 1, sizeof(*c->trans_nodes));
  c->trans_keys = calloc(total + 1, sizeof(*c->trans_keys));
  if (!m->trans_info || !m->trans || !m->policies || !c->trans_nodes || !c->trans_keys)
    return SMC_ENOMEM;
  size_t next = 0;
  for (size_t i = 0; i < tn->n; i++) {
    const smc_yaml_node_t *k = tn->items[2 * i], *v = tn->items[2 * i + 1];
    if (!is_str(k)) {
      cdiag(c, SMC_EBAD_NAME, k, "a transition name must be a string");
      continue;
    }
    if (!ident_ok(k->value))
      cdiag(c, SMC_EBAD_NAME, k, "bad transition name '%s' (letters, digits, _ . -; at most 64)",
            k->value);
    if (v->kind == SMC_YAML_MAP) {
      compile_variants(c, &next, k, v);
    } else if (v->kind == SMC_YAML_SEQ && v->n) {
      for (size_t j = 0; j < v->n; j++) {
        if (v->items[j]->kind != SMC_YAML_MAP)
          cdiag(c, SMC_EBAD_VALUE, v->items[j], "a transition must be a mapping");
        else
          compile_variants(c, &next, k, v->items[j]);
      }
    } else {
      cdiag(c, SMC_EBAD_VALUE, v,
            "transition '%s' must be a mapping (from, to, ...) or a list of them", k->value);
    }
  }
  m->ntrans = next;
  return 0;
}

/* Per-state lists of the transitions naming the state in `from`, the
 * create list and the from: "*" list; linear in the size of the definition. */
static int build_indexes(compiler_t *c) {
  smc_machine_t *m = c->m;
  if (!(m->creates = calloc(m->ntrans + 1, sizeof(size_t))) ||
      !(m->any = calloc(m->ntrans + 1, sizeof(size_t))))
    return SMC_ENOMEM;
  for (size_t t = 0; t < m->ntrans; t++) {
    const smc_transition_info_t *ti = &m->trans_info[t];
    if (ti->creates)
      m->creates[m->ncreates++] = t;
    else if (ti->from_any)
      m->any[m->nany++] = t;
    else
      for (size_t i = 0; i < ti->nfrom; i++)
        m->states[m->trans[t].from_idx[i]].nleaving++;
  }
  for (size_t s = 0; s < m->nstates; s++) {
    smc_mstate_t *st = &m->states[s];
    if (!(st->leaving = calloc(st->nleaving + 1, sizeof(size_t))))
      return SMC_ENOMEM;
    st->nleaving = 0;
  }
  for (size_t t = 0; t < m->ntrans; t++) {
    const smc_transition_info_t *ti = &m->trans_info[t];
    if (!ti->creates && !ti->from_any)
      for (size_t i = 0; i < ti->nfrom; i++) {
        smc_mstate_t *st = &m->states[m->trans[t].from_idx[i]];
        st->leaving[st->nleaving++] = t;
      }
  }
  return 0;
}

/* dfsm: warn where two (non-timer) transitions leaving one state, or two
 * creates, have identical guards (or none), so no proposal tells them apart. */
static void overlap_pair(compiler_t *c, size_t a, size_t b, const char *state) {
  smc_machine_t *m = c->m;
  if (m->trans_info[a].after_ms || m->trans_info[b].after_ms)
    return;
  const char *ga = m->trans[a].guard_canon, *gb = m->trans[b].guard_canon;
  if ((ga || gb) && (!ga || !gb || strcmp(ga, gb)))
    return;
  const smc_yaml_node_t *k = c->trans_keys[b];
  smc_diags_add(c->diags, SMC_EDFSM_OVERLAP, 1, c->file, k->line, k->col,
                "transitions '%s' and '%s' both leave %s with %s: a proposal without a "
                "transition name cannot tell them apart",
                m->trans_info[a].name, m->trans_info[b].name, state,
                ga ? "the same rules" : "no rules");
}

/* Pairs compared at most, so a huge definition cannot make the check slow. */
#define OVERLAP_BUDGET 2000000

/* Each pair is compared once: explicit/explicit and explicit/"*" pairs per
 * state, "*"/"*" pairs once for every state, creates among themselves. */
static void check_overlap(compiler_t *c) {
  smc_machine_t *m = c->m;
  char where[96];
  size_t budget = OVERLAP_BUDGET;
  for (size_t s = 0; s < m->nstates && budget; s++) {
    const smc_mstate_t *st = &m->states[s];
    if (m->state_info[s].final)
      continue;
    snprintf(where, sizeof(where), "state '%s'", m->state_info[s].name);
    for (size_t i = 0; i < st->nleaving && budget; i++) {
      for (size_t j = i + 1; j < st->nleaving && budget; j++, budget--)
        overlap_pair(c, st->leaving[i], st->leaving[j], where);
      for (size_t j = 0; j < m->nany && budget; j++, budget--)
        if (st->leaving[i] < m->any[j])
          overlap_pair(c, st->leaving[i], m->any[j], where);
        else
          overlap_pair(c, m->any[j], st->leaving[i], where);
    }
  }
  for (size_t i = 0; i < m->nany && budget; i++)
    for (size_t j = i + 1; j < m->nany && budget; j++, budget--)
      overlap_pair(c, m->any[i], m->any[j], "every state (from: \"*\")");
  for (size_t i = 0; i < m->ncreates && budget; i++)
    for (size_t j = i + 1; j < m->ncreates && budget; j++, budget--)
      overlap_pair(c, m->creates[i], m->creates[j], "nothing (from: null)");
}

static const char *const top_keys[] = {"name",  "kind",   "description", "definitions",
                                       "votes", "states", "transitions", NULL};

static void compile_top(compiler_t *c, const smc_yaml_node_t *root) {
  smc_machine_t *m = c->m;
  const smc_yaml_node_t *v;
  check_keys(c, root, top_keys, "the machine");
  if (!(v = smc_yaml_get(root, "name")))
    cdiag(c, SMC_EMISSING_KEY, root, "the machine needs a name");
  else if (!is_str(v) || !machine_name_ok(v->value))
    cdiag(c, SMC_EBAD_NAME, v, "bad machine name '%s' (expected [a-z0-9][a-z0-9._-]{0,63})",
          v->kind == SMC_YAML_SCALAR ? v->value : "?");
  else
    m->name = strdup(v->value);
  if ((v = smc_yaml_get(root, "kind")))
    m->dfsm = choice_node(c, v, "kind", "dfsm", "ndfsm") == 0;
  if ((v = smc_yaml_get(root, "description"))) {
    if (!is_str(v))
      cdiag(c, SMC_EBAD_VALUE, v, "description must be a string");
    else
      m->description = strdup(v->value);
  }
  if ((v = smc_yaml_get(root, "votes")) && !smc_yaml_is_null(v) &&
      !(is_str(v) && !strcmp(v->value, "none")))
    c->has_default_votes = !compile_votes(c, v, &c->default_votes);
  const smc_yaml_node_t *states = smc_yaml_get(root, "states");
  if (!states) {
    cdiag(c, SMC_EMISSING_KEY, root, "the machine needs states");
  } else if (states->kind != SMC_YAML_MAP || !states->n) {
    cdiag(c, SMC_EBAD_VALUE, states, "states must be a non-empty mapping of state names");
  } else {
    m->state_info = calloc(states->n, sizeof(*m->state_info));
    m->states = calloc(states->n, sizeof(*m->states));
    if (!m->state_info || !m->states)
      return;
    for (size_t i = 0; i < states->n; i++) {
      const smc_yaml_node_t *k = states->items[2 * i];
      if (!is_str(k)) {
        cdiag(c, SMC_EBAD_NAME, k, "a state name must be a string");
        continue;
      }
      compile_state(c, m->nstates++, k, states->items[2 * i + 1]);
    }
  }
  if ((v = smc_yaml_get(root, "transitions")))
    compile_transitions(c, v);
}

int smc_machine_compile(const char *text, size_t len, const char *file, const smc_limits_t *limits,
                        smc_machine_t **out, smc_diags_t *diags) {
  smc_diags_t local;
  smc_limits_t lim;
  compiler_t c = {.file = file};
  smc_yaml_doc_t *doc = NULL;
  int rc = SMC_EINVALID_MACHINE;
  if (!out)
    return SMC_EINVALID_ARGUMENT;
  *out = NULL;
  if (!diags) {
    smc_diags_init(&local);
    diags = &local;
  }
  size_t first_diag = diags->count, errors0 = diags->errors;
  c.diags = diags;
  if (limits)
    lim = *limits;
  else
    smc_limits_default(&lim);
  if (!text) {
    text = "";
    len = 0;
  }
  if (len > lim.definition_max_bytes) {
    smc_diags_add(diags, SMC_ETOO_LARGE, 0, file, 1, 1,
                  "definition is %zu bytes, larger than the limit of %zu", len,
                  lim.definition_max_bytes);
    goto done;
  }
  smc_machine_t *m = c.m = calloc(1, sizeof(*m));
  if (!m || !(m->source = malloc(len + 1))) {
    rc = SMC_ENOMEM;
    goto done;
  }
  atomic_init(&m->refs, 1);
  m->limits = lim;
  memcpy(m->source, text, len);
  m->source[len] = '\0';
  uint64_t budget = len > 65536 ? len : 65536;
  int prc = smc_yaml_parse(m->source, len, file, budget, &doc, diags);
  if (prc) {
    rc = prc == SMC_ENOMEM ? prc : SMC_EINVALID_MACHINE;
    goto done;
  }
  if (!doc->root || doc->root->kind != SMC_YAML_MAP) {
    smc_diags_add(diags, doc->root ? SMC_EBAD_VALUE : SMC_EMISSING_KEY, 0, file,
                  doc->root ? doc->root->line : 1, doc->root ? doc->root->col : 1,
                  "a machine definition must be a mapping with name, states and transitions");
    goto done;
  }
  json_t *j = smc_yaml_to_json(doc->root);
  char *canon = j ? smc_json_canonical(j) : NULL;
  json_decref(j);
  if (!canon || !(m->hash = malloc(65))) {
    free(canon);
    rc = SMC_ENOMEM;
    goto done;
  }
  smc_sha256_hex(canon, strlen(canon), m->hash);
  free(canon);
  if (!(m->rules = smc_rules_new(smc_yaml_get(doc->root, "definitions"), file, diags))) {
    rc = SMC_ENOMEM;
    goto done;
  }
  compile_top(&c, doc->root);
  smc_rules_finish(m->rules);
  if (diags->errors == errors0) {
    if ((rc = build_indexes(&c)))
      goto done;
    if (m->dfsm)
      check_overlap(&c);
    rc = 0;
  }
done:
  if (diags->errors > errors0 && rc == 0)
    rc = SMC_EINVALID_MACHINE;
  if (rc == SMC_EINVALID_MACHINE && diags->errors == errors0)
    rc = SMC_ENOMEM; /* failed without saying why: only allocation does that */
  diags_sort(diags, first_diag);
  policy_free(&c.default_votes);
  free(c.trans_nodes);
  free(c.trans_keys);
  if (c.m)
    c.m->doc = doc; /* names and messages point into it */
  else
    smc_yaml_free(doc);
  if (rc == 0)
    *out = c.m;
  else
    smc_machine_destroy(c.m);
  if (diags == &local)
    smc_diags_close(&local);
  return rc;
}

smc_machine_t *smc_machine_retain(smc_machine_t *m) {
  if (m)
    atomic_fetch_add(&m->refs, 1);
  return m;
}

void smc_machine_destroy(smc_machine_t *m) {
  if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
    return;
  for (size_t s = 0; s < m->nstates && m->states; s++) {
    free(m->states[s].leaving);
    free(m->states[s].names);
  }
  for (size_t t = 0; t < m->ntrans; t++) {
    smc_mtrans_t *tr = &m->trans[t];
    free(tr->from_idx);
    free((void *)m->trans_info[t].from);
    for (size_t i = 0; i < tr->nset; i++) {
      for (size_t j = 0; j < tr->set[i].nseg; j++)
        free(tr->set[i].seg[j]);
      free(tr->set[i].seg);
      json_decref(tr->set[i].literal);
    }
    free(tr->set);
    free(tr->guard_canon);
    policy_free(&m->policies[t]);
  }
  smc_rules_free(m->rules);
  smc_yaml_free(m->doc);
  free(m->states);
  free(m->state_info);
  free(m->trans);
  free(m->trans_info);
  free(m->policies);
  free(m->creates);
  free(m->any);
  free(m->name);
  free(m->hash);
  free(m->source);
  free(m->description);
  free(m);
}

const char *smc_machine_name(const smc_machine_t *m) { return m->name; }
const char *smc_machine_hash(const smc_machine_t *m) { return m->hash; }
const char *smc_machine_source(const smc_machine_t *m) { return m->source; }
const char *smc_machine_description(const smc_machine_t *m) { return m->description; }
int smc_machine_is_dfsm(const smc_machine_t *m) { return m->dfsm; }
size_t smc_machine_state_count(const smc_machine_t *m) { return m->nstates; }

const smc_state_info_t *smc_machine_state(const smc_machine_t *m, size_t i) {
  return i < m->nstates ? &m->state_info[i] : NULL;
}

long smc_machine_find_state(const smc_machine_t *m, const char *name) {
  return name ? state_index(m, name) : -1;
}

size_t smc_machine_transition_count(const smc_machine_t *m) { return m->ntrans; }

const smc_transition_info_t *smc_machine_transition(const smc_machine_t *m, size_t i) {
  return i < m->ntrans ? &m->trans_info[i] : NULL;
}

int smc_machine_timer(const smc_machine_t *m, const char *state, size_t *transition,
                      int64_t *after_ms) {
  long s = smc_machine_find_state(m, state);
  int found = 0;
  if (s < 0)
    return 0;
  smc_leave_iter_t it = {.m = m, .s = (size_t)s};
  size_t t;
  while (smc_leave_next(&it, &t)) {
    const smc_transition_info_t *ti = &m->trans_info[t];
    if (ti->after_ms && (!found || ti->after_ms < *after_ms)) {
      *transition = t;
      *after_ms = ti->after_ms;
      found = 1;
    }
  }
  return found;
}

int smc_machine_evolves(const smc_machine_t *cur, const smc_machine_t *next, smc_error_t *err) {
  if (strcmp(smc_machine_name(cur), smc_machine_name(next)))
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, "name", "not the same machine");
  char missing[400] = "";
  size_t n = 0;
  for (size_t i = 0; i < smc_machine_state_count(cur); i++) {
    const char *st = smc_machine_state(cur, i)->name;
    if (smc_machine_find_state(next, st) >= 0)
      continue;
    size_t l = strlen(missing);
    if (l + strlen(st) + 8 < sizeof missing)
      snprintf(missing + l, sizeof missing - l, "%s'%s'", n ? ", " : "", st);
    n++;
  }
  if (!n)
    return 0;
  return smc_error_set(err, SMC_EMACHINE_EXISTS, "states",
                       "the new definition of machine '%s' drops state%s %s of the registered "
                       "version %.12s: a version must keep every state (register it under a new "
                       "name instead)",
                       smc_machine_name(cur), n > 1 ? "s" : "", missing, smc_machine_hash(cur));
}
