/* Snapshot records (src/node/snapshot.h): the key and checkpoint encodings,
 * and a round trip through librdkafka's in-process mock cluster: the writer
 * turns an overlay's pending writes into changelog records, the restore
 * loads them into an empty store only when the last checkpoint allows. */
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

#include "core/util.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"
#include "mock_kafka.h"
#include "node/snapshot.h"
#include "smc/fold.h"

#define TOPIC "s.changelog"
#define NPART 2

/* ---- encoding ----------------------------------------------------------- */

static void test_key_round_trip(void **state) {
  (void)state;
  static const smc_cf_t cfs[] = {SMC_CF_OBJECTS, SMC_CF_QUEUES, SMC_CF_DECIDED, SMC_CF_MACHINES,
                                 SMC_CF_TIMERS,  SMC_CF_META,   SMC_CF_HISTORY};
  uint8_t skey[9] = {0, 0, 0, 7, 'l', 'o', 'c', 'k', '1'};
  char tags[8] = {0};
  for (size_t i = 0; i < sizeof cfs / sizeof cfs[0]; i++) {
    uint8_t out[32];
    int n = smc_snapshot_key(cfs[i], skey, sizeof skey, out, sizeof out);
    assert_int_equal(n, 10);
    assert_memory_equal(out + 1, skey, sizeof skey);
    tags[i] = (char)out[0];
    for (size_t j = 0; j < i; j++)
      assert_true(tags[j] != tags[i]); /* one tag per column family */
    assert_true(tags[i] != SMC_SNAPSHOT_TAG_CHECKPOINT);
    smc_snapshot_rec_t rec;
    assert_int_equal(smc_snapshot_parse_key(out, (size_t)n, &rec), 0);
    assert_false(rec.checkpoint);
    assert_int_equal(rec.partition, 7);
    assert_int_equal(rec.cf, cfs[i]);
    assert_int_equal(rec.klen, sizeof skey);
    assert_memory_equal(rec.key, skey, sizeof skey);
  }
}

static void test_key_refused(void **state) {
  (void)state;
  uint8_t out[8], skey[6] = {0, 0, 0, 1, 'a', 'b'};
  assert_int_equal(smc_snapshot_key(SMC_CF_COUNT, skey, 6, out, sizeof out), SMC_EINVALID_ARGUMENT);
  assert_int_equal(smc_snapshot_key(SMC_CF_OBJECTS, skey, 3, out, sizeof out),
                   SMC_EINVALID_ARGUMENT); /* no partition prefix */
  assert_int_equal(smc_snapshot_key(SMC_CF_OBJECTS, skey, 6, out, 6), SMC_EINVALID_ARGUMENT);
  smc_snapshot_rec_t rec;
  assert_int_equal(smc_snapshot_parse_key("o\0\0\0", 4, &rec), SMC_EINVALID_ARGUMENT);
  assert_int_equal(smc_snapshot_parse_key("z\0\0\0\1x", 6, &rec), SMC_EINVALID_ARGUMENT);
  assert_int_equal(smc_snapshot_parse_key(NULL, 0, &rec), SMC_EINVALID_ARGUMENT);
  /* a checkpoint key is exactly tag + partition */
  assert_int_equal(smc_snapshot_parse_key("c\0\0\0\1x", 6, &rec), SMC_EINVALID_ARGUMENT);
}

static void test_checkpoint_round_trip(void **state) {
  (void)state;
  uint8_t k[5];
  smc_snapshot_checkpoint_key(11, k);
  smc_snapshot_rec_t rec;
  assert_int_equal(smc_snapshot_parse_key(k, 5, &rec), 0);
  assert_true(rec.checkpoint);
  assert_int_equal(rec.partition, 11);
  for (int complete = 0; complete <= 1; complete++) {
    smc_checkpoint_t cp = {11, 9007199254740993LL, complete}, back = {0};
    char v[192];
    int n = smc_snapshot_checkpoint_encode(&cp, v, sizeof v);
    assert_true(n > 0);
    assert_int_equal(smc_snapshot_checkpoint_decode(v, (size_t)n, &back), 0);
    assert_int_equal(back.partition, 11);
    assert_int_equal(back.offset, 9007199254740993LL);
    assert_int_equal(back.complete, complete);
  }
  smc_checkpoint_t cp = {1, 5, 1};
  char small[16];
  assert_int_equal(smc_snapshot_checkpoint_encode(&cp, small, sizeof small), SMC_EINVALID_ARGUMENT);
}

static void test_checkpoint_refused(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "[]",
      "{\"type\":\"tick\",\"format\":1,\"partition\":0,\"offset\":1,\"complete\":true}",
      "{\"type\":\"checkpoint\",\"format\":2,\"partition\":0,\"offset\":1,\"complete\":true}",
      "{\"type\":\"checkpoint\",\"format\":1,\"partition\":-1,\"offset\":1,\"complete\":true}",
      "{\"type\":\"checkpoint\",\"format\":1,\"partition\":0,\"offset\":-1,\"complete\":true}",
      "{\"type\":\"checkpoint\",\"format\":1,\"partition\":0,\"offset\":\"1\",\"complete\":true}",
      "{\"type\":\"checkpoint\",\"format\":1,\"partition\":0,\"offset\":1}",
      "{\"type\":\"checkpoint\",\"format\":1,\"partition\":0,\"offset\":1,\"complete\":1}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    smc_checkpoint_t cp;
    assert_int_equal(smc_snapshot_checkpoint_decode(bad[i], strlen(bad[i]), &cp),
                     SMC_EINVALID_ARGUMENT);
  }
  smc_checkpoint_t cp;
  assert_int_equal(smc_snapshot_checkpoint_decode(NULL, 0, &cp), SMC_EINVALID_ARGUMENT);
}

/* ---- round trip on the mock cluster -------------------------------------- */

typedef struct fixture {
  test_mock_t mock;
  const char *bootstrap;
  rd_kafka_t *producer;
  char dir[64];
  smc_store_t *store;
} fixture_t;

static const char *const props[] = {"fetch.wait.max.ms", "5", NULL};

static int teardown(void **state) {
  fixture_t *f = *state;
  smc_store_close(f->store);
  if (f->dir[0]) {
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", f->dir);
  }
  if (f->producer)
    rd_kafka_destroy(f->producer);
  test_mock_stop(&f->mock);
  free(f);
  return 0;
}

static int setup(void **state) {
  char errstr[256];
  fixture_t *f = calloc(1, sizeof *f);
  *state = f;
  if (!f)
    return -1;
  static const char *const topics[] = {TOPIC, NULL};
  if (test_mock_start(&f->mock, topics, NPART) < 0)
    return teardown(state), -1;
  f->bootstrap = f->mock.bootstrap;
  rd_kafka_conf_t *conf = smc_kconf_new(f->bootstrap, NULL, errstr, sizeof errstr);
  if (!(f->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr)))
    return teardown(state), -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/smc-test-snapshot-XXXXXX");
  if (!mkdtemp(f->dir) || smc_store_open(f->dir, NULL, &f->store, NULL) < 0)
    return teardown(state), -1;
  return 0;
}

static void key_of(int32_t p, const char *name, uint8_t *k, size_t *kl) {
  smc_be32(k, (uint32_t)p);
  memcpy(k + 4, name, strlen(name));
  *kl = 4 + strlen(name);
}

/* Put the meta applied offset of p (the fold's 48-byte record, offset first). */
static void put_applied(smc_kv_t *kv, int32_t p, int64_t applied) {
  uint8_t k[5], v[48] = {0};
  smc_be32(k, (uint32_t)p);
  k[4] = 'a';
  smc_be64(v, (uint64_t)applied);
  assert_int_equal(smc_kv_put(kv, SMC_CF_META, k, 5, v, sizeof v), 0);
}

/* The writer's produce: a plain producer (the committer's is transactional). */
static int plain_produce(void *opaque, const char *topic, int32_t p, const void *key, size_t klen,
                         const void *val, size_t vlen) {
  const char *why = NULL;
  return smc_kafka_produce(opaque, topic, p, key, klen, val, vlen, &why);
}

/* Write one "transaction" of pending writes through the writer. */
static void write_batch(fixture_t *f, smc_snapshot_t *s, smc_overlay_t *ov, int64_t next0) {
  int64_t next[NPART] = {next0, -1};
  assert_int_equal(smc_snapshot_write(s, plain_produce, f->producer, ov, next), 0);
  assert_int_equal(rd_kafka_flush(f->producer, 10000), 0);
  smc_overlay_clear(ov);
}

static int get(fixture_t *f, smc_cf_t cf, int32_t p, const char *name, char *out, size_t cap) {
  uint8_t k[64];
  size_t kl;
  key_of(p, name, k, &kl);
  smc_kv_t kv = smc_store_kv(f->store);
  void *v = NULL;
  size_t vl = 0;
  int rc = smc_kv_get(&kv, cf, k, kl, &v, &vl);
  if (rc == 0) {
    snprintf(out, cap, "%.*s", (int)vl, (char *)v);
    free(v);
  }
  return rc;
}

static int restore(fixture_t *f, int32_t p, int64_t max, smc_snapshot_restore_t *r) {
  *r = (smc_snapshot_restore_t){.bootstrap = f->bootstrap,
                                .props = props,
                                .topic = TOPIC,
                                .store = f->store,
                                .idle_timeout_ms = 10000};
  smc_error_t err;
  smc_error_clear(&err);
  int rc = smc_snapshot_restore(r, p, max, &err);
  if (rc < 0)
    fprintf(stderr, "restore: %s\n", err.message);
  return rc;
}

static void test_write_then_restore(void **state) {
  fixture_t *f = *state;
  smc_snapshot_t *s = smc_snapshot_new(TOPIC, NPART);
  assert_non_null(s);
  smc_kv_t base = smc_store_kv(f->store); /* the overlay's base: never read here */
  smc_overlay_t *ov = smc_overlay_new(&base);
  smc_kv_t kv = smc_overlay_kv(ov);
  uint8_t k[64];
  size_t kl;

  /* batch 1 (complete): objects a and b, a history entry (not fold state:
   * not written), a history floor (node-local: not written), applied 10 */
  smc_snapshot_set_complete(s, 0, 1);
  key_of(0, "a", k, &kl);
  assert_int_equal(smc_kv_put(&kv, SMC_CF_OBJECTS, k, kl, "A1", 2), 0);
  key_of(0, "b", k, &kl);
  assert_int_equal(smc_kv_put(&kv, SMC_CF_OBJECTS, k, kl, "B1", 2), 0);
  key_of(0, "h1", k, &kl);
  assert_int_equal(smc_kv_put(&kv, SMC_CF_HISTORY, k, kl, "H", 1), 0);
  assert_int_equal(smc_fold_history_floor_put(&kv, 0, 3), 0);
  put_applied(&kv, 0, 10);
  write_batch(f, s, ov, 10);
  /* batch 2: a changes, b is deleted (a tombstone), applied 25 */
  key_of(0, "a", k, &kl);
  assert_int_equal(smc_kv_put(&kv, SMC_CF_OBJECTS, k, kl, "A2", 2), 0);
  key_of(0, "b", k, &kl);
  assert_int_equal(smc_kv_del(&kv, SMC_CF_OBJECTS, k, kl), 0);
  put_applied(&kv, 0, 25);
  write_batch(f, s, ov, 25);

  char v[32];
  smc_snapshot_restore_t r;
  /* the group committed only up to 20: the snapshot is ahead, unusable */
  assert_int_equal(restore(f, 0, 20, &r), 0);
  assert_int_equal(r.checkpoint.offset, 25);
  assert_int_equal(get(f, SMC_CF_OBJECTS, 0, "a", v, sizeof v), SMC_ENOT_FOUND);

  /* at the committed offset: restored, and marked complete */
  assert_int_equal(restore(f, 0, 25, &r), 1);
  assert_int_equal(r.checkpoint.offset, 25);
  assert_true(r.checkpoint.complete);
  assert_int_equal(get(f, SMC_CF_OBJECTS, 0, "a", v, sizeof v), 0);
  assert_string_equal(v, "A2");
  assert_int_equal(get(f, SMC_CF_OBJECTS, 0, "b", v, sizeof v), SMC_ENOT_FOUND);
  /* no history: the restored partition's history starts at the checkpoint */
  assert_int_equal(get(f, SMC_CF_HISTORY, 0, "h1", v, sizeof v), SMC_ENOT_FOUND);
  int64_t floor = -1;
  assert_int_equal(smc_fold_history_floor(&base, 0, &floor), 0);
  assert_int_equal(floor, 25);
  assert_true(smc_snapshot_marked(f->store, 0));
  assert_int_equal(r.keys, 4);    /* a, b, a, b (the applied offset is held back) */
  assert_int_equal(r.records, 8); /* and two applied offsets, two checkpoints */

  /* below a later committed offset: restored (the log above is folded), not
   * marked: this node's changelog lacks what it folds silently */
  assert_int_equal(restore(f, 0, 40, &r), 1);
  assert_false(smc_snapshot_marked(f->store, 0));

  /* partition 1 holds nothing: not usable, left empty */
  assert_int_equal(restore(f, 1, 40, &r), 0);
  assert_int_equal(r.checkpoint.offset, -1);

  /* batch 3 written by a node that did not have the whole state: the last
   * checkpoint is incomplete, so the changelog is unusable */
  smc_snapshot_set_complete(s, 0, 0);
  key_of(0, "c", k, &kl);
  assert_int_equal(smc_kv_put(&kv, SMC_CF_OBJECTS, k, kl, "C1", 2), 0);
  put_applied(&kv, 0, 30);
  write_batch(f, s, ov, 30);
  assert_int_equal(restore(f, 0, 30, &r), 0);
  assert_false(r.checkpoint.complete);
  assert_int_equal(get(f, SMC_CF_OBJECTS, 0, "a", v, sizeof v), SMC_ENOT_FOUND);

  smc_overlay_destroy(ov);
  smc_snapshot_destroy(s);
}

/* A checkpoint that disagrees with the restored applied offset is refused
 * (a partial write, or records of another format). */
static void test_restore_refuses_mismatch(void **state) {
  fixture_t *f = *state;
  smc_snapshot_t *s = smc_snapshot_new(TOPIC, NPART);
  smc_kv_t base = smc_store_kv(f->store);
  smc_overlay_t *ov = smc_overlay_new(&base);
  smc_kv_t kv = smc_overlay_kv(ov);
  smc_snapshot_set_complete(s, 1, 1);
  uint8_t k[64];
  size_t kl;
  key_of(1, "x", k, &kl);
  assert_int_equal(smc_kv_put(&kv, SMC_CF_OBJECTS, k, kl, "X", 1), 0);
  put_applied(&kv, 1, 7);
  int64_t next[NPART] = {-1, 8}; /* checkpoint 8, applied 7 */
  assert_int_equal(smc_snapshot_write(s, plain_produce, f->producer, ov, next), 0);
  assert_int_equal(rd_kafka_flush(f->producer, 10000), 0);
  smc_snapshot_restore_t r;
  assert_int_equal(restore(f, 1, 8, &r), 0);
  char v[8];
  assert_int_equal(get(f, SMC_CF_OBJECTS, 1, "x", v, sizeof v), SMC_ENOT_FOUND);
  smc_overlay_destroy(ov);
  smc_snapshot_destroy(s);
}

/* A changelog written before history left it carries 'h' records: a
 * restore skips them, so a restored partition's history always starts at
 * its checkpoint whichever version wrote the changelog. */
static void test_restore_skips_old_history(void **state) {
  fixture_t *f = *state;
  uint8_t sk[64], ck[80];
  size_t kl;
  key_of(0, "obj", sk, &kl);
  int n = smc_snapshot_key(SMC_CF_HISTORY, sk, kl, ck, sizeof ck);
  assert_true(n > 0 && ck[0] == 'h');
  const char *why = NULL;
  assert_int_equal(smc_kafka_produce(f->producer, TOPIC, 0, ck, (size_t)n, "H", 1, &why), 0);
  smc_snapshot_t *s = smc_snapshot_new(TOPIC, NPART);
  smc_kv_t base = smc_store_kv(f->store);
  smc_overlay_t *ov = smc_overlay_new(&base);
  smc_kv_t kv = smc_overlay_kv(ov);
  smc_snapshot_set_complete(s, 0, 1);
  key_of(0, "obj", sk, &kl);
  assert_int_equal(smc_kv_put(&kv, SMC_CF_OBJECTS, sk, kl, "O", 1), 0);
  put_applied(&kv, 0, 4);
  write_batch(f, s, ov, 4);
  smc_snapshot_restore_t r;
  assert_int_equal(restore(f, 0, 4, &r), 1);
  assert_int_equal(r.records, 4); /* h, obj, applied, checkpoint */
  assert_int_equal(r.keys, 1);    /* obj only */
  char v[8];
  assert_int_equal(get(f, SMC_CF_OBJECTS, 0, "obj", v, sizeof v), 0);
  assert_int_equal(get(f, SMC_CF_HISTORY, 0, "obj", v, sizeof v), SMC_ENOT_FOUND);
  smc_overlay_destroy(ov);
  smc_snapshot_destroy(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_round_trip),
      cmocka_unit_test(test_key_refused),
      cmocka_unit_test(test_checkpoint_round_trip),
      cmocka_unit_test(test_checkpoint_refused),
      cmocka_unit_test_setup_teardown(test_write_then_restore, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_refuses_mismatch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_skips_old_history, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
