/* Hashing bytes for in-memory tables and filters: the one hash of smc's
 * hash tables (the fold's overlay, the store's filter of decided ids). It is
 * never stored or sent, so it may change between versions. */
#ifndef SMC_BASE_HASH_H
#define SMC_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A 64-bit hash of the n bytes at p under seed (different seeds give
 * independent hashes of the same bytes). Inline: the fold hashes every key
 * it reads or writes. */
static inline uint64_t smc_hash64(const void *p, size_t n, uint64_t seed) {
  const uint8_t *b = p;
  uint64_t h = 0x9e3779b97f4a7c15ULL * (seed + 1) ^ (n * 0xff51afd7ed558ccdULL);
  for (; n >= 8; b += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, b, 8);
    h = (h ^ (w * 0x87c37b91114253d5ULL)) * 0x4cf5ad432745937fULL;
    h ^= h >> 31;
  }
  uint64_t w = 0;
  for (size_t i = 0; i < n; i++)
    w |= (uint64_t)b[i] << (8 * i);
  h = (h ^ (w * 0x87c37b91114253d5ULL)) * 0x4cf5ad432745937fULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 29;
  return h;
}

#endif
