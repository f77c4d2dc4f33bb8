/* Unit tests for src/base/: the duration grammar and the clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/clock.h"
#include "base/duration.h"

static int64_t dur(const char *s, int strict) {
  int64_t ms = -7;
  return smc_duration_parse(s, strict, &ms) < 0 ? -1 : ms;
}

static void test_duration_grammar(void **state) {
  (void)state;
  static const struct {
    const char *s;
    int64_t loose, strict; /* -1: refused */
  } cases[] = {
      {"500ms", 500, 500},
      {"5s", 5000, 5000},
      {"2m", 120000, 120000},
      {"2h", 7200000, 7200000},
      {"7d", 604800000, 604800000},
      {"3", 3000, -1}, /* no unit: seconds, not in machines */
      {"0", 0, -1},
      {"0s", 0, -1}, /* machines want > 0 */
      {"0.5s", 500, -1},
      {"0.3s", 300, -1},
      {"1.0005s", 1000, -1}, /* below a millisecond dropped */
      {"1.5m", 90000, -1},
      {"", -1, -1},
      {"s", -1, -1},
      {"-1s", -1, -1},
      {"+1s", -1, -1},
      {" 1s", -1, -1},
      {"1 s", -1, -1},
      {"1e3", -1, -1},
      {"1.s", -1, -1},
      {".5s", -1, -1},
      {"nan", -1, -1},
      {"inf", -1, -1},
      {"5w", -1, -1},
      {"5S", -1, -1},
      {"9223372036854775s", -1, -1},
      {"9223372036854775ms", 9223372036854775, -1}, /* strict: 13 digits at most */
      {"99999999999999999999999999s", -1, -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (dur(cases[i].s, 0) != cases[i].loose || dur(cases[i].s, 1) != cases[i].strict)
      fail_msg("'%s': %lld / %lld", cases[i].s, (long long)dur(cases[i].s, 0),
               (long long)dur(cases[i].s, 1));
  }
  assert_int_equal(dur(NULL, 0), -1);
}

static void test_clock(void **state) {
  (void)state;
  int64_t a = smc_now_ms(), b = smc_now_ms();
  assert_true(b >= a);
  assert_true(smc_wall_ms() > 1700000000000LL);
  struct timespec t = smc_deadline_ts(CLOCK_MONOTONIC, 1500);
  assert_true(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_duration_grammar),
      cmocka_unit_test(test_clock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
