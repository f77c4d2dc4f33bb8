/* Topic definitions and creation (admin.h). */
#include "kafka/admin.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "kafka/handle.h"
#include "kafka/kconf.h"

void smc_topic_defs_close(smc_topic_defs_t *defs) {
  if (!defs)
    return;
  for (size_t i = 0; i < defs->count; i++) {
    smc_topic_def_t *d = &defs->items[i];
    free(d->name);
    for (size_t j = 0; j < 2 * d->nconfig; j++)
      free(d->config[j]);
    free(d->config);
  }
  free(defs->items);
  defs->items = NULL;
  defs->count = 0;
}

static int parse_def(json_t *t, size_t idx, smc_topic_def_t *d, smc_error_t *err) {
  char path[32];
  snprintf(path, sizeof(path), "topics[%zu]", idx);
  const char *name = json_string_value(json_object_get(t, "name"));
  if (!json_is_object(t) || !name || !*name || strlen(name) > 200)
    return smc_error_set(err, SMC_EBAD_VALUE, path, "%s: needs a non-empty \"name\"", path);
  for (const char *c = name; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '.' || *c == '_' || *c == '-'))
      return smc_error_set(err, SMC_EBAD_NAME, path,
                           "%s: topic name '%s' has a character "
                           "Kafka does not allow",
                           path, name);
  json_t *p = json_object_get(t, "partitions");
  if (json_is_string(p) && !strcmp(json_string_value(p), "N"))
    d->partitions = -1;
  else if (json_is_integer(p) && json_integer_value(p) > 0 && json_integer_value(p) < 100000)
    d->partitions = (int32_t)json_integer_value(p);
  else
    return smc_error_set(err, SMC_EBAD_VALUE, path,
                         "%s: \"partitions\" must be a positive number or \"N\"", path);
  json_t *cfg = json_object_get(t, "config");
  if (cfg && !json_is_object(cfg))
    return smc_error_set(err, SMC_EBAD_VALUE, path, "%s: \"config\" must be an object", path);
  if (!(d->name = strdup(name)))
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  size_t n = cfg ? json_object_size(cfg) : 0;
  d->config = calloc(2 * n + 1, sizeof(char *));
  if (!d->config)
    return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
  const char *k;
  json_t *v;
  if (cfg)
    json_object_foreach(cfg, k, v) {
      if (!json_is_string(v))
        return smc_error_set(err, SMC_EBAD_VALUE, path, "%s: config \"%s\" must be a string", path,
                             k);
      d->config[2 * d->nconfig] = strdup(k);
      d->config[2 * d->nconfig + 1] = strdup(json_string_value(v));
      d->nconfig++;
      if (!d->config[2 * d->nconfig - 2] || !d->config[2 * d->nconfig - 1])
        return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    }
  return 0;
}

int smc_topic_defs_parse(const char *text, size_t len, smc_topic_defs_t *defs, smc_error_t *err) {
  memset(defs, 0, sizeof(*defs));
  json_error_t jerr;
  json_t *root = json_loadb(text, len, 0, &jerr);
  if (!root) {
    smc_error_set(err, SMC_EBAD_VALUE, NULL, "topic definitions are not JSON: %s", jerr.text);
    if (err)
      err->line = jerr.line, err->column = jerr.column;
    return SMC_EBAD_VALUE;
  }
  int rc = 0;
  json_t *arr = json_object_get(root, "topics");
  if (!json_is_array(arr) || json_array_size(arr) == 0) {
    rc = smc_error_set(err, SMC_EBAD_VALUE, "topics", "\"topics\" must be a non-empty array");
    goto done;
  }
  defs->items = calloc(json_array_size(arr), sizeof(*defs->items));
  if (!defs->items) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < json_array_size(arr); i++) {
    defs->count++;
    if ((rc = parse_def(json_array_get(arr, i), i, &defs->items[i], err)))
      goto done;
    for (size_t j = 0; j < i; j++)
      if (!strcmp(defs->items[j].name, defs->items[i].name)) {
        rc = smc_error_set(err, SMC_EDUPLICATE_NAME, NULL, "topic '%s' is defined twice",
                           defs->items[i].name);
        goto done;
      }
  }
done:
  json_decref(root);
  if (rc)
    smc_topic_defs_close(defs);
  return rc;
}

int smc_topic_defs_load(const char *path, smc_topic_defs_t *defs, smc_error_t *err) {
  memset(defs, 0, sizeof(*defs));
  FILE *f = fopen(path, "rb");
  if (!f)
    return smc_error_set(err, SMC_EIO, NULL, "cannot open %s: %m", path);
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 > cap) {
      char *nb = realloc(buf, cap = cap * 2 + 8192);
      if (!nb) {
        free(buf);
        fclose(f);
        return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0)
      break;
    if (len > (1u << 20)) {
      free(buf);
      fclose(f);
      return smc_error_set(err, SMC_ETOO_LARGE, NULL, "%s is larger than 1 MiB", path);
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return smc_error_set(err, SMC_EIO, NULL, "cannot read %s", path);
  }
  int rc = smc_topic_defs_parse(buf, len, defs, err);
  if (rc && err && !err->file[0])
    snprintf(err->file, sizeof(err->file), "%s", path);
  free(buf);
  return rc;
}

void smc_topics_options_default(smc_topics_options_t *o) {
  memset(o, 0, sizeof(*o));
  o->partitions = 12;
  o->replication = -1;
  o->min_isr = -1;
  o->timeout_ms = 30000;
}

/* Partition counts of the named topics (-1 when a topic does not exist).
 * A topic the controller just created or reported as existing may take a
 * moment to reach the brokers' metadata: ask again until every topic of a
 * CREATED or EXISTED result is visible with all its partitions, or the
 * timeout passes (what is seen then is reported). */
static int fetch_partitions(rd_kafka_t *rk, smc_topic_result_t *res, size_t n, int timeout_ms,
                            smc_error_t *err) {
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (e)
      return smc_error_set(err,
                           e == RD_KAFKA_RESP_ERR__TIMED_OUT || e == RD_KAFKA_RESP_ERR__TRANSPORT
                               ? SMC_EUNAVAILABLE
                               : SMC_EKAFKA,
                           NULL, "metadata request failed: %s", rd_kafka_err2str(e));
    int settled = 1;
    for (size_t i = 0; i < n; i++) {
      res[i].have_partitions = -1;
      for (int t = 0; t < md->topic_cnt; t++)
        if (!strcmp(md->topics[t].topic, res[i].name) && !md->topics[t].err)
          res[i].have_partitions = md->topics[t].partition_cnt;
      int expected = res[i].status == SMC_TOPIC_CREATED || res[i].status == SMC_TOPIC_EXISTED;
      if (expected && res[i].have_partitions <= 0)
        settled = 0;
      if (res[i].status == SMC_TOPIC_CREATED && res[i].have_partitions != res[i].partitions)
        settled = 0;
    }
    rd_kafka_metadata_destroy(md);
    clock_gettime(CLOCK_MONOTONIC, &now);
    long waited = (long)(now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
    if (settled || waited + 200 >= timeout_ms)
      return 0;
    struct timespec pause = {0, 200 * 1000000L};
    nanosleep(&pause, NULL);
  }
}

/* The min.insync.replicas the new topics get ("" = the broker's default):
 * --min-isr, else 2 with three or more replicas (acks=all then survives the
 * loss of one broker, and a write is on two brokers before it is acknowledged). */
static void min_isr_value(const smc_topics_options_t *o, char *out, size_t n) {
  int v = o->min_isr > 0 ? o->min_isr : o->replication >= 3 ? 2 : 0;
  if (v > 0)
    snprintf(out, n, "%d", v);
  else
    out[0] = '\0';
}

static int build_new_topics(const smc_topics_options_t *o, const smc_topic_defs_t *defs,
                            smc_topic_result_t *res, rd_kafka_NewTopic_t **nts, smc_error_t *err) {
  char errstr[512], min_isr[16];
  min_isr_value(o, min_isr, sizeof(min_isr));
  for (size_t i = 0; i < defs->count; i++) {
    const smc_topic_def_t *d = &defs->items[i];
    memset(&res[i], 0, sizeof(res[i]));
    snprintf(res[i].name, sizeof(res[i].name), "%s%s",
             o->prefix && *o->prefix ? o->prefix : SMC_TOPIC_PREFIX_DEFAULT, d->name);
    res[i].partitions = d->partitions < 0 ? o->partitions : d->partitions;
    nts[i] = rd_kafka_NewTopic_new(res[i].name, res[i].partitions, o->replication, errstr,
                                   sizeof(errstr));
    if (!nts[i])
      return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "topic %s: %s", res[i].name, errstr);
    int own_min_isr = 0;
    for (size_t j = 0; j < d->nconfig; j++) {
      rd_kafka_resp_err_t e =
          rd_kafka_NewTopic_set_config(nts[i], d->config[2 * j], d->config[2 * j + 1]);
      if (e)
        return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "topic %s config %s: %s",
                             res[i].name, d->config[2 * j], rd_kafka_err2str(e));
      if (!strcmp(d->config[2 * j], "min.insync.replicas"))
        own_min_isr = 1;
    }
    if (min_isr[0] && !own_min_isr &&
        rd_kafka_NewTopic_set_config(nts[i], "min.insync.replicas", min_isr))
      return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL,
                           "topic %s: cannot set min.insync.replicas", res[i].name);
  }
  return 0;
}

/* One admin request in flight: the queue its result comes back on, its
 * options, and the result once admin_wait has it. */
typedef struct admin_req {
  rd_kafka_queue_t *q;
  rd_kafka_AdminOptions_t *ao;
  rd_kafka_event_t *ev;
} admin_req_t;

/* Options for op, with a request timeout (request_ms > 0) and an operation
 * timeout (op_ms > 0), and a queue for the result. */
static void admin_begin(rd_kafka_t *rk, rd_kafka_admin_op_t op, int request_ms, int op_ms,
                        admin_req_t *a) {
  char errstr[256];
  a->q = rd_kafka_queue_new(rk);
  a->ao = rd_kafka_AdminOptions_new(rk, op);
  a->ev = NULL;
  if (request_ms > 0)
    rd_kafka_AdminOptions_set_request_timeout(a->ao, request_ms, errstr, sizeof errstr);
  if (op_ms > 0)
    rd_kafka_AdminOptions_set_operation_timeout(a->ao, op_ms, errstr, sizeof errstr);
}

/* Wait up to wait_ms for the result of the request what (words for the
 * messages): 0 with a->ev set; else err filled and SMC_EUNAVAILABLE when no
 * answer came or the request timed out or lost its connection (then
 * *transport = 1, when transport is not NULL), SMC_EKAFKA when it failed
 * otherwise. */
static int admin_wait(admin_req_t *a, int wait_ms, const char *what, int *transport,
                      smc_error_t *err) {
  if (!(a->ev = rd_kafka_queue_poll(a->q, wait_ms)))
    return smc_error_set(err, SMC_EUNAVAILABLE, NULL, "%s got no answer in %d ms", what, wait_ms);
  rd_kafka_resp_err_t e = rd_kafka_event_error(a->ev);
  if (!e)
    return 0;
  if (transport)
    *transport = e == RD_KAFKA_RESP_ERR__TRANSPORT;
  return smc_error_set(err,
                       e == RD_KAFKA_RESP_ERR__TIMED_OUT || e == RD_KAFKA_RESP_ERR__TRANSPORT
                           ? SMC_EUNAVAILABLE
                           : SMC_EKAFKA,
                       NULL, "%s failed: %s", what, rd_kafka_event_error_string(a->ev));
}

static void admin_end(admin_req_t *a) {
  if (a->ev)
    rd_kafka_event_destroy(a->ev);
  rd_kafka_AdminOptions_destroy(a->ao);
  rd_kafka_queue_destroy(a->q);
}

/* Send CreateTopics and record each topic's result. */
static int run_create(rd_kafka_t *rk, const smc_topics_options_t *o, rd_kafka_NewTopic_t **nts,
                      smc_topic_result_t *res, size_t n, smc_error_t *err) {
  admin_req_t a;
  admin_begin(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, o->timeout_ms, o->timeout_ms, &a);
  rd_kafka_CreateTopics(rk, nts, n, a.ao, a.q);
  int rc = admin_wait(&a, o->timeout_ms + 5000, "CreateTopics", NULL, err);
  if (rc) {
    admin_end(&a);
    return rc;
  }
  const rd_kafka_CreateTopics_result_t *cr = rd_kafka_event_CreateTopics_result(a.ev);
  size_t cnt = 0;
  const rd_kafka_topic_result_t **trs = cr ? rd_kafka_CreateTopics_result_topics(cr, &cnt) : NULL;
  for (size_t i = 0; i < cnt; i++) {
    const char *name = rd_kafka_topic_result_name(trs[i]);
    for (size_t j = 0; j < n; j++) {
      if (strcmp(res[j].name, name))
        continue;
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(trs[i]);
      const char *es = rd_kafka_topic_result_error_string(trs[i]);
      if (!e) {
        res[j].status = SMC_TOPIC_CREATED;
        res[j].have_partitions = res[j].partitions;
      } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        res[j].status = SMC_TOPIC_EXISTED; /* partition count checked next */
      } else {
        res[j].status = SMC_TOPIC_FAILED;
        snprintf(res[j].message, sizeof(res[j].message), "%s", es ? es : rd_kafka_err2str(e));
      }
    }
  }
  admin_end(&a);
  return 0;
}

int smc_topics_create(const smc_topics_options_t *o, const smc_topic_defs_t *defs,
                      smc_topic_result_t *results, smc_error_t *err) {
  char errstr[512];
  if (!o || !defs || !results || defs->count == 0)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "no topics to create");
  if (o->partitions <= 0 || o->replication == 0 || o->replication < -1 || o->timeout_ms <= 0)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL,
                         "partitions and replication must be positive (replication -1 = "
                         "broker default), timeout too");
  if (o->min_isr == 0 || o->min_isr < -1 || (o->replication > 0 && o->min_isr > o->replication))
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL,
                         "min ISR must be positive and at most the replication factor");
  int rc = 0;
  rd_kafka_t *rk = NULL;
  rd_kafka_NewTopic_t **nts = calloc(defs->count, sizeof(*nts));
  rd_kafka_conf_t *conf = smc_kconf_new(o->bootstrap, o->properties, errstr, sizeof(errstr));
  if (!nts || !conf) {
    rc = smc_error_set(err, nts ? SMC_EINVALID_ARGUMENT : SMC_ENOMEM, NULL, "%s",
                       nts ? errstr : "out of memory");
    goto done;
  }
  if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
    rc = smc_error_set(err, SMC_EKAFKA, NULL, "cannot create the admin client: %s", errstr);
    goto done;
  }
  conf = NULL; /* rk owns it */
  if ((rc = build_new_topics(o, defs, results, nts, err)) ||
      (rc = run_create(rk, o, nts, results, defs->count, err)))
    goto done;
  /* Check what exists now: topics that existed must have the count we want. */
  smc_topic_result_t *have = calloc(defs->count, sizeof(*have));
  if (!have) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto done;
  }
  memcpy(have, results, defs->count * sizeof(*have));
  rc = fetch_partitions(rk, have, defs->count, o->timeout_ms, err);
  for (size_t i = 0; !rc && i < defs->count; i++) {
    smc_topic_result_t *r = &results[i];
    if (r->status == SMC_TOPIC_CREATED && have[i].have_partitions != r->partitions) {
      r->status = SMC_TOPIC_FAILED;
      snprintf(r->message, sizeof(r->message),
               "created, but not visible with %d partitions within the timeout",
               (int)r->partitions);
    }
    if (r->status != SMC_TOPIC_EXISTED)
      continue;
    r->have_partitions = have[i].have_partitions;
    if (r->have_partitions != r->partitions) {
      r->status = SMC_TOPIC_MISMATCH;
      snprintf(r->message, sizeof(r->message), "exists with %d partitions, expected %d",
               (int)r->have_partitions, (int)r->partitions);
    }
  }
  free(have);
  for (size_t i = 0; !rc && i < defs->count; i++) {
    if (results[i].status == 0) {
      results[i].status = SMC_TOPIC_FAILED;
      snprintf(results[i].message, sizeof(results[i].message), "no result from the broker");
    }
    if (results[i].status == SMC_TOPIC_FAILED || results[i].status == SMC_TOPIC_MISMATCH)
      rc =
          smc_error_set(err, SMC_EKAFKA, NULL, "topic %s: %s", results[i].name, results[i].message);
  }
done:
  if (nts)
    for (size_t i = 0; i < defs->count; i++)
      if (nts[i])
        rd_kafka_NewTopic_destroy(nts[i]);
  free(nts);
  if (conf)
    rd_kafka_conf_destroy(conf);
  if (rk)
    rd_kafka_destroy(rk);
  return rc;
}

/* One DescribeConfigs round of topic's setting name on rk (see
 * smc_topic_config_get); *transport = 1 when it failed on the connection to
 * the broker it went to (another round may go to another broker). */
static int config_get_once(rd_kafka_t *rk, const char *topic, const char *name, char *out,
                           size_t cap, int timeout_ms, int *transport, smc_error_t *err) {
  *transport = 0;
  char what[300];
  snprintf(what, sizeof what, "DescribeConfigs of %s", topic);
  admin_req_t a;
  admin_begin(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout_ms, 0, &a);
  rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
  rd_kafka_DescribeConfigs(rk, &res, 1, a.ao, a.q);
  int rc = admin_wait(&a, timeout_ms + 2000, what, transport, err);
  if (rc)
    goto done;
  rc = SMC_ENOT_FOUND;
  const rd_kafka_DescribeConfigs_result_t *dr = rd_kafka_event_DescribeConfigs_result(a.ev);
  size_t nres = 0, nent = 0;
  const rd_kafka_ConfigResource_t **rs =
      dr ? rd_kafka_DescribeConfigs_result_resources(dr, &nres) : NULL;
  if (nres == 1 && rd_kafka_ConfigResource_error(rs[0])) {
    rd_kafka_resp_err_t e = rd_kafka_ConfigResource_error(rs[0]);
    rc = smc_error_set(
        err, e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? SMC_ENOT_FOUND : SMC_EKAFKA, NULL,
        "DescribeConfigs of %s: %s", topic, rd_kafka_ConfigResource_error_string(rs[0]));
    goto done;
  }
  const rd_kafka_ConfigEntry_t **es =
      nres == 1 ? rd_kafka_ConfigResource_configs(rs[0], &nent) : NULL;
  for (size_t i = 0; i < nent; i++)
    if (!strcmp(rd_kafka_ConfigEntry_name(es[i]), name)) {
      const char *v = rd_kafka_ConfigEntry_value(es[i]);
      snprintf(out, cap, "%s", v ? v : "");
      rc = 0;
      break;
    }
  if (rc == SMC_ENOT_FOUND)
    smc_error_set(err, rc, NULL, "topic %s has no setting %s", topic, name);
done:
  rd_kafka_ConfigResource_destroy(res);
  admin_end(&a);
  return rc;
}

/* A request that failed on its connection is made again (every 250 ms)
 * until timeout_ms has passed: with one broker of several down, librdkafka
 * may send it to that broker (it learned it from the bootstrap list, or the
 * cluster's metadata still names it), and the others would answer. */
int smc_topic_config_get(const char *bootstrap, const char *const *props, const char *topic,
                         const char *name, char *out, size_t cap, int timeout_ms,
                         smc_error_t *err) {
  char errstr[512];
  out[0] = '\0';
  rd_kafka_conf_t *conf = smc_kconf_new(bootstrap, props, errstr, sizeof(errstr));
  if (!conf)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "%s", errstr);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return smc_error_set(err, SMC_EKAFKA, NULL, "cannot create the admin client: %s", errstr);
  }
  int64_t deadline = smc_now_ms() + timeout_ms;
  int rc, transport = 0;
  smc_error_t e; /* the last round's */
  for (;;) {
    int left = (int)(deadline - smc_now_ms());
    smc_error_clear(&e);
    rc = config_get_once(rk, topic, name, out, cap, left > 1000 ? left : 1000, &transport, &e);
    if (rc != SMC_EUNAVAILABLE || !transport || smc_now_ms() + 250 >= deadline)
      break;
    struct timespec ts = {0, 250 * 1000000L};
    nanosleep(&ts, NULL);
  }
  rd_kafka_destroy(rk);
  return rc < 0 ? smc_error_set(err, rc, NULL, "%s", e.message) : rc;
}

int smc_kafka_group_committed(const char *bootstrap, const char *const *props, const char *group,
                              const char *topic, int32_t n, int64_t *out, int timeout_ms) {
  char errstr[512];
  smc_kafka_spec_t spec = {
      .type = SMC_KAFKA_CONSUMER, .bootstrap = bootstrap, .group_id = group, .props = props};
  rd_kafka_t *rk = smc_kafka_open(&spec, errstr, sizeof errstr);
  if (!rk)
    return SMC_EKAFKA;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
  for (int32_t p = 0; p < n; p++)
    rd_kafka_topic_partition_list_add(l, topic, p);
  int rc = rd_kafka_committed(rk, l, timeout_ms) ? SMC_EUNAVAILABLE : 0;
  for (int i = 0; rc == 0 && i < l->cnt; i++)
    out[l->elems[i].partition] = l->elems[i].err ? -1 : l->elems[i].offset;
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_destroy(rk); /* never joined the group: nothing to leave */
  return rc;
}

int smc_kafka_delete_records(smc_kafka_t *rk, const char *topic, int32_t n, const int64_t *before,
                             const char **errs, int timeout_ms, char *why, size_t len) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
  for (int32_t p = 0; p < n; p++)
    if (before[p] >= 0)
      rd_kafka_topic_partition_list_add(l, topic, p)->offset = before[p];
  int rc = 0;
  if (l->cnt == 0) {
    rd_kafka_topic_partition_list_destroy(l);
    return 0;
  }
  rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(l);
  rd_kafka_topic_partition_list_destroy(l);
  admin_req_t a;
  admin_begin(rk, RD_KAFKA_ADMIN_OP_DELETERECORDS, 0, timeout_ms, &a);
  rd_kafka_DeleteRecords(rk, &del, 1, a.ao, a.q);
  smc_error_t err;
  smc_error_clear(&err);
  rc = admin_wait(&a, timeout_ms + 5000, "DeleteRecords", NULL, &err);
  if (rc) {
    snprintf(why, len, "%s", err.message);
  } else {
    const rd_kafka_DeleteRecords_result_t *res = rd_kafka_event_DeleteRecords_result(a.ev);
    const rd_kafka_topic_partition_list_t *out = rd_kafka_DeleteRecords_result_offsets(res);
    for (int i = 0; out && i < out->cnt; i++)
      if (out->elems[i].partition >= 0 && out->elems[i].partition < n && out->elems[i].err)
        errs[out->elems[i].partition] = rd_kafka_err2str(out->elems[i].err);
  }
  rd_kafka_DeleteRecords_destroy(del);
  admin_end(&a);
  return rc;
}
