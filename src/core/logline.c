/* Log lines in text, logfmt or JSON (logline.h). */
#include "core/logline.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int format = SMC_LOGFMT_TEXT;

static const char *const format_names[] = {"text", "logfmt", "json"};

void smc_logline_set_format(int f) {
  if (f >= SMC_LOGFMT_TEXT && f <= SMC_LOGFMT_JSON)
    atomic_store(&format, f);
}

int smc_logline_format(void) { return atomic_load(&format); }

int smc_logline_parse_format(const char *s) {
  for (int i = 0; s && i < 3; i++)
    if (!strcmp(s, format_names[i]))
      return i;
  return -1;
}

/* A line being built. A piece that does not fit is dropped whole, and so is
 * every piece after it (never half an escape), but the last RESERVE bytes
 * stay for closing a string, the JSON object and the line. */
enum { RESERVE = 8, MSG_MAX = 3000, FIELD_MAX = 256, MAX_FIELDS = 8 };
typedef struct {
  char buf[32768]; /* the longest line escaped 6 times over (\\u00XX) fits */
  size_t n;
  int full;
} line_t;

static void put(line_t *l, const char *s, size_t k) {
  if (l->full || k > sizeof l->buf - RESERVE - l->n) {
    l->full = 1;
    return;
  }
  memcpy(l->buf + l->n, s, k);
  l->n += k;
}

static void puts_(line_t *l, const char *s) { put(l, s, strlen(s)); }

/* A closing character, written into the reserve when the line is full. */
static void put_close(line_t *l, char c) {
  if (l->n < sizeof l->buf)
    l->buf[l->n++] = c;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p) {
  size_t k = p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 ? 2 : 0;
  for (size_t i = 1; i < k; i++)
    if ((p[i] & 0xC0) != 0x80)
      return 0;
  return k;
}

/* v as a JSON string. */
static void put_json(line_t *l, const char *v) {
  char esc[8];
  puts_(l, "\"");
  for (const unsigned char *p = (const unsigned char *)v; *p;) {
    if (*p == '"' || *p == '\\') {
      esc[0] = '\\', esc[1] = (char)*p;
      put(l, esc, 2);
      p++;
    } else if (*p < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", *p);
      puts_(l, esc);
      p++;
    } else if (*p < 0x80) {
      put(l, (const char *)p, 1);
      p++;
    } else {
      size_t k = utf8_len(p);
      if (k)
        put(l, (const char *)p, k);
      else
        puts_(l, "\\ufffd");
      p += k ? k : 1;
    }
  }
  put_close(l, '"');
}

/* v for text and logfmt: bare when it is one plain word (quote always
 * for the message), else quoted with " \ and control characters escaped. */
static void put_kv_value(line_t *l, const char *v, int always_quote) {
  int plain = !always_quote && *v;
  for (const unsigned char *p = (const unsigned char *)v; plain && *p; p++)
    plain = *p > ' ' && *p != '"' && *p != '=' && *p != '\\' && *p != 0x7f;
  if (plain) {
    puts_(l, v);
    return;
  }
  char esc[8];
  puts_(l, "\"");
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    if (*p == '"' || *p == '\\') {
      esc[0] = '\\', esc[1] = (char)*p;
      put(l, esc, 2);
    } else if (*p == '\n') {
      puts_(l, "\\n");
    } else if (*p < 0x20) {
      snprintf(esc, sizeof esc, "\\x%02x", *p);
      puts_(l, esc);
    } else {
      put(l, (const char *)p, 1);
    }
  }
  put_close(l, '"');
}

/* Copy at most max bytes of v into out (cap > max): the line's bounds. */
static const char *clip(const char *v, char *out, size_t cap, size_t max) {
  size_t k = strlen(v);
  if (k <= max)
    return v;
  snprintf(out, cap, "%.*s...", (int)max, v);
  return out;
}

static void put_field(line_t *l, int f, const char *key, const char *str, long long num, int is_num,
                      int quote) {
  char nb[32], cut[MSG_MAX + 8];
  if (str)
    str = clip(str, cut, sizeof cut, quote ? MSG_MAX : FIELD_MAX);
  if (!str)
    snprintf(nb, sizeof nb, "%lld", num);
  if (f == SMC_LOGFMT_JSON) {
    puts_(l, ",");
    put_json(l, key);
    puts_(l, ":");
    if (str)
      put_json(l, str);
    else
      puts_(l, is_num ? nb : "null");
    return;
  }
  puts_(l, " ");
  puts_(l, key);
  puts_(l, "=");
  put_kv_value(l, str ? str : nb, quote);
}

void smc_logline_write(const char *level, const smc_logfield_t *fields, size_t nf,
                       const char *msg) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40];
  size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + w, sizeof when - w, ".%03ldZ", ts.tv_nsec / 1000000L);
  int f = atomic_load(&format);
  line_t l;
  l.n = 0;
  l.full = 0;
  if (f == SMC_LOGFMT_JSON) {
    puts_(&l, "{\"time\":\"");
    puts_(&l, when);
    puts_(&l, "\",\"level\":");
    put_json(&l, level);
  } else {
    if (f == SMC_LOGFMT_LOGFMT)
      puts_(&l, "time=");
    puts_(&l, when);
    puts_(&l, " level=");
    puts_(&l, level);
  }
  for (size_t i = 0; i < nf && i < MAX_FIELDS; i++)
    if (fields[i].str || fields[i].is_num)
      put_field(&l, f, fields[i].key, fields[i].str, fields[i].num, fields[i].is_num, 0);
  put_field(&l, f, "msg", msg ? msg : "", 0, 0, 1);
  if (f == SMC_LOGFMT_JSON)
    put_close(&l, '}');
  put_close(&l, '\n');
  /* One write(2) per line keeps lines from different threads whole. */
  ssize_t r = write(STDERR_FILENO, l.buf, l.n);
  (void)r;
}
