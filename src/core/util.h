/* Small shared helpers: hashing, canonical JSON, partition keys. */
#ifndef SMC_CORE_UTIL_H
#define SMC_CORE_UTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Canonical JSON (keys sorted, no spaces, integers as integers), malloc'd
 * NUL-terminated string, or NULL on allocation failure. Caller frees. */
char *smc_json_canonical(const json_t *v);

/* Everything readable from f into a malloc'd NUL-terminated buffer (*len
 * excludes the NUL). NULL with errno set on failure. f stays open. */
char *smc_read_stream(FILE *f, size_t *len);

/* The whole file at path, as smc_read_stream. */
char *smc_read_file(const char *path, size_t *len);

/* MurmurHash2 of key as Kafka's Java client and librdkafka's murmur2
 * partitioner compute it (tests/unit/test_util.c checks it against
 * librdkafka on many keys). */
uint32_t smc_murmur2(const void *key, size_t len);

/* Java-client default partition of key among n > 0 partitions:
 * (murmur2(key) & 0x7fffffff) % n; a NULL key hashes as the empty one. */
int32_t smc_partition_for(const void *key, size_t len, int32_t n);

/* t + d for times and durations in ms, saturated at INT64_MAX / INT64_MIN
 * instead of overflowing: a record timestamp is any int64 a producer chose
 * (CreateTime), so every deadline the fold computes from the clock goes
 * through here. */
static inline int64_t smc_time_add(int64_t t, int64_t d) {
  int64_t r;
  if (__builtin_add_overflow(t, d, &r))
    return d > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

/* Big-endian encoders for key building. */
static inline void smc_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline uint32_t smc_get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void smc_be64(uint8_t *p, uint64_t v) {
  smc_be32(p, (uint32_t)(v >> 32));
  smc_be32(p + 4, (uint32_t)v);
}
static inline uint64_t smc_get_be64(const uint8_t *p) {
  return ((uint64_t)smc_get_be32(p) << 32) | smc_get_be32(p + 4);
}

#endif
