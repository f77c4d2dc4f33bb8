/*
 * The partition-range reader: read partitions of a topic from their start to
 * the high watermark they had when the read began (read_committed, by
 * assignment, no group), handing each record to a callback as a fold record
 * (record.h). What `smc verify` and `smc export` read with.
 */
#ifndef SMC_KAFKA_READER_H
#define SMC_KAFKA_READER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "smc/fold.h"

/* Calls fn for every record of partitions [first, first + count) of topic,
 * partition by partition in offset order when count is 1, interleaved
 * otherwise. rk is a consumer (handle.h, eof on); it is unassigned again at
 * the end. Returns 0; SMC_EUNAVAILABLE with why filled (the watermarks
 * could not be read, or nothing arrived for 60 s); or fn's negative return,
 * which stops the read. */
int smc_kafka_read_to_end(rd_kafka_t *rk, const char *topic, int32_t first, int32_t count,
                          int (*fn)(void *opaque, const smc_record_t *rec), void *opaque, char *why,
                          size_t len);

#endif
