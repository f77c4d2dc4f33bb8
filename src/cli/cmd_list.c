/*
 * smc list MACHINE / smc history OBJECT / smc status: what the log says, read
 * straight from Kafka like every client command. The REST gateway answers
 * the same questions from its folds' state (GET /machine/{m}/object, .../
 * history, GET /nodes); both come from the same confirmations, so they agree.
 *  - list: every committed confirmation of <prefix>confirmations, the latest
 *    version per object of MACHINE, paged by object id;
 *  - history: the committed confirmations of OBJECT in its partition, every
 *    version once, paged by version;
 *  - status: the node table, <prefix>nodes read to its end.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "cli/cmd_client.h"
#include "core/view.h"

enum { O_LIMIT = 3000, O_AFTER, O_TIMEOUT, O_DOWN };

typedef struct list_args {
  smc_cli_conn_t conn;
  long long limit;
  const char *after;
  int timeout_ms, down_ms;
} list_args_t;

/* Options of the three commands; positionals may come before or after them
 * (getopt_long permutes). 0, or an exit status (-1: help printed). */
static int parse(int argc, char **argv, list_args_t *a, void (*usage)(FILE *)) {
  static const struct option longopts[] = {SMC_CLI_CONN_LONGOPTS,
                                           {"limit", required_argument, NULL, O_LIMIT},
                                           {"after", required_argument, NULL, O_AFTER},
                                           {"timeout", required_argument, NULL, O_TIMEOUT},
                                           {"down-after", required_argument, NULL, O_DOWN},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  *a = (list_args_t){.limit = 100, .timeout_ms = 30000, .down_ms = 10000};
  smc_cli_conn_init(&a->conn);
  optind = 1;
  int opt;
  while ((opt = smc_cli_getopt(&a->conn, argc, argv, "ho:X:", longopts, usage)) != -1) {
    switch (opt) {
    case SMC_CLI_OPT_HELP:
      return -1;
    case O_LIMIT:
      if (smc_cli_int64(optarg, &a->limit) || a->limit < 1) {
        fprintf(stderr, "smc %s: --limit wants a number >= 1\n", argv[0]);
        return SMC_EXIT_USAGE;
      }
      break;
    case O_AFTER:
      a->after = optarg;
      break;
    case O_TIMEOUT:
    case O_DOWN:
      if (smc_cli_duration(optarg, opt == O_TIMEOUT ? &a->timeout_ms : &a->down_ms)) {
        fprintf(stderr, "smc %s: '%s' is not a duration like 500ms, 5s, 2m\n", argv[0], optarg);
        return SMC_EXIT_USAGE;
      }
      break;
    default: /* SMC_CLI_OPT_BAD */
      return SMC_EXIT_USAGE;
    }
  }
  if (strcmp(a->conn.output, "json") && strcmp(a->conn.output, "table") &&
      strcmp(a->conn.output, "text")) {
    fprintf(stderr, "smc %s: -o: json or table\n", argv[0]);
    return SMC_EXIT_USAGE;
  }
  a->conn.setup_ms = a->timeout_ms;
  return 0;
}

/* Print {key: rows, next} as JSON, or rows as a table. */
static void print_page(const smc_cli_conn_t *c, json_t *page, const char *key) {
  if (smc_cli_table(c))
    smc_cli_print_view(c, json_object_get(page, key));
  else
    smc_cli_print_json(page);
}

/* ---------- list ---------- */

static void list_usage(FILE *out) {
  fprintf(out, "usage: smc list MACHINE [--limit N] [--after ID] [-o json|table] [--timeout D]\n"
               "  The objects of MACHINE at their latest committed version, by id, from the\n"
               "  confirmations log: up to N (default 100) with an id after ID. JSON is\n"
               "  {machine, objects, next} as GET /machine/{m}/object answers; pass next as\n"
               "  --after for the following page.\n" SMC_CLI_CONN_HELP);
}

typedef struct list_state {
  const char *machine, *after;
  json_t *latest; /* object id -> its newest committed confirmation */
} list_state_t;

static int committed(const json_t *v) {
  const char *type = json_string_value(json_object_get(v, "type"));
  const char *outcome = json_string_value(json_object_get(v, "outcome"));
  return type && !strcmp(type, "confirmation") && outcome && !strcmp(outcome, "committed") &&
         !json_is_true(json_object_get(v, "duplicate"));
}

static int list_cb(void *opaque, const json_t *v, const char *key, int32_t p, int64_t off) {
  (void)key, (void)p, (void)off;
  list_state_t *s = opaque;
  const char *obj = json_string_value(json_object_get(v, "object"));
  const char *mc = json_string_value(json_object_get(v, "machine"));
  if (!committed(v) || !obj || !mc || strcmp(mc, s->machine) ||
      (s->after && strcmp(obj, s->after) <= 0))
    return 0;
  json_t *have = json_object_get(s->latest, obj);
  if (!have || json_integer_value(json_object_get(have, "version")) <
                   json_integer_value(json_object_get(v, "version")))
    json_object_set(s->latest, obj, (json_t *)v);
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of o in byte order (malloc'd; they point into o) and their count. */
static const char **sorted_keys(json_t *o, size_t *n) {
  size_t i = 0;
  *n = json_object_size(o);
  const char **ids = calloc(*n + 1, sizeof *ids);
  const char *k;
  json_t *v;
  if (ids) {
    json_object_foreach(o, k, v) ids[i++] = k;
    qsort(ids, *n, sizeof *ids, cmp_str);
  }
  return ids;
}

/* What a command does once its client is open: operand is argv's one
 * operand (NULL when it takes none), after the --after version (when asked
 * for). Returns the exit code. */
typedef int (*body_fn)(list_args_t *a, smc_client_t *c, const char *operand, long long after);

/* Every command here: parse argv into a, want nargs operands (with
 * version_after, --after must be a version), open the client, run body,
 * close. Returns the exit code. */
static int run(int argc, char **argv, void (*usage)(FILE *), int nargs, int version_after,
               body_fn body) {
  list_args_t a;
  long long after = 0;
  smc_client_t *c = NULL;
  int rc = parse(argc, argv, &a, usage);
  if (!rc && version_after && a.after && smc_cli_int64(a.after, &after)) {
    fprintf(stderr, "smc %s: --after wants a version (a number >= 0)\n", argv[0]);
    rc = SMC_EXIT_USAGE;
  }
  if (rc || argc - optind != nargs) {
    if (!rc)
      usage(stderr);
    rc = rc < 0 ? SMC_EXIT_OK : rc ? rc : SMC_EXIT_USAGE;
  } else if (!(rc = smc_cli_client_open(&a.conn, &c))) {
    rc = body(&a, c, nargs ? argv[optind] : NULL, after);
    smc_client_destroy(c);
  }
  smc_cli_conn_close(&a.conn);
  return rc;
}

/* smc_client_scan of topic (one partition, or -1: all) with cb: 0, or the
 * exit code after printing why. */
static int scan(smc_client_t *c, const list_args_t *a, const char *topic, int32_t partition,
                int (*cb)(void *, const json_t *, const char *, int32_t, int64_t), void *opaque,
                const char *cmd) {
  smc_error_t err;
  smc_error_clear(&err);
  int r = smc_client_scan(c, topic, partition, a->timeout_ms, cb, opaque, &err);
  if (!r)
    return 0;
  smc_cli_print_error(cmd, &err);
  return smc_cli_exit_for(r);
}

static int list_body(list_args_t *a, smc_client_t *c, const char *machine, long long after) {
  (void)after;
  list_state_t s = {machine, a->after, json_object()};
  int rc = scan(c, a, "confirmations", -1, list_cb, &s, "list");
  if (!rc) {
    size_t n, i;
    const char **ids = sorted_keys(s.latest, &n);
    json_t *objs = json_array();
    for (i = 0; i < n && i < (size_t)a->limit; i++)
      json_array_append_new(objs, smc_view_object(json_object_get(s.latest, ids[i]), ids[i], NULL));
    json_t *page = json_pack("{s:s, s:o, s:o}", "machine", s.machine, "objects", objs, "next",
                             n > (size_t)a->limit ? json_string(ids[a->limit - 1]) : json_null());
    print_page(&a->conn, page, "objects");
    json_decref(page);
    free(ids);
  }
  json_decref(s.latest);
  return rc;
}

static int run_list(int argc, char **argv) { return run(argc, argv, list_usage, 1, 0, list_body); }

/* ---------- history ---------- */

static void history_usage(FILE *out) {
  fprintf(
      out,
      "usage: smc history OBJECT [--limit N] [--after V] [-o json|table] [--timeout D]\n"
      "  Every committed version of OBJECT above V (default 0), oldest first, up to N\n"
      "  (default 100), each with its proposal, transition, votes and time, from the\n"
      "  confirmations log. JSON is {object, machine, versions, next} as GET\n"
      "  /machine/{m}/object/{o}/history answers. Exit 1 when it has none.\n" SMC_CLI_CONN_HELP);
}

typedef struct hist_state {
  const char *object;
  long long after;
  json_t *byver; /* "version" -> confirmation */
} hist_state_t;

static int hist_cb(void *opaque, const json_t *v, const char *key, int32_t p, int64_t off) {
  (void)key, (void)p, (void)off;
  hist_state_t *s = opaque;
  const char *obj = json_string_value(json_object_get(v, "object"));
  json_int_t ver = json_integer_value(json_object_get(v, "version"));
  if (!committed(v) || !obj || strcmp(obj, s->object) || ver <= s->after)
    return 0;
  char k[32];
  snprintf(k, sizeof k, "%020lld", (long long)ver); /* sorts as numbers */
  if (!json_object_get(s->byver, k))
    json_object_set(s->byver, k, (json_t *)v);
  return 0;
}

static int history_body(list_args_t *a, smc_client_t *c, const char *object, long long after) {
  hist_state_t s = {object, after, json_object()};
  int rc = scan(c, a, "confirmations", smc_client_partition_of(c, object), hist_cb, &s, "history");
  if (!rc && json_object_size(s.byver) == 0) {
    fprintf(stderr, "smc history: unknown_object: %s: no committed version%s\n", object,
            after ? " after that one" : "");
    rc = SMC_EXIT_FAILED;
  } else if (!rc) {
    size_t n, i;
    const char **ks = sorted_keys(s.byver, &n);
    json_t *versions = json_array();
    const char *machine = NULL;
    for (i = 0; i < n && i < (size_t)a->limit; i++) {
      json_t *conf = json_object_get(s.byver, ks[i]);
      machine = json_string_value(json_object_get(conf, "machine"));
      json_t *view = smc_view_answer(conf, object, NULL, NULL);
      json_object_del(view, "outcome");
      json_array_append_new(versions, view);
    }
    json_t *last = json_array_get(versions, json_array_size(versions) - 1);
    json_t *page = json_pack(
        "{s:s, s:s?, s:o, s:o}", "object", object, "machine", machine, "versions", versions, "next",
        n > (size_t)a->limit ? json_incref(json_object_get(last, "version")) : json_null());
    print_page(&a->conn, page, "versions");
    json_decref(page);
    free(ks);
  }
  json_decref(s.byver);
  return rc;
}

static int run_history(int argc, char **argv) {
  return run(argc, argv, history_usage, 1, 1, history_body);
}

/* ---------- status ---------- */

static void status_usage(FILE *out) {
  fprintf(out, "usage: smc status [--down-after D] [-o json|table] [--timeout D]\n"
               "  The node table: <prefix>nodes read to its end, one row per node with its\n"
               "  status (down when stopped or not heard of for --down-after, default 10s as\n"
               "  the gateway's), roles, HTTP address, partitions, fold lag and when it was\n"
               "  last seen. JSON is {nodes, down_after_ms} as GET /nodes answers. Exit 1 when\n"
               "  no node ever wrote a heartbeat.\n" SMC_CLI_CONN_HELP);
}

static int node_cb(void *opaque, const json_t *v, const char *key, int32_t p, int64_t off) {
  (void)p, (void)off;
  const char *type = json_string_value(json_object_get(v, "type"));
  if (key && type && !strcmp(type, "node"))
    json_object_set((json_t *)opaque, key, (json_t *)v); /* the latest per node */
  return 0;
}

static char *join_ints(const json_t *arr) {
  char buf[512] = "";
  size_t i;
  json_t *x;
  json_array_foreach(arr, i, x) {
    size_t l = strlen(buf);
    if (l + 24 >= sizeof buf) {
      snprintf(buf + l, sizeof buf - l, ",...");
      break;
    }
    snprintf(buf + l, sizeof buf - l, "%s%lld", i ? "," : "", (long long)json_integer_value(x));
  }
  return strdup(buf[0] ? buf : "-");
}

/* The table of smc status: NODE STATUS ROLES HTTP PARTITIONS LAG LAST-SEEN. */
static void print_nodes(const json_t *nodes) {
  printf("%-16s %-6s %-24s %-22s %-18s %-8s %s\n", "NODE", "STATUS", "ROLES", "HTTP", "PARTITIONS",
         "LAG", "LAST SEEN");
  size_t i, k;
  json_t *n, *x;
  json_array_foreach(nodes, i, n) {
    char roles[128] = "";
    json_array_foreach(json_object_get(n, "roles"), k, x) {
      snprintf(roles + strlen(roles), sizeof roles - strlen(roles), "%s%s", k ? "," : "",
               json_string_value(x) ? json_string_value(x) : "?");
    }
    long long lag = 0;
    const char *pk;
    json_object_foreach(json_object_get(n, "lag"), pk, x) lag += json_integer_value(x);
    char *parts = join_ints(json_object_get(n, "partitions"));
    const char *http = json_string_value(json_object_get(n, "http"));
    printf("%-16s %-6s %-24s %-22s %-18s %-8lld %.1fs ago\n",
           json_string_value(json_object_get(n, "node")),
           json_string_value(json_object_get(n, "status")), roles[0] ? roles : "-",
           http && *http ? http : "-", parts, lag,
           (double)json_integer_value(json_object_get(n, "last_seen_ms")) / 1000.0);
    free(parts);
  }
  fflush(stdout);
}

static int status_body(list_args_t *a, smc_client_t *c, const char *operand, long long after) {
  (void)operand, (void)after;
  json_t *latest = json_object();
  int rc = scan(c, a, "nodes", -1, node_cb, latest, "status");
  if (!rc) {
    size_t n, i;
    const char **ids = sorted_keys(latest, &n);
    json_t *nodes = json_array();
    int64_t now = smc_wall_ms();
    for (i = 0; i < n; i++) {
      json_t *rec = json_deep_copy(json_object_get(latest, ids[i]));
      int64_t seen = json_integer_value(json_object_get(rec, "time"));
      int down = json_is_true(json_object_get(rec, "stopped")) || now - seen > a->down_ms;
      json_object_del(rec, "type");
      json_object_set_new(rec, "status", json_string(down ? "down" : "up"));
      json_object_set_new(rec, "last_seen_ms", json_integer(now - seen > 0 ? now - seen : 0));
      json_array_append_new(nodes, rec);
    }
    free(ids);
    if (smc_cli_table(&a->conn)) {
      print_nodes(nodes);
    } else {
      json_t *o = json_pack("{s:O, s:I}", "nodes", nodes, "down_after_ms", (json_int_t)a->down_ms);
      smc_cli_print_json(o);
      json_decref(o);
    }
    if (n == 0)
      fprintf(stderr, "smc status: no node has written to the node table\n");
    rc = n ? SMC_EXIT_OK : SMC_EXIT_FAILED;
    json_decref(nodes);
  }
  json_decref(latest);
  return rc;
}

static int run_status(int argc, char **argv) {
  return run(argc, argv, status_usage, 0, 0, status_body);
}

const smc_command_t smc_cmd_list = {"list", "list a machine's objects (paged by id)", run_list};
const smc_command_t smc_cmd_history = {"history", "every committed version of an object",
                                       run_history};
const smc_command_t smc_cmd_status = {"status", "the node table: nodes, roles, partitions, lag",
                                      run_status};
