/* Memory bounds of a worker: the gateway's byte-bounded caches (their cost
 * estimate and eviction) and the store sizes a node passes to RocksDB. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gw_internal.h"
#include "node/roles.h"

/* A confirmation as the committer publishes it (shape, not content). */
static json_t *confirmation(int i, size_t data_len) {
  char id[32], obj[32];
  snprintf(id, sizeof id, "p-%d", i);
  snprintf(obj, sizeof obj, "o-%d", i);
  char *data = malloc(data_len + 1);
  memset(data, 'x', data_len);
  data[data_len] = '\0';
  json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:i, s:{s:s}, s:{s:[], s:[]}}", "proposal", id,
                        "object", obj, "outcome", "committed", "state", "held", "version", i,
                        "data", "owner", data, "votes", "accept", "reject");
  free(data);
  assert_non_null(c);
  return c;
}

static void test_json_cost(void **state) {
  (void)state;
  assert_int_equal(smc_json_cost(NULL), 0);
  assert_int_equal(smc_json_cost(json_true()), 0); /* singleton */
  json_t *i = json_integer(7), *s1 = json_string("a"),
         *s2 = json_string_nocheck("a longer string than the other one");
  assert_true(smc_json_cost(i) > 0);
  assert_true(smc_json_cost(s2) > smc_json_cost(s1));
  json_t *o = json_pack("{s:O, s:O}", "i", i, "s", s2);
  assert_true(smc_json_cost(o) > smc_json_cost(i) + smc_json_cost(s2));
  /* A bigger payload costs more, at least its own length. */
  json_t *small = confirmation(1, 10), *big = confirmation(1, 10000);
  assert_true(smc_json_cost(big) >= smc_json_cost(small) + 10000 - 64);
  /* Never below the serialized size: every string is held with its length. */
  char *dump = json_dumps(small, JSON_COMPACT);
  assert_true(smc_json_cost(small) > strlen(dump));
  free(dump);
  json_decref(i);
  json_decref(s1);
  json_decref(s2);
  json_decref(o);
  json_decref(small);
  json_decref(big);
}

static void test_lru_byte_bound(void **state) {
  (void)state;
  json_t *one = confirmation(0, 100);
  size_t per = smc_json_cost(one);
  json_decref(one);
  smc_lru_t *l = smc_lru_new(100000);
  assert_non_null(l);
  size_t budget = per * 20;
  smc_lru_set_max_bytes(l, budget);
  char key[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(key, sizeof key, "p-%d", i);
    json_t *c = confirmation(i, 100);
    smc_lru_put(l, key, c);
    json_decref(c);
    assert_true(smc_lru_bytes(l) <= budget);
  }
  /* Far fewer than the entry capacity, bounded by bytes: about 20 (the key
   * and node overhead make each entry cost a little more than per). */
  assert_true(smc_lru_count(l) >= 10);
  assert_true(smc_lru_count(l) <= 20);
  json_t *v = smc_lru_get(l, "p-999"); /* the newest stays */
  assert_non_null(v);
  json_decref(v);
  assert_null(smc_lru_get(l, "p-0")); /* the oldest went */
  /* Replacing an entry with a bigger value re-counts its bytes and evicts
   * others to make room. */
  size_t before = smc_lru_count(l);
  json_t *big = confirmation(999, per * 5);
  smc_lru_put(l, "p-999", big);
  json_decref(big);
  assert_true(smc_lru_bytes(l) <= budget);
  assert_true(smc_lru_count(l) < before);
  /* An entry larger than the whole budget is still kept (alone). */
  json_t *huge = confirmation(5000, budget * 2);
  smc_lru_put(l, "huge", huge);
  json_decref(huge);
  assert_int_equal(smc_lru_count(l), 1);
  v = smc_lru_get(l, "huge");
  assert_non_null(v);
  json_decref(v);
  /* Lowering the budget trims at once; 0 lifts the byte bound. */
  smc_lru_set_max_bytes(l, 0);
  for (int i = 0; i < 50; i++) {
    snprintf(key, sizeof key, "q-%d", i);
    json_t *c = json_integer(i);
    smc_lru_put(l, key, c);
    json_decref(c);
  }
  assert_int_equal(smc_lru_count(l), 51);
  smc_lru_set_max_bytes(l, 1);
  assert_int_equal(smc_lru_count(l), 1);
  smc_lru_destroy(l);
}

static void test_lru_count_bound_still_holds(void **state) {
  (void)state;
  smc_lru_t *l = smc_lru_new(5);
  smc_lru_set_max_bytes(l, (size_t)1 << 30);
  char key[16];
  for (int i = 0; i < 40; i++) {
    snprintf(key, sizeof key, "k%d", i);
    json_t *v = json_integer(i);
    smc_lru_put(l, key, v);
    json_decref(v);
  }
  assert_int_equal(smc_lru_count(l), 5);
  smc_lru_destroy(l);
}

static void test_node_store_options(void **state) {
  (void)state;
  smc_node_config_t cfg;
  smc_node_config_default(&cfg);
  assert_int_equal(cfg.store_cache_bytes, (size_t)16 << 20);
  assert_int_equal(cfg.store_write_buffer_bytes, (size_t)4 << 20);
  smc_store_options_t o;
  smc_node_store_options(&cfg, &o);
  assert_int_equal(o.block_cache_bytes, (size_t)16 << 20);
  assert_int_equal(o.write_buffer_bytes, (size_t)4 << 20);
  /* Zero keeps the store's own defaults. */
  cfg.store_cache_bytes = 0;
  cfg.store_write_buffer_bytes = 0;
  smc_store_options_t d;
  smc_store_options_default(&d);
  smc_node_store_options(&cfg, &o);
  assert_int_equal(o.block_cache_bytes, d.block_cache_bytes);
  assert_int_equal(o.write_buffer_bytes, d.write_buffer_bytes);
  /* A store opens with small sizes and works. */
  cfg.store_cache_bytes = (size_t)1 << 20;
  cfg.store_write_buffer_bytes = (size_t)1 << 20;
  smc_node_store_options(&cfg, &o);
  char dir[] = "/tmp/smc-test-memXXXXXX";
  assert_non_null(mkdtemp(dir));
  smc_store_t *s = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_store_open(dir, &o, &s, &err), 0);
  smc_kv_t kv = smc_store_kv(s);
  assert_int_equal(smc_kv_put(&kv, SMC_CF_META, "\0\0\0\0k", 5, "v", 1), 0);
  void *v = NULL;
  size_t vl = 0;
  assert_int_equal(smc_kv_get(&kv, SMC_CF_META, "\0\0\0\0k", 5, &v, &vl), 0);
  assert_int_equal(vl, 1);
  free(v);
  smc_store_close(s);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_cost),
      cmocka_unit_test(test_lru_byte_bound),
      cmocka_unit_test(test_lru_count_bound_still_holds),
      cmocka_unit_test(test_node_store_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
