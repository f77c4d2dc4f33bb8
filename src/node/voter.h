/*
 * The voter's text helpers (voter.c), private to src/node and its unit
 * tests. The fold hands the voter canonical JSON (compact, keys sorted,
 * jansson's escaping); the voter reads the few fields it needs straight from
 * that text and writes its vote without building jansson trees: with a
 * thousand votes pending, parsing every output was the voter's largest cost.
 */
#ifndef SMC_NODE_VOTER_H
#define SMC_NODE_VOTER_H

#include <stddef.h>

#include "core/codec.h"

/*
 * Find the top-level member `name` (plain text, no escapes) of the JSON
 * object json[0..len). Returns 1 with *val and *vlen set to the member's raw
 * value text (a string keeps its quotes), 0 when the object has no such
 * member, -1 when the text is not a well-formed object as far as it was read.
 */
int smc_voter_json_member(const char *json, size_t len, const char *name, const char **val,
                          size_t *vlen);

/*
 * The raw text of a JSON string value (quotes included) as a C string: 1 with
 * out[0..*outlen) the contents when it has no escape sequence (then the raw
 * contents are the string), 0 when it has one or is no string (decode it
 * properly then).
 */
int smc_voter_json_plain_string(const char *val, size_t vlen, const char **out, size_t *outlen);

/*
 * Whether the JSON array val[0..vlen) holds the string whose canonical text
 * (quotes included, as smc_buf_add_jstr writes it) is want[0..wlen): 1 yes,
 * 0 no, -1 not an array of strings.
 */
int smc_voter_json_array_has(const char *val, size_t vlen, const char *want, size_t wlen);

/*
 * Append the vote event's canonical JSON: keys sorted, the same bytes
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS) gives. reason and signature may
 * be NULL (left out); reason must be valid UTF-8. b->oom reports failure.
 */
void smc_voter_vote_json(smc_buf_t *b, const char *proposal, const char *object, const char *voter,
                         int accept, const char *reason, const char *signature);

#endif
