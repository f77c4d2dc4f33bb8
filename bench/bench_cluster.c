/*
 * bench_cluster: the client side of the cluster benchmarks (bench/run.py).
 *
 * Talks to Kafka with librdkafka directly, never through smc code, so the
 * figures are what any client would see:
 *
 *   --mode fast    lock machine proposals (create, then acquire/release
 *                  cycles) to <prefix>proposals; confirmations are read back
 *                  from <prefix>confirmations (read_committed) and matched by
 *                  proposal id. Latency = propose -> confirmation seen.
 *   --mode voted   approval machine: per object a `request` (no votes), then
 *                  an `approve` that needs 2 of 3 votes; only the approve
 *                  round trips count as transitions/latencies.
 *   --mode raw     the baseline: the same proposal bytes, keys and producer
 *                  settings, produced to <prefix>proposals of a prefix no
 *                  worker serves, and read back from that topic by a
 *                  read_committed consumer. Latency = produce -> consumed.
 *   --mode consume read <prefix>proposals from the beginning to the end it
 *                  has now and print records/s (the baseline of replay).
 *   --mode eos     the exactly-once baseline, the client side: like raw, but
 *                  the records are read back from <prefix>confirmations,
 *                  where a relay (below) copied them inside transactions.
 *   --mode relay   the exactly-once baseline, the relay: a committer without
 *                  the fold (see run_relay). Runs for --seconds.
 *   --mode fill    produce a history without waiting for answers: --objects
 *                  lock creates, then acquire/release rounds over every
 *                  object (--fill-kind cycles) or read events of them
 *                  (--fill-kind reads) until --records records; for the
 *                  restore benchmark (a log to fold once, then restore).
 *   --mode offsets print the end offsets of <prefix>proposals summed over
 *                  its partitions (the records ever written to it, plus any
 *                  transaction markers) and exit; the lock scenario counts
 *                  what reads add to the log with it.
 *
 * Scheduling: at most one proposal in flight per object, at most --inflight
 * in total; with --rate R sends are spaced 1/R s apart (open loop; a send
 * that finds no free slot waits for one, which is reported as "stalls").
 * --rate 0 sends as fast as the in-flight limit allows (the max figure).
 * After --seconds the program stops sending and waits up to --drain seconds
 * for outstanding answers. Prints one JSON line of results on stdout.
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
  MODE_FAST,
  MODE_VOTED,
  MODE_RAW,
  MODE_CONSUME,
  MODE_EOS,
  MODE_RELAY,
  MODE_OFFSETS,
  MODE_FILL
};

typedef struct opts {
  const char *bootstrap, *prefix, *tag;
  int mode;
  long objects, inflight;
  double rate, seconds, drain;
  int partitions;
  long records;   /* fill */
  int fill_reads; /* fill: reads after the creates instead of lock cycles */
} opts_t;

/* One object of the workload: its next step and whether it waits for an
 * answer. Lock objects cycle forever; approval objects end after approve. */
typedef struct object {
  long step;
  int busy;
} object_t;

/* One sent proposal, indexed by its sequence number (the id's suffix). */
typedef struct sent {
  int64_t t_us;
  int32_t obj;
  int8_t counted; /* answer counts as a transition */
  int8_t done;
} sent_t;

typedef struct bench {
  opts_t o;
  rd_kafka_t *prod, *cons;
  char ptopic[256], ctopic[256];
  object_t *objs;
  long nobjs, cap_objs;
  long *ready; /* ring of object indexes ready to send */
  long rhead, rtail, rcap;
  sent_t *sent;
  long nsent, cap_sent;
  long inflight, answered, committed, rejected, other, stalls, produce_errors;
  double *lat_ms;
  long nlat, cap_lat;
  /* fast/voted: where each counted round trip's time went (see stages()) */
  double *stage_ms[3];
  long nstage, cap_stage;
  int64_t wall_minus_mono; /* CLOCK_REALTIME - CLOCK_MONOTONIC, in us */
  int64_t t_start, t_last_answer;
} bench_t;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    fprintf(stderr, "bench_cluster: out of memory\n");
    exit(1);
  }
  return q;
}

static void ready_push(bench_t *b, long idx) {
  if (b->rtail - b->rhead == b->rcap) {
    long ncap = b->rcap ? b->rcap * 2 : 1024;
    long *n = xrealloc(NULL, (size_t)ncap * sizeof *n);
    for (long i = b->rhead; i < b->rtail; i++)
      n[i - b->rhead] = b->ready[i % b->rcap];
    free(b->ready);
    b->ready = n;
    b->rtail -= b->rhead;
    b->rhead = 0;
    b->rcap = ncap;
  }
  b->ready[b->rtail % b->rcap] = idx;
  b->rtail++;
}

static long new_object(bench_t *b) {
  if (b->nobjs == b->cap_objs) {
    b->cap_objs = b->cap_objs ? b->cap_objs * 2 : 1024;
    b->objs = xrealloc(b->objs, (size_t)b->cap_objs * sizeof *b->objs);
  }
  b->objs[b->nobjs] = (object_t){0, 0};
  return b->nobjs++;
}

/* The next object to send for, or -1 when none is free. Voted mode makes a
 * fresh object when every existing one is waiting or finished. */
static long ready_pop(bench_t *b) {
  if (b->rhead < b->rtail) {
    long idx = b->ready[b->rhead % b->rcap];
    b->rhead++;
    return idx;
  }
  if (b->o.mode == MODE_VOTED)
    return new_object(b);
  return -1;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  bench_t *b = opaque;
  if (m->err) {
    b->produce_errors++;
    if (b->produce_errors < 5)
      fprintf(stderr, "bench_cluster: delivery failed: %s\n", rd_kafka_err2str(m->err));
  }
}

/* A librdkafka configuration of the NULL-terminated key/value list kv; a
 * refused setting ends the program. */
static rd_kafka_conf_t *conf_of(const char **kv) {
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  for (size_t i = 0; kv[i]; i += 2)
    if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "bench_cluster: %s\n", errstr);
      exit(1);
    }
  return conf;
}

static rd_kafka_t *make_client(bench_t *b, rd_kafka_type_t type) {
  char errstr[512], group[128];
  snprintf(group, sizeof group, "bench-%s-%ld", b->o.tag, (long)now_us());
  const char *pkv[] = {"bootstrap.servers",
                       b->o.bootstrap,
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
  const char *ckv[] = {"bootstrap.servers",
                       b->o.bootstrap,
                       "group.id",
                       group,
                       "enable.auto.commit",
                       "false",
                       "isolation.level",
                       "read_committed",
                       "auto.offset.reset",
                       "earliest",
                       "enable.partition.eof",
                       "true",
                       NULL};
  rd_kafka_conf_t *conf = conf_of(type == RD_KAFKA_PRODUCER ? pkv : ckv);
  if (type == RD_KAFKA_PRODUCER) {
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, b);
  }
  rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (!rk) {
    fprintf(stderr, "bench_cluster: %s\n", errstr);
    exit(1);
  }
  return rk;
}

/* Assigns every partition of topic from the beginning (fresh topics: nothing
 * from other runs is in them). Returns the partition count. */
static int assign_all(rd_kafka_t *rk, const char *topic) {
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
  rd_kafka_topic_destroy(t);
  if (e || md->topic_cnt != 1 || md->topics[0].err) {
    fprintf(stderr, "bench_cluster: metadata of %s: %s\n", topic,
            e ? rd_kafka_err2str(e) : rd_kafka_err2str(md->topics[0].err));
    exit(1);
  }
  int n = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (int p = 0; p < n; p++)
    rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  e = rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (e) {
    fprintf(stderr, "bench_cluster: assign: %s\n", rd_kafka_err2str(e));
    exit(1);
  }
  return n;
}

/* Sends the next step of object idx. Returns 0, or -1 when the producer
 * queue is full (the caller retries after polling). */
static int send_one(bench_t *b, long idx) {
  object_t *ob = &b->objs[idx];
  char obj[64], id[96], value[512];
  const char *tr;
  int counted = 1;
  if (b->o.mode == MODE_VOTED) {
    snprintf(obj, sizeof obj, "%s-a%ld", b->o.tag, idx);
    tr = ob->step == 0 ? "request" : "approve";
    counted = ob->step == 1;
  } else {
    snprintf(obj, sizeof obj, "%s-o%ld", b->o.tag, idx);
    tr = ob->step == 0 ? "create" : ob->step % 2 ? "acquire" : "release";
  }
  snprintf(id, sizeof id, "%s-%ld", b->o.tag, b->nsent);
  if (b->o.mode == MODE_VOTED && ob->step == 0)
    snprintf(value, sizeof value,
             "{\"type\":\"proposal\",\"id\":\"%s\",\"machine\":\"approval\",\"object\":\"%s\","
             "\"transition\":\"request\",\"data\":{\"requester\":\"bench\",\"amount\":10}}",
             id, obj);
  else if (b->o.mode == MODE_VOTED)
    snprintf(value, sizeof value,
             "{\"type\":\"proposal\",\"id\":\"%s\",\"object\":\"%s\",\"transition\":\"approve\","
             "\"proposer\":\"bench\"}",
             id, obj);
  else if (ob->step == 0)
    snprintf(value, sizeof value,
             "{\"type\":\"proposal\",\"id\":\"%s\",\"machine\":\"lock\",\"object\":\"%s\","
             "\"transition\":\"create\"}",
             id, obj);
  else
    snprintf(value, sizeof value,
             "{\"type\":\"proposal\",\"id\":\"%s\",\"object\":\"%s\",\"transition\":\"%s\","
             "\"data\":{\"owner\":\"svc-bench\"},\"proposer\":\"svc-bench\"}",
             id, obj, tr);
  rd_kafka_resp_err_t e =
      rd_kafka_producev(b->prod, RD_KAFKA_V_TOPIC(b->ptopic), RD_KAFKA_V_KEY(obj, strlen(obj)),
                        RD_KAFKA_V_VALUE(value, strlen(value)),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
    return -1;
  if (e) {
    fprintf(stderr, "bench_cluster: produce: %s\n", rd_kafka_err2str(e));
    exit(1);
  }
  if (b->nsent == b->cap_sent) {
    b->cap_sent = b->cap_sent ? b->cap_sent * 2 : 65536;
    b->sent = xrealloc(b->sent, (size_t)b->cap_sent * sizeof *b->sent);
  }
  b->sent[b->nsent++] = (sent_t){now_us(), (int32_t)idx, (int8_t)counted, 0};
  ob->busy = 1;
  b->inflight++;
  return 0;
}

/* The string value of "key":"..." in a JSON text (no escapes expected in
 * the fields read here); copies at most cap-1 bytes. 0 when found. */
static int json_str(const char *s, size_t len, const char *key, char *out, size_t cap) {
  char pat[64];
  int pl = snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char *end = s + len;
  for (const char *p = s; p + pl <= end; p++) {
    if (memcmp(p, pat, (size_t)pl) != 0)
      continue;
    p += pl;
    size_t i = 0;
    while (p < end && *p != '"' && i + 1 < cap)
      out[i++] = *p++;
    out[i] = 0;
    return 0;
  }
  return -1;
}

/*
 * Splits a confirmed round trip at two timestamps the records carry (one
 * machine, one clock): the confirmation's top-level "time" is the fold's
 * clock when it decided, the proposal's LogAppendTime (the proposals topic
 * uses it); the confirmation's own timestamp is the CreateTime the
 * committer's producer gave it when it was produced. So: send -> in the log
 * (client linger, produce), in the log -> produced (the committer's fetch,
 * fold, batch and the wait for the transaction before it), produced ->
 * answered (the transaction's commit and the client's read_committed fetch).
 * A voted approve is decided by its deciding vote, whose LogAppendTime is
 * the clock then: its first stage runs to that vote, so it holds the vote
 * request's round and the voters' time.
 * The top-level "time" is the last "time" key of the canonical text (keys
 * sorted; only the data, which comes before it, could hold another).
 */
static void stages(bench_t *b, const rd_kafka_message_t *m, int64_t sent_mono, int64_t recv_mono) {
  rd_kafka_timestamp_type_t tt;
  int64_t produced_ms = rd_kafka_message_timestamp(m, &tt);
  const char *s = m->payload, *hit = NULL;
  for (const char *p = s; (p = memmem(p, m->len - (size_t)(p - s), "\"time\":", 7)); p += 7)
    hit = p;
  if (!hit || produced_ms <= 0 || tt != RD_KAFKA_TIMESTAMP_CREATE_TIME)
    return;
  int64_t folded_ms = strtoll(hit + 7, NULL, 10);
  int64_t sent_ms = (sent_mono + b->wall_minus_mono) / 1000;
  int64_t recv_ms = (recv_mono + b->wall_minus_mono) / 1000;
  if (b->nstage == b->cap_stage) {
    b->cap_stage = b->cap_stage ? b->cap_stage * 2 : 65536;
    for (int i = 0; i < 3; i++)
      b->stage_ms[i] = xrealloc(b->stage_ms[i], (size_t)b->cap_stage * sizeof(double));
  }
  b->stage_ms[0][b->nstage] = (double)(folded_ms - sent_ms);
  b->stage_ms[1][b->nstage] = (double)(produced_ms - folded_ms);
  b->stage_ms[2][b->nstage] = (double)(recv_ms - produced_ms);
  b->nstage++;
}

/* Handles one consumed record: a confirmation (fast/voted) or one of our own
 * proposals read back (raw). Records of other runs/ids are ignored. */
static void on_record(bench_t *b, const rd_kafka_message_t *m) {
  char id[128], outcome[32];
  const char *s = m->payload;
  int copied = b->o.mode == MODE_RAW || b->o.mode == MODE_EOS; /* our own bytes back */
  const char *field = copied ? "id" : "proposal";
  if (json_str(s, m->len, field, id, sizeof id) != 0)
    return;
  size_t tl = strlen(b->o.tag);
  if (strncmp(id, b->o.tag, tl) != 0 || id[tl] != '-')
    return;
  char *endp;
  long seq = strtol(id + tl + 1, &endp, 10);
  if (*endp || seq < 0 || seq >= b->nsent || b->sent[seq].done)
    return;
  if (!copied && memmem(s, m->len, "\"duplicate\":true", 16))
    return;
  sent_t *st = &b->sent[seq];
  st->done = 1;
  int64_t t = now_us();
  b->t_last_answer = t;
  b->inflight--;
  b->answered++;
  int ok = 1;
  if (copied)
    b->committed++;
  else if (json_str(s, m->len, "outcome", outcome, sizeof outcome) == 0 &&
           strcmp(outcome, "committed") == 0)
    b->committed++;
  else {
    ok = 0;
    if (strcmp(outcome, "rejected") == 0)
      b->rejected++;
    else
      b->other++;
  }
  if (st->counted && ok) {
    if (b->nlat == b->cap_lat) {
      b->cap_lat = b->cap_lat ? b->cap_lat * 2 : 65536;
      b->lat_ms = xrealloc(b->lat_ms, (size_t)b->cap_lat * sizeof *b->lat_ms);
    }
    b->lat_ms[b->nlat++] = (double)(t - st->t_us) / 1000.0;
    if (!copied)
      stages(b, m, st->t_us, t);
  }
  object_t *ob = &b->objs[st->obj];
  ob->busy = 0;
  if (ok)
    ob->step++;
  /* Lock objects cycle forever; an approval object is finished once approved
   * (a rejected request/approve is retried on the same object). */
  if (b->o.mode != MODE_VOTED || ob->step < 2)
    ready_push(b, st->obj);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double p) {
  if (n == 0)
    return 0;
  long i = (long)(p * (double)(n - 1) + 0.5);
  return v[i];
}

static void consume_some(bench_t *b, int timeout_ms) {
  rd_kafka_message_t *m = rd_kafka_consumer_poll(b->cons, timeout_ms);
  while (m) {
    if (!m->err)
      on_record(b, m);
    else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
      fprintf(stderr, "bench_cluster: consume: %s\n", rd_kafka_message_errstr(m));
    rd_kafka_message_destroy(m);
    m = rd_kafka_consumer_poll(b->cons, 0);
  }
}

static int run_roundtrips(bench_t *b) {
  const char *suffix = b->o.mode == MODE_RAW ? "proposals" : "confirmations"; /* eos too */
  snprintf(b->ptopic, sizeof b->ptopic, "%sproposals", b->o.prefix);
  snprintf(b->ctopic, sizeof b->ctopic, "%s%s", b->o.prefix, suffix);
  b->prod = make_client(b, RD_KAFKA_PRODUCER);
  b->cons = make_client(b, RD_KAFKA_CONSUMER);
  assign_all(b->cons, b->ctopic);
  if (b->o.mode != MODE_VOTED)
    for (long i = 0; i < b->o.objects; i++)
      ready_push(b, new_object(b));
  /* Warm up before the clock starts: the idempotent producer acquires its
   * producer id with this first record (a read of an object nobody uses,
   * harmless to the fold), and the consumer fetches its start offsets. */
  static const char warm[] = "{\"type\":\"read\",\"id\":\"bench-warmup\","
                             "\"object\":\"bench-warmup\"}";
  if (rd_kafka_producev(b->prod, RD_KAFKA_V_TOPIC(b->ptopic), RD_KAFKA_V_KEY("bench-warmup", 12),
                        RD_KAFKA_V_VALUE((void *)warm, sizeof warm - 1),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) == 0)
    rd_kafka_flush(b->prod, 30000);
  consume_some(b, 500);
  b->wall_minus_mono = wall_us() - now_us();
  b->t_start = now_us();
  int64_t end = b->t_start + (int64_t)(b->o.seconds * 1e6);
  double interval_us = b->o.rate > 0 ? 1e6 / b->o.rate : 0;
  long due_n = 0; /* sends due so far (open loop) */
  for (;;) {
    int64_t t = now_us();
    if (t >= end)
      break;
    if (b->o.rate > 0)
      due_n = (long)((double)(t - b->t_start) / interval_us) + 1;
    int sent_any = 0;
    while ((b->o.rate <= 0 || b->nsent < due_n) && b->inflight < b->o.inflight) {
      long idx = ready_pop(b);
      if (idx < 0)
        break;
      if (send_one(b, idx) != 0) {
        /* queue full: put it back in front by re-pushing (order not vital) */
        ready_push(b, idx);
        break;
      }
      sent_any = 1;
    }
    if (b->o.rate > 0 && b->nsent < due_n)
      b->stalls++;
    rd_kafka_poll(b->prod, 0);
    int wait_ms = 1;
    if (b->o.rate > 0 && b->nsent >= due_n) {
      double next = (double)b->t_start + (double)due_n * interval_us;
      wait_ms = (int)((next - (double)now_us()) / 1000.0);
      if (wait_ms < 0)
        wait_ms = 0;
      if (wait_ms > 5)
        wait_ms = 5;
    } else if (sent_any)
      wait_ms = 0;
    consume_some(b, wait_ms);
  }
  int64_t sent_end = now_us();
  int64_t drain_end = sent_end + (int64_t)(b->o.drain * 1e6);
  while (b->inflight > 0 && now_us() < drain_end) {
    rd_kafka_poll(b->prod, 0);
    consume_some(b, 10);
  }
  double secs =
      (double)((b->t_last_answer > b->t_start ? b->t_last_answer : sent_end) - b->t_start) / 1e6;
  qsort(b->lat_ms, (size_t)b->nlat, sizeof *b->lat_ms, cmp_double);
  static const char *names[] = {"fast", "voted", "raw", "consume", "eos", "relay"};
  printf("{\"mode\":\"%s\",\"prefix\":\"%s\",\"rate\":%.1f,\"inflight\":%ld,\"objects\":%ld,"
         "\"sent\":%ld,\"answered\":%ld,\"committed\":%ld,\"rejected\":%ld,\"other\":%ld,"
         "\"unanswered\":%ld,\"produce_errors\":%ld,\"stalls\":%ld,\"seconds\":%.3f,"
         "\"transitions\":%ld,\"throughput\":%.1f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
         "\"p999_ms\":%.2f,\"max_ms\":%.2f",
         names[b->o.mode], b->o.prefix, b->o.rate, b->o.inflight, b->nobjs, b->nsent, b->answered,
         b->committed, b->rejected, b->other, b->inflight, b->produce_errors, b->stalls, secs,
         b->nlat, secs > 0 ? (double)b->nlat / secs : 0.0, pct(b->lat_ms, b->nlat, 0.50),
         pct(b->lat_ms, b->nlat, 0.99), pct(b->lat_ms, b->nlat, 0.999),
         b->nlat ? b->lat_ms[b->nlat - 1] : 0.0);
  if (b->nstage > 0) {
    /* each stage's own percentiles (they do not add up to the total's) */
    static const char *stage_names[] = {"to_log", "to_output", "to_answer"};
    for (int i = 0; i < 3; i++) {
      qsort(b->stage_ms[i], (size_t)b->nstage, sizeof(double), cmp_double);
      printf(",\"%s_p50_ms\":%.1f,\"%s_p99_ms\":%.1f", stage_names[i],
             pct(b->stage_ms[i], b->nstage, 0.50), stage_names[i],
             pct(b->stage_ms[i], b->nstage, 0.99));
    }
  }
  printf("}\n");
  rd_kafka_flush(b->prod, 10000);
  rd_kafka_consumer_close(b->cons);
  rd_kafka_destroy(b->cons);
  rd_kafka_destroy(b->prod);
  free(b->objs);
  free(b->ready);
  free(b->sent);
  free(b->lat_ms);
  for (int i = 0; i < 3; i++)
    free(b->stage_ms[i]);
  return b->inflight > 0 ? 3 : 0;
}

/* Reads <prefix>proposals from the beginning up to the high watermarks seen
 * at the start; prints records/s. */
static int run_consume(bench_t *b) {
  snprintf(b->ctopic, sizeof b->ctopic, "%sproposals", b->o.prefix);
  /* The end offsets come from a separate, untimed client (a dozen sequential
   * look-ups on a busy broker take seconds). The clock then covers what
   * `smc replay`'s time covers: the client's start, metadata, assign, reads. */
  rd_kafka_t *meta = make_client(b, RD_KAFKA_CONSUMER);
  int n = assign_all(meta, b->ctopic);
  int64_t *hw = calloc((size_t)n, sizeof *hw);
  int64_t *pos = calloc((size_t)n, sizeof *pos);
  if (!hw || !pos)
    return 1;
  int64_t total = 0;
  for (int p = 0; p < n; p++) {
    int64_t lo, hi;
    if (rd_kafka_query_watermark_offsets(meta, b->ctopic, p, &lo, &hi, 10000)) {
      fprintf(stderr, "bench_cluster: watermarks failed\n");
      return 1;
    }
    hw[p] = hi;
    pos[p] = lo;
    total += hi - lo;
  }
  rd_kafka_consumer_close(meta);
  rd_kafka_destroy(meta);
  int64_t t0 = now_us(), deadline = t0 + 300 * 1000000LL;
  b->cons = make_client(b, RD_KAFKA_CONSUMER);
  if (assign_all(b->cons, b->ctopic) != n)
    return 1;
  long count = 0, bytes = 0;
  int64_t t_last = t0;
  int open = 0;
  for (int p = 0; p < n; p++)
    open += pos[p] < hw[p];
  while (open > 0 && now_us() < deadline) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(b->cons, 100);
    if (!m)
      continue;
    int p = m->partition;
    if (!m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      int was = pos[p] < hw[p];
      if (!m->err) {
        t_last = now_us();
        count++;
        bytes += (long)m->len;
        pos[p] = m->offset + 1;
      } else
        pos[p] = m->offset;
      if (was && pos[p] >= hw[p])
        open--;
    }
    rd_kafka_message_destroy(m);
  }
  /* Up to the last record: the end-of-partition events that tell the loop
   * it is done arrive up to a fetch wait later and are not reading. */
  double secs = (double)(t_last - t0) / 1e6;
  printf("{\"mode\":\"consume\",\"prefix\":\"%s\",\"records\":%ld,\"offsets\":%lld,"
         "\"bytes\":%ld,\"seconds\":%.3f,\"records_per_s\":%.1f}\n",
         b->o.prefix, count, (long long)total, bytes, secs, secs > 0 ? (double)count / secs : 0);
  free(hw);
  free(pos);
  rd_kafka_consumer_close(b->cons);
  rd_kafka_destroy(b->cons);
  return open > 0 ? 3 : 0;
}

/* One record of the fill history: step 0 creates object idx, later steps
 * acquire/release it, or read it. */
static void fill_one(bench_t *b, long idx, long step, long seq) {
  char obj[64], value[320];
  snprintf(obj, sizeof obj, "%s-o%ld", b->o.tag, idx);
  if (step == 0)
    snprintf(value, sizeof value,
             "{\"type\":\"proposal\",\"id\":\"%s-%ld\",\"machine\":\"lock\",\"object\":\"%s\","
             "\"transition\":\"create\"}",
             b->o.tag, seq, obj);
  else if (b->o.fill_reads)
    snprintf(value, sizeof value, "{\"type\":\"read\",\"id\":\"%s-%ld\",\"object\":\"%s\"}",
             b->o.tag, seq, obj);
  else
    snprintf(value, sizeof value,
             "{\"type\":\"proposal\",\"id\":\"%s-%ld\",\"object\":\"%s\",\"transition\":\"%s\","
             "\"data\":{\"owner\":\"svc-bench\"},\"proposer\":\"svc-bench\"}",
             b->o.tag, seq, obj, step % 2 ? "acquire" : "release");
  for (;;) {
    rd_kafka_resp_err_t e =
        rd_kafka_producev(b->prod, RD_KAFKA_V_TOPIC(b->ptopic), RD_KAFKA_V_KEY(obj, strlen(obj)),
                          RD_KAFKA_V_VALUE(value, strlen(value)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e == 0)
      return;
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      fprintf(stderr, "bench_cluster: produce: %s\n", rd_kafka_err2str(e));
      exit(1);
    }
    rd_kafka_poll(b->prod, 10);
  }
}

/* --mode fill: --records records over --objects objects, in rounds (every
 * object's records stay in order in its partition). */
static int run_fill(bench_t *b) {
  snprintf(b->ptopic, sizeof b->ptopic, "%sproposals", b->o.prefix);
  b->prod = make_client(b, RD_KAFKA_PRODUCER);
  int64_t t0 = now_us();
  long seq = 0;
  for (long step = 0; seq < b->o.records; step++)
    for (long idx = 0; idx < b->o.objects && seq < b->o.records; idx++, seq++) {
      fill_one(b, idx, step, seq);
      if ((seq & 1023) == 0)
        rd_kafka_poll(b->prod, 0);
    }
  while (rd_kafka_outq_len(b->prod) > 0)
    rd_kafka_poll(b->prod, 100);
  double secs = (double)(now_us() - t0) / 1e6;
  rd_kafka_destroy(b->prod);
  printf("{\"mode\":\"fill\",\"records\":%ld,\"objects\":%ld,\"kind\":\"%s\","
         "\"seconds\":%.3f,\"produce_errors\":%ld}\n",
         seq, b->o.objects, b->o.fill_reads ? "reads" : "cycles", secs, b->produce_errors);
  return b->produce_errors ? 1 : 0;
}

/* Prints the sum of <prefix>proposals' end offsets (high watermarks) and of
 * its start offsets over every partition. */
static int run_offsets(bench_t *b) {
  snprintf(b->ctopic, sizeof b->ctopic, "%sproposals", b->o.prefix);
  rd_kafka_t *rk = make_client(b, RD_KAFKA_CONSUMER);
  int n = assign_all(rk, b->ctopic);
  long long end = 0, start = 0;
  for (int p = 0; p < n; p++) {
    int64_t lo, hi;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, b->ctopic, p, &lo, &hi, 10000);
    if (e) {
      fprintf(stderr, "bench_cluster: watermarks of %s [%d]: %s\n", b->ctopic, p,
              rd_kafka_err2str(e));
      return 1;
    }
    end += hi;
    start += lo;
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  printf("{\"mode\":\"offsets\",\"topic\":\"%s\",\"partitions\":%d,\"end_offsets\":%lld,"
         "\"start_offsets\":%lld}\n",
         b->ctopic, n, end, start);
  return 0;
}

static void txn_check(rd_kafka_error_t *e, const char *what) {
  if (!e)
    return;
  fprintf(stderr, "bench_cluster: relay: %s: %s\n", what, rd_kafka_error_string(e));
  exit(1);
}

/*
 * The relay of the exactly-once baseline: the committer's Kafka work without
 * the fold, so that `eos` round trips show what Kafka transactions alone cost
 * on this broker. A consumer in group <prefix>relay reads <prefix>proposals
 * (read_committed, from the beginning); each record is produced unchanged
 * (same key, same partition) to <prefix>confirmations inside the open
 * transaction at once, and a batch is committed with its consumed offsets
 * (send_offsets_to_transaction) when it is 10 ms old or holds 16,000 records:
 * the committer's commit interval and its largest batch. The loop is the
 * plain one of librdkafka's examples/transactions.c (no second batch folding
 * while a commit runs: there is nothing to fold). Same producer settings as
 * the committer's transactional producer (murmur2_random, retry.backoff.ms
 * 10, librdkafka's default linger). Prints its transaction count and mean
 * commit time at the end.
 */
static int run_relay(bench_t *b) {
  char errstr[512], txn_id[300], group[300];
  snprintf(b->ctopic, sizeof b->ctopic, "%sproposals", b->o.prefix);
  snprintf(b->ptopic, sizeof b->ptopic, "%sconfirmations", b->o.prefix);
  snprintf(txn_id, sizeof txn_id, "%srelay", b->o.prefix);
  snprintf(group, sizeof group, "%srelay", b->o.prefix);
  const char *pkv[] = {"bootstrap.servers",
                       b->o.bootstrap,
                       "transactional.id",
                       txn_id,
                       "partitioner",
                       "murmur2_random",
                       "retry.backoff.ms",
                       "10",
                       NULL};
  const char *ckv[] = {"bootstrap.servers",
                       b->o.bootstrap,
                       "group.id",
                       group,
                       "enable.auto.commit",
                       "false",
                       "isolation.level",
                       "read_committed",
                       "auto.offset.reset",
                       "earliest",
                       NULL};
  rd_kafka_conf_t *pc = conf_of(pkv), *cc = conf_of(ckv);
  rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
  if (!prod)
    goto conf_fail;
  rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr);
  if (!cons)
    goto conf_fail;
  rd_kafka_poll_set_consumer(cons);
  txn_check(rd_kafka_init_transactions(prod, 60000), "init_transactions");
  rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, b->ctopic, RD_KAFKA_PARTITION_UA);
  if (rd_kafka_subscribe(cons, sub)) {
    fprintf(stderr, "bench_cluster: relay: subscribe failed\n");
    return 1;
  }
  rd_kafka_topic_partition_list_destroy(sub);
  enum { MAX_PARTS = 1024, BATCH_MS = 10, BATCH_MAX = 16000 };
  static int64_t next[MAX_PARTS];
  for (int p = 0; p < MAX_PARTS; p++)
    next[p] = -1;
  int64_t end = now_us() + (int64_t)(b->o.seconds * 1e6), batch_start = 0, commit_us = 0;
  long batch_n = 0, txns = 0, records = 0;
  txn_check(rd_kafka_begin_transaction(prod), "begin_transaction");
  for (;;) {
    int64_t t = now_us();
    int due = batch_n > 0 && (batch_n >= BATCH_MAX || t - batch_start >= BATCH_MS * 1000);
    if (due || (t >= end && batch_n == 0)) {
      if (batch_n > 0) {
        int64_t c0 = now_us();
        rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(16);
        for (int p = 0; p < MAX_PARTS; p++)
          if (next[p] >= 0)
            rd_kafka_topic_partition_list_add(offs, b->ctopic, p)->offset = next[p];
        rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(cons);
        txn_check(rd_kafka_send_offsets_to_transaction(prod, offs, md, 60000),
                  "send_offsets_to_transaction");
        rd_kafka_consumer_group_metadata_destroy(md);
        rd_kafka_topic_partition_list_destroy(offs);
        txn_check(rd_kafka_commit_transaction(prod, 60000), "commit_transaction");
        commit_us += now_us() - c0;
        txns++;
        batch_n = 0;
      }
      if (t >= end)
        break;
      txn_check(rd_kafka_begin_transaction(prod), "begin_transaction");
      continue;
    }
    int wait_ms = batch_n ? (int)((batch_start + BATCH_MS * 1000 - t) / 1000) : 100;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, wait_ms > 0 ? wait_ms : 0);
    if (!m)
      continue;
    if (!m->err && m->partition >= 0 && m->partition < MAX_PARTS) {
      rd_kafka_resp_err_t e;
      while ((e = rd_kafka_producev(
                  prod, RD_KAFKA_V_TOPIC(b->ptopic), RD_KAFKA_V_PARTITION(m->partition),
                  RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
             RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(prod, 10);
      if (e) {
        fprintf(stderr, "bench_cluster: relay: produce: %s\n", rd_kafka_err2str(e));
        return 1;
      }
      if (batch_n++ == 0)
        batch_start = now_us();
      next[m->partition] = m->offset + 1;
      records++;
    }
    rd_kafka_message_destroy(m);
  }
  printf("{\"mode\":\"relay\",\"prefix\":\"%s\",\"records\":%ld,\"transactions\":%ld,"
         "\"records_per_txn\":%.1f,\"txn_commit_mean_ms\":%.2f}\n",
         b->o.prefix, records, txns, txns ? (double)records / (double)txns : 0.0,
         txns ? (double)commit_us / 1000.0 / (double)txns : 0.0);
  rd_kafka_consumer_close(cons);
  rd_kafka_destroy(cons);
  rd_kafka_destroy(prod);
  return 0;
conf_fail:
  fprintf(stderr, "bench_cluster: relay: %s\n", errstr);
  return 1;
}

static void usage(void) {
  fprintf(stderr, "usage: bench_cluster --mode fast|voted|raw|consume|eos|relay|offsets|fill "
                  "--prefix P "
                  "[--bootstrap B] [--objects N] [--inflight N] [--rate R] [--seconds S] "
                  "[--drain S] [--tag T] [--records N] [--fill-kind cycles|reads]\n");
}

int main(int argc, char **argv) {
  bench_t b = {0};
  b.o = (opts_t){"127.0.0.1:39092", NULL, "b", MODE_FAST, 10000, 1000, 0, 20, 15, 0, 0, 0};
  static const struct option lo[] = {
      {"bootstrap", required_argument, NULL, 'b'}, {"prefix", required_argument, NULL, 'P'},
      {"mode", required_argument, NULL, 'm'},      {"objects", required_argument, NULL, 'n'},
      {"inflight", required_argument, NULL, 'i'},  {"rate", required_argument, NULL, 'r'},
      {"seconds", required_argument, NULL, 's'},   {"drain", required_argument, NULL, 'd'},
      {"tag", required_argument, NULL, 't'},       {"records", required_argument, NULL, 'R'},
      {"fill-kind", required_argument, NULL, 'K'}, {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (opt) {
    case 'b':
      b.o.bootstrap = optarg;
      break;
    case 'P':
      b.o.prefix = optarg;
      break;
    case 'm':
      if (!strcmp(optarg, "fast"))
        b.o.mode = MODE_FAST;
      else if (!strcmp(optarg, "voted"))
        b.o.mode = MODE_VOTED;
      else if (!strcmp(optarg, "raw"))
        b.o.mode = MODE_RAW;
      else if (!strcmp(optarg, "consume"))
        b.o.mode = MODE_CONSUME;
      else if (!strcmp(optarg, "eos"))
        b.o.mode = MODE_EOS;
      else if (!strcmp(optarg, "relay"))
        b.o.mode = MODE_RELAY;
      else if (!strcmp(optarg, "offsets"))
        b.o.mode = MODE_OFFSETS;
      else if (!strcmp(optarg, "fill"))
        b.o.mode = MODE_FILL;
      else {
        usage();
        return 2;
      }
      break;
    case 'n':
      b.o.objects = atol(optarg);
      break;
    case 'i':
      b.o.inflight = atol(optarg);
      break;
    case 'r':
      b.o.rate = atof(optarg);
      break;
    case 's':
      b.o.seconds = atof(optarg);
      break;
    case 'd':
      b.o.drain = atof(optarg);
      break;
    case 't':
      b.o.tag = optarg;
      break;
    case 'R':
      b.o.records = atol(optarg);
      break;
    case 'K':
      b.o.fill_reads = !strcmp(optarg, "reads");
      break;
    default:
      usage();
      return 2;
    }
  }
  if (!b.o.prefix || b.o.objects < 1 || b.o.inflight < 1 || b.o.seconds <= 0 || b.o.rate < 0) {
    usage();
    return 2;
  }
  if (b.o.mode == MODE_RELAY)
    return run_relay(&b);
  if (b.o.mode == MODE_OFFSETS)
    return run_offsets(&b);
  if (b.o.mode == MODE_FILL)
    return run_fill(&b);
  return b.o.mode == MODE_CONSUME ? run_consume(&b) : run_roundtrips(&b);
}
