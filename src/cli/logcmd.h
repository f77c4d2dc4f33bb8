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

#include "cli/cmd_client.h"
#include "kafka/handle.h"
#include "smc/fold.h"

enum {
  OPT_DATA_DIR = 1100,
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
  {"bootstrap", required_argument, NULL, SMC_OPT_BOOTSTRAP}, {                                     \
    "prefix", required_argument, NULL, SMC_OPT_PREFIX                                              \
  }

/* --max-* flags: OPT_LIMIT + SMC_CLI_LIMIT_* (cli.h) */
enum { OPT_LIMIT = 2000 };

#define SMC_LOGCMD_MAX_THREADS 256

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

enum { SMC_LOGCMD_BAD = SMC_CLI_OPT_BAD, SMC_LOGCMD_HELP = SMC_CLI_OPT_HELP };

/* One run of a log command: its options, and the reader of its topic. */
typedef struct smc_logcmd {
  const char *cmd;        /* "replay", "verify", "export": messages say it */
  smc_cli_conn_t conn;    /* --bootstrap, --prefix, -X (no -o: not in the shortopts) */
  smc_logcmd_fold_t fold; /* --threads and --max-* (replay and verify) */
  int with_fold;
  smc_kafka_t *rk; /* smc_logcmd_open: a consumer for metadata and reading by assignment */
  char *topic;     /* smc_logcmd_open: <prefix><name> */
} smc_logcmd_t;

/* The defaults of cmd's options: the connection's, and with_fold the fold
 * options' (SMC_REPLAY_THREADS or the CPUs, the limits from the
 * environment); optind reset for smc_logcmd_getopt. 0, or -1 (printed). */
int smc_logcmd_init(smc_logcmd_t *l, const char *cmd, int with_fold);

/* getopt_long over argv: the connection options (and the fold options when
 * l has them) go into l, -h prints usage on stdout. Returns the next option
 * that is the command's own, -1 at the end, SMC_LOGCMD_HELP after -h, or
 * SMC_LOGCMD_BAD for a bad value (printed) or an unknown option (usage
 * printed on stderr). */
int smc_logcmd_getopt(smc_logcmd_t *l, int argc, char **argv, const char *shortopts,
                      const struct option *longopts, void (*usage)(FILE *));

/* Open the reader and look up <prefix>name: its partition count, or a
 * negative SMC_E* code (printed). */
int32_t smc_logcmd_open(smc_logcmd_t *l, const char *name);

/* Partition count of topic through l's reader; prints the error. */
int32_t smc_logcmd_partitions(smc_logcmd_t *l, const char *topic);

/* The reader, the topic and the options let go. */
void smc_logcmd_close(smc_logcmd_t *l);

#endif
