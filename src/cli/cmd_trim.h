/* smc topics trim (cmd_trim.c): delete <prefix>proposals records below each
 * partition's complete changelog checkpoint. */
#ifndef SMC_CLI_CMD_TRIM_H
#define SMC_CLI_CMD_TRIM_H

#include "cli/cmd_client.h"

/* Trim every partition (dry_run: only print what would be trimmed); one line
 * per partition, JSON when json. Returns an SMC_EXIT_* code. */
int smc_cli_topics_trim(const smc_cli_conn_t *conn, int timeout_ms, int dry_run, int json);

#endif
