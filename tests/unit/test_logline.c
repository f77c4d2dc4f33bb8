/* Log lines in text, logfmt and JSON (core/logline.h): each format's shape,
 * escaping, and that every line stays one line that parses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/logline.h"

/* What one smc_logline_write puts on stderr (malloc'd). */
static char *capture(const char *level, const smc_logfield_t *f, size_t n, const char *msg) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  int saved = dup(2);
  dup2(fds[1], 2);
  smc_logline_write(level, f, n, msg);
  dup2(saved, 2);
  close(saved);
  close(fds[1]);
  char *buf = calloc(1, 1 << 16);
  ssize_t k = read(fds[0], buf, (1 << 16) - 1), r;
  while (k > 0 && (r = read(fds[0], buf + k, (size_t)((1 << 16) - 1 - k))) > 0)
    k += r;
  close(fds[0]);
  return buf;
}

static int teardown(void **state) {
  (void)state;
  smc_logline_set_format(SMC_LOGFMT_TEXT);
  return 0;
}

static void test_parse_format(void **state) {
  (void)state;
  assert_int_equal(smc_logline_parse_format("text"), SMC_LOGFMT_TEXT);
  assert_int_equal(smc_logline_parse_format("logfmt"), SMC_LOGFMT_LOGFMT);
  assert_int_equal(smc_logline_parse_format("json"), SMC_LOGFMT_JSON);
  assert_int_equal(smc_logline_parse_format("JSON"), -1);
  assert_int_equal(smc_logline_parse_format(NULL), -1);
}

static void test_text_and_logfmt(void **state) {
  (void)state;
  smc_logfield_t f[3] = {{"node", "n 1", 0, 0}, {"partition", NULL, 3, 1}, {"absent", NULL, 0, 0}};
  char *t = capture("info", f, 3, "say \"hi\"\nbye");
  assert_true(t[4] == '-' && t[10] == 'T' && t[23] == 'Z');
  assert_string_equal(t + 24,
                      " level=info node=\"n 1\" partition=3 msg=\"say \\\"hi\\\"\\nbye\"\n");
  free(t);
  smc_logline_set_format(SMC_LOGFMT_LOGFMT);
  t = capture("warn", f, 1, "x");
  assert_memory_equal(t, "time=", 5);
  assert_string_equal(t + 29, " level=warn node=\"n 1\" msg=\"x\"\n");
  free(t);
}

static void test_json(void **state) {
  (void)state;
  smc_logline_set_format(SMC_LOGFMT_JSON);
  /* control characters, quotes, valid and invalid UTF-8 */
  smc_logfield_t f[2] = {{"node", "n\"1", 0, 0}, {"partition", NULL, -1, 0}};
  char *t = capture("error", f, 2, "a\tb \xc3\xa9 \xff\xfe end");
  assert_int_equal(strchr(t, '\n') - t, (long)strlen(t) - 1); /* one line */
  json_error_t je;
  json_t *j = json_loads(t, 0, &je);
  if (!j)
    fail_msg("not JSON (%s): %s", je.text, t);
  assert_string_equal(json_string_value(json_object_get(j, "level")), "error");
  assert_string_equal(json_string_value(json_object_get(j, "node")), "n\"1");
  assert_null(json_object_get(j, "partition"));
  assert_string_equal(json_string_value(json_object_get(j, "msg")),
                      "a\tb \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd end");
  assert_int_equal(strlen(json_string_value(json_object_get(j, "time"))), 24);
  json_decref(j);
  free(t);
}

/* A huge message of control characters still gives one line of valid JSON. */
static void test_json_long_line(void **state) {
  (void)state;
  smc_logline_set_format(SMC_LOGFMT_JSON);
  char *msg = malloc(20000);
  memset(msg, '\x01', 19999);
  msg[19999] = '\0';
  char big[1000];
  memset(big, '"', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  smc_logfield_t f[1] = {{"node", big, 0, 0}};
  char *t = capture("debug", f, 1, msg);
  json_t *j = json_loads(t, 0, NULL);
  assert_non_null(j);
  assert_true(strlen(json_string_value(json_object_get(j, "msg"))) <= 3003);
  json_decref(j);
  free(t);
  free(msg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_format),
      cmocka_unit_test_teardown(test_text_and_logfmt, teardown),
      cmocka_unit_test_teardown(test_json, teardown),
      cmocka_unit_test_teardown(test_json_long_line, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
