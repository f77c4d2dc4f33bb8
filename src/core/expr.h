/*
 * The expression language of machine definitions (language.md, Expressions)
 * and ${...} templates, plus the PCRE2 wrapper both use.
 *
 * Compile once (at machine compile time), evaluate many times. Evaluation is
 * deterministic and bounded: every node visited costs a step from
 * ctx->steps_left; running out, or a regex hitting its match or depth limit,
 * fails with SMC_ELIMIT_EXCEEDED.
 *
 * Semantics in brief (details in src/core/expr_*.c and tests/unit/test_expr.c):
 * - a missing member, an index out of range, or a member of a non-object is
 *   null; an array index must be an integer, an object key a string;
 * - integer arithmetic stays integer (7 / 2 == 3, truncating; % follows C);
 *   overflow, / 0 and % 0 are errors; mixing in a decimal gives a decimal;
 * - `+` adds numbers, joins the string forms when either side is a string
 *   (string form = the string itself, else canonical JSON: 'n=' + null is
 *   "n=null"), and joins two arrays; concat() likewise (all arrays: array);
 * - == / != never fail (different types are unequal, 1 == 1.0); < <= > >=
 *   need two numbers or two strings (bytewise); && || ?: ! need booleans;
 * - len/substr count Unicode code points; lower/upper/trim are ASCII-only;
 *   sha256 hashes a string's bytes (other values: their canonical JSON);
 *   int() parses [+-]digits or truncates a number; keys() sorts bytewise;
 * - regexes are PCRE2 in UTF mode (\d, \w are ASCII); a literal pattern in
 *   matches() compiles with the expression (a bad one is SMC_EBAD_REGEX),
 *   a computed one at each evaluation (bad: SMC_EVALIDATION_FAILED);
 * - costs: 1 step per node, plus 1 per 64 bytes of strings built or
 *   scanned, per element of arrays built, compared or searched (1 per 8);
 *   built strings are capped at SMC_EXPR_MAX_STRING.
 * Errors carry err->column: the 1-based byte offset of the failing token.
 */
#ifndef SMC_CORE_EXPR_H
#define SMC_CORE_EXPR_H

#include <jansson.h>
#include <stdint.h>

#include "smc/error.h"

/* ---- regex ---- */
typedef struct smc_regex smc_regex_t;

/* Limits used when a caller passes 0 for match_limit / depth_limit. */
#define SMC_REGEX_DEFAULT_MATCH_LIMIT 100000u
#define SMC_REGEX_DEFAULT_DEPTH_LIMIT 1000u

/* Compile pattern (PCRE2, UTF mode) with flags from "imsx" (NULL = none).
 * It always runs in PCRE2's interpreter, so the match and depth limits count
 * alike on every node (see regex.c). On failure returns SMC_EBAD_REGEX with
 * the PCRE2 message and the offset in err->column (1-based). */
int smc_regex_compile(const char *pattern, const char *flags, smc_regex_t **out, smc_error_t *err);
/* Like smc_regex_compile for pattern[0..len) (which may hold NUL bytes). */
int smc_regex_compile_ex(const char *pattern, size_t len, const char *flags, smc_regex_t **out,
                         smc_error_t *err);
/* Parse "/pattern/flags" (the !!pcre form) and compile it. */
int smc_regex_compile_slashed(const char *slashed, smc_regex_t **out, smc_error_t *err);
void smc_regex_destroy(smc_regex_t *re);
/* 1 match, 0 no match, SMC_ELIMIT_EXCEEDED when a limit was hit. */
int smc_regex_match(const smc_regex_t *re, const char *subject, size_t len, uint32_t match_limit,
                    uint32_t depth_limit);
const char *smc_regex_pattern(const smc_regex_t *re);

/* ---- evaluation context ---- */
typedef struct smc_eval_ctx {
  const json_t *src;    /* current data (NULL = null) */
  const json_t *dst;    /* resulting data (NULL = null) */
  const json_t *input;  /* proposal data (NULL = null) */
  const json_t *vars;   /* object of computed $vars (NULL = {}) */
  const json_t *value;  /* the field under test, for field rules */
  const char *object;   /* meta.object */
  const char *state;    /* meta.state (current state, NULL before creation) */
  const char *proposer; /* meta.proposer */
  int64_t version;      /* meta.version */
  int64_t time;         /* meta.time (partition clock, ms) */
  uint64_t steps_left;  /* decremented by evaluation */
  uint32_t regex_match_limit;
  uint32_t regex_depth_limit;
} smc_eval_ctx_t;

/* ---- expressions ---- */
typedef struct smc_expr smc_expr_t;

/* Hard bounds that keep hostile input cheap to reject. */
#define SMC_EXPR_MAX_SOURCE 4096      /* bytes of one expression */
#define SMC_TEMPLATE_MAX_SOURCE 16384 /* bytes of one template */
#define SMC_EXPR_MAX_NESTING 64       /* nested (), [], calls, unary ops */
#define SMC_EXPR_MAX_HEIGHT 128       /* depth of the syntax tree */
#define SMC_EXPR_MAX_STRING (1 << 20) /* bytes of a string built at run time */

/* Parse src. On error returns SMC_EBAD_EXPRESSION, err->column = 1-based
 * offset in src. Literal regexes in matches() are compiled here. */
int smc_expr_compile(const char *src, smc_expr_t **out, smc_error_t *err);
void smc_expr_destroy(smc_expr_t *e);
/* Evaluate into *out (new reference). Type errors (e.g. 'a' - 1) fail with
 * SMC_EVALIDATION_FAILED and a message; budgets with SMC_ELIMIT_EXCEEDED. */
int smc_expr_eval(const smc_expr_t *e, smc_eval_ctx_t *ctx, json_t **out, smc_error_t *err);
/* Evaluate and require a boolean result (SMC_EVALIDATION_FAILED otherwise). */
int smc_expr_eval_bool(const smc_expr_t *e, smc_eval_ctx_t *ctx, int *result, smc_error_t *err);
/* The source text the expression was compiled from (for diagnostics). */
const char *smc_expr_source(const smc_expr_t *e);

/* ---- templates: 'text ${expr} text' ---- */
typedef struct smc_template smc_template_t;

/* Parse a template. A string without "${" is a constant. A bare name inside
 * ${...} that is not a known root (src, dst, input, vars, value, meta) means
 * vars.NAME. "$$" is a literal "$" (so "$${" is a literal "${"); any other
 * "$" is literal text. Errors: SMC_EBAD_EXPRESSION / SMC_EBAD_REGEX with
 * err->column = 1-based byte offset in the template. */
int smc_template_compile(const char *src, smc_template_t **out, smc_error_t *err);
void smc_template_destroy(smc_template_t *t);
/* Expand. A template that is exactly one ${expr} yields that value with its
 * type (so eq: '${input.count}' compares numbers); otherwise the parts are
 * stringified and concatenated into a JSON string. */
int smc_template_eval(const smc_template_t *t, smc_eval_ctx_t *ctx, json_t **out, smc_error_t *err);
int smc_template_is_constant(const smc_template_t *t);
/* The template text as compiled. */
const char *smc_template_source(const smc_template_t *t);

/* Deep equality used by eq/ne/==/!= and `in`: numbers compare by value
 * (1 == 1.0), objects and arrays structurally. */
int smc_json_equal(const json_t *a, const json_t *b);

#endif
