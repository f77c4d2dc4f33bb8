/*
 * The fold (include/smc/fold.h; protocol.md, "The fold"): per record, the
 * clock, due timers, the checks, and the dispatch by event type. Decisions
 * on objects are in fold_decide.c, stored records in fold_state.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "core/fold_int.h"
#include "core/digest.h"
#include "core/json_scan.h"
#include "core/util.h"
#include "core/vote_sig.h"

static void settings_default(fold_ctx_t *c, const smc_fold_t *f);
static int meta_get(smc_kv_t *kv, int32_t part, int64_t *applied, int64_t *clock,
                    int64_t *next_timer, fold_ctx_t *ctx);

void smc_fold_config_default(smc_fold_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->partitions = 1;
  cfg->dedup_window_ms = 7LL * 24 * 3600 * 1000;
  cfg->max_event_bytes = 1 << 20;
  cfg->max_queue = 1000;
  smc_limits_default(&cfg->limits);
}

int smc_fold_new(const smc_fold_config_t *cfg, smc_fold_t **out) {
  *out = NULL;
  if (!cfg || cfg->partitions < 1 || cfg->dedup_window_ms < 0 || cfg->max_queue < 1)
    return SMC_EINVALID_ARGUMENT;
  smc_fold_t *f = calloc(1, sizeof(*f));
  if (!f)
    return SMC_ENOMEM;
  f->cfg = *cfg;
  f->cfg.registration_key = NULL;
  if (cfg->registration_key && *cfg->registration_key) {
    smc_error_t err;
    smc_error_clear(&err);
    if (smc_vote_sig_parse_public(cfg->registration_key, &f->reg_key, &err)) {
      free(f);
      return SMC_EINVALID_ARGUMENT;
    }
  }
  *out = f;
  return 0;
}

void smc_fold_destroy(smc_fold_t *f) {
  if (!f)
    return;
  for (size_t i = 0; i < f->ncache; i++)
    smc_machine_destroy(f->cache[i].m);
  free(f->cache);
  EVP_PKEY_free(f->reg_key);
  smc_buf_close(&f->key);
  smc_buf_close(&f->conf);
  smc_buf_close(&f->rec);
  free(f);
}

void smc_fold_set_logger(smc_fold_t *f, void (*log)(void *opaque, const smc_fold_log_t *line),
                         void *opaque) {
  f->log = log;
  f->log_opaque = opaque;
}

static void fold_notev(fold_ctx_t *c, int level, smc_fold_note_t note, int code, const char *fmt,
                       va_list ap) {
  if (!c->f->log)
    return;
  char msg[1024];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  smc_fold_log_t line = {.level = level,
                         .partition = c->part,
                         .offset = c->offset,
                         .note = note,
                         .code = code,
                         .msg = msg};
  c->f->log(c->f->log_opaque, &line);
}

void fold_note(fold_ctx_t *c, int level, smc_fold_note_t note, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fold_notev(c, level, note, code, fmt, ap);
  va_end(ap);
}

void fold_log(fold_ctx_t *c, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fold_notev(c, level, SMC_FOLD_NOTE_NONE, 0, fmt, ap);
  va_end(ap);
}

int fold_emit(fold_ctx_t *c, smc_output_t *o, const char *json, size_t len) {
  if (c->rc)
    return c->rc;
  if (!c->emit)
    return 0;
  o->partition = c->part;
  o->offset = c->offset;
  o->json = json;
  o->json_len = len;
  if (!o->key)
    o->key = "";
  if (!o->id)
    o->id = "";
  if (o->kind == SMC_OUT_CONFIRMATION && !o->machine)
    o->machine = "";
  int rc = c->emit(c->opaque, o);
  if (rc)
    c->rc = rc;
  return rc;
}

/* ---- compiled machines, cached by hash ---- */

static size_t cache_pos(const smc_fold_t *f, const char *hash, int *found) {
  size_t lo = 0, hi = f->ncache;
  *found = 0;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(f->cache[mid].hash, hash);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static smc_machine_t *cache_find(const smc_fold_t *f, const char *hash) {
  int found;
  size_t i = cache_pos(f, hash, &found);
  return found ? f->cache[i].m : NULL;
}

/* Keep m (a new reference is taken) under its hash. */
static int cache_add(smc_fold_t *f, smc_machine_t *m) {
  const char *hash = smc_machine_hash(m);
  int found;
  size_t i = cache_pos(f, hash, &found);
  if (found)
    return 0;
  if (smc_array_reserve(&f->cache, &f->capcache, f->ncache + 1, sizeof(*f->cache), 8))
    return SMC_ENOMEM;
  memmove(f->cache + i + 1, f->cache + i, (f->ncache - i) * sizeof(*f->cache));
  snprintf(f->cache[i].hash, sizeof(f->cache[i].hash), "%s", hash);
  f->cache[i].m = smc_machine_retain(m);
  f->ncache++;
  return 0;
}

static void key_machine(fold_ctx_t *c, const char *name) {
  fold_key_begin(c);
  smc_buf_adds(&c->key, name);
}

static void key_definition(fold_ctx_t *c, const char *hash) {
  fold_key_begin(c);
  smc_buf_addc(&c->key, '\0');
  smc_buf_adds(&c->key, hash);
}

/* The hash registered under name in this partition: 1 found (hash filled),
 * 0 not, negative on failure. */
static int machine_hash(fold_ctx_t *c, const char *name, char hash[65]) {
  key_machine(c, name);
  void *v;
  size_t vl;
  int found = fold_get(c, SMC_CF_MACHINES, &v, &vl);
  if (found <= 0)
    return found;
  if (vl != 64) {
    free(v);
    return fold_fail(c, SMC_ESTORE);
  }
  memcpy(hash, v, 64);
  hash[64] = '\0';
  free(v);
  return 1;
}

/* The compiled machine registered as name in this partition (owned by the
 * cache), or NULL (unknown, or failure in c->rc). */
smc_machine_t *fold_machine_get(fold_ctx_t *c, const char *name) {
  char hash[65];
  if (machine_hash(c, name, hash) != 1)
    return NULL;
  smc_machine_t *m = cache_find(c->f, hash);
  if (m)
    return m;
  key_definition(c, hash);
  void *v;
  size_t vl;
  int rc = fold_get(c, SMC_CF_MACHINES, &v, &vl);
  if (rc <= 0) {
    if (rc == 0)
      fold_fail(c, SMC_ESTORE);
    return NULL;
  }
  /* Registered once, so it compiles now whatever the definition limit
   * has become since (a limit applies to registrations, not to history). */
  smc_limits_t lim = c->set.limits;
  lim.definition_max_bytes = SIZE_MAX;
  rc = smc_machine_compile(v, vl, NULL, &lim, &m, NULL);
  free(v);
  if (rc) {
    fold_log(c, 0, "stored machine '%s' no longer compiles", name);
    fold_fail(c, SMC_EINTERNAL);
    return NULL;
  }
  rc = cache_add(c->f, m);
  smc_machine_destroy(m);
  if (rc) {
    fold_fail(c, rc);
    return NULL;
  }
  return cache_find(c->f, hash);
}

/* Register a machine definition in c's partition (protocol.md step 3).
 * name and hash may be NULL (taken from the compiled definition). */
static int register_machine(fold_ctx_t *c, const char *name, const char *hash, const char *def,
                            size_t len, const char *file, smc_diags_t *diags, smc_error_t *err) {
  char have[65];
  int known = name ? machine_hash(c, name, have) : 0;
  if (known < 0)
    return c->rc;
  if (known && hash && !strcmp(hash, have))
    return 0;
  smc_machine_t *m = hash ? cache_find(c->f, hash) : NULL;
  int own = 0;
  if (!m) {
    int rc = smc_machine_compile(def, len, file, &c->set.limits, &m, diags);
    if (rc == SMC_ENOMEM)
      return fold_fail(c, rc);
    if (rc)
      return smc_error_set(err, SMC_EINVALID_MACHINE, NULL,
                           "the definition of machine '%s' does not compile", name ? name : "?");
    own = 1;
  }
  int rc = 0;
  const char *mname = smc_machine_name(m), *mhash = smc_machine_hash(m);
  if (name && strcmp(name, mname)) {
    rc = smc_error_set(err, SMC_EINVALID_MACHINE, "name",
                       "the registration names '%s' but the definition is '%s'", name, mname);
    goto done;
  }
  if (hash && strcmp(hash, mhash)) {
    rc = smc_error_set(err, SMC_EINVALID_MACHINE, "hash",
                       "hash %s does not match the definition (%s)", hash, mhash);
    goto done;
  }
  if (!name && (known = machine_hash(c, mname, have)) < 0) {
    rc = c->rc;
    goto done;
  }
  if (known && !strcmp(have, mhash))
    goto done;
  if (known) { /* a new version: in force from here on, if it keeps every state */
    smc_machine_t *cur = fold_machine_get(c, mname);
    if (!cur) {
      rc = c->rc ? c->rc : SMC_ESTORE;
      goto done;
    }
    if ((rc = smc_machine_evolves(cur, m, err)))
      goto done;
  }
  if ((rc = cache_add(c->f, m)))
    goto done;
  key_machine(c, mname);
  if ((rc = fold_fail(c, smc_kv_put(c->kv, SMC_CF_MACHINES, c->key.p, c->key.len, mhash, 64))))
    goto done;
  key_definition(c, mhash);
  rc = fold_fail(c, smc_kv_put(c->kv, SMC_CF_MACHINES, c->key.p, c->key.len, def, len));
done:
  if (own)
    smc_machine_destroy(m);
  return rc;
}

/* A fresh context for partition of kv: zeroed, with the settings in force
 * there (defaults unless a settings event set them) and the partition's
 * applied offset, clock and next timer. 0 or an error of the store. */
static int ctx_load(fold_ctx_t *c, smc_fold_t *f, smc_kv_t *kv, int32_t partition, int64_t *applied,
                    int64_t *clock, int64_t *next_timer) {
  memset(c, 0, sizeof(*c));
  settings_default(c, f);
  return meta_get(kv, partition, applied, clock, next_timer, c);
}

int smc_fold_register_machine(smc_fold_t *f, smc_kv_t *kv, int32_t partition, const char *text,
                              size_t len, const char *file, smc_diags_t *diags, smc_error_t *err) {
  fold_ctx_t c;
  int64_t applied, clock, next_timer;
  int rc = ctx_load(&c, f, kv, partition, &applied, &clock, &next_timer);
  if (rc)
    return rc;
  c.f = f, c.kv = kv, c.part = partition, c.offset = -1;
  smc_buf_init(&c.key);
  rc = register_machine(&c, NULL, NULL, text, len, file, diags, err);
  smc_buf_close(&c.key);
  return rc;
}

/* ---- settings: the fold limits in force in a partition ---- */

static void settings_default(fold_ctx_t *c, const smc_fold_t *f) {
  c->set.max_event_bytes = f->cfg.max_event_bytes;
  c->set.max_queue = f->cfg.max_queue;
  c->set.limits = f->cfg.limits;
  c->has_set = 0;
}

/* ---- meta: applied offset and clock ---- */

#define META_SETTINGS_LEN (48 + 7 * 8)

/* The partition's meta record: applied offset, clock, a lower bound of
 * the earliest timer deadline (0 = no timer; a record written without it
 * reads as 1, "look") and the open expiry bucket (fold_int.h). ctx may be
 * NULL when only the first fields are wanted. */
static int meta_get(smc_kv_t *kv, int32_t part, int64_t *applied, int64_t *clock,
                    int64_t *next_timer, fold_ctx_t *ctx) {
  uint8_t k[5];
  smc_be32(k, (uint32_t)part);
  k[4] = 'a';
  void *v = NULL;
  size_t vl = 0;
  *applied = *clock = *next_timer = 0;
  int rc = smc_kv_get(kv, SMC_CF_META, k, 5, &v, &vl);
  if (rc == SMC_ENOT_FOUND)
    return 0;
  if (rc)
    return rc;
  if (vl != 16 && vl != 24 && vl != 48 && vl != META_SETTINGS_LEN) {
    free(v);
    return SMC_ESTORE;
  }
  const uint8_t *b = v;
  *applied = (int64_t)smc_get_be64(b);
  *clock = (int64_t)smc_get_be64(b + 8);
  *next_timer = vl >= 24 ? (int64_t)smc_get_be64(b + 16) : 1;
  if (ctx && vl >= 48) {
    ctx->exp_time = (int64_t)smc_get_be64(b + 24);
    ctx->exp_seq = (int64_t)smc_get_be64(b + 32);
    ctx->exp_n = (int64_t)smc_get_be64(b + 40);
  }
  if (ctx && vl == META_SETTINGS_LEN) {
    const uint8_t *q = b + 48;
    fold_settings_t *s = &ctx->set;
    s->max_event_bytes = (size_t)smc_get_be64(q);
    s->max_queue = (size_t)smc_get_be64(q + 8);
    s->limits.expr_steps = smc_get_be64(q + 16);
    s->limits.regex_match_limit = (uint32_t)smc_get_be64(q + 24);
    s->limits.regex_depth_limit = (uint32_t)smc_get_be64(q + 32);
    s->limits.definition_max_bytes = (size_t)smc_get_be64(q + 40);
    s->limits.data_max_bytes = (size_t)smc_get_be64(q + 48);
    ctx->has_set = 1;
  }
  free(v);
  return 0;
}

static int meta_put(fold_ctx_t *c, int64_t applied) {
  uint8_t k[5], v[META_SETTINGS_LEN];
  smc_be32(k, (uint32_t)c->part);
  k[4] = 'a';
  smc_be64(v, (uint64_t)applied);
  smc_be64(v + 8, (uint64_t)c->clock);
  smc_be64(v + 16, (uint64_t)c->next_timer);
  smc_be64(v + 24, (uint64_t)c->exp_time);
  smc_be64(v + 32, (uint64_t)c->exp_seq);
  smc_be64(v + 40, (uint64_t)c->exp_n);
  if (!c->has_set)
    return smc_kv_put(c->kv, SMC_CF_META, k, 5, v, 48);
  const fold_settings_t *s = &c->set;
  smc_be64(v + 48, (uint64_t)s->max_event_bytes);
  smc_be64(v + 56, (uint64_t)s->max_queue);
  smc_be64(v + 64, s->limits.expr_steps);
  smc_be64(v + 72, (uint64_t)s->limits.regex_match_limit);
  smc_be64(v + 80, (uint64_t)s->limits.regex_depth_limit);
  smc_be64(v + 88, (uint64_t)s->limits.definition_max_bytes);
  smc_be64(v + 96, (uint64_t)s->limits.data_max_bytes);
  return smc_kv_put(c->kv, SMC_CF_META, k, 5, v, META_SETTINGS_LEN);
}

int smc_fold_applied(smc_fold_t *f, smc_kv_t *kv, int32_t partition, int64_t *next) {
  (void)f;
  int64_t clock, nt;
  return meta_get(kv, partition, next, &clock, &nt, NULL);
}

int smc_fold_clock(smc_fold_t *f, smc_kv_t *kv, int32_t partition, int64_t *clock) {
  (void)f;
  int64_t applied, nt;
  return meta_get(kv, partition, &applied, clock, &nt, NULL);
}

/* First timer deadline of partition: 1 (set), 0 none, negative failure. */
static int first_deadline(smc_kv_t *kv, int32_t partition, int64_t *deadline) {
  uint8_t from[4], lim[4];
  smc_be32(from, (uint32_t)partition);
  smc_be32(lim, (uint32_t)partition + 1);
  void *k = NULL, *v = NULL;
  size_t kl = 0, vl = 0;
  int rc = smc_kv_seek(kv, SMC_CF_TIMERS, from, 4, partition == INT32_MAX ? NULL : lim, 4, &k, &kl,
                       &v, &vl);
  if (rc == SMC_ENOT_FOUND)
    return 0;
  if (rc)
    return rc;
  rc = kl >= 12 ? 1 : SMC_ESTORE;
  if (rc == 1)
    *deadline = (int64_t)smc_get_be64((uint8_t *)k + 4);
  free(k);
  free(v);
  return rc;
}

int smc_fold_next_deadline(smc_fold_t *f, smc_kv_t *kv, int32_t partition, int64_t *deadline) {
  int64_t bound = 0;
  int rc = smc_fold_timer_bound(f, kv, partition, &bound);
  if (rc <= 0)
    return rc; /* no timer: nothing to seek */
  return first_deadline(kv, partition, deadline);
}

int smc_fold_timer_bound(smc_fold_t *f, smc_kv_t *kv, int32_t partition, int64_t *bound) {
  (void)f;
  int64_t applied, clock, next_timer;
  int rc = meta_get(kv, partition, &applied, &clock, &next_timer, NULL);
  if (rc)
    return rc;
  *bound = next_timer;
  return next_timer != 0;
}

/* ---- timers ---- */

/* Fire every timer with deadline <= clock, in (deadline, object, kind)
 * order: the key order of SMC_CF_TIMERS. */
static int fire_timers(fold_ctx_t *c) {
  if (c->next_timer == 0 || c->clock < c->next_timer)
    return 0; /* nothing can be due */
  uint8_t from[4], lim[12];
  smc_be32(from, (uint32_t)c->part);
  smc_be32(lim, (uint32_t)c->part);
  smc_be64(lim + 4, (uint64_t)c->clock + 1);
  while (!c->rc) {
    void *k = NULL, *v = NULL;
    size_t kl = 0, vl = 0;
    int rc = smc_kv_seek(c->kv, SMC_CF_TIMERS, from, 4, lim, 12, &k, &kl, &v, &vl);
    if (rc == SMC_ENOT_FOUND)
      break;
    if (rc)
      return fold_fail(c, rc);
    rc = smc_kv_del(c->kv, SMC_CF_TIMERS, k, kl);
    const uint8_t *kb = k;
    char *object = kl >= 14 ? strndup((const char *)kb + 12, kl - 14) : NULL;
    int64_t deadline = kl >= 12 ? (int64_t)smc_get_be64(kb + 4) : 0;
    char kind = kl >= 14 ? (char)kb[kl - 1] : 0;
    free(k);
    fold_obj_t o;
    memset(&o, 0, sizeof(o));
    if (rc || !object) {
      free(v);
      free(object);
      return fold_fail(c, rc ? rc : SMC_ESTORE);
    }
    rc = fold_obj_load(c, object, &o);
    free(object);
    if (rc == 0) {
      if (kind == 'v' && o.vote_deadline == deadline) {
        char *id = strndup(v, vl);
        if (id)
          fold_fire_vote_timeout(c, &o, id);
        else
          fold_fail(c, SMC_ENOMEM);
        free(id);
      } else if (kind == 'a' && o.timer_deadline == deadline && vl == 16) {
        fold_fire_inactivity(c, &o, (int64_t)smc_get_be64(v),
                             (int64_t)smc_get_be64((uint8_t *)v + 8));
      }
      if (!c->rc)
        fold_obj_save(c, &o);
    }
    fold_obj_close(&o);
    free(v);
  }
  if (!c->rc) { /* the exact bound again: the earliest timer left */
    int64_t d = 0;
    int rc = first_deadline(c->kv, c->part, &d);
    if (rc < 0)
      return fold_fail(c, rc);
    c->next_timer = rc == 1 ? d : 0;
  }
  return c->rc;
}

/* ---- events ---- */

/* Emit text (malloc'd, consumed; NULL: failed, recorded by fold_fail) as
 * the reply to ev, keyed by key. */
static int reply_with(fold_ctx_t *c, const smc_event_t *ev, const char *key, char *text) {
  if (!text)
    return c->rc ? c->rc : SMC_ENOMEM;
  smc_output_t o = {.kind = SMC_OUT_REPLY, .key = key, .id = ev->id, .reply_to = ev->reply_to};
  int rc = fold_emit(c, &o, text, strlen(text));
  free(text);
  return rc;
}

/* The object's fields of a read reply into j ("version" always; the rest
 * when found): 0, or negative when the state cannot be read (c->rc). */
static int object_fields(fold_ctx_t *c, const char *object, json_t *j, int *found) {
  fold_obj_t o;
  int rc = fold_obj_load(c, object, &o);
  if (rc && rc != SMC_ENOT_FOUND) {
    fold_obj_close(&o);
    return fold_fail(c, rc);
  }
  *found = rc == 0 && o.version > 0;
  json_object_set_new(j, "version", json_integer(*found ? o.version : 0));
  if (*found) {
    json_object_set_new(j, "machine", json_string(o.machine));
    json_object_set_new(j, "state", json_string(o.state));
    json_object_set_new(j, "data", smc_json_loads(o.data, 0));
    json_object_set_new(j, "checksum", json_string(o.checksum));
    json_object_set_new(j, "created", json_integer(o.created));
    json_object_set_new(j, "updated", json_integer(o.updated));
  }
  fold_obj_close(&o);
  return 0;
}

int smc_fold_read(smc_fold_t *f, smc_kv_t *kv, int32_t partition, const char *object, char **json) {
  *json = NULL;
  if (!f || !kv || !object || partition < 0 || partition >= f->cfg.partitions)
    return SMC_EINVALID_ARGUMENT;
  int64_t applied, clock, next_timer;
  int rc = meta_get(kv, partition, &applied, &clock, &next_timer, NULL);
  if (rc)
    return rc;
  fold_ctx_t c;
  memset(&c, 0, sizeof(c));
  c.f = f, c.kv = kv, c.part = partition, c.offset = applied - 1, c.clock = clock;
  smc_buf_init(&c.key);
  int found = 0;
  json_t *j = json_object();
  if (!j || object_fields(&c, object, j, &found) < 0) {
    json_decref(j);
    smc_buf_close(&c.key);
    return c.rc ? c.rc : SMC_ENOMEM;
  }
  smc_buf_close(&c.key);
  json_object_set_new(j, "type", json_string("read"));
  json_object_set_new(j, "object", json_string(object));
  json_object_set_new(j, "found", json_boolean(found));
  json_object_set_new(j, "offset", json_integer(applied - 1));
  json_object_set_new(j, "time", json_integer(clock));
  *json = smc_json_canonical(j);
  json_decref(j);
  return *json ? 0 : SMC_ENOMEM;
}

json_t *fold_error_json(const smc_error_t *err) {
  return json_pack("{s:s,s:s,s:s}", "code", smc_code_name(err->code), "message", err->message,
                   "path", err->path);
}

char *fold_answer_text(fold_ctx_t *c, json_t *j, const char *correlation) {
  if (correlation)
    json_object_set_new(j, "correlation", json_string(correlation));
  json_object_set_new(j, "offset", json_integer(c->offset));
  json_object_set_new(j, "time", json_integer(c->clock));
  char *text = smc_json_canonical(j);
  json_decref(j);
  if (!text)
    fold_fail(c, SMC_ENOMEM);
  return text;
}

static int read_reply(fold_ctx_t *c, const smc_event_t *ev, const smc_error_t *err) {
  int found = 0;
  json_t *j = json_object();
  json_object_set_new(j, "type", json_string("read"));
  json_object_set_new(j, "id", json_string(ev->id));
  json_object_set_new(j, "object", json_string(ev->object));
  if (err) {
    json_object_set_new(j, "error", fold_error_json(err));
  } else if (object_fields(c, ev->object, j, &found) < 0) {
    json_decref(j);
    return c->rc;
  }
  json_object_set_new(j, "found", json_boolean(found));
  return reply_with(c, ev, ev->object, fold_answer_text(c, j, ev->correlation));
}

/* An event that fails the checks: answered where it can be addressed,
 * logged otherwise. */
static int bad_event(fold_ctx_t *c, const smc_event_t *ev, const smc_error_t *err) {
  if (ev->type == SMC_EV_PROPOSAL && ev->id && ev->object)
    return fold_reject_unrecorded(c, ev, err);
  if (ev->type == SMC_EV_READ && ev->id && ev->object)
    return read_reply(c, ev, err);
  fold_note(c, 1, SMC_FOLD_NOTE_EVENT_DROPPED, err->code, "%s event dropped: %s: %s",
            ev->type ? smc_event_type_name(ev->type) : "unreadable", smc_code_name(err->code),
            err->message);
  return 0;
}

/* The machine of a stored confirmation, unless it was rejected for naming an
 * unknown one (then the name is the proposer's, not a machine's). */
static const char *known_machine(const json_t *conf) {
  const char *code = json_string_value(json_object_get(json_object_get(conf, "error"), "code"));
  if (code && !strcmp(code, "unknown_machine"))
    return NULL;
  return json_string_value(json_object_get(conf, "machine"));
}

/* The strings of the array a as an array of pointers into a (malloc'd,
 * *n of them; NULL when there are none or on failure, then *n is 0 or
 * SIZE_MAX). */
static const char **strings_of(const json_t *a, size_t *n) {
  *n = json_array_size(a);
  const char **v = *n ? malloc(*n * sizeof *v) : NULL;
  if (*n && !v) {
    *n = SIZE_MAX;
    return NULL;
  }
  for (size_t i = 0; i < *n; i++) {
    const char *name = json_string_value(json_array_get(a, i));
    v[i] = name ? name : "";
  }
  return v;
}

/* Answer a proposal id decided before with its stored confirmation conf,
 * marked as a duplicate; the typed fields are the original decision's. */
static int duplicate(fold_ctx_t *c, const smc_event_t *ev, const char *conf) {
  json_t *j = smc_json_loads(conf, 0);
  if (!j)
    return fold_fail(c, SMC_ESTORE);
  json_object_set_new(j, "duplicate", json_true());
  if (ev->correlation)
    json_object_set_new(j, "correlation", json_string(ev->correlation));
  char *text = smc_json_canonical(j);
  const char *outcome = json_string_value(json_object_get(j, "outcome"));
  json_t *votes = json_object_get(j, "votes");
  smc_output_t o = {.kind = SMC_OUT_CONFIRMATION,
                    .key = ev->object,
                    .id = ev->id,
                    .reply_to = ev->reply_to,
                    .machine = known_machine(j),
                    .outcome = outcome ? outcome : "rejected",
                    .duplicate = 1,
                    .version = json_integer_value(json_object_get(j, "version"))};
  const char **acc = strings_of(json_object_get(votes, "accept"), &o.naccept);
  const char **rej = strings_of(json_object_get(votes, "reject"), &o.nreject);
  o.accept = acc, o.reject = rej;
  int rc = text && o.naccept != SIZE_MAX && o.nreject != SIZE_MAX
               ? fold_emit(c, &o, text, strlen(text))
               : fold_fail(c, SMC_ENOMEM);
  free(acc);
  free(rej);
  json_decref(j);
  free(text);
  return rc;
}

/* 1 when json_loads(smc_json_canonical(v)) gives v again member for member
 * (same order): no reals (canonical text turns 1.0 into 1) and the keys of
 * every object already in sorted order. */
static int reparses_same(const json_t *v) {
  if (json_is_real(v))
    return 0;
  if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++)
      if (!reparses_same(json_array_get(v, i)))
        return 0;
  } else if (json_is_object(v)) {
    const char *k, *prev = NULL;
    json_t *e;
    json_object_foreach((json_t *)v, k, e) {
      if ((prev && strcmp(prev, k) >= 0) || !reparses_same(e))
        return 0;
      prev = k;
    }
  }
  return 1;
}

static int proposal(fold_ctx_t *c, const smc_event_t *ev) {
  int st = 0;
  char *conf = NULL;
  if (fold_decided_get(c, ev->id, &st, &conf))
    return c->rc;
  if (st == 'D') {
    int rc = duplicate(c, ev, conf);
    free(conf);
    return rc;
  }
  if (st == 'Q') {
    fold_log(c, 2, "proposal '%s' is queued already: ignored", ev->id);
    return 0;
  }
  fold_obj_t o;
  int rc = fold_obj_load(c, ev->object, &o);
  if (rc && rc != SMC_ENOT_FOUND) {
    fold_obj_close(&o);
    return c->rc;
  }
  fold_prop_t p;
  memset(&p, 0, sizeof(p));
  int oom = 0;
  /* borrowed: the event outlives the proposal unless it is stored, which
   * copies them */
  p.borrowed = 1;
  p.id = (char *)ev->id;
  p.machine = (char *)ev->machine;
  p.transition = (char *)ev->transition;
  p.to = (char *)ev->to;
  p.proposer = (char *)ev->proposer;
  p.correlation = (char *)ev->correlation;
  p.reply_to = (char *)ev->reply_to;
  /* the canonical text is made only when the proposal is stored (queued
   * or waiting for votes) if the decoded tree can stand in for it */
  if (ev->data && reparses_same(ev->data))
    p.data_json = ev->data;
  else if (ev->data && !(p.data = smc_json_canonical(ev->data)))
    oom = 1;
  p.has_expect = ev->has_expect;
  p.expect = ev->expect_version;
  if (oom) {
    fold_prop_close(&p);
    fold_obj_close(&o);
    return fold_fail(c, SMC_ENOMEM);
  }
  fold_enqueue(c, &o, &p);
  if (!c->rc)
    fold_obj_save(c, &o);
  fold_obj_close(&o);
  return c->rc;
}

/* The outcome of a registration that names an id: a reply (to reply_to,
 * else <prefix>replies) per partition, so the registering client learns
 * every partition's outcome and a conflict anywhere is its error.
 * {"type":"registration","id","name","hash"?,"partition","outcome":
 * "registered"|"existed"|"rejected","error"?:{code,message}} */
/* Answer a registration or settings event (j, consumed): add the error
 * (code non-zero) and the correlation, emit it canonical to its reply_to. */
static int emit_reply(fold_ctx_t *c, const smc_event_t *ev, const char *key, json_t *j, int code,
                      const smc_error_t *err) {
  if (j && code)
    json_object_set_new(j, "error",
                        json_pack("{s:s, s:s}", "code", smc_code_name(code), "message",
                                  err && err->message[0] ? err->message : ""));
  if (j && ev->correlation)
    json_object_set_new(j, "correlation", json_string(ev->correlation));
  char *text = j ? smc_json_canonical(j) : NULL;
  json_decref(j);
  if (!text)
    return fold_fail(c, SMC_ENOMEM);
  return reply_with(c, ev, key, text);
}

static int registration_reply(fold_ctx_t *c, const smc_event_t *ev, const char *outcome, int code,
                              const smc_error_t *err) {
  json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s}", "type", "registration", "id", ev->id, "name",
                        ev->name, "partition", (json_int_t)c->part, "outcome", outcome);
  if (j && ev->hash)
    json_object_set_new(j, "hash", json_string(ev->hash));
  return emit_reply(c, ev, ev->name, j, code, err);
}

static int machine_event(fold_ctx_t *c, const smc_event_t *ev) {
  smc_error_t err;
  smc_error_clear(&err);
  char have[65];
  int known = machine_hash(c, ev->name, have);
  if (known < 0)
    return c->rc;
  int existed = known && ev->hash && !strcmp(ev->hash, have);
  int rc = 0;
  if (c->f->reg_key)
    rc = smc_registration_verify(c->f->reg_key, ev->name, ev->hash, ev->signature, &err);
  if (rc == SMC_ENOMEM)
    return fold_fail(c, rc);
  if (!rc)
    rc = register_machine(c, ev->name, ev->hash, ev->definition, ev->definition_len, NULL, NULL,
                          &err);
  if (c->rc)
    return c->rc;
  if (rc)
    fold_log(c, rc == SMC_EMACHINE_EXISTS || rc == SMC_EBAD_SIGNATURE ? 1 : 0,
             "%smachine '%s' ignored: %s: %s", rc == SMC_EBAD_SIGNATURE ? "bad_signature: " : "",
             ev->name, smc_code_name(rc), err.message);
  else
    fold_log(c, 2, "machine '%s' registered (version %.12s)", ev->name, ev->hash ? ev->hash : "");
  if (ev->id)
    return registration_reply(c, ev,
                              rc        ? "rejected"
                              : existed ? "existed"
                                        : "registered",
                              rc, &err);
  return 0;
}

/* Checks of step 2 that need the record: key = object, partition. */
static int check_record(fold_ctx_t *c, const smc_record_t *rec, const smc_event_t *ev,
                        smc_error_t *err) {
  size_t n = strlen(ev->object);
  if (!rec->key || rec->key_len != n || memcmp(rec->key, ev->object, n))
    return smc_error_set(err, SMC_EBAD_REQUEST, "object",
                         "the record key must be the object id '%s'", ev->object);
  int32_t want = smc_partition_for(ev->object, n, c->f->cfg.partitions);
  if (want != rec->partition)
    return smc_error_set(err, SMC_EWRONG_PARTITION, "object",
                         "object '%s' belongs to partition %d of %d, not %d", ev->object, (int)want,
                         (int)c->f->cfg.partitions, (int)rec->partition);
  return 0;
}

/* The settings a settings event names (protocol.md "settings"): each a
 * whole number from 1 to 2^31-1; the others keep their value. */
static const struct {
  const char *name;
  size_t off; /* in fold_settings_t */
  int width;  /* bytes of the field */
} setting_names[] = {
    {"max_event_bytes", offsetof(fold_settings_t, max_event_bytes), sizeof(size_t)},
    {"max_queue", offsetof(fold_settings_t, max_queue), sizeof(size_t)},
    {"expr_steps", offsetof(fold_settings_t, limits.expr_steps), sizeof(uint64_t)},
    {"regex_match_limit", offsetof(fold_settings_t, limits.regex_match_limit), sizeof(uint32_t)},
    {"regex_depth_limit", offsetof(fold_settings_t, limits.regex_depth_limit), sizeof(uint32_t)},
    {"max_definition_bytes", offsetof(fold_settings_t, limits.definition_max_bytes),
     sizeof(size_t)},
    {"max_data_bytes", offsetof(fold_settings_t, limits.data_max_bytes), sizeof(size_t)},
};
#define NSETTINGS (sizeof setting_names / sizeof setting_names[0])

static void setting_store(fold_settings_t *s, size_t i, uint64_t v) {
  char *p = (char *)s + setting_names[i].off;
  if (setting_names[i].width == 4) {
    uint32_t x = (uint32_t)v;
    memcpy(p, &x, 4);
  } else {
    memcpy(p, &v, 8);
  }
}

static uint64_t setting_load(const fold_settings_t *s, size_t i) {
  const char *p = (const char *)s + setting_names[i].off;
  if (setting_names[i].width == 4) {
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
  }
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

int smc_fold_setting_check(const char *name, long long value, smc_error_t *err) {
  size_t i = 0;
  while (i < NSETTINGS && strcmp(setting_names[i].name, name))
    i++;
  if (i == NSETTINGS)
    return smc_error_set(err, SMC_EBAD_REQUEST, name, "unknown setting '%s'", name);
  if (value < 1 || value > INT32_MAX)
    return smc_error_set(err, SMC_EBAD_REQUEST, name,
                         "setting '%s' must be a whole number from 1 to 2147483647", name);
  return 0;
}

/* The digest a settings event is signed over (with the registration key,
 * as name "settings"): sha256 hex of "fold" "\n" canonical(limits). */
int smc_fold_settings_digest(int64_t fold, const json_t *limits, char out[65]) {
  char *canon = smc_json_canonical(limits);
  if (!canon)
    return SMC_ENOMEM;
  smc_buf_t b;
  smc_buf_init(&b);
  smc_buf_add_i64(&b, fold);
  smc_buf_addc(&b, '\n');
  smc_buf_adds(&b, canon);
  free(canon);
  int rc = b.oom ? SMC_ENOMEM : 0;
  if (!rc)
    smc_sha256_hex(b.p, b.len, out);
  smc_buf_close(&b);
  return rc;
}

/* The answer to a settings event with an id (smc cluster settings waits
 * for one per partition): {"type":"settings", id, partition, outcome
 * "applied"|"rejected", error?, limits (in force after it)}. */
static int settings_reply(fold_ctx_t *c, const smc_event_t *ev, int code, const smc_error_t *err) {
  json_t *l = json_object();
  for (size_t i = 0; l && i < NSETTINGS; i++)
    json_object_set_new(l, setting_names[i].name,
                        json_integer((json_int_t)setting_load(&c->set, i)));
  json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:o}", "type", "settings", "id", ev->id, "partition",
                        (json_int_t)c->part, "outcome", code ? "rejected" : "applied", "limits", l);
  return emit_reply(c, ev, "", j, code, err);
}

/* A settings event: all of it applies, or (a bad name or value, a missing
 * or forged signature when the cluster has a registration key) none of it,
 * with a log line. Every node folds the same record, so every node has the
 * same settings from the next record on. */
static int settings_event(fold_ctx_t *c, const smc_event_t *ev) {
  fold_settings_t next = c->set;
  smc_error_t err;
  smc_error_clear(&err);
  int rc = 0;
  const char *name;
  json_t *v;
  json_object_foreach((json_t *)ev->limits, name, v) {
    long long x = json_is_integer(v) ? json_integer_value(v) : 0;
    if ((rc = smc_fold_setting_check(name, x, &err)))
      break;
    size_t i = 0;
    while (strcmp(setting_names[i].name, name))
      i++;
    setting_store(&next, i, (uint64_t)x);
  }
  if (!rc && c->f->reg_key) {
    char digest[65];
    if ((rc = smc_fold_settings_digest(ev->fold_version, ev->limits, digest)) == SMC_ENOMEM)
      return fold_fail(c, rc);
    rc = smc_registration_verify(c->f->reg_key, "settings", digest, ev->signature, &err);
    if (rc == SMC_ENOMEM)
      return fold_fail(c, rc);
  }
  if (rc) {
    fold_log(c, 1, "settings ignored: %s: %s", smc_code_name(rc), err.message);
  } else {
    c->set = next;
    c->has_set = 1;
    char line[512];
    size_t n = 0;
    for (size_t i = 0; i < NSETTINGS && n < sizeof line; i++)
      n += (size_t)snprintf(line + n, sizeof line - n, "%s%s=%llu", i ? " " : "",
                            setting_names[i].name, (unsigned long long)setting_load(&c->set, i));
    fold_log(c, 2, "settings in force: %s", line);
  }
  return ev->id ? settings_reply(c, ev, rc, &err) : 0;
}

int smc_fold_settings(smc_fold_t *f, smc_kv_t *kv, int32_t partition, char **json) {
  *json = NULL;
  if (!f || !kv || partition < 0 || partition >= f->cfg.partitions)
    return SMC_EINVALID_ARGUMENT;
  fold_ctx_t c;
  int64_t applied, clock, next_timer;
  int rc = ctx_load(&c, f, kv, partition, &applied, &clock, &next_timer);
  if (rc)
    return rc;
  json_t *l = json_object(), *j = json_object();
  for (size_t i = 0; l && i < NSETTINGS; i++)
    json_object_set_new(l, setting_names[i].name,
                        json_integer((json_int_t)setting_load(&c.set, i)));
  json_object_set_new(j, "fold", json_integer(SMC_FOLD_VERSION));
  json_object_set_new(j, "from_log", json_boolean(c.has_set));
  json_object_set_new(j, "limits", l);
  json_object_set_new(j, "offset", json_integer(applied - 1));
  *json = smc_json_canonical(j);
  json_decref(j);
  return *json ? 0 : SMC_ENOMEM;
}

static int decode_record(fold_ctx_t *c, const smc_record_t *rec, smc_event_t *ev,
                         smc_error_t *err) {
  int rc = smc_event_decode(rec->value, rec->value_len, c->set.max_event_bytes, rec->correlation,
                            rec->reply_to, ev, err);
  if (!rc && ev->type == SMC_EV_SETTINGS && ev->fold_version > SMC_FOLD_VERSION)
    return SMC_EINCOMPATIBLE;
  return rc;
}

static int decide_record(fold_ctx_t *c, const smc_record_t *rec, smc_event_t *ev, int rc,
                         smc_error_t *err) {
  if (rc == SMC_ENOMEM)
    fold_fail(c, rc);
  else if (rc)
    bad_event(c, ev, err);
  else if (ev->type == SMC_EV_TICK)
    ;
  else if (ev->type == SMC_EV_MACHINE)
    machine_event(c, ev);
  else if (ev->type == SMC_EV_SETTINGS)
    settings_event(c, ev);
  else if (check_record(c, rec, ev, err))
    bad_event(c, ev, err);
  else if (ev->type == SMC_EV_PROPOSAL)
    proposal(c, ev);
  else if (ev->type == SMC_EV_VOTE)
    fold_vote(c, ev);
  else
    read_reply(c, ev, NULL);
  return c->rc;
}

int smc_fold_apply(smc_fold_t *f, smc_kv_t *kv, const smc_record_t *rec, smc_emit_fn emit,
                   void *opaque) {
  if (!f || !kv || !rec || rec->partition < 0 || rec->partition >= f->cfg.partitions ||
      rec->offset < 0)
    return SMC_EINVALID_ARGUMENT;
  fold_ctx_t c;
  int64_t applied, clock, next_timer;
  int rc = ctx_load(&c, f, kv, rec->partition, &applied, &clock, &next_timer);
  if (rc)
    return rc;
  if (rec->offset < applied)
    return 0;
  smc_event_t ev;
  smc_error_t err;
  smc_error_clear(&err);
  int drc = decode_record(&c, rec, &ev, &err);
  if (drc == SMC_EINCOMPATIBLE) { /* nothing written: the partition stops here */
    smc_event_close(&ev);
    return drc;
  }
  c.f = f, c.kv = kv, c.part = rec->partition, c.offset = rec->offset;
  c.clock = rec->timestamp > clock ? rec->timestamp : clock;
  c.emit = emit, c.opaque = opaque, c.emitting = 1;
  c.prev_clock = clock, c.next_timer = next_timer;
  c.key = f->key; /* the fold's key buffer, kept between records */
  smc_buf_reset(&c.key);
  if (!fold_decided_prune(&c) && !fire_timers(&c) && !decide_record(&c, rec, &ev, drc, &err))
    fold_fail(&c, meta_put(&c, rec->offset + 1));
  smc_event_close(&ev);
  f->key = c.key;
  if (f->conf.cap > ((size_t)1 << 20)) /* kept between records, unless huge */
    smc_buf_close(&f->conf);
  if (f->rec.cap > ((size_t)1 << 20))
    smc_buf_close(&f->rec);
  return c.rc;
}
