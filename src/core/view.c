/* One schema for objects and decisions across REST and the CLI (view.h). */
#include "core/view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/codec.h"

static void copy_keys(json_t *dst, const json_t *src, const char *const *keys) {
  for (size_t i = 0; keys[i]; i++) {
    json_t *x = json_object_get(src, keys[i]);
    if (x)
      json_object_set(dst, keys[i], x);
  }
}

json_t *smc_view_object(const json_t *src, const char *object, const char *machine) {
  json_t *v = json_object();
  const char *oid = json_string_value(json_object_get(src, "object"));
  const char *mc = json_string_value(json_object_get(src, "machine"));
  if (oid || object)
    json_object_set_new(v, "object", json_string(oid ? oid : object));
  if (mc || machine)
    json_object_set_new(v, "machine", json_string(mc ? mc : machine));
  static const char *const keys[] = {"state",   "version", "data", "checksum",
                                     "updated", "created", NULL};
  copy_keys(v, src, keys);
  /* a confirmation's time is its commit time; a read reply's is the read's */
  const char *type = json_string_value(json_object_get(src, "type"));
  json_t *t = json_object_get(src, "time");
  if (!json_object_get(v, "updated") && t && (!type || strcmp(type, "read")))
    json_object_set(v, "updated", t);
  return v;
}

json_t *smc_view_answer(const json_t *conf, const char *object, const char *machine,
                        const char **code) {
  const char *outcome = json_string_value(json_object_get(conf, "outcome"));
  const char *id = json_string_value(json_object_get(conf, "proposal"));
  json_t *v;
  if (code)
    *code = NULL;
  if (outcome && !strcmp(outcome, "committed")) {
    v = smc_view_object(conf, object, machine);
    json_object_set_new(v, "proposal", json_string(id ? id : ""));
    static const char *const keys[] = {"transition", "votes", "offset", NULL};
    copy_keys(v, conf, keys);
  } else {
    json_t *e = json_object_get(conf, "error");
    const char *c = json_string_value(json_object_get(e, "code"));
    if (!c)
      c = outcome && !strcmp(outcome, "expired") ? "vote_timeout" : "internal";
    json_t *msg = json_object_get(e, "message"), *path = json_object_get(e, "path");
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string(c));
    json_object_set_new(err, "message",
                        msg ? json_incref(msg) : json_string(outcome ? outcome : "rejected"));
    json_object_set_new(err, "path", path ? json_incref(path) : json_string(""));
    if (code)
      *code = json_string_value(json_object_get(err, "code"));
    const char *oid = json_string_value(json_object_get(conf, "object"));
    v = json_pack("{s:o, s:s, s:s, s:s}", "error", err, "proposal", id ? id : "", "outcome",
                  outcome ? outcome : "rejected", "object",
                  oid      ? oid
                  : object ? object
                           : "");
    static const char *const keys[] = {"machine", "state",  "version", "transition",
                                       "votes",   "offset", NULL};
    copy_keys(v, conf, keys);
    if (!json_object_get(v, "machine") && machine)
      json_object_set_new(v, "machine", json_string(machine));
  }
  if (!json_object_get(v, "outcome"))
    json_object_set_new(v, "outcome", json_string(outcome ? outcome : "rejected"));
  if (json_is_true(json_object_get(conf, "duplicate")))
    json_object_set_new(v, "duplicate", json_true());
  return v;
}

/* ---- text tables ---- */

typedef struct col {
  const char *title, *key;
  size_t width;
} col_t;

static char *cell(const json_t *row, const char *key) {
  json_t *x = json_object_get(row, key);
  char buf[64];
  if (!x)
    return strdup("-");
  if (json_is_string(x))
    return strdup(json_string_value(x));
  if (!strcmp(key, "updated") && json_is_integer(x)) {
    time_t s = (time_t)(json_integer_value(x) / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return strdup(buf);
  }
  if (!strcmp(key, "error"))
    return strdup(json_string_value(json_object_get(x, "code"))
                      ? json_string_value(json_object_get(x, "code"))
                      : "-");
  return json_dumps(x, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

char *smc_view_table(const json_t *rows) {
  col_t cols[] = {
      {"OBJECT", "object", 0},     {"MACHINE", "machine", 0}, {"STATE", "state", 0},
      {"VERSION", "version", 0},   {"UPDATED", "updated", 0}, {"TRANSITION", "transition", 0},
      {"PROPOSAL", "proposal", 0}, {"OUTCOME", "error", 0},   {"DATA", "data", 0}};
  size_t ncols = sizeof(cols) / sizeof(cols[0]), n = json_array_size(rows);
  int used[sizeof(cols) / sizeof(cols[0])];
  for (size_t c = 0; c < ncols; c++) {
    used[c] = c < 5 || c == ncols - 1;
    cols[c].width = strlen(cols[c].title);
    for (size_t i = 0; i < n; i++) {
      const json_t *row = json_array_get(rows, i);
      if (json_object_get(row, cols[c].key))
        used[c] = 1;
      char *s = cell(row, cols[c].key);
      if (s && strlen(s) > cols[c].width && c != ncols - 1)
        cols[c].width = strlen(s);
      free(s);
    }
  }
  smc_buf_t b;
  smc_buf_init(&b);
  for (size_t i = 0; i <= n; i++) {
    const json_t *row = i ? json_array_get(rows, i - 1) : NULL;
    int first = 1;
    for (size_t c = 0; c < ncols; c++) {
      if (!used[c])
        continue;
      char *s = row ? cell(row, cols[c].key) : strdup(cols[c].title);
      if (!first)
        smc_buf_adds(&b, "  ");
      first = 0;
      smc_buf_adds(&b, s ? s : "?");
      for (size_t k = s ? strlen(s) : 1; c != ncols - 1 && k < cols[c].width; k++)
        smc_buf_addc(&b, ' ');
      free(s);
    }
    smc_buf_addc(&b, '\n');
  }
  smc_buf_addc(&b, '\0');
  if (b.oom) {
    smc_buf_close(&b);
    return NULL;
  }
  return b.p; /* the buffer's bytes, NUL-terminated, now the caller's */
}
