/*
 * The state store: RocksDB, one column family per smc_cf_t (src/core/kv.h).
 *
 * The Kafka log is the truth; the store is a cache of the fold's state that
 * can always be rebuilt from it. Memory is bounded: one LRU block cache shared
 * by every column family (index and filter blocks included), a fixed write
 * buffer per column family, bloom filters on every table.
 *
 * A store is safe to use from several threads (RocksDB is); the smc_kv_t of
 * smc_store_kv writes straight through, one key at a time. The fold instead
 * buffers a record's writes in an overlay and hands it to smc_store_apply,
 * which writes them in one atomic batch.
 */
#ifndef SMC_STORE_STORE_H
#define SMC_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/kv.h"
#include "smc/error.h"

typedef struct smc_store smc_store_t;

typedef struct smc_store_options {
  size_t block_cache_bytes;    /* shared LRU block cache, default 64 MiB */
  size_t write_buffer_bytes;   /* memtable size per column family, default 16 MiB;
                                  all memtables together are capped at 4x this */
  int max_open_files;          /* default 512 (-1 = unlimited) */
  int sync;                    /* fsync every apply, default 0 (the WAL is on) */
  size_t decided_filter_bytes; /* in-memory filter of decided proposal ids:
                                  at most this, default 4 MiB (~1.6M live
                                  ids); starts at 1/16 and doubles; 0 = none */
  int rebuild;                 /* 1: a bulk rebuild (smc replay --fresh): see
                                  smc_store_finish_rebuild */
} smc_store_options_t;

/* The file a rebuild keeps in the store's directory until it is finished. */
#define SMC_STORE_REBUILD_MARKER "REBUILDING"

/* The decided-id filter (store.c): whether it is on, its size now and
 * capacity, the keys added since its last build, how often it was built
 * (on open and when full), and the lookups it answered without RocksDB. */
typedef struct smc_store_filter_stats {
  int enabled;
  size_t bytes, capacity, keys;
  unsigned long builds, skipped;
} smc_store_filter_stats_t;

void smc_store_options_default(smc_store_options_t *o);

/* Open (creating dir and any missing column family) the store in dir. o may
 * be NULL for the defaults. On failure *out is NULL and err says why
 * (SMC_ESTORE, SMC_EIO, SMC_EINVALID_ARGUMENT). */
int smc_store_open(const char *dir, const smc_store_options_t *o, smc_store_t **out,
                   smc_error_t *err);
/*
 * A rebuild (options.rebuild = 1) deletes whatever store dir holds, creates
 * an empty one with the marker file SMC_STORE_REBUILD_MARKER in dir, and
 * writes without RocksDB's write-ahead log, so a crash loses the memtables
 * of some column families and keeps the table files of others. Its decided-id
 * filter starts at its bound. smc_store_finish_rebuild writes every memtable
 * to table files and then removes the marker; later writes use the WAL again.
 * Until then the store counts as unfinished: an open of dir without rebuild
 * that finds the marker deletes the store and starts from an empty one
 * (applied offsets 0, so whoever opens it folds the log from its start).
 * Returns 0 or SMC_ESTORE / SMC_EIO.
 */
int smc_store_finish_rebuild(smc_store_t *s, smc_error_t *err);

/* Flush nothing, close everything. NULL is accepted. */
void smc_store_close(smc_store_t *s);

/* The store as an smc_kv_t: reads and writes go straight to RocksDB (each
 * put/del is its own write). Valid while s is open. */
smc_kv_t smc_store_kv(smc_store_t *s);

/* Write every pending write of ov in ONE atomic WriteBatch (all or nothing,
 * also across a crash). ov is not cleared: the caller clears it after. */
int smc_store_apply(smc_store_t *s, smc_overlay_t *ov, smc_error_t *err);

/* Delete every key of partition (prefix: 4 bytes big-endian) in every column
 * family, atomically. */
int smc_store_drop_partition(smc_store_t *s, int32_t partition, smc_error_t *err);

/*
 * Bulk load (a partition restored from a snapshot, node/snapshot.h): puts
 * and deletes (val NULL) collected in a RocksDB write batch and written
 * without the write-ahead log, so a crash may lose any part of them.
 * smc_store_load_finish writes what is pending and flushes every memtable
 * to table files: only after it returned may the caller write the key that
 * makes the loaded state count (the partition's applied offset, through the
 * WAL). The read cache is dropped on every load write. One thread per load.
 */
typedef struct smc_store_load smc_store_load_t;
smc_store_load_t *smc_store_load_new(smc_store_t *s);
void smc_store_load_destroy(smc_store_load_t *l);
int smc_store_load_put(smc_store_load_t *l, smc_cf_t cf, const void *key, size_t klen,
                       const void *val, size_t vlen);
size_t smc_store_load_pending(const smc_store_load_t *l);
int smc_store_load_write(smc_store_load_t *l, smc_error_t *err);
int smc_store_load_finish(smc_store_load_t *l, smc_error_t *err);

/* A snapshot of the decided-id filter's figures. */
void smc_store_filter_stats(smc_store_t *s, smc_store_filter_stats_t *out);

/* A RocksDB integer property summed over the store's column families
 * (rocksdb.total-sst-files-size, rocksdb.num-entries-active-mem-table, ...).
 * A database-wide one (rocksdb.num-running-compactions) is counted once per
 * column family: only whether it is zero means something. Returns 0, or
 * SMC_ENOT_FOUND when RocksDB does not know the name. */
int smc_store_property(smc_store_t *s, const char *name, uint64_t *out);

/* For benchmarks that measure RocksDB itself under the store's options
 * (bench_fold's raw baseline): the database (a rocksdb_t *) and the handle
 * of column family cf (a rocksdb_column_family_handle_t *). Writes through
 * them bypass the read cache and the decided-id filter, so a store written
 * that way must not be read through smc_store_kv afterwards. */
void *smc_store_rocksdb(smc_store_t *s);
void *smc_store_rocksdb_cf(smc_store_t *s, smc_cf_t cf);

/* The directory the store was opened in. */
const char *smc_store_dir(const smc_store_t *s);

#endif
