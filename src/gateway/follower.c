/*
 * The gateway's follower: one consumer thread reading <prefix>machines from
 * the beginning (the catalog) and <prefix>confirmations from their ends at
 * start (proposal outcomes, latest committed version per object). Everything
 * it learns lives in bounded structures guarded by one mutex; a condition
 * variable wakes watchers when a commit arrives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "core/codec.h"
#include "core/json_scan.h"
#include "core/util.h"
#include "gateway/gw_internal.h"
#include "kafka/consumer.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"
#include "base/metrics.h"

_Static_assert(SMC_GW_ID_MAX == SMC_CODEC_MAX_ID, "the gateway keeps ids as long as events carry");

/* ------------------------------------------------------------ follower */

#define PROPOSALS_MAX 100000
#define OBJECTS_MAX 100000
#define PENDING_MAX 20000

struct gw_follower {
  smc_gateway_t *gw;
  smc_kafka_t *rk;
  char *t_machines, *t_confirmations, *t_nodes;
  pthread_t thread;
  int thread_started;
  atomic_int run;
  pthread_mutex_t mu;
  pthread_cond_t cond;
  smc_machine_t **machines;
  size_t nmachines, capmachines;
  smc_lru_t *proposals;  /* id -> status record */
  smc_lru_t *objects;    /* object -> latest committed confirmation */
  smc_lru_t *pending;    /* "object\ntransition" -> "id" of a pending proposal */
  int64_t machines_high; /* end of <prefix>machines at start */
  atomic_int caught_up;
};

static void catalog_put_locked(gw_follower_t *f, smc_machine_t *m) {
  for (size_t i = 0; i < f->nmachines; i++)
    if (!strcmp(smc_machine_name(f->machines[i]), smc_machine_name(m))) {
      /* A new version replaces it when the fold accepts it too (it keeps
       * every state); any other definition is ignored, as the fold does. */
      if (strcmp(smc_machine_hash(f->machines[i]), smc_machine_hash(m)) &&
          smc_machine_evolves(f->machines[i], m, NULL) == 0) {
        smc_machine_destroy(f->machines[i]);
        f->machines[i] = smc_machine_retain(m);
      }
      return;
    }
  if (f->nmachines == f->capmachines) {
    size_t cap = f->capmachines ? f->capmachines * 2 : 16;
    smc_machine_t **p = realloc(f->machines, cap * sizeof(*p));
    if (!p)
      return;
    f->machines = p;
    f->capmachines = cap;
  }
  f->machines[f->nmachines++] = smc_machine_retain(m);
  /* every outcome of a new machine is exported from 0 (rate() needs the 0) */
  static const char *const outcomes[] = {"committed", "rejected", "expired", "duplicate"};
  for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
    char labels[160];
    snprintf(labels, sizeof labels, "machine=\"%s\",outcome=\"%s\"", smc_machine_name(m),
             outcomes[i]);
    smc_metrics_counter_add("smc_confirmations_total", labels, 0);
  }
}

void smc_gw_catalog_put(gw_follower_t *f, smc_machine_t *m) {
  pthread_mutex_lock(&f->mu);
  catalog_put_locked(f, m);
  pthread_mutex_unlock(&f->mu);
}

smc_machine_t *smc_gw_catalog_get(gw_follower_t *f, const char *name) {
  smc_machine_t *m = NULL;
  pthread_mutex_lock(&f->mu);
  for (size_t i = 0; i < f->nmachines && !m; i++)
    if (!strcmp(smc_machine_name(f->machines[i]), name))
      m = smc_machine_retain(f->machines[i]);
  pthread_mutex_unlock(&f->mu);
  return m;
}

int smc_gw_catalog_get_exists(gw_follower_t *f, const char *name) {
  smc_machine_t *m = smc_gw_catalog_get(f, name);
  smc_machine_destroy(m);
  return m != NULL;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
                json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

json_t *smc_gw_catalog_list(gw_follower_t *f) {
  json_t *arr = json_array();
  pthread_mutex_lock(&f->mu);
  for (size_t i = 0; i < f->nmachines; i++) {
    smc_machine_t *m = f->machines[i];
    const char *d = smc_machine_description(m);
    json_array_append_new(arr, json_pack("{s:s, s:s, s:s?}", "name", smc_machine_name(m), "hash",
                                         smc_machine_hash(m), "description", d));
  }
  pthread_mutex_unlock(&f->mu);
  size_t n = json_array_size(arr);
  json_t **items = malloc((n ? n : 1) * sizeof(*items));
  if (!items)
    return arr;
  for (size_t i = 0; i < n; i++)
    items[i] = json_incref(json_array_get(arr, i));
  qsort(items, n, sizeof(*items), cmp_name);
  json_t *sorted = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(sorted, items[i]);
  free(items);
  json_decref(arr);
  return sorted;
}

/* smc_lru_get of one of the follower's caches under its lock: a new
 * reference, or NULL. */
static json_t *locked_get(gw_follower_t *f, smc_lru_t *lru, const char *key) {
  pthread_mutex_lock(&f->mu);
  json_t *v = smc_lru_get(lru, key);
  pthread_mutex_unlock(&f->mu);
  return v;
}

/* An entry of the proposals or objects LRU as a parsed value: a stored
 * confirmation text is parsed (steals the reference to v). */
static json_t *expand(json_t *v) {
  if (!v || !json_is_string(v))
    return v;
  json_t *c = json_loadb(json_string_value(v), json_string_length(v), 0, NULL);
  json_decref(v);
  return c;
}

json_t *smc_gw_proposal_get(gw_follower_t *f, const char *id) {
  json_t *v = locked_get(f, f->proposals, id);
  if (!v || !json_is_string(v))
    return v;
  json_t *c = expand(v);
  const char *object = json_string_value(json_object_get(c, "object"));
  const char *outcome = json_string_value(json_object_get(c, "outcome"));
  json_t *rec = object && outcome
                    ? json_pack("{s:s, s:s, s:s, s:O?, s:O?, s:O}", "proposal", id, "status",
                                outcome, "object", object, "machine", json_object_get(c, "machine"),
                                "transition", json_object_get(c, "transition"), "confirmation", c)
                    : NULL;
  json_decref(c);
  return rec;
}

/* a, sep and b in one malloc'd string, or NULL. */
static char *join(const char *a, const char *sep, const char *b) {
  size_t n = strlen(a) + strlen(sep) + strlen(b) + 1;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s%s%s", a, sep, b);
  return s;
}

static char *pending_key(const char *object, const char *transition) {
  return join(object, "\n", transition);
}

void smc_gw_proposal_sent(gw_follower_t *f, const char *id, const char *object, const char *machine,
                          const char *transition, const char *status) {
  pthread_mutex_lock(&f->mu);
  json_t *known = smc_lru_get(f->proposals, id);
  /* a stored confirmation (a string) is decided */
  const char *kst = known && !json_is_string(known)
                        ? json_string_value(json_object_get(known, "status"))
                    : known ? "decided"
                            : NULL;
  if (!kst || !strcmp(kst, "unknown") || !strcmp(kst, "pending")) {
    json_t *rec = json_pack("{s:s, s:s, s:s?, s:s?}", "proposal", id, "status", status, "object",
                            object, "machine", machine);
    if (rec && transition)
      json_object_set_new(rec, "transition", json_string(transition));
    if (rec)
      smc_lru_put(f->proposals, id, rec);
    json_decref(rec);
    char *k = transition ? pending_key(object, transition) : NULL;
    json_t *idv = json_string(id);
    if (k && idv)
      smc_lru_put(f->pending, k, idv);
    json_decref(idv);
    free(k);
  }
  json_decref(known);
  pthread_mutex_unlock(&f->mu);
}

int smc_gw_proposal_pending_for(gw_follower_t *f, const char *object, const char *transition,
                                char out[65]) {
  int found = 0;
  char *k = pending_key(object, transition);
  if (!k)
    return 0;
  pthread_mutex_lock(&f->mu);
  json_t *idv = smc_lru_get(f->pending, k);
  if (idv) {
    json_t *rec = smc_lru_get(f->proposals, json_string_value(idv));
    const char *st = rec && !json_is_string(rec) ? json_string_value(json_object_get(rec, "status"))
                                                 : NULL; /* a string is a decided one */
    if (st && (!strcmp(st, "pending") || !strcmp(st, "unknown"))) {
      snprintf(out, 65, "%s", json_string_value(idv));
      found = 1;
    }
    json_decref(rec);
    json_decref(idv);
  }
  pthread_mutex_unlock(&f->mu);
  free(k);
  return found;
}

json_t *smc_gw_object_latest(gw_follower_t *f, const char *object) {
  return expand(locked_get(f, f->objects, object));
}

json_t *smc_gw_object_wait(gw_follower_t *f, const char *object, int64_t after,
                           int64_t deadline_ms) {
  json_t *found = NULL;
  pthread_mutex_lock(&f->mu);
  for (;;) {
    int64_t version = 0;
    json_t *v = smc_lru_get_num(f->objects, object, &version);
    if (v && version > after) {
      found = v;
      break;
    }
    json_decref(v);
    int64_t now = smc_now_ms();
    if (now >= deadline_ms || !atomic_load(&f->run))
      break;
    /* The condition variable uses CLOCK_MONOTONIC (see follower_start). */
    int64_t until = deadline_ms < now + 500 ? deadline_ms : now + 500;
    struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (long)(until % 1000) * 1000000L};
    pthread_cond_timedwait(&f->cond, &f->mu, &ts);
  }
  pthread_mutex_unlock(&f->mu);
  return expand(found);
}

int smc_gw_follower_caught_up(gw_follower_t *f) { return atomic_load(&f->caught_up); }

int smc_gw_follower_running(gw_follower_t *f) { return atomic_load(&f->run); }

/* A record of <prefix>machines: compile and add it to the catalog. */
static void on_machine(gw_follower_t *f, const smc_kafka_msg_t *m) {
  json_t *ev = m->value ? json_loadb(m->value, m->value_len, 0, NULL) : NULL;
  const char *def = json_string_value(json_object_get(ev, "definition"));
  if (def) {
    smc_machine_t *mc = NULL;
    if (smc_machine_compile(def, strlen(def), NULL, NULL, &mc, NULL) == 0) {
      smc_gw_catalog_put(f, mc);
      smc_machine_destroy(mc);
    }
  }
  json_decref(ev);
  if (m->offset + 1 >= f->machines_high)
    atomic_store(&f->caught_up, 1);
}

/*
 * Confirmations are kept as text. The follower sees every confirmation of the
 * cluster but is asked about few of them, so each one is stored as its raw
 * bytes (a jansson string, two allocations) and parsed only when a request
 * reads it. The three fields and the version it needs on the way in are found
 * by a scan of the top level of the text; a text the scan does not take
 * (escapes in those fields, an unusual shape) is parsed with jansson instead.
 * An entry that holds a string is therefore a decided proposal: outcomes are
 * committed, rejected or expired, never pending or unknown.
 */
/* Copy a string value without escapes (raw text p..vend, quotes included)
 * into out (cap bytes with the NUL). */
static int take_string(const char *p, const char *vend, char *out, size_t cap) {
  size_t n = (size_t)(vend - p);
  if (n < 2 || p[0] != '"' || p[n - 1] != '"' || memchr(p + 1, '\\', n - 2) || n - 2 >= cap)
    return -1;
  memcpy(out, p + 1, n - 2);
  out[n - 2] = '\0';
  return 0;
}

typedef struct conf_scan {
  gw_conf_fields_t *cf;
  int seen; /* bits: proposal, object, outcome */
} conf_scan_t;

static int conf_member(const smc_json_member_t *m, void *opaque) {
  conf_scan_t *s = opaque;
  gw_conf_fields_t *cf = s->cf;
  size_t kl = m->key_escaped ? 0 : m->key_len; /* an escaped key is none of ours */
  const char *k = m->key;
  int r = 0;
  if (kl == 8 && !memcmp(k, "proposal", 8))
    r = take_string(m->value, m->value_end, cf->proposal, sizeof cf->proposal), s->seen |= 1;
  else if (kl == 6 && !memcmp(k, "object", 6))
    r = take_string(m->value, m->value_end, cf->object, sizeof cf->object), s->seen |= 2;
  else if (kl == 7 && !memcmp(k, "outcome", 7))
    r = take_string(m->value, m->value_end, cf->outcome, sizeof cf->outcome), s->seen |= 4;
  else if (kl == 7 && !memcmp(k, "version", 7)) {
    char *e = NULL;
    long long n = strtoll(m->value, &e, 10);
    if (e != m->value_end)
      return -1;
    cf->version = n;
  }
  return r;
}

int smc_gw_scan_confirmation(const char *text, size_t len, gw_conf_fields_t *cf) {
  cf->proposal[0] = cf->object[0] = cf->outcome[0] = '\0';
  cf->version = 0;
  conf_scan_t s = {cf, 0};
  if (smc_json_members(text, len, conf_member, &s))
    return -1;
  return s.seen == 7 ? 0 : -1;
}

/* The same fields from a parsed confirmation. */
static int fields_of(const json_t *c, gw_conf_fields_t *cf) {
  const char *id = json_string_value(json_object_get(c, "proposal"));
  const char *object = json_string_value(json_object_get(c, "object"));
  const char *outcome = json_string_value(json_object_get(c, "outcome"));
  if (!id || !object || !outcome || strlen(id) > SMC_GW_ID_MAX || strlen(object) > SMC_GW_ID_MAX ||
      strlen(outcome) >= sizeof cf->outcome)
    return -1;
  strcpy(cf->proposal, id);
  strcpy(cf->object, object);
  strcpy(cf->outcome, outcome);
  cf->version = json_integer_value(json_object_get(c, "version"));
  return 0;
}

/* Record the proposal's outcome and the object's latest committed version,
 * then wake waiters; a confirmation read from the topic (followed) also
 * answers the requests waiting for it (answers.h). */
static void record_text(gw_follower_t *f, const char *text, size_t len, int followed) {
  gw_conf_fields_t cf;
  if (smc_gw_scan_confirmation(text, len, &cf) < 0) {
    json_t *c = json_loadb(text, len, 0, NULL);
    int ok = c && fields_of(c, &cf) == 0;
    json_decref(c);
    if (!ok)
      return;
  }
  if (followed)
    smc_answers_decided(f->gw->answers, cf.proposal, text, len, 0);
  json_t *raw = json_stringn_nocheck(text, len);
  if (!raw)
    return;
  pthread_mutex_lock(&f->mu);
  smc_lru_put(f->proposals, cf.proposal, raw);
  if (!strcmp(cf.outcome, "committed")) {
    int64_t have = 0;
    json_t *prev = smc_lru_get_num(f->objects, cf.object, &have);
    if (!prev || have < cf.version)
      smc_lru_put_num(f->objects, cf.object, raw, cf.version);
    json_decref(prev);
  }
  pthread_cond_broadcast(&f->cond);
  pthread_mutex_unlock(&f->mu);
  json_decref(raw);
}

/* A confirmation: record it. */
static void on_confirmation(gw_follower_t *f, const smc_kafka_msg_t *m) {
  record_text(f, m->value, m->value_len, 1);
}

void smc_gw_record_confirmation(gw_follower_t *f, const char *text, size_t len) {
  record_text(f, text, len, 0);
}

static void *follower_main(void *arg) {
  gw_follower_t *f = arg;
  while (atomic_load(&f->run)) {
    smc_kafka_msg_t m;
    if (!smc_kafka_consume(f->rk, 100, &m))
      continue;
    if (m.eof) {
      if (m.topic && !strcmp(m.topic, f->t_machines))
        atomic_store(&f->caught_up, 1);
    } else if (!m.error && m.topic) {
      if (!strcmp(m.topic, f->t_machines))
        on_machine(f, &m);
      else if (!strcmp(m.topic, f->t_nodes))
        smc_gw_nodes_put(f->gw->nodes, m.key, m.key_len, m.value, m.value_len);
      else
        on_confirmation(f, &m);
    }
    smc_kafka_msg_release(&m);
  }
  return NULL;
}

/* Consumer with the passthrough properties; no group membership is used
 * (partitions are assigned by hand) and nothing is committed. */
static smc_kafka_t *make_consumer(smc_gateway_t *gw, smc_error_t *err) {
  char errstr[512];
  char gid[128];
  snprintf(gid, sizeof(gid), "%sgateway-%s-%d", gw->prefix, gw->node_id, (int)getpid());
  /* offsets are always given: an out-of-range one means "from the end" */
  static const char *const base[] = {"auto.offset.reset", "latest", NULL};
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_CONSUMER,
                           .bootstrap = gw->bootstrap,
                           .group_id = gid,
                           .client_id = "smc-gateway",
                           .eof = 1,
                           .base = base,
                           .props = (const char *const *)gw->kafka_props};
  smc_kafka_t *rk = smc_kafka_open(&spec, errstr, sizeof errstr);
  if (!rk)
    smc_error_set(err, SMC_EKAFKA, NULL, "gateway consumer: %s", errstr);
  return rk;
}

/* Partition count of topic, or -1 after trying for up to timeout_ms. */
static int partition_count(smc_kafka_t *rk, const char *topic, int timeout_ms) {
  int64_t deadline = smc_now_ms() + timeout_ms;
  do {
    int32_t n = smc_kafka_partitions(rk, topic, 2000);
    if (n > 0)
      return n;
    usleep(200 * 1000);
  } while (smc_now_ms() < deadline);
  return -1;
}

/* Assign <prefix>machines from the beginning and every partition of
 * <prefix>confirmations from its high watermark now. */
static int assign(gw_follower_t *f, smc_error_t *err) {
  int nconf = partition_count(f->rk, f->t_confirmations, 15000);
  int nmach = partition_count(f->rk, f->t_machines, 5000);
  if (nconf < 0 || nmach < 0)
    return smc_error_set(err, SMC_EKAFKA, NULL,
                         "topics %s / %s not found (run `smc topics create`)", f->t_machines,
                         f->t_confirmations);
  /* the node table, when the cluster has it (created by `smc topics create`) */
  int nnodes = partition_count(f->rk, f->t_nodes, 2000);
  smc_kafka_tp_t *tp = calloc((size_t)(nconf + nmach + (nnodes > 0 ? nnodes : 0)) + 1, sizeof *tp);
  if (!tp)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  int n = 0;
  for (int p = 0; p < nnodes; p++)
    tp[n++] = (smc_kafka_tp_t){f->t_nodes, p, SMC_KAFKA_OFFSET_BEGINNING};
  f->machines_high = 0;
  for (int p = 0; p < nmach; p++) {
    int64_t lo = 0, hi = 0;
    smc_kafka_watermarks(f->rk, f->t_machines, p, &lo, &hi, 5000);
    if (hi > f->machines_high)
      f->machines_high = hi;
    tp[n++] = (smc_kafka_tp_t){f->t_machines, p, SMC_KAFKA_OFFSET_BEGINNING};
  }
  if (f->machines_high == 0)
    atomic_store(&f->caught_up, 1);
  for (int p = 0; p < nconf; p++) {
    int64_t lo = 0, hi = SMC_KAFKA_OFFSET_END;
    if (smc_kafka_watermarks(f->rk, f->t_confirmations, p, &lo, &hi, 5000) < 0)
      hi = SMC_KAFKA_OFFSET_END;
    tp[n++] = (smc_kafka_tp_t){f->t_confirmations, p, hi};
  }
  char why[256];
  int rc = smc_kafka_assign(f->rk, tp, n, why, sizeof why);
  free(tp);
  if (rc < 0)
    return smc_error_set(err, SMC_EKAFKA, NULL, "assign: %s", why);
  return 0;
}

int smc_gw_follower_start(smc_gateway_t *gw, gw_follower_t **out, smc_error_t *err) {
  int rc = SMC_ENOMEM;
  gw_follower_t *f = calloc(1, sizeof(*f));
  if (!f)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  f->gw = gw;
  pthread_mutex_init(&f->mu, NULL);
  smc_cond_init_monotonic(&f->cond);
  f->t_machines = join(gw->prefix, "", "machines");
  f->t_confirmations = join(gw->prefix, "", "confirmations");
  f->t_nodes = join(gw->prefix, "", "nodes");
  f->proposals = smc_lru_new(PROPOSALS_MAX);
  f->objects = smc_lru_new(OBJECTS_MAX);
  f->pending = smc_lru_new(PENDING_MAX);
  if (!f->t_machines || !f->t_confirmations || !f->t_nodes || !f->proposals || !f->objects ||
      !f->pending) {
    smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  /* The byte budget: most of it for proposal outcomes (GET /proposal, and
   * what a waiting PUT returns), a quarter for the latest version of each
   * object, the rest for pending proposal ids. */
  smc_lru_set_max_bytes(f->proposals, gw->cache_bytes / 8 * 5);
  smc_lru_set_max_bytes(f->objects, gw->cache_bytes / 4);
  smc_lru_set_max_bytes(f->pending, gw->cache_bytes / 8);
  if (!(f->rk = make_consumer(gw, err))) {
    rc = SMC_EKAFKA;
    goto fail;
  }
  if ((rc = assign(f, err)) < 0)
    goto fail;
  atomic_store(&f->run, 1);
  if (pthread_create(&f->thread, NULL, follower_main, f)) {
    rc = smc_error_set(err, SMC_EIO, NULL, "cannot start the follower thread");
    goto fail;
  }
  f->thread_started = 1;
  *out = f;
  return 0;
fail:
  smc_gw_follower_stop(f);
  return rc < 0 ? rc : SMC_EINTERNAL;
}

void smc_gw_follower_halt(gw_follower_t *f) {
  atomic_store(&f->run, 0);
  pthread_mutex_lock(&f->mu);
  pthread_cond_broadcast(&f->cond);
  pthread_mutex_unlock(&f->mu);
}

void smc_gw_follower_stop(gw_follower_t *f) {
  if (!f)
    return;
  smc_gw_follower_halt(f);
  if (f->thread_started)
    pthread_join(f->thread, NULL);
  smc_kafka_close(f->rk);
  for (size_t i = 0; i < f->nmachines; i++)
    smc_machine_destroy(f->machines[i]);
  free(f->machines);
  smc_lru_destroy(f->proposals);
  smc_lru_destroy(f->objects);
  smc_lru_destroy(f->pending);
  free(f->t_machines);
  free(f->t_confirmations);
  free(f->t_nodes);
  pthread_cond_destroy(&f->cond);
  pthread_mutex_destroy(&f->mu);
  free(f);
}
