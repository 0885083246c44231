/* checkpoint.c - signed audit checkpoints: issue, store, export, verify
 * (see checkpoint.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "audit/tsa.h"
#include "base/err.h"
#include "base/util.h"
#include "db/db.h"

#define CP_COLS "id, entries, head_id, head_hash, issued_at, issuer, payload, signature, timestamp_token"

void att_checkpoint_release(struct att_checkpoint *cp)
{
	free(cp->issuer);
	free(cp->payload);
	free(cp->signature);
	free(cp->timestamp_token);
	memset(cp, 0, sizeof(*cp));
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Detached CMS over the payload bytes, DER, base64 (caller frees). */
static char *sign_payload(const struct att_checkpoint_signer *sg, const char *payload)
{
	BIO *data = BIO_new_mem_buf(payload, (int)strlen(payload));
	STACK_OF(X509) *chain = sk_X509_new_null();
	CMS_ContentInfo *cms = NULL;
	unsigned char *der = NULL;
	char *b64 = NULL;
	int derlen;

	if (!data || !chain || (sg->ca && !sk_X509_push(chain, sg->ca)))
		goto out;
	cms = CMS_sign(sg->cert, sg->key, chain, data, CMS_DETACHED | CMS_BINARY | CMS_NOSMIMECAP);
	if (cms && (derlen = i2d_CMS_ContentInfo(cms, &der)) > 0)
		b64 = att_b64_encode(der, (size_t)derlen);
out:
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	sk_X509_free(chain);	/* the certificates are borrowed */
	BIO_free(data);
	return b64;
}

/* The head as one statement, so count and hash come from one snapshot. */
static int read_head(struct att_dbc *c, struct att_checkpoint *cp)
{
	struct att_stmt *s;
	int r = att_dbc_query(c, &s,
			      "SELECT a.id, a.entry_hash, (SELECT COUNT(*) FROM audit_log b WHERE b.id <= a.id)"
			      " FROM audit_log a ORDER BY a.id DESC LIMIT 1",
			      "");

	if (r < 0)
		return r;
	memcpy(cp->head_hash, ATT_AUDIT_GENESIS, 65);
	r = att_stmt_next(s);
	if (r == 1) {
		const char *h = att_stmt_text(s, 1);

		cp->head_id = att_stmt_int(s, 0);
		cp->entries = att_stmt_int(s, 2);
		if (!h || strlen(h) != 64)
			r = ATT_E_DB;
		else
			memcpy(cp->head_hash, h, 65);
	}
	att_stmt_done(s);
	return r < 0 ? r : 0;
}

/* The newest stored checkpoint against the current head: *ret_same when
 * it names this head already; ATT_E_CONFLICT (err says why) when the log
 * no longer extends it — cut back or rewritten — which is never signed. */
static int check_previous(struct att_dbc *c, const struct att_checkpoint *cp, bool *ret_same, char *err,
			  size_t errlen)
{
	struct att_checkpoint_claim prev = { 0 };
	struct att_stmt *s;
	char hash_at[65] = "";
	bool have = false;
	int r = att_dbc_query(c, &s,
			      "SELECT entries, head_hash, issued_at FROM audit_checkpoints ORDER BY id DESC LIMIT 1", "");

	*ret_same = false;
	if (r < 0)
		return r;
	if ((r = att_stmt_next(s)) == 1 && att_stmt_text(s, 1) && strlen(att_stmt_text(s, 1)) == 64) {
		have = true;
		prev.entries = att_stmt_int(s, 0);
		memcpy(prev.head_hash, att_stmt_text(s, 1), 65);
		snprintf(prev.issued_at, sizeof(prev.issued_at), "%s", att_stmt_text(s, 2) ? att_stmt_text(s, 2) : "?");
	}
	att_stmt_done(s);
	if (r < 0 || !have)
		return r < 0 ? r : 0;
	if (prev.entries == cp->entries && strcmp(prev.head_hash, cp->head_hash) == 0) {
		*ret_same = true;
		return 0;
	}
	if (prev.entries > 0 && prev.entries <= cp->entries) {
		r = att_dbc_query(c, &s, "SELECT entry_hash FROM audit_log ORDER BY id LIMIT 1 OFFSET ?", "i",
				  prev.entries - 1);
		if (r < 0)
			return r;
		if ((r = att_stmt_next(s)) == 1 && att_stmt_text(s, 0))
			snprintf(hash_at, sizeof(hash_at), "%s", att_stmt_text(s, 0));
		att_stmt_done(s);
		if (r < 0)
			return r;
	}
	return att_checkpoint_matches(&prev, cp->entries, hash_at[0] ? hash_at : NULL, err, errlen) ? 0
												   : ATT_E_CONFLICT;
}

static int build_and_store(struct att_dbc *c, const struct att_checkpoint_signer *sg, struct att_checkpoint *cp)
{
	json_t *p = json_pack("{s:I,s:s,s:I,s:s,s:s,s:s,s:s,s:i}", "entries", (json_int_t)cp->entries, "head_hash",
			      cp->head_hash, "head_id", (json_int_t)cp->head_id, "issued_at", cp->issued_at, "issuer",
			      cp->issuer, "log", sg->log ? sg->log : "", "type", ATT_CHECKPOINT_TYPE, "version", 1);
	int64_t id = 0;
	int r;

	if (!p)
		return ATT_E_NOMEM;
	cp->payload = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(p);
	if (!cp->payload)
		return ATT_E_NOMEM;
	cp->signature = sign_payload(sg, cp->payload);
	if (!cp->signature)
		return ATT_E_CRYPTO;
	r = att_dbc_exec(c,
			 "INSERT INTO audit_checkpoints (issued_at, entries, head_id, head_hash, issuer, payload, signature)"
			 " VALUES (?, ?, ?, ?, ?, ?, ?)",
			 "siissss", cp->issued_at, cp->entries, cp->head_id, cp->head_hash, cp->issuer, cp->payload,
			 cp->signature);
	if (r < 0)
		return r;
	r = att_dbc_query_int(c, "SELECT MAX(id) FROM audit_checkpoints", &id);
	cp->id = id;
	return r < 0 ? r : 0;
}

int att_checkpoint_issue(struct att_dbc *c, const struct att_checkpoint_signer *sg, const char *issuer,
			 bool only_if_changed, struct att_checkpoint *ret, bool *ret_issued, char *err, size_t errlen)
{
	struct att_checkpoint cp = { 0 };
	bool same = false;
	int r;

	*ret_issued = false;
	err[0] = 0;
	if (!sg || !sg->key || !sg->cert)
		return ATT_E_UNAVAILABLE;
	r = att_dbc_begin(c);
	if (r < 0)
		return r;
	r = read_head(c, &cp);
	if (r == 0)
		r = check_previous(c, &cp, &same, err, errlen);
	if (r == 0 && same && only_if_changed) {
		att_dbc_rollback(c);
		att_checkpoint_release(&cp);
		return 0;
	}
	att_time_iso(att_now(), cp.issued_at);
	cp.issuer = strdup(issuer ? issuer : "attestd");
	r = r < 0 ? r : cp.issuer ? build_and_store(c, sg, &cp) : ATT_E_NOMEM;
	if (r == 0)
		r = att_dbc_commit(c);
	else
		att_dbc_rollback(c);
	if (r < 0) {
		att_checkpoint_release(&cp);
		return r;
	}
	*ret_issued = true;
	if (ret)
		*ret = cp;
	else
		att_checkpoint_release(&cp);
	return 0;
}

int att_checkpoint_get(struct att_dbc *c, int64_t id, struct att_checkpoint *ret)
{
	struct att_stmt *s;
	struct att_checkpoint cp = { 0 };
	int r = id > 0 ? att_dbc_query(c, &s, "SELECT " CP_COLS " FROM audit_checkpoints WHERE id = ?", "i", id)
		       : att_dbc_query(c, &s, "SELECT " CP_COLS " FROM audit_checkpoints ORDER BY id DESC LIMIT 1", "");

	if (r < 0)
		return r;
	r = att_stmt_next(s);
	if (r == 1) {
		cp.id = att_stmt_int(s, 0);
		cp.entries = att_stmt_int(s, 1);
		cp.head_id = att_stmt_int(s, 2);
		snprintf(cp.head_hash, sizeof(cp.head_hash), "%s", att_stmt_text(s, 3) ? att_stmt_text(s, 3) : "");
		snprintf(cp.issued_at, sizeof(cp.issued_at), "%s", att_stmt_text(s, 4) ? att_stmt_text(s, 4) : "");
		cp.issuer = dup_or_null(att_stmt_text(s, 5));
		cp.payload = dup_or_null(att_stmt_text(s, 6));
		cp.signature = dup_or_null(att_stmt_text(s, 7));
		cp.timestamp_token = dup_or_null(att_stmt_text(s, 8));
		r = cp.payload && cp.signature ? 0 : ATT_E_NOMEM;
	} else if (r == 0) {
		r = ATT_E_NOTFOUND;
	}
	att_stmt_done(s);
	if (r < 0) {
		att_checkpoint_release(&cp);
		return r;
	}
	*ret = cp;
	return 0;
}

int att_checkpoint_set_timestamp(struct att_dbc *c, int64_t id, const char *token_b64)
{
	int r = att_dbc_exec(c, "UPDATE audit_checkpoints SET timestamp_token = ? WHERE id = ?", "si", token_b64, id);

	return r < 0 ? r : r == 1 ? 0 : ATT_E_NOTFOUND;
}

int att_checkpoint_timestamp_pending(struct att_dbc *c, const char *tsa_url, long timeout, int max, char *err,
				     size_t errlen)
{
	struct att_stmt *s;
	int64_t ids[16];
	char *payloads[16] = { NULL };
	int n = 0, done = 0, r;

	if (max > 16)
		max = 16;
	r = att_dbc_query(c, &s,
			  "SELECT id, payload FROM audit_checkpoints WHERE timestamp_token IS NULL ORDER BY id DESC LIMIT ?",
			  "i", (int64_t)max);
	if (r < 0)
		return r;
	while (n < max && (r = att_stmt_next(s)) == 1) {
		ids[n] = att_stmt_int(s, 0);
		payloads[n] = dup_or_null(att_stmt_text(s, 1));
		if (payloads[n])
			n++;
	}
	att_stmt_done(s);
	for (int i = 0; i < n && r >= 0; i++) {
		char *tok = NULL;

		r = att_tsa_request(tsa_url, payloads[i], timeout, &tok, err, errlen);
		if (r == 0)
			r = att_checkpoint_set_timestamp(c, ids[i], tok);
		done += r == 0;
		free(tok);
	}
	for (int i = 0; i < n; i++)
		free(payloads[i]);
	return r < 0 ? r : done;
}

json_t *att_checkpoint_json(const struct att_checkpoint *cp)
{
	return json_pack("{s:s,s:I,s:I,s:I,s:s,s:s,s:s?,s:s,s:s,s:o}", "format", ATT_CHECKPOINT_FORMAT, "id",
			 (json_int_t)cp->id, "entries", (json_int_t)cp->entries, "head_id", (json_int_t)cp->head_id,
			 "head_hash", cp->head_hash, "issued_at", cp->issued_at, "issuer", cp->issuer, "payload",
			 cp->payload, "signature", cp->signature, "timestamp_token",
			 cp->timestamp_token ? json_string(cp->timestamp_token) : json_null());
}

/* ---- verification ------------------------------------------------------------ */

static int cms_check(const char *payload, const char *sig_b64, const char *ca_pem, char *signer, size_t signerlen,
		     char *err, size_t errlen)
{
	uint8_t *der = NULL;
	size_t derlen = 0;
	const unsigned char *p;
	CMS_ContentInfo *cms = NULL;
	BIO *data = NULL, *cab = NULL;
	X509_STORE *store = X509_STORE_new();
	X509 *ca = NULL;
	STACK_OF(X509) *signers = NULL;
	int r = ATT_E_CRYPTO;

	if (att_b64_decode(sig_b64, strlen(sig_b64), &der, &derlen) < 0 || derlen == 0 || derlen > 65536) {
		snprintf(err, errlen, "signature: not base64 DER");
		goto out;
	}
	p = der;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)derlen);
	cab = BIO_new_mem_buf(ca_pem, (int)strlen(ca_pem));
	ca = cab ? PEM_read_bio_X509(cab, NULL, NULL, NULL) : NULL;
	data = BIO_new_mem_buf(payload, (int)strlen(payload));
	if (!cms) {
		snprintf(err, errlen, "signature: not a CMS structure");
		goto out;
	}
	if (!store || !ca || !data || !X509_STORE_add_cert(store, ca)) {
		snprintf(err, errlen, "the CA certificate cannot be read");
		goto out;
	}
	X509_VERIFY_PARAM_set_purpose(X509_STORE_get0_param(store), X509_PURPOSE_ANY);
	if (CMS_verify(cms, NULL, store, data, NULL, CMS_BINARY) != 1) {
		unsigned long e = ERR_peek_last_error();

		snprintf(err, errlen, "signature does not verify against the CA certificate (%s)",
			 e ? ERR_reason_error_string(e) : "unknown reason");
		goto out;
	}
	signers = CMS_get0_signers(cms);
	if (signers && sk_X509_num(signers) == 1)
		X509_NAME_get_text_by_NID(X509_get_subject_name(sk_X509_value(signers, 0)), NID_commonName, signer,
					  (int)signerlen);
	r = 0;
out:
	ERR_clear_error();
	sk_X509_free(signers);
	free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(data);
	BIO_free(cab);
	X509_free(ca);
	X509_STORE_free(store);
	return r;
}

static bool hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int att_checkpoint_parse_claim(const char *payload, struct att_checkpoint_claim *cl, char *err, size_t errlen)
{
	json_t *p = json_loads(payload, JSON_REJECT_DUPLICATES, NULL);
	json_t *n = json_object_get(p, "entries"), *id = json_object_get(p, "head_id");
	const char *type = json_string_value(json_object_get(p, "type"));
	const char *h = json_string_value(json_object_get(p, "head_hash"));
	const char *at = json_string_value(json_object_get(p, "issued_at"));
	int r = ATT_E_PARSE;

	if (!json_is_object(p) || !type || strcmp(type, ATT_CHECKPOINT_TYPE) != 0 ||
	    json_integer_value(json_object_get(p, "version")) != 1) {
		snprintf(err, errlen, "payload: not an %s version 1", ATT_CHECKPOINT_TYPE);
	} else if (!json_is_integer(n) || json_integer_value(n) < 0 || !json_is_integer(id) ||
		   json_integer_value(id) < 0 || !hex64(h) || !at || strlen(at) >= sizeof(cl->issued_at)) {
		snprintf(err, errlen, "payload: entries, head_id, head_hash or issued_at malformed");
	} else {
		cl->entries = json_integer_value(n);
		cl->head_id = json_integer_value(id);
		memcpy(cl->head_hash, h, 65);
		snprintf(cl->issued_at, sizeof(cl->issued_at), "%s", at);
		r = 0;
	}
	json_decref(p);
	return r;
}

int att_checkpoint_verify_doc(const json_t *doc, const char *ca_pem, struct att_checkpoint_claim *ret, char *err,
			      size_t errlen)
{
	const char *fmt = json_string_value(json_object_get(doc, "format"));
	const char *payload = json_string_value(json_object_get(doc, "payload"));
	const char *sig = json_string_value(json_object_get(doc, "signature"));
	struct att_checkpoint_claim cl = { 0 };
	int r;

	if (!json_is_object(doc) || !fmt || strcmp(fmt, ATT_CHECKPOINT_FORMAT) != 0 || !payload || !sig) {
		snprintf(err, errlen, "not an %s document (format, payload, signature)", ATT_CHECKPOINT_FORMAT);
		return ATT_E_PARSE;
	}
	r = cms_check(payload, sig, ca_pem, cl.signer, sizeof(cl.signer), err, errlen);
	if (r == 0)
		r = att_checkpoint_parse_claim(payload, &cl, err, errlen);
	if (r == 0)
		*ret = cl;
	return r;
}

bool att_checkpoint_matches(const struct att_checkpoint_claim *claim, int64_t n, const char *hash_at, char *err,
			    size_t errlen)
{
	if (claim->entries == 0)
		return true;
	if (n < claim->entries || !hash_at) {
		snprintf(err, errlen,
			 "log truncated: the checkpoint of %s attests %lld entries, the log has %lld",
			 claim->issued_at, (long long)claim->entries, (long long)n);
		return false;
	}
	if (strcmp(hash_at, claim->head_hash) != 0) {
		snprintf(err, errlen,
			 "log rewritten: entry %lld hashes to %.16s..., the checkpoint of %s says %.16s...",
			 (long long)claim->entries, hash_at, claim->issued_at, claim->head_hash);
		return false;
	}
	return true;
}
