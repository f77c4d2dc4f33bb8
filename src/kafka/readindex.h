/*
 * ReadIndex for linearizable reads from a local fold (docs/architecture.md
 * "Linearizable reads"): the end offset of a partition of the proposals
 * topic, taken after the read began, asked of the broker in rounds that
 * concurrent reads share.
 */
#ifndef SMC_KAFKA_READINDEX_H
#define SMC_KAFKA_READINDEX_H

#include <stdint.h>

#include "smc/error.h"

typedef struct smc_read_index smc_read_index_t;

/* A client of topic's nparts partitions (its own connection: a consumer
 * handle without a group, isolation.level read_uncommitted, so the offsets
 * are high watermarks). props: librdkafka properties k, v, ..., NULL. */
int smc_read_index_new(const char *bootstrap, const char *const *props, const char *topic,
                       int32_t nparts, smc_read_index_t **out, smc_error_t *err);
void smc_read_index_destroy(smc_read_index_t *ri);

/* The high watermark of partition p from a round that started after this
 * call began (every record acknowledged before it is below): 0 with *end
 * set; SMC_EUNAVAILABLE when none came within timeout_ms. Thread-safe; one
 * round is in flight at a time and asks every partition at once. */
int smc_read_index_end(smc_read_index_t *ri, int32_t p, int timeout_ms, int64_t *end);

/* An asynchronous ask: the caller owns the struct (set partition and done)
 * until done() was called or smc_read_index_cancel returned 1. */
typedef struct smc_read_index_wait {
  int32_t partition;
  /* Called once, on the read index's round thread with its lock held (so
   * keep it short and do not call back into the read index): rc 0 with end
   * the high watermark of a round that started after the ask, or
   * SMC_EUNAVAILABLE. */
  void (*done)(struct smc_read_index_wait *w, int rc, int64_t end);
  uint64_t need;                    /* private: the round that answers it */
  struct smc_read_index_wait *next; /* private */
} smc_read_index_wait_t;

/* Ask for w->partition's end offset from the next round; w->done is called
 * from the round thread (within about the client's request timeout). */
void smc_read_index_start(smc_read_index_t *ri, smc_read_index_wait_t *w);
/* Take an ask back: 1 when it was still waiting (done will not be called),
 * 0 when done() has already returned. */
int smc_read_index_cancel(smc_read_index_t *ri, smc_read_index_wait_t *w);

#endif
