/* machine.h - machine records and their lifecycle.
 *
 * States (ARCHITECTURE.md section 4):
 *   pending_approval --approve--> registered --attest--> attested
 *   registered|attested --lock--> locked --unlock--> (state it was locked from)
 *   any but revoked --revoke--> revoked
 * Every transition is one write transaction that re-reads the row,
 * checks the state, updates it, appends the audit entry and writes the
 * outbox event.  Invalid transitions return ATT_E_CONFLICT with a
 * detail naming the current state.
 *
 * Functions return 0 or a negative att_err and, on error, a
 * client-facing detail in reterr (the HTTP layer maps the code). */
#ifndef ATT_MACHINE_MACHINE_H
#define ATT_MACHINE_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct att_config;
struct att_db;
struct att_dbc;
struct att_ek;

struct att_ek_trust;

struct att_oidc;
struct att_ca;
struct att_vault;
struct att_auto_rules;

struct att_svc {
	const struct att_config *cfg;
	struct att_db *db;
	const struct att_ek_trust *ek_trust;	/* TPM manufacturer roots */
	struct att_oidc *oidc;			/* NULL: OIDC off */
	const struct att_ca *ca;		/* enrollment CA */
	uint8_t nonce_key[32];			/* challenge HMAC key (service_keys, nonce.c) */
	const struct att_vault *vault;		/* secret vault; NULL: no master key */
	const struct att_auto_rules *auto_rules;	/* auto-approval rules; NULL: none */
};

/* Text columns of a machine row, in SELECT order. */
enum att_mcol {
	MC_MACHINE_ID,
	MC_EK_FINGERPRINT,
	MC_EK_FINGERPRINT_LEGACY,
	MC_EK_FINGERPRINT_AGENT,
	MC_EK_SOURCE,
	MC_EK_CERT_B64,
	MC_EK_KEY_TYPE,
	MC_EK_ISSUER,
	MC_HW_UUID,
	MC_HW_MAC,
	MC_HW_SERIAL,
	MC_HW_PRODUCT,
	MC_ROLE,
	MC_STATUS,
	MC_LOCKED_FROM,
	MC_CLUSTER_ID,
	MC_HOSTNAME,
	MC_ASSIGNED_IP,
	MC_REGISTERED_AT,
	MC_APPROVED_AT,
	MC_ATTESTED_AT,
	MC_LOCKED_AT,
	MC_REVOKED_AT,
	MC_CONFIG_DELIVERED_AT,
	MC_AK_PUB,
	MC_UPDATED_AT,
	MC_EK_VERIFIED,		/* "1", "0" or NULL (not checked) */
	MC_EK_CHAIN_ERROR,
	MC_EK_MANUFACTURER,
	MC_EK_MODEL,
	MC_AK_PUBLIC,		/* base64 TPM2B_PUBLIC of the bound AK */
	MC_AK_NAME,		/* hex Name of the bound AK */
	MC_AK_BOUND_AT,
	MC_EK_PUBLIC,		/* base64 TPM2B_PUBLIC of the EK, when the node sent it */
	MC_TPM_RESET_COUNT,
	MC_TPM_RESTART_COUNT,
	MC_LAST_QUOTE_AT,
	_MC_MAX,
};

/* The machine columns in enum order, after "id, wipe_pending". */
#define ATT_MACHINE_COLS                                                                        \
	"id, wipe_pending, machine_id, ek_fingerprint, ek_fingerprint_legacy, ek_fingerprint_agent," \
	" ek_source, ek_cert_b64, ek_key_type, ek_issuer, hw_uuid, hw_mac, hw_serial, hw_product,"  \
	" role, status, locked_from, cluster_id, hostname, assigned_ip, registered_at, approved_at," \
	" attested_at, locked_at, revoked_at, config_delivered_at, ak_pub, updated_at,"            \
	" ek_verified, ek_chain_error, ek_manufacturer, ek_model, ak_public, ak_name, ak_bound_at,"  \
	" ek_public, tpm_reset_count, tpm_restart_count, last_quote_at"

struct att_machine {
	int64_t id;
	bool wipe_pending;
	char *col[_MC_MAX];
};

#define M(m, c) ((m)->col[MC_##c])

void att_machine_release(struct att_machine *m);

/* Who did it: an operator identity or "machine" for node requests. */
struct att_actor {
	const char *name;	/* audit operator_cn */
	bool authenticated;	/* operator credential or registration token */
	const char *source_ip;
	const char *key;	/* who, for dual-control votes: "oidc:<iss>#<sub>" for OIDC
				 * identities (usernames change, subjects do not); NULL: name */
};

/* Hardware identity and request data from register/self-register/attest. */
struct att_node_claims {
	const char *ek_b64;
	const char *ek_source;
	const char *hw_uuid, *hw_mac, *hw_serial, *hw_product;
	const char *desired_role;
	const char *cluster_id;
	const char *ek_chain_pem;	/* optional intermediates (PEM) */
	const uint8_t *ek_chain_der;	/* optional: the TPM's NV chain range, concatenated DER */
	size_t ek_chain_der_len;
	/* set when the request carried a quote that verified against the
	 * machine's bound AK (attest only) */
	const struct att_quote_evidence *quote;
};

struct att_quote_evidence {
	const char *ak_name;		/* hex Name of the AK that signed */
	uint32_t reset_count;
	uint32_t restart_count;
	const struct att_tpm_pcrs *pcrs;	/* the quoted (verified) PCR values */
};

int att_machine_get(struct att_dbc *c, const char *machine_id, struct att_machine *ret);
int att_machine_find_by_ek(struct att_dbc *c, const struct att_ek *ek, struct att_machine *ret);

/* MachineDetail JSON (reference field set plus extras). */
json_t *att_machine_detail(const struct att_machine *m);

/* Result of register/self-register/attest. */
struct att_node_result {
	struct att_machine m;
	bool created;
	const char *status;	/* response status (may differ: already_attested) */
	const char *action;	/* attest only */
	const char *message;
	char token[64];		/* fresh config token, "" if none */
};
void att_node_result_release(struct att_node_result *r);

int att_machine_register(const struct att_svc *svc, const struct att_ek *ek,
			 const struct att_node_claims *cl, const struct att_actor *actor,
			 bool self_register, struct att_node_result *ret, char *reterr, size_t errlen);
int att_machine_attest(const struct att_svc *svc, const struct att_ek *ek,
		       const struct att_node_claims *cl, const struct att_actor *actor,
		       struct att_node_result *ret, char *reterr, size_t errlen);

struct att_approval {
	const char *role;
	const char *hostname;
	const char *assigned_ip;	/* normalized CIDR */
	const char *reason;
};

/* Dual control: when the role is in ITL_DUAL_CONTROL_ROLES, an approval
 * is a vote.  Votes are stored in the database; a vote that does not yet
 * complete the quorum of distinct operators sets ret_vote->pending and
 * changes nothing else; the completing vote performs the approval.  A
 * second vote by the same operator, or a vote whose role, hostname or
 * address differs from the pending votes, is ATT_E_CONFLICT. */
struct att_vote_status {
	bool pending;
	int received;
	int required;
	char expires_at[32];	/* earliest expiry of the pending votes */
};

int att_machine_approve(const struct att_svc *svc, const char *machine_id,
			const struct att_approval *a, const struct att_actor *actor,
			struct att_machine *ret, struct att_vote_status *ret_vote, char *reterr,
			size_t errlen);
/* The votes of one machine, newest first (JSON array). */
int att_machine_votes(const struct att_svc *svc, const char *machine_id, json_t **ret,
		      char *reterr, size_t errlen);
int att_machine_lock(const struct att_svc *svc, const char *machine_id, const char *reason,
		     const struct att_actor *actor, struct att_machine *ret, char *reterr,
		     size_t errlen);
int att_machine_unlock(const struct att_svc *svc, const char *machine_id, const char *reason,
		       const struct att_actor *actor, struct att_machine *ret, char *reterr,
		       size_t errlen);
int att_machine_revoke(const struct att_svc *svc, const char *machine_id, bool wipe,
		       const char *reason, const struct att_actor *actor, struct att_machine *ret,
		       char *reterr, size_t errlen);

struct att_receipt {
	const char *ek_fingerprint;
	const char *ek_b64;		/* optional */
	const char *ek_source;
	const char *machine_id;		/* optional */
	const char *role;
	const char *hw_uuid, *hw_mac, *hw_serial, *hw_product;
	const char *cluster_id;
	const char *install_mode, *installed_at;
	/* a signed air-gap bundle (docs/airgap.md): also the approved
	 * hostname and address; audited as airgap_import with this detail */
	const char *hostname, *assigned_ip;
	const char *airgap_detail;
};
/* GET /machines/{id}/offline-bundle: config and a new config token; with
 * the key (include_key=true, or for a signed air-gap archive) also a
 * fresh enrollment cert + key, embedded in the config as machine.files;
 * audited (offline_bundle, or airgap_export for the archive, which also
 * gets "machine": the record an importing instance recreates). */
enum att_bundle_kind { ATT_BUNDLE_NO_KEY, ATT_BUNDLE_WITH_KEY, ATT_BUNDLE_ARCHIVE };
int att_machine_offline_bundle(const struct att_svc *svc, const char *machine_id, enum att_bundle_kind kind,
			       const struct att_actor *actor, json_t **ret, char *reterr, size_t errlen);
int att_machine_import(const struct att_svc *svc, const struct att_receipt *rc,
		       const struct att_actor *actor, struct att_machine *ret, char *reterr,
		       size_t errlen);

/* Config token lookup + fetch bookkeeping.  On success *ret holds the
 * machine and *ret_refetch says whether the token had been used. */
int att_config_token_lookup(const struct att_svc *svc, const char *token, struct att_machine *ret,
			    char *reterr, size_t errlen);
int att_config_token_record_fetch(const struct att_svc *svc, const char *token,
				  const struct att_machine *m, const struct att_actor *actor,
				  bool *ret_refetch, char *reterr, size_t errlen);

/* ---- database errors and write transactions (registry.c); also used by
 * the other modules that write on behalf of a request (policy/) -------- */

/* A database error as the client sees it: ATT_E_NOMEM stays, anything
 * else becomes ATT_E_DB "Database unavailable — try again". */
int att_machine_db_fail(int r, char *reterr, size_t errlen);
/* A write transaction on a pooled connection: 0 and *ret_c, or the
 * database failure as the client sees it. */
int att_machine_tx_begin(const struct att_svc *svc, struct att_dbc **ret_c, char *reterr, size_t errlen);
/* Commit when r is 0, else roll back; release the connection.  Returns r
 * (whose detail the caller has set), or a failed commit as the client
 * sees it. */
int att_machine_tx_end(const struct att_svc *svc, struct att_dbc *c, int r, char *reterr, size_t errlen);

/* Challenges: stateless (HMAC under svc->nonce_key), single use recorded
 * in the database when consumed (nonce.c). */
int att_nonce_issue(const struct att_svc *svc, char ret_id[65], char ret_nonce_b64[48],
		    int64_t *ret_expires, char *reterr, size_t errlen);
int att_nonce_consume(const struct att_svc *svc, const char *nonce_id, const struct att_actor *actor,
		      uint8_t ret_nonce[32], char *reterr, size_t errlen);
/* Check a challenge id against key at time now: 0 with its expiry and
 * nonce, ATT_E_INVAL (not one of ours, any other spelling), ATT_E_GONE
 * (expired).  Pure: parses untrusted bytes (tests/fuzz/fuzz-challenge.c). */
int att_challenge_open(const uint8_t key[32], const char *nonce_id, int64_t now, int64_t *ret_expires,
		       uint8_t ret_nonce[32]);
/* The service key `name` (32 bytes), created by the first replica. */
int att_service_key_load(struct att_db *db, const char *name, uint8_t ret_key[32]);

/* ---- TPM proof of possession (tpmbind.c) ------------------------------- */

struct att_tpm_pub;
struct att_tpm_pcrs;

#define ATT_AK_ACTIVATION_TTL 300
#define ATT_AK_MAX_LIVE 8	/* live activations per machine (tpmbind.c) */

/* The EK of a machine as a TPM public area: the TPM2B_PUBLIC the node
 * sent at activation, else the TCG default template for the key in its
 * EK certificate. */
int att_machine_ek_pub(const struct att_machine *m, struct att_tpm_pub *ret, char *reterr,
		       size_t errlen);
/* The bound AK (ATT_E_NOTFOUND when none). */
int att_machine_ak_pub(const struct att_machine *m, struct att_tpm_pub *ret, char *reterr,
		       size_t errlen);

/* Step 1 of AK binding: check the AK public area, make a credential for
 * its Name to the machine's EK, remember a hash of the secret. */
struct att_ak_challenge {
	char activation_id[33];
	char ak_name[2 * (2 + 64) + 1];
	char *credential_blob;	/* base64, tpm2-tools blob format */
	char *id_object;	/* base64 TPM2B_ID_OBJECT */
	char *encrypted_secret;	/* base64 TPM2B_ENCRYPTED_SECRET */
	char expires_at[40];
};
void att_ak_challenge_release(struct att_ak_challenge *ch);
int att_ak_activation_start(const struct att_svc *svc, const char *machine_id, const struct att_ek *ek,
			    const uint8_t *ak_public, size_t ak_len, const uint8_t *ek_public,
			    size_t ek_len, const struct att_actor *actor, struct att_ak_challenge *ret,
			    char *reterr, size_t errlen);
/* Step 2: the secret recovered by TPM2_ActivateCredential.  One attempt
 * per activation; on success the AK is bound to the machine for good. */
int att_ak_activation_complete(const struct att_svc *svc, const char *machine_id,
			       const char *activation_id, const uint8_t *secret, size_t len,
			       const struct att_actor *actor, struct att_machine *ret, char *reterr,
			       size_t errlen);

/* PCR policies per role: {"sha256:7": ["<hex>", ...], ...}. */
int att_pcr_policy_get(const struct att_svc *svc, const char *role, json_t **ret, char *reterr,
		       size_t errlen);
int att_pcr_policy_list(const struct att_svc *svc, json_t **ret, char *reterr, size_t errlen);
int att_pcr_policy_put(const struct att_svc *svc, const char *role, const json_t *pcrs,
		       const char *reason, const struct att_actor *actor, json_t **ret, char *reterr,
		       size_t errlen);
int att_pcr_policy_delete(const struct att_svc *svc, const char *role, const char *reason,
			  const struct att_actor *actor, char *reterr, size_t errlen);
/* ATT_E_INVAL naming every failing PCR when quoted values miss the policy. */
int att_pcr_policy_check(const json_t *pcrs, const char *role, const struct att_tpm_pcrs *quoted,
			 char *reterr, size_t errlen);

/* ---- machine certificates (certs.c, certrev.c; docs/certificates.md) ---- */

struct att_ca_leaf;
struct att_ocsp_answer;
typedef struct evp_pkey_st EVP_PKEY;

/* A CSR enrollment whose quote the caller verified with the AK named
 * ak_name (which must still be the machine's bound AK). */
struct att_cert_enroll {
	EVP_PKEY *key;		/* the CSR's (checked) public key; NULL: the CA makes a P-384 key */
	bool tpm_resident;	/* TPM2_Certify verified for that key */
	const char *kind;	/* csr, tpm, request-cert */
	const char *ak_name;	/* hex */
};

/* attested only (locked/revoked/rejected: ATT_E_FORBIDDEN, others
 * ATT_E_CONFLICT); issues, records, audits (cert_issued), queues
 * node.cert_issued and logs "Enrollment cert issued: ...". */
int att_machine_enroll(const struct att_svc *svc, const char *machine_id, const struct att_cert_enroll *e,
		       const struct att_actor *actor, struct att_ca_leaf *ret, struct att_machine *ret_m,
		       char *reterr, size_t errlen);
/* In an open transaction: issue for key (NULL: a fresh P-384 key made
 * by the CA) with kind csr|tpm|bundle|request-cert, record it, queue
 * node.cert_issued. */
int att_cert_issue_for(const struct att_svc *svc, struct att_dbc *c, const struct att_machine *m,
		       EVP_PKEY *key, const char *kind, const struct att_actor *actor, struct att_ca_leaf *ret);
void att_cert_log_issued(const struct att_ca_leaf *l, const char *machine_id, const char *role, int64_t seconds);
/* RFC 5280 reason names (unspecified, keyCompromise, ...). */
bool att_cert_reason_valid(const char *reason);
/* In an open transaction: revoke every valid or held certificate of m
 * (node.cert_revoked each); put valid ones on hold / release the hold. */
int att_cert_revoke_machine(struct att_dbc *c, const struct att_machine *m, const char *reason, const char *detail);
int att_cert_release_hold(struct att_dbc *c, const struct att_machine *m);
int att_cert_list(const struct att_svc *svc, const char *machine_id, json_t **ret, char *reterr, size_t errlen);
/* The certificates of an agent session (X.509-SVIDs, policy.h). */
int att_cert_list_agent(const struct att_svc *svc, const char *session_id, json_t **ret, char *reterr,
			size_t errlen);
int att_cert_get(const struct att_svc *svc, const char *serial, json_t **ret, char *reterr, size_t errlen);
/* The machine of a certificate; "" for an agent's (policy.h). */
int att_cert_owner(const struct att_svc *svc, const char *serial, char ret_machine_id[80], char *reterr,
		   size_t errlen);
/* Revoke one certificate of machine_id (ATT_E_NOTFOUND if it is not
 * that machine's); *ret is the updated record. */
int att_cert_revoke(const struct att_svc *svc, const char *machine_id, const char *serial, const char *reason,
		    const char *detail, const struct att_actor *actor, json_t **ret, char *reterr, size_t errlen);
/* The current DER CRL of CA generation ca_serial (NULL: the current CA). */
int att_cert_crl(const struct att_svc *svc, const char *ca_serial, uint8_t **ret, size_t *ret_len, char *reterr,
		 size_t errlen);
/* Offline self-enrollment with a certificate whose chain, signature and
 * record the caller checked: registered|attested -> attested with a new
 * config token (locked/revoked/rejected or another EK: ATT_E_FORBIDDEN). */
int att_machine_cert_attest(const struct att_svc *svc, const char *machine_id, const char *ek_fp, const char *serial,
			    const struct att_actor *actor, struct att_machine *ret, char token[64], char *reterr,
			    size_t errlen);
/* att_ocsp_lookup_fn with ud = the svc. */
int att_cert_ocsp_lookup(void *ud, const char *ca_serial, const char *serial, struct att_ocsp_answer *ret);

/* Input validation shared by the HTTP layer and import. */
bool att_valid_fingerprint(const char *fp);
bool att_valid_hostname(const char *h);
/* IPv4/IPv6 address with optional /prefix; writes CIDR form (64 bytes). */
bool att_normalize_cidr(const char *in, char out[64]);
bool att_valid_cluster_id(const char *s);
bool att_valid_status(const char *s);
/* Lowercase, '-' -> ':'; "unknown" stays.  false if not a MAC. */
bool att_normalize_mac(const char *in, char out[32]);

#endif
