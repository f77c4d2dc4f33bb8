/*
 * rawproduce: produce raw records to a Kafka topic, for the hostile-input
 * system test (test_hostile.py). Python has no Kafka client here.
 *
 *   rawproduce BOOTSTRAP TOPIC < records
 *
 * Each input line is "PARTITION KEYHEX VALUEHEX" ("-" for no key, "" values
 * as "-" too); records are produced in order with idempotence on, and for
 * each, once delivered, one line "INDEX PARTITION OFFSET" is printed (sorted
 * by input index). Exit 0 when every record was delivered, 1 otherwise.
 * Values over librdkafka's message.max.bytes (1,000,000) are refused locally
 * and reported on stderr (the broker would refuse them too).
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int32_t partition;
  int64_t offset;
  int err;
} result_t;

static result_t *results;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  (void)opaque;
  size_t i = (size_t)(uintptr_t)m->_private;
  results[i].partition = m->partition;
  results[i].offset = m->offset;
  results[i].err = m->err != RD_KAFKA_RESP_ERR_NO_ERROR;
  if (m->err)
    fprintf(stderr, "rawproduce: record %zu: %s\n", i, rd_kafka_err2str(m->err));
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decode hex text s into a malloc'd buffer; "-" is empty. NULL on bad hex. */
static unsigned char *unhex(const char *s, size_t *len) {
  size_t n = strcmp(s, "-") == 0 ? 0 : strlen(s);
  unsigned char *out = malloc(n / 2 + 1);
  if (!out || n % 2) {
    free(out);
    return NULL;
  }
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      free(out);
      return NULL;
    }
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  *len = n / 2;
  return out;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: rawproduce BOOTSTRAP TOPIC < records\n");
    return 2;
  }
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof errstr) ||
      rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof errstr) ||
      rd_kafka_conf_set(conf, "message.timeout.ms", "30000", errstr, sizeof errstr)) {
    fprintf(stderr, "rawproduce: %s\n", errstr);
    return 2;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    fprintf(stderr, "rawproduce: %s\n", errstr);
    return 2;
  }
  size_t cap = 1024, n = 0;
  results = calloc(cap, sizeof *results);
  char *line = NULL;
  size_t lcap = 0;
  int status = 0;
  while (getline(&line, &lcap, stdin) > 0) {
    char *save = NULL, *ps = strtok_r(line, " \n", &save), *ks = strtok_r(NULL, " \n", &save),
         *vs = strtok_r(NULL, " \n", &save);
    size_t klen = 0, vlen = 0;
    unsigned char *key = ks ? unhex(ks, &klen) : NULL, *val = vs ? unhex(vs, &vlen) : NULL;
    if (!ps || !key || !val) {
      fprintf(stderr, "rawproduce: bad input line %zu\n", n);
      free(key);
      free(val);
      status = 2;
      break;
    }
    if (n == cap) {
      cap *= 2;
      void *grown = realloc(results, cap * sizeof *results);
      if (!grown) {
        fprintf(stderr, "rawproduce: out of memory\n");
        return 2;
      }
      results = grown;
      memset(results + n, 0, (cap - n) * sizeof *results);
    }
    results[n].err = 1;
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_PARTITION((int32_t)atoi(ps)),
                RD_KAFKA_V_KEY(strcmp(ks, "-") ? key : NULL, klen),
                RD_KAFKA_V_VALUE(vlen ? val : NULL, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE((void *)(uintptr_t)n), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(rk, 100);
    free(key);
    free(val);
    if (e) {
      fprintf(stderr, "rawproduce: record %zu: %s\n", n, rd_kafka_err2str(e));
      status = 1;
    }
    n++;
  }
  free(line);
  rd_kafka_flush(rk, 60000);
  for (size_t i = 0; i < n; i++) {
    if (results[i].err)
      status = status ? status : 1;
    else
      printf("%zu %d %lld\n", i, (int)results[i].partition, (long long)results[i].offset);
  }
  rd_kafka_destroy(rk);
  free(results);
  return status;
}
