/* Shared plumbing of the CLI commands that talk to a cluster through Kafka
 * (cmd_client.c, cmd_topics.c, cmd_machine_remote.c). */
#ifndef SMC_CLI_CMD_CLIENT_H
#define SMC_CLI_CMD_CLIENT_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "smc/client.h"

/* Connection options common to every cluster command. */
typedef struct smc_cli_conn {
  const char *bootstrap; /* default $SMC_BOOTSTRAP or localhost:9092 */
  const char *prefix;    /* default $SMC_PREFIX or "smc." */
  const char *output;    /* -o: "json" (default) or "text"/"yaml"/"table" where offered */
  int output_given;      /* -o was on the command line */
  int setup_ms;          /* how long to wait for the cluster at start; 0 = 10 s */
  char **props;          /* -X k=v pairs: k, v, ..., NULL */
  size_t nprops;
} smc_cli_conn_t;

/* getopt_long option values of the common options. */
enum { SMC_OPT_BOOTSTRAP = 1000, SMC_OPT_PREFIX };

#define SMC_CLI_CONN_LONGOPTS                                                                      \
  {"bootstrap", required_argument, NULL, SMC_OPT_BOOTSTRAP},                                       \
      {"prefix", required_argument, NULL, SMC_OPT_PREFIX},                                         \
      {"output", required_argument, NULL, 'o'}, {                                                  \
    "property", required_argument, NULL, 'X'                                                       \
  }

#define SMC_CLI_CONN_HELP                                                                          \
  "  --bootstrap B    Kafka bootstrap servers (default $SMC_BOOTSTRAP or localhost:9092)\n"        \
  "  --prefix P       topic prefix (default $SMC_PREFIX or smc.)\n"                                \
  "  -X KEY=VALUE     pass a librdkafka property (TLS, SASL, ...); repeatable\n"

void smc_cli_conn_init(smc_cli_conn_t *c);
void smc_cli_conn_close(smc_cli_conn_t *c);
/* Handle one of the common options; 1 when handled, 0 when opt is not one of
 * them, -1 on a bad value (message printed). */
int smc_cli_conn_opt(smc_cli_conn_t *c, int opt, const char *arg);
/* What smc_cli_getopt returns besides an option of the command's own and -1. */
enum { SMC_CLI_OPT_BAD = -2, SMC_CLI_OPT_HELP = -3 };
/* getopt_long over argv for a cluster command (the caller sets optind = 1
 * first): the connection options go into c, -h prints usage on stdout.
 * Returns the next option that is the command's own, -1 at the end,
 * SMC_CLI_OPT_HELP after -h, or SMC_CLI_OPT_BAD for a bad connection option
 * (printed) or an unknown one (usage printed on stderr). */
int smc_cli_getopt(smc_cli_conn_t *c, int argc, char **argv, const char *shortopts,
                   const struct option *longopts, void (*usage)(FILE *));
/* Create a client (errors printed); returns an exit status, 0 = ok. */
int smc_cli_client_open(const smc_cli_conn_t *c, smc_client_t **out);

/* A flag's duration (base/duration.h: "500ms", "5s", "2m", "1h", "7d", a
 * bare number of seconds) in ms, at most INT32_MAX. Returns 0, or -1 when s
 * is not one. */
int smc_cli_duration(const char *s, int *ms);
/* A non-negative decimal integer; -1 when s is not one. */
int smc_cli_int64(const char *s, long long *out);
/* An option whose argument is kept as it is: its getopt value and where. */
typedef struct smc_cli_text_opt {
  int opt;
  const char **to;
} smc_cli_text_opt_t;
/* When opt is one of the n options of t, store arg there: 1; else 0. */
int smc_cli_text_opt(const smc_cli_text_opt_t *t, size_t n, int opt, const char *arg);
/* An option whose argument is a whole number from lo to hi: its getopt
 * value, its flag (for messages, without "--") and where. */
typedef struct smc_cli_int_opt {
  int opt;
  const char *flag;
  long long lo, hi;
  int *to;
} smc_cli_int_opt_t;
/* When opt is one of the n options of t, store arg there: 1, or -1 with
 * "smc CMD: --FLAG wants a number from LO to HI" printed; else 0. */
int smc_cli_int_opt(const char *cmd, const smc_cli_int_opt_t *t, size_t n, int opt,
                    const char *arg);
/* The exit status for an SMC_E* code: 3 for unavailable, 1 otherwise. */
int smc_cli_exit_for(int code);
/* Print an error to stderr as "smc CMD: <wire code>: message [at path]". */
void smc_cli_print_error(const char *cmd, const smc_error_t *err);
/* Print a JSON value as one compact line with sorted keys. */
void smc_cli_print_json(const void *json);
/* Whether objects print as a table: -o table (or text), or no -o and stdout
 * is a terminal. */
int smc_cli_table(const smc_cli_conn_t *c);
/* Print object views (core/view.h): one, or an array of them, as a table or
 * as JSON (the value itself, one compact line). */
void smc_cli_print_view(const smc_cli_conn_t *c, const void *view);

#endif
