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
  smc_lru_t *l = smc_lru_new(3);
  assert_non_null(l);
  char key[16];
  for (int i = 0; i < 3; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    json_t *v = json_integer(i);
    smc_lru_put(l, key, v);
    json_decref(v);
  }
  /* Touch k0 so k1 is now the least recently used. */
  json_t *v = smc_lru_get(l, "k0");
  assert_int_equal(json_integer_value(v), 0);
  json_decref(v);
  v = json_integer(3);
  smc_lru_put(l, "k3", v);
  json_decref(v);
  assert_null(smc_lru_get(l, "k1"));
  v = smc_lru_get(l, "k2");
  assert_non_null(v);
  json_decref(v);
  /* Replacing keeps one entry and the new value. */
  v = json_string("new");
  smc_lru_put(l, "k0", v);
  json_decref(v);
  v = smc_lru_get(l, "k0");
  assert_string_equal(json_string_value(v), "new");
  json_decref(v);
  v = smc_lru_get(l, "k3");
  assert_non_null(v);
  json_decref(v);
  assert_null(smc_lru_get(l, "missing"));
  smc_lru_destroy(l);
  /* Many keys through a small cache: no growth, no leak (ASan checks). */
  l = smc_lru_new(100);
  for (int i = 0; i < 10000; i++) {
    snprintf(key, sizeof(key), "x%d", i);
    v = json_integer(i);
    smc_lru_put(l, key, v);
    json_decref(v);
  }
  v = smc_lru_get(l, "x9999");
  assert_int_equal(json_integer_value(v), 9999);
  json_decref(v);
  assert_null(smc_lru_get(l, "x9899"));
  smc_lru_destroy(l);
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
  assert_int_equal(smc_gw_parse_duration("5h"), 5 * 3600000); /* one grammar with the CLI */
  assert_int_equal(smc_gw_parse_duration("1e3"), -1);
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

/* Regression: when librdkafka refused to create the follower's consumer
 * (here: a CA file that does not exist, which only rd_kafka_new checks),
 * the follower leaked the configuration (rd_kafka_new takes it over only
 * on success). The sanitizer build's leak check fails this test then. */
static void test_follower_consumer_fails(void **state) {
  (void)state;
  char *props[] = {"security.protocol", "ssl", "ssl.ca.location", "/nonexistent/ca.pem", NULL};
  smc_gateway_t gw;
  memset(&gw, 0, sizeof gw);
  gw.bootstrap = "127.0.0.1:1";
  gw.prefix = "smc.";
  gw.node_id = "n1";
  gw.kafka_props = props;
  gw.cache_bytes = 1 << 20;
  gw_follower_t *f = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_gw_follower_start(&gw, &f, &err), SMC_EKAFKA);
  assert_null(f);
  assert_non_null(strstr(err.message, "gateway consumer"));
}

/* A random JSON value of depth at most d: strings with escapes, quotes and
 * braces, nested objects and arrays, numbers, literals. */
static json_t *rand_value(unsigned *seed, int d) {
  static const char *const strs[] = {"plain",           "with \"quote\"",    "brace } ] {",
                                     "back\\slash",     "uni \u00e9 \u2603", "",
                                     "comma, colon: x", "tab\tnl\n"};
  switch (rand_r(seed) % (d > 0 ? 7 : 4)) {
  case 0:
    return json_string(strs[rand_r(seed) % 8]);
  case 1:
    return json_integer((json_int_t)rand_r(seed) - RAND_MAX / 2);
  case 2:
    return json_real((double)rand_r(seed) / 7.0);
  case 3:
    return rand_r(seed) % 2 ? json_true() : json_null();
  case 4:
  case 5: {
    json_t *o = json_object();
    for (int i = rand_r(seed) % 4; i > 0; i--) {
      char k[16];
      snprintf(k, sizeof k, "k%d}\"", rand_r(seed) % 10);
      json_object_set_new(o, k, rand_value(seed, d - 1));
    }
    return o;
  }
  default: {
    json_t *a = json_array();
    for (int i = rand_r(seed) % 4; i > 0; i--)
      json_array_append_new(a, rand_value(seed, d - 1));
    return a;
  }
  }
}

/* The follower's scan of a confirmation finds what jansson finds, or
 * declines (then the follower parses): never a wrong field. */
static void test_scan_confirmation(void **state) {
  (void)state;
  unsigned seed = 7;
  int taken = 0;
  for (int i = 0; i < 3000; i++) {
    json_t *c = json_object();
    static const char *const fields[] = {"proposal", "object", "outcome", "version",
                                         "data",     "votes",  "machine", "x\"y"};
    for (int k = 0; k < 8; k++) {
      int r = rand_r(&seed) % 10;
      if (k < 3 && r < 8) {
        char v[64];
        snprintf(v, sizeof v, "%s-%d%s", fields[k], rand_r(&seed) % 1000, r == 0 ? "\\esc" : "");
        json_object_set_new(c, fields[k], json_string(v));
      } else if (k == 3 && r < 8) {
        json_object_set_new(c, "version", json_integer(rand_r(&seed) % 100000));
      } else if (r < 5) {
        json_object_set_new(c, fields[k], rand_value(&seed, 3));
      }
    }
    char *text =
        json_dumps(c, JSON_COMPACT | (i % 2 ? JSON_SORT_KEYS : 0) | (i % 3 ? 0 : JSON_INDENT(1)));
    assert_non_null(text);
    gw_conf_fields_t cf;
    int rc = smc_gw_scan_confirmation(text, strlen(text), &cf);
    const char *p = json_string_value(json_object_get(c, "proposal"));
    const char *o = json_string_value(json_object_get(c, "object"));
    const char *oc = json_string_value(json_object_get(c, "outcome"));
    if (rc == 0) {
      taken++;
      assert_non_null(p);
      assert_non_null(o);
      assert_non_null(oc);
      assert_string_equal(cf.proposal, p);
      assert_string_equal(cf.object, o);
      assert_string_equal(cf.outcome, oc);
      assert_int_equal(cf.version, json_integer_value(json_object_get(c, "version")));
    } else {
      /* declined only when a field is missing or holds an escape */
      assert_true(!p || !o || !oc || strchr(p, '\\') || strchr(o, '\\') || strchr(oc, '\\'));
    }
    /* a cut text is never taken */
    for (size_t cut = 0; cut < strlen(text); cut += 1 + strlen(text) / 16)
      assert_int_equal(smc_gw_scan_confirmation(text, cut, &cf), -1);
    free(text);
    json_decref(c);
  }
  assert_true(taken > 500); /* about 1 in 3 has all three without escapes */
  gw_conf_fields_t cf;
  const char *bad[] = {"",
                       "[]",
                       "{",
                       "{\"proposal\":\"p\"}",
                       "{\"proposal\":1,\"object\":\"o\",\"outcome\":\"c\"}",
                       "{\"proposal\":\"p\",\"object\":\"o\",\"outcome\":\"c\",\"version\":\"1\"}",
                       "{\"proposal\":\"p\" \"object\":\"o\",\"outcome\":\"c\"}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(smc_gw_scan_confirmation(bad[i], strlen(bad[i]), &cf), -1);
  const char *ok = " { \"outcome\" : \"committed\" , \"data\":{\"a\":[1,{\"b\":\"}\"}]},"
                   "\"object\":\"o-1\",\"version\":42,\"proposal\":\"p-9\"} ";
  assert_int_equal(smc_gw_scan_confirmation(ok, strlen(ok), &cf), 0);
  assert_string_equal(cf.object, "o-1");
  assert_string_equal(cf.proposal, "p-9");
  assert_string_equal(cf.outcome, "committed");
  assert_int_equal(cf.version, 42);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lru),
      cmocka_unit_test(test_duration),
      cmocka_unit_test(test_utf8),
      cmocka_unit_test(test_ctype),
      cmocka_unit_test(test_start_errors),
      cmocka_unit_test(test_follower_consumer_fails),
      cmocka_unit_test(test_scan_confirmation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
