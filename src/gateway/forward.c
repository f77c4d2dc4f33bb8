/*
 * Forwarding (architecture.md, "Routing between nodes"): a gateway whose node
 * does not fold an object's partition sends the request on to the gateway of
 * a node that does (found in the node table), over keep-alive HTTP/1.1, and
 * answers with that gateway's answer as it came. The forwarded request
 * carries X-Smc-Forwarded, and a request that carries it is never forwarded
 * again, so a stale table cannot make a loop.
 *
 * When nothing could be sent, or the connection broke before an answer,
 * forwarding reports failure and the caller serves the request itself
 * through the log. That may send a proposal the other gateway has sent
 * already: it is the same proposal id, so the fold answers it as the
 * duplicate it is (a retry is always safe).
 *
 * Idle connections are kept per address (at most POOL_PER_ADDR each).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/codec.h"
#include "gateway/gw_internal.h"
#include "base/metrics.h"

#define POOL_ADDRS 64
#define POOL_PER_ADDR 32
#define MAX_ANSWER_BYTES ((size_t)64 << 20)

typedef struct pool_slot {
  char addr[256];
  int fds[POOL_PER_ADDR];
  int n;
} pool_slot_t;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pool_slot_t pool[POOL_ADDRS];

static int pool_take(const char *addr) {
  int fd = -1;
  pthread_mutex_lock(&pool_mu);
  for (int i = 0; i < POOL_ADDRS; i++)
    if (pool[i].n > 0 && !strcmp(pool[i].addr, addr)) {
      fd = pool[i].fds[--pool[i].n];
      break;
    }
  pthread_mutex_unlock(&pool_mu);
  return fd;
}

static void pool_give(const char *addr, int fd) {
  pthread_mutex_lock(&pool_mu);
  pool_slot_t *free_slot = NULL;
  for (int i = 0; i < POOL_ADDRS; i++) {
    if (!strcmp(pool[i].addr, addr)) {
      if (pool[i].n < POOL_PER_ADDR) {
        pool[i].fds[pool[i].n++] = fd;
        fd = -1;
      }
      break;
    }
    if (!free_slot && pool[i].n == 0)
      free_slot = &pool[i];
  }
  if (fd >= 0 && free_slot) {
    snprintf(free_slot->addr, sizeof free_slot->addr, "%s", addr);
    free_slot->fds[free_slot->n++] = fd;
    fd = -1;
  }
  pthread_mutex_unlock(&pool_mu);
  if (fd >= 0)
    close(fd);
}

static int dial(const char *addr, int timeout_ms) {
  char host[256];
  snprintf(host, sizeof host, "%s", addr);
  char *colon = strrchr(host, ':');
  if (!colon)
    return -1;
  *colon = '\0';
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Query string of r's arguments, percent-encoded, into b. */
typedef struct qs {
  smc_buf_t *b;
  int first;
} qs_t;

static void put_encoded(smc_buf_t *b, const char *s, int keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      smc_buf_add(b, s, 1);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      smc_buf_add(b, e, 3);
    }
  }
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value) {
  (void)kind;
  qs_t *q = cls;
  smc_buf_add(q->b, q->first ? "?" : "&", 1);
  q->first = 0;
  put_encoded(q->b, key, 0);
  if (value) {
    smc_buf_add(q->b, "=", 1);
    put_encoded(q->b, value, 0);
  }
  return MHD_YES;
}

/* The request as bytes (malloc'd in b). */
static void build_request(gw_req_t *r, const char *addr, smc_buf_t *b) {
  static const char *const pass[] = {
      "Authorization", "Idempotency-Key", "X-Smc-Proposer", "X-Correlation-Id",
      "Content-Type",  "If-Match",        "Accept"};
  smc_buf_add(b, r->method, strlen(r->method));
  smc_buf_add(b, " ", 1);
  put_encoded(b, r->url, 1); /* libmicrohttpd handed it over decoded */
  qs_t q = {b, 1};
  MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_arg, &q);
  char line[512];
  int n = snprintf(line, sizeof line,
                   " HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\nX-Smc-Forwarded: %s\r\n", addr,
                   r->body_len, r->gw->node_id);
  smc_buf_add(b, line, (size_t)n);
  for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
    const char *v = smc_gw_header(r, pass[i]);
    if (v && !strpbrk(v, "\r\n")) {
      smc_buf_add(b, pass[i], strlen(pass[i]));
      smc_buf_add(b, ": ", 2);
      smc_buf_add(b, v, strlen(v));
      smc_buf_add(b, "\r\n", 2);
    }
  }
  smc_buf_add(b, "\r\n", 2);
  if (r->body_len)
    smc_buf_add(b, r->body, r->body_len);
}

typedef struct answer {
  unsigned status;
  char ctype[128];
  char *body;
  size_t len;
  int keep;
} answer_t;

/* Find header name (case-insensitive) in head; its value into out. */
static int header_value(const char *head, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
    const char *h = p + 2;
    if (!strncasecmp(h, name, nl) && h[nl] == ':') {
      h += nl + 1;
      while (*h == ' ' || *h == '\t')
        h++;
      const char *e = strstr(h, "\r\n");
      size_t n = e ? (size_t)(e - h) : strlen(h);
      if (n >= cap)
        n = cap - 1;
      memcpy(out, h, n);
      out[n] = '\0';
      return 1;
    }
  }
  return 0;
}

/* Read one answer with a Content-Length body. -1: nothing usable came
 * (*got_any tells whether any byte did). */
static int read_answer(int fd, answer_t *a, int *got_any) {
  size_t cap = 8192, n = 0;
  char *buf = malloc(cap + 1);
  if (!buf)
    return -1;
  char *end = NULL;
  *got_any = 0;
  while (!end) {
    if (n == cap) {
      if (cap >= 65536)
        goto fail; /* a head this long is not a gateway's */
      char *nb = realloc(buf, cap * 2 + 1);
      if (!nb)
        goto fail;
      buf = nb;
      cap *= 2;
    }
    ssize_t got = recv(fd, buf + n, cap - n, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      goto fail;
    *got_any = 1;
    n += (size_t)got;
    buf[n] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  size_t head_len = (size_t)(end - buf) + 4;
  end[2] = '\0'; /* the head: lines, each ending in \r\n */
  unsigned status = 0;
  if (sscanf(buf, "HTTP/1.%*d %u", &status) != 1 || status < 100 || status > 599)
    goto fail;
  char v[64];
  if (!header_value(buf, "Content-Length", v, sizeof v))
    goto fail;
  size_t len = strtoull(v, NULL, 10);
  if (len > MAX_ANSWER_BYTES)
    goto fail;
  a->status = status;
  if (!header_value(buf, "Content-Type", a->ctype, sizeof a->ctype))
    snprintf(a->ctype, sizeof a->ctype, "application/json");
  a->keep = !(header_value(buf, "Connection", v, sizeof v) && !strcasecmp(v, "close"));
  a->body = malloc(len + 1);
  if (!a->body)
    goto fail;
  size_t have = n - head_len;
  if (have > len)
    have = len;
  memcpy(a->body, buf + head_len, have);
  while (have < len) {
    ssize_t got = recv(fd, a->body + have, len - have, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      free(a->body);
      a->body = NULL;
      goto fail;
    }
    have += (size_t)got;
  }
  a->len = len;
  free(buf);
  return 0;
fail:
  free(buf);
  return -1;
}

/* Send r to the gateway at addr and read its answer into a: 0, or -1 when
 * nothing usable came back. */
static int fetch(gw_req_t *r, const char *addr, int timeout_ms, answer_t *out) {
  smc_buf_t b;
  smc_buf_init(&b);
  build_request(r, addr, &b);
  if (b.oom) {
    smc_buf_close(&b);
    return -1;
  }
  answer_t a = {0};
  int rc = -1;
  for (int attempt = 0; attempt < 2 && rc < 0; attempt++) {
    int pooled = attempt == 0 ? pool_take(addr) : -1;
    int fd = pooled >= 0 ? pooled : dial(addr, timeout_ms);
    if (fd < 0)
      break;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int got_any = 0;
    if (send_all(fd, (const char *)b.p, b.len) == 0 && read_answer(fd, &a, &got_any) == 0) {
      rc = 0;
      if (a.keep)
        pool_give(addr, fd);
      else
        close(fd);
      break;
    }
    close(fd);
    if (got_any || pooled < 0)
      break; /* only a stale pooled connection is tried again */
  }
  smc_buf_close(&b);
  if (rc < 0) {
    smc_metrics_counter_add("smc_gateway_forwards_total", "result=\"failed\"", 1);
    return -1;
  }
  smc_metrics_counter_add("smc_gateway_forwards_total", "result=\"answered\"", 1);
  *out = a;
  return 0;
}

int smc_gw_forward(gw_req_t *r, const char *addr, int timeout_ms, enum MHD_Result *res) {
  answer_t a = {0};
  if (fetch(r, addr, timeout_ms, &a) < 0)
    return -1;
  *res = smc_gw_reply_raw(r, a.status, a.ctype, a.body, a.len);
  return 0;
}

int smc_gw_fetch(gw_req_t *r, const char *addr, int timeout_ms, unsigned *status, char **body,
                 size_t *len) {
  answer_t a = {0};
  if (fetch(r, addr, timeout_ms, &a) < 0)
    return -1;
  *status = a.status;
  *body = a.body;
  *len = a.len;
  return 0;
}
