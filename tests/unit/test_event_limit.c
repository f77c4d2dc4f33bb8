/*
 * An event over the fold's size limit (max_event_bytes): a proposal or read
 * that names its id and object is answered too_large, so its proposer learns
 * why instead of timing out; anything else is dropped. Nothing of such an
 * event is applied.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/codec.h"
#include "core/kv.h"
#include "core/util.h"
#include "smc/fold.h"

#define LIMIT 256

static const char MACHINE[] = "name: box\n"
                              "kind: ndfsm\n"
                              "states:\n"
                              "  open: {}\n"
                              "transitions:\n"
                              "  create: {from: null, to: open}\n"
                              "  put: {from: open, to: open}\n";

typedef struct h {
  smc_fold_t *f;
  smc_overlay_t *ov;
  smc_kv_t kv;
  int64_t off;
  json_t *outs;
} h_t;

static int emit(void *opaque, const smc_output_t *out) {
  h_t *h = opaque;
  json_t *j = json_loadb(out->json, out->json_len, 0, NULL);
  assert_non_null(j);
  json_object_set_new(j, "_kind", json_integer(out->kind));
  json_array_append_new(h->outs, j);
  return 0;
}

/* Feed one record keyed by its object to the single partition. */
static void feed(h_t *h, const char *object, const char *value, size_t len) {
  smc_record_t r = {0, h->off++, 1000 + h->off, object, strlen(object), value, len, NULL, NULL};
  assert_int_equal(smc_fold_apply(h->f, &h->kv, &r, emit, h), 0);
}

static void h_init(h_t *h) {
  memset(h, 0, sizeof(*h));
  smc_fold_config_t cfg;
  smc_fold_config_default(&cfg);
  cfg.partitions = 1;
  cfg.max_event_bytes = LIMIT;
  assert_int_equal(smc_fold_new(&cfg, &h->f), 0);
  h->ov = smc_overlay_new(NULL);
  h->kv = smc_overlay_kv(h->ov);
  h->outs = json_array();
  /* a machine event would be larger than LIMIT: register through the API */
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(
      smc_fold_register_machine(h->f, &h->kv, 0, MACHINE, strlen(MACHINE), "box.yaml", NULL, &err),
      0);
}

static void h_close(h_t *h) {
  smc_fold_destroy(h->f);
  smc_overlay_destroy(h->ov);
  json_decref(h->outs);
}

/* A proposal of exactly n bytes (padded in its correlation). */
static char *proposal_of(const char *id, const char *object, const char *transition, size_t n) {
  char head[512];
  int k = snprintf(head, sizeof head,
                   "{\"type\":\"proposal\",%s%s%s\"machine\":\"box\",\"object\":\"%s\","
                   "\"transition\":\"%s\",\"correlation\":\"",
                   id ? "\"id\":\"" : "", id ? id : "", id ? "\"," : "", object, transition);
  assert_true(k > 0 && (size_t)k + 2 <= n);
  char *s = malloc(n + 1);
  memcpy(s, head, (size_t)k);
  memset(s + k, 'c', n - (size_t)k - 2);
  memcpy(s + n - 2, "\"}", 2);
  s[n] = '\0';
  return s;
}

static void test_codec_reads_who_sent_it(void **state) {
  (void)state;
  smc_event_t ev;
  smc_error_t err;
  char *at = proposal_of("p-at", "o-1", "create", LIMIT);
  smc_error_clear(&err);
  assert_int_equal(smc_event_decode(at, LIMIT, LIMIT, NULL, NULL, &ev, &err), 0);
  smc_event_close(&ev);
  char *over = proposal_of("p-over", "o-1", "create", LIMIT + 1);
  smc_error_clear(&err);
  assert_int_equal(smc_event_decode(over, LIMIT + 1, LIMIT, NULL, NULL, &ev, &err), SMC_ETOO_LARGE);
  assert_int_equal(ev.type, SMC_EV_PROPOSAL);
  assert_string_equal(ev.id, "p-over");
  assert_string_equal(ev.object, "o-1");
  assert_non_null(strstr(err.message, "larger than the limit of 256"));
  smc_event_close(&ev);
  /* without an id: the derived one, as for any proposal */
  char *noid = proposal_of(NULL, "o-1", "create", LIMIT + 40);
  smc_error_clear(&err);
  assert_int_equal(smc_event_decode(noid, LIMIT + 40, LIMIT, NULL, NULL, &ev, &err),
                   SMC_ETOO_LARGE);
  assert_non_null(ev.id);
  assert_int_equal(strlen(ev.id), 64);
  smc_event_close(&ev);
  /* not JSON: nothing read, still too_large */
  char junk[LIMIT + 10];
  memset(junk, '{', sizeof junk);
  smc_error_clear(&err);
  assert_int_equal(smc_event_decode(junk, sizeof junk, LIMIT, NULL, NULL, &ev, &err),
                   SMC_ETOO_LARGE);
  assert_int_equal(ev.type, 0);
  assert_null(ev.id);
  smc_event_close(&ev);
  free(at);
  free(over);
  free(noid);
}

static void test_fold_answers_too_large(void **state) {
  (void)state;
  h_t h;
  h_init(&h);
  char *over = proposal_of("p-over", "o-1", "create", LIMIT + 1);
  feed(&h, "o-1", over, LIMIT + 1);
  assert_int_equal(json_array_size(h.outs), 1);
  json_t *c = json_array_get(h.outs, 0);
  assert_int_equal(json_integer_value(json_object_get(c, "_kind")), SMC_OUT_CONFIRMATION);
  assert_string_equal(json_string_value(json_object_get(c, "proposal")), "p-over");
  assert_string_equal(json_string_value(json_object_get(c, "outcome")), "rejected");
  assert_string_equal(json_string_value(json_object_get(json_object_get(c, "error"), "code")),
                      "too_large");
  /* nothing applied: the object does not exist, and the same id may be
   * proposed again within the limit (the rejection was not recorded) */
  char *at = proposal_of("p-over", "o-1", "create", LIMIT);
  feed(&h, "o-1", at, LIMIT);
  assert_int_equal(json_array_size(h.outs), 2);
  c = json_array_get(h.outs, 1);
  assert_string_equal(json_string_value(json_object_get(c, "outcome")), "committed");
  assert_int_equal(json_integer_value(json_object_get(c, "version")), 1);
  /* a long correlation is not echoed in the answer (it could make the
   * answer too large to publish); a short one is */
  const char *corr = json_string_value(json_object_get(json_array_get(h.outs, 0), "correlation"));
  assert_non_null(corr);
  assert_true(strlen(corr) > 100 && strspn(corr, "c") == strlen(corr));
  char *big = proposal_of("p-big", "o-2", "create", 3000);
  feed(&h, "o-2", big, 3000);
  assert_int_equal(json_array_size(h.outs), 3);
  c = json_array_get(h.outs, 2);
  assert_string_equal(json_string_value(json_object_get(c, "proposal")), "p-big");
  assert_null(json_object_get(c, "correlation"));
  free(big);
  /* an over-limit record that names no object is dropped without an answer */
  char junk[LIMIT + 10];
  memset(junk, ' ', sizeof junk);
  feed(&h, "o-1", junk, sizeof junk);
  assert_int_equal(json_array_size(h.outs), 3);
  free(over);
  free(at);
  h_close(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_codec_reads_who_sent_it),
      cmocka_unit_test(test_fold_answers_too_large),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
