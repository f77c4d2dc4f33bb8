/*
 * smc propose / vote / get / watch: the client library on the command line,
 * plus the connection options shared with topics and machine apply/get/list.
 */
#include "cli/cmd_client.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/duration.h"
#include "cli/cli.h"
#include "core/codec.h"
#include "core/view.h"
#include "kafka/kconf.h"
#include "smc/machine.h"

/* ---------- shared plumbing ---------- */

void smc_cli_conn_init(smc_cli_conn_t *c) {
  memset(c, 0, sizeof(*c));
  c->bootstrap = smc_kafka_default_bootstrap();
  const char *p = getenv("SMC_PREFIX");
  c->prefix = p && *p ? p : SMC_TOPIC_PREFIX_DEFAULT;
  c->output = "json";
}

void smc_cli_conn_close(smc_cli_conn_t *c) {
  for (size_t i = 0; i < 2 * c->nprops; i++)
    free(c->props[i]);
  free(c->props);
  c->props = NULL;
  c->nprops = 0;
}

int smc_cli_conn_opt(smc_cli_conn_t *c, int opt, const char *arg) {
  switch (opt) {
  case SMC_OPT_BOOTSTRAP:
    c->bootstrap = arg;
    return 1;
  case SMC_OPT_PREFIX:
    c->prefix = arg;
    return 1;
  case 'o':
    c->output = arg;
    c->output_given = 1;
    return 1;
  case 'X': {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
      fprintf(stderr, "smc: -X wants KEY=VALUE, got '%s'\n", arg);
      return -1;
    }
    char **np = realloc(c->props, (2 * c->nprops + 3) * sizeof(*np));
    if (!np)
      return -1;
    c->props = np;
    c->props[2 * c->nprops] = strndup(arg, (size_t)(eq - arg));
    c->props[2 * c->nprops + 1] = strdup(eq + 1);
    c->nprops++;
    c->props[2 * c->nprops] = NULL;
    return 1;
  }
  default:
    return 0;
  }
}

int smc_cli_getopt(smc_cli_conn_t *c, int argc, char **argv, const char *shortopts,
                   const struct option *longopts, void (*usage)(FILE *)) {
  for (;;) {
    int opt = getopt_long(argc, argv, shortopts, longopts, NULL);
    int known = opt == -1 ? 0 : smc_cli_conn_opt(c, opt, optarg);
    if (known < 0)
      return SMC_CLI_OPT_BAD;
    if (known)
      continue;
    if (opt == 'h')
      usage(stdout);
    if (opt == '?')
      usage(stderr);
    return opt == 'h' ? SMC_CLI_OPT_HELP : opt == '?' ? SMC_CLI_OPT_BAD : opt;
  }
}

int smc_cli_client_open(const smc_cli_conn_t *c, smc_client_t **out) {
  smc_client_config_t cfg = {.bootstrap = c->bootstrap,
                             .prefix = c->prefix,
                             .properties = (const char *const *)c->props,
                             .client_id = "smc-cli",
                             .setup_timeout_ms = c->setup_ms};
  /* librdkafka's own lines (ten "Connect ... refused" while the broker is
   * down) stay quiet unless asked for: the error names the last of them. */
  const char *lvl = getenv("SMC_KAFKA_LOG_LEVEL");
  if (!lvl || !*lvl)
    smc_kconf_set_log_level(2);
  smc_error_t err;
  smc_error_clear(&err);
  int rc = smc_client_new(&cfg, out, &err);
  if (rc) {
    smc_cli_print_error("client", &err);
    return smc_cli_exit_for(rc);
  }
  return 0;
}

int smc_cli_duration(const char *s, int *ms) {
  int64_t v;
  if (smc_duration_parse(s, 0, &v) < 0 || v > INT32_MAX)
    return -1;
  *ms = (int)v;
  return 0;
}

int smc_cli_int64(const char *s, long long *out) {
  if (!s || !*s)
    return -1;
  char *end = NULL;
  long long v = strtoll(s, &end, 10);
  if (*end || v < 0)
    return -1;
  *out = v;
  return 0;
}

int smc_cli_text_opt(const smc_cli_text_opt_t *t, size_t n, int opt, const char *arg) {
  for (size_t i = 0; i < n; i++)
    if (t[i].opt == opt) {
      *t[i].to = arg;
      return 1;
    }
  return 0;
}

int smc_cli_int_opt(const char *cmd, const smc_cli_int_opt_t *t, size_t n, int opt,
                    const char *arg) {
  for (size_t i = 0; i < n; i++) {
    long long v;
    if (t[i].opt != opt)
      continue;
    if (smc_cli_int64(arg, &v) || v < t[i].lo || v > t[i].hi) {
      fprintf(stderr, "smc %s: --%s wants a number from %lld to %lld\n", cmd, t[i].flag, t[i].lo,
              t[i].hi);
      return -1;
    }
    *t[i].to = (int)v;
    return 1;
  }
  return 0;
}

int smc_cli_exit_for(int code) {
  if (code == 0)
    return SMC_EXIT_OK;
  return code == SMC_EUNAVAILABLE ? SMC_EXIT_UNAVAILABLE : SMC_EXIT_FAILED;
}

void smc_cli_print_error(const char *cmd, const smc_error_t *err) {
  fprintf(stderr, "smc %s: %s: %s", cmd, smc_code_name(err->code), err->message);
  if (err->line)
    fprintf(stderr, " (line %d, column %d)", err->line, err->column);
  if (err->path[0])
    fprintf(stderr, " [at %s]", err->path);
  fputc('\n', stderr);
}

void smc_cli_print_json(const void *json) {
  char *s = json_dumps((const json_t *)json, JSON_COMPACT | JSON_SORT_KEYS);
  if (s) {
    puts(s);
    free(s);
  }
  fflush(stdout);
}

int smc_cli_table(const smc_cli_conn_t *c) {
  if (c->output_given)
    return !strcmp(c->output, "table") || !strcmp(c->output, "text");
  return isatty(STDOUT_FILENO);
}

void smc_cli_print_view(const smc_cli_conn_t *c, const void *view) {
  const json_t *v = view;
  if (!smc_cli_table(c)) {
    smc_cli_print_json(v);
    return;
  }
  json_t *rows = json_is_array(v) ? json_incref((json_t *)v) : json_pack("[O]", v);
  char *t = smc_view_table(rows);
  json_decref(rows);
  if (t)
    fputs(t, stdout);
  free(t);
  fflush(stdout);
}

/* ---------- propose ---------- */

static void propose_usage(FILE *out) {
  fprintf(
      out,
      "usage: smc propose MACHINE OBJECT [TRANSITION] [options]\n"
      "  Propose TRANSITION of OBJECT (TRANSITION may be left out for dfsm machines)\n"
      "  and print the decision: the object as REST answers it (-o json), or a table.\n"
      "  --data JSON          the proposal's data (an object; default {})\n"
      "  --expect-version N   the object's version must be N (0 = must not exist)\n"
      "  --id ID              proposal id (default: with --expect-version, derived from\n"
      "                       object, version, transition and data, so the same command\n"
      "                       is the same proposal; without, a fresh random id)\n"
      "  --to STATE           pick among transitions by target state\n"
      "  --proposer P         recorded as the proposer\n"
      "  --wait D             how long to wait for the decision (default 5s; 0 = only\n"
      "                       until the proposal is in the log)\n"
      "  -o json|table        output (default: table on a terminal, else json)\n" SMC_CLI_CONN_HELP
      "exit: 0 committed, 1 rejected/expired/failed, 2 usage, 3 outcome unknown,\n"
      "  4 pending votes; with 3 and 4 stdout has {\"proposal\":ID,\"status\":...}:\n"
      "  vote with `smc vote ... --proposal ID`, re-send with --id ID to learn the outcome\n");
}

enum {
  O_DATA = 2000,
  O_EXPECT,
  O_ID,
  O_TO,
  O_WAIT,
  O_PROPOSER,
  O_VOTER,
  O_REJECT,
  O_REASON,
  O_PROPOSAL,
  O_AFTER,
  O_TIMEOUT,
  O_COUNT,
  O_KEY
};

typedef struct cli_args {
  smc_cli_conn_t conn;
  smc_propose_req_t req;
  json_t *data;
  int wait_ms;
  const char *voter, *reason, *proposal;
  const char *key_file; /* vote --key: PEM Ed25519 private key */
  int reject;
  long long after;
  int after_given;
  int timeout_ms;
  long long count;
} cli_args_t;

/* Parse the options every client command shares (each command accepts only
 * the ones its usage names: 'allowed' lists them), and check that from
 * min_pos to max_pos operands follow. Returns 0 or an exit status (a
 * negative one: help printed, which finish makes 0). */
static int parse_args(int argc, char **argv, cli_args_t *a, const int *allowed,
                      void (*usage)(FILE *), int min_pos, int max_pos) {
  static const struct option longopts[] = {SMC_CLI_CONN_LONGOPTS,
                                           {"data", required_argument, NULL, O_DATA},
                                           {"expect-version", required_argument, NULL, O_EXPECT},
                                           {"id", required_argument, NULL, O_ID},
                                           {"to", required_argument, NULL, O_TO},
                                           {"wait", required_argument, NULL, O_WAIT},
                                           {"proposer", required_argument, NULL, O_PROPOSER},
                                           {"voter", required_argument, NULL, O_VOTER},
                                           {"reject", no_argument, NULL, O_REJECT},
                                           {"reason", required_argument, NULL, O_REASON},
                                           {"proposal", required_argument, NULL, O_PROPOSAL},
                                           {"after-version", required_argument, NULL, O_AFTER},
                                           {"timeout", required_argument, NULL, O_TIMEOUT},
                                           {"count", required_argument, NULL, O_COUNT},
                                           {"key", required_argument, NULL, O_KEY},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  *a = (cli_args_t){.req.expect_version = -1, .wait_ms = 5000, .timeout_ms = -1};
  smc_cli_conn_init(&a->conn);
  const smc_cli_text_opt_t texts[] = {
      {O_ID, &a->req.id},   {O_TO, &a->req.to},     {O_PROPOSER, &a->req.proposer},
      {O_VOTER, &a->voter}, {O_REASON, &a->reason}, {O_PROPOSAL, &a->proposal},
      {O_KEY, &a->key_file}};
  optind = 1;
  int opt;
  while ((opt = smc_cli_getopt(&a->conn, argc, argv, "ho:X:", longopts, usage)) != -1) {
    if (opt == SMC_CLI_OPT_HELP)
      return -SMC_EXIT_OK - 1; /* "handled, exit 0" */
    if (opt == SMC_CLI_OPT_BAD)
      return SMC_EXIT_USAGE;
    int ok = 0;
    for (const int *p = allowed; *p; p++)
      ok |= *p == opt;
    if (!ok) {
      fprintf(stderr, "smc %s: option not accepted here\n", argv[0]);
      usage(stderr);
      return SMC_EXIT_USAGE;
    }
    if (smc_cli_text_opt(texts, sizeof texts / sizeof texts[0], opt, optarg))
      continue;
    json_error_t jerr;
    long long v;
    switch (opt) {
    case O_DATA:
      json_decref(a->data);
      a->data = json_loads(optarg, 0, &jerr);
      if (!json_is_object(a->data)) {
        fprintf(stderr, "smc %s: --data must be a JSON object%s%s\n", argv[0], a->data ? "" : ": ",
                a->data ? "" : jerr.text);
        return SMC_EXIT_USAGE;
      }
      break;
    case O_EXPECT:
      if (smc_cli_int64(optarg, &v)) {
        fprintf(stderr, "smc %s: --expect-version wants a number >= 0\n", argv[0]);
        return SMC_EXIT_USAGE;
      }
      a->req.expect_version = v;
      break;
    case O_WAIT:
    case O_TIMEOUT:
      if (smc_cli_duration(optarg, opt == O_WAIT ? &a->wait_ms : &a->timeout_ms)) {
        fprintf(stderr, "smc %s: '%s' is not a duration like 500ms, 5s, 2m\n", argv[0], optarg);
        return SMC_EXIT_USAGE;
      }
      break;
    case O_REJECT:
      a->reject = 1;
      break;
    case O_AFTER:
    case O_COUNT:
      a->after_given |= opt == O_AFTER;
      if (smc_cli_int64(optarg, opt == O_AFTER ? &a->after : &a->count)) {
        fprintf(stderr, "smc %s: %s wants a number >= 0\n", argv[0],
                opt == O_AFTER ? "--after-version" : "--count");
        return SMC_EXIT_USAGE;
      }
      break;
    }
  }
  if (strcmp(a->conn.output, "json") && strcmp(a->conn.output, "table") &&
      strcmp(a->conn.output, "text")) {
    fprintf(stderr, "smc %s: -o: json or table\n", argv[0]);
    return SMC_EXIT_USAGE;
  }
  if (argc - optind < min_pos || argc - optind > max_pos) {
    usage(stderr);
    return SMC_EXIT_USAGE;
  }
  a->req.data = a->data;
  return 0;
}

/* The end of a client command: its client (NULL when none was opened) and
 * arguments let go; the exit status for rc (parse_args' "help printed"
 * marker is 0). */
static int finish(cli_args_t *a, smc_client_t *c, int rc) {
  smc_client_destroy(c);
  json_decref(a->data);
  smc_cli_conn_close(&a->conn);
  return rc < 0 ? SMC_EXIT_OK : rc;
}

/* Whether the transition a request names (or, without a name, any transition
 * of its machine, to --to's state when given) takes votes, from the catalog. */
static int takes_votes(smc_client_t *c, const smc_propose_req_t *req) {
  json_t *cat = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  if (!req->machine || smc_client_machines(c, 5000, &cat, &err))
    return 0;
  const char *def =
      json_string_value(json_object_get(json_object_get(cat, req->machine), "definition"));
  smc_machine_t *m = NULL;
  int votes = 0;
  if (def && smc_machine_compile(def, strlen(def), NULL, NULL, &m, NULL) == 0 && m) {
    for (size_t i = 0; i < smc_machine_transition_count(m); i++) {
      const smc_transition_info_t *t = smc_machine_transition(m, i);
      if ((req->transition && strcmp(t->name, req->transition)) ||
          (req->to && strcmp(t->to, req->to)))
        continue;
      votes |= t->votes != NULL;
    }
    smc_machine_destroy(m);
  }
  json_decref(cat);
  return votes;
}

static int run_propose(int argc, char **argv) {
  static const int allowed[] = {O_DATA, O_EXPECT, O_ID, O_TO, O_WAIT, O_PROPOSER, 0};
  cli_args_t a;
  smc_client_t *c = NULL;
  int rc = parse_args(argc, argv, &a, allowed, propose_usage, 2, 3);
  if (rc)
    goto out;
  a.req.machine = argv[optind];
  a.req.object = argv[optind + 1];
  a.req.transition = argc - optind == 3 ? argv[optind + 2] : NULL;
  a.conn.setup_ms = a.wait_ms > 0 ? a.wait_ms : 0;
  if ((rc = smc_cli_client_open(&a.conn, &c)))
    goto out;
  json_t *conf = NULL;
  char id[65];
  smc_error_t err;
  smc_error_clear(&err);
  int r = smc_client_propose(c, &a.req, a.wait_ms, &conf, id, &err);
  if (r == SMC_EUNAVAILABLE && id[0]) {
    /* in the log and its transition takes votes: pending, a normal outcome */
    int pending = !strcmp(err.path, "decision") && takes_votes(c, &a.req);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s}", "proposal", id, "status", pending ? "pending" : "unknown",
                  "object", a.req.object, "machine", a.req.machine);
    if (a.req.transition)
      json_object_set_new(o, "transition", json_string(a.req.transition));
    smc_cli_print_json(o);
    json_decref(o);
    if (pending) {
      fprintf(stderr,
              "pending: proposal %s waits for votes; vote with `smc vote ... --proposal %s`, "
              "learn the outcome with --id %s\n",
              id, id, id);
      rc = SMC_EXIT_PENDING;
    } else {
      fprintf(stderr, "outcome unknown; proposal id %s; retrying with --id %s is safe\n", id, id);
      rc = SMC_EXIT_UNAVAILABLE;
    }
  } else if (r) {
    smc_cli_print_error("propose", &err);
    rc = smc_cli_exit_for(r);
  } else if (!conf) { /* --wait 0: in the log, not decided yet */
    json_t *o = json_pack("{s:s,s:s}", "proposal", id, "status", "written");
    smc_cli_print_json(o);
    json_decref(o);
    rc = SMC_EXIT_OK;
  } else {
    const char *code = NULL;
    json_t *v = smc_view_answer(conf, a.req.object, a.req.machine, &code);
    smc_cli_print_view(&a.conn, v);
    json_decref(v);
    rc = code ? SMC_EXIT_FAILED : SMC_EXIT_OK;
    json_decref(conf);
  }
out:
  return finish(&a, c, rc);
}

/* ---------- vote ---------- */

static void vote_usage(FILE *out) {
  fprintf(out, "usage: smc vote MACHINE OBJECT TRANSITION --voter V [--reject] [--reason R]\n"
               "                [--proposal ID | --data JSON --expect-version N] [--key FILE]\n"
               "  Vote on a proposal of OBJECT (accept unless --reject). The proposal is\n"
               "  --proposal ID (printed by `smc propose` while it waits), or else, for a\n"
               "  proposal sent with --expect-version, the id derived from OBJECT, TRANSITION,\n"
               "  --data and --expect-version exactly as `smc propose` derives it.\n"
               "  Returns once the vote is in the log; the decision comes as a confirmation.\n"
               "  --key FILE sign the vote with this Ed25519 private key (PEM, from\n"
               "             `smc keygen` or `openssl genpkey -algorithm ed25519`): needed\n"
               "             when the machine lists a public key for the voter\n"
               "  --wait D   how long to wait for the log (default 5s)\n" SMC_CLI_CONN_HELP);
}

static int run_vote(int argc, char **argv) {
  static const int allowed[] = {O_VOTER,  O_REJECT, O_REASON, O_PROPOSAL, O_DATA,
                                O_EXPECT, O_WAIT,   O_KEY,    0};
  cli_args_t a;
  smc_client_t *c = NULL;
  smc_vote_key_t *key = NULL;
  int rc = parse_args(argc, argv, &a, allowed, vote_usage, 3, 3);
  if (rc)
    goto out;
  if (!a.voter) {
    fprintf(stderr, "smc vote: --voter is required\n");
    vote_usage(stderr);
    rc = SMC_EXIT_USAGE;
    goto out;
  }
  const char *object = argv[optind + 1], *transition = argv[optind + 2];
  char derived[65];
  const char *proposal = a.proposal;
  if (!proposal && a.req.expect_version < 0) {
    fprintf(stderr, "smc vote: name the proposal: --proposal ID (smc propose prints it), or\n"
                    "  --expect-version N (and --data) as the proposal was sent with\n");
    vote_usage(stderr);
    rc = SMC_EXIT_USAGE;
    goto out;
  }
  if (!proposal) {
    if (smc_proposal_derive_id(object, a.req.expect_version >= 0, a.req.expect_version, transition,
                               a.data, derived)) {
      fprintf(stderr, "smc vote: cannot derive the proposal id\n");
      rc = SMC_EXIT_FAILED;
      goto out;
    }
    proposal = derived;
  }
  smc_error_t err;
  smc_error_clear(&err);
  if (a.key_file) {
    int kr = smc_vote_key_load(a.key_file, &key, &err);
    if (kr) {
      smc_cli_print_error("vote", &err);
      rc = kr == SMC_EIO ? SMC_EXIT_FAILED : SMC_EXIT_USAGE;
      goto out;
    }
  }
  if ((rc = smc_cli_client_open(&a.conn, &c)))
    goto out;
  int r = smc_client_vote_signed(c, object, proposal, a.voter, !a.reject, a.reason, key, a.wait_ms,
                                 &err);
  if (r) {
    smc_cli_print_error("vote", &err);
    rc = smc_cli_exit_for(r);
  } else {
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:b,s:b,s:s}", "proposal", proposal, "object", object, "voter",
                  a.voter, "accept", !a.reject, "signed", key != NULL, "status", "written");
    smc_cli_print_json(o);
    json_decref(o);
  }
out:
  smc_vote_key_free(key);
  return finish(&a, c, rc);
}

/* ---------- get ---------- */

static void get_usage(FILE *out) {
  fprintf(out,
          "usage: smc get OBJECT [--wait D] [-o json|table]\n"
          "  Linearizable read through the log: print the object's committed state (the\n"
          "  schema REST answers). Exit 1 when the object does not exist, 3 when no\n"
          "  answer came within --wait (default 5s; it bounds the whole command).\n"
          "  -o json|table  output (default: table on a terminal, else json)\n" SMC_CLI_CONN_HELP);
}

static int run_get(int argc, char **argv) {
  static const int allowed[] = {O_WAIT, 0};
  cli_args_t a;
  smc_client_t *c = NULL;
  int rc = parse_args(argc, argv, &a, allowed, get_usage, 1, 1);
  if (rc)
    goto out;
  int64_t end = smc_now_ms() + a.wait_ms;
  a.conn.setup_ms = a.wait_ms > 0 ? a.wait_ms : 1;
  if ((rc = smc_cli_client_open(&a.conn, &c)))
    goto out;
  json_t *reply = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  int64_t left = end - smc_now_ms();
  int r = smc_client_read(c, argv[optind], left > 0 ? (int)left : 1, &reply, &err);
  if (r) {
    smc_cli_print_error("get", &err);
    rc = smc_cli_exit_for(r);
  } else if (!json_is_true(json_object_get(reply, "found"))) {
    fprintf(stderr, "smc get: unknown_object: %s: not found\n", argv[optind]);
    rc = SMC_EXIT_FAILED;
  } else {
    json_t *v = smc_view_object(reply, argv[optind], NULL);
    smc_cli_print_view(&a.conn, v);
    json_decref(v);
    rc = SMC_EXIT_OK;
  }
  json_decref(reply);
out:
  return finish(&a, c, rc);
}

/* ---------- watch ---------- */

static void watch_usage(FILE *out) {
  fprintf(out,
          "usage: smc watch OBJECT [--after-version N] [--count K] [--timeout D]\n"
          "  Print each committed version of OBJECT above N, once each, in order, as\n"
          "  REST's watch does: versions already committed at once, then each new one\n"
          "  as it happens, until Ctrl-C, until K were printed (exit 0), or until D\n"
          "  passed first (exit 3). Without --after-version: the changes after the\n"
          "  current version.\n"
          "  -o json|table  output (default: table on a terminal, else json)\n" SMC_CLI_CONN_HELP);
}

typedef struct watch_state {
  long long left; /* 0 = unlimited */
  const smc_cli_conn_t *conn;
  const char *object;
} watch_state_t;

static int watch_cb(void *opaque, const json_t *confirmation) {
  watch_state_t *w = opaque;
  json_t *v = smc_view_object(confirmation, w->object, NULL);
  static const char *const keys[] = {"proposal", "transition", NULL};
  for (size_t i = 0; keys[i]; i++)
    if (json_object_get(confirmation, keys[i]))
      json_object_set(v, keys[i], json_object_get(confirmation, keys[i]));
  smc_cli_print_view(w->conn, v);
  json_decref(v);
  return w->left > 0 && --w->left == 0;
}

static int run_watch(int argc, char **argv) {
  static const int allowed[] = {O_AFTER, O_COUNT, O_TIMEOUT, 0};
  cli_args_t a;
  smc_client_t *c = NULL;
  int rc = parse_args(argc, argv, &a, allowed, watch_usage, 1, 1);
  if (rc)
    goto out;
  if (a.timeout_ms > 0)
    a.conn.setup_ms = a.timeout_ms;
  if ((rc = smc_cli_client_open(&a.conn, &c)))
    goto out;
  watch_state_t w = {a.count, &a.conn, argv[optind]};
  smc_error_t err;
  smc_error_clear(&err);
  /* --timeout bounds the whole watch; without it, run until Ctrl-C
   * (SIGINT's default action ends the process; every line is flushed). */
  int r = smc_client_watch(c, argv[optind], a.after_given ? a.after : -1, a.timeout_ms, watch_cb,
                           &w, &err);
  if (r) {
    smc_cli_print_error("watch", &err);
    rc = smc_cli_exit_for(r);
  }
out:
  return finish(&a, c, rc);
}

const smc_command_t smc_cmd_propose = {"propose", "propose a transition and print the decision",
                                       run_propose};
const smc_command_t smc_cmd_vote = {"vote", "vote on a proposal", run_vote};
const smc_command_t smc_cmd_get = {"get", "linearizable read of an object", run_get};
const smc_command_t smc_cmd_watch = {"watch", "follow an object's changes", run_watch};
