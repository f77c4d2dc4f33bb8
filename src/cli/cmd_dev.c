/*
 * smc dev: a whole cluster in one process for development and tests.
 *
 * An rd_kafka_t hosts librdkafka's mock cluster (memory only; no transaction
 * markers, so read_committed hides nothing: fine for dev, never for proofs),
 * the topics of topics/topics.json are created on it, N worker nodes run the
 * committer role (and the voter role as "node-<i>" on the first --voters of
 * them), and one REST gateway serves HTTP. SIGINT/SIGTERM stop everything in
 * reverse order and exit 0.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "cli/cmd_client.h"
#include "gateway/gateway.h"
#include "kafka/admin.h"
#include "kafka/kconf.h"
#include "node/answers.h"
#include "node/node.h"
#include "smc/client.h"

#ifndef SMC_SOURCE_DIR
#define SMC_SOURCE_DIR "."
#endif

#define MAX_NODES 16

typedef struct dev {
  int nodes, voters, partitions, examples, log_level;
  const char *http, *prefix, *data_dir, *examples_dir, *topics_file, *vote_hook, *auth_tokens;
  const char *vote_keys;                     /* dir of <voter id>.key files: those voters sign */
  char topics_buf[1024], examples_buf[1024]; /* topics_file, examples_dir when found */
  char tmpdir[256];
  rd_kafka_t *host;
  rd_kafka_mock_cluster_t *mock;
  char *bootstrap;
  smc_node_t *node[MAX_NODES];
  smc_answers_t *answers; /* the nodes' folds answer the gateway */
  smc_gateway_t *gw;
} dev_t_;

static void usage(FILE *out) {
  fprintf(out, "usage: smc dev [--nodes 3] [--http 127.0.0.1:8080] [--examples] [--partitions 12]\n"
               "               [--voters N] [--vote-hook CMD] [--data-dir D] [--prefix smc.] [-v]\n"
               "\n"
               "Run a whole cluster in this process: an in-memory Kafka (librdkafka's mock\n"
               "cluster), its topics, N worker nodes (committer each; voter \"node-<i>\" on\n"
               "the first --voters nodes, default all) and the REST gateway. Ctrl-C stops.\n"
               "\n"
               "  --examples          register every examples/machines/*.yaml\n"
               "  --examples-dir D    where the examples are (default ./examples/machines,\n"
               "                      else the source tree's)\n"
               "  --topics FILE       topic definitions (default topics/topics.json)\n"
               "  --data-dir D        keep node stores in D (default: a temporary dir, removed)\n"
               "  --vote-hook CMD     the voters' hook (proposal JSON on stdin; exit 0 accepts)\n"
               "  --vote-keys DIR     voter node-<i> signs its votes with DIR/node-<i>.key when\n"
               "                      that file exists (smc keygen --out DIR/node-<i>)\n"
               "  --auth-tokens FILE  require bearer tokens (JSON: {\"TOKEN\": {\"machines\": "
               "\"*\" | [names]}})\n"
               "  -v                  more logging (repeat for debug)\n"
               "  --log-format F      text (default), logfmt or json: every log line on stderr\n"
               "                      (smc's and librdkafka's; any command takes it)\n");
}

/* The mock broker answers a fetch only when fetch.wait.max.ms has passed if
 * no data is there (a record produced meanwhile does not end the wait), so
 * the wait is what a record waits before it is folded: 2 ms for the
 * committers, whose folds answer the gateway; 5 ms for the rest, since every
 * idle fetch costs the process CPU (a consumer-only property: producers skip
 * it, smc_kconf_consumer_only). */
static const char *const dev_props[] = {"fetch.wait.max.ms", "5", NULL};
static const char *const dev_committer_props[] = {"fetch.wait.max.ms", "2", NULL};

/* The path given by flag, else the first existing one of rel and its copy
 * in the source tree; NULL (said why) when there is none. */
static const char *find_path(const char *given, const char *flag, const char *rel, char *buf,
                             size_t n) {
  struct stat st;
  if (given || stat(rel, &st) == 0)
    return given ? given : rel;
  snprintf(buf, n, "%s/%s", SMC_SOURCE_DIR, rel);
  if (stat(buf, &st) == 0)
    return buf;
  fprintf(stderr, "smc dev: %s not found (use %s)\n", rel, flag);
  return NULL;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static int start_mock(dev_t_ *d) {
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", d->log_level > 1 ? "6" : "3", errstr, sizeof(errstr));
  rd_kafka_conf_set_log_cb(conf, smc_kconf_log_cb); /* its lines in the process's log format */
  d->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!d->host) {
    fprintf(stderr, "smc dev: %s\n", errstr);
    return -1;
  }
  d->mock = rd_kafka_mock_cluster_new(d->host, 1);
  if (!d->mock) {
    fprintf(stderr, "smc dev: cannot create the mock cluster\n");
    return -1;
  }
  d->bootstrap = strdup(rd_kafka_mock_cluster_bootstraps(d->mock));
  return d->bootstrap ? 0 : -1;
}

/* The topics file, and the examples directory when asked for: the ones
 * given, else found (find_path). 0, or -1 (said why). */
static int find_inputs(dev_t_ *d) {
  d->topics_file = find_path(d->topics_file, "--topics FILE", "topics/topics.json", d->topics_buf,
                             sizeof d->topics_buf);
  if (d->topics_file && d->examples)
    d->examples_dir = find_path(d->examples_dir, "--examples-dir", "examples/machines",
                                d->examples_buf, sizeof d->examples_buf);
  return d->topics_file && (!d->examples || d->examples_dir) ? 0 : -1;
}

static int create_topics(dev_t_ *d) {
  const char *file = d->topics_file;
  smc_topic_defs_t defs;
  smc_error_t err;
  smc_error_clear(&err);
  if (smc_topic_defs_load(file, &defs, &err) < 0) {
    fprintf(stderr, "smc dev: %s: %s\n", file, err.message);
    return -1;
  }
  int rc = 0;
  for (size_t i = 0; i < defs.count && rc == 0; i++) {
    char name[512];
    snprintf(name, sizeof(name), "%s%s", d->prefix, defs.items[i].name);
    int32_t n = defs.items[i].partitions < 0 ? d->partitions : defs.items[i].partitions;
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(d->mock, name, n, 1);
    if (e) {
      fprintf(stderr, "smc dev: topic %s: %s\n", name, rd_kafka_err2str(e));
      rc = -1;
    }
  }
  smc_topic_defs_close(&defs);
  return rc;
}

static int start_nodes(dev_t_ *d) {
  for (int i = 0; i < d->nodes; i++) {
    char id[32], dir[512];
    snprintf(id, sizeof(id), "node-%d", i + 1);
    snprintf(dir, sizeof(dir), "%s/%s", d->data_dir, id);
    smc_node_config_t c;
    smc_node_config_default(&c);
    c.bootstrap = d->bootstrap;
    c.kafka_props = dev_props;
    c.committer_kafka_props = dev_committer_props;
    c.prefix = d->prefix;
    c.node_id = id;
    c.data_dir = dir;
    c.committer = 1;
    c.voter_id = i < d->voters ? id : NULL;
    c.vote_hook = d->vote_hook;
    char key[600];
    if (c.voter_id && d->vote_keys) {
      snprintf(key, sizeof(key), "%s/%s.key", d->vote_keys, id);
      if (access(key, F_OK) == 0) {
        c.vote_key = key; /* smc_node_start copies it */
        printf("smc dev: voter %s signs with %s\n", id, key);
      }
    }
    c.log_level = d->log_level;
    c.answers = d->answers;
    /* the mock cluster keeps producer timestamps: clamp them to this host's
     * clock instead of refusing the topic (docs/reliability.md, issue 18) */
    c.trust_producer_time = 1;
    smc_error_t err;
    smc_error_clear(&err);
    if (smc_node_start(&c, &d->node[i], &err) < 0) {
      fprintf(stderr, "smc dev: node %s: %s\n", id, err.message);
      return -1;
    }
  }
  return 0;
}

/* Union of the partitions the nodes' committers own (for /info). */
static size_t owned(void *opaque, int32_t *out, size_t max) {
  dev_t_ *d = opaque;
  size_t total = 0;
  for (int i = 0; i < d->nodes; i++)
    if (d->node[i])
      total += smc_node_partitions(d->node[i], total < max ? out + total : NULL,
                                   total < max ? max - total : 0);
  return total;
}

static int all_owned(void *opaque) {
  dev_t_ *d = opaque;
  int32_t buf[4096];
  return owned(d, buf, 4096) >= (size_t)d->partitions;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Register every *.yaml of the examples directory, in name order. */
static int load_examples(dev_t_ *d) {
  const char *dir = d->examples_dir;
  DIR *dp = opendir(dir);
  if (!dp) {
    fprintf(stderr, "smc dev: %s: %s\n", dir, strerror(errno));
    return -1;
  }
  char *names[256] = {0};
  size_t n = 0;
  for (struct dirent *e; (e = readdir(dp)) && n < 256;) {
    size_t l = strlen(e->d_name);
    if (l > 5 && !strcmp(e->d_name + l - 5, ".yaml") && (names[n] = strdup(e->d_name)))
      n++;
  }
  closedir(dp);
  qsort(names, n, sizeof(char *), cmp_str);
  smc_client_config_t cc = {.bootstrap = d->bootstrap,
                            .prefix = d->prefix,
                            .properties = dev_props,
                            .client_id = "smc-dev"};
  smc_client_t *client = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  int rc = smc_client_new(&cc, &client, &err);
  if (rc < 0)
    fprintf(stderr, "smc dev: client: %s\n", err.message);
  for (size_t i = 0; i < n; i++) {
    if (rc == 0 && names[i]) {
      char path[2048];
      snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
      FILE *f = fopen(path, "rb");
      char *text = NULL;
      size_t len = 0;
      if (f) {
        FILE *mem = open_memstream(&text, &len);
        char chunk[8192];
        size_t k;
        while (mem && (k = fread(chunk, 1, sizeof(chunk), f)) > 0)
          fwrite(chunk, 1, k, mem);
        if (mem)
          fclose(mem);
        fclose(f);
      }
      smc_error_clear(&err);
      if (!text || smc_client_register(client, text, len, 15000, &err) < 0) {
        fprintf(stderr, "smc dev: %s: %s\n", path, text ? err.message : strerror(errno));
        rc = -1;
      } else {
        printf("smc dev: registered %s\n", path);
      }
      free(text);
    }
    free(names[i]);
  }
  smc_client_destroy(client);
  return rc;
}

static void stop_all(dev_t_ *d) {
  smc_gateway_stop(d->gw);
  d->gw = NULL;
  for (int i = d->nodes - 1; i >= 0; i--) {
    smc_node_stop(d->node[i]);
    d->node[i] = NULL;
  }
  smc_answers_destroy(d->answers);
  d->answers = NULL;
  if (d->mock)
    rd_kafka_mock_cluster_destroy(d->mock);
  if (d->host)
    rd_kafka_destroy(d->host);
  free(d->bootstrap);
  if (d->tmpdir[0])
    nftw(d->tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int parse_args(dev_t_ *d, int argc, char **argv) {
  static const struct option opts[] = {{"nodes", required_argument, 0, 'n'},
                                       {"http", required_argument, 0, 'H'},
                                       {"examples", no_argument, 0, 'e'},
                                       {"examples-dir", required_argument, 0, 'E'},
                                       {"partitions", required_argument, 0, 'p'},
                                       {"voters", required_argument, 0, 'V'},
                                       {"vote-hook", required_argument, 0, 'k'},
                                       {"vote-keys", required_argument, 0, 'K'},
                                       {"data-dir", required_argument, 0, 'd'},
                                       {"prefix", required_argument, 0, 'P'},
                                       {"topics", required_argument, 0, 't'},
                                       {"auth-tokens", required_argument, 0, 'A'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const smc_cli_text_opt_t texts[] = {
      {'H', &d->http},     {'E', &d->examples_dir}, {'k', &d->vote_hook},   {'K', &d->vote_keys},
      {'d', &d->data_dir}, {'P', &d->prefix},       {'t', &d->topics_file}, {'A', &d->auth_tokens}};
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
    if (smc_cli_text_opt(texts, sizeof texts / sizeof texts[0], c, optarg)) {
      d->examples |= c == 'E'; /* --examples-dir implies --examples */
      continue;
    }
    switch (c) {
    case 'n':
      d->nodes = atoi(optarg);
      break;
    case 'p':
      d->partitions = atoi(optarg);
      break;
    case 'V':
      d->voters = atoi(optarg);
      break;
    case 'e':
      d->examples = 1;
      break;
    case 'v':
      d->log_level++;
      break;
    case 'h':
      usage(stdout);
      return 1;
    default:
      usage(stderr);
      return -1;
    }
  }
  if (optind < argc || d->nodes < 1 || d->nodes > MAX_NODES || d->partitions < 1 ||
      d->partitions > 4096 || d->voters < -1) {
    fprintf(stderr, "smc dev: --nodes must be 1..%d, --partitions 1..4096, --voters >= 0\n",
            MAX_NODES);
    usage(stderr);
    return -1;
  }
  if (d->voters > d->nodes)
    d->voters = d->nodes;
  return 0;
}

static int run(int argc, char **argv) {
  dev_t_ d = {
      .nodes = 3, .voters = -1, .partitions = 12, .http = "127.0.0.1:8080", .prefix = "smc."};
  int pr = parse_args(&d, argc, argv);
  if (pr)
    return pr > 0 ? SMC_EXIT_OK : SMC_EXIT_USAGE;
  if (d.voters < 0)
    d.voters = d.nodes;
  raise_nofile();
  /* Every thread started from here on inherits the blocked signals; main
   * takes them with sigwait. */
  sigset_t sigs;
  smc_cli_block_stop_signals(&sigs);
  int exit_code = SMC_EXIT_FAILED;
  if (!d.data_dir) {
    const char *tmp = getenv("TMPDIR");
    snprintf(d.tmpdir, sizeof(d.tmpdir), "%s/smc-dev-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d.tmpdir)) {
      fprintf(stderr, "smc dev: mkdtemp: %s\n", strerror(errno));
      d.tmpdir[0] = '\0';
      goto done;
    }
    d.data_dir = d.tmpdir;
  }
  if (find_inputs(&d) < 0 || start_mock(&d) < 0 || create_topics(&d) < 0)
    goto done;
  printf("smc dev: kafka bootstrap %s (in-process mock cluster, %d partitions)\n", d.bootstrap,
         d.partitions);
  fflush(stdout);
  if (!(d.answers = smc_answers_new()) || start_nodes(&d) < 0)
    goto done;
  int64_t deadline = smc_now_ms() + 60000;
  while (!all_owned(&d) && smc_now_ms() < deadline)
    usleep(50 * 1000);
  if (!all_owned(&d)) {
    fprintf(stderr, "smc dev: the nodes did not take every partition within 60 s\n");
    goto done;
  }
  if (d.voters == 0)
    printf("smc dev: %d nodes (committer each, no voters: vote by hand)\n", d.nodes);
  else if (d.voters == 1)
    printf("smc dev: %d nodes (committer each, 1 voter: node-1)\n", d.nodes);
  else
    printf("smc dev: %d nodes (committer each, %d voters: node-1..node-%d)\n", d.nodes, d.voters,
           d.voters);
  if (d.examples && load_examples(&d) < 0)
    goto done;
  smc_gateway_config_t gc;
  smc_gateway_config_default(&gc);
  gc.listen = d.http;
  gc.bootstrap = d.bootstrap;
  gc.kafka_props = dev_props;
  gc.prefix = d.prefix;
  gc.node_id = "dev";
  gc.roles = "committer,voter,http";
  gc.owned_partitions = owned;
  gc.ready = all_owned;
  gc.opaque = &d;
  gc.auth_tokens_file = d.auth_tokens;
  gc.answers = d.answers;
  smc_error_t err;
  smc_error_clear(&err);
  if (smc_gateway_start(&gc, &d.gw, &err) < 0) {
    fprintf(stderr, "smc dev: gateway: %s\n", err.message);
    goto done;
  }
  deadline = smc_now_ms() + 30000;
  while (!smc_gateway_ready(d.gw) && smc_now_ms() < deadline)
    usleep(20 * 1000);
  for (int i = 0; i < d.nodes; i++)
    smc_node_set_http(d.node[i], smc_gateway_address(d.gw));
  printf("smc dev: http http://%s\n", smc_gateway_address(d.gw));
  printf("smc dev: ready (Ctrl-C to stop)\n");
  fflush(stdout);
  int sig = 0;
  for (;;) {
    struct timespec ts = {1, 0};
    sig = sigtimedwait(&sigs, NULL, &ts);
    if (sig == SIGINT || sig == SIGTERM)
      break;
    for (int i = 0; i < d.nodes; i++)
      if (!smc_node_healthy(d.node[i])) {
        fprintf(stderr, "smc dev: node-%d stopped on a fatal error\n", i + 1);
        goto done;
      }
  }
  printf("smc dev: stopping\n");
  fflush(stdout);
  exit_code = SMC_EXIT_OK;
done:
  stop_all(&d);
  return exit_code;
}

const smc_command_t smc_cmd_dev = {
    "dev", "run a whole cluster in this process (mock Kafka, nodes, gateway)", run};
