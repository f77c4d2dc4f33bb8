/*
 * smc machine API: compile a YAML (or JSON) machine definition, inspect it,
 * and validate proposals against it.
 *
 * Everything here is pure: no I/O beyond the text handed in, no wall clock,
 * no global state. A compiled machine is immutable and reference counted, so
 * one compiled machine may be shared by many partitions and threads.
 */
#ifndef SMC_MACHINE_H
#define SMC_MACHINE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "smc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Budgets that bound every evaluation. Exceeding one fails with
 * SMC_ELIMIT_EXCEEDED, never a hang. */
typedef struct smc_limits {
  uint64_t expr_steps;         /* evaluation steps per proposal (default 100000) */
  uint32_t regex_match_limit;  /* PCRE2 match limit (default 100000) */
  uint32_t regex_depth_limit;  /* PCRE2 depth limit (default 1000) */
  size_t definition_max_bytes; /* largest definition accepted (default 1 MiB) */
  size_t data_max_bytes;       /* largest object data, canonical JSON (default 256 KiB) */
} smc_limits_t;

/* Fill l with the defaults above. */
SMC_API void smc_limits_default(smc_limits_t *l);

/* One diagnostic of a definition: an error or a warning, with position. */
typedef struct smc_diag {
  smc_error_t err; /* err.code is an SMC_E* definition code */
  int warning;     /* 1 = warning (the machine still compiles) */
} smc_diag_t;

/* All diagnostics of one compile, in source order. Owned by the caller:
 * smc_diags_init before use, smc_diags_close after. */
typedef struct smc_diags {
  smc_diag_t *items;
  size_t count, cap;
  size_t errors, warnings;
} smc_diags_t;

SMC_API void smc_diags_init(smc_diags_t *d);
SMC_API void smc_diags_close(smc_diags_t *d);

typedef struct smc_machine smc_machine_t;

struct evp_pkey_st; /* OpenSSL's EVP_PKEY */

/* Vote policy of a transition, resolved at compile time (majority/all turned
 * into numbers, the machine default applied). */
typedef struct smc_vote_policy {
  size_t quorum; /* accepts needed */
  size_t nvoters;
  char **voters;      /* eligible voter ids, sorted */
  int64_t timeout_ms; /* 0 = no deadline */
  /* Ed25519 public keys parallel to voters (NULL: that voter votes
   * unsigned); the array is NULL when no voter has a key. */
  struct evp_pkey_st **keys;
} smc_vote_policy_t;

typedef struct smc_state_info {
  const char *name;
  const char *description; /* NULL if none */
  int final;
} smc_state_info_t;

typedef struct smc_transition_info {
  const char *name;
  const char *to;
  size_t nfrom;
  const char *const *from;        /* states it leaves; empty for create / any */
  int creates;                    /* from: null */
  int from_any;                   /* from: "*" (any non-final state) */
  int64_t after_ms;               /* 0 = not a timer transition */
  const smc_vote_policy_t *votes; /* NULL = no votes needed */
  const char *message;            /* custom message, NULL if none */
} smc_transition_info_t;

/*
 * Compile a definition. text need not be NUL-terminated; file is used in
 * diagnostics only (may be NULL). On success returns 0 and *out holds a new
 * machine (refcount 1). On failure returns SMC_EINVALID_MACHINE (or another
 * negative code) and diags lists every error found, with line and column.
 * Warnings are added to diags in both cases. diags may be NULL. limits may be
 * NULL for the defaults.
 */
SMC_API int smc_machine_compile(const char *text, size_t len, const char *file,
                                const smc_limits_t *limits, smc_machine_t **out,
                                smc_diags_t *diags);

/* Take another reference; release with smc_machine_destroy. */
SMC_API smc_machine_t *smc_machine_retain(smc_machine_t *m);
/* Drop a reference; the last one frees the machine. NULL is accepted. */
SMC_API void smc_machine_destroy(smc_machine_t *m);

SMC_API const char *smc_machine_name(const smc_machine_t *m);
/* sha256 (64 lowercase hex) of the canonical JSON form of the definition. */
SMC_API const char *smc_machine_hash(const smc_machine_t *m);
/* The definition text as given to smc_machine_compile (NUL-terminated). */
SMC_API const char *smc_machine_source(const smc_machine_t *m);
SMC_API const char *smc_machine_description(const smc_machine_t *m); /* NULL if none */
SMC_API int smc_machine_is_dfsm(const smc_machine_t *m);

SMC_API size_t smc_machine_state_count(const smc_machine_t *m);
SMC_API const smc_state_info_t *smc_machine_state(const smc_machine_t *m, size_t i);
/* Index of a state by name, or -1. */
SMC_API long smc_machine_find_state(const smc_machine_t *m, const char *name);

/*
 * Machines evolve (docs/language.md, "Versions"): a new definition under a
 * registered name is its next version, in force from its registration on
 * for every object of the machine, provided it keeps every state of the
 * version it replaces (an object may be in any of them). Returns 0 when
 * `next` may replace `cur` (same name), else SMC_EMACHINE_EXISTS with err
 * naming the states it drops.
 */
SMC_API int smc_machine_evolves(const smc_machine_t *cur, const smc_machine_t *next,
                                smc_error_t *err);
SMC_API size_t smc_machine_transition_count(const smc_machine_t *m);
SMC_API const smc_transition_info_t *smc_machine_transition(const smc_machine_t *m, size_t i);

/*
 * The inactivity timer of a state: the timer transition (after:) with the
 * smallest duration that leaves `state` (ties: the first defined). Returns 1
 * and fills *transition and *after_ms, or 0 when the state has none.
 */
SMC_API int smc_machine_timer(const smc_machine_t *m, const char *state, size_t *transition,
                              int64_t *after_ms);

/* The object a proposal applies to, as the fold sees it. */
typedef struct smc_object_view {
  const char *id;
  const char *state;  /* NULL: the object does not exist */
  int64_t version;    /* 0 when it does not exist */
  const json_t *data; /* NULL when it does not exist */
} smc_object_view_t;

typedef struct smc_proposal_view {
  const char *transition; /* NULL: dfsm machines pick the one that applies */
  const char *to;         /* NULL: any target (ndfsm: must then be unique) */
  const json_t *input;    /* the proposal's data; NULL = {} */
  const char *proposer;   /* meta.proposer; may be NULL */
  int64_t time;           /* meta.time: the partition clock in ms */
} smc_proposal_view_t;

/* What an accepted proposal does. */
typedef struct smc_outcome {
  size_t transition; /* index for smc_machine_transition() */
  const char *name;  /* transition name (owned by the machine) */
  const char *state; /* resulting state (owned by the machine) */
  json_t *data;      /* resulting data: new reference, the caller owns it */
} smc_outcome_t;

/*
 * Decide whether proposal p may move obj, in this order: create vs existing
 * (object_exists / unknown_object), final state, transition known
 * (unknown_transition) and allowed from obj's state (invalid_transition), then
 * the rules ($vars, $src, when, set/mode, $dst, target state fields). dfsm
 * machines without p->transition try every transition from the state:
 * no_transition / ambiguous_transition. The first failure wins and is
 * returned with err filled (code, path, message; the rule's custom message
 * where one is given). Deterministic: the same inputs give the same result.
 * Expression and regex budgets come from limits (NULL = defaults).
 */
SMC_API int smc_machine_validate(const smc_machine_t *m, const smc_object_view_t *obj,
                                 const smc_proposal_view_t *p, const smc_limits_t *limits,
                                 smc_outcome_t *out, smc_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
