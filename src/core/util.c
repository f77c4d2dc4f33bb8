#include "core/util.h"

#include <librdkafka/rdkafka.h>
#include <math.h>
#include <openssl/sha.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void smc_sha256_hex(const void *data, size_t len, char out[65]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char md[SHA256_DIGEST_LENGTH];
  /* The one-shot SHA256() skips OpenSSL 3's per-call digest fetch. */
  SHA256(data, len, md);
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
}

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

int32_t smc_partition_for(const void *key, size_t len, int32_t n) {
  /* librdkafka's murmur2 partitioner is the Java client's default one; it
   * does not use the topic handle. */
  return rd_kafka_msg_partitioner_murmur2(NULL, key, len, n, NULL, NULL);
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
