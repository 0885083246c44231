/* ca.h - the Enrollment CA: created on first start in
 * ITL_ENROLLMENT_CA_DIR (enrollment-ca.key mode 0600, enrollment-ca.crt),
 * loaded on later starts.  ECDSA P-384 + SHA-384 by default, or
 * RSA-4096 + SHA-256.  Subject C=NL, O=ITL Usions, CN=ITL Machine
 * Enrollment CA; 10 years; CA:true pathlen 0; keyCertSign, cRLSign. */
#ifndef ATT_CRYPTO_CA_H
#define ATT_CRYPTO_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct att_ca;

/* Load or create.  *ret_created tells which; serial is hex. */
int att_ca_init(const char *dir, const char *algorithm, struct att_ca **ret, bool *ret_created,
		char *reterr, size_t errlen);
/* The same with the CA key in a PKCS#11 token (key->uri "pkcs11:...";
 * NULL or "" uri: the key file in dir).  The certificate stays in dir. */
struct att_ca_key {
	const char *uri;	/* ITL_ENROLLMENT_CA_KEY */
	const char *module;	/* ITL_PKCS11_MODULE */
};
int att_ca_init_key(const char *dir, const char *algorithm, const struct att_ca_key *key, struct att_ca **ret,
		    bool *ret_created, char *reterr, size_t errlen);
/* True when the CA key is in a PKCS#11 token. */
bool att_ca_in_hsm(const struct att_ca *ca);
const char *att_ca_serial(const struct att_ca *ca);
const char *att_ca_algorithm(const struct att_ca *ca);
void att_ca_free(struct att_ca *ca);

/* certificatePolicies OID of a certificate whose key the TPM certified
 * (TPM2_Certify by the machine's bound AK): fixedTPM, fixedParent,
 * sensitiveDataOrigin.  A UUID-based OID (ITU-T X.667, 2.25.<uuid>). */
#define ATT_CA_POLICY_TPM_KEY "2.25.200473119380427306342371569386417166433"
/* Non-critical extension of agent X.509-SVIDs: the attestors' namespaced
 * attributes, a DER UTF8String holding a compact JSON object with sorted
 * keys (docs/attestation-policies.md).  UUID-based OID like the above. */
#define ATT_CA_EXT_AGENT_ATTRIBUTES "2.25.1984162024243569353524101599406443297"

struct att_ca_leaf {
	char *cert_pem;		/* malloc'd */
	char *key_pem;		/* malloc'd, PKCS#8, unencrypted: wipe after use (att_ca_issue only) */
	char serial[80];	/* hex */
	char ca_serial[80];	/* the issuing CA's serial */
	char key_type[24];
	char not_after[32];	/* ISO 8601 UTC */
	int64_t not_after_epoch;
};

/* What goes into a machine's client certificate: subject C=NL,
 * O=ITL Usions, OU=<role>, CN=<machine_id>; CA:false, digitalSignature,
 * clientAuth, SKI/AKI; SAN URIs urn:itl:ek:<ek_fp> and spiffe_id when
 * given; CRL distribution point and OCSP responder when given; the TPM
 * key policy when tpm_resident. */
struct att_ca_profile {
	const char *machine_id, *role, *ek_fp;
	const char *spiffe_id;		/* NULL: none */
	const char *crl_url, *ocsp_url;	/* NULL: none */
	bool tpm_resident;
	int64_t seconds;		/* validity */
	/* X.509-SVID (agents): EKU serverAuth as well as clientAuth, and
	 * the attributes extension when attributes is not NULL */
	bool svid;
	const char *attributes;		/* JSON text */
};

typedef struct evp_pkey_st EVP_PKEY;
/* A certificate for the requester's key (a CSR's). */
int att_ca_issue_key(const struct att_ca *ca, EVP_PKEY *key, const struct att_ca_profile *p,
		     struct att_ca_leaf *ret);
/* Same with a fresh ECDSA P-384 key made here (ret->key_pem). */
int att_ca_issue(const struct att_ca *ca, const struct att_ca_profile *p, struct att_ca_leaf *ret);
void att_ca_leaf_release(struct att_ca_leaf *l);
/* The audit-report signing key and certificate (issued by the CA at
 * start-up) and the CA certificate; borrowed pointers. */
typedef struct x509_st X509;
int att_ca_report_signer(const struct att_ca *ca, EVP_PKEY **key, X509 **cert, X509 **ca_cert);

/* Write key (a PEM private key) or else x to path atomically (a temp file
 * of this process, fsync'd, renamed over path).  ATT_E_IO on failure. */
int att_ca_write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *x);
/* The CA's own key and certificate (borrowed): agent identity tokens
 * are signed with it (src/lib/policy/identity.c). */
int att_ca_key(const struct att_ca *ca, EVP_PKEY **key, X509 **cert);
/* Extended key usage of the certificate that signs air-gap bundles
 * (id-itl-bundle-export, a UUID-based OID, ITU-T X.667) and its issuance
 * (the key is the caller's; see crypto/exporter.h). */
#define ATT_CA_EKU_BUNDLE_EXPORT "2.25.251240790766048780531157725286639233413"
X509 *att_ca_issue_exporter(const struct att_ca *ca, EVP_PKEY *key, long seconds);
/* The CA certificate, PEM (malloc'd). */
char *att_ca_cert_pem(const struct att_ca *ca);
/* The trust bundle: the current CA and every previous generation still
 * kept (PEM, malloc'd). */
char *att_ca_bundle_pem(const struct att_ca *ca);
typedef struct json_t json_t;
/* Serials of the previous generations (JSON array, new reference). */
json_t *att_ca_previous_serials(const struct att_ca *ca);
/* Rotation: keep the current CA of dir in dir/previous/<serial>.{key,crt}
 * and create a new one (algorithm) as the issuing CA.  Certificates of
 * the old CA keep verifying through the bundle; its CRL and OCSP answers
 * are still signed by it.  Running attestd instances pick the new CA up
 * when restarted. */
int att_ca_rotate(const char *dir, const char *algorithm, char ret_old[80], char ret_new[80], char *reterr,
		  size_t errlen);

/* A client certificate presented back to the service: it must chain to
 * the current or a previous CA and be within its validity (403 detail
 * "Enrollment cert rejected: <reason>"; ATT_E_INVAL when unparsable). */
struct att_ca_leaf_info {
	char cn[80], ou[64], ek_fp[100], serial[80];
};
int att_ca_verify_leaf(const struct att_ca *ca, const char *pem, size_t len, struct att_ca_leaf_info *ret,
		       char *reterr, size_t errlen);

/* ---- revocation (carevoke.c) ------------------------------------------ */

/* A revoked certificate: serial in hex, when, RFC 5280 reason name
 * (unspecified, keyCompromise, ..., certificateHold). */
struct att_crl_entry {
	const char *serial;
	int64_t revoked_at;
	const char *reason;
};

/* A DER CRL (v2, crlNumber, AKI, reason codes) signed by the CA
 * generation ca_serial (ATT_E_NOTFOUND if this instance has no such CA).
 * *ret is malloc'd. */
int att_ca_crl_sign(const struct att_ca *ca, const char *ca_serial, int64_t crl_number, int64_t this_update,
		    int64_t next_update, const struct att_crl_entry *e, size_t n, uint8_t **ret, size_t *ret_len);

/* OCSP (RFC 6960): the status of one certificate as the database knows it. */
enum att_ocsp_status { ATT_OCSP_GOOD, ATT_OCSP_REVOKED, ATT_OCSP_UNKNOWN };
struct att_ocsp_answer {
	enum att_ocsp_status status;
	int64_t revoked_at;
	char reason[32];
};
/* Look up (ca_serial, serial hex); 0 or a negative att_err (answered
 * as tryLater). */
typedef int (*att_ocsp_lookup_fn)(void *ud, const char *ca_serial, const char *serial,
				  struct att_ocsp_answer *ret);

/* Answer a DER OCSPRequest: each single request whose issuer is one of
 * this instance's CA generations gets good/revoked/unknown from lookup,
 * signed by that CA with the request's nonce echoed; thisUpdate now,
 * nextUpdate now+validity.  Malformed requests get malformedRequest,
 * foreign issuers unauthorized.  Always yields a DER OCSPResponse
 * (malloc'd) unless out of memory. */
int att_ca_ocsp_respond(const struct att_ca *ca, const uint8_t *req, size_t len, att_ocsp_lookup_fn lookup,
			void *ud, int64_t validity, uint8_t **ret, size_t *ret_len);

#endif
