/* smc topics create|describe: apply the topic definitions of topics/. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_client.h"
#include "cli/cmd_trim.h"
#include "kafka/admin.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"

#ifndef SMC_SOURCE_DIR
#define SMC_SOURCE_DIR "."
#endif

static void topics_usage(FILE *out) {
  fprintf(out, "usage: smc topics create [--partitions N] [--replication R] [--min-isr M]\n"
               "                         [--file F] [options]\n"
               "       smc topics describe [--partitions N] [--file F] [options]\n"
               "       smc topics trim [--dry-run] [options]\n"
               "  create: create the topics of the definitions file that do not exist yet;\n"
               "  running it again changes nothing. Prints each topic and whether it was\n"
               "  created or existed. A topic that exists with another partition count is an\n"
               "  error (exit 1).\n"
               "  describe: print each topic's partition count, or that it is missing (exit 1).\n"
               "  trim: delete the records of <prefix>proposals below each partition's last\n"
               "  complete checkpoint in <prefix>changelog (never past the committer group's\n"
               "  committed offset); a partition without one is kept whole. verify and\n"
               "  simulate then see only the kept log (docs/operations.md).\n"
               "  --dry-run        trim: print what would be deleted, delete nothing\n"
               "  --partitions N   partitions of the per-object topics (default 12)\n"
               "  --replication R  replication factor (default: the broker's default)\n"
               "  --min-isr M      min.insync.replicas of the topics it creates (default: 2\n"
               "                   with --replication 3 or more, else the broker's default)\n"
               "  --file F         definitions (default $SMC_TOPICS_FILE, ./topics/topics.json,\n"
               "                   then the source tree's topics/topics.json)\n"
               "  --timeout D      default 30s\n"
               "  -o text|json     output (default text)\n" SMC_CLI_CONN_HELP);
}

/* The definitions file: --file, $SMC_TOPICS_FILE, ./topics/topics.json, the
 * source tree's. */
static const char *defs_path(const char *given) {
  if (given)
    return given;
  const char *env = getenv("SMC_TOPICS_FILE");
  if (env && *env)
    return env;
  if (access("topics/topics.json", R_OK) == 0)
    return "topics/topics.json";
  return SMC_SOURCE_DIR "/topics/topics.json";
}

static const char *status_name(smc_topic_status_t s) {
  switch (s) {
  case SMC_TOPIC_CREATED:
    return "created";
  case SMC_TOPIC_EXISTED:
    return "exists";
  case SMC_TOPIC_MISMATCH:
    return "mismatch";
  default:
    return "failed";
  }
}

static void print_results(const smc_topic_result_t *r, size_t n, int json) {
  json_t *arr = json ? json_array() : NULL;
  for (size_t i = 0; i < n; i++) {
    if (r[i].status == 0) /* the request failed as a whole: no per-topic answer */
      continue;
    if (json) {
      json_t *o = json_pack("{s:s,s:s,s:i,s:i}", "topic", r[i].name, "status",
                            status_name(r[i].status), "partitions", (int)r[i].partitions,
                            "have_partitions", (int)r[i].have_partitions);
      if (r[i].message[0])
        json_object_set_new(o, "message", json_string(r[i].message));
      json_array_append_new(arr, o);
    } else if (r[i].status == SMC_TOPIC_CREATED || r[i].status == SMC_TOPIC_EXISTED) {
      printf("%-8s %s (%d partitions)\n", status_name(r[i].status), r[i].name,
             (int)r[i].have_partitions);
    } else {
      printf("%-8s %s: %s\n", status_name(r[i].status), r[i].name, r[i].message);
    }
  }
  if (json) {
    smc_cli_print_json(arr);
    json_decref(arr);
  }
}

static int describe(const smc_cli_conn_t *conn, const smc_topic_defs_t *defs, int32_t n,
                    int timeout_ms, int json) {
  char errstr[512];
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_PRODUCER,
                           .bootstrap = conn->bootstrap,
                           .props = (const char *const *)conn->props};
  smc_kafka_t *rk = smc_kafka_open(&spec, errstr, sizeof(errstr));
  if (!rk) {
    fprintf(stderr, "smc topics: %s\n", errstr);
    return SMC_EXIT_FAILED;
  }
  int rc = SMC_EXIT_OK;
  json_t *arr = json_array();
  for (size_t i = 0; i < defs->count; i++) {
    char *t = smc_topic(conn->prefix, defs->items[i].name);
    int32_t want = defs->items[i].partitions < 0 ? n : defs->items[i].partitions;
    int32_t have = t ? smc_kafka_partitions(rk, t, timeout_ms) : SMC_ENOMEM;
    if (have == SMC_EUNAVAILABLE || have == SMC_EKAFKA || have == SMC_ENOMEM) {
      fprintf(stderr, "smc topics: %s: %s\n", t ? t : "?", smc_strerror(have));
      free(t);
      rc = smc_cli_exit_for(have);
      break;
    }
    const char *st = have < 0 ? "missing" : have == want ? "ok" : "mismatch";
    if (have < 0 || have != want)
      rc = SMC_EXIT_FAILED;
    if (json)
      json_array_append_new(arr,
                            json_pack("{s:s,s:s,s:i,s:i}", "topic", t, "status", st, "partitions",
                                      (int)want, "have_partitions", (int)(have < 0 ? -1 : have)));
    else if (have < 0)
      printf("%-8s %s\n", st, t);
    else
      printf("%-8s %s (%d partitions, expected %d)\n", st, t, (int)have, (int)want);
    free(t);
  }
  if (json && rc != SMC_EXIT_UNAVAILABLE)
    smc_cli_print_json(arr);
  json_decref(arr);
  smc_kafka_close(rk);
  return rc;
}

static int run_topics(int argc, char **argv) {
  static const struct option longopts[] = {SMC_CLI_CONN_LONGOPTS,
                                           {"partitions", required_argument, NULL, 'p'},
                                           {"replication", required_argument, NULL, 'r'},
                                           {"min-isr", required_argument, NULL, 'm'},
                                           {"file", required_argument, NULL, 'f'},
                                           {"timeout", required_argument, NULL, 't'},
                                           {"dry-run", no_argument, NULL, 'n'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  smc_cli_conn_t conn;
  smc_cli_conn_init(&conn);
  conn.output = "text";
  smc_topics_options_t o;
  smc_topics_options_default(&o);
  const char *file = NULL;
  int rc = SMC_EXIT_USAGE, opt, dry_run = 0;
  optind = 1;
  const smc_cli_int_opt_t ints[] = {{'p', "partitions", 1, 100000, &o.partitions},
                                    {'r', "replication", 1, 32767, &o.replication},
                                    {'m', "min-isr", 1, 32767, &o.min_isr}};
  while ((opt = smc_cli_getopt(&conn, argc, argv, "ho:X:", longopts, topics_usage)) != -1) {
    int taken = smc_cli_int_opt("topics", ints, sizeof ints / sizeof ints[0], opt, optarg);
    if (taken < 0)
      goto out;
    if (taken)
      continue;
    switch (opt) {
    case SMC_CLI_OPT_HELP:
      rc = SMC_EXIT_OK;
      goto out;
    case 'f':
      file = optarg;
      break;
    case 'n':
      dry_run = 1;
      break;
    case 't':
      if (smc_cli_duration(optarg, &o.timeout_ms) || o.timeout_ms <= 0) {
        fprintf(stderr, "smc topics: --timeout wants a duration like 30s\n");
        goto out;
      }
      break;
    default: /* SMC_CLI_OPT_BAD */
      goto out;
    }
  }
  int json = !strcmp(conn.output, "json");
  if (!json && strcmp(conn.output, "text")) {
    fprintf(stderr, "smc topics: -o wants text or json\n");
    goto out;
  }
  if (argc - optind != 1 || (strcmp(argv[optind], "create") && strcmp(argv[optind], "describe") &&
                             strcmp(argv[optind], "trim"))) {
    topics_usage(stderr);
    goto out;
  }
  if (!strcmp(argv[optind], "trim")) {
    rc = smc_cli_topics_trim(&conn, o.timeout_ms, dry_run, json);
    goto out;
  }
  smc_topic_defs_t defs;
  smc_error_t err;
  smc_error_clear(&err);
  const char *path = defs_path(file);
  if (smc_topic_defs_load(path, &defs, &err)) {
    smc_cli_print_error("topics", &err);
    rc = SMC_EXIT_FAILED;
    goto out;
  }
  if (!strcmp(argv[optind], "describe")) {
    rc = describe(&conn, &defs, o.partitions, o.timeout_ms, json);
    smc_topic_defs_close(&defs);
    goto out;
  }
  o.bootstrap = conn.bootstrap;
  o.prefix = conn.prefix;
  o.properties = (const char *const *)conn.props;
  smc_topic_result_t *res = calloc(defs.count, sizeof(*res));
  if (!res) {
    smc_topic_defs_close(&defs);
    rc = SMC_EXIT_FAILED;
    goto out;
  }
  int r = smc_topics_create(&o, &defs, res, &err);
  if (r == 0 || r == SMC_EKAFKA) /* per-topic results are meaningful */
    print_results(res, defs.count, json);
  if (r)
    smc_cli_print_error("topics", &err);
  rc = smc_cli_exit_for(r);
  free(res);
  smc_topic_defs_close(&defs);
out:
  smc_cli_conn_close(&conn);
  return rc;
}

const smc_command_t smc_cmd_topics = {"topics", "create or describe the cluster's Kafka topics",
                                      run_topics};
