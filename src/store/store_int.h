/*
 * The store's private parts (store.c, read_cache.c, decided_filter.c): the
 * handle itself, and what the RocksDB adapter calls of the read cache and
 * the decided-id filter.
 */
#ifndef SMC_STORE_INT_H
#define SMC_STORE_INT_H

#include <pthread.h>
#include <rocksdb/c.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define RC_SLOTS (1u << 15)
#define RC_WAYS 8u

typedef struct rc_ent {
  uint8_t *kv; /* key bytes then value bytes (malloc'd); NULL = empty slot */
  uint32_t klen, vlen;
  uint32_t cap;  /* bytes allocated at kv, reused by the next fill that fits */
  uint32_t used; /* rc_tick when last read or filled: the oldest of a set goes */
  uint32_t tag;  /* the key's hash (rc_hash), compared before the key */
  uint8_t cf;
  uint8_t found; /* 0: the key is known to be absent */
} rc_ent_t;

struct smc_store {
  char *dir;
  rocksdb_t *db;
  rocksdb_options_t *opts;
  rocksdb_block_based_table_options_t *table;
  rocksdb_cache_t *cache;
  rocksdb_filterpolicy_t *bloom; /* owned by table once set */
  rocksdb_readoptions_t *ropts;
  rocksdb_writeoptions_t *wopts;       /* single-key writes: never sync */
  rocksdb_writeoptions_t *apply_wopts; /* batches: sync per options */
  rocksdb_column_family_handle_t *cf[SMC_CF_COUNT];
  /* Handles of "default" and of column families this build does not know
   * (left by a newer version): RocksDB requires them opened. */
  rocksdb_column_family_handle_t **other;
  size_t nother;
  /* Read cache (rc_* below): RC_SLOTS entries in sets of two, under rc_mu. */
  struct rc_ent *rc;
  pthread_mutex_t rc_mu;
  int rc_mu_ok;
  uint64_t rc_gen; /* bumped by every write that reaches RocksDB */
  uint32_t rc_tick;
  /* Filter of decided proposal ids (df_* below). */
  uint64_t *df_bits; /* NULL: off */
  size_t df_blocks;  /* 512-bit blocks, a power of two */
  size_t df_max_blocks;
  size_t df_limit; /* rebuild past this many added keys (SIZE_MAX: off) */
  size_t df_cap;   /* keys it holds at ~1% false positives */
  size_t df_added; /* keys added since the last (re)build */
  pthread_rwlock_t df_mu;
  int df_mu_ok;
  smc_store_filter_stats_t df_stats;
  /* A rebuild after open runs on its own thread (df_rebuild_main): df_next
   * is the filter it fills (NULL when none runs), set and cleared under
   * df_mu exclusively; writers set their keys' bits in it too. */
  uint64_t *df_next;
  size_t df_next_blocks;
  pthread_t df_thread;
  int df_thread_joinable;
  int df_running, df_stop;    /* under df_wait_mu */
  pthread_mutex_t df_wait_mu; /* with df_wait_cv: a rebuild has ended */
  pthread_cond_t df_wait_cv;
  int df_wait_ok;
  /* One write batch kept between applies (cleared, its buffer as large as
   * the largest batch so far), taken by atomic exchange. */
  rocksdb_writebatch_t *wb_spare;
  int rebuilding; /* options.rebuild, until smc_store_finish_rebuild */
};

/* ---- read cache (read_cache.c) ---- */
int smc_store_cache_cacheable(smc_cf_t cf, size_t klen);
rc_ent_t *smc_store_cache_lookup(smc_store_t *s, smc_cf_t cf, const void *key, size_t klen);
rc_ent_t *smc_store_cache_place(smc_store_t *s, smc_cf_t cf, const void *key, size_t klen);
void smc_store_cache_fill(rc_ent_t *e, smc_cf_t cf, const void *key, size_t klen, const void *val,
                          size_t vlen);
void smc_store_cache_forget(smc_store_t *s, smc_cf_t cf, const void *key, size_t klen);
void smc_store_cache_clear_locked(smc_store_t *s);
void smc_store_cache_written(smc_store_t *s, smc_cf_t cf, const void *key, size_t klen,
                             const void *val, size_t vlen);

/* ---- decided-id filter (decided_filter.c) ---- */
int smc_store_filter_maybe(const smc_store_t *s, const void *key, size_t klen);
int smc_store_filter_open(smc_store_t *s, size_t bytes, int full);
void smc_store_filter_maybe_rebuild(smc_store_t *s);
void smc_store_filter_settle(smc_store_t *s, int stop);
void smc_store_filter_add(smc_store_t *s, const void *key, size_t klen);

#endif
