/*
 * A bounded LRU of JSON values keyed by string, bounded by entries and by an
 * estimate of the memory its values hold (smc_json_cost). Not thread-safe:
 * the owner locks. The gateway follower keeps its caches in three of them.
 */
#ifndef SMC_BASE_LRU_H
#define SMC_BASE_LRU_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct smc_lru smc_lru_t;
/* At most capacity entries and, when max_bytes > 0, at most about max_bytes
 * of memory (each entry's cost is estimated by smc_json_cost). */
smc_lru_t *smc_lru_new(size_t capacity);
void smc_lru_set_max_bytes(smc_lru_t *l, size_t max_bytes);
void smc_lru_destroy(smc_lru_t *l);
/* Insert or replace; takes a new reference of v. Evicts the least recently
 * used until both bounds hold (the newest entry always stays). */
void smc_lru_put(smc_lru_t *l, const char *key, json_t *v);
/* The same, keeping a number with the entry (smc_lru_get_num returns it). */
void smc_lru_put_num(smc_lru_t *l, const char *key, json_t *v, int64_t num);
size_t smc_lru_count(const smc_lru_t *l);
/* Estimated bytes of the entries held. */
size_t smc_lru_bytes(const smc_lru_t *l);
/* Estimated heap bytes of a jansson value (its allocations with malloc's
 * per-chunk overhead); a value shared by two entries counts in both. */
size_t smc_json_cost(const json_t *v);
/* New reference to the value, or NULL; marks it used. */
json_t *smc_lru_get(smc_lru_t *l, const char *key);
/* The same; *num (when not NULL) gets the entry's number. */
json_t *smc_lru_get_num(smc_lru_t *l, const char *key, int64_t *num);

#endif
