/*
 * Property test of the data a validation builds (src/core/validate.c): the
 * merge patch of the proposal onto the current data (or the proposal alone
 * in mode: replace), then `set` in order. validate.c builds it in one pass
 * and leaves out keys a leading literal null deletes; this test compares it
 * with a plain reference (copy, RFC 7396 merge, then every set entry in
 * order) on random objects, byte for byte with the members' order, and
 * checks that neither the current data nor the proposal was modified.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smc/machine.h"

/* One `set` entry as the reference applies it: a dotted path and either a
 * literal (NULL = null, which deletes) or `dst.<from>` (from != NULL). */
typedef struct ref_set {
  const char *path;
  json_t *literal;
  const char *from;
} ref_set_t;

typedef struct ref_trans {
  const char *name;
  int creates, replace;
  ref_set_t set[6];
  size_t nset;
} ref_trans_t;

static const char *MACHINE = "name: shape\n"
                             "states:\n"
                             "  s: {}\n"
                             "transitions:\n"
                             "  make: {from: null, to: s, set: {a: null, c: 'dst.b'}}\n"
                             "  plain: {from: s, to: s}\n"
                             "  drops:\n"
                             "    from: s\n"
                             "    to: s\n"
                             "    set: {a: null, d.x: 5, b: null, c: 'dst.e', e: null}\n"
                             "  swap: {from: s, to: s, mode: replace, set: {a: null, c: 'dst.b'}}\n"
                             "  deep: {from: s, to: s, set: {a.x: null, b: 'dst.a', d: null}}\n";

static uint64_t rng = 0x9E3779B97F4A7C15u;

static unsigned rnd(unsigned n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)(rng % n);
}

/* A random value: scalars, null, or (depth allowing) a small object. */
static json_t *random_value(int depth) {
  switch (rnd(depth > 0 ? 6 : 5)) {
  case 0:
    return json_null();
  case 1:
    return json_integer((json_int_t)rnd(100));
  case 2:
    return json_string(rnd(2) ? "v" : "w");
  case 3:
    return json_true();
  case 4:
    return json_pack("[i]", (int)rnd(3));
  default: {
    static const char *const sub[] = {"x", "y", "a"};
    json_t *o = json_object();
    for (int i = 0, n = (int)rnd(4); i < n; i++)
      json_object_set_new(o, sub[rnd(3)], random_value(depth - 1));
    return o;
  }
  }
}

static json_t *random_object(void) {
  static const char *const keys[] = {"a", "b", "c", "d", "e", "f"};
  json_t *o = json_object();
  for (int i = 0, n = (int)rnd(7); i < n; i++)
    json_object_set_new(o, keys[rnd(6)], random_value(2));
  return o;
}

/* RFC 7396 as language.md describes it: a new object, target untouched. */
static json_t *ref_merge(const json_t *target, const json_t *patch) {
  json_t *out = json_is_object(target) ? json_copy((json_t *)target) : json_object();
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)patch, k, v) {
    if (json_is_null(v))
      json_object_del(out, k);
    else if (json_is_object(v))
      json_object_set_new(out, k, ref_merge(json_object_get(out, k), v));
    else
      json_object_set(out, k, v);
  }
  return out;
}

/* Set (val != NULL and not null) or delete a dotted path, copying the
 * objects on the way so shared ones stay untouched. */
static void ref_set_path(json_t *obj, const char *path, json_t *val) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%s", path);
  json_t *cur = obj;
  char *seg = buf, *dot;
  while ((dot = strchr(seg, '.'))) {
    *dot = '\0';
    json_t *child = json_object_get(cur, seg);
    json_t *copy = json_is_object(child) ? json_copy(child) : json_object();
    json_object_set_new(cur, seg, copy);
    cur = copy;
    seg = dot + 1;
  }
  if (!val || json_is_null(val))
    json_object_del(cur, seg);
  else
    json_object_set(cur, seg, val);
}

static json_t *reference(const ref_trans_t *t, const json_t *src, const json_t *input) {
  json_t *data;
  if (t->replace)
    data = json_is_object(input) ? json_copy((json_t *)input) : json_object();
  else if (json_is_object(input))
    data = ref_merge(src, input);
  else
    data = json_is_object(src) ? json_copy((json_t *)src) : json_object();
  for (size_t i = 0; i < t->nset; i++) {
    const ref_set_t *e = &t->set[i];
    json_t *val = e->from ? json_object_get(data, e->from) : e->literal;
    json_incref(val); /* the set may drop data's own reference */
    ref_set_path(data, e->path, val);
    json_decref(val);
  }
  return data;
}

static char *dump(const json_t *v) {
  return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : strdup("-");
}

static void run_property(const ref_trans_t *t, int rounds) {
  smc_machine_t *m = NULL;
  smc_diags_t d;
  smc_diags_init(&d);
  assert_int_equal(smc_machine_compile(MACHINE, strlen(MACHINE), "shape.yaml", NULL, &m, &d), 0);
  smc_diags_close(&d);
  for (int r = 0; r < rounds; r++) {
    json_t *src = t->creates ? NULL : random_object();
    json_t *input = rnd(8) ? random_object() : NULL;
    char *src_before = dump(src), *input_before = dump(input);
    smc_object_view_t obj = {"o-1", t->creates ? NULL : "s", t->creates ? 0 : 3, src};
    smc_proposal_view_t p = {t->name, NULL, input, "tester", 1000};
    smc_outcome_t out;
    smc_error_t err;
    int rc = smc_machine_validate(m, t->creates ? NULL : &obj, &p, NULL, &out, &err);
    if (rc)
      fail_msg("%s: %s: %s", t->name, smc_code_name(rc), err.message);
    json_t *want = reference(t, src, input);
    char *got_s = dump(out.data), *want_s = dump(want);
    if (strcmp(got_s, want_s))
      fail_msg("%s: src %s input %s: got %s, want %s", t->name, src_before, input_before, got_s,
               want_s);
    char *src_after = dump(src), *input_after = dump(input);
    assert_string_equal(src_before, src_after);
    assert_string_equal(input_before, input_after);
    free(got_s);
    free(want_s);
    free(src_before);
    free(input_before);
    free(src_after);
    free(input_after);
    json_decref(want);
    json_decref(out.data);
    json_decref(src);
    json_decref(input);
  }
  smc_machine_destroy(m);
}

/* create: no current data; a leading null and a read of dst.b */
static void test_create(void **state) {
  (void)state;
  ref_trans_t t = {"make", 1, 0, {{"a", NULL, NULL}, {"c", NULL, "b"}}, 2};
  run_property(&t, 3000);
}

/* no set: the merge patch alone */
static void test_plain_merge(void **state) {
  (void)state;
  ref_trans_t t = {"plain", 0, 0, {{0}}, 0};
  run_property(&t, 3000);
}

/* nulls before the first computed entry (a, b) are left out while
 * building; one after it (e) must still be visible to dst.e */
static void test_leading_drops(void **state) {
  (void)state;
  json_t *five = json_integer(5);
  ref_trans_t t = {"drops",
                   0,
                   0,
                   {{"a", NULL, NULL},
                    {"d.x", five, NULL},
                    {"b", NULL, NULL},
                    {"c", NULL, "e"},
                    {"e", NULL, NULL}},
                   5};
  run_property(&t, 3000);
  json_decref(five);
}

/* mode: replace with a leading null */
static void test_replace(void **state) {
  (void)state;
  ref_trans_t t = {"swap", 0, 1, {{"a", NULL, NULL}, {"c", NULL, "b"}}, 2};
  run_property(&t, 3000);
}

/* a nested null path is not a top-level drop; a null after a computed
 * entry is not either */
static void test_deep(void **state) {
  (void)state;
  ref_trans_t t = {"deep", 0, 0, {{"a.x", NULL, NULL}, {"b", NULL, "a"}, {"d", NULL, NULL}}, 3};
  run_property(&t, 3000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create),        cmocka_unit_test(test_plain_merge),
      cmocka_unit_test(test_leading_drops), cmocka_unit_test(test_replace),
      cmocka_unit_test(test_deep),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
