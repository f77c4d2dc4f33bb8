/*
 * The data limit (smc_limits_t.data_max_bytes, --max-data-bytes) measures
 * the resulting data as canonical JSON (smc_json_canonical). This test
 * builds random data with every JSON type, escapes of each kind, UTF-8,
 * reals (integral ones become integers) and nesting, and checks at the
 * boundary: a limit of exactly the canonical length accepts, one byte less
 * rejects with too_large.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/util.h"
#include "smc/machine.h"

static const char *MACHINE = "name: blob\n"
                             "states:\n"
                             "  s: {}\n"
                             "transitions:\n"
                             "  make: {from: null, to: s}\n";

static uint64_t rng = 0x2545F4914F6CDD1Du;

static unsigned rnd(unsigned n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)(rng % n);
}

/* A string mixing plain ASCII, every escape class and UTF-8. */
static json_t *random_string(void) {
  static const char *const parts[] = {
      "a",  "xyz",  "\"",   "\\", "\n",   "\t",       "\b",           "\f",
      "\r", "\x01", "\x1f", "/",  "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
      " "};
  char buf[256];
  size_t n = 0;
  for (unsigned i = 0, k = rnd(12); i < k; i++) {
    const char *p = parts[rnd(sizeof(parts) / sizeof(parts[0]))];
    memcpy(buf + n, p, strlen(p));
    n += strlen(p);
  }
  buf[n] = 0;
  return json_string(buf);
}

static json_t *random_value(int depth) {
  switch (rnd(depth > 0 ? 10 : 8)) {
  case 0:
    return json_null();
  case 1:
    return json_integer((json_int_t)rnd(2000000) - 1000000);
  case 2:
    return json_integer(rnd(2) ? INT64_MIN : INT64_MAX);
  case 3:
    return random_string();
  case 4:
    return rnd(2) ? json_true() : json_false();
  case 5: /* integral reals are written as integers */
    return json_real((double)((int)rnd(20000) - 10000));
  case 6:
    return json_real(((double)rnd(1000000) - 500000.0) / 7.0);
  case 7:
    return json_real(rnd(2) ? 1e300 : -2.5e-300);
  case 8: {
    json_t *a = json_array();
    for (unsigned i = 0, n = rnd(4); i < n; i++)
      json_array_append_new(a, random_value(depth - 1));
    return a;
  }
  default: {
    json_t *o = json_object();
    for (unsigned i = 0, n = rnd(4); i < n; i++) {
      json_t *k = random_string();
      json_object_set_new(o, json_string_value(k), random_value(depth - 1));
      json_decref(k);
    }
    return o;
  }
  }
}

/* Validate create(make) with input as data under limit; returns the code
 * and, if asked, the resulting data. */
static int validate(const smc_machine_t *m, const json_t *input, size_t limit, json_t **data) {
  smc_limits_t l;
  smc_limits_default(&l);
  l.data_max_bytes = limit;
  smc_proposal_view_t p = {.transition = "make", .input = input, .time = 1};
  smc_outcome_t out = {0};
  smc_error_t err = {0};
  int rc = smc_machine_validate(m, NULL, &p, &l, &out, &err);
  if (data)
    *data = out.data;
  else
    json_decref(out.data);
  return rc;
}

static void test_limit_is_exact(void **state) {
  (void)state;
  smc_machine_t *m = NULL;
  smc_diags_t d;
  smc_diags_init(&d);
  assert_int_equal(smc_machine_compile(MACHINE, strlen(MACHINE), "blob.yaml", NULL, &m, &d), 0);
  for (int round = 0; round < 3000; round++) {
    json_t *input = json_object();
    for (unsigned i = 0, n = rnd(5); i < n; i++) {
      json_t *k = random_string();
      json_t *v = random_value(3);
      if (!json_is_null(v)) /* a null member is a merge-patch delete */
        json_object_set(input, json_string_value(k), v);
      json_decref(v);
      json_decref(k);
    }
    /* the limit applies to the result (nested nulls of the merge patch
     * delete), so measure that */
    json_t *data = NULL;
    assert_int_equal(validate(m, input, SIZE_MAX, &data), 0);
    char *c = smc_json_canonical(data);
    json_decref(data);
    assert_non_null(c);
    size_t len = strlen(c);
    if (validate(m, input, len, NULL) != 0 || validate(m, input, len - 1, NULL) != SMC_ETOO_LARGE)
      fail_msg("data %s (%zu bytes): limit %zu must pass, %zu must be too_large", c, len, len,
               len - 1);
    free(c);
    json_decref(input);
  }
  smc_machine_destroy(m);
  smc_diags_close(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_limit_is_exact)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
