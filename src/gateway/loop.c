/*
 * The gateway's event loop (docs/architecture.md, "The gateway's event
 * loop"): what lets a few threads serve thousands of waiting requests.
 *
 * libmicrohttpd runs a small pool of epoll threads. A request that waits
 * (for its decision, its read, its proposal's acknowledgement) is suspended,
 * not blocked: it leaves the poll set and holds no thread. Whatever it waits
 * for wakes it exactly once (smc_gw_wake: its answer slot, its delivery
 * report, its deadline), which resumes the connection; libmicrohttpd then
 * calls the request's continuation on one of its threads.
 *
 * Two helpers serve the rest:
 *  - the deadline timer: one thread and a binary heap of the suspended
 *    requests' deadlines; a request whose deadline passes is woken, and its
 *    continuation answers what it has (504, 503, 202);
 *  - the blocking pool: routes that block (watches, forwarding to another
 *    node, lists, registrations) run on threads of their own; the connection
 *    is suspended meanwhile and resumed with the answer they queued
 *    (gw_req_t.deferred). Threads are made as needed and kept.
 *
 * Locks, outermost first: an answer slot's or a delivery's lock, the timer
 * lock, then a request's lock (gw_ctx_t.mu), then libmicrohttpd's own.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "gateway/gw_internal.h"

#define NO_SLOT SIZE_MAX
#define POOL_STACK_BYTES (1024 * 1024)

struct gw_loop {
  pthread_mutex_t mu; /* the heap, the job queue, the counts */
  pthread_cond_t timer_cv, job_cv, idle_cv;
  gw_ctx_t **heap; /* by deadline */
  size_t nheap, capheap;
  gw_ctx_t *jobs_head, *jobs_tail;
  int idle_threads, threads, busy_jobs;
  pthread_t *tids;
  size_t ntids, captids;
  pthread_t timer;
  int timer_started;
  int stopping;         /* wake every armed request at once */
  int quit;             /* the timer thread ends */
  atomic_int suspended; /* connections suspended now */
};

/* ---- timer heap (under loop->mu) ---- */

static void heap_swap(gw_loop_t *l, size_t i, size_t j) {
  gw_ctx_t *t = l->heap[i];
  l->heap[i] = l->heap[j];
  l->heap[j] = t;
  l->heap[i]->heap_idx = i;
  l->heap[j]->heap_idx = j;
}

static void heap_up(gw_loop_t *l, size_t i) {
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (l->heap[parent]->deadline <= l->heap[i]->deadline)
      break;
    heap_swap(l, i, parent);
    i = parent;
  }
}

static void heap_down(gw_loop_t *l, size_t i) {
  for (;;) {
    size_t a = 2 * i + 1, b = a + 1, m = i;
    if (a < l->nheap && l->heap[a]->deadline < l->heap[m]->deadline)
      m = a;
    if (b < l->nheap && l->heap[b]->deadline < l->heap[m]->deadline)
      m = b;
    if (m == i)
      return;
    heap_swap(l, i, m);
    i = m;
  }
}

static void heap_remove(gw_loop_t *l, gw_ctx_t *c) {
  size_t i = c->heap_idx;
  if (i == NO_SLOT || i >= l->nheap || l->heap[i] != c)
    return;
  c->heap_idx = NO_SLOT;
  if (i != --l->nheap) {
    l->heap[i] = l->heap[l->nheap];
    l->heap[i]->heap_idx = i;
    heap_down(l, i);
    heap_up(l, i);
  }
}

static int heap_add(gw_loop_t *l, gw_ctx_t *c) {
  if (l->nheap == l->capheap) {
    size_t cap = l->capheap ? l->capheap * 2 : 256;
    gw_ctx_t **h = realloc(l->heap, cap * sizeof *h);
    if (!h)
      return -1;
    l->heap = h;
    l->capheap = cap;
  }
  c->heap_idx = l->nheap;
  l->heap[l->nheap++] = c;
  heap_up(l, c->heap_idx);
  return 0;
}

static void *timer_main(void *arg) {
  gw_loop_t *l = arg;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    int64_t now = smc_now_ms();
    while (l->nheap && (l->stopping || l->heap[0]->deadline <= now)) {
      gw_ctx_t *c = l->heap[0];
      heap_remove(l, c);
      smc_gw_wake(c); /* under the loop lock: disarming waits for it */
    }
    if (l->quit)
      break;
    int64_t wait = l->stopping ? 20 : l->nheap ? l->heap[0]->deadline - now : 1000;
    struct timespec ts = smc_deadline_ts(CLOCK_MONOTONIC, wait > 1000 ? 1000 : wait);
    pthread_cond_timedwait(&l->timer_cv, &l->mu, &ts);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

/* ---- suspension ---- */

void smc_gw_wake(gw_ctx_t *c) {
  gw_loop_t *l = c->req.gw->loop;
  pthread_mutex_lock(&c->mu);
  if (c->suspended) {
    c->suspended = 0;
    atomic_fetch_sub(&l->suspended, 1);
    /* from here the request may run, end and reach on_completed, which
     * takes c->mu before it frees c */
    MHD_resume_connection(c->req.conn);
  } else {
    c->woken = 1;
  }
  pthread_mutex_unlock(&c->mu);
}

/* Suspend the connection of c (its lock held) and count it. */
static void suspend_locked(gw_ctx_t *c) {
  c->suspended = 1;
  atomic_fetch_add(&c->req.gw->loop->suspended, 1);
  MHD_suspend_connection(c->req.conn);
}

enum MHD_Result smc_gw_wait(gw_req_t *r, int64_t deadline_ms, gw_cont_t cont) {
  gw_ctx_t *c = r->ctx;
  gw_loop_t *l = r->gw->loop;
  pthread_mutex_lock(&l->mu);
  if (c->heap_idx != NO_SLOT)
    heap_remove(l, c);
  c->deadline = deadline_ms;
  /* a wait without a deadline is in the heap too: a stop wakes it */
  int armed = heap_add(l, c) == 0;
  if (armed && c->heap_idx == 0)
    pthread_cond_signal(&l->timer_cv);
  pthread_mutex_unlock(&l->mu);
  if (!armed) /* out of memory: answer what there is now */
    return cont(r);
  pthread_mutex_lock(&c->mu);
  if (!c->woken && !atomic_load(&r->gw->stopping)) {
    c->cont = cont;
    suspend_locked(c);
    pthread_mutex_unlock(&c->mu);
    return MHD_YES;
  }
  c->woken = 0; /* woken before it could suspend: look again now */
  pthread_mutex_unlock(&c->mu);
  return cont(r);
}

void smc_gw_disarm(gw_req_t *r) {
  gw_loop_t *l = r->gw->loop;
  pthread_mutex_lock(&l->mu);
  heap_remove(l, r->ctx);
  pthread_mutex_unlock(&l->mu);
}

/* ---- the blocking pool ---- */

static void *pool_main(void *arg) {
  gw_loop_t *l = arg;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->jobs_head && !l->stopping) {
      l->idle_threads++;
      pthread_cond_wait(&l->job_cv, &l->mu);
      l->idle_threads--;
    }
    if (!l->jobs_head)
      break; /* stopping, nothing left */
    gw_ctx_t *c = l->jobs_head;
    l->jobs_head = c->job_next;
    if (!l->jobs_head)
      l->jobs_tail = NULL;
    l->busy_jobs++;
    pthread_mutex_unlock(&l->mu);
    c->req.deferred = 1; /* its answers are kept for the resume */
    c->job(&c->req);
    smc_gw_wake(c); /* the job is over: resume with what it queued */
    pthread_mutex_lock(&l->mu);
    l->busy_jobs--;
    pthread_cond_broadcast(&l->idle_cv);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

/* Queue c's job, starting a thread when none is idle (under l->mu). */
static int push_job(gw_loop_t *l, gw_ctx_t *c) {
  c->job_next = NULL;
  if (l->idle_threads == 0) {
    if (l->ntids == l->captids) {
      size_t cap = l->captids ? l->captids * 2 : 16;
      pthread_t *t = realloc(l->tids, cap * sizeof *t);
      if (!t)
        return -1;
      l->tids = t;
      l->captids = cap;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, POOL_STACK_BYTES);
    int e = pthread_create(&l->tids[l->ntids], &attr, pool_main, l);
    pthread_attr_destroy(&attr);
    if (e)
      return -1;
    l->ntids++;
  }
  if (l->jobs_tail)
    l->jobs_tail->job_next = c;
  else
    l->jobs_head = c;
  l->jobs_tail = c;
  pthread_cond_signal(&l->job_cv);
  return 0;
}

int smc_gw_offload(gw_req_t *r, gw_job_t job) {
  gw_ctx_t *c = r->ctx;
  gw_loop_t *l = r->gw->loop;
  smc_gw_disarm(r); /* only the job resumes it */
  c->job = job;
  pthread_mutex_lock(&c->mu);
  suspend_locked(c);
  pthread_mutex_unlock(&c->mu);
  pthread_mutex_lock(&l->mu);
  int rc = push_job(l, c);
  pthread_mutex_unlock(&l->mu);
  if (rc)
    smc_gw_wake(c); /* nothing will run it: resume with nothing queued */
  return rc;
}

/* ---- lifecycle ---- */

int smc_gw_loop_start(smc_gateway_t *gw) {
  gw_loop_t *l = calloc(1, sizeof *l);
  if (!l)
    return -1;
  pthread_mutex_init(&l->mu, NULL);
  smc_cond_init_monotonic(&l->timer_cv);
  pthread_cond_init(&l->job_cv, NULL);
  pthread_cond_init(&l->idle_cv, NULL);
  gw->loop = l;
  if (pthread_create(&l->timer, NULL, timer_main, l))
    return -1;
  l->timer_started = 1;
  return 0;
}

void smc_gw_loop_drain(smc_gateway_t *gw) {
  gw_loop_t *l = gw->loop;
  if (!l)
    return;
  pthread_mutex_lock(&l->mu);
  l->stopping = 1;
  pthread_cond_broadcast(&l->timer_cv); /* wakes every armed request now */
  pthread_cond_broadcast(&l->job_cv);
  int64_t last_log = smc_now_ms();
  while (atomic_load(&l->suspended) > 0 || l->busy_jobs > 0 || l->jobs_head) {
    struct timespec ts = smc_deadline_ts(CLOCK_REALTIME, 50);
    pthread_cond_timedwait(&l->idle_cv, &l->mu, &ts);
    if (smc_now_ms() - last_log > 10000) {
      fprintf(stderr, "smc gateway: stopping: %d requests still waiting\n",
              atomic_load(&l->suspended));
      last_log = smc_now_ms();
    }
    pthread_cond_broadcast(&l->timer_cv);
  }
  pthread_mutex_unlock(&l->mu);
}

void smc_gw_loop_stop(smc_gateway_t *gw) {
  gw_loop_t *l = gw->loop;
  if (!l)
    return;
  pthread_mutex_lock(&l->mu);
  l->stopping = l->quit = 1;
  pthread_cond_broadcast(&l->timer_cv);
  pthread_cond_broadcast(&l->job_cv);
  pthread_mutex_unlock(&l->mu);
  if (l->timer_started)
    pthread_join(l->timer, NULL);
  for (size_t i = 0; i < l->ntids; i++)
    pthread_join(l->tids[i], NULL);
  free(l->tids);
  free(l->heap);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->timer_cv);
  pthread_cond_destroy(&l->job_cv);
  pthread_cond_destroy(&l->idle_cv);
  free(l);
  gw->loop = NULL;
}
