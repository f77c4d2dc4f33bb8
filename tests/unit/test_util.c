/* Unit tests for src/core/util.c: sha256, canonical JSON, partitioning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/util.h"

static void test_sha256_known_vectors(void **state) {
  (void)state;
  char hex[65];
  smc_sha256_hex("", 0, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  smc_sha256_hex("abc", 3, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sha256_known_vectors),
      cmocka_unit_test(test_canonical_sorts_and_compacts),
      cmocka_unit_test(test_canonical_integral_reals),
      cmocka_unit_test(test_partition_for_is_java_default),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
