/*
 * smc REST gateway (interfaces.md, "REST gateway"): an HTTP/JSON front for one
 * cluster, served by libmicrohttpd.
 *
 * The gateway owns one smc client (src/client/client.c) for proposals, votes
 * and reads, and one background follower of <prefix>machines (the catalog for
 * GET /machine) and <prefix>confirmations (the bounded LRU that answers
 * GET /proposal/{id}). Threading (loop.c): a few libmicrohttpd epoll threads
 * serve every connection; a proposal or read that waits for its decision is
 * suspended and woken by it, holding no thread; routes that block (watches,
 * forwarding, registrations, lists) run on a pool of threads of their own.
 * Every wait is bounded by its timeout. Connections beyond max_connections
 * are answered with a clean 503 (Connection: close); beyond
 * max_connections + 4096 they are closed at once.
 *
 * Ownership: smc_gateway_start copies every string of cfg; the caller may free
 * them afterwards. The owned_partitions / ready callbacks (and opaque) must
 * stay valid until smc_gateway_stop returns.
 */
#ifndef SMC_GATEWAY_GATEWAY_H
#define SMC_GATEWAY_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include "smc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smc_gateway smc_gateway_t;

typedef struct smc_gateway_config {
  const char *listen;             /* "127.0.0.1:8080"; port 0 picks a free port */
  const char *bootstrap;          /* Kafka bootstrap servers (required) */
  const char *prefix;             /* topic prefix, NULL = "smc." */
  const char *const *kafka_props; /* k,v,...,NULL passthrough to librdkafka; may be NULL */
  const char *node_id;            /* for /info; NULL = "gateway" */
  const char *roles;              /* for /info, e.g. "committer,voter,http"; NULL = "http" */
  size_t max_body_bytes;          /* default 1 MiB -> 413 too_large beyond */
  unsigned max_connections;       /* default 1024 -> clean 503 beyond */
  unsigned http_threads;          /* epoll threads serving HTTP; 0: one per CPU, 2 to 16 */
  size_t max_definition_bytes;    /* PUT /machine beyond -> 400 invalid_machine with a
                                     too_large error; 0 = the compiler's default (1 MiB) */
  size_t cache_bytes;             /* proposal outcomes and latest object versions kept
                                     from the confirmations (estimated heap bytes);
                                     0 = SMC_GW_CACHE_BYTES_DEFAULT (32 MiB) */
  const char *auth_tokens_file;   /* optional bearer tokens; NULL = open */
  size_t (*owned_partitions)(void *opaque, int32_t *out, size_t max); /* /info; may be NULL */
  void *opaque;
  /* Extensions (defaults from smc_gateway_config_default): */
  int (*ready)(void *opaque); /* /readyz: non-zero once restored; NULL = always */
  /* The hub of this process's folds (src/node/answers.h; not copied, must
   * outlive the gateway): writes answered at decision and reads answered
   * from a local fold for the partitions they serve. NULL = none (every
   * answer comes through Kafka). */
  struct smc_answers *answers;
  /* A node of the node table not heard of for this long is down (GET /nodes,
   * forwarding); 0 = 10000 ms. */
  int node_down_ms;
} smc_gateway_config_t;

#define SMC_GW_CACHE_BYTES_DEFAULT ((size_t)32 << 20)

/* Fill c with the defaults above (listen "127.0.0.1:8080", prefix "smc."). */
void smc_gateway_config_default(smc_gateway_config_t *c);

/* Connect the client, start the follower and the HTTP server. On failure
 * nothing is left running and err says why (SMC_EIO when the address cannot
 * be bound, SMC_EKAFKA, SMC_EINVALID_ARGUMENT). */
int smc_gateway_start(const smc_gateway_config_t *cfg, smc_gateway_t **out, smc_error_t *err);

/* Stop serving, close the client and the follower, free gw. NULL is accepted. */
void smc_gateway_stop(smc_gateway_t *gw);

/* 1 when /readyz would answer 200: the catalog is loaded and cfg->ready
 * (if any) says the node is restored. */
int smc_gateway_ready(const smc_gateway_t *gw);

/* The address actually bound, "HOST:PORT" (owned by gw). */
const char *smc_gateway_address(const smc_gateway_t *gw);

#ifdef __cplusplus
}
#endif
#endif
