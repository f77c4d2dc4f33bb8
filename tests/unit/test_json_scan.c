/* Unit tests for src/core/json_scan.c (the scanner and the plain loader)
 * and src/core/digest.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/digest.h"
#include "core/json_scan.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_skip_value(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int after; /* bytes skipped, -1 for NULL */
  } cases[] = {
      {"\"a\" rest", 3},
      {"\"a\\\"b\",", 6}, /* an escaped quote inside */
      {"\"a\\\\\"x", 5},  /* an escaped backslash ends before the quote */
      {"\"\\u00e9\"}", 8},
      {"{\"a\":[1,{\"b\":\"}\"}]} x", 19}, /* brackets inside strings do not count */
      {"[[],[[]]],", 9},
      {"123,", 3},
      {"-1.5e3}", 6},
      {"true]", 4},
      {"null", 4},
      {"", -1},
      {",", -1},            /* an empty scalar */
      {"\"open", -1},       /* truncated string */
      {"\"esc\\", -1},      /* truncated after a backslash */
      {"{\"a\":[1,2}", -1}, /* not closed */
      {"[\"]\"", -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *t = cases[i].text, *end = t + strlen(t);
    const char *q = smc_json_skip_value(t, end);
    if (cases[i].after < 0)
      assert_null(q);
    else {
      assert_non_null(q);
      assert_int_equal(q - t, cases[i].after);
    }
  }
}

static void test_skip_value_depth(void **state) {
  (void)state;
  char buf[2 * (SMC_JSON_SCAN_MAX_DEPTH + 1) + 1] = {0};
  for (int deep = SMC_JSON_SCAN_MAX_DEPTH; deep <= SMC_JSON_SCAN_MAX_DEPTH + 1; deep++) {
    memset(buf, '[', (size_t)deep);
    memset(buf + deep, ']', (size_t)deep);
    const char *q = smc_json_skip_value(buf, buf + 2 * deep);
    if (deep <= SMC_JSON_SCAN_MAX_DEPTH)
      assert_ptr_equal(q, buf + 2 * deep);
    else
      assert_null(q); /* left to jansson */
  }
}

static void test_plain_string(void **state) {
  (void)state;
  size_t n = 99;
  const char *t = "\"abc\":1";
  const char *q = smc_json_plain_string(t, t + strlen(t), &n);
  assert_ptr_equal(q, t + 5);
  assert_int_equal(n, 3);
  const char *not_plain[] = {"\"a\\nb\"", "\"caf\xc3\xa9\"", "\"tab\there\"", "\"open"};
  for (size_t i = 0; i < 4; i++)
    assert_null(smc_json_plain_string(not_plain[i], not_plain[i] + strlen(not_plain[i]), &n));
}

typedef struct seen {
  char out[512];
  int stop_at; /* stop (return 7) at this member, -1 never */
  int count;
} seen_t;

static int collect(const smc_json_member_t *m, void *opaque) {
  seen_t *s = opaque;
  size_t at = strlen(s->out);
  snprintf(s->out + at, sizeof s->out - at, "%s%.*s=%.*s", at ? "|" : "", (int)m->key_len, m->key,
           (int)(m->value_end - m->value), m->value);
  if (m->key_escaped)
    strncat(s->out, "(esc)", sizeof s->out - strlen(s->out) - 1);
  return s->count++ == s->stop_at ? 7 : 0;
}

static int members(const char *text, size_t len, int stop_at, char *out) {
  seen_t s = {"", stop_at, 0};
  int rc = smc_json_members(text, len, collect, &s);
  strcpy(out, s.out);
  return rc;
}

static void test_members(void **state) {
  (void)state;
  char out[512];
  assert_int_equal(members(S(" { \"a\" : 1 , \"b\":{\"x\":[1,\"}\"]},\"c\":\"q\\\"\"}\n"), -1, out),
                   0);
  assert_string_equal(out, "a=1|b={\"x\":[1,\"}\"]}|c=\"q\\\"\"");
  /* an escaped key is reported raw, flagged */
  assert_int_equal(members(S("{\"a\\u0062\":true}"), -1, out), 0);
  assert_string_equal(out, "a\\u0062=true(esc)");
  /* the empty object */
  assert_int_equal(members(S("{}"), -1, out), 0);
  assert_string_equal(out, "");
  /* fn's nonzero return stops the walk */
  assert_int_equal(members(S("{\"a\":1,\"b\":2,\"c\":3}"), 1, out), 7);
  assert_string_equal(out, "a=1|b=2");
}

static void test_members_refused(void **state) {
  (void)state;
  char out[512];
  static const char *const bad[] = {
      "",
      "   ",
      "[1,2]",
      "\"str\"",
      "42",
      "null", /* not objects */
      "{",    /* truncated ... */
      "{\"a\"",
      "{\"a\":",
      "{\"a\":1",
      "{\"a\":1,",
      "{\"a\":\"x",
      "{\"a\":[1,2",
      "{\"a\":{\"b\":1}",
      "{\"a\" 1}",         /* no colon */
      "{a:1}",             /* unquoted key */
      "{\"a\":1 \"b\":2}", /* no comma */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(members(bad[i], strlen(bad[i]), -1, out), -1);
  /* a truncated text is refused even when its first members were fine:
   * the length bounds the scan, not a NUL */
  const char *t = "{\"a\":1,\"b\":2}";
  assert_int_equal(members(t, strlen(t) - 1, -1, out), -1);
  assert_string_equal(out, "a=1|b=2");
}

static void test_sha256_known_vectors(void **state) {
  (void)state;
  char hex[65];
  smc_sha256_hex("", 0, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  smc_sha256_hex("abc", 3, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_sha256_pieces(void **state) {
  (void)state;
  char whole[65], pieces[65];
  const char text[] = "the quick brown fox jumps over the lazy dog";
  smc_sha256_hex(text, sizeof text - 1, whole);
  smc_sha256_t h = {0};
  for (int round = 0; round < 2; round++) { /* init again on the same struct */
    assert_int_equal(smc_sha256_init(&h), 0);
    for (size_t i = 0; i < sizeof text - 1; i += 5)
      smc_sha256_update(&h, text + i, sizeof text - 1 - i < 5 ? sizeof text - 1 - i : 5);
    assert_int_equal(smc_sha256_final_hex(&h, pieces), 0);
    assert_string_equal(pieces, whole);
  }
  smc_sha256_close(&h);
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
      cmocka_unit_test(test_skip_value),
      cmocka_unit_test(test_skip_value_depth),
      cmocka_unit_test(test_plain_string),
      cmocka_unit_test(test_members),
      cmocka_unit_test(test_members_refused),
      cmocka_unit_test(test_json_load_plain_cases),
      cmocka_unit_test(test_json_load_plain_random),
      cmocka_unit_test(test_sha256_known_vectors),
      cmocka_unit_test(test_sha256_pieces),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
