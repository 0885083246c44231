/* cmd_audit.c - `attestation audit ...`: list, verify the hash chain
 * (against a signed checkpoint), the machine's PDF report. */
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

static const struct col audit_cols[] = {
	{ "ID", "id", 0 },	       { "TIMESTAMP", "timestamp", 19 }, { "OPERATOR", "operator_cn", 0 },
	{ "ACTION", "action", 0 },     { "MACHINE", "machine_id", 0 },	 { "STATE", "new_state", 0 },
	{ "DETAIL", "detail", 60 },
};

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
		em = cli_esc(mid);
	if (action)
		ea = cli_esc(action);
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
	int ex = cli_one_id("audit report", argc, argv, o, 1, &id);

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
	e = cli_esc(id);
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
	} else if (cli_write_private(file, r.body, r.len) < 0) {
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
