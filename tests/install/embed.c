/* Built by test_pkgconfig.sh against an installed smc: proves the public
 * headers and `pkg-config --cflags --libs smc` are enough to embed smc. */
#include <smc/client.h>
#include <smc/fold.h>
#include <smc/machine.h>
#include <stdio.h>
#include <string.h>

static int count_output(void *opaque, const smc_output_t *out) {
  (void)out;
  ++*(int *)opaque;
  return 0;
}

int main(void) {
  static const char def[] =
      "name: t\nstates: {a: {}}\ntransitions: {create: {from: null, to: a}}\n";
  smc_machine_t *m = NULL;
  int rc = smc_machine_compile(def, strlen(def), "t.yaml", NULL, &m, NULL);
  if (rc != 0) {
    fprintf(stderr, "embed: compile failed: %s\n", smc_code_name(rc));
    return 1;
  }
  printf("embed: compiled machine %s (hash %.12s...)\n", smc_machine_name(m), smc_machine_hash(m));
  smc_machine_destroy(m);

  /* fold.h on its own: a fold over an in-memory state answers a proposal
   * (for a machine it does not know: rejected) with a confirmation. */
  smc_fold_config_t cfg;
  smc_fold_config_default(&cfg);
  cfg.partitions = 1;
  smc_fold_t *f = NULL;
  smc_fold_memory_t *mem = smc_fold_memory_new();
  if (!mem || smc_fold_new(&cfg, &f) != 0) {
    fprintf(stderr, "embed: no fold\n");
    return 1;
  }
  static const char bad[] = "{\"type\":\"proposal\",\"id\":\"p1\",\"machine\":\"none\","
                            "\"object\":\"o1\",\"transition\":\"create\"}";
  smc_record_t rec = {.partition = 0,
                      .offset = 0,
                      .timestamp = 1764300000000LL,
                      .key = "o1",
                      .key_len = 2,
                      .value = bad,
                      .value_len = sizeof bad - 1};
  int outputs = 0;
  rc = smc_fold_apply(f, smc_fold_memory_kv(mem), &rec, count_output, &outputs);
  smc_fold_destroy(f);
  smc_fold_memory_destroy(mem);
  if (rc != 0 || outputs < 1) {
    fprintf(stderr, "embed: fold_apply rc %d, %d outputs\n", rc, outputs);
    return 1;
  }
  printf("embed: folded a record into memory, %d output(s)\n", outputs);
  return 0;
}
