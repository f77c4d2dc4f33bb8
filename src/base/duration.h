/*
 * The one duration grammar of smc (docs/cli.md "Durations"):
 *
 *   duration = number [unit]
 *   number   = digit {digit} ["." digit {digit}]
 *   unit     = "ms" | "s" | "m" | "h" | "d"        (no unit: seconds)
 *
 * Every command-line flag, every HTTP query parameter (wait, timeout) and
 * the machine language read durations with it. The machine language uses
 * its strict form: a positive whole number with a unit (`after: 30s`), so
 * that what a definition decides never depends on rounding. Nothing else:
 * no sign, no exponent, no spaces.
 */
#ifndef SMC_BASE_DURATION_H
#define SMC_BASE_DURATION_H

#include <stdint.h>

/* The largest duration, in ms: a deadline of any timestamp plus it stays
 * within int64 microseconds. */
#define SMC_DURATION_MAX_MS (INT64_MAX / 1000)

/* Parse s into *ms (a fraction of a millisecond is dropped). strict: the
 * machine language's form (whole number, unit required, > 0). Returns 0, or
 * -1 when s is no duration or above SMC_DURATION_MAX_MS (*ms untouched). */
int smc_duration_parse(const char *s, int strict, int64_t *ms);

#endif
