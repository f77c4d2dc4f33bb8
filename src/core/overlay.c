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

#include "base/hash.h"
#include "core/kv.h"
#include "smc/error.h"

#define MAXLEVEL 24

/* One allocation per node: the header, the level pointers, the key bytes,
 * then room for the first value. A value written again (the partition
 * meta, an object touched twice, a growing expiry bucket) reuses that room
 * when it fits, else moves to a buffer of its own with some slack. */
typedef struct node {
  uint8_t *key; /* points just past next[level] */
  size_t klen;
  uint8_t *val; /* NULL = tombstone; else buf */
  uint8_t *buf; /* the value's room: just past the key, or malloc'd (own) */
  size_t vlen, vcap;
  struct node *hnext; /* chain of its hash bucket */
  uint32_t hash;
  int cf;
  int level;
  int own;             /* buf is malloc'd */
  int arena;           /* the node and any grown buf are arena memory */
  struct node *next[]; /* level entries, then the key, then the value room */
} node_t;

typedef struct list {
  node_t *head;
  int level; /* highest level any node has had since the last clear */
} list_t;

/* With a base (a batch that is applied and cleared), nodes and grown
 * values come from an arena of chunks that a clear rewinds: no malloc or
 * free per pending write. A clear keeps ARENA_KEEP bytes of chunks for the
 * next batch and frees the rest, so an idle overlay holds at most that.
 * Without a base (the overlay is the whole store, never cleared, deletes
 * unlink) every node is its own allocation. */
#define ARENA_CHUNK (64u << 10)
#define ARENA_KEEP (1u << 20)

typedef struct chunk {
  struct chunk *next;
  size_t cap, used;
  _Alignas(16) unsigned char data[];
} chunk_t;

/* Exact lookups (every get, and every put of a key already pending) go
 * through a hash index of all nodes instead of walking the skiplist: the
 * fold asks for a handful of keys per record, most of them not pending. */
struct smc_overlay {
  smc_kv_t *base;
  smc_kv_t base_copy;
  list_t cf[SMC_CF_COUNT];
  size_t pending, bytes;
  uint64_t rng;
  node_t **tab; /* hash buckets (chained by hnext), ntab a power of two */
  size_t ntab;
  chunk_t *chunks, *cur; /* the arena (with a base only); cur: being filled */
};

/* n bytes (16-aligned) from the arena, or NULL. */
static void *arena_alloc(smc_overlay_t *ov, size_t n) {
  n = (n + 15) & ~(size_t)15;
  while (ov->cur && ov->cur->used + n > ov->cur->cap) {
    if (!ov->cur->next)
      break;
    ov->cur = ov->cur->next; /* chunks past cur are empty */
  }
  if (!ov->cur || ov->cur->used + n > ov->cur->cap) {
    size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
    chunk_t *c = malloc(sizeof(chunk_t) + cap);
    if (!c)
      return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    if (ov->cur)
      ov->cur->next = c; /* cur is the last chunk here */
    else
      ov->chunks = c;
    ov->cur = c;
  }
  void *p = ov->cur->data + ov->cur->used;
  ov->cur->used += n;
  return p;
}

/* Rewind the arena; free the chunks past the first ARENA_KEEP bytes. */
static void arena_rewind(smc_overlay_t *ov, int keep) {
  size_t kept = 0;
  chunk_t **pp = &ov->chunks;
  while (*pp) {
    chunk_t *c = *pp;
    if (keep && kept + c->cap <= ARENA_KEEP) {
      kept += c->cap;
      c->used = 0;
      pp = &c->next;
    } else {
      *pp = c->next;
      free(c);
    }
  }
  ov->cur = ov->chunks;
}

static uint32_t key_hash(smc_cf_t cf, const void *key, size_t klen) {
  return (uint32_t)(smc_hash64(key, klen, (uint64_t)cf + 1) >> 32);
}

/* The pending node of (cf, key), or NULL. */
static node_t *tab_find(const smc_overlay_t *ov, smc_cf_t cf, const void *key, size_t klen,
                        uint32_t h) {
  if (!ov->tab)
    return NULL;
  for (node_t *x = ov->tab[h & (ov->ntab - 1)]; x; x = x->hnext)
    if (x->hash == h && x->klen == klen && x->cf == (int)cf && !memcmp(x->key, key, klen))
      return x;
  return NULL;
}

/* Index n (its hash set); grows the table to twice the nodes. */
static int tab_add(smc_overlay_t *ov, node_t *n) {
  if (ov->pending + 1 > ov->ntab / 2) {
    size_t cap = ov->ntab ? ov->ntab * 2 : 1024;
    node_t **t = calloc(cap, sizeof(*t));
    if (!t)
      return SMC_ENOMEM;
    for (size_t i = 0; i < ov->ntab; i++)
      for (node_t *x = ov->tab[i], *nx; x; x = nx) {
        nx = x->hnext;
        x->hnext = t[x->hash & (cap - 1)];
        t[x->hash & (cap - 1)] = x;
      }
    free(ov->tab);
    ov->tab = t;
    ov->ntab = cap;
  }
  node_t **b = &ov->tab[n->hash & (ov->ntab - 1)];
  n->hnext = *b;
  *b = n;
  return 0;
}

static void tab_remove(smc_overlay_t *ov, node_t *n) {
  node_t **p = &ov->tab[n->hash & (ov->ntab - 1)];
  while (*p != n)
    p = &(*p)->hnext;
  *p = n->hnext;
}

static int cmp(const void *a, size_t al, const void *b, size_t bl) {
  size_t n = al < bl ? al : bl;
  int c = n ? memcmp(a, b, n) : 0;
  if (c)
    return c;
  return al < bl ? -1 : al > bl ? 1 : 0;
}

/* A node (from the arena when ov has a base; ov NULL: malloc). */
static node_t *node_new(smc_overlay_t *ov, int level, const void *key, size_t klen, size_t vroom) {
  size_t head = sizeof(node_t) + (size_t)level * sizeof(node_t *);
  int arena = ov && ov->base;
  node_t *n = arena ? arena_alloc(ov, head + klen + vroom + 1) : malloc(head + klen + vroom + 1);
  if (!n)
    return NULL;
  memset(n, 0, head);
  n->arena = arena;
  n->level = level;
  n->key = (uint8_t *)n + head;
  n->klen = klen;
  if (klen)
    memcpy(n->key, key, klen);
  n->buf = n->key + klen;
  n->vcap = vroom;
  return n;
}

static void node_free(node_t *n) {
  if (!n || n->arena) /* the arena's memory goes with a rewind */
    return;
  if (n->own)
    free(n->buf);
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
    ov->cf[c].head = node_new(NULL, MAXLEVEL, NULL, 0, 0);
    if (!ov->cf[c].head) {
      smc_overlay_destroy(ov);
      return NULL;
    }
  }
  return ov;
}

/* Unlink every node; free them unless they are arena memory. */
static void list_clear(list_t *l, int arena) {
  if (!l->head)
    return;
  node_t *x = arena ? NULL : l->head->next[0];
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
    list_clear(&ov->cf[c], ov->base != NULL);
  arena_rewind(ov, 1);
  if (ov->tab)
    memset(ov->tab, 0, ov->ntab * sizeof(*ov->tab));
  ov->pending = 0;
  ov->bytes = 0;
}

void smc_overlay_destroy(smc_overlay_t *ov) {
  if (!ov)
    return;
  smc_overlay_clear(ov);
  arena_rewind(ov, 0);
  for (int c = 0; c < SMC_CF_COUNT; c++)
    free(ov->cf[c].head);
  free(ov->tab);
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

/* Make n hold val (NULL = tombstone), in its room when val fits. */
static int node_set_val(smc_overlay_t *ov, node_t *n, const void *val, size_t vlen) {
  if (!val) {
    n->val = NULL;
    n->vlen = 0;
    return 0;
  }
  if (n->vcap < vlen) {
    size_t cap = vlen + vlen / 2 + 16;
    uint8_t *b = n->arena ? arena_alloc(ov, cap) : malloc(cap);
    if (!b)
      return SMC_ENOMEM;
    memcpy(b, val, vlen); /* before the old room goes: val may be in it */
    if (n->own)
      free(n->buf);
    n->buf = b;
    n->vcap = cap;
    n->own = !n->arena;
  } else if (vlen) {
    memmove(n->buf, val, vlen); /* val may be n's own bytes */
  }
  n->val = n->buf;
  n->vlen = vlen;
  return 0;
}

/* Set key to val (val NULL = tombstone). Replaces an existing node's value. */
static int ov_set(smc_overlay_t *ov, smc_cf_t cf, const void *key, size_t klen, const void *val,
                  size_t vlen, int tombstone) {
  if ((unsigned)cf >= SMC_CF_COUNT)
    return SMC_EINVALID_ARGUMENT;
  if (tombstone)
    val = NULL, vlen = 0;
  else if (!val) /* an empty value, not a delete */
    val = "", vlen = 0;
  uint32_t h = key_hash(cf, key, klen);
  node_t *x = tab_find(ov, cf, key, klen, h);
  if (x) {
    size_t old = x->vlen;
    if (node_set_val(ov, x, val, vlen))
      return SMC_ENOMEM;
    ov->bytes = ov->bytes - old + x->vlen;
    return 0;
  }
  list_t *l = &ov->cf[cf];
  node_t *upd[MAXLEVEL];
  find_ge(l, key, klen, upd);
  int lvl = random_level(ov);
  node_t *n = node_new(ov, lvl, key, klen, val ? vlen : 0);
  if (!n)
    return SMC_ENOMEM;
  n->hash = h;
  n->cf = (int)cf;
  if (tab_add(ov, n)) {
    node_free(n);
    return SMC_ENOMEM;
  }
  node_set_val(ov, n, val, vlen); /* fits its room: cannot fail */
  if (lvl > l->level)
    l->level = lvl;
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
  if (!tab_find(ov, cf, key, klen, key_hash(cf, key, klen)))
    return 0;
  list_t *l = &ov->cf[cf];
  node_t *upd[MAXLEVEL];
  node_t *x = find_ge(l, key, klen, upd);
  for (int i = 0; i < x->level; i++)
    upd[i]->next[i] = x->next[i];
  tab_remove(ov, x);
  ov->pending--;
  ov->bytes -= x->klen + x->vlen;
  node_free(x);
  return 0;
}

static int ov_get(void *self, smc_cf_t cf, const void *key, size_t klen, void **val, size_t *vlen) {
  smc_overlay_t *ov = self;
  if ((unsigned)cf >= SMC_CF_COUNT)
    return SMC_EINVALID_ARGUMENT;
  node_t *x = tab_find(ov, cf, key, klen, key_hash(cf, key, klen));
  if (x) {
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

int smc_overlay_foreach_cf(smc_overlay_t *ov, smc_cf_t cf,
                           int (*fn)(void *opaque, smc_cf_t cf, const void *key, size_t klen,
                                     const void *val, size_t vlen),
                           void *opaque) {
  if ((unsigned)cf >= SMC_CF_COUNT)
    return SMC_EINVALID_ARGUMENT;
  for (node_t *x = ov->cf[cf].head->next[0]; x; x = x->next[0]) {
    int rc = fn(opaque, cf, x->key, x->klen, x->val, x->vlen);
    if (rc)
      return rc;
  }
  return 0;
}

int smc_overlay_foreach(smc_overlay_t *ov,
                        int (*fn)(void *opaque, smc_cf_t cf, const void *key, size_t klen,
                                  const void *val, size_t vlen),
                        void *opaque) {
  for (int c = 0; c < SMC_CF_COUNT; c++) {
    int rc = smc_overlay_foreach_cf(ov, (smc_cf_t)c, fn, opaque);
    if (rc)
      return rc;
  }
  return 0;
}
