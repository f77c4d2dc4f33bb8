/* Gateway internals that need no Kafka: the LRU, durations, UTF-8, content
 * types, and start-up argument errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gateway/gw_internal.h"

static void test_lru(void **state) {
  (void)state;
  gw_lru_t *l = smc_gw_lru_new(3);
  assert_non_null(l);
  char key[16];
  for (int i = 0; i < 3; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    json_t *v = json_integer(i);
    smc_gw_lru_put(l, key, v);
    json_decref(v);
  }
  /* Touch k0 so k1 is now the least recently used. */
  json_t *v = smc_gw_lru_get(l, "k0");
  assert_int_equal(json_integer_value(v), 0);
  json_decref(v);
  v = json_integer(3);
  smc_gw_lru_put(l, "k3", v);
  json_decref(v);
  assert_null(smc_gw_lru_get(l, "k1"));
  v = smc_gw_lru_get(l, "k2");
  assert_non_null(v);
  json_decref(v);
  /* Replacing keeps one entry and the new value. */
  v = json_string("new");
  smc_gw_lru_put(l, "k0", v);
  json_decref(v);
  v = smc_gw_lru_get(l, "k0");
  assert_string_equal(json_string_value(v), "new");
  json_decref(v);
  v = smc_gw_lru_get(l, "k3");
  assert_non_null(v);
  json_decref(v);
  assert_null(smc_gw_lru_get(l, "missing"));
  smc_gw_lru_destroy(l);
  /* Many keys through a small cache: no growth, no leak (ASan checks). */
  l = smc_gw_lru_new(100);
  for (int i = 0; i < 10000; i++) {
    snprintf(key, sizeof(key), "x%d", i);
    v = json_integer(i);
    smc_gw_lru_put(l, key, v);
    json_decref(v);
  }
  v = smc_gw_lru_get(l, "x9999");
  assert_int_equal(json_integer_value(v), 9999);
  json_decref(v);
  assert_null(smc_gw_lru_get(l, "x9899"));
  smc_gw_lru_destroy(l);
}

static void test_duration(void **state) {
  (void)state;
  assert_int_equal(smc_gw_parse_duration("5s"), 5000);
  assert_int_equal(smc_gw_parse_duration("500ms"), 500);
  assert_int_equal(smc_gw_parse_duration("2m"), 120000);
  assert_int_equal(smc_gw_parse_duration("3"), 3000);
  assert_int_equal(smc_gw_parse_duration("0.5s"), 500);
  assert_int_equal(smc_gw_parse_duration(""), -1);
  assert_int_equal(smc_gw_parse_duration("-1s"), -1);
  assert_int_equal(smc_gw_parse_duration("5h"), -1);
  assert_int_equal(smc_gw_parse_duration("soon"), -1);
  assert_int_equal(smc_gw_parse_duration("nan"), -1);
  assert_int_equal(smc_gw_parse_duration(NULL), -1);
}

static void test_utf8(void **state) {
  (void)state;
  const char *ok[] = {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    assert_true(smc_gw_utf8_valid((const unsigned char *)ok[i], strlen(ok[i])));
  const char *bad[] = {"\xff", "\xc0\xaf",   "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                       "\xc3", "ab\xe2\x82", "\x80"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_false(smc_gw_utf8_valid((const unsigned char *)bad[i], strlen(bad[i])));
}

static void test_ctype(void **state) {
  (void)state;
  assert_true(smc_gw_ctype_is("application/json", "application/json"));
  assert_true(smc_gw_ctype_is("Application/JSON; charset=utf-8", "application/json"));
  assert_false(smc_gw_ctype_is("application/jsonx", "application/json"));
  assert_false(smc_gw_ctype_is(NULL, "application/json"));
}

static void test_start_errors(void **state) {
  (void)state;
  smc_gateway_config_t c;
  smc_gateway_config_default(&c);
  assert_int_equal(c.max_body_bytes, 1024 * 1024);
  assert_int_equal(c.max_connections, 1024);
  smc_gateway_t *gw = (smc_gateway_t *)&c;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_gateway_start(&c, &gw, &err), SMC_EINVALID_ARGUMENT); /* no bootstrap */
  assert_null(gw);
  c.bootstrap = "127.0.0.1:1";
  const char *bad_listen[] = {"nohostport", "127.0.0.1:99999", "127.0.0.1:", ":80", "127.0.0.1:8x"};
  for (size_t i = 0; i < sizeof(bad_listen) / sizeof(bad_listen[0]); i++) {
    c.listen = bad_listen[i];
    smc_error_clear(&err);
    assert_int_equal(smc_gateway_start(&c, &gw, &err), SMC_EINVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "listen") ? err.message : strstr(err.message, "port"));
  }
  c.listen = "127.0.0.1:0";
  c.auth_tokens_file = "/nonexistent/tokens.json";
  smc_error_clear(&err);
  assert_int_equal(smc_gateway_start(&c, &gw, &err), SMC_EINVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "tokens file"));
  smc_gateway_stop(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lru),          cmocka_unit_test(test_duration),
      cmocka_unit_test(test_utf8),         cmocka_unit_test(test_ctype),
      cmocka_unit_test(test_start_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
