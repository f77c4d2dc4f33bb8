/* Silent replay of partition ranges into a fold state (replay.h). */
#include "node/replay.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "kafka/consumer.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"

/* Records per atomic store write, unless the pending writes reach
 * REPLAY_BATCH_BYTES first. A larger batch writes a key folded several times
 * in it (an object's record) to RocksDB once: 10,000 took about 10% less CPU
 * per record than 2,000 on the lock workload (make bench, replay scenario). */
#define REPLAY_BATCH 10000
#define REPLAY_BATCH_BYTES (64u << 20)

static int discard_output(void *opaque, const smc_output_t *out) {
  (void)opaque;
  (void)out;
  return 0;
}

static smc_kafka_t *replay_consumer(const smc_replay_t *r, smc_error_t *err) {
  static const char *const kv[] = {"queued.min.messages", "100000", NULL};
  return smc_kafka_bulk_reader(r->bootstrap, r->props, "smc-replay", kv, err);
}

/* Resolve SMC_REPLAY_END / log-start bounds from the watermarks (two
 * ListOffsets look-ups for all partitions, not two per partition); mark
 * empty ranges done. Returns the expected record total or a negative code. */
static int64_t resolve_bounds(smc_kafka_t *rk, const smc_replay_t *r, smc_replay_part_t *parts,
                              size_t n, smc_error_t *err) {
  smc_kafka_part_t *b = calloc(n ? n : 1, sizeof *b);
  if (!b)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  for (size_t i = 0; i < n; i++)
    b[i].partition = parts[i].partition;
  char why[256];
  int64_t total = smc_kafka_list_offsets(rk, r->topic, b, (int)n, 15000, why, sizeof why);
  if (total < 0) {
    smc_error_set(err, (int)total, NULL, "watermarks of %s: %s", r->topic, why);
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    int64_t l = b[i].low, h = b[i].high;
    if (parts[i].to == SMC_REPLAY_END || parts[i].to > h)
      parts[i].to = h;
    if (parts[i].from < l)
      parts[i].from = l;
    parts[i].records = 0;
    parts[i].done = parts[i].from >= parts[i].to;
    if (!parts[i].done)
      total += parts[i].to - parts[i].from;
  }
out:
  free(b);
  return total;
}

typedef struct replay_run replay_run_t;

/* One fold thread: its partitions (a disjoint share of the ranges), the queue
 * their fetched records are forwarded to, its own fold and overlay. */
typedef struct worker {
  replay_run_t *run;
  int index;
  smc_replay_part_t **parts; /* owned ranges */
  size_t nparts, open;
  int64_t remaining;    /* records expected (for the split) */
  smc_kafka_part_t *tl; /* owned partitions [nparts], for positions */
  smc_kafka_queue_t *q;
  smc_fold_t *fold, *own_fold; /* own_fold: created here (fold of threads > 0) */
  smc_overlay_t *ov;           /* store or private state; NULL: r->kv */
  smc_kv_t kv;
  int64_t batch, last_activity;
  atomic_llong folded;
  int rc;
  smc_error_t err;
  pthread_t thread;
  int started;
} worker_t;

struct replay_run {
  const smc_replay_t *r;
  smc_store_t *store; /* r->store, or what r->open_store gave */
  smc_kafka_t *rk;
  smc_replay_part_t *parts;
  size_t n;
  int32_t *part_index; /* partition -> index into parts (-1: not replayed) */
  int32_t max_partition;
  smc_emit_fn emit;
  int idle_ms;
  atomic_int abort;   /* set by the first worker that fails, or on stop */
  atomic_int running; /* workers not finished */
};

#define WORKER_BATCH 512 /* messages taken from the queue per call */

static smc_replay_part_t *worker_part(worker_t *w, int32_t p) {
  replay_run_t *run = w->run;
  if (p < 0 || p > run->max_partition || run->part_index[p] < 0)
    return NULL;
  return &run->parts[run->part_index[p]];
}

static void part_done(worker_t *w, smc_replay_part_t *pt) {
  if (!pt->done) {
    pt->done = 1;
    w->open--;
  }
}

static int flush_overlay(worker_t *w) {
  w->batch = 0;
  if (!w->run->store || !w->ov || smc_overlay_pending(w->ov) == 0)
    return 0;
  int rc = smc_store_apply(w->run->store, w->ov, &w->err);
  smc_overlay_clear(w->ov);
  return rc;
}

/* Handle one message of w's queue. Returns 0 or a negative code (w->err). */
static int worker_message(worker_t *w, const smc_kafka_msg_t *m) {
  const smc_replay_t *r = w->run->r;
  smc_replay_part_t *pt = worker_part(w, m->partition);
  if (m->eof) {
    if (pt && m->offset >= pt->to)
      part_done(w, pt);
    return 0;
  }
  if (m->error) {
    /* transient (the client retries); a fatal error ends the replay */
    if (m->fatal || smc_kafka_fatal(w->run->rk))
      return smc_error_set(&w->err, SMC_EKAFKA, NULL, "replay of %s [%d]: %s", r->topic,
                           (int)m->partition, m->error);
    return 0;
  }
  if (!pt || pt->done)
    return 0;
  if (m->offset >= pt->to) {
    part_done(w, pt);
    return 0;
  }
  smc_msgrec_t mr;
  smc_kafka_msg_record(&mr, m);
  int rc = smc_fold_apply(w->fold, &w->kv, &mr.rec, w->run->emit, r->opaque);
  smc_msgrec_close(&mr);
  if (rc < 0)
    return smc_error_set(&w->err, rc, NULL, "fold of %s [%d] at offset %lld failed", r->topic,
                         (int)pt->partition, (long long)m->offset);
  pt->records++;
  atomic_fetch_add_explicit(&w->folded, 1, memory_order_relaxed);
  if ((++w->batch >= REPLAY_BATCH || (w->ov && smc_overlay_bytes(w->ov) >= REPLAY_BATCH_BYTES)) &&
      (rc = flush_overlay(w)) < 0)
    return rc;
  if (m->offset + 1 >= pt->to)
    part_done(w, pt);
  return 0;
}

/* One round of w: fold what its queue holds (waiting up to timeout_ms for
 * the first message). Returns 0 (w->open tells whether more is to come) or a
 * negative code (w->err). */
static int worker_step(worker_t *w, int timeout_ms) {
  smc_kafka_msg_t msgs[WORKER_BATCH];
  int got = smc_kafka_queue_consume(w->q, timeout_ms, msgs, WORKER_BATCH);
  int64_t now = smc_now_ms();
  int rc = 0;
  if (got > 0)
    w->last_activity = now;
  for (int i = 0; i < got; i++) {
    if (rc == 0 && w->open > 0)
      rc = worker_message(w, &msgs[i]);
    smc_kafka_msg_release(&msgs[i]);
  }
  if (rc < 0)
    return rc;
  if (got == 0 && w->open > 0) {
    /* Transaction markers are never delivered: the position tells. */
    smc_kafka_positions(w->run->rk, w->run->r->topic, w->tl, (int)w->nparts);
    for (size_t i = 0; i < w->nparts; i++) {
      smc_replay_part_t *pt = worker_part(w, w->tl[i].partition);
      if (pt && !pt->done && w->tl[i].offset >= pt->to)
        part_done(w, pt);
    }
    if (w->open > 0 && now - w->last_activity > w->run->idle_ms)
      return smc_error_set(&w->err, SMC_EUNAVAILABLE, NULL,
                           "replay of %s: nothing received for %d ms", w->run->r->topic,
                           w->run->idle_ms);
  }
  if (w->open == 0)
    return flush_overlay(w);
  return 0;
}

/* Thread body of workers 1..N-1 (and of worker 0 when threads > 1). */
static void *worker_main(void *arg) {
  worker_t *w = arg;
  replay_run_t *run = w->run;
  while (w->open > 0 && !atomic_load(&run->abort)) {
    if ((w->rc = worker_step(w, 100)) < 0) {
      atomic_store(&run->abort, 1);
      break;
    }
  }
  atomic_fetch_sub(&run->running, 1);
  return NULL;
}

/* Serve the consumer's own queue (client-level errors). Returns 0 or a
 * negative code on a fatal error. */
static int serve_consumer(replay_run_t *run, int timeout_ms, smc_error_t *err) {
  smc_kafka_msg_t m;
  if (!smc_kafka_consume(run->rk, timeout_ms, &m))
    return 0;
  int rc = 0;
  if (m.error && m.fatal)
    rc = smc_error_set(err, SMC_EKAFKA, NULL, "replay of %s: %s", run->r->topic, m.error);
  smc_kafka_msg_release(&m);
  return rc;
}

static int64_t run_folded(worker_t *ws, int nw) {
  int64_t sum = 0;
  for (int i = 0; i < nw; i++)
    sum += atomic_load_explicit(&ws[i].folded, memory_order_relaxed);
  return sum;
}

/* Give each open range to the worker with the fewest records so far,
 * largest ranges first (a balanced split of the expected work). */
static int split_ranges(replay_run_t *run, worker_t *ws, int nw) {
  size_t n = run->n;
  smc_replay_part_t **order = calloc(n ? n : 1, sizeof *order);
  if (!order)
    return SMC_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!run->parts[i].done)
      order[k++] = &run->parts[i];
  for (size_t i = 1; i < k; i++) /* insertion sort, descending size */
    for (size_t j = i;
         j > 0 && order[j]->to - order[j]->from > order[j - 1]->to - order[j - 1]->from; j--) {
      smc_replay_part_t *t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  int rc = 0;
  for (size_t i = 0; i < k; i++) {
    worker_t *best = &ws[0];
    for (int t = 1; t < nw; t++)
      if (ws[t].remaining < best->remaining)
        best = &ws[t];
    best->tl[best->nparts].partition = order[i]->partition;
    best->parts[best->nparts++] = order[i];
    best->open++;
    best->remaining += order[i]->to - order[i]->from;
  }
  free(order);
  return rc;
}

/* Set up worker w: fold and queue (its partitions are forwarded to it before
 * the assignment, so no record reaches the consumer's queue). */
static int worker_init(replay_run_t *run, worker_t *w, int index, smc_error_t *err) {
  const smc_replay_t *r = run->r;
  w->run = run;
  w->index = index;
  w->last_activity = smc_now_ms();
  atomic_init(&w->folded, 0);
  smc_error_clear(&w->err);
  if (!(w->parts = calloc(run->n ? run->n : 1, sizeof *w->parts)) ||
      !(w->tl = calloc(run->n ? run->n : 1, sizeof *w->tl)) ||
      !(w->q = smc_kafka_queue_new(run->rk)))
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  if (index == 0) {
    w->fold = r->fold;
  } else {
    if (smc_fold_new(r->fold_config, &w->own_fold) < 0)
      return smc_error_set(err, SMC_ENOMEM, NULL, "replay: cannot create a fold");
    w->fold = w->own_fold;
  }
  return 0;
}

/* The state w folds into: an overlay on the store, r->kv, or a private
 * in-memory overlay. */
static int worker_state(replay_run_t *run, worker_t *w, smc_error_t *err) {
  const smc_replay_t *r = run->r;
  if (run->store) {
    smc_kv_t base = smc_store_kv(run->store);
    if (!(w->ov = smc_overlay_new(&base)))
      return smc_error_set(err, SMC_ENOMEM, NULL, "overlay");
    w->kv = smc_overlay_kv(w->ov);
  } else if (r->kv) {
    w->kv = *r->kv;
  } else {
    if (!(w->ov = smc_overlay_new(NULL)))
      return smc_error_set(err, SMC_ENOMEM, NULL, "overlay");
    w->kv = smc_overlay_kv(w->ov);
  }
  return 0;
}

static int worker_forward(replay_run_t *run, worker_t *w, smc_error_t *err) {
  for (size_t i = 0; i < w->nparts; i++)
    if (smc_kafka_queue_forward(run->rk, run->r->topic, w->parts[i]->partition, w->q) < 0)
      return smc_error_set(err, SMC_EKAFKA, NULL, "replay: no queue for %s [%d]", run->r->topic,
                           (int)w->parts[i]->partition);
  return 0;
}

static void worker_close(worker_t *w) {
  if (w->ov)
    smc_overlay_destroy(w->ov);
  if (w->own_fold)
    smc_fold_destroy(w->own_fold);
  smc_kafka_queue_destroy(w->q);
  free(w->tl);
  free(w->parts);
}

/* The first failure among the workers (by thread index), else 0. */
static int workers_failed(worker_t *ws, int nw, smc_error_t *err) {
  for (int i = 0; i < nw; i++)
    if (ws[i].rc < 0) {
      if (err)
        *err = ws[i].err;
      return ws[i].rc;
    }
  return 0;
}

int smc_replay_run(const smc_replay_t *r, smc_replay_part_t *parts, size_t n, smc_error_t *err) {
  int rc = 0, nw = 0, assigned = 0;
  worker_t *ws = NULL;
  smc_kafka_part_t *tl = NULL;
  replay_run_t run = {.r = r, .store = r->store, .parts = parts, .n = n, .max_partition = -1};
  atomic_init(&run.abort, 0);
  atomic_init(&run.running, 0);
  int want = r->threads > 1 ? r->threads : 1;
  if (!r->fold || !r->topic || (want > 1 && r->kv && !r->store) ||
      (r->open_store && (r->store || r->kv)))
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL,
                         "replay: missing fold or topic, several threads on one kv, or "
                         "open_store with a store or kv");
  for (size_t i = 0; i < n; i++) {
    if (parts[i].partition < 0)
      return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "replay: negative partition");
    if (parts[i].partition > run.max_partition)
      run.max_partition = parts[i].partition;
  }
  run.part_index = malloc(((size_t)run.max_partition + 1) * sizeof *run.part_index);
  if (!run.part_index)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  for (int32_t p = 0; p <= run.max_partition; p++)
    run.part_index[p] = -1;
  for (size_t i = 0; i < n; i++) {
    if (run.part_index[parts[i].partition] >= 0) {
      rc = smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "replay: partition %d twice",
                         (int)parts[i].partition);
      goto fail;
    }
    run.part_index[parts[i].partition] = (int32_t)i;
  }
  run.emit = r->emit ? r->emit : discard_output;
  run.idle_ms = r->idle_timeout_ms > 0 ? r->idle_timeout_ms : 60000;
  if (!(run.rk = replay_consumer(r, err))) {
    rc = err && err->code ? err->code : SMC_EKAFKA;
    goto fail;
  }
  int64_t total = resolve_bounds(run.rk, r, parts, n, err);
  if (total < 0) {
    rc = (int)total;
    goto fail;
  }
  size_t open = 0;
  for (size_t i = 0; i < n; i++)
    open += !parts[i].done;
  if (open == 0) {
    if (r->open_store && (rc = r->open_store(r->opaque, &run.store, err)) < 0)
      goto fail;
    goto done;
  }
  nw = want < (int)open ? want : (int)open;
  if (nw > 1 && !r->fold_config) {
    rc = smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "replay: threads need a fold_config");
    goto fail;
  }
  if (!(ws = calloc((size_t)nw, sizeof *ws))) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  for (int i = 0; i < nw; i++)
    if ((rc = worker_init(&run, &ws[i], i, err)) < 0)
      goto fail;
  if ((rc = split_ranges(&run, ws, nw)) < 0) {
    smc_error_set(err, rc, NULL, "out of memory");
    goto fail;
  }
  tl = calloc(n, sizeof *tl);
  if (!tl) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  for (int i = 0; i < nw; i++)
    if ((rc = worker_forward(&run, &ws[i], err)) < 0)
      goto fail;
  int ntl = 0;
  for (size_t i = 0; i < n; i++)
    if (!parts[i].done)
      tl[ntl++] = (smc_kafka_part_t){.partition = parts[i].partition, .offset = parts[i].from};
  char why[256];
  if (smc_kafka_assign_parts(run.rk, r->topic, tl, ntl, why, sizeof why) < 0) {
    rc = smc_error_set(err, SMC_EKAFKA, NULL, "assign: %s", why);
    goto fail;
  }
  assigned = 1;
  /* The fetches run meanwhile: a slow store open overlaps them. */
  if (r->open_store && (rc = r->open_store(r->opaque, &run.store, err)) < 0)
    goto fail;
  for (int i = 0; i < nw; i++)
    if ((rc = worker_state(&run, &ws[i], err)) < 0)
      goto fail;
  int64_t last_progress = 0;
  if (nw == 1) {
    /* the calling thread folds, serving the consumer's queue in between */
    worker_t *w = &ws[0];
    while (w->open > 0) {
      if (r->stop && atomic_load(r->stop)) {
        rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "replay stopped");
        goto fail;
      }
      if ((w->rc = worker_step(w, 100)) < 0 || (rc = serve_consumer(&run, 0, err)) < 0) {
        if (w->rc < 0)
          rc = workers_failed(ws, nw, err);
        goto fail;
      }
      int64_t now = smc_now_ms();
      if (r->progress && now - last_progress >= 100) {
        r->progress(r->opaque, run_folded(ws, nw), total, 0);
        last_progress = now;
      }
    }
  } else {
    atomic_store(&run.running, nw);
    for (int i = 0; i < nw; i++) {
      if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
        atomic_fetch_sub(&run.running, nw - i);
        atomic_store(&run.abort, 1);
        rc = smc_error_set(err, SMC_ENOMEM, NULL, "replay: cannot start a fold thread");
        break;
      }
      ws[i].started = 1;
    }
    /* this thread watches: client errors, stop, progress */
    while (atomic_load(&run.running) > 0) {
      if (rc == 0 && r->stop && atomic_load(r->stop)) {
        rc = smc_error_set(err, SMC_EUNAVAILABLE, NULL, "replay stopped");
        atomic_store(&run.abort, 1);
      }
      if (rc == 0 && (rc = serve_consumer(&run, 50, err)) < 0)
        atomic_store(&run.abort, 1);
      if (rc < 0)
        usleep(1000);
      int64_t now = smc_now_ms();
      if (r->progress && rc == 0 && now - last_progress >= 100) {
        r->progress(r->opaque, run_folded(ws, nw), total, 0);
        last_progress = now;
      }
    }
    for (int i = 0; i < nw; i++)
      if (ws[i].started)
        pthread_join(ws[i].thread, NULL);
    int wrc = workers_failed(ws, nw, rc < 0 ? NULL : err);
    if (rc == 0 && wrc < 0)
      rc = wrc;
    if (rc < 0)
      goto fail;
  }
done:
  if (r->progress)
    r->progress(r->opaque, run_folded(ws, nw), total, 1);
  rc = 0;
fail:
  for (int i = 0; ws && i < nw; i++)
    worker_close(&ws[i]);
  free(ws);
  free(run.part_index);
  free(tl);
  if (run.rk) {
    if (assigned)
      smc_kafka_unassign(run.rk);
    smc_kafka_close(run.rk);
  }
  return rc;
}
