/* The expression language: ${...} templates (see expr_int.h). */
#include "core/expr_int.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Templates                                                            */
/* ------------------------------------------------------------------ */

typedef struct {
  char *text; /* literal text (NULL for an expression part) */
  size_t len;
  node_t *expr;
} part_t;

struct smc_template {
  part_t *parts;
  int nparts;
  json_t *constant; /* the whole value when there is no ${...} */
  char *src;
};

static int template_add_text(smc_template_t *t, const char *s, size_t n) {
  if (n == 0)
    return 0;
  part_t *p = realloc(t->parts, (size_t)(t->nparts + 1) * sizeof(*p));
  if (!p)
    return -1;
  t->parts = p;
  part_t *np = &t->parts[t->nparts];
  memset(np, 0, sizeof(*np));
  np->text = malloc(n + 1);
  if (!np->text)
    return -1;
  memcpy(np->text, s, n);
  np->text[n] = '\0';
  np->len = n;
  t->nparts++;
  return 0;
}

static int template_add_expr(smc_template_t *t, node_t *e) {
  part_t *p = realloc(t->parts, (size_t)(t->nparts + 1) * sizeof(*p));
  if (!p) {
    expr_node_free(e);
    return -1;
  }
  t->parts = p;
  memset(&t->parts[t->nparts], 0, sizeof(part_t));
  t->parts[t->nparts++].expr = e;
  return 0;
}

/* Template syntax: "${" expr "}" is an expression part; "$$" is a literal
 * "$" (so "$${" is a literal "${"); any other "$" is literal text. */
int smc_template_compile(const char *src, smc_template_t **out, smc_error_t *err) {
  *out = NULL;
  size_t len = 0;
  int rc = expr_check_source(src, "template", SMC_TEMPLATE_MAX_SOURCE, &len, err);
  if (rc)
    return rc;
  smc_template_t *t = calloc(1, sizeof(*t));
  char *text = malloc(len + 1);
  if (!t || !text || !(t->src = strdup(src)))
    goto nomem;
  size_t tn = 0, i = 0;
  while (i < len) {
    if (src[i] == '$' && i + 1 < len && src[i + 1] == '$') {
      text[tn++] = '$';
      i += 2;
    } else if (src[i] == '$' && i + 1 < len && src[i + 1] == '{') {
      if (template_add_text(t, text, tn))
        goto nomem;
      tn = 0;
      size_t end = 0;
      node_t *e = expr_parse_top(src, len, i + 2, 1, &end, err, &rc);
      if (!e)
        goto fail;
      if (template_add_expr(t, e))
        goto nomem;
      i = end;
    } else {
      text[tn++] = src[i++];
    }
  }
  if (template_add_text(t, text, tn))
    goto nomem;
  free(text);
  text = NULL;
  if (t->nparts == 0 || (t->nparts == 1 && t->parts[0].text)) {
    t->constant = t->nparts ? json_stringn(t->parts[0].text, t->parts[0].len) : json_string("");
    if (!t->constant)
      goto nomem;
  }
  *out = t;
  return 0;
nomem:
  rc = smc_error_set(err, SMC_ENOMEM, NULL, NULL);
fail:
  free(text);
  smc_template_destroy(t);
  return rc;
}

void smc_template_destroy(smc_template_t *t) {
  if (!t)
    return;
  for (int i = 0; i < t->nparts; i++) {
    free(t->parts[i].text);
    expr_node_free(t->parts[i].expr);
  }
  free(t->parts);
  json_decref(t->constant);
  free(t->src);
  free(t);
}

int smc_template_is_constant(const smc_template_t *t) { return t && t->constant != NULL; }

const char *smc_template_source(const smc_template_t *t) { return t ? t->src : NULL; }

int smc_template_eval(const smc_template_t *t, smc_eval_ctx_t *ctx, json_t **out,
                      smc_error_t *err) {
  int rc = expr_check_args(t, "template", ctx, out, err);
  if (rc)
    return rc;
  if (t->constant) {
    *out = json_incref(t->constant);
    return 0;
  }
  ev_t ev = {ctx, err};
  if (t->nparts == 1) {
    val_t v;
    rc = expr_eval(&ev, t->parts[0].expr, &v);
    if (rc)
      return rc;
    rc = expr_result_json(&v, out, err);
    val_release(&v);
    return rc;
  }
  val_t *vals = calloc((size_t)t->nparts, sizeof(*vals));
  if (!vals)
    return smc_error_set(err, SMC_ENOMEM, NULL, NULL);
  int done = 0;
  for (; done < t->nparts; done++) {
    if (t->parts[done].text) {
      vals[done].t = T_STR;
      vals[done].s = t->parts[done].text;
      vals[done].n = t->parts[done].len;
      continue;
    }
    rc = expr_eval(&ev, t->parts[done].expr, &vals[done]);
    if (rc)
      break;
  }
  val_t joined;
  if (!rc)
    rc = expr_concat_strings(&ev, NULL, vals, t->nparts, &joined);
  for (int i = 0; i < done; i++)
    val_release(&vals[i]);
  free(vals);
  if (rc)
    return rc;
  rc = expr_result_json(&joined, out, err);
  val_release(&joined);
  return rc;
}
