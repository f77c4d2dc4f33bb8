/*
 * smc cluster settings --NAME N...: write the fold settings (protocol.md
 * "settings") to every partition of the proposals topic and wait until each
 * partition folded them. They decide outcomes, so they live in the log, and
 * every node, replay and simulation folds the same values from the same
 * offset on.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_client.h"
#include "smc/client.h"
#include "smc/fold.h"

/* The flags are the setting names with '-' for '_'. */
static const char *const setting_flags[] = {
    "max-event-bytes",   "max-queue",         "expr-steps",
    "regex-match-limit", "regex-depth-limit", "max-definition-bytes",
    "max-data-bytes",
};
#define NFLAGS (sizeof setting_flags / sizeof setting_flags[0])
enum { OPT_SETTING = 3000, OPT_KEY = 2900, OPT_TIMEOUT };

static void usage(FILE *out) {
  fprintf(out, "usage: smc cluster settings [--max-event-bytes N] [--max-data-bytes N]\n"
               "         [--max-queue N] [--expr-steps N] [--regex-match-limit N]\n"
               "         [--regex-depth-limit N] [--max-definition-bytes N]\n"
               "         [--key FILE] [--timeout D]\n"
               "  Write the fold settings that decide outcomes to every partition of the\n"
               "  proposals topic, in one transaction, and wait until every partition has\n"
               "  folded them; prints the settings in force. Settings not named keep their\n"
               "  value. Every node folds them from the same offset on: a proposal decided\n"
               "  before is not decided again. Values: whole numbers from 1 to 2147483647.\n"
               "    --max-event-bytes N       larger records are too_large (default 1048576)\n"
               "    --max-data-bytes N        object data, canonical JSON (default 262144)\n"
               "    --max-queue N             proposals queued per object (default 1000)\n"
               "    --expr-steps N            expression steps per proposal (default 100000)\n"
               "    --regex-match-limit N     PCRE2 match limit (default 100000)\n"
               "    --regex-depth-limit N     PCRE2 depth limit (default 1000)\n"
               "    --max-definition-bytes N  machine definitions registered from now on\n"
               "                              (default 1048576)\n"
               "    --key FILE   sign with the cluster's registration key (PEM private key;\n"
               "                 needed when the workers have a --registration-key)\n"
               "    --timeout D  default 30s\n"
               "  A gateway shows the settings its folds hold: GET /settings.\n" SMC_CLI_CONN_HELP);
}

static int run_settings(int argc, char **argv) {
  static struct option longopts[NFLAGS + 8];
  size_t k = 0;
  static const struct option conn_opts[] = {SMC_CLI_CONN_LONGOPTS};
  for (size_t i = 0; i < sizeof conn_opts / sizeof conn_opts[0]; i++)
    longopts[k++] = conn_opts[i];
  for (size_t i = 0; i < NFLAGS; i++)
    longopts[k++] =
        (struct option){setting_flags[i], required_argument, NULL, OPT_SETTING + (int)i};
  longopts[k++] = (struct option){"key", required_argument, NULL, OPT_KEY};
  longopts[k++] = (struct option){"timeout", required_argument, NULL, OPT_TIMEOUT};
  longopts[k++] = (struct option){"help", no_argument, NULL, 'h'};
  longopts[k] = (struct option){NULL, 0, NULL, 0};

  smc_cli_conn_t conn;
  smc_cli_conn_init(&conn);
  json_t *limits = json_object();
  const char *keyfile = NULL;
  int timeout_ms = 30000, rc = 0, opt;
  optind = 1;
  while ((opt = smc_cli_getopt(&conn, argc, argv, "ho:X:", longopts, usage)) != -1) {
    if (opt >= OPT_SETTING && opt < OPT_SETTING + (int)NFLAGS) {
      char name[64], *end;
      snprintf(name, sizeof name, "%s", setting_flags[opt - OPT_SETTING]);
      for (char *p = name; *p; p++)
        if (*p == '-')
          *p = '_';
      errno = 0;
      long long v = strtoll(optarg, &end, 10);
      smc_error_t err;
      smc_error_clear(&err);
      if (errno || end == optarg || *end || smc_fold_setting_check(name, v, &err)) {
        fprintf(stderr, "smc cluster settings: --%s must be a whole number from 1 to 2147483647\n",
                setting_flags[opt - OPT_SETTING]);
        rc = SMC_EXIT_USAGE;
        goto out;
      }
      json_object_set_new(limits, name, json_integer(v));
    } else if (opt == OPT_KEY) {
      keyfile = optarg;
    } else if (opt == OPT_TIMEOUT) {
      if (smc_cli_duration(optarg, &timeout_ms) || timeout_ms <= 0) {
        fprintf(stderr, "smc cluster settings: --timeout wants a duration like 30s\n");
        rc = SMC_EXIT_USAGE;
        goto out;
      }
    } else {
      rc = opt == SMC_CLI_OPT_HELP ? SMC_EXIT_OK : SMC_EXIT_USAGE; /* help, or BAD */
      goto out;
    }
  }
  if (optind != argc || json_object_size(limits) == 0) {
    fprintf(stderr, "smc cluster settings: name at least one setting\n");
    usage(stderr);
    rc = SMC_EXIT_USAGE;
    goto out;
  }
  smc_client_t *c = NULL;
  if ((rc = smc_cli_client_open(&conn, &c)))
    goto out;
  smc_error_t err;
  smc_error_clear(&err);
  smc_vote_key_t *key = NULL;
  json_t *in_force = NULL;
  int r = keyfile ? smc_vote_key_load(keyfile, &key, &err) : 0;
  if (!r)
    r = smc_client_settings(c, limits, key, timeout_ms, &in_force, &err);
  smc_vote_key_free(key);
  if (r) {
    smc_cli_print_error("cluster settings", &err);
    rc = smc_cli_exit_for(r);
  } else {
    json_t *o = json_pack("{s:s, s:O, s:i}", "status", "applied", "limits",
                          json_object_get(in_force, "limits"), "fold", SMC_FOLD_VERSION);
    smc_cli_print_json(o);
    json_decref(o);
  }
  json_decref(in_force);
  smc_client_destroy(c);
out:
  json_decref(limits);
  smc_cli_conn_close(&conn);
  return rc;
}

static int run_cluster(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "settings"))
    return run_settings(argc - 1, argv + 1);
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    usage(stdout);
    return SMC_EXIT_OK;
  }
  usage(stderr);
  return SMC_EXIT_USAGE;
}

const smc_command_t smc_cmd_cluster = {"cluster", "cluster-wide settings: smc cluster settings",
                                       run_cluster};
