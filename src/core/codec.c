/* The event codec (see codec.h). */
#include "core/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/json_scan.h"
#include "core/util.h"

/* ---- byte buffer ---- */

void smc_buf_init(smc_buf_t *b) { memset(b, 0, sizeof(*b)); }
void smc_buf_close(smc_buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof(*b));
}
void smc_buf_reset(smc_buf_t *b) {
  b->len = 0;
  b->oom = 0;
}

int smc_buf_grow(smc_buf_t *b, size_t n) {
  if (b->oom)
    return -1;
  if (b->len + n + 1 <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 256; /* most keys and records fit at once */
  while (cap < b->len + n + 1)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void smc_buf_reserve(smc_buf_t *b, size_t n) { (void)smc_buf_grow(b, n); }
void smc_buf_add_i64(smc_buf_t *b, int64_t v) {
  char tmp[24], *e = tmp + sizeof(tmp), *q = e;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v; /* INT64_MIN too */
  do
    *--q = (char)('0' + u % 10);
  while (u /= 10);
  if (v < 0)
    *--q = '-';
  smc_buf_add(b, q, (size_t)(e - q));
}
/* The letter of the two-byte escape of ch in a JSON string ('n' for a line
 * feed), 'u' for the \u00XX form of the other control bytes, 0 for a byte
 * written as it is. The one escape table of the writer and its sizer. */
static char jstr_escape(unsigned char ch) {
  static const char letter[0x20] = {
      ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
  if (ch == '"' || ch == '\\')
    return (char)ch;
  if (ch >= 0x20)
    return 0;
  return letter[ch] ? letter[ch] : 'u';
}

void smc_buf_add_jstr(smc_buf_t *b, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  smc_buf_addc(b, '"');
  const char *run = s;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    char e = jstr_escape(ch);
    if (!e)
      continue;
    smc_buf_add(b, run, (size_t)(s - run));
    run = s + 1;
    char esc[6] = {'\\', e, '0', '0', hex[ch >> 4], hex[ch & 15]};
    smc_buf_add(b, esc, e == 'u' ? 6 : 2);
  }
  smc_buf_add(b, run, (size_t)(s - run));
  smc_buf_addc(b, '"');
}

void smc_buf_add_kstr(smc_buf_t *b, const char *key, const char *s) {
  smc_buf_adds(b, key);
  smc_buf_add_jstr(b, s);
}
void smc_buf_add_ki64(smc_buf_t *b, const char *key, int64_t v) {
  smc_buf_adds(b, key);
  smc_buf_add_i64(b, v);
}

/* Bytes smc_buf_add_jstr (and jansson) write for the n bytes at s. */
static size_t jstr_size(const unsigned char *s, size_t n) {
  size_t len = n + 2;
  for (size_t i = 0; i < n; i++) {
    char e = jstr_escape(s[i]);
    len += !e ? 0 : e == 'u' ? 5 : 1;
  }
  return len;
}

size_t smc_canonical_size(const json_t *v, size_t limit) {
  size_t n = 2, i;
  const char *k;
  json_t *e;
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    json_object_foreach((json_t *)v, k, e) {
      n += (n > 2) + jstr_size((const unsigned char *)k, strlen(k)) + 1;
      n += smc_canonical_size(e, limit);
      if (n > limit)
        return n;
    }
    return n;
  case JSON_ARRAY:
    json_array_foreach(v, i, e) {
      n += (i > 0) + smc_canonical_size(e, limit);
      if (n > limit)
        return n;
    }
    return n;
  case JSON_STRING:
    return jstr_size((const unsigned char *)json_string_value(v), json_string_length(v));
  case JSON_INTEGER: {
    json_int_t x = json_integer_value(v);
    uint64_t u = x < 0 ? 0 - (uint64_t)x : (uint64_t)x; /* INT64_MIN too */
    for (n = 1 + (x < 0); u >= 10; u /= 10)
      n++;
    return n;
  }
  case JSON_REAL: { /* rare: measure what smc_json_canonical writes */
    char *c = smc_json_canonical(v);
    n = c ? strlen(c) : limit + 1;
    free(c);
    return n;
  }
  case JSON_TRUE:
    return 4;
  case JSON_FALSE:
    return 5;
  default:
    return 4;
  }
}

typedef struct member {
  const char *key;
  const json_t *val;
} member_t;

static int member_order(const void *a, const void *b) {
  return strcmp(((const member_t *)a)->key, ((const member_t *)b)->key);
}

/* Canonical text of v without reals (see codec.h): keys sorted byte-wise,
 * strings escaped as jansson's compact output does. */
static int add_canonical(smc_buf_t *b, const json_t *v, int depth) {
  if (depth > 64)
    return 1;
  switch (json_typeof(v)) {
  case JSON_STRING:
    if (strlen(json_string_value(v)) != json_string_length(v))
      return 1; /* an embedded NUL: jansson's own escaping */
    smc_buf_add_jstr(b, json_string_value(v));
    return 0;
  case JSON_INTEGER:
    smc_buf_add_i64(b, (int64_t)json_integer_value(v));
    return 0;
  case JSON_TRUE:
    smc_buf_add(b, "true", 4);
    return 0;
  case JSON_FALSE:
    smc_buf_add(b, "false", 5);
    return 0;
  case JSON_NULL:
    smc_buf_add(b, "null", 4);
    return 0;
  case JSON_ARRAY:
    smc_buf_addc(b, '[');
    for (size_t i = 0; i < json_array_size(v); i++) {
      if (i)
        smc_buf_addc(b, ',');
      if (add_canonical(b, json_array_get(v, i), depth + 1))
        return 1;
    }
    smc_buf_addc(b, ']');
    return 0;
  case JSON_OBJECT: {
    /* members sorted by key (byte-wise), each value kept with its key so
     * no lookup is needed to write it */
    size_t n = json_object_size(v), i = 0;
    member_t small[16], *mem = n <= 16 ? small : malloc(n * sizeof(*mem));
    if (!mem) {
      b->oom = 1;
      return 0;
    }
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e) {
      mem[i].key = k;
      mem[i++].val = e;
    }
    if (n <= 16) { /* the usual few keys: insertion sort, no callback */
      for (size_t a = 1; a < n; a++) {
        member_t x = mem[a];
        size_t at = a;
        for (; at > 0 && strcmp(mem[at - 1].key, x.key) > 0; at--)
          mem[at] = mem[at - 1];
        mem[at] = x;
      }
    } else {
      qsort(mem, n, sizeof(*mem), member_order);
    }
    int rc = 0;
    smc_buf_addc(b, '{');
    for (i = 0; i < n && !rc; i++) {
      if (i)
        smc_buf_addc(b, ',');
      smc_buf_add_jstr(b, mem[i].key);
      smc_buf_addc(b, ':');
      rc = add_canonical(b, mem[i].val, depth + 1);
    }
    smc_buf_addc(b, '}');
    if (mem != small)
      free(mem);
    return rc;
  }
  default:
    return 1; /* a real: integral ones are written as integers, others by jansson */
  }
}

int smc_buf_add_canonical(smc_buf_t *b, const json_t *v) {
  size_t at = b->len;
  if (!add_canonical(b, v, 0))
    return 0;
  b->len = at; /* not for this writer: leave b as it was */
  if (b->p)
    b->p[at] = '\0';
  return 1;
}

void smc_buf_put_u8(smc_buf_t *b, uint8_t v) { smc_buf_add(b, &v, 1); }
void smc_buf_put_u32(smc_buf_t *b, uint32_t v) {
  uint8_t t[4];
  smc_be32(t, v);
  smc_buf_add(b, t, 4);
}
void smc_buf_put_i64(smc_buf_t *b, int64_t v) {
  uint8_t t[8];
  smc_be64(t, (uint64_t)v);
  smc_buf_add(b, t, 8);
}
void smc_buf_put_str(smc_buf_t *b, const char *s) {
  if (!s) {
    smc_buf_put_u32(b, 0xffffffffu);
    return;
  }
  size_t n = strlen(s);
  smc_buf_put_u32(b, (uint32_t)n);
  smc_buf_add(b, s, n);
}

/* The n bytes at the reader's position (which moves past them), or NULL
 * when fewer are left: the reader is then bad for good. */
static const uint8_t *rd_take(smc_rd_t *r, size_t n) {
  if (r->bad || r->pos + n > r->len) {
    r->bad = 1;
    return NULL;
  }
  const uint8_t *b = r->p + r->pos;
  r->pos += n;
  return b;
}

uint8_t smc_rd_u8(smc_rd_t *r) {
  const uint8_t *b = rd_take(r, 1);
  return b ? *b : 0;
}
uint32_t smc_rd_u32(smc_rd_t *r) {
  const uint8_t *b = rd_take(r, 4);
  return b ? smc_get_be32(b) : 0;
}
int64_t smc_rd_i64(smc_rd_t *r) {
  const uint8_t *b = rd_take(r, 8);
  return b ? (int64_t)smc_get_be64(b) : 0;
}
const uint8_t *smc_rd_bytes(smc_rd_t *r, uint32_t *n) {
  *n = smc_rd_u32(r);
  if (r->bad || *n == 0xffffffffu)
    return NULL;
  return rd_take(r, *n);
}

char *smc_rd_str(smc_rd_t *r) {
  uint32_t n;
  const uint8_t *b = smc_rd_bytes(r, &n);
  if (!b)
    return NULL;
  char *s = malloc((size_t)n + 1);
  if (!s) {
    r->bad = 1;
    return NULL;
  }
  memcpy(s, b, n);
  s[n] = '\0';
  return s;
}

/* ---- decoding ---- */

const char *smc_event_type_name(smc_event_type_t t) {
  switch (t) {
  case SMC_EV_PROPOSAL:
    return "proposal";
  case SMC_EV_VOTE:
    return "vote";
  case SMC_EV_READ:
    return "read";
  case SMC_EV_TICK:
    return "tick";
  case SMC_EV_MACHINE:
    return "machine";
  case SMC_EV_SETTINGS:
    return "settings";
  }
  return "unknown";
}

enum { OPTIONAL = 0, REQUIRED = 1 };

/* Run a field check (with int rc, e in scope): the first error is kept. */
#define KEEP(x)                                                                                    \
  do {                                                                                             \
    e = (x);                                                                                       \
    if (e && !rc)                                                                                  \
      rc = e;                                                                                      \
  } while (0)

/* String field: absent -> NULL (bad_request when required); present with
 * another type, empty (when required) or longer than maxlen -> bad_request.
 * Records the first error in err and returns its code. */
static int str_field(json_t *root, const char *name, int required, size_t maxlen, const char **out,
                     smc_error_t *err) {
  *out = NULL;
  json_t *v = json_object_get(root, name);
  if (!v || json_is_null(v)) {
    if (required)
      return smc_error_set(err, SMC_EBAD_REQUEST, name, "missing field '%s'", name);
    return 0;
  }
  if (!json_is_string(v))
    return smc_error_set(err, SMC_EBAD_REQUEST, name, "field '%s' must be a string", name);
  size_t n = json_string_length(v);
  if (required && n == 0)
    return smc_error_set(err, SMC_EBAD_REQUEST, name, "field '%s' must not be empty", name);
  if (maxlen && n > maxlen)
    return smc_error_set(err, SMC_EBAD_REQUEST, name, "field '%s' is longer than %zu bytes", name,
                         maxlen);
  *out = json_string_value(v);
  return 0;
}

static int decode_proposal(smc_event_t *ev, smc_error_t *err) {
  json_t *r = ev->root;
  int rc = 0, e;
  KEEP(str_field(r, "id", OPTIONAL, SMC_CODEC_MAX_ID, &ev->id, err));
  if (ev->id && !*ev->id) {
    ev->id = NULL;
    KEEP(smc_error_set(err, SMC_EBAD_REQUEST, "id", "field 'id' must not be empty"));
  }
  KEEP(str_field(r, "object", REQUIRED, SMC_CODEC_MAX_ID, &ev->object, err));
  KEEP(str_field(r, "machine", OPTIONAL, SMC_CODEC_MAX_ID, &ev->machine, err));
  KEEP(str_field(r, "transition", OPTIONAL, SMC_CODEC_MAX_ID, &ev->transition, err));
  KEEP(str_field(r, "to", OPTIONAL, SMC_CODEC_MAX_ID, &ev->to, err));
  KEEP(str_field(r, "proposer", OPTIONAL, SMC_CODEC_MAX_ID, &ev->proposer, err));
  json_t *d = json_object_get(r, "data");
  if (d && !json_is_null(d)) {
    if (!json_is_object(d))
      KEEP(smc_error_set(err, SMC_EBAD_REQUEST, "data", "field 'data' must be an object"));
    else
      ev->data = d;
  }
  json_t *x = json_object_get(r, "expect_version");
  if (x && !json_is_null(x)) {
    if (!json_is_integer(x) || json_integer_value(x) < 0)
      KEEP(smc_error_set(err, SMC_EBAD_REQUEST, "expect_version",
                         "field 'expect_version' must be an integer >= 0"));
    else {
      ev->has_expect = 1;
      ev->expect_version = json_integer_value(x);
    }
  }
  if (rc)
    return rc;
  if (!ev->id) {
    if (smc_proposal_derive_id(ev->object, ev->has_expect, ev->expect_version, ev->transition,
                               ev->data, ev->id_buf))
      return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    ev->id = ev->id_buf;
    ev->id_derived = 1;
  }
  return 0;
}

static int decode_vote(smc_event_t *ev, smc_error_t *err) {
  json_t *r = ev->root;
  int rc = 0, e;
  KEEP(str_field(r, "proposal", REQUIRED, SMC_CODEC_MAX_ID, &ev->proposal, err));
  KEEP(str_field(r, "object", REQUIRED, SMC_CODEC_MAX_ID, &ev->object, err));
  KEEP(str_field(r, "voter", REQUIRED, SMC_CODEC_MAX_ID, &ev->voter, err));
  KEEP(str_field(r, "machine", OPTIONAL, SMC_CODEC_MAX_ID, &ev->machine, err));
  KEEP(str_field(r, "reason", OPTIONAL, 0, &ev->reason, err));
  KEEP(str_field(r, "signature", OPTIONAL, 0, &ev->signature, err));
  json_t *a = json_object_get(r, "accept");
  if (!a)
    KEEP(smc_error_set(err, SMC_EBAD_REQUEST, "accept", "missing field 'accept'"));
  else if (!json_is_boolean(a))
    KEEP(smc_error_set(err, SMC_EBAD_REQUEST, "accept", "field 'accept' must be a boolean"));
  else
    ev->accept = json_is_true(a);
  return rc;
}

static int decode_read(smc_event_t *ev, smc_error_t *err) {
  int rc = str_field(ev->root, "id", REQUIRED, SMC_CODEC_MAX_ID, &ev->id, err);
  int e = str_field(ev->root, "object", REQUIRED, SMC_CODEC_MAX_ID, &ev->object, err);
  return rc ? rc : e;
}

static int decode_machine(smc_event_t *ev, smc_error_t *err) {
  json_t *r = ev->root;
  int rc = 0, e;
  KEEP(str_field(r, "name", REQUIRED, SMC_CODEC_MAX_ID, &ev->name, err));
  KEEP(str_field(r, "hash", OPTIONAL, 64, &ev->hash, err));
  KEEP(str_field(r, "definition", REQUIRED, 0, &ev->definition, err));
  KEEP(str_field(r, "id", OPTIONAL, SMC_CODEC_MAX_ID, &ev->id, err));
  KEEP(str_field(r, "signature", OPTIONAL, 0, &ev->signature, err));
  if (ev->definition)
    ev->definition_len = json_string_length(json_object_get(r, "definition"));
  return rc;
}

/* settings: "limits" an object, "fold" a positive integer (default 1). The
 * names and values inside limits are the fold's to judge: a name this code
 * does not know may be one a newer fold knows (see "fold"). */
static int decode_settings(smc_event_t *ev, smc_error_t *err) {
  json_t *l = json_object_get(ev->root, "limits"), *f = json_object_get(ev->root, "fold");
  ev->fold_version = 1;
  if (f && (!json_is_integer(f) || json_integer_value(f) < 1))
    return smc_error_set(err, SMC_EBAD_REQUEST, "fold", "field 'fold' must be a positive integer");
  if (f)
    ev->fold_version = json_integer_value(f);
  if (!l)
    return smc_error_set(err, SMC_EBAD_REQUEST, "limits", "missing field 'limits'");
  if (!json_is_object(l))
    return smc_error_set(err, SMC_EBAD_REQUEST, "limits", "field 'limits' must be an object");
  ev->limits = l;
  int rc = str_field(ev->root, "signature", OPTIONAL, 0, &ev->signature, err);
  int e = str_field(ev->root, "id", OPTIONAL, SMC_CODEC_MAX_ID, &ev->id, err);
  return rc ? rc : e;
}

/* ---- fast path for plain proposals ----
 *
 * Most records are proposals whose fields are short ASCII strings without
 * escapes. decode_fast reads such a value in one pass over a private copy
 * (strings are terminated in place) and parses only "data" with jansson.
 * Anything else (another type, an escape, non-ASCII bytes, null, an unknown
 * or repeated field, a value that would be refused) is left to the jansson
 * path, so every error and every unusual input decodes exactly as before;
 * test_codec and fuzz_codec check that both paths agree. */

enum { FAST_NO = 1 };

static const char *const fast_keys[] = {"type",           "id",          "object",   "machine",
                                        "transition",     "to",          "proposer", "data",
                                        "expect_version", "correlation", "reply_to"};
enum {
  FK_TYPE,
  FK_ID,
  FK_OBJECT,
  FK_MACHINE,
  FK_TRANSITION,
  FK_TO,
  FK_PROPOSER,
  FK_DATA,
  FK_EXPECT,
  FK_CORRELATION,
  FK_REPLY_TO,
  FK_COUNT
};
static const unsigned char fast_key_len[FK_COUNT] = {4, 2, 6, 7, 10, 2, 8, 4, 14, 11, 8};

/* The FK_* index of the key of n bytes at k, or FK_COUNT when it is not
 * one of fast_keys (compared by length first: no strcmp per candidate). */
static int fast_key(const char *k, size_t n) {
  for (int i = 0; i < FK_COUNT; i++)
    if (fast_key_len[i] == n && !memcmp(k, fast_keys[i], n))
      return i;
  return FK_COUNT;
}

/* A plain string at p (its opening quote; json_scan.h), terminated in
 * place: the byte after it, or NULL. */
static char *fast_str(char *p, const char *end, size_t *n) {
  const char *q = smc_json_plain_string(p, end, n);
  if (!q)
    return NULL;
  p[1 + *n] = '\0';
  return (char *)q;
}

static int decode_fast(const char *value, size_t len, const char *hdr_correlation,
                       const char *hdr_reply_to, smc_event_t *ev) {
  char *buf = malloc(len + 1);
  if (!buf)
    return SMC_ENOMEM;
  memcpy(buf, value, len);
  buf[len] = '\0';
  const char *end = buf + len;
  const char *val[FK_COUNT] = {0};
  size_t vlen[FK_COUNT] = {0};
  json_t *data = NULL;
  int64_t expect = 0;
  char *p = (char *)smc_json_skip_ws(buf, end);
  if (*p++ != '{')
    goto no;
  p = (char *)smc_json_skip_ws(p, end);
  for (;;) {
    size_t kn = 0;
    if (*p != '"')
      goto no;
    char *key = p + 1;
    if (!(p = fast_str(p, end, &kn)))
      goto no;
    int k = fast_key(key, kn);
    if (k == FK_COUNT || val[k])
      goto no;
    p = (char *)smc_json_skip_ws(p, end);
    if (*p++ != ':')
      goto no;
    p = (char *)smc_json_skip_ws(p, end);
    if (k == FK_DATA) {
      const char *e = *p == '{' ? smc_json_skip_value(p, end) : NULL;
      if (!e || !(data = smc_json_loadb(p, (size_t)(e - p), JSON_REJECT_DUPLICATES)))
        goto no;
      val[k] = p;
      p = (char *)e;
    } else if (k == FK_EXPECT) {
      const char *s = p;
      while (*p >= '0' && *p <= '9')
        p++;
      size_t n = (size_t)(p - s);
      if (n == 0 || n > 18 || (n > 1 && *s == '0') || *p == '.' || *p == 'e' || *p == 'E')
        goto no;
      expect = 0;
      for (const char *d = s; d < p; d++)
        expect = expect * 10 + (*d - '0');
      val[k] = s;
    } else {
      if (*p != '"')
        goto no;
      val[k] = p + 1;
      if (!(p = fast_str(p, end, &vlen[k])))
        goto no;
    }
    p = (char *)smc_json_skip_ws(p, end);
    if (*p == ',') {
      p = (char *)smc_json_skip_ws(p + 1, end);
      continue;
    }
    if (*p++ != '}')
      goto no;
    break;
  }
  if (smc_json_skip_ws(p, end) != end)
    goto no;
  /* only what the jansson path accepts without an error */
  if (!val[FK_TYPE] || strcmp(val[FK_TYPE], "proposal") || !val[FK_OBJECT] || !vlen[FK_OBJECT] ||
      (val[FK_ID] && !vlen[FK_ID]) || (val[FK_REPLY_TO] && vlen[FK_REPLY_TO] > 249))
    goto no;
  for (int k = FK_ID; k <= FK_PROPOSER; k++)
    if (vlen[k] > SMC_CODEC_MAX_ID)
      goto no;
  if (vlen[FK_CORRELATION] > SMC_CODEC_MAX_CORRELATION)
    goto no; /* the jansson path reports it */
  ev->type = SMC_EV_PROPOSAL;
  ev->own = buf;
  ev->root = data;
  ev->data = data;
  ev->id = val[FK_ID];
  ev->object = val[FK_OBJECT];
  ev->machine = val[FK_MACHINE];
  ev->transition = val[FK_TRANSITION];
  ev->to = val[FK_TO];
  ev->proposer = val[FK_PROPOSER];
  ev->has_expect = val[FK_EXPECT] != NULL;
  ev->expect_version = expect;
  ev->correlation = val[FK_CORRELATION] ? val[FK_CORRELATION]
                    : hdr_correlation && strlen(hdr_correlation) <= SMC_CODEC_MAX_CORRELATION
                        ? hdr_correlation
                        : NULL;
  ev->reply_to = val[FK_REPLY_TO]                ? val[FK_REPLY_TO]
                 : hdr_reply_to && *hdr_reply_to ? hdr_reply_to
                                                 : NULL;
  if (!ev->id) {
    if (smc_proposal_derive_id(ev->object, ev->has_expect, ev->expect_version, ev->transition,
                               ev->data, ev->id_buf))
      return SMC_ENOMEM; /* the caller closes ev (buf and data are in it) */
    ev->id = ev->id_buf;
    ev->id_derived = 1;
  }
  return 0;
no:
  json_decref(data);
  free(buf);
  memset(ev, 0, sizeof(*ev));
  return FAST_NO;
}

int smc_event_decode_json(const void *value, size_t len, size_t max_bytes,
                          const char *hdr_correlation, const char *hdr_reply_to, smc_event_t *ev,
                          smc_error_t *err) {
  memset(ev, 0, sizeof(*ev));
  if (max_bytes && len > max_bytes) {
    /* Read it anyway (within a bound) for who sent it: a proposal or read
     * with an id and an object is then answered too_large instead of
     * dropped, so its proposer learns why rather than timing out. The
     * limit stays what decides: nothing else of the event is used. */
    smc_error_t ignored;
    smc_error_clear(&ignored);
    int irc = len > SMC_CODEC_ANSWER_MAX ? SMC_ETOO_LARGE
                                         : smc_event_decode_json(value, len, 0, hdr_correlation,
                                                                 hdr_reply_to, ev, &ignored);
    /* kept when it can be answered, even if another field is bad too */
    if (irc && (irc == SMC_ENOMEM || !ev->id || !ev->object)) {
      smc_event_close(ev);
      memset(ev, 0, sizeof(*ev));
    }
    /* the answer echoes these: keep it small whatever the event held (an
     * answer over the broker's message size could never be published) */
    if (ev->correlation && strlen(ev->correlation) > SMC_CODEC_MAX_CORRELATION)
      ev->correlation = NULL;
    if (ev->machine && strlen(ev->machine) > SMC_CODEC_MAX_ID)
      ev->machine = NULL;
    if (ev->transition && strlen(ev->transition) > SMC_CODEC_MAX_ID)
      ev->transition = NULL;
    return smc_error_set(err, SMC_ETOO_LARGE, NULL,
                         "event of %zu bytes is larger than the limit of %zu", len, max_bytes);
  }
  if (!value || len == 0)
    return smc_error_set(err, SMC_EBAD_REQUEST, NULL, "empty event");
  json_error_t jerr;
  ev->root = smc_json_load_plain(value, len);
  if (!ev->root)
    ev->root = json_loadb(value, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!ev->root)
    return smc_error_set(err, SMC_EBAD_REQUEST, NULL, "not JSON: %s (line %d, column %d)",
                         jerr.text, jerr.line, jerr.column);
  if (!json_is_object(ev->root))
    return smc_error_set(err, SMC_EBAD_REQUEST, NULL, "an event must be a JSON object");

  int rc = 0, e;
  e = str_field(ev->root, "correlation", OPTIONAL, SMC_CODEC_MAX_CORRELATION, &ev->correlation,
                err);
  rc = rc ? rc : e;
  e = str_field(ev->root, "reply_to", OPTIONAL, 249, &ev->reply_to, err);
  rc = rc ? rc : e;
  if (!ev->correlation && hdr_correlation && !json_object_get(ev->root, "correlation") &&
      strlen(hdr_correlation) <= SMC_CODEC_MAX_CORRELATION)
    ev->correlation = hdr_correlation;
  if (!ev->reply_to && hdr_reply_to && *hdr_reply_to && !json_object_get(ev->root, "reply_to"))
    ev->reply_to = hdr_reply_to;

  const char *type = NULL;
  e = str_field(ev->root, "type", REQUIRED, 0, &type, err);
  if (e)
    return rc ? rc : e;
  if (!strcmp(type, "proposal"))
    ev->type = SMC_EV_PROPOSAL, e = decode_proposal(ev, err);
  else if (!strcmp(type, "vote"))
    ev->type = SMC_EV_VOTE, e = decode_vote(ev, err);
  else if (!strcmp(type, "read"))
    ev->type = SMC_EV_READ, e = decode_read(ev, err);
  else if (!strcmp(type, "tick"))
    ev->type = SMC_EV_TICK, e = 0;
  else if (!strcmp(type, "machine"))
    ev->type = SMC_EV_MACHINE, e = decode_machine(ev, err);
  else if (!strcmp(type, "settings"))
    ev->type = SMC_EV_SETTINGS, e = decode_settings(ev, err);
  else
    return smc_error_set(err, SMC_EBAD_REQUEST, "type", "unknown event type '%s'", type);
  return rc ? rc : e;
}

int smc_event_decode(const void *value, size_t len, size_t max_bytes, const char *hdr_correlation,
                     const char *hdr_reply_to, smc_event_t *ev, smc_error_t *err) {
  memset(ev, 0, sizeof(*ev));
  if (value && len > 0 && (!max_bytes || len <= max_bytes)) {
    int rc = decode_fast(value, len, hdr_correlation, hdr_reply_to, ev);
    if (rc == SMC_ENOMEM)
      return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    if (rc == 0)
      return 0;
  }
  return smc_event_decode_json(value, len, max_bytes, hdr_correlation, hdr_reply_to, ev, err);
}

void smc_event_close(smc_event_t *ev) {
  json_decref(ev->root);
  ev->root = NULL;
  free(ev->own);
  ev->own = NULL;
}

int smc_proposal_derive_id(const char *object, int has_expect, int64_t expect_version,
                           const char *transition, const json_t *data, char out[65]) {
  smc_buf_t b;
  smc_buf_init(&b);
  smc_buf_adds(&b, object ? object : "");
  smc_buf_addc(&b, '\n');
  if (has_expect)
    smc_buf_add_i64(&b, expect_version);
  smc_buf_addc(&b, '\n');
  smc_buf_adds(&b, transition ? transition : "");
  smc_buf_addc(&b, '\n');
  if (data) {
    char *c = smc_json_canonical(data);
    if (!c) {
      smc_buf_close(&b);
      return SMC_ENOMEM;
    }
    smc_buf_adds(&b, c);
    free(c);
  } else {
    smc_buf_adds(&b, "{}");
  }
  int rc = b.oom ? SMC_ENOMEM : 0;
  if (!rc)
    smc_sha256_hex(b.p, b.len, out);
  smc_buf_close(&b);
  return rc;
}

/* ",\"key\":" and s, when s is given; the first member opens the object. */
static void opt_kstr(smc_buf_t *b, int *first, const char *key, const char *s) {
  if (!s)
    return;
  smc_buf_adds(b, *first ? "{\"" : ",\"");
  smc_buf_adds(b, key);
  smc_buf_adds(b, "\":");
  smc_buf_add_jstr(b, s);
  *first = 0;
}

void smc_codec_proposal_json(smc_buf_t *b, const smc_codec_proposal_t *p) {
  int first = 1; /* members in the order of their keys, as JSON_SORT_KEYS */
  opt_kstr(b, &first, "correlation", p->correlation);
  if (p->data) {
    smc_buf_adds(b, first ? "{\"data\":" : ",\"data\":");
    first = 0;
    if (smc_buf_add_canonical(b, p->data)) { /* reals: jansson's own text */
      char *t = json_dumps(p->data, JSON_COMPACT | JSON_SORT_KEYS);
      if (t)
        smc_buf_adds(b, t);
      else
        b->oom = 1;
      free(t);
    }
  }
  if (p->expect_version >= 0) {
    smc_buf_adds(b, first ? "{\"expect_version\":" : ",\"expect_version\":");
    first = 0;
    smc_buf_add_i64(b, p->expect_version);
  }
  opt_kstr(b, &first, "id", p->id);
  opt_kstr(b, &first, "machine", p->machine);
  opt_kstr(b, &first, "object", p->object);
  opt_kstr(b, &first, "proposer", p->proposer);
  opt_kstr(b, &first, "to", p->to);
  opt_kstr(b, &first, "transition", p->transition);
  smc_buf_adds(b, first ? "{\"type\":\"proposal\"}" : ",\"type\":\"proposal\"}");
}

void smc_codec_vote_json(smc_buf_t *b, const char *proposal, const char *object, const char *voter,
                         int accept, const char *machine, const char *reason,
                         const char *signature) {
  smc_buf_adds(b, accept ? "{\"accept\":true" : "{\"accept\":false");
  if (machine)
    smc_buf_add_kstr(b, ",\"machine\":", machine);
  smc_buf_add_kstr(b, ",\"object\":", object);
  smc_buf_add_kstr(b, ",\"proposal\":", proposal);
  if (reason)
    smc_buf_add_kstr(b, ",\"reason\":", reason);
  if (signature)
    smc_buf_add_kstr(b, ",\"signature\":", signature);
  smc_buf_add_kstr(b, ",\"type\":\"vote\",\"voter\":", voter);
  smc_buf_addc(b, '}');
}
