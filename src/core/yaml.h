/*
 * A small YAML document model for machine definitions, built on libyaml's
 * event parser.
 *
 * Every node keeps its 1-based line and column. Aliases are resolved by
 * sharing the anchored node (the tree is a DAG), and merge keys (<<) are
 * expanded. Hostile input is bounded: nesting deeper than SMC_YAML_MAX_DEPTH,
 * more anchors than SMC_YAML_MAX_ANCHORS, or an alias expansion larger than
 * the node budget fail with yaml_syntax before anything walks the tree.
 */
#ifndef SMC_CORE_YAML_H
#define SMC_CORE_YAML_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "smc/machine.h"

#define SMC_YAML_MAX_DEPTH 64
#define SMC_YAML_MAX_ANCHORS 4096

typedef enum { SMC_YAML_SCALAR, SMC_YAML_SEQ, SMC_YAML_MAP } smc_yaml_kind_t;

typedef struct smc_yaml_node {
  smc_yaml_kind_t kind;
  int line, col; /* 1-based */
  char *tag;     /* resolved tag ("tag:yaml.org,2002:pcre") or NULL */
  char *value;   /* scalar text, NUL-terminated */
  size_t len;    /* scalar length */
  int plain;     /* scalar written without quotes (type resolution applies) */
  size_t n, cap; /* seq: n items; map: n pairs in items[2i] (key), items[2i+1] */
  struct smc_yaml_node **items;
  uint64_t weight;                /* nodes in the alias-expanded subtree (saturating) */
  int height;                     /* levels of the alias-expanded subtree (a scalar is 1) */
  struct smc_yaml_node *all_next; /* every node of a document, for freeing */
} smc_yaml_node_t;

typedef struct smc_yaml_doc {
  smc_yaml_node_t *root; /* NULL for an empty document */
  smc_yaml_node_t *all;
} smc_yaml_doc_t;

/*
 * Parse one YAML document. Syntax errors, limit violations and duplicate
 * mapping keys are added to diags (file used there); a syntax or limit error
 * returns SMC_EYAML_SYNTAX and no document. Duplicate keys do not stop the
 * parse (the returned document keeps the first occurrence). max_nodes bounds
 * the alias-expanded size of the document. The caller frees *out with
 * smc_yaml_free.
 */
int smc_yaml_parse(const char *text, size_t len, const char *file, uint64_t max_nodes,
                   smc_yaml_doc_t **out, smc_diags_t *diags);
void smc_yaml_free(smc_yaml_doc_t *doc);

/* Mapping lookup by scalar key; NULL when absent or m is not a mapping. */
smc_yaml_node_t *smc_yaml_get(const smc_yaml_node_t *m, const char *key);
/* Scalar that resolves to YAML null (plain "", "~", "null"), or NULL node. */
int smc_yaml_is_null(const smc_yaml_node_t *n);
/* Scalar tagged !!pcre. */
int smc_yaml_is_pcre(const smc_yaml_node_t *n);
/* Plain/quoted scalar that is not null (a string in the user's eyes). */
int smc_yaml_is_string(const smc_yaml_node_t *n);
/* Convert to JSON with the YAML 1.2 core schema (plain scalars become null,
 * booleans, integers or reals; !!pcre scalars become "!!pcre /re/f").
 * New reference, NULL on allocation failure. */
json_t *smc_yaml_to_json(const smc_yaml_node_t *n);

/* Add a diagnostic (defined in machine.c, shared by the compiler modules).
 * Identical diagnostics (same code, position and message) are kept once. */
void smc_diags_add(smc_diags_t *d, int code, int warning, const char *file, int line, int col,
                   const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* The same for an error at node n of file (at line and column dflt when n
 * is NULL): what the compilers report a definition's mistakes with. */
void smc_diags_at(smc_diags_t *d, const char *file, int code, const smc_yaml_node_t *n, int dflt,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
