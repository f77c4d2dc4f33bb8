/*
 * JSON text read without a full parse: the one scanner of smc.
 *
 * Two kinds of readers use it. Readers of the fold's outputs (the gateway
 * follower's confirmation index) need a field or two of a text and no
 * tree: they walk its top-level members. The hot decoders (the codec's
 * fast path for plain proposals, the fold's loads of proposal and object
 * data) build a tree here directly for the plain texts that make up
 * nearly every record, and leave everything else to jansson, so any input
 * parses, or fails, exactly as jansson would have it.
 *
 * Positions are pointers into the caller's text, bounded by end (one past
 * the last byte); nothing is copied, nothing needs a NUL.
 */
#ifndef SMC_CORE_JSON_SCAN_H
#define SMC_CORE_JSON_SCAN_H

#include <jansson.h>
#include <stddef.h>

/* How deep objects and arrays may nest for the scanner and the plain
 * loader; deeper texts are left to jansson. */
#define SMC_JSON_SCAN_MAX_DEPTH 64

/* White space skipped: the first other byte at or after p (end at most). */
const char *smc_json_skip_ws(const char *p, const char *end);
/* p is at a string's opening quote: the position after its closing quote
 * (escapes skipped whole), or NULL when the text ends first. */
const char *smc_json_skip_string(const char *p, const char *end);
/* One value at p skipped: strings whole, objects and arrays by bracket
 * depth (strings inside followed), scalars up to the next delimiter. The
 * position after it, or NULL when the text ends first, a scalar is empty
 * or nesting goes deeper than SMC_JSON_SCAN_MAX_DEPTH. */
const char *smc_json_skip_value(const char *p, const char *end);
/* After a member or an element, at p or after white space: a ',' (then
 * *more = 1 and the position after it and the white space that follows),
 * or close (*more = 0, the position after it); NULL when neither. */
const char *smc_json_next(const char *p, const char *end, char close, int *more);
/* A plain string at p (its opening quote): printable ASCII without
 * escapes. The position after its closing quote, with *n its length (the
 * bytes start at p + 1); NULL when the string is not plain or not closed. */
const char *smc_json_plain_string(const char *p, const char *end, size_t *n);

/* One top-level member of an object, as smc_json_members gives it: the
 * key's raw bytes (between the quotes, escapes as written; key_escaped
 * when it holds one) and the value's raw text [value, value_end). */
typedef struct smc_json_member {
  const char *key;
  size_t key_len;
  int key_escaped;
  const char *value, *value_end;
} smc_json_member_t;

/* Walk the members of the JSON object that is the whole of [text,
 * text + len) (white space around it allowed), calling fn on each in text
 * order; a nonzero return of fn stops the walk and is returned. 0 when the
 * object was walked to its end, -1 when the text is not an object, is
 * truncated, or a value cannot be skipped (see smc_json_skip_value).
 * Nothing after the closing brace is looked at. */
int smc_json_members(const char *text, size_t len,
                     int (*fn)(const smc_json_member_t *m, void *opaque), void *opaque);

/* json_loadb(text, len, flags, NULL) with the same result, faster for
 * the plain texts the fold parses on every record (proposal data, stored
 * object data): a top-level object of ASCII strings without escapes,
 * integers of up to 18 digits, true, false, null, arrays and objects up to
 * SMC_JSON_SCAN_MAX_DEPTH deep, no repeated key, is built here directly;
 * anything else (reals, escapes, non-ASCII, repeated keys, errors) goes to
 * jansson itself, so every other input parses, or fails, exactly as before. */
json_t *smc_json_loadb(const char *text, size_t len, size_t flags);
/* The same for a NUL-terminated text (json_loads). */
json_t *smc_json_loads(const char *text, size_t flags);
/* The fast half alone: the tree, or NULL when the text is not of the
 * plain kind above (or on allocation failure); for tests. */
json_t *smc_json_load_plain(const char *text, size_t len);

#endif
