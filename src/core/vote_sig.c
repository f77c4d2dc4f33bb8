/*
 * Ed25519 signing and verification of votes with OpenSSL 3 EVP (see
 * vote_sig.h for the signed message).
 */
#include "core/vote_sig.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char ch) {
  const char *p = ch ? strchr(b64_alphabet, ch) : NULL;
  return p ? (int)(p - b64_alphabet) : -1;
}

/* Strict base64 (standard alphabet, '=' padding, no whitespace) of exactly
 * want bytes into out. Returns 0, or -1 for anything else. */
static int b64_decode_exact(const char *s, uint8_t *out, size_t want) {
  size_t n = strlen(s);
  if (n != (want + 2) / 3 * 4)
    return -1;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; k++) {
      if (s[i + k] == '=' && i + 4 == n && k >= 2) {
        v[k] = 0;
        pad++;
      } else if (pad || (v[k] = b64_value(s[i + k])) < 0) {
        return -1; /* bad character, or data after padding */
      }
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    uint8_t b[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
    for (int k = 0; k < 3 - pad; k++) {
      if (o == want)
        return -1;
      out[o++] = b[k];
    }
    /* the unused bits of a padded group must be zero (one encoding only) */
    if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
      return -1;
  }
  return o == want ? 0 : -1;
}

void smc_vote_sig_message(smc_buf_t *b, const char *object, const char *proposal, const char *voter,
                          int accept) {
  smc_vote_sig_message_reason(b, object, proposal, voter, accept, NULL);
}

void smc_vote_sig_message_reason(smc_buf_t *b, const char *object, const char *proposal,
                                 const char *voter, int accept, const char *reason) {
  int v2 = reason && *reason;
  smc_buf_adds(b, v2 ? "smc-vote-v2\n" : "smc-vote-v1\n");
  smc_buf_adds(b, object);
  smc_buf_addc(b, '\n');
  smc_buf_adds(b, proposal);
  smc_buf_addc(b, '\n');
  smc_buf_adds(b, voter);
  smc_buf_addc(b, '\n');
  smc_buf_adds(b, accept ? "accept" : "reject");
  if (v2) {
    smc_buf_addc(b, '\n');
    smc_buf_adds(b, reason);
  }
}

static int is_ed25519(EVP_PKEY *k) { return EVP_PKEY_get_id(k) == EVP_PKEY_ED25519; }

int smc_vote_sig_parse_public(const char *text, EVP_PKEY **out, smc_error_t *err) {
  *out = NULL;
  while (*text == ' ' || *text == '\n' || *text == '\t' || *text == '\r')
    text++;
  if (!strncmp(text, "-----BEGIN", 10)) {
    if (strncmp(text, "-----BEGIN PUBLIC KEY-----", 26))
      return smc_error_set(err, SMC_EBAD_VALUE, NULL,
                           "a PEM key must be a '-----BEGIN PUBLIC KEY-----' block");
    BIO *bio = BIO_new_mem_buf(text, -1);
    if (!bio)
      return smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (!k)
      return smc_error_set(err, SMC_EBAD_VALUE, NULL, "the PEM public key does not parse");
    if (!is_ed25519(k)) {
      EVP_PKEY_free(k);
      return smc_error_set(err, SMC_EBAD_VALUE, NULL, "the PEM public key is not an Ed25519 key");
    }
    *out = k;
    return 0;
  }
  uint8_t raw[SMC_VOTE_SIG_KEY_LEN];
  if (b64_decode_exact(text, raw, sizeof(raw)))
    return smc_error_set(err, SMC_EBAD_VALUE, NULL,
                         "a public key must be the base64 of the 32 raw Ed25519 key bytes "
                         "(44 characters) or a PEM public key");
  *out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, sizeof(raw));
  ERR_clear_error();
  if (!*out)
    return smc_error_set(err, SMC_EBAD_VALUE, NULL, "not a valid Ed25519 public key");
  return 0;
}

int smc_vote_sig_load_private(const char *path, EVP_PKEY **out, smc_error_t *err) {
  *out = NULL;
  FILE *f = fopen(path, "r");
  if (!f)
    return smc_error_set(err, SMC_EIO, NULL, "cannot open key file '%s'", path);
  EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  ERR_clear_error();
  if (!k)
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL,
                         "'%s' is not a PEM private key (make one with: openssl genpkey "
                         "-algorithm ed25519)",
                         path);
  if (!is_ed25519(k)) {
    EVP_PKEY_free(k);
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "'%s' is not an Ed25519 private key",
                         path);
  }
  *out = k;
  return 0;
}

int smc_vote_sig_sign(EVP_PKEY *key, const char *object, const char *proposal, const char *voter,
                      int accept, char out[SMC_VOTE_SIG_B64_LEN + 1], smc_error_t *err) {
  return smc_vote_sig_sign_reason(key, object, proposal, voter, accept, NULL, out, err);
}

/* Sign msg (closed here) with key into out (base64). */
static int sign_message(EVP_PKEY *key, smc_buf_t *msg, char out[SMC_VOTE_SIG_B64_LEN + 1],
                        smc_error_t *err) {
  int rc = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  uint8_t sig[SMC_VOTE_SIG_LEN];
  size_t siglen = sizeof(sig);
  if (msg->oom || !ctx) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  if (!key || !is_ed25519(key) || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
      EVP_DigestSign(ctx, sig, &siglen, (const uint8_t *)msg->p, msg->len) != 1 ||
      siglen != SMC_VOTE_SIG_LEN) {
    rc = smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "cannot sign with this key");
    goto fail;
  }
  EVP_EncodeBlock((unsigned char *)out, sig, SMC_VOTE_SIG_LEN);
fail:
  EVP_MD_CTX_free(ctx);
  smc_buf_close(msg);
  return rc;
}

/* Verify sig over msg (closed here) with key: 0, 1 when it does not
 * verify, or SMC_ENOMEM (err set). */
static int verify_message(EVP_PKEY *key, smc_buf_t *msg, const uint8_t sig[SMC_VOTE_SIG_LEN],
                          smc_error_t *err) {
  int rc = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (msg->oom || !ctx) {
    rc = smc_error_set(err, SMC_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  rc = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) != 1 ||
       EVP_DigestVerify(ctx, sig, SMC_VOTE_SIG_LEN, (const uint8_t *)msg->p, msg->len) != 1;
  ERR_clear_error(); /* a failed verification leaves entries on this thread's queue */
fail:
  EVP_MD_CTX_free(ctx);
  smc_buf_close(msg);
  return rc;
}

int smc_vote_sig_sign_reason(EVP_PKEY *key, const char *object, const char *proposal,
                             const char *voter, int accept, const char *reason,
                             char out[SMC_VOTE_SIG_B64_LEN + 1], smc_error_t *err) {
  smc_buf_t msg;
  smc_buf_init(&msg);
  smc_vote_sig_message_reason(&msg, object, proposal, voter, accept, reason);
  return sign_message(key, &msg, out, err);
}

int smc_vote_sig_verify(EVP_PKEY *key, const char *object, const char *proposal, const char *voter,
                        int accept, const char *sig_b64, smc_error_t *err) {
  return smc_vote_sig_verify_reason(key, object, proposal, voter, accept, NULL, sig_b64, err);
}

int smc_vote_sig_verify_reason(EVP_PKEY *key, const char *object, const char *proposal,
                               const char *voter, int accept, const char *reason,
                               const char *sig_b64, smc_error_t *err) {
  uint8_t sig[SMC_VOTE_SIG_LEN];
  if (!sig_b64)
    return smc_error_set(err, SMC_EBAD_SIGNATURE, "signature",
                         "voter '%s' has a key but the vote is unsigned", voter);
  if (b64_decode_exact(sig_b64, sig, sizeof(sig)))
    return smc_error_set(err, SMC_EBAD_SIGNATURE, "signature",
                         "the signature of '%s' is not the base64 of 64 bytes", voter);
  smc_buf_t msg;
  smc_buf_init(&msg);
  smc_vote_sig_message_reason(&msg, object, proposal, voter, accept, reason);
  int rc = verify_message(key, &msg, sig, err);
  if (rc > 0)
    rc = smc_error_set(err, SMC_EBAD_SIGNATURE, "signature",
                       "the signature of '%s' does not verify", voter);
  return rc;
}

int smc_vote_sig_public_b64(EVP_PKEY *key, char out[45], smc_error_t *err) {
  uint8_t raw[SMC_VOTE_SIG_KEY_LEN];
  size_t len = sizeof(raw);
  if (!key || !is_ed25519(key) || EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 ||
      len != sizeof(raw))
    return smc_error_set(err, SMC_EINVALID_ARGUMENT, NULL, "not an Ed25519 key");
  EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw));
  return 0;
}

/* ---- signed registrations (issue 18): the same Ed25519 over another
 * message, "smc-machine-v1\n" name "\n" hash (the definition's hash, which
 * the fold checks against the definition). ---- */

static void registration_message(smc_buf_t *b, const char *name, const char *hash) {
  smc_buf_adds(b, "smc-machine-v1\n");
  smc_buf_adds(b, name);
  smc_buf_addc(b, '\n');
  smc_buf_adds(b, hash);
}

int smc_registration_sign(EVP_PKEY *key, const char *name, const char *hash,
                          char out[SMC_VOTE_SIG_B64_LEN + 1], smc_error_t *err) {
  smc_buf_t msg;
  smc_buf_init(&msg);
  registration_message(&msg, name, hash);
  return sign_message(key, &msg, out, err);
}

int smc_registration_verify(EVP_PKEY *key, const char *name, const char *hash, const char *sig_b64,
                            smc_error_t *err) {
  uint8_t sig[SMC_VOTE_SIG_LEN];
  if (!sig_b64 || !hash)
    return smc_error_set(err, SMC_EBAD_SIGNATURE, "signature",
                         "registrations must be signed with the cluster's registration key");
  if (b64_decode_exact(sig_b64, sig, sizeof(sig)))
    return smc_error_set(err, SMC_EBAD_SIGNATURE, "signature",
                         "the signature is not the base64 of 64 bytes");
  smc_buf_t msg;
  smc_buf_init(&msg);
  registration_message(&msg, name, hash);
  int rc = verify_message(key, &msg, sig, err);
  if (rc > 0)
    rc = smc_error_set(err, SMC_EBAD_SIGNATURE, "signature",
                       "the registration's signature does not verify with the registration key");
  return rc;
}
