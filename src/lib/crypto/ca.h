/* ca.h - the Enrollment CA: created on first start in
 * ITL_ENROLLMENT_CA_DIR (enrollment-ca.key mode 0600, enrollment-ca.crt),
 * loaded on later starts.  ECDSA P-384 + SHA-384 by default, or
 * RSA-4096 + SHA-256.  Subject C=NL, O=ITL Usions, CN=ITL Machine
 * Enrollment CA; 10 years; CA:true pathlen 0; keyCertSign, cRLSign. */
#ifndef ATT_CRYPTO_CA_H
#define ATT_CRYPTO_CA_H

#include <stdbool.h>
#include <stddef.h>

struct att_ca;

/* Load or create.  *ret_created tells which; serial is hex. */
int att_ca_init(const char *dir, const char *algorithm, struct att_ca **ret, bool *ret_created,
		char *reterr, size_t errlen);
const char *att_ca_serial(const struct att_ca *ca);
const char *att_ca_algorithm(const struct att_ca *ca);
void att_ca_free(struct att_ca *ca);

struct att_ca_leaf {
	char *cert_pem;		/* malloc'd */
	char *key_pem;		/* malloc'd, PKCS#8, unencrypted: wipe after use */
	char serial[80];
	char not_after[32];	/* ISO 8601 UTC */
};

/* A client certificate for a machine: fresh ECDSA P-384 key, subject
 * C=NL, O=ITL Usions, OU=<role>, CN=<machine_id>, valid `days`,
 * CA:false, digitalSignature, clientAuth, SKI/AKI, and SAN URI
 * urn:itl:ek:<ek_fp> when ek_fp is given. */
int att_ca_issue(const struct att_ca *ca, const char *machine_id, const char *role, const char *ek_fp,
		 int days, struct att_ca_leaf *ret);
void att_ca_leaf_release(struct att_ca_leaf *l);
/* The audit-report signing key and certificate (issued by the CA at
 * start-up) and the CA certificate; borrowed pointers. */
typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;
int att_ca_report_signer(const struct att_ca *ca, EVP_PKEY **key, X509 **cert, X509 **ca_cert);
/* The CA's own key and certificate (borrowed): agent identity tokens
 * are signed with it (src/lib/policy/identity.c). */
int att_ca_key(const struct att_ca *ca, EVP_PKEY **key, X509 **cert);
/* The CA certificate, PEM (malloc'd). */
char *att_ca_cert_pem(const struct att_ca *ca);

#endif
