/* smc_replay_run on librdkafka's in-process mock cluster: one fold thread
 * and several give the same outputs, partition by partition, and fold every
 * record once; header copies longer than the record's inline buffer reach
 * the fold intact; thread settings that cannot work are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka/kconf.h"
#include "node/replay.h"

#define NPART 6
#define NREC 600
#define TOPIC "r.proposals"

typedef struct mock {
  rd_kafka_t *rk; /* owns the mock cluster */
  rd_kafka_mock_cluster_t *mc;
  const char *bootstrap;
  char long_reply[400]; /* longer than smc_msgrec_t's inline buffer */
} mock_t;

/* The mock broker holds an empty fetch for fetch.wait.max.ms. */
static const char *const props[] = {"fetch.wait.max.ms", "5", NULL};

static int teardown(void **state) {
  mock_t *m = *state;
  if (m->mc)
    rd_kafka_mock_cluster_destroy(m->mc);
  if (m->rk)
    rd_kafka_destroy(m->rk);
  free(m);
  return 0;
}

/* NREC proposals over 50 objects (keyed, murmur2 as the clients do); every
 * 7th carries a reply-to header longer than the inline buffer. */
static int produce_all(mock_t *m) {
  char errstr[256];
  rd_kafka_conf_t *conf = smc_kconf_new(m->bootstrap, NULL, errstr, sizeof errstr);
  if (!conf || rd_kafka_conf_set(conf, "partitioner", "murmur2_random", errstr, sizeof errstr))
    return -1;
  rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!p)
    return -1;
  int rc = 0;
  for (int i = 0; i < NREC && rc == 0; i++) {
    char key[16], val[256], corr[16];
    snprintf(key, sizeof key, "o%d", i % 50);
    snprintf(val, sizeof val,
             "{\"type\":\"proposal\",\"id\":\"p%d\",\"machine\":\"nope\",\"object\":\"%s\","
             "\"transition\":\"create\"}",
             i, key);
    snprintf(corr, sizeof corr, "c%d", i);
    const char *reply = i % 7 == 0 ? m->long_reply : "r.t";
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE(val, strlen(val)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADER("smc-correlation", corr, -1),
        RD_KAFKA_V_HEADER("smc-reply-to", reply, -1), RD_KAFKA_V_END);
    if (e)
      rc = -1;
  }
  if (rd_kafka_flush(p, 30000))
    rc = -1;
  rd_kafka_destroy(p);
  return rc;
}

static int setup(void **state) {
  char errstr[256];
  mock_t *m = calloc(1, sizeof(*m));
  *state = m;
  if (!m)
    return -1;
  memset(m->long_reply, 'x', sizeof m->long_reply - 1);
  memcpy(m->long_reply, "long.", 5);
  smc_kconf_set_log_level(2);
  rd_kafka_conf_t *conf = smc_kconf_new("", NULL, errstr, sizeof(errstr));
  m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!m->rk || !(m->mc = rd_kafka_mock_cluster_new(m->rk, 1)))
    return teardown(state), -1;
  m->bootstrap = rd_kafka_mock_cluster_bootstraps(m->mc);
  if (rd_kafka_mock_topic_create(m->mc, TOPIC, NPART, 1) || produce_all(m) < 0)
    return teardown(state), -1;
  return 0;
}

/* Outputs per partition, in emit order, as "offset reply_to json" lines. */
typedef struct outs {
  char *text[NPART];
  size_t len[NPART];
  int long_replies; /* outputs whose reply_to is m->long_reply */
  const char *long_reply;
} outs_t;

static int collect(void *opaque, const smc_output_t *o) {
  outs_t *c = opaque;
  assert_true(o->partition >= 0 && o->partition < NPART);
  char head[64];
  int hl = snprintf(head, sizeof head, "%lld %zu ", (long long)o->offset,
                    o->reply_to ? strlen(o->reply_to) : 0);
  size_t add = (size_t)hl + o->json_len + 1;
  char *t = realloc(c->text[o->partition], c->len[o->partition] + add + 1);
  assert_non_null(t);
  memcpy(t + c->len[o->partition], head, (size_t)hl);
  memcpy(t + c->len[o->partition] + hl, o->json, o->json_len);
  t[c->len[o->partition] + add - 1] = '\n';
  t[c->len[o->partition] + add] = '\0';
  c->text[o->partition] = t;
  c->len[o->partition] += add;
  /* only this partition's thread writes its list; the counter is shared */
  if (o->reply_to && !strcmp(o->reply_to, c->long_reply))
    __atomic_fetch_add(&c->long_replies, 1, __ATOMIC_RELAXED);
  return 0;
}

static void outs_close(outs_t *c) {
  for (int p = 0; p < NPART; p++)
    free(c->text[p]);
}

/* Replay every partition with threads fold threads into private state. */
static void run(mock_t *m, int threads, outs_t *out, smc_replay_part_t *parts) {
  smc_fold_config_t fc;
  smc_fold_config_default(&fc);
  fc.partitions = NPART;
  smc_fold_t *fold = NULL;
  assert_int_equal(smc_fold_new(&fc, &fold), 0);
  for (int p = 0; p < NPART; p++)
    parts[p] = (smc_replay_part_t){.partition = p, .from = 0, .to = SMC_REPLAY_END};
  memset(out, 0, sizeof *out);
  out->long_reply = m->long_reply;
  smc_replay_t r = {.bootstrap = m->bootstrap,
                    .props = props,
                    .topic = TOPIC,
                    .fold = fold,
                    .emit = collect,
                    .opaque = out,
                    .idle_timeout_ms = 20000,
                    .threads = threads,
                    .fold_config = &fc};
  smc_error_t err;
  smc_error_clear(&err);
  int rc = smc_replay_run(&r, parts, NPART, &err);
  if (rc)
    fprintf(stderr, "replay: %s\n", err.message);
  assert_int_equal(rc, 0);
  smc_fold_destroy(fold);
}

static void threads_fold_the_same(void **state) {
  mock_t *m = *state;
  outs_t one, many;
  smc_replay_part_t p1[NPART], pn[NPART];
  run(m, 1, &one, p1);
  int64_t total = 0;
  for (int p = 0; p < NPART; p++) {
    assert_non_null(one.text[p]); /* murmur2 spreads 50 objects over all 6 */
    total += p1[p].records;
  }
  assert_int_equal(total, NREC);
  /* one output (an unknown-machine rejection) per record, and the long
   * reply-to header reached the fold whole */
  assert_int_equal(one.long_replies, (NREC + 6) / 7);
  for (int threads = 2; threads <= 8; threads += 3) {
    run(m, threads, &many, pn);
    for (int p = 0; p < NPART; p++) {
      assert_int_equal(pn[p].records, p1[p].records);
      assert_int_equal(pn[p].to, p1[p].to);
      assert_string_equal(many.text[p], one.text[p]);
    }
    assert_int_equal(many.long_replies, one.long_replies);
    outs_close(&many);
  }
  outs_close(&one);
}

static void refuses_unworkable_threads(void **state) {
  mock_t *m = *state;
  smc_fold_config_t fc;
  smc_fold_config_default(&fc);
  fc.partitions = NPART;
  smc_fold_t *fold = NULL;
  assert_int_equal(smc_fold_new(&fc, &fold), 0);
  smc_overlay_t *ov = smc_overlay_new(NULL);
  smc_kv_t kv = smc_overlay_kv(ov);
  smc_replay_part_t parts[NPART], dup[2];
  for (int p = 0; p < NPART; p++)
    parts[p] = (smc_replay_part_t){.partition = p, .from = 0, .to = SMC_REPLAY_END};
  smc_error_t err;
  /* several threads cannot share one kv */
  smc_replay_t r = {.bootstrap = m->bootstrap,
                    .props = props,
                    .topic = TOPIC,
                    .fold = fold,
                    .kv = &kv,
                    .threads = 2,
                    .fold_config = &fc};
  smc_error_clear(&err);
  assert_int_equal(smc_replay_run(&r, parts, NPART, &err), SMC_EINVALID_ARGUMENT);
  /* several threads need a config for their folds */
  r.kv = NULL;
  r.fold_config = NULL;
  smc_error_clear(&err);
  assert_int_equal(smc_replay_run(&r, parts, NPART, &err), SMC_EINVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "fold_config"));
  /* a partition twice */
  dup[0] = dup[1] = parts[0];
  r.threads = 1;
  smc_error_clear(&err);
  assert_int_equal(smc_replay_run(&r, dup, 2, &err), SMC_EINVALID_ARGUMENT);
  /* one thread on the kv still works, and folds into it */
  r.kv = &kv;
  smc_error_clear(&err);
  assert_int_equal(smc_replay_run(&r, parts, NPART, &err), 0);
  int64_t applied = 0;
  assert_int_equal(smc_fold_applied(fold, &kv, 0, &applied), 0);
  assert_int_equal(applied, parts[0].to);
  assert_true(applied > 0);
  smc_overlay_destroy(ov);
  smc_fold_destroy(fold);
}

typedef struct opener {
  char dir[64];
  smc_store_t *store;
  int calls, fail;
} opener_t;

static int open_cb(void *opaque, smc_store_t **out, smc_error_t *err) {
  opener_t *o = opaque;
  o->calls++;
  if (o->fail)
    return smc_error_set(err, SMC_ESTORE, NULL, "no store today");
  int rc = smc_store_open(o->dir, NULL, &o->store, err);
  *out = o->store;
  return rc;
}

/* open_store: called once, after the assignment; the threads fold into the
 * store it gives; its failure ends the replay with its code. */
static void store_opened_by_the_replay(void **state) {
  mock_t *m = *state;
  opener_t o = {.calls = 0};
  snprintf(o.dir, sizeof o.dir, "/tmp/smc-test-replay-XXXXXX");
  assert_non_null(mkdtemp(o.dir));
  smc_fold_config_t fc;
  smc_fold_config_default(&fc);
  fc.partitions = NPART;
  smc_fold_t *fold = NULL;
  assert_int_equal(smc_fold_new(&fc, &fold), 0);
  smc_replay_part_t parts[NPART];
  for (int p = 0; p < NPART; p++)
    parts[p] = (smc_replay_part_t){.partition = p, .from = 0, .to = SMC_REPLAY_END};
  smc_replay_t r = {.bootstrap = m->bootstrap,
                    .props = props,
                    .topic = TOPIC,
                    .fold = fold,
                    .opaque = &o,
                    .threads = 2,
                    .fold_config = &fc,
                    .open_store = open_cb};
  smc_error_t err;
  smc_error_clear(&err);
  o.fail = 1;
  assert_int_equal(smc_replay_run(&r, parts, NPART, &err), SMC_ESTORE);
  assert_string_equal(err.message, "no store today");
  assert_int_equal(o.calls, 1);
  o.fail = 0;
  o.calls = 0;
  smc_error_clear(&err);
  assert_int_equal(smc_replay_run(&r, parts, NPART, &err), 0);
  assert_int_equal(o.calls, 1);
  assert_non_null(o.store);
  smc_kv_t kv = smc_store_kv(o.store);
  int64_t records = 0;
  for (int p = 0; p < NPART; p++) {
    int64_t applied = -1;
    assert_int_equal(smc_fold_applied(fold, &kv, p, &applied), 0);
    assert_int_equal(applied, parts[p].to);
    records += parts[p].records;
  }
  assert_int_equal(records, NREC);
  /* open_store beside a store is refused */
  r.store = o.store;
  smc_error_clear(&err);
  assert_int_equal(smc_replay_run(&r, parts, NPART, &err), SMC_EINVALID_ARGUMENT);
  smc_store_close(o.store);
  smc_fold_destroy(fold);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", o.dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(threads_fold_the_same),
      cmocka_unit_test(refuses_unworkable_threads),
      cmocka_unit_test(store_opened_by_the_replay),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
