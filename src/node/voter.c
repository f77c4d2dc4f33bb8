/*
 * The voter role: one member of the consumer group "<prefix>-voter-<id>".
 * It folds its assigned partitions of <prefix>proposals into its own store
 * (the same fold as the committer, so it sees the same decisions) and, when
 * a proposal that lists its voter id becomes active (SMC_OUT_VOTE_REQUEST),
 * votes: accept, or what the configured hook command says.
 *
 * No transactions: the store is the voter's position (on assignment it
 * resumes at the store's applied offset; the group's offsets are committed
 * only for monitoring). A crash between a vote and the store write re-votes
 * on the same active proposal, which is harmless: the fold counts a voter's
 * first vote only.
 *
 * Restore: vote requests seen while a partition catches up to the end it had
 * at assignment are held back; those whose proposal gets decided before the
 * end (a confirmation output for the same id) are dropped, so a fresh voter
 * replaying history never votes on decided proposals.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/array.h"
#include "base/clock.h"
#include "base/str.h"
#include "core/codec.h"
#include "core/kv.h"
#include "core/util.h"
#include "core/vote_sig.h"
#include "kafka/consumer.h"
#include "kafka/group.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"
#include "node/log.h"
#include "base/metrics.h"
#include "node/replay.h"
#include "node/roles.h"
#include "node/snapshot.h"
#include "smc/fold.h"
#include "store/store.h"

#define POLL_BATCH 500
/* The store is written when the oldest unwritten record is FLUSH_MS old, at
 * FLUSH_RECORDS records, or when the partitions go quiet: an object's keys
 * touched by its request, proposal, votes and decision within one window
 * reach RocksDB once. Votes do not wait for the write. */
#define FLUSH_MS 200
#define FLUSH_RECORDS 10000

/* A vote request held back while its partition catches up, or whose vote
 * could not be produced yet. */
typedef struct pending_vote {
  char *proposal, *object, *json;
  size_t proposal_len, json_len;
  uint64_t hash; /* of proposal */
  int32_t partition;
} pending_vote_t;

/* What the voter knows of one partition. */
typedef struct voter_part {
  uint8_t assigned, caught_up;
  int64_t catchup; /* the end offset at assignment */
  int64_t next;    /* the next offset to fold, -1 = none yet */
} voter_part_t;

struct smc_voter {
  const smc_node_config_t *cfg;
  char *topic_in, *group, *store_dir, *client_id;
  int32_t nparts;
  smc_store_t *store;
  smc_fold_t *fold;
  smc_overlay_t *ov;
  smc_kv_t storekv, ovkv;
  smc_kafka_t *consumer, *producer;
  pthread_t thread;
  int thread_started;
  atomic_int stop, healthy;
  voter_part_t *part; /* [nparts] */
  pending_vote_t *pending;
  size_t npending, cap;
  size_t *slot;               /* [nslot]: index of pending by proposal id (i + 1; 0 = empty) */
  size_t nslot;               /* 0 or a power of two above 2 * npending */
  smc_buf_t idbuf;            /* a proposal id, NUL-terminated */
  smc_buf_t text;             /* the vote being produced */
  EVP_PKEY *vote_key;         /* cfg->vote_key loaded: sign every vote; NULL = unsigned */
  int64_t next_offset_commit; /* ms: group offsets are for monitoring only */
  int offsets_moved;          /* records folded since the last offset commit */
  int unflushed;              /* records folded since the last store write */
  int64_t flush_at;           /* ms: when the store is written at the latest */
};

#define OFFSET_COMMIT_MS 1000

static void mark_caught_up(smc_voter_t *v, int32_t p, int64_t offset);
static int cast_vote(smc_voter_t *v, int32_t p, const char *proposal, const char *object,
                     const char *json, size_t json_len);
static void vlog(smc_voter_t *v, int level, int32_t p, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void vlog(smc_voter_t *v, int level, int32_t p, const char *fmt, ...) {
  if (level > smc_log_level())
    return;
  char msg[1536];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  smc_log(level, v->cfg->node_id, p, "voter %s: %s", v->cfg->voter_id, msg);
}

static void fold_logger(void *opaque, const smc_fold_log_t *l) {
  smc_voter_t *v = opaque;
  /* The committer logs the same lines; keep the voter's at debug. */
  vlog(v, SMC_LOG_DEBUG, l->partition, "offset %lld: %s", (long long)l->offset, l->msg);
}

/* ---- pending vote requests, indexed by proposal id ---------------------- */

static uint64_t id_hash(const char *s, size_t n) {
  uint64_t h = 14695981039346656037ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

/* The index slot of the pending request for proposal id (hash h), or the
 * empty slot where it would go. nslot must be > 0. */
static size_t slot_of(const smc_voter_t *v, const char *id, size_t n, uint64_t h) {
  size_t mask = v->nslot - 1, i = (size_t)h & mask;
  while (v->slot[i]) {
    const pending_vote_t *pv = &v->pending[v->slot[i] - 1];
    if (pv->hash == h && pv->proposal_len == n && !memcmp(pv->proposal, id, n))
      return i;
    i = (i + 1) & mask;
  }
  return i;
}

/* The index of the pending request for proposal id, or -1. */
static ssize_t pending_find(const smc_voter_t *v, const char *id, size_t n) {
  if (!v->npending)
    return -1;
  size_t s = slot_of(v, id, n, id_hash(id, n));
  return v->slot[s] ? (ssize_t)v->slot[s] - 1 : -1;
}

/* Linear probing with backward-shift deletion: empty slot s, then move up
 * every later entry of the run whose home slot does not lie in (s, j]. */
static void slot_delete(smc_voter_t *v, size_t s) {
  size_t mask = v->nslot - 1, j = s;
  v->slot[s] = 0;
  for (;;) {
    j = (j + 1) & mask;
    if (!v->slot[j])
      return;
    size_t home = (size_t)v->pending[v->slot[j] - 1].hash & mask;
    int between = s <= j ? (home > s && home <= j) : (home > s || home <= j);
    if (!between) {
      v->slot[s] = v->slot[j];
      v->slot[j] = 0;
      s = j;
    }
  }
}

static int slots_rebuild(smc_voter_t *v, size_t nslot) {
  size_t *ns = calloc(nslot, sizeof *ns);
  if (!ns)
    return SMC_ENOMEM;
  free(v->slot);
  v->slot = ns;
  v->nslot = nslot;
  for (size_t i = 0; i < v->npending; i++) {
    const pending_vote_t *pv = &v->pending[i];
    v->slot[slot_of(v, pv->proposal, pv->proposal_len, pv->hash)] = i + 1;
  }
  return 0;
}

static void pending_free(pending_vote_t *pv) {
  free(pv->proposal);
  free(pv->object);
  free(pv->json);
}

static void pending_remove_at(smc_voter_t *v, size_t i) {
  pending_vote_t *pv = &v->pending[i];
  slot_delete(v, slot_of(v, pv->proposal, pv->proposal_len, pv->hash));
  pending_free(pv);
  size_t last = --v->npending;
  if (i != last) {
    pending_vote_t *lv = &v->pending[last];
    v->slot[slot_of(v, lv->proposal, lv->proposal_len, lv->hash)] = i + 1;
    v->pending[i] = *lv;
  }
}

/* Hold a vote request (its proposal is not pending yet). */
static int pending_add(smc_voter_t *v, int32_t p, const char *id, size_t idlen, const char *object,
                       const char *json, size_t json_len) {
  if (smc_array_reserve(&v->pending, &v->cap, v->npending + 1, sizeof *v->pending, 16))
    return SMC_ENOMEM;
  if ((v->npending + 1) * 2 > v->nslot && slots_rebuild(v, v->nslot ? v->nslot * 2 : 64) < 0)
    return SMC_ENOMEM;
  pending_vote_t *pv = &v->pending[v->npending];
  pv->proposal = strndup(id, idlen);
  pv->object = strdup(object);
  pv->json = strndup(json, json_len);
  pv->proposal_len = idlen;
  pv->json_len = json_len;
  pv->hash = id_hash(id, idlen);
  pv->partition = p;
  if (!pv->proposal || !pv->object || !pv->json) {
    pending_free(pv);
    return SMC_ENOMEM;
  }
  v->slot[slot_of(v, id, idlen, pv->hash)] = ++v->npending;
  return 0;
}

static void pending_drop_partition(smc_voter_t *v, int32_t p) {
  for (size_t i = 0; i < v->npending;)
    if (v->pending[i].partition == p)
      pending_remove_at(v, i);
    else
      i++;
}

/* ---- the fold's outputs ------------------------------------------------- */

/* A vote request that lists this voter: vote now when its partition is
 * caught up, else (or when the vote could not be produced) hold it. */
static int on_vote_request(smc_voter_t *v, const smc_output_t *o, const char *id, size_t n,
                           const char *object) {
  if (pending_find(v, id, n) >= 0)
    return 0;
  int32_t p = o->partition;
  if (p >= 0 && p < v->nparts && v->part[p].assigned && v->part[p].caught_up) {
    smc_buf_reset(&v->idbuf);
    smc_buf_add(&v->idbuf, id, n);
    if (v->idbuf.oom)
      return SMC_ENOMEM;
    if (cast_vote(v, p, v->idbuf.p, object, o->json, o->json_len) == 0)
      return 0;
  }
  return pending_add(v, p, id, n, object, o->json, o->json_len);
}

/* Fold emit callback: vote on requests that name this voter (or hold them,
 * see on_vote_request); forget held ones when their proposal is decided (a
 * confirmation). It reads the output's typed fields, never its text. */
static int voter_emit(void *opaque, const smc_output_t *o) {
  smc_voter_t *v = opaque;
  if (o->kind == SMC_OUT_CONFIRMATION) {
    ssize_t i = v->npending ? pending_find(v, o->id, strlen(o->id)) : -1;
    if (i >= 0)
      pending_remove_at(v, (size_t)i);
    return 0;
  }
  if (o->kind != SMC_OUT_VOTE_REQUEST || !o->id[0])
    return 0;
  for (size_t i = 0; i < o->nvoters; i++)
    if (!strcmp(o->voters[i], v->cfg->voter_id))
      return on_vote_request(v, o, o->id, strlen(o->id), o->key);
  return 0;
}

/* ---- the hook ----------------------------------------------------------- */

static void trim(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
    s[--n] = '\0';
}

/*
 * Run the vote hook: `/bin/sh -c hook` with the vote request JSON on stdin.
 * Exit status 0 accepts; anything else, or no exit within timeout_ms (the
 * child is then killed), rejects. reason (cap bytes) gets the hook's stdout,
 * or a description of the failure. Returns 1 accept, 0 reject.
 */
static int hook_exec(const char *hook, const char *json, int timeout_ms, char *reason, size_t cap,
                     int in[2], int out[2]);

int smc_voter_run_hook(const char *hook, const char *json, int timeout_ms, char *reason,
                       size_t cap) {
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  reason[0] = '\0';
  /* A hook that exits without reading its stdin must not SIGPIPE the worker:
   * block SIGPIPE in this thread (write then fails with EPIPE) and consume
   * any SIGPIPE raised here before restoring the mask. */
  sigset_t pipeset, oldset, pending;
  sigemptyset(&pipeset);
  sigaddset(&pipeset, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipeset, &oldset);
  sigpending(&pending);
  int had_pipe = sigismember(&pending, SIGPIPE);
  int accept = hook_exec(hook, json, timeout_ms, reason, cap, in, out);
  if (!had_pipe) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipeset, NULL, &zero) == SIGPIPE) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &oldset, NULL);
  return accept;
}

static int hook_exec(const char *hook, const char *json, int timeout_ms, char *reason, size_t cap,
                     int in[2], int out[2]) {
  if (pipe(in) < 0 || pipe(out) < 0) {
    snprintf(reason, cap, "vote hook: pipe: %s", strerror(errno));
    goto fail_pipes;
  }
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(reason, cap, "vote hook: fork: %s", strerror(errno));
    goto fail_pipes;
  }
  if (pid == 0) {
    /* The worker blocks its stop signals and ignores SIGPIPE; a hook gets
     * the defaults. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", hook, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  in[0] = out[1] = -1;
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  size_t wlen = strlen(json), woff = 0, rlen = 0;
  int64_t deadline = smc_now_ms() + timeout_ms;
  int status = 0, exited = 0, out_open = 1;
  while (!exited || out_open) {
    int64_t left = deadline - smc_now_ms();
    if (left <= 0)
      break;
    struct pollfd fds[2];
    nfds_t nf = 0;
    if (out_open)
      fds[nf++] = (struct pollfd){.fd = out[0], .events = POLLIN};
    if (in[1] >= 0)
      fds[nf++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
    if (nf > 0)
      poll(fds, nf, left > 50 ? 50 : (int)left);
    if (in[1] >= 0) {
      ssize_t w = write(in[1], json + woff, wlen - woff);
      if (w > 0)
        woff += (size_t)w;
      if (woff >= wlen || (w < 0 && errno != EAGAIN && errno != EINTR)) {
        close(in[1]);
        in[1] = -1;
      }
    }
    if (out_open) {
      char buf[512];
      ssize_t r = read(out[0], buf, sizeof buf);
      if (r > 0) {
        size_t take = (size_t)r < cap - 1 - rlen ? (size_t)r : cap - 1 - rlen;
        memcpy(reason + rlen, buf, take);
        rlen += take;
        reason[rlen] = '\0';
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        out_open = 0;
      }
    }
    if (!exited && waitpid(pid, &status, WNOHANG) == pid)
      exited = 1;
    if (exited && !out_open)
      break;
    if (!nf) {
      struct timespec ts = {0, 10 * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  if (in[1] >= 0)
    close(in[1]);
  close(out[0]);
  if (!exited) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    snprintf(reason, cap, "vote hook timed out after %d ms", timeout_ms);
    return 0;
  }
  trim(reason);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 1;
  if (!reason[0]) {
    if (WIFEXITED(status))
      snprintf(reason, cap, "vote hook exited with status %d", WEXITSTATUS(status));
    else
      snprintf(reason, cap, "vote hook killed by signal %d", WTERMSIG(status));
  }
  return 0;
fail_pipes:
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0)
      close(in[i]);
    if (out[i] >= 0)
      close(out[i]);
  }
  return 0;
}

/* Decide and produce the vote on proposal of object (request: the vote
 * request's JSON). Returns 0 or a negative code (the caller then holds the
 * request). */
static int cast_vote(smc_voter_t *v, int32_t p, const char *proposal, const char *object,
                     const char *json, size_t json_len) {
  char reason[1024] = "";
  int accept = 1;
  if (v->cfg->vote_hook && *v->cfg->vote_hook) {
    char *req = strndup(json, json_len); /* the hook's stdin, NUL-terminated */
    if (!req)
      return SMC_ENOMEM;
    accept = smc_voter_run_hook(v->cfg->vote_hook, req, v->cfg->vote_hook_timeout_ms, reason,
                                sizeof reason);
    free(req);
  }
  /* A reason that is not valid UTF-8 is left out (jansson refuses it). */
  json_t *rj = reason[0] ? json_string(reason) : NULL;
  int has_reason = rj != NULL;
  json_decref(rj);
  char sig[SMC_VOTE_SIG_B64_LEN + 1];
  if (v->vote_key) {
    smc_error_t serr;
    smc_error_clear(&serr);
    int rc = smc_vote_sig_sign_reason(v->vote_key, object, proposal, v->cfg->voter_id, accept,
                                      has_reason ? reason : NULL, sig, &serr);
    if (rc) {
      vlog(v, SMC_LOG_WARN, p, "vote on %s: %s", proposal, serr.message);
      return rc;
    }
  }
  smc_buf_reset(&v->text);
  smc_codec_vote_json(&v->text, proposal, object, v->cfg->voter_id, accept, NULL,
                      has_reason ? reason : NULL, v->vote_key ? sig : NULL);
  if (v->text.oom)
    return SMC_ENOMEM;
  const char *why;
  if (smc_kafka_produce(v->producer, v->topic_in, p, object, strlen(object), v->text.p, v->text.len,
                        &why) < 0) {
    vlog(v, SMC_LOG_WARN, p, "vote on %s: %s", proposal, why);
    return SMC_EKAFKA;
  }
  vlog(v, SMC_LOG_INFO, p, "voted %s%s on proposal %s of %s%s%s", accept ? "accept" : "reject",
       v->vote_key ? " (signed)" : "", proposal, object, reason[0] ? ": " : "", reason);
  smc_metrics_counter_add("smc_votes_total", accept ? "accept=\"true\"" : "accept=\"false\"", 1);
  return 0;
}

/* Vote on every held request of a caught-up partition. */
static void cast_pending(smc_voter_t *v) {
  for (size_t i = 0; i < v->npending;) {
    pending_vote_t *pv = &v->pending[i];
    int32_t p = pv->partition;
    if (p < 0 || p >= v->nparts || !v->part[p].assigned) {
      pending_remove_at(v, i);
      continue;
    }
    if (!v->part[p].caught_up ||
        cast_vote(v, p, pv->proposal, pv->object, pv->json, pv->json_len) < 0) {
      i++;
      continue;
    }
    pending_remove_at(v, i);
  }
}

/* ---- store and offsets -------------------------------------------------- */

/* Write the folded batch to the store (atomic), then commit the group offsets
 * (monitoring only: at most every OFFSET_COMMIT_MS unless force, which spares
 * the broker an OffsetCommit per fold window). A store failure stops the
 * role. */
static int flush_batch(smc_voter_t *v, int force) {
  v->unflushed = 0;
  if (smc_overlay_pending(v->ov) > 0) {
    smc_error_t err;
    smc_error_clear(&err);
    double t0 = smc_metrics_now_s();
    int rc = smc_store_apply(v->store, v->ov, &err);
    smc_metrics_histogram_observe("smc_store_write_seconds", "role=\"voter\"",
                                  smc_metrics_now_s() - t0);
    smc_overlay_clear(v->ov);
    if (rc < 0) {
      vlog(v, SMC_LOG_ERROR, -1, "store write failed: %s", err.message);
      atomic_store(&v->healthy, 0);
      atomic_store(&v->stop, 1);
      return rc;
    }
  }
  int64_t now = smc_now_ms();
  if (!v->offsets_moved || (!force && now < v->next_offset_commit))
    return 0;
  v->next_offset_commit = now + OFFSET_COMMIT_MS;
  v->offsets_moved = 0;
  smc_kafka_part_t *l = calloc((size_t)v->nparts, sizeof *l);
  int n = 0;
  for (int32_t p = 0; l && p < v->nparts; p++)
    if (v->part[p].assigned && v->part[p].next >= 0)
      l[n++] = (smc_kafka_part_t){.partition = p, .offset = v->part[p].next};
  smc_kafka_commit_async(v->consumer, v->topic_in, l, n);
  free(l);
  return 0;
}

/* Snapshot hook of the assignment: partitions whose store is behind the
 * start of a trimmed log (dropped) or empty while the log is trimmed start
 * from their snapshot in the changelog when it is usable; otherwise the
 * voter folds from the log's start (an error is logged when the log was
 * trimmed and the changelog is off: that fold starts from nothing). */
static void snapshot_restore(smc_voter_t *v, const smc_kafka_part_t *parts, int nparts) {
  char *topic = smc_topic(v->cfg->prefix, "changelog");
  smc_snapshot_part_t *sp = calloc((size_t)nparts + 1, sizeof *sp);
  size_t n = 0;
  for (int i = 0; topic && sp && i < nparts; i++) {
    int32_t p = parts[i].partition;
    int64_t applied = 0, lo = parts[i].low;
    if (smc_fold_applied(v->fold, &v->storekv, p, &applied) < 0 || lo < 0)
      continue;
    if (applied > 0 && applied < lo) {
      smc_error_t err;
      smc_error_clear(&err);
      vlog(v, SMC_LOG_WARN, p, "store applied %lld, but the log starts at %lld: dropping it",
           (long long)applied, (long long)lo);
      if (smc_store_drop_partition(v->store, p, &err) == 0)
        applied = 0;
    }
    if (applied == 0 && lo > 0 && !v->cfg->changelog)
      vlog(v, SMC_LOG_ERROR, p, "the log starts at %lld (trimmed) and the changelog is off",
           (long long)lo);
    /* Only a trimmed log makes a voter start from a snapshot: folding from a
     * checkpoint, it would never see the vote request of a proposal that
     * became active before it and still waits for votes (a restored store
     * holds the proposal, not the request), so it would never vote on it. */
    if (applied == 0 && lo > 0 && v->cfg->changelog)
      sp[n++] = (smc_snapshot_part_t){.partition = parts[i].partition, .max_offset = INT64_MAX};
  }
  smc_snapshot_restore_t r = {.bootstrap = v->cfg->bootstrap,
                              .props = v->cfg->kafka_props,
                              .topic = topic,
                              .store = v->store,
                              .stop = &v->stop,
                              .idle_timeout_ms = 30000};
  smc_error_t err;
  smc_error_clear(&err);
  int rc = n ? smc_snapshot_restore_parts(&r, sp, n, &err) : 0;
  if (rc < 0)
    vlog(v, SMC_LOG_WARN, -1, "restore from the changelog: %s (folding the log)", err.message);
  for (size_t i = 0; rc > 0 && i < n; i++)
    if (sp[i].restored)
      vlog(v, SMC_LOG_INFO, sp[i].partition, "restored from the changelog: checkpoint %lld",
           (long long)sp[i].checkpoint.offset);
  free(sp);
  free(topic);
}

static int on_assign(void *opaque, smc_kafka_part_t *parts, int n, const char *error) {
  smc_voter_t *v = opaque;
  (void)error;                   /* committed offsets are not asked for: the store knows */
  snapshot_restore(v, parts, n); /* snapshot hook */
  for (int i = 0; i < n; i++) {
    int32_t p = parts[i].partition;
    int64_t applied = 0;
    if (smc_fold_applied(v->fold, &v->storekv, p, &applied) < 0)
      applied = 0;
    parts[i].offset = applied > 0 ? applied : SMC_KAFKA_OFFSET_BEGINNING;
    if (p < 0 || p >= v->nparts)
      continue;
    v->part[p] = (voter_part_t){.assigned = 1, .catchup = parts[i].high, .next = -1};
    vlog(v, SMC_LOG_INFO, p, "assigned; folding from %lld, end %lld", (long long)applied,
         (long long)parts[i].high);
    if (applied >= parts[i].high)
      mark_caught_up(v, p, applied);
  }
  return 0;
}

static void on_assigned(void *opaque, const smc_kafka_part_t *parts, int n, const char *error) {
  (void)parts;
  (void)n;
  if (error)
    vlog(opaque, SMC_LOG_ERROR, -1, "assign: %s", error);
}

static void on_revoke(void *opaque, const smc_kafka_part_t *parts, int n, int lost,
                      const char *error) {
  smc_voter_t *v = opaque;
  (void)lost;
  (void)error;
  flush_batch(v, 1);
  for (int i = 0; i < n; i++) {
    int32_t p = parts[i].partition;
    if (p < 0 || p >= v->nparts)
      continue;
    v->part[p].assigned = 0;
    pending_drop_partition(v, p);
    vlog(v, SMC_LOG_INFO, p, "revoked");
  }
}

static const smc_kafka_group_handler_t group_handler = {
    .want_high = 1, .assign = on_assign, .assigned = on_assigned, .revoke = on_revoke};

/* ---- the loop ----------------------------------------------------------- */

/* The partition reached the end it had at assignment: held votes may go. */
static void mark_caught_up(smc_voter_t *v, int32_t p, int64_t offset) {
  if (v->part[p].caught_up)
    return;
  v->part[p].caught_up = 1;
  vlog(v, SMC_LOG_INFO, p, "caught up at offset %lld", (long long)offset);
}

static void handle_message(smc_voter_t *v, const smc_kafka_msg_t *m) {
  int32_t p = m->partition;
  int ok = p >= 0 && p < v->nparts && v->part[p].assigned;
  if (m->eof) {
    if (ok)
      mark_caught_up(v, p, m->offset);
    return;
  }
  if (m->error) {
    vlog(v, SMC_LOG_WARN, p, "consumer: %s", m->error);
    if (m->fatal) {
      atomic_store(&v->healthy, 0);
      atomic_store(&v->stop, 1);
    }
    return;
  }
  if (!ok)
    return;
  smc_msgrec_t mr;
  smc_kafka_msg_record(&mr, m);
  int rc = smc_fold_apply(v->fold, &v->ovkv, &mr.rec, voter_emit, v);
  smc_msgrec_close(&mr);
  if (rc == SMC_EINCOMPATIBLE) {
    /* A settings event for a newer fold: this voter would judge what follows
     * differently, so it stops folding (and voting in) p until p is assigned
     * to it again; the other partitions go on. */
    vlog(v, SMC_LOG_ERROR, p,
         "offset %lld: a settings event for a newer fold than this node's (%d): the partition "
         "stops here",
         (long long)m->offset, SMC_FOLD_VERSION);
    v->part[p].assigned = 0;
    smc_kafka_pause(v->consumer, v->topic_in, p);
    return;
  }
  if (rc < 0) {
    vlog(v, SMC_LOG_ERROR, p, "fold of offset %lld failed: %s", (long long)m->offset,
         smc_code_name(rc));
    atomic_store(&v->healthy, 0);
    atomic_store(&v->stop, 1);
    return;
  }
  v->part[p].next = m->offset + 1;
  v->offsets_moved = 1;
  if (v->unflushed++ == 0)
    v->flush_at = smc_now_ms() + FLUSH_MS;
  if (v->part[p].next >= v->part[p].catchup)
    mark_caught_up(v, p, v->part[p].next);
  smc_metrics_counter_add("smc_records_folded_total", "role=\"voter\"", 1);
}

static void *voter_main(void *arg) {
  smc_voter_t *v = arg;
  char why[256];
  if (smc_kafka_subscribe(v->consumer, v->topic_in, why, sizeof why) < 0) {
    vlog(v, SMC_LOG_ERROR, -1, "subscribe: %s", why);
    atomic_store(&v->healthy, 0);
    goto out;
  }
  vlog(v, SMC_LOG_INFO, -1, "joined group %s", v->group);
  while (!atomic_load(&v->stop)) {
    int n = 0;
    int64_t t0 = smc_now_ms();
    while (n < POLL_BATCH && !atomic_load(&v->stop)) {
      int64_t left = t0 + 20 - smc_now_ms();
      smc_kafka_msg_t m;
      if (!smc_kafka_consume(v->consumer, n == 0 ? 50 : (left > 0 ? (int)left : 0), &m))
        break;
      handle_message(v, &m);
      smc_kafka_msg_release(&m);
      n++;
    }
    /* Write the store when due; with nothing to write, still commit the
     * offsets of an earlier write that came too soon after the last commit. */
    int64_t now = smc_now_ms();
    int write = v->unflushed && (n == 0 || v->unflushed >= FLUSH_RECORDS || now >= v->flush_at);
    int commit = !v->unflushed && v->offsets_moved && now >= v->next_offset_commit;
    if ((write || commit) && flush_batch(v, 0) < 0)
      break;
    cast_pending(v);
    smc_kafka_poll(v->producer, 0);
  }
out:
  flush_batch(v, 1);
  vlog(v, SMC_LOG_INFO, -1, "leaving group %s", v->group);
  smc_kafka_leave(v->consumer);
  smc_kafka_flush(v->producer, 5000);
  return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

static smc_kafka_t *new_consumer(smc_voter_t *v, smc_error_t *err) {
  return smc_node_group_member(v->cfg, v->group, v->client_id, &group_handler, NULL, v,
                               "voter consumer", err);
}

static smc_kafka_t *new_producer(smc_voter_t *v, smc_error_t *err) {
  char errstr[512];
  const char *kv[] = {"enable.idempotence", "true", "linger.ms", "1", NULL};
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_PRODUCER,
                           .bootstrap = v->cfg->bootstrap,
                           .client_id = v->client_id,
                           .base = kv,
                           .props = v->cfg->kafka_props,
                           .murmur2 = 1};
  smc_kafka_t *rk = smc_kafka_open(&spec, errstr, sizeof errstr);
  if (!rk)
    smc_error_set(err, SMC_EKAFKA, NULL, "voter producer: %s", errstr);
  return rk;
}

static void voter_free(smc_voter_t *v) {
  if (!v)
    return;
  smc_kafka_close(v->consumer);
  smc_kafka_close(v->producer);
  if (v->ov)
    smc_overlay_destroy(v->ov);
  if (v->fold)
    smc_fold_destroy(v->fold);
  smc_store_close(v->store);
  for (size_t i = 0; i < v->npending; i++)
    pending_free(&v->pending[i]);
  free(v->pending);
  free(v->slot);
  smc_buf_close(&v->idbuf);
  smc_buf_close(&v->text);
  free(v->topic_in);
  free(v->group);
  free(v->store_dir);
  free(v->client_id);
  free(v->part);
  EVP_PKEY_free(v->vote_key);
  free(v);
}

int smc_voter_start(const smc_node_config_t *cfg, smc_voter_t **out, smc_error_t *err) {
  int rc = 0;
  *out = NULL;
  smc_voter_t *v = calloc(1, sizeof *v);
  if (!v)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  v->cfg = cfg;
  atomic_store(&v->healthy, 1);
  smc_buf_init(&v->idbuf);
  smc_buf_init(&v->text);
  char *role = smc_strdupf("voter-%s", cfg->voter_id);
  v->group = role ? smc_node_group_name(cfg->prefix, role) : NULL;
  free(role);
  v->topic_in = smc_topic(cfg->prefix, "proposals");
  v->store_dir = smc_strdupf("%s/voter-%s", cfg->data_dir, cfg->voter_id);
  v->client_id = v->group ? smc_strdupf("%s-%s", v->group, cfg->node_id) : NULL;
  if (!v->group || !v->topic_in || !v->store_dir || !v->client_id) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  if (cfg->vote_key && (rc = smc_vote_sig_load_private(cfg->vote_key, &v->vote_key, err)))
    goto fail;
  if ((rc = smc_node_store_open(cfg, v->store_dir, &v->store, err)) < 0)
    goto fail;
  v->storekv = smc_store_kv(v->store);
  if (!(v->ov = smc_overlay_new(&v->storekv))) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  v->ovkv = smc_overlay_kv(v->ov);
  if (!(v->consumer = new_consumer(v, err)) || !(v->producer = new_producer(v, err))) {
    rc = SMC_EKAFKA;
    goto fail;
  }
  int32_t n = smc_node_topic_partitions(cfg, v->consumer, v->topic_in, err);
  if (n < 0) {
    rc = n;
    goto fail;
  }
  v->nparts = n;
  if (!(v->part = calloc((size_t)n, sizeof *v->part))) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  if ((rc = smc_node_fold_new(cfg, n, fold_logger, v, &v->fold, err)) < 0 ||
      (rc = smc_node_thread_start(&v->thread, voter_main, v, err)) < 0)
    goto fail;
  v->thread_started = 1;
  *out = v;
  return 0;
fail:
  voter_free(v);
  return rc < 0 ? rc : SMC_EINTERNAL;
}

void smc_voter_stop(smc_voter_t *v) {
  if (!v)
    return;
  atomic_store(&v->stop, 1);
  if (v->thread_started)
    pthread_join(v->thread, NULL);
  voter_free(v);
}

int smc_voter_healthy(smc_voter_t *v) { return atomic_load(&v->healthy); }
