/* vault.h - the attestation secret vault (docs/secrets.md): per-machine
 * secrets that operators and extensions write and only the machine
 * itself reads, after a quote verified against its bound AK, sealed to
 * its TPM like the config.
 *
 *   vault.c   the master key (ITL_SHARED_SECRET_MASTER_KEY or _PASSPHRASE)
 *             and encryption at rest: AES-256-GCM, one random IV per
 *             version, the row's identity (machine, name, version) as AAD
 *   store.c   the rows: put, list, get, delete (metadata only, never a
 *             value) and the delivery to the machine; every write and every
 *             delivery is audited in the same transaction
 *
 * Values are never logged, never returned to operators, and never
 * leave the service except inside the TPM-bound envelope. */
#ifndef ATT_VAULT_VAULT_H
#define ATT_VAULT_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct att_config;
struct att_svc;
struct att_actor;
struct att_quote_evidence;

struct att_vault;

#define ATT_VAULT_NAME_MAX 64
#define ATT_VAULT_DESCRIPTION_MAX 256
/* All of a machine's values together: one delivery stays well under the
 * agent's 8 MiB answer cap (base64 and envelope included). */
#define ATT_VAULT_MACHINE_MAX_BYTES (4 * 1024 * 1024)

/* From ITL_SHARED_SECRET_MASTER_KEY (64 hex digits) or, failing that,
 * ITL_SHARED_SECRET_PASSPHRASE (PBKDF2-HMAC-SHA256).  *ret is NULL when
 * neither is set (the vault answers 503); ATT_E_INVAL naming the
 * variable when the key is malformed. */
int att_vault_open(const struct att_config *cfg, struct att_vault **ret, char *reterr, size_t errlen);
void att_vault_free(struct att_vault *v);
/* First 16 hex digits of SHA-256("itl-vault-key-id" || key): which key
 * sealed a row, without revealing anything about the key. */
const char *att_vault_key_id(const struct att_vault *v);

/* Seal / open one version of a secret (exposed for tests).  iv and ct
 * are base64; ct is ciphertext || tag. */
int att_vault_seal(const struct att_vault *v, const char *machine_id, const char *name, int64_t version,
		   const uint8_t *value, size_t len, char **ret_iv, char **ret_ct);
int att_vault_unseal(const struct att_vault *v, const char *machine_id, const char *name, int64_t version,
		     const char *iv, const char *ct, uint8_t **ret_value, size_t *ret_len);

/* [A-Za-z0-9][A-Za-z0-9._-]{0,63} */
bool att_vault_name_ok(const char *name);

/* A secret as written by an operator or an extension. */
struct att_secret_input {
	const char *name;
	const uint8_t *value;
	size_t len;
	const char *description;	/* optional */
	int64_t ttl_seconds;		/* 0: no expiry */
	const char *reason;		/* optional, audited */
	bool create_only;		/* POST: ATT_E_CONFLICT when the name exists */
};

/* Create or replace (a new version).  *ret: the metadata;
 * *ret_created: a new name.  ATT_E_NOTFOUND (no such machine),
 * ATT_E_CONFLICT (revoked machine, or create_only and the name exists),
 * ATT_E_INVAL (name, size), ATT_E_LIMIT (too many secrets),
 * ATT_E_UNAVAILABLE (no master key). */
int att_vault_put(const struct att_svc *svc, const char *machine_id, const struct att_secret_input *in,
		  const struct att_actor *actor, json_t **ret, bool *ret_created, char *reterr, size_t errlen);
/* {machine_id, total, secrets: [metadata...]}: never values. */
int att_vault_list(const struct att_svc *svc, const char *machine_id, json_t **ret, char *reterr, size_t errlen);
int att_vault_get(const struct att_svc *svc, const char *machine_id, const char *name, json_t **ret,
		  char *reterr, size_t errlen);
int att_vault_delete(const struct att_svc *svc, const char *machine_id, const char *name, const char *reason,
		     const struct att_actor *actor, char *reterr, size_t errlen);

/* The machine reads its secrets.  The caller verified a quote over a
 * fresh nonce against the machine's bound AK (ev).  In one transaction:
 * the machine is attested and ev->ak_name is still its AK, the role's
 * PCR policy passes, every unexpired secret is decrypted into
 *   {"machine_id":..,"secrets":[{"name","version","value_b64","expires_at"}...]}
 * (*ret_plain, NUL-terminated; wipe before free), and the delivery is
 * audited.  ATT_E_CONFLICT (not attested / no AK), ATT_E_FORBIDDEN
 * (PCR policy; audited). */
int att_vault_deliver(const struct att_svc *svc, const char *machine_id, const struct att_quote_evidence *ev,
		      const struct att_actor *actor, char **ret_plain, size_t *ret_len, int *ret_count,
		      char *reterr, size_t errlen);

#endif
