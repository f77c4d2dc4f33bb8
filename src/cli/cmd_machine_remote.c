/*
 * smc machine apply FILE | get NAME | list: the machine catalog of a running
 * cluster (the local `smc machine check` lives in cmd_machine.c, which
 * dispatches these three here).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/util.h"
#include "cli/cmd_client.h"
#include "smc/machine.h"

static void remote_usage(FILE *out) {
  fprintf(out, "usage: smc machine apply FILE [--timeout D] [--key FILE]\n"
               "       smc machine get NAME [-o json|yaml]\n"
               "       smc machine list [-o json|text]\n"
               "  apply: compile FILE locally, then register it with the cluster (written to\n"
               "  every partition of the proposals topic and to the machines catalog in one\n"
               "  transaction). Applying the same definition again changes nothing; another\n"
               "  definition under a registered name is its next version, or fails with\n"
               "  machine_exists when it drops a state of the current one, also when one\n"
               "  partition alone refuses it (every partition reports its outcome).\n"
               "  --key FILE    sign the registration with this Ed25519 private key (PEM;\n"
               "                needed when the workers have a --registration-key)\n"
               "  get: the registration of NAME as JSON, or its definition text (-o yaml).\n"
               "  list: every registered machine (name and hash).\n"
               "  --timeout D   default 30s\n" SMC_CLI_CONN_HELP);
}

static const char *apply_key; /* --key FILE of apply */

/* Parse the options, then check that npos operands follow and, unless
 * output is NULL, that -o is json or output. Returns 0 or an exit status
 * (-1: help shown). */
static int parse(int argc, char **argv, smc_cli_conn_t *conn, int *timeout_ms, int npos,
                 const char *output) {
  static const struct option longopts[] = {SMC_CLI_CONN_LONGOPTS,
                                           {"timeout", required_argument, NULL, 't'},
                                           {"key", required_argument, NULL, 'k'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  smc_cli_conn_init(conn);
  *timeout_ms = 30000;
  optind = 1;
  int opt;
  while ((opt = smc_cli_getopt(conn, argc, argv, "ho:X:", longopts, remote_usage)) != -1) {
    if (opt == SMC_CLI_OPT_HELP)
      return -1;
    if (opt == 'k') {
      apply_key = optarg;
      continue;
    }
    if (opt == 't' && !smc_cli_duration(optarg, timeout_ms) && *timeout_ms > 0)
      continue;
    if (opt == 't') {
      fprintf(stderr, "smc machine: --timeout wants a duration like 30s\n");
      remote_usage(stderr);
    }
    return SMC_EXIT_USAGE;
  }
  if (argc - optind != npos ||
      (output && strcmp(conn->output, "json") && strcmp(conn->output, output))) {
    remote_usage(stderr);
    return SMC_EXIT_USAGE;
  }
  return 0;
}

/* argv[0] is "apply" (the machine subcommand), argv[1] the file. */
int smc_machine_cli_apply(int argc, char **argv) {
  smc_cli_conn_t conn;
  int timeout_ms, rc = parse(argc, argv, &conn, &timeout_ms, 1, NULL);
  if (rc)
    goto out;
  const char *path = argv[optind];
  size_t len = 0;
  char *text = smc_read_file(path, &len);
  if (!text) {
    fprintf(stderr, "smc machine apply: cannot read %s: %m\n", path);
    rc = SMC_EXIT_FAILED;
    goto out;
  }
  /* Compile here too, for the name and hash to print (the client compiles
   * again before writing). */
  smc_machine_t *m = NULL;
  smc_diags_t diags;
  smc_diags_init(&diags);
  if (smc_machine_compile(text, len, path, NULL, &m, &diags)) {
    for (size_t i = 0; i < diags.count; i++) {
      const smc_error_t *e = &diags.items[i].err;
      fprintf(stderr, "%s:%d:%d: %s: %s: %s\n", path, e->line, e->column,
              diags.items[i].warning ? "warning" : "error", smc_code_name(e->code), e->message);
    }
    smc_diags_close(&diags);
    free(text);
    rc = SMC_EXIT_FAILED;
    goto out;
  }
  smc_diags_close(&diags);
  smc_client_t *c = NULL;
  if (!(rc = smc_cli_client_open(&conn, &c))) {
    smc_error_t err;
    smc_error_clear(&err);
    smc_vote_key_t *key = NULL;
    int r = apply_key ? smc_vote_key_load(apply_key, &key, &err) : 0;
    if (!r)
      r = key ? smc_client_register_signed(c, text, len, key, NULL, timeout_ms, &err)
              : smc_client_register(c, text, len, timeout_ms, &err);
    smc_vote_key_free(key);
    if (r) {
      smc_cli_print_error("machine apply", &err);
      rc = smc_cli_exit_for(r);
    } else {
      json_t *o = json_pack("{s:s,s:s,s:s}", "name", smc_machine_name(m), "hash",
                            smc_machine_hash(m), "status", "registered");
      smc_cli_print_json(o);
      json_decref(o);
    }
    smc_client_destroy(c);
  }
  smc_machine_destroy(m);
  free(text);
out:
  smc_cli_conn_close(&conn);
  return rc < 0 ? SMC_EXIT_OK : rc;
}

static int load_catalog(const smc_cli_conn_t *conn, int timeout_ms, json_t **cat) {
  smc_client_t *c = NULL;
  int rc = smc_cli_client_open(conn, &c);
  if (rc)
    return rc;
  smc_error_t err;
  smc_error_clear(&err);
  int r = smc_client_machines(c, timeout_ms, cat, &err);
  if (r)
    smc_cli_print_error("machine", &err);
  smc_client_destroy(c);
  return smc_cli_exit_for(r);
}

int smc_machine_cli_get(int argc, char **argv) {
  smc_cli_conn_t conn;
  int timeout_ms, rc = parse(argc, argv, &conn, &timeout_ms, 1, "yaml");
  json_t *cat = NULL;
  if (rc)
    goto out;
  int yaml = !strcmp(conn.output, "yaml");
  if ((rc = load_catalog(&conn, timeout_ms, &cat)))
    goto out;
  json_t *ev = json_object_get(cat, argv[optind]);
  if (!ev) {
    fprintf(stderr, "smc machine get: not_found: no machine named '%s'\n", argv[optind]);
    rc = SMC_EXIT_FAILED;
  } else if (yaml) {
    fputs(json_string_value(json_object_get(ev, "definition")), stdout);
  } else {
    json_t *o = json_deep_copy(ev);
    json_object_del(o, "type");
    smc_cli_print_json(o);
    json_decref(o);
  }
out:
  json_decref(cat);
  smc_cli_conn_close(&conn);
  return rc < 0 ? SMC_EXIT_OK : rc;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int smc_machine_cli_list(int argc, char **argv) {
  smc_cli_conn_t conn;
  int timeout_ms, rc = parse(argc, argv, &conn, &timeout_ms, 0, "text");
  json_t *cat = NULL;
  const char **names = NULL;
  if (rc)
    goto out;
  int text = !strcmp(conn.output, "text");
  if ((rc = load_catalog(&conn, timeout_ms, &cat)))
    goto out;
  size_t n = 0;
  names = calloc(json_object_size(cat) + 1, sizeof(*names));
  const char *k;
  json_t *v;
  json_object_foreach(cat, k, v) names[n++] = k;
  qsort(names, n, sizeof(*names), by_name);
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    const char *hash = json_string_value(json_object_get(json_object_get(cat, names[i]), "hash"));
    if (text)
      printf("%s %s\n", names[i], hash ? hash : "");
    else
      json_array_append_new(arr,
                            json_pack("{s:s,s:s}", "name", names[i], "hash", hash ? hash : ""));
  }
  if (!text)
    smc_cli_print_json(arr);
  json_decref(arr);
out:
  free(names);
  json_decref(cat);
  smc_cli_conn_close(&conn);
  return rc < 0 ? SMC_EXIT_OK : rc;
}
