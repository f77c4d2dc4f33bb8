/* One way to open a librdkafka handle (handle.h). */
#include "kafka/handle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/group.h"
#include "kafka/kconf.h"
#include "kafka/producer.h"
#include "smc/error.h"

/* A report_cb or a group handler, and the spec's opaque: the handle's
 * librdkafka opaque then. */
typedef struct reporter {
  unsigned magic;
  smc_kafka_report_fn fn;
  smc_kafka_delivery_fn delivery;
  const smc_kafka_group_handler_t *group;
  void *opaque;
} reporter_t;
#define REPORTER_MAGIC 0x5e9047u

int smc_kafka_error_code(rd_kafka_resp_err_t e, int not_persisted) {
  if (!e)
    return 0;
  if (!not_persisted)
    return SMC_EUNAVAILABLE;
  return e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || e == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE
             ? SMC_ETOO_LARGE
             : SMC_EKAFKA;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  reporter_t *r = opaque;
  if (r->fn)
    r->fn(r->opaque, m->err ? rd_kafka_err2str(m->err) : NULL);
  if (!r->delivery)
    return;
  int lost = rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
  smc_kafka_delivery_t d = {m->_private, m->partition, m->offset,
                            smc_kafka_error_code(m->err, lost),
                            m->err ? rd_kafka_err2str(m->err) : NULL};
  r->delivery(r->opaque, &d);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  reporter_t *r = opaque;
  smc_kafka_rebalance(rk, err, parts, r->group, r->opaque);
}

int smc_kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *props, int producer,
                         char *errstr, size_t errlen) {
  for (size_t i = 0; props && props[i]; i += 2) {
    if (!props[i + 1]) {
      snprintf(errstr, errlen, "property '%s' has no value", props[i]);
      return -1;
    }
    if (producer && smc_kconf_consumer_only(props[i]))
      continue;
    if (rd_kafka_conf_set(conf, props[i], props[i + 1], errstr, errlen) != RD_KAFKA_CONF_OK)
      return -1;
  }
  return 0;
}

smc_kafka_t *smc_kafka_open(const smc_kafka_spec_t *s, char *errstr, size_t errlen) {
  smc_kafka_t *rk = NULL;
  smc_kafka_new(s, &rk, errstr, errlen);
  return rk;
}

int smc_kafka_new(const smc_kafka_spec_t *s, smc_kafka_t **out, char *errstr, size_t errlen) {
  int producer = s->type == RD_KAFKA_PRODUCER;
  *out = NULL;
  rd_kafka_conf_t *conf = smc_kconf_new(s->bootstrap, NULL, errstr, errlen);
  if (!conf)
    return SMC_EINVALID_ARGUMENT;
  static const char *const consumer[] = {"enable.auto.commit",
                                         "false",
                                         "enable.auto.offset.store",
                                         "false",
                                         "isolation.level",
                                         "read_committed",
                                         "auto.offset.reset",
                                         "earliest",
                                         NULL};
  const char *ids[7], **p = ids;
  if (s->group_id && !producer)
    *p++ = "group.id", *p++ = s->group_id;
  if (s->client_id)
    *p++ = "client.id", *p++ = s->client_id;
  if (s->eof && !producer)
    *p++ = "enable.partition.eof", *p++ = "true";
  *p = NULL;
  if ((!producer && smc_kafka_conf_apply(conf, consumer, 0, errstr, errlen) < 0) ||
      smc_kafka_conf_apply(conf, ids, 0, errstr, errlen) < 0 ||
      smc_kafka_conf_apply(conf, s->base, 0, errstr, errlen) < 0)
    goto fail;
  for (size_t i = 0; s->optional && s->optional[i] && s->optional[i + 1]; i += 2) {
    char ignored[256];
    rd_kafka_conf_set(conf, s->optional[i], s->optional[i + 1], ignored, sizeof ignored);
  }
  if (smc_kafka_conf_apply(conf, s->extra, 0, errstr, errlen) < 0)
    goto fail;
  if (producer && s->murmur2 && smc_kconf_producer(conf, errstr, errlen) < 0)
    goto fail;
  if (smc_kafka_conf_apply(conf, s->props, producer, errstr, errlen) < 0)
    goto fail;
  if (s->rebalance_cb)
    rd_kafka_conf_set_rebalance_cb(conf, s->rebalance_cb);
  reporter_t *rep = NULL;
  if (producer && s->transactional_id &&
      rd_kafka_conf_set(conf, "transactional.id", s->transactional_id, errstr, errlen) !=
          RD_KAFKA_CONF_OK)
    goto fail;
  if ((producer && (s->report_cb || s->delivery_cb)) || (!producer && s->group)) {
    if (!(rep = malloc(sizeof *rep))) {
      snprintf(errstr, errlen, "out of memory");
      rd_kafka_conf_destroy(conf);
      return SMC_ENOMEM;
    }
    *rep = (reporter_t){REPORTER_MAGIC, producer ? s->report_cb : NULL,
                        producer ? s->delivery_cb : NULL, s->group, s->opaque};
    if (producer)
      rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    else
      rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, rep);
  } else if (s->opaque) {
    rd_kafka_conf_set_opaque(conf, s->opaque);
  }
  rd_kafka_t *rk = rd_kafka_new(s->type, conf, errstr, errlen);
  if (!rk) {
    free(rep);
    rd_kafka_conf_destroy(conf); /* rd_kafka_new takes it over only on success */
    return SMC_EKAFKA;
  }
  if (!producer)
    rd_kafka_poll_set_consumer(rk);
  *out = rk;
  return 0;
fail:
  rd_kafka_conf_destroy(conf);
  return SMC_EINVALID_ARGUMENT;
}

void smc_kafka_leave(smc_kafka_t *rk) {
  if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER && !rd_kafka_consumer_closed(rk))
    rd_kafka_consumer_close(rk);
}

void smc_kafka_close(smc_kafka_t *rk) {
  if (!rk)
    return;
  reporter_t *rep = NULL;
  smc_kafka_leave(rk);
  if ((rep = rd_kafka_opaque(rk)) && rep->magic != REPORTER_MAGIC)
    rep = NULL; /* opened with an opaque of its own */
  rd_kafka_destroy(rk);
  free(rep);
}

int smc_kafka_produce(smc_kafka_t *rk, const char *topic, int32_t partition, const void *key,
                      size_t klen, const void *value, size_t vlen, const char **why) {
  return smc_kafka_send(rk, topic, partition, key, klen, value, vlen, NULL, why) < 0 ? -1 : 0;
}

void smc_kafka_poll(smc_kafka_t *rk, int ms) { rd_kafka_poll(rk, ms); }

int smc_kafka_flush(smc_kafka_t *rk, int ms) {
  return rd_kafka_flush(rk, ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

int smc_kafka_watermarks(smc_kafka_t *rk, const char *topic, int32_t partition, int64_t *lo,
                         int64_t *hi, int timeout_ms) {
  rd_kafka_resp_err_t e =
      rd_kafka_query_watermark_offsets(rk, topic, partition, lo, hi, timeout_ms);
  if (!e)
    return 0;
  return e == RD_KAFKA_RESP_ERR__TIMED_OUT ? SMC_EUNAVAILABLE : SMC_EKAFKA;
}

const char *smc_kafka_version(void) { return rd_kafka_version_str(); }
