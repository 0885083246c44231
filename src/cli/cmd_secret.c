/* cmd_secret.c - `attestation secret ...`: the secret vault (docs/secrets.md).
 * Operators write values and read metadata; no command can print a value
 * because the service never returns one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/buf.h"
#include "base/util.h"
#include "cli.h"

static const char secret_usage[] =
	"Usage: attestation secret COMMAND [options]\n"
	"\n"
	"  list MACHINE                          The machine's secrets (metadata, never values)\n"
	"  get MACHINE NAME                      One secret's metadata\n"
	"  put MACHINE NAME (--value V | --file PATH) [--description D] [--ttl SECONDS] [--reason R]\n"
	"                                        Create or replace (a new version); --file - reads stdin\n"
	"  create MACHINE NAME ...               Like put, but fails when the name exists\n"
	"  delete MACHINE NAME [--reason R]      Delete\n"
	"\n"
	"Only the machine itself reads a value: after a verified TPM quote, sealed to its TPM.\n"
	"Every command takes --output table|json.\n";

static const struct col secret_cols[] = {
	{ "NAME", "name", 0 },		   { "VERSION", "version", 0 },	     { "SIZE", "size", 0 },
	{ "UPDATED", "updated_at", 19 },   { "BY", "updated_by", 0 },	     { "EXPIRES", "expires_at", 25 },
	{ "DELIVERED", "delivered_at", 19 }, { "DESCRIPTION", "description", 40 },
};

static const char *const secret_keys[] = {
	"machine_id", "name", "version", "size", "description", "created_at", "created_by", "updated_at",
	"updated_by", "expires_at", "expired", "delivered_at", "delivered_version", "key_id",
};

/* /api/v1/secrets/machines/<id>/secrets[/<name>] with both escaped. */
static char *secret_path(const char *id, const char *name)
{
	char *ei = curl_easy_escape(NULL, id, 0), *en = name ? curl_easy_escape(NULL, name, 0) : NULL;
	char *p = NULL;

	if (ei && (!name || en))
		p = name ? att_asprintf("/api/v1/secrets/machines/%s/secrets/%s", ei, en)
			 : att_asprintf("/api/v1/secrets/machines/%s/secrets", ei);
	curl_free(ei);
	curl_free(en);
	return p;
}

static int need(const char *cmd, int n, int want)
{
	if (n != want) {
		fprintf(stderr, "attestation secret %s: expected %s (see --help)\n", cmd,
			want == 1 ? "MACHINE" : "MACHINE NAME");
		return EX_USAGE;
	}
	return 0;
}

static int s_list(struct cli *c, int argc, char **argv)
{
	char *pos[1] = { NULL }, *path;
	json_t *j = NULL;
	int ex, n = parse_opts("secret list", argc, argv, NULL, 0, pos, 1);

	if (n < 0 || need("list", n, 1))
		return EX_USAGE;
	path = secret_path(pos[0], NULL);
	ex = path ? cli_api(c, "GET", path, NULL, &j, NULL) : EX_ERR;
	if (ex == 0) {
		if (c->json)
			out_json(j);
		else
			out_table(json_object_get(j, "secrets"), secret_cols, ATT_ARRAY_SIZE(secret_cols));
	}
	json_decref(j);
	free(path);
	return ex;
}

static int s_get(struct cli *c, int argc, char **argv)
{
	char *pos[2] = { NULL }, *path;
	json_t *j = NULL;
	int ex, n = parse_opts("secret get", argc, argv, NULL, 0, pos, 2);

	if (n < 0 || need("get", n, 2))
		return EX_USAGE;
	path = secret_path(pos[0], pos[1]);
	ex = path ? cli_api(c, "GET", path, NULL, &j, NULL) : EX_ERR;
	if (ex == 0) {
		if (c->json)
			out_json(j);
		else
			out_kv(j, secret_keys, ATT_ARRAY_SIZE(secret_keys));
	}
	json_decref(j);
	free(path);
	return ex;
}

/* The value from --value or --file ('-': stdin), as value_b64. */
static char *value_b64(const char *value, const char *file)
{
	struct att_buf b;
	char chunk[4096], *r;
	FILE *f;
	size_t n;

	if (value)
		return att_b64_encode((const uint8_t *)value, strlen(value));
	f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	if (!f) {
		fprintf(stderr, "attestation secret: cannot read %s\n", file);
		return NULL;
	}
	att_buf_init(&b, 1024 * 1024);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (att_buf_append(&b, chunk, n) < 0)
			break;
	if (f != stdin)
		fclose(f);
	r = att_b64_encode((const uint8_t *)(b.p ? b.p : ""), b.len);
	if (b.p)
		att_wipe(b.p, b.len);
	att_buf_release(&b);
	att_wipe(chunk, sizeof(chunk));
	return r;
}

static int s_put(struct cli *c, int argc, char **argv, bool create)
{
	const char *value = NULL, *file = NULL, *desc = NULL, *ttl = NULL, *reason = NULL;
	const struct opt o[] = {
		{ "value", 0, true, &value, NULL }, { "file", 'f', true, &file, NULL },
		{ "description", 0, true, &desc, NULL }, { "ttl", 0, true, &ttl, NULL },
		{ "reason", 0, true, &reason, NULL },
	};
	char *pos[2] = { NULL }, *path = NULL, *b64 = NULL;
	json_t *body = NULL, *j = NULL;
	long st = 0, ttl_s = 0;
	int ex, n = parse_opts(create ? "secret create" : "secret put", argc, argv, o, 5, pos, 2);

	if (n < 0 || need(create ? "create" : "put", n, 2))
		return EX_USAGE;
	if (!value == !file) {
		fprintf(stderr, "attestation secret: give exactly one of --value and --file\n");
		return EX_USAGE;
	}
	if (ttl && !cli_parse_int(ttl, 1, 31622400, &ttl_s)) {
		fprintf(stderr, "attestation secret: --ttl: seconds, 1 to 31622400\n");
		return EX_USAGE;
	}
	b64 = value_b64(value, file);
	if (!b64)
		return EX_ERR;
	body = json_pack("{s:s}", "value_b64", b64);
	if (create)
		json_object_set_new(body, "name", json_string(pos[1]));
	if (desc)
		json_object_set_new(body, "description", json_string(desc));
	if (ttl)
		json_object_set_new(body, "ttl_seconds", json_integer(ttl_s));
	if (reason)
		json_object_set_new(body, "reason", json_string(reason));
	path = secret_path(pos[0], create ? NULL : pos[1]);
	ex = path && body ? cli_api(c, create ? "POST" : "PUT", path, body, &j, &st) : EX_ERR;
	if (ex == 0) {
		if (c->json)
			out_json(j);
		else
			printf("Secret '%s' of machine %s %s: version %lld, %lld bytes.\n", pos[1], pos[0],
			       st == 201 ? "created" : "replaced", (long long)json_integer_value(json_object_get(j, "version")),
			       (long long)json_integer_value(json_object_get(j, "size")));
	}
	att_wipe(b64, strlen(b64));
	free(b64);
	json_decref(body);
	json_decref(j);
	free(path);
	return ex;
}

static int s_delete(struct cli *c, int argc, char **argv)
{
	const char *reason = NULL;
	const struct opt o[] = { { "reason", 0, true, &reason, NULL } };
	char *pos[2] = { NULL }, *path;
	json_t *body = NULL, *j = NULL;
	int ex, n = parse_opts("secret delete", argc, argv, o, 1, pos, 2);

	if (n < 0 || need("delete", n, 2))
		return EX_USAGE;
	if (reason)
		body = json_pack("{s:s}", "reason", reason);
	path = secret_path(pos[0], pos[1]);
	ex = path ? cli_api(c, "DELETE", path, body, &j, NULL) : EX_ERR;
	if (ex == 0) {
		if (c->json)
			out_json(j);
		else
			printf("Secret '%s' of machine %s deleted.\n", pos[1], pos[0]);
	}
	json_decref(body);
	json_decref(j);
	free(path);
	return ex;
}

int cmd_secret(struct cli *c, int argc, char **argv)
{
	const char *sub = argc ? argv[0] : "";
	int ex = group_help(argc, argv, secret_usage);

	if (ex >= 0)
		return ex;
	argc--;
	argv++;
	if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
		return s_list(c, argc, argv);
	if (strcmp(sub, "get") == 0 || strcmp(sub, "show") == 0)
		return s_get(c, argc, argv);
	if (strcmp(sub, "put") == 0 || strcmp(sub, "set") == 0)
		return s_put(c, argc, argv, false);
	if (strcmp(sub, "create") == 0)
		return s_put(c, argc, argv, true);
	if (strcmp(sub, "delete") == 0 || strcmp(sub, "rm") == 0)
		return s_delete(c, argc, argv);
	fprintf(stderr, "attestation secret: unknown command '%s'\n\n%s", sub, secret_usage);
	return EX_USAGE;
}
