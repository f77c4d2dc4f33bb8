/*
 * bench_fold: fold a generated lock workload into RocksDB and print the rate
 * and the peak RSS.
 *
 *   bench_fold [RECORDS [OBJECTS...]]   (default: 1000000 records, run once
 *                                        with 10000 and once with 1000000
 *                                        objects, each in its own process)
 *
 * Object i % OBJECTS gets, in turn: create, acquire, release, acquire, ...
 * (the versioned lock of examples/machines/lock.yaml, no votes), one
 * partition, explicit proposal ids. Records are generated on the fly (so the
 * log itself takes no memory), folded through an overlay and written to the
 * store in atomic batches of 1000 records, as a committer does. The rate
 * covers generation, decoding, validation, the store reads and the batch
 * writes; VmHWM (peak RSS) shows whether memory grows with the object count
 * beyond the store's fixed caches.
 *
 * A second line splits the fold thread's CPU: the share spent in the batch
 * writes (smc_store_apply: RocksDB's write batch, WAL and memtable inserts)
 * and the keys and bytes written per record. The rate those writes alone
 * would allow is the store's floor for this workload, whatever the fold
 * itself costs (the raw-RocksDB baseline, as raw round trips are Kafka's).
 * The longest batch write (wall time) shows a stall of the writer, such as
 * one waiting for the decided-id filter's rebuild.
 *
 * A third line adds RocksDB's background work: after the last batch it
 * waits until no flush or compaction runs or is owed, then gives the CPU of
 * the whole process (fold thread, flushes, compactions) per record, the rate
 * one core could sustain with that work included, and the size of the table
 * files. The fold-thread rate above leaves that work out, as a committer's
 * fold thread does not wait for it, but on a machine with no idle core it
 * competes with the fold, the broker and the clients.
 *
 * Then the raw-RocksDB baseline, in a process of its own: the same records
 * folded again, untimed, over an in-memory state, and each batch's writes
 * (the same keys and bytes) put into a plain RocksDB write batch and
 * written with one rocksdb_write into a fresh store with the same options.
 * Only the batch's puts and the write are timed, then RocksDB's flushes and
 * compactions are counted as above: what RocksDB alone costs for what the
 * fold stores, so the last line gives the fold's own share of each record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "core/kv.h"
#include "smc/fold.h"
#include "store/store.h"

#define BATCH 1000

/* Seconds on clock id: CLOCK_MONOTONIC (wall), CLOCK_THREAD_CPUTIME_ID (the
 * calling thread's CPU: the fold's own core, whatever else the machine or
 * RocksDB's background threads do), CLOCK_PROCESS_CPUTIME_ID (the whole
 * process: the fold and RocksDB's flushes and compactions). */
static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
static double cpu_s(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }
static double proc_cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

/* Wait until RocksDB has run every flush and compaction it owes: none
 * running and no flush pending for half a second (a compaction that a
 * flush makes due starts within that), at most a minute. Returns the
 * seconds waited. */
static double wait_store_idle(smc_store_t *st) {
  static const char *const busy[] = {"rocksdb.num-running-compactions",
                                     "rocksdb.num-running-flushes",
                                     "rocksdb.mem-table-flush-pending"};
  double t0 = now_s(), quiet_since = -1;
  while (now_s() - t0 < 60) {
    uint64_t sum = 0, v = 0;
    for (size_t i = 0; i < sizeof busy / sizeof *busy; i++)
      if (smc_store_property(st, busy[i], &v) == 0)
        sum += v;
    double t = now_s();
    if (sum)
      quiet_since = -1;
    else if (quiet_since < 0)
      quiet_since = t;
    else if (t - quiet_since >= 0.5)
      return quiet_since - t0;
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return now_s() - t0;
}

static long vm_hwm_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof(line), f))
    if (!strncmp(line, "VmHWM:", 6))
      kb = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  return kb;
}

typedef struct counts {
  long outputs, committed;
} counts_t;

static int count(void *opaque, const smc_output_t *o) {
  counts_t *c = opaque;
  c->outputs++;
  if (o->kind == SMC_OUT_CONFIRMATION && strstr(o->json, "\"outcome\":\"committed\""))
    c->committed++;
  return 0;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  if (b) {
    b[n] = 0;
    *len = (size_t)n;
  }
  return b;
}

/* The generator's string building (snprintf cost ~3% of the loop, which
 * is meant to measure the fold): append s / the decimal n at p. */
static char *put_s(char *p, const char *s) {
  size_t n = strlen(s);
  memcpy(p, s, n);
  return p + n;
}

static char *put_l(char *p, long n) {
  char tmp[24], *q = tmp + sizeof(tmp);
  unsigned long u = (unsigned long)n; /* n >= 0 here */
  do
    *--q = (char)('0' + u % 10);
  while (u /= 10);
  size_t len = (size_t)(tmp + sizeof(tmp) - q);
  memcpy(p, q, len);
  return p + len;
}

/* Record i of the lock workload over objects objects, built into key and
 * val (bench-sized buffers). */
static smc_record_t gen_record(long i, long objects, char key[32], char val[256]) {
  long obj = i % objects, step = i / objects;
  char *k = put_l(put_s(key, "lock-"), obj), *v = val;
  *k = '\0';
  if (step == 0) {
    v = put_l(put_s(v, "{\"type\":\"proposal\",\"id\":\"p"), i);
    v = put_s(put_s(v, "\",\"machine\":\"lock\",\"object\":\""), key);
    v = put_s(v, "\",\"transition\":\"create\"}");
  } else {
    v = put_l(put_s(v, "{\"type\":\"proposal\",\"id\":\"p"), i);
    v = put_s(put_s(v, "\",\"object\":\""), key);
    v = put_s(put_s(put_s(v, "\",\"transition\":\""), step % 2 ? "acquire" : "release"),
              "\",\"data\":{\"owner\":\"svc-");
    v = put_s(put_l(v, obj % 97), "\"}}");
  }
  smc_record_t rec = {
      0, i, 1764300000000LL + i, key, (size_t)(k - key), val, (size_t)(v - val), NULL, NULL};
  return rec;
}

/* What one process measured, sent to the parent for the comparison line. */
typedef struct figures {
  double thread_us; /* per record: fold thread CPU (raw: the puts and writes) */
  double proc_us;   /* per record: with RocksDB's flushes and compactions */
} figures_t;

/* One batch's writes, collected from the overlay for the raw baseline. */
typedef struct raw_batch {
  rocksdb_t *db; /* the store's, and its handles, resolved once */
  rocksdb_column_family_handle_t *cf[SMC_CF_COUNT];
  rocksdb_writeoptions_t *wo;
  rocksdb_writebatch_t *wb;
  size_t n, cap;
  struct raw_put {
    smc_cf_t cf;
    const void *key, *val; /* val NULL: a delete */
    size_t klen, vlen;
  } * puts;
  smc_kv_t mem; /* the in-memory state the fold reads */
} raw_batch_t;

static int raw_collect(void *opaque, smc_cf_t cf, const void *key, size_t klen, const void *val,
                       size_t vlen) {
  raw_batch_t *b = opaque;
  if (b->n == b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 4096;
    struct raw_put *p = realloc(b->puts, cap * sizeof(*p));
    if (!p)
      return SMC_ENOMEM;
    b->puts = p;
    b->cap = cap;
  }
  b->puts[b->n++] = (struct raw_put){cf, key, val, klen, vlen};
  return 0;
}

static int raw_to_mem(void *opaque, smc_cf_t cf, const void *key, size_t klen, const void *val,
                      size_t vlen) {
  smc_kv_t *mem = opaque;
  return val ? smc_kv_put(mem, cf, key, klen, val, vlen) : smc_kv_del(mem, cf, key, klen);
}

/* BENCH_RAW_WAL=0: the raw baseline writes without RocksDB's WAL (the
 * store always writes it). */
static int raw_without_wal(void) {
  return getenv("BENCH_RAW_WAL") && atoi(getenv("BENCH_RAW_WAL")) == 0;
}

/* Set b up to write into st the way a RocksDB user would: its database and
 * column family handles, the store's write options (WAL on, no sync;
 * without the WAL for BENCH_RAW_WAL=0), one write batch. Returns 0. */
static int raw_open(raw_batch_t *b, smc_store_t *st) {
  b->db = smc_store_rocksdb(st);
  for (int i = 0; i < SMC_CF_COUNT; i++)
    b->cf[i] = smc_store_rocksdb_cf(st, (smc_cf_t)i);
  b->wo = rocksdb_writeoptions_create();
  b->wb = rocksdb_writebatch_create();
  if (!b->wo || !b->wb)
    return 1;
  if (raw_without_wal())
    rocksdb_writeoptions_disable_WAL(b->wo, 1);
  return 0;
}

static void raw_close(raw_batch_t *b) {
  if (b->wb)
    rocksdb_writebatch_destroy(b->wb);
  if (b->wo)
    rocksdb_writeoptions_destroy(b->wo);
  free(b->puts);
}

/* The raw baseline's timed part: b's puts into a plain write batch and one
 * rocksdb_write of it. */
static int raw_write(raw_batch_t *b) {
  for (size_t i = 0; i < b->n; i++) {
    struct raw_put *p = &b->puts[i];
    if (p->val)
      rocksdb_writebatch_put_cf(b->wb, b->cf[p->cf], p->key, p->klen, p->val, p->vlen);
    else
      rocksdb_writebatch_delete_cf(b->wb, b->cf[p->cf], p->key, p->klen);
  }
  char *rerr = NULL;
  rocksdb_write(b->db, b->wo, b->wb, &rerr);
  rocksdb_writebatch_clear(b->wb);
  if (rerr) {
    fprintf(stderr, "raw write: %s\n", rerr);
    free(rerr);
    return 1;
  }
  return 0;
}

/* Fold records over objects objects into a fresh store and print the
 * figures (raw: the raw-RocksDB baseline instead, see the top). */
static int run(long records, long objects, int raw, figures_t *out) {
  char dir[] = "/tmp/smc-bench-fold-XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  smc_error_t err;
  smc_error_clear(&err);
  smc_store_t *st = NULL;
  smc_store_options_t so;
  smc_store_options_default(&so);
  /* BENCH_WRITE_BUFFER_MB: memtable size per column family (default the
   * store's own) */
  if (getenv("BENCH_WRITE_BUFFER_MB") && atol(getenv("BENCH_WRITE_BUFFER_MB")) > 0)
    so.write_buffer_bytes = (size_t)atol(getenv("BENCH_WRITE_BUFFER_MB")) << 20;
  if (smc_store_open(dir, &so, &st, &err)) {
    fprintf(stderr, "store: %s\n", err.message);
    return 1;
  }
  /* raw: the fold reads an in-memory state, and the store is written only
   * by raw_write */
  smc_overlay_t *memov = raw ? smc_overlay_new(NULL) : NULL;
  raw_batch_t rb = {0};
  if (raw) {
    if (!memov || raw_open(&rb, st))
      return 1;
    rb.mem = smc_overlay_kv(memov);
  }
  smc_kv_t base = raw ? rb.mem : smc_store_kv(st);
  smc_overlay_t *ov = smc_overlay_new(&base);
  smc_kv_t kv = smc_overlay_kv(ov);
  smc_fold_config_t cfg;
  smc_fold_config_default(&cfg);
  smc_fold_t *f = NULL;
  if (smc_fold_new(&cfg, &f))
    return 1;
  size_t dlen = 0;
  char *def = read_file(SMC_SOURCE_DIR "/examples/machines/lock.yaml", &dlen);
  if (!def || smc_fold_register_machine(f, &kv, 0, def, dlen, "lock.yaml", NULL, &err)) {
    fprintf(stderr, "cannot register examples/machines/lock.yaml: %s\n", err.message);
    return 1;
  }
  free(def);
  counts_t c = {0, 0};
  char key[32], val[256];
  double apply_cpu = 0, apply_max = 0;
  size_t keys = 0, bytes = 0;
  double t0 = now_s(), c0 = cpu_s(), p0 = proc_cpu_s();
  for (long i = 0; i < records; i++) {
    smc_record_t rec = gen_record(i, objects, key, val);
    if (smc_fold_apply(f, &kv, &rec, count, &c)) {
      fprintf(stderr, "fold failed at record %ld\n", i);
      return 1;
    }
    if ((i + 1) % BATCH == 0 || i + 1 == records) {
      keys += smc_overlay_pending(ov);
      bytes += smc_overlay_bytes(ov);
      rb.n = 0;
      if (raw && smc_overlay_foreach(ov, raw_collect, &rb))
        return 1;
      double a0 = cpu_s(), w0 = now_s();
      if (raw ? raw_write(&rb) : smc_store_apply(st, ov, &err)) {
        if (!raw) /* raw_write says why itself */
          fprintf(stderr, "store apply: %s\n", err.message);
        return 1;
      }
      apply_cpu += cpu_s() - a0;
      if (now_s() - w0 > apply_max)
        apply_max = now_s() - w0;
      if (raw && smc_overlay_foreach(ov, raw_to_mem, &rb.mem))
        return 1;
      smc_overlay_clear(ov);
    }
  }
  double dt = now_s() - t0, dc = cpu_s() - c0;
  double waited = wait_store_idle(st), pc = proc_cpu_s() - p0;
  uint64_t sst = 0;
  smc_store_property(st, "rocksdb.total-sst-files-size", &sst);
  if (raw) { /* the writes, and every other thread's CPU (RocksDB's) */
    double bg = pc - dc;
    out->thread_us = apply_cpu * 1e6 / (double)records;
    out->proc_us = (apply_cpu + bg) * 1e6 / (double)records;
    printf("bench_fold: raw RocksDB%s, the same %.2f keys and %.0f bytes per record in one "
           "rocksdb_write per batch: %.2f us/record on the writing thread (%.0f records/s); "
           "with its flushes and compactions (%.1f s more): %.2f us/record, %.0f records/s per "
           "core; %.1f MiB of table files\n",
           raw_without_wal() ? " without its WAL" : "", (double)keys / (double)records,
           (double)bytes / (double)records, out->thread_us, 1e6 / out->thread_us, waited,
           out->proc_us, 1e6 / out->proc_us, (double)sst / 1048576.0);
  } else {
    out->thread_us = dc * 1e6 / (double)records;
    out->proc_us = pc * 1e6 / (double)records;
    printf("bench_fold: %ld records, %ld objects: %.2f s, %.0f records/s (wall), %.0f "
           "records/s (fold thread CPU), %ld committed, peak RSS %.1f MiB\n",
           records, objects, dt, (double)records / dt, (double)records / dc, c.committed,
           vm_hwm_kb() / 1024.0);
    printf("bench_fold: store writes %.2f us/record of fold-thread CPU (%.0f%%), %.2f keys and "
           "%.0f bytes per record: the writes alone allow %.0f records/s; longest batch write "
           "%.1f ms\n",
           apply_cpu * 1e6 / (double)records, 100.0 * apply_cpu / dc,
           (double)keys / (double)records, (double)bytes / (double)records,
           (double)records / apply_cpu, apply_max * 1e3);
    printf("bench_fold: with RocksDB's flushes and compactions done (%.1f s more): %.2f us of "
           "process CPU per record, %.0f records/s per core; %.1f MiB of table files\n",
           waited, out->proc_us, 1e6 / out->proc_us, (double)sst / 1048576.0);
    smc_store_filter_stats_t fs;
    smc_store_filter_stats(st, &fs);
    printf("bench_fold: decided-id filter %s, %.1f MiB, %zu ids, %lu lookups answered in "
           "memory\n",
           fs.enabled ? "on" : "off", fs.bytes / 1048576.0, fs.keys, fs.skipped);
  }
  fflush(stdout);
  smc_fold_destroy(f);
  smc_overlay_destroy(ov);
  smc_overlay_destroy(memov);
  raw_close(&rb);
  smc_store_close(st);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) ? 1 : 0;
}

/* run() in a child process (so each peak RSS is its own); its figures come
 * back through a pipe. Returns 0 when it succeeded. */
static int run_child(long records, long objects, int raw, figures_t *out) {
  int fd[2];
  if (pipe(fd))
    return 1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    figures_t fig = {0, 0};
    int rc = run(records, objects, raw, &fig);
    if (!rc && write(fd[1], &fig, sizeof(fig)) != (ssize_t)sizeof(fig))
      rc = 1;
    _exit(rc);
  }
  close(fd[1]);
  ssize_t got = pid < 0 ? -1 : read(fd[0], out, sizeof(*out));
  close(fd[0]);
  int ws = 0;
  if (pid < 0 || waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws))
    return 1;
  return got == (ssize_t)sizeof(*out) ? 0 : 1;
}

int main(int argc, char **argv) {
  long records = argc > 1 ? atol(argv[1]) : 1000000;
  long dflt[] = {10000, 1000000};
  int nruns = argc > 2 ? argc - 2 : 2;
  if (records < 1) {
    fprintf(stderr, "usage: bench_fold [RECORDS [OBJECTS...]]\n");
    return 2;
  }
  /* BENCH_RAW=0: leave the raw-RocksDB baseline out */
  int with_raw = !getenv("BENCH_RAW") || atoi(getenv("BENCH_RAW")) != 0;
  int status = 0;
  for (int r = 0; r < nruns; r++) {
    long objects = argc > 2 ? atol(argv[2 + r]) : dflt[r];
    if (objects < 1)
      objects = 1;
    figures_t fold, raw;
    if (run_child(records, objects, 0, &fold)) {
      status = 1;
      continue;
    }
    if (!with_raw)
      continue;
    if (run_child(records, objects, 1, &raw)) {
      status = 1;
      continue;
    }
    printf("bench_fold: fold against raw RocksDB: %.2f against %.2f us/record on one thread "
           "(the fold's own work %.2f), %.2f against %.2f with flushes and compactions "
           "(fold/raw %.2f)\n",
           fold.thread_us, raw.thread_us, fold.thread_us - raw.thread_us, fold.proc_us, raw.proc_us,
           raw.proc_us / fold.proc_us);
    fflush(stdout);
  }
  return status;
}
