/*
 * PCRE2 (8-bit, UTF) wrapper: compile once, match from many threads.
 *
 * A compiled smc_regex_t is immutable after smc_regex_compile and may be
 * shared between threads. Everything a match mutates (match data, match
 * context) lives in a per-thread scratch area created on first use and
 * freed when the thread exits.
 *
 * Every pattern runs in PCRE2's interpreter, never the JIT. The fold's
 * outcome depends on whether a match hits the match or depth limit
 * (limit_exceeded), so every node must count alike: the JIT counts the
 * match limit its own way, ignores the depth limit and runs out of stack at
 * a size that differs between architectures, and it is missing where
 * executable memory is refused. With it, a node without the JIT (or on
 * another CPU) could decide a proposal differently from its peers.
 */
#include "core/expr.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Longest pattern accepted; patterns are short in practice and a bound keeps
 * compile time and memory predictable for hostile input. */
#define SMC_REGEX_MAX_PATTERN 8192
/* Heap used by the interpreter for backtracking, in KiB. */
#define HEAP_LIMIT_KIB (16 * 1024)

struct smc_regex {
  pcre2_code *code;
  char *pattern;
};

typedef struct {
  pcre2_match_data *md;
  pcre2_match_context *mctx;
  uint32_t match_limit, depth_limit; /* what mctx is set to now */
} scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;
/* The thread's scratch area without a key lookup on every match; the key
 * only exists to free it when the thread exits. */
static _Thread_local scratch_t *scratch_tls;

static void scratch_free(void *p) {
  scratch_t *s = p;
  if (!s)
    return;
  if (s == scratch_tls)
    scratch_tls = NULL;
  pcre2_match_data_free(s->md);
  pcre2_match_context_free(s->mctx);
  free(s);
}

static void scratch_key_init(void) {
  scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

/* The calling thread's scratch area, or NULL when out of memory. A match
 * data block with a single pair suffices: we only ask "does it match". */
static scratch_t *scratch_get(void) {
  if (scratch_tls)
    return scratch_tls;
  pthread_once(&scratch_once, scratch_key_init);
  if (!scratch_key_ok)
    return NULL;
  scratch_t *s = calloc(1, sizeof(*s));
  if (!s)
    return NULL;
  s->md = pcre2_match_data_create(1, NULL);
  s->mctx = pcre2_match_context_create(NULL);
  if (!s->md || !s->mctx)
    goto fail;
  pcre2_set_heap_limit(s->mctx, HEAP_LIMIT_KIB);
  if (pthread_setspecific(scratch_key, s) != 0)
    goto fail;
  scratch_tls = s;
  return s;
fail:
  scratch_free(s);
  return NULL;
}

static int flags_to_options(const char *flags, uint32_t *opts, smc_error_t *err) {
  *opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C;
  for (const char *f = flags; f && *f; f++) {
    switch (*f) {
    case 'i':
      *opts |= PCRE2_CASELESS;
      break;
    case 'm':
      *opts |= PCRE2_MULTILINE;
      break;
    case 's':
      *opts |= PCRE2_DOTALL;
      break;
    case 'x':
      *opts |= PCRE2_EXTENDED;
      break;
    default:
      return smc_error_set(err, SMC_EBAD_REGEX, NULL,
                           "unknown regex flag '%c' (allowed: i, m, s, x)", *f);
    }
  }
  return 0;
}

int smc_regex_compile_ex(const char *pattern, size_t len, const char *flags, smc_regex_t **out,
                         smc_error_t *err) {
  *out = NULL;
  if (!pattern)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "regex pattern is NULL");
  if (len > SMC_REGEX_MAX_PATTERN)
    return smc_error_set(err, SMC_EBAD_REGEX, NULL, "regex longer than %d bytes",
                         SMC_REGEX_MAX_PATTERN);
  uint32_t opts;
  int rc = flags_to_options(flags, &opts, err);
  if (rc)
    return rc;
  smc_regex_t *re = calloc(1, sizeof(*re));
  if (!re)
    return smc_error_set(err, SMC_ENOMEM, NULL, NULL);
  re->pattern = malloc(len + 1);
  if (!re->pattern) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, NULL);
    goto fail;
  }
  memcpy(re->pattern, pattern, len);
  re->pattern[len] = '\0';
  int pcre_err = 0;
  PCRE2_SIZE off = 0;
  re->code = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &pcre_err, &off, NULL);
  if (!re->code) {
    PCRE2_UCHAR msg[256];
    if (pcre2_get_error_message(pcre_err, msg, sizeof(msg)) < 0)
      strcpy((char *)msg, "invalid pattern");
    rc = smc_error_set(err, SMC_EBAD_REGEX, NULL, "bad regex at offset %zu: %s", (size_t)off,
                       (const char *)msg);
    if (err && err->code == rc)
      err->column = (int)off + 1;
    goto fail;
  }
  *out = re;
  return 0;
fail:
  smc_regex_destroy(re);
  return rc;
}

int smc_regex_compile(const char *pattern, const char *flags, smc_regex_t **out, smc_error_t *err) {
  if (!pattern) {
    *out = NULL;
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "regex pattern is NULL");
  }
  return smc_regex_compile_ex(pattern, strlen(pattern), flags, out, err);
}

/* "/pattern/flags": the last '/' ends the pattern, so the pattern itself may
 * contain unescaped slashes. */
int smc_regex_compile_slashed(const char *slashed, smc_regex_t **out, smc_error_t *err) {
  *out = NULL;
  if (!slashed || slashed[0] != '/')
    return smc_error_set(err, SMC_EBAD_REGEX, NULL, "expected /pattern/flags");
  const char *last = strrchr(slashed + 1, '/');
  if (!last)
    return smc_error_set(err, SMC_EBAD_REGEX, NULL, "missing closing '/' in /pattern/flags");
  size_t plen = (size_t)(last - slashed - 1);
  int rc = smc_regex_compile_ex(slashed + 1, plen, last + 1, out, err);
  if (rc && err && err->code == SMC_EBAD_REGEX && err->column > 0)
    err->column += 1; /* account for the leading '/' */
  return rc;
}

void smc_regex_destroy(smc_regex_t *re) {
  if (!re)
    return;
  pcre2_code_free(re->code);
  free(re->pattern);
  free(re);
}

const char *smc_regex_pattern(const smc_regex_t *re) { return re ? re->pattern : NULL; }

/* Limits of 0 mean the smc defaults. Invalid UTF-8 in the subject never
 * matches across the bad bytes (PCRE2_MATCH_INVALID_UTF) and is not an error. */
int smc_regex_match(const smc_regex_t *re, const char *subject, size_t len, uint32_t match_limit,
                    uint32_t depth_limit) {
  if (!re || (!subject && len))
    return SMC_EINVALID_ARGUMENT;
  scratch_t *s = scratch_get();
  if (!s)
    return SMC_ENOMEM;
  if (!match_limit)
    match_limit = SMC_REGEX_DEFAULT_MATCH_LIMIT;
  if (!depth_limit)
    depth_limit = SMC_REGEX_DEFAULT_DEPTH_LIMIT;
  if (s->match_limit != match_limit)
    pcre2_set_match_limit(s->mctx, s->match_limit = match_limit);
  if (s->depth_limit != depth_limit)
    pcre2_set_depth_limit(s->mctx, s->depth_limit = depth_limit);
  PCRE2_SPTR subj = (PCRE2_SPTR)(subject ? subject : "");
  int rc = pcre2_match(re->code, subj, len, 0, 0, s->md, s->mctx);
  if (rc >= 0)
    return 1;
  switch (rc) {
  case PCRE2_ERROR_NOMATCH:
    return 0;
  case PCRE2_ERROR_MATCHLIMIT:
  case PCRE2_ERROR_DEPTHLIMIT:
  case PCRE2_ERROR_HEAPLIMIT:
    return SMC_ELIMIT_EXCEEDED;
  case PCRE2_ERROR_NOMEMORY:
    return SMC_ENOMEM;
  default:
    return SMC_EINTERNAL;
  }
}
