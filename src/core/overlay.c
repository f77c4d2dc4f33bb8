/*
 * The overlay (src/core/kv.h): one skiplist per column family holding pending
 * puts and deletes (tombstones) over an optional base smc_kv_t.
 *
 * With a base, a delete leaves a tombstone that hides the base's key until
 * the overlay is replayed and cleared. Without one, the overlay is the whole
 * store, so a delete simply unlinks the node. Levels come from a fixed-seed
 * xorshift generator, so the structure (and its cost) is reproducible.
 */
#include <stdlib.h>
#include <string.h>

#include "core/kv.h"
#include "smc/error.h"

#define MAXLEVEL 24

/* One allocation per node: the header, the level pointers, then the key
 * bytes. The value has its own buffer (capacity vcap) so a key written again
 * in the same batch (the partition meta, an object touched twice) reuses it
 * when the new value fits. */
typedef struct node {
  uint8_t *key; /* points just past next[level] */
  size_t klen;
  uint8_t *val; /* NULL = tombstone */
  size_t vlen, vcap;
  int level;
  struct node *next[]; /* level entries, then the key */
} node_t;

typedef struct list {
  node_t *head;
  int level; /* highest level any node has had since the last clear */
} list_t;

struct smc_overlay {
  smc_kv_t *base;
  smc_kv_t base_copy;
  list_t cf[SMC_CF_COUNT];
  size_t pending, bytes;
  uint64_t rng;
};

static int cmp(const void *a, size_t al, const void *b, size_t bl) {
  size_t n = al < bl ? al : bl;
  int c = n ? memcmp(a, b, n) : 0;
  if (c)
    return c;
  return al < bl ? -1 : al > bl ? 1 : 0;
}

static node_t *node_new(int level, const void *key, size_t klen) {
  size_t head = sizeof(node_t) + (size_t)level * sizeof(node_t *);
  node_t *n = malloc(head + (klen ? klen : 1));
  if (!n)
    return NULL;
  memset(n, 0, head);
  n->level = level;
  n->key = (uint8_t *)n + head;
  n->klen = klen;
  if (klen)
    memcpy(n->key, key, klen);
  return n;
}

static void node_free(node_t *n) {
  if (!n)
    return;
  free(n->val);
  free(n);
}

static int random_level(smc_overlay_t *ov) {
  int l = 1;
  while (l < MAXLEVEL) {
    uint64_t x = ov->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ov->rng = x;
    if ((x & 3) != 0)
      break;
    l++;
  }
  return l;
}

/* Fill upd[] with the last node before key on each level; return the first
 * node >= key on level 0 (or NULL). */
static node_t *find_ge(list_t *l, const void *key, size_t klen, node_t **upd) {
  node_t *x = l->head;
  for (int i = MAXLEVEL - 1; upd && i >= l->level; i--)
    upd[i] = x; /* levels no node reaches: start from the head */
  for (int i = l->level - 1; i >= 0; i--) {
    while (x->next[i] && cmp(x->next[i]->key, x->next[i]->klen, key, klen) < 0)
      x = x->next[i];
    if (upd)
      upd[i] = x;
  }
  return x->next[0];
}

smc_overlay_t *smc_overlay_new(smc_kv_t *base) {
  smc_overlay_t *ov = calloc(1, sizeof(*ov));
  if (!ov)
    return NULL;
  if (base) {
    ov->base_copy = *base;
    ov->base = &ov->base_copy;
  }
  ov->rng = 0x9e3779b97f4a7c15ull;
  for (int c = 0; c < SMC_CF_COUNT; c++) {
    ov->cf[c].head = node_new(MAXLEVEL, NULL, 0);
    if (!ov->cf[c].head) {
      smc_overlay_destroy(ov);
      return NULL;
    }
  }
  return ov;
}

static void list_clear(list_t *l) {
  if (!l->head)
    return;
  node_t *x = l->head->next[0];
  while (x) {
    node_t *n = x->next[0];
    node_free(x);
    x = n;
  }
  for (int i = 0; i < MAXLEVEL; i++)
    l->head->next[i] = NULL;
  l->level = 0;
}

void smc_overlay_clear(smc_overlay_t *ov) {
  for (int c = 0; c < SMC_CF_COUNT; c++)
    list_clear(&ov->cf[c]);
  ov->pending = 0;
  ov->bytes = 0;
}

void smc_overlay_destroy(smc_overlay_t *ov) {
  if (!ov)
    return;
  smc_overlay_clear(ov);
  for (int c = 0; c < SMC_CF_COUNT; c++)
    free(ov->cf[c].head);
  free(ov);
}

size_t smc_overlay_pending(const smc_overlay_t *ov) { return ov->pending; }
size_t smc_overlay_bytes(const smc_overlay_t *ov) { return ov->bytes; }

static uint8_t *dup_bytes(const void *p, size_t n) {
  uint8_t *d = malloc(n ? n : 1);
  if (d && n)
    memcpy(d, p, n);
  return d;
}

/* Make n hold val (NULL = tombstone), reusing its buffer when val fits. */
static int node_set_val(node_t *n, const void *val, size_t vlen) {
  if (!val) {
    free(n->val);
    n->val = NULL;
    n->vlen = n->vcap = 0;
    return 0;
  }
  if (!n->val || n->vcap < vlen) {
    uint8_t *v = dup_bytes(val, vlen);
    if (!v)
      return SMC_ENOMEM;
    free(n->val);
    n->val = v;
    n->vcap = vlen;
  } else if (vlen) {
    memcpy(n->val, val, vlen);
  }
  n->vlen = vlen;
  return 0;
}

/* Set key to val (val NULL = tombstone). Replaces an existing node's value. */
static int ov_set(smc_overlay_t *ov, smc_cf_t cf, const void *key, size_t klen, const void *val,
                  size_t vlen, int tombstone) {
  if ((unsigned)cf >= SMC_CF_COUNT)
    return SMC_EINVALID_ARGUMENT;
  list_t *l = &ov->cf[cf];
  node_t *upd[MAXLEVEL];
  node_t *x = find_ge(l, key, klen, upd);
  if (tombstone)
    val = NULL, vlen = 0;
  else if (!val) /* an empty value, not a delete */
    val = "", vlen = 0;
  if (x && cmp(x->key, x->klen, key, klen) == 0) {
    size_t old = x->vlen;
    if (node_set_val(x, val, vlen))
      return SMC_ENOMEM;
    ov->bytes = ov->bytes - old + x->vlen;
    return 0;
  }
  int lvl = random_level(ov);
  if (lvl > l->level)
    l->level = lvl;
  node_t *n = node_new(lvl, key, klen);
  if (!n)
    return SMC_ENOMEM;
  if (node_set_val(n, val, vlen)) {
    free(n);
    return SMC_ENOMEM;
  }
  for (int i = 0; i < lvl; i++) {
    n->next[i] = upd[i]->next[i];
    upd[i]->next[i] = n;
  }
  ov->pending++;
  ov->bytes += klen + n->vlen;
  return 0;
}

static int ov_put(void *self, smc_cf_t cf, const void *key, size_t klen, const void *val,
                  size_t vlen) {
  return ov_set(self, cf, key, klen, val, vlen, 0);
}

static int ov_del(void *self, smc_cf_t cf, const void *key, size_t klen) {
  smc_overlay_t *ov = self;
  if ((unsigned)cf >= SMC_CF_COUNT)
    return SMC_EINVALID_ARGUMENT;
  if (ov->base)
    return ov_set(ov, cf, key, klen, NULL, 0, 1);
  list_t *l = &ov->cf[cf];
  node_t *upd[MAXLEVEL];
  node_t *x = find_ge(l, key, klen, upd);
  if (!x || cmp(x->key, x->klen, key, klen) != 0)
    return 0;
  for (int i = 0; i < x->level; i++)
    upd[i]->next[i] = x->next[i];
  ov->pending--;
  ov->bytes -= x->klen + x->vlen;
  node_free(x);
  return 0;
}

static int ov_get(void *self, smc_cf_t cf, const void *key, size_t klen, void **val, size_t *vlen) {
  smc_overlay_t *ov = self;
  if ((unsigned)cf >= SMC_CF_COUNT)
    return SMC_EINVALID_ARGUMENT;
  node_t *x = find_ge(&ov->cf[cf], key, klen, NULL);
  if (x && cmp(x->key, x->klen, key, klen) == 0) {
    if (!x->val)
      return SMC_ENOT_FOUND;
    if (!(*val = dup_bytes(x->val, x->vlen)))
      return SMC_ENOMEM;
    *vlen = x->vlen;
    return 0;
  }
  if (!ov->base)
    return SMC_ENOT_FOUND;
  return smc_kv_get(ov->base, cf, key, klen, val, vlen);
}

/* The merged seek: the smallest key >= from (and < limit) that is live in
 * the overlay, or in the base and not hidden by an overlay tombstone. */
static int ov_seek(void *self, smc_cf_t cf, const void *from, size_t flen, const void *limit,
                   size_t llen, void **key, size_t *klen, void **val, size_t *vlen) {
  smc_overlay_t *ov = self;
  if ((unsigned)cf >= SMC_CF_COUNT)
    return SMC_EINVALID_ARGUMENT;
  node_t *o = find_ge(&ov->cf[cf], from, flen, NULL);
  void *bk = NULL, *bv = NULL;
  size_t bkl = 0, bvl = 0;
  int have_b = 0, rc;
  uint8_t *cur = NULL; /* re-seek position for the base */
  if (ov->base) {
    rc = smc_kv_seek(ov->base, cf, from, flen, limit, llen, &bk, &bkl, &bv, &bvl);
    if (rc && rc != SMC_ENOT_FOUND)
      return rc;
    have_b = rc == 0;
  }
  for (;;) {
    if (o && limit && cmp(o->key, o->klen, limit, llen) >= 0)
      o = NULL;
    if (!o && !have_b)
      return SMC_ENOT_FOUND;
    int c = !o ? 1 : !have_b ? -1 : cmp(o->key, o->klen, bk, bkl);
    if (c > 0) { /* the base key comes first and nothing in the overlay hides it */
      *key = bk, *klen = bkl, *val = bv, *vlen = bvl;
      return 0;
    }
    if (o->val) {
      free(bk);
      free(bv);
      if (!(*key = dup_bytes(o->key, o->klen)))
        return SMC_ENOMEM;
      if (!(*val = dup_bytes(o->val, o->vlen))) {
        free(*key);
        return SMC_ENOMEM;
      }
      *klen = o->klen, *vlen = o->vlen;
      return 0;
    }
    /* o is a tombstone: skip it, and the base key it hides if equal */
    if (c == 0) {
      free(bk);
      free(bv);
      bk = bv = NULL;
      cur = malloc(o->klen + 1);
      if (!cur)
        return SMC_ENOMEM;
      memcpy(cur, o->key, o->klen);
      cur[o->klen] = 0;
      rc = smc_kv_seek(ov->base, cf, cur, o->klen + 1, limit, llen, &bk, &bkl, &bv, &bvl);
      free(cur);
      if (rc && rc != SMC_ENOT_FOUND)
        return rc;
      have_b = rc == 0;
    }
    o = o->next[0];
  }
}

static const smc_kv_ops_t overlay_ops = {ov_get, ov_put, ov_del, ov_seek};

smc_kv_t smc_overlay_kv(smc_overlay_t *ov) {
  smc_kv_t kv = {&overlay_ops, ov};
  return kv;
}

int smc_overlay_foreach(smc_overlay_t *ov,
                        int (*fn)(void *opaque, smc_cf_t cf, const void *key, size_t klen,
                                  const void *val, size_t vlen),
                        void *opaque) {
  for (int c = 0; c < SMC_CF_COUNT; c++)
    for (node_t *x = ov->cf[c].head->next[0]; x; x = x->next[0]) {
      int rc = fn(opaque, (smc_cf_t)c, x->key, x->klen, x->val, x->vlen);
      if (rc)
        return rc;
    }
  return 0;
}
