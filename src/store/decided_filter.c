/* The store's filter of decided proposal ids (store_int.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "core/util.h"
#include "store/store_int.h"

/*
 * Filter of decided proposal ids, in front of the SMC_CF_DECIDED lookups:
 * almost every proposal carries a new id, and asking RocksDB for an absent
 * key (memtable bloom, then every table's bloom) cost ~11% of the fold. A
 * blocked bloom filter (one 64-byte block per key, 6 bits) answers "absent"
 * exactly: every key that can be in SMC_CF_DECIDED has its bits set before
 * the write that stores it, so a key without them is not there. Deletes
 * (the dedup expiry) leave their bits: such keys only cost a RocksDB
 * lookup, as without the filter.
 *
 * Memory is bounded by decided_filter_bytes: the filter starts at a
 * sixteenth of that. Once more keys were added since the last build than it
 * holds at ~1% false positives, it is rebuilt from the keys RocksDB has
 * (expired ids are gone by then), twice as large while those are more than
 * half its capacity; if they still are at the bound, it is switched off
 * until the store is reopened and every lookup goes to RocksDB. The build on
 * open reads every key of SMC_CF_DECIDED once.
 *
 * Threads: lookups and inserts hold df_mu shared and set bits atomically;
 * smc_store_apply and kv_put hold it shared from setting the bits until
 * RocksDB has the write. The build on open runs before the store is shared.
 * A rebuild when full runs on a thread of its own, so that the writer which
 * filled the filter (a committer's fold thread) does not stop while every
 * decided id is read: it publishes a cleared filter as df_next under df_mu
 * exclusively (so every write whose bits were set before is in RocksDB by
 * then, and every later one sets its bits in df_next too), fills it from an
 * iterator made after that, and swaps it in under df_mu exclusively.
 * Lookups use the old filter meanwhile, which still has every key.
 */
#define DF_BLOCK_WORDS 8 /* 512 bits */

/* The block of h (blocks is a power of two); its 6 bit positions are 9
 * bits of h each. */
static uint64_t *df_block(uint64_t *bits, size_t blocks, uint64_t h) {
  return bits + (((h >> 54) ^ (h * 0x9e3779b97f4a7c15ULL)) & (blocks - 1)) * DF_BLOCK_WORDS;
}

static void df_set(uint64_t *bits, size_t blocks, const void *key, size_t klen) {
  uint64_t h = smc_hash64(key, klen, 0);
  uint64_t *b = df_block(bits, blocks, h);
  for (int i = 0; i < 6; i++) {
    unsigned bit = (unsigned)(h >> (9 * i)) & 511;
    __atomic_fetch_or(&b[bit >> 6], 1ULL << (bit & 63), __ATOMIC_RELAXED);
  }
}

/* 0: key is certainly not in SMC_CF_DECIDED; 1: it may be. Caller holds
 * df_mu shared and df_bits is set. */
int smc_store_filter_maybe(const smc_store_t *s, const void *key, size_t klen) {
  uint64_t h = smc_hash64(key, klen, 0);
  const uint64_t *b = df_block(s->df_bits, s->df_blocks, h);
  for (int i = 0; i < 6; i++) {
    unsigned bit = (unsigned)(h >> (9 * i)) & 511;
    if (!(__atomic_load_n(&b[bit >> 6], __ATOMIC_RELAXED) & (1ULL << (bit & 63))))
      return 0;
  }
  return 1;
}

/* Fill bits (blocks blocks, cleared) from every key RocksDB holds in
 * SMC_CF_DECIDED. Returns the number of keys, -1 on a read error, -2 when
 * the store is closing (a rebuild's fill checks every 4096 keys). */
static long df_fill(smc_store_t *s, uint64_t *bits, size_t blocks) {
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  if (!ro)
    return -1;
  rocksdb_readoptions_set_fill_cache(ro, 0);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[SMC_CF_DECIDED]);
  long n = 0;
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl = 0;
    const char *k = rocksdb_iter_key(it, &kl);
    df_set(bits, blocks, k, kl);
    if (++n % 4096 == 0 && __atomic_load_n(&s->df_stop, __ATOMIC_RELAXED)) {
      n = -2;
      break;
    }
  }
  char *rerr = NULL;
  rocksdb_iter_get_error(it, &rerr);
  if (rerr) {
    rocksdb_free(rerr);
    if (n >= 0)
      n = -1;
  }
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  return n;
}

/* Give the filter blocks (cleared) 512-bit blocks. */
static int df_size(smc_store_t *s, size_t blocks) {
  uint64_t *bits = calloc(blocks * DF_BLOCK_WORDS, sizeof(uint64_t));
  if (!bits)
    return SMC_ENOMEM;
  free(s->df_bits);
  s->df_bits = bits;
  s->df_blocks = blocks;
  s->df_cap = blocks * 512 / 10; /* 10 bits per key: ~1% false positives */
  __atomic_store_n(&s->df_limit, s->df_cap, __ATOMIC_RELAXED);
  s->df_stats.bytes = blocks * DF_BLOCK_WORDS * sizeof(uint64_t);
  s->df_stats.capacity = s->df_cap;
  return 0;
}

/* Switch the filter off (a read error, or too many live ids at the bound):
 * every lookup goes to RocksDB until the store is reopened. Caller holds
 * df_mu exclusively. */
static void df_off(smc_store_t *s) {
  free(s->df_bits);
  s->df_bits = NULL;
  s->df_stats.enabled = 0;
  __atomic_store_n(&s->df_limit, SIZE_MAX, __ATOMIC_RELAXED);
}

/* (Re)build the filter from RocksDB, doubling it (up to df_max_blocks)
 * while the keys there are more than half its capacity; switch it off when
 * they still are at the bound, or when RocksDB cannot be read. Caller holds
 * df_mu exclusively (or the store is not shared yet). */
static void df_build(smc_store_t *s) {
  while (s->df_bits) {
    memset(s->df_bits, 0, s->df_blocks * DF_BLOCK_WORDS * sizeof(uint64_t));
    long n = df_fill(s, s->df_bits, s->df_blocks);
    s->df_stats.builds++;
    if (n >= 0 && (size_t)n <= s->df_cap / 2) {
      __atomic_store_n(&s->df_added, (size_t)n, __ATOMIC_RELAXED);
      __atomic_store_n(&s->df_stats.keys, (size_t)n, __ATOMIC_RELAXED);
      return;
    }
    size_t blocks = s->df_blocks;
    while (n >= 0 && blocks < s->df_max_blocks && blocks * 512 / 10 / 2 < (size_t)n)
      blocks *= 2;
    if (n < 0 || blocks == s->df_blocks || df_size(s, blocks))
      df_off(s);
  }
}

/* Set up the filter: at most bytes of memory (0: none), starting at a
 * sixteenth of that (or at once at bytes when full) and doubling as the
 * decided ids grow. */
int smc_store_filter_open(smc_store_t *s, size_t bytes, int full) {
  if (pthread_rwlock_init(&s->df_mu, NULL))
    return SMC_ENOMEM;
  s->df_mu_ok = 1;
  if (pthread_mutex_init(&s->df_wait_mu, NULL))
    return SMC_ENOMEM;
  if (pthread_cond_init(&s->df_wait_cv, NULL)) {
    pthread_mutex_destroy(&s->df_wait_mu);
    return SMC_ENOMEM;
  }
  s->df_wait_ok = 1;
  if (bytes < DF_BLOCK_WORDS * sizeof(uint64_t))
    return 0;
  size_t blocks = 1;
  while (blocks * 2 * DF_BLOCK_WORDS * sizeof(uint64_t) <= bytes)
    blocks *= 2;
  s->df_max_blocks = blocks;
  if (df_size(s, full || blocks < 16 ? blocks : blocks / 16))
    return SMC_ENOMEM;
  s->df_stats.enabled = 1;
  df_build(s);
  return 0;
}

/* Publish bits (blocks, cleared) as the filter being built, or withdraw it
 * (NULL). Waits out every writer between setting its bits and its RocksDB
 * write. */
static void df_set_next(smc_store_t *s, uint64_t *bits, size_t blocks) {
  pthread_rwlock_wrlock(&s->df_mu);
  s->df_next = bits;
  s->df_next_blocks = blocks;
  pthread_rwlock_unlock(&s->df_mu);
}

/* The rebuild thread: the same sizing as df_build, into filters that are
 * swapped in only when built (see the comment above DF_BLOCK_WORDS). */
static void *df_rebuild_main(void *arg) {
  smc_store_t *s = arg;
  pthread_rwlock_rdlock(&s->df_mu);
  size_t blocks = s->df_bits ? s->df_blocks : 0;
  pthread_rwlock_unlock(&s->df_mu);
  while (blocks) {
    uint64_t *bits = calloc(blocks * DF_BLOCK_WORDS, sizeof(uint64_t));
    if (!bits) {
      pthread_rwlock_wrlock(&s->df_mu);
      df_off(s);
      pthread_rwlock_unlock(&s->df_mu);
      break;
    }
    df_set_next(s, bits, blocks);
    size_t added0 = __atomic_load_n(&s->df_added, __ATOMIC_RELAXED);
    long n = df_fill(s, bits, blocks);
    size_t cap = blocks * 512 / 10;
    pthread_rwlock_wrlock(&s->df_mu);
    s->df_next = NULL;
    if (n != -2)
      s->df_stats.builds++;
    if (n >= 0 && (size_t)n <= cap / 2) {
      /* keys added while it filled count again if the iterator saw them:
       * the count only decides when to rebuild next */
      size_t during = __atomic_load_n(&s->df_added, __ATOMIC_RELAXED) - added0;
      free(s->df_bits);
      s->df_bits = bits;
      s->df_blocks = blocks;
      s->df_cap = cap;
      __atomic_store_n(&s->df_limit, cap, __ATOMIC_RELAXED);
      __atomic_store_n(&s->df_added, (size_t)n + during, __ATOMIC_RELAXED);
      __atomic_store_n(&s->df_stats.keys, (size_t)n + during, __ATOMIC_RELAXED);
      s->df_stats.bytes = blocks * DF_BLOCK_WORDS * sizeof(uint64_t);
      s->df_stats.capacity = cap;
      pthread_rwlock_unlock(&s->df_mu);
      break;
    }
    free(bits);
    size_t more = blocks;
    while (n >= 0 && more < s->df_max_blocks && more * 512 / 10 / 2 < (size_t)n)
      more *= 2;
    if (n == -2) {
      more = 0; /* closing: keep the old filter */
    } else if (n < 0 || more == blocks || !s->df_bits) {
      if (more == blocks && n >= 0) {
        s->df_stats.bytes = blocks * DF_BLOCK_WORDS * sizeof(uint64_t);
        s->df_stats.capacity = cap;
      }
      df_off(s);
      more = 0;
    }
    pthread_rwlock_unlock(&s->df_mu);
    blocks = more;
  }
  pthread_mutex_lock(&s->df_wait_mu);
  s->df_running = 0;
  pthread_cond_broadcast(&s->df_wait_cv);
  pthread_mutex_unlock(&s->df_wait_mu);
  return NULL;
}

/* After a write: once the filter holds more keys than its capacity, start
 * a rebuild on its own thread unless one runs. The caller holds nothing. */
void smc_store_filter_maybe_rebuild(smc_store_t *s) {
  if (__atomic_load_n(&s->df_added, __ATOMIC_RELAXED) <=
      __atomic_load_n(&s->df_limit, __ATOMIC_RELAXED))
    return;
  pthread_mutex_lock(&s->df_wait_mu);
  if (s->df_running || s->df_stop) {
    pthread_mutex_unlock(&s->df_wait_mu);
    return;
  }
  if (s->df_thread_joinable) /* the last rebuild's thread, ended */
    pthread_join(s->df_thread, NULL);
  s->df_thread_joinable = 0;
  s->df_running = 1;
  if (pthread_create(&s->df_thread, NULL, df_rebuild_main, s) == 0) {
    s->df_thread_joinable = 1;
    pthread_mutex_unlock(&s->df_wait_mu);
    return;
  }
  s->df_running = 0;
  pthread_mutex_unlock(&s->df_wait_mu);
  /* no thread: rebuild here, holding the writers up meanwhile */
  pthread_rwlock_wrlock(&s->df_mu);
  if (s->df_bits && __atomic_load_n(&s->df_added, __ATOMIC_RELAXED) > s->df_cap)
    df_build(s);
  pthread_rwlock_unlock(&s->df_mu);
}

/* Wait for a rebuild that runs (stop: make it give up first) and reap its
 * thread. */
void smc_store_filter_settle(smc_store_t *s, int stop) {
  if (!s->df_wait_ok)
    return;
  pthread_mutex_lock(&s->df_wait_mu);
  if (stop)
    __atomic_store_n(&s->df_stop, 1, __ATOMIC_RELAXED);
  while (s->df_running)
    pthread_cond_wait(&s->df_wait_cv, &s->df_wait_mu);
  if (s->df_thread_joinable)
    pthread_join(s->df_thread, NULL);
  s->df_thread_joinable = 0;
  pthread_mutex_unlock(&s->df_wait_mu);
}

/* Add key before writing it to SMC_CF_DECIDED. Caller holds df_mu shared. */
void smc_store_filter_add(smc_store_t *s, const void *key, size_t klen) {
  if (!s->df_bits)
    return;
  df_set(s->df_bits, s->df_blocks, key, klen);
  if (s->df_next)
    df_set(s->df_next, s->df_next_blocks, key, klen);
  __atomic_fetch_add(&s->df_added, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&s->df_stats.keys, 1, __ATOMIC_RELAXED);
}

void smc_store_filter_stats(smc_store_t *s, smc_store_filter_stats_t *out) {
  smc_store_filter_settle(s, 0);
  pthread_rwlock_rdlock(&s->df_mu);
  out->enabled = s->df_stats.enabled;
  out->bytes = s->df_stats.bytes;
  out->capacity = s->df_stats.capacity;
  out->builds = s->df_stats.builds;
  out->keys = __atomic_load_n(&s->df_stats.keys, __ATOMIC_RELAXED);
  out->skipped = __atomic_load_n(&s->df_stats.skipped, __ATOMIC_RELAXED);
  pthread_rwlock_unlock(&s->df_mu);
}
