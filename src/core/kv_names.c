/* Column family names of the state store (see src/core/kv.h). Stable: they
 * are the names RocksDB records on disk. */
#include "core/kv.h"

const char *const smc_cf_names[SMC_CF_COUNT] = {
    [SMC_CF_OBJECTS] = "objects",   [SMC_CF_QUEUES] = "queues", [SMC_CF_DECIDED] = "decided",
    [SMC_CF_MACHINES] = "machines", [SMC_CF_TIMERS] = "timers", [SMC_CF_META] = "meta",
    [SMC_CF_HISTORY] = "history",
};
