/* JSON text read without a full parse (see json_scan.h). */
#include "core/json_scan.h"

#include <string.h>

const char *smc_json_skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

const char *smc_json_skip_string(const char *p, const char *end) {
  for (p++; p < end; p++) {
    if (*p == '\\')
      p++;
    else if (*p == '"')
      return p + 1;
  }
  return NULL;
}

const char *smc_json_skip_value(const char *p, const char *end) {
  if (p >= end)
    return NULL;
  if (*p == '"')
    return smc_json_skip_string(p, end);
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (p < end) {
      if (*p == '"') {
        if (!(p = smc_json_skip_string(p, end)))
          return NULL;
        continue;
      }
      if (*p == '{' || *p == '[') {
        if (++depth > SMC_JSON_SCAN_MAX_DEPTH)
          return NULL;
      } else if ((*p == '}' || *p == ']') && --depth == 0)
        return p + 1;
      p++;
    }
    return NULL;
  }
  const char *s = p;
  while (p < end && !strchr(",}] \t\n\r", *p))
    p++;
  return p > s ? p : NULL;
}

const char *smc_json_next(const char *p, const char *end, char close, int *more) {
  p = smc_json_skip_ws(p, end);
  if (p < end && *p == ',') {
    *more = 1;
    return smc_json_skip_ws(p + 1, end);
  }
  if (p < end && *p == close) {
    *more = 0;
    return p + 1;
  }
  return NULL;
}

const char *smc_json_plain_string(const char *p, const char *end, size_t *n) {
  const char *b = ++p;
  while (p < end && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f && *p != '"' &&
         *p != '\\')
    p++;
  if (p >= end || *p != '"')
    return NULL;
  *n = (size_t)(p - b);
  return p + 1;
}

int smc_json_members(const char *text, size_t len,
                     int (*fn)(const smc_json_member_t *m, void *opaque), void *opaque) {
  const char *end = text + len, *p = smc_json_skip_ws(text, end);
  if (p == end || *p++ != '{')
    return -1;
  p = smc_json_skip_ws(p, end);
  if (p < end && *p == '}')
    return 0;
  for (;;) {
    if (p == end || *p != '"')
      return -1;
    smc_json_member_t m;
    const char *kend = smc_json_skip_string(p, end);
    if (!kend)
      return -1;
    m.key = p + 1;
    m.key_len = (size_t)(kend - 1 - m.key);
    m.key_escaped = memchr(m.key, '\\', m.key_len) != NULL;
    p = smc_json_skip_ws(kend, end);
    if (p == end || *p++ != ':')
      return -1;
    m.value = smc_json_skip_ws(p, end);
    if (!(m.value_end = smc_json_skip_value(m.value, end)))
      return -1;
    int rc = fn(&m, opaque);
    if (rc)
      return rc;
    int more;
    if (!(p = smc_json_next(m.value_end, end, '}', &more)))
      return -1;
    if (!more)
      return 0;
  }
}

/* ---- a parser for plain JSON texts (smc_json_loadb) ---- */

typedef struct plain {
  const char *p, *end;
  int depth;
} plain_t;

static void plain_ws(plain_t *s) { s->p = smc_json_skip_ws(s->p, s->end); }

/* After a member or an element: 1 when a ',' follows (skipped, and the
 * white space after it), 0 when close does (skipped), -1 otherwise. */
static int plain_next(plain_t *s, char close) {
  int more;
  const char *q = smc_json_next(s->p, s->end, close, &more);
  if (!q)
    return -1;
  s->p = q;
  return more;
}

/* A plain string at s->p (its opening quote): its first byte and length,
 * s->p after the closing quote; NULL if not plain. */
static const char *plain_str(plain_t *s, size_t *n) {
  const char *q = smc_json_plain_string(s->p, s->end, n);
  if (!q)
    return NULL;
  const char *b = s->p + 1;
  s->p = q;
  return b;
}

static json_t *plain_value(plain_t *s);

/* One member of an object at s->p (key, ':', value) into o: 0, or -1 when
 * it is not plain. */
static int plain_member(plain_t *s, json_t *o) {
  size_t kn = 0;
  const char *k = s->p < s->end && *s->p == '"' ? plain_str(s, &kn) : NULL;
  char kbuf[128];
  if (!k || kn >= sizeof(kbuf))
    return -1;
  memcpy(kbuf, k, kn);
  kbuf[kn] = '\0';
  if (json_object_get(o, kbuf)) /* repeated: jansson decides */
    return -1;
  plain_ws(s);
  if (s->p >= s->end || *s->p++ != ':')
    return -1;
  plain_ws(s);
  json_t *v = plain_value(s);
  return v && !json_object_setn_new_nocheck(o, kbuf, kn, v) ? 0 : -1;
}

/* One element of an array at s->p into a: 0, or -1 when it is not plain. */
static int plain_element(plain_t *s, json_t *a) {
  json_t *v = plain_value(s);
  return v && !json_array_append_new(a, v) ? 0 : -1;
}

/* The object or array at s->p ('{' or '[') into c (a new empty one, NULL
 * when it could not be made), each member or element taken by add up to
 * close: c, or NULL (c released) when something is not plain. */
static json_t *plain_container(plain_t *s, json_t *c, char close,
                               int (*add)(plain_t *s, json_t *c)) {
  if (!c)
    return NULL;
  s->p++; /* '{' or '[' */
  plain_ws(s);
  int more = 1;
  if (s->p < s->end && *s->p == close) {
    s->p++;
    more = 0;
  }
  while (more > 0)
    more = add(s, c) ? -1 : plain_next(s, close);
  if (more == 0)
    return c;
  json_decref(c);
  return NULL;
}

/* -?(0|[1-9][0-9]*) of at most 18 digits, not followed by a fraction or
 * an exponent (reals and larger integers are jansson's). */
static json_t *plain_integer(plain_t *s) {
  const char *p = s->p;
  int neg = p < s->end && *p == '-';
  p += neg;
  const char *d = p;
  while (p < s->end && *p >= '0' && *p <= '9')
    p++;
  size_t n = (size_t)(p - d);
  if (n == 0 || n > 18 || (n > 1 && *d == '0'))
    return NULL;
  if (p < s->end && (*p == '.' || *p == 'e' || *p == 'E'))
    return NULL;
  json_int_t v = 0;
  for (; d < p; d++)
    v = v * 10 + (*d - '0');
  s->p = p;
  return json_integer(neg ? -v : v);
}

static int plain_word(plain_t *s, const char *w, size_t n) {
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n))
    return 0;
  s->p += n;
  return 1;
}

static json_t *plain_value(plain_t *s) {
  if (s->p >= s->end)
    return NULL;
  switch (*s->p) {
  case '{':
  case '[': {
    if (++s->depth > SMC_JSON_SCAN_MAX_DEPTH)
      return NULL;
    json_t *v = *s->p == '{' ? plain_container(s, json_object(), '}', plain_member)
                             : plain_container(s, json_array(), ']', plain_element);
    s->depth--;
    return v;
  }
  case '"': {
    size_t n = 0;
    const char *b = plain_str(s, &n);
    return b ? json_stringn_nocheck(b, n) : NULL;
  }
  case 't':
    return plain_word(s, "true", 4) ? json_true() : NULL;
  case 'f':
    return plain_word(s, "false", 5) ? json_false() : NULL;
  case 'n':
    return plain_word(s, "null", 4) ? json_null() : NULL;
  default:
    return plain_integer(s);
  }
}

json_t *smc_json_load_plain(const char *text, size_t len) {
  plain_t s = {text, text + len, 0};
  plain_ws(&s);
  if (s.p >= s.end || *s.p != '{')
    return NULL;
  json_t *v = plain_value(&s);
  plain_ws(&s);
  if (v && s.p != s.end) {
    json_decref(v);
    return NULL;
  }
  return v;
}

json_t *smc_json_loadb(const char *text, size_t len, size_t flags) {
  json_t *v = smc_json_load_plain(text, len);
  return v ? v : json_loadb(text, len, flags, NULL);
}

json_t *smc_json_loads(const char *text, size_t flags) {
  json_t *v = smc_json_load_plain(text, strlen(text));
  return v ? v : json_loads(text, flags, NULL);
}
