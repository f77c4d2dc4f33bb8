/* YAML event parser -> node tree with positions (see yaml.h). */
#include "core/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/array.h"

#define PCRE_TAG "tag:yaml.org,2002:pcre"
#define MERGE_TAG "tag:yaml.org,2002:merge"
#define STR_TAG "tag:yaml.org,2002:str"

typedef struct anchor {
  char *name;
  smc_yaml_node_t *node;
} anchor_t;

typedef struct parse_state {
  smc_yaml_doc_t *doc;
  smc_yaml_node_t *stack[SMC_YAML_MAX_DEPTH + 1];
  int open[SMC_YAML_MAX_DEPTH + 1];
  int depth;
  anchor_t *anchors;
  size_t nanchors;
  uint64_t expanded, max_nodes;
  int ndocs;
  const char *file;
  smc_diags_t *diags;
} parse_state_t;

static smc_yaml_node_t *node_new(parse_state_t *ps, smc_yaml_kind_t kind, const yaml_mark_t *mark,
                                 const yaml_char_t *tag) {
  smc_yaml_node_t *n = calloc(1, sizeof(*n));
  if (!n)
    return NULL;
  n->kind = kind;
  n->line = (int)mark->line + 1;
  n->col = (int)mark->column + 1;
  n->weight = 1;
  n->height = 1;
  if (tag && !(n->tag = strdup((const char *)tag))) {
    free(n);
    return NULL;
  }
  n->all_next = ps->doc->all;
  ps->doc->all = n;
  return n;
}

static int push_item(smc_yaml_node_t *p, smc_yaml_node_t *item) {
  /* items holds n entries for sequences and up to 2n+1 for mappings (a key
   * waiting for its value); cap counts slots. */
  size_t slots = p->kind == SMC_YAML_MAP ? 2 * p->n + (p->len ? 1 : 0) : p->n;
  if (smc_array_reserve(&p->items, &p->cap, slots + 1, sizeof(*p->items), 8))
    return -1;
  p->items[slots] = item;
  if (p->kind == SMC_YAML_MAP) {
    /* len doubles as "a key is pending" for mappings under construction */
    if (p->len) {
      p->len = 0;
      p->n++;
    } else {
      p->len = 1;
    }
  } else {
    p->n++;
  }
  return 0;
}

static int syntax(parse_state_t *ps, int line, int col, const char *msg) {
  smc_diags_add(ps->diags, SMC_EYAML_SYNTAX, 0, ps->file, line, col, "%s", msg);
  return SMC_EYAML_SYNTAX;
}

/* Attach a finished or starting node to the open collection (or make it the
 * root) and charge its expanded weight to the budget. */
static int attach(parse_state_t *ps, smc_yaml_node_t *n, uint64_t weight) {
  ps->expanded += weight;
  if (ps->expanded > ps->max_nodes)
    return syntax(ps, n->line, n->col,
                  "document too large after alias expansion (node budget exceeded)");
  if (ps->depth == 0) {
    if (ps->doc->root)
      return syntax(ps, n->line, n->col, "more than one root node");
    ps->doc->root = n;
    return 0;
  }
  if (push_item(ps->stack[ps->depth - 1], n))
    return SMC_ENOMEM;
  return 0;
}

static int add_anchor(parse_state_t *ps, const yaml_char_t *name, smc_yaml_node_t *n) {
  if (!name)
    return 0;
  if (ps->nanchors >= SMC_YAML_MAX_ANCHORS)
    return syntax(ps, n->line, n->col, "too many anchors");
  anchor_t *a = realloc(ps->anchors, (ps->nanchors + 1) * sizeof(*a));
  if (!a)
    return SMC_ENOMEM;
  ps->anchors = a;
  if (!(a[ps->nanchors].name = strdup((const char *)name)))
    return SMC_ENOMEM;
  a[ps->nanchors++].node = n;
  return 0;
}

static smc_yaml_node_t *find_anchor(parse_state_t *ps, const char *name) {
  for (size_t i = ps->nanchors; i-- > 0;)
    if (!strcmp(ps->anchors[i].name, name))
      return ps->anchors[i].node;
  return NULL;
}

static int node_is_open(parse_state_t *ps, const smc_yaml_node_t *n) {
  for (int i = 0; i < ps->depth; i++)
    if (ps->stack[i] == n)
      return 1;
  return 0;
}

/* Order keys by text, then by position. */
static int key_cmp(const void *a, const void *b) {
  const smc_yaml_node_t *x = *(smc_yaml_node_t *const *)a, *y = *(smc_yaml_node_t *const *)b;
  int c = strcmp(x->value, y->value);
  if (c)
    return c;
  if (x->line != y->line)
    return x->line < y->line ? -1 : 1;
  return (x->col > y->col) - (x->col < y->col);
}

static int is_merge_key(const smc_yaml_node_t *k) {
  if (k->kind != SMC_YAML_SCALAR)
    return 0;
  if (k->tag && !strcmp(k->tag, MERGE_TAG))
    return 1;
  return k->plain && !k->tag && !strcmp(k->value, "<<");
}

/* Expand merge keys of a finished mapping: explicit keys first, then the
 * merged mappings' keys not already present (earlier sources win). */
static int expand_merges(parse_state_t *ps, smc_yaml_node_t *m) {
  size_t nmerge = 0;
  for (size_t i = 0; i < m->n; i++)
    if (is_merge_key(m->items[2 * i]))
      nmerge++;
  if (!nmerge)
    return 0;
  size_t total = m->n;
  for (size_t i = 0; i < m->n; i++) {
    smc_yaml_node_t *k = m->items[2 * i], *v = m->items[2 * i + 1];
    if (!is_merge_key(k))
      continue;
    if (v->kind == SMC_YAML_MAP) {
      total += v->n;
    } else if (v->kind == SMC_YAML_SEQ) {
      for (size_t j = 0; j < v->n; j++) {
        if (v->items[j]->kind != SMC_YAML_MAP)
          return syntax(ps, v->items[j]->line, v->items[j]->col,
                        "a merge key (<<) takes a mapping or a list of mappings");
        total += v->items[j]->n;
      }
    } else {
      return syntax(ps, v->line, v->col, "a merge key (<<) takes a mapping or a list of mappings");
    }
  }
  smc_yaml_node_t **items = calloc(2 * total + 1, sizeof(*items));
  if (!items)
    return SMC_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < m->n; i++)
    if (!is_merge_key(m->items[2 * i])) {
      items[2 * n] = m->items[2 * i];
      items[2 * n + 1] = m->items[2 * i + 1];
      n++;
    }
  for (size_t i = 0; i < m->n; i++) {
    smc_yaml_node_t *v = m->items[2 * i + 1];
    if (!is_merge_key(m->items[2 * i]))
      continue;
    size_t nsrc = v->kind == SMC_YAML_MAP ? 1 : v->n;
    for (size_t s = 0; s < nsrc; s++) {
      smc_yaml_node_t *src = v->kind == SMC_YAML_MAP ? v : v->items[s];
      for (size_t j = 0; j < src->n; j++) {
        smc_yaml_node_t *k = src->items[2 * j];
        int present = 0;
        for (size_t q = 0; q < n && !present; q++)
          present = k->kind == SMC_YAML_SCALAR && items[2 * q]->kind == SMC_YAML_SCALAR &&
                    !strcmp(items[2 * q]->value, k->value);
        if (!present) {
          items[2 * n] = k;
          items[2 * n + 1] = src->items[2 * j + 1];
          n++;
        }
      }
    }
  }
  free(m->items);
  m->items = items;
  m->n = n;
  m->cap = 2 * total + 1;
  return 0;
}

/* Report keys that appear twice in one mapping (sorting a copy of the keys)
 * and drop the later occurrences. */
static int check_duplicates(parse_state_t *ps, smc_yaml_node_t *m) {
  if (m->n < 2)
    return 0;
  smc_yaml_node_t **keys = malloc(m->n * sizeof(*keys));
  if (!keys)
    return SMC_ENOMEM;
  size_t nk = 0;
  for (size_t i = 0; i < m->n; i++)
    if (m->items[2 * i]->kind == SMC_YAML_SCALAR)
      keys[nk++] = m->items[2 * i];
  qsort(keys, nk, sizeof(*keys), key_cmp);
  int dups = 0;
  size_t first_i = 0;
  for (size_t i = 1; i < nk; i++) {
    if (strcmp(keys[i]->value, keys[first_i]->value)) {
      first_i = i;
      continue;
    }
    if (keys[i] == keys[first_i])
      continue; /* the same (aliased) node twice */
    {
      smc_yaml_node_t *later = keys[i], *first = keys[first_i];
      smc_diags_add(ps->diags, SMC_EDUPLICATE_NAME, 0, ps->file, later->line, later->col,
                    "duplicate key '%s' (first defined at line %d)", later->value, first->line);
      later->len = (size_t)-1; /* mark for removal */
      dups = 1;
    }
  }
  free(keys);
  if (!dups)
    return 0;
  size_t n = 0;
  for (size_t i = 0; i < m->n; i++) {
    smc_yaml_node_t *k = m->items[2 * i];
    if (k->kind == SMC_YAML_SCALAR && k->len == (size_t)-1) {
      k->len = strlen(k->value);
      continue;
    }
    m->items[2 * n] = k;
    m->items[2 * n + 1] = m->items[2 * i + 1];
    n++;
  }
  m->n = n;
  return 0;
}

static int finish_collection(parse_state_t *ps) {
  smc_yaml_node_t *c = ps->stack[--ps->depth];
  int rc = 0;
  if (c->kind == SMC_YAML_MAP) {
    c->len = 0;
    if ((rc = check_duplicates(ps, c)) || (rc = expand_merges(ps, c)))
      return rc;
  }
  uint64_t w = 1;
  for (size_t i = 0; i < (c->kind == SMC_YAML_MAP ? 2 * c->n : c->n); i++) {
    if (c->items[i]->height + 1 > c->height)
      c->height = c->items[i]->height + 1;
    w += c->items[i]->weight;
    if (w > ps->max_nodes)
      w = ps->max_nodes + 1;
  }
  c->weight = w;
  return 0;
}

static int handle_event(parse_state_t *ps, yaml_event_t *ev) {
  smc_yaml_node_t *n;
  int rc;
  switch (ev->type) {
  case YAML_DOCUMENT_START_EVENT:
    if (ps->ndocs++)
      return syntax(ps, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                    "more than one YAML document");
    return 0;
  case YAML_SCALAR_EVENT: {
    n = node_new(ps, SMC_YAML_SCALAR, &ev->start_mark, ev->data.scalar.tag);
    if (!n || !(n->value = malloc(ev->data.scalar.length + 1)))
      return SMC_ENOMEM;
    memcpy(n->value, ev->data.scalar.value, ev->data.scalar.length);
    n->value[ev->data.scalar.length] = '\0';
    n->len = ev->data.scalar.length;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (n->tag && !strcmp(n->tag, "!")) { /* non-specific tag: a string */
      free(n->tag);
      n->tag = NULL;
      n->plain = 0;
    }
    if ((rc = add_anchor(ps, ev->data.scalar.anchor, n)))
      return rc;
    return attach(ps, n, 1);
  }
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT: {
    int seq = ev->type == YAML_SEQUENCE_START_EVENT;
    if (ps->depth >= SMC_YAML_MAX_DEPTH)
      return syntax(ps, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                    "nesting deeper than 64 levels");
    n = node_new(ps, seq ? SMC_YAML_SEQ : SMC_YAML_MAP, &ev->start_mark,
                 seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag);
    if (!n)
      return SMC_ENOMEM;
    if ((rc = add_anchor(ps, seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor,
                         n)) ||
        (rc = attach(ps, n, 1)))
      return rc;
    ps->stack[ps->depth++] = n;
    return 0;
  }
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT:
    return finish_collection(ps);
  case YAML_ALIAS_EVENT: {
    const char *name = (const char *)ev->data.alias.anchor;
    smc_yaml_node_t *t = find_anchor(ps, name);
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    if (!t)
      return syntax(ps, line, col, "alias to an unknown anchor");
    if (node_is_open(ps, t))
      return syntax(ps, line, col, "recursive alias (an anchor used inside itself)");
    if (ps->depth + t->height > SMC_YAML_MAX_DEPTH + 1)
      return syntax(ps, line, col, "nesting deeper than 64 levels (through an alias)");
    return attach(ps, t, t->weight);
  }
  default:
    return 0;
  }
}

int smc_yaml_parse(const char *text, size_t len, const char *file, uint64_t max_nodes,
                   smc_yaml_doc_t **out, smc_diags_t *diags) {
  *out = NULL;
  parse_state_t ps = {.max_nodes = max_nodes, .file = file, .diags = diags};
  yaml_parser_t parser;
  int rc = 0;
  if (!(ps.doc = calloc(1, sizeof(*ps.doc))))
    return SMC_ENOMEM;
  if (!yaml_parser_initialize(&parser)) {
    free(ps.doc);
    return SMC_ENOMEM;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev)) {
      const yaml_mark_t *mk = parser.problem_mark.line || parser.problem_mark.column
                                  ? &parser.problem_mark
                                  : &parser.context_mark;
      if (parser.error == YAML_MEMORY_ERROR) {
        rc = SMC_ENOMEM;
      } else {
        smc_diags_add(diags, SMC_EYAML_SYNTAX, 0, file, (int)mk->line + 1, (int)mk->column + 1,
                      "%s%s%s", parser.problem ? parser.problem : "invalid YAML",
                      parser.context ? " " : "", parser.context ? parser.context : "");
        rc = SMC_EYAML_SYNTAX;
      }
      break;
    }
    int done = ev.type == YAML_STREAM_END_EVENT;
    rc = handle_event(&ps, &ev);
    yaml_event_delete(&ev);
    if (rc || done)
      break;
  }
  yaml_parser_delete(&parser);
  for (size_t i = 0; i < ps.nanchors; i++)
    free(ps.anchors[i].name);
  free(ps.anchors);
  if (rc) {
    smc_yaml_free(ps.doc);
    return rc;
  }
  *out = ps.doc;
  return 0;
}

void smc_yaml_free(smc_yaml_doc_t *doc) {
  if (!doc)
    return;
  for (smc_yaml_node_t *n = doc->all, *next; n; n = next) {
    next = n->all_next;
    free(n->tag);
    free(n->value);
    free(n->items);
    free(n);
  }
  free(doc);
}

smc_yaml_node_t *smc_yaml_get(const smc_yaml_node_t *m, const char *key) {
  if (!m || m->kind != SMC_YAML_MAP)
    return NULL;
  for (size_t i = 0; i < m->n; i++) {
    const smc_yaml_node_t *k = m->items[2 * i];
    if (k->kind == SMC_YAML_SCALAR && !strcmp(k->value, key))
      return m->items[2 * i + 1];
  }
  return NULL;
}

int smc_yaml_is_null(const smc_yaml_node_t *n) {
  if (!n)
    return 1;
  if (n->kind != SMC_YAML_SCALAR)
    return 0;
  if (n->tag)
    return !strcmp(n->tag, "tag:yaml.org,2002:null");
  if (!n->plain)
    return 0;
  const char *v = n->value;
  return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

int smc_yaml_is_pcre(const smc_yaml_node_t *n) {
  return n && n->kind == SMC_YAML_SCALAR && n->tag && !strcmp(n->tag, PCRE_TAG);
}

static int is_bool(const char *v, int *b) {
  if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) {
    *b = 1;
    return 1;
  }
  if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) {
    *b = 0;
    return 1;
  }
  return 0;
}

/* YAML 1.2 core schema integers: [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+ */
static int parse_int(const char *v, json_int_t *out, int *overflow) {
  const char *p = v;
  int base = 10;
  *overflow = 0;
  if (p[0] == '0' && p[1] == 'o') {
    base = 8;
    p += 2;
  } else if (p[0] == '0' && p[1] == 'x') {
    base = 16;
    p += 2;
  } else if (*p == '-' || *p == '+') {
    p++;
  }
  if (!*p)
    return 0;
  for (const char *q = p; *q; q++) {
    int ok = base == 16 ? ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
                           (*q >= 'A' && *q <= 'F'))
                        : (*q >= '0' && *q < '0' + base);
    if (!ok)
      return 0;
  }
  errno = 0;
  long long x = strtoll(base == 10 ? v : p, NULL, base);
  if (errno == ERANGE) {
    *overflow = 1;
    return 1;
  }
  *out = (json_int_t)x;
  return 1;
}

static int parse_float(const char *v, double *out) {
  const char *p = v;
  if (*p == '-' || *p == '+')
    p++;
  int digits = 0, dot = 0;
  while ((*p >= '0' && *p <= '9') || (*p == '.' && !dot)) {
    if (*p == '.')
      dot = 1;
    else
      digits++;
    p++;
  }
  if (!digits)
    return 0;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '-' || *p == '+')
      p++;
    if (!(*p >= '0' && *p <= '9'))
      return 0;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  if (*p)
    return 0;
  double d = strtod(v, NULL);
  if (!isfinite(d))
    return 0;
  *out = d;
  return 1;
}

int smc_yaml_is_string(const smc_yaml_node_t *n) {
  if (!n || n->kind != SMC_YAML_SCALAR || smc_yaml_is_null(n))
    return 0;
  if (n->tag)
    return !strcmp(n->tag, STR_TAG) || !strcmp(n->tag, PCRE_TAG);
  json_t *j = smc_yaml_to_json(n);
  int s = json_is_string(j);
  json_decref(j);
  return s;
}

static json_t *scalar_json(const smc_yaml_node_t *n) {
  const char *v = n->value;
  if (n->tag) {
    if (!strcmp(n->tag, PCRE_TAG)) {
      char *buf = malloc(n->len + 8);
      if (!buf)
        return NULL;
      memcpy(buf, "!!pcre ", 7);
      memcpy(buf + 7, v, n->len + 1);
      json_t *s = json_stringn(buf, n->len + 7);
      free(buf);
      return s;
    }
    if (!strcmp(n->tag, STR_TAG))
      return json_stringn(v, n->len);
    if (smc_yaml_is_null(n))
      return json_null();
  }
  if (n->plain && (!n->tag || strncmp(n->tag, "tag:yaml.org,2002:", 18) == 0)) {
    int b, ovf;
    json_int_t i;
    double d;
    if (smc_yaml_is_null(n))
      return json_null();
    if (is_bool(v, &b))
      return json_boolean(b);
    if (parse_int(v, &i, &ovf)) {
      if (!ovf)
        return json_integer(i);
      return json_real(strtod(v, NULL));
    }
    if (parse_float(v, &d))
      return json_real(d);
  }
  return json_stringn(v, n->len);
}

json_t *smc_yaml_to_json(const smc_yaml_node_t *n) {
  if (!n)
    return json_null();
  if (n->kind == SMC_YAML_SCALAR)
    return scalar_json(n);
  json_t *out = n->kind == SMC_YAML_SEQ ? json_array() : json_object();
  if (!out)
    return NULL;
  for (size_t i = 0; i < n->n; i++) {
    if (n->kind == SMC_YAML_SEQ) {
      json_t *item = smc_yaml_to_json(n->items[i]);
      if (!item || json_array_append_new(out, item))
        goto fail;
    } else {
      const smc_yaml_node_t *k = n->items[2 * i];
      json_t *val = smc_yaml_to_json(n->items[2 * i + 1]);
      if (!val)
        goto fail;
      if (k->kind == SMC_YAML_SCALAR) {
        if (json_object_setn_new(out, k->value, k->len, val))
          goto fail;
      } else {
        /* complex keys: use their canonical JSON text */
        json_t *kj = smc_yaml_to_json(k);
        char *ks = kj ? json_dumps(kj, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(kj);
        int bad = !ks || json_object_set_new(out, ks, val);
        free(ks);
        if (bad)
          goto fail;
      }
    }
  }
  return out;
fail:
  json_decref(out);
  return NULL;
}
