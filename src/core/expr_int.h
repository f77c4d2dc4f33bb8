/*
 * The expression language's private parts (expr.h is the interface): the
 * syntax tree the parser builds and the evaluator walks, the lexer's
 * tokens, the evaluator's values, and what each file lends the others.
 * The language lives in five files, split by meaning:
 *   expr_lex.c       tokens: numbers, strings with their escapes, UTF-8;
 *   expr_parse.c     recursive descent to the tree, smc_expr_compile;
 *   expr_eval.c      values, paths, operators, smc_expr_eval;
 *   expr_func.c      the built-in functions (len, substr, matches, ...);
 *   expr_template.c  ${...} templates.
 */
#ifndef SMC_CORE_EXPR_INT_H
#define SMC_CORE_EXPR_INT_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "core/expr.h"

/* ---- the syntax tree ---- */

typedef enum {
  N_LIT,    /* lit */
  N_LIST,   /* kids: elements */
  N_ROOT,   /* op: root_t */
  N_MEMBER, /* kids[0] . name */
  N_INDEX,  /* kids[0] [ kids[1] ] */
  N_UNARY,  /* op: OP_NOT / OP_NEG, kids[0] */
  N_BINARY, /* op, kids[0], kids[1] */
  N_AND,
  N_OR,
  N_COND, /* kids[0] ? kids[1] : kids[2] */
  N_CALL  /* op: fn_t, kids: arguments */
} kind_t;

typedef enum {
  R_SRC,
  R_DST,
  R_INPUT,
  R_VARS,
  R_VALUE,
  R_META_OBJECT,
  R_META_VERSION,
  R_META_STATE,
  R_META_PROPOSER,
  R_META_TIME
} root_t;

typedef enum {
  OP_EQ,
  OP_NE,
  OP_LT,
  OP_LE,
  OP_GT,
  OP_GE,
  OP_IN,
  OP_ADD,
  OP_SUB,
  OP_MUL,
  OP_DIV,
  OP_MOD,
  OP_NOT,
  OP_NEG
} op_t;

typedef enum {
  F_LEN,
  F_SUBSTR,
  F_LOWER,
  F_UPPER,
  F_TRIM,
  F_CONCAT,
  F_CONTAINS,
  F_STARTS,
  F_ENDS,
  F_MATCHES,
  F_SHA256,
  F_HAS,
  F_INT,
  F_STRING,
  F_KEYS
} fn_t;

/* The built-in functions: name, code and arity (expr_func.c). */
typedef struct expr_function {
  const char *name;
  fn_t fn;
  int min, max; /* max < 0: variadic */
} expr_function_t;
extern const expr_function_t expr_functions[];
extern const size_t expr_nfunctions;

struct smc_expr_node {
  uint8_t kind;
  uint8_t op;
  uint16_t height;
  int col; /* 1-based offset of the node's token in the source */
  int nkids;
  struct smc_expr_node **kids;
  json_t *lit;     /* N_LIT: owned */
  char *name;      /* N_MEMBER: owned */
  size_t name_len; /* N_MEMBER */
  smc_regex_t *re; /* N_CALL matches() with a literal pattern: owned */
};
typedef struct smc_expr_node node_t;

struct smc_expr {
  node_t *root;
  char *src;
};

/* ---- the lexer's tokens ---- */

enum { TK_EOF, TK_INT, TK_REAL, TK_STR, TK_IDENT, TK_OP };

typedef struct {
  int type;
  size_t start, end; /* byte offsets in the source */
  uint64_t u;        /* TK_INT (may be 2^63, only valid after unary minus) */
  double r;          /* TK_REAL */
  json_t *str;       /* TK_STR: owned until taken */
  char op[3];        /* TK_OP */
} token_t;

typedef struct {
  const char *s;
  size_t len;
  size_t pos;
  token_t tok;
  int depth;
  int rc;
  smc_error_t *err;
} parser_t;

/* ---- the evaluator's values ---- */

typedef enum { T_NULL, T_BOOL, T_INT, T_REAL, T_STR, T_ARR, T_OBJ } vtype_t;

/* An evaluation value. Scalars are inline. T_STR is s[0..n), T_ARR/T_OBJ is
 * j. j, when set, is the JSON node this value is (borrowed unless it is also
 * ref). buf (malloc'd) and ref (a held reference) are what the value owns
 * and must release; s may point into buf, into ref's data or into borrowed
 * data of the context or the AST. */
typedef struct {
  vtype_t t;
  union {
    int b;
    int64_t i;
    double r;
  };
  const char *s;
  size_t n;
  json_t *j;
  char *buf;
  json_t *ref;
} val_t;

/* Release what v owns. v must not be used again before it is set anew. */
static inline void val_release(val_t *v) {
  if (v->buf)
    free(v->buf);
  if (v->ref)
    json_decref(v->ref);
}

typedef struct {
  smc_eval_ctx_t *ctx;
  smc_error_t *err;
} ev_t;

static inline int expr_is_digit(int c) { return c >= '0' && c <= '9'; }

/* Cost of producing or scanning n bytes. */
static inline uint64_t expr_bytes_cost(size_t n) { return 1 + n / 64; }

/* expr_lex.c: expr_lex reads the next token into p->tok; expr_perr records
 * a compile error at a byte offset (the first one wins); the tok_ tests look
 * at the current token; expr_utf8_check gives the offset of the first
 * invalid UTF-8 byte (n when none). */
void expr_lex(parser_t *p);
/* Record code and the message of fmt at a 1-based column in err, unless
 * err already holds an error (the first one wins). */
void expr_verror(smc_error_t *err, int code, int column, const char *fmt, va_list ap);
void expr_perr(parser_t *p, size_t offset, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int expr_tok_ident(const parser_t *p, const char *name);
int expr_tok_is(const parser_t *p, const char *op);
void expr_unexpected(parser_t *p, const char *wanted);
size_t expr_utf8_check(const char *s, size_t n);

/* expr_parse.c: expr_parse_top parses one expression of s from start (up
 * to a closing brace when stop_brace: templates), the tree or NULL with
 * *rc and err set; expr_node_free frees a tree. */
void expr_node_free(node_t *n);
/* The source of an expression or a template (what names it) checked: not
 * NULL, at most max bytes, valid UTF-8 (errors carry the column). 0 with
 * *len its length, or the error. */
int expr_check_source(const char *src, const char *what, int max, size_t *len, smc_error_t *err);
node_t *expr_parse_top(const char *s, size_t len, size_t start, int stop_brace, size_t *end,
                       smc_error_t *err, int *rc);

/* expr_eval.c: expr_eval evaluates a node into out (which the caller
 * releases); expr_ev_fail records a runtime error at a node (the first one
 * wins) and returns code; expr_charge takes steps from the budget; the
 * val_ setters, string forms, joins and membership the functions share. */
int expr_charge(ev_t *ev, const node_t *n, uint64_t units);
/* The arguments of an evaluation checked (e: the expression or template,
 * what names it): *out = NULL first; 0 or SMC_EINVALID_ARGUMENT. */
int expr_check_args(const void *e, const char *what, smc_eval_ctx_t *ctx, json_t **out,
                    smc_error_t *err);
int expr_concat_arrays(ev_t *ev, const node_t *n, const val_t *vals, int count, val_t *out);
int expr_concat_strings(ev_t *ev, const node_t *n, const val_t *vals, int count, val_t *out);
int expr_contains(ev_t *ev, const node_t *n, const val_t *container, const val_t *x, int *res);
int expr_ev_fail(ev_t *ev, const node_t *n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int expr_eval(ev_t *ev, const node_t *n, val_t *out);
int expr_eval_path(ev_t *ev, const node_t *n, val_t *out, int *found);
int expr_result_json(const val_t *v, json_t **out, smc_error_t *err);
int expr_string_form(ev_t *ev, const node_t *n, const val_t *v, const char **s, size_t *len,
                     char **tmp);
const char *expr_type_name(const val_t *v);
void expr_val_bool(val_t *v, int b);
void expr_val_buf(val_t *v, char *buf, size_t n);
void expr_val_int(val_t *v, int64_t i);
void expr_val_json_take(val_t *v, json_t *j);

/* expr_func.c: a call node evaluated (arguments, then the function);
 * expr_need_bool fails unless v is a boolean. */
int expr_eval_call(ev_t *ev, const node_t *n, val_t *out);
int expr_need_bool(ev_t *ev, const node_t *n, const val_t *v, const char *what);

#endif
