/*
 * Snapshots of the committer's partition state in the compacted changelog
 * topic (<prefix>changelog, protocol.md), so a node with an empty store
 * restores a partition in time proportional to its state instead of its
 * history, and <prefix>proposals may be trimmed below the checkpoint.
 *
 * Records (on the changelog partition with the number of the proposals
 * partition they describe):
 *  - state: key = one tag byte naming the column family ('o' objects,
 *    'q' queues, 'd' decided ids, 'm' machines, 't' timers, 'M' meta)
 *    followed by the store key verbatim (which begins with the partition,
 *    4 bytes big-endian, then the object id, proposal id, ...); value =
 *    the store value verbatim; a deleted key is a tombstone (null value),
 *    so compaction keeps exactly the live keys. Only the fold's state goes
 *    there: not the history column family (no decision reads it; tag 'h'
 *    in changelogs written before 2026-12-08 is skipped on restore), nor
 *    node-local meta keys (smc_snapshot_is_local). A restored partition's
 *    history therefore starts at its checkpoint (its history floor,
 *    smc_fold_history_floor).
 *  - checkpoint: key = 'c' + partition (4 bytes big-endian); value = JSON
 *    {"type":"checkpoint","format":1,"partition":P,"offset":X,"complete":B}:
 *    the state records before it hold the partition's fold state after
 *    every proposals record below offset X. complete is false when the
 *    writer did not have the whole state in the changelog (the partition's
 *    state predates the changelog, or the changelog was off for a while);
 *    a restore then falls back to folding the log from its start.
 *
 * The committer writes, in each transaction and for every partition the
 * batch folded, the keys the batch touched (its overlay's pending writes,
 * each once however often the batch wrote it) and then the checkpoint,
 * before sending the offsets: the changelog, the confirmations and the
 * consumed offsets commit or abort together.
 *
 * Whether a partition's changelog is complete is decided at assignment: a
 * partition never committed starts empty (complete); otherwise the last
 * checkpoint in the changelog must be complete and at the committed offset
 * (the tail of the changelog is read), unless this node's store is level
 * with the committed offset and carries the mark (meta key partition|'s',
 * never itself written to the changelog) that its own last checkpoint was
 * complete. With the changelog off the mark is cleared.
 */
#ifndef SMC_NODE_SNAPSHOT_H
#define SMC_NODE_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/kv.h"
#include "kafka/handle.h"
#include "smc/error.h"
#include "store/store.h"

#define SMC_SNAPSHOT_FORMAT 1
#define SMC_SNAPSHOT_TAG_CHECKPOINT 'c'

/* ---- encoding ----------------------------------------------------------- */

/* The changelog key of store key (cf, key): tag byte + key, into out (cap
 * bytes). Returns the length (1 + klen), or SMC_EINVALID_ARGUMENT for an
 * unknown cf, a key shorter than the partition prefix, or too small a cap. */
int smc_snapshot_key(smc_cf_t cf, const void *key, size_t klen, uint8_t *out, size_t cap);

/* What a changelog key names. */
typedef struct smc_snapshot_rec {
  int checkpoint;     /* 1: a checkpoint key (cf, key unused) */
  int32_t partition;  /* from the key's partition prefix */
  smc_cf_t cf;        /* state records */
  const uint8_t *key; /* state records: the store key (points into the input) */
  size_t klen;
} smc_snapshot_rec_t;

/* Parse a changelog key. Returns 0 or SMC_EINVALID_ARGUMENT (unknown tag,
 * too short). */
int smc_snapshot_parse_key(const void *k, size_t kl, smc_snapshot_rec_t *out);

typedef struct smc_checkpoint {
  int32_t partition;
  int64_t offset; /* the next proposals offset the state does not hold */
  int complete;
} smc_checkpoint_t;

/* The checkpoint key of partition p (5 bytes) into out. */
void smc_snapshot_checkpoint_key(int32_t p, uint8_t out[5]);
/* The checkpoint value as JSON into out (cap bytes, NUL-terminated).
 * Returns its length, or SMC_EINVALID_ARGUMENT when it does not fit. */
int smc_snapshot_checkpoint_encode(const smc_checkpoint_t *cp, char *out, size_t cap);
/* Parse a checkpoint value. Returns 0, or SMC_EINVALID_ARGUMENT when it is
 * not a checkpoint of a known format. */
int smc_snapshot_checkpoint_decode(const void *v, size_t vl, smc_checkpoint_t *cp);

/* ---- the completeness mark in the store --------------------------------- */

/* Whether partition p's state is known to be whole in the changelog. */
int smc_snapshot_marked(smc_store_t *store, int32_t p);
/* Set (on = 1) or clear the mark. Returns 0 or a negative code. */
int smc_snapshot_mark(smc_store_t *store, int32_t p, int on);

/* ---- the writer (committer) --------------------------------------------- */

typedef struct smc_snapshot smc_snapshot_t;

/* A writer for topic (the changelog, nparts partitions like the proposals).
 * NULL when out of memory. */
smc_snapshot_t *smc_snapshot_new(const char *topic, int32_t nparts);
void smc_snapshot_destroy(smc_snapshot_t *s);

/* Set at assignment (fold thread, before the partition's first batch):
 * whether the changelog holds p's whole state. */
void smc_snapshot_set_complete(smc_snapshot_t *s, int32_t p, int complete);

/* Produce one changelog record (val NULL: a tombstone) to partition p of
 * topic: 0, or a negative code. */
typedef int (*smc_snapshot_produce_fn)(void *opaque, const char *topic, int32_t p, const void *key,
                                       size_t klen, const void *val, size_t vlen);

/*
 * Produce through produce (the committer: into its open transaction) the
 * changelog records of ov's pending writes and, for every partition p with
 * next[p] >= 0, a checkpoint at next[p]. ov must not change meanwhile (the
 * committer's in-flight batch). Returns 0, or SMC_EKAFKA (the caller aborts
 * the transaction). Commit thread only.
 */
int smc_snapshot_write(smc_snapshot_t *s, smc_snapshot_produce_fn produce, void *opaque,
                       smc_overlay_t *ov, const int64_t *next);

/*
 * Produce (no transaction) every key of partition p in store, and a complete
 * checkpoint at the store's applied offset, to topic: a whole snapshot, for
 * a changelog that holds nothing for p yet (keys it held and the store does
 * not would stay). For `smc replay --write-changelog` while no committer
 * runs. *records = records produced. The caller flushes producer. Returns 0
 * or a negative code.
 */
int smc_snapshot_dump(smc_kafka_t *producer, const char *topic, smc_store_t *store, int32_t p,
                      int64_t *records, smc_error_t *err);

/* ---- restore ------------------------------------------------------------ */

typedef struct smc_snapshot_restore {
  const char *bootstrap;
  const char *const *props; /* librdkafka passthrough (k,v,...,NULL) or NULL */
  const char *topic;        /* <prefix>changelog */
  smc_store_t *store;
  atomic_int *stop;    /* non-NULL: a non-zero value aborts with SMC_EUNAVAILABLE */
  int idle_timeout_ms; /* fail when nothing arrives for this long (0 = 60000) */
  /* out */
  int64_t records;             /* changelog records read */
  int64_t keys;                /* state records applied */
  smc_checkpoint_t checkpoint; /* the last checkpoint read (offset -1: none) */
} smc_snapshot_restore_t;

/*
 * Load partition p of the changelog (read_committed, to its end) into the
 * store, whose partition p must hold nothing (it is dropped first). Uses it
 * only when its last checkpoint is complete, at most max_offset (the
 * group's committed offset; INT64_MAX = any) and agrees with the restored
 * applied offset; then returns 1 and the store holds p's state at the
 * checkpoint (with the completeness mark when the checkpoint is at
 * max_offset). Returns 0 when the changelog is not usable (partition p
 * left empty: fold the log from its start), or a negative code. The
 * applied offset is written last, so a crash midway leaves p looking empty.
 */
int smc_snapshot_restore(smc_snapshot_restore_t *r, int32_t p, int64_t max_offset,
                         smc_error_t *err);

/* The last checkpoint of partition p in the changelog (read_committed;
 * only the tail is read), offset -1 when there is none. Uses r's
 * connection settings only. Returns 0 or a negative code. */
int smc_snapshot_last_checkpoint(const smc_snapshot_restore_t *r, int32_t p, smc_checkpoint_t *out,
                                 smc_error_t *err);

/* Whether the store key (cf, key) is node-local bookkeeping, not fold
 * state: the completeness mark or the history floor (store digests leave
 * them out, the changelog never carries them). */
int smc_snapshot_is_local(smc_cf_t cf, const void *key, size_t klen);

/* One partition of smc_snapshot_restore_parts. */
typedef struct smc_snapshot_part {
  int32_t partition;
  int64_t max_offset;          /* as smc_snapshot_restore's */
  int restored;                /* out: 1 restored, 0 not usable (left empty) */
  smc_checkpoint_t checkpoint; /* out: the last checkpoint read (offset -1: none) */
} smc_snapshot_part_t;

/* smc_snapshot_restore of n partitions at once: one consumer reads them
 * together, one flush ends the load. r->checkpoint is not set. Returns the
 * number restored, or a negative code. */
int smc_snapshot_restore_parts(smc_snapshot_restore_t *r, smc_snapshot_part_t *parts, size_t n,
                               smc_error_t *err);

/* Whether topic exists with nparts partitions, through rk's metadata:
 * 1 yes, 0 no (missing or another partition count), negative on error. */
int smc_snapshot_topic_ok(smc_kafka_t *rk, const char *topic, int32_t nparts);

#endif
