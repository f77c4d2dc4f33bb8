/*
 * The one shape of an object and of a proposal's decision that every
 * front end prints: the REST gateway's bodies, and the smc commands' JSON
 * and tables (docs/rest.md "Objects"). Built from a confirmation, a read
 * reply or a fold answer; pure JSON shaping, no I/O.
 */
#ifndef SMC_CORE_VIEW_H
#define SMC_CORE_VIEW_H

#include <jansson.h>

/* {object, machine, state, version, data, checksum, updated, created?} from
 * a confirmation (its "time" is the commit time: updated) or a read reply
 * (which carries updated and created). object and machine fill in what src
 * lacks (may be NULL). New reference. */
json_t *smc_view_object(const json_t *src, const char *object, const char *machine);

/* A proposal's decision. Committed: the object view plus proposal,
 * transition, votes, offset, outcome "committed" and duplicate (when
 * true). Rejected or expired: {error: {code, message, path}, proposal,
 * outcome, object, machine?, state?, version?, transition?, votes?,
 * offset?, duplicate?}; *code
 * gets the error's wire name (NULL when committed). New reference. */
json_t *smc_view_answer(const json_t *conf, const char *object, const char *machine,
                        const char **code);

/* Print a view (an object, an answer, or an array of them under "objects"
 * or "versions") as an aligned text table, one row per object: columns
 * OBJECT MACHINE STATE VERSION UPDATED (and PROPOSAL TRANSITION when the
 * rows have them), then DATA. Returns a new string. */
char *smc_view_table(const json_t *rows);

#endif
