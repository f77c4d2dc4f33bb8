/*
 * Internals of the fold (include/smc/fold.h), shared by fold.c (records,
 * timers, machines), fold_state.c (keys and stored records) and
 * fold_decide.c (activation, votes, commit, reject).
 *
 * Keyspace (every key starts with the partition, 4 bytes big-endian = P):
 *   OBJECTS  P object                     -> object record (binary, below)
 *   QUEUES   P object 0x00 seq(8)         -> queued proposal (binary)
 *   DECIDED  P id                         -> 'Q' object | 'D' time(8) confirmation
 *   MACHINES P name                       -> hash (64 hex)
 *   MACHINES P 0x00 hash                  -> definition text
 *   TIMERS   P deadline(8) object 0x00 k  -> k='a': version(8) transition(8)
 *                                            k='v': proposal id
 *   META     P 'a'                        -> applied offset(8) clock(8)
 *                                            next timer bound(8), 0 = none
 *                                            open expiry bucket: time(8)
 *                                            seq(8) entries(8), 0 = none
 *                                            then, once a settings event
 *                                            was folded, the settings:
 *                                            max_event_bytes(8) max_queue(8)
 *                                            expr_steps(8) regex_match(8)
 *                                            regex_depth(8) definition(8)
 *                                            data(8)
 *   META     P 'e' time(8) seq(8)         -> expiry bucket: up to 16 entries
 *                                            time(8) len(4) id, all decided
 *                                            in the minute of time
 * The dedup expiry index is bucketed (one key per up to 16 decided ids
 * instead of one per id): a bucket is swept once its whole minute is out
 * of the window, the decided entries only if their time still matches.
 * Object ids never contain NUL (the JSON decoder refuses it), so the 0x00
 * separators keep (deadline, object) and per-object queue order exact.
 */
#ifndef SMC_CORE_FOLD_INT_H
#define SMC_CORE_FOLD_INT_H

#include <jansson.h>
#include <openssl/evp.h>

#include "core/codec.h"
#include "core/kv.h"
#include "smc/fold.h"

typedef struct fold_cache_ent {
  char hash[65];
  smc_machine_t *m;
} fold_cache_ent_t;

struct smc_fold {
  smc_fold_config_t cfg;   /* cfg.registration_key is NULL: parsed into reg_key */
  EVP_PKEY *reg_key;       /* the registration key, or NULL */
  fold_cache_ent_t *cache; /* sorted by hash */
  size_t ncache, capcache;
  void (*log)(void *opaque, const smc_fold_log_t *line);
  void *log_opaque;
  smc_buf_t key;  /* fold_ctx_t.key's buffer between records */
  smc_buf_t conf; /* a commit's DECIDED value and confirmation text */
  smc_buf_t rec;  /* a record being written (object, proposal, bucket) */
};

/* Fields of fold_obj_t that were replaced by a malloc'd string of their
 * own (fold_obj_set); the others point into blk, or are NULL. */
enum { OBJ_MACHINE = 1, OBJ_STATE = 2, OBJ_CHECKSUM = 4, OBJ_DATA = 8 };

/* One object's record, decoded. The strings as loaded live in one
 * allocation (blk): the id first, then those of the record. */
typedef struct fold_obj {
  char *blk;
  unsigned own; /* OBJ_* bits */
  char *id;
  int64_t version; /* 0: not created yet (only queued create proposals) */
  int64_t created, updated;
  int64_t next_seq, head_seq, qlen;
  int64_t timer_deadline;                  /* inactivity timer armed, 0 none */
  int64_t vote_deadline;                   /* vote timeout of the active proposal, 0 none */
  char *machine, *state, *checksum, *data; /* data: canonical JSON */
} fold_obj_t;

typedef struct fold_strs {
  char **v;
  size_t n;
} fold_strs_t;

/* One queued proposal. Strings owned, except that a fresh proposal's first
 * seven (id to reply_to) may be borrowed from its event (borrowed set):
 * fold_prop_own copies them before any is replaced. */
typedef struct fold_prop {
  char *id, *machine, *transition, *to, *proposer, *correlation, *reply_to;
  int borrowed;
  char *data; /* canonical JSON of the input, NULL = {} (or see data_json) */
  /* A fresh proposal's decoded data (borrowed from the event) when parsing
   * its canonical text back would give the same tree: then data is NULL,
   * activation uses the tree and fold_prop_save writes its canonical text. */
  const json_t *data_json;
  int has_expect;
  int64_t expect;
  int is_timer;
  /* set while active and waiting for votes */
  int waiting;
  int64_t tidx, deadline;
  char *out_name, *out_state, *out_data;
  fold_strs_t accept, reject;
} fold_prop_t;

/* The fold settings in force in a partition: the fold config's until a
 * settings event changes them (protocol.md "settings"), then the log's. */
typedef struct fold_settings {
  size_t max_event_bytes, max_queue;
  smc_limits_t limits;
} fold_settings_t;

/* The state of one smc_fold_apply call. */
typedef struct fold_ctx {
  smc_fold_t *f;
  smc_kv_t *kv;
  int32_t part;
  int64_t offset, clock;
  smc_emit_fn emit;
  void *opaque;
  int emitting;       /* 0 while registering machines from the CLI */
  int rc;             /* first failure (kv, memory, emit) */
  int64_t prev_clock; /* the clock before this record */
  int64_t next_timer; /* lower bound of the earliest timer deadline, 0 = none */
  /* the open expiry bucket (meta record): key time and seq, entries; n = 0
   * none open. seq numbers every bucket of the partition (unique keys). */
  int64_t exp_time, exp_seq, exp_n;
  fold_settings_t set; /* the partition's settings (meta) */
  int has_set;         /* 1: set came from a settings event (kept in meta) */
  smc_buf_t key;
} fold_ctx_t;

/* fold_state.c */
void fold_key_begin(fold_ctx_t *c);
/* Read the value under c->key in cf: 1 found (*v malloc'd, *vl bytes), 0
 * not found (*v NULL, *vl 0), negative on failure (recorded by fold_fail). */
int fold_get(fold_ctx_t *c, smc_cf_t cf, void **v, size_t *vl);
int fold_obj_load(fold_ctx_t *c, const char *id, fold_obj_t *o); /* 0 / SMC_ENOT_FOUND */
int fold_obj_save(fold_ctx_t *c, const fold_obj_t *o);
void fold_obj_close(fold_obj_t *o);
/* Replace one string field (bit: its OBJ_* bit) by s, which o now owns. */
void fold_obj_set(fold_obj_t *o, unsigned bit, char **field, char *s);
/* The same with a string o does not own, which outlives o (a name held by
 * a compiled machine of the fold's cache). */
void fold_obj_borrow(fold_obj_t *o, unsigned bit, char **field, const char *s);
int fold_prop_load(fold_ctx_t *c, const char *object, int64_t seq, fold_prop_t *p);
int fold_prop_save(fold_ctx_t *c, const char *object, int64_t seq, const fold_prop_t *p);
int fold_prop_del(fold_ctx_t *c, const char *object, int64_t seq);
void fold_prop_close(fold_prop_t *p);
int fold_prop_own(fold_prop_t *p);
int fold_strs_add(fold_strs_t *s, const char *v);
int fold_strs_has(const fold_strs_t *s, const char *v);
/* DECIDED: status 'Q' (queued), 'D' (decided, conf filled, malloc'd), or 0. */
int fold_decided_get(fold_ctx_t *c, const char *id, int *status, char **conf);
int fold_decided_put_queued(fold_ctx_t *c, const char *id, const char *object);
int fold_decided_put(fold_ctx_t *c, const char *id, const char *conf, size_t len);
/* The same with the stored value built already: 'D' time(8) confirmation. */
int fold_decided_put_value(fold_ctx_t *c, const char *id, const char *val, size_t len);
int fold_decided_prune(fold_ctx_t *c);
/* fold_query.c: keep a committed confirmation in the object's history. */
int fold_history_put(fold_ctx_t *c, const char *object, int64_t version, const char *conf,
                     size_t len);
int fold_timer_put(fold_ctx_t *c, int64_t deadline, const char *object, char kind, const void *val,
                   size_t vlen);
int fold_timer_del(fold_ctx_t *c, int64_t deadline, const char *object, char kind);
int fold_fail(fold_ctx_t *c, int rc);

/* fold.c */
smc_machine_t *fold_machine_get(fold_ctx_t *c, const char *name);
void fold_log(fold_ctx_t *c, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A line that reports a note (smc_fold_log_t) with its code. */
void fold_note(fold_ctx_t *c, int level, smc_fold_note_t note, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Hand the output o (its kind and typed fields set by the caller) with its
 * text json to the emit callback; partition, offset, and "" for a missing
 * key, id or confirmation machine are filled in here. The first non-zero
 * return sticks in c->rc. */
int fold_emit(fold_ctx_t *c, smc_output_t *o, const char *json, size_t len);

/* fold_decide.c: the "votes" member of confirmations and pending lists:
 * {"accept": [...], "reject": [...]} of p, voters in the order they came. */
json_t *fold_votes_json(const fold_prop_t *p);

/* The "error" member of an answer: {code, message, path} of err. */
json_t *fold_error_json(const smc_error_t *err);
/* The canonical text of the answer j to a record, once the members every
 * answer ends with are in: correlation (when not NULL), offset, time. Takes
 * j; malloc'd, or NULL after fold_fail (out of memory). */
char *fold_answer_text(fold_ctx_t *c, json_t *j, const char *correlation);

/* fold_decide.c */
/* Queue p (ownership moves in) behind o's queue; activate it if at the head. */
int fold_enqueue(fold_ctx_t *c, fold_obj_t *o, fold_prop_t *p);
int fold_vote(fold_ctx_t *c, const smc_event_t *ev);
int fold_fire_vote_timeout(fold_ctx_t *c, fold_obj_t *o, const char *id);
int fold_fire_inactivity(fold_ctx_t *c, fold_obj_t *o, int64_t version, int64_t tidx);
/* Emit a rejection that is not remembered (bad request, wrong partition,
 * queue_full): id and object as given. */
int fold_reject_unrecorded(fold_ctx_t *c, const smc_event_t *ev, const smc_error_t *err);

#endif
