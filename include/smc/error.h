/*
 * smc error codes.
 *
 * One table, SMC_ERROR_TABLE, defines every code: its C name, its stable wire
 * name (the string that appears in confirmations, HTTP answers and CLI output)
 * and a one-line meaning. Functions return 0 on success or a negative SMC_E*
 * value, and fill an optional smc_error_t with the why.
 *
 * Wire names are part of the contract (protocol.md): never rename one.
 */
#ifndef SMC_ERROR_H
#define SMC_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(C name, wire name, meaning) */
/* clang-format off */
#define SMC_ERROR_TABLE(X)                                                              \
  /* protocol errors (protocol.md) */                                                  \
  X(BAD_REQUEST, "bad_request", "not JSON, a missing field or a wrong type")           \
  X(TOO_LARGE, "too_large", "the event or value is larger than the configured limit")  \
  X(WRONG_PARTITION, "wrong_partition", "the event is not in murmur2(object) % N")     \
  X(UNKNOWN_MACHINE, "unknown_machine", "no machine of that name is registered")       \
  X(INVALID_MACHINE, "invalid_machine", "the machine definition does not compile")     \
  X(MACHINE_EXISTS, "machine_exists", "a different definition has that name already")  \
  X(UNKNOWN_OBJECT, "unknown_object", "the object does not exist")                     \
  X(OBJECT_EXISTS, "object_exists", "a create transition for an existing object")      \
  X(UNKNOWN_TRANSITION, "unknown_transition", "the machine has no such transition")    \
  X(INVALID_TRANSITION, "invalid_transition", "not allowed from the current state")    \
  X(FINAL_STATE, "final_state", "the object is in a final state")                      \
  X(NO_TRANSITION, "no_transition", "no transition applies (dfsm)")                    \
  X(AMBIGUOUS_TRANSITION, "ambiguous_transition", "several transitions apply (dfsm)")  \
  X(VERSION_CONFLICT, "version_conflict", "expect_version does not match")             \
  X(VALIDATION_FAILED, "validation_failed", "a rule of the transition failed")         \
  X(NOT_A_VOTER, "not_a_voter", "the voter is not eligible for this proposal")         \
  X(BAD_SIGNATURE, "bad_signature", "a keyed voter's vote is unsigned or forged")       \
  X(VOTE_REJECTED, "vote_rejected", "the voters rejected the proposal")                \
  X(VOTE_TIMEOUT, "vote_timeout", "no quorum before the vote deadline")                \
  X(QUEUE_FULL, "queue_full", "the object's proposal queue is full")                   \
  X(LIMIT_EXCEEDED, "limit_exceeded", "an expression or regex budget was exceeded")    \
  X(UNAVAILABLE, "unavailable", "the cluster could not answer in time: outcome unknown") \
  X(NOT_FOUND, "not_found", "no such resource")                                        \
  X(UNAUTHORIZED, "unauthorized", "missing or invalid credentials")                    \
  X(FORBIDDEN, "forbidden", "the credentials do not allow this")                       \
  /* definition errors (machine language) */                                           \
  X(YAML_SYNTAX, "yaml_syntax", "the definition is not valid YAML")                    \
  X(UNKNOWN_KEY, "unknown_key", "a key the language does not know")                    \
  X(MISSING_KEY, "missing_key", "a required key is absent")                            \
  X(BAD_VALUE, "bad_value", "a value of the wrong type or form")                       \
  X(BAD_NAME, "bad_name", "a name that does not match the allowed pattern")            \
  X(DUPLICATE_NAME, "duplicate_name", "a name defined twice")                          \
  X(UNKNOWN_STATE, "unknown_state", "a transition names a state that does not exist")  \
  X(UNKNOWN_REF, "unknown_ref", "$ref names no definition")                            \
  X(REF_CYCLE, "ref_cycle", "definitions refer to each other in a cycle")              \
  X(BAD_REGEX, "bad_regex", "a regular expression does not compile")                   \
  X(BAD_EXPRESSION, "bad_expression", "an expression does not parse")                  \
  X(BAD_DURATION, "bad_duration", "a duration is not like 500ms, 30s, 5m, 2h or 7d")   \
  X(BAD_VOTES, "bad_votes", "a vote policy that cannot be met")                        \
  X(DFSM_OVERLAP, "dfsm_overlap", "two transitions from one state cannot be told apart") \
  /* system errors */                                                                  \
  X(NOMEM, "out_of_memory", "memory allocation failed")                                \
  X(IO, "io_error", "an operating system call failed")                                 \
  X(STORE, "store_error", "the state store failed")                                    \
  X(KAFKA, "kafka_error", "a Kafka client call failed")                                \
  X(INVALID_ARGUMENT, "invalid_argument", "a caller passed an invalid argument")       \
  X(INTERNAL, "internal", "an internal invariant failed")                              \
  X(INCOMPATIBLE, "incompatible_fold", "the log needs a newer fold than this node runs")
/* clang-format on */

typedef enum {
  SMC_OK = 0,
#define SMC_ERROR_ENUM_(name, wire, meaning) SMC_E##name,
  SMC_ERROR_FIRST_ = -1000,
  SMC_ERROR_TABLE(SMC_ERROR_ENUM_)
#undef SMC_ERROR_ENUM_
      SMC_ERROR_LAST_
} smc_code_t;

/* Why an operation failed. Strings are copied in (truncated to fit), so an
 * smc_error_t owns nothing and can live on the stack. */
typedef struct smc_error {
  int code;          /* SMC_E* (negative) or 0 */
  char message[512]; /* plain sentence for a person */
  char path[256];    /* data path (e.g. "dst.owner") or "" */
  char file[256];    /* definition file or "" */
  int line;          /* 1-based, 0 = unknown */
  int column;        /* 1-based, 0 = unknown */
} smc_error_t;

/* Stable wire name of a code ("validation_failed"); "ok" for 0, "unknown" for
 * values outside the table. */
const char *smc_code_name(int code);
/* One-line meaning of a code. */
const char *smc_strerror(int code);
/* Code for a wire name, or 0 when the name is not in the table. */
int smc_code_from_name(const char *name);

/* Reset err to "no error". NULL is accepted. */
void smc_error_clear(smc_error_t *err);
/* Fill err (if non-NULL and not yet set: the first error wins) and return code.
 * fmt is printf-like; path may be NULL. */
int smc_error_set(smc_error_t *err, int code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#ifdef __cplusplus
}
#endif
#endif
