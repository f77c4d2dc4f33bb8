/*
 * /machine routes: register (POST /machine/{name}), list (GET /machine),
 * definition (GET /machine/{name}) and diagram (GET /machine/{name}/diagram).
 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/diagram.h"
#include "gateway/gw_internal.h"

extern char **environ;

#define REGISTER_TIMEOUT_MS 10000

static int is_yaml_type(const char *ct) {
  return smc_gw_ctype_is(ct, "application/yaml") || smc_gw_ctype_is(ct, "application/x-yaml") ||
         smc_gw_ctype_is(ct, "text/yaml") || smc_gw_ctype_is(ct, "text/x-yaml");
}

/* 400 invalid_machine with every error of the compile, each with line and column. */
static enum MHD_Result reply_invalid(gw_req_t *r, const smc_diags_t *d, int rc) {
  json_t *errs = json_array();
  const char *first = NULL;
  for (size_t i = 0; i < d->count; i++) {
    const smc_diag_t *g = &d->items[i];
    if (g->warning)
      continue;
    if (!first)
      first = g->err.message;
    json_t *e = json_pack("{s:s, s:s, s:i, s:i}", "code", smc_code_name(g->err.code), "message",
                          g->err.message, "line", g->err.line, "column", g->err.column);
    if (e && g->err.path[0])
      json_object_set_new(e, "path", json_string(g->err.path));
    json_array_append_new(errs, e);
  }
  if (json_array_size(errs) == 0)
    json_array_append_new(errs, json_pack("{s:s, s:s, s:i, s:i}", "code", smc_code_name(rc),
                                          "message", smc_strerror(rc), "line", 0, "column", 0));
  char msg[600];
  snprintf(msg, sizeof(msg), "the definition has %zu error%s%s%s", json_array_size(errs),
           json_array_size(errs) == 1 ? "" : "s", first ? "; first: " : "", first ? first : "");
  return smc_gw_reply_json(r, 400,
                           json_pack("{s:{s:s, s:s, s:s, s:o}}", "error", "code", "invalid_machine",
                                     "message", msg, "path", r->url, "errors", errs));
}

/* The definition size limit the folds of this node hold (the cluster
 * setting max_definition_bytes), so the gateway refuses what they would;
 * lim keeps the gateway's own when this node folds no partition. */
static void cluster_definition_limit(gw_req_t *r, smc_limits_t *lim) {
  char *text = NULL;
  if (smc_answers_settings(r->gw->answers, smc_gw_now_ms() + 2000, &text))
    return;
  json_t *parts = json_loads(text, 0, NULL);
  free(text);
  json_t *l = json_object_get(json_array_get(parts, 0), "limits");
  json_int_t v = json_integer_value(json_object_get(l, "max_definition_bytes"));
  if (v > 0)
    lim->definition_max_bytes = (size_t)v;
  json_decref(parts);
}

static enum MHD_Result post_machine(gw_req_t *r, const char *name) {
  const char *ct = smc_gw_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (ct && !is_yaml_type(ct) && !smc_gw_ctype_is(ct, "application/json"))
    return smc_gw_reply_error(r, 415, SMC_EBAD_REQUEST,
                              "Content-Type must be application/yaml or application/json, not %s",
                              ct);
  if (r->body_len == 0)
    return smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                              "the body must hold the machine definition");
  if (memchr(r->body, '\0', r->body_len))
    return smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST, "the definition contains a NUL byte");
  if (smc_gw_ctype_is(ct, "application/json")) {
    enum MHD_Result answered = MHD_NO;
    json_t *v = smc_gw_body_json(r, NULL, &answered);
    if (!v)
      return answered;
    json_decref(v);
  }
  smc_diags_t d;
  smc_diags_init(&d);
  smc_machine_t *m = NULL;
  smc_limits_t lim = r->gw->limits;
  cluster_definition_limit(r, &lim);
  int rc = smc_machine_compile(r->body, r->body_len, name, &lim, &m, &d);
  if (rc < 0) {
    enum MHD_Result res = reply_invalid(r, &d, rc);
    smc_diags_close(&d);
    return res;
  }
  smc_diags_close(&d);
  enum MHD_Result res;
  if (strcmp(smc_machine_name(m), name)) {
    res = smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                             "the path names machine '%s' but the definition is '%s'", name,
                             smc_machine_name(m));
    goto done;
  }
  smc_machine_t *have = smc_gw_catalog_get(r->gw->follower, name);
  char previous[65] = "";
  if (have) {
    smc_error_t everr;
    smc_error_clear(&everr);
    int same = !strcmp(smc_machine_hash(have), smc_machine_hash(m));
    int ev = same ? 0 : smc_machine_evolves(have, m, &everr);
    snprintf(previous, sizeof previous, "%s", smc_machine_hash(have));
    smc_machine_destroy(have);
    if (same) {
      res = smc_gw_reply_json(
          r, 200,
          json_pack("{s:s, s:s, s:b}", "name", name, "hash", smc_machine_hash(m), "existed", 1));
      goto done;
    }
    if (ev) { /* a new version may not drop a state */
      res = smc_gw_reply_error(r, 409, ev, "%s", everr.message);
      goto done;
    }
  }
  smc_error_t err;
  smc_error_clear(&err);
  /* a cluster with a registration key takes only signed registrations: the
   * client signs "smc-machine-v1\n" name "\n" hash and sends it here */
  const char *sig = smc_gw_header(r, "X-Smc-Signature");
  rc = smc_client_register_signed(r->gw->client, r->body, r->body_len, NULL, sig,
                                  REGISTER_TIMEOUT_MS, &err);
  if (rc < 0) {
    unsigned st = rc == SMC_EUNAVAILABLE       ? 504
                  : rc == SMC_EINVALID_MACHINE ? 400
                  : rc == SMC_EMACHINE_EXISTS  ? 409
                  : rc == SMC_EBAD_SIGNATURE   ? 403
                                               : 503;
    res = smc_gw_reply_error(r, st, rc, "registration failed: %s",
                             err.message[0] ? err.message : smc_strerror(rc));
    goto done;
  }
  smc_gw_catalog_put(r->gw->follower, m);
  json_t *body = json_pack("{s:s, s:s}", "name", name, "hash", smc_machine_hash(m));
  if (previous[0]) /* a new version of a registered machine */
    json_object_set_new(body, "previous", json_string(previous));
  res = smc_gw_reply_json(r, 201, body);
done:
  smc_machine_destroy(m);
  return res;
}

static json_t *describe(const smc_machine_t *m) {
  json_t *states = json_array(), *trans = json_array();
  for (size_t i = 0; i < smc_machine_state_count(m); i++) {
    const smc_state_info_t *s = smc_machine_state(m, i);
    json_array_append_new(states, json_pack("{s:s, s:b, s:s?}", "name", s->name, "final", s->final,
                                            "description", s->description));
  }
  for (size_t i = 0; i < smc_machine_transition_count(m); i++) {
    const smc_transition_info_t *t = smc_machine_transition(m, i);
    json_t *from = json_array();
    for (size_t k = 0; k < t->nfrom; k++)
      json_array_append_new(from, json_string(t->from[k]));
    json_t *o = json_pack("{s:s, s:s, s:o, s:b, s:b}", "name", t->name, "to", t->to, "from", from,
                          "creates", t->creates, "from_any", t->from_any);
    if (o && t->after_ms)
      json_object_set_new(o, "after_ms", json_integer(t->after_ms));
    if (o && t->votes)
      json_object_set_new(o, "votes",
                          json_pack("{s:I, s:I}", "quorum", (json_int_t)t->votes->quorum, "voters",
                                    (json_int_t)t->votes->nvoters));
    json_array_append_new(trans, o);
  }
  return json_pack("{s:s, s:s, s:s?, s:b, s:s, s:o, s:o}", "name", smc_machine_name(m), "hash",
                   smc_machine_hash(m), "description", smc_machine_description(m), "dfsm",
                   smc_machine_is_dfsm(m), "definition", smc_machine_source(m), "states", states,
                   "transitions", trans);
}

/* Run `dot -Tsvg` on dot source; the SVG (malloc'd) or NULL. */
static char *render_svg(const char *dot, size_t *len) {
  char tmpl[] = "/tmp/smc-gw-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0)
    return NULL;
  size_t n = strlen(dot);
  int ok = write(fd, dot, n) == (ssize_t)n;
  close(fd);
  char *out = NULL;
  int pfd[2] = {-1, -1};
  if (!ok || pipe2(pfd, O_CLOEXEC) < 0)
    goto done;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
  char *argv[] = {"dot", "-Tsvg", tmpl, NULL};
  pid_t pid;
  int sp = posix_spawnp(&pid, "dot", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pfd[1]);
  if (sp == 0) {
    size_t cap = 8192, got = 0;
    out = malloc(cap);
    ssize_t k;
    while (out && (k = read(pfd[0], out + got, cap - got - 1)) > 0) {
      got += (size_t)k;
      if (cap - got < 1024) {
        char *p = realloc(out, cap * 2);
        if (!p) {
          free(out);
          out = NULL;
          break;
        }
        out = p;
        cap *= 2;
      }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (out && (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got == 0)) {
      free(out);
      out = NULL;
    }
    if (out) {
      out[got] = '\0';
      *len = got;
    }
  }
  close(pfd[0]);
done:
  unlink(tmpl);
  return out;
}

static enum MHD_Result get_diagram(gw_req_t *r, const smc_machine_t *m) {
  const char *fmt = smc_gw_arg(r, "format");
  if (!fmt)
    fmt = "svg";
  int svg = !strcmp(fmt, "svg");
  if (!svg && strcmp(fmt, "dot") && strcmp(fmt, "mermaid"))
    return smc_gw_reply_error(r, 400, SMC_EBAD_REQUEST,
                              "format must be svg, dot or mermaid, not '%s'", fmt);
  char *text = NULL;
  smc_error_t err;
  smc_error_clear(&err);
  int rc = smc_diagram_render(m, svg ? "dot" : fmt, &text, &err);
  if (rc < 0)
    return smc_gw_reply_error(r, 500, rc, "diagram: %s", err.message);
  if (!svg)
    return smc_gw_reply_raw(r, 200,
                            !strcmp(fmt, "dot") ? "text/vnd.graphviz; charset=utf-8"
                                                : "text/plain; charset=utf-8",
                            text, strlen(text));
  size_t len = 0;
  char *out = render_svg(text, &len);
  free(text);
  if (!out)
    return smc_gw_reply_error(r, 500, SMC_EIO,
                              "Graphviz `dot -Tsvg` failed (is graphviz installed?)");
  return smc_gw_reply_raw(r, 200, "image/svg+xml", out, len);
}

enum MHD_Result smc_gw_route_machine(gw_req_t *r) {
  int get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
  if (r->nsegs == 1) {
    if (!get)
      return smc_gw_reply_error(r, 405, SMC_EBAD_REQUEST, "method %s not allowed on /machine",
                                r->method);
    return smc_gw_reply_json(r, 200,
                             json_pack("{s:o}", "machines", smc_gw_catalog_list(r->gw->follower)));
  }
  const char *name = r->segs[1];
  int diagram = r->nsegs == 3 && !strcmp(r->segs[2], "diagram");
  if (r->nsegs > 3 || (r->nsegs == 3 && !diagram))
    return smc_gw_reply_error(r, 404, SMC_ENOT_FOUND, "no such resource");
  if (r->nsegs == 2 && !strcmp(r->method, "POST"))
    return post_machine(r, name);
  if (!get)
    return smc_gw_reply_error(r, 405, SMC_EBAD_REQUEST, "method %s not allowed here", r->method);
  smc_machine_t *m = smc_gw_catalog_get(r->gw->follower, name);
  if (!m)
    return smc_gw_reply_error(r, 404, SMC_EUNKNOWN_MACHINE, "no machine named '%s'", name);
  enum MHD_Result res;
  if (diagram) {
    res = get_diagram(r, m);
  } else if (is_yaml_type(smc_gw_header(r, MHD_HTTP_HEADER_ACCEPT))) {
    const char *src = smc_machine_source(m);
    char *copy = strdup(src);
    res = copy ? smc_gw_reply_raw(r, 200, "application/yaml", copy, strlen(copy))
               : smc_gw_reply_error(r, 500, SMC_ENOMEM, "out of memory");
  } else {
    res = smc_gw_reply_json(r, 200, describe(m));
  }
  smc_machine_destroy(m);
  return res;
}
