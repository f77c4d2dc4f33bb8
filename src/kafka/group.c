/* The one rebalance skeleton of smc's group consumers (group.h). */
#include "kafka/group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The partitions of list as an array (malloc'd; NULL when out of memory). */
static smc_kafka_part_t *parts_of(const rd_kafka_topic_partition_list_t *l) {
  smc_kafka_part_t *a = calloc((size_t)l->cnt + 1, sizeof *a);
  for (int i = 0; a && i < l->cnt; i++)
    a[i] = (smc_kafka_part_t){
        .partition = l->elems[i].partition, .offset = l->elems[i].offset, .committed = -1};
  return a;
}

/* The group's committed offsets into a[].committed: NULL, or an error text. */
static const char *fetch_committed(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *l,
                                   smc_kafka_part_t *a) {
  rd_kafka_topic_partition_list_t *cl = rd_kafka_topic_partition_list_copy(l);
  if (!cl)
    return "out of memory";
  const char *why = NULL;
  rd_kafka_resp_err_t e = rd_kafka_committed(rk, cl, 15000);
  if (e)
    why = rd_kafka_err2str(e);
  for (int i = 0; !why && i < cl->cnt; i++) {
    if (cl->elems[i].err)
      why = rd_kafka_err2str(cl->elems[i].err);
    a[i].committed = cl->elems[i].offset;
  }
  rd_kafka_topic_partition_list_destroy(cl);
  return why;
}

static void fetch_high(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *l,
                       smc_kafka_part_t *a) {
  for (int i = 0; i < l->cnt; i++) {
    int64_t lo = 0, hi = 0;
    if (rd_kafka_query_watermark_offsets(rk, l->elems[i].topic, l->elems[i].partition, &lo, &hi,
                                         10000))
      lo = -1, hi = 0;
    a[i].high = hi;
    a[i].low = lo;
  }
}

/* (incremental_)assign parts, or unassign them (parts NULL on eager). */
static const char *change(rd_kafka_t *rk, int cooperative, int add,
                          rd_kafka_topic_partition_list_t *parts, char *buf, size_t n) {
  if (cooperative) {
    rd_kafka_error_t *e =
        add ? rd_kafka_incremental_assign(rk, parts) : rd_kafka_incremental_unassign(rk, parts);
    if (!e)
      return NULL;
    strncpy(buf, rd_kafka_error_string(e), n - 1);
    buf[n - 1] = '\0';
    rd_kafka_error_destroy(e);
    return buf;
  }
  rd_kafka_resp_err_t re = rd_kafka_assign(rk, add ? parts : NULL);
  return re ? rd_kafka_err2str(re) : NULL;
}

void smc_kafka_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, const smc_kafka_group_handler_t *h,
                         void *opaque) {
  int cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
  char buf[512];
  smc_kafka_part_t *a = parts_of(parts);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    int rc = 1;
    const char *why = NULL;
    while (a && rc > 0) {
      why = h->want_committed ? fetch_committed(rk, parts, a) : NULL;
      if (h->want_high)
        fetch_high(rk, parts, a);
      rc = h->assign(opaque, a, parts->cnt, why);
    }
    if (a && rc == 0) {
      for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = a[i].offset;
      why = change(rk, cooperative, 1, parts, buf, sizeof buf);
      if (h->assigned)
        h->assigned(opaque, a, parts->cnt, why);
    }
    free(a);
    return;
  }
  if (a) {
    int lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk);
    h->revoke(opaque, a, parts->cnt, lost,
              err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ? NULL : rd_kafka_err2str(err));
  }
  free(a);
  change(rk, cooperative, 0, parts, buf, sizeof buf);
}

int smc_kafka_assignment(rd_kafka_t *rk, smc_kafka_part_t **out, int *n, char *why, size_t len) {
  *out = NULL;
  *n = 0;
  rd_kafka_topic_partition_list_t *as = NULL;
  rd_kafka_resp_err_t e = rd_kafka_assignment(rk, &as);
  if (e) {
    snprintf(why, len, "assignment: %s", rd_kafka_err2str(e));
    return -1;
  }
  int rc = 0;
  if (as->cnt > 0) {
    smc_kafka_part_t *a = parts_of(as);
    const char *w = a ? fetch_committed(rk, as, a) : "out of memory";
    if (w) {
      snprintf(why, len, "committed offsets: %s", w);
      free(a);
      rc = -1;
    } else {
      for (int i = 0; i < as->cnt; i++)
        a[i].offset = a[i].committed;
      *out = a;
      *n = as->cnt;
    }
  }
  rd_kafka_topic_partition_list_destroy(as);
  return rc;
}

int smc_kafka_seek(rd_kafka_t *rk, const char *topic, const smc_kafka_part_t *parts, int n,
                   char *why, size_t len) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
  for (int i = 0; i < n; i++)
    rd_kafka_topic_partition_list_add(l, topic, parts[i].partition)->offset =
        parts[i].offset < 0 ? RD_KAFKA_OFFSET_BEGINNING : parts[i].offset;
  int rc = 0;
  rd_kafka_error_t *se = rd_kafka_seek_partitions(rk, l, 15000);
  if (se) {
    snprintf(why, len, "seek: %s", rd_kafka_error_string(se));
    rd_kafka_error_destroy(se);
    rc = -1;
  } else {
    for (int i = 0; i < l->cnt; i++)
      if (l->elems[i].err) {
        snprintf(why, len, "seek: %s", rd_kafka_err2str(l->elems[i].err));
        rc = -1;
      }
  }
  rd_kafka_topic_partition_list_destroy(l);
  return rc;
}
