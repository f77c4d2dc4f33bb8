/* End-to-end tests of `smc simulate` (src/cli/cmd_simulate.c): runs the
 * built smc binary on a small log, in memory and with --state-dir split in
 * two invocations, and checks outputs, stderr and exit statuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[64];

static void write_file(const char *name, const char *text) {
  char p[256];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static char *read_all(const char *name) {
  char p[256];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  FILE *f = fopen(p, "r");
  assert_non_null(f);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = 0;
  fclose(f);
  return strdup(buf);
}

/* Run smc with args (in dir); stdout to out, stderr to err. Exit status. */
static int smc(const char *args, const char *out, const char *err) {
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "cd '%s' && '%s/smc' %s > %s 2> %s", dir, SMC_BINARY_DIR, args, out,
           err);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char LOCK[] = "name: lock\nstates:\n  free: {}\n  held: {}\n"
                           "transitions:\n  create: {from: null, to: free}\n"
                           "  acquire: {from: free, to: held}\n"
                           "  release: {from: held, to: free}\n";

static const char LOG[] =
    "{\"type\":\"proposal\",\"id\":\"p1\",\"machine\":\"lock\",\"object\":\"a\","
    "\"transition\":\"create\",\"time\":1000}\n"
    "{\"type\":\"proposal\",\"id\":\"p2\",\"machine\":\"lock\",\"object\":\"b\","
    "\"transition\":\"create\"}\n"
    "\n"
    "this line is not json\n"
    "{\"type\":\"proposal\",\"id\":\"p3\",\"object\":\"a\",\"transition\":\"acquire\","
    "\"time\":2000}\n"
    "{\"type\":\"proposal\",\"id\":\"p4\",\"object\":\"a\",\"transition\":\"acquire\"}\n"
    "{\"type\":\"read\",\"id\":\"r\",\"object\":\"a\",\"offset\":\"x\"}\n"
    "{\"type\":\"read\",\"id\":\"r\",\"object\":\"a\"}\n"
    "{\"type\":\"proposal\",\"id\":\"p3\",\"object\":\"a\",\"transition\":\"acquire\"}\n"
    "{\"type\":\"proposal\",\"id\":\"p5\",\"object\":\"b\",\"transition\":\"acquire\","
    "\"time\":3000}\n";

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/smc-sim-XXXXXX");
  assert_non_null(mkdtemp(dir));
  write_file("lock.yaml", LOCK);
  write_file("log.jsonl", LOG);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd);
}

static int count_lines(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)); p++)
    n++;
  return n;
}

static void in_memory(void **state) {
  (void)state;
  assert_int_equal(smc("simulate lock.yaml --log log.jsonl", "out1", "err1"), 0);
  char *out = read_all("out1"), *err = read_all("err1");
  assert_int_equal(count_lines(out, "\n"), 7);
  assert_int_equal(count_lines(out, "\"kind\":\"confirmation\""), 6);
  assert_int_equal(count_lines(out, "\"kind\":\"reply\""), 1);
  assert_int_equal(count_lines(out, "\"duplicate\":true"), 1);
  assert_non_null(strstr(out, "\"code\":\"invalid_transition\""));
  /* the first line, exactly (time from the line, offset 0, canonical) */
  assert_true(!strncmp(out, "{\"checksum\":\"", 13));
  assert_non_null(strstr(out, "\"offset\":0,\"outcome\":\"committed\",\"proposal\":\"p1\""));
  assert_non_null(strstr(err, "log.jsonl:4: malformed line skipped"));
  assert_non_null(strstr(err, "log.jsonl:7: malformed line skipped: bad \"offset\""));
  /* same input, same bytes */
  assert_int_equal(smc("simulate lock.yaml --log log.jsonl", "out2", "err2"), 0);
  char *out2 = read_all("out2");
  assert_string_equal(out, out2);
  free(out);
  free(out2);
  free(err);
}

static void split_state_dir(void **state) {
  (void)state;
  assert_int_equal(smc("simulate lock.yaml --log log.jsonl", "whole", "e0"), 0);
  /* lines 1-5 then 6-10, the state kept in RocksDB between the runs */
  char cmd[512];
  snprintf(cmd, sizeof(cmd),
           "cd '%s' && head -5 log.jsonl > a.jsonl && tail -n +6 log.jsonl > b.jsonl", dir);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(smc("simulate lock.yaml --log a.jsonl --state-dir st", "part1", "e1"), 0);
  assert_int_equal(smc("simulate lock.yaml --log b.jsonl --state-dir st", "part2", "e2"), 0);
  char *whole = read_all("whole"), *p1 = read_all("part1"), *p2 = read_all("part2");
  size_t n1 = strlen(p1);
  assert_int_equal(n1 + strlen(p2), strlen(whole));
  assert_memory_equal(whole, p1, n1);
  assert_string_equal(whole + n1, p2);
  /* records with explicit offsets below the applied offset are skipped */
  write_file("c.jsonl", "{\"type\":\"proposal\",\"id\":\"p9\",\"machine\":\"lock\","
                        "\"object\":\"c\",\"transition\":\"create\",\"offset\":1}\n");
  assert_int_equal(smc("simulate lock.yaml --log c.jsonl --state-dir st", "part3", "e3"), 0);
  char *p3 = read_all("part3");
  assert_string_equal(p3, "");
  free(p3);
  /* without offsets, the first half again continues the log: the state
   * persisted, so its proposals are duplicates */
  assert_int_equal(smc("simulate lock.yaml --log a.jsonl --state-dir st", "part3", "e3"), 0);
  p3 = read_all("part3");
  assert_int_equal(count_lines(p3, "\n"), 3);
  assert_int_equal(count_lines(p3, "\"duplicate\":true"), 3);
  free(whole);
  free(p1);
  free(p2);
  free(p3);
}

/* The fold limits come from the log (settings events, as `smc cluster
 * settings` writes them), so simulate decides as the cluster does: data of
 * exactly max_data_bytes commits, one byte more is too_large. The flags
 * and variables that once set them are refused, pointing at the setting. */
static void limits(void **state) {
  (void)state;
  static const char BIG[] =
      "{\"type\":\"proposal\",\"id\":\"q1\",\"machine\":\"lock\",\"object\":\"c\","
      "\"transition\":\"create\",\"data\":{\"n\":12345}}\n";
  char text[1024];
  /* canonical {"n":12345} is 11 bytes */
  snprintf(text, sizeof text, "{\"type\":\"settings\",\"limits\":{\"max_data_bytes\":11}}\n%s",
           BIG);
  write_file("big11.jsonl", text);
  snprintf(text, sizeof text, "{\"type\":\"settings\",\"limits\":{\"max_data_bytes\":10}}\n%s",
           BIG);
  write_file("big10.jsonl", text);
  write_file("big.jsonl", BIG);
  assert_int_equal(smc("simulate lock.yaml --log big11.jsonl --partitions 3", "o", "e"), 0);
  char *out = read_all("o");
  assert_non_null(strstr(out, "\"outcome\":\"committed\""));
  free(out);
  assert_int_equal(smc("simulate lock.yaml --log big10.jsonl --partitions 3", "o", "e"), 0);
  out = read_all("o");
  assert_non_null(strstr(out, "\"code\":\"too_large\""));
  free(out);
  assert_int_equal(smc("simulate lock.yaml --log big.jsonl", "o", "e"), 0);
  out = read_all("o");
  assert_non_null(strstr(out, "\"outcome\":\"committed\""));
  free(out);
  assert_int_equal(smc("simulate lock.yaml --log big.jsonl --max-data-bytes 10", "o", "e"), 2);
  char *err = read_all("e");
  assert_non_null(strstr(err, "smc cluster settings --max-data-bytes"));
  free(err);
  char cmd[1024];
  snprintf(cmd, sizeof(cmd),
           "cd '%s' && SMC_MAX_DATA_BYTES=10 '%s/smc' simulate lock.yaml --log big.jsonl > o 2> e",
           dir, SMC_BINARY_DIR);
  assert_int_equal(WEXITSTATUS(system(cmd)), 2);
  /* a settings event for a newer fold: simulate stops there */
  write_file("newer.jsonl", "{\"type\":\"settings\",\"fold\":99,\"limits\":{}}\n");
  assert_int_equal(smc("simulate lock.yaml --log newer.jsonl", "o", "e"), 1);
  err = read_all("e");
  assert_non_null(strstr(err, "newer fold"));
  free(err);
}

static void bad_usage(void **state) {
  (void)state;
  assert_int_equal(smc("simulate lock.yaml", "o", "e"), 2);
  assert_int_equal(smc("simulate --log log.jsonl", "o", "e"), 2);
  assert_int_equal(smc("simulate lock.yaml --log log.jsonl --partitions 0", "o", "e"), 2);
  write_file("broken.yaml", "name: broken\nstates: [\n");
  assert_int_equal(smc("simulate broken.yaml --log log.jsonl", "o", "e"), 1);
  char *err = read_all("e");
  assert_non_null(strstr(err, "invalid_machine"));
  free(err);
  assert_int_equal(smc("simulate lock.yaml --log missing.jsonl", "o", "e"), 1);
  /* another definition of lock than the one in the state dir */
  write_file("lock2.yaml", "name: lock\nstates: {x: {}}\ntransitions:\n"
                           "  create: {from: null, to: x}\n");
  assert_int_equal(smc("simulate lock.yaml --log log.jsonl --state-dir st2", "o", "e"), 0);
  assert_int_equal(smc("simulate lock2.yaml --log log.jsonl --state-dir st2", "o", "e"), 1);
  err = read_all("e");
  assert_non_null(strstr(err, "machine_exists"));
  free(err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(in_memory),
      cmocka_unit_test(split_state_dir),
      cmocka_unit_test(bad_usage),
      cmocka_unit_test(limits),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
