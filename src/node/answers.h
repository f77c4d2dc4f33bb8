/*
 * Local answers: what the folds running in this process know, handed to the
 * gateway of the same process without waiting for Kafka transactions
 * (docs/architecture.md, "Answers from the local fold").
 *
 * A decision is a pure function of the log prefix, so a node whose fold has
 * decided a proposal knows its confirmation before the committer's
 * transaction commits it, and a node whose fold has passed a partition's end
 * offset knows every write completed before that offset was taken.
 *
 * The hub connects two sides:
 *  - folds (each committer of the process) register as *folders* of the
 *    partitions they serve, announce every decision (smc_answers_decided),
 *    and answer reads once their fold has passed the offset asked for;
 *  - the gateway waits on *slots*, one per request: a slot is filled exactly
 *    once (by the first decision or read answer for it) and wakes exactly its
 *    own waiter. No polling, no broadcast.
 *
 * Thread safety: every function may be called from any thread. A slot is
 * owned by its waiter (usually on its stack) and must be forgotten
 * (smc_answers_forget / smc_answers_read returns) before it goes away.
 */
#ifndef SMC_NODE_ANSWERS_H
#define SMC_NODE_ANSWERS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka/readindex.h"

typedef struct smc_answers smc_answers_t;

/* Who may fill a proposal slot. */
typedef enum smc_answer_from {
  SMC_ANSWER_DECIDED = 1,   /* a local fold's decision, or a committed confirmation */
  SMC_ANSWER_CONFIRMED = 2, /* only a committed confirmation (from smc.confirmations) */
} smc_answer_from_t;

/* What a fold is asked (smc_answer_t.kind). */
typedef enum smc_query_kind {
  SMC_QUERY_READ = 0, /* the object key (smc_fold_read) */
  SMC_QUERY_PROPOSAL, /* the decision of proposal id key (smc_fold_proposal) */
  SMC_QUERY_LIST,     /* objects of machine arg after id key (smc_fold_list) */
  SMC_QUERY_HISTORY,  /* versions of object key after after_version (smc_fold_history) */
  SMC_QUERY_PENDING,  /* proposals queued on object key (smc_fold_pending) */
  SMC_QUERY_SETTINGS, /* the fold settings in force (smc_fold_settings) */
} smc_query_kind_t;

struct smc_folder_ops;

/* Called once when a slot is filled, from the filling thread with the
 * slot's lock held: it must only wake its waiter (never wait, never touch
 * the slot). */
typedef void (*smc_answer_notify_t)(void *arg);

/* One waiting request. Fields below `done` are valid once done is set. */
typedef struct smc_answer {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char key[1025];             /* proposal id (decisions) or object id (reads) */
  smc_answer_from_t from;     /* proposals: who may fill it */
  int32_t partition;          /* reads: the object's partition */
  int64_t target;             /* reads: answer once the fold passed this offset */
  smc_query_kind_t kind;      /* reads: what the fold is asked */
  char arg[256];              /* reads: the machine (SMC_QUERY_LIST) */
  int64_t after_version;      /* reads: SMC_QUERY_HISTORY */
  size_t limit;               /* reads: SMC_QUERY_LIST / HISTORY page size */
  smc_answer_notify_t notify; /* optional: a waiter that does not block on cv */
  void *notify_arg;
  /* private: the folder a read was queued to, and its read index ask */
  const struct smc_folder_ops *fops;
  void *fself;
  smc_read_index_wait_t ri;
  int done;   /* 1 once filled */
  int status; /* 0 answered; SMC_EMOVED... see smc_answers_read */
  int local;  /* filled by a local fold (not by smc.confirmations) */
  char *json; /* the confirmation or read reply (malloc'd, owned) */
  size_t len;
  struct smc_answer *next; /* hub / folder list link */
} smc_answer_t;

/* A fold that serves partitions (a committer). Its functions are called
 * from gateway threads. */
typedef struct smc_folder_ops {
  /* 1 when the folder serves partition p now (restored and assigned);
   * SMC_EINCOMPATIBLE when it holds p but stopped folding it at a settings
   * event for a newer fold (it answers nothing about p). */
  int (*serves)(void *self, int32_t p);
  /* Queue a linearizable read (a->key object, a->partition): ask for the
   * partition's end offset as the broker has it now (a ReadIndex round,
   * through a->ri), set a->target to it and queue the read as read() does;
   * or fill a with SMC_EUNAVAILABLE when the round fails. Never blocks. */
  void (*read_index)(void *self, smc_answer_t *a);
  /* Queue a read (a->key object, a->partition, a->target); the fold thread
   * fills it through smc_answer_fill once it passed a->target, or with
   * status SMC_EUNAVAILABLE when it stops serving the partition. */
  void (*read)(void *self, smc_answer_t *a);
  /* Take a read back: 1 when it was still waiting for its round or queued
   * (now it is not, and nothing fills it), 0 when the fold thread filled it
   * or is filling it. */
  int (*cancel)(void *self, smc_answer_t *a);
} smc_folder_ops_t;

smc_answers_t *smc_answers_new(void);
void smc_answers_destroy(smc_answers_t *h);

/* The partition count of the proposals topic (set by the first folder). */
void smc_answers_set_partitions(smc_answers_t *h, int32_t partitions);
int32_t smc_answers_partitions(smc_answers_t *h);

/* Register / unregister a folder (at most 64). */
int smc_answers_add_folder(smc_answers_t *h, const smc_folder_ops_t *ops, void *self);
void smc_answers_remove_folder(smc_answers_t *h, void *self);

/* 1 when a folder of this process serves partition p now; 0 when none
 * does; SMC_EINCOMPATIBLE when none does and p is stopped here at a
 * settings event for a newer fold. */
int smc_answers_serves(smc_answers_t *h, int32_t p);
/* The same for the partition of object. */
int smc_answers_serves_object(smc_answers_t *h, const char *object);

void smc_answer_init(smc_answer_t *a);
void smc_answer_close(smc_answer_t *a);
/* Fill a once (later calls do nothing): copies json, wakes its waiter. */
void smc_answer_fill(smc_answer_t *a, int status, const char *json, size_t len, int local);
/* Wait until a is filled or deadline_ms (smc_now_ms clock) passes: 1 filled. */
int smc_answer_wait(smc_answer_t *a, int64_t deadline_ms);

/* Expect the decision of proposal id (before the proposal is sent). */
void smc_answers_expect(smc_answers_t *h, smc_answer_t *a, const char *id, smc_answer_from_t from);
/* Stop expecting it (after the wait, filled or not). */
void smc_answers_forget(smc_answers_t *h, smc_answer_t *a);

/* A decision: a local fold decided proposal id (local = 1), or a committed
 * confirmation of it was read from smc.confirmations (local = 0). Fills
 * every slot expecting id that accepts that source. Cheap when nobody
 * waits. */
void smc_answers_decided(smc_answers_t *h, const char *id, const char *json, size_t len, int local);

/*
 * A linearizable read of object from a local fold (etcd's ReadIndex): take
 * the partition's end offset from the broker, wait until a local fold has
 * folded past it, answer from that fold's state. Returns 0 with *json (the
 * read reply, malloc'd) set; SMC_ENOT_FOUND when no local folder serves the
 * partition (the caller reads through the log instead); SMC_EINCOMPATIBLE
 * when the partition is stopped here (smc_answers_serves); SMC_EUNAVAILABLE
 * when it could not be answered in time or the folder stopped serving it.
 */
int smc_answers_read(smc_answers_t *h, const char *object, int64_t deadline_ms, char **json,
                     size_t *len);

/*
 * The same read without blocking: a (initialized; kind and its arguments
 * set, notify set to learn when it is filled) is queued for object. 0 when
 * queued: a gets filled (0 with json, or SMC_EUNAVAILABLE) and notified
 * exactly once, and smc_answers_read_stop must be called before a goes
 * away. SMC_ENOT_FOUND / SMC_EINCOMPATIBLE as smc_answers_read, nothing
 * queued.
 */
int smc_answers_read_start(smc_answers_t *h, const char *object, smc_answer_t *a);
/* After it returns nothing touches a: 1 when a was filled, 0 when it was
 * taken back unanswered. */
int smc_answers_read_stop(smc_answer_t *a);

/* Fold thread of a folder: answer queued read a from the fold's state (kv)
 * of partition p, as a->kind asks. 0 with *json (malloc'd) set, or a
 * negative code (SMC_ENOT_FOUND: no such proposal). */
struct smc_fold;
struct smc_kv;
int smc_answers_fold_query(struct smc_fold *fold, struct smc_kv *kv, int32_t p,
                           const smc_answer_t *a, char **json);

/*
 * The decision of proposal id as a local fold knows it (its decided ids,
 * smc_fold_proposal), asking every partition this process serves at once:
 * 0 with *json set; SMC_ENOT_FOUND when none knows it or none is served.
 */
int smc_answers_proposal(smc_answers_t *h, const char *id, int64_t deadline_ms, char **json,
                         size_t *len);

/*
 * A page of machine's objects from every partition this process serves
 * (each gives up to limit objects after `after`, in id order): *objects a new
 * array (unsorted across partitions), served[p] set to 1 for each partition
 * that answered (served has smc_answers_partitions entries). 0, or
 * SMC_EUNAVAILABLE when a served partition did not answer in time.
 */
int smc_answers_list(smc_answers_t *h, const char *machine, const char *after, size_t limit,
                     int64_t deadline_ms, void **objects, unsigned char *served);

/* An object's history from the local fold, read like smc_answers_read
 * (ReadIndex: every version committed before the call began): 0 with *json
 * (an array of confirmations) set; SMC_ENOT_FOUND when no local folder
 * serves its partition. */
int smc_answers_history(smc_answers_t *h, const char *object, int64_t after_version, size_t limit,
                        int64_t deadline_ms, char **json, size_t *len);

/* The proposals queued on object (smc_fold_pending), read like a GET
 * (ReadIndex): 0 with *json set; SMC_ENOT_FOUND when no local folder serves
 * its partition. */
int smc_answers_pending(smc_answers_t *h, const char *object, int64_t deadline_ms, char **json,
                        size_t *len);

/* The fold settings every partition this process serves holds now: 0 with
 * *json (malloc'd canonical JSON, an array of smc_fold_settings answers,
 * each with its "partition"), in partition order. */
int smc_answers_settings(smc_answers_t *h, int64_t deadline_ms, char **json);

#endif
