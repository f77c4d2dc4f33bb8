/*
 * smc replay: rebuild a worker's state store from <prefix>proposals (the
 * commands reading the log share cli/logcmd.c).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "cli/logcmd.h"
#include "core/kv.h"
#include "core/digest.h"
#include "core/util.h"
#include "kafka/kconf.h"
#include "node/replay.h"
#include "node/roles.h"
#include "node/snapshot.h"
#include "kafka/handle.h"
#include "smc/fold.h"
#include "store/store.h"

/* ---- smc replay ---------------------------------------------------------- */

typedef struct progress {
  int64_t t0;
  int tty, quiet;
} progress_t;

/* What smc_replay_run's callbacks of smc replay share. */
typedef struct replay_ctx {
  progress_t pg;
  const char *data_dir, *dir;
  int32_t partitions;
  smc_store_t *store;
} replay_ctx_t;

/* Progress bar on stderr: records, rate, ETA. */
static void show_progress(void *opaque, int64_t done, int64_t total, int final) {
  progress_t *pg = &((replay_ctx_t *)opaque)->pg;
  if (pg->quiet)
    return;
  double secs = (double)(smc_now_ms() - pg->t0) / 1000.0;
  double rate = secs > 0 ? (double)done / secs : 0;
  double frac = total > 0 ? (double)done / (double)total : 1;
  if (frac > 1 || final)
    frac = 1;
  char bar[31];
  int fill = (int)(frac * 30);
  for (int i = 0; i < 30; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[30] = '\0';
  double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
  if (!pg->tty && !final)
    return; /* a log file gets the final line only */
  fprintf(stderr, "%s[%s] %3d%% %lld/%lld records %.0f rec/s ETA %.0fs%s", pg->tty ? "\r" : "", bar,
          (int)(frac * 100), (long long)done, (long long)total, rate, eta, final ? "\n" : "   ");
}

static void replay_usage(FILE *out) {
  fprintf(out, "usage: smc replay --bootstrap B --data-dir D [--store committer|voter-ID]\n"
               "                  [--fresh | --from-changelog] [--write-changelog]\n"
               "                  [--threads N] [--digest] [--prefix P]\n"
               "                  [-X KEY=VALUE] [--quiet]\n"
               "\n"
               "Fold <prefix>proposals into the state store D/<store> (default committer),\n"
               "from the store's applied offsets (everything with --fresh) to the end the\n"
               "log has now, without publishing anything. Progress goes to stderr.\n"
               "\n"
               "  --threads N  fold threads, each owning a share of the partitions\n"
               "               (default SMC_REPLAY_THREADS, else the online CPUs; at\n"
               "               most one per partition)\n"
               "  --digest     add \"digest\": per column family of the store after the\n"
               "               replay, its key count and the sha256 of its keys and values\n"
               "  --from-changelog  a partition the store does not hold yet starts from\n"
               "               its snapshot in <prefix>changelog when that is complete, and\n"
               "               folds only the log after its checkpoint (the log below it\n"
               "               may be trimmed); otherwise from the log's start\n"
               "  --write-changelog  then write the store's whole state and a complete\n"
               "               checkpoint per partition to <prefix>changelog, which must be\n"
               "               empty (enabling snapshots on an existing log; run it while\n"
               "               no worker runs, so the checkpoints match the committed offsets)\n"
               "\n" SMC_CLI_FOLD_LIMITS_USAGE);
}

/* --fresh: delete the store and create an empty one in rebuild mode (no
 * WAL, a marker file until smc_store_finish_rebuild: store.h). Called by
 * smc_replay_run once the records are being fetched (a new RocksDB store
 * takes 100 ms and more to create). */
static int open_fresh_store(void *opaque, smc_store_t **out, smc_error_t *err) {
  replay_ctx_t *x = opaque;
  if (smc_node_mkdirs(x->data_dir) < 0)
    return smc_error_set(err, SMC_EIO, NULL, "%s: %s", x->data_dir, strerror(errno));
  smc_error_t e;
  smc_error_clear(&e);
  smc_store_options_t so;
  smc_store_options_default(&so);
  so.rebuild = 1;
  if (smc_store_open(x->dir, &so, &x->store, &e) < 0)
    return smc_error_set(err, e.code, NULL, "store %s: %s", x->dir, e.message);
  *out = x->store;
  return 0;
}

/* Print ,"digest":{cf:{"keys":N,"sha256":hex},...} for every column family
 * of store: sha256 over (key length, key, value length, value) of every key
 * in key order, lengths as 4 bytes big-endian. Two stores with the same
 * digest hold the same keys and values. Returns 0 or -1 (printed). */
static int print_digest(smc_store_t *store) {
  smc_kv_t kv = smc_store_kv(store);
  smc_sha256_t h = {0};
  int rc = -1;
  printf(",\"digest\":{");
  for (int cf = 0; cf < SMC_CF_COUNT; cf++) {
    uint8_t *from = NULL;
    size_t flen = 0;
    int64_t keys = 0;
    if (smc_sha256_init(&h))
      goto out;
    for (;;) {
      void *k = NULL, *v = NULL;
      size_t kl = 0, vl = 0;
      int e = smc_kv_seek(&kv, (smc_cf_t)cf, from, flen, NULL, 0, &k, &kl, &v, &vl);
      if (e == SMC_ENOT_FOUND)
        break;
      if (e < 0) {
        fprintf(stderr, "smc replay: digest of %s: %s\n", smc_cf_names[cf], smc_strerror(e));
        free(from);
        goto out;
      }
      if (!smc_snapshot_is_local((smc_cf_t)cf, k, kl)) { /* node-local, not fold state */
        uint8_t len[4];
        smc_be32(len, (uint32_t)kl);
        smc_sha256_update(&h, len, 4);
        smc_sha256_update(&h, k, kl);
        smc_be32(len, (uint32_t)vl);
        smc_sha256_update(&h, len, 4);
        smc_sha256_update(&h, v, vl);
        keys++;
      }
      free(v);
      free(from);
      /* the next key is the first one >= this key + one zero byte */
      if (!(from = realloc(k, kl + 1))) {
        free(k);
        goto out;
      }
      from[kl] = 0;
      flen = kl + 1;
    }
    free(from);
    char hex[65];
    if (smc_sha256_final_hex(&h, hex))
      goto out;
    printf("%s\"%s\":{\"keys\":%lld,\"sha256\":\"%s\"}", cf ? "," : "", smc_cf_names[cf],
           (long long)keys, hex);
  }
  printf("}");
  rc = 0;
out:
  smc_sha256_close(&h);
  return rc;
}

/* --from-changelog: load the partitions whose range starts at 0 from the
 * changelog (x's store, open) when their snapshots are usable; *sum gets
 * the records read and keys loaded. Returns how many were restored, or a
 * negative code (printed why). */
static int restore_from_changelog(const smc_cli_conn_t *c, replay_ctx_t *x,
                                  const smc_replay_part_t *parts, int32_t n,
                                  smc_snapshot_restore_t *sum) {
  char *topic = smc_topic(c->prefix, "changelog");
  smc_snapshot_part_t *sp = calloc((size_t)n + 1, sizeof *sp);
  if (!topic || !sp) {
    free(topic);
    free(sp);
    return SMC_ENOMEM;
  }
  size_t k = 0;
  for (int32_t p = 0; p < n; p++)
    if (parts[p].from == 0)
      sp[k++] = (smc_snapshot_part_t){.partition = p, .max_offset = INT64_MAX};
  smc_snapshot_restore_t r = {.bootstrap = c->bootstrap,
                              .props = (const char *const *)c->props,
                              .topic = topic,
                              .store = x->store,
                              .idle_timeout_ms = 60000};
  smc_error_t err;
  smc_error_clear(&err);
  int rc = k ? smc_snapshot_restore_parts(&r, sp, k, &err) : 0;
  if (rc < 0)
    fprintf(stderr, "smc replay: from %s: %s\n", topic, err.message);
  for (size_t i = 0; rc >= 0 && !x->pg.quiet && i < k; i++)
    fprintf(stderr, "smc replay: partition %d: %s (checkpoint %lld)\n", (int)sp[i].partition,
            sp[i].restored ? "restored from the changelog" : "changelog not usable",
            (long long)sp[i].checkpoint.offset);
  *sum = r;
  free(sp);
  free(topic);
  return rc;
}

/* --write-changelog: every partition's whole state to the (empty) changelog.
 * Returns 0 or -1 (printed why). */
static int write_whole_changelog(const smc_cli_conn_t *c, smc_store_t *store, int32_t n,
                                 int64_t *written) {
  char errstr[512];
  char *topic = smc_topic(c->prefix, "changelog");
  static const char *const kv[] = {"linger.ms", "20", NULL};
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_PRODUCER,
                           .bootstrap = c->bootstrap,
                           .base = kv,
                           .props = (const char *const *)c->props,
                           .murmur2 = 1};
  smc_kafka_t *rk = topic ? smc_kafka_open(&spec, errstr, sizeof errstr) : NULL;
  int rc = -1;
  if (!rk) {
    fprintf(stderr, "smc replay: changelog producer: %s\n", topic ? errstr : "out of memory");
    free(topic);
    return -1;
  }
  int ok = smc_snapshot_topic_ok(rk, topic, n);
  if (ok <= 0) {
    fprintf(stderr, "smc replay: %s: %s\n", topic,
            ok < 0 ? smc_strerror(ok) : "missing or not as many partitions as the proposals");
    goto out;
  }
  for (int32_t p = 0; p < n; p++) {
    int64_t lo = 0, hi = 0;
    if (smc_kafka_watermarks(rk, topic, p, &lo, &hi, 15000) < 0 || hi > 0) {
      fprintf(stderr, "smc replay: %s [%d] %s: --write-changelog wants an empty changelog\n", topic,
              (int)p, hi > 0 ? "holds records" : "watermarks unavailable");
      goto out;
    }
  }
  for (int32_t p = 0; p < n; p++) {
    smc_error_t err;
    smc_error_clear(&err);
    int64_t k = 0;
    if (smc_snapshot_dump(rk, topic, store, p, &k, &err) < 0) {
      fprintf(stderr, "smc replay: %s\n", err.message);
      goto out;
    }
    *written += k;
  }
  if (smc_kafka_flush(rk, 300000) < 0) {
    fprintf(stderr, "smc replay: %s: not every record was delivered\n", topic);
    goto out;
  }
  rc = 0;
out:
  smc_kafka_close(rk);
  free(topic);
  return rc;
}

static int cmd_replay_run(int argc, char **argv) {
  static const struct option longopts[] = {
      SMC_LOGCMD_CONN_LONGOPTS,
      {"data-dir", required_argument, NULL, OPT_DATA_DIR},
      {"store", required_argument, NULL, OPT_STORE},
      {"fresh", no_argument, NULL, OPT_FRESH},
      {"quiet", no_argument, NULL, OPT_QUIET},
      {"threads", required_argument, NULL, OPT_THREADS},
      {"digest", no_argument, NULL, OPT_DIGEST},
      {"from-changelog", no_argument, NULL, OPT_FROM_CHANGELOG},
      {"write-changelog", no_argument, NULL, OPT_WRITE_CHANGELOG},
      SMC_CLI_FOLD_LIMIT_OPTIONS(OPT_LIMIT),
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  smc_logcmd_t l;
  const char *data_dir = NULL, *store_name = "committer";
  int fresh = 0, digest = 0, from_changelog = 0, write_changelog = 0, opt, rc = SMC_EXIT_USAGE;
  replay_ctx_t x = {.pg = {.t0 = smc_now_ms(), .tty = isatty(2)}};
  smc_fold_t *fold = NULL;
  smc_replay_part_t *parts = NULL;
  if (smc_logcmd_init(&l, "replay", 1) < 0)
    goto out;
  while ((opt = smc_logcmd_getopt(&l, argc, argv, "hX:", longopts, replay_usage)) != -1) {
    switch (opt) {
    case SMC_LOGCMD_HELP:
      rc = SMC_EXIT_OK;
      goto out;
    case OPT_DATA_DIR:
      data_dir = optarg;
      break;
    case OPT_STORE:
      store_name = optarg;
      break;
    case OPT_FRESH:
      fresh = 1;
      break;
    case OPT_QUIET:
      x.pg.quiet = 1;
      break;
    case OPT_DIGEST:
      digest = 1;
      break;
    case OPT_FROM_CHANGELOG:
      from_changelog = 1;
      break;
    case OPT_WRITE_CHANGELOG:
      write_changelog = 1;
      break;
    default: /* SMC_LOGCMD_BAD */
      goto out;
    }
  }
  int threads = l.fold.threads;
  if (!data_dir || optind < argc || strchr(store_name, '/') || (fresh && from_changelog)) {
    replay_usage(stderr);
    goto out;
  }
  rc = SMC_EXIT_FAILED;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", data_dir, store_name);
  smc_error_t err;
  smc_error_clear(&err);
  int32_t n = smc_logcmd_open(&l, "proposals");
  if (n < 0) {
    rc = smc_cli_exit_for(n);
    goto out;
  }
  x.data_dir = data_dir;
  x.dir = dir;
  x.partitions = n;
  /* A store whose --fresh rebuild was interrupted is rebuilt from scratch
   * (an open without rebuild would empty it anyway: store.h). */
  char marker[4200];
  snprintf(marker, sizeof marker, "%s/%s", dir, SMC_STORE_REBUILD_MARKER);
  if (!fresh && !from_changelog && access(marker, F_OK) == 0) {
    fprintf(stderr,
            "smc replay: store %s: an earlier --fresh rebuild did not finish; rebuilding "
            "from scratch\n",
            dir);
    fresh = 1;
  }
  /* Without --fresh the ranges start at the store's applied offsets: open
   * it first. With --fresh they start at 0, and the replay opens it. */
  if (!fresh && smc_node_mkdirs(data_dir) < 0) {
    fprintf(stderr, "smc replay: %s: %s\n", data_dir, strerror(errno));
    goto out;
  }
  if (!fresh && smc_store_open(dir, NULL, &x.store, &err) < 0) {
    fprintf(stderr, "smc replay: store %s: %s\n", dir, err.message);
    goto out;
  }
  smc_fold_config_t fc;
  smc_fold_config_default(&fc);
  smc_cli_fold_limits_copy(&fc, &l.fold.lim);
  fc.partitions = n;
  if (smc_fold_new(&fc, &fold) < 0)
    goto out;
  parts = calloc((size_t)n, sizeof *parts);
  if (!parts)
    goto out;
  smc_snapshot_restore_t cl = {0};
  int restored = 0;
  for (int pass = 0; pass < 1 + from_changelog; pass++) {
    /* pass 1 (--from-changelog): the partitions still empty come from the
     * changelog, then their ranges start at the checkpoints */
    if (pass == 1 && (restored = restore_from_changelog(&l.conn, &x, parts, n, &cl)) < 0) {
      rc = restored == SMC_EUNAVAILABLE ? SMC_EXIT_UNAVAILABLE : SMC_EXIT_FAILED;
      goto out;
    }
    for (int32_t p = 0; p < n; p++) {
      int64_t applied = 0;
      smc_kv_t skv;
      if (x.store) {
        skv = smc_store_kv(x.store);
        if (smc_fold_applied(fold, &skv, p, &applied) < 0)
          goto out;
      }
      parts[p] = (smc_replay_part_t){.partition = p, .from = applied, .to = SMC_REPLAY_END};
    }
  }
  if (threads > n)
    threads = n > 0 ? n : 1;
  smc_replay_t r = {.bootstrap = l.conn.bootstrap,
                    .props = (const char *const *)l.conn.props,
                    .topic = l.topic,
                    .fold = fold,
                    .store = x.store,
                    .progress = show_progress,
                    .opaque = &x,
                    .threads = threads,
                    .fold_config = &fc,
                    .open_store = fresh ? open_fresh_store : NULL};
  if (smc_replay_run(&r, parts, (size_t)n, &err) < 0) {
    fprintf(stderr, "\nsmc replay: %s: %s\n", smc_code_name(err.code), err.message);
    rc = err.code == SMC_EUNAVAILABLE ? SMC_EXIT_UNAVAILABLE : SMC_EXIT_FAILED;
    goto out;
  }
  if (fresh && smc_store_finish_rebuild(x.store, &err) < 0) {
    fprintf(stderr, "smc replay: store %s: %s\n", dir, err.message);
    goto out;
  }
  int64_t total = 0, dumped = 0;
  for (int32_t p = 0; p < n; p++)
    total += parts[p].records;
  double replay_s = (double)(smc_now_ms() - x.pg.t0) / 1000.0;
  if (write_changelog && write_whole_changelog(&l.conn, x.store, n, &dumped) < 0)
    goto out;
  printf("{\"store\":\"%s\",\"partitions\":%d,\"threads\":%d,\"records\":%lld,\"seconds\":%.3f",
         dir, (int)n, threads, (long long)total, replay_s);
  if (write_changelog)
    printf(",\"changelog_written\":%lld,\"changelog_seconds\":%.3f", (long long)dumped,
           (double)(smc_now_ms() - x.pg.t0) / 1000.0 - replay_s);
  if (from_changelog)
    printf(",\"changelog\":{\"partitions\":%d,\"records\":%lld,\"keys\":%lld}", restored,
           (long long)cl.records, (long long)cl.keys);
  if (digest && print_digest(x.store) < 0) {
    printf("}\n");
    goto out;
  }
  printf("}\n");
  rc = SMC_EXIT_OK;
out:
  free(parts);
  smc_fold_destroy(fold);
  smc_store_close(x.store);
  smc_logcmd_close(&l);
  return rc;
}

const smc_command_t smc_cmd_replay = {"replay", "rebuild a state store from the proposals log",
                                      cmd_replay_run};
