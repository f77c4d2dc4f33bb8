/* The smc command line: one binary, one subcommand per file (cmd_<name>.c). */
#ifndef SMC_CLI_H
#define SMC_CLI_H

/* Exit statuses shared by every subcommand (interfaces.md). */
enum {
  SMC_EXIT_OK = 0,          /* done */
  SMC_EXIT_FAILED = 1,      /* rejected, invalid, or failed */
  SMC_EXIT_USAGE = 2,       /* bad command line */
  SMC_EXIT_UNAVAILABLE = 3, /* the cluster did not answer in time: outcome unknown */
};

typedef struct smc_command {
  const char *name;
  const char *summary;               /* one line for `smc help` */
  int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} smc_command_t;

/* Each subcommand file defines one of these; main.c lists them. */
extern const smc_command_t smc_cmd_machine;
extern const smc_command_t smc_cmd_diagram;
extern const smc_command_t smc_cmd_simulate;
extern const smc_command_t smc_cmd_topics;
extern const smc_command_t smc_cmd_propose;
extern const smc_command_t smc_cmd_vote;
extern const smc_command_t smc_cmd_get;
extern const smc_command_t smc_cmd_watch;
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

#endif
