/* The expression language: the lexer (see expr_int.h). */
#include "core/expr_int.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void expr_verror(smc_error_t *err, int code, int column, const char *fmt, va_list ap) {
  if (!err || err->code != 0)
    return;
  char msg[400];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  smc_error_set(err, code, NULL, "%s", msg);
  err->column = column;
}

/* Record a compile error at byte offset (first error wins). */
void expr_perr(parser_t *p, size_t offset, int code, const char *fmt, ...) {
  if (p->rc)
    return;
  p->rc = code;
  va_list ap;
  va_start(ap, fmt);
  expr_verror(p->err, code, (int)offset + 1, fmt, ap);
  va_end(ap);
}

static int is_ident_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static int is_ident(int c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }

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
size_t expr_utf8_check(const char *s, size_t n) {
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

/* The byte a one-letter escape \e stands for in a string literal, or 0
 * when e is not one (\u and unknown escapes). */
static char unescaped(char e) {
  static const char from[] = "\\'\"/ntrbf", to[] = "\\'\"/\n\t\r\b\f";
  const char *at = e ? strchr(from, e) : NULL;
  return at ? to[at - from] : 0;
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
    expr_perr(p, p->pos, SMC_ENOMEM, "out of memory");
    return;
  }
  for (;;) {
    if (i >= p->len) {
      expr_perr(p, p->pos, SMC_EBAD_EXPRESSION, "unterminated string");
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
      expr_perr(p, p->pos, SMC_EBAD_EXPRESSION, "unterminated string");
      goto fail;
    }
    char e = s[i + 1];
    size_t esc = i;
    i += 2;
    char plain = unescaped(e);
    if (plain) {
      buf[n++] = plain;
      continue;
    }
    switch (e) {
    case 'u': {
      uint32_t cp, lo;
      if (hex4(s + i, p->len - i, &cp)) {
        expr_perr(p, esc, SMC_EBAD_EXPRESSION, "\\u needs four hex digits");
        goto fail;
      }
      i += 4;
      if (cp >= 0xdc00 && cp <= 0xdfff) {
        expr_perr(p, esc, SMC_EBAD_EXPRESSION, "lone low surrogate in \\u escape");
        goto fail;
      }
      if (cp >= 0xd800 && cp <= 0xdbff) {
        if (i + 6 > p->len || s[i] != '\\' || s[i + 1] != 'u' ||
            hex4(s + i + 2, p->len - i - 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
          expr_perr(p, esc, SMC_EBAD_EXPRESSION, "high surrogate without a low surrogate");
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
      expr_perr(p, esc, SMC_EBAD_EXPRESSION, "unknown escape '\\%c'",
                (e >= 0x20 && e < 0x7f) ? e : '?');
      goto fail;
    }
  }
  p->tok.str = json_stringn(buf, n);
  free(buf);
  if (!p->tok.str) {
    expr_perr(p, p->pos, SMC_EBAD_EXPRESSION, "string literal is not valid UTF-8");
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
  while (i < p->len && expr_is_digit(s[i])) {
    unsigned d = (unsigned)(s[i] - '0');
    if (u > (UINT64_MAX - d) / 10)
      overflow = 1;
    else
      u = u * 10 + d;
    i++;
  }
  int real = 0;
  if (i + 1 < p->len && s[i] == '.' && expr_is_digit(s[i + 1])) {
    real = 1;
    i++;
    while (i < p->len && expr_is_digit(s[i]))
      i++;
  }
  if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < p->len && (s[j] == '+' || s[j] == '-'))
      j++;
    if (j < p->len && expr_is_digit(s[j])) {
      real = 1;
      i = j;
      while (i < p->len && expr_is_digit(s[i]))
        i++;
    }
  }
  if (i < p->len && is_ident(s[i])) {
    expr_perr(p, i, SMC_EBAD_EXPRESSION, "bad number");
    return;
  }
  if (real) {
    char tmp[64];
    size_t n = i - p->pos;
    if (n >= sizeof(tmp)) {
      expr_perr(p, p->pos, SMC_EBAD_EXPRESSION, "number literal too long");
      return;
    }
    memcpy(tmp, s + p->pos, n);
    tmp[n] = '\0';
    double r = strtod(tmp, NULL);
    if (!isfinite(r)) {
      expr_perr(p, p->pos, SMC_EBAD_EXPRESSION, "number literal out of range");
      return;
    }
    p->tok.type = TK_REAL;
    p->tok.r = r;
  } else {
    if (overflow || u > (uint64_t)INT64_MAX + 1) {
      expr_perr(p, p->pos, SMC_EBAD_EXPRESSION, "integer literal out of range");
      return;
    }
    p->tok.type = TK_INT;
    p->tok.u = u;
  }
  p->pos = i;
}

/* Advance to the next token; on a lexical error p->rc is set and the token
 * is TK_EOF. */
void expr_lex(parser_t *p) {
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
  if (expr_is_digit(c)) {
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
    expr_perr(p, p->pos, SMC_EBAD_EXPRESSION, "unexpected '=' (use == to compare)");
  } else if (c == '&' || c == '|') {
    expr_perr(p, p->pos, SMC_EBAD_EXPRESSION, "unexpected '%c' (use %c%c)", c, c, c);
  } else if (c > 0x20 && c < 0x7f) {
    expr_perr(p, p->pos, SMC_EBAD_EXPRESSION, "unexpected character '%c'", c);
  } else {
    expr_perr(p, p->pos, SMC_EBAD_EXPRESSION, "unexpected character (byte 0x%02x)",
              (unsigned char)c);
  }
  p->tok.end = p->pos;
  if (p->rc) {
    json_decref(p->tok.str);
    memset(&p->tok, 0, sizeof(p->tok));
    p->tok.start = p->tok.end = p->pos;
  }
}

int expr_tok_is(const parser_t *p, const char *op) {
  return p->tok.type == TK_OP && strcmp(p->tok.op, op) == 0;
}

int expr_tok_ident(const parser_t *p, const char *name) {
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

void expr_unexpected(parser_t *p, const char *wanted) {
  char b[40];
  expr_perr(p, p->tok.start, SMC_EBAD_EXPRESSION, "expected %s, found %s", wanted,
            tok_desc(p, b, sizeof(b)));
}
