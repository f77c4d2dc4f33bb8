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

#endif
