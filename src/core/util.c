#include "core/util.h"

#include <math.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* An integral real that fits in json_int_t exactly (5.0, -3.0). */
static int integral_real(const json_t *v) {
  if (!json_is_real(v))
    return 0;
  double d = json_real_value(v);
  return isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0; /* 2^53 */
}

static int needs_normalising(const json_t *v) {
  if (integral_real(v))
    return 1;
  if (json_is_array(v)) {
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) if (needs_normalising(e)) return 1;
  } else if (json_is_object(v)) {
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e) if (needs_normalising(e)) return 1;
  }
  return 0;
}

/* A copy of v with every integral real turned into an integer. New reference. */
static json_t *normalised(const json_t *v) {
  if (integral_real(v))
    return json_integer((json_int_t)json_real_value(v));
  if (json_is_array(v)) {
    json_t *a = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) json_array_append_new(a, normalised(e));
    return a;
  }
  if (json_is_object(v)) {
    json_t *o = json_object();
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e) json_object_set_new(o, k, normalised(e));
    return o;
  }
  return json_incref((json_t *)v);
}

char *smc_json_canonical(const json_t *v) {
  const size_t flags = JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY;
  if (!needs_normalising(v))
    return json_dumps(v, flags);
  json_t *n = normalised(v);
  char *s = n ? json_dumps(n, flags) : NULL;
  json_decref(n);
  return s;
}

uint32_t smc_murmur2(const void *key, size_t len) {
  /* MurmurHash2 as the Java client (and librdkafka's rd_murmur2) computes it:
   * seed 0x9747b28c, 4-byte words read little-endian, the tail as in Java. */
  const uint32_t m = 0x5bd1e995;
  const unsigned char *p = key;
  uint32_t h = 0x9747b28cu ^ (uint32_t)len;
  for (; len >= 4; len -= 4, p += 4) {
    uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    k *= m;
    k ^= k >> 24;
    k *= m;
    h *= m;
    h ^= k;
  }
  switch (len) {
  case 3:
    h ^= (uint32_t)p[2] << 16;
    /* fall through */
  case 2:
    h ^= (uint32_t)p[1] << 8;
    /* fall through */
  case 1:
    h ^= p[0];
    h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return h;
}

int32_t smc_partition_for(const void *key, size_t len, int32_t n) {
  return (int32_t)((smc_murmur2(key ? key : "", key ? len : 0) & 0x7fffffff) % (uint32_t)n);
}

char *smc_read_stream(FILE *f, size_t *len) {
  char *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      size_t ncap = cap ? cap * 2 : 8192;
      char *nb = realloc(buf, ncap);
      if (!nb) {
        free(buf);
        errno = ENOMEM;
        return NULL;
      }
      buf = nb;
      cap = ncap;
    }
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0)
      break;
  }
  if (ferror(f)) {
    free(buf);
    errno = EIO;
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

char *smc_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = smc_read_stream(f, len);
  int saved = errno;
  fclose(f);
  errno = saved;
  return buf;
}

/* ---- scanning JSON text without parsing it ---- */

const char *smc_json_skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

/* p is at a string's opening quote: the position after its closing quote,
 * or NULL. */
const char *smc_json_skip_string(const char *p, const char *end) {
  for (p++; p < end; p++) {
    if (*p == '\\')
      p++;
    else if (*p == '"')
      return p + 1;
  }
  return NULL;
}

/* Skip one value at p: strings whole, objects and arrays by bracket depth,
 * scalars up to the next delimiter. The position after it, or NULL. */
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
      if (*p == '{' || *p == '[')
        depth++;
      else if ((*p == '}' || *p == ']') && --depth == 0)
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

/* A string at s->p (its opening quote) of printable ASCII without escapes:
 * its first byte and length, s->p after the closing quote; NULL if not. */
static const char *plain_str(plain_t *s, size_t *n) {
  const char *b = ++s->p, *p = b;
  while (p < s->end && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f && *p != '"' &&
         *p != '\\')
    p++;
  if (p >= s->end || *p != '"')
    return NULL;
  *n = (size_t)(p - b);
  s->p = p + 1;
  return b;
}

static json_t *plain_value(plain_t *s);

static json_t *plain_object(plain_t *s) {
  json_t *o = json_object();
  if (!o)
    return NULL;
  s->p++; /* '{' */
  plain_ws(s);
  if (s->p < s->end && *s->p == '}') {
    s->p++;
    return o;
  }
  for (;;) {
    size_t kn = 0;
    const char *k = s->p < s->end && *s->p == '"' ? plain_str(s, &kn) : NULL;
    char kbuf[128];
    if (!k || kn >= sizeof(kbuf))
      goto no;
    memcpy(kbuf, k, kn);
    kbuf[kn] = '\0';
    if (json_object_get(o, kbuf)) /* repeated: jansson decides */
      goto no;
    plain_ws(s);
    if (s->p >= s->end || *s->p++ != ':')
      goto no;
    plain_ws(s);
    json_t *v = plain_value(s);
    if (!v || json_object_setn_new_nocheck(o, kbuf, kn, v))
      goto no;
    int more = plain_next(s, '}');
    if (more > 0)
      continue;
    if (more == 0)
      return o;
    goto no;
  }
no:
  json_decref(o);
  return NULL;
}

static json_t *plain_array(plain_t *s) {
  json_t *a = json_array();
  if (!a)
    return NULL;
  s->p++; /* '[' */
  plain_ws(s);
  if (s->p < s->end && *s->p == ']') {
    s->p++;
    return a;
  }
  for (;;) {
    json_t *v = plain_value(s);
    if (!v || json_array_append_new(a, v))
      goto no;
    int more = plain_next(s, ']');
    if (more > 0)
      continue;
    if (more == 0)
      return a;
    goto no;
  }
no:
  json_decref(a);
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
    if (++s->depth > 64)
      return NULL;
    json_t *v = *s->p == '{' ? plain_object(s) : plain_array(s);
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
