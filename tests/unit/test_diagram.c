/* Diagram rendering (src/core/diagram.c): structure of dot and mermaid output
 * for the lock, lease and approval examples and for inline machines. */
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

#include "core/diagram.h"
#include "smc/machine.h"

static smc_machine_t *compile_text(const char *text, const char *file) {
  smc_machine_t *m = NULL;
  smc_diags_t d;
  smc_diags_init(&d);
  int rc = smc_machine_compile(text, strlen(text), file, NULL, &m, &d);
  for (size_t i = 0; i < d.count; i++)
    if (!d.items[i].warning)
      print_error("%s:%d:%d: %s: %s\n", file, d.items[i].err.line, d.items[i].err.column,
                  smc_code_name(d.items[i].err.code), d.items[i].err.message);
  smc_diags_close(&d);
  assert_int_equal(rc, 0);
  assert_non_null(m);
  return m;
}

static smc_machine_t *compile_example(const char *name) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/examples/machines/%s", SMC_SOURCE_DIR, name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return compile_text(buf, path);
}

static char *render(const smc_machine_t *m, const char *format) {
  char *out = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_diagram_render(m, format, &out, &err), 0);
  assert_non_null(out);
  return out;
}

/* Count non-overlapping occurrences of needle in hay. */
static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + strlen(needle), needle))
    n++;
  return n;
}

#define assert_has(hay, needle)                                                                    \
  do {                                                                                             \
    if (!strstr((hay), (needle)))                                                                  \
      fail_msg("missing %s in:\n%s", (needle), (hay));                                             \
  } while (0)

static void test_lock_dot(void **state) {
  (void)state;
  smc_machine_t *m = compile_example("lock.yaml");
  char *dot = render(m, "dot");
  assert_true(strncmp(dot, "digraph \"lock\" {", 16) == 0);
  assert_has(dot, "\"__start\" [shape=point");
  assert_has(dot, "\"__start\" -> \"free\" [label=\"create\"];");
  assert_has(dot, "\"free\" -> \"held\" [label=\"acquire\"];");
  assert_has(dot, "\"held\" -> \"free\" [label=\"release\"];");
  assert_has(dot, "\"free\" -> \"retired\" [label=\"retire\"];");
  assert_has(dot, "\"retired\" [label=\"retired\", shape=doublecircle]");
  assert_has(dot, "\"free\" [label=\"free\"];");
  assert_has(dot, "\"held\" [label=\"held\"];");
  /* exactly 4 edges, one start point, nothing leaves the final state */
  assert_int_equal(count(dot, " -> "), 4);
  assert_int_equal(count(dot, "\"__start\" -> "), 1);
  assert_int_equal(count(dot, "\"retired\" -> "), 0);
  assert_int_equal(count(dot, "doublecircle"), 1);
  assert_int_equal(count(dot, "dashed"), 0);
  assert_string_equal(dot + strlen(dot) - 2, "}\n");
  /* deterministic: the same machine renders to the same bytes */
  char *again = render(m, "dot");
  assert_string_equal(dot, again);
  free(again);
  free(dot);
  smc_machine_destroy(m);
}

static void test_lock_mermaid(void **state) {
  (void)state;
  smc_machine_t *m = compile_example("lock.yaml");
  char *mm = render(m, "mermaid");
  assert_has(mm, "\nstateDiagram-v2\n");
  assert_has(mm, "title: lock\n");
  assert_has(mm, "  state \"free\" as s0\n");
  assert_has(mm, "  state \"held\" as s1\n");
  assert_has(mm, "  state \"retired\" as s2\n");
  assert_has(mm, "  [*] --> s0 : create\n");
  assert_has(mm, "  s0 --> s1 : acquire\n");
  assert_has(mm, "  s1 --> s0 : release\n");
  assert_has(mm, "  s0 --> s2 : retire\n");
  assert_has(mm, "  s2 --> [*]\n");
  assert_has(mm, "  class s2 final\n");
  assert_int_equal(count(mm, "--> [*]"), 1);
  assert_int_equal(count(mm, "[*] -->"), 1);
  assert_int_equal(count(mm, "s2 --> s"), 0);
  free(mm);
  smc_machine_destroy(m);
}

static void test_lease_dot(void **state) {
  (void)state;
  smc_machine_t *m = compile_example("lease.yaml");
  char *dot = render(m, "dot");
  assert_has(dot, "\"__start\" -> \"available\" [label=\"create\"];");
  assert_has(dot, "\"available\" -> \"leased\" [label=\"acquire\"];");
  assert_has(dot, "\"leased\" -> \"leased\" [label=\"renew\"];");
  assert_has(dot, "\"leased\" -> \"available\" [label=\"release\"];");
  assert_has(dot, "\"leased\" -> \"available\" [label=\"expire (after 30s)\", style=dashed];");
  assert_int_equal(count(dot, "dashed"), 1);
  assert_int_equal(count(dot, "doublecircle"), 0);
  assert_int_equal(count(dot, " -> "), 5);
  free(dot);
  smc_machine_destroy(m);
}

static void test_lease_mermaid(void **state) {
  (void)state;
  smc_machine_t *m = compile_example("lease.yaml");
  char *mm = render(m, "mermaid");
  assert_has(mm, "  [*] --> s0 : create\n");
  assert_has(mm, "  s1 --> s1 : renew\n");
  assert_has(mm, "  s1 --> s0 : expire (after 30s)\n");
  /* no final state: no end edge, no final class */
  assert_int_equal(count(mm, "--> [*]"), 0);
  assert_int_equal(count(mm, "classDef"), 0);
  free(mm);
  smc_machine_destroy(m);
}

static void test_votes_bold(void **state) {
  (void)state;
  smc_machine_t *m = compile_example("approval.yaml");
  char *dot = render(m, "dot");
  assert_has(dot, "\"pending\" -> \"approved\" [label=\"approve [2 of 3 votes]\", style=bold");
  assert_has(dot, "\"pending\" -> \"withdrawn\" [label=\"withdraw\"];");
  assert_has(dot, "\"__start\" -> \"pending\" [label=\"request\"];");
  assert_int_equal(count(dot, "style=bold"), 1);
  assert_int_equal(count(dot, "doublecircle"), 2);
  char *mm = render(m, "mermaid");
  assert_has(mm, " --> s1 : approve [2 of 3 votes]\n");
  assert_int_equal(count(mm, "--> [*]"), 2);
  free(mm);
  free(dot);
  smc_machine_destroy(m);
}

/* from: "*" is drawn from every non-final state; several creates each get
 * an edge from the start point; a timer and a list of from states. */
static void test_from_any_inline(void **state) {
  (void)state;
  static const char yaml[] = "name: flow\n"
                             "states:\n"
                             "  a: {}\n"
                             "  b: {}\n"
                             "  c: {}\n"
                             "  gone: {final: true}\n"
                             "transitions:\n"
                             "  make_a: {from: null, to: a}\n"
                             "  make_b: {from: null, to: b}\n"
                             "  step: {from: [a, b], to: c}\n"
                             "  kill: {from: '*', to: gone}\n"
                             "  nap: {from: c, to: a, after: 500ms}\n"
                             "  sleep: {from: b, to: a, after: 2h}\n";
  smc_machine_t *m = compile_text(yaml, "inline");
  char *dot = render(m, "dot");
  assert_has(dot, "\"__start\" -> \"a\" [label=\"make_a\"];");
  assert_has(dot, "\"__start\" -> \"b\" [label=\"make_b\"];");
  assert_has(dot, "\"a\" -> \"c\" [label=\"step\"];");
  assert_has(dot, "\"b\" -> \"c\" [label=\"step\"];");
  assert_has(dot, "\"a\" -> \"gone\" [label=\"kill\"];");
  assert_has(dot, "\"b\" -> \"gone\" [label=\"kill\"];");
  assert_has(dot, "\"c\" -> \"gone\" [label=\"kill\"];");
  assert_has(dot, "\"c\" -> \"a\" [label=\"nap (after 500ms)\", style=dashed];");
  assert_has(dot, "\"b\" -> \"a\" [label=\"sleep (after 2h)\", style=dashed];");
  assert_int_equal(count(dot, "\"gone\" -> "), 0);
  assert_int_equal(count(dot, "[label=\"kill\"]"), 3);
  assert_int_equal(count(dot, " -> "), 9);
  char *mm = render(m, "mermaid");
  assert_has(mm, "  [*] --> s0 : make_a\n");
  assert_has(mm, "  [*] --> s1 : make_b\n");
  assert_int_equal(count(mm, " : kill\n"), 3);
  assert_has(mm, "  s3 --> [*]\n");
  free(mm);
  free(dot);
  smc_machine_destroy(m);
}

/* Vote policies are shown as resolved by the compiler: majority and all
 * become numbers; votes: none and a per-transition override win over the
 * machine default. */
static void test_vote_labels(void **state) {
  (void)state;
  static const char yaml[] =
      "name: board\n"
      "votes: {quorum: majority, voters: [a, b, c, d, e]}\n"
      "states:\n"
      "  open: {}\n"
      "  passed: {final: true}\n"
      "  vetoed: {final: true}\n"
      "transitions:\n"
      "  create: {from: null, to: open, votes: none}\n"
      "  pass: {from: open, to: passed}\n"
      "  veto: {from: open, to: vetoed, votes: {quorum: all, voters: [a, b]}}\n"
      "  lapse: {from: open, to: vetoed, after: 7d, votes: {quorum: 1, voters: [a]}}\n";
  smc_machine_t *m = compile_text(yaml, "inline");
  char *dot = render(m, "dot");
  assert_has(dot, "\"__start\" -> \"open\" [label=\"create\"];");
  assert_has(dot, "\"open\" -> \"passed\" [label=\"pass [3 of 5 votes]\", style=bold");
  assert_has(dot, "\"open\" -> \"vetoed\" [label=\"veto [2 of 2 votes]\", style=bold");
  assert_has(dot, "[label=\"lapse (after 7d) [1 of 1 votes]\", style=\"dashed,bold\"");
  free(dot);
  smc_machine_destroy(m);
}

static void test_bad_format(void **state) {
  (void)state;
  smc_machine_t *m = compile_example("lock.yaml");
  char *out = (char *)"untouched";
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_diagram_render(m, "png", &out, &err), SMC_EINVALID_ARGUMENT);
  assert_int_equal(err.code, SMC_EINVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "png"));
  assert_null(out);
  smc_machine_destroy(m);
}

/* Run `smc diagram ARGS` (the CLI built next to the tests) through sh and
 * return its exit status; skip when the binary is not built. */
static int run_cli(const char *env, const char *args) {
  char smc[1024], cmd[4096];
  snprintf(smc, sizeof(smc), "%s/smc", SMC_BINARY_DIR);
  if (access(smc, X_OK) != 0)
    skip();
  snprintf(cmd, sizeof(cmd), "%s '%s' diagram %s 2>/dev/null", env, smc, args);
  int st = system(cmd);
  assert_true(WIFEXITED(st));
  return WEXITSTATUS(st);
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

/* smc diagram: dot and mermaid to a file, svg through Graphviz when `dot` is
 * on PATH, a clear failure (exit 1) without it, usage errors exit 2, and a
 * definition that does not compile exits 1. */
static void test_cli(void **state) {
  (void)state;
  char lock[1024], out[256], args[2048];
  snprintf(lock, sizeof(lock), "'%s/examples/machines/lock.yaml'", SMC_SOURCE_DIR);
  snprintf(out, sizeof(out), "/tmp/smc-test-diagram-%d.out", (int)getpid());

  snprintf(args, sizeof(args), "%s --format mermaid -o %s", lock, out);
  assert_int_equal(run_cli("", args), 0);
  assert_has(read_all(out), "  [*] --> s0 : create\n");

  snprintf(args, sizeof(args), "%s -o %s", lock, out);
  assert_int_equal(run_cli("", args), 0);
  assert_has(read_all(out), "\"free\" -> \"held\" [label=\"acquire\"];");

  if (system("command -v dot >/dev/null 2>&1") == 0) {
    snprintf(args, sizeof(args), "%s --format svg -o %s", lock, out);
    assert_int_equal(run_cli("", args), 0);
    const char *svg = read_all(out);
    assert_has(svg, "<svg");
    assert_has(svg, ">acquire</text>");
    assert_has(svg, ">retired</text>");
  }
  snprintf(args, sizeof(args), "%s --format svg", lock);
  assert_int_equal(run_cli("PATH=/nonexistent", args), 1);

  snprintf(args, sizeof(args), "%s --format png", lock);
  assert_int_equal(run_cli("", args), 2);
  assert_int_equal(run_cli("", ""), 2);
  assert_int_equal(run_cli("", "/nonexistent/machine.yaml"), 1);

  FILE *f = fopen(out, "w");
  assert_non_null(f);
  fputs("name: broken\nstates: {a: {}}\ntransitions:\n  c: {from: null, to: b}\n", f);
  fclose(f);
  assert_int_equal(run_cli("", out), 1);
  unlink(out);
}

static void test_duration(void **state) {
  (void)state;
  char b[32];
  smc_diagram_duration(500, b);
  assert_string_equal(b, "500ms");
  smc_diagram_duration(30000, b);
  assert_string_equal(b, "30s");
  smc_diagram_duration(1800000, b);
  assert_string_equal(b, "30m");
  smc_diagram_duration(7200000, b);
  assert_string_equal(b, "2h");
  smc_diagram_duration(7 * 86400000LL, b);
  assert_string_equal(b, "7d");
  smc_diagram_duration(1500, b);
  assert_string_equal(b, "1500ms");
  smc_diagram_duration(90000, b);
  assert_string_equal(b, "90s");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lock_dot),    cmocka_unit_test(test_lock_mermaid),
      cmocka_unit_test(test_lease_dot),   cmocka_unit_test(test_lease_mermaid),
      cmocka_unit_test(test_votes_bold),  cmocka_unit_test(test_from_any_inline),
      cmocka_unit_test(test_vote_labels), cmocka_unit_test(test_bad_format),
      cmocka_unit_test(test_duration),    cmocka_unit_test(test_cli),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
