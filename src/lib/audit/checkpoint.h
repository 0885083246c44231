/* checkpoint.h - signed audit checkpoints (docs/audit.md).
 *
 * A hash chain proves that no entry was changed or removed from the
 * middle, but a log cut back to an earlier state is still a valid chain.
 * A checkpoint is a statement "at issued_at the log had `entries`
 * entries and its last one hashed to head_hash", signed (detached CMS,
 * DER, base64) by the Enrollment CA's document-signing certificate and
 * kept outside the database by the operator.  A log with fewer entries,
 * or a different hash at that position, no longer matches it.
 *
 * The signed bytes are `payload`, compact JSON with sorted keys:
 *   {"entries":N,"head_hash":"<64 hex>","head_id":ID,"issued_at":"<iso UTC>",
 *    "issuer":"<holder or operator>","log":"<service url>",
 *    "type":"itl-audit-checkpoint","version":1}
 * Only the payload is trusted on verification; the export document's
 * other fields repeat it for reading. */
#ifndef ATT_AUDIT_CHECKPOINT_H
#define ATT_AUDIT_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct att_dbc;
typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

#define ATT_CHECKPOINT_TYPE "itl-audit-checkpoint"
#define ATT_CHECKPOINT_FORMAT "itl-audit-checkpoint/1"

struct att_checkpoint {
	int64_t id;
	int64_t entries;
	int64_t head_id;		/* 0 for an empty log */
	char head_hash[65];		/* the genesis hash for an empty log */
	char issued_at[32];
	char *issuer;
	char *payload;			/* the signed bytes */
	char *signature;		/* base64 DER CMS (detached, signer cert included) */
	char *timestamp_token;		/* base64 DER RFC 3161 TimeStampToken, or NULL */
};

struct att_checkpoint_signer {
	EVP_PKEY *key;
	X509 *cert, *ca;
	const char *log;		/* the service URL, named in the payload */
};

/* Sign the log's current head and store it, in one write transaction.
 * With only_if_changed, nothing is issued (*ret_issued = false) when the
 * newest stored checkpoint already names this head.  A log that no longer
 * extends the newest stored checkpoint (cut back, rewritten) is never
 * signed: ATT_E_CONFLICT with err saying how it differs. */
int att_checkpoint_issue(struct att_dbc *c, const struct att_checkpoint_signer *sg, const char *issuer,
			 bool only_if_changed, struct att_checkpoint *ret, bool *ret_issued, char *err, size_t errlen);
/* One stored checkpoint; id 0 is the newest.  ATT_E_NOTFOUND when none. */
int att_checkpoint_get(struct att_dbc *c, int64_t id, struct att_checkpoint *ret);
/* Attach an RFC 3161 token to a stored checkpoint. */
int att_checkpoint_set_timestamp(struct att_dbc *c, int64_t id, const char *token_b64);
void att_checkpoint_release(struct att_checkpoint *cp);
/* Have up to max stored checkpoints without a timestamp (newest first)
 * timestamped by the RFC 3161 TSA at tsa_url (outside any transaction:
 * network calls).  The number stamped, or a negative att_err with err set. */
int att_checkpoint_timestamp_pending(struct att_dbc *c, const char *tsa_url, long timeout, int max, char *err,
				     size_t errlen);

/* The export document (the file `attestation audit verify --checkpoint` reads). */
json_t *att_checkpoint_json(const struct att_checkpoint *cp);

/* What a verified checkpoint attests. */
struct att_checkpoint_claim {
	int64_t entries, head_id;
	char head_hash[65];
	char issued_at[40];
	char signer[160];		/* subject CN of the signing certificate */
};

/* Check an export document: the CMS signature over its payload, the
 * signer's chain to ca_pem (the trust anchor), and the payload's shape.
 * 0 with *ret filled, or a negative att_err with err set. */
int att_checkpoint_verify_doc(const json_t *doc, const char *ca_pem, struct att_checkpoint_claim *ret, char *err,
			      size_t errlen);

/* Parse a (signature-checked) payload; ATT_E_PARSE with err set. */
int att_checkpoint_parse_claim(const char *payload, struct att_checkpoint_claim *cl, char *err, size_t errlen);

/* Compare a chain with a claim: hash_at is the entry_hash of the chain's
 * claim->entries-th entry (NULL when the chain is shorter), n the number
 * of entries in the chain.  true when the chain extends the checkpoint;
 * else err says how it differs (truncated, or rewritten). */
bool att_checkpoint_matches(const struct att_checkpoint_claim *claim, int64_t n, const char *hash_at, char *err,
			    size_t errlen);

#endif
