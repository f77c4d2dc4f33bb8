/*
 * smc replay: rebuild a worker's state store from <prefix>proposals.
 * smc verify: fold the whole log in memory and check every confirmation on
 *             <prefix>confirmations against it, and every object's checksum
 *             chain on its own.
 * smc export: print a topic as JSON lines (partition, offset, key, value).
 *
 * All three read with read_committed up to the end the topic had when they
 * started, using plain assignment (no consumer group).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/kv.h"
#include "core/util.h"
#include "kafka/kconf.h"
#include "node/replay.h"
#include "node/roles.h"
#include "node/snapshot.h"
#include "smc/fold.h"
#include "store/store.h"

typedef struct conn {
  const char *bootstrap, *prefix;
  char **props;
  size_t nprops;
} conn_t;

enum {
  OPT_BOOTSTRAP = 1000,
  OPT_PREFIX,
  OPT_DATA_DIR,
  OPT_STORE,
  OPT_FRESH,
  OPT_TOPIC,
  OPT_QUIET,
  OPT_THREADS,
  OPT_DIGEST,
  OPT_FROM_CHANGELOG,
  OPT_WRITE_CHANGELOG
};
/* --max-* flags: OPT_LIMIT + SMC_CLI_LIMIT_* (cli.h) */
enum { OPT_LIMIT = 2000 };

static int conn_prop(conn_t *c, const char *arg, const char *cmd) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg) {
    fprintf(stderr, "smc %s: -X wants KEY=VALUE, not '%s'\n", cmd, arg);
    return -1;
  }
  char **np = realloc(c->props, (c->nprops + 3) * sizeof *np);
  if (!np)
    return -1;
  c->props = np;
  np[c->nprops] = strndup(arg, (size_t)(eq - arg));
  np[c->nprops + 1] = strdup(eq + 1);
  np[c->nprops + 2] = NULL;
  c->nprops += 2;
  return 0;
}

static void conn_close(conn_t *c) {
  for (size_t i = 0; i < c->nprops; i++)
    free(c->props[i]);
  free(c->props);
}

static void conn_defaults(conn_t *c) {
  memset(c, 0, sizeof *c);
  c->prefix = getenv("SMC_PREFIX") && *getenv("SMC_PREFIX") ? getenv("SMC_PREFIX") : "smc.";
}

#define MAX_THREADS 256

/* Parse a fold thread count (1..MAX_THREADS) from what (a flag or variable
 * name); prints the error. */
static int parse_threads(const char *cmd, const char *what, const char *text, int *out) {
  char *end = NULL;
  errno = 0;
  long v = text ? strtol(text, &end, 10) : 0;
  if (!text || !*text || *end || errno || v < 1 || v > MAX_THREADS) {
    fprintf(stderr, "smc %s: %s wants a number of threads from 1 to %d, not '%s'\n", cmd, what,
            MAX_THREADS, text ? text : "");
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* The default fold thread count: SMC_REPLAY_THREADS, else the online CPUs. */
static int default_threads(const char *cmd, int *out) {
  const char *env = getenv("SMC_REPLAY_THREADS");
  if (env && *env)
    return parse_threads(cmd, "SMC_REPLAY_THREADS", env, out);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  *out = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
  return 0;
}

/* A consumer handle for metadata and reading by assignment. */
static rd_kafka_t *open_reader(const conn_t *c, const char *cmd) {
  char errstr[512];
  rd_kafka_conf_t *conf =
      smc_kconf_new(c->bootstrap, (const char *const *)c->props, errstr, sizeof errstr);
  if (!conf) {
    fprintf(stderr, "smc %s: %s\n", cmd, errstr);
    return NULL;
  }
  const char *kv[] = {"group.id",
                      "smc-reader",
                      "enable.auto.commit",
                      "false",
                      "isolation.level",
                      "read_committed",
                      "enable.partition.eof",
                      "true",
                      "auto.offset.reset",
                      "earliest",
                      NULL};
  for (size_t i = 0; kv[i]; i += 2)
    if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "smc %s: %s\n", cmd, errstr);
      rd_kafka_conf_destroy(conf);
      return NULL;
    }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk) {
    fprintf(stderr, "smc %s: %s\n", cmd, errstr);
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  rd_kafka_poll_set_consumer(rk);
  return rk;
}

static void close_reader(rd_kafka_t *rk) {
  if (!rk)
    return;
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

/* Partition count of <prefix><name>; prints the error. */
static int32_t topic_partitions(rd_kafka_t *rk, const char *topic, const char *cmd) {
  int32_t n = smc_kafka_partitions(rk, topic, 15000);
  if (n < 0)
    fprintf(stderr, "smc %s: topic %s: %s\n", cmd, topic, smc_strerror(n));
  return n;
}

/* Read every partition of topic from its start to the high watermark it had
 * when called (read_committed), calling fn per message. Returns 0, or -1
 * (printed). */
static int read_to_end(rd_kafka_t *rk, const char *topic, int32_t n,
                       int (*fn)(void *opaque, const rd_kafka_message_t *m), void *opaque,
                       const char *cmd) {
  int64_t *end = calloc((size_t)n, sizeof *end);
  uint8_t *done = calloc((size_t)n, 1);
  rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(n);
  int rc = -1, open = 0;
  if (!end || !done)
    goto out;
  for (int32_t p = 0; p < n; p++) {
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 15000);
    if (e) {
      fprintf(stderr, "smc %s: watermarks of %s [%d]: %s\n", cmd, topic, (int)p,
              rd_kafka_err2str(e));
      goto out;
    }
    end[p] = hi;
    done[p] = lo >= hi;
    if (!done[p]) {
      rd_kafka_topic_partition_list_add(tl, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
      open++;
    }
  }
  if (open && rd_kafka_assign(rk, tl))
    goto out;
  int64_t last = smc_now_ms();
  while (open > 0) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
    if (!m) {
      if (smc_now_ms() - last > 60000) {
        fprintf(stderr, "smc %s: %s: nothing received for 60 s\n", cmd, topic);
        goto out;
      }
      rd_kafka_position(rk, tl);
      for (int i = 0; i < tl->cnt; i++) {
        int32_t p = tl->elems[i].partition;
        if (!done[p] && tl->elems[i].offset >= end[p]) {
          done[p] = 1;
          open--;
        }
      }
      continue;
    }
    last = smc_now_ms();
    int32_t p = m->partition;
    if (p < 0 || p >= n || done[p]) {
      rd_kafka_message_destroy(m);
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->offset >= end[p]) {
        done[p] = 1;
        open--;
      }
    } else if (m->err) {
      fprintf(stderr, "smc %s: %s [%d]: %s\n", cmd, topic, (int)p, rd_kafka_message_errstr(m));
    } else if (m->offset >= end[p]) {
      done[p] = 1;
      open--;
    } else {
      if (fn(opaque, m) < 0) {
        rd_kafka_message_destroy(m);
        goto out;
      }
      if (m->offset + 1 >= end[p]) {
        done[p] = 1;
        open--;
      }
    }
    rd_kafka_message_destroy(m);
  }
  rc = 0;
out:
  rd_kafka_assign(rk, NULL);
  rd_kafka_topic_partition_list_destroy(tl);
  free(end);
  free(done);
  return rc;
}

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
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int rc = -1;
  if (!ctx)
    return -1;
  printf(",\"digest\":{");
  for (int cf = 0; cf < SMC_CF_COUNT; cf++) {
    uint8_t *from = NULL;
    size_t flen = 0;
    int64_t keys = 0;
    if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
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
      if (!smc_snapshot_is_mark((smc_cf_t)cf, k, kl)) { /* node-local, not fold state */
        uint8_t len[4];
        smc_be32(len, (uint32_t)kl);
        EVP_DigestUpdate(ctx, len, 4);
        EVP_DigestUpdate(ctx, k, kl);
        smc_be32(len, (uint32_t)vl);
        EVP_DigestUpdate(ctx, len, 4);
        EVP_DigestUpdate(ctx, v, vl);
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
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    if (!EVP_DigestFinal_ex(ctx, md, &mdlen))
      goto out;
    for (unsigned int i = 0; i < mdlen; i++)
      snprintf(hex + 2 * i, 3, "%02x", md[i]);
    printf("%s\"%s\":{\"keys\":%lld,\"sha256\":\"%s\"}", cf ? "," : "", smc_cf_names[cf],
           (long long)keys, hex);
  }
  printf("}");
  rc = 0;
out:
  EVP_MD_CTX_free(ctx);
  return rc;
}

/* --from-changelog: load the partitions whose range starts at 0 from the
 * changelog (x's store, open) when their snapshots are usable; *sum gets
 * the records read and keys loaded. Returns how many were restored, or a
 * negative code (printed why). */
static int restore_from_changelog(const conn_t *c, replay_ctx_t *x, const smc_replay_part_t *parts,
                                  int32_t n, smc_snapshot_restore_t *sum) {
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
static int write_whole_changelog(const conn_t *c, smc_store_t *store, int32_t n, int64_t *written) {
  char errstr[512];
  char *topic = smc_topic(c->prefix, "changelog");
  rd_kafka_conf_t *conf =
      topic ? smc_kconf_new(c->bootstrap, (const char *const *)c->props, errstr, sizeof errstr)
            : NULL;
  if (conf && (smc_kconf_producer(conf, errstr, sizeof errstr) < 0 ||
               rd_kafka_conf_set(conf, "linger.ms", "20", errstr, sizeof errstr))) {
    rd_kafka_conf_destroy(conf);
    conf = NULL;
  }
  rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr) : NULL;
  int rc = -1;
  if (!rk) {
    if (conf)
      rd_kafka_conf_destroy(conf);
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
    if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 15000) || hi > 0) {
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
  if (rd_kafka_flush(rk, 300000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fprintf(stderr, "smc replay: %s: not every record was delivered\n", topic);
    goto out;
  }
  rc = 0;
out:
  rd_kafka_destroy(rk);
  free(topic);
  return rc;
}

static int cmd_replay_run(int argc, char **argv) {
  static const struct option longopts[] = {
      {"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
      {"prefix", required_argument, NULL, OPT_PREFIX},
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
  conn_t c;
  conn_defaults(&c);
  const char *data_dir = NULL, *store_name = "committer";
  int fresh = 0, digest = 0, from_changelog = 0, write_changelog = 0, threads = 1, opt,
      rc = SMC_EXIT_USAGE;
  replay_ctx_t x = {.pg = {.t0 = smc_now_ms(), .tty = isatty(2)}};
  smc_fold_config_t lim;
  smc_fold_config_default(&lim);
  if (smc_cli_fold_limits_env("replay", &lim) < 0 || default_threads("replay", &threads) < 0)
    goto out;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hX:", longopts, NULL)) != -1) {
    switch (opt) {
    case 'h':
      replay_usage(stdout);
      conn_close(&c);
      return SMC_EXIT_OK;
    case 'X':
      if (conn_prop(&c, optarg, "replay") < 0)
        goto out;
      break;
    case OPT_BOOTSTRAP:
      c.bootstrap = optarg;
      break;
    case OPT_PREFIX:
      c.prefix = optarg;
      break;
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
    case OPT_THREADS:
      if (parse_threads("replay", "--threads", optarg, &threads) < 0)
        goto out;
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
    default:
      if (opt >= OPT_LIMIT && opt < OPT_LIMIT + SMC_CLI_LIMIT_COUNT) {
        if (smc_cli_fold_limit_opt("replay", opt - OPT_LIMIT, optarg, &lim) < 0)
          goto out;
        break;
      }
      replay_usage(stderr);
      goto out;
    }
  }
  if (!data_dir || optind < argc || strchr(store_name, '/') || (fresh && from_changelog)) {
    replay_usage(stderr);
    goto out;
  }
  rc = SMC_EXIT_FAILED;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", data_dir, store_name);
  char *topic = smc_topic(c.prefix, "proposals");
  rd_kafka_t *rk = open_reader(&c, "replay");
  smc_fold_t *fold = NULL;
  smc_replay_part_t *parts = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  if (!topic || !rk)
    goto done;
  int32_t n = topic_partitions(rk, topic, "replay");
  if (n < 0) {
    rc = n == SMC_EUNAVAILABLE ? SMC_EXIT_UNAVAILABLE : SMC_EXIT_FAILED;
    goto done;
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
    goto done;
  }
  if (!fresh && smc_store_open(dir, NULL, &x.store, &err) < 0) {
    fprintf(stderr, "smc replay: store %s: %s\n", dir, err.message);
    goto done;
  }
  smc_fold_config_t fc;
  smc_fold_config_default(&fc);
  smc_cli_fold_limits_copy(&fc, &lim);
  fc.partitions = n;
  if (smc_fold_new(&fc, &fold) < 0)
    goto done;
  parts = calloc((size_t)n, sizeof *parts);
  if (!parts)
    goto done;
  smc_snapshot_restore_t cl = {0};
  int restored = 0;
  for (int pass = 0; pass < 1 + from_changelog; pass++) {
    /* pass 1 (--from-changelog): the partitions still empty come from the
     * changelog, then their ranges start at the checkpoints */
    if (pass == 1 && (restored = restore_from_changelog(&c, &x, parts, n, &cl)) < 0) {
      rc = restored == SMC_EUNAVAILABLE ? SMC_EXIT_UNAVAILABLE : SMC_EXIT_FAILED;
      goto done;
    }
    for (int32_t p = 0; p < n; p++) {
      int64_t applied = 0;
      smc_kv_t skv;
      if (x.store) {
        skv = smc_store_kv(x.store);
        if (smc_fold_applied(fold, &skv, p, &applied) < 0)
          goto done;
      }
      parts[p] = (smc_replay_part_t){.partition = p, .from = applied, .to = SMC_REPLAY_END};
    }
  }
  if (threads > n)
    threads = n > 0 ? n : 1;
  smc_replay_t r = {.bootstrap = c.bootstrap,
                    .props = (const char *const *)c.props,
                    .topic = topic,
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
    goto done;
  }
  if (fresh && smc_store_finish_rebuild(x.store, &err) < 0) {
    fprintf(stderr, "smc replay: store %s: %s\n", dir, err.message);
    goto done;
  }
  int64_t total = 0, dumped = 0;
  for (int32_t p = 0; p < n; p++)
    total += parts[p].records;
  double replay_s = (double)(smc_now_ms() - x.pg.t0) / 1000.0;
  if (write_changelog && write_whole_changelog(&c, x.store, n, &dumped) < 0)
    goto done;
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
    goto done;
  }
  printf("}\n");
  rc = SMC_EXIT_OK;
done:
  free(parts);
  if (fold)
    smc_fold_destroy(fold);
  smc_store_close(x.store);
  close_reader(rk);
  free(topic);
out:
  conn_close(&c);
  return rc;
}

/* ---- smc verify ----------------------------------------------------------- */

typedef struct strlist {
  char **items;
  int64_t *offsets; /* the deciding record's offset ("offset" field) */
  size_t n, cap;
} strlist_t;

static int strlist_add(strlist_t *l, const char *s, size_t len, int64_t offset) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 64;
    char **ni = realloc(l->items, nc * sizeof *ni);
    if (!ni)
      return -1;
    l->items = ni;
    int64_t *no = realloc(l->offsets, nc * sizeof *no);
    if (!no)
      return -1;
    l->offsets = no;
    l->cap = nc;
  }
  if (!(l->items[l->n] = strndup(s, len)))
    return -1;
  l->offsets[l->n++] = offset;
  return 0;
}

static void strlist_close(strlist_t *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->items[i]);
  free(l->items);
  free(l->offsets);
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

static int collect_actual(void *opaque, const rd_kafka_message_t *m) {
  verify_t *v = opaque;
  json_t *j = json_loadb(m->payload, m->len, 0, NULL);
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
  return strlist_add(&v->actual[m->partition], m->payload, m->len, off);
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
  static const struct option longopts[] = {{"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
                                           {"prefix", required_argument, NULL, OPT_PREFIX},
                                           {"verbose", no_argument, NULL, 'v'},
                                           {"threads", required_argument, NULL, OPT_THREADS},
                                           SMC_CLI_FOLD_LIMIT_OPTIONS(OPT_LIMIT),
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  conn_t c;
  conn_defaults(&c);
  verify_t v = {0};
  int opt, threads = 1, rc = SMC_EXIT_USAGE;
  smc_fold_config_t lim;
  smc_fold_config_default(&lim);
  if (smc_cli_fold_limits_env("verify", &lim) < 0 || default_threads("verify", &threads) < 0)
    goto out;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvX:", longopts, NULL)) != -1) {
    switch (opt) {
    case 'h':
      verify_usage(stdout);
      conn_close(&c);
      return SMC_EXIT_OK;
    case 'v':
      v.verbose = 1;
      break;
    case 'X':
      if (conn_prop(&c, optarg, "verify") < 0)
        goto out;
      break;
    case OPT_BOOTSTRAP:
      c.bootstrap = optarg;
      break;
    case OPT_PREFIX:
      c.prefix = optarg;
      break;
    case OPT_THREADS:
      if (parse_threads("verify", "--threads", optarg, &threads) < 0)
        goto out;
      break;
    default:
      if (opt >= OPT_LIMIT && opt < OPT_LIMIT + SMC_CLI_LIMIT_COUNT) {
        if (smc_cli_fold_limit_opt("verify", opt - OPT_LIMIT, optarg, &lim) < 0)
          goto out;
        break;
      }
      verify_usage(stderr);
      goto out;
    }
  }
  if (optind < argc) {
    verify_usage(stderr);
    goto out;
  }
  rc = SMC_EXIT_FAILED;
  int64_t t0 = smc_now_ms();
  char *tin = smc_topic(c.prefix, "proposals"), *tconf = smc_topic(c.prefix, "confirmations");
  rd_kafka_t *rk = open_reader(&c, "verify");
  smc_fold_t *fold = NULL;
  smc_replay_part_t *parts = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  if (!tin || !tconf || !rk)
    goto done;
  int32_t n = topic_partitions(rk, tin, "verify");
  if (n < 0) {
    rc = n == SMC_EUNAVAILABLE ? SMC_EXIT_UNAVAILABLE : SMC_EXIT_FAILED;
    goto done;
  }
  int32_t nc = topic_partitions(rk, tconf, "verify");
  if (nc != n) {
    if (nc >= 0)
      fprintf(stderr, "smc verify: %s has %d partitions, %s %d\n", tconf, nc, tin, n);
    goto done;
  }
  v.n = n;
  v.expected = calloc((size_t)n, sizeof *v.expected);
  v.actual = calloc((size_t)n, sizeof *v.actual);
  v.chains = json_object();
  parts = calloc((size_t)n, sizeof *parts);
  smc_fold_config_t fc;
  smc_fold_config_default(&fc);
  smc_cli_fold_limits_copy(&fc, &lim);
  fc.partitions = n;
  fc.no_history = 1; /* all in memory: history is not compared, so keep none */
  if (!v.expected || !v.actual || !v.chains || !parts || smc_fold_new(&fc, &fold) < 0)
    goto done;
  /* 1. Every decision, recomputed from the log (the end is fixed now). */
  for (int32_t p = 0; p < n; p++)
    parts[p] = (smc_replay_part_t){.partition = p, .from = 0, .to = SMC_REPLAY_END};
  /* no store and no kv: each fold thread keeps its partitions' state in
   * memory; collect_expected only touches the lists of its record's
   * partition, so threads never share one */
  smc_replay_t r = {.bootstrap = c.bootstrap,
                    .props = (const char *const *)c.props,
                    .topic = tin,
                    .fold = fold,
                    .emit = collect_expected,
                    .opaque = &v,
                    .threads = threads,
                    .fold_config = &fc};
  if (smc_replay_run(&r, parts, (size_t)n, &err) < 0) {
    fprintf(stderr, "smc verify: %s: %s\n", smc_code_name(err.code), err.message);
    rc = err.code == SMC_EUNAVAILABLE ? SMC_EXIT_UNAVAILABLE : SMC_EXIT_FAILED;
    goto done;
  }
  /* 2. Every published confirmation (read after the fold, so it covers it). */
  if (read_to_end(rk, tconf, n, collect_actual, &v, "verify") < 0)
    goto done;
  /* 3. Compare per partition; confirmations of records past the folded end
   * (published meanwhile) are left out. */
  int64_t mismatches = 0, matched = 0, records = 0;
  for (int32_t p = 0; p < n; p++) {
    strlist_t *e = &v.expected[p], *a = &v.actual[p];
    records += parts[p].records;
    size_t na = 0;
    while (na < a->n && a->offsets[na] < parts[p].to)
      na++;
    size_t k = e->n < na ? e->n : na;
    for (size_t i = 0; i < k; i++) {
      if (!strcmp(e->items[i], a->items[i])) {
        matched++;
        continue;
      }
      if (mismatches++ < 20)
        fprintf(stderr,
                "verify: partition %d confirmation #%zu differs\n  published:  %s\n"
                "  recomputed: %s\n",
                (int)p, i, a->items[i], e->items[i]);
    }
    if (e->n > na) {
      mismatches += (int64_t)(e->n - na);
      fprintf(stderr, "verify: partition %d: %zu confirmations missing (first: %s)\n", (int)p,
              e->n - na, e->items[na]);
    } else if (na > e->n) {
      mismatches += (int64_t)(na - e->n);
      fprintf(stderr, "verify: partition %d: %zu confirmations nobody decided (first: %s)\n",
              (int)p, na - e->n, a->items[e->n]);
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
done:
  for (int32_t p = 0; v.expected && p < v.n; p++)
    strlist_close(&v.expected[p]);
  for (int32_t p = 0; v.actual && p < v.n; p++)
    strlist_close(&v.actual[p]);
  free(v.expected);
  free(v.actual);
  json_decref(v.chains);
  free(parts);
  if (fold)
    smc_fold_destroy(fold);
  close_reader(rk);
  free(tin);
  free(tconf);
out:
  conn_close(&c);
  return rc;
}

/* ---- smc export ------------------------------------------------------------ */

/* Bytes that are not UTF-8 text (the changelog's keys and values) as hex. */
static json_t *hex_of(const void *p, size_t n) {
  char *h = malloc(2 * n + 1);
  if (!h)
    return NULL;
  for (size_t i = 0; i < n; i++)
    snprintf(h + 2 * i, 3, "%02x", ((const unsigned char *)p)[i]);
  json_t *j = json_stringn(h, 2 * n);
  free(h);
  return j;
}

static int print_record(void *opaque, const rd_kafka_message_t *m) {
  (void)opaque;
  json_t *val = m->payload ? json_loadb(m->payload, m->len, 0, NULL) : json_null();
  const char *vname = "value", *kname = "key";
  if (!val)
    val = json_stringn(m->payload, m->len);
  if (!val) {
    val = hex_of(m->payload, m->len);
    vname = "value_hex";
  }
  rd_kafka_timestamp_type_t tt;
  json_t *j = json_pack("{s:i,s:I,s:I,s:o}", "partition", (int)m->partition, "offset",
                        (json_int_t)m->offset, "timestamp",
                        (json_int_t)rd_kafka_message_timestamp(m, &tt), vname, val);
  if (!j)
    return -1;
  if (m->key) {
    json_t *k = json_stringn(m->key, m->key_len);
    if (!k) {
      k = hex_of(m->key, m->key_len);
      kname = "key_hex";
    }
    json_object_set_new(j, kname, k);
  }
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  if (!s)
    return -1;
  puts(s);
  free(s);
  return 0;
}

static void export_usage(FILE *out) {
  fprintf(out, "usage: smc export --topic NAME [--bootstrap B] [--prefix P] [-X KEY=VALUE]\n"
               "\n"
               "Print the records of <prefix>NAME (e.g. proposals, confirmations), read\n"
               "committed up to its current end, as JSON lines:\n"
               "  {\"key\":...,\"offset\":...,\"partition\":...,\"timestamp\":...,\"value\":...}\n"
               "in partition order, then offset order. A value that is not JSON is a\n"
               "string; bytes that are not UTF-8 (the changelog's) come as \"value_hex\" /\n"
               "\"key_hex\"; a tombstone's value is null.\n");
}

static int cmd_export_run(int argc, char **argv) {
  static const struct option longopts[] = {{"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
                                           {"prefix", required_argument, NULL, OPT_PREFIX},
                                           {"topic", required_argument, NULL, OPT_TOPIC},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  conn_t c;
  conn_defaults(&c);
  const char *name = NULL;
  int opt, rc = SMC_EXIT_USAGE;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hX:", longopts, NULL)) != -1) {
    switch (opt) {
    case 'h':
      export_usage(stdout);
      conn_close(&c);
      return SMC_EXIT_OK;
    case 'X':
      if (conn_prop(&c, optarg, "export") < 0)
        goto out;
      break;
    case OPT_BOOTSTRAP:
      c.bootstrap = optarg;
      break;
    case OPT_PREFIX:
      c.prefix = optarg;
      break;
    case OPT_TOPIC:
      name = optarg;
      break;
    default:
      export_usage(stderr);
      goto out;
    }
  }
  if (!name || optind < argc) {
    export_usage(stderr);
    goto out;
  }
  rc = SMC_EXIT_FAILED;
  char *topic = smc_topic(c.prefix, name);
  rd_kafka_t *rk = topic ? open_reader(&c, "export") : NULL;
  if (rk) {
    int32_t n = topic_partitions(rk, topic, "export");
    if (n >= 0) {
      /* One partition at a time keeps the output in (partition, offset) order. */
      rc = SMC_EXIT_OK;
      for (int32_t p = 0; p < n && rc == SMC_EXIT_OK; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 15000)) {
          rc = SMC_EXIT_UNAVAILABLE;
          break;
        }
        if (lo >= hi)
          continue;
        rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tl, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, tl);
        int64_t last = smc_now_ms();
        for (;;) {
          rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
          if (!m) {
            rd_kafka_position(rk, tl);
            if (tl->elems[0].offset >= hi)
              break;
            if (smc_now_ms() - last > 60000) {
              fprintf(stderr, "smc export: %s [%d]: nothing received for 60 s\n", topic, (int)p);
              rc = SMC_EXIT_UNAVAILABLE;
              break;
            }
            continue;
          }
          last = smc_now_ms();
          int stop = 0;
          if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            stop = m->offset >= hi;
          else if (!m->err && m->offset < hi) {
            if (print_record(NULL, m) < 0)
              rc = SMC_EXIT_FAILED;
            stop = m->offset + 1 >= hi;
          } else if (!m->err)
            stop = 1;
          rd_kafka_message_destroy(m);
          if (stop || rc)
            break;
        }
        rd_kafka_assign(rk, NULL);
        rd_kafka_topic_partition_list_destroy(tl);
      }
    }
  }
  fflush(stdout);
  close_reader(rk);
  free(topic);
out:
  conn_close(&c);
  return rc;
}

const smc_command_t smc_cmd_replay = {"replay", "rebuild a state store from the proposals log",
                                      cmd_replay_run};
const smc_command_t smc_cmd_verify = {
    "verify", "recompute every decision and checksum from the log and compare", cmd_verify_run};
const smc_command_t smc_cmd_export = {"export", "print a topic's records as JSON lines",
                                      cmd_export_run};
