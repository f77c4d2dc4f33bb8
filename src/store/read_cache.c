/* The store's read cache (store_int.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/store_int.h"

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

/* Object records, machine registrations and the partition meta record
 * (partition + 'a': 5 bytes); not the expiry index, queues, timers, ids. */
int smc_store_cache_cacheable(smc_cf_t cf, size_t klen) {
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
rc_ent_t *smc_store_cache_lookup(smc_store_t *s, smc_cf_t cf, const void *key, size_t klen) {
  uint32_t h = rc_hash(cf, key, klen);
  rc_ent_t *e = rc_find(rc_set(s, h), h, cf, key, klen);
  if (e)
    e->used = ++s->rc_tick;
  return e;
}

/* The entry to (re)fill with key: its own, else an empty one, else the one
 * of its set used least recently; tagged with key's hash. Caller holds
 * rc_mu. */
rc_ent_t *smc_store_cache_place(smc_store_t *s, smc_cf_t cf, const void *key, size_t klen) {
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
void smc_store_cache_fill(rc_ent_t *e, smc_cf_t cf, const void *key, size_t klen, const void *val,
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
void smc_store_cache_forget(smc_store_t *s, smc_cf_t cf, const void *key, size_t klen) {
  rc_ent_t *e = s->rc ? smc_store_cache_lookup(s, cf, key, klen) : NULL;
  if (e) {
    free(e->kv);
    e->kv = NULL;
  }
}

void smc_store_cache_clear_locked(smc_store_t *s) {
  for (size_t i = 0; s->rc && i < RC_SLOTS; i++) {
    free(s->rc[i].kv);
    s->rc[i].kv = NULL;
  }
}

/* A write of key (val NULL = delete) reached RocksDB: keep the cache exact.
 * Caller holds rc_mu. Written values of cacheable column families are kept
 * (the fold reads them back on the next record of the same object). */
void smc_store_cache_written(smc_store_t *s, smc_cf_t cf, const void *key, size_t klen,
                             const void *val, size_t vlen) {
  /* only cacheable keys ever get an entry (kv_get fills no other), so the
   * rest (decided ids, queues, timers) need no look */
  if (!s->rc || !smc_store_cache_cacheable(cf, klen))
    return;
  smc_store_cache_fill(smc_store_cache_place(s, cf, key, klen), cf, key, klen, val, vlen);
}
