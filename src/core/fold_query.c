/*
 * Questions a gateway asks a fold's state, beyond one object's read
 * (smc_fold_read): a proposal's decision by id, a page of a machine's
 * objects, a page of an object's history. They read the partition's state
 * as it is (committed or only folded: either way a function of the log
 * prefix) and write nothing.
 *
 * History: on every commit the fold also keeps the confirmation under
 * HISTORY partition|len(2 BE)|object|version(8 BE) (fold_history_put), so
 * an object's versions are one range scan, in version order. It is derived
 * from the log like every other key, so replaying rebuilds it byte for byte;
 * it is kept for the life of the object (no window), and a fold configured
 * with no_history (smc verify) keeps none.
 *
 * History is not fold state: no decision reads it, and the changelog does
 * not carry it. A partition restored from the changelog has a history
 * floor (META partition|'h' -> the checkpoint offset, 8 BE; node-local,
 * smc_fold_history_floor_put): its history holds only what this store
 * folded itself, and smc_fold_history says from which version an object's
 * history is held when older versions are missing.
 */
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/fold_int.h"
#include "core/json_scan.h"
#include "core/util.h"

static void ctx_init(fold_ctx_t *c, smc_fold_t *f, smc_kv_t *kv, int32_t partition) {
  memset(c, 0, sizeof(*c));
  c->f = f, c->kv = kv, c->part = partition;
  smc_buf_init(&c->key);
}

/* The end of a query with c: c's key released, then, when rc is 0, *json
 * the canonical text of j (a NULL j is out of memory). Takes j; rc, or
 * SMC_ENOMEM. */
static int query_done(fold_ctx_t *c, int rc, json_t *j, char **json) {
  smc_buf_close(&c->key);
  if (!rc && !(*json = j ? smc_json_canonical(j) : NULL))
    rc = SMC_ENOMEM;
  json_decref(j);
  return rc;
}

static void key_history(fold_ctx_t *c, const char *object, int64_t version) {
  fold_key_begin(c);
  size_t n = strlen(object);
  uint8_t b[8];
  b[0] = (uint8_t)(n >> 8), b[1] = (uint8_t)n;
  smc_buf_add(&c->key, b, 2);
  smc_buf_add(&c->key, object, n);
  smc_be64(b, (uint64_t)version);
  smc_buf_add(&c->key, b, 8);
}

int fold_history_put(fold_ctx_t *c, const char *object, int64_t version, const char *conf,
                     size_t len) {
  if (c->f->cfg.no_history)
    return 0;
  key_history(c, object, version);
  int rc =
      c->key.oom ? SMC_ENOMEM : smc_kv_put(c->kv, SMC_CF_HISTORY, c->key.p, c->key.len, conf, len);
  return fold_fail(c, rc);
}

int smc_fold_proposal(smc_fold_t *f, smc_kv_t *kv, int32_t partition, const char *id, char **json) {
  *json = NULL;
  if (!f || !kv || !id || partition < 0 || partition >= f->cfg.partitions)
    return SMC_EINVALID_ARGUMENT;
  fold_ctx_t c;
  ctx_init(&c, f, kv, partition);
  int rc = smc_fold_clock(f, kv, partition, &c.clock);
  int status = 0;
  char *conf = NULL;
  if (!rc)
    rc = fold_decided_get(&c, id, &status, &conf);
  smc_buf_close(&c.key);
  if (rc)
    return rc;
  if (!status)
    return SMC_ENOT_FOUND;
  json_t *j = json_object();
  json_object_set_new(j, "proposal", json_string(id));
  if (status == 'D') {
    json_t *cj = smc_json_loads(conf, 0);
    const char *outcome = json_string_value(json_object_get(cj, "outcome"));
    json_object_set_new(j, "status", json_string(outcome ? outcome : "decided"));
    static const char *const keys[] = {"object", "machine", "transition", NULL};
    for (size_t i = 0; keys[i]; i++)
      if (json_object_get(cj, keys[i]))
        json_object_set(j, keys[i], json_object_get(cj, keys[i]));
    json_object_set_new(j, "confirmation", cj ? cj : json_null());
  } else {
    json_object_set_new(j, "status", json_string("pending"));
  }
  free(conf);
  *json = smc_json_canonical(j);
  json_decref(j);
  return *json ? 0 : SMC_ENOMEM;
}

int smc_fold_list(smc_fold_t *f, smc_kv_t *kv, int32_t partition, const char *machine,
                  const char *after, size_t limit, char **json) {
  *json = NULL;
  if (!f || !kv || partition < 0 || partition >= f->cfg.partitions || limit == 0)
    return SMC_EINVALID_ARGUMENT;
  fold_ctx_t c;
  ctx_init(&c, f, kv, partition);
  smc_buf_t from, end;
  smc_buf_init(&from);
  smc_buf_init(&end);
  uint8_t pb[4];
  smc_be32(pb, (uint32_t)partition);
  smc_buf_add(&from, pb, 4);
  if (after && *after) {
    smc_buf_adds(&from, after);
    smc_buf_addc(&from, '\0'); /* the first id after it */
  }
  smc_be32(pb, (uint32_t)partition + 1);
  smc_buf_add(&end, pb, 4);
  json_t *arr = json_array();
  int rc = from.oom || end.oom || !arr ? SMC_ENOMEM : 0;
  while (!rc && json_array_size(arr) < limit) {
    void *k = NULL, *v = NULL;
    size_t kl = 0, vl = 0;
    rc = smc_kv_seek(kv, SMC_CF_OBJECTS, from.p, from.len, end.p, end.len, &k, &kl, &v, &vl);
    free(v);
    if (rc == SMC_ENOT_FOUND) {
      rc = 0;
      break;
    }
    if (rc)
      break;
    char *id = kl > 4 ? strndup((const char *)k + 4, kl - 4) : NULL;
    smc_buf_reset(&from);
    smc_buf_add(&from, k, kl);
    smc_buf_addc(&from, '\0');
    free(k);
    if (!id)
      continue;
    fold_obj_t o;
    int lr = fold_obj_load(&c, id, &o);
    if (lr == 0 && o.version > 0 && (!machine || !strcmp(o.machine, machine))) {
      json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:o, s:s, s:I, s:I}", "object", id, "machine",
                            o.machine, "state", o.state, "version", (json_int_t)o.version, "data",
                            smc_json_loads(o.data, 0), "checksum", o.checksum, "created",
                            (json_int_t)o.created, "updated", (json_int_t)o.updated);
      if (j)
        json_array_append_new(arr, j);
    } else if (lr && lr != SMC_ENOT_FOUND) {
      rc = lr;
    }
    fold_obj_close(&o);
    free(id);
  }
  smc_buf_close(&from);
  smc_buf_close(&end);
  return query_done(&c, rc, arr, json);
}

static void floor_key(int32_t partition, uint8_t k[5]) {
  smc_be32(k, (uint32_t)partition);
  k[4] = 'h';
}

int smc_fold_history_floor_put(smc_kv_t *kv, int32_t partition, int64_t offset) {
  if (!kv || partition < 0 || offset < 0)
    return SMC_EINVALID_ARGUMENT;
  uint8_t k[5], v[8];
  floor_key(partition, k);
  smc_be64(v, (uint64_t)offset);
  return smc_kv_put(kv, SMC_CF_META, k, sizeof k, v, sizeof v);
}

int smc_fold_history_floor(smc_kv_t *kv, int32_t partition, int64_t *offset) {
  uint8_t k[5];
  floor_key(partition, k);
  void *v = NULL;
  size_t vl = 0;
  *offset = -1;
  int rc = smc_kv_get(kv, SMC_CF_META, k, sizeof k, &v, &vl);
  if (rc == 0 && vl == 8)
    *offset = (int64_t)smc_get_be64(v);
  else if (rc == 0)
    rc = SMC_ESTORE;
  free(v);
  return rc == SMC_ENOT_FOUND ? 0 : rc;
}

int smc_fold_is_history_floor(int cf, const void *key, size_t klen) {
  return cf == SMC_CF_META && klen == 5 && ((const uint8_t *)key)[4] == 'h';
}

/* The first version of object the history holds when versions before it
 * are missing (a partition restored from the changelog: floor >= 0), in
 * *from; 0 when nothing is missing. When it holds none, *machine = the
 * object's machine (malloc'd; caller frees). */
static int history_from(fold_ctx_t *c, const char *object, int64_t *from, char **machine) {
  int64_t floor = -1;
  *from = 0;
  int rc = smc_fold_history_floor(c->kv, c->part, &floor);
  if (rc || floor < 0)
    return rc;
  smc_buf_t end;
  smc_buf_init(&end);
  key_history(c, object, INT64_MAX);
  smc_buf_add(&end, c->key.p, c->key.len);
  key_history(c, object, 0);
  void *k = NULL, *v = NULL;
  size_t kl = 0, vl = 0;
  rc = c->key.oom || end.oom ? SMC_ENOMEM
                             : smc_kv_seek(c->kv, SMC_CF_HISTORY, c->key.p, c->key.len, end.p,
                                           end.len, &k, &kl, &v, &vl);
  smc_buf_close(&end);
  if (rc == 0 && kl >= 8) { /* the first version held */
    int64_t first = (int64_t)smc_get_be64((uint8_t *)k + kl - 8);
    *from = first > 1 ? first : 0;
  } else if (rc == SMC_ENOT_FOUND) { /* none held: every committed one is missing */
    fold_obj_t o;
    rc = fold_obj_load(c, object, &o);
    if (rc == 0 && o.version > 0 && (*machine = strdup(o.machine)))
      *from = o.version + 1;
    else if (rc == 0 && o.version > 0)
      rc = SMC_ENOMEM;
    fold_obj_close(&o);
    rc = rc == SMC_ENOT_FOUND ? 0 : rc;
  }
  free(k);
  free(v);
  return rc;
}

int smc_fold_history(smc_fold_t *f, smc_kv_t *kv, int32_t partition, const char *object,
                     int64_t after_version, size_t limit, char **json) {
  *json = NULL;
  if (!f || !kv || !object || partition < 0 || partition >= f->cfg.partitions || limit == 0 ||
      strlen(object) > 0xffff)
    return SMC_EINVALID_ARGUMENT;
  fold_ctx_t c;
  ctx_init(&c, f, kv, partition);
  smc_buf_t end;
  smc_buf_init(&end);
  key_history(&c, object, INT64_MAX);
  smc_buf_add(&end, c.key.p, c.key.len);
  /* nothing comes after the largest version (and after_version + 1 would
   * overflow) */
  key_history(&c, object,
              after_version < 0            ? 0
              : after_version == INT64_MAX ? INT64_MAX
                                           : after_version + 1);
  json_t *arr = json_array();
  int rc = c.key.oom || end.oom || !arr ? SMC_ENOMEM : 0;
  while (!rc && json_array_size(arr) < limit) {
    void *k = NULL, *v = NULL;
    size_t kl = 0, vl = 0;
    rc = smc_kv_seek(kv, SMC_CF_HISTORY, c.key.p, c.key.len, end.p, end.len, &k, &kl, &v, &vl);
    if (rc == SMC_ENOT_FOUND) {
      rc = 0;
      break;
    }
    if (rc)
      break;
    json_t *j = json_loadb(v, vl, 0, NULL);
    if (j)
      json_array_append_new(arr, j);
    smc_buf_reset(&c.key);
    smc_buf_add(&c.key, k, kl);
    smc_buf_addc(&c.key, '\0');
    free(k);
    free(v);
  }
  smc_buf_close(&end);
  int64_t from = 0;
  char *machine = NULL;
  if (!rc)
    rc = history_from(&c, object, &from, &machine);
  json_t *ans = json_pack("{s:o}", "versions", arr); /* takes arr */
  if (ans && ((from > 0 && json_object_set_new(ans, "history_from", json_integer(from))) ||
              (machine && json_object_set_new(ans, "machine", json_string(machine))))) {
    json_decref(ans);
    ans = NULL;
  }
  free(machine);
  return query_done(&c, rc, ans, json);
}

/* One queued proposal as smc_fold_pending lists it (a new object). */
static json_t *pending_view(const fold_prop_t *p) {
  json_t *data = p->data ? smc_json_loads(p->data, 0) : json_object();
  json_t *j =
      json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "proposal", p->id ? p->id : "", "machine",
                p->machine ? p->machine : "", "transition", p->transition ? p->transition : "",
                "status", p->waiting ? "waiting" : "queued", "data", data ? data : json_object(),
                "votes", fold_votes_json(p));
  if (j && p->proposer && *p->proposer)
    json_object_set_new(j, "proposer", json_string(p->proposer));
  if (j && p->has_expect)
    json_object_set_new(j, "expect_version", json_integer(p->expect));
  if (j && p->waiting && p->deadline)
    json_object_set_new(j, "deadline", json_integer(p->deadline));
  if (j && p->is_timer)
    json_object_set_new(j, "timer", json_true());
  return j;
}

int smc_fold_pending(smc_fold_t *f, smc_kv_t *kv, int32_t partition, const char *object,
                     char **json) {
  *json = NULL;
  if (!f || !kv || !object || partition < 0 || partition >= f->cfg.partitions)
    return SMC_EINVALID_ARGUMENT;
  fold_ctx_t c;
  ctx_init(&c, f, kv, partition);
  fold_obj_t o;
  int rc = fold_obj_load(&c, object, &o);
  json_t *list = json_array(), *j = NULL;
  if (rc == SMC_ENOT_FOUND) { /* nothing committed, nothing queued */
    rc = 0;
    j = json_pack("{s:b, s:n, s:i, s:O}", "found", 0, "machine", "version", 0, "proposals", list);
  } else if (!rc) {
    for (int64_t seq = o.head_seq; !rc && seq < o.head_seq + o.qlen; seq++) {
      fold_prop_t p;
      if ((rc = fold_prop_load(&c, o.id, seq, &p)) == 0)
        json_array_append_new(list, pending_view(&p));
      fold_prop_close(&p);
    }
    j = json_pack("{s:b, s:s?, s:I, s:O}", "found", o.version > 0, "machine",
                  o.version > 0 ? o.machine : NULL, "version", (json_int_t)o.version, "proposals",
                  list);
  }
  fold_obj_close(&o);
  json_decref(list);
  return query_done(&c, rc, j, json);
}
