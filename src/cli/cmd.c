/* cmd.c - `attestation machine ...` (`attestation audit ...`: cmd_audit.c). */
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

char *cli_esc(const char *s)
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
		es = cli_esc(status);
	if (role)
		er = cli_esc(role);
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

int cli_one_id(const char *cmd, int argc, char **argv, const struct opt *o, size_t no, const char **id)
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
	char *e = cli_esc(id), *path = e ? att_asprintf(fmt, e) : NULL;
	int ex = path ? cli_api(c, "GET", path, NULL, j, NULL) : EX_ERR;

	free(e);
	free(path);
	return ex;
}

static int m_get(struct cli *c, int argc, char **argv)
{
	const char *id;
	json_t *j = NULL;
	int ex = cli_one_id("machine get", argc, argv, NULL, 0, &id);

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
	char *e = cli_esc(id), *path = e ? att_asprintf("/api/v1/machines/%s/%s", e, action) : NULL;
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
	int ex = cli_one_id("machine approve", argc, argv, o, 4, &id);

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
	ex = cli_one_id(cmd, argc, argv, o, no, &id);
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
	int ex = cli_one_id("machine approvals", argc, argv, NULL, 0, &id);

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

int cli_write_private(const char *path, const char *data, size_t len)
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
