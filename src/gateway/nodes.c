/*
 * The gateway's view of the node table (<prefix>nodes, written by each
 * node's heartbeat: src/node/heartbeat.c): the latest record of every node,
 * read by the follower from the topic's beginning. It answers GET /nodes and
 * tells the forwarding which node folds a partition.
 *
 * A node is down when its latest record is older than down_after_ms by the
 * gateway's wall clock (the record's "time" is the writer's wall clock), or
 * when it says it stopped.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "gateway/gw_internal.h"

#define MAX_NODES 1024

typedef struct node_entry {
  char *id;
  json_t *rec;
} node_entry_t;

struct gw_nodes {
  pthread_mutex_t mu;
  node_entry_t e[MAX_NODES];
  int n;
};

gw_nodes_t *smc_gw_nodes_new(void) {
  gw_nodes_t *t = calloc(1, sizeof *t);
  if (t)
    pthread_mutex_init(&t->mu, NULL);
  return t;
}

void smc_gw_nodes_destroy(gw_nodes_t *t) {
  if (!t)
    return;
  for (int i = 0; i < t->n; i++) {
    free(t->e[i].id);
    json_decref(t->e[i].rec);
  }
  pthread_mutex_destroy(&t->mu);
  free(t);
}

void smc_gw_nodes_put(gw_nodes_t *t, const char *key, size_t key_len, const char *text,
                      size_t len) {
  if (!t || !key || key_len == 0 || key_len > 200)
    return;
  json_t *rec = text && len ? json_loadb(text, len, 0, NULL) : NULL;
  if (rec && (!json_is_object(rec) || !json_is_string(json_object_get(rec, "node")))) {
    json_decref(rec);
    return; /* not a node record: ignored */
  }
  pthread_mutex_lock(&t->mu);
  int i = 0;
  while (i < t->n && (strlen(t->e[i].id) != key_len || memcmp(t->e[i].id, key, key_len)))
    i++;
  if (!rec) { /* a tombstone removes the node */
    if (i < t->n) {
      free(t->e[i].id);
      json_decref(t->e[i].rec);
      t->e[i] = t->e[--t->n];
    }
  } else if (i < t->n) {
    json_decref(t->e[i].rec);
    t->e[i].rec = rec;
    rec = NULL;
  } else if (t->n < MAX_NODES && (t->e[i].id = strndup(key, key_len))) {
    t->e[i].rec = rec;
    t->n++;
    rec = NULL;
  }
  pthread_mutex_unlock(&t->mu);
  json_decref(rec);
}

static int is_down(const json_t *rec, int64_t now, int64_t down_after_ms) {
  return json_is_true(json_object_get(rec, "stopped")) ||
         now - json_integer_value(json_object_get(rec, "time")) > down_after_ms;
}

static int cmp_node(const void *a, const void *b) {
  return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "node")),
                json_string_value(json_object_get(*(json_t *const *)b, "node")));
}

json_t *smc_gw_nodes_list(gw_nodes_t *t, int64_t down_after_ms) {
  json_t *arr = json_array();
  int64_t now = smc_wall_ms();
  pthread_mutex_lock(&t->mu);
  json_t **sorted = calloc((size_t)t->n + 1, sizeof *sorted);
  for (int i = 0; sorted && i < t->n; i++)
    sorted[i] = t->e[i].rec;
  if (sorted)
    qsort(sorted, (size_t)t->n, sizeof *sorted, cmp_node);
  for (int i = 0; sorted && i < t->n; i++) {
    json_t *v = json_deep_copy(sorted[i]);
    int64_t seen = json_integer_value(json_object_get(v, "time"));
    json_object_set_new(v, "status", json_string(is_down(v, now, down_after_ms) ? "down" : "up"));
    json_object_set_new(v, "last_seen_ms", json_integer(now - seen > 0 ? now - seen : 0));
    json_object_del(v, "type");
    json_array_append_new(arr, v);
  }
  free(sorted);
  pthread_mutex_unlock(&t->mu);
  return arr;
}

int smc_gw_nodes_route(gw_nodes_t *t, int32_t partition, const char *self, int64_t down_after_ms,
                       char addr[256]) {
  int found = 0;
  int64_t now = smc_wall_ms(), best = 0;
  pthread_mutex_lock(&t->mu);
  for (int i = 0; i < t->n; i++) {
    json_t *rec = t->e[i].rec;
    const char *http = json_string_value(json_object_get(rec, "http"));
    if (!http || strlen(http) >= 256 || (self && !strcmp(t->e[i].id, self)) ||
        is_down(rec, now, down_after_ms))
      continue;
    size_t k;
    json_t *p;
    json_array_foreach(json_object_get(rec, "partitions"), k, p) {
      int64_t time = json_integer_value(json_object_get(rec, "time"));
      if (json_integer_value(p) == partition && (!found || time > best)) {
        snprintf(addr, 256, "%s", http); /* the freshest claim wins */
        best = time;
        found = 1;
      }
    }
  }
  pthread_mutex_unlock(&t->mu);
  return found;
}
