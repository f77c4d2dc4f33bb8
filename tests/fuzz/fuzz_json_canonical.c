/* Fuzz target: canonical JSON is a fixed point and keeps the value.
 * Any input jansson accepts is canonicalized; the result must parse again, be
 * the same value as the input (numbers compared by value: the canonical form
 * writes integral reals such as 5.0 as integers), and canonicalize to the
 * same bytes. */
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

/* Like json_equal, except that a real and an integer are equal when they are
 * the same number (and only then). */
static int same_value(const json_t *a, const json_t *b) {
  if (!a || !b)
    return a == b;
  if (json_is_number(a) && json_is_number(b)) {
    if (json_is_integer(a) && json_is_integer(b))
      return json_integer_value(a) == json_integer_value(b);
    if (json_is_real(a) && json_is_real(b))
      return json_real_value(a) == json_real_value(b);
    const json_t *r = json_is_real(a) ? a : b, *i = json_is_real(a) ? b : a;
    double d = json_real_value(r);
    return d > -9007199254740992.0 && d < 9007199254740992.0 &&
           (json_int_t)d == json_integer_value(i) && d == (double)json_integer_value(i);
  }
  if (json_typeof(a) != json_typeof(b))
    return 0;
  if (json_is_string(a))
    return json_string_length(a) == json_string_length(b) &&
           memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
  if (json_is_array(a)) {
    if (json_array_size(a) != json_array_size(b))
      return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
      if (!same_value(json_array_get(a, i), json_array_get(b, i)))
        return 0;
    return 1;
  }
  if (json_is_object(a)) {
    if (json_object_size(a) != json_object_size(b))
      return 0;
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)a, k, e) {
      const json_t *f = json_object_get(b, k);
      if (!f || !same_value(e, f))
        return 0;
    }
    return 1;
  }
  return 1; /* true, false, null: same type */
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
  if (!same_value(v1, v2))
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
