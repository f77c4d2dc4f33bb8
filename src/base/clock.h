/*
 * The one clock of the process: milliseconds of CLOCK_MONOTONIC for
 * intervals, timeouts and deadlines, and of CLOCK_REALTIME for what is shown
 * or stored as wall time. Nothing else in src/ reads a clock directly
 * (condition-variable deadlines aside, which need a timespec of the
 * variable's own clock: smc_deadline_ts).
 */
#ifndef SMC_BASE_CLOCK_H
#define SMC_BASE_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC (any origin; for differences only). */
int64_t smc_now_ms(void);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t smc_wall_ms(void);

/* The timespec ms milliseconds from now on clock (CLOCK_MONOTONIC or
 * CLOCK_REALTIME), for pthread_cond_timedwait. */
struct timespec smc_deadline_ts(clockid_t clock, int64_t ms);

/* Initialize cv on CLOCK_MONOTONIC, so its timed waits take
 * smc_deadline_ts(CLOCK_MONOTONIC, ...) and a step of the wall clock does
 * not move them. pthread_cond_init's result. */
int smc_cond_init_monotonic(pthread_cond_t *cv);

#endif
