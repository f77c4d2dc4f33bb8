/* Unit tests for src/core/util.c: canonical JSON, partitioning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>

#include "core/util.h"

static void check_canonical(const char *in, const char *want) {
  json_error_t jerr;
  json_t *v = json_loads(in, JSON_DECODE_ANY, &jerr);
  assert_non_null(v);
  char *got = smc_json_canonical(v);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
  json_decref(v);
}

static void test_canonical_sorts_and_compacts(void **state) {
  (void)state;
  check_canonical("{ \"b\" : 1, \"a\" : { \"d\": [1, 2], \"c\": null } }",
                  "{\"a\":{\"c\":null,\"d\":[1,2]},\"b\":1}");
  check_canonical("\"x\"", "\"x\"");
}

/* protocol.md: numbers are written as integers where integral, so 5.0 and 5
 * hash the same. */
static void test_canonical_integral_reals(void **state) {
  (void)state;
  check_canonical("{\"b\":5.0,\"a\":[1.0,2.5,-3.0]}", "{\"a\":[1,2.5,-3],\"b\":5}");
  check_canonical("[0.0, 1e3, 0.25]", "[0,1000,0.25]");
}

static void test_partition_for_is_java_default(void **state) {
  (void)state;
  /* Same key, same partition; always in range. */
  for (int n = 1; n <= 64; n++) {
    int32_t p = smc_partition_for("lock-42", 7, n);
    assert_true(p >= 0 && p < n);
    assert_int_equal(p, smc_partition_for("lock-42", 7, n));
  }
}

/* The core's murmur2 partitioner agrees with librdkafka's (the Java
 * client's default) on many keys: every length 0..64 at every alignment,
 * random bytes (high bits set) and object-like ids, for many partition
 * counts. Known Java values pin the hash itself. */
static void test_murmur2_matches_librdkafka(void **state) {
  (void)state;
  unsigned seed = 20;
  unsigned char buf[80];
  for (int i = 0; i < 200000; i++) {
    size_t len = (size_t)(i % 65);
    size_t off = (size_t)(i / 65) % 4;
    for (size_t j = 0; j < len; j++)
      buf[off + j] = (unsigned char)rand_r(&seed);
    if (i % 3 == 0)
      len = (size_t)snprintf((char *)buf + off, sizeof buf - off, "object-%d", i);
    int32_t n = 1 + i % 97;
    int32_t want = rd_kafka_msg_partitioner_murmur2(NULL, buf + off, len, n, NULL, NULL);
    assert_int_equal(smc_partition_for(buf + off, len, n), want);
  }
  /* Kafka's Java tests: Utils.murmur2("21".getBytes()) == -973932308 ... */
  assert_int_equal((int32_t)smc_murmur2("21", 2), -973932308);
  assert_int_equal((int32_t)smc_murmur2("foobar", 6), -790332482);
  assert_int_equal((int32_t)smc_murmur2("a-little-bit-long-string", 24), -985981536);
  assert_int_equal((int32_t)smc_murmur2("a-little-bit-longer-string", 26), -1486304829);
  assert_int_equal((int32_t)smc_murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 48),
                   -58897971);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_canonical_sorts_and_compacts),
      cmocka_unit_test(test_canonical_integral_reals),
      cmocka_unit_test(test_partition_for_is_java_default),
      cmocka_unit_test(test_murmur2_matches_librdkafka),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
