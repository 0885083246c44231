/* node.c - the node's identity and the request bodies (see node.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "agent/node.h"
#include "base/err.h"
#include "base/util.h"
#include "crypto/ek.h"

void att_agent_node_release(struct att_agent_node *n)
{
	att_tpm_ek_release(&n->ek);
	free(n->ek_b64);
	free(n->chain_b64);
	free(n->ek_public_b64);
	memset(n, 0, sizeof(*n));
}

int att_agent_node_read(struct att_tpmdev *d, enum att_ek_pref pref, const char *sysroot,
			struct att_agent_node *ret, char *reterr, size_t errlen)
{
	struct att_agent_node n;
	struct att_ek id;
	int r;

	memset(&n, 0, sizeof(n));
	r = att_tpmdev_ek(d, pref, &n.ek, reterr, errlen);
	if (r < 0)
		return r;
	if (n.ek.cert) {
		n.ek_source = "cert";
		n.ek_b64 = att_b64_encode(n.ek.cert, n.ek.cert_len);
		r = att_ek_parse_bytes(n.ek.cert, n.ek.cert_len, "cert", time(NULL), &id, reterr, errlen);
	} else {
		n.ek_source = "pub";
		n.ek_b64 = att_b64_encode(n.ek.spki, n.ek.spki_len);
		r = att_ek_parse_bytes(n.ek.spki, n.ek.spki_len, "pub", time(NULL), &id, reterr, errlen);
	}
	if (r == 0) {
		memcpy(n.fp, id.fp, sizeof(n.fp));
		n.ek_public_b64 = att_b64_encode(n.ek.pub, n.ek.pub_len);
		if (n.ek.chain_len)
			n.chain_b64 = att_b64_encode(n.ek.chain, n.ek.chain_len);
		if (!n.ek_b64 || !n.ek_public_b64 || (n.ek.chain_len && !n.chain_b64))
			r = ATT_E_NOMEM;
	}
	if (r < 0) {
		att_agent_node_release(&n);
		return r;
	}
	att_hwid_collect(sysroot, &n.hw);
	*ret = n;
	return 0;
}

static void set_opt(json_t *o, const char *k, const char *v)
{
	if (v && *v)
		json_object_set_new(o, k, json_string(v));
}

static json_t *node_fields(const struct att_agent_node *n, const char *role, const char *cluster)
{
	json_t *o = json_object();

	json_object_set_new(o, "ek_fingerprint", json_string(n->fp));
	json_object_set_new(o, "ek_cert_pem", json_string(n->ek_b64));
	json_object_set_new(o, "ek_source", json_string(n->ek_source));
	set_opt(o, "hw_uuid", n->hw.uuid);
	set_opt(o, "hw_mac", n->hw.mac);
	set_opt(o, "hw_serial", n->hw.serial);
	set_opt(o, "hw_product", n->hw.product);
	set_opt(o, "desired_role", role);
	set_opt(o, "cluster_id", cluster);
	return o;
}

static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

char *att_agent_body_register(const struct att_agent_node *n, const char *role, const char *cluster)
{
	json_t *o = node_fields(n, role, cluster);

	set_opt(o, "ek_chain_nv", n->chain_b64);
	return dump(o);
}

char *att_agent_body_add_identity(char *body, const char *file, char *err, size_t errlen)
{
	FILE *f = fopen(file, "re");
	char tok[16386];
	size_t n = f ? fread(tok, 1, sizeof(tok) - 1, f) : 0, a = 0;
	json_t *o = NULL;
	bool ok = f && !ferror(f);

	if (f)
		fclose(f);
	tok[n] = 0;
	while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' || tok[n - 1] == '\t'))
		tok[--n] = 0;
	while (a < n && (tok[a] == ' ' || tok[a] == '\n' || tok[a] == '\r' || tok[a] == '\t'))
		a++;
	if (!ok)
		snprintf(err, errlen, "--agent-identity %s: cannot read it", file);
	else if (n - a == 0 || n - a > 16384 || strspn(tok + a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != n - a)
		snprintf(err, errlen, "--agent-identity %s: not one JWT (the token of POST /api/v1/agents/attest)", file);
	else if (!(o = json_loads(body, 0, NULL)) || json_object_set_new(o, "agent_identity", json_string(tok + a)) < 0) {
		snprintf(err, errlen, "out of memory");
		json_decref(o);
		o = NULL;
	}
	free(body);
	att_wipe(tok, sizeof(tok));
	return o ? dump(o) : NULL;
}

char *att_agent_body_attest(const struct att_agent_node *n, const char *role, const char *nonce_id,
			    const struct att_tpm_quote_out *q)
{
	json_t *o = node_fields(n, role, NULL), *pcrs;

	if (q) {
		char *a = att_b64_encode(q->attest, q->attest_len), *s = att_b64_encode(q->sig, q->sig_len);

		json_object_set_new(o, "nonce_id", json_string(nonce_id));
		json_object_set_new(o, "pcr_quote", a ? json_string(a) : json_null());
		json_object_set_new(o, "pcr_signature", s ? json_string(s) : json_null());
		free(a);
		free(s);
		pcrs = json_object();
		for (size_t i = 0; i < q->pcrs.n; i++) {
			char key[32], hex[129];

			snprintf(key, sizeof(key), "%s:%u", att_tpm_bank_name(q->pcrs.v[i].bank), q->pcrs.v[i].index);
			att_hex_encode(q->pcrs.v[i].value, q->pcrs.v[i].len, hex);
			json_object_set_new(pcrs, key, json_string(hex));
		}
		json_object_set_new(o, "pcr_values", pcrs);
	}
	return dump(o);
}

char *att_agent_body_activate(const struct att_agent_node *n, const struct att_tpm_ak *ak)
{
	json_t *o = json_object();
	char *akb = att_b64_encode(ak->pub, ak->pub_len);

	json_object_set_new(o, "ek_cert_pem", json_string(n->ek_b64));
	json_object_set_new(o, "ek_source", json_string(n->ek_source));
	json_object_set_new(o, "ek_fingerprint", json_string(n->fp));
	json_object_set_new(o, "ak_public", akb ? json_string(akb) : json_null());
	json_object_set_new(o, "ek_public", json_string(n->ek_public_b64));
	free(akb);
	return dump(o);
}

char *att_agent_body_complete(const char *activation_id, const uint8_t *secret, size_t len)
{
	char *s = att_b64_encode(secret, len), *out;
	json_t *o;

	if (!s)
		return NULL;
	o = json_pack("{s:s,s:s}", "activation_id", activation_id, "secret", s);
	out = dump(o);
	att_wipe(s, strlen(s));
	free(s);
	return out;
}

char *att_agent_body_receipt(const struct att_agent_node *n, const char *machine_id, const char *role,
			     const char *cluster, const char *installed_at)
{
	json_t *o = json_object();

	json_object_set_new(o, "install_mode", json_string("offline"));
	json_object_set_new(o, "machine_id", json_string(machine_id));
	json_object_set_new(o, "role", json_string(role && *role ? role : "worker-app"));
	set_opt(o, "cluster_id", cluster);
	json_object_set_new(o, "hw_uuid", json_string(n->hw.uuid[0] ? n->hw.uuid : "unknown"));
	json_object_set_new(o, "hw_mac", json_string(n->hw.mac[0] ? n->hw.mac : "unknown"));
	json_object_set_new(o, "hw_serial", json_string(n->hw.serial[0] ? n->hw.serial : "unknown"));
	json_object_set_new(o, "hw_product", json_string(n->hw.product[0] ? n->hw.product : "unknown"));
	json_object_set_new(o, "ek_fingerprint", json_string(n->fp));
	json_object_set_new(o, "ek_source", json_string(n->ek_source));
	json_object_set_new(o, "ek_cert_pem", json_string(n->ek_b64));
	json_object_set_new(o, "installed_at", json_string(installed_at));
	{
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		json_decref(o);
		return s;
	}
}
