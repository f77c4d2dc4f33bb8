/* Unit tests for src/core/util.c: sha256, canonical JSON, partitioning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>

#include "core/digest.h"
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

/* smc_json_load_plain agrees with jansson: whatever it builds, jansson
 * builds the same tree (members in the same order); what it leaves,
 * smc_json_loadb still parses (or refuses) as jansson does. */
static void check_plain(const char *text, size_t len, int want_plain) {
  json_t *fast = smc_json_load_plain(text, len);
  json_t *ref = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  json_t *both = smc_json_loadb(text, len, JSON_REJECT_DUPLICATES);
  if (want_plain == 1)
    assert_non_null(fast);
  if (want_plain == 0)
    assert_null(fast);
  if (fast) {
    assert_non_null(ref);
    char *a = json_dumps(fast, JSON_COMPACT | JSON_ENCODE_ANY);
    char *b = json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_string_equal(a, b);
    free(a);
    free(b);
  }
  assert_int_equal(both != NULL, ref != NULL);
  if (both) {
    char *a = json_dumps(both, JSON_COMPACT | JSON_ENCODE_ANY);
    char *b = json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_string_equal(a, b);
    free(a);
    free(b);
  }
  json_decref(fast);
  json_decref(ref);
  json_decref(both);
}

static void test_json_load_plain_cases(void **state) {
  (void)state;
  const char *yes[] = {"{}",
                       " { } ",
                       "{\"owner\":\"svc-1\",\"token\":2}",
                       "{\"b\":1,\"a\":[1,-2,0,-0,true,false,null,\"x\",[],{}]}",
                       "{\"z\":{\"y\":{\"x\":[[[]]]}},\"\":\"\"}",
                       "\t{\r\n\"a\" : 123456789012345678 , \"b\":-123456789012345678}\n"};
  const char *no[] = {"",
                      "[]",
                      "1",
                      "\"x\"",
                      "{\"a\":1.5}",
                      "{\"a\":1e3}",
                      "{\"a\":1234567890123456789}",
                      "{\"a\":01}",
                      "{\"a\":-}",
                      "{\"a\":\"\\n\"}",
                      "{\"a\":\"\xc3\xa9\"}",
                      "{\"a\":1,\"a\":2}",
                      "{\"a\":1,}",
                      "{\"a\" 1}",
                      "{\"a\":tru}",
                      "{\"a\":1} x",
                      "{\"a\":[1,]}",
                      "{\"a\":\"x\001\"}",
                      "{\"a\":1"};
  for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
    check_plain(yes[i], strlen(yes[i]), 1);
  for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
    check_plain(no[i], strlen(no[i]), 0);
  /* deeper than 64: left to jansson */
  char deep[300];
  size_t n = 0;
  deep[n++] = '{';
  deep[n++] = '"', deep[n++] = 'a', deep[n++] = '"', deep[n++] = ':';
  for (int i = 0; i < 70; i++)
    deep[n++] = '[';
  for (int i = 0; i < 70; i++)
    deep[n++] = ']';
  deep[n++] = '}';
  check_plain(deep, n, 0);
  /* a NUL inside the text */
  check_plain("{\"a\":1}\0", 8, 0);
  check_plain("{\"a\":\"x\0y\"}", 11, 0);
  /* smc_json_loads reads up to the NUL, as json_loads */
  json_t *v = smc_json_loads("{\"a\":[1,2]}", 0);
  assert_non_null(v);
  assert_int_equal(json_array_size(json_object_get(v, "a")), 2);
  json_decref(v);
}

/* Random texts built from JSON pieces, then cut and mutated: both parsers
 * agree on every one. */
static void test_json_load_plain_random(void **state) {
  (void)state;
  static const char *const pieces[] = {
      "{",  "}",  "[",    "]",     ",",    ":",   "\"a\"", "\"bb\"", "\"a\"",   "1",  "-1",  "0",
      "12", "-0", "true", "false", "null", "1.5", "2e2",   " ",      "\"\\n\"", "\n", "\"x", "01"};
  unsigned seed = 12345;
  char buf[512];
  int plain = 0;
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = 0;
    /* mostly well-formed objects: {"k":v,...} */
    seed = seed * 1103515245u + 12345u;
    int kind = (int)((seed >> 16) % 4);
    if (kind < 3) {
      buf[n++] = '{';
      int members = (int)((seed >> 8) % 5);
      for (int m = 0; m < members; m++) {
        seed = seed * 1103515245u + 12345u;
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"%c\":", m ? "," : "",
                              (char)('a' + (seed >> 16) % 6));
        const char *vals[] = {"1",   "-7", "\"s\"", "[1,2]", "{\"x\":null}", "true",
                              "2.5", "{}", "[]",    "\"\"",  "[{\"q\":[0]}]"};
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s", vals[(seed >> 20) % 11]);
      }
      buf[n++] = '}';
      if (kind == 2 && n > 1) { /* one byte changed */
        seed = seed * 1103515245u + 12345u;
        buf[(seed >> 16) % n] = pieces[(seed >> 8) % 24][0];
      }
    } else {
      int count = 1 + (int)((seed >> 8) % 12);
      for (int i = 0; i < count && n < sizeof(buf) - 16; i++) {
        seed = seed * 1103515245u + 12345u;
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s", pieces[(seed >> 16) % 24]);
      }
    }
    buf[n] = '\0';
    json_t *f = smc_json_load_plain(buf, n);
    plain += f != NULL;
    json_decref(f);
    check_plain(buf, n, -1);
  }
  assert_true(plain > 1000); /* the fast half was exercised */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sha256_known_vectors),
      cmocka_unit_test(test_canonical_sorts_and_compacts),
      cmocka_unit_test(test_canonical_integral_reals),
      cmocka_unit_test(test_partition_for_is_java_default),
      cmocka_unit_test(test_murmur2_matches_librdkafka),
      cmocka_unit_test(test_json_load_plain_cases),
      cmocka_unit_test(test_json_load_plain_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
