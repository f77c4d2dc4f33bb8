/* smc export: print a topic as JSON lines (partition, offset, key, value). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "cli/logcmd.h"
#include "core/kv.h"
#include "core/util.h"
#include "kafka/kconf.h"
#include "kafka/reader.h"
#include "node/replay.h"
#include "node/roles.h"
#include "smc/fold.h"
#include "store/store.h"

/* ---- smc export ------------------------------------------------------------ */

/* Bytes that are not UTF-8 text (the changelog's keys and values) as hex. */
static json_t *hex_of(const void *p, size_t n) {
  char *h = malloc(2 * n + 1);
  if (!h)
    return NULL;
  for (size_t i = 0; i < n; i++)
    snprintf(h + 2 * i, 3, "%02x", ((const unsigned char *)p)[i]);
  json_t *j = json_stringn(h, 2 * n);
  free(h);
  return j;
}

static int print_record(void *opaque, const smc_record_t *m) {
  (void)opaque;
  json_t *val = m->value ? json_loadb(m->value, m->value_len, 0, NULL) : json_null();
  const char *vname = "value", *kname = "key";
  if (!val)
    val = json_stringn(m->value, m->value_len);
  if (!val) {
    val = hex_of(m->value, m->value_len);
    vname = "value_hex";
  }
  json_t *j = json_pack("{s:i,s:I,s:I,s:o}", "partition", (int)m->partition, "offset",
                        (json_int_t)m->offset, "timestamp", (json_int_t)m->timestamp, vname, val);
  if (!j)
    return -1;
  if (m->key) {
    json_t *k = json_stringn(m->key, m->key_len);
    if (!k) {
      k = hex_of(m->key, m->key_len);
      kname = "key_hex";
    }
    json_object_set_new(j, kname, k);
  }
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  if (!s)
    return -1;
  puts(s);
  free(s);
  return 0;
}

static void export_usage(FILE *out) {
  fprintf(out, "usage: smc export --topic NAME [--bootstrap B] [--prefix P] [-X KEY=VALUE]\n"
               "\n"
               "Print the records of <prefix>NAME (e.g. proposals, confirmations), read\n"
               "committed up to its current end, as JSON lines:\n"
               "  {\"key\":...,\"offset\":...,\"partition\":...,\"timestamp\":...,\"value\":...}\n"
               "in partition order, then offset order. A value that is not JSON is a\n"
               "string; bytes that are not UTF-8 (the changelog's) come as \"value_hex\" /\n"
               "\"key_hex\"; a tombstone's value is null.\n");
}

static int cmd_export_run(int argc, char **argv) {
  static const struct option longopts[] = {SMC_LOGCMD_CONN_LONGOPTS,
                                           {"topic", required_argument, NULL, OPT_TOPIC},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  smc_logcmd_t l;
  const char *name = NULL;
  int opt, rc = SMC_EXIT_USAGE;
  smc_logcmd_init(&l, "export", 0);
  while ((opt = smc_logcmd_getopt(&l, argc, argv, "hX:", longopts, export_usage)) != -1) {
    if (opt != OPT_TOPIC) {
      rc = opt == SMC_LOGCMD_HELP ? SMC_EXIT_OK : SMC_EXIT_USAGE; /* help, or BAD */
      goto out;
    }
    name = optarg;
  }
  if (!name || optind < argc) {
    export_usage(stderr);
    goto out;
  }
  rc = SMC_EXIT_FAILED;
  int32_t n = smc_logcmd_open(&l, name);
  /* One partition at a time keeps the output in (partition, offset) order. */
  for (int32_t p = 0; p < n; p++) {
    char why[512] = "";
    int e = smc_kafka_read_to_end(l.rk, l.topic, p, 1, print_record, NULL, why, sizeof why);
    if (e < 0) {
      if (e == SMC_EUNAVAILABLE)
        fprintf(stderr, "smc export: %s\n", why);
      rc = smc_cli_exit_for(e);
      goto out;
    }
  }
  if (n >= 0)
    rc = SMC_EXIT_OK;
out:
  fflush(stdout);
  smc_logcmd_close(&l);
  return rc;
}

const smc_command_t smc_cmd_export = {"export", "print a topic's records as JSON lines",
                                      cmd_export_run};
