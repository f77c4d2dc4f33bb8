/* One way to open a librdkafka handle (handle.h). */
#include "kafka/handle.h"

#include <stdio.h>

#include "kafka/kconf.h"

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

rd_kafka_t *smc_kafka_open(const smc_kafka_spec_t *s, char *errstr, size_t errlen) {
  int producer = s->type == RD_KAFKA_PRODUCER;
  rd_kafka_conf_t *conf = smc_kconf_new(s->bootstrap, NULL, errstr, errlen);
  if (!conf)
    return NULL;
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
  if (s->delivery_cb)
    rd_kafka_conf_set_dr_msg_cb(conf, s->delivery_cb);
  if (s->opaque)
    rd_kafka_conf_set_opaque(conf, s->opaque);
  rd_kafka_t *rk = rd_kafka_new(s->type, conf, errstr, errlen);
  if (!rk)
    goto fail; /* rd_kafka_new takes the configuration over only on success */
  if (!producer)
    rd_kafka_poll_set_consumer(rk);
  return rk;
fail:
  rd_kafka_conf_destroy(conf);
  return NULL;
}

void smc_kafka_close(rd_kafka_t *rk) {
  if (!rk)
    return;
  if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER)
    rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}
