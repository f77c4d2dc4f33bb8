/*
 * An in-memory fold state for embedders (fold.h smc_fold_memory_new): an
 * overlay without a base, the same store `smc simulate` folds into.
 */
#include <stdlib.h>

#include "core/kv.h"
#include "smc/fold.h"

struct smc_fold_memory {
  smc_overlay_t *ov;
  smc_kv_t kv;
};

smc_fold_memory_t *smc_fold_memory_new(void) {
  smc_fold_memory_t *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  if (!(m->ov = smc_overlay_new(NULL))) {
    free(m);
    return NULL;
  }
  m->kv = smc_overlay_kv(m->ov);
  return m;
}

struct smc_kv *smc_fold_memory_kv(smc_fold_memory_t *m) {
  return &m->kv;
}

void smc_fold_memory_destroy(smc_fold_memory_t *m) {
  if (!m)
    return;
  smc_overlay_destroy(m->ov);
  free(m);
}
