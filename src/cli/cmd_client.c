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

#include "cli/cli.h"
#include "core/codec.h"
#include "kafka/kconf.h"

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

int smc_cli_client_open(const smc_cli_conn_t *c, smc_client_t **out) {
  smc_client_config_t cfg = {.bootstrap = c->bootstrap,
                             .prefix = c->prefix,
                             .properties = (const char *const *)c->props,
                             .client_id = "smc-cli"};
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
  if (!s || !*s)
    return -1;
  char *end = NULL;
  double v = strtod(s, &end);
  if (end == s || v < 0)
    return -1;
  double mult;
  if (!*end || !strcmp(end, "s"))
    mult = 1000;
  else if (!strcmp(end, "ms"))
    mult = 1;
  else if (!strcmp(end, "m"))
    mult = 60000;
  else if (!strcmp(end, "h"))
    mult = 3600000;
  else if (!strcmp(end, "d"))
    mult = 86400000;
  else
    return -1;
  double r = v * mult;
  if (r > 2147483647.0)
    return -1;
  *ms = (int)r;
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

/* ---------- propose ---------- */

static void propose_usage(FILE *out) {
  fprintf(out, "usage: smc propose MACHINE OBJECT [TRANSITION] [options]\n"
               "  Propose TRANSITION of OBJECT (TRANSITION may be left out for dfsm machines)\n"
               "  and print the confirmation as JSON.\n"
               "  --data JSON          the proposal's data (an object; default {})\n"
               "  --expect-version N   the object's version must be N (0 = must not exist)\n"
               "  --id ID              proposal id (default: derived from object, version,\n"
               "                       transition and data; retrying with it is safe)\n"
               "  --to STATE           pick among transitions by target state\n"
               "  --proposer P         recorded as the proposer\n"
               "  --wait D             how long to wait for the decision (default 5s; 0 = only\n"
               "                       until the proposal is in the log)\n" SMC_CLI_CONN_HELP
               "exit: 0 committed, 1 rejected/expired/failed, 2 usage, 3 outcome unknown\n"
               "  (then stdout has the proposal id; a proposal waiting for votes ends this way:\n"
               "  vote with `smc vote ... --proposal ID`)\n");
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
  int timeout_ms;
  long long count;
} cli_args_t;

/* Parse the options every client command shares (each command accepts only
 * the ones its usage names: 'allowed' lists them). Returns 0 or an exit
 * status. */
static int parse_args(int argc, char **argv, cli_args_t *a, const int *allowed,
                      void (*usage)(FILE *)) {
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
  memset(a, 0, sizeof(*a));
  smc_cli_conn_init(&a->conn);
  a->req.expect_version = -1;
  a->wait_ms = 5000;
  a->timeout_ms = -1;
  optind = 1;
  opterr = 1;
  int opt;
  while ((opt = getopt_long(argc, argv, "ho:X:", longopts, NULL)) != -1) {
    int ok = 0;
    for (const int *p = allowed; *p; p++)
      if (*p == opt)
        ok = 1;
    if (opt == 'h') {
      usage(stdout);
      return -SMC_EXIT_OK - 1; /* "handled, exit 0" */
    }
    int r = smc_cli_conn_opt(&a->conn, opt, optarg);
    if (r < 0)
      return SMC_EXIT_USAGE;
    if (r > 0)
      continue;
    if (!ok) {
      if (opt != '?')
        fprintf(stderr, "smc %s: option not accepted here\n", argv[0]);
      usage(stderr);
      return SMC_EXIT_USAGE;
    }
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
    case O_ID:
      a->req.id = optarg;
      break;
    case O_TO:
      a->req.to = optarg;
      break;
    case O_PROPOSER:
      a->req.proposer = optarg;
      break;
    case O_WAIT:
    case O_TIMEOUT:
      if (smc_cli_duration(optarg, opt == O_WAIT ? &a->wait_ms : &a->timeout_ms)) {
        fprintf(stderr, "smc %s: '%s' is not a duration like 500ms, 5s, 2m\n", argv[0], optarg);
        return SMC_EXIT_USAGE;
      }
      break;
    case O_VOTER:
      a->voter = optarg;
      break;
    case O_REJECT:
      a->reject = 1;
      break;
    case O_REASON:
      a->reason = optarg;
      break;
    case O_PROPOSAL:
      a->proposal = optarg;
      break;
    case O_KEY:
      a->key_file = optarg;
      break;
    case O_AFTER:
    case O_COUNT:
      if (smc_cli_int64(optarg, opt == O_AFTER ? &a->after : &a->count)) {
        fprintf(stderr, "smc %s: %s wants a number >= 0\n", argv[0],
                opt == O_AFTER ? "--after-version" : "--count");
        return SMC_EXIT_USAGE;
      }
      break;
    }
  }
  if (strcmp(a->conn.output, "json")) {
    fprintf(stderr, "smc %s: -o: only json is offered here\n", argv[0]);
    return SMC_EXIT_USAGE;
  }
  a->req.data = a->data;
  return 0;
}

static void args_close(cli_args_t *a) {
  json_decref(a->data);
  smc_cli_conn_close(&a->conn);
}

/* parse_args' "help printed" marker to an exit status. */
static int parse_rc(int rc) { return rc < 0 ? SMC_EXIT_OK : rc; }

static int run_propose(int argc, char **argv) {
  static const int allowed[] = {O_DATA, O_EXPECT, O_ID, O_TO, O_WAIT, O_PROPOSER, 0};
  cli_args_t a;
  int rc = parse_args(argc, argv, &a, allowed, propose_usage);
  if (rc)
    goto out;
  int npos = argc - optind;
  if (npos < 2 || npos > 3) {
    propose_usage(stderr);
    rc = SMC_EXIT_USAGE;
    goto out;
  }
  a.req.machine = argv[optind];
  a.req.object = argv[optind + 1];
  a.req.transition = npos == 3 ? argv[optind + 2] : NULL;
  smc_client_t *c = NULL;
  if ((rc = smc_cli_client_open(&a.conn, &c)))
    goto out;
  json_t *conf = NULL;
  char id[65];
  smc_error_t err;
  smc_error_clear(&err);
  int r = smc_client_propose(c, &a.req, a.wait_ms, &conf, id, &err);
  if (r == SMC_EUNAVAILABLE && id[0]) {
    fprintf(stderr, "outcome unknown; proposal id %s; retrying with --id %s is safe\n", id, id);
    printf("%s\n", id);
    rc = SMC_EXIT_UNAVAILABLE;
  } else if (r) {
    smc_cli_print_error("propose", &err);
    rc = smc_cli_exit_for(r);
  } else if (!conf) { /* --wait 0: in the log, not decided yet */
    json_t *o = json_pack("{s:s,s:s}", "proposal", id, "status", "written");
    smc_cli_print_json(o);
    json_decref(o);
    rc = SMC_EXIT_OK;
  } else {
    smc_cli_print_json(conf);
    const char *outcome = json_string_value(json_object_get(conf, "outcome"));
    rc = outcome && !strcmp(outcome, "committed") ? SMC_EXIT_OK : SMC_EXIT_FAILED;
    json_decref(conf);
  }
  smc_client_destroy(c);
out:
  args_close(&a);
  return parse_rc(rc);
}

/* ---------- vote ---------- */

static void vote_usage(FILE *out) {
  fprintf(out, "usage: smc vote MACHINE OBJECT TRANSITION --voter V [--reject] [--reason R]\n"
               "                [--proposal ID | --data JSON --expect-version N] [--key FILE]\n"
               "  Vote on a proposal of OBJECT (accept unless --reject). The proposal is\n"
               "  --proposal ID (printed by `smc propose` while it waits), or else the id\n"
               "  derived from OBJECT, TRANSITION, --data and --expect-version exactly as\n"
               "  `smc propose` derives it, so the same arguments name the same proposal.\n"
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
  int rc = parse_args(argc, argv, &a, allowed, vote_usage);
  if (rc)
    goto out;
  if (argc - optind != 3 || !a.voter) {
    if (!a.voter)
      fprintf(stderr, "smc vote: --voter is required\n");
    vote_usage(stderr);
    rc = SMC_EXIT_USAGE;
    goto out;
  }
  const char *object = argv[optind + 1], *transition = argv[optind + 2];
  char derived[65];
  const char *proposal = a.proposal;
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
  smc_vote_key_t *key = NULL;
  if (a.key_file) {
    int kr = smc_vote_key_load(a.key_file, &key, &err);
    if (kr) {
      smc_cli_print_error("vote", &err);
      rc = kr == SMC_EIO ? SMC_EXIT_FAILED : SMC_EXIT_USAGE;
      goto out;
    }
  }
  smc_client_t *c = NULL;
  if ((rc = smc_cli_client_open(&a.conn, &c))) {
    smc_vote_key_free(key);
    goto out;
  }
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
  smc_client_destroy(c);
  smc_vote_key_free(key);
out:
  args_close(&a);
  return parse_rc(rc);
}

/* ---------- get ---------- */

static void get_usage(FILE *out) {
  fprintf(out, "usage: smc get OBJECT [--wait D]\n"
               "  Linearizable read through the log: print the object's committed state as\n"
               "  JSON (the read reply). Exit 1 when the object does not exist, 3 when no\n"
               "  answer came within --wait (default 5s).\n" SMC_CLI_CONN_HELP);
}

static int run_get(int argc, char **argv) {
  static const int allowed[] = {O_WAIT, 0};
  cli_args_t a;
  int rc = parse_args(argc, argv, &a, allowed, get_usage);
  if (rc)
    goto out;
  if (argc - optind != 1) {
    get_usage(stderr);
    rc = SMC_EXIT_USAGE;
    goto out;
  }
  smc_client_t *c = NULL;
  if ((rc = smc_cli_client_open(&a.conn, &c)))
    goto out;
  json_t *reply = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  int r = smc_client_read(c, argv[optind], a.wait_ms, &reply, &err);
  if (r) {
    smc_cli_print_error("get", &err);
    rc = smc_cli_exit_for(r);
  } else {
    smc_cli_print_json(reply);
    rc = json_is_true(json_object_get(reply, "found")) ? SMC_EXIT_OK : SMC_EXIT_FAILED;
    if (rc)
      fprintf(stderr, "smc get: %s: not found\n", argv[optind]);
    json_decref(reply);
  }
  smc_client_destroy(c);
out:
  args_close(&a);
  return parse_rc(rc);
}

/* ---------- watch ---------- */

static void watch_usage(FILE *out) {
  fprintf(out, "usage: smc watch OBJECT [--after-version N] [--count K] [--timeout D]\n"
               "  Print each committed confirmation of OBJECT with a version above N (default\n"
               "  0) as one JSON line, as it happens, until Ctrl-C, until K of them were\n"
               "  printed (exit 0), or until D passed first (exit 3). Only changes made after\n"
               "  the watch starts are seen.\n" SMC_CLI_CONN_HELP);
}

typedef struct watch_state {
  long long left; /* 0 = unlimited */
} watch_state_t;

static int watch_cb(void *opaque, const json_t *confirmation) {
  watch_state_t *w = opaque;
  smc_cli_print_json(confirmation);
  return w->left > 0 && --w->left == 0;
}

static int run_watch(int argc, char **argv) {
  static const int allowed[] = {O_AFTER, O_COUNT, O_TIMEOUT, 0};
  cli_args_t a;
  int rc = parse_args(argc, argv, &a, allowed, watch_usage);
  if (rc)
    goto out;
  if (argc - optind != 1) {
    watch_usage(stderr);
    rc = SMC_EXIT_USAGE;
    goto out;
  }
  smc_client_t *c = NULL;
  if ((rc = smc_cli_client_open(&a.conn, &c)))
    goto out;
  watch_state_t w = {a.count};
  smc_error_t err;
  smc_error_clear(&err);
  /* --timeout bounds the whole watch; without it, run until Ctrl-C
   * (SIGINT's default action ends the process; every line is flushed). */
  int r = smc_client_watch(c, argv[optind], a.after, a.timeout_ms, watch_cb, &w, &err);
  if (r) {
    smc_cli_print_error("watch", &err);
    rc = smc_cli_exit_for(r);
  }
  smc_client_destroy(c);
out:
  args_close(&a);
  return parse_rc(rc);
}

const smc_command_t smc_cmd_propose = {"propose", "propose a transition and print the decision",
                                       run_propose};
const smc_command_t smc_cmd_vote = {"vote", "vote on a proposal", run_vote};
const smc_command_t smc_cmd_get = {"get", "linearizable read of an object", run_get};
const smc_command_t smc_cmd_watch = {"watch", "follow an object's changes", run_watch};
