/*
 * Ordered key-value access for the fold.
 *
 * The fold reads and writes its partition state only through smc_kv_t, so the
 * same decision code runs over RocksDB (src/store), over the in-memory
 * overlay that buffers a not-yet-committed batch (src/core/overlay.c), and
 * over a plain in-memory map in tests and `smc simulate`.
 *
 * Keys are byte strings; every key the fold writes begins with the partition
 * number as 4 bytes big-endian, so one partition can be dropped or rebuilt
 * alone. Values are byte strings (the fold stores canonical JSON).
 */
#ifndef SMC_CORE_KV_H
#define SMC_CORE_KV_H

#include <stddef.h>
#include <stdint.h>

/* Column families: one keyspace each. */
typedef enum smc_cf {
  SMC_CF_OBJECTS = 0, /* partition|object -> object record */
  SMC_CF_QUEUES,      /* partition|object|seq -> queued proposal, votes */
  SMC_CF_DECIDED,     /* partition|proposal id -> confirmation (dedup window) */
  SMC_CF_MACHINES,    /* partition|name -> registration */
  SMC_CF_TIMERS,      /* partition|deadline(8 BE)|object -> timer */
  SMC_CF_META,        /* partition|name -> clock, applied offset, ... */
  SMC_CF_HISTORY,     /* partition|len(2)|object|version(8 BE) -> committed confirmation */
  SMC_CF_COUNT
} smc_cf_t;

/* Names of the column families, as RocksDB sees them. */
extern const char *const smc_cf_names[SMC_CF_COUNT];

typedef struct smc_kv_ops {
  /* Value of key into *val (malloc'd, caller frees) and *vlen. Returns 0,
   * SMC_ENOT_FOUND when absent, or another negative code on failure. */
  int (*get)(void *self, smc_cf_t cf, const void *key, size_t klen, void **val, size_t *vlen);
  int (*put)(void *self, smc_cf_t cf, const void *key, size_t klen, const void *val, size_t vlen);
  int (*del)(void *self, smc_cf_t cf, const void *key, size_t klen);
  /* The first key k with from <= k < limit (byte order; limit NULL = no
   * bound): copies it into *key, *klen and its value into *val, *vlen (both
   * malloc'd, caller frees). Returns 0, SMC_ENOT_FOUND, or a negative code. */
  int (*seek)(void *self, smc_cf_t cf, const void *from, size_t flen, const void *limit,
              size_t llen, void **key, size_t *klen, void **val, size_t *vlen);
} smc_kv_ops_t;

typedef struct smc_kv {
  const smc_kv_ops_t *ops;
  void *self;
} smc_kv_t;

static inline int smc_kv_get(smc_kv_t *kv, smc_cf_t cf, const void *k, size_t kl, void **v,
                             size_t *vl) {
  return kv->ops->get(kv->self, cf, k, kl, v, vl);
}
static inline int smc_kv_put(smc_kv_t *kv, smc_cf_t cf, const void *k, size_t kl, const void *v,
                             size_t vl) {
  return kv->ops->put(kv->self, cf, k, kl, v, vl);
}
static inline int smc_kv_del(smc_kv_t *kv, smc_cf_t cf, const void *k, size_t kl) {
  return kv->ops->del(kv->self, cf, k, kl);
}
static inline int smc_kv_seek(smc_kv_t *kv, smc_cf_t cf, const void *from, size_t fl,
                              const void *limit, size_t ll, void **k, size_t *kl, void **v,
                              size_t *vl) {
  return kv->ops->seek(kv->self, cf, from, fl, limit, ll, k, kl, v, vl);
}

/*
 * Overlay: an in-memory ordered map of pending writes (puts and deletes) on
 * top of an optional base smc_kv_t. Reads see the pending writes first, then
 * the base. Nothing reaches the base until the owner replays the overlay
 * (smc_overlay_foreach) into it, typically as one atomic RocksDB write batch,
 * and then clears it. With base NULL the overlay is a complete in-memory store.
 */
typedef struct smc_overlay smc_overlay_t;

smc_overlay_t *smc_overlay_new(smc_kv_t *base);
void smc_overlay_destroy(smc_overlay_t *ov);
/* The overlay as an smc_kv_t (valid while ov lives). */
smc_kv_t smc_overlay_kv(smc_overlay_t *ov);
/* Visit every pending write in (cf, key) order; val == NULL means delete.
 * Stops and returns the first non-zero value fn returns. */
int smc_overlay_foreach(smc_overlay_t *ov,
                        int (*fn)(void *opaque, smc_cf_t cf, const void *key, size_t klen,
                                  const void *val, size_t vlen),
                        void *opaque);
/* The same for the pending writes of one column family only. */
int smc_overlay_foreach_cf(smc_overlay_t *ov, smc_cf_t cf,
                           int (*fn)(void *opaque, smc_cf_t cf, const void *key, size_t klen,
                                     const void *val, size_t vlen),
                           void *opaque);
/* Forget every pending write (after they were applied, or to abort). */
void smc_overlay_clear(smc_overlay_t *ov);
size_t smc_overlay_pending(const smc_overlay_t *ov);
/* Bytes held by pending writes (keys + values), for batch sizing. */
size_t smc_overlay_bytes(const smc_overlay_t *ov);

#endif
