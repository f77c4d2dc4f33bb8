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
