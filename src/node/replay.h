/*
 * Silent replay: fold a range of a topic's partitions into a state without
 * publishing anything. Used by the committer to restore a partition before it
 * serves it ([applied, committed)), by `smc replay` to rebuild a store and by
 * `smc verify` to recompute every decision in memory.
 *
 * The replay uses its own short-lived consumer (assign, no group membership,
 * read_committed), so it never disturbs a role's consumer group.
 */
#ifndef SMC_NODE_REPLAY_H
#define SMC_NODE_REPLAY_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/kv.h"
#include "kafka/record.h"
#include "smc/error.h"
#include "smc/fold.h"
#include "store/store.h"

/* Sentinel for smc_replay_part_t.to: the high watermark when the replay starts. */
#define SMC_REPLAY_END INT64_MAX

typedef struct smc_replay_part {
  int32_t partition;
  int64_t from;    /* first offset to read; 0 = log start */
  int64_t to;      /* stop before this offset (exclusive); SMC_REPLAY_END = end */
  int64_t records; /* out: records folded */
  int done;        /* out/internal */
} smc_replay_part_t;

typedef struct smc_replay {
  const char *bootstrap;
  const char *const *props; /* librdkafka passthrough (k,v,...,NULL) or NULL */
  const char *topic;        /* <prefix>proposals */
  smc_fold_t *fold;
  smc_store_t *store; /* non-NULL: fold over an overlay, applied atomically in batches */
  smc_kv_t *kv;       /* when store is NULL: fold straight into this kv */
  smc_emit_fn emit;   /* NULL: outputs are discarded */
  void *opaque;
  /* Called about every 100 ms (final = 0) and once at the end (final = 1):
   * records folded so far and the total expected (from the watermarks; an
   * upper bound: markers and aborted records occupy offsets). May be NULL. */
  void (*progress)(void *opaque, int64_t done, int64_t total, int final);
  atomic_int *stop;    /* non-NULL: a non-zero value aborts with SMC_EUNAVAILABLE */
  int idle_timeout_ms; /* fail when nothing arrives for this long (0 = 60000) */
  /* Fold threads (0 or 1: the calling thread folds alone, with fold). More
   * threads need a store, or neither store nor kv, and fold_config: each
   * thread owns a disjoint set of partitions with its own fold (the first
   * uses fold, the others smc_fold_new(fold_config)) and its own overlay.
   * Capped by the number of ranges left to fold. */
  int threads;
  const smc_fold_config_t *fold_config;
  /* Instead of store (store and kv NULL): called once with opaque, by the
   * calling thread, after the consumer was assigned and before anything is
   * folded, so that opening a store overlaps the first fetches (the ranges
   * must then be known without it, e.g. from 0). Returns 0 and sets *store,
   * used as store above; or a negative code (err set) that ends the replay. */
  int (*open_store)(void *opaque, smc_store_t **store, smc_error_t *err);
} smc_replay_t;

/*
 * Fold every partition range of parts. Ranges with from >= to are done at
 * once. Returns 0 when every range was folded (and, with a store, written);
 * a negative code otherwise (the store then holds a consistent prefix: every
 * batch is atomic and carries its applied offsets).
 *
 * State: with a store, each thread folds over its own overlay on the store
 * and writes it in atomic batches (a batch holds only that thread's
 * partitions, with their applied offsets); with kv (one thread only), straight
 * into kv; with neither, each thread folds into a private in-memory state
 * that is dropped at the end (smc verify: only the outputs matter). emit and
 * progress may then be called from several threads at once, emit always for
 * one partition from the same thread, progress never concurrently with
 * itself.
 */
int smc_replay_run(const smc_replay_t *r, smc_replay_part_t *parts, size_t n, smc_error_t *err);

#endif
