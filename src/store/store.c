/* The RocksDB state store (store.h). */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

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

/*
 * Read cache in front of RocksDB for the keys the fold reads on every record
 * (object records, machine registrations, partition meta): a set-associative
 * table of RC_SLOTS entries in sets of RC_WAYS (the least recently used of a
 * set is replaced). Sets of two kept missing about a tenth of the object
 * reads of bench_fold's 10,000 objects: with 16,384 sets, one in forty gets
 * three or more of them, which then evict each other on every pass, and
 * each miss is a RocksDB lookup that may read a table block. With sets of
 * eight, a set overflows only past ~3x the load, and a 32-bit tag of the
 * key's hash skips the key compares of the other entries of its set.
 * Each entry is the exact value RocksDB holds for its key
 * (or its absence). It cannot go stale: every write through this store
 * (smc_store_apply, the kv's put/del, smc_store_drop_partition) updates or
 * drops the entries it touches after RocksDB accepted it, and a value read
 * from RocksDB is only inserted if no write completed meanwhile (rc_gen).
 * Memory: at most RC_SLOTS keys and values (the fold's object records are a
 * few hundred bytes), independent of the number of objects.
 */
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

/* Object records, machine registrations and the partition meta record
 * (partition + 'a': 5 bytes); not the expiry index, queues, timers, ids. */
static int rc_cacheable(smc_cf_t cf, size_t klen) {
  return cf == SMC_CF_OBJECTS || cf == SMC_CF_MACHINES || (cf == SMC_CF_META && klen == 5);
}

/* FNV-1a of cf and key, its high bits mixed into the low ones (the set
 * index) */
static uint32_t rc_hash(smc_cf_t cf, const void *key, size_t klen) {
  uint64_t h = 1469598103934665603ULL ^ (uint64_t)cf;
  const uint8_t *k = key;
  for (size_t i = 0; i < klen; i++)
    h = (h ^ k[i]) * 1099511628211ULL;
  return (uint32_t)(h ^ (h >> 32));
}

/* The RC_WAYS entries (a set) a key of hash h may occupy. */
static rc_ent_t *rc_set(smc_store_t *s, uint32_t h) { return &s->rc[h & (RC_SLOTS - RC_WAYS)]; }

static int rc_match(const rc_ent_t *e, uint32_t h, smc_cf_t cf, const void *key, size_t klen) {
  return e->kv && e->tag == h && e->cf == (uint8_t)cf && e->klen == klen &&
         !memcmp(e->kv, key, klen);
}

/* key's entry in set e, or NULL */
static rc_ent_t *rc_find(rc_ent_t *e, uint32_t h, smc_cf_t cf, const void *key, size_t klen) {
  for (unsigned i = 0; i < RC_WAYS; i++)
    if (rc_match(&e[i], h, cf, key, klen))
      return &e[i];
  return NULL;
}

/* key's entry, or NULL; marks it used. Caller holds rc_mu. */
static rc_ent_t *rc_lookup(smc_store_t *s, smc_cf_t cf, const void *key, size_t klen) {
  uint32_t h = rc_hash(cf, key, klen);
  rc_ent_t *e = rc_find(rc_set(s, h), h, cf, key, klen);
  if (e)
    e->used = ++s->rc_tick;
  return e;
}

/* The entry to (re)fill with key: its own, else an empty one, else the one
 * of its set used least recently; tagged with key's hash. Caller holds
 * rc_mu. */
static rc_ent_t *rc_place(smc_store_t *s, smc_cf_t cf, const void *key, size_t klen) {
  uint32_t h = rc_hash(cf, key, klen);
  rc_ent_t *set = rc_set(s, h), *pick = rc_find(set, h, cf, key, klen);
  for (unsigned i = 0; !pick && i < RC_WAYS; i++)
    if (!set[i].kv)
      pick = &set[i];
  if (!pick) {
    pick = &set[0];
    for (unsigned i = 1; i < RC_WAYS; i++)
      if ((int32_t)(set[i].used - pick->used) < 0)
        pick = &set[i];
  }
  pick->used = ++s->rc_tick;
  pick->tag = h;
  return pick;
}

/* Make e hold key -> val (val NULL: absent). On allocation failure the slot
 * is left empty, which is always correct. */
static void rc_fill(rc_ent_t *e, smc_cf_t cf, const void *key, size_t klen, const void *val,
                    size_t vlen) {
  if (klen > UINT32_MAX || vlen > UINT32_MAX || klen + vlen > (1u << 20)) {
    free(e->kv);
    e->kv = NULL;
    return;
  }
  size_t need = klen + vlen + 1;
  uint8_t *b = e->kv;
  if (!b || e->cap < need) {
    size_t cap = need + need / 4; /* a record that grows a little fits next time */
    if (!(b = malloc(cap))) {
      free(e->kv);
      e->kv = NULL;
      return;
    }
    memcpy(b, key, klen);
    free(e->kv);
    e->kv = b;
    e->cap = (uint32_t)cap;
  } else {
    memmove(b, key, klen); /* key may be e's own bytes (same key written again) */
  }
  if (val && vlen)
    memcpy(b + klen, val, vlen);
  e->klen = (uint32_t)klen;
  e->vlen = val ? (uint32_t)vlen : 0;
  e->cf = (uint8_t)cf;
  e->found = val != NULL;
}

/* Drop key's entry, if cached. Caller holds rc_mu. */
static void rc_forget(smc_store_t *s, smc_cf_t cf, const void *key, size_t klen) {
  rc_ent_t *e = s->rc ? rc_lookup(s, cf, key, klen) : NULL;
  if (e) {
    free(e->kv);
    e->kv = NULL;
  }
}

static void rc_clear_locked(smc_store_t *s) {
  for (size_t i = 0; s->rc && i < RC_SLOTS; i++) {
    free(s->rc[i].kv);
    s->rc[i].kv = NULL;
  }
}

/* A write of key (val NULL = delete) reached RocksDB: keep the cache exact.
 * Caller holds rc_mu. Written values of cacheable column families are kept
 * (the fold reads them back on the next record of the same object). */
static void rc_written(smc_store_t *s, smc_cf_t cf, const void *key, size_t klen, const void *val,
                       size_t vlen) {
  /* only cacheable keys ever get an entry (kv_get fills no other), so the
   * rest (decided ids, queues, timers) need no look */
  if (!s->rc || !rc_cacheable(cf, klen))
    return;
  rc_fill(rc_place(s, cf, key, klen), cf, key, klen, val, vlen);
}

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

static uint64_t df_hash(const void *key, size_t klen) {
  const uint8_t *p = key;
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ (klen * 0xff51afd7ed558ccdULL);
  while (klen >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ (w * 0x87c37b91114253d5ULL)) * 0x4cf5ad432745937fULL;
    h ^= h >> 31;
    p += 8;
    klen -= 8;
  }
  uint64_t w = 0;
  for (size_t i = 0; i < klen; i++)
    w |= (uint64_t)p[i] << (8 * i);
  h = (h ^ (w * 0x87c37b91114253d5ULL)) * 0x4cf5ad432745937fULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 29;
  return h;
}

/* The block of h (blocks is a power of two); its 6 bit positions are 9
 * bits of h each. */
static uint64_t *df_block(uint64_t *bits, size_t blocks, uint64_t h) {
  return bits + (((h >> 54) ^ (h * 0x9e3779b97f4a7c15ULL)) & (blocks - 1)) * DF_BLOCK_WORDS;
}

static void df_set(uint64_t *bits, size_t blocks, const void *key, size_t klen) {
  uint64_t h = df_hash(key, klen);
  uint64_t *b = df_block(bits, blocks, h);
  for (int i = 0; i < 6; i++) {
    unsigned bit = (unsigned)(h >> (9 * i)) & 511;
    __atomic_fetch_or(&b[bit >> 6], 1ULL << (bit & 63), __ATOMIC_RELAXED);
  }
}

/* 0: key is certainly not in SMC_CF_DECIDED; 1: it may be. Caller holds
 * df_mu shared and df_bits is set. */
static int df_maybe(const smc_store_t *s, const void *key, size_t klen) {
  uint64_t h = df_hash(key, klen);
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
static int df_open(smc_store_t *s, size_t bytes, int full) {
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
static void df_maybe_rebuild(smc_store_t *s) {
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
static void df_settle(smc_store_t *s, int stop) {
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
static void df_add(smc_store_t *s, const void *key, size_t klen) {
  if (!s->df_bits)
    return;
  df_set(s->df_bits, s->df_blocks, key, klen);
  if (s->df_next)
    df_set(s->df_next, s->df_next_blocks, key, klen);
  __atomic_fetch_add(&s->df_added, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&s->df_stats.keys, 1, __ATOMIC_RELAXED);
}

void smc_store_filter_stats(smc_store_t *s, smc_store_filter_stats_t *out) {
  df_settle(s, 0);
  pthread_rwlock_rdlock(&s->df_mu);
  out->enabled = s->df_stats.enabled;
  out->bytes = s->df_stats.bytes;
  out->capacity = s->df_stats.capacity;
  out->builds = s->df_stats.builds;
  out->keys = __atomic_load_n(&s->df_stats.keys, __ATOMIC_RELAXED);
  out->skipped = __atomic_load_n(&s->df_stats.skipped, __ATOMIC_RELAXED);
  pthread_rwlock_unlock(&s->df_mu);
}

void smc_store_options_default(smc_store_options_t *o) {
  memset(o, 0, sizeof(*o));
  o->block_cache_bytes = 64u << 20;
  o->write_buffer_bytes = 16u << 20;
  o->max_open_files = 512;
  o->sync = 0;
  o->decided_filter_bytes = 4u << 20;
}

/* Turn a RocksDB error string (malloc'd by RocksDB) into err; frees it. */
static int rocks_fail(smc_error_t *err, char *rerr, const char *what) {
  int rc = smc_error_set(err, SMC_ESTORE, NULL, "%s: %s", what, rerr ? rerr : "failed");
  rocksdb_free(rerr);
  return rc;
}

/* mkdir -p */
static int make_dirs(const char *dir, smc_error_t *err) {
  char *p = strdup(dir);
  if (!p)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  for (char *q = p + 1;; q++) {
    if (*q == '/' || *q == '\0') {
      char c = *q;
      *q = '\0';
      if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        int rc = smc_error_set(err, SMC_EIO, NULL, "cannot create %s: %s", p, strerror(errno));
        free(p);
        return rc;
      }
      *q = c;
      if (!c)
        break;
    }
  }
  free(p);
  return 0;
}

static int known_cf(const char *name) {
  for (int i = 0; i < SMC_CF_COUNT; i++)
    if (!strcmp(name, smc_cf_names[i]))
      return i;
  return -1;
}

/* Build the options every column family shares: one cache, bloom filters,
 * bounded memtables. */
static int build_options(smc_store_t *s, const smc_store_options_t *o, smc_error_t *err) {
  s->opts = rocksdb_options_create();
  s->table = rocksdb_block_based_options_create();
  /* 4 shards: RocksDB's default of 64 shards gives a 64 MiB cache 1 MiB
   * shards, which cannot keep the index block of a large table file (a
   * 50 MB one of decided ids has a 1-2 MB index): every new iterator or
   * read that reached it re-read and decompressed it (smc replay --digest
   * over 435,242 records: 300 s, with 4 shards 3.6 s) */
  rocksdb_lru_cache_options_t *lru = rocksdb_lru_cache_options_create();
  if (lru) {
    rocksdb_lru_cache_options_set_capacity(lru, o->block_cache_bytes);
    rocksdb_lru_cache_options_set_num_shard_bits(lru, 2);
    s->cache = rocksdb_cache_create_lru_opts(lru);
    rocksdb_lru_cache_options_destroy(lru);
  }
  s->ropts = rocksdb_readoptions_create();
  s->wopts = rocksdb_writeoptions_create();
  s->apply_wopts = rocksdb_writeoptions_create();
  if (!s->opts || !s->table || !s->cache || !s->ropts || !s->wopts || !s->apply_wopts)
    return smc_error_set(err, SMC_ENOMEM, NULL, "cannot allocate RocksDB options");
  s->bloom = rocksdb_filterpolicy_create_bloom_full(10);
  rocksdb_block_based_options_set_filter_policy(s->table, s->bloom);
  rocksdb_block_based_options_set_block_cache(s->table, s->cache);
  rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->table, 1);
  rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(s->table, 1);
  rocksdb_options_set_block_based_table_factory(s->opts, s->table);
  rocksdb_options_set_create_if_missing(s->opts, 1);
  rocksdb_options_set_create_missing_column_families(s->opts, 1);
  rocksdb_options_set_write_buffer_size(s->opts, o->write_buffer_bytes);
  rocksdb_options_set_max_write_buffer_number(s->opts, 2);
  /* all memtables together: flush the largest once this is reached */
  rocksdb_options_set_db_write_buffer_size(s->opts, 4 * o->write_buffer_bytes);
  rocksdb_options_set_max_open_files(s->opts, o->max_open_files);
  /* LZ4 from level 2 down; levels 0 and 1 are written again and again by
   * flushes and compactions (every new decided id is a random key, so each
   * level-0 file overlaps all of level 1), and compressing them cost about a
   * tenth of the fold's process CPU (bench_fold 1000000 10000: 15.1-15.4
   * against 16.8-17.5 us per record in interleaved runs), at the cost of
   * more disk for what those levels hold (level 1 is four memtables' worth,
   * below; before it was sized so, the whole store took about 2.4x the disk
   * while its data fit in them), and everything below is compressed. */
  int per_level[7] = {rocksdb_no_compression,  rocksdb_no_compression,  rocksdb_lz4_compression,
                      rocksdb_lz4_compression, rocksdb_lz4_compression, rocksdb_lz4_compression,
                      rocksdb_lz4_compression};
  rocksdb_options_set_compression_per_level(s->opts, per_level, 7);
  /* Level 1 as large as level 0 is when it is compacted (as many memtables
   * as its compaction trigger, 4 by default), table files as large as a
   * memtable: RocksDB's tuning advice. With its defaults (256 MiB, 64 MiB
   * files) and a worker's 4 MiB memtables, every 16 MiB of new random
   * decided ids rewrote all of level 1: bench_fold 1000000 10000 with 4 MiB memtables spent 24.3
   * and 28.0 us of process CPU per record, 20.2 and 22.6 with this, in 157-162 MiB of table files
   * against 275-277 (more of it compressed below level 1). With 16 MiB memtables the CPU is the
   * same and the files a third smaller. */
  rocksdb_options_set_max_bytes_for_level_base(
      s->opts, (uint64_t)rocksdb_options_get_level0_file_num_compaction_trigger(s->opts) *
                   o->write_buffer_bytes);
  rocksdb_options_set_target_file_size_base(s->opts, (uint64_t)o->write_buffer_bytes);
  /* lookups of absent keys (new proposal ids) stop at a memtable bloom */
  rocksdb_options_set_memtable_prefix_bloom_size_ratio(s->opts, 0.1);
  rocksdb_options_set_memtable_whole_key_filtering(s->opts, 1);
  rocksdb_writeoptions_set_sync(s->apply_wopts, o->sync ? 1 : 0);
  if (o->rebuild) { /* smc_store_finish_rebuild turns the WAL back on */
    rocksdb_writeoptions_disable_WAL(s->wopts, 1);
    rocksdb_writeoptions_disable_WAL(s->apply_wopts, 1);
  }
  return 0;
}

/* The names to open: ours, "default", and whatever else the DB already has. */
static int cf_list(smc_store_t *s, char ***names_out, size_t *n_out, smc_error_t *err) {
  size_t nexist = 0;
  char *rerr = NULL;
  char **exist = rocksdb_list_column_families(s->opts, s->dir, &nexist, &rerr);
  rocksdb_free(rerr); /* a new DB has none: not an error */
  if (!exist)
    nexist = 0;
  size_t cap = SMC_CF_COUNT + 1 + nexist, n = 0;
  char **names = calloc(cap, sizeof(*names));
  if (!names)
    goto nomem;
  for (int i = 0; i < SMC_CF_COUNT; i++)
    if (!(names[n++] = strdup(smc_cf_names[i])))
      goto nomem;
  if (!(names[n++] = strdup("default")))
    goto nomem;
  for (size_t i = 0; i < nexist; i++) {
    if (known_cf(exist[i]) >= 0 || !strcmp(exist[i], "default"))
      continue;
    if (!(names[n++] = strdup(exist[i])))
      goto nomem;
  }
  if (exist)
    rocksdb_list_column_families_destroy(exist, nexist);
  *names_out = names;
  *n_out = n;
  return 0;
nomem:
  if (exist)
    rocksdb_list_column_families_destroy(exist, nexist);
  if (names)
    for (size_t i = 0; i < n; i++)
      free(names[i]);
  free(names);
  return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
}

static int open_db(smc_store_t *s, smc_error_t *err) {
  char **names = NULL;
  size_t n = 0;
  int rc = cf_list(s, &names, &n, err);
  if (rc)
    return rc;
  const rocksdb_options_t **cfo = calloc(n, sizeof(*cfo));
  rocksdb_column_family_handle_t **h = calloc(n, sizeof(*h));
  s->other = calloc(n, sizeof(*s->other));
  if (!cfo || !h || !s->other) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++)
    cfo[i] = s->opts;
  char *rerr = NULL;
  s->db = rocksdb_open_column_families(s->opts, s->dir, (int)n, (const char *const *)names, cfo, h,
                                       &rerr);
  if (!s->db) {
    rc = rocks_fail(err, rerr, s->dir);
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    int k = known_cf(names[i]);
    if (k >= 0)
      s->cf[k] = h[i];
    else
      s->other[s->nother++] = h[i];
  }
done:
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  free(cfo);
  free(h);
  return rc;
}

/* fsync directory dir, so that an entry created or removed in it persists. */
static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* Before RocksDB opens dir: a rebuild deletes the store there and then
 * creates the marker (durable before any write); a plain open that finds the
 * marker deletes the unfinished store, then the marker. A crash in between
 * leaves the marker, so the next open deletes again. */
static int prepare_dir(smc_store_t *s, const smc_store_options_t *o, smc_error_t *err) {
  char marker[4096];
  if ((size_t)snprintf(marker, sizeof marker, "%s/%s", s->dir, SMC_STORE_REBUILD_MARKER) >=
      sizeof marker)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "store directory name too long");
  int unfinished = access(marker, F_OK) == 0;
  if (o->rebuild || unfinished) {
    char *rerr = NULL;
    rocksdb_destroy_db(s->opts, s->dir, &rerr);
    if (rerr)
      return rocks_fail(err, rerr, s->dir);
  }
  int rc = make_dirs(s->dir, err);
  if (rc)
    return rc;
  if (o->rebuild) {
    int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || fsync(fd) != 0) {
      rc = smc_error_set(err, SMC_EIO, NULL, "%s: %s", marker, strerror(errno));
      if (fd >= 0)
        close(fd);
      return rc;
    }
    close(fd);
    s->rebuilding = 1;
  } else if (unfinished && unlink(marker) != 0 && errno != ENOENT) {
    return smc_error_set(err, SMC_EIO, NULL, "%s: %s", marker, strerror(errno));
  }
  if ((o->rebuild || unfinished) && sync_dir(s->dir) != 0)
    return smc_error_set(err, SMC_EIO, NULL, "%s: %s", s->dir, strerror(errno));
  return 0;
}

int smc_store_finish_rebuild(smc_store_t *s, smc_error_t *err) {
  if (!s->rebuilding)
    return 0;
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  if (!fo)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  rocksdb_flushoptions_set_wait(fo, 1);
  char *rerr = NULL;
  for (int i = 0; i < SMC_CF_COUNT && !rerr; i++)
    rocksdb_flush_cf(s->db, fo, s->cf[i], &rerr);
  rocksdb_flushoptions_destroy(fo);
  if (rerr)
    return rocks_fail(err, rerr, "flush");
  char marker[4096];
  snprintf(marker, sizeof marker, "%s/%s", s->dir, SMC_STORE_REBUILD_MARKER);
  if ((unlink(marker) != 0 && errno != ENOENT) || sync_dir(s->dir) != 0)
    return smc_error_set(err, SMC_EIO, NULL, "%s: %s", marker, strerror(errno));
  rocksdb_writeoptions_disable_WAL(s->wopts, 0);
  rocksdb_writeoptions_disable_WAL(s->apply_wopts, 0);
  s->rebuilding = 0;
  return 0;
}

int smc_store_open(const char *dir, const smc_store_options_t *o, smc_store_t **out,
                   smc_error_t *err) {
  smc_store_options_t defaults;
  int rc;
  *out = NULL;
  if (!dir || !*dir)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "store directory is empty");
  if (!o) {
    smc_store_options_default(&defaults);
    o = &defaults;
  }
  if (o->block_cache_bytes == 0 || o->write_buffer_bytes == 0)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL,
                         "block cache and write buffer sizes must be positive");
  smc_store_t *s = calloc(1, sizeof(*s));
  if (!s)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  if (!(s->dir = strdup(dir))) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  if (!(s->rc = calloc(RC_SLOTS, sizeof(*s->rc))) || pthread_mutex_init(&s->rc_mu, NULL)) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  s->rc_mu_ok = 1;
  if ((rc = build_options(s, o, err)) || (rc = prepare_dir(s, o, err)) || (rc = open_db(s, err)))
    goto fail;
  if (df_open(s, o->decided_filter_bytes, o->rebuild)) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  *out = s;
  return 0;
fail:
  smc_store_close(s);
  return rc;
}

void smc_store_close(smc_store_t *s) {
  if (!s)
    return;
  df_settle(s, 1); /* before RocksDB goes: a rebuild reads it */
  for (int i = 0; i < SMC_CF_COUNT; i++)
    if (s->cf[i])
      rocksdb_column_family_handle_destroy(s->cf[i]);
  for (size_t i = 0; i < s->nother; i++)
    rocksdb_column_family_handle_destroy(s->other[i]);
  free(s->other);
  if (s->wb_spare)
    rocksdb_writebatch_destroy(s->wb_spare);
  if (s->db)
    rocksdb_close(s->db);
  if (s->opts)
    rocksdb_options_destroy(s->opts);
  if (s->table)
    rocksdb_block_based_options_destroy(s->table); /* frees the bloom policy */
  else if (s->bloom)
    rocksdb_filterpolicy_destroy(s->bloom);
  if (s->cache)
    rocksdb_cache_destroy(s->cache);
  if (s->ropts)
    rocksdb_readoptions_destroy(s->ropts);
  if (s->wopts)
    rocksdb_writeoptions_destroy(s->wopts);
  if (s->apply_wopts)
    rocksdb_writeoptions_destroy(s->apply_wopts);
  if (s->rc_mu_ok)
    pthread_mutex_destroy(&s->rc_mu);
  if (s->df_mu_ok)
    pthread_rwlock_destroy(&s->df_mu);
  if (s->df_wait_ok) {
    pthread_mutex_destroy(&s->df_wait_mu);
    pthread_cond_destroy(&s->df_wait_cv);
  }
  free(s->df_bits);
  rc_clear_locked(s);
  free(s->rc);
  free(s->dir);
  free(s);
}

int smc_store_property(smc_store_t *s, const char *name, uint64_t *out) {
  *out = 0;
  for (int i = 0; i < SMC_CF_COUNT; i++) {
    uint64_t v = 0;
    if (rocksdb_property_int_cf(s->db, s->cf[i], name, &v))
      return SMC_ENOT_FOUND;
    *out += v;
  }
  return 0;
}

const char *smc_store_dir(const smc_store_t *s) { return s->dir; }

/* RocksDB counts every operation in a thread-local perf context unless the
 * calling thread turns that off (perf level is per thread, default on):
 * ~4% of the fold's CPU went to those counters' TLS lookups. */
static void quiet_perf_context(void) {
  static _Thread_local int done;
  if (!done) {
    rocksdb_set_perf_level(rocksdb_disable);
    done = 1;
  }
}

static int cf_ok(smc_cf_t cf) { return (int)cf >= 0 && cf < SMC_CF_COUNT; }

void *smc_store_rocksdb(smc_store_t *s) { return s->db; }

void *smc_store_rocksdb_cf(smc_store_t *s, smc_cf_t cf) { return cf_ok(cf) ? s->cf[cf] : NULL; }

/* Copy into a malloc'd buffer (one extra NUL byte so text values can be used
 * as strings). */
static void *dup_bytes(const void *p, size_t n) {
  char *q = malloc(n + 1);
  if (q) {
    if (n)
      memcpy(q, p, n);
    q[n] = '\0';
  }
  return q;
}

static int kv_get(void *self, smc_cf_t cf, const void *key, size_t klen, void **val, size_t *vlen) {
  smc_store_t *s = self;
  quiet_perf_context();
  if (!cf_ok(cf))
    return SMC_EINVALID_ARGUMENT;
  if (cf == SMC_CF_DECIDED) {
    pthread_rwlock_rdlock(&s->df_mu);
    int absent = s->df_bits && !df_maybe(s, key, klen);
    pthread_rwlock_unlock(&s->df_mu);
    if (absent) {
      __atomic_fetch_add(&s->df_stats.skipped, 1, __ATOMIC_RELAXED);
      return SMC_ENOT_FOUND;
    }
  }
  int cacheable = rc_cacheable(cf, klen);
  uint64_t gen = 0;
  if (cacheable) {
    pthread_mutex_lock(&s->rc_mu);
    rc_ent_t *e = rc_lookup(s, cf, key, klen);
    if (e) {
      int rc = SMC_ENOT_FOUND;
      if (e->found) {
        rc = (*val = dup_bytes(e->kv + e->klen, e->vlen)) ? 0 : SMC_ENOMEM;
        *vlen = e->vlen;
      }
      pthread_mutex_unlock(&s->rc_mu);
      return rc;
    }
    gen = s->rc_gen;
    pthread_mutex_unlock(&s->rc_mu);
  }
  char *rerr = NULL;
  size_t n = 0;
  /* pinned: the value is copied once, out of RocksDB's own buffer */
  rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(s->db, s->ropts, s->cf[cf], key, klen, &rerr);
  if (rerr) {
    rocksdb_free(rerr);
    rocksdb_pinnableslice_destroy(ps);
    return SMC_ESTORE;
  }
  const char *v = ps ? rocksdb_pinnableslice_value(ps, &n) : NULL;
  if (cacheable) { /* only if no write completed since gen was read */
    pthread_mutex_lock(&s->rc_mu);
    if (gen == s->rc_gen)
      rc_fill(rc_place(s, cf, key, klen), cf, key, klen, v, n);
    pthread_mutex_unlock(&s->rc_mu);
  }
  if (!v) {
    rocksdb_pinnableslice_destroy(ps);
    return SMC_ENOT_FOUND;
  }
  *val = dup_bytes(v, n);
  rocksdb_pinnableslice_destroy(ps);
  if (!*val)
    return SMC_ENOMEM;
  *vlen = n;
  return 0;
}

static int kv_put(void *self, smc_cf_t cf, const void *key, size_t klen, const void *val,
                  size_t vlen) {
  smc_store_t *s = self;
  if (!cf_ok(cf))
    return SMC_EINVALID_ARGUMENT;
  char *rerr = NULL;
  int decided = cf == SMC_CF_DECIDED;
  if (decided) {
    pthread_rwlock_rdlock(&s->df_mu);
    df_add(s, key, klen);
  }
  rocksdb_put_cf(s->db, s->wopts, s->cf[cf], key, klen, val, vlen, &rerr);
  if (decided) {
    pthread_rwlock_unlock(&s->df_mu);
    df_maybe_rebuild(s);
  }
  pthread_mutex_lock(&s->rc_mu);
  s->rc_gen++;
  if (rerr) /* unknown outcome: forget the key */
    rc_forget(s, cf, key, klen);
  else
    rc_written(s, cf, key, klen, val, vlen);
  pthread_mutex_unlock(&s->rc_mu);
  if (rerr) {
    rocksdb_free(rerr);
    return SMC_ESTORE;
  }
  return 0;
}

static int kv_del(void *self, smc_cf_t cf, const void *key, size_t klen) {
  smc_store_t *s = self;
  if (!cf_ok(cf))
    return SMC_EINVALID_ARGUMENT;
  char *rerr = NULL;
  rocksdb_delete_cf(s->db, s->wopts, s->cf[cf], key, klen, &rerr);
  pthread_mutex_lock(&s->rc_mu);
  s->rc_gen++;
  if (rerr)
    rc_forget(s, cf, key, klen);
  else
    rc_written(s, cf, key, klen, NULL, 0);
  pthread_mutex_unlock(&s->rc_mu);
  if (rerr) {
    rocksdb_free(rerr);
    return SMC_ESTORE;
  }
  return 0;
}

/* First key in [from, limit): a fresh iterator bounded above by limit so
 * RocksDB can stop early (and skip tombstones past the bound). */
static int kv_seek(void *self, smc_cf_t cf, const void *from, size_t flen, const void *limit,
                   size_t llen, void **key, size_t *klen, void **val, size_t *vlen) {
  smc_store_t *s = self;
  if (!cf_ok(cf))
    return SMC_EINVALID_ARGUMENT;
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  if (!ro)
    return SMC_ENOMEM;
  if (limit)
    rocksdb_readoptions_set_iterate_upper_bound(ro, limit, llen);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[cf]);
  int rc = SMC_ENOT_FOUND;
  if (from)
    rocksdb_iter_seek(it, from, flen);
  else
    rocksdb_iter_seek_to_first(it);
  if (rocksdb_iter_valid(it)) {
    size_t kn = 0, vn = 0;
    const char *k = rocksdb_iter_key(it, &kn);
    const char *v = rocksdb_iter_value(it, &vn);
    *key = dup_bytes(k, kn);
    *val = dup_bytes(v, vn);
    if (!*key || !*val) {
      free(*key);
      free(*val);
      *key = *val = NULL;
      rc = SMC_ENOMEM;
    } else {
      *klen = kn;
      *vlen = vn;
      rc = 0;
    }
  } else {
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    if (rerr) {
      rocksdb_free(rerr);
      rc = SMC_ESTORE;
    }
  }
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  return rc;
}

static const smc_kv_ops_t store_ops = {kv_get, kv_put, kv_del, kv_seek};

smc_kv_t smc_store_kv(smc_store_t *s) {
  smc_kv_t kv = {&store_ops, s};
  return kv;
}

typedef struct batch_ctx {
  smc_store_t *s;
  rocksdb_writebatch_t *wb;
} batch_ctx_t;

static int add_to_batch(void *opaque, smc_cf_t cf, const void *key, size_t klen, const void *val,
                        size_t vlen) {
  batch_ctx_t *b = opaque;
  if (!cf_ok(cf))
    return SMC_EINVALID_ARGUMENT;
  if (val && cf == SMC_CF_DECIDED)
    df_add(b->s, key, klen);
  if (val)
    rocksdb_writebatch_put_cf(b->wb, b->s->cf[cf], key, klen, val, vlen);
  else
    rocksdb_writebatch_delete_cf(b->wb, b->s->cf[cf], key, klen);
  return 0;
}

static int rc_apply_one(void *opaque, smc_cf_t cf, const void *key, size_t klen, const void *val,
                        size_t vlen) {
  rc_written(opaque, cf, key, klen, val, vlen);
  return 0;
}

int smc_store_apply(smc_store_t *s, smc_overlay_t *ov, smc_error_t *err) {
  quiet_perf_context();
  /* the spare batch of an earlier apply keeps its grown buffer */
  batch_ctx_t b = {s, __atomic_exchange_n(&s->wb_spare, NULL, __ATOMIC_ACQ_REL)};
  if (!b.wb)
    b.wb = rocksdb_writebatch_create();
  if (!b.wb)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  /* shared from the filter's bits to the write (see df_*) */
  pthread_rwlock_rdlock(&s->df_mu);
  int rc = smc_overlay_foreach(ov, add_to_batch, &b);
  if (rc) {
    rc = smc_error_set(err, rc, NULL, "cannot collect the pending writes: %s", smc_strerror(rc));
    goto done;
  }
  char *rerr = NULL;
  rocksdb_write(s->db, s->apply_wopts, b.wb, &rerr);
  pthread_mutex_lock(&s->rc_mu);
  s->rc_gen++;
  if (rerr) /* outcome unknown: start over */
    rc_clear_locked(s);
  else /* only these column families have cached keys (rc_cacheable) */
    for (smc_cf_t cf = 0; cf < SMC_CF_COUNT; cf++)
      if (cf == SMC_CF_OBJECTS || cf == SMC_CF_MACHINES || cf == SMC_CF_META)
        smc_overlay_foreach_cf(ov, cf, rc_apply_one, s);
  pthread_mutex_unlock(&s->rc_mu);
  if (rerr)
    rc = rocks_fail(err, rerr, "apply");
done:
  pthread_rwlock_unlock(&s->df_mu);
  rocksdb_writebatch_clear(b.wb);
  rocksdb_writebatch_t *none = NULL;
  if (!__atomic_compare_exchange_n(&s->wb_spare, &none, b.wb, 0, __ATOMIC_ACQ_REL,
                                   __ATOMIC_RELAXED))
    rocksdb_writebatch_destroy(b.wb); /* another thread's is kept */
  df_maybe_rebuild(s);
  return rc;
}

int smc_store_drop_partition(smc_store_t *s, int32_t partition, smc_error_t *err) {
  if (partition < 0)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "negative partition %d", (int)partition);
  uint8_t lo[4], hi[4];
  smc_be32(lo, (uint32_t)partition);
  smc_be32(hi, (uint32_t)partition + 1);
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  if (!wb)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  for (int i = 0; i < SMC_CF_COUNT; i++)
    rocksdb_writebatch_delete_range_cf(wb, s->cf[i], (const char *)lo, 4, (const char *)hi, 4);
  char *rerr = NULL;
  rocksdb_write(s->db, s->apply_wopts, wb, &rerr);
  rocksdb_writebatch_destroy(wb);
  pthread_mutex_lock(&s->rc_mu);
  s->rc_gen++;
  rc_clear_locked(s);
  pthread_mutex_unlock(&s->rc_mu);
  if (rerr)
    return rocks_fail(err, rerr, "drop partition");
  return 0;
}

/* ---- bulk load ------------------------------------------------------------ */

struct smc_store_load {
  smc_store_t *s;
  rocksdb_writebatch_t *wb;
  rocksdb_writeoptions_t *wopts; /* no write-ahead log */
  size_t pending;
};

smc_store_load_t *smc_store_load_new(smc_store_t *s) {
  smc_store_load_t *l = calloc(1, sizeof *l);
  if (!l)
    return NULL;
  l->s = s;
  l->wb = rocksdb_writebatch_create();
  l->wopts = rocksdb_writeoptions_create();
  if (!l->wb || !l->wopts) {
    smc_store_load_destroy(l);
    return NULL;
  }
  rocksdb_writeoptions_disable_WAL(l->wopts, 1);
  return l;
}

void smc_store_load_destroy(smc_store_load_t *l) {
  if (!l)
    return;
  if (l->wb)
    rocksdb_writebatch_destroy(l->wb);
  if (l->wopts)
    rocksdb_writeoptions_destroy(l->wopts);
  free(l);
}

int smc_store_load_put(smc_store_load_t *l, smc_cf_t cf, const void *key, size_t klen,
                       const void *val, size_t vlen) {
  if (!cf_ok(cf))
    return SMC_EINVALID_ARGUMENT;
  if (val)
    rocksdb_writebatch_put_cf(l->wb, l->s->cf[cf], key, klen, val, vlen);
  else
    rocksdb_writebatch_delete_cf(l->wb, l->s->cf[cf], key, klen);
  if (val && cf == SMC_CF_DECIDED) {
    pthread_rwlock_rdlock(&l->s->df_mu);
    df_add(l->s, key, klen);
    pthread_rwlock_unlock(&l->s->df_mu);
  }
  l->pending++;
  return 0;
}

size_t smc_store_load_pending(const smc_store_load_t *l) { return l->pending; }

int smc_store_load_write(smc_store_load_t *l, smc_error_t *err) {
  if (l->pending == 0)
    return 0;
  smc_store_t *s = l->s;
  char *rerr = NULL;
  rocksdb_write(s->db, l->wopts, l->wb, &rerr);
  rocksdb_writebatch_clear(l->wb);
  l->pending = 0;
  pthread_mutex_lock(&s->rc_mu);
  s->rc_gen++;
  rc_clear_locked(s); /* a load writes keys nobody reads yet: forget rather than track */
  pthread_mutex_unlock(&s->rc_mu);
  df_maybe_rebuild(s);
  return rerr ? rocks_fail(err, rerr, "load") : 0;
}

int smc_store_load_finish(smc_store_load_t *l, smc_error_t *err) {
  int rc = smc_store_load_write(l, err);
  if (rc < 0)
    return rc;
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  if (!fo)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  rocksdb_flushoptions_set_wait(fo, 1);
  char *rerr = NULL;
  for (int i = 0; i < SMC_CF_COUNT && !rerr; i++)
    rocksdb_flush_cf(l->s->db, fo, l->s->cf[i], &rerr);
  rocksdb_flushoptions_destroy(fo);
  return rerr ? rocks_fail(err, rerr, "flush") : 0;
}
