/*
 * smc verify: fold the whole log in memory and check every confirmation on
 * <prefix>confirmations against it, and every object's checksum chain on its
 * own.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/array.h"
#include "base/clock.h"
#include "cli/cli.h"
#include "cli/logcmd.h"
#include "core/kv.h"
#include "core/digest.h"
#include "core/util.h"
#include "kafka/kconf.h"
#include "kafka/reader.h"
#include "node/replay.h"
#include "node/roles.h"
#include "smc/fold.h"
#include "store/store.h"

/* ---- smc verify ----------------------------------------------------------- */

/* The confirmations of one partition, in order: each one's text and the
 * offset of the record that decided it (its "offset" field). */
typedef struct conf_item {
  char *text;
  int64_t offset;
} conf_item_t;

typedef struct strlist {
  conf_item_t *items;
  size_t n, cap;
} strlist_t;

static int strlist_add(strlist_t *l, const char *s, size_t len, int64_t offset) {
  char *text = strndup(s, len);
  if (!text || smc_array_reserve(&l->items, &l->cap, l->n + 1, sizeof *l->items, 64)) {
    free(text);
    return -1;
  }
  l->items[l->n++] = (conf_item_t){text, offset};
  return 0;
}

static void strlist_close(strlist_t *l) {
  while (l->n)
    free(l->items[--l->n].text);
  free(l->items);
}

typedef struct verify {
  int32_t n;
  strlist_t *expected, *actual; /* [n] */
  json_t *chains;               /* object -> {"version": v, "checksum": hex} */
  int64_t chain_checked, chain_errors, bad_json;
  int verbose;
} verify_t;

static int collect_expected(void *opaque, const smc_output_t *o) {
  verify_t *v = opaque;
  if (o->kind != SMC_OUT_CONFIRMATION || o->partition < 0 || o->partition >= v->n)
    return 0;
  return strlist_add(&v->expected[o->partition], o->json, o->json_len, o->offset) < 0 ? SMC_ENOMEM
                                                                                      : 0;
}

/* Check one committed confirmation against its object's chain so far:
 * version = previous + 1, checksum = sha256(prev || canonical(without
 * checksum)). Independent of the fold's code path. */
static void check_chain(verify_t *v, json_t *conf, int32_t p, int64_t off) {
  const char *obj = json_string_value(json_object_get(conf, "object"));
  const char *sum = json_string_value(json_object_get(conf, "checksum"));
  json_int_t ver = json_integer_value(json_object_get(conf, "version"));
  if (!obj || !sum) {
    fprintf(stderr, "verify: [%d]@%lld committed confirmation without object or checksum\n", (int)p,
            (long long)off);
    v->chain_errors++;
    return;
  }
  json_t *st = json_object_get(v->chains, obj);
  const char *prev = "0000000000000000000000000000000000000000000000000000000000000000";
  json_int_t prev_ver = 0;
  if (st) {
    prev = json_string_value(json_object_get(st, "checksum"));
    prev_ver = json_integer_value(json_object_get(st, "version"));
  }
  json_t *copy = json_deep_copy(conf);
  json_object_del(copy, "checksum");
  char *text = smc_json_canonical(copy);
  json_decref(copy);
  if (!text)
    return;
  size_t pl = strlen(prev), tl = strlen(text);
  char *buf = malloc(pl + tl);
  char want[65];
  if (buf) {
    memcpy(buf, prev, pl);
    memcpy(buf + pl, text, tl);
    smc_sha256_hex(buf, pl + tl, want);
    free(buf);
  }
  free(text);
  v->chain_checked++;
  if (ver != prev_ver + 1) {
    fprintf(stderr, "verify: object %s: version %lld follows version %lld ([%d]@%lld)\n", obj,
            (long long)ver, (long long)prev_ver, (int)p, (long long)off);
    v->chain_errors++;
  }
  if (!buf || strcmp(want, sum)) {
    fprintf(stderr, "verify: object %s version %lld: checksum %s, recomputed %s ([%d]@%lld)\n", obj,
            (long long)ver, sum, buf ? want : "?", (int)p, (long long)off);
    v->chain_errors++;
  }
  json_object_set_new(v->chains, obj,
                      json_pack("{s:I,s:s}", "version", (json_int_t)ver, "checksum", sum));
}

static int collect_actual(void *opaque, const smc_record_t *m) {
  verify_t *v = opaque;
  json_t *j = json_loadb(m->value, m->value_len, 0, NULL);
  if (!j) {
    fprintf(stderr, "verify: confirmations [%d]@%lld is not JSON\n", (int)m->partition,
            (long long)m->offset);
    v->bad_json++;
    return 0;
  }
  int64_t off = json_integer_value(json_object_get(j, "offset"));
  const char *outcome = json_string_value(json_object_get(j, "outcome"));
  if (outcome && !strcmp(outcome, "committed") && !json_is_true(json_object_get(j, "duplicate")))
    check_chain(v, j, m->partition, m->offset);
  json_decref(j);
  return strlist_add(&v->actual[m->partition], m->value, m->value_len, off);
}

static void verify_usage(FILE *out) {
  fprintf(out, "usage: smc verify --bootstrap B [--prefix P] [-X KEY=VALUE] [--verbose]\n"
               "                  [--threads N]\n"
               "\n"
               "Fold all of <prefix>proposals in memory and compare, partition by partition,\n"
               "every confirmation on <prefix>confirmations (read_committed) with the one the\n"
               "fold recomputes (byte for byte), and recompute every object's checksum chain\n"
               "from the confirmations alone. Exit 0 when everything matches, 1 with a report\n"
               "on stderr otherwise. Run it when the committers have caught up.\n"
               "--threads N folds with N threads (default SMC_REPLAY_THREADS, else the\n"
               "online CPUs; at most one per partition).\n"
               "\n" SMC_CLI_FOLD_LIMITS_USAGE);
}

static int cmd_verify_run(int argc, char **argv) {
  static const struct option longopts[] = {SMC_LOGCMD_CONN_LONGOPTS,
                                           {"verbose", no_argument, NULL, 'v'},
                                           {"threads", required_argument, NULL, OPT_THREADS},
                                           SMC_CLI_FOLD_LIMIT_OPTIONS(OPT_LIMIT),
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  smc_logcmd_t l;
  verify_t v = {0};
  int opt, rc = SMC_EXIT_USAGE;
  char *tconf = NULL;
  smc_fold_t *fold = NULL;
  smc_replay_part_t *parts = NULL;
  if (smc_logcmd_init(&l, "verify", 1) < 0)
    goto out;
  while ((opt = smc_logcmd_getopt(&l, argc, argv, "hvX:", longopts, verify_usage)) != -1) {
    if (opt == 'v') {
      v.verbose = 1;
      continue;
    }
    rc = opt == SMC_LOGCMD_HELP ? SMC_EXIT_OK : SMC_EXIT_USAGE; /* help, or BAD */
    goto out;
  }
  int threads = l.fold.threads;
  if (optind < argc) {
    verify_usage(stderr);
    goto out;
  }
  rc = SMC_EXIT_FAILED;
  int64_t t0 = smc_now_ms();
  int32_t n = smc_logcmd_open(&l, "proposals");
  if (n < 0) {
    rc = smc_cli_exit_for(n);
    goto out;
  }
  if (!(tconf = smc_topic(l.conn.prefix, "confirmations")))
    goto out;
  int32_t nc = smc_logcmd_partitions(&l, tconf);
  if (nc != n) {
    if (nc >= 0)
      fprintf(stderr, "smc verify: %s has %d partitions, %s %d\n", tconf, nc, l.topic, n);
    goto out;
  }
  v.n = n;
  v.expected = calloc((size_t)n, sizeof *v.expected);
  v.actual = calloc((size_t)n, sizeof *v.actual);
  v.chains = json_object();
  parts = calloc((size_t)n, sizeof *parts);
  smc_fold_config_t fc;
  smc_fold_config_default(&fc);
  smc_cli_fold_limits_copy(&fc, &l.fold.lim);
  fc.partitions = n;
  fc.no_history = 1; /* all in memory: history is not compared, so keep none */
  if (!v.expected || !v.actual || !v.chains || !parts || smc_fold_new(&fc, &fold) < 0)
    goto out;
  /* 1. Every decision, recomputed from the log (the end is fixed now). */
  for (int32_t p = 0; p < n; p++)
    parts[p] = (smc_replay_part_t){.partition = p, .from = 0, .to = SMC_REPLAY_END};
  /* no store and no kv: each fold thread keeps its partitions' state in
   * memory; collect_expected only touches the lists of its record's
   * partition, so threads never share one */
  smc_error_t err;
  smc_error_clear(&err);
  smc_replay_t r = {.bootstrap = l.conn.bootstrap,
                    .props = (const char *const *)l.conn.props,
                    .topic = l.topic,
                    .fold = fold,
                    .emit = collect_expected,
                    .opaque = &v,
                    .threads = threads,
                    .fold_config = &fc};
  if (smc_replay_run(&r, parts, (size_t)n, &err) < 0) {
    fprintf(stderr, "smc verify: %s: %s\n", smc_code_name(err.code), err.message);
    rc = err.code == SMC_EUNAVAILABLE ? SMC_EXIT_UNAVAILABLE : SMC_EXIT_FAILED;
    goto out;
  }
  /* 2. Every published confirmation (read after the fold, so it covers it). */
  char why[512] = "";
  if (smc_kafka_read_to_end(l.rk, tconf, 0, n, collect_actual, &v, why, sizeof why) < 0) {
    fprintf(stderr, "smc verify: %s\n", why[0] ? why : "out of memory");
    goto out;
  }
  /* 3. Compare per partition; confirmations of records past the folded end
   * (published meanwhile) are left out. */
  int64_t mismatches = 0, matched = 0, records = 0;
  for (int32_t p = 0; p < n; p++) {
    strlist_t *e = &v.expected[p], *a = &v.actual[p];
    records += parts[p].records;
    size_t na = 0;
    while (na < a->n && a->items[na].offset < parts[p].to)
      na++;
    size_t k = e->n < na ? e->n : na;
    for (size_t i = 0; i < k; i++) {
      if (!strcmp(e->items[i].text, a->items[i].text)) {
        matched++;
        continue;
      }
      if (mismatches++ < 20)
        fprintf(stderr,
                "verify: partition %d confirmation #%zu differs\n  published:  %s\n"
                "  recomputed: %s\n",
                (int)p, i, a->items[i].text, e->items[i].text);
    }
    if (e->n > na) {
      mismatches += (int64_t)(e->n - na);
      fprintf(stderr, "verify: partition %d: %zu confirmations missing (first: %s)\n", (int)p,
              e->n - na, e->items[na].text);
    } else if (na > e->n) {
      mismatches += (int64_t)(na - e->n);
      fprintf(stderr, "verify: partition %d: %zu confirmations nobody decided (first: %s)\n",
              (int)p, na - e->n, a->items[e->n].text);
    }
  }
  int ok = mismatches == 0 && v.chain_errors == 0 && v.bad_json == 0;
  printf("{\"ok\":%s,\"partitions\":%d,\"records\":%lld,\"confirmations\":%lld,"
         "\"mismatches\":%lld,\"chain_checked\":%lld,\"chain_errors\":%lld,\"objects\":%zu,"
         "\"seconds\":%.3f}\n",
         ok ? "true" : "false", (int)n, (long long)records, (long long)matched,
         (long long)mismatches, (long long)v.chain_checked, (long long)v.chain_errors,
         json_object_size(v.chains), (double)(smc_now_ms() - t0) / 1000.0);
  rc = ok ? SMC_EXIT_OK : SMC_EXIT_FAILED;
out:
  for (int32_t p = 0; v.expected && p < v.n; p++)
    strlist_close(&v.expected[p]);
  for (int32_t p = 0; v.actual && p < v.n; p++)
    strlist_close(&v.actual[p]);
  free(v.expected);
  free(v.actual);
  json_decref(v.chains);
  free(parts);
  smc_fold_destroy(fold);
  free(tconf);
  smc_logcmd_close(&l);
  return rc;
}

const smc_command_t smc_cmd_verify = {
    "verify", "recompute every decision and checksum from the log and compare", cmd_verify_run};
