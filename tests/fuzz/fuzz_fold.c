/* Fuzz target: a short log of fuzzed records folded over an in-memory overlay
 * (src/core/overlay.c, base NULL) with the lock machine registered.
 *
 * The input is split at '\n' into records. The first byte of each line sets
 * the record's time step (byte % 64 seconds) and, with bit 6, gives it the
 * key "lock-a" instead of none; the rest of the line is the record value.
 * Every record is folded into a one-partition fold, and then the whole log is
 * folded again into a fresh overlay. Checked on every input:
 *  - smc_fold_apply returns 0 (bad events are outputs, never errors);
 *  - every output is a JSON object, and a confirmation has an outcome;
 *  - per object, committed (non-duplicate) versions are 1, 2, 3... in order;
 *  - the second run emits exactly the same bytes (determinism). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kv.h"
#include "smc/fold.h"

#ifndef SMC_SOURCE_DIR
#define SMC_SOURCE_DIR "."
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *lock_yaml;
static size_t lock_len;

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_fold: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  abort();
}

static void load_lock(void) {
  if (lock_yaml)
    return;
  FILE *fp = fopen(SMC_SOURCE_DIR "/examples/machines/lock.yaml", "rb");
  if (!fp)
    fail("cannot open examples/machines/lock.yaml", NULL);
  static char buf[65536];
  lock_len = fread(buf, 1, sizeof buf - 1, fp);
  fclose(fp);
  buf[lock_len] = 0;
  lock_yaml = buf;
}

/* Everything emitted in one run, and the last committed version per object
 * (a small list: fuzzed logs name few objects). */
typedef struct seen {
  char *bytes;
  size_t len, cap;
  int check;
  struct {
    char *object;
    int64_t version;
  } obj[64];
  int nobj;
} seen_t;

static void seen_add(seen_t *s, const void *p, size_t n) {
  if (s->len + n + 1 > s->cap) {
    size_t cap = (s->cap ? s->cap * 2 : 4096) + n;
    char *q = realloc(s->bytes, cap);
    if (!q)
      fail("out of memory", NULL);
    s->bytes = q;
    s->cap = cap;
  }
  memcpy(s->bytes + s->len, p, n);
  s->len += n;
}

static void check_version(seen_t *s, const char *object, int64_t version) {
  for (int i = 0; i < s->nobj; i++) {
    if (strcmp(s->obj[i].object, object) == 0) {
      if (version != s->obj[i].version + 1)
        fail("committed versions not consecutive for", object);
      s->obj[i].version = version;
      return;
    }
  }
  if (version != 1)
    fail("first committed version is not 1 for", object);
  if (s->nobj < 64) {
    s->obj[s->nobj].object = strdup(object);
    s->obj[s->nobj].version = 1;
    s->nobj++;
  }
}

static int on_emit(void *opaque, const smc_output_t *out) {
  seen_t *s = opaque;
  char kind = (char)('0' + out->kind);
  seen_add(s, &kind, 1);
  seen_add(s, out->json, out->json_len);
  seen_add(s, "\n", 1);
  if (!s->check)
    return 0;
  json_error_t jerr;
  json_t *j = json_loadb(out->json, out->json_len, 0, &jerr);
  if (!j || !json_is_object(j))
    fail("output is not a JSON object", out->json);
  if (out->kind == SMC_OUT_CONFIRMATION) {
    const char *outcome = json_string_value(json_object_get(j, "outcome"));
    if (!outcome)
      fail("confirmation without outcome", out->json);
    const char *object = json_string_value(json_object_get(j, "object"));
    int dup = json_is_true(json_object_get(j, "duplicate"));
    if (strcmp(outcome, "committed") == 0 && !dup) {
      if (!object)
        fail("committed confirmation without object", out->json);
      check_version(s, object, json_integer_value(json_object_get(j, "version")));
    }
  }
  json_decref(j);
  return 0;
}

static void run(const uint8_t *data, size_t size, seen_t *s) {
  smc_fold_config_t cfg;
  smc_fold_config_default(&cfg);
  cfg.partitions = 1;
  cfg.max_event_bytes = 4096;
  cfg.max_queue = 4;
  smc_fold_t *f = NULL;
  if (smc_fold_new(&cfg, &f) != 0)
    fail("smc_fold_new", NULL);
  smc_overlay_t *ov = smc_overlay_new(NULL);
  if (!ov)
    fail("smc_overlay_new", NULL);
  smc_kv_t kv = smc_overlay_kv(ov);
  smc_error_t err;
  memset(&err, 0, sizeof err);
  if (smc_fold_register_machine(f, &kv, 0, lock_yaml, lock_len, "lock.yaml", NULL, &err) != 0)
    fail("lock machine does not register", err.message);

  int64_t time = 1000000, offset = 0;
  size_t pos = 0;
  while (pos < size) {
    const uint8_t *nl = memchr(data + pos, '\n', size - pos);
    size_t end = nl ? (size_t)(nl - data) : size;
    if (end > pos) {
      uint8_t ctl = data[pos];
      time += (int64_t)(ctl % 64) * 1000;
      smc_record_t rec;
      memset(&rec, 0, sizeof rec);
      rec.partition = 0;
      rec.offset = offset++;
      rec.timestamp = time;
      if (ctl & 64) {
        rec.key = "lock-a";
        rec.key_len = 6;
      }
      rec.value = data + pos + 1;
      rec.value_len = end - pos - 1;
      int rc = smc_fold_apply(f, &kv, &rec, on_emit, s);
      if (rc != 0)
        fail("smc_fold_apply failed", smc_code_name(rc));
    }
    pos = end + 1;
  }
  smc_overlay_destroy(ov);
  smc_fold_destroy(f);
}

static void seen_free(seen_t *s) {
  free(s->bytes);
  for (int i = 0; i < s->nobj; i++)
    free(s->obj[i].object);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  load_lock();
  seen_t a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.check = 1;
  run(data, size, &a);
  run(data, size, &b);
  if (a.len != b.len || (a.len && memcmp(a.bytes, b.bytes, a.len) != 0))
    fail("two runs of the same log emit different bytes", NULL);
  seen_free(&a);
  seen_free(&b);
  return 0;
}
