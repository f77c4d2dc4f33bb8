/* Fuzz target: canonical JSON is a fixed point and keeps the value.
 * Any input jansson accepts is canonicalized; the result must parse again, be
 * equal to the input value, and canonicalize to the same bytes. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *a, const char *b) {
  fprintf(stderr, "fuzz_json_canonical: %s\n  first:  %s\n  second: %s\n", what, a ? a : "(null)",
          b ? b : "(null)");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
  json_error_t err;
  json_t *v1 = json_loadb((const char *)data, size, flags, &err);
  if (!v1)
    return 0;
  char *c1 = smc_json_canonical(v1);
  if (!c1)
    fail("canonicalizing a parsed value failed", NULL, NULL);
  json_t *v2 = json_loadb(c1, strlen(c1), flags, &err);
  if (!v2)
    fail("canonical output does not parse", c1, err.text);
  if (!json_equal(v1, v2))
    fail("canonical output parses to a different value", c1, NULL);
  char *c2 = smc_json_canonical(v2);
  if (!c2 || strcmp(c1, c2) != 0)
    fail("canonicalization is not a fixed point", c1, c2);
  free(c2);
  free(c1);
  json_decref(v2);
  json_decref(v1);
  return 0;
}
