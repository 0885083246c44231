/* attest_ssh.c - ssh_pop: an OpenSSH host certificate signed by one of
 * the configured certAuthorities, valid now, plus an SSHSIG (namespace
 * "attestation-agent", as `ssh-keygen -Y sign -n attestation-agent`
 * makes) over the proof-of-possession message by the certified key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "base/util.h"
#include "policy/policy-internal.h"
#include "policy/sshcert.h"

#define SSH_NAMESPACE "attestation-agent"

static bool ca_trusted(const json_t *config, const uint8_t *key, size_t klen)
{
	const json_t *cas = json_object_get(config, "certAuthorities");

	for (size_t i = 0; i < json_array_size(cas); i++) {
		char type[64];
		uint8_t *blob = NULL;
		size_t n = 0;
		bool eq;

		if (att_ssh_line_blob(json_string_value(json_array_get(cas, i)), type, &blob, &n) < 0)
			continue;
		eq = n == klen && memcmp(blob, key, n) == 0;
		free(blob);
		if (eq)
			return true;
	}
	return false;
}

static int principals_ok(const json_t *config, const struct att_ssh_cert *c)
{
	if (!json_object_get(config, "allowedPrincipals"))
		return 1;
	for (size_t i = 0; i < c->nprincipals; i++)
		if (att_pol_allowed(config, "allowedPrincipals", c->principals[i]))
			return 1;
	return 0;
}

static int ssh_pop_verify(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence,
			  json_t *attrs, char *reason, size_t rlen)
{
	const char *line = att_pol_evidence_str(evidence, "certificate", 16384, reason, rlen);
	const char *sig = line ? att_pol_evidence_str(evidence, "signature", 16384, reason, rlen) : NULL;
	struct att_ssh_cert c;
	uint8_t *blob = NULL, msg[256];
	size_t n = 0, mlen;
	char type[64], ser[24];
	json_t *pr;
	int r;

	if (!line || !sig)
		return ATT_E_AUTH;
	r = att_pol_pop_message(ctx, "ssh_pop", msg, sizeof(msg), &mlen, reason, rlen);
	if (r < 0)
		return r;
	if (att_ssh_line_blob(line, type, &blob, &n) < 0)
		return POL_FAIL(ATT_E_AUTH, "malformed evidence: certificate is not an OpenSSH certificate line");
	r = att_ssh_cert_parse(blob, n, &c, reason, rlen);
	if (r < 0) {
		free(blob);
		return r;
	}
	if (c.cert_type != 2)
		r = POL_FAIL(ATT_E_AUTH, "not a host certificate: certificate type %u", c.cert_type);
	else if (!ca_trusted(config, c.ca_key, c.ca_key_len))
		r = POL_FAIL(ATT_E_AUTH, "untrusted certificate: not signed by a configured certAuthority");
	else if ((uint64_t)ctx->now < c.valid_after || (uint64_t)ctx->now >= c.valid_before)
		r = POL_FAIL(ATT_E_AUTH, "expired certificate: not valid now");
	else if (!principals_ok(config, &c))
		r = POL_FAIL(ATT_E_AUTH, "principal not allowed: no principal of the certificate is allowed");
	else
		r = att_sshsig_verify(sig, c.key, SSH_NAMESPACE, msg, mlen, reason, rlen);
	if (r == 0) {
		pr = json_array();
		for (size_t i = 0; pr && i < c.nprincipals; i++)
			json_array_append_new(pr, json_string(c.principals[i]));
		snprintf(ser, sizeof(ser), "%llu", (unsigned long long)c.serial);
		json_object_set_new(attrs, "principals", pr ? pr : json_array());
		json_object_set_new(attrs, "serial", json_string(ser));
		json_object_set_new(attrs, "key_id", json_string(c.key_id));
		json_object_set_new(attrs, "valid_after", json_integer((json_int_t)c.valid_after));
		json_object_set_new(attrs, "valid_before", json_integer(c.valid_before > INT64_MAX ? INT64_MAX : (json_int_t)c.valid_before));
	}
	att_ssh_cert_release(&c);
	free(blob);
	return r;
}

static int ssh_pop_check(const json_t *config, char *reason, size_t rlen)
{
	const json_t *cas = json_object_get(config, "certAuthorities");

	for (size_t i = 0; i < json_array_size(cas); i++) {
		char type[64];
		uint8_t *blob = NULL;
		size_t n = 0;
		EVP_PKEY *k = NULL;
		char kt[48];
		int r = att_ssh_line_blob(json_string_value(json_array_get(cas, i)), type, &blob, &n);

		if (r == 0)
			r = att_ssh_pubkey_parse(blob, n, &k, kt);
		EVP_PKEY_free(k);
		free(blob);
		if (r < 0)
			return POL_FAIL(ATT_E_INVAL, "certAuthorities[%zu]: not an OpenSSH public key line", i);
	}
	return 0;
}

static const struct att_pol_field ssh_pop_fields[] = {
	{ "certAuthorities", PK_STRLIST, true },
	{ "allowedPrincipals", PK_STRLIST, false },
};

const struct att_attestor att_attestor_ssh_pop = { "ssh_pop", ssh_pop_fields, ATT_ARRAY_SIZE(ssh_pop_fields),
						   ssh_pop_check, ssh_pop_verify };
