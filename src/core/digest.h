/* SHA-256 as lowercase hex: the one digest helper of smc (proposal ids,
 * machine hashes, the checksum chain, settings hashes, expressions'
 * sha256(), smc replay --digest). */
#ifndef SMC_CORE_DIGEST_H
#define SMC_CORE_DIGEST_H

#include <stddef.h>

/* sha256 of data as 64 lowercase hex digits + NUL into out. Thread-safe;
 * fast on hot paths (the algorithm is fetched once per process and each
 * thread reuses one digest context, freed when the thread exits). */
void smc_sha256_hex(const void *data, size_t len, char out[65]);

/* n bytes as 2n lowercase hex digits + NUL into out. */
void smc_hex_lower(const unsigned char *bytes, size_t n, char *out);

/* A SHA-256 over data given in pieces. smc_sha256_init returns 0, or -1
 * when OpenSSL cannot make a context; update after a failure is a no-op
 * and smc_sha256_final_hex then returns -1. final ends the digest (init
 * starts another on the same struct); close frees it. */
typedef struct smc_sha256 {
  void *ctx; /* EVP_MD_CTX */
  int bad;
} smc_sha256_t;

int smc_sha256_init(smc_sha256_t *h);
void smc_sha256_update(smc_sha256_t *h, const void *data, size_t len);
int smc_sha256_final_hex(smc_sha256_t *h, char out[65]);
void smc_sha256_close(smc_sha256_t *h);

#endif
