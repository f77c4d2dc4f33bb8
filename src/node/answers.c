/*
 * The local-answers hub (answers.h): slots keyed by proposal id in a hash
 * table under one mutex, and the folders of this process.
 *
 * A slot is filled under its own mutex and woken through its own condition
 * variable, so a decision wakes exactly the request that waits for it. A
 * proposal slot is linked into the table while expected; smc_answers_decided
 * fills and unlinks it under the table mutex, so after smc_answers_forget
 * returns no thread touches the slot any more. Reads go to a folder's queue;
 * its cancel() settles the same race for them.
 */
#include "node/answers.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "core/util.h"
#include "core/kv.h"
#include "smc/fold.h"
#include <jansson.h>
#include "node/replay.h"
#include "smc/error.h"

#define BUCKETS 1024
#define MAX_FOLDERS 64

typedef struct folder {
  const smc_folder_ops_t *ops;
  void *self;
} folder_t;

struct smc_answers {
  pthread_mutex_t mu; /* buckets */
  smc_answer_t *bucket[BUCKETS];
  atomic_int expected;    /* slots in the table: decisions skip the lock at 0 */
  pthread_rwlock_t flock; /* folders */
  folder_t folders[MAX_FOLDERS];
  int nfolders;
  atomic_int partitions;
};

smc_answers_t *smc_answers_new(void) {
  smc_answers_t *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  pthread_mutex_init(&h->mu, NULL);
  pthread_rwlock_init(&h->flock, NULL);
  return h;
}

void smc_answers_destroy(smc_answers_t *h) {
  if (!h)
    return;
  pthread_mutex_destroy(&h->mu);
  pthread_rwlock_destroy(&h->flock);
  free(h);
}

void smc_answers_set_partitions(smc_answers_t *h, int32_t partitions) {
  if (h)
    atomic_store(&h->partitions, partitions);
}

int32_t smc_answers_partitions(smc_answers_t *h) { return h ? atomic_load(&h->partitions) : 0; }

int smc_answers_add_folder(smc_answers_t *h, const smc_folder_ops_t *ops, void *self) {
  if (!h)
    return 0;
  pthread_rwlock_wrlock(&h->flock);
  int rc = SMC_ENOMEM;
  if (h->nfolders < MAX_FOLDERS) {
    h->folders[h->nfolders++] = (folder_t){ops, self};
    rc = 0;
  }
  pthread_rwlock_unlock(&h->flock);
  return rc;
}

void smc_answers_remove_folder(smc_answers_t *h, void *self) {
  if (!h)
    return;
  pthread_rwlock_wrlock(&h->flock);
  for (int i = 0; i < h->nfolders; i++)
    if (h->folders[i].self == self) {
      h->folders[i] = h->folders[--h->nfolders];
      break;
    }
  pthread_rwlock_unlock(&h->flock);
}

/* The folder serving p, copied out under the lock: 1; 0 when none does;
 * SMC_EINCOMPATIBLE when none does and one stopped p at a settings event
 * for a newer fold. The folder stays registered while the process serves
 * requests (the gateway stops first). */
static int folder_for(smc_answers_t *h, int32_t p, folder_t *out) {
  int found = 0;
  pthread_rwlock_rdlock(&h->flock);
  for (int i = 0; i < h->nfolders && found <= 0; i++) {
    int s = h->folders[i].ops->serves(h->folders[i].self, p);
    if (s > 0) {
      *out = h->folders[i];
      found = 1;
    } else if (s < 0) {
      found = s;
    }
  }
  pthread_rwlock_unlock(&h->flock);
  return found;
}

int smc_answers_serves(smc_answers_t *h, int32_t p) {
  folder_t f;
  return h ? folder_for(h, p, &f) : 0;
}

int smc_answers_serves_object(smc_answers_t *h, const char *object) {
  int32_t n = h ? smc_answers_partitions(h) : 0;
  return n > 0 ? smc_answers_serves(h, smc_partition_for(object, strlen(object), n)) : 0;
}

/* ---- slots ---- */

void smc_answer_init(smc_answer_t *a) {
  memset(a, 0, sizeof *a);
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cv, NULL);
}

void smc_answer_close(smc_answer_t *a) {
  free(a->json);
  a->json = NULL;
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->cv);
}

void smc_answer_fill(smc_answer_t *a, int status, const char *json, size_t len, int local) {
  char *copy = NULL;
  if (json) {
    copy = malloc(len + 1);
    if (copy) {
      memcpy(copy, json, len);
      copy[len] = '\0';
    } else if (!status) {
      status = SMC_ENOMEM;
    }
  }
  pthread_mutex_lock(&a->mu);
  if (a->done) {
    pthread_mutex_unlock(&a->mu);
    free(copy);
    return;
  }
  a->done = 1;
  a->status = status;
  a->local = local;
  a->json = copy;
  a->len = copy ? len : 0;
  pthread_cond_signal(&a->cv);
  if (a->notify) /* under the lock: once a waiter sees done, the call is over */
    a->notify(a->notify_arg);
  pthread_mutex_unlock(&a->mu);
}

int smc_answer_wait(smc_answer_t *a, int64_t deadline_ms) {
  pthread_mutex_lock(&a->mu);
  while (!a->done) {
    int64_t left = deadline_ms - smc_now_ms();
    if (left <= 0)
      break;
    /* the condition variable runs on CLOCK_REALTIME: wait for `left` from now */
    struct timespec ts = smc_deadline_ts(CLOCK_REALTIME, left);
    pthread_cond_timedwait(&a->cv, &a->mu, &ts);
  }
  int done = a->done;
  pthread_mutex_unlock(&a->mu);
  return done;
}

static size_t bucket_of(const char *id) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (const unsigned char *s = (const unsigned char *)id; *s; s++)
    h = (h ^ *s) * 1099511628211ULL;
  return (size_t)(h % BUCKETS);
}

void smc_answers_expect(smc_answers_t *h, smc_answer_t *a, const char *id, smc_answer_from_t from) {
  snprintf(a->key, sizeof a->key, "%s", id);
  a->from = from;
  size_t b = bucket_of(a->key);
  pthread_mutex_lock(&h->mu);
  a->next = h->bucket[b];
  h->bucket[b] = a;
  atomic_fetch_add(&h->expected, 1);
  pthread_mutex_unlock(&h->mu);
}

void smc_answers_forget(smc_answers_t *h, smc_answer_t *a) {
  size_t b = bucket_of(a->key);
  pthread_mutex_lock(&h->mu);
  for (smc_answer_t **p = &h->bucket[b]; *p; p = &(*p)->next)
    if (*p == a) {
      *p = a->next;
      atomic_fetch_sub(&h->expected, 1);
      break;
    }
  pthread_mutex_unlock(&h->mu);
}

void smc_answers_decided(smc_answers_t *h, const char *id, const char *json, size_t len,
                         int local) {
  if (!h || !id || atomic_load(&h->expected) == 0)
    return;
  size_t b = bucket_of(id);
  pthread_mutex_lock(&h->mu);
  for (smc_answer_t **p = &h->bucket[b]; *p;) {
    smc_answer_t *a = *p;
    if (strcmp(a->key, id) || (local && a->from == SMC_ANSWER_CONFIRMED)) {
      p = &a->next;
      continue;
    }
    *p = a->next; /* filled: no longer expected */
    atomic_fetch_sub(&h->expected, 1);
    smc_answer_fill(a, 0, json, len, local);
  }
  pthread_mutex_unlock(&h->mu);
}

/* ---- reads and other questions to the folds ---- */

int smc_answers_fold_query(struct smc_fold *fold, struct smc_kv *kv, int32_t p,
                           const smc_answer_t *a, char **json) {
  switch (a->kind) {
  case SMC_QUERY_PROPOSAL:
    return smc_fold_proposal(fold, kv, p, a->key, json);
  case SMC_QUERY_LIST:
    return smc_fold_list(fold, kv, p, a->arg[0] ? a->arg : NULL, a->key, a->limit, json);
  case SMC_QUERY_SETTINGS:
    return smc_fold_settings(fold, kv, p, json);
  case SMC_QUERY_HISTORY:
    return smc_fold_history(fold, kv, p, a->key, a->after_version, a->limit, json);
  case SMC_QUERY_PENDING:
    return smc_fold_pending(fold, kv, p, a->key, json);
  default:
    return smc_fold_read(fold, kv, p, a->key, json);
  }
}

int smc_answers_read_start(smc_answers_t *h, const char *object, smc_answer_t *a) {
  int32_t n = h ? smc_answers_partitions(h) : 0;
  int32_t p = n > 0 ? smc_partition_for(object, strlen(object), n) : -1;
  folder_t f;
  int found = 0;
  if (n <= 0 || strlen(object) >= sizeof a->key || !(found = folder_for(h, p, &f)))
    return SMC_ENOT_FOUND;
  if (found < 0)
    return found;
  snprintf(a->key, sizeof a->key, "%s", object);
  a->partition = p;
  a->fops = f.ops;
  a->fself = f.self;
  f.ops->read_index(f.self, a);
  return 0;
}

int smc_answers_read_stop(smc_answer_t *a) {
  if (!smc_answer_wait(a, 0) && a->fops->cancel(a->fself, a))
    return 0;
  smc_answer_wait(a, INT64_MAX); /* filled by now, or being filled */
  return 1;
}

/* Wait for a queued question until deadline_ms, then take it back: its
 * status, or SMC_EUNAVAILABLE when it was not answered in time. */
static int ask(smc_answer_t *a, int64_t deadline_ms) {
  smc_answer_wait(a, deadline_ms);
  return smc_answers_read_stop(a) ? a->status : SMC_EUNAVAILABLE;
}

/*
 * A linearizable question about object (a, initialized, says which; it is
 * closed here): queue a to the local folder that serves the partition with
 * a ReadIndex round, wait until that fold passed the round's offset and
 * answered. *json (malloc'd) on 0; SMC_ENOT_FOUND when no local folder
 * serves the partition; SMC_EUNAVAILABLE when not in time.
 */
static int read_index(smc_answers_t *h, const char *object, smc_answer_t *a, int64_t deadline_ms,
                      char **json, size_t *len) {
  *json = NULL;
  *len = 0;
  int rc = smc_answers_read_start(h, object, a);
  if (rc == 0)
    rc = ask(a, deadline_ms);
  if (rc == 0) {
    *json = a->json;
    *len = a->len;
    a->json = NULL;
  }
  smc_answer_close(a);
  return rc;
}

int smc_answers_read(smc_answers_t *h, const char *object, int64_t deadline_ms, char **json,
                     size_t *len) {
  smc_answer_t a;
  smc_answer_init(&a); /* kind 0: the object's read reply */
  return read_index(h, object, &a, deadline_ms, json, len);
}

/* Queue `a[i]` (a template copied) to every partition a local folder
 * serves; returns how many were queued. */
static int ask_all(smc_answers_t *h, const smc_answer_t *tmpl, smc_answer_t *a, int32_t n) {
  int k = 0;
  for (int32_t p = 0; p < n; p++) {
    folder_t f = {0}; /* set when folder_for finds one (GCC cannot see it) */
    if (folder_for(h, p, &f) <= 0)
      continue;
    smc_answer_init(&a[k]);
    memcpy(a[k].key, tmpl->key, sizeof a[k].key);
    memcpy(a[k].arg, tmpl->arg, sizeof a[k].arg);
    a[k].kind = tmpl->kind;
    a[k].limit = tmpl->limit;
    a[k].after_version = tmpl->after_version;
    a[k].partition = p;
    a[k].target = 0; /* the fold's state as it is now */
    a[k].fops = f.ops;
    a[k].fself = f.self;
    f.ops->read(f.self, &a[k]);
    k++;
  }
  return k;
}

int smc_answers_proposal(smc_answers_t *h, const char *id, int64_t deadline_ms, char **json,
                         size_t *len) {
  *json = NULL;
  *len = 0;
  int32_t n = h ? smc_answers_partitions(h) : 0;
  if (n <= 0 || strlen(id) >= sizeof(((smc_answer_t *)0)->key))
    return SMC_ENOT_FOUND;
  smc_answer_t *a = calloc((size_t)n, sizeof *a), tmpl;
  if (!a)
    return SMC_ENOMEM;
  memset(&tmpl, 0, sizeof tmpl);
  snprintf(tmpl.key, sizeof tmpl.key, "%s", id);
  tmpl.kind = SMC_QUERY_PROPOSAL;
  int k = ask_all(h, &tmpl, a, n), rc = SMC_ENOT_FOUND;
  for (int i = 0; i < k; i++) {
    int st = ask(&a[i], deadline_ms);
    if (st == 0 && !*json) {
      *json = a[i].json;
      *len = a[i].len;
      a[i].json = NULL;
      rc = 0;
    }
    smc_answer_close(&a[i]);
  }
  free(a);
  return rc;
}

int smc_answers_list(smc_answers_t *h, const char *machine, const char *after, size_t limit,
                     int64_t deadline_ms, void **objects, unsigned char *served) {
  json_t *all = json_array();
  *objects = NULL;
  int32_t n = h ? smc_answers_partitions(h) : 0;
  smc_answer_t *a = n > 0 ? calloc((size_t)n, sizeof *a) : NULL, tmpl;
  if (!all || (n > 0 && !a)) {
    json_decref(all);
    free(a);
    return SMC_ENOMEM;
  }
  memset(&tmpl, 0, sizeof tmpl);
  snprintf(tmpl.key, sizeof tmpl.key, "%s", after ? after : "");
  snprintf(tmpl.arg, sizeof tmpl.arg, "%s", machine ? machine : "");
  tmpl.kind = SMC_QUERY_LIST;
  tmpl.limit = limit;
  int k = n > 0 ? ask_all(h, &tmpl, a, n) : 0, rc = 0;
  for (int i = 0; i < k; i++) {
    int st = ask(&a[i], deadline_ms);
    json_t *part = st == 0 ? json_loadb(a[i].json, a[i].len, 0, NULL) : NULL;
    if (json_is_array(part)) {
      json_array_extend(all, part);
      served[a[i].partition] = 1;
    } else if (!rc) {
      rc = st ? st : SMC_EINTERNAL;
    }
    json_decref(part);
    smc_answer_close(&a[i]);
  }
  free(a);
  if (rc) {
    json_decref(all);
    return rc == SMC_ENOMEM ? rc : SMC_EUNAVAILABLE;
  }
  *objects = all;
  return 0;
}

int smc_answers_history(smc_answers_t *h, const char *object, int64_t after_version, size_t limit,
                        int64_t deadline_ms, char **json, size_t *len) {
  smc_answer_t a;
  smc_answer_init(&a);
  a.kind = SMC_QUERY_HISTORY;
  a.after_version = after_version;
  a.limit = limit;
  return read_index(h, object, &a, deadline_ms, json, len);
}

int smc_answers_pending(smc_answers_t *h, const char *object, int64_t deadline_ms, char **json,
                        size_t *len) {
  smc_answer_t a;
  smc_answer_init(&a);
  a.kind = SMC_QUERY_PENDING;
  return read_index(h, object, &a, deadline_ms, json, len);
}

int smc_answers_settings(smc_answers_t *h, int64_t deadline_ms, char **json) {
  *json = NULL;
  int32_t n = h ? smc_answers_partitions(h) : 0;
  json_t *all = json_array();
  smc_answer_t *a = n > 0 ? calloc((size_t)n, sizeof *a) : NULL, tmpl;
  int rc = !all || (n > 0 && !a) ? SMC_ENOMEM : 0;
  memset(&tmpl, 0, sizeof tmpl);
  tmpl.kind = SMC_QUERY_SETTINGS;
  int k = !rc && n > 0 ? ask_all(h, &tmpl, a, n) : 0;
  for (int i = 0; i < k; i++) {
    int st = ask(&a[i], deadline_ms);
    json_t *one = st == 0 ? json_loadb(a[i].json, a[i].len, 0, NULL) : NULL;
    if (json_is_object(one)) {
      json_object_set_new(one, "partition", json_integer(a[i].partition));
      json_array_append(all, one);
    } else if (!rc) {
      rc = st ? st : SMC_EINTERNAL;
    }
    json_decref(one);
    smc_answer_close(&a[i]);
  }
  free(a);
  if (!rc && !(*json = smc_json_canonical(all)))
    rc = SMC_ENOMEM;
  json_decref(all);
  return rc;
}
