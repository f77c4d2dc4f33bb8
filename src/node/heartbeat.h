/* The node table's writer: a node's heartbeats to <prefix>nodes (heartbeat.c). */
#ifndef SMC_NODE_HEARTBEAT_H
#define SMC_NODE_HEARTBEAT_H

#include <stdint.h>

#include "node/node.h"

typedef struct smc_heartbeat smc_heartbeat_t;

/* Start writing node's record every cfg->heartbeat_ms (cfg and node must
 * outlive it). Failures to write are logged once, never fatal. */
int smc_heartbeat_start(const smc_node_config_t *cfg, smc_node_t *node, smc_heartbeat_t **out,
                        smc_error_t *err);
/* The HTTP address the node's gateway serves (copied; NULL = none). */
void smc_heartbeat_set_http(smc_heartbeat_t *h, const char *address);
/* Write the last record ("stopped": true), flush, free. NULL is accepted. */
void smc_heartbeat_stop(smc_heartbeat_t *h);

#endif
