/*
 * Rule trees' private parts (rules.h is the interface): the compiled rule
 * that rules_compile.c builds from YAML and rules_eval.c walks against a
 * JSON value.
 */
#ifndef SMC_CORE_RULES_INT_H
#define SMC_CORE_RULES_INT_H

#include "core/rules.h"

typedef enum { RK_AND, RK_OR, RK_NOT, RK_FIELD, RK_EXPR, RK_CHECKS, RK_REF } rkind_t;

enum { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_COUNT };

enum {
  T_STRING = 1,
  T_NUMBER = 2,
  T_INTEGER = 4,
  T_BOOLEAN = 8,
  T_OBJECT = 16,
  T_ARRAY = 32,
  T_NULL = 64
};
/* The names of the T_ bits, lowest first (rules_eval.c). */
extern const char *const smc_rules_type_names[];

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

#endif
