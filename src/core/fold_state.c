/* The fold's stored records: keys, object and queue records, decided ids,
 * timers (layout in fold_int.h). */
#include <stdlib.h>
#include <string.h>

#include "core/fold_int.h"
#include "core/util.h"

#define REC_FORMAT 1

int fold_fail(fold_ctx_t *c, int rc) {
  if (rc < 0 && !c->rc)
    c->rc = rc;
  return rc;
}

/* Start c->key with the partition prefix. */
void fold_key_begin(fold_ctx_t *c) {
  uint8_t p[4];
  smc_be32(p, (uint32_t)c->part);
  smc_buf_reset(&c->key);
  smc_buf_add(&c->key, p, 4);
}

static void key_obj(fold_ctx_t *c, const char *id) {
  fold_key_begin(c);
  smc_buf_adds(&c->key, id);
}

static void key_queue(fold_ctx_t *c, const char *id, int64_t seq) {
  key_obj(c, id);
  smc_buf_addc(&c->key, '\0');
  uint8_t s[8];
  smc_be64(s, (uint64_t)seq);
  smc_buf_add(&c->key, s, 8);
}

/* ---- objects ---- */

void fold_obj_close(fold_obj_t *o) {
  if (o->own & OBJ_MACHINE)
    free(o->machine);
  if (o->own & OBJ_STATE)
    free(o->state);
  if (o->own & OBJ_CHECKSUM)
    free(o->checksum);
  if (o->own & OBJ_DATA)
    free(o->data);
  free(o->blk);
  memset(o, 0, sizeof(*o));
}

void fold_obj_set(fold_obj_t *o, unsigned bit, char **field, char *s) {
  if (o->own & bit)
    free(*field);
  *field = s;
  o->own |= bit;
}

void fold_obj_borrow(fold_obj_t *o, unsigned bit, char **field, const char *s) {
  if (o->own & bit)
    free(*field);
  *field = (char *)s;
  o->own &= ~bit;
}

/* A string of the record at r copied to *at (NUL-terminated), or NULL when
 * stored as NULL; *at moves past it. */
static char *rd_str_at(smc_rd_t *r, char **at) {
  uint32_t n;
  const uint8_t *b = smc_rd_bytes(r, &n);
  if (!b)
    return NULL;
  char *s = *at;
  memcpy(s, b, n);
  s[n] = '\0';
  *at = s + n + 1;
  return s;
}

int fold_get(fold_ctx_t *c, smc_cf_t cf, void **v, size_t *vl) {
  *v = NULL;
  *vl = 0;
  int rc = c->key.oom ? SMC_ENOMEM : smc_kv_get(c->kv, cf, c->key.p, c->key.len, v, vl);
  if (rc == SMC_ENOT_FOUND)
    return 0;
  return rc ? fold_fail(c, rc) : 1;
}

/* A reader of a stored record (object or queued proposal) past its format
 * byte; bad at once when the format is not this code's. */
static smc_rd_t record_reader(const void *v, size_t vl) {
  smc_rd_t r = {v, vl, 0, 0};
  if (smc_rd_u8(&r) != REC_FORMAT)
    r.bad = 1;
  return r;
}

int fold_obj_load(fold_ctx_t *c, const char *id, fold_obj_t *o) {
  memset(o, 0, sizeof(*o));
  size_t idn = strlen(id);
  key_obj(c, id);
  void *v;
  size_t vl;
  int found = fold_get(c, SMC_CF_OBJECTS, &v, &vl);
  if (found < 0)
    return found;
  /* the id and the record's strings: each string takes at most its bytes
   * in the record (its 4-byte length becomes the NUL) */
  if (!(o->blk = malloc(idn + 1 + vl))) {
    free(v);
    return fold_fail(c, SMC_ENOMEM);
  }
  o->id = memcpy(o->blk, id, idn + 1);
  if (!found)
    return SMC_ENOT_FOUND;
  char *at = o->blk + idn + 1;
  smc_rd_t r = record_reader(v, vl);
  o->version = smc_rd_i64(&r);
  o->created = smc_rd_i64(&r);
  o->updated = smc_rd_i64(&r);
  o->next_seq = smc_rd_i64(&r);
  o->head_seq = smc_rd_i64(&r);
  o->qlen = smc_rd_i64(&r);
  o->timer_deadline = smc_rd_i64(&r);
  o->vote_deadline = smc_rd_i64(&r);
  o->machine = rd_str_at(&r, &at);
  o->state = rd_str_at(&r, &at);
  o->checksum = rd_str_at(&r, &at);
  o->data = rd_str_at(&r, &at);
  free(v);
  if (r.bad)
    return fold_fail(c, SMC_ESTORE);
  return 0;
}

/* Write o, or delete its record when it holds nothing (never created and no
 * queued proposal left). */
int fold_obj_save(fold_ctx_t *c, const fold_obj_t *o) {
  key_obj(c, o->id);
  if (o->version == 0 && o->qlen == 0)
    return fold_fail(c, smc_kv_del(c->kv, SMC_CF_OBJECTS, c->key.p, c->key.len));
  smc_buf_t *b = &c->f->rec;
  smc_buf_reset(b);
  smc_buf_put_u8(b, REC_FORMAT);
  smc_buf_put_i64(b, o->version);
  smc_buf_put_i64(b, o->created);
  smc_buf_put_i64(b, o->updated);
  smc_buf_put_i64(b, o->next_seq);
  smc_buf_put_i64(b, o->head_seq);
  smc_buf_put_i64(b, o->qlen);
  smc_buf_put_i64(b, o->timer_deadline);
  smc_buf_put_i64(b, o->vote_deadline);
  smc_buf_put_str(b, o->machine);
  smc_buf_put_str(b, o->state);
  smc_buf_put_str(b, o->checksum);
  smc_buf_put_str(b, o->data);
  int rc = b->oom || c->key.oom
               ? SMC_ENOMEM
               : smc_kv_put(c->kv, SMC_CF_OBJECTS, c->key.p, c->key.len, b->p, b->len);
  return fold_fail(c, rc);
}

/* ---- queued proposals ---- */

void fold_prop_close(fold_prop_t *p) {
  char **strs[] = {&p->id,       &p->machine,     &p->transition, &p->to,
                   &p->proposer, &p->correlation, &p->reply_to,   &p->data,
                   &p->out_name, &p->out_state,   &p->out_data};
  for (size_t i = p->borrowed ? 7 : 0; i < sizeof(strs) / sizeof(strs[0]); i++)
    free(*strs[i]);
  for (size_t i = 0; i < p->accept.n; i++)
    free(p->accept.v[i]);
  for (size_t i = 0; i < p->reject.n; i++)
    free(p->reject.v[i]);
  free(p->accept.v);
  free(p->reject.v);
  memset(p, 0, sizeof(*p));
}

int fold_prop_own(fold_prop_t *p) {
  char **strs[] = {&p->id,       &p->machine,     &p->transition, &p->to,
                   &p->proposer, &p->correlation, &p->reply_to};
  int oom = 0;
  if (!p->borrowed)
    return 0;
  p->borrowed = 0;
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
    if (*strs[i] && !(*strs[i] = strdup(*strs[i])))
      oom = 1;
  return oom ? SMC_ENOMEM : 0;
}

int fold_strs_add(fold_strs_t *s, const char *v) {
  char **n = realloc(s->v, (s->n + 1) * sizeof(char *));
  if (!n)
    return SMC_ENOMEM;
  s->v = n;
  if (!(s->v[s->n] = strdup(v)))
    return SMC_ENOMEM;
  s->n++;
  return 0;
}

int fold_strs_has(const fold_strs_t *s, const char *v) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->v[i], v))
      return 1;
  return 0;
}

static void put_strs(smc_buf_t *b, const fold_strs_t *s) {
  smc_buf_put_u32(b, (uint32_t)s->n);
  for (size_t i = 0; i < s->n; i++)
    smc_buf_put_str(b, s->v[i]);
}

static void rd_strs(smc_rd_t *r, fold_strs_t *s) {
  uint32_t n = smc_rd_u32(r);
  if (r->bad || n > r->len)
    return;
  for (uint32_t i = 0; i < n && !r->bad; i++) {
    char *v = smc_rd_str(r);
    if (!v || fold_strs_add(s, v))
      r->bad = 1;
    free(v);
  }
}

int fold_prop_save(fold_ctx_t *c, const char *object, int64_t seq, const fold_prop_t *p) {
  char *data = p->data_json && !p->data ? smc_json_canonical(p->data_json) : NULL;
  if (p->data_json && !p->data && !data)
    return fold_fail(c, SMC_ENOMEM);
  key_queue(c, object, seq);
  smc_buf_t b;
  smc_buf_init(&b);
  smc_buf_put_u8(&b, REC_FORMAT);
  smc_buf_put_str(&b, p->id);
  smc_buf_put_str(&b, p->machine);
  smc_buf_put_str(&b, p->transition);
  smc_buf_put_str(&b, p->to);
  smc_buf_put_str(&b, p->proposer);
  smc_buf_put_str(&b, p->correlation);
  smc_buf_put_str(&b, p->reply_to);
  smc_buf_put_str(&b, data ? data : p->data);
  smc_buf_put_u8(&b, (uint8_t)p->has_expect);
  smc_buf_put_i64(&b, p->expect);
  smc_buf_put_u8(&b, (uint8_t)p->is_timer);
  smc_buf_put_u8(&b, (uint8_t)p->waiting);
  smc_buf_put_i64(&b, p->tidx);
  smc_buf_put_i64(&b, p->deadline);
  smc_buf_put_str(&b, p->out_name);
  smc_buf_put_str(&b, p->out_state);
  smc_buf_put_str(&b, p->out_data);
  put_strs(&b, &p->accept);
  put_strs(&b, &p->reject);
  int rc = b.oom || c->key.oom ? SMC_ENOMEM
                               : smc_kv_put(c->kv, SMC_CF_QUEUES, c->key.p, c->key.len, b.p, b.len);
  smc_buf_close(&b);
  free(data);
  return fold_fail(c, rc);
}

int fold_prop_load(fold_ctx_t *c, const char *object, int64_t seq, fold_prop_t *p) {
  memset(p, 0, sizeof(*p));
  key_queue(c, object, seq);
  void *v;
  size_t vl;
  int found = fold_get(c, SMC_CF_QUEUES, &v, &vl);
  if (found <= 0)
    return found < 0 ? found : fold_fail(c, SMC_EINTERNAL);
  smc_rd_t r = record_reader(v, vl);
  p->id = smc_rd_str(&r);
  p->machine = smc_rd_str(&r);
  p->transition = smc_rd_str(&r);
  p->to = smc_rd_str(&r);
  p->proposer = smc_rd_str(&r);
  p->correlation = smc_rd_str(&r);
  p->reply_to = smc_rd_str(&r);
  p->data = smc_rd_str(&r);
  p->has_expect = smc_rd_u8(&r);
  p->expect = smc_rd_i64(&r);
  p->is_timer = smc_rd_u8(&r);
  p->waiting = smc_rd_u8(&r);
  p->tidx = smc_rd_i64(&r);
  p->deadline = smc_rd_i64(&r);
  p->out_name = smc_rd_str(&r);
  p->out_state = smc_rd_str(&r);
  p->out_data = smc_rd_str(&r);
  rd_strs(&r, &p->accept);
  rd_strs(&r, &p->reject);
  free(v);
  if (r.bad || !p->id)
    return fold_fail(c, SMC_ESTORE);
  return 0;
}

int fold_prop_del(fold_ctx_t *c, const char *object, int64_t seq) {
  key_queue(c, object, seq);
  return fold_fail(c, smc_kv_del(c->kv, SMC_CF_QUEUES, c->key.p, c->key.len));
}

/* ---- decided ids and their expiry ---- */

int fold_decided_get(fold_ctx_t *c, const char *id, int *status, char **conf) {
  *status = 0;
  if (conf)
    *conf = NULL;
  key_obj(c, id);
  void *v;
  size_t vl;
  int found = fold_get(c, SMC_CF_DECIDED, &v, &vl);
  if (found <= 0)
    return found;
  const uint8_t *p = v;
  if (vl >= 1 && p[0] == 'Q') {
    *status = 'Q';
  } else if (vl >= 9 && p[0] == 'D') {
    int64_t t = (int64_t)smc_get_be64(p + 1);
    /* pruned at the start of each record; this keeps the rule exact anyway */
    if (smc_time_add(t, c->f->cfg.dedup_window_ms) > c->clock) {
      *status = 'D';
      if (conf) {
        if (!(*conf = malloc(vl - 9 + 1))) {
          free(v);
          return fold_fail(c, SMC_ENOMEM);
        }
        memcpy(*conf, p + 9, vl - 9);
        (*conf)[vl - 9] = '\0';
      }
    }
  } else {
    free(v);
    return fold_fail(c, SMC_ESTORE);
  }
  free(v);
  return 0;
}

int fold_decided_put_queued(fold_ctx_t *c, const char *id, const char *object) {
  key_obj(c, id);
  smc_buf_t b;
  smc_buf_init(&b);
  smc_buf_addc(&b, 'Q');
  smc_buf_adds(&b, object);
  int rc = b.oom || c->key.oom
               ? SMC_ENOMEM
               : smc_kv_put(c->kv, SMC_CF_DECIDED, c->key.p, c->key.len, b.p, b.len);
  smc_buf_close(&b);
  return fold_fail(c, rc);
}

#define BUCKET_MAX 16 /* decided ids per expiry bucket */

static void key_bucket(fold_ctx_t *c, int64_t t, int64_t seq, int with_seq) {
  fold_key_begin(c);
  smc_buf_addc(&c->key, 'e');
  uint8_t s[8];
  smc_be64(s, (uint64_t)t);
  smc_buf_add(&c->key, s, 8);
  if (with_seq) {
    smc_be64(s, (uint64_t)seq);
    smc_buf_add(&c->key, s, 8);
  }
}

/* Add (clock, id) to the open expiry bucket, or open a new one when there
 * is none, it is full, or the clock is in another minute. */
static int bucket_add(fold_ctx_t *c, const char *id) {
  smc_buf_t *b = &c->f->rec;
  smc_buf_reset(b);
  int open = c->exp_n > 0 && c->exp_n < BUCKET_MAX && c->exp_time / 60000 == c->clock / 60000;
  if (open) {
    key_bucket(c, c->exp_time, c->exp_seq, 1);
    void *v;
    size_t vl;
    int found = fold_get(c, SMC_CF_META, &v, &vl);
    if (found < 0)
      return found;
    if (found)
      smc_buf_add(b, v, vl);
    else /* swept already (a window under a minute) */
      open = 0;
    free(v);
  }
  if (!open) {
    c->exp_time = c->clock;
    c->exp_seq++;
    c->exp_n = 0;
    key_bucket(c, c->exp_time, c->exp_seq, 1);
  }
  smc_buf_put_i64(b, c->clock);
  smc_buf_put_str(b, id);
  int rc = b->oom || c->key.oom
               ? SMC_ENOMEM
               : smc_kv_put(c->kv, SMC_CF_META, c->key.p, c->key.len, b->p, b->len);
  if (!rc)
    c->exp_n++;
  return fold_fail(c, rc);
}

/* Remember id as decided at the current clock with its confirmation, and
 * index it for expiry. */
int fold_decided_put(fold_ctx_t *c, const char *id, const char *conf, size_t len) {
  smc_buf_t b;
  smc_buf_init(&b);
  smc_buf_reserve(&b, 9 + len);
  smc_buf_addc(&b, 'D');
  smc_buf_put_i64(&b, c->clock);
  smc_buf_add(&b, conf, len);
  int rc = b.oom ? fold_fail(c, SMC_ENOMEM) : fold_decided_put_value(c, id, b.p, b.len);
  smc_buf_close(&b);
  return rc;
}

int fold_decided_put_value(fold_ctx_t *c, const char *id, const char *val, size_t len) {
  key_obj(c, id);
  int rc =
      c->key.oom ? SMC_ENOMEM : smc_kv_put(c->kv, SMC_CF_DECIDED, c->key.p, c->key.len, val, len);
  if (rc)
    return fold_fail(c, rc);
  return bucket_add(c, id);
}

/* Forget the entry (t, id) of a swept bucket: the decided id goes only if
 * it is still the one decided at t (an id decided again after it expired
 * keeps its newer entry). */
static int forget_decided(fold_ctx_t *c, int64_t t, const char *id) {
  key_obj(c, id);
  if (c->key.oom)
    return SMC_ENOMEM;
  void *dv = NULL;
  size_t dvl = 0;
  int rc = smc_kv_get(c->kv, SMC_CF_DECIDED, c->key.p, c->key.len, &dv, &dvl);
  if (rc == SMC_ENOT_FOUND)
    return 0;
  if (rc)
    return rc;
  int same = dvl >= 9 && ((uint8_t *)dv)[0] == 'D' && (int64_t)smc_get_be64((uint8_t *)dv + 1) == t;
  free(dv);
  return same ? smc_kv_del(c->kv, SMC_CF_DECIDED, c->key.p, c->key.len) : 0;
}

/* Sweep every expiry bucket whose whole minute is out of the window
 * (all its entries have t + window <= clock), oldest first. Lookups check
 * the window exactly (fold_decided_get), so sweeping late only keeps
 * forgotten entries on disk a little longer. */
int fold_decided_prune(fold_ctx_t *c) {
  /* swept only when the clock enters a new minute, to spare a seek per
   * record */
  if (c->prev_clock / 60000 == c->clock / 60000)
    return 0;
  int64_t upto = smc_time_add(c->clock, -c->f->cfg.dedup_window_ms); /* inclusive */
  if (upto < 0)
    return 0;
  /* buckets of minutes before (upto + 1 cannot overflow past the guard) */
  int64_t below = (upto == INT64_MAX ? upto : upto + 1) / 60000 * 60000;
  if (below == 0)
    return 0;
  smc_buf_t from, limit;
  smc_buf_init(&from);
  smc_buf_init(&limit);
  key_bucket(c, 0, 0, 0);
  smc_buf_add(&from, c->key.p, c->key.len);
  key_bucket(c, below, 0, 0);
  smc_buf_add(&limit, c->key.p, c->key.len);
  int rc = from.oom || limit.oom ? SMC_ENOMEM : 0;
  while (!rc) {
    void *k = NULL, *v = NULL;
    size_t kl = 0, vl = 0;
    rc = smc_kv_seek(c->kv, SMC_CF_META, from.p, from.len, limit.p, limit.len, &k, &kl, &v, &vl);
    if (rc == SMC_ENOT_FOUND) {
      rc = 0;
      break;
    }
    if (rc)
      break;
    rc = smc_kv_del(c->kv, SMC_CF_META, k, kl);
    if (!rc && kl == 21 && (int64_t)smc_get_be64((uint8_t *)k + 13) == c->exp_seq)
      c->exp_n = 0; /* the open bucket is gone: the next id opens another */
    smc_rd_t r = {v, vl, 0, 0};
    while (!rc && r.pos < r.len) {
      int64_t t = smc_rd_i64(&r);
      char *id = smc_rd_str(&r);
      if (r.bad || !id)
        rc = SMC_ESTORE;
      else
        rc = forget_decided(c, t, id);
      free(id);
    }
    free(k);
    free(v);
  }
  smc_buf_close(&from);
  smc_buf_close(&limit);
  return fold_fail(c, rc);
}

/* ---- timers ---- */

static void key_timer(fold_ctx_t *c, int64_t deadline, const char *object, char kind) {
  fold_key_begin(c);
  uint8_t s[8];
  smc_be64(s, (uint64_t)deadline);
  smc_buf_add(&c->key, s, 8);
  smc_buf_adds(&c->key, object);
  smc_buf_addc(&c->key, '\0');
  smc_buf_addc(&c->key, kind);
}

int fold_timer_put(fold_ctx_t *c, int64_t deadline, const char *object, char kind, const void *val,
                   size_t vlen) {
  if (c->next_timer == 0 || deadline < c->next_timer)
    c->next_timer = deadline;
  key_timer(c, deadline, object, kind);
  if (c->key.oom)
    return fold_fail(c, SMC_ENOMEM);
  return fold_fail(c, smc_kv_put(c->kv, SMC_CF_TIMERS, c->key.p, c->key.len, val, vlen));
}

int fold_timer_del(fold_ctx_t *c, int64_t deadline, const char *object, char kind) {
  key_timer(c, deadline, object, kind);
  if (c->key.oom)
    return fold_fail(c, SMC_ENOMEM);
  return fold_fail(c, smc_kv_del(c->kv, SMC_CF_TIMERS, c->key.p, c->key.len));
}
