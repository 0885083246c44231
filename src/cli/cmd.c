/* cmd.c - `attestation machine ...` and `attestation audit ...`. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "audit/audit.h"
#include "base/text.h"
#include "base/util.h"
#include "cli.h"

static const char machine_usage[] =
	"Usage: attestation machine COMMAND [options]\n"
	"\n"
	"  list [--status S] [--role R]          Machines (status: pending_approval, registered,\n"
	"                                        attested, locked, revoked)\n"
	"  get ID                                One machine in detail\n"
	"  approve ID --role R [--hostname H] [--assigned-ip CIDR] [--reason TEXT]\n"
	"                                        Approve (under dual control: cast a vote)\n"
	"  lock ID [--reason TEXT]               Lock: the next attestation answers action=lock\n"
	"  unlock ID                             Unlock a locked machine\n"
	"  revoke ID [--wipe] [--reason TEXT]    Revoke, optionally wiping on next contact\n"
	"  approvals ID                          Dual-control votes for the machine\n"
	"  bundle ID [--file PATH] [--include-key]\n"
	"                                        Offline bundle (JSON; written to PATH or stdout;\n"
	"                                        the enrollment key only with --include-key, audited)\n"
	"  bundle ID --output FILE.tar.gz        Signed air-gap bundle (archive; docs/airgap.md)\n"
	"  import FILE                           Import a TPM receipt (JSON) or a signed air-gap\n"
	"                                        bundle (.tar.gz); '-' reads stdin\n"
	"  certs ID                              The machine's certificates (attestation cert list)\n"
	"\n"
	"Every command takes --output table|json.\n";

static const char audit_usage[] =
	"Usage: attestation audit COMMAND [options]\n"
	"\n"
	"  list [--machine-id ID] [--action A] [--page N] [--per-page N] [--all]\n"
	"                 Audit entries, newest first (--all fetches every page)\n"
	"  verify [--checkpoint FILE --enrollment-ca CA.crt [--tsa-ca TSA-CA.pem]]\n"
	"                 Fetch the whole log and recompute the hash chain locally;\n"
	"                 exit 1 when any entry does not link or recompute, or when\n"
	"                 the log does not extend the signed checkpoint FILE\n"
	"                 (cut back to an earlier state, or rewritten)\n"
	"  checkpoint create|get|list\n"
	"                 Signed checkpoints of the log (see 'audit checkpoint --help')\n"
	"  report ID [--file PATH]\n"
	"                 The machine's signed PDF audit report (default file\n"
	"                 machine-audit-ID-YYYYMMDD.pdf; '-' writes to stdout)\n"
	"\n"
	"Every command takes --output table|json.\n";

static const struct col machine_cols[] = {
	{ "MACHINE ID", "machine_id", 0 }, { "STATUS", "status", 0 },
	{ "ROLE", "role", 0 },		   { "HOSTNAME", "hostname", 0 },
	{ "IP", "assigned_ip", 0 },	   { "EK FINGERPRINT", "ek_fingerprint", 16 },
	{ "REGISTERED", "registered_at", 19 },
};

static const char *const machine_keys[] = {
	"machine_id", "status", "role", "hostname", "assigned_ip", "ek_fingerprint", "ek_source",
	"ek_key_type", "ek_issuer", "ek_verified", "ek_manufacturer", "ek_model", "hw_uuid", "hw_mac",
	"hw_serial", "hw_product", "cluster_id", "registered_at", "approved_at", "attested_at",
	"config_delivered_at", "locked_at", "revoked_at", "wipe_pending", "ak_bound", "ak_bound_at",
	"last_quote_at", "tpm_reset_count",
};

static const struct col approval_cols[] = {
	{ "ID", "id", 0 },	       { "OPERATOR", "operator_cn", 0 }, { "ROLE", "role", 0 },
	{ "HOSTNAME", "hostname", 0 }, { "IP", "assigned_ip", 0 },	 { "CREATED", "created_at", 19 },
	{ "EXPIRES", "expires_at", 19 }, { "CONSUMED", "consumed", 0 },	 { "REASON", "reason", 40 },
};

static const struct col audit_cols[] = {
	{ "ID", "id", 0 },	       { "TIMESTAMP", "timestamp", 19 }, { "OPERATOR", "operator_cn", 0 },
	{ "ACTION", "action", 0 },     { "MACHINE", "machine_id", 0 },	 { "STATE", "new_state", 0 },
	{ "DETAIL", "detail", 60 },
};

static char *esc(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *r = e ? strdup(e) : NULL;

	curl_free(e);
	return r;
}

static bool id_ok(const char *id)
{
	if (!id || !*id || strlen(id) > 64) {
		fprintf(stderr, "Error: a machine ID is required (see --help)\n");
		return false;
	}
	return true;
}

static void print_machine(const struct cli *c, const json_t *m)
{
	if (c->json)
		out_json(m);
	else
		out_kv(m, machine_keys, ATT_ARRAY_SIZE(machine_keys));
}

static int m_list(struct cli *c, int argc, char **argv)
{
	const char *status = NULL, *role = NULL;
	const struct opt o[] = { { "status", 0, true, &status, NULL }, { "role", 0, true, &role, NULL } };
	char *pos[1], *path, *es = NULL, *er = NULL;
	json_t *j = NULL;
	int ex;

	if (parse_opts("machine list", argc, argv, o, 2, pos, 0) < 0)
		return EX_USAGE;
	if (status)
		es = esc(status);
	if (role)
		er = esc(role);
	path = att_asprintf("/api/v1/machines%s%s%s%s%s", es || er ? "?" : "", es ? "status=" : "", es ? es : "",
			    es && er ? "&" : "", er ? "role=" : "");
	if (path && er) {
		char *p2 = att_asprintf("%s%s", path, er);

		free(path);
		path = p2;
	}
	free(es);
	free(er);
	if (!path)
		return EX_ERR;
	ex = cli_api(c, "GET", path, NULL, &j, NULL);
	free(path);
	if (ex == 0) {
		if (c->json)
			out_json(j);
		else if (json_array_size(j) == 0)
			printf("No machines%s%s.\n", status ? " with status " : "", status ? status : "");
		else
			out_table(j, machine_cols, ATT_ARRAY_SIZE(machine_cols));
	}
	json_decref(j);
	return ex;
}

static int one_id(const char *cmd, int argc, char **argv, const struct opt *o, size_t no, const char **id)
{
	char *pos[1] = { NULL };
	int n = parse_opts(cmd, argc, argv, o, no, pos, 1);

	if (n < 0)
		return EX_USAGE;
	*id = pos[0];
	return id_ok(*id) ? 0 : EX_USAGE;
}

static int simple_get(struct cli *c, const char *fmt, const char *id, json_t **j)
{
	char *e = esc(id), *path = e ? att_asprintf(fmt, e) : NULL;
	int ex = path ? cli_api(c, "GET", path, NULL, j, NULL) : EX_ERR;

	free(e);
	free(path);
	return ex;
}

static int m_get(struct cli *c, int argc, char **argv)
{
	const char *id;
	json_t *j = NULL;
	int ex = one_id("machine get", argc, argv, NULL, 0, &id);

	if (ex)
		return ex;
	ex = simple_get(c, "/api/v1/machines/%s", id, &j);
	if (ex == 0 && c->json) {
		/* the seeds read `machine get ID --output json | jq .approvals` */
		json_t *votes = NULL;

		ex = simple_get(c, "/api/v1/machines/%s/approvals", id, &votes);
		if (ex == 0)
			json_object_set_new(j, "approvals", votes ? votes : json_array());
	}
	if (ex == 0)
		print_machine(c, j);
	json_decref(j);
	return ex;
}

static int post_action(struct cli *c, const char *id, const char *action, json_t *body, json_t **j, long *st)
{
	char *e = esc(id), *path = e ? att_asprintf("/api/v1/machines/%s/%s", e, action) : NULL;
	int ex = path ? cli_api(c, "POST", path, body, j, st) : EX_ERR;

	free(e);
	free(path);
	return ex;
}

static int m_approve(struct cli *c, int argc, char **argv)
{
	const char *id, *role = NULL, *host = NULL, *ip = NULL, *reason = NULL;
	const struct opt o[] = {
		{ "role", 0, true, &role, NULL },
		{ "hostname", 0, true, &host, NULL },
		{ "assigned-ip", 0, true, &ip, NULL },
		{ "reason", 0, true, &reason, NULL },
	};
	json_t *body, *j = NULL;
	long st = 0;
	int ex = one_id("machine approve", argc, argv, o, 4, &id);

	if (ex)
		return ex;
	if (!role) {
		fprintf(stderr, "attestation machine approve: --role is required (controlplane, worker-infra, worker-app)\n");
		return EX_USAGE;
	}
	body = json_pack("{s:s}", "role", role);
	if (host)
		json_object_set_new(body, "hostname", json_string(host));
	if (ip)
		json_object_set_new(body, "assigned_ip", json_string(ip));
	if (reason)
		json_object_set_new(body, "reason", json_string(reason));
	ex = post_action(c, id, "approve", body, &j, &st);
	json_decref(body);
	if (ex == 0) {
		if (c->json)
			out_json(j);
		else if (st == 202)
			printf("Vote recorded for %s: %lld of %lld approvals (by %s). Another operator must approve before %s.\n",
			       id, (long long)json_integer_value(json_object_get(j, "approvals_received")),
			       (long long)json_integer_value(json_object_get(j, "approvals_required")),
			       jstr(j, "operator_cn") ? jstr(j, "operator_cn") : "you",
			       jstr(j, "expires_at") ? jstr(j, "expires_at") : "the window closes");
		else
			print_machine(c, j);
	}
	json_decref(j);
	return ex;
}

static int m_state(struct cli *c, int argc, char **argv, const char *action)
{
	const char *id, *reason = NULL;
	bool wipe = false;
	const struct opt o[] = { { "reason", 0, true, &reason, NULL }, { "wipe", 0, false, NULL, &wipe } };
	size_t no = strcmp(action, "revoke") == 0 ? 2 : strcmp(action, "lock") == 0 ? 1 : 0;
	char cmd[32];
	json_t *body = json_object(), *j = NULL;
	int ex;

	snprintf(cmd, sizeof(cmd), "machine %s", action);
	ex = one_id(cmd, argc, argv, o, no, &id);
	if (ex) {
		json_decref(body);
		return ex;
	}
	if (reason)
		json_object_set_new(body, "reason", json_string(reason));
	if (wipe)
		json_object_set_new(body, "wipe", json_true());
	ex = post_action(c, id, action, strcmp(action, "unlock") == 0 ? NULL : body, &j, NULL);
	json_decref(body);
	if (ex == 0)
		print_machine(c, j);
	json_decref(j);
	return ex;
}

static int m_approvals(struct cli *c, int argc, char **argv)
{
	const char *id;
	json_t *j = NULL;
	int ex = one_id("machine approvals", argc, argv, NULL, 0, &id);

	if (ex)
		return ex;
	ex = simple_get(c, "/api/v1/machines/%s/approvals", id, &j);
	if (ex == 0) {
		if (c->json)
			out_json(j);
		else if (json_array_size(j) == 0)
			printf("No approval votes for %s.\n", id);
		else
			out_table(j, approval_cols, ATT_ARRAY_SIZE(approval_cols));
	}
	json_decref(j);
	return ex;
}

static int write_private(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	if (write_all(fd, data, len) < 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

int cmd_machine(struct cli *c, int argc, char **argv)
{
	const char *sub = argc ? argv[0] : "";
	int ex = group_help(argc, argv, machine_usage);

	if (ex >= 0)
		return ex;
	argc--;
	argv++;
	if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
		return m_list(c, argc, argv);
	if (strcmp(sub, "get") == 0 || strcmp(sub, "show") == 0)
		return m_get(c, argc, argv);
	if (strcmp(sub, "approve") == 0)
		return m_approve(c, argc, argv);
	if (strcmp(sub, "lock") == 0 || strcmp(sub, "unlock") == 0 || strcmp(sub, "revoke") == 0)
		return m_state(c, argc, argv, sub);
	if (strcmp(sub, "approvals") == 0)
		return m_approvals(c, argc, argv);
	if (strcmp(sub, "bundle") == 0)
		return cmd_machine_bundle(c, argc, argv);
	if (strcmp(sub, "import") == 0)
		return cmd_machine_import(c, argc, argv);
	if (strcmp(sub, "certs") == 0)
		return cmd_cert_list(c, argc, argv);
	fprintf(stderr, "attestation machine: unknown command '%s'\n\n%s", sub, machine_usage);
	return EX_USAGE;
}

/* ---- audit -------------------------------------------------------------------- */

/* Every entry, ascending by id, deduplicated (pages shift when entries are
 * appended while we read; DESC + OFFSET only ever repeats, never skips). */
static int fetch_all(struct cli *c, const char *filter, json_t **ret)
{
	json_t *all = json_array(), *byid = json_object();
	int ex = 0;

	for (int page = 1;; page++) {
		char path[512];
		json_t *j = NULL;
		size_t i;
		json_t *e;

		snprintf(path, sizeof(path), "/api/v1/audit?per_page=200&page=%d%s", page, filter ? filter : "");
		ex = cli_api(c, "GET", path, NULL, &j, NULL);
		if (ex)
			break;
		if (!json_is_array(j)) {
			fprintf(stderr, "Error: unexpected audit response\n");
			json_decref(j);
			ex = EX_ERR;
			break;
		}
		json_array_foreach(j, i, e) {
			char key[32];

			snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(json_object_get(e, "id")));
			if (!json_object_get(byid, key)) {
				json_object_set(byid, key, e);
				json_array_append(all, e);
			}
		}
		i = json_array_size(j);
		json_decref(j);
		if (i < 200)
			break;
	}
	json_decref(byid);
	if (ex) {
		json_decref(all);
		return ex;
	}
	/* reverse into ascending id order (pages come newest first) */
	{
		size_t n = json_array_size(all);
		json_t *asc = json_array();

		for (size_t i = n; i > 0; i--)
			json_array_append(asc, json_array_get(all, i - 1));
		json_decref(all);
		*ret = asc;
	}
	return 0;
}

static bool posint(const char *s)
{
	long v;

	return cli_parse_int(s, 1, 1000000000, &v);
}

static int a_list(struct cli *c, int argc, char **argv)
{
	const char *mid = NULL, *mid2 = NULL, *action = NULL, *page = NULL, *per = NULL;
	bool all = false;
	const struct opt o[] = {
		{ "machine-id", 0, true, &mid, NULL }, { "machine", 'm', true, &mid2, NULL },
		{ "action", 0, true, &action, NULL },  { "page", 0, true, &page, NULL },
		{ "per-page", 0, true, &per, NULL },   { "all", 0, false, NULL, &all },
	};
	char *pos[1], q[1024] = "", *em = NULL, *ea = NULL;
	json_t *j = NULL;
	int ex;

	if (parse_opts("audit list", argc, argv, o, ATT_ARRAY_SIZE(o), pos, 0) < 0)
		return EX_USAGE;
	if (!mid)
		mid = mid2;
	if ((page && !posint(page)) || (per && !posint(per))) {
		fprintf(stderr, "attestation audit list: --page and --per-page take positive integers\n");
		return EX_USAGE;
	}
	if (mid)
		em = esc(mid);
	if (action)
		ea = esc(action);
	if (em)
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "&machine_id=%s", em);
	if (ea)
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "&action=%s", ea);
	free(em);
	free(ea);
	if (all) {
		json_t *asc = NULL;

		ex = fetch_all(c, q, &asc);
		if (ex == 0) {
			/* newest first, like the paged listing */
			j = json_array();
			for (size_t i = json_array_size(asc); i > 0; i--)
				json_array_append(j, json_array_get(asc, i - 1));
		}
		json_decref(asc);
	} else {
		char path[1200];

		snprintf(path, sizeof(path), "/api/v1/audit?page=%s&per_page=%s%s", page ? page : "1", per ? per : "50", q);
		ex = cli_api(c, "GET", path, NULL, &j, NULL);
	}
	if (ex == 0) {
		if (c->json) {
			/* {"entries": [...]} as the seeds' `jq '.entries[]'` expects */
			json_t *w = json_pack("{s:O,s:I}", "entries", j, "count", (json_int_t)json_array_size(j));
			long pg = 1, pp = 50;

			if (page)
				(void)cli_parse_int(page, 1, 1000000000, &pg);
			if (per)
				(void)cli_parse_int(per, 1, 1000000000, &pp);
			if (!all) {
				json_object_set_new(w, "page", json_integer(pg));
				json_object_set_new(w, "per_page", json_integer(pp));
			}
			out_json(w);
			json_decref(w);
		} else if (json_array_size(j) == 0)
			printf("No audit entries.\n");
		else
			out_table(j, audit_cols, ATT_ARRAY_SIZE(audit_cols));
	}
	json_decref(j);
	return ex;
}

static const char *str_or_null(const json_t *e, const char *k)
{
	return json_string_value(json_object_get(e, k));
}

static int a_verify(struct cli *c, int argc, char **argv)
{
	const char *cpfile = NULL, *cafile = NULL, *tsaca = NULL;
	const struct opt o[] = { { "checkpoint", 0, true, &cpfile, NULL },
				 { "enrollment-ca", 0, true, &cafile, NULL },
				 { "tsa-ca", 0, true, &tsaca, NULL } };
	int cpex = EX_OK;
	char *pos[1];
	json_t *all = NULL, *res;
	const char *prev = ATT_AUDIT_GENESIS, *error = NULL;
	int64_t bad_id = 0;
	size_t i, n;
	json_t *e;
	char why[160] = "";
	int ex;

	if (parse_opts("audit verify", argc, argv, o, 3, pos, 0) < 0)
		return EX_USAGE;
	if (cpfile && !cafile) {
		fprintf(stderr, "attestation audit verify: --checkpoint needs --enrollment-ca (your copy of enrollment-ca.crt)\n");
		return EX_USAGE;
	}
	ex = fetch_all(c, NULL, &all);
	if (ex)
		return ex;
	n = json_array_size(all);
	json_array_foreach(all, i, e) {
		struct att_audit_entry ae = {
			.id = json_integer_value(json_object_get(e, "id")),
			.timestamp = str_or_null(e, "timestamp"),
			.operator_cn = str_or_null(e, "operator_cn"),
			.action = str_or_null(e, "action"),
			.machine_id = str_or_null(e, "machine_id"),
			.prev_state = str_or_null(e, "prev_state"),
			.new_state = str_or_null(e, "new_state"),
			.detail = str_or_null(e, "detail"),
			.prev_hash = str_or_null(e, "prev_hash"),
			.entry_hash = str_or_null(e, "entry_hash"),
		};
		char h[65];

		if (!ae.prev_hash || !ae.entry_hash || !ae.timestamp || !ae.action) {
			snprintf(why, sizeof(why), "entry %lld lacks hash fields", (long long)ae.id);
		} else if (strcmp(ae.prev_hash, prev) != 0) {
			snprintf(why, sizeof(why), "entry %lld does not link to %s", (long long)ae.id,
				 i ? "the previous entry" : "the genesis hash");
		} else if (att_audit_compute_hash(&ae, h) != 0 || strcmp(h, ae.entry_hash) != 0) {
			snprintf(why, sizeof(why), "entry %lld: entry_hash does not recompute (content altered)",
				 (long long)ae.id);
		} else {
			prev = ae.entry_hash;
			continue;
		}
		error = why;
		bad_id = ae.id;
		break;
	}
	res = json_pack("{s:b,s:I,s:s?,s:s?,s:s}", "valid", error == NULL, "entries", (json_int_t)n,
			"head_hash", n ? prev : NULL, "error", error, "verified_by", "client");
	if (bad_id)
		json_object_set_new(res, "first_invalid_id", json_integer(bad_id));
	if (cpfile && (cpex = cli_checkpoint_check(cpfile, cafile, tsaca, all, res)) == EX_USAGE) {
		json_decref(res);
		json_decref(all);
		return cpex;
	}
	if (cpex != EX_OK)
		json_object_set_new(res, "valid", json_false());
	if (c->json)
		out_json(res);
	else if (!error)
		printf("Audit chain valid: %zu entries verified locally, head %s\n", n, n ? prev : "(empty)");
	else
		printf("AUDIT CHAIN BROKEN: %s (%zu entries fetched)\n", error, n);
	if (cpfile && !c->json)
		cli_checkpoint_print(json_object_get(res, "checkpoint"));
	json_decref(res);
	json_decref(all);
	return error || cpex != EX_OK ? EX_ERR : EX_OK;
}

static int a_report(struct cli *c, int argc, char **argv)
{
	const char *id, *file = NULL;
	const struct opt o[] = { { "file", 'f', true, &file, NULL } };
	char *e, *url, *auth, deffile[128];
	const char *hdrs[2] = { NULL, NULL };
	struct cli_resp r = { 0 };
	int ex = one_id("audit report", argc, argv, o, 1, &id);

	if (ex)
		return ex;
	if (!file) {
		time_t now = time(NULL);
		struct tm tm;
		char day[16];

		gmtime_r(&now, &tm);
		strftime(day, sizeof(day), "%Y%m%d", &tm);
		snprintf(deffile, sizeof(deffile), "machine-audit-%s-%s.pdf", id, day);
		file = deffile;
	}
	e = esc(id);
	url = e ? att_asprintf("%s/api/v1/machines/%s/audit-report", c->api_url, e) : NULL;
	free(e);
	auth = url ? cli_auth_header(c, false, &ex) : NULL;
	if (!auth) {
		free(url);
		return ex ? ex : EX_ERR;
	}
	hdrs[0] = auth;
	ex = cli_http(c, "GET", url, hdrs, NULL, NULL, 0, NULL, NULL, &r);
	att_wipe(auth, strlen(auth));
	free(auth);
	free(url);
	if (ex)
		return ex;
	if (r.status != 200) {
		json_t *j = json_loadb(r.body, r.len, 0, NULL);
		char *why = att_text_escape(jstr(j, "detail") ? jstr(j, "detail") : "audit report refused");

		fprintf(stderr, "Error: %s (HTTP %ld)\n", why ? why : "?", r.status);
		free(why);
		json_decref(j);
		ex = cli_exit_for_status(r.status);
	} else if (strcmp(file, "-") == 0) {
		ex = fwrite(r.body, 1, r.len, stdout) == r.len ? EX_OK : EX_ERR;
	} else if (write_private(file, r.body, r.len) < 0) {
		fprintf(stderr, "Error: cannot write %s: %s\n", file, strerror(errno));
		ex = EX_ERR;
	} else if (c->json) {
		json_t *j = json_pack("{s:s,s:s,s:I}", "machine_id", id, "file", file, "bytes", (json_int_t)r.len);

		out_json(j);
		json_decref(j);
	} else {
		printf("Signed audit report for %s written to %s (%zu bytes).\n", id, file, r.len);
	}
	cli_resp_free(&r);
	return ex;
}

int cmd_audit(struct cli *c, int argc, char **argv)
{
	const char *sub = argc ? argv[0] : "";
	int ex = group_help(argc, argv, audit_usage);

	if (ex >= 0)
		return ex;
	if (strcmp(sub, "list") == 0)
		return a_list(c, argc - 1, argv + 1);
	if (strcmp(sub, "verify") == 0)
		return a_verify(c, argc - 1, argv + 1);
	if (strcmp(sub, "report") == 0)
		return a_report(c, argc - 1, argv + 1);
	if (strcmp(sub, "checkpoint") == 0)
		return cmd_audit_checkpoint(c, argc - 1, argv + 1);
	fprintf(stderr, "attestation audit: unknown command '%s'\n\n%s", sub, audit_usage);
	return EX_USAGE;
}
