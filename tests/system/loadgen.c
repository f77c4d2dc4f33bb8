/*
 * smc_loadgen: a load generator for the system tests.
 *
 * Writes proposals for the lock machine straight to <prefix>proposals with
 * an idempotent producer (acks=all, murmur2 partitioner), each with an
 * explicit id "<proc>-<object>-<k>": objects "<proc>-o<i>", each created and
 * then cycled acquire/release (owner "svc-<proc>"). Paced to --rate
 * proposals per second. Prints one JSON line at the end:
 *   {"sent":N,"failed":[ids...],"seconds":S}
 * Every id not in "failed" is durably in the log (delivery report).
 *
 *   smc_loadgen --bootstrap B --prefix P --proc NAME --objects N --ops M
 *               [--rate R] [--machine lock]
 *
 * Raw mode, for tests that must forge a record: write one record and exit.
 *   smc_loadgen --bootstrap B --topic T --partition N --key K --value V
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct failures {
  char **ids;
  size_t n, cap;
} failures_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  failures_t *f = opaque;
  if (!m->err)
    return;
  if (f->n == f->cap) {
    f->cap = f->cap ? f->cap * 2 : 16;
    f->ids = realloc(f->ids, f->cap * sizeof *f->ids);
    if (!f->ids)
      abort();
  }
  f->ids[f->n++] = strdup(m->_private ? (const char *)m->_private : "?");
  free(m->_private);
}

static void dr_ok_free(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  if (m->err) {
    dr_cb(rk, m, opaque);
    return;
  }
  free(m->_private);
}

int main(int argc, char **argv) {
  const char *bootstrap = "127.0.0.1:9092", *prefix = "smc.", *proc = "p", *machine = "lock";
  long objects = 10, ops = 10, rate = 0, raw_partition = -1;
  const char *raw_topic = NULL, *raw_key = NULL, *raw_value = NULL;
  static const struct option longopts[] = {
      {"bootstrap", required_argument, NULL, 'b'}, {"prefix", required_argument, NULL, 'P'},
      {"proc", required_argument, NULL, 'p'},      {"objects", required_argument, NULL, 'n'},
      {"ops", required_argument, NULL, 'm'},       {"rate", required_argument, NULL, 'r'},
      {"machine", required_argument, NULL, 'M'},   {"topic", required_argument, NULL, 't'},
      {"partition", required_argument, NULL, 'x'}, {"key", required_argument, NULL, 'k'},
      {"value", required_argument, NULL, 'v'},     {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (opt) {
    case 'b':
      bootstrap = optarg;
      break;
    case 'P':
      prefix = optarg;
      break;
    case 'p':
      proc = optarg;
      break;
    case 'n':
      objects = atol(optarg);
      break;
    case 'm':
      ops = atol(optarg);
      break;
    case 'r':
      rate = atol(optarg);
      break;
    case 'M':
      machine = optarg;
      break;
    case 't':
      raw_topic = optarg;
      break;
    case 'x':
      raw_partition = atol(optarg);
      break;
    case 'k':
      raw_key = optarg;
      break;
    case 'v':
      raw_value = optarg;
      break;
    default:
      fprintf(stderr, "usage: see the top of loadgen.c\n");
      return 2;
    }
  }
  char errstr[512], topic[256];
  snprintf(topic, sizeof topic, "%sproposals", prefix);
  failures_t fails = {0};
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const char *kv[] = {"bootstrap.servers",
                      bootstrap,
                      "enable.idempotence",
                      "true",
                      "acks",
                      "all",
                      "partitioner",
                      "murmur2_random",
                      "linger.ms",
                      "5",
                      "message.timeout.ms",
                      "120000",
                      NULL};
  for (size_t i = 0; kv[i]; i += 2)
    if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "smc_loadgen: %s\n", errstr);
      return 1;
    }
  rd_kafka_conf_set_dr_msg_cb(conf, dr_ok_free);
  rd_kafka_conf_set_opaque(conf, &fails);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    fprintf(stderr, "smc_loadgen: %s\n", errstr);
    return 1;
  }
  if (raw_topic && raw_value) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(raw_topic),
        RD_KAFKA_V_PARTITION(raw_partition < 0 ? RD_KAFKA_PARTITION_UA : (int32_t)raw_partition),
        RD_KAFKA_V_KEY(raw_key, raw_key ? strlen(raw_key) : 0),
        RD_KAFKA_V_VALUE((void *)raw_value, strlen(raw_value)),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(strdup("raw")), RD_KAFKA_V_END);
    if (!e)
      rd_kafka_flush(rk, 30000);
    int bad = e || fails.n > 0 || rd_kafka_outq_len(rk) > 0;
    rd_kafka_destroy(rk);
    return bad ? 1 : 0;
  }
  int64_t t0 = now_ms();
  long sent = 0;
  /* Round-robin over objects so every object sees interleaved traffic. */
  for (long k = 0; k <= ops; k++) {
    for (long i = 0; i < objects; i++) {
      char obj[128], id[192], value[512];
      snprintf(obj, sizeof obj, "%s-o%ld", proc, i);
      snprintf(id, sizeof id, "%s-%ld", obj, k);
      if (k == 0)
        snprintf(value, sizeof value,
                 "{\"type\":\"proposal\",\"id\":\"%s\",\"machine\":\"%s\",\"object\":\"%s\","
                 "\"transition\":\"create\"}",
                 id, machine, obj);
      else
        snprintf(value, sizeof value,
                 "{\"type\":\"proposal\",\"id\":\"%s\",\"object\":\"%s\",\"transition\":\"%s\","
                 "\"data\":{\"owner\":\"svc-%s\"},\"proposer\":\"svc-%s\"}",
                 id, obj, k % 2 ? "acquire" : "release", proc, proc);
      rd_kafka_resp_err_t e;
      while ((e = rd_kafka_producev(
                  rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(obj, strlen(obj)),
                  RD_KAFKA_V_VALUE(value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                  RD_KAFKA_V_OPAQUE(strdup(id)), RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(rk, 10);
      if (e) {
        fprintf(stderr, "smc_loadgen: produce: %s\n", rd_kafka_err2str(e));
        return 1;
      }
      sent++;
      rd_kafka_poll(rk, 0);
      if (rate > 0) {
        int64_t due = t0 + sent * 1000 / rate;
        while (now_ms() < due)
          rd_kafka_poll(rk, (int)(due - now_ms()));
      }
    }
  }
  while (rd_kafka_outq_len(rk) > 0)
    rd_kafka_poll(rk, 100);
  printf("{\"sent\":%ld,\"failed\":[", sent);
  for (size_t i = 0; i < fails.n; i++)
    printf("%s\"%s\"", i ? "," : "", fails.ids[i]);
  printf("],\"seconds\":%.3f}\n", (double)(now_ms() - t0) / 1000.0);
  rd_kafka_destroy(rk);
  for (size_t i = 0; i < fails.n; i++)
    free(fails.ids[i]);
  free(fails.ids);
  return 0;
}
