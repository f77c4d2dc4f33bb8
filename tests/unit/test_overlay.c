/* Tests of the overlay (src/core/kv.h): a store on its own, over a base with
 * tombstones, and randomized against a simple reference map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/kv.h"
#include "smc/error.h"

static void put_s(smc_kv_t *kv, smc_cf_t cf, const char *k, const char *v) {
  assert_int_equal(smc_kv_put(kv, cf, k, strlen(k), v, strlen(v)), 0);
}

static char *get_s(smc_kv_t *kv, smc_cf_t cf, const char *k) {
  void *v = NULL;
  size_t vl = 0;
  int rc = smc_kv_get(kv, cf, k, strlen(k), &v, &vl);
  if (rc == SMC_ENOT_FOUND)
    return NULL;
  assert_int_equal(rc, 0);
  char *s = malloc(vl + 1);
  memcpy(s, v, vl);
  s[vl] = 0;
  free(v);
  return s;
}

/* seek from..limit, returns "key=value" malloc'd or NULL */
static char *seek_s(smc_kv_t *kv, smc_cf_t cf, const char *from, const char *limit) {
  void *k = NULL, *v = NULL;
  size_t kl = 0, vl = 0;
  int rc =
      smc_kv_seek(kv, cf, from, strlen(from), limit, limit ? strlen(limit) : 0, &k, &kl, &v, &vl);
  if (rc == SMC_ENOT_FOUND)
    return NULL;
  assert_int_equal(rc, 0);
  char *s = malloc(kl + vl + 2);
  memcpy(s, k, kl);
  s[kl] = '=';
  memcpy(s + kl + 1, v, vl);
  s[kl + vl + 1] = 0;
  free(k);
  free(v);
  return s;
}

static void assert_seek(smc_kv_t *kv, smc_cf_t cf, const char *from, const char *limit,
                        const char *want) {
  char *got = seek_s(kv, cf, from, limit);
  if (!want)
    assert_null(got);
  else
    assert_string_equal(got, want);
  free(got);
}

static void standalone(void **state) {
  (void)state;
  smc_overlay_t *ov = smc_overlay_new(NULL);
  smc_kv_t kv = smc_overlay_kv(ov);
  put_s(&kv, SMC_CF_OBJECTS, "b", "2");
  put_s(&kv, SMC_CF_OBJECTS, "a", "1");
  put_s(&kv, SMC_CF_OBJECTS, "c", "3");
  put_s(&kv, SMC_CF_QUEUES, "a", "q");
  put_s(&kv, SMC_CF_OBJECTS, "b", "22");
  char *v = get_s(&kv, SMC_CF_OBJECTS, "b");
  assert_string_equal(v, "22");
  free(v);
  assert_null(get_s(&kv, SMC_CF_OBJECTS, "d"));
  assert_seek(&kv, SMC_CF_OBJECTS, "", NULL, "a=1");
  assert_seek(&kv, SMC_CF_OBJECTS, "a\x01", NULL, "b=22");
  assert_seek(&kv, SMC_CF_OBJECTS, "a\x01", "b", NULL);
  assert_seek(&kv, SMC_CF_QUEUES, "b", NULL, NULL);
  assert_int_equal(smc_overlay_pending(ov), 4);
  assert_int_equal(smc_kv_del(&kv, SMC_CF_OBJECTS, "b", 1), 0);
  assert_int_equal(smc_kv_del(&kv, SMC_CF_OBJECTS, "zz", 2), 0);
  assert_int_equal(smc_overlay_pending(ov), 3);
  assert_seek(&kv, SMC_CF_OBJECTS, "b", NULL, "c=3");
  assert_int_equal(smc_overlay_bytes(ov), 2 + 2 + 2);
  smc_overlay_clear(ov);
  assert_int_equal(smc_overlay_pending(ov), 0);
  assert_null(get_s(&kv, SMC_CF_OBJECTS, "a"));
  smc_overlay_destroy(ov);
}

static int copy_fn(void *opaque, smc_cf_t cf, const void *key, size_t klen, const void *val,
                   size_t vlen) {
  smc_kv_t *dst = opaque;
  return val ? smc_kv_put(dst, cf, key, klen, val, vlen) : smc_kv_del(dst, cf, key, klen);
}

static void over_base(void **state) {
  (void)state;
  smc_overlay_t *base = smc_overlay_new(NULL);
  smc_kv_t bkv = smc_overlay_kv(base);
  put_s(&bkv, SMC_CF_META, "a", "A");
  put_s(&bkv, SMC_CF_META, "b", "B");
  put_s(&bkv, SMC_CF_META, "c", "C");
  put_s(&bkv, SMC_CF_META, "e", "E");
  smc_overlay_t *ov = smc_overlay_new(&bkv);
  smc_kv_t kv = smc_overlay_kv(ov);
  assert_int_equal(smc_kv_del(&kv, SMC_CF_META, "a", 1), 0);
  assert_int_equal(smc_kv_del(&kv, SMC_CF_META, "b", 1), 0);
  put_s(&kv, SMC_CF_META, "d", "d");
  put_s(&kv, SMC_CF_META, "e", "e");
  assert_null(get_s(&kv, SMC_CF_META, "a"));
  char *v = get_s(&kv, SMC_CF_META, "c");
  assert_string_equal(v, "C");
  free(v);
  /* tombstones hide a and b; c comes from the base; d, e from the overlay */
  assert_seek(&kv, SMC_CF_META, "", NULL, "c=C");
  assert_seek(&kv, SMC_CF_META, "c\x01", NULL, "d=d");
  assert_seek(&kv, SMC_CF_META, "d\x01", NULL, "e=e");
  assert_seek(&kv, SMC_CF_META, "", "c", NULL);
  /* replay into the base */
  assert_int_equal(smc_overlay_pending(ov), 4);
  assert_int_equal(smc_overlay_foreach(ov, copy_fn, &bkv), 0);
  smc_overlay_clear(ov);
  assert_seek(&kv, SMC_CF_META, "", NULL, "c=C");
  assert_null(get_s(&bkv, SMC_CF_META, "b"));
  v = get_s(&bkv, SMC_CF_META, "e");
  assert_string_equal(v, "e");
  free(v);
  smc_overlay_destroy(ov);
  smc_overlay_destroy(base);
}

/* ---- randomized comparison with a sorted-array reference ---- */

typedef struct ref_ent {
  char k[8];
  char v[48];
} ref_ent_t;

typedef struct ref {
  ref_ent_t e[64];
  int n;
} ref_t;

static int ref_find(ref_t *r, const char *k, int *pos) {
  for (int i = 0; i < r->n; i++) {
    int c = strcmp(r->e[i].k, k);
    if (c == 0) {
      *pos = i;
      return 1;
    }
    if (c > 0) {
      *pos = i;
      return 0;
    }
  }
  *pos = r->n;
  return 0;
}

static void ref_put(ref_t *r, const char *k, const char *v) {
  int pos;
  if (!ref_find(r, k, &pos)) {
    memmove(&r->e[pos + 1], &r->e[pos], (size_t)(r->n - pos) * sizeof(ref_ent_t));
    r->n++;
    snprintf(r->e[pos].k, sizeof(r->e[pos].k), "%s", k);
  }
  snprintf(r->e[pos].v, sizeof(r->e[pos].v), "%s", v);
}

static void ref_del(ref_t *r, const char *k) {
  int pos;
  if (ref_find(r, k, &pos)) {
    memmove(&r->e[pos], &r->e[pos + 1], (size_t)(r->n - pos - 1) * sizeof(ref_ent_t));
    r->n--;
  }
}

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void rkey(uint64_t *s, char *k) {
  /* short keys over a small alphabet: prefixes and collisions are common */
  int n = 1 + (int)(rnd(s) % 3);
  for (int i = 0; i < n; i++)
    k[i] = (char)('a' + rnd(s) % 4);
  k[n] = 0;
}

static void check_same(smc_kv_t *kv, ref_t *r, uint64_t *s) {
  char from[8], limit[8];
  rkey(s, from);
  rkey(s, limit);
  int use_limit = rnd(s) % 2;
  int pos;
  ref_find(r, from, &pos);
  const char *want_k = NULL;
  char want[64];
  if (pos < r->n && (!use_limit || strcmp(r->e[pos].k, limit) < 0)) {
    want_k = r->e[pos].k;
    snprintf(want, sizeof(want), "%s=%s", want_k, r->e[pos].v);
  }
  assert_seek(kv, SMC_CF_OBJECTS, from, use_limit ? limit : NULL, want_k ? want : NULL);
  char *g = get_s(kv, SMC_CF_OBJECTS, from);
  if (ref_find(r, from, &pos)) {
    assert_non_null(g);
    assert_string_equal(g, r->e[pos].v);
  } else {
    assert_null(g);
  }
  free(g);
}

/* Layers: base (an overlay store) + overlay on top, flushed now and then into
 * the base; every read must match one reference map. */
static void randomized(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 200; seed++) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ull;
    ref_t r;
    memset(&r, 0, sizeof(r));
    smc_overlay_t *base = smc_overlay_new(NULL);
    smc_kv_t bkv = smc_overlay_kv(base);
    smc_overlay_t *ov = smc_overlay_new(&bkv);
    smc_kv_t kv = smc_overlay_kv(ov);
    for (int step = 0; step < 300; step++) {
      char k[8], v[48];
      rkey(&s, k);
      unsigned op = (unsigned)(rnd(&s) % 10);
      if (op < 5) {
        /* lengths 0..40: a rewrite fits the node's room, or outgrows it,
         * or follows a tombstone */
        size_t n = (size_t)(rnd(&s) % 41);
        memset(v, 'a' + (int)(rnd(&s) % 26), n);
        v[n] = '\0';
        put_s(&kv, SMC_CF_OBJECTS, k, v);
        ref_put(&r, k, v);
      } else if (op < 8) {
        assert_int_equal(smc_kv_del(&kv, SMC_CF_OBJECTS, k, strlen(k)), 0);
        ref_del(&r, k);
      } else if (op == 8) {
        assert_int_equal(smc_overlay_foreach(ov, copy_fn, &bkv), 0);
        smc_overlay_clear(ov);
      }
      check_same(&kv, &r, &s);
    }
    smc_overlay_destroy(ov);
    smc_overlay_destroy(base);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(standalone),
      cmocka_unit_test(over_base),
      cmocka_unit_test(randomized),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
