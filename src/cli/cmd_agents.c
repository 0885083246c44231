/* cmd_agents.c - `attestation config ...` (managed configuration per
 * cluster: the AgentAttestation policy document, seed 004's
 * `config set cluster --id <cluster-id> attestation-policy.yaml`) and
 * `attestation agents list` (recent agent sessions). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "base/util.h"
#include "cli.h"

static const char config_usage[] =
	"Usage: attestation config COMMAND cluster --id CLUSTER-ID ...\n"
	"\n"
	"Managed configuration per cluster (section AgentAttestation: agent attestation policies).\n"
	"\n"
	"Commands:\n"
	"  set cluster --id ID FILE        store FILE (YAML) as the cluster's new version ('-': stdin)\n"
	"  get cluster --id ID [--version N]  print the current (or an old) document as YAML\n"
	"  history cluster --id ID         list the versions, newest first\n"
	"  delete cluster --id ID          delete the document (recorded as a version)\n";

static const char agents_usage[] =
	"Usage: attestation agents list [--cluster ID] [--page N] [--per-page N]\n"
	"\n"
	"Recent agent sessions: cluster, matched policy, SPIFFE ID, attributes and the serial of\n"
	"the session's X.509-SVID (attestation cert get SERIAL).\n";

#define MAX_POLICY_FILE (64 * 1024)

static char *read_file(const char *path, size_t *ret_len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *b = malloc(MAX_POLICY_FILE + 2);
	size_t n = 0;

	if (!f || !b) {
		if (f && f != stdin)
			fclose(f);
		free(b);
		return NULL;
	}
	n = fread(b, 1, MAX_POLICY_FILE + 1, f);
	if (f != stdin)
		fclose(f);
	b[n] = '\0';
	*ret_len = n;
	return b;
}

static char *section_path(const char *id, const char *suffix)
{
	char *e = curl_easy_escape(NULL, id, 0);
	char *p = e ? att_asprintf("/api/v1/clusters/%s/config/AgentAttestation%s", e, suffix) : NULL;

	curl_free(e);
	return p;
}

/* PUT the document as application/yaml (cli_api speaks JSON only). */
static int put_yaml(struct cli *c, const char *path, const char *yaml, size_t len, json_t **ret)
{
	struct cli_resp r = { 0 };
	int ex = cli_raw(c, "PUT", path, "application/yaml", yaml, len, &r);

	if (ex)
		return ex;
	*ret = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
	if (r.status != 200) {
		fprintf(stderr, "Error: %s (HTTP %ld)\n", jstr(*ret, "detail") ? jstr(*ret, "detail") : "refused", r.status);
		ex = cli_exit_for_status(r.status);
	}
	cli_resp_free(&r);
	return ex;
}

/* "cluster --id ID" and the remaining positionals. */
static int cluster_args(const char *cmd, int argc, char **argv, const struct opt *extra, size_t nextra,
			const char **id, char **pos, int npos, int *ret_n)
{
	struct opt o[4] = { { "id", 0, true, id, NULL } };
	char *all[4] = { NULL };
	int n;

	for (size_t i = 0; i < nextra && i < 3; i++)
		o[i + 1] = extra[i];
	n = parse_opts(cmd, argc, argv, o, 1 + (nextra < 3 ? nextra : 3), all, npos + 1);
	if (n < 0)
		return EX_USAGE;
	if (n < 1 || strcmp(all[0], "cluster") != 0 || !*id || !**id) {
		fprintf(stderr, "Usage: attestation %s cluster --id CLUSTER-ID ...\n", cmd);
		return EX_USAGE;
	}
	for (int i = 1; i < n; i++)
		pos[i - 1] = all[i];
	*ret_n = n - 1;
	return 0;
}

static int c_set(struct cli *c, int argc, char **argv)
{
	const char *id = NULL;
	char *pos[1] = { NULL }, *yaml, *path;
	json_t *res = NULL;
	size_t len = 0;
	int n, ex = cluster_args("config set", argc, argv, NULL, 0, &id, pos, 1, &n);

	if (ex)
		return ex;
	if (n != 1) {
		fprintf(stderr, "Usage: attestation config set cluster --id CLUSTER-ID FILE\n");
		return EX_USAGE;
	}
	yaml = read_file(pos[0], &len);
	if (!yaml) {
		fprintf(stderr, "Error: cannot read %s: %s\n", pos[0], strerror(errno));
		return EX_ERR;
	}
	if (len > MAX_POLICY_FILE) {
		fprintf(stderr, "Error: %s is larger than %d bytes\n", pos[0], MAX_POLICY_FILE);
		free(yaml);
		return EX_INVALID;
	}
	path = section_path(id, "");
	ex = path ? put_yaml(c, path, yaml, len, &res) : EX_ERR;
	if (ex == 0 && c->json)
		out_json(res);
	else if (ex == 0)
		printf("Cluster %s: AgentAttestation version %lld stored (%zu policies).\n", id,
		       (long long)json_integer_value(json_object_get(res, "version")),
		       json_array_size(json_object_get(json_object_get(json_object_get(res, "document"), "spec"), "policies")));
	json_decref(res);
	free(path);
	free(yaml);
	return ex;
}

static int c_get(struct cli *c, int argc, char **argv)
{
	const char *id = NULL, *ver = NULL;
	const struct opt extra[] = { { "version", 0, true, &ver, NULL } };
	char *pos[1], *path, *p2 = NULL;
	json_t *res = NULL;
	long v;
	int n, ex = cluster_args("config get", argc, argv, extra, 1, &id, pos, 0, &n);

	if (ex)
		return ex;
	if (ver && !cli_parse_int(ver, 1, 1000000000, &v)) {
		fprintf(stderr, "Error: --version must be a positive integer\n");
		return EX_USAGE;
	}
	path = section_path(id, "");
	if (path && ver)
		p2 = att_asprintf("%s?version=%s", path, ver);
	ex = path ? cli_api(c, "GET", p2 ? p2 : path, NULL, &res, NULL) : EX_ERR;
	if (ex == 0 && c->json)
		out_json(res);
	else if (ex == 0)
		fputs(jstr(res, "yaml") ? jstr(res, "yaml") : "", stdout);
	json_decref(res);
	free(p2);
	free(path);
	return ex;
}

static int c_history(struct cli *c, int argc, char **argv)
{
	static const struct col cols[] = {
		{ "VERSION", "version", 0 }, { "DELETED", "deleted", 0 }, { "UPDATED", "updated_at", 19 },
		{ "BY", "updated_by", 0 },
	};
	const char *id = NULL;
	char *pos[1], *path;
	json_t *res = NULL;
	int n, ex = cluster_args("config history", argc, argv, NULL, 0, &id, pos, 0, &n);

	if (ex)
		return ex;
	path = section_path(id, "/versions");
	ex = path ? cli_api(c, "GET", path, NULL, &res, NULL) : EX_ERR;
	if (ex == 0 && c->json)
		out_json(res);
	else if (ex == 0)
		out_table(json_object_get(res, "versions"), cols, ATT_ARRAY_SIZE(cols));
	json_decref(res);
	free(path);
	return ex;
}

static int c_delete(struct cli *c, int argc, char **argv)
{
	const char *id = NULL;
	char *pos[1], *path;
	json_t *res = NULL;
	int n, ex = cluster_args("config delete", argc, argv, NULL, 0, &id, pos, 0, &n);

	if (ex)
		return ex;
	path = section_path(id, "");
	ex = path ? cli_api(c, "DELETE", path, NULL, &res, NULL) : EX_ERR;
	if (ex == 0 && c->json)
		out_json(res);
	else if (ex == 0)
		printf("Cluster %s: AgentAttestation deleted.\n", id);
	json_decref(res);
	free(path);
	return ex;
}

int cmd_config(struct cli *c, int argc, char **argv)
{
	const char *sub = argc ? argv[0] : "";
	int ex = group_help(argc, argv, config_usage);

	if (ex >= 0)
		return ex;
	if (strcmp(sub, "set") == 0)
		return c_set(c, argc - 1, argv + 1);
	if (strcmp(sub, "get") == 0)
		return c_get(c, argc - 1, argv + 1);
	if (strcmp(sub, "history") == 0)
		return c_history(c, argc - 1, argv + 1);
	if (strcmp(sub, "delete") == 0)
		return c_delete(c, argc - 1, argv + 1);
	fprintf(stderr, "attestation config: unknown command '%s'\n\n%s", sub, config_usage);
	return EX_USAGE;
}

/* Attributes as one "k=v, k=v" cell for the table. */
static void flatten_attrs(json_t *sessions)
{
	for (size_t i = 0; i < json_array_size(sessions); i++) {
		json_t *s = json_array_get(sessions, i), *a = json_object_get(s, "attributes"), *v;
		const char *k;
		char buf[512] = "";

		json_object_foreach(a, k, v) {
			char *val = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			size_t used = strlen(buf);

			snprintf(buf + used, sizeof(buf) - used, "%s%s=%s", used ? ", " : "", k,
				 val ? val : json_string_value(v));
			free(val);
		}
		json_object_set_new(s, "attrs", json_string(buf));
	}
}

int cmd_agents(struct cli *c, int argc, char **argv)
{
	static const struct col cols[] = {
		{ "ISSUED", "issued_at", 19 }, { "CLUSTER", "cluster_id", 0 }, { "POLICY", "policy", 0 },
		{ "SESSION", "session_id", 8 }, { "SOURCE", "source_ip", 0 },  { "CERT", "cert_serial", 0 },
		{ "ATTRIBUTES", "attrs", 80 },
	};
	const char *cl = NULL, *page = NULL, *per = NULL;
	const struct opt o[] = { { "cluster", 0, true, &cl, NULL },
				 { "page", 0, true, &page, NULL },
				 { "per-page", 0, true, &per, NULL } };
	char *pos[1], *path, *e = NULL;
	json_t *res = NULL;
	long n1 = 1, n2 = 50;
	int ex = group_help(argc, argv, agents_usage);

	if (ex >= 0)
		return ex;
	if (strcmp(argv[0], "list") != 0) {
		fprintf(stderr, "attestation agents: unknown command '%s'\n\n%s", argv[0], agents_usage);
		return EX_USAGE;
	}
	if (parse_opts("agents list", argc - 1, argv + 1, o, ATT_ARRAY_SIZE(o), pos, 0) < 0)
		return EX_USAGE;
	if ((page && !cli_parse_int(page, 1, 1000000, &n1)) || (per && !cli_parse_int(per, 1, 200, &n2))) {
		fprintf(stderr, "Error: --page must be >= 1 and --per-page 1..200\n");
		return EX_USAGE;
	}
	e = cl ? curl_easy_escape(NULL, cl, 0) : NULL;
	path = att_asprintf("/api/v1/agents?page=%ld&per_page=%ld%s%s", n1, n2, e ? "&cluster_id=" : "", e ? e : "");
	curl_free(e);
	ex = path ? cli_api(c, "GET", path, NULL, &res, NULL) : EX_ERR;
	if (ex == 0 && c->json) {
		out_json(res);
	} else if (ex == 0) {
		flatten_attrs(json_object_get(res, "sessions"));
		out_table(json_object_get(res, "sessions"), cols, ATT_ARRAY_SIZE(cols));
		printf("%lld session(s) in all\n", (long long)json_integer_value(json_object_get(res, "total")));
	}
	json_decref(res);
	free(path);
	return ex;
}
