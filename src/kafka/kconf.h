/*
 * librdkafka plumbing shared by every role: configuration, logging, topic
 * names, partition counts.
 */
#ifndef SMC_KAFKA_KCONF_H
#define SMC_KAFKA_KCONF_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "smc/error.h"

#define SMC_TOPIC_PREFIX_DEFAULT "smc."

/*
 * A new configuration: bootstrap.servers = bootstrap (NULL: $SMC_BOOTSTRAP,
 * else localhost:9092), smc's log callback, then every property of props
 * (k1, v1, k2, v2, ..., NULL; may be NULL) passed through as given, so any
 * librdkafka property (TLS, SASL, ...) works. Returns NULL with errstr filled
 * when a property is unknown or invalid or props has an odd length. The
 * caller owns the result (rd_kafka_new takes it over on success).
 */
rd_kafka_conf_t *smc_kconf_new(const char *bootstrap, const char *const *props, char *errstr,
                               size_t errlen);

/* Producer settings every smc producer needs: the Java client's default
 * partitioner (partitioner=murmur2_random), so an object's events land in
 * murmur2(object) % N. Returns 0, or -1 with errstr filled. */
int smc_kconf_producer(rd_kafka_conf_t *conf, char *errstr, size_t errlen);

/* librdkafka log callback: one line on stderr through core/logline.h, in
 * the process's log format, with the fields kafka (the client's name) and
 * facility, e.g. as text
 *   2026-11-28T02:28:19.703Z level=error kafka=rdkafka#producer-1 facility=FAIL msg="..."
 * Installed by smc_kconf_new; every other rd_kafka_conf_t of smc sets it too. */
void smc_kconf_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* Lowest syslog level (0 emerg .. 7 debug) the callback prints; default 6
 * (info), from $SMC_KAFKA_LOG_LEVEL when set. */
void smc_kconf_set_log_level(int level);
/* The text of the last error (level <= 3) librdkafka logged through
 * smc_kconf_log_cb in this process, printed or not ("" when none), so a
 * command that keeps librdkafka quiet can still say why in one line. */
void smc_kconf_last_error(char *out, size_t n);
/* Whether a librdkafka property only applies to consumers: producers skip
 * these when a whole node's or client's -X list is applied to them (a
 * producer given one logs a CONFWARN). */
int smc_kconf_consumer_only(const char *key);
/* Fill err for a failed smc_kafka_partitions(topic) (code < 0) in one line:
 * a missing topic says to create the topics, no answer says the broker is
 * unreachable (with librdkafka's last error). Returns code. */
int smc_kafka_topic_error(smc_error_t *err, int code, const char *topic, const char *bootstrap);

/* "<prefix><name>" (prefix NULL or "" = "smc."), malloc'd; the caller frees.
 * NULL on allocation failure. */
char *smc_topic(const char *prefix, const char *name);

/* The number of partitions of topic per the cluster metadata; negative
 * SMC_E* code when the topic does not exist (SMC_ENOT_FOUND) or the
 * metadata request failed (SMC_EKAFKA / SMC_EUNAVAILABLE on timeout). */
int32_t smc_kafka_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms);

/* The default bootstrap: $SMC_BOOTSTRAP, else "localhost:9092". */
const char *smc_kafka_default_bootstrap(void);

#endif
