/* smc: entry point and subcommand dispatch. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kafka/handle.h"
#include "core/logline.h"

/* SMC_VERSION comes from CMake's project(VERSION) (CMakeLists.txt). */
#ifndef SMC_VERSION
#error "SMC_VERSION is not defined: build with CMake"
#endif

/* Keep in the order `smc help` should list them. */
const smc_command_t *const smc_cli_commands[] = {
    &smc_cmd_machine, &smc_cmd_diagram, &smc_cmd_simulate, &smc_cmd_topics,     &smc_cmd_propose,
    &smc_cmd_vote,    &smc_cmd_get,     &smc_cmd_watch,    &smc_cmd_list,       &smc_cmd_history,
    &smc_cmd_status,  &smc_cmd_cluster, &smc_cmd_dev,      &smc_cmd_worker,     &smc_cmd_replay,
    &smc_cmd_verify,  &smc_cmd_export,  &smc_cmd_keygen,   &smc_cmd_completion,
};
#define NCOMMANDS (sizeof(smc_cli_commands) / sizeof(smc_cli_commands[0]))
const size_t smc_cli_ncommands = NCOMMANDS;

const char *smc_cli_verbs(const char *command) {
  static const char *const verbs[][2] = {{"machine", "check apply get list"},
                                         {"topics", "create describe trim"},
                                         {"cluster", "settings"}};
  for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
    if (!strcmp(command, verbs[i][0]))
      return verbs[i][1];
  return NULL;
}

static void usage(FILE *out) {
  fprintf(out, "usage: smc COMMAND [ARGS...]\n\ncommands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", smc_cli_commands[i]->name, smc_cli_commands[i]->summary);
  fprintf(out, "\n`smc COMMAND --help` describes a command.\n"
               "exit status: 0 ok, 1 rejected or failed, 2 usage, 3 unavailable,\n"
               "  4 pending votes (smc propose)\n");
}

/*
 * glibc gives threads that allocate at once arenas of their own, up to 8 per
 * core, and each arena keeps what was freed in it. A worker's threads (fold,
 * commit, librdkafka's, RocksDB's) spread over a dozen of them: with
 * 1,000,000 lock objects its peak RSS was 202 MB with glibc's default, 186
 * MB with 4 arenas and 169 MB with 2, at the same fast-path rate and CPU
 * (bench/run.py, two alternating pairs). A MALLOC_ARENA_MAX in the
 * environment still decides.
 */
static void limit_malloc_arenas(void) {
#ifdef M_ARENA_MAX
  if (!getenv("MALLOC_ARENA_MAX"))
    mallopt(M_ARENA_MAX, 2);
#endif
}

/*
 * --log-format text|logfmt|json is taken by every command (and
 * SMC_LOG_FORMAT before it): it is removed from argv here, before the
 * command parses the rest, and sets the format of every log line of the
 * process (core/logline.h). 0, or -1 after a usage message.
 */
static int take_log_format(int *argc, char **argv) {
  const char *env = getenv("SMC_LOG_FORMAT");
  const char *val = env && *env ? env : NULL;
  int out = 1;
  for (int i = 1; i < *argc; i++) {
    if (!strcmp(argv[i], "--")) { /* the rest is not ours */
      while (i < *argc)
        argv[out++] = argv[i++];
      break;
    }
    if (!strcmp(argv[i], "--log-format")) {
      if (i + 1 >= *argc) {
        fprintf(stderr, "smc: --log-format needs text, logfmt or json\n");
        return -1;
      }
      val = argv[++i];
    } else if (!strncmp(argv[i], "--log-format=", 13)) {
      val = argv[i] + 13;
    } else {
      argv[out++] = argv[i];
    }
  }
  argv[out] = NULL;
  *argc = out;
  if (val && smc_logline_parse_format(val) < 0) {
    fprintf(stderr, "smc: log format must be text, logfmt or json, not '%s'\n", val);
    return -1;
  }
  if (val)
    smc_logline_set_format(smc_logline_parse_format(val));
  return 0;
}

int main(int argc, char **argv) {
  limit_malloc_arenas();
  if (take_log_format(&argc, argv) < 0)
    return SMC_EXIT_USAGE;
  if (argc < 2) {
    usage(stderr);
    return SMC_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
    if (argc > 2) {
      for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(smc_cli_commands[i]->name, argv[2])) {
          char *hargv[] = {argv[2], "--help", NULL};
          return smc_cli_commands[i]->run(2, hargv);
        }
    }
    usage(stdout);
    return SMC_EXIT_OK;
  }
  if (!strcmp(name, "version") || !strcmp(name, "--version")) {
    /* The librdkafka this process runs (the library loaded, not the header
     * it was built with): the one of .cache/librdkafka or Debian's. */
    printf("smc %s\nlibrdkafka %s\n", SMC_VERSION, smc_kafka_version());
    return SMC_EXIT_OK;
  }
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (!strcmp(smc_cli_commands[i]->name, name))
      return smc_cli_commands[i]->run(argc - 1, argv + 1);
  fprintf(stderr, "smc: unknown command '%s'\n\n", name);
  usage(stderr);
  return SMC_EXIT_USAGE;
}
