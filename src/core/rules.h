/*
 * Rule trees of the machine language (language.md, Rules): compiled once from
 * the YAML node tree, evaluated many times against JSON data.
 *
 * Two contexts: a *block* maps field names (dotted paths) to field rules and
 * is evaluated against an object (a mapping = AND, a list = OR); a *field
 * rule* is evaluated against one value (type, required, regex, enum, ...).
 * all/any/not/expr/$ref/$vars/message work in both.
 *
 * Every rule node, regex, expression and template belongs to the smc_rules_t
 * arena that compiled it; definitions ($ref) are compiled once per context
 * and shared.
 */
#ifndef SMC_CORE_RULES_H
#define SMC_CORE_RULES_H

#include <jansson.h>

#include "core/expr.h"
#include "core/yaml.h"
#include "smc/machine.h"

typedef struct smc_rule smc_rule_t;
typedef struct smc_rules smc_rules_t;

/* Named expressions ($vars), evaluated in order; later ones see earlier ones. */
typedef struct smc_vars {
  size_t n;
  char **names;
  smc_expr_t **exprs; /* NULL where the value is a literal */
  json_t **literals;  /* the literal, where exprs[i] is NULL */
} smc_vars_t;

/* Compiler/arena. definitions is the `definitions` mapping (may be NULL).
 * Diagnostics go to diags (required) with file. */
smc_rules_t *smc_rules_new(const smc_yaml_node_t *definitions, const char *file,
                           smc_diags_t *diags);
void smc_rules_free(smc_rules_t *rs);

/* Compile a block / a field rule. Returns the rule, or NULL for an empty
 * block or after errors (which are in diags). */
smc_rule_t *smc_rules_block(smc_rules_t *rs, const smc_yaml_node_t *n);
smc_rule_t *smc_rules_field(smc_rules_t *rs, const smc_yaml_node_t *n);
/* Compile a $vars mapping into v (owned by the arena). 0 or an error code. */
int smc_rules_vars(smc_rules_t *rs, const smc_yaml_node_t *n, smc_vars_t *v);
/* Compile an expression / template at node n, reporting bad_expression. */
smc_expr_t *smc_rules_expr(smc_rules_t *rs, const smc_yaml_node_t *n);
smc_template_t *smc_rules_template(smc_rules_t *rs, const smc_yaml_node_t *n);
/* Compile the definitions no rule referred to, so their errors are reported
 * too. Call after everything else was compiled. */
void smc_rules_finish(smc_rules_t *rs);

/* Top-level field names a block names (first path segments, also through
 * $ref and all), for `additional: false`. Returns a malloc'd NULL-terminated
 * array of names owned by the rules (free only the array), or NULL. */
const char **smc_rule_top_names(const smc_rule_t *r);

/* The entry of the NULL-terminated list closest to word (at most two edits,
 * ignoring case), for "did you mean" hints; NULL when none is that close. */
const char *smc_rules_suggest(const char *word, const char *const *list);

/* Evaluation state, one per validation. */
typedef struct smc_rule_eval {
  smc_eval_ctx_t *ctx;
  smc_error_t *err;  /* the failure, filled once */
  uint64_t progress; /* checks passed so far (picks the furthest OR branch) */
  char path[256];    /* data path of the value under test */
  size_t plen;
  int custom; /* err->message is a rule's custom message */
  int quiet;  /* probing: a failure sets err->code only (no text, no path) */
  /* the string (a node of the data under test) that regex last matched */
  const smc_regex_t *matched_re;
  const json_t *matched;
} smc_rule_eval_t;

/* Evaluate rule r against value (NULL = absent) whose path is in st->path.
 * 0 = pass; SMC_EVALIDATION_FAILED / SMC_ELIMIT_EXCEEDED / ... with st->err
 * filled. */
int smc_rule_eval(const smc_rule_t *r, const json_t *value, smc_rule_eval_t *st);

/* Evaluate vars on top of base (NULL = {}): a new object in *out. */
int smc_vars_eval(const smc_vars_t *v, smc_eval_ctx_t *ctx, const json_t *base, json_t **out,
                  smc_error_t *err);

/* Path helpers for the evaluator and the validator. */
size_t smc_rule_path_push(smc_rule_eval_t *st, const char *seg);
size_t smc_rule_path_push_index(smc_rule_eval_t *st, size_t i);
void smc_rule_path_pop(smc_rule_eval_t *st, size_t len);
void smc_rule_path_set(smc_rule_eval_t *st, const char *root);

/* Fail st with code and a formatted message at the current path. */
int smc_rule_fail(smc_rule_eval_t *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
