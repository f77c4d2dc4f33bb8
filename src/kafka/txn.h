/*
 * The transactional session: one transactional producer with a fixed
 * transactional.id, driven through librdkafka's transaction API in the
 * consume-transform-produce pattern of its examples/transactions.c (begin,
 * produce, send the consumed offsets with the group's metadata, commit).
 *
 * Errors are classified here, once: a retriable error repeats the call (a
 * few times); an abortable one aborts the transaction and keeps the
 * producer; a fatal error, a fencing, or a call whose outcome is unknown
 * (timed out, KAFKA-17754) replaces the producer: init_transactions on the
 * new one fences the old epoch and settles its open transaction. Every call
 * returns 0, or -1 when the transaction is over (aborted, or the producer
 * replaced): the caller drops what it produced into it and reads the
 * outcome back from the group's committed offsets, never guessing it.
 *
 * The watchdog. librdkafka can block for good inside a transactional call,
 * past the timeout it was given (send_offsets_to_transaction and
 * commit_transaction when a coordinator broker goes away: librdkafka issues
 * #5456, #5511). So every blocking call runs on a thread of its producer's
 * own, and the session waits for it until the call's deadline (deadline_ms;
 * once *stop is set, at most SMC_TXN_STOP_GRACE_MS more). When the deadline
 * passes the session abandons the producer: it never calls into it again;
 * that thread destroys it if the call ever returns (or it stays, leaked,
 * with a log line). A new producer with the same transactional.id takes
 * over, and init_transactions fences the old one, so whatever the old one
 * still does cannot commit. The call fails like one whose outcome is
 * unknown. Counted in smc_committer_producer_abandoned_total.
 *
 * One thread uses a session at a time. Fault injection for tests:
 * SMC_FAULT_TXN_HANG=<call>[:<n>[:after]] makes the n-th call (default the
 * first) of that kind in the process (init, begin, send_offsets, commit,
 * abort) block forever on its producer's thread, before librdkafka sees it
 * (or, with "after", once it returned).
 */
#ifndef SMC_KAFKA_TXN_H
#define SMC_KAFKA_TXN_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka/handle.h"

typedef struct smc_txn smc_txn_t;

/* After a stop was asked for, a call waits at most this much longer. */
#define SMC_TXN_STOP_GRACE_MS 10000
/* The default deadline of one blocking call (librdkafka is given 3/4 of
 * it, at most 30 s). */
#define SMC_TXN_DEADLINE_MS 40000

/* A log line of the session (printf format and its arguments): level 0
 * error, 1 warning, 2 info, 3 debug; partition -1 when none. */
typedef void (*smc_txn_log_fn)(void *opaque, int level, int32_t partition, const char *fmt,
                               va_list ap);

/* Strings and props are borrowed: they must outlive the session. */
typedef struct smc_txn_config {
  const char *bootstrap;
  const char *const *props; /* the user's -X pass-through (k, v, ..., NULL) */
  const char *txn_id;       /* transactional.id (also client.id) */
  int txn_timeout_ms;       /* transaction.timeout.ms; message.timeout.ms is 1 s less */
  int deadline_ms;          /* the watchdog's deadline per call; <= 0: SMC_TXN_DEADLINE_MS */
  atomic_int *stop;         /* once set: no new producer, calls bounded by the grace */
  smc_txn_log_fn log;       /* may be NULL */
  void *opaque;
} smc_txn_config_t;

/* A session without a producer yet (smc_txn_open makes it), or NULL when
 * out of memory. */
smc_txn_t *smc_txn_new(const smc_txn_config_t *cfg);
/* Abort an open transaction (bounded like any call) and retire the
 * producer: destroyed within the deadline, or left to its thread and
 * logged. NULL is a no-op. */
void smc_txn_destroy(smc_txn_t *t);

/* Make the producer ready: create it when there is none, and repeat
 * init_transactions (backing off) until it succeeds. 0; SMC_EKAFKA when the
 * producer cannot be created (logged: a configuration error); SMC_EUNAVAILABLE
 * when a stop was asked for. */
int smc_txn_open(smc_txn_t *t);
/* Begin a transaction unless one is open (opening the producer first). */
int smc_txn_begin(smc_txn_t *t);
/* 1 while a transaction is open. */
int smc_txn_is_open(const smc_txn_t *t);
/* Produce a copy of value into the open transaction (partition < 0: the
 * partitioner's choice), retrying a full queue until the deadline. 0, or
 * SMC_EKAFKA (logged; the transaction stays open: abort it). */
int smc_txn_produce(smc_txn_t *t, const char *topic, int32_t partition, const void *key,
                    size_t klen, const void *value, size_t vlen);
/* Send next[p] (p < nparts, -1 = none) of topic as the consumer group's
 * offsets (the group metadata of consumer) into the transaction. 0 or -1. */
int smc_txn_send_offsets(smc_txn_t *t, smc_kafka_t *consumer, const char *topic,
                         const int64_t *next, int32_t nparts);
/* Commit the open transaction. 0, or -1 (aborted, or the outcome unknown
 * and the producer replaced). */
int smc_txn_commit(smc_txn_t *t);
/* Abort the open transaction, if any (why: for the log). A failed or timed
 * out abort replaces the producer. */
void smc_txn_abort(smc_txn_t *t, const char *why);
/* 1 when topic exists, 0 when it does not, -1 when the broker did not say
 * (asked with the producer, which never creates topics). */
int smc_txn_topic_exists(smc_txn_t *t, const char *topic, int timeout_ms);
/* Serve the producer's callbacks (delivery reports, errors). */
void smc_txn_poll(smc_txn_t *t);

#endif
