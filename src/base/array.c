/* Growing a heap array (see array.h). */
#include "base/array.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int smc_array_reserve(void *items, size_t *cap, size_t n, size_t size, size_t first) {
  if (n <= *cap)
    return 0;
  size_t c = *cap ? *cap : first;
  while (c < n)
    c *= 2;
  if (size && c > SIZE_MAX / size)
    return -1;
  void *old;
  memcpy(&old, items, sizeof old);
  void *p = realloc(old, c * size);
  if (!p)
    return -1;
  memcpy(items, &p, sizeof p);
  *cap = c;
  return 0;
}
