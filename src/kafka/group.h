/*
 * The one rebalance skeleton of smc's group consumers (committer, voter).
 * librdkafka calls the consumer's rebalance callback; the role's callback
 * hands the call to smc_kafka_rebalance with a handler, and sees only plain
 * partition arrays: the skeleton does the eager/cooperative protocol
 * difference, the (incremental) assign and unassign, the lost-assignment
 * check, and the look-ups a role asks for before it picks start offsets
 * (the group's committed offsets, the high watermarks).
 */
#ifndef SMC_KAFKA_GROUP_H
#define SMC_KAFKA_GROUP_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

/* One partition of a rebalance. */
typedef struct smc_kafka_part {
  int32_t partition;
  int64_t offset;    /* in/out for assign: where consumption starts (the role sets it;
                        SMC_KAFKA_OFFSET_BEGINNING: the log start) */
  int64_t committed; /* with want_committed: the group's committed offset, < 0 = none */
  int64_t high;      /* with want_high: the high watermark at assignment (0 when unknown) */
  int64_t low;       /* with want_high: the low watermark (the log's start; -1 when unknown) */
} smc_kafka_part_t;

#define SMC_KAFKA_OFFSET_BEGINNING (-2) /* RD_KAFKA_OFFSET_BEGINNING */

typedef struct smc_kafka_group_handler {
  int want_committed; /* fill committed before assign (a failure: assign gets error) */
  int want_high;      /* fill high and low before assign (10 s per partition at most) */
  /* Partitions are given: set each offset. error is non-NULL when the
   * committed offsets could not be read (the role may return < 0 and is asked
   * again). Return 0 to assign, < 0 not to, > 0 to be asked again (the
   * look-ups are made again first; the role waits as it sees fit). */
  int (*assign)(void *opaque, smc_kafka_part_t *parts, int n, const char *error);
  /* After the assign call: error NULL when the partitions are now consumed. */
  void (*assigned)(void *opaque, const smc_kafka_part_t *parts, int n, const char *error);
  /* Partitions are taken away (before the unassign). lost: the assignment
   * was lost (another member may own them already) or the rebalance failed
   * (error non-NULL). */
  void (*revoke)(void *opaque, const smc_kafka_part_t *parts, int n, int lost, const char *error);
} smc_kafka_group_handler_t;

/* The consumer's current assignment with the group's committed offsets
 * (committed < 0: none) and offset = committed: *out (malloc'd, the caller
 * frees it; NULL when n is 0) and *n. Returns 0, or -1 with why filled. */
int smc_kafka_assignment(rd_kafka_t *rk, smc_kafka_part_t **out, int *n, char *why, size_t len);

/* Move the consumer's position on each partition of topic in parts to its
 * offset (SMC_KAFKA_OFFSET_BEGINNING: the log start). 0, or -1 with why. */
int smc_kafka_seek(rd_kafka_t *rk, const char *topic, const smc_kafka_part_t *parts, int n,
                   char *why, size_t len);

/* The body of a rebalance callback (handle.h smc_kafka_rebalance_fn). */
void smc_kafka_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, const smc_kafka_group_handler_t *h,
                         void *opaque);

#endif
