/*
 * smc client library: talk to an smc cluster through Kafka.
 *
 * A client produces proposals, votes and reads to <prefix>proposals with the
 * murmur2 partitioner, and follows <prefix>confirmations and <prefix>replies
 * (read_committed, from their ends at creation time) in a background thread
 * to answer waiting calls. All calls are blocking with a timeout and safe to
 * use from several threads.
 *
 * A timeout never guesses: it returns SMC_EUNAVAILABLE ("outcome unknown")
 * with the proposal id, and re-proposing with that id is always safe.
 */
#ifndef SMC_CLIENT_H
#define SMC_CLIENT_H

#include <jansson.h>
#include <stdint.h>

#include "smc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smc_client smc_client_t;

typedef struct smc_client_config {
  const char *bootstrap;         /* Kafka bootstrap servers (required) */
  const char *prefix;            /* topic prefix, NULL = "smc." */
  const char *const *properties; /* extra librdkafka properties: k1, v1, k2, v2, ..., NULL */
  const char *client_id;         /* NULL = "smc-client" */
  /* 1: do not follow <prefix>confirmations (a caller that learns decisions
   * elsewhere, as the gateway does); smc_client_propose with a timeout and
   * smc_client_watch then get no confirmation. 0 (the default): follow it. */
  int no_confirmations;
  int setup_timeout_ms; /* how long smc_client_new waits for the cluster; 0 = 10 s */
} smc_client_config_t;

SMC_API int smc_client_new(const smc_client_config_t *cfg, smc_client_t **out, smc_error_t *err);
SMC_API void smc_client_destroy(smc_client_t *c);

/* Register a machine: compile locally first (invalid definitions fail with
 * SMC_EINVALID_MACHINE and the first error), then write the registration to
 * every partition of <prefix>proposals and to <prefix>machines in one
 * transaction, and wait for every partition's outcome (a reply on
 * <prefix>replies, protocol.md "Machines"): 0 only when every partition
 * registered it; SMC_EMACHINE_EXISTS when a partition already holds
 * another definition of the name (the registration is then in the log but
 * the machine is not usable on that partition: pick another name);
 * SMC_EBAD_SIGNATURE when the cluster has a registration key and the
 * registration is not signed by it; SMC_EUNAVAILABLE when some partition
 * did not answer within timeout_ms. */
SMC_API int smc_client_register(smc_client_t *c, const char *definition, size_t len, int timeout_ms,
                                smc_error_t *err);

typedef struct smc_propose_req {
  const char *machine;    /* required when the transition creates the object */
  const char *object;     /* required */
  const char *transition; /* NULL: dfsm picks */
  const char *to;         /* NULL: any */
  const json_t *data;     /* NULL = {} */
  int64_t expect_version; /* -1 = no check */
  const char *id;         /* NULL = smc_client_proposal_id's choice */
  const char *proposer;
  const char *correlation;
  /* 1: the caller learns the decision from a fold of the log (a gateway on
   * the node folding the object's partition), not from <prefix>confirmations.
   * The proposal then carries the header smc-ack: decided, and the committer
   * may take up to its --commit-max-interval-ms to publish the confirmation
   * (fewer, larger transactions). Only smc_client_send_start honours it. */
  int ack_decided;
} smc_propose_req_t;

/*
 * The id a request is proposed under: req->id when given; else, when the
 * request names the version it applies to (expect_version >= 0), the id
 * derived from object, expect_version, transition and data (protocol.md), so
 * re-sending the same fenced request is the same proposal; else a fresh
 * random id (64 hex digits, 256 random bits), which the caller must keep to retry safely.
 * Identical requests without expect_version are distinct proposals (an
 * acquire, release, acquire by one owner commits three times). out gets at
 * most 64 characters and a NUL. 0, or SMC_EBAD_REQUEST / SMC_EIO.
 */
SMC_API int smc_client_proposal_id(const smc_propose_req_t *req, char out[65], smc_error_t *err);

/*
 * Propose and wait for the decision. Returns 0 when a confirmation arrived
 * (*confirmation set, new reference; its "outcome" says committed, rejected
 * or expired), SMC_EUNAVAILABLE when none came within timeout_ms: err->path
 * is then "decision" when the broker acknowledged the proposal (it is in the
 * log, not decided yet: waiting for votes, or no committer answered), empty
 * when it may not be in the log. id_out (65 bytes, may be NULL) receives the
 * proposal id in every case but a refused request. When
 * timeout_ms is 0 the call returns after the proposal is durably in the log.
 */
SMC_API int smc_client_propose(smc_client_t *c, const smc_propose_req_t *req, int timeout_ms,
                               json_t **confirmation, char id_out[65], smc_error_t *err);

/*
 * Send the proposal without waiting for its decision: returns 0 once the
 * broker acknowledged it (acks=all: it is durably in the log),
 * SMC_EUNAVAILABLE when no acknowledgement came within timeout_ms (< 0:
 * librdkafka's message timeout; the proposal may or may not be in the log),
 * SMC_EKAFKA when it was certainly not written. id_out as above.
 */
SMC_API int smc_client_send(smc_client_t *c, const smc_propose_req_t *req, int timeout_ms,
                            char id_out[65], smc_error_t *err);

/*
 * The same in two steps, for a caller that learns the decision elsewhere and
 * wants the acknowledgement only when no decision came: _start queues the
 * proposal (0, or SMC_EKAFKA / SMC_EBAD_REQUEST when it could not be; then
 * *d is NULL) and _finish waits up to timeout_ms (0: only looks) for the
 * broker's acknowledgement with smc_client_send's results, and releases d;
 * *offset (may be NULL) gets the proposal's offset in its partition once
 * acknowledged, else -1.
 * Every started delivery must be finished.
 */
typedef struct smc_delivery smc_delivery_t;
SMC_API int smc_client_send_start(smc_client_t *c, const smc_propose_req_t *req, char id_out[65],
                                  smc_delivery_t **d, smc_error_t *err);
SMC_API int smc_client_send_finish(smc_client_t *c, smc_delivery_t *d, int timeout_ms,
                                   int64_t *offset, smc_error_t *err);
/* For event loops: call notify(arg) once when d's acknowledgement (or its
 * failure) arrives, from the client's delivery thread, or at once from this
 * call when it already has. _finish cancels it: after _finish returns,
 * notify is not called. */
SMC_API void smc_client_delivery_notify(smc_client_t *c, smc_delivery_t *d,
                                        void (*notify)(void *arg), void *arg);
/* 1 once d's acknowledgement (or its failure) arrived, else 0. */
SMC_API int smc_client_delivery_done(smc_client_t *c, smc_delivery_t *d);

/* Vote on proposal `proposal` of `object`. Returns once the vote is in the log. */
SMC_API int smc_client_vote(smc_client_t *c, const char *object, const char *proposal,
                            const char *voter, int accept, const char *reason, int timeout_ms,
                            smc_error_t *err);

/* A voter's Ed25519 private key, for signed votes (protocol.md, "Signed
 * votes"). Load a PEM file made by `openssl genpkey -algorithm ed25519` or
 * `smc keygen`: SMC_EIO when it cannot be read, SMC_EINVALID_ARGUMENT when it
 * is not an Ed25519 private key. */
typedef struct smc_vote_key smc_vote_key_t;
SMC_API int smc_vote_key_load(const char *pem_file, smc_vote_key_t **out, smc_error_t *err);
SMC_API void smc_vote_key_free(smc_vote_key_t *key); /* NULL is accepted */
/* The signature field of a vote: base64 of the Ed25519 signature of
 * "smc-vote-v1\n" object "\n" proposal "\n" voter "\n" ("accept"|"reject").
 * out gets 88 characters and a NUL. */
SMC_API int smc_vote_key_sign(const smc_vote_key_t *key, const char *object, const char *proposal,
                              const char *voter, int accept, char out[89], smc_error_t *err);
/* The same for a vote with a reason: with a non-empty reason the message is
 * "smc-vote-v2\n" object "\n" proposal "\n" voter "\n" ("accept"|"reject")
 * "\n" reason, so the reason is signed too; NULL or "" signs the v1 message. */
SMC_API int smc_vote_key_sign_reason(const smc_vote_key_t *key, const char *object,
                                     const char *proposal, const char *voter, int accept,
                                     const char *reason, char out[89], smc_error_t *err);

/* smc_client_vote, signed with key (NULL = unsigned, as smc_client_vote). */
SMC_API int smc_client_vote_signed(smc_client_t *c, const char *object, const char *proposal,
                                   const char *voter, int accept, const char *reason,
                                   const smc_vote_key_t *key, int timeout_ms, smc_error_t *err);
/* smc_client_vote with a signature made elsewhere (the gateway passes a
 * client's through): base64 text sent as is in "signature" (NULL = none);
 * the fold checks it. */
SMC_API int smc_client_vote_presigned(smc_client_t *c, const char *object, const char *proposal,
                                      const char *voter, int accept, const char *reason,
                                      const char *signature, int timeout_ms, smc_error_t *err);

/* A vote with every optional field. machine (NULL = none) names the machine
 * the voter means: the fold counts the vote only on a proposal of that
 * machine (the gateway sets the machine of its path). signature: as in
 * smc_client_vote_presigned. */
typedef struct smc_vote_req {
  const char *machine, *object, *proposal, *voter, *reason, *signature;
  int accept;
} smc_vote_req_t;
SMC_API int smc_client_vote_req(smc_client_t *c, const smc_vote_req_t *req, int timeout_ms,
                                smc_error_t *err);

/* smc_client_register for a cluster with a registration key: signed with
 * key (an Ed25519 private key, as for votes), or, when key is NULL, with
 * signature (base64, made elsewhere over "smc-machine-v1\n" name "\n"
 * hash; NULL = unsigned). */
SMC_API int smc_client_register_signed(smc_client_t *c, const char *definition, size_t len,
                                       const smc_vote_key_t *key, const char *signature,
                                       int timeout_ms, smc_error_t *err);

/* Write the fold settings (protocol.md "settings": names of
 * smc_fold_setting_check, whole numbers) to every partition of
 * <prefix>proposals in one transaction, and wait until every partition
 * folded them: 0 with *in_force (may be NULL) the settings one partition
 * holds now (new reference); SMC_EBAD_REQUEST for an unknown name or a bad
 * value (nothing written); a partition's refusal (bad_signature) or
 * SMC_EUNAVAILABLE when not every partition answered in time. key: the
 * registration key's private half when the cluster has one (NULL = none). */
int smc_client_settings(smc_client_t *c, const json_t *limits, const smc_vote_key_t *key,
                        int timeout_ms, json_t **in_force, smc_error_t *err);

/* Linearizable read through the log: *reply is the read reply event (new
 * reference; "found" false when the object does not exist). */
SMC_API int smc_client_read(smc_client_t *c, const char *object, int timeout_ms, json_t **reply,
                            smc_error_t *err);

/* Follow an object's changes: cb gets every committed version above
 * after_version, each once, in order. The watch first reads the object
 * through the log: when it is already past after_version, cb gets that read
 * reply ("type":"read", the current version) at once, then each committed
 * confirmation decided after it (rejected ones and duplicates change nothing
 * and are skipped). after_version < 0 = the changes after the current
 * version (REST's watch without after_version). Return non-zero from cb to
 * stop. cb runs in the calling thread. Returns 0 when cb stopped,
 * SMC_EUNAVAILABLE when timeout_ms passed first (timeout_ms < 0 = forever)
 * or the first read got no answer. */
SMC_API int smc_client_watch(smc_client_t *c, const char *object, int64_t after_version,
                             int timeout_ms, int (*cb)(void *opaque, const json_t *confirmation),
                             void *opaque, smc_error_t *err);

/* The machine catalog: <prefix>machines read from its beginning to its end
 * (latest record per name). *catalog is a new object mapping each name to its
 * registration event {"type":"machine","name","hash","definition"}. */
SMC_API int smc_client_machines(smc_client_t *c, int timeout_ms, json_t **catalog,
                                smc_error_t *err);

/*
 * Read <prefix>topic (e.g. "confirmations", "nodes") from its beginning to
 * its end as of the call, read_committed: partition `partition`, or every
 * partition when it is < 0, each in offset order. cb gets each record whose
 * value is a JSON object (borrowed for the call) with its key (may be NULL),
 * partition and offset; return non-zero from cb to stop early. 0 when read to
 * the end (or stopped), SMC_EUNAVAILABLE when the end was not reached within
 * timeout_ms, SMC_EKAFKA when the topic does not exist.
 */
SMC_API int smc_client_scan(smc_client_t *c, const char *topic, int32_t partition, int timeout_ms,
                            int (*cb)(void *opaque, const json_t *value, const char *key,
                                      int32_t partition, int64_t offset),
                            void *opaque, smc_error_t *err);

/* The partition of <prefix>proposals (and of every per-object topic) that
 * object's events go to: murmur2(object) % N. */
SMC_API int32_t smc_client_partition_of(smc_client_t *c, const char *object);

#ifdef __cplusplus
}
#endif
#endif
