/*
 * The expression language: lexer, recursive-descent parser and a
 * tree-walking evaluator (language.md, "Expressions").
 *
 * A compiled smc_expr_t is immutable and may be evaluated from many threads
 * at once. Evaluation works on val_t, a small tagged value that borrows
 * strings, arrays and objects from the context and from literals, so the
 * common cases (paths, comparisons, arithmetic, `in`) allocate nothing.
 * Only values that are built (concatenations, lists, keys(), lower(), ...)
 * own memory, and a JSON node is created only when smc_expr_eval hands the
 * result out.
 */
#include "core/expr.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/util.h"

/* ------------------------------------------------------------------ */
/* AST                                                                  */
/* ------------------------------------------------------------------ */

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

static const struct {
  const char *name;
  fn_t fn;
  int min, max; /* max < 0: variadic */
} functions[] = {
    {"len", F_LEN, 1, 1},           {"substr", F_SUBSTR, 2, 3},     {"lower", F_LOWER, 1, 1},
    {"upper", F_UPPER, 1, 1},       {"trim", F_TRIM, 1, 1},         {"concat", F_CONCAT, 1, -1},
    {"contains", F_CONTAINS, 2, 2}, {"startsWith", F_STARTS, 2, 2}, {"endsWith", F_ENDS, 2, 2},
    {"matches", F_MATCHES, 2, 2},   {"sha256", F_SHA256, 1, 1},     {"has", F_HAS, 1, 1},
    {"int", F_INT, 1, 1},           {"string", F_STRING, 1, 1},     {"keys", F_KEYS, 1, 1},
};

static const char *const op_names[] = {"==", "!=", "<", "<=", ">", ">=", "in",
                                       "+",  "-",  "*", "/",  "%", "!",  "-"};

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

static void node_free(node_t *n) {
  if (!n)
    return;
  for (int i = 0; i < n->nkids; i++)
    node_free(n->kids[i]);
  free(n->kids);
  json_decref(n->lit);
  free(n->name);
  smc_regex_destroy(n->re);
  free(n);
}

/* ------------------------------------------------------------------ */
/* Lexer                                                                */
/* ------------------------------------------------------------------ */

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

static void perr(parser_t *p, size_t offset, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record a compile error at byte offset (first error wins). */
static void perr(parser_t *p, size_t offset, int code, const char *fmt, ...) {
  if (p->rc)
    return;
  p->rc = code;
  if (p->err && p->err->code == 0) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    smc_error_set(p->err, code, NULL, "%s", msg);
    p->err->column = (int)offset + 1;
  }
}

static int is_ident_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static int is_ident(int c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* Length of the valid UTF-8 sequence at s (max n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80)
    return 1;
  size_t len;
  unsigned min;
  uint32_t cp;
  if ((c & 0xe0) == 0xc0) {
    len = 2, min = 0x80, cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3, min = 0x800, cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;
  }
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

/* Offset of the first invalid UTF-8 byte, or n when all is valid. */
static size_t utf8_check(const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t l = utf8_seq((const unsigned char *)s + i, n - i);
    if (!l)
      return i;
    i += l;
  }
  return n;
}

static size_t utf8_put(char *out, uint32_t cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  out[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

static int hex4(const char *s, size_t n, uint32_t *out) {
  uint32_t v = 0;
  if (n < 4)
    return -1;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (uint32_t)(c - 'A' + 10);
    else
      return -1;
  }
  *out = v;
  return 0;
}

/* Lex a quoted string starting at p->pos (the quote). Escapes: \\ \' \" \/
 * \n \t \r \b \f \uXXXX (surrogate pairs combined). */
static void lex_string(parser_t *p) {
  const char *s = p->s;
  char q = s[p->pos];
  size_t i = p->pos + 1;
  char *buf = malloc(p->len - p->pos + 1);
  size_t n = 0;
  if (!buf) {
    perr(p, p->pos, SMC_ENOMEM, "out of memory");
    return;
  }
  for (;;) {
    if (i >= p->len) {
      perr(p, p->pos, SMC_EBAD_EXPRESSION, "unterminated string");
      goto fail;
    }
    char c = s[i];
    if (c == q) {
      i++;
      break;
    }
    if (c != '\\') {
      buf[n++] = c;
      i++;
      continue;
    }
    if (i + 1 >= p->len) {
      perr(p, p->pos, SMC_EBAD_EXPRESSION, "unterminated string");
      goto fail;
    }
    char e = s[i + 1];
    size_t esc = i;
    i += 2;
    switch (e) {
    case '\\':
    case '\'':
    case '"':
    case '/':
      buf[n++] = e;
      break;
    case 'n':
      buf[n++] = '\n';
      break;
    case 't':
      buf[n++] = '\t';
      break;
    case 'r':
      buf[n++] = '\r';
      break;
    case 'b':
      buf[n++] = '\b';
      break;
    case 'f':
      buf[n++] = '\f';
      break;
    case 'u': {
      uint32_t cp, lo;
      if (hex4(s + i, p->len - i, &cp)) {
        perr(p, esc, SMC_EBAD_EXPRESSION, "\\u needs four hex digits");
        goto fail;
      }
      i += 4;
      if (cp >= 0xdc00 && cp <= 0xdfff) {
        perr(p, esc, SMC_EBAD_EXPRESSION, "lone low surrogate in \\u escape");
        goto fail;
      }
      if (cp >= 0xd800 && cp <= 0xdbff) {
        if (i + 6 > p->len || s[i] != '\\' || s[i + 1] != 'u' ||
            hex4(s + i + 2, p->len - i - 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
          perr(p, esc, SMC_EBAD_EXPRESSION, "high surrogate without a low surrogate");
          goto fail;
        }
        i += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      }
      /* 6 source bytes (or 12) always cover the <= 4 output bytes */
      n += utf8_put(buf + n, cp);
      break;
    }
    default:
      perr(p, esc, SMC_EBAD_EXPRESSION, "unknown escape '\\%c'", (e >= 0x20 && e < 0x7f) ? e : '?');
      goto fail;
    }
  }
  p->tok.str = json_stringn(buf, n);
  free(buf);
  if (!p->tok.str) {
    perr(p, p->pos, SMC_EBAD_EXPRESSION, "string literal is not valid UTF-8");
    return;
  }
  p->tok.type = TK_STR;
  p->pos = i;
  return;
fail:
  free(buf);
}

static void lex_number(parser_t *p) {
  const char *s = p->s;
  size_t i = p->pos;
  uint64_t u = 0;
  int overflow = 0;
  while (i < p->len && is_digit(s[i])) {
    unsigned d = (unsigned)(s[i] - '0');
    if (u > (UINT64_MAX - d) / 10)
      overflow = 1;
    else
      u = u * 10 + d;
    i++;
  }
  int real = 0;
  if (i + 1 < p->len && s[i] == '.' && is_digit(s[i + 1])) {
    real = 1;
    i++;
    while (i < p->len && is_digit(s[i]))
      i++;
  }
  if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < p->len && (s[j] == '+' || s[j] == '-'))
      j++;
    if (j < p->len && is_digit(s[j])) {
      real = 1;
      i = j;
      while (i < p->len && is_digit(s[i]))
        i++;
    }
  }
  if (i < p->len && is_ident(s[i])) {
    perr(p, i, SMC_EBAD_EXPRESSION, "bad number");
    return;
  }
  if (real) {
    char tmp[64];
    size_t n = i - p->pos;
    if (n >= sizeof(tmp)) {
      perr(p, p->pos, SMC_EBAD_EXPRESSION, "number literal too long");
      return;
    }
    memcpy(tmp, s + p->pos, n);
    tmp[n] = '\0';
    double r = strtod(tmp, NULL);
    if (!isfinite(r)) {
      perr(p, p->pos, SMC_EBAD_EXPRESSION, "number literal out of range");
      return;
    }
    p->tok.type = TK_REAL;
    p->tok.r = r;
  } else {
    if (overflow || u > (uint64_t)INT64_MAX + 1) {
      perr(p, p->pos, SMC_EBAD_EXPRESSION, "integer literal out of range");
      return;
    }
    p->tok.type = TK_INT;
    p->tok.u = u;
  }
  p->pos = i;
}

/* Advance to the next token; on a lexical error p->rc is set and the token
 * is TK_EOF. */
static void lex(parser_t *p) {
  json_decref(p->tok.str);
  memset(&p->tok, 0, sizeof(p->tok));
  if (p->rc)
    return;
  const char *s = p->s;
  while (p->pos < p->len &&
         (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r'))
    p->pos++;
  p->tok.start = p->pos;
  if (p->pos >= p->len) {
    p->tok.type = TK_EOF;
    p->tok.end = p->pos;
    return;
  }
  char c = s[p->pos];
  char d = p->pos + 1 < p->len ? s[p->pos + 1] : '\0';
  if (is_digit(c)) {
    lex_number(p);
  } else if (c == '\'' || c == '"') {
    lex_string(p);
  } else if (is_ident_start(c)) {
    while (p->pos < p->len && is_ident(s[p->pos]))
      p->pos++;
    p->tok.type = TK_IDENT;
  } else if ((c == '=' && d == '=') || (c == '!' && d == '=') || (c == '<' && d == '=') ||
             (c == '>' && d == '=') || (c == '&' && d == '&') || (c == '|' && d == '|')) {
    p->tok.type = TK_OP;
    p->tok.op[0] = c, p->tok.op[1] = d;
    p->pos += 2;
  } else if (strchr("()[],.?:+-*/%!<>}", c)) {
    p->tok.type = TK_OP;
    p->tok.op[0] = c;
    p->pos++;
  } else if (c == '=') {
    perr(p, p->pos, SMC_EBAD_EXPRESSION, "unexpected '=' (use == to compare)");
  } else if (c == '&' || c == '|') {
    perr(p, p->pos, SMC_EBAD_EXPRESSION, "unexpected '%c' (use %c%c)", c, c, c);
  } else if (c > 0x20 && c < 0x7f) {
    perr(p, p->pos, SMC_EBAD_EXPRESSION, "unexpected character '%c'", c);
  } else {
    perr(p, p->pos, SMC_EBAD_EXPRESSION, "unexpected character (byte 0x%02x)", (unsigned char)c);
  }
  p->tok.end = p->pos;
  if (p->rc) {
    json_decref(p->tok.str);
    memset(&p->tok, 0, sizeof(p->tok));
    p->tok.start = p->tok.end = p->pos;
  }
}

static int tok_is(const parser_t *p, const char *op) {
  return p->tok.type == TK_OP && strcmp(p->tok.op, op) == 0;
}

static int tok_ident(const parser_t *p, const char *name) {
  size_t n = strlen(name);
  return p->tok.type == TK_IDENT && p->tok.end - p->tok.start == n &&
         memcmp(p->s + p->tok.start, name, n) == 0;
}

/* Printable description of the current token for messages. */
static const char *tok_desc(const parser_t *p, char *buf, size_t size) {
  if (p->tok.type == TK_EOF)
    return "end of expression";
  size_t n = p->tok.end - p->tok.start;
  if (n > 24)
    n = 24;
  snprintf(buf, size, "'%.*s'", (int)n, p->s + p->tok.start);
  return buf;
}

static void unexpected(parser_t *p, const char *wanted) {
  char b[40];
  perr(p, p->tok.start, SMC_EBAD_EXPRESSION, "expected %s, found %s", wanted,
       tok_desc(p, b, sizeof(b)));
}

/* ------------------------------------------------------------------ */
/* Parser                                                               */
/* ------------------------------------------------------------------ */

static node_t *node_new(parser_t *p, kind_t kind, int op, size_t offset) {
  node_t *n = calloc(1, sizeof(*n));
  if (!n) {
    perr(p, offset, SMC_ENOMEM, "out of memory");
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
    node_free(kid);
    perr(p, 0, SMC_ENOMEM, "out of memory");
    return -1;
  }
  n->kids = k;
  n->kids[n->nkids++] = kid;
  if (kid->height + 1 > n->height)
    n->height = (uint16_t)(kid->height + 1);
  if (n->height > SMC_EXPR_MAX_HEIGHT) {
    perr(p, (size_t)n->col - 1, SMC_EBAD_EXPRESSION,
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
    node_free(kids[i]);
  node_free(n);
  return NULL;
}

static node_t *parse_cond(parser_t *p);

static int enter(parser_t *p) {
  if (++p->depth > SMC_EXPR_MAX_NESTING) {
    perr(p, p->tok.start, SMC_EBAD_EXPRESSION, "expression nested too deeply (more than %d levels)",
         SMC_EXPR_MAX_NESTING);
    return -1;
  }
  return 0;
}

static int find_function(const char *name, size_t n) {
  for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++)
    if (strlen(functions[i].name) == n && memcmp(functions[i].name, name, n) == 0)
      return (int)i;
  return -1;
}

static int is_path(const node_t *n) {
  while (n->kind == N_MEMBER || n->kind == N_INDEX)
    n = n->kids[0];
  return n->kind == N_ROOT;
}

/* After '(' of a call: arguments, arity check, literal regex compile. */
static node_t *parse_call(parser_t *p, size_t name_off, size_t name_len) {
  int fi = find_function(p->s + name_off, name_len);
  if (fi < 0) {
    perr(p, name_off, SMC_EBAD_EXPRESSION, "unknown function '%.*s'", (int)name_len,
         p->s + name_off);
    return NULL;
  }
  node_t *n = node_new(p, N_CALL, functions[fi].fn, name_off);
  if (!n)
    return NULL;
  lex(p); /* '(' */
  if (!tok_is(p, ")")) {
    for (;;) {
      node_t *arg = parse_cond(p);
      if (!arg || node_add(p, n, arg))
        goto fail;
      if (tok_is(p, ",")) {
        lex(p);
        continue;
      }
      if (tok_is(p, ")"))
        break;
      unexpected(p, "',' or ')'");
      goto fail;
    }
  }
  if (p->rc)
    goto fail;
  lex(p); /* ')' */
  if (n->nkids < functions[fi].min || (functions[fi].max >= 0 && n->nkids > functions[fi].max)) {
    if (functions[fi].max == functions[fi].min)
      perr(p, name_off, SMC_EBAD_EXPRESSION, "%s() takes %d argument%s, got %d", functions[fi].name,
           functions[fi].min, functions[fi].min == 1 ? "" : "s", n->nkids);
    else if (functions[fi].max < 0)
      perr(p, name_off, SMC_EBAD_EXPRESSION, "%s() takes at least %d argument%s, got %d",
           functions[fi].name, functions[fi].min, functions[fi].min == 1 ? "" : "s", n->nkids);
    else
      perr(p, name_off, SMC_EBAD_EXPRESSION, "%s() takes %d to %d arguments, got %d",
           functions[fi].name, functions[fi].min, functions[fi].max, n->nkids);
    goto fail;
  }
  if (n->op == F_HAS && !is_path(n->kids[0])) {
    perr(p, (size_t)n->kids[0]->col - 1, SMC_EBAD_EXPRESSION,
         "has() needs a path such as src.field or input.items[0]");
    goto fail;
  }
  if (n->op == F_MATCHES && n->kids[1]->kind == N_LIT) {
    const json_t *pat = n->kids[1]->lit;
    smc_error_t rerr;
    smc_error_clear(&rerr);
    if (!json_is_string(pat)) {
      perr(p, (size_t)n->kids[1]->col - 1, SMC_EBAD_EXPRESSION, "matches() needs a string pattern");
      goto fail;
    }
    if (smc_regex_compile_ex(json_string_value(pat), json_string_length(pat), NULL, &n->re,
                             &rerr)) {
      /* the column is the pattern literal's; the message has the offset */
      perr(p, (size_t)n->kids[1]->col - 1, rerr.code == SMC_ENOMEM ? SMC_ENOMEM : SMC_EBAD_REGEX,
           "%s", rerr.message);
      goto fail;
    }
  }
  return n;
fail:
  node_free(n);
  return NULL;
}

static node_t *parse_list(parser_t *p) {
  node_t *n = node_new(p, N_LIST, 0, p->tok.start);
  if (!n)
    return NULL;
  lex(p); /* '[' */
  if (!tok_is(p, "]")) {
    for (;;) {
      node_t *el = parse_cond(p);
      if (!el || node_add(p, n, el))
        goto fail;
      if (tok_is(p, ",")) {
        lex(p);
        continue;
      }
      if (tok_is(p, "]"))
        break;
      unexpected(p, "',' or ']'");
      goto fail;
    }
  }
  if (p->rc)
    goto fail;
  lex(p); /* ']' */
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
    node_free(n->kids[i]);
  free(n->kids);
  n->kids = NULL;
  n->nkids = 0;
  n->kind = N_LIT;
  n->lit = arr;
  return n;
nomem:
  perr(p, (size_t)n->col - 1, SMC_ENOMEM, "out of memory");
fail:
  node_free(n);
  return NULL;
}

static node_t *lit_node(parser_t *p, json_t *v, size_t offset) {
  if (!v) {
    perr(p, offset, SMC_ENOMEM, "out of memory");
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
    node_free(n);
    perr(p, offset, SMC_ENOMEM, "out of memory");
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
  lex(p);
  if (!tok_is(p, ".")) {
    perr(p, off, SMC_EBAD_EXPRESSION,
         "meta needs a member: meta.object, meta.version, meta.state, meta.proposer or "
         "meta.time");
    return NULL;
  }
  lex(p);
  for (size_t i = 0; i < sizeof(meta_members) / sizeof(meta_members[0]); i++) {
    if (tok_ident(p, meta_members[i].name)) {
      lex(p);
      return node_new(p, N_ROOT, meta_members[i].root, off);
    }
  }
  if (p->tok.type == TK_IDENT)
    perr(p, p->tok.start, SMC_EBAD_EXPRESSION,
         "unknown meta member '%.*s' (known: object, version, state, proposer, time)",
         (int)(p->tok.end - p->tok.start), p->s + p->tok.start);
  else
    unexpected(p, "a meta member name");
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
  if (tok_ident(p, "true") || tok_ident(p, "false") || tok_ident(p, "null")) {
    json_t *v = name[0] == 't' ? json_true() : name[0] == 'f' ? json_false() : json_null();
    lex(p);
    return lit_node(p, v, off);
  }
  if (tok_ident(p, "in")) {
    unexpected(p, "an expression");
    return NULL;
  }
  lex(p);
  if (tok_is(p, "("))
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
      perr(p, off, SMC_EBAD_EXPRESSION, "integer literal out of range");
      return NULL;
    }
    {
      json_t *v = json_integer((json_int_t)p->tok.u);
      lex(p);
      return lit_node(p, v, off);
    }
  case TK_REAL: {
    json_t *v = json_real(p->tok.r);
    lex(p);
    return lit_node(p, v, off);
  }
  case TK_STR: {
    json_t *v = p->tok.str;
    p->tok.str = NULL;
    lex(p);
    return lit_node(p, v, off);
  }
  case TK_IDENT:
    return parse_ident(p);
  case TK_OP:
    if (tok_is(p, "(")) {
      lex(p);
      node_t *n = parse_cond(p);
      if (!n)
        return NULL;
      if (!tok_is(p, ")")) {
        unexpected(p, "')'");
        node_free(n);
        return NULL;
      }
      lex(p);
      return n;
    }
    if (tok_is(p, "["))
      return parse_list(p);
    break;
  default:
    break;
  }
  unexpected(p, "an expression");
  return NULL;
}

static node_t *parse_postfix(parser_t *p) {
  node_t *n = parse_primary(p);
  while (n && !p->rc) {
    size_t off = p->tok.start;
    if (tok_is(p, ".")) {
      lex(p);
      if (p->tok.type != TK_IDENT) {
        unexpected(p, "a member name after '.'");
        node_free(n);
        return NULL;
      }
      size_t noff = p->tok.start, nlen = p->tok.end - p->tok.start;
      lex(p);
      n = member_node(p, n, p->s + noff, nlen, off);
    } else if (tok_is(p, "[")) {
      lex(p);
      node_t *idx = parse_cond(p);
      if (!idx) {
        node_free(n);
        return NULL;
      }
      if (!tok_is(p, "]")) {
        unexpected(p, "']'");
        node_free(n);
        node_free(idx);
        return NULL;
      }
      lex(p);
      n = node_make(p, N_INDEX, 0, off, n, idx, NULL);
    } else {
      break;
    }
  }
  if (n && p->rc) {
    node_free(n);
    n = NULL;
  }
  return n;
}

static node_t *parse_unary(parser_t *p) {
  size_t off = p->tok.start;
  if (!tok_is(p, "!") && !tok_is(p, "-"))
    return parse_postfix(p);
  int neg = tok_is(p, "-");
  if (enter(p))
    return NULL;
  lex(p);
  node_t *n;
  /* -9223372036854775808 is a literal, not the negation of an overflow */
  if (neg && p->tok.type == TK_INT && p->tok.u == (uint64_t)INT64_MAX + 1) {
    size_t ioff = p->tok.start;
    lex(p);
    n = lit_node(p, json_integer(INT64_MIN), ioff);
  } else {
    node_t *operand = parse_unary(p);
    n = operand ? node_make(p, N_UNARY, neg ? OP_NEG : OP_NOT, off, operand, NULL, NULL) : NULL;
  }
  p->depth--;
  return n;
}

typedef node_t *(*parse_fn)(parser_t *);

/* One left-associative binary level: operand (op operand)*. */
static node_t *parse_binary(parser_t *p, parse_fn next, const char *const *ops, const int *codes,
                            int nops, kind_t kind) {
  node_t *l = next(p);
  while (l && !p->rc) {
    int found = -1;
    for (int i = 0; i < nops; i++) {
      if (strcmp(ops[i], "in") == 0 ? tok_ident(p, "in") : tok_is(p, ops[i])) {
        found = i;
        break;
      }
    }
    if (found < 0)
      break;
    size_t off = p->tok.start;
    lex(p);
    node_t *r = next(p);
    if (!r) {
      node_free(l);
      return NULL;
    }
    l = node_make(p, kind, codes[found], off, l, r, NULL);
  }
  if (l && p->rc) {
    node_free(l);
    l = NULL;
  }
  return l;
}

static node_t *parse_mul(parser_t *p) {
  static const char *const ops[] = {"*", "/", "%"};
  static const int codes[] = {OP_MUL, OP_DIV, OP_MOD};
  return parse_binary(p, parse_unary, ops, codes, 3, N_BINARY);
}
static node_t *parse_add(parser_t *p) {
  static const char *const ops[] = {"+", "-"};
  static const int codes[] = {OP_ADD, OP_SUB};
  return parse_binary(p, parse_mul, ops, codes, 2, N_BINARY);
}
static node_t *parse_rel(parser_t *p) {
  static const char *const ops[] = {"<", "<=", ">", ">=", "in"};
  static const int codes[] = {OP_LT, OP_LE, OP_GT, OP_GE, OP_IN};
  return parse_binary(p, parse_add, ops, codes, 5, N_BINARY);
}
static node_t *parse_eq(parser_t *p) {
  static const char *const ops[] = {"==", "!="};
  static const int codes[] = {OP_EQ, OP_NE};
  return parse_binary(p, parse_rel, ops, codes, 2, N_BINARY);
}
static node_t *parse_and(parser_t *p) {
  static const char *const ops[] = {"&&"};
  static const int codes[] = {0};
  return parse_binary(p, parse_eq, ops, codes, 1, N_AND);
}
static node_t *parse_or(parser_t *p) {
  static const char *const ops[] = {"||"};
  static const int codes[] = {0};
  return parse_binary(p, parse_and, ops, codes, 1, N_OR);
}

static node_t *parse_cond(parser_t *p) {
  if (enter(p))
    return NULL;
  node_t *c = parse_or(p);
  if (c && tok_is(p, "?")) {
    size_t off = p->tok.start;
    lex(p);
    node_t *a = parse_cond(p);
    node_t *b = NULL;
    if (a && !tok_is(p, ":"))
      unexpected(p, "':' of ?:");
    if (a && !p->rc) {
      lex(p);
      b = parse_cond(p);
    }
    if (!a || !b || p->rc) {
      node_free(c);
      node_free(a);
      node_free(b);
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
static node_t *parse_top(const char *s, size_t len, size_t start, int stop_brace, size_t *end,
                         smc_error_t *err, int *rc) {
  parser_t p;
  memset(&p, 0, sizeof(p));
  p.s = s;
  p.len = len;
  p.pos = start;
  p.err = err;
  lex(&p);
  node_t *n = NULL;
  if (!p.rc && p.tok.type == TK_EOF && !stop_brace)
    perr(&p, p.tok.start, SMC_EBAD_EXPRESSION, "empty expression");
  if (!p.rc)
    n = parse_cond(&p);
  if (n && !p.rc) {
    if (stop_brace && !tok_is(&p, "}"))
      unexpected(&p, "'}' closing ${");
    else if (!stop_brace && p.tok.type != TK_EOF)
      unexpected(&p, "an operator or the end");
  }
  if (p.rc) {
    node_free(n);
    n = NULL;
  } else if (end) {
    *end = p.tok.end;
  }
  json_decref(p.tok.str);
  *rc = p.rc;
  return n;
}

int smc_expr_compile(const char *src, smc_expr_t **out, smc_error_t *err) {
  *out = NULL;
  if (!src)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "expression is NULL");
  size_t len = strlen(src);
  if (len > SMC_EXPR_MAX_SOURCE) {
    int rc = smc_error_set(err, SMC_EBAD_EXPRESSION, NULL, "expression longer than %d bytes",
                           SMC_EXPR_MAX_SOURCE);
    if (err && err->code == rc)
      err->column = SMC_EXPR_MAX_SOURCE + 1;
    return rc;
  }
  size_t bad = utf8_check(src, len);
  if (bad < len) {
    int rc = smc_error_set(err, SMC_EBAD_EXPRESSION, NULL, "expression is not valid UTF-8");
    if (err && err->code == rc)
      err->column = (int)bad + 1;
    return rc;
  }
  int rc;
  node_t *root = parse_top(src, len, 0, 0, NULL, err, &rc);
  if (!root)
    return rc;
  smc_expr_t *e = calloc(1, sizeof(*e));
  if (!e || !(e->src = strdup(src))) {
    free(e);
    node_free(root);
    return smc_error_set(err, SMC_ENOMEM, NULL, NULL);
  }
  e->root = root;
  *out = e;
  return 0;
}

void smc_expr_destroy(smc_expr_t *e) {
  if (!e)
    return;
  node_free(e->root);
  free(e->src);
  free(e);
}

const char *smc_expr_source(const smc_expr_t *e) { return e ? e->src : NULL; }

/* ------------------------------------------------------------------ */
/* Values                                                               */
/* ------------------------------------------------------------------ */

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

static void val_from_json(const json_t *cj, val_t *v) {
  json_t *j = (json_t *)cj;
  memset(v, 0, sizeof(*v));
  if (!j)
    return;
  v->j = j;
  switch (json_typeof(j)) {
  case JSON_OBJECT:
    v->t = T_OBJ;
    break;
  case JSON_ARRAY:
    v->t = T_ARR;
    break;
  case JSON_STRING:
    v->t = T_STR;
    v->s = json_string_value(j);
    v->n = json_string_length(j);
    break;
  case JSON_INTEGER:
    v->t = T_INT, v->i = json_integer_value(j);
    break;
  case JSON_REAL:
    v->t = T_REAL, v->r = json_real_value(j);
    break;
  case JSON_TRUE:
    v->t = T_BOOL, v->b = 1;
    break;
  case JSON_FALSE:
    v->t = T_BOOL, v->b = 0;
    break;
  case JSON_NULL:
    v->t = T_NULL, v->j = NULL;
    break;
  }
}

static void val_bool(val_t *v, int b) {
  memset(v, 0, sizeof(*v));
  v->t = T_BOOL;
  v->b = !!b;
}
static void val_int(val_t *v, int64_t i) {
  memset(v, 0, sizeof(*v));
  v->t = T_INT;
  v->i = i;
}
static void val_real(val_t *v, double r) {
  memset(v, 0, sizeof(*v));
  v->t = T_REAL;
  v->r = r;
}
/* Take ownership of a malloc'd buffer. */
static void val_buf(val_t *v, char *buf, size_t n) {
  memset(v, 0, sizeof(*v));
  v->t = T_STR;
  v->buf = buf;
  v->s = buf;
  v->n = n;
}
/* Take ownership of a new reference. */
static void val_json_take(val_t *v, json_t *j) {
  val_from_json(j, v);
  v->ref = j;
}

static const char *type_name(const val_t *v) {
  switch (v->t) {
  case T_NULL:
    return "null";
  case T_BOOL:
    return "boolean";
  case T_INT:
    return "integer";
  case T_REAL:
    return "number";
  case T_STR:
    return "string";
  case T_ARR:
    return "array";
  case T_OBJ:
    return "object";
  }
  return "?";
}

static int is_num(const val_t *v) { return v->t == T_INT || v->t == T_REAL; }
static double num(const val_t *v) { return v->t == T_INT ? (double)v->i : v->r; }

/* New JSON reference for v (v is left untouched). NULL on allocation or
 * encoding failure. */
static json_t *val_json(const val_t *v) {
  if (v->j)
    return json_incref(v->j);
  switch (v->t) {
  case T_NULL:
    return json_null();
  case T_BOOL:
    return json_boolean(v->b);
  case T_INT:
    return json_integer(v->i);
  case T_REAL:
    return json_real(v->r);
  case T_STR:
    return json_stringn(v->s, v->n);
  case T_OBJ:
    return json_object(); /* vars when the context has none */
  default:
    return NULL; /* arrays always carry j */
  }
}

static int json_num_equal(const json_t *a, const json_t *b) {
  if (json_is_integer(a) && json_is_integer(b))
    return json_integer_value(a) == json_integer_value(b);
  return json_number_value(a) == json_number_value(b);
}

int smc_json_equal(const json_t *a, const json_t *b) {
  if (a == b)
    return 1;
  if (!a)
    return json_is_null(b);
  if (!b)
    return json_is_null(a);
  if (json_is_number(a) && json_is_number(b))
    return json_num_equal(a, b);
  if (json_typeof(a) != json_typeof(b))
    return 0;
  switch (json_typeof(a)) {
  case JSON_STRING:
    return json_string_length(a) == json_string_length(b) &&
           memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
  case JSON_ARRAY: {
    size_t n = json_array_size(a);
    if (n != json_array_size(b))
      return 0;
    for (size_t i = 0; i < n; i++)
      if (!smc_json_equal(json_array_get(a, i), json_array_get(b, i)))
        return 0;
    return 1;
  }
  case JSON_OBJECT: {
    if (json_object_size(a) != json_object_size(b))
      return 0;
    const char *k;
    json_t *va;
    void *tmp;
    json_object_foreach_safe((json_t *)a, tmp, k, va) {
      size_t kl = json_object_iter_key_len(json_object_key_to_iter(k));
      json_t *vb = json_object_getn(b, k, kl);
      if (!vb || !smc_json_equal(va, vb))
        return 0;
    }
    return 1;
  }
  default:
    return 1; /* true, false, null: same type is equal */
  }
}

static int val_equal(const val_t *a, const val_t *b) {
  if (is_num(a) && is_num(b)) {
    if (a->t == T_INT && b->t == T_INT)
      return a->i == b->i;
    return num(a) == num(b);
  }
  if (a->t != b->t)
    return 0;
  switch (a->t) {
  case T_NULL:
    return 1;
  case T_BOOL:
    return a->b == b->b;
  case T_STR:
    return a->n == b->n && (a->n == 0 || memcmp(a->s, b->s, a->n) == 0);
  default:
    if (!a->j || !b->j) /* an absent vars object is {} */
      return json_object_size(a->j ? a->j : b->j) == 0;
    return smc_json_equal(a->j, b->j);
  }
}

/* ------------------------------------------------------------------ */
/* Evaluator                                                            */
/* ------------------------------------------------------------------ */

typedef struct {
  smc_eval_ctx_t *ctx;
  smc_error_t *err;
} ev_t;

static int ev_fail(ev_t *ev, const node_t *n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record a runtime error at node n (first error wins) and return code. */
static int ev_fail(ev_t *ev, const node_t *n, int code, const char *fmt, ...) {
  if (ev->err && ev->err->code == 0) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    smc_error_set(ev->err, code, NULL, "%s", msg);
    ev->err->column = n ? n->col : 0;
  }
  return code;
}

/* Take units steps from the budget. */
static int charge(ev_t *ev, const node_t *n, uint64_t units) {
  if (ev->ctx->steps_left < units) {
    ev->ctx->steps_left = 0;
    return ev_fail(ev, n, SMC_ELIMIT_EXCEEDED, "expression step budget exhausted");
  }
  ev->ctx->steps_left -= units;
  return 0;
}

/* Cost of producing or scanning n bytes. */
static uint64_t bytes_cost(size_t n) { return 1 + n / 64; }

static int eval(ev_t *ev, const node_t *n, val_t *out);

/* Value of a path root; *found = whether it exists. */
static void root_value(ev_t *ev, root_t r, val_t *v, int *found) {
  const smc_eval_ctx_t *c = ev->ctx;
  memset(v, 0, sizeof(*v));
  *found = 1;
  switch (r) {
  case R_SRC:
    val_from_json(c->src, v), *found = c->src != NULL;
    break;
  case R_DST:
    val_from_json(c->dst, v), *found = c->dst != NULL;
    break;
  case R_INPUT:
    val_from_json(c->input, v), *found = c->input != NULL;
    break;
  case R_VALUE:
    val_from_json(c->value, v), *found = c->value != NULL;
    break;
  case R_VARS:
    val_from_json(c->vars, v);
    if (!c->vars)
      v->t = T_OBJ; /* NULL vars is {} (j stays NULL: members are absent) */
    break;
  case R_META_VERSION:
    val_int(v, c->version);
    break;
  case R_META_TIME:
    val_int(v, c->time);
    break;
  case R_META_OBJECT:
  case R_META_STATE:
  case R_META_PROPOSER: {
    const char *s = r == R_META_OBJECT ? c->object : r == R_META_STATE ? c->state : c->proposer;
    if (s) {
      v->t = T_STR;
      v->s = s;
      v->n = strlen(s);
    } else {
      *found = 0;
    }
    break;
  }
  }
}

/* Replace *base by its child json (borrowed from base's data; NULL = null),
 * keeping what base owned alive as long as the child needs it. Only arrays
 * and objects have children, and those never own a string buffer. */
static void step_into(val_t *base, json_t *child) {
  json_t *hold = child && base->ref ? json_incref(child) : NULL;
  val_release(base);
  val_from_json(child, base);
  base->ref = hold;
}

/* Evaluate a path (root, members, indexes). A missing member, an index out
 * of range or a member of a non-object yields null with *found = 0. */
static int eval_path(ev_t *ev, const node_t *n, val_t *out, int *found) {
  *found = 0;
  int rc = charge(ev, n, 1);
  if (rc) {
    memset(out, 0, sizeof(*out));
    return rc;
  }
  if (n->kind == N_ROOT) {
    root_value(ev, (root_t)n->op, out, found);
    return 0;
  }
  if (n->kind != N_MEMBER && n->kind != N_INDEX) {
    *found = 1;
    return eval(ev, n, out);
  }
  /* out holds the base value first, then becomes the child */
  rc = eval_path(ev, n->kids[0], out, found);
  if (rc)
    return rc;
  json_t *child = NULL;
  if (n->kind == N_MEMBER) {
    if (out->t == T_OBJ && out->j)
      child = json_object_getn(out->j, n->name, n->name_len);
  } else {
    val_t idx;
    rc = eval(ev, n->kids[1], &idx); /* on failure idx is empty */
    if (!rc && out->t == T_ARR) {
      if (idx.t != T_INT)
        rc = ev_fail(ev, n, SMC_EVALIDATION_FAILED, "an array index must be an integer, got %s",
                     type_name(&idx));
      else if (idx.i >= 0 && (uint64_t)idx.i < json_array_size(out->j))
        child = json_array_get(out->j, (size_t)idx.i);
    } else if (!rc && out->t == T_OBJ) {
      if (idx.t != T_STR)
        rc = ev_fail(ev, n, SMC_EVALIDATION_FAILED, "an object key must be a string, got %s",
                     type_name(&idx));
      else if (out->j)
        child = json_object_getn(out->j, idx.s, idx.n);
    }
    val_release(&idx);
    if (rc) {
      val_release(out);
      memset(out, 0, sizeof(*out));
      return rc;
    }
  }
  if (!child)
    *found = 0;
  step_into(out, child);
  return 0;
}

static int num_result(ev_t *ev, const node_t *n, double r, val_t *out) {
  if (!isfinite(r))
    return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "arithmetic overflow in '%s'", op_names[n->op]);
  val_real(out, r);
  return 0;
}

static int arith(ev_t *ev, const node_t *n, const val_t *a, const val_t *b, val_t *out) {
  int op = n->op;
  if (!is_num(a) || !is_num(b))
    return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "'%s' needs numbers, got %s and %s", op_names[op],
                   type_name(a), type_name(b));
  if (a->t == T_INT && b->t == T_INT) {
    int64_t r = 0;
    int ovf = 0;
    switch (op) {
    case OP_ADD:
      ovf = __builtin_add_overflow(a->i, b->i, &r);
      break;
    case OP_SUB:
      ovf = __builtin_sub_overflow(a->i, b->i, &r);
      break;
    case OP_MUL:
      ovf = __builtin_mul_overflow(a->i, b->i, &r);
      break;
    case OP_DIV:
    case OP_MOD:
      if (b->i == 0)
        return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "%s by zero",
                       op == OP_DIV ? "division" : "modulo");
      if (a->i == INT64_MIN && b->i == -1)
        ovf = op == OP_DIV, r = 0;
      else
        r = op == OP_DIV ? a->i / b->i : a->i % b->i;
      break;
    }
    if (ovf)
      return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "integer overflow in '%s'", op_names[op]);
    val_int(out, r);
    return 0;
  }
  double x = num(a), y = num(b);
  switch (op) {
  case OP_ADD:
    return num_result(ev, n, x + y, out);
  case OP_SUB:
    return num_result(ev, n, x - y, out);
  case OP_MUL:
    return num_result(ev, n, x * y, out);
  default:
    if (y == 0)
      return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "%s by zero",
                     op == OP_DIV ? "division" : "modulo");
    return num_result(ev, n, op == OP_DIV ? x / y : fmod(x, y), out);
  }
}

/* String form of v for concatenation and string(): the string itself, or
 * canonical JSON. On success (*s, *len) point at v's bytes or at *tmp, which
 * the caller frees. */
static int string_form(ev_t *ev, const node_t *n, const val_t *v, const char **s, size_t *len,
                       char **tmp) {
  *tmp = NULL;
  if (v->t == T_STR) {
    *s = v->s;
    *len = v->n;
    return 0;
  }
  char small[32];
  switch (v->t) {
  case T_NULL:
    *s = "null", *len = 4;
    return 0;
  case T_BOOL:
    *s = v->b ? "true" : "false", *len = v->b ? 4 : 5;
    return 0;
  case T_INT:
    *len = (size_t)snprintf(small, sizeof(small), "%lld", (long long)v->i);
    *tmp = malloc(*len + 1);
    if (!*tmp)
      return ev_fail(ev, n, SMC_ENOMEM, "out of memory");
    memcpy(*tmp, small, *len + 1);
    *s = *tmp;
    return 0;
  default: {
    json_t *j = val_json(v);
    *tmp = j ? smc_json_canonical(j) : NULL;
    json_decref(j);
    if (!*tmp)
      return ev_fail(ev, n, SMC_ENOMEM, "out of memory");
    *len = strlen(*tmp);
    *s = *tmp;
    return charge(ev, n, bytes_cost(*len));
  }
  }
}

/* Concatenate the string forms of vals[0..count) into out. */
static int concat_strings(ev_t *ev, const node_t *n, const val_t *vals, int count, val_t *out) {
  const char *parts_s[8];
  size_t parts_n[8];
  char *tmps[8];
  const char **ps = parts_s;
  size_t *pn = parts_n;
  char **pt = tmps;
  int rc = 0;
  char *buf = NULL;
  if (count > 8) {
    ps = calloc((size_t)count, sizeof(*ps));
    pn = calloc((size_t)count, sizeof(*pn));
    pt = calloc((size_t)count, sizeof(*pt));
    if (!ps || !pn || !pt) {
      rc = ev_fail(ev, n, SMC_ENOMEM, "out of memory");
      goto done;
    }
  }
  memset(pt, 0, (size_t)count * sizeof(*pt));
  size_t total = 0;
  for (int i = 0; i < count; i++) {
    rc = string_form(ev, n, &vals[i], &ps[i], &pn[i], &pt[i]);
    if (rc)
      goto done;
    total += pn[i];
    if (total > SMC_EXPR_MAX_STRING) {
      rc = ev_fail(ev, n, SMC_ELIMIT_EXCEEDED, "string longer than %d bytes", SMC_EXPR_MAX_STRING);
      goto done;
    }
  }
  rc = charge(ev, n, bytes_cost(total));
  if (rc)
    goto done;
  buf = malloc(total + 1);
  if (!buf) {
    rc = ev_fail(ev, n, SMC_ENOMEM, "out of memory");
    goto done;
  }
  size_t off = 0;
  for (int i = 0; i < count; i++) {
    if (pn[i])
      memcpy(buf + off, ps[i], pn[i]);
    off += pn[i];
  }
  buf[total] = '\0';
  val_buf(out, buf, total);
done:
  if (pt)
    for (int i = 0; i < count; i++)
      free(pt[i]);
  if (ps != parts_s) {
    free(ps);
    free(pn);
    free(pt);
  }
  return rc;
}

/* Concatenate arrays vals[0..count) into a new array. */
static int concat_arrays(ev_t *ev, const node_t *n, const val_t *vals, int count, val_t *out) {
  size_t total = 0;
  for (int i = 0; i < count; i++)
    total += json_array_size(vals[i].j);
  int rc = charge(ev, n, 1 + total);
  if (rc)
    return rc;
  json_t *arr = json_array();
  if (!arr)
    return ev_fail(ev, n, SMC_ENOMEM, "out of memory");
  for (int i = 0; i < count; i++)
    if (json_array_extend(arr, vals[i].j)) {
      json_decref(arr);
      return ev_fail(ev, n, SMC_ENOMEM, "out of memory");
    }
  val_json_take(out, arr);
  return 0;
}

/* x in container: element of an array, key of an object, substring of a
 * string. *res receives the answer. */
static int contains(ev_t *ev, const node_t *n, const val_t *container, const val_t *x, int *res) {
  *res = 0;
  if (container->t == T_ARR) {
    size_t size = json_array_size(container->j);
    int rc = charge(ev, n, 1 + size / 8);
    if (rc)
      return rc;
    for (size_t i = 0; i < size; i++) {
      val_t el;
      val_from_json(json_array_get(container->j, i), &el);
      if (val_equal(x, &el)) {
        *res = 1;
        break;
      }
    }
    return 0;
  }
  if (container->t == T_OBJ) {
    if (x->t != T_STR)
      return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "a key of an object must be a string, got %s",
                     type_name(x));
    *res = container->j && json_object_getn(container->j, x->s, x->n) != NULL;
    return 0;
  }
  if (container->t == T_STR) {
    if (x->t != T_STR)
      return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "a substring must be a string, got %s",
                     type_name(x));
    int rc = charge(ev, n, bytes_cost(container->n));
    if (rc)
      return rc;
    *res = x->n == 0 || memmem(container->s, container->n, x->s, x->n) != NULL;
    return 0;
  }
  return ev_fail(ev, n, SMC_EVALIDATION_FAILED,
                 "'in' and contains() need an array, object or string, got %s",
                 type_name(container));
}

static int compare(ev_t *ev, const node_t *n, const val_t *a, const val_t *b, int *cmp) {
  if (is_num(a) && is_num(b)) {
    if (a->t == T_INT && b->t == T_INT)
      *cmp = (a->i > b->i) - (a->i < b->i);
    else
      *cmp = (num(a) > num(b)) - (num(a) < num(b));
    return 0;
  }
  if (a->t == T_STR && b->t == T_STR) {
    size_t m = a->n < b->n ? a->n : b->n;
    int c = m ? memcmp(a->s, b->s, m) : 0;
    *cmp = c ? (c > 0 ? 1 : -1) : (a->n > b->n) - (a->n < b->n);
    return 0;
  }
  return ev_fail(ev, n, SMC_EVALIDATION_FAILED,
                 "'%s' needs two numbers or two strings, got %s and %s", op_names[n->op],
                 type_name(a), type_name(b));
}

static int eval_binary(ev_t *ev, const node_t *n, val_t *out) {
  val_t a, b;
  int rc = eval(ev, n->kids[0], &a);
  if (rc)
    return rc;
  rc = eval(ev, n->kids[1], &b);
  if (rc) {
    val_release(&a);
    return rc;
  }
  int r = 0;
  switch (n->op) {
  case OP_EQ:
  case OP_NE:
    /* deep comparison of containers costs their (top-level) size */
    if ((a.t == T_ARR || a.t == T_OBJ) && a.t == b.t)
      rc = charge(ev, n, 1 + (a.t == T_ARR ? json_array_size(a.j) : json_object_size(a.j)));
    if (!rc)
      val_bool(out, val_equal(&a, &b) == (n->op == OP_EQ));
    break;
  case OP_LT:
  case OP_LE:
  case OP_GT:
  case OP_GE:
    rc = compare(ev, n, &a, &b, &r);
    if (!rc)
      val_bool(out, n->op == OP_LT   ? r < 0
                    : n->op == OP_LE ? r <= 0
                    : n->op == OP_GT ? r > 0
                                     : r >= 0);
    break;
  case OP_IN:
    rc = contains(ev, n, &b, &a, &r);
    if (!rc)
      val_bool(out, r);
    break;
  case OP_ADD:
    if (a.t == T_STR || b.t == T_STR) {
      val_t both[2] = {a, b};
      rc = concat_strings(ev, n, both, 2, out);
    } else if (a.t == T_ARR && b.t == T_ARR) {
      val_t both[2] = {a, b};
      rc = concat_arrays(ev, n, both, 2, out);
    } else {
      rc = arith(ev, n, &a, &b, out);
    }
    break;
  default:
    rc = arith(ev, n, &a, &b, out);
    break;
  }
  val_release(&a);
  val_release(&b);
  return rc;
}

static int need_bool(ev_t *ev, const node_t *n, const val_t *v, const char *what) {
  if (v->t == T_BOOL)
    return 0;
  return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "%s needs a boolean, got %s", what, type_name(v));
}

/* Number of code points in s[0..n) (input is valid UTF-8). */
static size_t utf8_count(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    c += ((unsigned char)s[i] & 0xc0) != 0x80;
  return c;
}

/* Byte offset of code point cp in s[0..n) (clamped to n). */
static size_t utf8_offset(const char *s, size_t n, int64_t cp) {
  size_t i = 0;
  while (i < n && cp > 0) {
    i++;
    while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80)
      i++;
    cp--;
  }
  return i;
}

/* Make out a slice s[off..off+len) of v, moving v's ownership into out. */
static void val_slice(val_t *v, size_t off, size_t len, val_t *out) {
  int whole = off == 0 && len == v->n;
  *out = *v;
  memset(v, 0, sizeof(*v));
  out->s += off;
  out->n = len;
  if (!whole)
    out->j = NULL; /* no longer that JSON string; ref/buf still keep s alive */
}

static const char *fn_name(const node_t *n) {
  for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++)
    if ((int)functions[i].fn == n->op)
      return functions[i].name;
  return "?";
}

static int arg_type(ev_t *ev, const node_t *n, const val_t *v, vtype_t t, int argno) {
  if (v->t == t)
    return 0;
  static const char *const names[] = {"null",     "a boolean", "an integer", "a number",
                                      "a string", "an array",  "an object"};
  return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "%s() argument %d must be %s, got %s", fn_name(n),
                 argno, names[t], type_name(v));
}

static int fn_substr(ev_t *ev, const node_t *n, val_t *args, int nargs, val_t *out) {
  int rc = arg_type(ev, n, &args[0], T_STR, 1);
  if (!rc)
    rc = arg_type(ev, n, &args[1], T_INT, 2);
  if (!rc && nargs > 2)
    rc = arg_type(ev, n, &args[2], T_INT, 3);
  if (!rc)
    rc = charge(ev, n, bytes_cost(args[0].n));
  if (rc)
    return rc;
  int64_t start = args[1].i < 0 ? 0 : args[1].i;
  size_t off = utf8_offset(args[0].s, args[0].n, start);
  size_t end = args[0].n;
  if (nargs > 2) {
    int64_t len = args[2].i < 0 ? 0 : args[2].i;
    end = off + utf8_offset(args[0].s + off, args[0].n - off, len);
  }
  val_slice(&args[0], off, end - off, out);
  return 0;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int fn_case(ev_t *ev, const node_t *n, val_t *s, val_t *out) {
  int rc = arg_type(ev, n, s, T_STR, 1);
  if (!rc)
    rc = charge(ev, n, bytes_cost(s->n));
  if (rc)
    return rc;
  char *buf = malloc(s->n + 1);
  if (!buf)
    return ev_fail(ev, n, SMC_ENOMEM, "out of memory");
  for (size_t i = 0; i < s->n; i++) {
    char c = s->s[i];
    if (n->op == F_LOWER && c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    else if (n->op == F_UPPER && c >= 'a' && c <= 'z')
      c = (char)(c - 'a' + 'A');
    buf[i] = c;
  }
  buf[s->n] = '\0';
  val_buf(out, buf, s->n);
  return 0;
}

static int fn_matches(ev_t *ev, const node_t *n, val_t *args, val_t *out) {
  int rc = arg_type(ev, n, &args[0], T_STR, 1);
  if (rc)
    return rc;
  smc_regex_t *tmp = NULL;
  const smc_regex_t *re = n->re;
  if (!re) {
    rc = arg_type(ev, n, &args[1], T_STR, 2);
    if (!rc)
      rc = charge(ev, n, 16 + args[1].n);
    if (rc)
      return rc;
    smc_error_t rerr;
    smc_error_clear(&rerr);
    rc = smc_regex_compile_ex(args[1].s, args[1].n, NULL, &tmp, &rerr);
    if (rc)
      return ev_fail(ev, n, rc == SMC_ENOMEM ? SMC_ENOMEM : SMC_EVALIDATION_FAILED, "matches(): %s",
                     rerr.message);
    re = tmp;
  }
  rc = charge(ev, n, bytes_cost(args[0].n));
  if (!rc) {
    int m = smc_regex_match(re, args[0].s, args[0].n, ev->ctx->regex_match_limit,
                            ev->ctx->regex_depth_limit);
    if (m == SMC_ELIMIT_EXCEEDED)
      rc = ev_fail(ev, n, SMC_ELIMIT_EXCEEDED, "regex /%s/ hit its match limit",
                   smc_regex_pattern(re));
    else if (m < 0)
      rc = ev_fail(ev, n, m, "regex /%s/ failed: %s", smc_regex_pattern(re), smc_strerror(m));
    else
      val_bool(out, m);
  }
  smc_regex_destroy(tmp);
  return rc;
}

static int fn_int(ev_t *ev, const node_t *n, const val_t *v, val_t *out) {
  if (v->t == T_INT) {
    val_int(out, v->i);
    return 0;
  }
  if (v->t == T_REAL) {
    double t = trunc(v->r);
    if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0))
      return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "int(): %g is out of the integer range", v->r);
    val_int(out, (int64_t)t);
    return 0;
  }
  if (v->t != T_STR)
    return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "int() needs a number or a string, got %s",
                   type_name(v));
  size_t i = 0;
  int neg = 0;
  if (i < v->n && (v->s[i] == '-' || v->s[i] == '+'))
    neg = v->s[i++] == '-';
  if (i == v->n || v->n > 24)
    goto bad;
  uint64_t u = 0;
  for (; i < v->n; i++) {
    if (!is_digit(v->s[i]))
      goto bad;
    unsigned d = (unsigned)(v->s[i] - '0');
    if (u > ((uint64_t)INT64_MAX + 1 - d) / 10)
      goto range;
    u = u * 10 + d;
  }
  if (!neg && u > (uint64_t)INT64_MAX)
    goto range;
  val_int(out, neg ? (int64_t)(0 - u) : (int64_t)u);
  return 0;
range:
  return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "int(): '%.*s' is out of the integer range",
                 (int)(v->n > 40 ? 40 : v->n), v->s);
bad:
  return ev_fail(ev, n, SMC_EVALIDATION_FAILED, "int(): '%.*s' is not an integer",
                 (int)(v->n > 40 ? 40 : v->n), v->s);
}

static int key_cmp(const void *x, const void *y) {
  const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
  size_t an = json_string_length(a), bn = json_string_length(b);
  int c = memcmp(json_string_value(a), json_string_value(b), an < bn ? an : bn);
  return c ? c : (an > bn) - (an < bn);
}

static int fn_keys(ev_t *ev, const node_t *n, const val_t *v, val_t *out) {
  int rc = arg_type(ev, n, v, T_OBJ, 1);
  if (rc)
    return rc;
  size_t size = v->j ? json_object_size(v->j) : 0;
  rc = charge(ev, n, 1 + size);
  if (rc)
    return rc;
  json_t *arr = json_array();
  json_t **items = size ? calloc(size, sizeof(*items)) : NULL;
  if (!arr || (size && !items))
    goto nomem;
  size_t count = 0;
  const char *k;
  json_t *val;
  json_object_foreach(v->j, k, val) {
    if (count == size)
      break;
    size_t kl = json_object_iter_key_len(json_object_key_to_iter(k));
    if (!(items[count] = json_stringn(k, kl)))
      goto nomem;
    count++;
  }
  if (count > 1)
    qsort(items, count, sizeof(*items), key_cmp);
  for (size_t i = 0; i < count; i++) {
    int bad = json_array_append_new(arr, items[i]);
    items[i] = NULL;
    if (bad)
      goto nomem;
  }
  free(items);
  val_json_take(out, arr);
  return 0;
nomem:
  if (items)
    for (size_t i = 0; i < size; i++)
      json_decref(items[i]);
  free(items);
  json_decref(arr);
  return ev_fail(ev, n, SMC_ENOMEM, "out of memory");
}

static int fn_sha256(ev_t *ev, const node_t *n, const val_t *v, val_t *out) {
  const char *s;
  size_t len;
  char *tmp;
  int rc = string_form(ev, n, v, &s, &len, &tmp);
  if (!rc)
    rc = charge(ev, n, bytes_cost(len));
  if (!rc) {
    char *hex = malloc(65);
    if (!hex) {
      rc = ev_fail(ev, n, SMC_ENOMEM, "out of memory");
    } else {
      smc_sha256_hex(s, len, hex);
      val_buf(out, hex, 64);
    }
  }
  free(tmp);
  return rc;
}

static int eval_call_args(ev_t *ev, const node_t *n, val_t *out, val_t *args) {
  int rc = 0, r;
  switch ((fn_t)n->op) {
  case F_LEN:
    if (args[0].t == T_STR) {
      rc = charge(ev, n, bytes_cost(args[0].n));
      if (!rc)
        val_int(out, (int64_t)utf8_count(args[0].s, args[0].n));
    } else if (args[0].t == T_ARR) {
      val_int(out, (int64_t)json_array_size(args[0].j));
    } else if (args[0].t == T_OBJ) {
      val_int(out, args[0].j ? (int64_t)json_object_size(args[0].j) : 0);
    } else {
      rc = ev_fail(ev, n, SMC_EVALIDATION_FAILED, "len() needs a string, array or object, got %s",
                   type_name(&args[0]));
    }
    return rc;
  case F_SUBSTR:
    return fn_substr(ev, n, args, n->nkids, out);
  case F_LOWER:
  case F_UPPER:
    return fn_case(ev, n, &args[0], out);
  case F_TRIM: {
    rc = arg_type(ev, n, &args[0], T_STR, 1);
    if (rc)
      return rc;
    size_t a = 0, b = args[0].n;
    while (a < b && is_space(args[0].s[a]))
      a++;
    while (b > a && is_space(args[0].s[b - 1]))
      b--;
    val_slice(&args[0], a, b - a, out);
    return 0;
  }
  case F_CONCAT: {
    int all_arrays = 1;
    for (int i = 0; i < n->nkids; i++)
      all_arrays &= args[i].t == T_ARR;
    return all_arrays ? concat_arrays(ev, n, args, n->nkids, out)
                      : concat_strings(ev, n, args, n->nkids, out);
  }
  case F_CONTAINS:
    rc = contains(ev, n, &args[0], &args[1], &r);
    if (!rc)
      val_bool(out, r);
    return rc;
  case F_STARTS:
  case F_ENDS: {
    rc = arg_type(ev, n, &args[0], T_STR, 1);
    if (!rc)
      rc = arg_type(ev, n, &args[1], T_STR, 2);
    if (rc)
      return rc;
    const val_t *s = &args[0], *x = &args[1];
    if (x->n > s->n) {
      val_bool(out, 0);
      return 0;
    }
    const char *at = n->op == F_STARTS ? s->s : s->s + (s->n - x->n);
    val_bool(out, x->n == 0 || memcmp(at, x->s, x->n) == 0);
    return 0;
  }
  case F_MATCHES:
    return fn_matches(ev, n, args, out);
  case F_SHA256:
    return fn_sha256(ev, n, &args[0], out);
  case F_INT:
    return fn_int(ev, n, &args[0], out);
  case F_STRING:
    if (args[0].t == T_STR) {
      *out = args[0];
      memset(&args[0], 0, sizeof(args[0]));
      return 0;
    }
    {
      const char *s;
      size_t len;
      char *tmp;
      rc = string_form(ev, n, &args[0], &s, &len, &tmp);
      if (rc)
        return rc;
      if (!tmp) {
        tmp = strdup(s);
        if (!tmp)
          return ev_fail(ev, n, SMC_ENOMEM, "out of memory");
      }
      val_buf(out, tmp, len);
      return 0;
    }
  case F_KEYS:
    return fn_keys(ev, n, &args[0], out);
  case F_HAS:
    break;
  }
  return ev_fail(ev, n, SMC_EINTERNAL, "unhandled function");
}

static int eval_call(ev_t *ev, const node_t *n, val_t *out) {
  if (n->op == F_HAS) {
    val_t v;
    int found = 0;
    int rc = eval_path(ev, n->kids[0], &v, &found);
    val_release(&v);
    if (!rc)
      val_bool(out, found);
    return rc;
  }
  val_t small[4];
  val_t *args = n->nkids <= 4 ? small : calloc((size_t)n->nkids, sizeof(*args));
  if (!args)
    return ev_fail(ev, n, SMC_ENOMEM, "out of memory");
  int done = 0, rc = 0;
  if (n->op == F_MATCHES && n->re) {
    /* the pattern is a literal compiled at compile time: skip its node */
    rc = eval(ev, n->kids[0], &args[0]);
    memset(&args[1], 0, sizeof(args[1]));
    done = rc ? 0 : 2;
  } else {
    for (; done < n->nkids; done++) {
      rc = eval(ev, n->kids[done], &args[done]);
      if (rc)
        break;
    }
  }
  if (!rc)
    rc = eval_call_args(ev, n, out, args);
  for (int i = 0; i < done; i++)
    val_release(&args[i]);
  if (args != small)
    free(args);
  return rc;
}

static int eval_list(ev_t *ev, const node_t *n, val_t *out) {
  int rc = charge(ev, n, (uint64_t)n->nkids);
  if (rc)
    return rc;
  json_t *arr = json_array();
  if (!arr)
    return ev_fail(ev, n, SMC_ENOMEM, "out of memory");
  for (int i = 0; i < n->nkids; i++) {
    val_t v;
    rc = eval(ev, n->kids[i], &v);
    if (rc)
      break;
    json_t *j = val_json(&v);
    val_release(&v);
    if (!j || json_array_append_new(arr, j)) {
      rc = ev_fail(ev, n, SMC_ENOMEM, "out of memory");
      break;
    }
  }
  if (rc) {
    json_decref(arr);
    return rc;
  }
  val_json_take(out, arr);
  return 0;
}

/* Evaluate n into *out. On failure *out is empty (nothing to release). */
static int eval(ev_t *ev, const node_t *n, val_t *out) {
  memset(out, 0, sizeof(*out));
  int rc;
  switch ((kind_t)n->kind) {
  case N_ROOT:
  case N_MEMBER:
  case N_INDEX: {
    int found;
    return eval_path(ev, n, out, &found);
  }
  default:
    break;
  }
  rc = charge(ev, n, 1);
  if (rc)
    return rc;
  switch ((kind_t)n->kind) {
  case N_LIT:
    val_from_json(n->lit, out);
    return 0;
  case N_LIST:
    return eval_list(ev, n, out);
  case N_UNARY: {
    val_t a;
    rc = eval(ev, n->kids[0], &a);
    if (rc)
      return rc;
    if (n->op == OP_NOT) {
      rc = need_bool(ev, n, &a, "'!'");
      if (!rc)
        val_bool(out, !a.b);
    } else if (a.t == T_INT) {
      if (a.i == INT64_MIN)
        rc = ev_fail(ev, n, SMC_EVALIDATION_FAILED, "integer overflow in unary '-'");
      else
        val_int(out, -a.i);
    } else if (a.t == T_REAL) {
      val_real(out, -a.r);
    } else {
      rc =
          ev_fail(ev, n, SMC_EVALIDATION_FAILED, "unary '-' needs a number, got %s", type_name(&a));
    }
    val_release(&a);
    return rc;
  }
  case N_BINARY:
    return eval_binary(ev, n, out);
  case N_AND:
  case N_OR: {
    int is_and = n->kind == N_AND;
    const char *what = is_and ? "'&&'" : "'||'";
    val_t a;
    rc = eval(ev, n->kids[0], &a);
    if (rc)
      return rc;
    rc = need_bool(ev, n, &a, what);
    int b = a.b;
    val_release(&a);
    if (rc)
      return rc;
    if (b != is_and) { /* false && ..., true || ... */
      val_bool(out, b);
      return 0;
    }
    rc = eval(ev, n->kids[1], &a);
    if (rc)
      return rc;
    rc = need_bool(ev, n, &a, what);
    if (!rc)
      val_bool(out, a.b);
    val_release(&a);
    return rc;
  }
  case N_COND: {
    val_t c;
    rc = eval(ev, n->kids[0], &c);
    if (rc)
      return rc;
    rc = need_bool(ev, n, &c, "'?:'");
    int b = c.b;
    val_release(&c);
    if (rc)
      return rc;
    return eval(ev, n->kids[b ? 1 : 2], out);
  }
  case N_CALL:
    return eval_call(ev, n, out);
  default:
    break;
  }
  return ev_fail(ev, n, SMC_EINTERNAL, "unknown expression node");
}

/* The JSON result of v (new reference into *out). Only a string can fail
 * besides allocation: one built from context strings (meta.*) that are not
 * valid UTF-8. */
static int result_json(const val_t *v, json_t **out, smc_error_t *err) {
  *out = val_json(v);
  if (*out)
    return 0;
  if (v->t == T_STR && utf8_check(v->s, v->n) < v->n)
    return smc_error_set(err, SMC_EVALIDATION_FAILED, NULL,
                         "the result is not valid UTF-8 (from a context string)");
  return smc_error_set(err, SMC_ENOMEM, NULL, "cannot build the result");
}

static int check_args(smc_eval_ctx_t *ctx, json_t **out, smc_error_t *err) {
  if (!ctx || !out)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "ctx and out are required");
  return 0;
}

int smc_expr_eval(const smc_expr_t *e, smc_eval_ctx_t *ctx, json_t **out, smc_error_t *err) {
  if (out)
    *out = NULL;
  int rc = check_args(ctx, out, err);
  if (rc)
    return rc;
  if (!e)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "expression is NULL");
  ev_t ev = {ctx, err};
  val_t v;
  rc = eval(&ev, e->root, &v);
  if (rc)
    return rc;
  rc = result_json(&v, out, err);
  val_release(&v);
  return rc;
}

int smc_expr_eval_bool(const smc_expr_t *e, smc_eval_ctx_t *ctx, int *result, smc_error_t *err) {
  if (!e || !ctx || !result)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL,
                         "expression, ctx and result are required");
  *result = 0;
  ev_t ev = {ctx, err};
  val_t v;
  int rc = eval(&ev, e->root, &v);
  if (rc)
    return rc;
  if (v.t != T_BOOL) {
    rc = ev_fail(&ev, e->root, SMC_EVALIDATION_FAILED,
                 "the expression must be true or false, got %s", type_name(&v));
  } else {
    *result = v.b;
  }
  val_release(&v);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Templates                                                            */
/* ------------------------------------------------------------------ */

typedef struct {
  char *text; /* literal text (NULL for an expression part) */
  size_t len;
  node_t *expr;
} part_t;

struct smc_template {
  part_t *parts;
  int nparts;
  json_t *constant; /* the whole value when there is no ${...} */
  char *src;
};

static int template_add_text(smc_template_t *t, const char *s, size_t n) {
  if (n == 0)
    return 0;
  part_t *p = realloc(t->parts, (size_t)(t->nparts + 1) * sizeof(*p));
  if (!p)
    return -1;
  t->parts = p;
  part_t *np = &t->parts[t->nparts];
  memset(np, 0, sizeof(*np));
  np->text = malloc(n + 1);
  if (!np->text)
    return -1;
  memcpy(np->text, s, n);
  np->text[n] = '\0';
  np->len = n;
  t->nparts++;
  return 0;
}

static int template_add_expr(smc_template_t *t, node_t *e) {
  part_t *p = realloc(t->parts, (size_t)(t->nparts + 1) * sizeof(*p));
  if (!p) {
    node_free(e);
    return -1;
  }
  t->parts = p;
  memset(&t->parts[t->nparts], 0, sizeof(part_t));
  t->parts[t->nparts++].expr = e;
  return 0;
}

/* Template syntax: "${" expr "}" is an expression part; "$$" is a literal
 * "$" (so "$${" is a literal "${"); any other "$" is literal text. */
int smc_template_compile(const char *src, smc_template_t **out, smc_error_t *err) {
  *out = NULL;
  if (!src)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "template is NULL");
  size_t len = strlen(src);
  int rc = 0;
  if (len > SMC_TEMPLATE_MAX_SOURCE) {
    rc = smc_error_set(err, SMC_EBAD_EXPRESSION, NULL, "template longer than %d bytes",
                       SMC_TEMPLATE_MAX_SOURCE);
    if (err && err->code == rc)
      err->column = SMC_TEMPLATE_MAX_SOURCE + 1;
    return rc;
  }
  size_t bad = utf8_check(src, len);
  if (bad < len) {
    rc = smc_error_set(err, SMC_EBAD_EXPRESSION, NULL, "template is not valid UTF-8");
    if (err && err->code == rc)
      err->column = (int)bad + 1;
    return rc;
  }
  smc_template_t *t = calloc(1, sizeof(*t));
  char *text = malloc(len + 1);
  if (!t || !text || !(t->src = strdup(src)))
    goto nomem;
  size_t tn = 0, i = 0;
  while (i < len) {
    if (src[i] == '$' && i + 1 < len && src[i + 1] == '$') {
      text[tn++] = '$';
      i += 2;
    } else if (src[i] == '$' && i + 1 < len && src[i + 1] == '{') {
      if (template_add_text(t, text, tn))
        goto nomem;
      tn = 0;
      size_t end = 0;
      node_t *e = parse_top(src, len, i + 2, 1, &end, err, &rc);
      if (!e)
        goto fail;
      if (template_add_expr(t, e))
        goto nomem;
      i = end;
    } else {
      text[tn++] = src[i++];
    }
  }
  if (template_add_text(t, text, tn))
    goto nomem;
  free(text);
  text = NULL;
  if (t->nparts == 0 || (t->nparts == 1 && t->parts[0].text)) {
    t->constant = t->nparts ? json_stringn(t->parts[0].text, t->parts[0].len) : json_string("");
    if (!t->constant)
      goto nomem;
  }
  *out = t;
  return 0;
nomem:
  rc = smc_error_set(err, SMC_ENOMEM, NULL, NULL);
fail:
  free(text);
  smc_template_destroy(t);
  return rc;
}

void smc_template_destroy(smc_template_t *t) {
  if (!t)
    return;
  for (int i = 0; i < t->nparts; i++) {
    free(t->parts[i].text);
    node_free(t->parts[i].expr);
  }
  free(t->parts);
  json_decref(t->constant);
  free(t->src);
  free(t);
}

int smc_template_is_constant(const smc_template_t *t) { return t && t->constant != NULL; }

const char *smc_template_source(const smc_template_t *t) { return t ? t->src : NULL; }

int smc_template_eval(const smc_template_t *t, smc_eval_ctx_t *ctx, json_t **out,
                      smc_error_t *err) {
  if (out)
    *out = NULL;
  int rc = check_args(ctx, out, err);
  if (rc)
    return rc;
  if (!t)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "template is NULL");
  if (t->constant) {
    *out = json_incref(t->constant);
    return 0;
  }
  ev_t ev = {ctx, err};
  if (t->nparts == 1) {
    val_t v;
    rc = eval(&ev, t->parts[0].expr, &v);
    if (rc)
      return rc;
    rc = result_json(&v, out, err);
    val_release(&v);
    return rc;
  }
  val_t *vals = calloc((size_t)t->nparts, sizeof(*vals));
  if (!vals)
    return smc_error_set(err, SMC_ENOMEM, NULL, NULL);
  int done = 0;
  for (; done < t->nparts; done++) {
    if (t->parts[done].text) {
      vals[done].t = T_STR;
      vals[done].s = t->parts[done].text;
      vals[done].n = t->parts[done].len;
      continue;
    }
    rc = eval(&ev, t->parts[done].expr, &vals[done]);
    if (rc)
      break;
  }
  val_t joined;
  if (!rc)
    rc = concat_strings(&ev, NULL, vals, t->nparts, &joined);
  for (int i = 0; i < done; i++)
    val_release(&vals[i]);
  free(vals);
  if (rc)
    return rc;
  rc = result_json(&joined, out, err);
  val_release(&joined);
  return rc;
}
