/*
 * The fold's inputs on the command line of the programs that fold (replay,
 * verify, simulate): the registration key, with the same flag and variable
 * as `smc worker`. The fold limits were such flags once; they are cluster
 * settings in the log now (protocol.md "settings"), so the old flags and
 * variables are refused with a pointer to `smc cluster settings`.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/util.h"
#include "smc/fold.h"

static const struct {
  const char *flag, *env;
} names[SMC_CLI_LIMIT_COUNT] = {
    [SMC_CLI_LIMIT_EVENT] = {"max-event-bytes", "SMC_MAX_EVENT_BYTES"},
    [SMC_CLI_LIMIT_DATA] = {"max-data-bytes", "SMC_MAX_DATA_BYTES"},
    [SMC_CLI_LIMIT_QUEUE] = {"max-queue", "SMC_MAX_QUEUE"},
    [SMC_CLI_LIMIT_STEPS] = {"expr-steps", "SMC_EXPR_STEPS"},
    [SMC_CLI_LIMIT_REGEX_MATCH] = {"regex-match-limit", "SMC_REGEX_MATCH_LIMIT"},
    [SMC_CLI_LIMIT_REGEX_DEPTH] = {"regex-depth-limit", "SMC_REGEX_DEPTH_LIMIT"},
    [SMC_CLI_LIMIT_DEFINITION] = {"max-definition-bytes", "SMC_MAX_DEFINITION_BYTES"},
    [SMC_CLI_LIMIT_REGISTRATION_KEY] = {"registration-key", "SMC_REGISTRATION_KEY"},
};

char *smc_cli_registration_key(const char *cmd, const char *arg) {
  FILE *f = fopen(arg, "rb");
  char *text = NULL;
  if (f) {
    size_t n = 0;
    text = smc_read_stream(f, &n);
    fclose(f);
  } else {
    text = strdup(arg);
  }
  if (!text)
    fprintf(stderr, "smc %s: cannot read the registration key %s\n", cmd, arg);
  return text;
}

void smc_cli_fold_setting_moved(const char *cmd, const char *name, const char *env) {
  char flag[64];
  snprintf(flag, sizeof flag, "%s", name);
  for (char *p = flag; *p; p++)
    if (*p == '_')
      *p = '-';
  fprintf(stderr,
          "smc %s: --%s (%s) is a cluster setting: every node folds it from the log, so no\n"
          "node can decide with its own. Write it once for the cluster with\n"
          "  smc cluster settings --%s N\n",
          cmd, flag, env, flag);
}

int smc_cli_fold_limit_opt(const char *cmd, int which, const char *value,
                           struct smc_fold_config *fc) {
  if (which < 0 || which >= SMC_CLI_LIMIT_COUNT)
    return -1;
  if (which != SMC_CLI_LIMIT_REGISTRATION_KEY) {
    smc_cli_fold_setting_moved(cmd, names[which].flag, names[which].env);
    return -1;
  }
  static char *held; /* the text stays for the process's life (fc points at it) */
  char *key = smc_cli_registration_key(cmd, value);
  if (!key)
    return -1;
  free(held);
  fc->registration_key = held = key;
  return 0;
}

int smc_cli_fold_limits_env(const char *cmd, struct smc_fold_config *fc) {
  for (int i = 0; i < SMC_CLI_LIMIT_COUNT; i++) {
    const char *v = getenv(names[i].env);
    if (v && *v && smc_cli_fold_limit_opt(cmd, i, v, fc) < 0) {
      fprintf(stderr, "smc %s: (from %s)\n", cmd, names[i].env);
      return -1;
    }
  }
  return 0;
}

void smc_cli_fold_limits_copy(struct smc_fold_config *fc, const struct smc_fold_config *from) {
  fc->max_event_bytes = from->max_event_bytes;
  fc->max_queue = from->max_queue;
  fc->limits = from->limits;
  fc->registration_key = from->registration_key;
}
