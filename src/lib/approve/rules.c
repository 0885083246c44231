/* rules.c - the auto-approval rules file (docs/auto-approval.md):
 *
 *   {"rules": [{"name": "ci-runners",
 *               "match": {"via": "self-register", "hw_product": "Virtual Machine",
 *                         "desired_role": "worker-app", "ek_verdict": "verified",
 *                         "ek_manufacturer": "*", "registration_token_sha256": ["<hex>"]},
 *               "approve": {"role": "worker-app", "hostname": "ci-{id8}"},
 *               "max_per_hour": 60, "allow_unauthenticated": false}]}
 *
 * A rule may also match the agent identity the machine presented with its
 * registration (identity.c there; POST /api/v1/agents/attest here):
 * "attributes": {"k8s_token.namespace": "ci"}, "policy", "cluster" —
 * globs on the verified token's attrs, policy and cluster claims.  Such a
 * rule never matches a machine without a verified, EK-bound identity.
 *
 * First match wins.  A rule must name something the client cannot simply
 * claim (a registration token, a verified EK chain or agent identity) unless it says
 * allow_unauthenticated; a rule's role is never one under dual control.
 * Any mistake refuses the start, naming the rule and the field. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approve/approve.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "machine/machine.h"
#include "policy/identity_verify.h"

#define MAX_RULES 64
#define MAX_TOKENS 16
#define MAX_ATTRS 16

enum via { VIA_ANY, VIA_REGISTER, VIA_SELF };
enum verdict { VERDICT_ANY, VERDICT_VERIFIED, VERDICT_UNVERIFIED };

struct rule {
	char name[33];
	enum via via;
	char *hw_product;	/* fnmatch pattern or NULL */
	char *desired_role;
	char *ek_manufacturer;	/* fnmatch pattern or NULL */
	enum verdict verdict;
	char tokens[MAX_TOKENS][65];
	size_t ntokens;
	char *attr_key[MAX_ATTRS];	/* "<attestor type>.<attribute>" */
	char *attr_glob[MAX_ATTRS];
	size_t nattrs;
	char *policy;		/* glob on the identity's policy, or NULL */
	char *cluster;		/* glob on the identity's cluster, or NULL */
	char role[32];
	char *hostname;		/* naming pattern or NULL */
	int64_t max_per_hour;
};

struct att_auto_rules {
	struct rule r[MAX_RULES];
	size_t n;
};

#define ERR(...) (snprintf(reterr, errlen, __VA_ARGS__), ATT_E_INVAL)

void att_auto_rules_free(struct att_auto_rules *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->r[i].hw_product);
		free(rs->r[i].desired_role);
		free(rs->r[i].ek_manufacturer);
		free(rs->r[i].hostname);
		free(rs->r[i].policy);
		free(rs->r[i].cluster);
		for (size_t j = 0; j < rs->r[i].nattrs; j++) {
			free(rs->r[i].attr_key[j]);
			free(rs->r[i].attr_glob[j]);
		}
	}
	free(rs);
}

size_t att_auto_rules_count(const struct att_auto_rules *rs)
{
	return rs ? rs->n : 0;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32 || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* Only the listed keys, each a string (or the given type). */
static int only_keys(json_t *o, const char *const *keys, const char *where, char *reterr, size_t errlen)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		bool known = false;

		(void)v;
		for (size_t i = 0; keys[i]; i++)
			known = known || strcmp(k, keys[i]) == 0;
		if (!known)
			return ERR("%s: unknown field '%.40s'", where, k);
	}
	return 0;
}

static int opt_str(json_t *o, const char *key, size_t max, char **ret, const char *where, char *reterr, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*ret = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
		return ERR("%s.%s: a non-empty string of at most %zu characters", where, key, max);
	*ret = att_strdup(json_string_value(v));
	return *ret ? 0 : ATT_E_NOMEM;
}

static int parse_tokens(json_t *v, struct rule *r, const char *where, char *reterr, size_t errlen)
{
	size_t i;
	json_t *t;

	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > MAX_TOKENS)
		return ERR("%s.registration_token_sha256: a list of 1-%d SHA-256 hex digests (sha256sum of the token)", where,
			   MAX_TOKENS);
	json_array_foreach(v, i, t) {
		const char *h = json_string_value(t);

		if (!h || strlen(h) != 64 || !att_is_hex(h, 64))
			return ERR("%s.registration_token_sha256[%zu]: 64 hex digits", where, i);
		for (size_t j = 0; j < 64; j++)
			r->tokens[i][j] = (char)(h[j] >= 'A' && h[j] <= 'F' ? h[j] + 32 : h[j]);
		r->tokens[i][64] = 0;
	}
	r->ntokens = json_array_size(v);
	return 0;
}

/* "<attestor type>.<attribute>": a known type, then [A-Za-z0-9_.-]. */
static bool attr_key_ok(const char *k)
{
	const char *dot = strchr(k, '.');
	char type[33];

	if (!dot || dot == k || (size_t)(dot - k) >= sizeof(type) || !dot[1] || strlen(k) > 128)
		return false;
	snprintf(type, sizeof(type), "%.*s", (int)(dot - k), k);
	if (!att_agent_attestor_known(type))
		return false;
	for (const char *p = dot + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '.' || *p == '-'))
			return false;
	return true;
}

static int parse_attrs(json_t *v, struct rule *r, const char *where, char *reterr, size_t errlen)
{
	const char *k;
	json_t *g;

	if (!json_is_object(v) || json_object_size(v) == 0 || json_object_size(v) > MAX_ATTRS)
		return ERR("%s.attributes: an object of 1-%d \"<attestor type>.<attribute>\": \"<glob>\" pairs", where,
			   MAX_ATTRS);
	json_object_foreach(v, k, g) {
		if (!attr_key_ok(k))
			return ERR("%s.attributes.%.64s: not <attestor type>.<attribute> with a known attestor type (e.g. k8s_token.namespace)",
				   where, k);
		if (!json_is_string(g) || json_string_length(g) == 0 || json_string_length(g) > 256)
			return ERR("%s.attributes.%s: a non-empty string of at most 256 characters (a glob)", where, k);
		r->attr_key[r->nattrs] = att_strdup(k);
		r->attr_glob[r->nattrs] = att_strdup(json_string_value(g));
		r->nattrs++;	/* freed with the rule either way */
		if (!r->attr_key[r->nattrs - 1] || !r->attr_glob[r->nattrs - 1])
			return ATT_E_NOMEM;
	}
	return 0;
}

static int parse_match(json_t *m, struct rule *r, const char *where, char *reterr, size_t errlen)
{
	static const char *const keys[] = { "via", "hw_product", "desired_role", "ek_verdict", "ek_manufacturer",
					    "registration_token_sha256", "attributes", "policy", "cluster", NULL };
	const char *via = json_string_value(json_object_get(m, "via"));
	const char *verdict = json_string_value(json_object_get(m, "ek_verdict"));
	int rc;

	if (!json_is_object(m))
		return ERR("%s: an object", where);
	if ((rc = only_keys(m, keys, where, reterr, errlen)) < 0)
		return rc;
	if (json_object_get(m, "via") && !(via && (!strcmp(via, "any") || !strcmp(via, "register") || !strcmp(via, "self-register"))))
		return ERR("%s.via: one of register, self-register, any", where);
	r->via = !via || !strcmp(via, "any") ? VIA_ANY : !strcmp(via, "register") ? VIA_REGISTER : VIA_SELF;
	if (json_object_get(m, "ek_verdict") &&
	    !(verdict && (!strcmp(verdict, "any") || !strcmp(verdict, "verified") || !strcmp(verdict, "unverified"))))
		return ERR("%s.ek_verdict: one of verified, unverified, any", where);
	r->verdict = !verdict || !strcmp(verdict, "any") ? VERDICT_ANY
		     : !strcmp(verdict, "verified")     ? VERDICT_VERIFIED
							: VERDICT_UNVERIFIED;
	if ((rc = opt_str(m, "hw_product", 256, &r->hw_product, where, reterr, errlen)) < 0 ||
	    (rc = opt_str(m, "desired_role", 32, &r->desired_role, where, reterr, errlen)) < 0 ||
	    (rc = opt_str(m, "ek_manufacturer", 128, &r->ek_manufacturer, where, reterr, errlen)) < 0 ||
	    (rc = opt_str(m, "policy", 128, &r->policy, where, reterr, errlen)) < 0 ||
	    (rc = opt_str(m, "cluster", 64, &r->cluster, where, reterr, errlen)) < 0)
		return rc;
	if (json_object_get(m, "attributes") && (rc = parse_attrs(json_object_get(m, "attributes"), r, where, reterr, errlen)) < 0)
		return rc;
	if (r->desired_role && !att_role_valid(r->desired_role))
		return ERR("%s.desired_role: one of controlplane, worker-infra, worker-app", where);
	if (json_object_get(m, "registration_token_sha256"))
		return parse_tokens(json_object_get(m, "registration_token_sha256"), r, where, reterr, errlen);
	return 0;
}

static int parse_approve(const struct att_config *cfg, json_t *a, struct rule *r, const char *where, char *reterr,
			 size_t errlen)
{
	static const char *const keys[] = { "role", "hostname", NULL };
	const char *role = json_string_value(json_object_get(a, "role"));
	char probe[64];
	int rc;

	if (!json_is_object(a))
		return ERR("%s: an object with role (and hostname)", where);
	if ((rc = only_keys(a, keys, where, reterr, errlen)) < 0)
		return rc;
	if (!role || !att_role_valid(role))
		return ERR("%s.role: required, one of controlplane, worker-infra, worker-app", where);
	if (att_strlist_contains(&cfg->dual_control_roles, role))
		return ERR("%s.role: '%s' is under dual control (ITL_DUAL_CONTROL_ROLES) — it is never approved automatically",
			   where, role);
	snprintf(r->role, sizeof(r->role), "%s", role);
	if ((rc = opt_str(a, "hostname", 128, &r->hostname, where, reterr, errlen)) < 0)
		return rc;
	if (r->hostname) {
		struct att_machine m = { 0 };

		M(&m, MACHINE_ID) = (char *)"01234567-89ab-4def-8000-000000000000";
		M(&m, HW_SERIAL) = (char *)"serial";
		M(&m, HW_UUID) = (char *)"uuid";
		M(&m, HW_MAC) = (char *)"52:54:00:00:00:01";
		if (att_auto_hostname_expand(r->hostname, &m, probe) < 0)
			return ERR("%s.hostname: the pattern does not yield a hostname (placeholders: {id8} {machine_id} {serial} {mac} {uuid})",
				   where);
	}
	return 0;
}

static bool rule_needs_identity(const struct rule *r)
{
	return r->nattrs || r->policy || r->cluster;
}

static int parse_rule(const struct att_config *cfg, json_t *o, size_t idx, struct rule *r, char *reterr, size_t errlen)
{
	static const char *const keys[] = { "name", "match", "approve", "max_per_hour", "allow_unauthenticated", NULL };
	const char *name = json_string_value(json_object_get(o, "name"));
	json_t *mph = json_object_get(o, "max_per_hour"), *unauth = json_object_get(o, "allow_unauthenticated");
	char where[64];
	int rc;

	if (!json_is_object(o))
		return ERR("rules[%zu]: an object", idx);
	if (!name || !name_ok(name))
		return ERR("rules[%zu].name: required, 1-32 of [a-z0-9-]", idx);
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(where, sizeof(where), "rule '%s'", name);
	if ((rc = only_keys(o, keys, where, reterr, errlen)) < 0)
		return rc;
	snprintf(where, sizeof(where), "rule '%s' match", name);
	if ((rc = parse_match(json_object_get(o, "match") ? json_object_get(o, "match") : json_object(), r, where, reterr,
			      errlen)) < 0)
		return rc;
	snprintf(where, sizeof(where), "rule '%s' approve", name);
	if ((rc = parse_approve(cfg, json_object_get(o, "approve"), r, where, reterr, errlen)) < 0)
		return rc;
	if (mph && (!json_is_integer(mph) || json_integer_value(mph) < 1 || json_integer_value(mph) > 100000))
		return ERR("rule '%s' max_per_hour: an integer 1-100000", name);
	r->max_per_hour = mph ? (int64_t)json_integer_value(mph) : 60;
	if (unauth && !json_is_boolean(unauth))
		return ERR("rule '%s' allow_unauthenticated: true or false", name);
	if (!r->ntokens && r->verdict != VERDICT_VERIFIED && !rule_needs_identity(r) && !json_is_true(unauth))
		return ERR("rule '%s': matches only on what a client claims — require registration_token_sha256, ek_verdict \"verified\" or agent identity attributes, or set allow_unauthenticated: true",
			   name);
	return 0;
}

int att_auto_rules_parse(const struct att_config *cfg, const char *text, size_t len, struct att_auto_rules **ret,
			 char *reterr, size_t errlen)
{
	json_error_t je;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je), *arr;
	struct att_auto_rules *rs = NULL;
	size_t i;
	json_t *o;
	int rc = 0;

	*ret = NULL;
	if (!doc)
		return ERR("not valid JSON (line %d: %s)", je.line, je.text);
	arr = json_object_get(doc, "rules");
	if (!json_is_object(doc) || json_object_size(doc) != 1 || !json_is_array(arr) || json_array_size(arr) > MAX_RULES) {
		json_decref(doc);
		return ERR("expected {\"rules\": [...]} with at most %d rules", MAX_RULES);
	}
	rs = calloc(1, sizeof(*rs));
	if (!rs) {
		json_decref(doc);
		return ATT_E_NOMEM;
	}
	json_array_foreach(arr, i, o) {
		rs->n = i + 1;
		if ((rc = parse_rule(cfg, o, i, &rs->r[i], reterr, errlen)) < 0)
			break;
		for (size_t j = 0; j < i && rc == 0; j++)
			if (strcmp(rs->r[j].name, rs->r[i].name) == 0)
				rc = ERR("rule '%s': the name is used twice", rs->r[i].name);
		if (rc < 0)
			break;
	}
	json_decref(doc);
	if (rc < 0) {
		att_auto_rules_free(rs);
		return rc;
	}
	*ret = rs;
	return 0;
}

static int webhook_check(const struct att_config *cfg, char *reterr, size_t errlen)
{
	const char *u = cfg->auto_approve_webhook_url;

	if (!u[0])
		return 0;
	if (strncmp(u, "https://", 8) != 0 && !(cfg->auto_approve_webhook_allow_http && strncmp(u, "http://", 7) == 0))
		return ERR("ITL_AUTO_APPROVE_WEBHOOK_URL: must be an https:// URL (http:// only with ITL_AUTO_APPROVE_WEBHOOK_ALLOW_HTTP=true)");
	if (strlen(cfg->auto_approve_webhook_secret) < 16)
		return ERR("ITL_AUTO_APPROVE_WEBHOOK_SECRET: required with ITL_AUTO_APPROVE_WEBHOOK_URL, at least 16 characters");
	return 0;
}

static int read_text(const char *path, char **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	struct att_buf b;
	char chunk[4096];
	size_t n;
	int rc = 0;

	if (!f)
		return ATT_E_IO;
	att_buf_init(&b, 1024 * 1024);
	while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = att_buf_append(&b, chunk, n);
	if (rc == 0 && ferror(f))
		rc = ATT_E_IO;
	fclose(f);
	if (rc < 0) {
		att_buf_release(&b);
		return rc;
	}
	if (!b.p) {
		*ret_len = 0;
		*ret = att_strdup("");
	} else {
		*ret = att_buf_steal(&b, ret_len);
	}
	return *ret ? 0 : ATT_E_NOMEM;
}

int att_auto_rules_load(const struct att_config *cfg, struct att_auto_rules **ret, char *reterr, size_t errlen)
{
	const char *path = cfg->auto_approve_rules_file;
	char *text = NULL, why[400];
	size_t len = 0;
	int rc;

	*ret = NULL;
	if ((rc = webhook_check(cfg, reterr, errlen)) < 0 || !path[0])
		return rc;
	rc = read_text(path, &text, &len);
	if (rc < 0)
		return ERR("ITL_AUTO_APPROVE_RULES_FILE: cannot read %s: %s", path, att_strerror(rc));
	rc = att_auto_rules_parse(cfg, text, len, ret, why, sizeof(why));
	free(text);
	if (rc < 0)
		return ERR("ITL_AUTO_APPROVE_RULES_FILE %s: %s", path, why);
	return 0;
}

/* ---- matching ------------------------------------------------------------------ */

static bool glob_ok(const char *pattern, const char *v)
{
	return !pattern || (v && fnmatch(pattern, v, 0) == 0);
}

/* An attribute value (string, number, boolean, or a list of them: any
 * element) against a glob. */
static bool attr_matches(const char *glob, const json_t *v)
{
	char num[32];

	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			if (!json_is_array(json_array_get(v, i)) && attr_matches(glob, json_array_get(v, i)))
				return true;
		return false;
	}
	if (json_is_string(v))
		return fnmatch(glob, json_string_value(v), 0) == 0;
	if (json_is_integer(v))
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(num, sizeof(num), "%s", json_is_true(v) ? "true" : "false");
	else
		return false;
	return fnmatch(glob, num, 0) == 0;
}

static bool identity_matches(const struct rule *r, const json_t *id)
{
	const json_t *attrs = json_object_get(id, "attrs");

	if (!rule_needs_identity(r))
		return true;
	if (!id)
		return false;
	if (!glob_ok(r->policy, json_string_value(json_object_get(id, "policy"))) ||
	    !glob_ok(r->cluster, json_string_value(json_object_get(id, "cluster"))))
		return false;
	for (size_t i = 0; i < r->nattrs; i++) {
		const json_t *v = json_object_get(attrs, r->attr_key[i]);

		if (!v || !attr_matches(r->attr_glob[i], v))
			return false;
	}
	return true;
}

static bool rule_matches(const struct rule *r, const struct att_machine *m, const struct att_auto_context *ctx)
{
	const char *verified = M(m, EK_VERIFIED);
	bool ok_token = r->ntokens == 0;

	if ((r->via == VIA_SELF && !ctx->self_register) || (r->via == VIA_REGISTER && ctx->self_register))
		return false;
	if (r->verdict == VERDICT_VERIFIED && !(verified && strcmp(verified, "1") == 0))
		return false;
	if (r->verdict == VERDICT_UNVERIFIED && verified && strcmp(verified, "1") == 0)
		return false;
	if (!glob_ok(r->hw_product, M(m, HW_PRODUCT)) || !glob_ok(r->ek_manufacturer, M(m, EK_MANUFACTURER)))
		return false;
	if (r->desired_role && strcmp(r->desired_role, M(m, ROLE)) != 0)
		return false;
	for (size_t i = 0; i < r->ntokens && !ok_token; i++)
		ok_token = ctx->token_sha256 && att_ct_equal(r->tokens[i], 64, ctx->token_sha256, strlen(ctx->token_sha256));
	return ok_token && identity_matches(r, ctx->identity);
}

int att_auto_rules_match(const struct att_auto_rules *rs, const struct att_machine *m, const struct att_auto_context *ctx)
{
	for (size_t i = 0; rs && i < rs->n; i++)
		if (rule_matches(&rs->r[i], m, ctx))
			return (int)i;
	return -1;
}

const char *att_auto_rule_name(const struct att_auto_rules *rs, int i)
{
	return rs->r[i].name;
}

const char *att_auto_rule_role(const struct att_auto_rules *rs, int i)
{
	return rs->r[i].role;
}

int64_t att_auto_rule_max_per_hour(const struct att_auto_rules *rs, int i)
{
	return rs->r[i].max_per_hour;
}

bool att_auto_rule_uses_identity(const struct att_auto_rules *rs, int i)
{
	return rule_needs_identity(&rs->r[i]);
}

void att_auto_rule_identity_detail(const struct att_auto_rules *rs, int i, const json_t *id, char *out, size_t outlen)
{
	const struct rule *r = &rs->r[i];
	const json_t *attrs = json_object_get(id, "attrs");
	size_t n;

	n = (size_t)snprintf(out, outlen, "identity jti=%s sub=%.200s cluster=%.64s policy=%.64s",
			     json_string_value(json_object_get(id, "jti")), json_string_value(json_object_get(id, "sub")),
			     json_string_value(json_object_get(id, "cluster")), json_string_value(json_object_get(id, "policy")));
	for (size_t k = 0; k < r->nattrs && n < outlen; k++) {
		const json_t *v = json_object_get(attrs, r->attr_key[k]);
		char *js = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		n += (size_t)snprintf(out + n, outlen - n, " %s=%.96s", r->attr_key[k], js ? js : "?");
		free(js);
	}
}

int att_auto_rule_hostname(const struct att_auto_rules *rs, int i, const struct att_machine *m, char out[64])
{
	out[0] = 0;
	return rs->r[i].hostname ? att_auto_hostname_expand(rs->r[i].hostname, m, out) : 0;
}

/* ---- naming --------------------------------------------------------------------- */

static void put_clean(char *out, size_t *n, const char *v, size_t max_take, bool skip_colons)
{
	for (size_t i = 0; v && v[i] && i < max_take && *n < 63; i++) {
		char ch = v[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch + 32);
		if (ch == ':' && skip_colons)	/* {mac}: digits only */
			continue;
		out[(*n)++] = ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) ? ch : '-';
	}
}

int att_auto_hostname_expand(const char *p, const struct att_machine *m, char out[64])
{
	size_t n = 0;

	while (*p && n < 63) {
		if (*p != '{') {
			put_clean(out, &n, (char[2]){ *p, 0 }, 1, false);
			p++;
			continue;
		}
		if (!strncmp(p, "{id8}", 5))
			put_clean(out, &n, M(m, MACHINE_ID), 8, false), p += 5;
		else if (!strncmp(p, "{machine_id}", 12))
			put_clean(out, &n, M(m, MACHINE_ID), 63, false), p += 12;
		else if (!strncmp(p, "{serial}", 8))
			put_clean(out, &n, M(m, HW_SERIAL), 63, false), p += 8;
		else if (!strncmp(p, "{uuid}", 6))
			put_clean(out, &n, M(m, HW_UUID), 63, false), p += 6;
		else if (!strncmp(p, "{mac}", 5))
			put_clean(out, &n, M(m, HW_MAC), 63, true), p += 5;
		else
			return ATT_E_INVAL;
	}
	out[n] = 0;
	while (n && out[n - 1] == '-')
		out[--n] = 0;
	return n && out[0] != '-' && att_valid_hostname(out) ? 0 : ATT_E_INVAL;
}
