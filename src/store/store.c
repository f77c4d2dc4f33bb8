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
#include "store/store_int.h"

/* RocksDB's destroy functions take no NULL: each handle goes only if set. */
#define DROP(destroy, h)                                                                           \
  do {                                                                                             \
    if (h)                                                                                         \
      destroy(h);                                                                                  \
  } while (0)

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

/* Flush every smc column family to disk and wait for it: 0 or an error. */
static int flush_all(smc_store_t *s, smc_error_t *err) {
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  if (!fo)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  rocksdb_flushoptions_set_wait(fo, 1);
  char *rerr = NULL;
  for (int i = 0; i < SMC_CF_COUNT && !rerr; i++)
    rocksdb_flush_cf(s->db, fo, s->cf[i], &rerr);
  rocksdb_flushoptions_destroy(fo);
  return rerr ? rocks_fail(err, rerr, "flush") : 0;
}

int smc_store_finish_rebuild(smc_store_t *s, smc_error_t *err) {
  if (!s->rebuilding)
    return 0;
  int rc = flush_all(s, err);
  if (rc < 0)
    return rc;
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
  if (smc_store_filter_open(s, o->decided_filter_bytes, o->rebuild)) {
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
  smc_store_filter_settle(s, 1); /* before RocksDB goes: a rebuild reads it */
  for (int i = 0; i < SMC_CF_COUNT; i++)
    DROP(rocksdb_column_family_handle_destroy, s->cf[i]);
  for (size_t i = 0; i < s->nother; i++)
    rocksdb_column_family_handle_destroy(s->other[i]);
  free(s->other);
  DROP(rocksdb_writebatch_destroy, s->wb_spare);
  DROP(rocksdb_close, s->db);
  DROP(rocksdb_options_destroy, s->opts);
  if (s->table)
    rocksdb_block_based_options_destroy(s->table); /* frees the bloom policy */
  else
    DROP(rocksdb_filterpolicy_destroy, s->bloom);
  DROP(rocksdb_cache_destroy, s->cache);
  DROP(rocksdb_readoptions_destroy, s->ropts);
  DROP(rocksdb_writeoptions_destroy, s->wopts);
  DROP(rocksdb_writeoptions_destroy, s->apply_wopts);
  if (s->rc_mu_ok)
    pthread_mutex_destroy(&s->rc_mu);
  if (s->df_mu_ok)
    pthread_rwlock_destroy(&s->df_mu);
  if (s->df_wait_ok) {
    pthread_mutex_destroy(&s->df_wait_mu);
    pthread_cond_destroy(&s->df_wait_cv);
  }
  free(s->df_bits);
  smc_store_cache_clear_locked(s);
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
    int absent = s->df_bits && !smc_store_filter_maybe(s, key, klen);
    pthread_rwlock_unlock(&s->df_mu);
    if (absent) {
      __atomic_fetch_add(&s->df_stats.skipped, 1, __ATOMIC_RELAXED);
      return SMC_ENOT_FOUND;
    }
  }
  int cacheable = smc_store_cache_cacheable(cf, klen);
  uint64_t gen = 0;
  if (cacheable) {
    pthread_mutex_lock(&s->rc_mu);
    rc_ent_t *e = smc_store_cache_lookup(s, cf, key, klen);
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
      smc_store_cache_fill(smc_store_cache_place(s, cf, key, klen), cf, key, klen, v, n);
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
    smc_store_filter_add(s, key, klen);
  }
  rocksdb_put_cf(s->db, s->wopts, s->cf[cf], key, klen, val, vlen, &rerr);
  if (decided) {
    pthread_rwlock_unlock(&s->df_mu);
    smc_store_filter_maybe_rebuild(s);
  }
  pthread_mutex_lock(&s->rc_mu);
  s->rc_gen++;
  if (rerr) /* unknown outcome: forget the key */
    smc_store_cache_forget(s, cf, key, klen);
  else
    smc_store_cache_written(s, cf, key, klen, val, vlen);
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
    smc_store_cache_forget(s, cf, key, klen);
  else
    smc_store_cache_written(s, cf, key, klen, NULL, 0);
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
    smc_store_filter_add(b->s, key, klen);
  if (val)
    rocksdb_writebatch_put_cf(b->wb, b->s->cf[cf], key, klen, val, vlen);
  else
    rocksdb_writebatch_delete_cf(b->wb, b->s->cf[cf], key, klen);
  return 0;
}

static int rc_apply_one(void *opaque, smc_cf_t cf, const void *key, size_t klen, const void *val,
                        size_t vlen) {
  smc_store_cache_written(opaque, cf, key, klen, val, vlen);
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
    smc_store_cache_clear_locked(s);
  else /* only these column families have cached keys (smc_store_cache_cacheable) */
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
  smc_store_filter_maybe_rebuild(s);
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
  smc_store_cache_clear_locked(s);
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

/* A bulk load writes each key once, in no order: RocksDB's bulk-load
 * advice is to let level 0 collect the flushed memtables without
 * compacting them meanwhile (every compaction would read and write the
 * loaded bytes again). bulk 1 sets that on every column family, 0 puts the
 * store's settings back, and RocksDB then compacts level 0 in the
 * background while the node serves. A restore on a 2-core VM spent 3.1 s
 * of CPU instead of 5.2 s on 1.16 M changelog records, and its wall time
 * was 6.1-9.4 s against 10.1-17.6 s for the same changelog (load 8-10).
 * Other writes meanwhile (a commit still in flight on a rebalance) only
 * add to level 0 for that while. Best effort: a failure only costs speed. */
static void load_mode(smc_store_t *s, int bulk) {
  char slow[32], stop[32];
  snprintf(slow, sizeof slow, "%d",
           bulk ? 1 << 20 : rocksdb_options_get_level0_slowdown_writes_trigger(s->opts));
  snprintf(stop, sizeof stop, "%d",
           bulk ? 1 << 20 : rocksdb_options_get_level0_stop_writes_trigger(s->opts));
  const char *keys[] = {"disable_auto_compactions", "level0_slowdown_writes_trigger",
                        "level0_stop_writes_trigger"};
  const char *vals[] = {bulk ? "true" : "false", slow, stop};
  for (int i = 0; i < SMC_CF_COUNT; i++) {
    char *rerr = NULL;
    rocksdb_set_options_cf(s->db, s->cf[i], 3, keys, vals, &rerr);
    free(rerr);
  }
}

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
  load_mode(s, 1);
  return l;
}

void smc_store_load_destroy(smc_store_load_t *l) {
  if (!l)
    return;
  if (l->s)
    load_mode(l->s, 0);
  DROP(rocksdb_writebatch_destroy, l->wb);
  DROP(rocksdb_writeoptions_destroy, l->wopts);
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
    smc_store_filter_add(l->s, key, klen);
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
  smc_store_cache_clear_locked(
      s); /* a load writes keys nobody reads yet: forget rather than track */
  pthread_mutex_unlock(&s->rc_mu);
  smc_store_filter_maybe_rebuild(s);
  return rerr ? rocks_fail(err, rerr, "load") : 0;
}

int smc_store_load_finish(smc_store_load_t *l, smc_error_t *err) {
  int rc = smc_store_load_write(l, err);
  if (rc < 0)
    return rc;
  return flush_all(l->s, err);
}
