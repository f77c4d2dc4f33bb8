/*
 * The event codec: decode the JSON values of smc.proposals records into typed
 * events (protocol.md, "Events"), strictly, and encode the fold's outputs.
 *
 * Decoding rules: the value must be one JSON object of at most max_bytes
 * bytes (SMC_ETOO_LARGE) with a string "type" among proposal, vote, read,
 * tick, machine. A known field with a wrong type, or a required field that is
 * missing, is SMC_EBAD_REQUEST with err->path naming the field. Unknown fields
 * are ignored. The smc-correlation / smc-reply-to headers fill "correlation"
 * and "reply_to" when the value has no such field (the field wins).
 */
#ifndef SMC_CORE_CODEC_H
#define SMC_CORE_CODEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smc/error.h"

/* Longest object id, proposal id, voter or machine name accepted (bytes). */
#define SMC_CODEC_MAX_ID 1024
/* Longest correlation an event may carry (field or smc-correlation header).
 * Every answer echoes it, so an unbounded one could make an answer larger
 * than the broker takes, which could never be published: a longer field is
 * a bad_request, a longer header is ignored. */
#define SMC_CODEC_MAX_CORRELATION 1024
/* An event over the size limit is still read, up to this size, to answer its
 * proposer (too_large); a larger one is dropped with a log line. */
#define SMC_CODEC_ANSWER_MAX ((size_t)64 << 20)

typedef enum smc_event_type {
  SMC_EV_PROPOSAL = 1,
  SMC_EV_VOTE,
  SMC_EV_READ,
  SMC_EV_TICK,
  SMC_EV_MACHINE,
  SMC_EV_SETTINGS,
} smc_event_type_t;

/* A decoded event. Every string points into root, own or id_buf, which the
 * event owns: valid until smc_event_close. Absent optional fields are NULL. */
typedef struct smc_event {
  smc_event_type_t type;
  json_t *root;
  /* proposal, read: id (a proposal's id is derived when absent) */
  const char *id;
  int id_derived;
  const char *object; /* proposal, vote, read */
  const char *machine, *transition, *to, *proposer;
  const json_t *data; /* proposal: an object, NULL when absent (= {}) */
  int has_expect;
  int64_t expect_version;
  const char *correlation, *reply_to; /* field, else header */
  /* vote */
  const char *proposal, *voter, *reason;
  const char *signature; /* base64 Ed25519 signature, NULL if unsigned */
  int accept;
  /* machine */
  const char *name, *hash, *definition;
  size_t definition_len;
  /* settings: the "limits" object (borrowed from root; checked by the fold,
   * which knows the names) and the fold version it needs (1 when absent) */
  const json_t *limits;
  int64_t fold_version;
  char id_buf[65];
  char *own; /* plain proposals (fast path): the copy the strings point into */
} smc_event_t;

/*
 * Decode one record value. On success returns 0 and ev owns the parsed JSON.
 * On failure returns SMC_EBAD_REQUEST or SMC_ETOO_LARGE with err filled, and
 * ev still holds whatever could be read (type, object, id, reply_to,
 * correlation, when they had the right type) so the caller can address an
 * error answer; smc_event_close must be called in both cases.
 */
int smc_event_decode(const void *value, size_t len, size_t max_bytes, const char *hdr_correlation,
                     const char *hdr_reply_to, smc_event_t *ev, smc_error_t *err);
void smc_event_close(smc_event_t *ev);
/* The same decoding through jansson only (smc_event_decode reads plain
 * proposals in one pass and falls back to this for everything else); for
 * tests that check both paths agree. */
int smc_event_decode_json(const void *value, size_t len, size_t max_bytes,
                          const char *hdr_correlation, const char *hdr_reply_to, smc_event_t *ev,
                          smc_error_t *err);

/* The id of a proposal without one: sha256 hex of
 *   object "\n" expect_version "\n" transition "\n" canonical(data)
 * where an absent expect_version or transition is the empty string, the
 * version is written in decimal, and absent data is {}. out gets 65 bytes. */
int smc_proposal_derive_id(const char *object, int has_expect, int64_t expect_version,
                           const char *transition, const json_t *data, char out[65]);

/* Wire name of an event type ("proposal", ...). */
const char *smc_event_type_name(smc_event_type_t t);

/*
 * A growing byte buffer for building keys, binary records and JSON text.
 * On allocation failure it sets oom and ignores further appends; check
 * oom once at the end.
 */
typedef struct smc_buf {
  char *p;
  size_t len, cap;
  int oom;
} smc_buf_t;

void smc_buf_init(smc_buf_t *b);
void smc_buf_close(smc_buf_t *b);
void smc_buf_reset(smc_buf_t *b);
/* Make room for n more bytes at once (one allocation instead of several
 * doublings when the final size is roughly known). */
void smc_buf_reserve(smc_buf_t *b, size_t n);
/* Room for n more bytes and the NUL: 0, or -1 (oom set) on failure or
 * after an earlier one. */
int smc_buf_grow(smc_buf_t *b, size_t n);
/* Appends are inline (the fold makes dozens per record); only growing
 * calls out. */
static inline void smc_buf_add(smc_buf_t *b, const void *p, size_t n) {
  if ((b->oom || b->len + n + 1 > b->cap) && smc_buf_grow(b, n))
    return;
  if (n)
    memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
}
static inline void smc_buf_adds(smc_buf_t *b, const char *s) { smc_buf_add(b, s, strlen(s)); }
static inline void smc_buf_addc(smc_buf_t *b, char c) { smc_buf_add(b, &c, 1); }
void smc_buf_add_i64(smc_buf_t *b, int64_t v); /* decimal text */
/* Append s (valid UTF-8) as a JSON string literal escaped exactly as
 * jansson's compact output does, so hand-built JSON stays canonical. */
void smc_buf_add_jstr(smc_buf_t *b, const char *s);
/* A member of an object being written: key, the text before the value
 * written as it is (",\"machine\":"), then s as a JSON string (kstr) or v
 * as a decimal (ki64). */
void smc_buf_add_kstr(smc_buf_t *b, const char *key, const char *s);
void smc_buf_add_ki64(smc_buf_t *b, const char *key, int64_t v);
/* Append the canonical text of v (what smc_json_canonical returns) without
 * going through jansson's dumper. Returns 0, or 1 with b unchanged when v
 * holds a real or a string with a NUL (use smc_json_canonical then); on
 * allocation failure b->oom is set. */
int smc_buf_add_canonical(smc_buf_t *b, const json_t *v);
/* Length in bytes of v's canonical JSON (smc_json_canonical: compact,
 * sorted keys, jansson's escapes, integral reals as integers) without
 * writing it; counting stops once it passes limit. The data limit's measure. */
size_t smc_canonical_size(const json_t *v, size_t limit);
/* Binary record helpers: fixed 8-byte big-endian integers and
 * length-prefixed (4-byte BE) strings; NULL strings are stored as length
 * 0xffffffff. */
void smc_buf_put_u8(smc_buf_t *b, uint8_t v);
void smc_buf_put_u32(smc_buf_t *b, uint32_t v);
void smc_buf_put_i64(smc_buf_t *b, int64_t v);
void smc_buf_put_str(smc_buf_t *b, const char *s);

/* Reader for records written with the smc_buf_put_* helpers. Strings read
 * are malloc'd copies. On truncated input bad is set and reads return 0. */
typedef struct smc_rd {
  const uint8_t *p;
  size_t len, pos;
  int bad;
} smc_rd_t;

uint8_t smc_rd_u8(smc_rd_t *r);
uint32_t smc_rd_u32(smc_rd_t *r);
int64_t smc_rd_i64(smc_rd_t *r);
/* A string's bytes in the record (*n of them, not NUL-terminated), or NULL
 * (stored NULL, or bad). */
const uint8_t *smc_rd_bytes(smc_rd_t *r, uint32_t *n);
/* Returns a malloc'd NUL-terminated copy, or NULL (stored NULL, or bad). */
char *smc_rd_str(smc_rd_t *r);

/*
 * Append a vote event's canonical JSON (the encoder next to the decoder: the
 * voter and the client write their votes with it): keys sorted, the same
 * bytes json_dumps(JSON_COMPACT | JSON_SORT_KEYS) gives. machine, reason and
 * signature may be NULL (left out); every string must be valid UTF-8.
 * b->oom reports failure.
 */
void smc_codec_vote_json(smc_buf_t *b, const char *proposal, const char *object, const char *voter,
                         int accept, const char *machine, const char *reason,
                         const char *signature);

/* The fields of a proposal event (protocol.md); NULL strings, NULL data and
 * expect_version < 0 are left out. */
typedef struct smc_codec_proposal {
  const char *id, *object, *machine, *transition, *to, *proposer, *correlation;
  const json_t *data; /* an object */
  int64_t expect_version;
} smc_codec_proposal_t;

/*
 * Append a proposal event's canonical JSON, the bytes
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS) gives for the same object,
 * without building one (the client writes every proposal with it). Every
 * string must be valid UTF-8. b->oom reports failure.
 */
void smc_codec_proposal_json(smc_buf_t *b, const smc_codec_proposal_t *p);

#endif
