/* pcr_policy.c - per-role PCR policies ({"sha256:7": ["<hex>", ...]}):
 * validation and normalization, list/get/put/delete (audited), and the
 * check of quoted PCR values against a policy that attest.c gates the
 * config token on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/text.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"
#include "obs/log.h"
#include "tpm/tpm.h"

#define ERR(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))

#define MAX_POLICY_PCRS 48
#define MAX_POLICY_VALUES 16

static int pcr_policy_validate(const json_t *pcrs, json_t **ret_normalized, char *reterr, size_t errlen)
{
	json_t *out;
	const char *key;
	json_t *val;

	if (!json_is_object(pcrs) || json_object_size(pcrs) == 0)
		return ERR(ATT_E_INVAL, "pcrs: must be an object like {\"sha256:7\": \"<hex>\"} with at least one PCR");
	if (json_object_size(pcrs) > MAX_POLICY_PCRS)
		return ERR(ATT_E_INVAL, "pcrs: at most %d PCRs", MAX_POLICY_PCRS);
	out = json_object();
	if (!out)
		return ATT_E_NOMEM;
	json_object_foreach((json_t *)pcrs, key, val) {
		struct att_tpm_pcrs probe;
		json_t *arr = json_array();
		char canon[16];
		size_t n = json_is_array(val) ? json_array_size(val) : 1;

		if (!arr)
			goto nomem;
		if (!json_is_string(val) && !(json_is_array(val) && n >= 1 && n <= MAX_POLICY_VALUES)) {
			json_decref(arr);
			json_decref(out);
			return ERR(ATT_E_INVAL, "pcrs: '%.*s' must be a hex digest or an array of 1..%d hex digests",
				   (int)att_utf8_cut(key, 32), key,
				   MAX_POLICY_VALUES);
		}
		for (size_t i = 0; i < n; i++) {
			json_t *v = json_is_array(val) ? json_array_get(val, i) : val;
			char low[129];
			size_t l;
			int r;

			memset(&probe, 0, sizeof(probe));
			if (!json_is_string(v) || (l = json_string_length(v)) >= sizeof(low)) {
				json_decref(arr);
				json_decref(out);
				return ERR(ATT_E_INVAL, "pcrs: '%.*s' values must be hex strings",
					   (int)att_utf8_cut(key, 32), key);
			}
			for (size_t k = 0; k <= l; k++) {
				char ch = json_string_value(v)[k];

				low[k] = (char)(ch >= 'A' && ch <= 'F' ? ch - 'A' + 'a' : ch);
			}
			r = att_tpm_pcrs_add(&probe, key, low, reterr, errlen);
			if (r < 0) {
				json_decref(arr);
				json_decref(out);
				{
					/* same detail, naming the policy field */
					char tmp[256];

					snprintf(tmp, sizeof(tmp), "pcrs: %s",
						 strncmp(reterr, "pcr_values: ", 12) == 0 ? reterr + 12 : reterr);
					snprintf(reterr, errlen, "%s", tmp);
				}
				return r;
			}
			json_array_append_new(arr, json_string(low));
		}
		snprintf(canon, sizeof(canon), "%s:%u", att_tpm_bank_name(probe.v[0].bank), probe.v[0].index);
		if (json_object_get(out, canon)) {
			json_decref(arr);
			json_decref(out);
			return ERR(ATT_E_INVAL, "pcrs: PCR %s is given twice", canon);
		}
		json_object_set_new(out, canon, arr);
	}
	*ret_normalized = out;
	return 0;
nomem:
	json_decref(out);
	return ATT_E_NOMEM;
}

static json_t *policy_row(struct att_stmt *s)
{
	json_t *pcrs = json_loads(att_stmt_text(s, 1), 0, NULL);

	return json_pack("{s:s,s:o,s:s,s:s}", "role", att_stmt_text(s, 0), "pcrs", pcrs ? pcrs : json_object(),
			 "updated_at", att_stmt_text(s, 2), "updated_by", att_stmt_text(s, 3));
}

static int policy_query(const struct att_svc *svc, const char *role, json_t **ret, char *reterr, size_t errlen)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_stmt *s;
	json_t *arr = json_array();
	int r;

	if (!c || !arr) {
		json_decref(arr);
		if (c)
			att_db_release(svc->db, c);
		return att_machine_db_fail(c ? ATT_E_NOMEM : ATT_E_DB, reterr, errlen);
	}
	r = role ? att_dbc_query(c, &s, "SELECT role, policy, updated_at, updated_by FROM pcr_policies WHERE role = ?",
				 "s", role)
		 : att_dbc_query(c, &s, "SELECT role, policy, updated_at, updated_by FROM pcr_policies ORDER BY role", "");
	if (r == 0) {
		while ((r = att_stmt_next(s)) == 1)
			json_array_append_new(arr, policy_row(s));
		att_stmt_done(s);
	}
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(arr);
		return att_machine_db_fail(r, reterr, errlen);
	}
	*ret = arr;
	return 0;
}

int att_pcr_policy_list(const struct att_svc *svc, json_t **ret, char *reterr, size_t errlen)
{
	return policy_query(svc, NULL, ret, reterr, errlen);
}

int att_pcr_policy_get(const struct att_svc *svc, const char *role, json_t **ret, char *reterr,
		       size_t errlen)
{
	json_t *arr;
	int r = policy_query(svc, role, &arr, reterr, errlen);

	if (r < 0)
		return r;
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return ERR(ATT_E_NOTFOUND, "No PCR policy for role '%s'", role);
	}
	*ret = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	return 0;
}

/* Set (js) or delete (js NULL) the role's policy and audit that, in one
 * transaction.  Deleting a policy that does not exist is ATT_E_NOTFOUND.
 * detail: NULL when it could not be allocated. */
static int policy_write(const struct att_svc *svc, const char *role, const char *js, const char *action,
			const char *detail, const struct att_actor *actor, char *reterr, size_t errlen)
{
	struct att_dbc *c;
	char ts[32];
	int r;

	r = att_machine_tx_begin(svc, &c, reterr, errlen);
	if (r < 0)
		return r;
	att_time_iso(att_now(), ts);
	r = detail ? att_dbc_exec(c, "DELETE FROM pcr_policies WHERE role = ?", "s", role) : ATT_E_NOMEM;
	if (r == 0 && !js)
		return att_machine_tx_end(svc, c, ERR(ATT_E_NOTFOUND, "No PCR policy for role '%s'", role), reterr,
					  errlen);
	if (r >= 0 && js)
		r = att_dbc_exec(c, "INSERT INTO pcr_policies (role, policy, updated_at, updated_by) VALUES (?, ?, ?, ?)",
				 "ssss", role, js, ts, actor->name);
	if (r >= 0)
		r = att_audit_append(c, actor->name, action, NULL, NULL, NULL, detail, actor->source_ip);
	if (r < 0)
		r = att_machine_db_fail(r, reterr, errlen);
	return att_machine_tx_end(svc, c, r, reterr, errlen);
}

int att_pcr_policy_put(const struct att_svc *svc, const char *role, const json_t *pcrs,
		       const char *reason, const struct att_actor *actor, json_t **ret, char *reterr,
		       size_t errlen)
{
	json_t *norm = NULL;
	char *js, *detail;
	int r;

	if (!att_role_valid(role))
		return ERR(ATT_E_INVAL, "role: must be one of controlplane, worker-infra, worker-app");
	r = pcr_policy_validate(pcrs, &norm, reterr, errlen);
	if (r < 0)
		return r;
	js = json_dumps(norm, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(norm);
	if (!js)
		return ATT_E_NOMEM;
	detail = att_asprintf("PCR policy for role %s set to %s%s%s", role, js, reason ? "; reason: " : "",
			      reason ? reason : "");
	r = policy_write(svc, role, js, "pcr_policy_set", detail, actor, reterr, errlen);
	free(js);
	free(detail);
	if (r < 0)
		return r;
	att_log_info(LOGT, "PCR policy for role %s set by %s", role, actor->name);
	return att_pcr_policy_get(svc, role, ret, reterr, errlen);
}

int att_pcr_policy_delete(const struct att_svc *svc, const char *role, const char *reason,
			  const struct att_actor *actor, char *reterr, size_t errlen)
{
	char *detail = att_asprintf("PCR policy for role %s deleted%s%s", role, reason ? "; reason: " : "",
				    reason ? reason : "");
	int r = policy_write(svc, role, NULL, "pcr_policy_deleted", detail, actor, reterr, errlen);

	free(detail);
	return r;
}

int att_pcr_policy_check(const json_t *pcrs, const char *role, const struct att_tpm_pcrs *quoted,
			 char *reterr, size_t errlen)
{
	const char *key;
	json_t *vals;
	size_t used;
	int fails = 0;

	used = (size_t)snprintf(reterr, errlen, "PCR policy for role '%s' not satisfied:", role);
	json_object_foreach((json_t *)pcrs, key, vals) {
		const char *colon = strchr(key, ':');
		uint16_t bank = colon ? att_tpm_bank_alg(key, (size_t)(colon - key)) : 0;
		unsigned idx = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
		const uint8_t *got;
		size_t glen = 0, i;
		char hex[129];

		got = att_tpm_pcrs_find(quoted, bank, idx, &glen);
		if (!got) {
			fails++;
			if (used < errlen)
				used += (size_t)snprintf(reterr + used, errlen - used, "%s %s not in the quote",
							 fails > 1 ? ";" : "", key);
			continue;
		}
		att_hex_encode(got, glen, hex);
		for (i = 0; i < json_array_size(vals); i++)
			if (strcmp(json_string_value(json_array_get(vals, i)), hex) == 0)
				break;
		if (i < json_array_size(vals))
			continue;
		fails++;
		if (used < errlen)
			used += (size_t)snprintf(reterr + used, errlen - used, "%s %s is %.16s..., expected %.16s...%s",
						 fails > 1 ? ";" : "", key, hex,
						 json_string_value(json_array_get(vals, 0)),
						 json_array_size(vals) > 1 ? " (or another allowed value)" : "");
	}
	return fails ? ATT_E_INVAL : 0;
}
