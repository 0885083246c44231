/* doc.c - the policy document: YAML (libfyaml) into JSON, then strict
 * validation against the seed's shape and each attestor's config schema.
 * Every error names the path of the offending node. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfyaml.h>

#include "base/err.h"
#include "base/util.h"
#include "policy/policy-internal.h"

#define ERR(...) (snprintf(reterr, errlen, __VA_ARGS__), ATT_E_INVAL)
#define MAX_DEPTH 16
#define MAX_STR 8192

static const struct att_attestor *const attestors[] = {
	&att_attestor_k8s_token, &att_attestor_aws_iid,	 &att_attestor_aws_token, &att_attestor_azure_imds,
	&att_attestor_azure_msi, &att_attestor_extension, &att_attestor_gcp_iit,   &att_attestor_http_dns,
	&att_attestor_ssh_pop,	 &att_attestor_tpm_ek,	  &att_attestor_x509pop,
};

const char *const att_policy_types[] = {
	"aws_iid",  "aws_token", "azure_imds", "azure_msi", "extension", "gcp_iit",
	"http_dns", "k8s_token", "ssh_pop",    "tpm_ek",    "x509pop",	 NULL,
};

const struct att_attestor *att_attestor_find(const char *type)
{
	for (size_t i = 0; i < ATT_ARRAY_SIZE(attestors); i++)
		if (strcmp(attestors[i]->type, type) == 0)
			return attestors[i];
	return NULL;
}

/* ---- YAML to JSON --------------------------------------------------------- */

static json_t *scalar_json(struct fy_node *n)
{
	size_t len;
	const char *s = fy_node_get_scalar(n, &len);
	char buf[32];

	if (!s)
		return NULL;
	if (fy_node_get_style(n) == FYNS_PLAIN && len < sizeof(buf)) {
		char *end;
		long long v;

		memcpy(buf, s, len);
		buf[len] = '\0';
		if (strcmp(buf, "true") == 0 || strcmp(buf, "false") == 0)
			return json_boolean(buf[0] == 't');
		if (len == 0 || strcmp(buf, "null") == 0 || strcmp(buf, "~") == 0)
			return json_null();
		errno = 0;
		v = strtoll(buf, &end, 10);
		if (*end == '\0' && errno == 0 && (buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9')))
			return json_integer(v);
	}
	if (len > MAX_STR || memchr(s, '\0', len))
		return NULL;
	return json_stringn(s, len);
}

static int node_json(struct fy_node *n, int depth, const char *path, json_t **ret, char *reterr, size_t errlen)
{
	json_t *o = NULL;
	char sub[256];
	const char *at = *path ? path : "document";

	if (depth > MAX_DEPTH)
		return ERR("%s: nested too deeply", at);
	if (!n) {
		*ret = json_null();
		return 0;
	}
	if (fy_node_is_alias(n))
		return ERR("%s: YAML aliases are not accepted", at);
	switch (fy_node_get_type(n)) {
	case FYNT_SCALAR:
		o = scalar_json(n);
		if (!o)
			return ERR("%s: not a valid string (at most %d bytes, no NUL)", at, MAX_STR);
		break;
	case FYNT_SEQUENCE: {
		struct fy_node *it;
		void *iter = NULL;
		int i = 0;

		o = json_array();
		while (o && (it = fy_node_sequence_iterate(n, &iter))) {
			json_t *v;
			int r;

			snprintf(sub, sizeof(sub), "%s[%d]", path, i++);
			r = node_json(it, depth + 1, sub, &v, reterr, errlen);
			if (r < 0) {
				json_decref(o);
				return r;
			}
			json_array_append_new(o, v);
		}
		break;
	}
	case FYNT_MAPPING: {
		struct fy_node_pair *p;
		void *iter = NULL;

		o = json_object();
		while (o && (p = fy_node_mapping_iterate(n, &iter))) {
			struct fy_node *k = fy_node_pair_key(p);
			const char *ks = k && fy_node_is_scalar(k) && !fy_node_is_alias(k) ? fy_node_get_scalar0(k) : NULL;
			json_t *v;
			int r;

			if (!ks || !*ks || strlen(ks) > 64) {
				json_decref(o);
				return ERR("%s: keys must be plain strings of 1-64 bytes", at);
			}
			snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", ks);
			if (json_object_get(o, ks)) {
				json_decref(o);
				return ERR("%s: given twice", sub);
			}
			r = node_json(fy_node_pair_value(p), depth + 1, sub, &v, reterr, errlen);
			if (r < 0) {
				json_decref(o);
				return r;
			}
			json_object_set_new(o, ks, v);
		}
		break;
	}
	}
	if (!o)
		return ATT_E_NOMEM;
	*ret = o;
	return 0;
}

/* Well-formed UTF-8 without control characters other than tab, LF, CR. */
static bool text_ok(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		uint32_t cp;

		if (n == 0 || i + n > len)
			return false;
		if (n == 1) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				return false;
			i++;
			continue;
		}
		cp = c & (0x7f >> n);
		for (size_t k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n;
	}
	return true;
}

/* A YAML directive (%YAML, %TAG) starts a line with '%'. */
static bool has_directive(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] == '%' && (i == 0 || p[i - 1] == '\n' || p[i - 1] == '\r'))
			return true;
	return false;
}

static int yaml_to_json(const char *text, size_t len, json_t **ret, char *reterr, size_t errlen)
{
	struct fy_parse_cfg cfg = { .flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_AUTO };
	struct fy_document *d;
	int r;

	if (len == 0)
		return ERR("document: empty");
	if (len > ATT_POLICY_MAX_DOC)
		return ERR("document: larger than %d bytes", ATT_POLICY_MAX_DOC);
	/* Checked before libfyaml sees the bytes: its directive scanner
	 * loops forever on some invalid UTF-8 (found by fuzz-agent-policy). */
	if (!text_ok((const unsigned char *)text, len))
		return ERR("document: must be UTF-8 text without control characters");
	if (has_directive(text, len))
		return ERR("document: YAML directives (%%YAML, %%TAG) are not accepted");
	d = fy_document_build_from_string(&cfg, text, len);
	if (!d)
		return ERR("document: not valid YAML");
	r = node_json(fy_document_root(d), 0, "", ret, reterr, errlen);
	fy_document_destroy(d);
	return r;
}

/* ---- validation ----------------------------------------------------------- */

static bool known_key(const char *k, const char *const *keys)
{
	for (; *keys; keys++)
		if (strcmp(k, *keys) == 0)
			return true;
	return false;
}

static int only_keys(const json_t *o, const char *path, const char *const *keys, char *reterr, size_t errlen)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)o, k, v) {
		(void)v;
		if (!known_key(k, keys))
			return ERR("%s%s%s: unknown key", path, *path ? "." : "", k);
	}
	return 0;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

static int check_field(const struct att_pol_field *f, const json_t *v, const char *path, char *reterr, size_t errlen)
{
	switch (f->kind) {
	case PK_STR:
		if (!json_is_string(v) || json_string_length(v) == 0)
			return ERR("%s: must be a non-empty string", path);
		break;
	case PK_URL: {
		const char *s = json_string_value(v);

		if (!s || (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0) ||
		    strlen(s) > 2048 || strpbrk(s, " \t\r\n"))
			return ERR("%s: must be an http:// or https:// URL", path);
		break;
	}
	case PK_STRLIST:
		if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 256)
			return ERR("%s: must be a list of 1-256 strings", path);
		for (size_t i = 0; i < json_array_size(v); i++) {
			const json_t *e = json_array_get(v, i);

			if (!json_is_string(e) || json_string_length(e) == 0)
				return ERR("%s[%zu]: must be a non-empty string", path, i);
		}
		break;
	case PK_BOOL:
		if (!json_is_boolean(v))
			return ERR("%s: must be true or false", path);
		break;
	case PK_INT:
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000000)
			return ERR("%s: must be a non-negative integer", path);
		break;
	}
	return 0;
}

static int check_config(const struct att_attestor *a, const json_t *cfg, const char *path, char *reterr,
			size_t errlen)
{
	char sub[256], why[384];
	const char *k;
	json_t *v;

	if (cfg && !json_is_object(cfg))
		return ERR("%s: must be a mapping", path);
	json_object_foreach((json_t *)cfg, k, v) {
		const struct att_pol_field *f = NULL;
		int r;

		for (size_t i = 0; i < a->nfields; i++)
			if (strcmp(a->fields[i].name, k) == 0)
				f = &a->fields[i];
		snprintf(sub, sizeof(sub), "%s.%s", path, k);
		if (!f)
			return ERR("%s: unknown key for attestor type %s", sub, a->type);
		r = check_field(f, v, sub, reterr, errlen);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < a->nfields; i++)
		if (a->fields[i].required && !json_object_get(cfg, a->fields[i].name)) {
			if (!cfg)
				return ERR("%s: required for attestor type %s (it needs %s)", path, a->type,
					   a->fields[i].name);
			return ERR("%s.%s: required", path, a->fields[i].name);
		}
	why[0] = '\0';
	if (a->check && a->check(cfg, why, sizeof(why)) < 0)
		return ERR("%s.%s", path, why);
	return 0;
}

static int check_policy(const json_t *p, const char *path, json_t *names, char *reterr, size_t errlen)
{
	static const char *const pkeys[] = { "name", "requiredAttestors", NULL };
	static const char *const akeys[] = { "type", "config", NULL };
	const json_t *name = json_object_get(p, "name"), *req = json_object_get(p, "requiredAttestors");
	char sub[256];
	int r;

	if (!json_is_object(p))
		return ERR("%s: must be a mapping", path);
	r = only_keys(p, path, pkeys, reterr, errlen);
	if (r < 0)
		return r;
	if (!json_is_string(name) || !valid_name(json_string_value(name)))
		return ERR("%s.name: required, 1-64 of [A-Za-z0-9_.-]", path);
	if (json_object_get(names, json_string_value(name)))
		return ERR("%s.name: '%s' is used by another policy", path, json_string_value(name));
	json_object_set_new(names, json_string_value(name), json_true());
	if (!json_is_array(req) || json_array_size(req) == 0)
		return ERR("%s.requiredAttestors: required, a list of at least one attestor", path);
	if (json_array_size(req) > ATT_POLICY_MAX_ATTESTORS)
		return ERR("%s.requiredAttestors: at most %d attestors", path, ATT_POLICY_MAX_ATTESTORS);
	for (size_t i = 0; i < json_array_size(req); i++) {
		const json_t *at = json_array_get(req, i), *type;
		const struct att_attestor *a;

		snprintf(sub, sizeof(sub), "%s.requiredAttestors[%zu]", path, i);
		if (!json_is_object(at))
			return ERR("%s: must be a mapping with type and config", sub);
		r = only_keys(at, sub, akeys, reterr, errlen);
		if (r < 0)
			return r;
		type = json_object_get(at, "type");
		if (!json_is_string(type))
			return ERR("%s.type: required", sub);
		a = att_attestor_find(json_string_value(type));
		if (!a)
			return ERR("%s.type: unknown attestor type '%.64s'", sub, json_string_value(type));
		for (size_t j = 0; j < i; j++)
			if (json_equal(json_object_get(json_array_get(req, j), "type"), type))
				return ERR("%s.type: %s is required twice in one policy", sub, a->type);
		strncat(sub, ".config", sizeof(sub) - strlen(sub) - 1);
		r = check_config(a, json_is_null(json_object_get(at, "config")) ? NULL : json_object_get(at, "config"),
				 sub, reterr, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

static int validate(json_t *doc, char *reterr, size_t errlen)
{
	static const char *const tkeys[] = { "section", "schema", "spec", NULL };
	static const char *const skeys[] = { "policies", NULL };
	const json_t *spec, *pol;
	json_t *names;
	int r;

	if (!json_is_object(doc))
		return ERR("document: must be a mapping with section, schema and spec");
	r = only_keys(doc, "", tkeys, reterr, errlen);
	if (r < 0)
		return r;
	if (!json_is_string(json_object_get(doc, "section")) ||
	    strcmp(json_string_value(json_object_get(doc, "section")), "AgentAttestation") != 0)
		return ERR("section: must be AgentAttestation");
	if (!json_is_string(json_object_get(doc, "schema")) ||
	    strcmp(json_string_value(json_object_get(doc, "schema")), "v1") != 0)
		return ERR("schema: must be v1");
	spec = json_object_get(doc, "spec");
	if (!json_is_object(spec))
		return ERR("spec: required, a mapping with policies");
	r = only_keys(spec, "spec", skeys, reterr, errlen);
	if (r < 0)
		return r;
	pol = json_object_get(spec, "policies");
	if (!json_is_array(pol) || json_array_size(pol) == 0)
		return ERR("spec.policies: required, a list of at least one policy");
	if (json_array_size(pol) > ATT_POLICY_MAX_POLICIES)
		return ERR("spec.policies: at most %d policies", ATT_POLICY_MAX_POLICIES);
	names = json_object();
	if (!names)
		return ATT_E_NOMEM;
	for (size_t i = 0; i < json_array_size(pol); i++) {
		char path[64];

		snprintf(path, sizeof(path), "spec.policies[%zu]", i);
		r = check_policy(json_array_get(pol, i), path, names, reterr, errlen);
		if (r < 0)
			break;
	}
	json_decref(names);
	return r;
}

int att_policy_parse(const char *text, size_t len, json_t **ret, char *reterr, size_t errlen)
{
	json_t *doc;
	int r = yaml_to_json(text, len, &doc, reterr, errlen);

	if (r < 0)
		return r;
	r = validate(doc, reterr, errlen);
	if (r < 0) {
		json_decref(doc);
		return r;
	}
	*ret = doc;
	return 0;
}
