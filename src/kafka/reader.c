/* The partition-range reader (reader.h). */
#include "kafka/reader.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/clock.h"
#include "core/logline.h"
#include "kafka/record.h"
#include "smc/error.h"

typedef struct range {
  int32_t first, count, open;
  int64_t *end;
  uint8_t *done;
} range_t;

static void finish(range_t *r, int32_t p) {
  if (!r->done[p - r->first]) {
    r->done[p - r->first] = 1;
    r->open--;
  }
}

/* One message: 1 to go on, 0 when done with it, or fn's negative return. */
static int one(range_t *r, const rd_kafka_message_t *m,
               int (*fn)(void *opaque, const smc_record_t *rec), void *opaque) {
  int32_t p = m->partition;
  if (p < r->first || p >= r->first + r->count || r->done[p - r->first])
    return 0;
  int64_t end = r->end[p - r->first];
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    if (m->offset >= end)
      finish(r, p);
    return 0;
  }
  if (m->err) {
    smc_logfield_t f[1] = {{"partition", NULL, p, 1}};
    smc_logline_write("warn", f, 1, rd_kafka_message_errstr(m));
    return 0;
  }
  if (m->offset >= end) {
    finish(r, p);
    return 0;
  }
  smc_msgrec_t mr;
  smc_msgrec_init(&mr, m);
  int rc = fn(opaque, &mr.rec);
  smc_msgrec_close(&mr);
  if (rc < 0)
    return rc;
  if (m->offset + 1 >= end)
    finish(r, p);
  return 0;
}

int smc_kafka_read_to_end(rd_kafka_t *rk, const char *topic, int32_t first, int32_t count,
                          int (*fn)(void *opaque, const smc_record_t *rec), void *opaque, char *why,
                          size_t len) {
  range_t r = {.first = first, .count = count};
  r.end = calloc((size_t)count + 1, sizeof *r.end);
  r.done = calloc((size_t)count + 1, 1);
  rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(count > 0 ? count : 1);
  int rc = SMC_ENOMEM;
  if (!r.end || !r.done)
    goto out;
  rc = SMC_EUNAVAILABLE;
  for (int32_t i = 0; i < count; i++) {
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, first + i, &lo, &hi, 15000);
    if (e) {
      snprintf(why, len, "watermarks of %s [%d]: %s", topic, (int)(first + i), rd_kafka_err2str(e));
      goto out;
    }
    r.end[i] = hi;
    r.done[i] = lo >= hi;
    if (!r.done[i]) {
      rd_kafka_topic_partition_list_add(tl, topic, first + i)->offset = RD_KAFKA_OFFSET_BEGINNING;
      r.open++;
    }
  }
  if (r.open && rd_kafka_assign(rk, tl)) {
    snprintf(why, len, "assign %s", topic);
    goto out;
  }
  int64_t last = smc_now_ms();
  while (r.open > 0) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
    if (!m) {
      if (smc_now_ms() - last > 60000) {
        snprintf(why, len, "%s: nothing received for 60 s", topic);
        goto out;
      }
      rd_kafka_position(rk, tl); /* past the end by aborted records and markers */
      for (int i = 0; i < tl->cnt; i++)
        if (tl->elems[i].offset >= r.end[tl->elems[i].partition - first])
          finish(&r, tl->elems[i].partition);
      continue;
    }
    last = smc_now_ms();
    int e = one(&r, m, fn, opaque);
    rd_kafka_message_destroy(m);
    if (e < 0) {
      rc = e;
      goto out;
    }
  }
  rc = 0;
out:
  rd_kafka_assign(rk, NULL);
  rd_kafka_topic_partition_list_destroy(tl);
  free(r.end);
  free(r.done);
  return rc;
}
