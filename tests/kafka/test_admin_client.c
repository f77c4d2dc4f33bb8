/*
 * The Kafka plumbing and the client library against a real broker
 * (SMC_BOOTSTRAP; skipped with exit 77 when unset). Every run works under its
 * own topic prefix "t<pid>-<time>.".
 *
 * No worker runs here: the timeout cases prove a proposal without a
 * committer ends in SMC_EUNAVAILABLE with its id, and a small fake committer
 * thread (answers objects named "fake-*") proves the waiting side: propose,
 * read and watch get exactly their own answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/codec.h"
#include "core/util.h"
#include "kafka/admin.h"
#include "kafka/kconf.h"
#include "node/node.h"
#include "smc/client.h"

#define NPART 3

static const char *bootstrap;
static char prefix[64];

static char *topic(const char *name) { return smc_topic(prefix, name); }

static const char *lock_yaml = "name: tlock\n"
                               "states:\n"
                               "  free: {}\n"
                               "  held: {}\n"
                               "transitions:\n"
                               "  create: {from: null, to: free}\n"
                               "  acquire: {from: free, to: held}\n"
                               "  release: {from: held, to: free}\n";

static const char *lock_yaml_other = "name: tlock\n"
                                     "states:\n"
                                     "  free: {}\n"
                                     "transitions:\n"
                                     "  create: {from: null, to: free}\n";

/* Every record value of topic/partition from its start to its end
 * (read_committed), as a JSON array of parsed values. */
static json_t *read_partition(const char *t, int32_t p) {
  char errstr[256];
  const char *props[] = {
      "isolation.level", "read_committed", "enable.partition.eof", "true", "enable.auto.commit",
      "false",           "group.id",       "smc-test-reader",      NULL};
  rd_kafka_conf_t *conf = smc_kconf_new(bootstrap, props, errstr, sizeof(errstr));
  assert_non_null(conf);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  assert_non_null(rk);
  json_t *out = json_array();
  int64_t lo = 0, hi = 0;
  assert_int_equal(rd_kafka_query_watermark_offsets(rk, t, p, &lo, &hi, 10000), 0);
  if (hi > lo) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, t, p)->offset = lo;
    assert_int_equal(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    for (int i = 0; i < 200; i++) {
      rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
      if (!m)
        continue;
      int eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
      if (!m->err && m->payload)
        json_array_append_new(out, json_loadb(m->payload, m->len, 0, NULL));
      rd_kafka_message_destroy(m);
      if (eof)
        break;
    }
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return out;
}

static smc_client_t *new_client(void) {
  smc_client_config_t cfg = {.bootstrap = bootstrap, .prefix = prefix, .client_id = "smc-test"};
  smc_client_t *c = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  if (smc_client_new(&cfg, &c, &err))
    fail_msg("smc_client_new: %s", err.message);
  return c;
}

/* ---------- topics ---------- */

static void test_topics_create_idempotent(void **state) {
  (void)state;
  smc_topic_defs_t defs;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_topic_defs_load(SMC_SOURCE_DIR "/topics/topics.json", &defs, &err), 0);
  smc_topics_options_t o;
  smc_topics_options_default(&o);
  o.bootstrap = bootstrap;
  o.prefix = prefix;
  o.partitions = NPART;
  smc_topic_result_t res[8];
  int rc = smc_topics_create(&o, &defs, res, &err);
  if (rc)
    fail_msg("create: %s", err.message);
  for (size_t i = 0; i < defs.count; i++) {
    assert_int_equal(res[i].status, SMC_TOPIC_CREATED);
    int one = !strcmp(defs.items[i].name, "machines") || !strcmp(defs.items[i].name, "nodes");
    assert_int_equal(res[i].partitions, one ? 1 : NPART);
  }
  /* again: nothing changes, everything is reported as existing */
  smc_error_clear(&err);
  assert_int_equal(smc_topics_create(&o, &defs, res, &err), 0);
  for (size_t i = 0; i < defs.count; i++) {
    assert_int_equal(res[i].status, SMC_TOPIC_EXISTED);
    assert_int_equal(res[i].have_partitions, res[i].partitions);
  }
  /* another N: the per-object topics mismatch, the catalog and the node
   * table (fixed 1) are fine */
  o.partitions = NPART + 1;
  smc_error_clear(&err);
  assert_int_equal(smc_topics_create(&o, &defs, res, &err), SMC_EKAFKA);
  for (size_t i = 0; i < defs.count; i++) {
    if (!strcmp(defs.items[i].name, "machines") || !strcmp(defs.items[i].name, "nodes")) {
      assert_int_equal(res[i].status, SMC_TOPIC_EXISTED);
    } else {
      assert_int_equal(res[i].status, SMC_TOPIC_MISMATCH);
      assert_int_equal(res[i].have_partitions, NPART);
      assert_non_null(strstr(res[i].message, "partitions"));
    }
  }
  smc_topic_defs_close(&defs);
  /* the metadata helper agrees */
  char errstr[256];
  rd_kafka_conf_t *conf = smc_kconf_new(bootstrap, NULL, errstr, sizeof(errstr));
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  char *t = topic("proposals");
  assert_int_equal(smc_kafka_partitions(rk, t, 10000), NPART);
  free(t);
  t = topic("nonexistent");
  assert_int_equal(smc_kafka_partitions(rk, t, 10000), SMC_ENOT_FOUND);
  free(t);
  rd_kafka_destroy(rk);
}

/* ---------- registration and catalog ---------- */

/* A registration is answered by the fold of every partition: a committer
 * runs in this process meanwhile. */
static smc_node_t *start_committer(char *dir) {
  assert_non_null(mkdtemp(dir));
  smc_node_config_t nc;
  smc_node_config_default(&nc);
  nc.bootstrap = bootstrap;
  nc.prefix = prefix;
  nc.node_id = "admin-test";
  nc.data_dir = dir;
  nc.session_timeout_ms = 6000;
  smc_node_t *n = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  if (smc_node_start(&nc, &n, &err))
    fail_msg("node: %s", err.message);
  int32_t parts[NPART];
  for (int i = 0; i < 600 && smc_node_partitions(n, parts, NPART) < NPART; i++)
    usleep(100 * 1000);
  assert_int_equal(smc_node_partitions(n, parts, NPART), NPART);
  return n;
}

static void test_register_and_catalog(void **state) {
  (void)state;
  char dir[] = "/tmp/smc-admin-test-XXXXXX";
  smc_node_t *node = start_committer(dir);
  smc_client_t *c = new_client();
  smc_error_t err;
  smc_error_clear(&err);
  json_t *cat = NULL;
  if (smc_client_machines(c, 10000, &cat, &err))
    fail_msg("catalog: %s", err.message);
  assert_int_equal(json_object_size(cat), 0);
  json_decref(cat);

  int rc = smc_client_register(c, lock_yaml, strlen(lock_yaml), 30000, &err);
  if (rc)
    fail_msg("register: %s", err.message);
  assert_int_equal(smc_client_machines(c, 10000, &cat, &err), 0);
  json_t *ev = json_object_get(cat, "tlock");
  assert_non_null(ev);
  assert_string_equal(json_string_value(json_object_get(ev, "type")), "machine");
  assert_string_equal(json_string_value(json_object_get(ev, "definition")), lock_yaml);
  char hash[65];
  snprintf(hash, sizeof hash, "%s", json_string_value(json_object_get(ev, "hash")));
  assert_int_equal(strlen(hash), 64);

  /* the registration is in every partition of proposals, committed */
  char *tp = topic("proposals");
  for (int32_t p = 0; p < NPART; p++) {
    json_t *recs = read_partition(tp, p);
    assert_int_equal(json_array_size(recs), 1);
    json_t *r = json_array_get(recs, 0);
    assert_string_equal(json_string_value(json_object_get(r, "type")), "machine");
    assert_string_equal(json_string_value(json_object_get(r, "name")), "tlock");
    assert_string_equal(json_string_value(json_object_get(r, "hash")), hash);
    json_decref(recs);
  }

  /* the same definition again: accepted (written again, so that a retry
   * learns every partition's outcome), the catalog unchanged */
  smc_error_clear(&err);
  assert_int_equal(smc_client_register(c, lock_yaml, strlen(lock_yaml), 30000, &err), 0);
  json_decref(cat);
  assert_int_equal(smc_client_machines(c, 10000, &cat, &err), 0);
  assert_int_equal(json_object_size(cat), 1);
  assert_string_equal(json_string_value(json_object_get(json_object_get(cat, "tlock"), "hash")),
                      hash);

  /* another definition under the same name */
  smc_error_clear(&err);
  assert_int_equal(smc_client_register(c, lock_yaml_other, strlen(lock_yaml_other), 30000, &err),
                   SMC_EMACHINE_EXISTS);
  /* a definition that does not compile: nothing is written */
  const char *bad = "name: broken\nstates: {a: {}}\ntransitions:\n  go: {from: a, to: nowhere}\n";
  smc_error_clear(&err);
  assert_int_equal(smc_client_register(c, bad, strlen(bad), 30000, &err), SMC_EINVALID_MACHINE);
  assert_true(strlen(err.message) > 0);
  json_t *recs = read_partition(tp, 1);
  size_t k;
  json_t *r;
  json_array_foreach(recs, k, r) assert_string_equal(json_string_value(json_object_get(r, "name")),
                                                     "tlock"); /* nothing of "broken" */
  json_decref(recs);
  free(tp);
  json_decref(cat);
  smc_client_destroy(c);
  smc_node_stop(node);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* ---------- no committer: outcome unknown ---------- */

static void test_propose_timeout_unknown(void **state) {
  (void)state;
  smc_client_t *c = new_client();
  json_t *data = json_pack("{s:s}", "owner", "svc-a");
  smc_propose_req_t req = {.machine = "tlock",
                           .object = "nobody-1",
                           .transition = "create",
                           .data = data,
                           .expect_version = 0};
  json_t *conf = NULL;
  char id[65];
  smc_error_t err;
  smc_error_clear(&err);
  int rc = smc_client_propose(c, &req, 1500, &conf, id, &err);
  assert_int_equal(rc, SMC_EUNAVAILABLE);
  assert_null(conf);
  char want[65];
  assert_int_equal(smc_proposal_derive_id("nobody-1", 1, 0, "create", data, want), 0);
  assert_string_equal(id, want);
  assert_non_null(strstr(err.message, want));

  /* the proposal itself is in the log, in murmur2(object) % N, with that id */
  char *tp = topic("proposals");
  json_t *recs = read_partition(tp, smc_partition_for("nobody-1", 8, NPART));
  int found = 0;
  size_t i;
  json_t *r;
  json_array_foreach(recs, i, r) {
    if (!strcmp(json_string_value(json_object_get(r, "type")), "proposal")) {
      assert_string_equal(json_string_value(json_object_get(r, "id")), want);
      assert_string_equal(json_string_value(json_object_get(r, "object")), "nobody-1");
      assert_int_equal(json_integer_value(json_object_get(r, "expect_version")), 0);
      found++;
    }
  }
  assert_int_equal(found, 1);
  json_decref(recs);

  /* --wait 0: back once the proposal is in the log; a given id is kept */
  req.id = "my-id-1";
  smc_error_clear(&err);
  assert_int_equal(smc_client_propose(c, &req, 0, &conf, id, &err), 0);
  assert_null(conf);
  assert_string_equal(id, "my-id-1");

  /* a read without a committer: unavailable too */
  json_t *reply = NULL;
  smc_error_clear(&err);
  assert_int_equal(smc_client_read(c, "nobody-1", 800, &reply, &err), SMC_EUNAVAILABLE);
  assert_null(reply);

  /* bad requests are refused before anything is written */
  smc_propose_req_t bad = {.object = NULL, .expect_version = -1};
  smc_error_clear(&err);
  assert_int_equal(smc_client_propose(c, &bad, 100, &conf, id, &err), SMC_EBAD_REQUEST);
  json_t *arr = json_array();
  smc_propose_req_t bad2 = {.object = "x", .data = arr, .expect_version = -1};
  smc_error_clear(&err);
  assert_int_equal(smc_client_propose(c, &bad2, 100, &conf, id, &err), SMC_EBAD_REQUEST);
  json_decref(arr);
  smc_error_clear(&err);
  assert_int_equal(smc_client_vote(c, "x", NULL, "v", 1, NULL, 100, &err), SMC_EBAD_REQUEST);

  free(tp);
  json_decref(data);
  smc_client_destroy(c);
}

/* ---------- a fake committer: the waiting side ---------- */

typedef struct fake {
  pthread_t thread;
  atomic_int stop;
  atomic_int ready;
  json_t *versions; /* object -> last committed version */
} fake_t;

static void fake_emit(rd_kafka_t *p, const char *tname, const char *key, json_t *ev) {
  char *t = topic(tname);
  char *s = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
  assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(t), RD_KAFKA_V_KEY(key, strlen(key)),
                                     RD_KAFKA_V_VALUE(s, strlen(s)),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                   0);
  free(s);
  free(t);
  json_decref(ev);
}

/* Answer proposals and reads of objects "fake-*": transition "bad" is
 * rejected, anything else commits with the next version. */
static void fake_answer(fake_t *f, rd_kafka_t *p, json_t *ev) {
  const char *type = json_string_value(json_object_get(ev, "type"));
  const char *obj = json_string_value(json_object_get(ev, "object"));
  if (!type || !obj || strncmp(obj, "fake-", 5))
    return;
  json_int_t v = json_integer_value(json_object_get(f->versions, obj));
  if (!strcmp(type, "read")) {
    fake_emit(p, "replies", obj,
              json_pack("{s:s,s:O,s:s,s:b,s:I}", "type", "read", "id", json_object_get(ev, "id"),
                        "object", obj, "found", v > 0, "version", v));
    return;
  }
  if (strcmp(type, "proposal"))
    return;
  const char *tr = json_string_value(json_object_get(ev, "transition"));
  int reject = tr && !strcmp(tr, "bad");
  if (!reject)
    json_object_set_new(f->versions, obj, json_integer(++v));
  fake_emit(p, "confirmations", obj,
            json_pack("{s:s,s:O,s:s,s:s,s:I}", "type", "confirmation", "proposal",
                      json_object_get(ev, "id"), "object", obj, "outcome",
                      reject ? "rejected" : "committed", "version", v));
}

static void *fake_main(void *arg) {
  fake_t *f = arg;
  char errstr[256];
  rd_kafka_conf_t *pc = smc_kconf_new(bootstrap, NULL, errstr, sizeof(errstr));
  rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof(errstr));
  const char *props[] = {"enable.auto.commit", "false", "group.id", "smc-test-fake", NULL};
  rd_kafka_conf_t *cc = smc_kconf_new(bootstrap, props, errstr, sizeof(errstr));
  rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof(errstr));
  char *tp = topic("proposals");
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(NPART);
  for (int32_t i = 0; i < NPART; i++) {
    int64_t lo, hi;
    rd_kafka_query_watermark_offsets(c, tp, i, &lo, &hi, 10000);
    rd_kafka_topic_partition_list_add(l, tp, i)->offset = hi;
  }
  rd_kafka_assign(c, l);
  rd_kafka_topic_partition_list_destroy(l);
  atomic_store(&f->ready, 1);
  while (!atomic_load(&f->stop)) {
    rd_kafka_poll(p, 0);
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 50);
    if (!m)
      continue;
    if (!m->err && m->payload) {
      json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
      if (ev)
        fake_answer(f, p, ev);
      json_decref(ev);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_flush(p, 5000);
  rd_kafka_destroy(p);
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  free(tp);
  return NULL;
}

static void fake_start(fake_t *f) {
  memset(f, 0, sizeof(*f));
  f->versions = json_object();
  assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
  while (!atomic_load(&f->ready))
    usleep(10000);
}

static void fake_stop(fake_t *f) {
  atomic_store(&f->stop, 1);
  pthread_join(f->thread, NULL);
  json_decref(f->versions);
}

typedef struct later {
  smc_client_t *c;
  const char *object;
  const char *transitions[4];
} later_t;

/* Propose the transitions in order, each waiting for its decision. */
static void *propose_later(void *arg) {
  later_t *l = arg;
  usleep(300000);
  for (int i = 0; i < 4 && l->transitions[i]; i++) {
    smc_propose_req_t req = {
        .object = l->object, .transition = l->transitions[i], .expect_version = -1, .id = NULL};
    char idbuf[32];
    snprintf(idbuf, sizeof(idbuf), "later-%d-%ld", i, (long)time(NULL));
    req.id = idbuf;
    json_t *conf = NULL;
    smc_client_propose(l->c, &req, 10000, &conf, NULL, NULL);
    json_decref(conf);
  }
  return NULL;
}

typedef struct conc {
  smc_client_t *c;
  int n;
  int rc, ok;
} conc_t;

/* Propose on object fake-c<n>; ok when the confirmation names our id and
 * object. */
static void *propose_conc(void *arg) {
  conc_t *x = arg;
  char obj[32];
  snprintf(obj, sizeof(obj), "fake-c%d", x->n);
  smc_propose_req_t req = {.object = obj, .transition = "create", .expect_version = -1};
  json_t *conf = NULL;
  char id[65];
  x->rc = smc_client_propose(x->c, &req, 15000, &conf, id, NULL);
  x->ok = conf && !strcmp(json_string_value(json_object_get(conf, "proposal")), id) &&
          !strcmp(json_string_value(json_object_get(conf, "object")), obj);
  json_decref(conf);
  return NULL;
}

typedef struct seen {
  int n;
  int64_t versions[8];
} seen_t;

static int watch_cb(void *opaque, const json_t *conf) {
  seen_t *s = opaque;
  s->versions[s->n++] = json_integer_value(json_object_get(conf, "version"));
  return s->n == 2;
}

static void test_dispatch_with_fake_committer(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f);
  smc_client_t *c = new_client();
  smc_error_t err;
  json_t *conf = NULL;
  char id[65];

  smc_propose_req_t req = {
      .machine = "tlock", .object = "fake-1", .transition = "create", .expect_version = -1};
  smc_error_clear(&err);
  int rc = smc_client_propose(c, &req, 15000, &conf, id, &err);
  if (rc)
    fail_msg("propose: %s", err.message);
  assert_string_equal(json_string_value(json_object_get(conf, "proposal")), id);
  assert_string_equal(json_string_value(json_object_get(conf, "outcome")), "committed");
  assert_int_equal(json_integer_value(json_object_get(conf, "version")), 1);
  json_decref(conf);

  /* a rejection is an answer too (rc 0, outcome rejected) */
  req.transition = "bad";
  smc_error_clear(&err);
  assert_int_equal(smc_client_propose(c, &req, 15000, &conf, id, &err), 0);
  assert_string_equal(json_string_value(json_object_get(conf, "outcome")), "rejected");
  json_decref(conf);

  /* a read gets its own reply */
  json_t *reply = NULL;
  smc_error_clear(&err);
  assert_int_equal(smc_client_read(c, "fake-1", 15000, &reply, &err), 0);
  assert_true(json_is_true(json_object_get(reply, "found")));
  assert_int_equal(json_integer_value(json_object_get(reply, "version")), 1);
  assert_int_equal(strncmp(json_string_value(json_object_get(reply, "id")), "r-", 2), 0);
  json_decref(reply);
  smc_error_clear(&err);
  assert_int_equal(smc_client_read(c, "fake-none", 15000, &reply, &err), 0);
  assert_false(json_is_true(json_object_get(reply, "found")));
  json_decref(reply);

  /* watch: committed changes above after_version only (the rejected one is
   * skipped), delivered in order, stop when the callback says so */
  later_t l = {c, "fake-w", {"create", "bad", "acquire", NULL}};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, propose_later, &l), 0);
  seen_t s = {0};
  smc_error_clear(&err);
  rc = smc_client_watch(c, "fake-w", 0, 20000, watch_cb, &s, &err);
  pthread_join(t, NULL);
  if (rc)
    fail_msg("watch: %s", err.message);
  assert_int_equal(s.n, 2);
  assert_int_equal(s.versions[0], 1);
  assert_int_equal(s.versions[1], 2);

  /* watch times out with unavailable when nothing changes */
  seen_t none = {0};
  smc_error_clear(&err);
  assert_int_equal(smc_client_watch(c, "fake-quiet", 0, 500, watch_cb, &none, &err),
                   SMC_EUNAVAILABLE);
  assert_int_equal(none.n, 0);

  /* many concurrent proposals from one client each get their own answer */
  conc_t cs[8];
  pthread_t ts[8];
  for (int i = 0; i < 8; i++) {
    cs[i] = (conc_t){.c = c, .n = i};
    assert_int_equal(pthread_create(&ts[i], NULL, propose_conc, &cs[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(ts[i], NULL);
    assert_int_equal(cs[i].rc, 0);
    assert_int_equal(cs[i].ok, 1);
  }
  smc_client_destroy(c);
  fake_stop(&f);
}

static int group_setup(void **state) {
  (void)state;
  snprintf(prefix, sizeof(prefix), "t%d-%ld.", (int)getpid(), (long)time(NULL));
  smc_kconf_set_log_level(3);
  return 0;
}

/* Delete this run's topics from the shared broker. */
static int group_teardown(void **state) {
  (void)state;
  char errstr[256];
  rd_kafka_conf_t *conf = smc_kconf_new(bootstrap, NULL, errstr, sizeof(errstr));
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk)
    return 0;
  const char *names[] = {"proposals", "confirmations", "replies", "machines", "changelog"};
  rd_kafka_DeleteTopic_t *dt[5];
  char *t[5];
  for (int i = 0; i < 5; i++) {
    t[i] = topic(names[i]);
    dt[i] = rd_kafka_DeleteTopic_new(t[i]);
  }
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_DeleteTopics(rk, dt, 5, NULL, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
  if (ev)
    rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  for (int i = 0; i < 5; i++) {
    rd_kafka_DeleteTopic_destroy(dt[i]);
    free(t[i]);
  }
  rd_kafka_destroy(rk);
  return 0;
}

int main(void) {
  bootstrap = getenv("SMC_BOOTSTRAP");
  if (!bootstrap || !*bootstrap) {
    printf("SMC_BOOTSTRAP is not set: skipping the broker tests\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_topics_create_idempotent),
      cmocka_unit_test(test_register_and_catalog),
      cmocka_unit_test(test_propose_timeout_unknown),
      cmocka_unit_test(test_dispatch_with_fake_committer),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
