/*
 * smc simulate MACHINE.yaml... --log FILE.jsonl [--state-dir DIR] [--partitions N]
 *
 * Runs the fold offline over a JSON-lines log and prints every output as one
 * JSON line (canonical, with "kind": confirmation | reply | vote_request).
 *
 * The machines named on the command line are registered in every partition
 * before the first line, outside the log (smc_fold_register_machine): they
 * take no offset. Each line is one event; the optional fields "partition",
 * "offset", "time" and "key" place it (and are removed from the value):
 *   key       default: the event's "object" (none for tick and machine)
 *   partition default: murmur2(key) % N (0 without a key)
 *   offset    default: the partition's next offset (its applied offset in
 *             the state dir, then one more per line)
 *   time      default: the previous line's time (0 at the start)
 * A line that is not a JSON object, or whose placement fields have the wrong
 * type, is reported on stderr with its line number and skipped.
 *
 * With --state-dir the state lives in RocksDB and survives the run: a log
 * split in two and run in two invocations gives the outputs of one run
 * (records below a partition's applied offset are skipped).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/kv.h"
#include "core/util.h"
#include "smc/fold.h"
#include "store/store.h"

#define SIM_BATCH 1000 /* records per atomic store write */

static void usage(FILE *out) {
  fprintf(out, "usage: smc simulate MACHINE.yaml... --log FILE.jsonl [--state-dir DIR] "
               "[--partitions N]\n"
               "Fold a JSON-lines log of events offline and print each output as a JSON line.\n"
               "Each line may carry \"partition\", \"offset\", \"time\" and \"key\".\n"
               "\n" SMC_CLI_FOLD_LIMITS_USAGE);
}

static int print_output(void *opaque, const smc_output_t *out) {
  (void)opaque;
  static const char *const kinds[] = {"", "confirmation", "reply", "vote_request"};
  json_t *j = json_loadb(out->json, out->json_len, 0, NULL);
  if (!j)
    return SMC_EINTERNAL;
  json_object_set_new(j, "kind", json_string(kinds[out->kind]));
  char *s = smc_json_canonical(j);
  json_decref(j);
  if (!s)
    return SMC_ENOMEM;
  fputs(s, stdout);
  fputc('\n', stdout);
  free(s);
  return 0;
}

static void print_log(void *opaque, const smc_fold_log_t *l) {
  (void)opaque;
  static const char *const lv[] = {"error", "warn", "info"};
  fprintf(stderr, "smc simulate: %s: partition %d offset %lld: %s\n",
          lv[l->level < 0 || l->level > 2 ? 0 : l->level], (int)l->partition, (long long)l->offset,
          l->msg);
}

typedef struct sim {
  smc_fold_t *fold;
  smc_store_t *store;
  smc_overlay_t *ov;
  smc_kv_t kv;
  int32_t parts;
  int64_t *next; /* next default offset per partition */
  size_t unflushed;
} sim_t;

static int flush(sim_t *s) {
  if (!s->store || smc_overlay_pending(s->ov) == 0)
    return 0;
  smc_error_t err;
  smc_error_clear(&err);
  int rc = smc_store_apply(s->store, s->ov, &err);
  if (rc) {
    fprintf(stderr, "smc simulate: store: %s\n", err.message);
    return rc;
  }
  smc_overlay_clear(s->ov);
  s->unflushed = 0;
  return 0;
}

static int register_machines(sim_t *s, char **files, int nfiles) {
  for (int i = 0; i < nfiles; i++) {
    size_t len = 0;
    char *text = smc_read_file(files[i], &len);
    if (!text) {
      fprintf(stderr, "smc simulate: %s: %s\n", files[i], strerror(errno));
      return SMC_EIO;
    }
    for (int32_t p = 0; p < s->parts; p++) {
      smc_diags_t d;
      smc_diags_init(&d);
      smc_error_t err;
      smc_error_clear(&err);
      int rc = smc_fold_register_machine(s->fold, &s->kv, p, text, len, files[i], &d, &err);
      if (rc) {
        fprintf(stderr, "smc simulate: %s: %s: %s\n", files[i], smc_code_name(rc), err.message);
        for (size_t k = 0; k < d.count; k++)
          if (!d.items[k].warning)
            fprintf(stderr, "%s:%d:%d: %s: %s\n", files[i], d.items[k].err.line,
                    d.items[k].err.column, smc_code_name(d.items[k].err.code),
                    d.items[k].err.message);
        smc_diags_close(&d);
        free(text);
        return rc;
      }
      smc_diags_close(&d);
    }
    free(text);
  }
  return flush(s);
}

/* Take an optional integer placement field out of the event. */
static int take_int(json_t *ev, const char *name, int *has, int64_t *v, const char **why) {
  json_t *x = json_object_get(ev, name);
  *has = 0;
  if (!x)
    return 0;
  if (!json_is_integer(x) || json_integer_value(x) < 0) {
    *why = name;
    return -1;
  }
  *has = 1;
  *v = json_integer_value(x);
  json_object_del(ev, name);
  return 0;
}

/* Fold one line. Returns 0 (also for a skipped line), or a negative code
 * when the fold or the store fails. */
static int run_line(sim_t *s, const char *logname, long lineno, const char *line, size_t len,
                    int64_t *time) {
  json_error_t jerr;
  /* A line with duplicate keys goes to the fold as written, so it decides
   * on it as it would on the broker (bad_request); the lenient parse only
   * reads the simulate fields. */
  int raw = 0;
  json_t *ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!ev) {
    ev = json_loadb(line, len, 0, &jerr);
    raw = ev != NULL;
  }
  if (!ev || !json_is_object(ev)) {
    fprintf(stderr, "%s:%ld: malformed line skipped: %s\n", logname, lineno,
            ev ? "not a JSON object" : jerr.text);
    json_decref(ev);
    return 0;
  }
  int hp = 0, ho = 0, ht = 0;
  int64_t p = 0, off = 0, t = 0;
  const char *why = NULL;
  char *key = NULL;
  json_t *k = json_object_get(ev, "key");
  if (k && !json_is_string(k))
    why = "key";
  if (!why && take_int(ev, "partition", &hp, &p, &why) == 0 &&
      take_int(ev, "offset", &ho, &off, &why) == 0 && take_int(ev, "time", &ht, &t, &why) == 0 &&
      hp && p >= s->parts)
    why = "partition";
  if (why) {
    fprintf(stderr, "%s:%ld: malformed line skipped: bad \"%s\"\n", logname, lineno, why);
    json_decref(ev);
    return 0;
  }
  if (k) {
    key = strdup(json_string_value(k));
    json_object_del(ev, "key");
  } else if (json_is_string(json_object_get(ev, "object"))) {
    key = strdup(json_string_value(json_object_get(ev, "object")));
  }
  if (!hp)
    p = key ? smc_partition_for(key, strlen(key), s->parts) : 0;
  if (!ho)
    off = s->next[p];
  if (ht)
    *time = t;
  char *value = raw ? strndup(line, len) : json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
  const char *ty = json_string_value(json_object_get(ev, "type"));
  int settings = ty && !strcmp(ty, "settings");
  json_decref(ev);
  if (!value) {
    free(key);
    return SMC_ENOMEM;
  }
  /* A settings event without a partition goes to every partition, as
   * `smc cluster settings` writes it. */
  int every = settings && !hp;
  int64_t p_end = every ? s->parts : p + 1;
  if (every)
    p = 0;
  int rc = 0;
  for (; p < p_end && !rc; p++) {
    if (every)
      off = s->next[p];
    smc_record_t rec = {(int32_t)p, off,           *time, key, key ? strlen(key) : 0,
                        value,      strlen(value), NULL,  NULL};
    rc = smc_fold_apply(s->fold, &s->kv, &rec, print_output, NULL);
    if (rc)
      fprintf(stderr, "%s:%ld: fold failed: %s\n", logname, lineno, smc_strerror(rc));
    else if (off + 1 > s->next[p])
      s->next[p] = off + 1;
  }
  free(value);
  free(key);
  if (rc)
    return rc;
  if (++s->unflushed >= SIM_BATCH)
    return flush(s);
  return 0;
}

static int run_log(sim_t *s, const char *logname) {
  FILE *f = strcmp(logname, "-") ? fopen(logname, "r") : stdin;
  if (!f) {
    fprintf(stderr, "smc simulate: %s: %s\n", logname, strerror(errno));
    return SMC_EIO;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long lineno = 0;
  int64_t time = 0;
  int rc = 0;
  while (!rc && (n = getline(&line, &cap, f)) >= 0) {
    lineno++;
    size_t len = (size_t)n;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
      len--;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
      i++;
    if (i == len)
      continue;
    rc = run_line(s, logname, lineno, line + i, len - i, &time);
  }
  free(line);
  if (f != stdin)
    fclose(f);
  return rc ? rc : flush(s);
}

/* --max-* flags: OPT_LIMIT + SMC_CLI_LIMIT_* (cli.h) */
enum { OPT_LIMIT = 2000 };

static int simulate(int argc, char **argv) {
  static const struct option opts[] = {{"log", required_argument, NULL, 'l'},
                                       {"state-dir", required_argument, NULL, 's'},
                                       {"partitions", required_argument, NULL, 'p'},
                                       SMC_CLI_FOLD_LIMIT_OPTIONS(OPT_LIMIT),
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *logname = NULL, *dir = NULL;
  long parts = 1;
  int c;
  smc_fold_config_t lim;
  smc_fold_config_default(&lim);
  if (smc_cli_fold_limits_env("simulate", &lim) < 0)
    return SMC_EXIT_USAGE;
  optind = 1;
  while ((c = getopt_long(argc, argv, "l:s:p:h", opts, NULL)) != -1) {
    char *end;
    switch (c) {
    case 'l':
      logname = optarg;
      break;
    case 's':
      dir = optarg;
      break;
    case 'p':
      errno = 0;
      parts = strtol(optarg, &end, 10);
      if (errno || *end || parts < 1 || parts > 100000) {
        fprintf(stderr, "smc simulate: --partitions must be an integer from 1 to 100000\n");
        return SMC_EXIT_USAGE;
      }
      break;
    case 'h':
      usage(stdout);
      return SMC_EXIT_OK;
    default:
      if (c >= OPT_LIMIT && c < OPT_LIMIT + SMC_CLI_LIMIT_COUNT) {
        if (smc_cli_fold_limit_opt("simulate", c - OPT_LIMIT, optarg, &lim) < 0)
          return SMC_EXIT_USAGE;
        break;
      }
      usage(stderr);
      return SMC_EXIT_USAGE;
    }
  }
  if (!logname || optind >= argc) {
    usage(stderr);
    return SMC_EXIT_USAGE;
  }
  sim_t s;
  memset(&s, 0, sizeof(s));
  s.parts = (int32_t)parts;
  int status = SMC_EXIT_FAILED;
  smc_fold_config_t cfg;
  smc_fold_config_default(&cfg);
  smc_cli_fold_limits_copy(&cfg, &lim);
  cfg.partitions = s.parts;
  if (smc_fold_new(&cfg, &s.fold))
    goto done;
  smc_fold_set_logger(s.fold, print_log, NULL);
  smc_kv_t base;
  if (dir) {
    smc_error_t err;
    smc_error_clear(&err);
    if (smc_store_open(dir, NULL, &s.store, &err)) {
      fprintf(stderr, "smc simulate: %s: %s\n", dir, err.message);
      goto done;
    }
    base = smc_store_kv(s.store);
  }
  if (!(s.ov = smc_overlay_new(dir ? &base : NULL)))
    goto done;
  s.kv = smc_overlay_kv(s.ov);
  if (!(s.next = calloc((size_t)s.parts, sizeof(int64_t))))
    goto done;
  for (int32_t p = 0; p < s.parts; p++)
    if (smc_fold_applied(s.fold, &s.kv, p, &s.next[p]))
      goto done;
  if (register_machines(&s, argv + optind, argc - optind))
    goto done;
  if (run_log(&s, logname))
    goto done;
  status = fflush(stdout) ? SMC_EXIT_FAILED : SMC_EXIT_OK;
done:
  free(s.next);
  smc_overlay_destroy(s.ov);
  smc_store_close(s.store);
  smc_fold_destroy(s.fold);
  return status;
}

const smc_command_t smc_cmd_simulate = {
    "simulate", "run the fold offline over a JSON-lines log of events", simulate};
