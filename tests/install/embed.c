/* Built by test_pkgconfig.sh against an installed smc: proves the public
 * headers and `pkg-config --cflags --libs smc` are enough to embed smc. */
#include <smc/client.h>
#include <smc/fold.h>
#include <smc/machine.h>
#include <stdio.h>
#include <string.h>

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
  return 0;
}
