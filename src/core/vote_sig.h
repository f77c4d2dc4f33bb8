/*
 * Ed25519-signed votes (protocol.md, "Signed votes").
 *
 * A voter with a public key in the vote policy must sign the exact bytes
 *
 *   "smc-vote-v1\n" object "\n" proposal "\n" voter "\n" ("accept"|"reject")
 *
 * (no trailing newline) and send the 64-byte signature, base64-encoded
 * (standard alphabet, padded: 88 characters), in the vote's "signature"
 * field. Verification is a pure function of the key and the event, so a
 * replay decides the same way.
 *
 * Keys are OpenSSL 3 EVP_PKEY objects of type ED25519.
 */
#ifndef SMC_CORE_VOTE_SIG_H
#define SMC_CORE_VOTE_SIG_H

#include <openssl/evp.h>
#include <stddef.h>

#include "core/codec.h"
#include "smc/error.h"

/* Raw key and signature lengths, and the base64 text length of a signature
 * (without the NUL). */
#define SMC_VOTE_SIG_KEY_LEN 32
#define SMC_VOTE_SIG_LEN 64
#define SMC_VOTE_SIG_B64_LEN 88

/* Append the signed message of a vote to b (see above): "smc-vote-v1" without
 * a reason; with a non-empty reason "smc-vote-v2", the same lines, a line
 * feed and the reason, so the reason can be neither changed, added nor
 * removed without breaking the signature. */
void smc_vote_sig_message(smc_buf_t *b, const char *object, const char *proposal, const char *voter,
                          int accept);
void smc_vote_sig_message_reason(smc_buf_t *b, const char *object, const char *proposal,
                                 const char *voter, int accept, const char *reason);

/*
 * Parse a voter's public key: either the base64 of the 32 raw key bytes, or
 * a PEM "-----BEGIN PUBLIC KEY-----" block (SubjectPublicKeyInfo, as written
 * by `openssl pkey -pubout`) holding an Ed25519 key. Returns 0 and *out (free
 * with EVP_PKEY_free), or SMC_EBAD_VALUE with err saying why (bad base64,
 * wrong length, bad PEM, not an Ed25519 key).
 */
int smc_vote_sig_parse_public(const char *text, EVP_PKEY **out, smc_error_t *err);

/* Load an Ed25519 private key from a PEM file (`openssl genpkey -algorithm
 * ed25519`). SMC_EIO when the file cannot be read, SMC_EINVALID_ARGUMENT when
 * it is not an Ed25519 private key. */
int smc_vote_sig_load_private(const char *path, EVP_PKEY **out, smc_error_t *err);

/* Sign a vote with a private key: out gets the base64 signature and a NUL. */
int smc_vote_sig_sign(EVP_PKEY *key, const char *object, const char *proposal, const char *voter,
                      int accept, char out[SMC_VOTE_SIG_B64_LEN + 1], smc_error_t *err);
/* The same for a vote with a reason (NULL or "" = none: the v1 message). */
int smc_vote_sig_sign_reason(EVP_PKEY *key, const char *object, const char *proposal,
                             const char *voter, int accept, const char *reason,
                             char out[SMC_VOTE_SIG_B64_LEN + 1], smc_error_t *err);

/*
 * Check a vote's signature against the voter's public key. Returns 0 when
 * sig_b64 is the valid signature of the vote's message, else SMC_EBAD_SIGNATURE
 * with err saying why (missing, not base64 of 64 bytes, does not verify).
 */
int smc_vote_sig_verify(EVP_PKEY *key, const char *object, const char *proposal, const char *voter,
                        int accept, const char *sig_b64, smc_error_t *err);
/* The same for a vote with a reason (NULL or "" = none: the v1 message). */
int smc_vote_sig_verify_reason(EVP_PKEY *key, const char *object, const char *proposal,
                               const char *voter, int accept, const char *reason,
                               const char *sig_b64, smc_error_t *err);

/* Signed machine registrations (protocol.md, "Machines"): when the cluster
 * has a registration key, a machine event counts only with "signature" =
 * base64 Ed25519 signature of "smc-machine-v1\n" name "\n" hash. */
int smc_registration_sign(EVP_PKEY *key, const char *name, const char *hash,
                          char out[SMC_VOTE_SIG_B64_LEN + 1], smc_error_t *err);
int smc_registration_verify(EVP_PKEY *key, const char *name, const char *hash, const char *sig_b64,
                            smc_error_t *err);

/* The base64 of a key's 32 raw public bytes (for `smc keygen` and the
 * machine YAML); out gets 44 characters and a NUL. */
int smc_vote_sig_public_b64(EVP_PKEY *key, char out[45], smc_error_t *err);

#endif
