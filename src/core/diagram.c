/* State diagrams of compiled machines: dot and mermaid text (diagram.h). */
#include "core/diagram.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void smc_diagram_duration(int64_t ms, char buf[32]) {
  static const struct {
    int64_t ms;
    const char *unit;
  } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
    if (ms > 0 && ms % units[i].ms == 0) {
      snprintf(buf, 32, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
      return;
    }
  snprintf(buf, 32, "%" PRId64 "ms", ms);
}

/* The edge label of a transition: its name, the timer and the vote quorum. */
static void edge_label(const smc_transition_info_t *t, char *buf, size_t size) {
  int n = snprintf(buf, size, "%s", t->name);
  if (n < 0 || (size_t)n >= size)
    return;
  if (t->after_ms > 0) {
    char d[32];
    smc_diagram_duration(t->after_ms, d);
    n += snprintf(buf + n, size - (size_t)n, " (after %s)", d);
    if ((size_t)n >= size)
      return;
  }
  if (t->votes)
    snprintf(buf + n, size - (size_t)n, " [%zu of %zu votes]", t->votes->quorum, t->votes->nvoters);
}

/* Write s as a dot double-quoted string. */
static void dot_quoted(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', f);
    if (*s == '\n') {
      fputs("\\n", f);
      continue;
    }
    fputc(*s, f);
  }
  fputc('"', f);
}

/* Mermaid labels end at a newline and must not contain ':' or ';' (they
 * split the statement); those are replaced by spaces. */
static void mermaid_text(FILE *f, const char *s) {
  for (; *s; s++)
    fputc((*s == '\n' || *s == ':' || *s == ';' || *s == '"') ? ' ' : *s, f);
}

/*
 * Call edge(f, m, from, to, t) for every edge of transition t: one per listed
 * from state, or one per non-final state (in state order) for from: "*".
 * Create transitions have no source state (from = -1).
 */
typedef void (*edge_fn)(FILE *f, const smc_machine_t *m, long from, long to,
                        const smc_transition_info_t *t);

static void each_edge(FILE *f, const smc_machine_t *m, const smc_transition_info_t *t,
                      edge_fn edge) {
  long to = smc_machine_find_state(m, t->to);
  if (t->creates) {
    edge(f, m, -1, to, t);
  } else if (t->from_any) {
    for (size_t s = 0; s < smc_machine_state_count(m); s++)
      if (!smc_machine_state(m, s)->final)
        edge(f, m, (long)s, to, t);
  } else {
    for (size_t i = 0; i < t->nfrom; i++)
      edge(f, m, smc_machine_find_state(m, t->from[i]), to, t);
  }
}

static void dot_edge(FILE *f, const smc_machine_t *m, long from, long to,
                     const smc_transition_info_t *t) {
  char label[512];
  if (to < 0)
    return;
  edge_label(t, label, sizeof(label));
  fputs("  ", f);
  if (from < 0)
    fputs("\"__start\"", f);
  else
    dot_quoted(f, smc_machine_state(m, (size_t)from)->name);
  fputs(" -> ", f);
  dot_quoted(f, smc_machine_state(m, (size_t)to)->name);
  fputs(" [label=", f);
  dot_quoted(f, label);
  if (t->after_ms > 0 && t->votes)
    fputs(", style=\"dashed,bold\"", f);
  else if (t->after_ms > 0)
    fputs(", style=dashed", f);
  else if (t->votes)
    fputs(", style=bold", f);
  if (t->votes)
    fputs(", color=\"#1f5fbf\", fontcolor=\"#1f5fbf\"", f);
  fputs("];\n", f);
}

static void render_dot(FILE *f, const smc_machine_t *m) {
  fputs("digraph ", f);
  dot_quoted(f, smc_machine_name(m));
  fputs(" {\n  rankdir=LR;\n  label=", f);
  dot_quoted(f, smc_machine_name(m));
  fputs(";\n  labelloc=t;\n"
        "  node [shape=ellipse, fontname=\"Helvetica\"];\n"
        "  edge [fontname=\"Helvetica\", fontsize=10];\n"
        "  \"__start\" [shape=point, width=0.15, label=\"\"];\n",
        f);
  for (size_t s = 0; s < smc_machine_state_count(m); s++) {
    const smc_state_info_t *st = smc_machine_state(m, s);
    fputs("  ", f);
    dot_quoted(f, st->name);
    fputs(" [label=", f);
    dot_quoted(f, st->name);
    if (st->final)
      fputs(", shape=doublecircle", f);
    if (st->description) {
      fputs(", tooltip=", f);
      dot_quoted(f, st->description);
    }
    fputs("];\n", f);
  }
  for (size_t i = 0; i < smc_machine_transition_count(m); i++)
    each_edge(f, m, smc_machine_transition(m, i), dot_edge);
  fputs("}\n", f);
}

/* Mermaid state ids are s0, s1, ... (names may hold '-' or '.'); each state
 * is declared with its name as the label. */
static void mermaid_edge(FILE *f, const smc_machine_t *m, long from, long to,
                         const smc_transition_info_t *t) {
  char label[512];
  (void)m;
  if (to < 0)
    return;
  edge_label(t, label, sizeof(label));
  if (from < 0)
    fprintf(f, "  [*] --> s%ld : ", to);
  else
    fprintf(f, "  s%ld --> s%ld : ", from, to);
  mermaid_text(f, label);
  fputc('\n', f);
}

static void render_mermaid(FILE *f, const smc_machine_t *m) {
  fputs("---\ntitle: ", f);
  mermaid_text(f, smc_machine_name(m));
  fputs("\n---\nstateDiagram-v2\n", f);
  for (size_t s = 0; s < smc_machine_state_count(m); s++) {
    fprintf(f, "  state \"");
    mermaid_text(f, smc_machine_state(m, s)->name);
    fprintf(f, "\" as s%zu\n", s);
  }
  for (size_t i = 0; i < smc_machine_transition_count(m); i++)
    each_edge(f, m, smc_machine_transition(m, i), mermaid_edge);
  for (size_t s = 0; s < smc_machine_state_count(m); s++)
    if (smc_machine_state(m, s)->final)
      fprintf(f, "  s%zu --> [*]\n", s);
  /* Timer and voted transitions cannot be styled per edge in mermaid; their
   * labels carry "(after ...)" and "[q of n votes]" instead. Final states
   * get a class so renderers can draw them apart. */
  int any_final = 0;
  for (size_t s = 0; s < smc_machine_state_count(m); s++)
    any_final |= smc_machine_state(m, s)->final;
  if (any_final) {
    fputs("  classDef final stroke-width:3px\n", f);
    for (size_t s = 0; s < smc_machine_state_count(m); s++)
      if (smc_machine_state(m, s)->final)
        fprintf(f, "  class s%zu final\n", s);
  }
}

int smc_diagram_render(const smc_machine_t *m, const char *format, char **out, smc_error_t *err) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f;
  int dot;

  if (!m || !out || !format)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "diagram: missing argument");
  *out = NULL;
  if (!strcmp(format, "dot"))
    dot = 1;
  else if (!strcmp(format, "mermaid"))
    dot = 0;
  else
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL,
                         "unknown diagram format '%s' (dot or mermaid)", format);
  f = open_memstream(&buf, &len);
  if (!f)
    return smc_error_set(err, SMC_ENOMEM, NULL, "diagram: out of memory");
  if (dot)
    render_dot(f, m);
  else
    render_mermaid(f, m);
  if (ferror(f)) {
    fclose(f);
    free(buf);
    return smc_error_set(err, SMC_ENOMEM, NULL, "diagram: out of memory");
  }
  if (fclose(f) != 0) {
    free(buf);
    return smc_error_set(err, SMC_ENOMEM, NULL, "diagram: out of memory");
  }
  *out = buf;
  return 0;
}
