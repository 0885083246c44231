/* tpmbind.c - binding an attestation key to a machine by credential
 * activation (PCR policies: pcr_policy.c).
 *
 * Activation (ARCHITECTURE.md section 2, reference/tpm.md 2.5):
 *   1. the node sends its AK's TPM2B_PUBLIC; the server checks the
 *      attributes, makes a credential for the AK's Name to the machine's
 *      EK and stores only a hash of the secret (single use, 5 minutes);
 *   2. the node runs TPM2_ActivateCredential, which succeeds only in the
 *      TPM that holds both the EK and an object with that Name, and
 *      returns the secret; on a match the AK is bound for good.
 * A wrong secret consumes the activation (no guessing) and is audited. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "crypto/ek.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"
#include "obs/log.h"
#include "tpm/tpm.h"

#define ERR(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))

static int decode_pub(const char *b64, struct att_tpm_pub *ret, char *reterr, size_t errlen)
{
	uint8_t *raw = NULL;
	size_t n = 0;
	int r;

	if (att_b64_decode(b64, strlen(b64), &raw, &n) < 0)
		return ERR(ATT_E_INTERNAL, "stored TPM public area is not base64");
	r = att_tpm_pub_parse_cached(raw, n, ret, reterr, errlen);
	free(raw);
	return r;
}

int att_machine_ek_pub(const struct att_machine *m, struct att_tpm_pub *ret, char *reterr,
		       size_t errlen)
{
	EVP_PKEY *k;
	int r;

	if (M(m, EK_PUBLIC))
		return decode_pub(M(m, EK_PUBLIC), ret, reterr, errlen);
	if (!M(m, EK_CERT_B64))
		return ERR(ATT_E_CONFLICT, "Machine %s has no EK material yet — it must attest once first",
			   M(m, MACHINE_ID));
	k = att_ek_load_key(M(m, EK_CERT_B64), M(m, EK_SOURCE));
	if (!k)
		return ERR(ATT_E_INTERNAL, "stored EK material cannot be read");
	r = att_tpm_pub_ek_template(k, ret, reterr, errlen);
	EVP_PKEY_free(k);
	return r;
}

int att_machine_ak_pub(const struct att_machine *m, struct att_tpm_pub *ret, char *reterr,
		       size_t errlen)
{
	if (!M(m, AK_PUBLIC))
		return ERR(ATT_E_NOTFOUND, "no AK bound");
	return decode_pub(M(m, AK_PUBLIC), ret, reterr, errlen);
}

void att_ak_challenge_release(struct att_ak_challenge *ch)
{
	free(ch->credential_blob);
	free(ch->id_object);
	free(ch->encrypted_secret);
	memset(ch, 0, sizeof(*ch));
}

static bool can_activate(const char *st)
{
	return strcmp(st, "pending_approval") == 0 || strcmp(st, "registered") == 0 ||
	       strcmp(st, "attested") == 0;
}

/* The machine must exist, carry this EK, be in a state that may bind an AK
 * and not have one yet. */
static int check_machine(const struct att_machine *m, const struct att_ek *ek, char *reterr, size_t errlen)
{
	if (ek && (!M(m, EK_FINGERPRINT) || strcmp(M(m, EK_FINGERPRINT), ek->fp) != 0))
		return ERR(ATT_E_CONFLICT, "ek_cert_pem: this EK does not belong to machine %s", M(m, MACHINE_ID));
	if (!can_activate(M(m, STATUS)))
		return ERR(ATT_E_FORBIDDEN, "Cannot activate AK for machine in status '%s'", M(m, STATUS));
	if (M(m, AK_NAME))
		return ERR(ATT_E_CONFLICT,
			   "An AK is already bound to machine %s (bound %s); AK bindings are permanent — replace the machine record to start over",
			   M(m, MACHINE_ID), M(m, AK_BOUND_AT) ? M(m, AK_BOUND_AT) : "earlier");
	return 0;
}

static void sha256_hex(const uint8_t *p, size_t n, char out[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	SHA256(p, n, md);
	att_hex_encode(md, sizeof(md), out);
}

/* The EK the credential is made for: the TPM2B_PUBLIC the node sent (its
 * key must be the key of the machine's EK certificate), else the machine's
 * (att_machine_ek_pub). */
static int activation_ek_pub(const struct att_machine *m, const uint8_t *ek_public, size_t ek_len,
			     struct att_tpm_pub *ret, char *reterr, size_t errlen)
{
	EVP_PKEY *certkey;
	char why[256];
	int r;

	if (!ek_public) {
		r = att_machine_ek_pub(m, ret, why, sizeof(why));
		return r < 0 ? ERR(r == ATT_E_CONFLICT ? ATT_E_CONFLICT : ATT_E_INVAL, "%s", why) : 0;
	}
	certkey = att_ek_load_key(M(m, EK_CERT_B64), M(m, EK_SOURCE));
	r = att_tpm_pub_parse(ek_public, ek_len, ret, why, sizeof(why));
	if (r == 0)
		r = att_tpm_pub_check_ek(ret, why, sizeof(why));
	if (r == 0 && !att_tpm_pub_same_key(ret, certkey)) {
		snprintf(why, sizeof(why), "its key is not the key of the machine's EK certificate");
		r = ATT_E_INVAL;
	}
	EVP_PKEY_free(certkey);
	return r < 0 ? ERR(ATT_E_INVAL, "ek_public: %s", why) : 0;
}

/* A fresh secret as a credential for the AK's Name to the EK: the
 * challenge the node receives, and the hash of the secret the server
 * keeps (ret_hash). */
static int activation_challenge(const struct att_tpm_pub *ekp, const struct att_tpm_pub *ak,
				struct att_ak_challenge *ret, char ret_hash[65], char *reterr, size_t errlen)
{
	struct att_tpm_credential cred;
	uint8_t secret[32], idraw[16];
	char why[256];
	int r;

	if (att_random(secret, sizeof(secret)) < 0 || att_random(idraw, sizeof(idraw)) < 0) {
		r = ATT_E_CRYPTO;
		goto out;
	}
	r = att_tpm_make_credential(ekp, ak->name, ak->name_len, secret, sizeof(secret), &cred, why, sizeof(why));
	if (r < 0) {
		r = ERR(ATT_E_INVAL, "ek: %s", why);
		goto out;
	}
	att_hex_encode(idraw, sizeof(idraw), ret->activation_id);
	att_hex_encode(ak->name, ak->name_len, ret->ak_name);
	sha256_hex(secret, sizeof(secret), ret_hash);
	ret->credential_blob = att_tpm_credential_blob_b64(&cred);
	ret->id_object = att_b64_encode(cred.id_object, cred.id_object_len);
	ret->encrypted_secret = att_b64_encode(cred.secret, cred.secret_len);
	r = ret->credential_blob && ret->id_object && ret->encrypted_secret ? 0 : ATT_E_NOMEM;
out:
	att_wipe(secret, sizeof(secret));
	return r;
}

/* At most ATT_AK_MAX_LIVE live activations per machine (0, or ATT_E_LIMIT
 * with detail). */
static int activation_slots(struct att_dbc *c, const char *machine_id, int64_t now, char *reterr, size_t errlen)
{
	struct att_stmt *s;
	int64_t live = 0, first_expiry = 0;
	int r = att_dbc_query(c, &s,
			      "SELECT COUNT(*), MIN(expires_at) FROM ak_activations WHERE machine_id = ?"
			      " AND consumed_at IS NULL AND expires_at >= ?",
			      "si", machine_id, now);

	if (r < 0)
		return r;
	if ((r = att_stmt_next(s)) == 1) {
		live = att_stmt_int(s, 0);
		first_expiry = att_stmt_int(s, 1);
	}
	att_stmt_done(s);
	if (r < 0)
		return r;
	if (live >= ATT_AK_MAX_LIVE) {
		att_machine_set_err(reterr, errlen,
				    "%lld activations are outstanding for machine %s — complete one, or retry in %lld s when the oldest expires",
				    (long long)live, machine_id, (long long)(first_expiry - now + 1));
		return ATT_E_LIMIT;
	}
	return 0;
}

/* Store the activation.  A new activation never replaces a live one
 * (which would let anyone holding the public EK certificate cancel the
 * machine's own activation): up to ATT_AK_MAX_LIVE coexist, each
 * completed on its own; expired ones are garbage.  An unauthenticated
 * write: one unit of the source's budget. */
static int activation_store(const struct att_svc *svc, struct att_dbc *c, const char *machine_id,
			    const struct att_ak_challenge *ch, const char *ak_b64, const char *ek_b64,
			    const char *secret_hash, int64_t now, const struct att_actor *actor, char *reterr,
			    size_t errlen)
{
	int r = att_dbc_begin(c);

	if (r == 0)
		r = att_dbc_exec(c,
				 "DELETE FROM ak_activations WHERE activation_id IN (SELECT activation_id FROM ak_activations"
				 " WHERE expires_at < ? LIMIT 1000)",
				 "i", now - ATT_AK_ACTIVATION_TTL);
	if (r >= 0) {
		r = activation_slots(c, machine_id, now, reterr, errlen);
		if (r == 0)
			r = att_unauth_write_take(svc, c, actor, reterr, errlen);
		if (r == ATT_E_LIMIT) {
			att_dbc_rollback(c);
			return r;
		}
	}
	if (r >= 0)
		r = att_dbc_exec(c,
				 "INSERT INTO ak_activations (activation_id, machine_id, ak_public, ak_name, ek_public,"
				 " secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
				 "ssssssii", ch->activation_id, machine_id, ak_b64, ch->ak_name, ek_b64, secret_hash, now,
				 now + ATT_AK_ACTIVATION_TTL);
	if (r >= 0)
		r = att_dbc_commit(c);
	if (r < 0)
		att_dbc_rollback(c);
	return r < 0 ? r : 0;
}

int att_ak_activation_start(const struct att_svc *svc, const char *machine_id, const struct att_ek *ek,
			    const uint8_t *ak_public, size_t ak_len, const uint8_t *ek_public,
			    size_t ek_len, const struct att_actor *actor, struct att_ak_challenge *ret,
			    char *reterr, size_t errlen)
{
	struct att_dbc *c = NULL;
	struct att_machine m = { 0 };
	struct att_tpm_pub ak = { 0 }, ekp = { 0 };
	char hash[65], why[256], *ak_b64 = NULL, *ek_b64 = NULL;
	int64_t now = att_now().sec;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = att_tpm_pub_parse(ak_public, ak_len, &ak, why, sizeof(why));
	if (r < 0)
		return ERR(ATT_E_INVAL, "ak_public: %s", why);
	r = att_tpm_pub_check_ak(&ak, why, sizeof(why));
	if (r < 0) {
		r = ERR(ATT_E_INVAL, "ak_public: %s", why);
		goto out;
	}
	c = att_db_acquire(svc->db);
	if (!c) {
		r = att_machine_db_fail(ATT_E_DB, reterr, errlen);
		goto out;
	}
	r = att_machine_get(c, machine_id, &m);
	if (r == ATT_E_NOTFOUND) {
		r = ERR(ATT_E_NOTFOUND, "Machine not found");
		goto out;
	}
	if (r < 0) {
		r = att_machine_db_fail(r, reterr, errlen);
		goto out;
	}
	r = check_machine(&m, ek, reterr, errlen);
	if (r == 0)
		r = activation_ek_pub(&m, ek_public, ek_len, &ekp, reterr, errlen);
	if (r == 0)
		r = activation_challenge(&ekp, &ak, ret, hash, reterr, errlen);
	if (r < 0)
		goto out;
	ak_b64 = att_b64_encode(ak_public, ak_len);
	ek_b64 = ek_public ? att_b64_encode(ek_public, ek_len) : NULL;
	if (!ak_b64 || (ek_public && !ek_b64)) {
		r = ATT_E_NOMEM;
		goto out;
	}
	att_time_iso_utc((struct att_time){ now + ATT_AK_ACTIVATION_TTL, 0 }, ret->expires_at);
	r = activation_store(svc, c, machine_id, ret, ak_b64, ek_b64, hash, now, actor, reterr, errlen);
	if (r == ATT_E_LIMIT)
		goto out;
	if (r < 0) {
		r = att_machine_db_fail(r, reterr, errlen);
		goto out;
	}
	att_log_info(LOGT, "AK activation started: machine=%s ak_name=%.16s...", machine_id, ret->ak_name);
out:
	if (r < 0)
		att_ak_challenge_release(ret);
	if (c)
		att_db_release(svc->db, c);
	att_machine_release(&m);
	att_tpm_pub_release(&ak);
	att_tpm_pub_release(&ekp);
	free(ak_b64);
	free(ek_b64);
	return r;
}

static char *spki_pem(const char *ak_b64)
{
	struct att_tpm_pub ak;
	char why[128], *pem = NULL;
	BIO *bio;

	if (decode_pub(ak_b64, &ak, why, sizeof(why)) < 0)
		return NULL;
	bio = BIO_new(BIO_s_mem());
	if (bio && PEM_write_bio_PUBKEY(bio, ak.pkey) == 1) {
		char *p;
		long n = BIO_get_mem_data(bio, &p);

		pem = att_strndup(p, (size_t)n);
	}
	BIO_free(bio);
	att_tpm_pub_release(&ak);
	return pem;
}

#define UNKNOWN_ACTIVATION "activation_id: unknown activation — start with POST /api/v1/machines/{id}/ak-activate"

/* An activation being completed, as stored by activation_store. */
struct activation {
	char *ak_public;	/* base64 TPM2B_PUBLIC */
	char *ak_name;		/* hex */
	char *ek_public;	/* base64 TPM2B_PUBLIC; NULL when the node sent none */
	char secret_hash[65];
};

static void activation_release(struct activation *a)
{
	free(a->ak_public);
	free(a->ak_name);
	free(a->ek_public);
}

/* A database failure while completing. */
static int activation_failed(struct att_dbc *c, const char *machine_id, int r, char *reterr, size_t errlen)
{
	att_log_error(LOGT, "AK activation of machine %s failed: %s (%s)", machine_id, att_strerror(r),
		      att_dbc_errmsg(c));
	return att_machine_db_fail(r, reterr, errlen);
}

/* Read the activation and consume it: one attempt per activation. */
static int activation_consume(struct att_dbc *c, const char *activation_id, const char *machine_id,
			      struct activation *ret, char *reterr, size_t errlen)
{
	struct att_stmt *s;
	int64_t expires = 0, now = att_now().sec;
	bool consumed = false, found = false;
	int r;

	r = att_dbc_query(c, &s,
			  "SELECT ak_public, ak_name, ek_public, secret_hash, expires_at, consumed_at FROM ak_activations"
			  " WHERE activation_id = ? AND machine_id = ?",
			  "ss", activation_id, machine_id);
	if (r < 0)
		return activation_failed(c, machine_id, r, reterr, errlen);
	if ((r = att_stmt_next(s)) == 1) {
		found = true;
		ret->ak_public = att_strdup(att_stmt_text(s, 0));
		ret->ak_name = att_strdup(att_stmt_text(s, 1));
		ret->ek_public = att_stmt_text(s, 2) ? att_strdup(att_stmt_text(s, 2)) : NULL;
		snprintf(ret->secret_hash, sizeof(ret->secret_hash), "%s", att_stmt_text(s, 3));
		expires = att_stmt_int(s, 4);
		consumed = !att_stmt_is_null(s, 5);
	}
	att_stmt_done(s);
	if (r < 0)
		return activation_failed(c, machine_id, r, reterr, errlen);
	if (!found)
		return ERR(ATT_E_INVAL, UNKNOWN_ACTIVATION);
	if (!ret->ak_public || !ret->ak_name)
		return activation_failed(c, machine_id, ATT_E_NOMEM, reterr, errlen);
	if (consumed)
		return ERR(ATT_E_CONFLICT, "Activation already used — start a new activation");
	if (expires < now)
		return ERR(ATT_E_GONE, "Activation has expired — start a new activation");
	r = att_dbc_exec(c, "UPDATE ak_activations SET consumed_at = ? WHERE activation_id = ? AND consumed_at IS NULL",
			 "is", now, activation_id);
	if (r < 0)
		return activation_failed(c, machine_id, r, reterr, errlen);
	if (r != 1)
		return ERR(ATT_E_CONFLICT, "Activation already used — start a new activation");
	return 0;
}

/* The machine, still in a state to bind an AK and without one. */
static int activation_machine(struct att_dbc *c, const char *machine_id, struct att_machine *ret,
			      char *reterr, size_t errlen)
{
	int r = att_machine_get(c, machine_id, ret);

	if (r == ATT_E_NOTFOUND)
		return ERR(ATT_E_NOTFOUND, "Machine not found");
	if (r < 0)
		return activation_failed(c, machine_id, r, reterr, errlen);
	return check_machine(ret, NULL, reterr, errlen);
}

/* A wrong secret: the consumption and the audit entry are kept, so there
 * is one guess per activation. */
static int activation_refuse(struct att_dbc *c, const char *machine_id, const struct att_machine *m,
			     const struct att_actor *actor, char *reterr, size_t errlen)
{
	int r = att_audit_append(c, actor->name, "ak_activation_failed", machine_id, M(m, STATUS), M(m, STATUS),
				 "credential activation secret did not match; AK not bound", actor->source_ip);

	if (r == 0)
		r = att_dbc_commit(c);
	if (r < 0)
		return activation_failed(c, machine_id, r, reterr, errlen);
	att_log_warning(LOGT, "AK activation failed for machine %s: wrong secret", machine_id);
	return ERR(ATT_E_INVAL, "secret: does not match — the AK and the EK are not in the same TPM (activation consumed)");
}

/* The right secret: bind the AK to the machine for good, audit, re-read m,
 * commit. */
static int activation_bind(struct att_dbc *c, const char *machine_id, const struct activation *act,
			   struct att_machine *m, const struct att_actor *actor, char *reterr, size_t errlen)
{
	char ts[32], detail[256], *pem = spki_pem(act->ak_public);
	int r;

	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c,
			 "UPDATE machines SET ak_public = ?, ak_name = ?, ak_pub = ?, ak_bound_at = ?,"
			 " ek_public = COALESCE(?, ek_public), updated_at = ? WHERE machine_id = ? AND ak_name IS NULL",
			 "sssssss", act->ak_public, act->ak_name, pem, ts, act->ek_public, ts, machine_id);
	free(pem);
	if (r < 0)
		return activation_failed(c, machine_id, r, reterr, errlen);
	if (r != 1)
		return ERR(ATT_E_CONFLICT, "An AK was bound to machine %s concurrently", machine_id);
	snprintf(detail, sizeof(detail), "AK %.24s... bound by credential activation", act->ak_name);
	r = att_audit_append(c, actor->name, "ak_bound", machine_id, M(m, STATUS), M(m, STATUS), detail,
			     actor->source_ip);
	if (r == 0) {
		att_machine_release(m);
		r = att_machine_get(c, machine_id, m);
	}
	if (r == 0)
		r = att_dbc_commit(c);
	return r < 0 ? activation_failed(c, machine_id, r, reterr, errlen) : 0;
}

int att_ak_activation_complete(const struct att_svc *svc, const char *machine_id,
			       const char *activation_id, const uint8_t *secret, size_t len,
			       const struct att_actor *actor, struct att_machine *ret, char *reterr,
			       size_t errlen)
{
	struct activation act = { 0 };
	struct att_machine m = { 0 };
	struct att_dbc *c;
	char got[65];
	int r;

	if (strlen(activation_id) != 32 || !att_is_hex(activation_id, 32))
		return ERR(ATT_E_INVAL, UNKNOWN_ACTIVATION);
	c = att_db_acquire(svc->db);
	if (!c)
		return att_machine_db_fail(ATT_E_DB, reterr, errlen);
	r = att_dbc_begin(c);
	if (r < 0)
		r = activation_failed(c, machine_id, r, reterr, errlen);
	if (r == 0)
		r = activation_consume(c, activation_id, machine_id, &act, reterr, errlen);
	if (r == 0)
		r = activation_machine(c, machine_id, &m, reterr, errlen);
	if (r == 0) {
		sha256_hex(secret, len, got);
		if (!att_ct_equal(got, 64, act.secret_hash, strlen(act.secret_hash)))
			r = activation_refuse(c, machine_id, &m, actor, reterr, errlen);
		else
			r = activation_bind(c, machine_id, &act, &m, actor, reterr, errlen);
	}
	if (r < 0)
		att_dbc_rollback(c);	/* a no-op after a refusal that committed */
	att_db_release(svc->db, c);
	if (r == 0) {
		att_log_info(LOGT, "AK bound to machine %s: ak_name=%.16s...", machine_id, act.ak_name);
		*ret = m;
		memset(&m, 0, sizeof(m));
	}
	att_machine_release(&m);
	activation_release(&act);
	return r;
}
