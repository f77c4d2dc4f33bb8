/*
 * Data-driven tests of the machine compiler and validator: every case in
 * tests/data/cases (see tests/data/README.md for the format) becomes one
 * cmocka test named after the case, so a failure names it. An optional
 * argument is a cmocka name filter (e.g. 'lock:*').
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/util.h"
#include "smc/machine.h"

typedef struct data_case {
  char *label; /* "file:line: name" */
  json_t *json;
} data_case_t;

/* What one case holds while it runs; freed by the teardown, so a failing
 * assertion (which longjmps out of the case) leaks nothing. */
static struct run {
  char *text;
  smc_machine_t *m;
  smc_diags_t diags;
  json_t *out_data;
  char *first;
} run;

static data_case_t *cases;
static size_t ncases, capcases;
static size_t nfiles;

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 8192, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf)
      break;
    n += fread(buf + n, 1, cap - n - 1, f);
    if (n < cap - 1)
      break;
    char *nb = realloc(buf, cap * 2);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  fclose(f);
  if (buf) {
    buf[n] = '\0';
    if (len)
      *len = n;
  }
  return buf;
}

static void add_case(const char *file, int line, json_t *c) {
  const char *name = json_string_value(json_object_get(c, "name"));
  char label[512];
  snprintf(label, sizeof(label), "%s:%d: %s", file, line, name ? name : "(unnamed)");
  if (ncases == capcases) {
    capcases = capcases ? capcases * 2 : 256;
    cases = realloc(cases, capcases * sizeof(*cases));
    if (!cases) {
      fprintf(stderr, "out of memory\n");
      exit(1);
    }
  }
  cases[ncases].label = strdup(label);
  cases[ncases].json = c;
  ncases++;
}

/* A .json file holds one case; a .jsonl file one case per line, with blank
 * lines and lines starting with '#' skipped. A line that does not parse is
 * kept as a case that fails with the parse error. */
static void load_file(const char *dir, const char *file) {
  char path[4096];
  snprintf(path, sizeof(path), "%.2000s/%.1000s", dir, file);
  size_t len = strlen(file);
  int lines = len > 6 && !strcmp(file + len - 6, ".jsonl");
  if (!lines && !(len > 5 && !strcmp(file + len - 5, ".json")))
    return;
  char *text = slurp(path, NULL);
  if (!text) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(1);
  }
  nfiles++;
  if (!lines) {
    json_error_t je;
    json_t *c = json_loads(text, 0, &je);
    if (!c)
      c = json_pack("{s:s}", "parse_error", je.text);
    add_case(file, 1, c);
    free(text);
    return;
  }
  int lineno = 0;
  for (char *p = text, *nl; p && *p; p = nl ? nl + 1 : NULL) {
    nl = strchr(p, '\n');
    if (nl)
      *nl = '\0';
    lineno++;
    while (*p == ' ' || *p == '\t' || *p == '\r')
      p++;
    if (*p == '\0' || *p == '#')
      continue;
    json_error_t je;
    json_t *c = json_loads(p, 0, &je);
    if (!c)
      c = json_pack("{s:s}", "parse_error", je.text);
    add_case(file, lineno, c);
  }
  free(text);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_cases(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "cannot open %s\n", dir);
    exit(1);
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 32;
      char **grown = realloc(names, cap * sizeof(*names));
      if (!grown) {
        fprintf(stderr, "test_data: out of memory listing %s\n", dir);
        exit(1);
      }
      names = grown;
    }
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  if (n > 0)
    qsort(names, n, sizeof(*names), cmp_names);
  for (size_t i = 0; i < n; i++) {
    load_file(dir, names[i]);
    free(names[i]);
  }
  free(names);
}

/* The machine text of a case: a path (relative to the source tree) when the
 * string is one line ending in .yaml/.yml/.json, inline YAML otherwise, or a
 * JSON object (JSON is YAML). Caller frees. */
static char *machine_text(const json_t *m, size_t *len) {
  if (json_is_object(m)) {
    char *s = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
      *len = strlen(s);
    return s;
  }
  const char *s = json_string_value(m);
  if (!s)
    fail_msg("case has no machine");
  size_t n = strlen(s);
  int is_path = !strchr(s, '\n') &&
                ((n > 5 && !strcmp(s + n - 5, ".yaml")) || (n > 4 && !strcmp(s + n - 4, ".yml")) ||
                 (n > 5 && !strcmp(s + n - 5, ".json")));
  if (is_path) {
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", SMC_SOURCE_DIR, s);
    char *text = slurp(path, len);
    if (!text)
      fail_msg("cannot read machine %s", path);
    return text;
  }
  *len = n;
  return strdup(s);
}

static void apply_limits(const json_t *j, smc_limits_t *l) {
  smc_limits_default(l);
  if (!j)
    return;
  json_t *v;
  if ((v = json_object_get(j, "expr_steps")))
    l->expr_steps = (uint64_t)json_integer_value(v);
  if ((v = json_object_get(j, "regex_match_limit")))
    l->regex_match_limit = (uint32_t)json_integer_value(v);
  if ((v = json_object_get(j, "regex_depth_limit")))
    l->regex_depth_limit = (uint32_t)json_integer_value(v);
  if ((v = json_object_get(j, "definition_max_bytes")))
    l->definition_max_bytes = (size_t)json_integer_value(v);
  if ((v = json_object_get(j, "data_max_bytes")))
    l->data_max_bytes = (size_t)json_integer_value(v);
}

static void print_diags(const smc_diags_t *d) {
  for (size_t i = 0; i < d->count; i++)
    print_message("  diag: %s %s line %d column %d: %s\n",
                  d->items[i].warning ? "warning" : "error", smc_code_name(d->items[i].err.code),
                  d->items[i].err.line, d->items[i].err.column, d->items[i].err.message);
}

/* Every expected diagnostic of one kind (errors or warnings) matches a
 * distinct actual one (code, and line/column where given), and there are
 * no others of that kind. */
static void check_diags(const json_t *expected, const smc_diags_t *d, int warning) {
  size_t want = json_array_size(expected), have = warning ? d->warnings : d->errors;
  char used[256] = {0};
  size_t i;
  json_t *e;
  json_array_foreach(expected, i, e) {
    const char *code = json_string_value(json_object_get(e, "code"));
    json_t *line = json_object_get(e, "line"), *col = json_object_get(e, "column");
    int found = 0;
    for (size_t k = 0; k < d->count && k < sizeof(used) && !found; k++) {
      const smc_diag_t *g = &d->items[k];
      if (used[k] || (g->warning != 0) != (warning != 0))
        continue;
      if (!code || strcmp(code, smc_code_name(g->err.code)))
        continue;
      if (line && json_integer_value(line) != g->err.line)
        continue;
      if (col && json_integer_value(col) != g->err.column)
        continue;
      used[k] = 1;
      found = 1;
    }
    if (!found) {
      print_diags(d);
      fail_msg("expected %s %s (line %lld, column %lld; 0 = any) not reported",
               warning ? "warning" : "error", code ? code : "?",
               (long long)json_integer_value(line), (long long)json_integer_value(col));
    }
  }
  if (want != have) {
    print_diags(d);
    fail_msg("expected %zu %s, got %zu", want, warning ? "warnings" : "errors", have);
  }
}

static const char *opt_str(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

static void check_outcome(const json_t *expect, int rc, const smc_outcome_t *out,
                          const smc_error_t *err) {
  const json_t *xerr = json_object_get(expect, "error");
  if (xerr) {
    const char *code = opt_str(xerr, "code"), *path = opt_str(xerr, "path"),
               *msg = opt_str(xerr, "message");
    if (rc == 0) {
      char got[1024], *d = smc_json_canonical(out->data);
      snprintf(got, sizeof(got), "%s", d ? d : "?");
      free(d);
      fail_msg("expected error %s, but accepted: %s -> %s %s", code, out->name, out->state, got);
    }
    if (code && strcmp(code, smc_code_name(rc)))
      fail_msg("expected %s, got %s (path '%s': %s)", code, smc_code_name(rc), err->path,
               err->message);
    assert_int_equal(err->code, rc);
    if (path && strcmp(path, err->path))
      fail_msg("expected path '%s', got '%s' (%s)", path, err->path, err->message);
    if (msg && !strstr(err->message, msg))
      fail_msg("expected message containing '%s', got '%s'", msg, err->message);
    return;
  }
  if (rc != 0)
    fail_msg("expected success, got %s (path '%s': %s)", smc_code_name(rc), err->path,
             err->message);
  const char *state = opt_str(expect, "state"), *tr = opt_str(expect, "transition");
  if (state && strcmp(state, out->state))
    fail_msg("expected state %s, got %s", state, out->state);
  if (tr && strcmp(tr, out->name))
    fail_msg("expected transition %s, got %s", tr, out->name);
  const json_t *data = json_object_get(expect, "data");
  if (data) {
    char want[4096], got[4096], *w = smc_json_canonical(data), *g = smc_json_canonical(out->data);
    snprintf(want, sizeof(want), "%s", w ? w : "?");
    snprintf(got, sizeof(got), "%s", g ? g : "?");
    free(w);
    free(g);
    if (strcmp(want, got))
      fail_msg("data differs\n  expected %s\n  got      %s", want, got);
  }
}

/* Canonical text of an outcome or error, to check determinism. */
static char *outcome_text(int rc, const smc_outcome_t *out, const smc_error_t *err) {
  char buf[2048];
  if (rc != 0) {
    snprintf(buf, sizeof(buf), "%d %s %s", rc, err->path, err->message);
    return strdup(buf);
  }
  char *d = smc_json_canonical(out->data);
  snprintf(buf, sizeof(buf), "%zu %s %s %s", out->transition, out->name, out->state, d ? d : "?");
  free(d);
  return strdup(buf);
}

static int case_teardown(void **state) {
  (void)state;
  json_decref(run.out_data);
  free(run.first);
  smc_machine_destroy(run.m);
  smc_diags_close(&run.diags);
  free(run.text);
  memset(&run, 0, sizeof(run));
  return 0;
}

/* Compile the case's machine; check the expected diagnostics if any. */
static void compile_case(const json_t *c, const smc_limits_t *limits) {
  size_t len = 0;
  run.text = machine_text(json_object_get(c, "machine"), &len);
  smc_diags_init(&run.diags);
  int crc = smc_machine_compile(run.text, len, "case.yaml", limits, &run.m, &run.diags);
  const json_t *xce = json_object_get(c, "expect_compile_errors");
  const json_t *xw = json_object_get(c, "expect_warnings");
  if (xce) {
    if (json_array_size(xce) > 0 && crc == 0)
      fail_msg("expected the definition to fail to compile");
    if (json_array_size(xce) > 0 && crc != SMC_EINVALID_MACHINE)
      fail_msg("compile returned %s, expected invalid_machine", smc_code_name(crc));
    if (json_array_size(xce) == 0 && crc != 0) {
      print_diags(&run.diags);
      fail_msg("expected the definition to compile");
    }
    check_diags(xce, &run.diags, 0);
  } else if (crc != 0) {
    print_diags(&run.diags);
    fail_msg("machine does not compile: %s", smc_code_name(crc));
  }
  if (xw)
    check_diags(xw, &run.diags, 1);
  if (!json_object_get(c, "expect") && !xce && !xw)
    fail_msg("case has neither expect nor expect_compile_errors");
}

static void run_case(void **state) {
  const data_case_t *dc = *state;
  const json_t *c = dc->json;
  if (json_object_get(c, "parse_error"))
    fail_msg("case does not parse: %s", opt_str(c, "parse_error"));
  smc_limits_t limits;
  apply_limits(json_object_get(c, "limits"), &limits);
  compile_case(c, &limits);
  if (!opt_str(c, "name"))
    fail_msg("case has no name");
  const json_t *expect = json_object_get(c, "expect");
  if (!expect)
    return;
  if (!json_object_get(expect, "error") && !opt_str(expect, "state"))
    fail_msg("expect needs an error or a state");
  assert_non_null(run.m);
  const json_t *o = json_object_get(c, "object"), *p = json_object_get(c, "proposal");
  smc_object_view_t obj = {.id = "obj-1"};
  if (json_is_object(o)) {
    if (opt_str(o, "id"))
      obj.id = opt_str(o, "id");
    obj.state = opt_str(o, "state");
    obj.version = json_integer_value(json_object_get(o, "version"));
    obj.data = json_object_get(o, "data");
  }
  smc_proposal_view_t pv = {
      .transition = opt_str(p, "transition"),
      .to = opt_str(p, "to"),
      .input = json_object_get(p, "data"),
      .proposer = opt_str(p, "proposer"),
      .time = json_integer_value(json_object_get(p, "time")),
  };
  /* Twice: the second run must give the same outcome byte for byte. */
  for (int round = 0; round < 2; round++) {
    smc_outcome_t out = {0};
    smc_error_t err;
    smc_error_clear(&err);
    int rc = smc_machine_validate(run.m, &obj, &pv, &limits, &out, &err);
    run.out_data = rc == 0 ? out.data : NULL;
    check_outcome(expect, rc, &out, &err);
    char *t = outcome_text(rc, &out, &err);
    json_decref(run.out_data);
    run.out_data = NULL;
    if (!run.first) {
      run.first = t;
    } else {
      int same = !strcmp(run.first, t);
      free(t);
      if (!same)
        fail_msg("not deterministic: the second validation differs from the first");
    }
  }
}

int main(int argc, char **argv) {
  char dir[2048];
  snprintf(dir, sizeof(dir), "%s/tests/data/cases", SMC_SOURCE_DIR);
  load_cases(dir);
  if (ncases == 0) {
    fprintf(stderr, "no cases found in %s\n", dir);
    return 1;
  }
  struct CMUnitTest *tests = calloc(ncases, sizeof(*tests));
  if (!tests)
    return 1;
  for (size_t i = 0; i < ncases; i++) {
    tests[i].name = cases[i].label;
    tests[i].test_func = run_case;
    tests[i].initial_state = &cases[i];
    tests[i].teardown_func = case_teardown;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  printf("data-driven cases: %zu from %zu files in %s\n", ncases, nfiles, dir);
  int failed = _cmocka_run_group_tests("data", tests, ncases, NULL, NULL);
  printf("data-driven cases: %zu loaded, %d failed\n", ncases, failed);
  for (size_t i = 0; i < ncases; i++) {
    free(cases[i].label);
    json_decref(cases[i].json);
  }
  free(cases);
  free(tests);
  return failed ? 1 : 0;
}
