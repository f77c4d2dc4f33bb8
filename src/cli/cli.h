/* The smc command line: one binary, one subcommand per file (cmd_<name>.c). */
#ifndef SMC_CLI_H
#define SMC_CLI_H

#include <signal.h>

/* Exit statuses shared by every subcommand (interfaces.md). */
enum {
  SMC_EXIT_OK = 0,          /* done */
  SMC_EXIT_FAILED = 1,      /* rejected, invalid, or failed */
  SMC_EXIT_USAGE = 2,       /* bad command line */
  SMC_EXIT_UNAVAILABLE = 3, /* the cluster did not answer in time: outcome unknown */
  SMC_EXIT_PENDING = 4,     /* a proposal is in the log and waits for votes */
};

typedef struct smc_command {
  const char *name;
  const char *summary;               /* one line for `smc help` */
  int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} smc_command_t;

/* The command table of main.c, in `smc help` order. */
extern const smc_command_t *const smc_cli_commands[];
extern const size_t smc_cli_ncommands;
/* The sub-commands of a command of the table (space-separated, each takes
 * --help), NULL when it has none: `smc machine check`. */
const char *smc_cli_verbs(const char *command);

/* Each subcommand file defines one of these; main.c lists them. */
extern const smc_command_t smc_cmd_machine;
extern const smc_command_t smc_cmd_diagram;
extern const smc_command_t smc_cmd_simulate;
extern const smc_command_t smc_cmd_topics;
extern const smc_command_t smc_cmd_propose;
extern const smc_command_t smc_cmd_vote;
extern const smc_command_t smc_cmd_get;
extern const smc_command_t smc_cmd_watch;
extern const smc_command_t smc_cmd_list;
extern const smc_command_t smc_cmd_history;
extern const smc_command_t smc_cmd_status;
extern const smc_command_t smc_cmd_cluster;
/* smc machine apply|get|list (cmd_machine_remote.c); argv[0] is the verb. */
int smc_machine_cli_apply(int argc, char **argv);
int smc_machine_cli_get(int argc, char **argv);
int smc_machine_cli_list(int argc, char **argv);
extern const smc_command_t smc_cmd_dev;
extern const smc_command_t smc_cmd_worker;
extern const smc_command_t smc_cmd_replay;
extern const smc_command_t smc_cmd_verify;
extern const smc_command_t smc_cmd_export;
extern const smc_command_t smc_cmd_keygen;
extern const smc_command_t smc_cmd_completion;

/*
 * What every program that folds must share with the cluster besides the log:
 * the registration key (`smc replay`, `verify` and `simulate` take the same
 * flag and variable as `smc worker`, fold_limits.c). The fold limits are
 * cluster settings in the log (`smc cluster settings`); their old flags and
 * SMC_* variables are still recognised, only to be refused with a pointer
 * to it. SMC_CLI_FOLD_LIMIT_OPTIONS(base) expands to the getopt_long
 * entries, with values base + SMC_CLI_LIMIT_*; smc_cli_fold_limits_env
 * applies the environment (call it before parsing flags) and
 * smc_cli_fold_limit_opt one flag. Both return 0, or -1 after printing a
 * usage error.
 */
struct smc_fold_config;
enum {
  SMC_CLI_LIMIT_EVENT,
  SMC_CLI_LIMIT_DATA,
  SMC_CLI_LIMIT_QUEUE,
  SMC_CLI_LIMIT_STEPS,
  SMC_CLI_LIMIT_REGEX_MATCH,
  SMC_CLI_LIMIT_REGEX_DEPTH,
  SMC_CLI_LIMIT_DEFINITION,
  SMC_CLI_LIMIT_REGISTRATION_KEY, /* not a number: the cluster's registration key */
  SMC_CLI_LIMIT_COUNT
};
#define SMC_CLI_FOLD_LIMIT_OPTIONS(base)                                                           \
  {"max-event-bytes", required_argument, NULL, (base) + SMC_CLI_LIMIT_EVENT},                      \
      {"max-data-bytes", required_argument, NULL, (base) + SMC_CLI_LIMIT_DATA},                    \
      {"max-queue", required_argument, NULL, (base) + SMC_CLI_LIMIT_QUEUE},                        \
      {"expr-steps", required_argument, NULL, (base) + SMC_CLI_LIMIT_STEPS},                       \
      {"regex-match-limit", required_argument, NULL, (base) + SMC_CLI_LIMIT_REGEX_MATCH},          \
      {"regex-depth-limit", required_argument, NULL, (base) + SMC_CLI_LIMIT_REGEX_DEPTH},          \
      {"max-definition-bytes", required_argument, NULL, (base) + SMC_CLI_LIMIT_DEFINITION}, {      \
    "registration-key", required_argument, NULL, (base) + SMC_CLI_LIMIT_REGISTRATION_KEY           \
  }
int smc_cli_fold_limits_env(const char *cmd, struct smc_fold_config *fc);
int smc_cli_fold_limit_opt(const char *cmd, int which, const char *value,
                           struct smc_fold_config *fc);
/* Print why a fold limit flag or variable is refused (name: flag or
 * config key; env: its variable). */
void smc_cli_fold_setting_moved(const char *cmd, const char *name, const char *env);
/* The usage lines of those flags, for the commands' help. */
#define SMC_CLI_FOLD_LIMITS_USAGE                                                                  \
  "The fold limits come from the log (`smc cluster settings`). The cluster's\n"                    \
  "registration key, when it has one (it decides outcomes):\n"                                     \
  "--registration-key KEY (base64, PEM, or a file holding either)\n"
/* The text of a registration key argument: the file's content when arg
 * names a readable file, else arg itself (malloc'd; NULL on failure after
 * printing why). */
char *smc_cli_registration_key(const char *cmd, const char *arg);
/* Block SIGINT and SIGTERM in the calling thread (and so in every thread
 * it starts afterwards), put them in *sigs for sigwait/sigtimedwait, and
 * ignore SIGPIPE: the long-running commands (worker, dev) take their stop
 * signals synchronously, so no handler runs inside librdkafka or RocksDB. */
void smc_cli_block_stop_signals(sigset_t *sigs);
/* Copy the limits of `from` into fc (keeps fc's partitions and window). */
void smc_cli_fold_limits_copy(struct smc_fold_config *fc, const struct smc_fold_config *from);

#endif
