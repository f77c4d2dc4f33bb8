/*
 * What the commands that read the log share (smc replay, smc verify, smc
 * export: cmd_replay.c, cmd_verify.c, cmd_export.c): the connection options,
 * the fold thread count, and the reader they read with, by assignment and
 * read_committed up to the end the topic had when they started.
 */
#ifndef SMC_CLI_LOGCMD_H
#define SMC_CLI_LOGCMD_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kafka/handle.h"
#include "smc/fold.h"

typedef struct smc_logcmd_conn {
  const char *bootstrap, *prefix;
  char **props;
  size_t nprops;
} smc_logcmd_conn_t;

enum {
  OPT_BOOTSTRAP = 1000,
  OPT_PREFIX,
  OPT_DATA_DIR,
  OPT_STORE,
  OPT_FRESH,
  OPT_TOPIC,
  OPT_QUIET,
  OPT_THREADS,
  OPT_DIGEST,
  OPT_FROM_CHANGELOG,
  OPT_WRITE_CHANGELOG
};
/* The connection options of the log commands, first in their longopts. */
#define SMC_LOGCMD_CONN_LONGOPTS                                                                   \
  {"bootstrap", required_argument, NULL, OPT_BOOTSTRAP}, {                                         \
    "prefix", required_argument, NULL, OPT_PREFIX                                                  \
  }

/* --max-* flags: OPT_LIMIT + SMC_CLI_LIMIT_* (cli.h) */
enum { OPT_LIMIT = 2000 };

#define SMC_LOGCMD_MAX_THREADS 256

/* -X KEY=VALUE into c's pass-through list; prints the error, -1. */
int smc_logcmd_conn_prop(smc_logcmd_conn_t *c, const char *arg, const char *cmd);
void smc_logcmd_conn_close(smc_logcmd_conn_t *c);
/* The connection options of getopt's opt ('X', OPT_BOOTSTRAP, OPT_PREFIX):
 * 1 taken into c, 0 not one of them, -1 a bad -X (printed). */
int smc_logcmd_conn_opt(smc_logcmd_conn_t *c, int opt, const char *arg, const char *cmd);
/* No bootstrap (the default), prefix $SMC_PREFIX or "smc.". */
void smc_logcmd_conn_defaults(smc_logcmd_conn_t *c);
/* Parse a fold thread count (1..SMC_LOGCMD_MAX_THREADS) from what (a flag or
 * variable name); prints the error. */
int smc_logcmd_parse_threads(const char *cmd, const char *what, const char *text, int *out);
/* The default fold thread count: SMC_REPLAY_THREADS, else the online CPUs. */
int smc_logcmd_default_threads(const char *cmd, int *out);
/* The fold options of replay and verify: --threads and --max-*. */
typedef struct smc_logcmd_fold {
  int threads;
  smc_fold_config_t lim;
} smc_logcmd_fold_t;

/* The defaults: SMC_REPLAY_THREADS or the CPUs, the limits from the
 * environment. 0, or -1 (printed). */
int smc_logcmd_fold_defaults(smc_logcmd_fold_t *f, const char *cmd);

enum { SMC_LOGCMD_BAD = -2, SMC_LOGCMD_HELP = -3 };

/* getopt_long over argv (the caller sets optind = 1 first) for command cmd: the
 * connection options go into c, -h prints usage on stdout, and with f
 * --threads and the --max-* flags go into f. Returns the next option that
 * is the command's own, -1 at the end, SMC_LOGCMD_HELP after -h, or
 * SMC_LOGCMD_BAD for a bad value (printed) or an unknown option (usage
 * printed on stderr). */
int smc_logcmd_getopt(smc_logcmd_conn_t *c, smc_logcmd_fold_t *f, int argc, char **argv,
                      const char *shortopts, const struct option *longopts, const char *cmd,
                      void (*usage)(FILE *));

/* A consumer handle for metadata and reading by assignment (errors printed). */
smc_kafka_t *smc_logcmd_open_reader(const smc_logcmd_conn_t *c, const char *cmd);
void smc_logcmd_close_reader(smc_kafka_t *rk);
/* Partition count of topic; prints the error. */
int32_t smc_logcmd_partitions(smc_kafka_t *rk, const char *topic, const char *cmd);

#endif
