/*
 * The compiled form of a machine, shared by machine.c (compile, introspection)
 * and validate.c (the hot path). Everything validation needs is resolved at
 * compile time: state indices, per-state transition lists, rules, regexes,
 * expressions, vote policies.
 */
#ifndef SMC_CORE_MACHINE_INTERNAL_H
#define SMC_CORE_MACHINE_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>

#include "core/expr.h"
#include "core/rules.h"
#include "smc/machine.h"

typedef struct smc_mstate {
  const smc_rule_t *fields; /* rules on the data while in this state (NULL = none) */
  int additional;           /* 0: only the names in `fields` are allowed */
  const char **names;       /* top-level names of `fields` (additional: false) */
  size_t *leaving;          /* transitions naming this state in `from`, definition order */
  size_t nleaving;          /* (from: "*" ones are in smc_machine.any; see smc_leave_next) */
} smc_mstate_t;

typedef struct smc_set_entry {
  char **seg; /* dotted path of the field set */
  size_t nseg;
  smc_expr_t *expr; /* computed value, or NULL: */
  json_t *literal;  /* a literal (json null = delete the field) */
} smc_set_entry_t;

typedef struct smc_mtrans {
  size_t to;      /* target state index */
  long *from_idx; /* state indices of `from` */
  int has_vars;
  smc_vars_t vars;
  const smc_rule_t *src, *dst, *when;
  smc_set_entry_t *set;
  size_t nset;
  int replace; /* mode: replace */
  smc_template_t *message;
  char *guard_canon; /* canonical JSON of the guard keys, for dfsm_overlap */
} smc_mtrans_t;

struct smc_machine {
  atomic_int refs;
  char *name, *hash, *source, *description;
  int dfsm;
  smc_limits_t limits;
  size_t nstates;
  smc_state_info_t *state_info;
  smc_mstate_t *states;
  size_t ntrans;
  smc_transition_info_t *trans_info;
  smc_mtrans_t *trans;
  smc_vote_policy_t *policies; /* one per transition slot, used via trans_info.votes */
  size_t *creates;             /* create transitions (from: null) */
  size_t ncreates;
  size_t *any; /* from: "*" transitions (leave every non-final state) */
  size_t nany;
  smc_rules_t *rules;  /* arena of every compiled rule */
  smc_yaml_doc_t *doc; /* the parsed definition: names point into it */
};

/* Iterate the transitions leaving state s in definition order: the state's
 * own list merged with the from: "*" list (not for final states). */
typedef struct smc_leave_iter {
  const smc_machine_t *m;
  size_t s, a, b;
} smc_leave_iter_t;

static inline int smc_leave_next(smc_leave_iter_t *it, size_t *t) {
  const smc_mstate_t *st = &it->m->states[it->s];
  size_t nany = it->m->state_info[it->s].final ? 0 : it->m->nany;
  if (it->a < st->nleaving && (it->b >= nany || st->leaving[it->a] < it->m->any[it->b])) {
    *t = st->leaving[it->a++];
    return 1;
  }
  if (it->b < nany) {
    *t = it->m->any[it->b++];
    return 1;
  }
  return 0;
}

#endif
