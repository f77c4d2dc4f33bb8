/*
 * smc machine check [-o text|json] FILE...: compile definitions offline and
 * print every error and warning. The cluster verbs (apply, get, list) live in
 * cmd_machine_remote.c; this file only dispatches to them.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/util.h"
#include "smc/machine.h"

static void usage(FILE *out) {
  fprintf(out, "usage: smc machine check [-o text|json] FILE...\n"
               "       smc machine apply FILE | get NAME | list   (see smc machine apply --help)\n"
               "  check: compile each definition offline (no cluster needed) and print every\n"
               "  error and warning as FILE:LINE:COL: error|warning: CODE: message.\n"
               "  A file that compiles prints FILE: ok: NAME HASH (text mode).\n"
               "  FILE may be - for standard input.\n"
               "  exit status: 0 all compile (warnings allowed), 1 errors, 2 usage\n");
}

static json_t *diag_json(const char *file, const smc_diag_t *d) {
  return json_pack("{s:s, s:i, s:i, s:s, s:s, s:s}", "file", file, "line", d->err.line, "column",
                   d->err.column, "severity", d->warning ? "warning" : "error", "code",
                   smc_code_name(d->err.code), "message", d->err.message);
}

/* Check one file; append to the JSON report or print text. Returns 1 when
 * the file has errors. */
static int check_file(const char *path, json_t *report) {
  size_t len = 0;
  char *text = strcmp(path, "-") ? smc_read_file(path, &len) : smc_read_stream(stdin, &len);
  smc_diags_t diags;
  smc_machine_t *m = NULL;
  int bad;
  if (!text) {
    const char *why = strerror(errno);
    if (report) {
      json_array_append_new(json_object_get(report, "diagnostics"),
                            json_pack("{s:s, s:i, s:i, s:s, s:s, s:s}", "file", path, "line", 0,
                                      "column", 0, "severity", "error", "code",
                                      smc_code_name(SMC_EIO), "message", why));
    } else {
      printf("%s: error: %s: %s\n", path, smc_code_name(SMC_EIO), why);
    }
    return 1;
  }
  smc_diags_init(&diags);
  int rc = smc_machine_compile(text, len, path, NULL, &m, &diags);
  bad = rc != 0;
  for (size_t i = 0; i < diags.count; i++) {
    const smc_diag_t *d = &diags.items[i];
    if (report)
      json_array_append_new(json_object_get(report, "diagnostics"), diag_json(path, d));
    else
      printf("%s:%d:%d: %s: %s: %s\n", path, d->err.line, d->err.column,
             d->warning ? "warning" : "error", smc_code_name(d->err.code), d->err.message);
  }
  if (rc && !diags.errors) { /* failed without a diagnostic: out of memory */
    if (report)
      json_array_append_new(json_object_get(report, "diagnostics"),
                            json_pack("{s:s, s:i, s:i, s:s, s:s, s:s}", "file", path, "line", 0,
                                      "column", 0, "severity", "error", "code", smc_code_name(rc),
                                      "message", smc_strerror(rc)));
    else
      printf("%s: error: %s: %s\n", path, smc_code_name(rc), smc_strerror(rc));
  }
  if (diags.count < diags.errors + diags.warnings && !report)
    printf("%s: %zu more diagnostics not shown\n", path,
           diags.errors + diags.warnings - diags.count);
  if (m) {
    if (report)
      json_array_append_new(json_object_get(report, "machines"),
                            json_pack("{s:s, s:s, s:s, s:s, s:i, s:i}", "file", path, "name",
                                      smc_machine_name(m), "hash", smc_machine_hash(m), "kind",
                                      smc_machine_is_dfsm(m) ? "dfsm" : "ndfsm", "states",
                                      (int)smc_machine_state_count(m), "transitions",
                                      (int)smc_machine_transition_count(m)));
    else
      printf("%s: ok: %s %s\n", path, smc_machine_name(m), smc_machine_hash(m));
  }
  smc_machine_destroy(m);
  smc_diags_close(&diags);
  free(text);
  return bad;
}

/* Options may come before or after the files (`smc machine check F -o json`);
 * "--" ends them, "-" alone is standard input. */
static int cmd_check(int argc, char **argv) {
  int json = 0, nfiles = 0, opts = 1;
  char **files = calloc((size_t)argc + 1, sizeof *files);
  if (!files)
    return SMC_EXIT_FAILED;
  for (int i = 1; i < argc; i++) {
    if (opts && (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))) {
      usage(stdout);
      free(files);
      return SMC_EXIT_OK;
    } else if (opts && (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output") ||
                        !strncmp(argv[i], "--output=", 9))) {
      const char *v = !strncmp(argv[i], "--output=", 9) ? argv[i] + 9
                      : i + 1 < argc                    ? argv[++i]
                                                        : NULL;
      if (!v || (strcmp(v, "json") && strcmp(v, "text"))) {
        fprintf(stderr, "smc machine check: -o takes text or json\n");
        free(files);
        return SMC_EXIT_USAGE;
      }
      json = !strcmp(v, "json");
    } else if (opts && !strcmp(argv[i], "--")) {
      opts = 0;
    } else if (opts && argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "smc machine check: unknown option '%s'\n", argv[i]);
      usage(stderr);
      free(files);
      return SMC_EXIT_USAGE;
    } else {
      files[nfiles++] = argv[i];
    }
  }
  if (nfiles == 0) {
    fprintf(stderr, "smc machine check: no FILE given\n");
    usage(stderr);
    free(files);
    return SMC_EXIT_USAGE;
  }
  json_t *report = json ? json_pack("{s:[], s:[]}", "machines", "diagnostics") : NULL;
  int bad = 0;
  for (int i = 0; i < nfiles; i++)
    bad |= check_file(files[i], report);
  free(files);
  if (report) {
    json_object_set_new(report, "ok", json_boolean(!bad));
    char *s = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
      printf("%s\n", s);
    free(s);
    json_decref(report);
  }
  return bad ? SMC_EXIT_FAILED : SMC_EXIT_OK;
}

/* Dispatch point for `smc machine VERB`: add verbs as else-if branches. */
static int run(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return SMC_EXIT_USAGE;
  }
  const char *verb = argv[1];
  if (!strcmp(verb, "-h") || !strcmp(verb, "--help") || !strcmp(verb, "help")) {
    usage(stdout);
    return SMC_EXIT_OK;
  } else if (!strcmp(verb, "check")) {
    return cmd_check(argc - 1, argv + 1);
  } else if (!strcmp(verb, "apply")) {
    return smc_machine_cli_apply(argc - 1, argv + 1);
  } else if (!strcmp(verb, "get")) {
    return smc_machine_cli_get(argc - 1, argv + 1);
  } else if (!strcmp(verb, "list")) {
    return smc_machine_cli_list(argc - 1, argv + 1);
  }
  fprintf(stderr, "smc machine: unknown subcommand '%s'\n", verb);
  usage(stderr);
  return SMC_EXIT_USAGE;
}

const smc_command_t smc_cmd_machine = {
    .name = "machine",
    .summary = "check a definition offline; apply, get or list machines of a cluster",
    .run = run,
};
