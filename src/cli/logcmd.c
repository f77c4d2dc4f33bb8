/* What the commands that read the log share (logcmd.h). */
#include "cli/logcmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"
#include "smc/error.h"

int smc_logcmd_init(smc_logcmd_t *l, const char *cmd, int with_fold) {
  memset(l, 0, sizeof *l);
  l->cmd = cmd;
  smc_cli_conn_init(&l->conn);
  l->with_fold = with_fold;
  l->fold.threads = 1;
  smc_fold_config_default(&l->fold.lim);
  optind = 1;
  if (with_fold && (smc_cli_fold_limits_env(cmd, &l->fold.lim) < 0 ||
                    smc_logcmd_default_threads(cmd, &l->fold.threads) < 0))
    return -1;
  return 0;
}

/* A fold option of f: 1 taken, 0 not one, -1 a bad value (printed). */
static int fold_opt(smc_logcmd_fold_t *f, int opt, const char *arg, const char *cmd) {
  if (opt == OPT_THREADS)
    return smc_logcmd_parse_threads(cmd, "--threads", arg, &f->threads) < 0 ? -1 : 1;
  if (opt >= OPT_LIMIT && opt < OPT_LIMIT + SMC_CLI_LIMIT_COUNT)
    return smc_cli_fold_limit_opt(cmd, opt - OPT_LIMIT, arg, &f->lim) < 0 ? -1 : 1;
  return 0;
}

int smc_logcmd_getopt(smc_logcmd_t *l, int argc, char **argv, const char *shortopts,
                      const struct option *longopts, void (*usage)(FILE *)) {
  for (;;) {
    int opt = smc_cli_getopt(&l->conn, argc, argv, shortopts, longopts, usage);
    int known = l->with_fold && opt >= 0 ? fold_opt(&l->fold, opt, optarg, l->cmd) : 0;
    if (known < 0)
      return SMC_LOGCMD_BAD;
    if (!known)
      return opt;
  }
}

/* Parse a fold thread count (1..SMC_LOGCMD_MAX_THREADS) from what (a flag or variable
 * name); prints the error. */
int smc_logcmd_parse_threads(const char *cmd, const char *what, const char *text, int *out) {
  char *end = NULL;
  errno = 0;
  long v = text ? strtol(text, &end, 10) : 0;
  if (!text || !*text || *end || errno || v < 1 || v > SMC_LOGCMD_MAX_THREADS) {
    fprintf(stderr, "smc %s: %s wants a number of threads from 1 to %d, not '%s'\n", cmd, what,
            SMC_LOGCMD_MAX_THREADS, text ? text : "");
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* The default fold thread count: SMC_REPLAY_THREADS, else the online CPUs. */
int smc_logcmd_default_threads(const char *cmd, int *out) {
  const char *env = getenv("SMC_REPLAY_THREADS");
  if (env && *env)
    return smc_logcmd_parse_threads(cmd, "SMC_REPLAY_THREADS", env, out);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  *out = cpus < 1 ? 1 : cpus > SMC_LOGCMD_MAX_THREADS ? SMC_LOGCMD_MAX_THREADS : (int)cpus;
  return 0;
}

int32_t smc_logcmd_partitions(smc_logcmd_t *l, const char *topic) {
  int32_t n = smc_kafka_partitions(l->rk, topic, 15000);
  if (n < 0)
    fprintf(stderr, "smc %s: topic %s: %s\n", l->cmd, topic, smc_strerror(n));
  return n;
}

int32_t smc_logcmd_open(smc_logcmd_t *l, const char *name) {
  char errstr[512];
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_CONSUMER,
                           .bootstrap = l->conn.bootstrap,
                           .group_id = "smc-reader",
                           .eof = 1,
                           .props = (const char *const *)l->conn.props};
  if (!(l->topic = smc_topic(l->conn.prefix, name)))
    return SMC_ENOMEM;
  if (!(l->rk = smc_kafka_open(&spec, errstr, sizeof errstr))) {
    fprintf(stderr, "smc %s: %s\n", l->cmd, errstr);
    return SMC_EKAFKA;
  }
  return smc_logcmd_partitions(l, l->topic);
}

void smc_logcmd_close(smc_logcmd_t *l) {
  smc_kafka_close(l->rk);
  l->rk = NULL;
  free(l->topic);
  l->topic = NULL;
  smc_cli_conn_close(&l->conn);
}
