/* A Kafka message as a fold record (record.h). */
#include "kafka/record.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"

/* The last value of header name: NULL when absent, else a pointer into buf
 * (while *used + size + 1 fits) or a malloc'd copy (*owned set);
 * NUL-terminated. */
static char *header_copy(rd_kafka_headers_t *hdrs, const char *name, char *buf, size_t cap,
                         size_t *used, int *owned) {
  const void *val = NULL;
  size_t size = 0;
  if (!hdrs || rd_kafka_header_get_last(hdrs, name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      !val)
    return NULL;
  char *s;
  if (size < cap - *used) {
    s = buf + *used;
    *used += size + 1;
  } else if ((s = malloc(size + 1))) {
    *owned = 1;
  } else {
    return NULL;
  }
  memcpy(s, val, size);
  s[size] = '\0';
  return s;
}

static atomic_int clamp_time; /* smc_msgrec_clamp_time */

void smc_msgrec_clamp_time(int on) { atomic_store(&clamp_time, on); }

void smc_msgrec_init(smc_msgrec_t *m, const rd_kafka_message_t *rkm) {
  m->correlation = m->reply_to = NULL;
  m->owned_correlation = m->owned_reply_to = 0;
  m->ack_decided = 0;
  rd_kafka_headers_t *hdrs = NULL;
  if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    size_t used = 0;
    m->correlation =
        header_copy(hdrs, "smc-correlation", m->buf, sizeof m->buf, &used, &m->owned_correlation);
    m->reply_to =
        header_copy(hdrs, "smc-reply-to", m->buf, sizeof m->buf, &used, &m->owned_reply_to);
    const void *val = NULL;
    size_t size = 0;
    m->ack_decided =
        rd_kafka_header_get_last(hdrs, "smc-ack", &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        val && size == 7 && !memcmp(val, "decided", 7);
  }
  rd_kafka_timestamp_type_t tstype;
  int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
  m->rec.partition = rkm->partition;
  m->rec.offset = rkm->offset;
  m->rec.timestamp = ts < 0 ? 0 : ts;
  if (atomic_load(&clamp_time)) { /* producer timestamps: never ahead of this host */
    int64_t wall = smc_wall_ms();
    if (m->rec.timestamp > wall)
      m->rec.timestamp = wall;
  }
  m->rec.key = rkm->key;
  m->rec.key_len = rkm->key_len;
  m->rec.value = rkm->payload;
  m->rec.value_len = rkm->len;
  m->rec.correlation = m->correlation;
  m->rec.reply_to = m->reply_to;
}

void smc_msgrec_close(smc_msgrec_t *m) {
  if (m->owned_correlation)
    free(m->correlation);
  if (m->owned_reply_to)
    free(m->reply_to);
  m->correlation = m->reply_to = NULL;
  m->owned_correlation = m->owned_reply_to = 0;
}
