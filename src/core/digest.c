/*
 * SHA-256 hex digests (see digest.h).
 *
 * smc_sha256_hex runs on every proposal (derived ids), every commit (the
 * checksum chain) and every sha256() of an expression. OpenSSL 3 looks the
 * algorithm up and allocates a context on each one-shot call, which cost
 * ~5% of the fold per commit; here the implementation is fetched once per
 * process and each thread keeps one context. Any failure falls back to the
 * one-shot SHA256(): same bytes either way.
 */
#include "core/digest.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>

static EVP_MD *sha_md;
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static pthread_key_t sha_key;
static int sha_key_ok;
static _Thread_local EVP_MD_CTX *sha_ctx;

static void sha_ctx_free(void *p) {
  if (p == sha_ctx)
    sha_ctx = NULL;
  EVP_MD_CTX_free(p);
}

static void sha_init(void) {
  sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
  sha_key_ok = pthread_key_create(&sha_key, sha_ctx_free) == 0;
}

void smc_hex_lower(const unsigned char *bytes, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[bytes[i] >> 4];
    out[2 * i + 1] = hex[bytes[i] & 15];
  }
  out[2 * n] = '\0';
}

void smc_sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!sha_ctx) {
    pthread_once(&sha_once, sha_init);
    EVP_MD_CTX *c = sha_md && sha_key_ok ? EVP_MD_CTX_new() : NULL;
    if (c && pthread_setspecific(sha_key, c) == 0)
      sha_ctx = c;
    else
      EVP_MD_CTX_free(c);
  }
  if (!sha_ctx || !EVP_DigestInit_ex2(sha_ctx, sha_md, NULL) ||
      !EVP_DigestUpdate(sha_ctx, data, len) || !EVP_DigestFinal_ex(sha_ctx, md, &mdlen) ||
      mdlen != SHA256_DIGEST_LENGTH) {
    SHA256(data, len, md);
    mdlen = SHA256_DIGEST_LENGTH;
  }
  smc_hex_lower(md, mdlen, out);
}

int smc_sha256_init(smc_sha256_t *h) {
  if (!h->ctx)
    h->ctx = EVP_MD_CTX_new();
  h->bad = !h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
  return h->bad ? -1 : 0;
}

void smc_sha256_update(smc_sha256_t *h, const void *data, size_t len) {
  if (!h->bad && !EVP_DigestUpdate(h->ctx, data, len))
    h->bad = 1;
}

int smc_sha256_final_hex(smc_sha256_t *h, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (h->bad || !EVP_DigestFinal_ex(h->ctx, md, &mdlen) || mdlen != SHA256_DIGEST_LENGTH)
    return -1;
  smc_hex_lower(md, mdlen, out);
  return 0;
}

void smc_sha256_close(smc_sha256_t *h) {
  EVP_MD_CTX_free(h->ctx);
  h->ctx = NULL;
}
