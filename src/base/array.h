/* Growing a heap array: the one doubling rule of smc's lists. */
#ifndef SMC_BASE_ARRAY_H
#define SMC_BASE_ARRAY_H

#include <stddef.h>

/* Make room in the array *items (pass &ptr) of *cap elements of size bytes
 * for at least n of them: the capacity doubles from first (or from *cap).
 * 0, or -1 on allocation failure with *items and *cap unchanged. */
int smc_array_reserve(void *items, size_t *cap, size_t n, size_t size, size_t first);

#endif
