/*
 * libFuzzer target: compile the input bytes as a machine definition; when it
 * compiles, introspect it and validate a few fixed proposals against it (a
 * create, a named transition from the first state, and an unnamed one), so
 * the rule evaluator runs over whatever rules the fuzzer invented.
 *
 * Properties checked: no crash, no leak, no hang (budgets bound everything);
 * a failed compile always leaves an error diagnostic; a successful one
 * has a 64-hex hash and consistent introspection; validation returns 0 with
 * data, or a negative code with err.code equal to it.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smc/machine.h"

static void check_validate(const smc_machine_t *m, const char *state, const json_t *data,
                           const char *transition, const json_t *input) {
  smc_object_view_t o = {
      .id = "obj-1", .state = state, .version = state ? 2 : 0, .data = state ? data : NULL};
  smc_proposal_view_t p = {
      .transition = transition, .input = input, .proposer = "node-1", .time = 1000};
  smc_outcome_t out;
  smc_error_t err;
  smc_limits_t lim;
  smc_limits_default(&lim);
  lim.expr_steps = 20000;
  lim.regex_match_limit = 20000;
  int rc = smc_machine_validate(m, &o, &p, &lim, &out, &err);
  if (rc == 0) {
    if (!out.data || !out.state || !out.name || out.transition >= smc_machine_transition_count(m))
      abort();
    json_decref(out.data);
  } else if (rc != err.code || rc >= 0 || out.data) {
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  smc_diags_t diags;
  smc_machine_t *m = NULL;
  smc_limits_t lim;
  smc_limits_default(&lim);
  lim.definition_max_bytes = 64 * 1024;
  smc_diags_init(&diags);
  int rc = smc_machine_compile((const char *)data, size, "fuzz.yaml", &lim, &m, &diags);
  if (rc) {
    if (m || (rc == SMC_EINVALID_MACHINE && diags.errors == 0))
      abort();
    smc_diags_close(&diags);
    return 0;
  }
  if (!m || strlen(smc_machine_hash(m)) != 64 || diags.errors)
    abort();
  size_t ns = smc_machine_state_count(m), nt = smc_machine_transition_count(m);
  for (size_t i = 0; i < ns; i++)
    if (smc_machine_find_state(m, smc_machine_state(m, i)->name) < 0)
      abort();
  for (size_t i = 0; i < nt; i++) {
    const smc_transition_info_t *t = smc_machine_transition(m, i);
    if (smc_machine_find_state(m, t->to) < 0)
      abort();
  }
  json_t *input = json_pack("{s:s, s:i, s:[{s:s}], s:{s:s}}", "owner", "svc-a", "n", 3, "items",
                            "sku", "ABC-1", "address", "city", "Oslo");
  json_t *odata = json_pack("{s:s, s:i}", "owner", "svc-b", "count", 1);
  const char *first = ns ? smc_machine_state(m, 0)->name : NULL;
  check_validate(m, NULL, NULL, nt ? smc_machine_transition(m, 0)->name : "create", input);
  if (first) {
    for (size_t i = 0; i < nt && i < 8; i++)
      check_validate(m, first, odata, smc_machine_transition(m, i)->name, input);
    check_validate(m, first, odata, NULL, input);
    size_t t;
    int64_t after;
    if (smc_machine_timer(m, first, &t, &after) && (t >= nt || after <= 0))
      abort();
  }
  json_decref(input);
  json_decref(odata);
  smc_machine_destroy(m);
  smc_diags_close(&diags);
  return 0;
}
