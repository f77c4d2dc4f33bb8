/*
 * State diagrams of compiled machines (Graphviz dot and Mermaid).
 *
 * The rendering is a pure function of the machine: the same machine gives the
 * same text byte for byte, so diagrams can be compared and cached.
 */
#ifndef SMC_CORE_DIAGRAM_H
#define SMC_CORE_DIAGRAM_H

#include "smc/error.h"
#include "smc/machine.h"

/*
 * Render m as a state diagram. format is "dot" (Graphviz) or "mermaid"
 * (stateDiagram-v2). Every state is drawn with its name; a start point leads
 * to the target of each create transition (from: null); final states are
 * marked (doublecircle in dot, an edge to [*] in mermaid); every edge is
 * labeled with its transition name; from: "*" is expanded to every non-final
 * state; timer transitions read "name (after 30s)" and are dashed; voted
 * transitions read "name [2 of 3 votes]" and are bold. On success returns 0
 * and *out holds a malloc'd NUL-terminated text the caller frees. An unknown
 * format fails with SMC_EINVALID_ARGUMENT.
 */
int smc_diagram_render(const smc_machine_t *m, const char *format, char **out, smc_error_t *err);

/* Format a duration in ms the way the language writes it ("500ms", "30s",
 * "5m", "2h", "7d"; the largest unit that divides it). buf of 32 bytes. */
void smc_diagram_duration(int64_t ms, char buf[32]);

#endif
