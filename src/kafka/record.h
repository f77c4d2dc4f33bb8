/*
 * The adapter from a Kafka message of <prefix>proposals to a fold record
 * (smc_record_t): partition, offset, timestamp, key, value and the smc
 * headers. Every role and command that folds messages goes through it, so
 * they all see the same record for the same message.
 */
#ifndef SMC_KAFKA_RECORD_H
#define SMC_KAFKA_RECORD_H

#include <librdkafka/rdkafka.h>

#include "smc/fold.h"

/* A Kafka message seen as a fold record. The header strings are copied (into
 * buf when both fit, else malloc'd; smc_msgrec_close frees those); rec points
 * into the message, which must outlive the record. */
typedef struct smc_msgrec {
  smc_record_t rec;
  char *correlation, *reply_to;
  int owned_correlation, owned_reply_to; /* 1: malloc'd, not in buf */
  int ack_decided; /* header smc-ack: decided (its producer learns the decision from a fold) */
  char buf[256];
} smc_msgrec_t;

void smc_msgrec_init(smc_msgrec_t *m, const rd_kafka_message_t *rkm);
/* From now on (process-wide), clamp every record's timestamp to this host's
 * wall clock (on = 1): for smc dev, whose mock cluster keeps producer
 * timestamps (node.h trust_producer_time). Off by default. */
void smc_msgrec_clamp_time(int on);
void smc_msgrec_close(smc_msgrec_t *m);

#endif
