/*
 * smc fold API: the deterministic core of the cluster (protocol.md, "The
 * fold"). A fold turns the records of a partition of smc.proposals, in offset
 * order, into outputs (confirmations, read replies, vote requests) and state.
 *
 * The fold keeps no partition state of its own between calls: all of it lives
 * behind the smc_kv_t handed in (RocksDB, or an overlay of pending writes on
 * top of it), including each partition's clock and applied offset, which are
 * written with the effects of every record. So "what the fold has applied" and
 * "what the store holds" can never disagree. The fold object itself caches
 * only compiled machines (immutable, keyed by hash).
 */
#ifndef SMC_FOLD_H
#define SMC_FOLD_H

#include <stddef.h>
#include <stdint.h>

#include "smc/error.h"
#include "smc/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The key-value state the fold reads and writes. An embedder gets one from
 * smc_fold_memory_new (in memory); the worker's are RocksDB and overlays
 * (src/core/kv.h, private). */
struct smc_kv;

/* An in-memory fold state, what `smc simulate` and `smc verify` fold into.
 * The caller owns it; the kv pointer stays valid until
 * smc_fold_memory_destroy. NULL on allocation failure. */
typedef struct smc_fold_memory smc_fold_memory_t;
SMC_API smc_fold_memory_t *smc_fold_memory_new(void);
SMC_API struct smc_kv *smc_fold_memory_kv(smc_fold_memory_t *m);
SMC_API void smc_fold_memory_destroy(smc_fold_memory_t *m);

/* The version of the decision rules this code folds by. A `settings` event
 * whose "fold" is higher was written for a newer fold: smc_fold_apply then
 * returns SMC_EINCOMPATIBLE and writes nothing, and the partition stops
 * there (a node whose code would decide differently does not decide). */
#define SMC_FOLD_VERSION 1

typedef struct smc_fold_config {
  int32_t partitions;      /* partitions of smc.proposals (for wrong_partition) */
  int64_t dedup_window_ms; /* decided ids remembered this long (default 7 days) */
  size_t max_event_bytes;  /* larger values are too_large (default 1 MiB) */
  size_t max_queue;        /* proposals queued per object (default 1000) */
  smc_limits_t limits;     /* expression / regex / data budgets */
  /* The cluster's registration key (NULL = none): an Ed25519 public key,
   * base64 of its 32 bytes or a PEM block. With one, a machine event
   * registers only when signed by it (protocol.md "Machines"). It decides
   * outcomes: every worker and verify/replay/simulate must share it.
   * Parsed by smc_fold_new (SMC_EINVALID_ARGUMENT when it is no such key);
   * the text is not kept. */
  const char *registration_key;
  int no_history; /* 1: keep no per-object history (smc verify); decisions are the same */
} smc_fold_config_t;

SMC_API void smc_fold_config_default(smc_fold_config_t *cfg);

typedef struct smc_fold smc_fold_t;

SMC_API int smc_fold_new(const smc_fold_config_t *cfg, smc_fold_t **out);
SMC_API void smc_fold_destroy(smc_fold_t *f);

/* One record of smc.proposals. Pointers are borrowed for the call. */
typedef struct smc_record {
  int32_t partition;
  int64_t offset;
  int64_t timestamp; /* ms; LogAppendTime in production */
  const void *key;   /* NULL = no key */
  size_t key_len;
  const void *value;
  size_t value_len;
  const char *correlation; /* smc-correlation header, NULL if absent */
  const char *reply_to;    /* smc-reply-to header, NULL if absent */
} smc_record_t;

typedef enum smc_output_kind {
  SMC_OUT_CONFIRMATION = 1, /* to smc.confirmations (and reply_to if set) */
  SMC_OUT_REPLY,            /* read reply, to reply_to (default smc.replies) */
  SMC_OUT_VOTE_REQUEST,     /* a proposal needing votes became active (voters act) */
} smc_output_kind_t;

/* One output. Pointers are valid only during the emit call. */
typedef struct smc_output {
  smc_output_kind_t kind;
  int32_t partition;    /* partition of the input record */
  int64_t offset;       /* offset of the record that caused it */
  const char *key;      /* object id ("" when unknown) */
  const char *reply_to; /* extra destination topic, NULL if none */
  const char *json;     /* canonical JSON of the output event */
  size_t json_len;
  const char *id; /* the proposal id a confirmation or vote request is about, the
                     read id of a read reply ("" when unknown) */
  /* Confirmations only (NULL / 0 otherwise), read from the decision itself,
   * so a consumer need not scan json (whose data is the proposer's): */
  const char *machine; /* the object's machine ("" when unknown, e.g. a bad event) */
  const char *outcome; /* "committed", "rejected" or "expired" */
  int duplicate;       /* 1: the original decision of an id decided before */
  /* Vote requests only (NULL / 0 otherwise): the voters the proposal waits
   * for, sorted, so a voter need not scan json either. */
  const char *const *voters;
  size_t nvoters;
  /* Confirmations and vote requests (0 / NULL for replies): the object's
   * version (after a commit the new one; a rejection or expiry leaves it as
   * it was, 0 before the object exists; a vote request's is the one the
   * proposal found) and the votes counted, voter ids in the order they
   * came, as json says them (a duplicate's are the original decision's). */
  int64_t version;
  const char *const *accept;
  size_t naccept;
  const char *const *reject;
  size_t nreject;
} smc_output_t;

/* Called for each output, in order. A non-zero return stops the fold call and
 * is returned by it. */
typedef int (*smc_emit_fn)(void *opaque, const smc_output_t *out);

/*
 * Apply one record of partition rec->partition: fire due timers, then decide
 * the record, writing every effect (and the new clock and applied offset =
 * rec->offset + 1) through kv, and calling emit for each output. Records at
 * offsets below the partition's applied offset are skipped (idempotent
 * replay). Bad events are not errors: they produce error outputs or log
 * lines. Returns 0, or a negative code when kv fails (the caller must then
 * discard the writes of this record).
 */
SMC_API int smc_fold_apply(smc_fold_t *f, struct smc_kv *kv, const smc_record_t *rec,
                           smc_emit_fn emit, void *opaque);

/*
 * The read reply a `read` event for object would get from the state in kv
 * now, without a record: canonical JSON {"found", "object", "version",
 * "machine", "state", "data", "checksum", "created", "updated", "time"
 * (the partition clock), "offset" (the last record folded, -1 = none),
 * "type":"read"} into *json (malloc'd). Writes nothing. 0 or a negative
 * code (kv failure, memory).
 */
SMC_API int smc_fold_read(smc_fold_t *f, struct smc_kv *kv, int32_t partition, const char *object,
                          char **json);

/*
 * What a gateway asks a fold's state (src/core/fold_query.c); each writes
 * nothing and returns 0 with *json (malloc'd canonical JSON) set, or a
 * negative code.
 *  - smc_fold_proposal: the decision of proposal id if this partition
 *    decided it within the dedup window: {proposal, status
 *    committed|rejected|expired, object, machine, transition, confirmation},
 *    or {proposal, status: "pending"} while it is queued; SMC_ENOT_FOUND.
 *  - smc_fold_list: up to limit objects of machine (NULL = any) whose id
 *    sorts after `after` (bytewise; NULL or "" = from the first), in id
 *    order: [{object, machine, state, version, data, checksum, created,
 *    updated}].
 *  - smc_fold_history: {versions: up to limit committed confirmations of
 *    object with version > after_version, in version order (empty when the
 *    fold keeps no history), history_from?: N}; history_from is there when
 *    the partition was restored from the changelog (it has a history floor)
 *    and the versions of object below N are not held, having been
 *    committed before the restored checkpoint.
 *  - smc_fold_pending: the proposals queued on object, head first: {found
 *    (a committed version exists), machine (null when not found), version,
 *    proposals: [{proposal, machine, transition, status "waiting" (the head,
 *    active, collecting votes) | "queued", data, votes: {accept, reject},
 *    proposer?, expect_version?, deadline? (the vote timeout), timer?}]}.
 */
SMC_API int smc_fold_proposal(smc_fold_t *f, struct smc_kv *kv, int32_t partition, const char *id,
                              char **json);
SMC_API int smc_fold_list(smc_fold_t *f, struct smc_kv *kv, int32_t partition, const char *machine,
                          const char *after, size_t limit, char **json);
SMC_API int smc_fold_history(smc_fold_t *f, struct smc_kv *kv, int32_t partition,
                             const char *object, int64_t after_version, size_t limit, char **json);
SMC_API int smc_fold_pending(smc_fold_t *f, struct smc_kv *kv, int32_t partition,
                             const char *object, char **json);

/* The history floor of a partition restored from the changelog: the
 * checkpoint offset it was restored at, so its history holds only versions
 * committed from that offset on (the changelog carries no history).
 * Node-local, like the applied offset's store: never in the changelog, not
 * in store digests. _put sets it (0 or a negative code); smc_fold_history_floor
 * gets it (*offset -1 when there is none; 0 or a negative code);
 * smc_fold_is_history_floor says whether the key (cf, key) is one. */
SMC_API int smc_fold_history_floor_put(struct smc_kv *kv, int32_t partition, int64_t offset);
SMC_API int smc_fold_history_floor(struct smc_kv *kv, int32_t partition, int64_t *offset);
SMC_API int smc_fold_is_history_floor(int cf, const void *key, size_t klen);

/* The partition's applied offset (next offset to apply; 0 = none yet). */
SMC_API int smc_fold_applied(smc_fold_t *f, struct smc_kv *kv, int32_t partition, int64_t *next);
/* The partition's clock (ms; 0 = no record yet). */
SMC_API int smc_fold_clock(smc_fold_t *f, struct smc_kv *kv, int32_t partition, int64_t *clock);
/* The earliest pending timer deadline of the partition: returns 1 and sets
 * *deadline, 0 when no timer is pending, negative on kv failure. */
SMC_API int smc_fold_next_deadline(smc_fold_t *f, struct smc_kv *kv, int32_t partition,
                                   int64_t *deadline);
/* A lower bound of that deadline without reading the timers (the
 * partition's metadata keeps it: exact after timers fire, lowered when one
 * is added, left as it is when one is removed): returns 1 and sets *bound
 * when a timer may be pending, 0 when none is, negative on kv failure. */
SMC_API int smc_fold_timer_bound(smc_fold_t *f, struct smc_kv *kv, int32_t partition,
                                 int64_t *bound);

/*
 * Register a machine in partition outside the log (smc simulate: the machines
 * named on its command line are known from the start). Same rules as a
 * `machine` event: the same hash again is a no-op (returns 0); another
 * definition under a known name is SMC_EMACHINE_EXISTS; a definition that
 * does not compile is SMC_EINVALID_MACHINE (err and diags say why; diags may
 * be NULL). Does not move the applied offset or the clock.
 */
SMC_API int smc_fold_register_machine(smc_fold_t *f, struct smc_kv *kv, int32_t partition,
                                      const char *text, size_t len, const char *file,
                                      smc_diags_t *diags, smc_error_t *err);

/*
 * The fold settings (protocol.md "settings") in force in partition now:
 * canonical JSON {"fold": SMC_FOLD_VERSION, "from_log": true|false,
 * "limits": {max_event_bytes, max_queue, expr_steps, regex_match_limit,
 * regex_depth_limit, max_definition_bytes, max_data_bytes}, "offset"} into
 * *json (malloc'd). from_log false: no settings event yet, the defaults.
 */
SMC_API int smc_fold_settings(smc_fold_t *f, struct smc_kv *kv, int32_t partition, char **json);
/* Whether name=value may be written in a settings event: 0, or
 * SMC_EBAD_REQUEST with err saying why (an unknown name, a value outside
 * 1..2^31-1). */
SMC_API int smc_fold_setting_check(const char *name, long long value, smc_error_t *err);
/* What a settings event is signed over when the cluster has a registration
 * key (smc_registration_sign with name "settings"): sha256 hex of the fold
 * version in decimal, "\n", and the canonical JSON of limits. */
struct json_t;
SMC_API int smc_fold_settings_digest(int64_t fold, const struct json_t *limits, char out[65]);

/* What a log line of the fold reports, as fields, for a caller that counts
 * (metrics) instead of reading the message, which quotes ids and data the
 * events chose and says nothing that must be parsed. */
typedef enum smc_fold_note {
  SMC_FOLD_NOTE_NONE = 0,      /* a line for people only */
  SMC_FOLD_NOTE_EVENT_DROPPED, /* an event with no object or id to answer: code is why */
  SMC_FOLD_NOTE_VOTE_IGNORED,  /* a vote not counted: code is why (SMC_EBAD_SIGNATURE,
                                  SMC_ENOT_A_VOTER, SMC_EUNKNOWN_MACHINE) */
} smc_fold_note_t;

typedef struct smc_fold_log {
  int level; /* 0 error, 1 warn, 2 info */
  int32_t partition;
  int64_t offset;
  smc_fold_note_t note;
  int code; /* SMC_E* of the note, 0 for SMC_FOLD_NOTE_NONE */
  const char *msg;
} smc_fold_log_t;

/* Log hook for what the fold drops without an output (events with no
 * object or id to answer, votes it does not count, machines and settings
 * it ignores) and for its informational lines. line and its strings are
 * valid only during the call. Default: none. */
SMC_API void smc_fold_set_logger(smc_fold_t *f,
                                 void (*log)(void *opaque, const smc_fold_log_t *line),
                                 void *opaque);

#ifdef __cplusplus
}
#endif
#endif
