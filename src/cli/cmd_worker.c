/*
 * smc worker: a production node (committer and/or voter roles, optional REST
 * gateway) against a real Kafka cluster.
 *
 * Settings come from three layers, later ones winning: the config file
 * (--config FILE or $SMC_CONFIG; YAML, keys mirroring the flags with '_' or
 * '-', plus kafka: {properties: {k: v}}), the environment (SMC_BOOTSTRAP,
 * SMC_NODE_ID, SMC_PREFIX, SMC_DATA_DIR, SMC_VOTER, SMC_VOTE_HOOK, SMC_HTTP,
 * SMC_LOG_LEVEL, SMC_COMMITTER, SMC_TICK_MS, SMC_COMMIT_INTERVAL_MS,
 * SMC_COMMIT_MAX_RECORDS, SMC_SESSION_TIMEOUT_MS, SMC_VOTE_HOOK_TIMEOUT_MS and
 * the limits SMC_MAX_EVENT_BYTES, SMC_MAX_DATA_BYTES, SMC_MAX_QUEUE,
 * SMC_EXPR_STEPS, SMC_REGEX_MATCH_LIMIT, SMC_REGEX_DEPTH_LIMIT,
 * SMC_MAX_DEFINITION_BYTES, SMC_HTTP_MAX_BODY_BYTES, SMC_HTTP_MAX_CONNECTIONS),
 * then the flags. -X properties are added after the file's.
 * SIGINT/SIGTERM stop cleanly and exit 0; a role failing fatally exits 1.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <yaml.h>

#include "cli/cli.h"
#include "gateway/gateway.h"
#include "node/answers.h"
#include "node/log.h"
#include "node/node.h"

/* Every setting as text (NULL = not given), so the layers merge uniformly. */
enum {
  S_BOOTSTRAP,
  S_NODE_ID,
  S_PREFIX,
  S_DATA_DIR,
  S_VOTER,
  S_VOTE_HOOK,
  S_VOTE_HOOK_TIMEOUT,
  S_VOTE_KEY,
  S_HTTP,
  S_LOG_LEVEL,
  S_COMMITTER,
  S_TICK_MS,
  S_COMMIT_INTERVAL,
  S_COMMIT_MAX,
  S_SESSION_TIMEOUT,
  S_MAX_EVENT_BYTES,
  S_MAX_DATA_BYTES,
  S_MAX_QUEUE,
  S_EXPR_STEPS,
  S_REGEX_MATCH,
  S_REGEX_DEPTH,
  S_MAX_DEFINITION,
  S_HTTP_MAX_BODY,
  S_HTTP_MAX_CONN,
  S_STORE_CACHE_MB,
  S_STORE_WRITE_BUFFER_MB,
  S_HTTP_CACHE_MB,
  S_REPLY_TO_ALLOW,
  S_REGISTRATION_KEY,
  S_TXN_DEADLINE,
  S_CHANGELOG,
  S_COMMIT_MAX_INTERVAL,
  S_COUNT
};

/* smc dev blocks its stop signals the same way (cli.h). */
void smc_cli_block_stop_signals(sigset_t *sigs) {
  sigemptyset(sigs);
  sigaddset(sigs, SIGINT);
  sigaddset(sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, sigs, NULL);
  signal(SIGPIPE, SIG_IGN);
}

static const struct {
  const char *key; /* config file key (also accepted with '-') */
  const char *env;
} settings[S_COUNT] = {
    [S_BOOTSTRAP] = {"bootstrap", "SMC_BOOTSTRAP"},
    [S_NODE_ID] = {"node_id", "SMC_NODE_ID"},
    [S_PREFIX] = {"prefix", "SMC_PREFIX"},
    [S_DATA_DIR] = {"data_dir", "SMC_DATA_DIR"},
    [S_VOTER] = {"voter", "SMC_VOTER"},
    [S_VOTE_HOOK] = {"vote_hook", "SMC_VOTE_HOOK"},
    [S_VOTE_HOOK_TIMEOUT] = {"vote_hook_timeout_ms", "SMC_VOTE_HOOK_TIMEOUT_MS"},
    [S_VOTE_KEY] = {"vote_key", "SMC_VOTE_KEY"},
    [S_HTTP] = {"http", "SMC_HTTP"},
    [S_LOG_LEVEL] = {"log_level", "SMC_LOG_LEVEL"},
    [S_COMMITTER] = {"committer", "SMC_COMMITTER"},
    [S_TICK_MS] = {"tick_ms", "SMC_TICK_MS"},
    [S_COMMIT_INTERVAL] = {"commit_interval_ms", "SMC_COMMIT_INTERVAL_MS"},
    [S_COMMIT_MAX] = {"commit_max_records", "SMC_COMMIT_MAX_RECORDS"},
    [S_SESSION_TIMEOUT] = {"session_timeout_ms", "SMC_SESSION_TIMEOUT_MS"},
    [S_MAX_EVENT_BYTES] = {"max_event_bytes", "SMC_MAX_EVENT_BYTES"},
    [S_MAX_DATA_BYTES] = {"max_data_bytes", "SMC_MAX_DATA_BYTES"},
    [S_MAX_QUEUE] = {"max_queue", "SMC_MAX_QUEUE"},
    [S_EXPR_STEPS] = {"expr_steps", "SMC_EXPR_STEPS"},
    [S_REGEX_MATCH] = {"regex_match_limit", "SMC_REGEX_MATCH_LIMIT"},
    [S_REGEX_DEPTH] = {"regex_depth_limit", "SMC_REGEX_DEPTH_LIMIT"},
    [S_MAX_DEFINITION] = {"max_definition_bytes", "SMC_MAX_DEFINITION_BYTES"},
    [S_HTTP_MAX_BODY] = {"http_max_body_bytes", "SMC_HTTP_MAX_BODY_BYTES"},
    [S_HTTP_MAX_CONN] = {"http_max_connections", "SMC_HTTP_MAX_CONNECTIONS"},
    [S_STORE_CACHE_MB] = {"store_cache_mb", "SMC_STORE_CACHE_MB"},
    [S_STORE_WRITE_BUFFER_MB] = {"store_write_buffer_mb", "SMC_STORE_WRITE_BUFFER_MB"},
    [S_HTTP_CACHE_MB] = {"http_cache_mb", "SMC_HTTP_CACHE_MB"},
    [S_REPLY_TO_ALLOW] = {"reply_to_allow", "SMC_REPLY_TO_ALLOW"},
    [S_REGISTRATION_KEY] = {"registration_key", "SMC_REGISTRATION_KEY"},
    [S_TXN_DEADLINE] = {"txn_deadline_ms", "SMC_TXN_DEADLINE_MS"},
    [S_CHANGELOG] = {"changelog", "SMC_CHANGELOG"},
    [S_COMMIT_MAX_INTERVAL] = {"commit_max_interval_ms", "SMC_COMMIT_MAX_INTERVAL_MS"},
};

typedef struct worker_opts {
  char *val[S_COUNT]; /* owned */
  char **props;       /* k, v, ..., NULL (owned) */
  size_t nprops;
} worker_opts_t;

static void usage(FILE *out) {
  fprintf(out,
          "usage: smc worker --bootstrap B --node-id ID [--committer|--no-committer]\n"
          "                  [--voter ID [--vote-key FILE]] [--vote-hook CMD] [--http ADDR]\n"
          "                  [--data-dir D]\n"
          "                  [--log-level L] [--config smc.yaml] [-X key=value]...\n"
          "\n"
          "Run a worker node: the committer role (exactly-once confirmations, group\n"
          "<prefix>-committer) unless --no-committer, the voter role with --voter ID,\n"
          "and the REST gateway with --http. SIGINT/SIGTERM stop cleanly.\n"
          "\n"
          "  --bootstrap B          Kafka bootstrap servers (default localhost:9092)\n"
          "  --node-id ID           node name for logs, /info and transactional.id\n"
          "  --prefix P             topic prefix (default smc.)\n"
          "  --data-dir D           state stores: D/committer, D/voter-ID (default ./smc-data)\n"
          "  --voter ID             also run the voter role as voter identity ID\n"
          "  --vote-hook CMD        sh command deciding votes: proposal JSON on stdin,\n"
          "                         exit 0 accepts, else rejects with stdout as reason\n"
          "  --vote-hook-timeout MS hook time limit (default 5000; a timeout rejects)\n"
          "  --vote-key FILE        sign the voter's votes with this Ed25519 private key\n"
          "                         (PEM; from `smc keygen` or `openssl genpkey`)\n"
          "  --http ADDR            serve the REST gateway on HOST:PORT\n"
          "  --log-level L          error, warn, info (default) or debug\n"
          "  --log-format F         text (default), logfmt or json (also SMC_LOG_FORMAT;\n"
          "                         librdkafka's lines too)\n"
          "  --tick-ms MS           tick interval while timers are pending (default 200)\n"
          "  --commit-interval-ms MS, --commit-max-records N   transaction size (10, 1000)\n"
          "  --commit-max-interval-ms MS  transaction age when every proposal in it is\n"
          "                         answered by a local fold (header smc-ack; 100)\n"
          "  --session-timeout-ms MS  consumer group session timeout (default 10000)\n"
          "  --txn-deadline-ms MS   longest wait for one transactional call before the\n"
          "                         committer abandons its producer (default 40000)\n"
          "  --changelog BOOL       write snapshots to <prefix>changelog and restore an\n"
          "                         empty store from them (default true)\n"
          "Limits (the fold's limits, expression steps to queue length, are cluster\n"
          "settings in the log: `smc cluster settings`; these are the node's own):\n"
          "  --http-max-body-bytes N   HTTP request bodies; beyond: 413 too_large (1048576)\n"
          "  --http-max-connections N  open HTTP connections; beyond: 503 (1024)\n"
          "Security:\n"
          "  --reply-to-allow LIST  topics a reply_to may name: comma-separated names, a\n"
          "                         trailing * for a prefix (default any); never one of\n"
          "                         the cluster's own (<prefix>*)\n"
          "  --registration-key K   Ed25519 public key (base64 or PEM file) that must sign\n"
          "                         every machine registration (a fold setting: the same\n"
          "                         on every worker, and for verify/replay/simulate)\n"
          "Memory:\n"
          "  --store-cache-mb N     RocksDB block cache of each store (default 16)\n"
          "  --store-write-buffer-mb N  RocksDB memtable per column family (default 4;\n"
          "                         a store's memtables stay under 4x this)\n"
          "  --http-cache-mb N      gateway's cache of proposal outcomes and object\n"
          "                         versions, estimated heap bytes (default 32)\n"
          "  --config FILE          YAML settings (default $SMC_CONFIG): keys as the flags\n"
          "                         (bootstrap, node_id, voter, ...), kafka: {properties: {}}\n"
          "  -X KEY=VALUE           librdkafka property; repeatable\n"
          "\n"
          "Precedence: flags > SMC_* environment > config file > defaults.\n");
}

static int set_val(worker_opts_t *o, int idx, const char *v) {
  char *d = strdup(v);
  if (!d)
    return -1;
  free(o->val[idx]);
  o->val[idx] = d;
  return 0;
}

static int add_prop(worker_opts_t *o, const char *k, size_t klen, const char *v) {
  char **np = realloc(o->props, (o->nprops + 3) * sizeof *np);
  if (!np)
    return -1;
  o->props = np;
  np[o->nprops] = strndup(k, klen);
  np[o->nprops + 1] = strdup(v);
  np[o->nprops + 2] = NULL;
  if (!np[o->nprops] || !np[o->nprops + 1])
    return -1;
  o->nprops += 2;
  return 0;
}

static void opts_close(worker_opts_t *o) {
  for (int i = 0; i < S_COUNT; i++)
    free(o->val[i]);
  for (size_t i = 0; i < o->nprops; i++)
    free(o->props[i]);
  free(o->props);
}

static int setting_for_key(const char *key) {
  char k[64];
  snprintf(k, sizeof k, "%s", key);
  for (char *p = k; *p; p++)
    if (*p == '-')
      *p = '_';
  for (int i = 0; i < S_COUNT; i++)
    if (!strcmp(settings[i].key, k))
      return i;
  return -1;
}

static const char *scalar(yaml_document_t *doc, yaml_node_t *n) {
  (void)doc;
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Read the config file into o (the lowest layer). Unknown keys are errors. */
static int load_config(worker_opts_t *o, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "smc worker: config %s: %s\n", path, strerror(errno));
    return -1;
  }
  yaml_parser_t parser;
  yaml_document_t doc;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, f);
  int rc = -1;
  if (!yaml_parser_load(&parser, &doc)) {
    fprintf(stderr, "smc worker: config %s:%zu:%zu: %s\n", path, parser.problem_mark.line + 1,
            parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error");
    yaml_parser_delete(&parser);
    fclose(f);
    return -1;
  }
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (!root) {
    rc = 0; /* empty file */
    goto out;
  }
  if (root->type != YAML_MAPPING_NODE) {
    fprintf(stderr, "smc worker: config %s: the top level must be a mapping\n", path);
    goto out;
  }
  for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
       pr++) {
    yaml_node_t *kn = yaml_document_get_node(&doc, pr->key);
    yaml_node_t *vn = yaml_document_get_node(&doc, pr->value);
    const char *key = scalar(&doc, kn);
    if (!key)
      goto bad;
    if (!strcmp(key, "kafka")) {
      if (vn->type != YAML_MAPPING_NODE)
        goto bad_at;
      for (yaml_node_pair_t *kp = vn->data.mapping.pairs.start; kp < vn->data.mapping.pairs.top;
           kp++) {
        const char *sub = scalar(&doc, yaml_document_get_node(&doc, kp->key));
        yaml_node_t *pm = yaml_document_get_node(&doc, kp->value);
        if (!sub || strcmp(sub, "properties") || pm->type != YAML_MAPPING_NODE)
          goto bad_at;
        for (yaml_node_pair_t *pp = pm->data.mapping.pairs.start; pp < pm->data.mapping.pairs.top;
             pp++) {
          const char *pk = scalar(&doc, yaml_document_get_node(&doc, pp->key));
          const char *pv = scalar(&doc, yaml_document_get_node(&doc, pp->value));
          if (!pk || !pv)
            goto bad_at;
          if (add_prop(o, pk, strlen(pk), pv) < 0)
            goto out;
        }
      }
      continue;
    }
    int idx = setting_for_key(key);
    const char *val = scalar(&doc, vn);
    if (idx < 0) {
      fprintf(stderr, "smc worker: config %s:%zu: unknown key '%s'\n", path,
              kn->start_mark.line + 1, key);
      goto out;
    }
    if (!val)
      goto bad_at;
    if (set_val(o, idx, val) < 0)
      goto out;
    continue;
  bad_at:
    fprintf(stderr, "smc worker: config %s:%zu: bad value for '%s'\n", path,
            kn->start_mark.line + 1, key);
    goto out;
  }
  rc = 0;
  goto out;
bad:
  fprintf(stderr, "smc worker: config %s: keys must be strings\n", path);
out:
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  fclose(f);
  return rc;
}

static int parse_int(const char *name, const char *s, int min, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > 100000000) {
    fprintf(stderr, "smc worker: %s must be an integer >= %d, not '%s'\n", name, min, s);
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* A limit: a positive integer (at most 100000000). */
static int parse_limit(const char *name, const char *s, size_t *out) {
  int v;
  if (parse_int(name, s, 1, &v) < 0)
    return -1;
  *out = (size_t)v;
  return 0;
}

/* A size in MiB: 1 .. 65536; *out in bytes. */
static int parse_mb(const char *name, const char *s, size_t *out) {
  int v;
  if (parse_int(name, s, 1, &v) < 0)
    return -1;
  if (v > 65536) {
    fprintf(stderr, "smc worker: %s must be at most 65536 (MiB), not '%s'\n", name, s);
    return -1;
  }
  *out = (size_t)v << 20;
  return 0;
}

static int parse_bool(const char *name, const char *s, int *out) {
  if (!strcmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
    *out = 1;
  else if (!strcmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") ||
           !strcasecmp(s, "off"))
    *out = 0;
  else {
    fprintf(stderr, "smc worker: %s must be true or false, not '%s'\n", name, s);
    return -1;
  }
  return 0;
}

/* Turn the merged settings into a node configuration (strings borrowed). */
static int to_config(const worker_opts_t *o, smc_node_config_t *c) {
  smc_node_config_default(c);
  const char *const *v = (const char *const *)o->val;
  c->bootstrap = v[S_BOOTSTRAP];
  if (v[S_NODE_ID])
    c->node_id = v[S_NODE_ID];
  if (v[S_PREFIX])
    c->prefix = v[S_PREFIX];
  if (v[S_DATA_DIR])
    c->data_dir = v[S_DATA_DIR];
  c->voter_id = v[S_VOTER] && *v[S_VOTER] ? v[S_VOTER] : NULL;
  c->vote_hook = v[S_VOTE_HOOK] && *v[S_VOTE_HOOK] ? v[S_VOTE_HOOK] : NULL;
  c->vote_key = v[S_VOTE_KEY] && *v[S_VOTE_KEY] ? v[S_VOTE_KEY] : NULL;
  if (c->vote_key && !c->voter_id) {
    fprintf(stderr, "smc worker: --vote-key needs --voter\n");
    return -1;
  }
  c->kafka_props = (const char *const *)o->props;
  c->reply_to_allow = v[S_REPLY_TO_ALLOW] && *v[S_REPLY_TO_ALLOW] ? v[S_REPLY_TO_ALLOW] : NULL;
  c->registration_key =
      v[S_REGISTRATION_KEY] && *v[S_REGISTRATION_KEY] ? v[S_REGISTRATION_KEY] : NULL;
  if (v[S_LOG_LEVEL]) {
    int l = smc_log_parse_level(v[S_LOG_LEVEL]);
    if (l < 0) {
      fprintf(stderr, "smc worker: log level must be error, warn, info or debug\n");
      return -1;
    }
    c->log_level = l;
  }
  if (v[S_COMMITTER] && parse_bool("committer", v[S_COMMITTER], &c->committer) < 0)
    return -1;
  if (v[S_CHANGELOG] && parse_bool("changelog", v[S_CHANGELOG], &c->changelog) < 0)
    return -1;
  /* the whole-number settings and their least values */
  const struct {
    int s;
    const char *name;
    int min, *out;
  } ints[] = {{S_VOTE_HOOK_TIMEOUT, "vote hook timeout", 1, &c->vote_hook_timeout_ms},
              {S_TICK_MS, "tick-ms", 1, &c->tick_ms},
              {S_COMMIT_INTERVAL, "commit-interval-ms", 1, &c->commit_interval_ms},
              {S_COMMIT_MAX_INTERVAL, "commit-max-interval-ms", 1, &c->commit_max_interval_ms},
              {S_COMMIT_MAX, "commit-max-records", 1, &c->commit_max_records},
              {S_SESSION_TIMEOUT, "session-timeout-ms", 1000, &c->session_timeout_ms},
              {S_TXN_DEADLINE, "txn-deadline-ms", 1000, &c->txn_deadline_ms}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (v[ints[i].s] && parse_int(ints[i].name, v[ints[i].s], ints[i].min, ints[i].out) < 0)
      return -1;
  /* The fold limits decide outcomes: they are cluster settings in the log
   * (protocol.md "settings"), never one node's. */
  for (int i = S_MAX_EVENT_BYTES; i <= S_MAX_DEFINITION; i++)
    if (v[i]) {
      smc_cli_fold_setting_moved("worker", settings[i].key, settings[i].env);
      return -1;
    }
  size_t n;
  if (v[S_STORE_CACHE_MB]) {
    if (parse_mb("store-cache-mb", v[S_STORE_CACHE_MB], &n) < 0)
      return -1;
    c->store_cache_bytes = n;
  }
  if (v[S_STORE_WRITE_BUFFER_MB]) {
    if (parse_mb("store-write-buffer-mb", v[S_STORE_WRITE_BUFFER_MB], &n) < 0)
      return -1;
    c->store_write_buffer_bytes = n;
  }
  return 0;
}

static size_t owned_partitions(void *opaque, int32_t *out, size_t max) {
  return smc_node_partitions(opaque, out, max);
}

static int node_ready(void *opaque) { return smc_node_healthy(opaque); }

enum {
  OPT_BOOTSTRAP = 1000,
  OPT_NODE_ID,
  OPT_COMMITTER,
  OPT_NO_COMMITTER,
  OPT_VOTER,
  OPT_HOOK,
  OPT_HOOK_TIMEOUT,
  OPT_VOTE_KEY,
  OPT_HTTP,
  OPT_DATA_DIR,
  OPT_LOG_LEVEL,
  OPT_CONFIG,
  OPT_PREFIX,
  OPT_TICK,
  OPT_COMMIT_INTERVAL,
  OPT_COMMIT_MAX,
  OPT_SESSION,
  OPT_LIMIT /* OPT_LIMIT + (S_MAX_EVENT_BYTES .. S_COUNT - 1) */
};

static int run(int argc, char **argv) {
  static const struct option longopts[] = {
      {"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
      {"node-id", required_argument, NULL, OPT_NODE_ID},
      {"committer", no_argument, NULL, OPT_COMMITTER},
      {"no-committer", no_argument, NULL, OPT_NO_COMMITTER},
      {"voter", required_argument, NULL, OPT_VOTER},
      {"vote-hook", required_argument, NULL, OPT_HOOK},
      {"vote-hook-timeout", required_argument, NULL, OPT_HOOK_TIMEOUT},
      {"vote-key", required_argument, NULL, OPT_VOTE_KEY},
      {"http", required_argument, NULL, OPT_HTTP},
      {"data-dir", required_argument, NULL, OPT_DATA_DIR},
      {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
      {"config", required_argument, NULL, OPT_CONFIG},
      {"prefix", required_argument, NULL, OPT_PREFIX},
      {"tick-ms", required_argument, NULL, OPT_TICK},
      {"commit-interval-ms", required_argument, NULL, OPT_COMMIT_INTERVAL},
      {"commit-max-records", required_argument, NULL, OPT_COMMIT_MAX},
      {"session-timeout-ms", required_argument, NULL, OPT_SESSION},
      {"txn-deadline-ms", required_argument, NULL, OPT_LIMIT + S_TXN_DEADLINE},
      {"commit-max-interval-ms", required_argument, NULL, OPT_LIMIT + S_COMMIT_MAX_INTERVAL},
      {"max-event-bytes", required_argument, NULL, OPT_LIMIT + S_MAX_EVENT_BYTES},
      {"max-data-bytes", required_argument, NULL, OPT_LIMIT + S_MAX_DATA_BYTES},
      {"max-queue", required_argument, NULL, OPT_LIMIT + S_MAX_QUEUE},
      {"expr-steps", required_argument, NULL, OPT_LIMIT + S_EXPR_STEPS},
      {"regex-match-limit", required_argument, NULL, OPT_LIMIT + S_REGEX_MATCH},
      {"regex-depth-limit", required_argument, NULL, OPT_LIMIT + S_REGEX_DEPTH},
      {"max-definition-bytes", required_argument, NULL, OPT_LIMIT + S_MAX_DEFINITION},
      {"http-max-body-bytes", required_argument, NULL, OPT_LIMIT + S_HTTP_MAX_BODY},
      {"http-max-connections", required_argument, NULL, OPT_LIMIT + S_HTTP_MAX_CONN},
      {"store-cache-mb", required_argument, NULL, OPT_LIMIT + S_STORE_CACHE_MB},
      {"store-write-buffer-mb", required_argument, NULL, OPT_LIMIT + S_STORE_WRITE_BUFFER_MB},
      {"http-cache-mb", required_argument, NULL, OPT_LIMIT + S_HTTP_CACHE_MB},
      {"reply-to-allow", required_argument, NULL, OPT_LIMIT + S_REPLY_TO_ALLOW},
      {"registration-key", required_argument, NULL, OPT_LIMIT + S_REGISTRATION_KEY},
      {"changelog", required_argument, NULL, OPT_LIMIT + S_CHANGELOG},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  worker_opts_t flags = {0}, merged = {0};
  const char *config = getenv("SMC_CONFIG");
  int rc = SMC_EXIT_USAGE, opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hX:", longopts, NULL)) != -1) {
    int idx = -1;
    const char *val = optarg;
    switch (opt) {
    case 'h':
      usage(stdout);
      rc = SMC_EXIT_OK;
      goto out;
    case 'X': {
      const char *eq = optarg ? strchr(optarg, '=') : NULL;
      if (!eq || eq == optarg) {
        fprintf(stderr, "smc worker: -X wants KEY=VALUE, not '%s'\n", optarg);
        goto out;
      }
      if (add_prop(&flags, optarg, (size_t)(eq - optarg), eq + 1) < 0)
        goto oom;
      continue;
    }
    case OPT_CONFIG:
      config = optarg;
      continue;
    case OPT_BOOTSTRAP:
      idx = S_BOOTSTRAP;
      break;
    case OPT_NODE_ID:
      idx = S_NODE_ID;
      break;
    case OPT_COMMITTER:
      idx = S_COMMITTER;
      val = "true";
      break;
    case OPT_NO_COMMITTER:
      idx = S_COMMITTER;
      val = "false";
      break;
    case OPT_VOTER:
      idx = S_VOTER;
      break;
    case OPT_HOOK:
      idx = S_VOTE_HOOK;
      break;
    case OPT_VOTE_KEY:
      idx = S_VOTE_KEY;
      break;
    case OPT_HOOK_TIMEOUT:
      idx = S_VOTE_HOOK_TIMEOUT;
      break;
    case OPT_HTTP:
      idx = S_HTTP;
      break;
    case OPT_DATA_DIR:
      idx = S_DATA_DIR;
      break;
    case OPT_LOG_LEVEL:
      idx = S_LOG_LEVEL;
      break;
    case OPT_PREFIX:
      idx = S_PREFIX;
      break;
    case OPT_TICK:
      idx = S_TICK_MS;
      break;
    case OPT_COMMIT_INTERVAL:
      idx = S_COMMIT_INTERVAL;
      break;
    case OPT_COMMIT_MAX:
      idx = S_COMMIT_MAX;
      break;
    case OPT_SESSION:
      idx = S_SESSION_TIMEOUT;
      break;
    default:
      if (opt >= OPT_LIMIT + S_MAX_EVENT_BYTES && opt < OPT_LIMIT + S_COUNT) {
        idx = opt - OPT_LIMIT;
        break;
      }
      usage(stderr);
      goto out;
    }
    if (set_val(&flags, idx, val) < 0)
      goto oom;
  }
  if (optind < argc) {
    fprintf(stderr, "smc worker: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    goto out;
  }
  /* Layers: file, then environment, then flags. */
  if (config && *config && load_config(&merged, config) < 0)
    goto out;
  for (int i = 0; i < S_COUNT; i++) {
    const char *e = getenv(settings[i].env);
    if (e && *e && set_val(&merged, i, e) < 0)
      goto oom;
  }
  for (int i = 0; i < S_COUNT; i++)
    if (flags.val[i] && set_val(&merged, i, flags.val[i]) < 0)
      goto oom;
  for (size_t i = 0; i < flags.nprops; i += 2)
    if (add_prop(&merged, flags.props[i], strlen(flags.props[i]), flags.props[i + 1]) < 0)
      goto oom;
  if (!merged.val[S_NODE_ID]) {
    fprintf(stderr, "smc worker: --node-id is required\n");
    usage(stderr);
    goto out;
  }
  if (merged.val[S_REGISTRATION_KEY] && *merged.val[S_REGISTRATION_KEY]) {
    /* a file's text replaces its name */
    char *key = smc_cli_registration_key("worker", merged.val[S_REGISTRATION_KEY]);
    if (!key)
      goto out;
    free(merged.val[S_REGISTRATION_KEY]);
    merged.val[S_REGISTRATION_KEY] = key;
  }
  smc_node_config_t cfg;
  if (to_config(&merged, &cfg) < 0)
    goto out;
  size_t http_body = 0, http_conn = 0;
  if (merged.val[S_HTTP_MAX_BODY] &&
      parse_limit("http-max-body-bytes", merged.val[S_HTTP_MAX_BODY], &http_body) < 0)
    goto out;
  if (merged.val[S_HTTP_MAX_CONN] &&
      parse_limit("http-max-connections", merged.val[S_HTTP_MAX_CONN], &http_conn) < 0)
    goto out;
  size_t http_cache = 0;
  if (merged.val[S_HTTP_CACHE_MB] &&
      parse_mb("http-cache-mb", merged.val[S_HTTP_CACHE_MB], &http_cache) < 0)
    goto out;

  /* Block the stop signals before any thread starts; they are taken with
   * sigtimedwait below, so no handler runs inside librdkafka or RocksDB. */
  sigset_t sigs;
  smc_cli_block_stop_signals(&sigs);

  smc_error_t err;
  smc_error_clear(&err);
  smc_node_t *node = NULL;
  smc_answers_t *answers = NULL; /* the gateway's answers from this node's fold */
  if (merged.val[S_HTTP] && *merged.val[S_HTTP] && !(answers = smc_answers_new()))
    goto oom;
  cfg.answers = answers;
  if (smc_node_start(&cfg, &node, &err) < 0) {
    smc_answers_destroy(answers);
    fprintf(stderr, "smc worker: %s: %s\n", smc_code_name(err.code), err.message);
    rc = err.code == SMC_EUNAVAILABLE ? SMC_EXIT_UNAVAILABLE : SMC_EXIT_FAILED;
    goto out;
  }
  smc_gateway_t *gw = NULL;
  if (merged.val[S_HTTP] && *merged.val[S_HTTP]) {
    char roles[64];
    snprintf(roles, sizeof roles, "%s%s%shttp", cfg.committer ? "committer," : "",
             cfg.voter_id ? "voter" : "", cfg.voter_id ? "," : "");
    smc_gateway_config_t gc;
    smc_gateway_config_default(&gc);
    gc.listen = merged.val[S_HTTP];
    gc.bootstrap = cfg.bootstrap;
    gc.prefix = cfg.prefix;
    gc.kafka_props = cfg.kafka_props;
    gc.node_id = cfg.node_id;
    if (http_body)
      gc.max_body_bytes = http_body;
    if (http_conn)
      gc.max_connections = (unsigned)http_conn;
    gc.max_definition_bytes = cfg.limits.definition_max_bytes;
    gc.cache_bytes = http_cache;
    gc.roles = roles;
    gc.owned_partitions = owned_partitions;
    gc.ready = node_ready;
    gc.opaque = node;
    gc.answers = answers;
    if (smc_gateway_start(&gc, &gw, &err) < 0) {
      fprintf(stderr, "smc worker: gateway: %s: %s\n", smc_code_name(err.code), err.message);
      smc_node_stop(node);
      smc_answers_destroy(answers);
      rc = SMC_EXIT_FAILED;
      goto out;
    }
    smc_log(SMC_LOG_INFO, cfg.node_id, -1, "http gateway on %s", smc_gateway_address(gw));
    smc_node_set_http(node, smc_gateway_address(gw));
  }
  rc = SMC_EXIT_OK;
  for (;;) {
    struct timespec ts = {0, 200 * 1000000L};
    int sig = sigtimedwait(&sigs, NULL, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
      smc_log(SMC_LOG_INFO, cfg.node_id, -1, "signal %d: stopping", sig);
      break;
    }
    if (!smc_node_healthy(node)) {
      smc_log(SMC_LOG_ERROR, cfg.node_id, -1, "a role stopped on a fatal error: exiting");
      rc = SMC_EXIT_FAILED;
      break;
    }
  }
  smc_gateway_stop(gw);
  smc_node_stop(node);
  smc_answers_destroy(answers);
  goto out;
oom:
  fprintf(stderr, "smc worker: out of memory\n");
  rc = SMC_EXIT_FAILED;
out:
  opts_close(&flags);
  opts_close(&merged);
  return rc;
}

const smc_command_t smc_cmd_worker = {"worker", "run a worker node (committer, voter, gateway)",
                                      run};
