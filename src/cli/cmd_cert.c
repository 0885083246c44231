/* cmd_cert.c - `attestation cert ...`: a machine's certificates, one
 * certificate, revoking one (docs/certificates.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "base/util.h"
#include "cli.h"

static const char cert_usage[] =
	"Usage: attestation cert COMMAND [options]\n"
	"\n"
	"  list MACHINE_ID                       The machine's certificates, newest first\n"
	"  list --agent SESSION_ID               An agent session's X.509-SVID\n"
	"  get SERIAL                            One certificate (--output json adds the PEM)\n"
	"  revoke SERIAL [--reason R] [--detail TEXT]\n"
	"                                        Revoke (R: unspecified, keyCompromise,\n"
	"                                        affiliationChanged, superseded,\n"
	"                                        cessationOfOperation, privilegeWithdrawn)\n"
	"\n"
	"Every command takes --output table|json.\n";

static const struct col cert_cols[] = {
	{ "SERIAL", "serial", 0 },	{ "KIND", "kind", 0 },	     { "KEY", "key_type", 0 },
	{ "STATUS", "status", 0 },	{ "NOT AFTER", "not_after", 0 }, { "REASON", "revocation_reason", 0 },
};

static const char *const cert_keys[] = {
	"serial", "machine_id", "role", "status", "kind", "key_type", "ek_fingerprint", "ca_serial", "issued_at",
	"issued_by", "not_after", "revoked_at", "revocation_reason", "revocation_detail", "agent_session",
};

static int one_arg(const char *cmd, int argc, char **argv, const struct opt *o, size_t no, const char **arg)
{
	char *pos[1] = { NULL };

	if (parse_opts(cmd, argc, argv, o, no, pos, 1) < 0)
		return EX_USAGE;
	if (!pos[0] || !*pos[0] || strlen(pos[0]) > 64) {
		fprintf(stderr, "Error: %s needs one argument (see attestation cert --help)\n", cmd);
		return EX_USAGE;
	}
	*arg = pos[0];
	return 0;
}

static int call(struct cli *c, const char *method, const char *fmt, const char *arg, json_t *body, json_t **j)
{
	char *e = curl_easy_escape(NULL, arg, 0);
	char *path = e ? att_asprintf(fmt, e) : NULL;
	int ex = path ? cli_api(c, method, path, body, j, NULL) : EX_ERR;

	curl_free(e);
	free(path);
	return ex;
}

static void print_cert(const struct cli *c, const json_t *j)
{
	if (c->json)
		out_json(j);
	else
		out_kv(j, cert_keys, ATT_ARRAY_SIZE(cert_keys));
}

int cmd_cert_list(struct cli *c, int argc, char **argv)
{
	const char *id, *agent = NULL;
	const struct opt o[] = { { "agent", 0, true, &agent, NULL } };
	char *pos[1] = { NULL };
	json_t *j = NULL;
	int ex;

	if (parse_opts("cert list", argc, argv, o, ATT_ARRAY_SIZE(o), pos, 1) < 0)
		return EX_USAGE;
	id = agent ? agent : pos[0];
	if (!id || !*id || strlen(id) > 64 || (agent && pos[0])) {
		fprintf(stderr, "Error: cert list needs a MACHINE_ID or --agent SESSION_ID (see attestation cert --help)\n");
		return EX_USAGE;
	}
	ex = call(c, "GET", agent ? "/api/v1/agents/%s/certificates" : "/api/v1/machines/%s/certificates", id, NULL, &j);
	if (ex == 0) {
		if (c->json)
			out_json(j);
		else if (json_array_size(j) == 0)
			printf("No certificates for %s.\n", id);
		else
			out_table(j, cert_cols, ATT_ARRAY_SIZE(cert_cols));
	}
	json_decref(j);
	return ex;
}

static int cert_get(struct cli *c, int argc, char **argv)
{
	const char *serial;
	json_t *j = NULL;
	int ex = one_arg("cert get", argc, argv, NULL, 0, &serial);

	if (ex)
		return ex;
	ex = call(c, "GET", "/api/v1/certificates/%s", serial, NULL, &j);
	if (ex == 0)
		print_cert(c, j);
	json_decref(j);
	return ex;
}

static int cert_revoke(struct cli *c, int argc, char **argv)
{
	const char *serial, *reason = NULL, *detail = NULL;
	const struct opt o[] = { { "reason", 0, true, &reason, NULL }, { "detail", 0, true, &detail, NULL } };
	json_t *body, *j = NULL;
	int ex = one_arg("cert revoke", argc, argv, o, 2, &serial);

	if (ex)
		return ex;
	body = json_object();
	if (reason)
		json_object_set_new(body, "reason", json_string(reason));
	if (detail)
		json_object_set_new(body, "detail", json_string(detail));
	ex = call(c, "POST", "/api/v1/certificates/%s/revoke", serial, body, &j);
	json_decref(body);
	if (ex == 0) {
		if (c->json)
			out_json(j);
		else
			printf("Certificate %s of %s%s revoked (%s).\n", serial, jstr(j, "machine_id") ? "" : "agent session ",
			       jstr(j, "machine_id") ? jstr(j, "machine_id")
			       : jstr(j, "agent_session") ? jstr(j, "agent_session") : "?",
			       jstr(j, "revocation_reason") ? jstr(j, "revocation_reason") : "?");
	}
	json_decref(j);
	return ex;
}

int cmd_cert(struct cli *c, int argc, char **argv)
{
	const char *sub = argc ? argv[0] : "";
	int ex = group_help(argc, argv, cert_usage);

	if (ex >= 0)
		return ex;
	if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
		return cmd_cert_list(c, argc - 1, argv + 1);
	if (strcmp(sub, "get") == 0 || strcmp(sub, "show") == 0)
		return cert_get(c, argc - 1, argv + 1);
	if (strcmp(sub, "revoke") == 0)
		return cert_revoke(c, argc - 1, argv + 1);
	fprintf(stderr, "attestation cert: unknown command '%s'\n\n%s", sub, cert_usage);
	return EX_USAGE;
}
