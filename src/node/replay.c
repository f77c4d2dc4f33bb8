/* Silent replay of partition ranges into a fold state (replay.h). */
#include "node/replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka/kconf.h"

#define REPLAY_BATCH 2000 /* records per atomic store write */

int64_t smc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *header_copy(rd_kafka_headers_t *hdrs, const char *name) {
  const void *val = NULL;
  size_t size = 0;
  if (!hdrs || rd_kafka_header_get_last(hdrs, name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      !val)
    return NULL;
  char *s = malloc(size + 1);
  if (!s)
    return NULL;
  memcpy(s, val, size);
  s[size] = '\0';
  return s;
}

void smc_msgrec_init(smc_msgrec_t *m, const rd_kafka_message_t *rkm) {
  memset(m, 0, sizeof *m);
  rd_kafka_headers_t *hdrs = NULL;
  if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    m->correlation = header_copy(hdrs, "smc-correlation");
    m->reply_to = header_copy(hdrs, "smc-reply-to");
  }
  rd_kafka_timestamp_type_t tstype;
  int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
  m->rec.partition = rkm->partition;
  m->rec.offset = rkm->offset;
  m->rec.timestamp = ts < 0 ? 0 : ts;
  m->rec.key = rkm->key;
  m->rec.key_len = rkm->key_len;
  m->rec.value = rkm->payload;
  m->rec.value_len = rkm->len;
  m->rec.correlation = m->correlation;
  m->rec.reply_to = m->reply_to;
}

void smc_msgrec_close(smc_msgrec_t *m) {
  free(m->correlation);
  free(m->reply_to);
  m->correlation = m->reply_to = NULL;
}

static int discard_output(void *opaque, const smc_output_t *out) {
  (void)opaque;
  (void)out;
  return 0;
}

static rd_kafka_t *replay_consumer(const smc_replay_t *r, smc_error_t *err) {
  char errstr[512];
  rd_kafka_conf_t *conf = smc_kconf_new(r->bootstrap, r->props, errstr, sizeof errstr);
  if (!conf) {
    smc_error_set(err, SMC_EKAFKA, NULL, "kafka configuration: %s", errstr);
    return NULL;
  }
  static const char *const kv[] = {"group.id",
                                   "smc-replay",
                                   "enable.auto.commit",
                                   "false",
                                   "enable.auto.offset.store",
                                   "false",
                                   "isolation.level",
                                   "read_committed",
                                   "enable.partition.eof",
                                   "true",
                                   "auto.offset.reset",
                                   "earliest",
                                   NULL};
  for (size_t i = 0; kv[i]; i += 2)
    if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      smc_error_set(err, SMC_EKAFKA, NULL, "kafka configuration: %s", errstr);
      return NULL;
    }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    smc_error_set(err, SMC_EKAFKA, NULL, "kafka consumer: %s", errstr);
    return NULL;
  }
  rd_kafka_poll_set_consumer(rk);
  return rk;
}

/* Resolve SMC_REPLAY_END / log-start bounds from the watermarks; mark empty
 * ranges done. Returns the expected record total or a negative code. */
static int64_t resolve_bounds(rd_kafka_t *rk, const smc_replay_t *r, smc_replay_part_t *parts,
                              size_t n, smc_error_t *err) {
  int64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(rk, r->topic, parts[i].partition, &lo, &hi, 15000);
    if (e)
      return smc_error_set(err, e == RD_KAFKA_RESP_ERR__TIMED_OUT ? SMC_EUNAVAILABLE : SMC_EKAFKA,
                           NULL, "watermarks of %s [%d]: %s", r->topic, (int)parts[i].partition,
                           rd_kafka_err2str(e));
    if (parts[i].to == SMC_REPLAY_END || parts[i].to > hi)
      parts[i].to = hi;
    if (parts[i].from < lo)
      parts[i].from = lo;
    parts[i].records = 0;
    parts[i].done = parts[i].from >= parts[i].to;
    if (!parts[i].done)
      total += parts[i].to - parts[i].from;
  }
  return total;
}

static smc_replay_part_t *find_part(smc_replay_part_t *parts, size_t n, int32_t p) {
  for (size_t i = 0; i < n; i++)
    if (parts[i].partition == p)
      return &parts[i];
  return NULL;
}

static int flush_overlay(const smc_replay_t *r, smc_overlay_t *ov, smc_error_t *err) {
  if (!ov || smc_overlay_pending(ov) == 0)
    return 0;
  int rc = smc_store_apply(r->store, ov, err);
  smc_overlay_clear(ov);
  return rc;
}

int smc_replay_run(const smc_replay_t *r, smc_replay_part_t *parts, size_t n, smc_error_t *err) {
  int rc = 0;
  rd_kafka_t *rk = NULL;
  rd_kafka_topic_partition_list_t *tl = NULL;
  smc_overlay_t *ov = NULL;
  smc_kv_t storekv, kv;
  int64_t total = 0, folded = 0, batch = 0;
  if (!r->fold || (!r->store && !r->kv) || !r->topic)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "replay: missing fold, state or topic");
  if (r->store) {
    storekv = smc_store_kv(r->store);
    if (!(ov = smc_overlay_new(&storekv)))
      return smc_error_set(err, SMC_ENOMEM, NULL, "overlay");
    kv = smc_overlay_kv(ov);
  } else {
    kv = *r->kv;
  }
  if (!(rk = replay_consumer(r, err))) {
    rc = err && err->code ? err->code : SMC_EKAFKA;
    goto fail;
  }
  total = resolve_bounds(rk, r, parts, n, err);
  if (total < 0) {
    rc = (int)total;
    goto fail;
  }
  tl = rd_kafka_topic_partition_list_new((int)n);
  size_t open = 0;
  for (size_t i = 0; i < n; i++)
    if (!parts[i].done) {
      rd_kafka_topic_partition_list_add(tl, r->topic, parts[i].partition)->offset = parts[i].from;
      open++;
    }
  if (open == 0)
    goto done;
  rd_kafka_resp_err_t e = rd_kafka_assign(rk, tl);
  if (e) {
    rc = smc_error_set(err, SMC_EKAFKA, NULL, "assign: %s", rd_kafka_err2str(e));
    goto fail;
  }
  int idle = r->idle_timeout_ms > 0 ? r->idle_timeout_ms : 60000;
  int64_t last_activity = smc_now_ms(), last_progress = 0;
  smc_emit_fn emit = r->emit ? r->emit : discard_output;
  while (open > 0) {
    if (r->stop && atomic_load(r->stop)) {
      rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "replay stopped");
      goto fail;
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    int64_t now = smc_now_ms();
    if (m) {
      last_activity = now;
      smc_replay_part_t *pt = find_part(parts, n, m->partition);
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (pt && !pt->done && m->offset >= pt->to) {
          pt->done = 1;
          open--;
        }
      } else if (m->err) {
        smc_error_set(err, SMC_EKAFKA, NULL, "replay of %s [%d]: %s", r->topic, (int)m->partition,
                      rd_kafka_message_errstr(m));
        if (rd_kafka_fatal_error(rk, NULL, 0)) {
          rd_kafka_message_destroy(m);
          rc = SMC_EKAFKA;
          goto fail;
        }
        smc_error_clear(err);
      } else if (pt && !pt->done) {
        if (m->offset >= pt->to) {
          pt->done = 1;
          open--;
        } else {
          smc_msgrec_t mr;
          smc_msgrec_init(&mr, m);
          rc = smc_fold_apply(r->fold, &kv, &mr.rec, emit, r->opaque);
          smc_msgrec_close(&mr);
          if (rc < 0) {
            rd_kafka_message_destroy(m);
            smc_error_set(err, rc, NULL, "fold of %s [%d] at offset %lld failed", r->topic,
                          (int)pt->partition, (long long)m->offset);
            goto fail;
          }
          rc = 0;
          pt->records++;
          folded++;
          if (++batch >= REPLAY_BATCH) {
            if ((rc = flush_overlay(r, ov, err)) < 0) {
              rd_kafka_message_destroy(m);
              goto fail;
            }
            batch = 0;
          }
          if (m->offset + 1 >= pt->to) {
            pt->done = 1;
            open--;
          }
        }
      }
      rd_kafka_message_destroy(m);
    } else if (now - last_activity > idle) {
      rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "replay of %s: nothing received for %d ms",
                         r->topic, idle);
      goto fail;
    }
    /* Transaction markers are never delivered: the position tells. */
    if (!m && open > 0) {
      rd_kafka_position(rk, tl);
      for (int i = 0; i < tl->cnt; i++) {
        smc_replay_part_t *pt = find_part(parts, n, tl->elems[i].partition);
        if (pt && !pt->done && tl->elems[i].offset >= pt->to) {
          pt->done = 1;
          open--;
        }
      }
    }
    if (r->progress && now - last_progress >= 100) {
      r->progress(r->opaque, folded, total, 0);
      last_progress = now;
    }
  }
done:
  if ((rc = flush_overlay(r, ov, err)) < 0)
    goto fail;
  if (r->progress)
    r->progress(r->opaque, folded, total, 1);
  rc = 0;
fail:
  if (ov)
    smc_overlay_destroy(ov);
  if (tl)
    rd_kafka_topic_partition_list_destroy(tl);
  if (rk) {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
  return rc;
}
