/* answer.c - parsing the service's answers as untrusted input (see
 * answer.h).  jansson types stay in this file. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/answer.h"
#include "base/err.h"
#include "base/util.h"

#define FAIL(...) (snprintf(reterr, errlen, __VA_ARGS__), ATT_E_PARSE)

static json_t *load(const char *body, size_t len, char *reterr, size_t errlen)
{
	json_error_t je;
	json_t *o;

	if (len > ATT_ANSWER_MAX_CONFIG) {
		snprintf(reterr, errlen, "answer larger than %d bytes", ATT_ANSWER_MAX_CONFIG);
		return NULL;
	}
	o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		snprintf(reterr, errlen, "answer is not valid JSON (%.80s)", je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(reterr, errlen, "answer is not a JSON object");
		return NULL;
	}
	return o;
}

enum shape {
	ANY,		/* printable or UTF-8 text, no control characters */
	ID,		/* [A-Za-z0-9._-] */
	HEX,		/* [0-9a-f] */
};

static bool shape_ok(const char *v, size_t n, enum shape sh)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		switch (sh) {
		case ID:
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
			      c == '_' || c == '-'))
				return false;
			break;
		case HEX:
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				return false;
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				return false;
		}
	}
	return true;
}

/* Copy member key (a string of 1..cap-1 bytes of the shape) to out.
 * Absent or null: "" when !required.  Returns 0 or ATT_E_PARSE. */
static int str(json_t *o, const char *key, bool required, enum shape sh, char *out, size_t cap, char *reterr,
	       size_t errlen)
{
	json_t *v = json_object_get(o, key);
	size_t n;

	out[0] = '\0';
	if (!v || json_is_null(v))
		return required ? FAIL("%s: missing", key) : 0;
	if (!json_is_string(v))
		return FAIL("%s: not a string", key);
	n = json_string_length(v);
	if (n == 0 && required)
		return FAIL("%s: empty", key);
	if (n >= cap)
		return FAIL("%s: longer than %zu characters", key, cap - 1);
	if (memchr(json_string_value(v), '\0', n) || !shape_ok(json_string_value(v), n, sh))
		return FAIL("%s: unexpected characters", key);
	memcpy(out, json_string_value(v), n + 1);
	return 0;
}

/* A table of string members: key, required, shape, where in the struct. */
struct fspec {
	const char *key;
	bool required;
	enum shape sh;
	size_t off, size;
};

#define F(type, key, req, sh, field) { key, req, sh, offsetof(type, field), sizeof(((type *)0)->field) }

static int fields(json_t *o, void *base, const struct fspec *f, size_t n, char *reterr, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		int r = str(o, f[i].key, f[i].required, f[i].sh, (char *)base + f[i].off, f[i].size, reterr, errlen);

		if (r < 0)
			return r;
	}
	return 0;
}

/* The message is informative: cut and made printable, never refused. */
static void message(json_t *o, char *out, size_t outlen)
{
	const char *m = json_string_value(json_object_get(o, "message"));

	att_answer_sanitize(m ? m : "", out, outlen);
}

static bool one_of(const char *v, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(v, *set) == 0)
			return true;
	return false;
}

/* base64 member, decoded to min..max bytes (caller frees *ret) */
static int b64(json_t *o, const char *key, size_t min, size_t max, uint8_t **ret, size_t *ret_len, char *reterr,
	       size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*ret = NULL;
	*ret_len = 0;
	if (!json_is_string(v))
		return FAIL("%s: missing or not a string", key);
	if (json_string_length(v) > (max / 3 + 2) * 4 + 64)
		return FAIL("%s: larger than %zu bytes", key, max);
	if (att_b64_decode(json_string_value(v), json_string_length(v), ret, ret_len) < 0)
		return FAIL("%s: not valid base64", key);
	if (*ret_len < min || *ret_len > max) {
		free(*ret);
		*ret = NULL;
		return FAIL("%s: %zu bytes, expected %zu to %zu", key, *ret_len, min, max);
	}
	return 0;
}

int att_answer_register_parse(const char *body, size_t len, struct att_answer_register *ret, char *reterr,
			      size_t errlen)
{
	static const char *const statuses[] = { "pending_approval", "registered", "attested", NULL };
	static const struct fspec spec[] = {
		F(struct att_answer_register, "machine_id", true, ID, machine_id),
		F(struct att_answer_register, "status", true, ID, status),
		F(struct att_answer_register, "role", false, ID, role),
		F(struct att_answer_register, "iso_url", false, ANY, iso_url),
		F(struct att_answer_register, "installer_image", false, ANY, installer_image),
		F(struct att_answer_register, "schematic_id", false, HEX, schematic_id),
		F(struct att_answer_register, "ek_fingerprint", false, HEX, ek_fingerprint),
	};
	struct att_answer_register a;
	json_t *o = load(body, len, reterr, errlen);
	int r;

	if (!o)
		return ATT_E_PARSE;
	memset(&a, 0, sizeof(a));
	if ((r = fields(o, &a, spec, ATT_ARRAY_SIZE(spec), reterr, errlen)) < 0)
		goto out;
	message(o, a.message, sizeof(a.message));
	if (!one_of(a.status, statuses)) {
		r = FAIL("status: unexpected value '%.24s'", a.status);
		goto out;
	}
	*ret = a;
out:
	json_decref(o);
	return r;
}

int att_answer_challenge_parse(const char *body, size_t len, struct att_answer_challenge *ret, char *reterr,
			       size_t errlen)
{
	struct att_answer_challenge c;
	json_t *o = load(body, len, reterr, errlen);
	uint8_t *n = NULL;
	int r;

	if (!o)
		return ATT_E_PARSE;
	memset(&c, 0, sizeof(c));
	if ((r = str(o, "nonce_id", true, HEX, c.nonce_id, sizeof(c.nonce_id), reterr, errlen)) < 0 ||
	    (r = b64(o, "nonce", 16, sizeof(c.nonce), &n, &c.nonce_len, reterr, errlen)) < 0)
		goto out;
	memcpy(c.nonce, n, c.nonce_len);
	*ret = c;
out:
	free(n);
	json_decref(o);
	return r;
}

void att_answer_activation_release(struct att_answer_activation *a)
{
	free(a->blob);
	memset(a, 0, sizeof(*a));
}

int att_answer_activation_parse(const char *body, size_t len, struct att_answer_activation *ret, char *reterr,
				size_t errlen)
{
	struct att_answer_activation a;
	struct att_cred_blob cb;
	json_t *o = load(body, len, reterr, errlen);
	int r;

	if (!o)
		return ATT_E_PARSE;
	memset(&a, 0, sizeof(a));
	if ((r = str(o, "activation_id", true, HEX, a.activation_id, sizeof(a.activation_id), reterr, errlen)) < 0 ||
	    (r = str(o, "ak_name", true, HEX, a.ak_name, sizeof(a.ak_name), reterr, errlen)) < 0 ||
	    (r = b64(o, "credential_blob", 16, 1024, &a.blob, &a.blob_len, reterr, errlen)) < 0 ||
	    (r = att_answer_cred_blob_split(a.blob, a.blob_len, &cb, reterr, errlen)) < 0) {
		att_answer_activation_release(&a);
		goto out;
	}
	*ret = a;
out:
	json_decref(o);
	return r;
}

int att_answer_activation_done_parse(const char *body, size_t len, const char *machine_id, const char *ak_name,
				     char *reterr, size_t errlen)
{
	json_t *o = load(body, len, reterr, errlen);
	char mid[65], name[2 * 66 + 1];
	int r;

	if (!o)
		return ATT_E_PARSE;
	if ((r = str(o, "machine_id", true, ID, mid, sizeof(mid), reterr, errlen)) < 0 ||
	    (r = str(o, "ak_name", true, HEX, name, sizeof(name), reterr, errlen)) < 0)
		goto out;
	if (!json_is_true(json_object_get(o, "ak_accepted")))
		r = FAIL("ak_accepted: not true");
	else if (strcmp(mid, machine_id) != 0)
		r = FAIL("machine_id: the answer is for machine %s, not %s", mid, machine_id);
	else if (strcmp(name, ak_name) != 0)
		r = FAIL("ak_name: the service bound another key");
out:
	json_decref(o);
	return r;
}

int att_answer_attest_parse(const char *body, size_t len, struct att_answer_attest *ret, char *reterr,
			    size_t errlen)
{
	static const char *const statuses[] = { "pending_approval", "attested", "already_attested", "locked",
						"revoked", NULL };
	static const char *const actions[] = { "none", "apply-config", "lock", "wipe", NULL };
	static const struct fspec spec[] = {
		F(struct att_answer_attest, "machine_id", true, ID, machine_id),
		F(struct att_answer_attest, "status", true, ID, status),
		F(struct att_answer_attest, "action", true, ID, action),
		F(struct att_answer_attest, "config_url", false, ANY, config_url),
		F(struct att_answer_attest, "hostname", false, ID, hostname),
		F(struct att_answer_attest, "role", false, ID, role),
	};
	struct att_answer_attest a;
	json_t *o = load(body, len, reterr, errlen), *qv;
	int r;

	if (!o)
		return ATT_E_PARSE;
	memset(&a, 0, sizeof(a));
	if ((r = fields(o, &a, spec, ATT_ARRAY_SIZE(spec), reterr, errlen)) < 0)
		goto out;
	message(o, a.message, sizeof(a.message));
	qv = json_object_get(o, "quote_verified");
	if (qv && !json_is_boolean(qv)) {
		r = FAIL("quote_verified: not a boolean");
		goto out;
	}
	a.quote_verified = json_is_true(qv);
	if (!one_of(a.status, statuses))
		r = FAIL("status: unexpected value '%.24s'", a.status);
	else if (!one_of(a.action, actions))
		r = FAIL("action: unexpected value '%.16s'", a.action);
	/* the service pairs each action with one state (docs/api.md) */
	else if (strcmp(a.action, "apply-config") == 0 && (strcmp(a.status, "attested") != 0 || !a.config_url[0]))
		r = FAIL("action: apply-config needs status attested and a config_url");
	else if (strcmp(a.action, "apply-config") != 0 && a.config_url[0])
		r = FAIL("config_url: only sent with action apply-config");
	else if (strcmp(a.action, "lock") == 0 && strcmp(a.status, "locked") != 0)
		r = FAIL("action: lock with status %s", a.status);
	else if (strcmp(a.action, "wipe") == 0 && strcmp(a.status, "revoked") != 0)
		r = FAIL("action: wipe with status %s", a.status);
	if (r == 0)
		*ret = a;
out:
	json_decref(o);
	return r;
}

void att_answer_envelope_release(struct att_answer_envelope *e)
{
	free(e->blob);
	free(e->ct);
	memset(e, 0, sizeof(*e));
}

int att_answer_envelope_parse(const char *body, size_t len, struct att_answer_envelope *ret, char *reterr,
			      size_t errlen)
{
	struct att_answer_envelope e;
	struct att_cred_blob cb;
	json_t *o = load(body, len, reterr, errlen);
	uint8_t *iv = NULL;
	size_t ivl = 0;
	int r;

	if (!o)
		return ATT_E_PARSE;
	memset(&e, 0, sizeof(e));
	if ((r = str(o, "format", true, ID, e.format, sizeof(e.format), reterr, errlen)) < 0 ||
	    (r = str(o, "machine_id", true, ID, e.machine_id, sizeof(e.machine_id), reterr, errlen)) < 0)
		goto out;
	if (strcmp(e.format, "tpm-credential-aes256gcm-v1") != 0) {
		r = FAIL("format: '%.40s' cannot be opened by this TPM (only tpm-credential-aes256gcm-v1: a TPM EK is a restricted key)",
			 e.format);
		goto out;
	}
	if ((r = b64(o, "credential_blob", 16, 1024, &e.blob, &e.blob_len, reterr, errlen)) < 0 ||
	    (r = att_answer_cred_blob_split(e.blob, e.blob_len, &cb, reterr, errlen)) < 0 ||
	    (r = b64(o, "iv", 12, 12, &iv, &ivl, reterr, errlen)) < 0 ||
	    (r = b64(o, "ciphertext", 16, ATT_ANSWER_MAX_CONFIG, &e.ct, &e.ct_len, reterr, errlen)) < 0)
		goto out;
	memcpy(e.iv, iv, sizeof(e.iv));
	*ret = e;
	memset(&e, 0, sizeof(e));
out:
	free(iv);
	att_answer_envelope_release(&e);
	json_decref(o);
	return r;
}

void att_answer_sanitize(const char *s, char *out, size_t outlen)
{
	size_t n = 0;

	if (outlen == 0)
		return;
	for (; *s && n + 1 < outlen; s++)
		out[n++] = ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f) ? *s : '?';
	out[n] = '\0';
}

void att_answer_detail(const char *body, size_t len, char *out, size_t outlen)
{
	json_t *o = len <= ATT_ANSWER_MAX_BODY ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	const char *d = json_is_object(o) ? json_string_value(json_object_get(o, "detail")) : NULL;

	att_answer_sanitize(d ? d : "", out, outlen);
	json_decref(o);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int att_answer_cred_blob_split(const uint8_t *p, size_t len, struct att_cred_blob *ret, char *reterr,
			       size_t errlen)
{
	size_t off = 8, a, b;

	if (len < 12 || be32(p) != 0xBADCC0DEu || be32(p + 4) != 1)
		return FAIL("credential_blob: not a tpm2-tools credential blob (0xBADCC0DE, version 1)");
	a = (size_t)p[off] << 8 | p[off + 1];
	if (a == 0 || a > len - off - 2)
		return FAIL("credential_blob: truncated TPM2B_ID_OBJECT");
	ret->id_object = p + off;
	ret->id_object_len = 2 + a;
	off += 2 + a;
	if (len - off < 2)
		return FAIL("credential_blob: truncated TPM2B_ENCRYPTED_SECRET");
	b = (size_t)p[off] << 8 | p[off + 1];
	if (b == 0 || b != len - off - 2)
		return FAIL("credential_blob: TPM2B_ENCRYPTED_SECRET of the wrong size or trailing bytes");
	ret->secret = p + off;
	ret->secret_len = 2 + b;
	return 0;
}
