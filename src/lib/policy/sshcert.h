/* sshcert.h - OpenSSH public keys, certificates (PROTOCOL.certkeys) and
 * detached signatures (PROTOCOL.sshsig), parsed from untrusted bytes
 * and verified with OpenSSL.  Key types: ssh-ed25519,
 * ecdsa-sha2-nistp256/384/521 and ssh-rsa (signatures rsa-sha2-256/512;
 * SHA-1 "ssh-rsa" signatures are refused). */
#ifndef ATT_POLICY_SSHCERT_H
#define ATT_POLICY_SSHCERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct evp_pkey_st EVP_PKEY;

#define ATT_SSH_MAX_PRINCIPALS 64

struct att_ssh_cert {
	EVP_PKEY *key;			/* the certified key */
	char key_type[48];		/* e.g. ssh-ed25519 */
	uint64_t serial;
	uint32_t cert_type;		/* 1 user, 2 host */
	char key_id[256];
	char *principals[ATT_SSH_MAX_PRINCIPALS];
	size_t nprincipals;
	uint64_t valid_after, valid_before;
	bool has_critical_options;
	const uint8_t *ca_key;		/* signature key blob (borrowed from the input) */
	size_t ca_key_len;
};

void att_ssh_cert_release(struct att_ssh_cert *c);

/* A public key blob (the base64 field of an authorized_keys line). */
int att_ssh_pubkey_parse(const uint8_t *blob, size_t len, EVP_PKEY **ret, char type[48]);
/* "<type> <base64> [comment]" into a malloc'd blob. */
int att_ssh_line_blob(const char *line, char type[64], uint8_t **ret, size_t *ret_len);

/* Parse a certificate blob and verify its signature by its own CA key
 * (whether that CA is trusted is the caller's question: compare ca_key). */
int att_ssh_cert_parse(const uint8_t *blob, size_t len, struct att_ssh_cert *ret, char *reason, size_t rlen);

/* Verify an armored SSHSIG ("-----BEGIN SSH SIGNATURE-----") over msg by
 * key, with the given namespace. */
int att_sshsig_verify(const char *armored, EVP_PKEY *key, const char *ns, const uint8_t *msg, size_t mlen,
		      char *reason, size_t rlen);

#endif
