/*
 * smc topics trim: delete the records of <prefix>proposals that the
 * changelog's snapshots make unnecessary (Kafka DeleteRecords).
 *
 * Per partition p the safe point is the last checkpoint of p in
 * <prefix>changelog, when it is complete and at most the committer group's
 * committed offset: a node restoring p loads the snapshot and folds only
 * the log from there. Nothing at or after the safe point is deleted, and a
 * partition whose changelog is incomplete or missing is left alone.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_trim.h"
#include "kafka/kconf.h"
#include "node/roles.h"
#include "node/snapshot.h"

/* The committer group's committed offsets of topic's partitions 0..n-1
 * into out (-1 none). Returns 0 or a negative code. */
static int committed_offsets(const smc_cli_conn_t *conn, const char *topic, int32_t n, int64_t *out,
                             int timeout_ms) {
  char errstr[512];
  char *group = smc_node_group_name(conn->prefix, "committer");
  rd_kafka_conf_t *conf =
      smc_kconf_new(conn->bootstrap, (const char *const *)conn->props, errstr, sizeof errstr);
  if (!group || !conf || rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr)) {
    if (conf)
      rd_kafka_conf_destroy(conf);
    free(group);
    return SMC_EKAFKA;
  }
  free(group);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return SMC_EKAFKA;
  }
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (int32_t p = 0; p < n; p++)
    rd_kafka_topic_partition_list_add(l, topic, p);
  int rc = rd_kafka_committed(rk, l, timeout_ms) ? SMC_EUNAVAILABLE : 0;
  for (int i = 0; rc == 0 && i < l->cnt; i++)
    out[l->elems[i].partition] = l->elems[i].err ? -1 : l->elems[i].offset;
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_destroy(rk);
  return rc;
}

/* DeleteRecords of topic's partitions before before[p] (-1: leave p);
 * per-partition errors into errs (0 ok). Returns 0 or a negative code. */
static int delete_records(rd_kafka_t *rk, const char *topic, int32_t n, const int64_t *before,
                          int *errs, int timeout_ms) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (int32_t p = 0; p < n; p++)
    if (before[p] >= 0)
      rd_kafka_topic_partition_list_add(l, topic, p)->offset = before[p];
  int rc = 0;
  if (l->cnt == 0) {
    rd_kafka_topic_partition_list_destroy(l);
    return 0;
  }
  rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(l);
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETERECORDS);
  char errstr[256];
  rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, errstr, sizeof errstr);
  rd_kafka_DeleteRecords(rk, &del, 1, opt, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
  if (!ev) {
    rc = SMC_EUNAVAILABLE;
  } else if (rd_kafka_event_error(ev)) {
    fprintf(stderr, "smc topics trim: %s\n", rd_kafka_event_error_string(ev));
    rc = SMC_EKAFKA;
  } else {
    const rd_kafka_DeleteRecords_result_t *res = rd_kafka_event_DeleteRecords_result(ev);
    const rd_kafka_topic_partition_list_t *out = rd_kafka_DeleteRecords_result_offsets(res);
    for (int i = 0; out && i < out->cnt; i++)
      if (out->elems[i].partition >= 0 && out->elems[i].partition < n)
        errs[out->elems[i].partition] = out->elems[i].err;
  }
  if (ev)
    rd_kafka_event_destroy(ev);
  rd_kafka_DeleteRecords_destroy(del);
  rd_kafka_AdminOptions_destroy(opt);
  rd_kafka_queue_destroy(q);
  return rc;
}

/* One partition's figures, as a JSON line (or a text line). */
static void print_partition(int json, int dry_run, int32_t p, int64_t lo, int64_t committed,
                            const smc_checkpoint_t *cp, int64_t before, int err) {
  if (json)
    printf("{\"partition\":%d,\"log_start\":%lld,\"committed\":%lld,\"checkpoint\":%lld,"
           "\"complete\":%s,\"trim_to\":%lld%s%s%s}\n",
           (int)p, (long long)lo, (long long)committed, (long long)cp->offset,
           cp->complete ? "true" : "false", (long long)before,
           dry_run ? ",\"dry_run\":true"
           : err   ? ",\"error\":\""
                   : "",
           err && !dry_run ? rd_kafka_err2str((rd_kafka_resp_err_t)err) : "",
           err && !dry_run ? "\"" : "");
  else if (before < 0)
    printf("partition %d: kept (log start %lld, checkpoint %lld%s, committed %lld)\n", (int)p,
           (long long)lo, (long long)cp->offset, cp->complete ? "" : " incomplete",
           (long long)committed);
  else
    printf("partition %d: %s before %lld (log start was %lld)%s%s\n", (int)p,
           dry_run ? "would trim"
           : err   ? "failed to trim"
                   : "trimmed",
           (long long)before, (long long)lo, err ? ": " : "",
           err ? rd_kafka_err2str((rd_kafka_resp_err_t)err) : "");
}

int smc_cli_topics_trim(const smc_cli_conn_t *conn, int timeout_ms, int dry_run, int json) {
  char errstr[512];
  char *proposals = smc_topic(conn->prefix, "proposals");
  char *changelog = smc_topic(conn->prefix, "changelog");
  rd_kafka_conf_t *conf =
      smc_kconf_new(conn->bootstrap, (const char *const *)conn->props, errstr, sizeof errstr);
  rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr) : NULL;
  int64_t *committed = NULL, *before = NULL;
  int *errs = NULL;
  int rc = SMC_EXIT_FAILED;
  if (!rk) {
    if (conf)
      rd_kafka_conf_destroy(conf);
    fprintf(stderr, "smc topics trim: %s\n", errstr);
    goto out;
  }
  int32_t n = proposals && changelog ? smc_kafka_partitions(rk, proposals, timeout_ms) : SMC_ENOMEM;
  if (n < 0) {
    fprintf(stderr, "smc topics trim: %s: %s\n", proposals ? proposals : "?", smc_strerror(n));
    rc = smc_cli_exit_for(n);
    goto out;
  }
  committed = calloc((size_t)n, sizeof *committed);
  before = calloc((size_t)n, sizeof *before);
  errs = calloc((size_t)n, sizeof *errs);
  if (!committed || !before || !errs)
    goto out;
  int e = committed_offsets(conn, proposals, n, committed, timeout_ms);
  if (e < 0) {
    fprintf(stderr, "smc topics trim: committed offsets: %s\n", smc_strerror(e));
    rc = smc_cli_exit_for(e);
    goto out;
  }
  smc_snapshot_restore_t r = {.bootstrap = conn->bootstrap,
                              .props = (const char *const *)conn->props,
                              .topic = changelog,
                              .idle_timeout_ms = timeout_ms};
  smc_checkpoint_t *cps = calloc((size_t)n, sizeof *cps);
  int64_t *lo = calloc((size_t)n, sizeof *lo);
  if (!cps || !lo) {
    free(cps);
    free(lo);
    goto out;
  }
  rc = SMC_EXIT_OK;
  for (int32_t p = 0; p < n && rc == SMC_EXIT_OK; p++) {
    smc_error_t err;
    smc_error_clear(&err);
    int64_t hi = 0;
    if (smc_snapshot_last_checkpoint(&r, p, &cps[p], &err) < 0 ||
        rd_kafka_query_watermark_offsets(rk, proposals, p, &lo[p], &hi, timeout_ms)) {
      fprintf(stderr, "smc topics trim: partition %d: %s\n", (int)p,
              err.message[0] ? err.message : "watermarks unavailable");
      rc = SMC_EXIT_UNAVAILABLE;
      break;
    }
    int safe = cps[p].complete && cps[p].offset > lo[p] && cps[p].offset <= committed[p];
    before[p] = safe && !dry_run ? cps[p].offset : -1;
  }
  if (rc == SMC_EXIT_OK) {
    int d = delete_records(rk, proposals, n, before, errs, timeout_ms);
    if (d < 0)
      rc = smc_cli_exit_for(d);
    for (int32_t p = 0; p < n; p++) {
      int would = cps[p].complete && cps[p].offset > lo[p] && cps[p].offset <= committed[p];
      print_partition(json, dry_run, p, lo[p], committed[p], &cps[p],
                      before[p] >= 0 || (dry_run && would) ? cps[p].offset : -1, errs[p]);
      if (errs[p])
        rc = SMC_EXIT_FAILED;
    }
  }
  free(cps);
  free(lo);
out:
  free(committed);
  free(before);
  free(errs);
  if (rk)
    rd_kafka_destroy(rk);
  free(proposals);
  free(changelog);
  return rc;
}
