/* A bounded LRU of JSON values (lru.h). */
#include "base/lru.h"

#include <stdlib.h>
#include <string.h>

/* One entry, its key in the same allocation. */
typedef struct lru_node {
  json_t *val;
  struct lru_node *hnext;       /* hash chain */
  struct lru_node *prev, *next; /* recency list, head = most recent */
  size_t cost;                  /* estimated bytes: node with its key, value */
  int64_t num;                  /* caller's number (a version), 0 by default */
  char key[];
} lru_node_t;

struct smc_lru {
  lru_node_t **buckets;
  size_t nbuckets, count, capacity;
  size_t bytes, max_bytes; /* max_bytes 0: bounded by count only */
  lru_node_t *head, *tail;
};

/* malloc's chunk for a request of n bytes: 8 bytes of header, 16-byte
 * granularity, 32 bytes at least (glibc on 64-bit). */
static size_t chunk(size_t n) {
  size_t c = (n + 8 + 15) & ~(size_t)15;
  return c < 32 ? 32 : c;
}

size_t smc_json_cost(const json_t *v) {
  if (!v)
    return 0;
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    /* struct with its hashtable, a bucket array of 2^order list heads, one
     * pair allocation per member (list links, hash, value, key inline) */
    size_t n = json_object_size(v), buckets = 8;
    while (buckets < n)
      buckets *= 2;
    size_t c = chunk(96) + chunk(buckets * 16);
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)v, k, m) c += chunk(48 + strlen(k) + 1) + smc_json_cost(m);
    return c;
  }
  case JSON_ARRAY: {
    size_t n = json_array_size(v), cap = 8;
    while (cap < n)
      cap *= 2;
    size_t c = chunk(40) + chunk(cap * sizeof(json_t *));
    for (size_t i = 0; i < n; i++)
      c += smc_json_cost(json_array_get(v, i));
    return c;
  }
  case JSON_STRING:
    return chunk(32) + chunk(json_string_length(v) + 1);
  case JSON_INTEGER:
  case JSON_REAL:
    return chunk(24);
  default:
    return 0; /* true, false, null are shared singletons */
  }
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

smc_lru_t *smc_lru_new(size_t capacity) {
  smc_lru_t *l = calloc(1, sizeof(*l));
  if (!l)
    return NULL;
  l->capacity = capacity ? capacity : 1;
  l->nbuckets = 64;
  while (l->nbuckets < l->capacity)
    l->nbuckets *= 2;
  if (!(l->buckets = calloc(l->nbuckets, sizeof(*l->buckets)))) {
    free(l);
    l = NULL;
  }
  return l;
}

static void node_free(lru_node_t *n) {
  json_decref(n->val);
  free(n);
}

static void list_unlink(smc_lru_t *l, lru_node_t *n) {
  if (n->prev)
    n->prev->next = n->next;
  else
    l->head = n->next;
  if (n->next)
    n->next->prev = n->prev;
  else
    l->tail = n->prev;
  n->prev = n->next = NULL;
}

static void list_push_front(smc_lru_t *l, lru_node_t *n) {
  n->prev = NULL;
  n->next = l->head;
  if (l->head)
    l->head->prev = n;
  l->head = n;
  if (!l->tail)
    l->tail = n;
}

static lru_node_t **lru_slot(smc_lru_t *l, const char *key) {
  lru_node_t **p = &l->buckets[hash_str(key) & (l->nbuckets - 1)];
  while (*p && strcmp((*p)->key, key))
    p = &(*p)->hnext;
  return p;
}

static void lru_evict_tail(smc_lru_t *l) {
  lru_node_t *n = l->tail;
  lru_node_t **p = lru_slot(l, n->key);
  *p = n->hnext;
  list_unlink(l, n);
  l->bytes -= n->cost;
  node_free(n);
  l->count--;
}

void smc_lru_destroy(smc_lru_t *l) {
  if (!l)
    return;
  while (l->count)
    lru_evict_tail(l);
  free(l->buckets);
  free(l);
}

/* Evict from the tail until both bounds hold; the newest entry stays. */
static void lru_trim(smc_lru_t *l) {
  while (l->count > 1 && (l->count > l->capacity || (l->max_bytes && l->bytes > l->max_bytes)))
    lru_evict_tail(l);
}

void smc_lru_set_max_bytes(smc_lru_t *l, size_t max_bytes) {
  l->max_bytes = max_bytes;
  lru_trim(l);
}

size_t smc_lru_count(const smc_lru_t *l) { return l->count; }

size_t smc_lru_bytes(const smc_lru_t *l) { return l->bytes; }

void smc_lru_put(smc_lru_t *l, const char *key, json_t *v) { smc_lru_put_num(l, key, v, 0); }

void smc_lru_put_num(smc_lru_t *l, const char *key, json_t *v, int64_t num) {
  size_t kn = strlen(key) + 1;
  size_t cost = chunk(sizeof(lru_node_t) + kn) + smc_json_cost(v);
  lru_node_t **p = lru_slot(l, key);
  if (*p) {
    json_t *old = (*p)->val;
    (*p)->val = json_incref(v);
    (*p)->num = num;
    json_decref(old);
    l->bytes = l->bytes - (*p)->cost + cost;
    (*p)->cost = cost;
    list_unlink(l, *p);
    list_push_front(l, *p);
    lru_trim(l);
    return;
  }
  lru_node_t *n = calloc(1, sizeof(*n) + kn);
  if (!n)
    return; /* out of memory: the cache simply forgets */
  memcpy(n->key, key, kn);
  n->val = json_incref(v);
  n->num = num;
  n->cost = cost;
  *p = n;
  list_push_front(l, n);
  l->count++;
  l->bytes += cost;
  lru_trim(l);
}

json_t *smc_lru_get(smc_lru_t *l, const char *key) { return smc_lru_get_num(l, key, NULL); }

json_t *smc_lru_get_num(smc_lru_t *l, const char *key, int64_t *num) {
  lru_node_t *n = *lru_slot(l, key);
  if (!n)
    return NULL;
  list_unlink(l, n);
  list_push_front(l, n);
  if (num)
    *num = n->num;
  return json_incref(n->val);
}
