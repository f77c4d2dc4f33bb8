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

int smc_logcmd_conn_prop(smc_logcmd_conn_t *c, const char *arg, const char *cmd) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg) {
    fprintf(stderr, "smc %s: -X wants KEY=VALUE, not '%s'\n", cmd, arg);
    return -1;
  }
  char **np = realloc(c->props, (c->nprops + 3) * sizeof *np);
  if (!np)
    return -1;
  c->props = np;
  np[c->nprops] = strndup(arg, (size_t)(eq - arg));
  np[c->nprops + 1] = strdup(eq + 1);
  np[c->nprops + 2] = NULL;
  c->nprops += 2;
  return 0;
}

int smc_logcmd_conn_opt(smc_logcmd_conn_t *c, int opt, const char *arg, const char *cmd) {
  switch (opt) {
  case 'X':
    return smc_logcmd_conn_prop(c, arg, cmd) < 0 ? -1 : 1;
  case OPT_BOOTSTRAP:
    c->bootstrap = arg;
    return 1;
  case OPT_PREFIX:
    c->prefix = arg;
    return 1;
  default:
    return 0;
  }
}

void smc_logcmd_conn_close(smc_logcmd_conn_t *c) {
  for (size_t i = 0; i < c->nprops; i++)
    free(c->props[i]);
  free(c->props);
}

void smc_logcmd_conn_defaults(smc_logcmd_conn_t *c) {
  memset(c, 0, sizeof *c);
  c->prefix = getenv("SMC_PREFIX") && *getenv("SMC_PREFIX") ? getenv("SMC_PREFIX") : "smc.";
}

int smc_logcmd_fold_defaults(smc_logcmd_fold_t *f, const char *cmd) {
  f->threads = 1;
  smc_fold_config_default(&f->lim);
  return smc_cli_fold_limits_env(cmd, &f->lim) < 0 ||
                 smc_logcmd_default_threads(cmd, &f->threads) < 0
             ? -1
             : 0;
}

/* A fold option of f: 1 taken, 0 not one, -1 a bad value (printed). */
static int fold_opt(smc_logcmd_fold_t *f, int opt, const char *arg, const char *cmd) {
  if (opt == OPT_THREADS)
    return smc_logcmd_parse_threads(cmd, "--threads", arg, &f->threads) < 0 ? -1 : 1;
  if (opt >= OPT_LIMIT && opt < OPT_LIMIT + SMC_CLI_LIMIT_COUNT)
    return smc_cli_fold_limit_opt(cmd, opt - OPT_LIMIT, arg, &f->lim) < 0 ? -1 : 1;
  return 0;
}

int smc_logcmd_getopt(smc_logcmd_conn_t *c, smc_logcmd_fold_t *f, int argc, char **argv,
                      const char *shortopts, const struct option *longopts, const char *cmd,
                      void (*usage)(FILE *)) {
  for (;;) {
    int opt = getopt_long(argc, argv, shortopts, longopts, NULL);
    int known = opt == -1 ? 0 : smc_logcmd_conn_opt(c, opt, optarg, cmd);
    if (!known && f && opt != -1)
      known = fold_opt(f, opt, optarg, cmd);
    if (known < 0)
      return SMC_LOGCMD_BAD;
    if (known)
      continue;
    if (opt == 'h')
      usage(stdout);
    if (opt == '?')
      usage(stderr);
    return opt == 'h' ? SMC_LOGCMD_HELP : opt == '?' ? SMC_LOGCMD_BAD : opt;
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

/* A consumer handle for metadata and reading by assignment. */
smc_kafka_t *smc_logcmd_open_reader(const smc_logcmd_conn_t *c, const char *cmd) {
  char errstr[512];
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_CONSUMER,
                           .bootstrap = c->bootstrap,
                           .group_id = "smc-reader",
                           .eof = 1,
                           .props = (const char *const *)c->props};
  smc_kafka_t *rk = smc_kafka_open(&spec, errstr, sizeof errstr);
  if (!rk)
    fprintf(stderr, "smc %s: %s\n", cmd, errstr);
  return rk;
}

void smc_logcmd_close_reader(smc_kafka_t *rk) { smc_kafka_close(rk); }

/* Partition count of <prefix><name>; prints the error. */
int32_t smc_logcmd_partitions(smc_kafka_t *rk, const char *topic, const char *cmd) {
  int32_t n = smc_kafka_partitions(rk, topic, 15000);
  if (n < 0)
    fprintf(stderr, "smc %s: topic %s: %s\n", cmd, topic, smc_strerror(n));
  return n;
}
