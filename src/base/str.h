/* Building a string on the heap: the one way to format a name or a path. */
#ifndef SMC_BASE_STR_H
#define SMC_BASE_STR_H

/* The text printf(fmt, ...) gives, malloc'd (the caller frees it), or NULL
 * when out of memory. */
char *smc_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
