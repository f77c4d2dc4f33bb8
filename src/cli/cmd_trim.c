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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_trim.h"
#include "kafka/admin.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"
#include "node/roles.h"
#include "node/snapshot.h"

/* The committer group's committed offsets of topic's partitions 0..n-1
 * into out (-1 none). Returns 0 or a negative code. */
static int committed_offsets(const smc_cli_conn_t *conn, const char *topic, int32_t n, int64_t *out,
                             int timeout_ms) {
  char *group = smc_node_group_name(conn->prefix, "committer");
  if (!group)
    return SMC_ENOMEM;
  int rc = smc_kafka_group_committed(conn->bootstrap, (const char *const *)conn->props, group,
                                     topic, n, out, timeout_ms);
  free(group);
  return rc;
}

/* One partition's figures, as a JSON line (or a text line). */
static void print_partition(int json, int dry_run, int32_t p, int64_t lo, int64_t committed,
                            const smc_checkpoint_t *cp, int64_t before, const char *err) {
  if (json)
    printf("{\"partition\":%d,\"log_start\":%lld,\"committed\":%lld,\"checkpoint\":%lld,"
           "\"complete\":%s,\"trim_to\":%lld%s%s%s}\n",
           (int)p, (long long)lo, (long long)committed, (long long)cp->offset,
           cp->complete ? "true" : "false", (long long)before,
           dry_run ? ",\"dry_run\":true"
           : err   ? ",\"error\":\""
                   : "",
           err && !dry_run ? err : "", err && !dry_run ? "\"" : "");
  else if (before < 0)
    printf("partition %d: kept (log start %lld, checkpoint %lld%s, committed %lld)\n", (int)p,
           (long long)lo, (long long)cp->offset, cp->complete ? "" : " incomplete",
           (long long)committed);
  else
    printf("partition %d: %s before %lld (log start was %lld)%s%s\n", (int)p,
           dry_run ? "would trim"
           : err   ? "failed to trim"
                   : "trimmed",
           (long long)before, (long long)lo, err ? ": " : "", err ? err : "");
}

int smc_cli_topics_trim(const smc_cli_conn_t *conn, int timeout_ms, int dry_run, int json) {
  char errstr[512];
  char *proposals = smc_topic(conn->prefix, "proposals");
  char *changelog = smc_topic(conn->prefix, "changelog");
  smc_kafka_spec_t spec = {.type = SMC_KAFKA_PRODUCER,
                           .bootstrap = conn->bootstrap,
                           .props = (const char *const *)conn->props};
  smc_kafka_t *rk = smc_kafka_open(&spec, errstr, sizeof errstr);
  int64_t *committed = NULL, *before = NULL;
  const char **errs = NULL;
  int rc = SMC_EXIT_FAILED;
  if (!rk) {
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
        smc_kafka_watermarks(rk, proposals, p, &lo[p], &hi, timeout_ms) < 0) {
      fprintf(stderr, "smc topics trim: partition %d: %s\n", (int)p,
              err.message[0] ? err.message : "watermarks unavailable");
      rc = SMC_EXIT_UNAVAILABLE;
      break;
    }
    int safe = cps[p].complete && cps[p].offset > lo[p] && cps[p].offset <= committed[p];
    before[p] = safe && !dry_run ? cps[p].offset : -1;
  }
  if (rc == SMC_EXIT_OK) {
    int d =
        smc_kafka_delete_records(rk, proposals, n, before, errs, timeout_ms, errstr, sizeof errstr);
    if (d == SMC_EKAFKA)
      fprintf(stderr, "smc topics trim: %s\n", errstr);
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
  smc_kafka_close(rk);
  free(proposals);
  free(changelog);
  return rc;
}
