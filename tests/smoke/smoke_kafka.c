/* Smoke test: librdkafka (Debian 12: 2.0.2) against the real broker that
 * scripts/kafka.sh runs. Proves the client features smc relies on:
 *   1. admin API: create two fresh topics (in, out);
 *   2. idempotent produce to `in`, consumed back in full and in order;
 *   3. a committed transaction (consume `in` in a group, produce to `out`,
 *      send the consumer's offsets with its group metadata, commit): a
 *      read_committed consumer sees the records and the group's offsets moved;
 *   4. an aborted transaction (records flushed to the log, offsets sent, abort):
 *      read_committed does not see its records, read_uncommitted does, and the
 *      group's committed offsets stay where the committed transaction put them.
 * Needs SMC_BOOTSTRAP; without it exits 77 (ctest: skipped). Exit 1 on failure. */
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_IDEM 100
#define N_COMMIT 100
#define N_ABORT 50
#define TIMEOUT_MS 30000

static const char *bootstrap;
static int passed, failed;

static void check(int ok, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s: ", ok ? "ok" : "FAIL");
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
  if (ok)
    passed++;
  else
    failed++;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL: ");
  vprintf(fmt, ap);
  printf("\nsmoke_kafka: %d passed, %d failed\n", passed, failed + 1);
  va_end(ap);
  exit(1);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
    die("config %s=%s: %s", k, v, errstr);
}

static rd_kafka_conf_t *base_conf(void) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  conf_set(conf, "bootstrap.servers", bootstrap);
  conf_set(conf, "socket.timeout.ms", "10000");
  return conf;
}

static rd_kafka_t *new_handle(rd_kafka_type_t type, rd_kafka_conf_t *conf) {
  char errstr[512];
  rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
  if (!rk)
    die("rd_kafka_new: %s", errstr);
  return rk;
}

/* Creates the topics (1 partition, replication 1) and waits for the result. */
static void create_topics(const char *const *names, int n) {
  char errstr[512];
  rd_kafka_t *rk = new_handle(RD_KAFKA_PRODUCER, base_conf());
  rd_kafka_NewTopic_t *nt[4];
  for (int i = 0; i < n; i++) {
    nt[i] = rd_kafka_NewTopic_new(names[i], 1, 1, errstr, sizeof(errstr));
    if (!nt[i])
      die("NewTopic %s: %s", names[i], errstr);
  }
  rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(opts, TIMEOUT_MS, errstr, sizeof(errstr));
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, nt, (size_t)n, opts, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, TIMEOUT_MS + 5000);
  if (!ev)
    die("CreateTopics: no result in time");
  if (rd_kafka_event_error(ev))
    die("CreateTopics: %s", rd_kafka_event_error_string(ev));
  size_t cnt = 0;
  const rd_kafka_topic_result_t **res =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
  int ok = (int)cnt == n;
  for (size_t i = 0; i < cnt; i++) {
    if (rd_kafka_topic_result_error(res[i])) {
      printf("  %s: %s\n", rd_kafka_topic_result_name(res[i]),
             rd_kafka_topic_result_error_string(res[i]));
      ok = 0;
    }
  }
  check(ok, "admin CreateTopics created %d topics (%s, %s)", n, names[0], names[1]);
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_AdminOptions_destroy(opts);
  for (int i = 0; i < n; i++)
    rd_kafka_NewTopic_destroy(nt[i]);
  rd_kafka_destroy(rk);
  if (!ok)
    die("cannot continue without topics");
}

/* Best effort: the broker is shared by later runs, keep it tidy. */
static void delete_topics(const char *const *names, int n) {
  rd_kafka_t *rk = new_handle(RD_KAFKA_PRODUCER, base_conf());
  rd_kafka_DeleteTopic_t *dt[4];
  for (int i = 0; i < n; i++)
    dt[i] = rd_kafka_DeleteTopic_new(names[i]);
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_DeleteTopics(rk, dt, (size_t)n, NULL, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, TIMEOUT_MS);
  if (ev)
    rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  for (int i = 0; i < n; i++)
    rd_kafka_DeleteTopic_destroy(dt[i]);
  rd_kafka_destroy(rk);
}

struct dr_stats {
  int ok, err;
  char first_err[256];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  struct dr_stats *st = opaque;
  if (m->err) {
    if (!st->err)
      snprintf(st->first_err, sizeof(st->first_err), "%s", rd_kafka_err2str(m->err));
    st->err++;
  } else {
    st->ok++;
  }
}

static rd_kafka_t *new_producer(struct dr_stats *st, const char *txn_id) {
  rd_kafka_conf_t *conf = base_conf();
  conf_set(conf, "enable.idempotence", "true");
  conf_set(conf, "linger.ms", "5");
  if (txn_id) {
    conf_set(conf, "transactional.id", txn_id);
    conf_set(conf, "transaction.timeout.ms", "60000");
    conf_set(conf, "message.timeout.ms", "50000");
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, st);
  return new_handle(RD_KAFKA_PRODUCER, conf);
}

/* Produces "<prefix>-<i>" for i in [0, n) to partition 0, retrying QUEUE_FULL. */
static void produce_n(rd_kafka_t *rk, const char *topic, const char *prefix, int n) {
  for (int i = 0; i < n; i++) {
    char val[64], key[32];
    snprintf(val, sizeof(val), "%s-%d", prefix, i);
    snprintf(key, sizeof(key), "k%d", i);
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                    RD_KAFKA_V_KEY(key, strlen(key)),
                                    RD_KAFKA_V_VALUE(val, strlen(val)),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(rk, 50);
    if (err)
      die("produce %s to %s: %s", val, topic, rd_kafka_err2str(err));
    rd_kafka_poll(rk, 0);
  }
}

static void txn_call(rd_kafka_error_t *e, const char *what) {
  if (e) {
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    die("%s: %s", what, msg);
  }
}

struct records {
  int n;
  char val[N_COMMIT + N_ABORT + N_IDEM + 8][32];
  int64_t offset[N_COMMIT + N_ABORT + N_IDEM + 8];
};

/* Reads partition 0 of topic from the beginning until end of partition
 * (for read_committed: the last stable offset) and returns the records. */
static void read_all(const char *topic, const char *isolation, struct records *out) {
  char group[128];
  snprintf(group, sizeof(group), "smc-smoke-reader-%d-%lld", (int)getpid(), (long long)now_ms());
  rd_kafka_conf_t *conf = base_conf();
  conf_set(conf, "group.id", group);
  conf_set(conf, "enable.auto.commit", "false");
  conf_set(conf, "enable.partition.eof", "true");
  conf_set(conf, "isolation.level", isolation);
  rd_kafka_t *rk = new_handle(RD_KAFKA_CONSUMER, conf);
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_resp_err_t aerr = rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  if (aerr)
    die("assign %s: %s", topic, rd_kafka_err2str(aerr));
  out->n = 0;
  int64_t deadline = now_ms() + TIMEOUT_MS;
  int eof = 0;
  while (!eof) {
    if (now_ms() > deadline)
      die("reading %s (%s): no end of partition after %d records", topic, isolation, out->n);
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    if (!m)
      continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      eof = 1;
    } else if (m->err) {
      char msg[256];
      snprintf(msg, sizeof(msg), "%s", rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      die("consume %s: %s", topic, msg);
    } else if (out->n < (int)(sizeof(out->val) / sizeof(out->val[0]))) {
      snprintf(out->val[out->n], sizeof(out->val[0]), "%.*s", (int)m->len,
               (const char *)m->payload);
      out->offset[out->n] = m->offset;
      out->n++;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

/* Count of records whose value is "<prefix>-<i>" in order i = 0, 1, ... */
static int count_in_order(const struct records *r, const char *prefix) {
  int next = 0;
  for (int i = 0; i < r->n; i++) {
    char want[64];
    snprintf(want, sizeof(want), "%s-%d", prefix, next);
    if (!strcmp(r->val[i], want))
      next++;
    else if (!strncmp(r->val[i], prefix, strlen(prefix)) && r->val[i][strlen(prefix)] == '-')
      return -1; /* right family, wrong order or duplicate */
  }
  return next;
}

static int64_t committed_offset(rd_kafka_t *consumer, const char *topic) {
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic, 0);
  rd_kafka_resp_err_t err = rd_kafka_committed(consumer, parts, TIMEOUT_MS);
  int64_t off = err ? -1000 - (int64_t)err : parts->elems[0].offset;
  if (!err && parts->elems[0].err)
    off = -1000 - (int64_t)parts->elems[0].err;
  rd_kafka_topic_partition_list_destroy(parts);
  return off;
}

static rd_kafka_t *new_group_consumer(const char *group, const char *topic) {
  rd_kafka_conf_t *conf = base_conf();
  conf_set(conf, "group.id", group);
  conf_set(conf, "enable.auto.commit", "false");
  conf_set(conf, "auto.offset.reset", "earliest");
  conf_set(conf, "isolation.level", "read_committed");
  conf_set(conf, "partition.assignment.strategy", "cooperative-sticky");
  rd_kafka_t *rk = new_handle(RD_KAFKA_CONSUMER, conf);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, sub);
  rd_kafka_topic_partition_list_destroy(sub);
  if (err)
    die("subscribe %s: %s", topic, rd_kafka_err2str(err));
  return rk;
}

/* Polls the group consumer until it has consumed n records of topic. */
static void consume_n(rd_kafka_t *rk, int n) {
  int got = 0;
  int64_t deadline = now_ms() + 2 * TIMEOUT_MS;
  while (got < n) {
    if (now_ms() > deadline)
      die("group consumer got %d of %d records in time", got, n);
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    if (!m)
      continue;
    if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      char msg[256];
      snprintf(msg, sizeof(msg), "%s", rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      die("group consume: %s", msg);
    }
    if (!m->err)
      got++;
    rd_kafka_message_destroy(m);
  }
}

/* One transaction from the group consumer's position: produce n records with
 * prefix to out, send `offsets` (or the consumer's position when NULL) and
 * commit or abort. Records are flushed before the end, so an aborted
 * transaction's records really are in the log. */
static void run_txn(rd_kafka_t *p, struct dr_stats *st, rd_kafka_t *c, const char *out,
                    const char *prefix, int n, int64_t offset_override, int commit) {
  txn_call(rd_kafka_begin_transaction(p), "begin_transaction");
  produce_n(p, out, prefix, n);
  rd_kafka_resp_err_t ferr = rd_kafka_flush(p, TIMEOUT_MS);
  if (ferr)
    die("flush in transaction: %s", rd_kafka_err2str(ferr));
  rd_kafka_topic_partition_list_t *offsets = NULL;
  rd_kafka_resp_err_t err = rd_kafka_assignment(c, &offsets);
  if (err || !offsets || offsets->cnt != 1)
    die("group consumer assignment: %s", err ? rd_kafka_err2str(err) : "not one partition");
  err = rd_kafka_position(c, offsets);
  if (err)
    die("position: %s", rd_kafka_err2str(err));
  if (offset_override >= 0)
    offsets->elems[0].offset = offset_override;
  rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(c);
  txn_call(rd_kafka_send_offsets_to_transaction(p, offsets, cgmd, TIMEOUT_MS),
           "send_offsets_to_transaction");
  rd_kafka_consumer_group_metadata_destroy(cgmd);
  rd_kafka_topic_partition_list_destroy(offsets);
  if (commit)
    txn_call(rd_kafka_commit_transaction(p, TIMEOUT_MS), "commit_transaction");
  else
    txn_call(rd_kafka_abort_transaction(p, TIMEOUT_MS), "abort_transaction");
  check(st->err == 0, "%s transaction: %d records delivered, %d delivery errors%s%s",
        commit ? "committed" : "aborted", st->ok, st->err, st->err ? ": " : "", st->first_err);
}

/* The group's committed offset is read with a fresh consumer in the same group
 * (read_committed: waits for pending transactional offsets to settle). */
static int64_t group_offset(const char *group, const char *topic) {
  rd_kafka_conf_t *conf = base_conf();
  conf_set(conf, "group.id", group);
  conf_set(conf, "enable.auto.commit", "false");
  conf_set(conf, "isolation.level", "read_committed");
  rd_kafka_t *rk = new_handle(RD_KAFKA_CONSUMER, conf);
  int64_t off = committed_offset(rk, topic);
  rd_kafka_destroy(rk);
  return off;
}

int main(void) {
  bootstrap = getenv("SMC_BOOTSTRAP");
  if (!bootstrap || !*bootstrap) {
    printf("skip: SMC_BOOTSTRAP is not set (scripts/kafka.sh start prints it)\n");
    return 77;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("librdkafka %s, bootstrap %s\n", rd_kafka_version_str(), bootstrap);

  char in[128], out[128], group[128], txn_id[128];
  long long uniq = (long long)time(NULL) * 1000 + (now_ms() % 1000);
  snprintf(in, sizeof(in), "smc-smoke-in-%d-%lld", (int)getpid(), uniq);
  snprintf(out, sizeof(out), "smc-smoke-out-%d-%lld", (int)getpid(), uniq);
  snprintf(group, sizeof(group), "smc-smoke-group-%d-%lld", (int)getpid(), uniq);
  snprintf(txn_id, sizeof(txn_id), "smc-smoke-txn-%d-%lld", (int)getpid(), uniq);
  const char *topics[2] = {in, out};
  create_topics(topics, 2);

  /* 2. Idempotent producer, consumed back. */
  struct dr_stats ist = {0};
  rd_kafka_t *ip = new_producer(&ist, NULL);
  produce_n(ip, in, "idem", N_IDEM);
  rd_kafka_resp_err_t ferr = rd_kafka_flush(ip, TIMEOUT_MS);
  check(!ferr && ist.ok == N_IDEM && ist.err == 0,
        "idempotent producer: %d/%d delivered, %d errors%s%s", ist.ok, N_IDEM, ist.err,
        ist.err ? ": " : "", ist.first_err);
  rd_kafka_destroy(ip);

  static struct records r;
  read_all(in, "read_committed", &r);
  check(r.n == N_IDEM && count_in_order(&r, "idem") == N_IDEM && r.offset[N_IDEM - 1] == N_IDEM - 1,
        "consumed back %d/%d idempotent records, in order, no duplicates", r.n, N_IDEM);

  /* 3. Committed transaction: consume `in` in a group, produce to `out`. */
  rd_kafka_t *gc = new_group_consumer(group, in);
  consume_n(gc, N_IDEM);
  struct dr_stats tst = {0};
  rd_kafka_t *tp = new_producer(&tst, txn_id);
  txn_call(rd_kafka_init_transactions(tp, TIMEOUT_MS), "init_transactions");
  run_txn(tp, &tst, gc, out, "commit", N_COMMIT, -1, 1);
  int64_t off = group_offset(group, in);
  check(off == N_IDEM, "group %s committed offset after commit = %lld (want %d)", group,
        (long long)off, N_IDEM);

  /* 4. Aborted transaction: records flushed, offsets sent (10), then abort. */
  tst.ok = tst.err = 0;
  run_txn(tp, &tst, gc, out, "abort", N_ABORT, 10, 0);
  check(tst.ok == N_ABORT, "aborted transaction's %d records reached the log before abort", tst.ok);
  off = group_offset(group, in);
  check(off == N_IDEM, "group offset after abort still %lld (want %d, aborted txn sent 10)",
        (long long)off, N_IDEM);

  read_all(out, "read_committed", &r);
  int nc = count_in_order(&r, "commit"), na = count_in_order(&r, "abort");
  check(r.n == N_COMMIT && nc == N_COMMIT && na == 0,
        "read_committed sees %d records: %d committed, %d aborted (want %d, 0)", r.n, nc, na,
        N_COMMIT);
  read_all(out, "read_uncommitted", &r);
  nc = count_in_order(&r, "commit");
  na = count_in_order(&r, "abort");
  check(nc == N_COMMIT && na == N_ABORT,
        "read_uncommitted sees %d committed and %d aborted records (want %d, %d)", nc, na, N_COMMIT,
        N_ABORT);

  rd_kafka_destroy(tp);
  rd_kafka_consumer_close(gc);
  rd_kafka_destroy(gc);
  delete_topics(topics, 2);

  printf("smoke_kafka: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
