/* Fuzz target: the expression language, templates and the regex wrapper.
 * The input bytes (up to the first NUL) are compiled as an expression, as a
 * template and as a regex; whatever compiles is evaluated against a fixed
 * small context with a small step budget. Nothing may crash or leak, every
 * failure must carry a code and a message, and a result must be JSON that
 * jansson can serialize. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *g_src, *g_input, *g_vars, *g_value;

static void init_context(void) {
  if (g_src)
    return;
  g_src = json_loads("{\"count\": 3, \"owner\": \"alice\", \"items\": [1, 2.5, \"x\", null],"
                     " \"nested\": {\"a\": {\"b\": \"d\\u00e9ep\"}}, \"nul\": null, \"ok\": true}",
                     0, NULL);
  g_input = json_loads("{\"owner\": \"bob\", \"n\": \"42\", \"s\": \"aaaaaaaaaaaaaaaaaaaaaab\"}", 0,
                       NULL);
  g_vars = json_loads("{\"limit\": 10, \"name\": \"bob\", \"re\": \"^a+$\"}", 0, NULL);
  g_value = json_string("v-\xe2\x82\xac");
  if (!g_src || !g_input || !g_vars || !g_value)
    abort();
}

static void ctx_init(smc_eval_ctx_t *c) {
  memset(c, 0, sizeof(*c));
  c->src = g_src;
  c->dst = g_src;
  c->input = g_input;
  c->vars = g_vars;
  c->value = g_value;
  c->object = "obj-1";
  c->state = "held";
  c->proposer = "node-1";
  c->version = 7;
  c->time = 1700000000000;
  c->steps_left = 2000;
  c->regex_match_limit = 10000;
  c->regex_depth_limit = 200;
}

static void check_error(int rc, const smc_error_t *err) {
  if (rc >= 0 || err->code != rc || err->message[0] == '\0') {
    fprintf(stderr, "fuzz_expr: rc %d without a matching error (code %d, '%s')\n", rc, err->code,
            err->message);
    abort();
  }
}

static void check_result(json_t *out) {
  if (!out)
    abort();
  char *s = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
  if (!s)
    abort();
  free(s);
  json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_context();
  char *src = malloc(size + 1);
  if (!src)
    return 0;
  memcpy(src, data, size);
  src[size] = '\0';

  smc_error_t err;
  smc_eval_ctx_t ctx;
  json_t *out = NULL;

  smc_expr_t *e = NULL;
  smc_error_clear(&err);
  int rc = smc_expr_compile(src, &e, &err);
  if (rc) {
    check_error(rc, &err);
  } else {
    if (strcmp(smc_expr_source(e), src) != 0)
      abort();
    ctx_init(&ctx);
    smc_error_clear(&err);
    rc = smc_expr_eval(e, &ctx, &out, &err);
    if (rc)
      check_error(rc, &err);
    else
      check_result(out);
    int b = 0;
    ctx_init(&ctx);
    smc_error_clear(&err);
    rc = smc_expr_eval_bool(e, &ctx, &b, &err);
    if (rc)
      check_error(rc, &err);
    smc_expr_destroy(e);
  }

  smc_template_t *t = NULL;
  smc_error_clear(&err);
  rc = smc_template_compile(src, &t, &err);
  if (rc) {
    check_error(rc, &err);
  } else {
    ctx_init(&ctx);
    smc_error_clear(&err);
    out = NULL;
    rc = smc_template_eval(t, &ctx, &out, &err);
    if (rc)
      check_error(rc, &err);
    else
      check_result(out);
    smc_template_destroy(t);
  }

  smc_regex_t *re = NULL;
  smc_error_clear(&err);
  if (size < 512 && smc_regex_compile(src, NULL, &re, &err) == 0) {
    const char *subj = json_string_value(json_object_get(g_input, "s"));
    int m = smc_regex_match(re, subj, strlen(subj), 10000, 200);
    if (m != 0 && m != 1 && m != SMC_ELIMIT_EXCEEDED)
      abort();
    smc_regex_destroy(re);
  }
  free(src);
  return 0;
}
