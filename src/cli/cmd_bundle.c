/* cmd_bundle.c - `attestation machine bundle` and `machine import`:
 * offline bundles (JSON; the enrollment key only with --include-key),
 * signed air-gap archives (--output FILE.tar.gz, or --archive) and their
 * import next to the TPM receipts (docs/airgap.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/buf.h"
#include "base/text.h"
#include "base/util.h"
#include "cli.h"

#define ARCHIVE_MAX (4u << 20)	/* the server's cap (ATT_AIRGAP_MAX_COMPRESSED) */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int refused(const struct cli_resp *r, const char *what)
{
	json_t *j = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
	char *why = att_text_escape(jstr(j, "detail") ? jstr(j, "detail") : what);

	fprintf(stderr, "Error: %s (HTTP %ld)\n", why ? why : "?", r->status);
	free(why);
	json_decref(j);
	return cli_exit_for_status(r->status);
}

static int bundle_archive(struct cli *c, const char *path, const char *id, const char *file)
{
	struct cli_resp r = { 0 };
	int ex = cli_raw(c, "GET", path, NULL, NULL, 0, &r);

	if (ex)
		return ex;
	if (r.status != 200)
		ex = refused(&r, "air-gap bundle refused");
	else if (cli_write_private(file, r.body, r.len) < 0) {
		fprintf(stderr, "Error: cannot write %s: %s\n", file, strerror(errno));
		ex = EX_ERR;
	} else if (c->json) {
		json_t *j = json_pack("{s:s,s:s,s:I}", "machine_id", id, "file", file, "bytes", (json_int_t)r.len);

		out_json(j);
		json_decref(j);
	} else {
		fprintf(stderr, "Signed air-gap bundle for %s written to %s (%zu bytes, mode 0600; it contains the enrollment key).\n",
			id, file, r.len);
	}
	if (r.body)
		att_wipe(r.body, r.len);
	cli_resp_free(&r);
	return ex;
}

static int bundle_json(struct cli *c, const char *path, const char *id, const char *file)
{
	json_t *j = NULL;
	char *s;
	int ex = cli_api(c, "GET", path, NULL, &j, NULL);

	if (ex) {
		json_decref(j);
		return ex;
	}
	s = json_dumps(j, JSON_INDENT(2));
	if (!s) {
		ex = EX_ERR;
	} else if (file) {
		if (cli_write_private(file, s, strlen(s)) < 0) {
			fprintf(stderr, "Error: cannot write %s: %s\n", file, strerror(errno));
			ex = EX_ERR;
		} else {
			fprintf(stderr, "Offline bundle for %s written to %s (mode 0600%s).\n", id, file,
				json_is_true(json_object_get(j, "enrollment_key_included")) ? "; it contains the enrollment key"
											  : "; without the enrollment key");
		}
	} else {
		puts(s);
	}
	if (s)
		att_wipe(s, strlen(s));
	free(s);
	json_decref(j);
	return ex;
}

int cmd_machine_bundle(struct cli *c, int argc, char **argv)
{
	const char *file = NULL, *outp = NULL;
	bool include_key = false, archive = false;
	const struct opt o[] = { { "file", 'f', true, &file, NULL }, { "output", 0, true, &outp, NULL },
				 { "include-key", 0, false, NULL, &include_key }, { "archive", 0, false, NULL, &archive } };
	char *pos[1] = { NULL }, *e, *path;
	int ex;

	if (parse_opts("machine bundle", argc, argv, o, ATT_ARRAY_SIZE(o), pos, 1) < 0)
		return EX_USAGE;
	if (!pos[0] || !*pos[0] || strlen(pos[0]) > 64) {
		fprintf(stderr, "Error: a machine ID is required (see --help)\n");
		return EX_USAGE;
	}
	if (outp && !file)
		file = outp;	/* the seeds' `bundle ID --output ./bundle.json` */
	if (file && (ends_with(file, ".tar.gz") || ends_with(file, ".tgz")))
		archive = true;
	if (archive && !file) {
		fprintf(stderr, "Error: a signed air-gap bundle is binary: give --output FILE.tar.gz\n");
		return EX_USAGE;
	}
	e = curl_easy_escape(NULL, pos[0], 0);
	path = e ? att_asprintf(archive ? "/api/v1/machines/%s/bundle" : "/api/v1/machines/%s/offline-bundle%s", e,
				include_key ? "?include_key=true" : "")
		 : NULL;
	curl_free(e);
	if (!path)
		return EX_ERR;
	ex = archive ? bundle_archive(c, path, pos[0], file) : bundle_json(c, path, pos[0], file);
	free(path);
	return ex;
}

/* The whole file (at most max bytes); NULL with a message. */
static char *slurp(const char *name, size_t max, size_t *ret_len)
{
	FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "rbe");
	struct att_buf b;
	char chunk[65536];
	size_t n;

	if (!f) {
		fprintf(stderr, "Error: cannot open %s: %s\n", name, strerror(errno));
		return NULL;
	}
	att_buf_init(&b, max);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (att_buf_append(&b, chunk, n) < 0) {
			fprintf(stderr, "Error: %s is larger than %zu bytes\n", name, max);
			att_buf_release(&b);
			if (f != stdin)
				fclose(f);
			return NULL;
		}
	if (f != stdin)
		fclose(f);
	if (!b.p)
		att_buf_append(&b, "", 0);
	return att_buf_steal(&b, ret_len);
}

static void import_print(struct cli *c, json_t *j, bool archive)
{
	static const char *const keys[] = { "machine_id", "status", "role", "config_url", "message" };
	static const char *const akeys[] = { "machine_id", "status", "role", "hostname", "assigned_ip", "exporter",
					     "message" };

	if (c->json)
		out_json(j);
	else if (archive)
		out_kv(j, akeys, ATT_ARRAY_SIZE(akeys));
	else
		out_kv(j, keys, ATT_ARRAY_SIZE(keys));
}

int cmd_machine_import(struct cli *c, int argc, char **argv)
{
	char *pos[1] = { NULL }, *data;
	size_t len = 0;
	int ex;

	if (parse_opts("machine import", argc, argv, NULL, 0, pos, 1) < 0)
		return EX_USAGE;
	if (!pos[0]) {
		fprintf(stderr, "attestation machine import: a receipt or bundle file is required\n");
		return EX_USAGE;
	}
	data = slurp(pos[0], ARCHIVE_MAX, &len);
	if (!data)
		return EX_INVALID;
	if (len >= 2 && (uint8_t)data[0] == 0x1f && (uint8_t)data[1] == 0x8b) {
		struct cli_resp r = { 0 };

		ex = cli_raw(c, "POST", "/api/v1/machines/import", "application/gzip", data, len, &r);
		if (ex == 0 && r.status != 200)
			ex = refused(&r, "air-gap bundle refused");
		else if (ex == 0) {
			json_t *j = json_loadb(r.body, r.len, 0, NULL);

			import_print(c, j, true);
			json_decref(j);
		}
		cli_resp_free(&r);
	} else {
		json_error_t jerr;
		json_t *receipt = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr), *j = NULL;

		if (!receipt || !json_is_object(receipt)) {
			fprintf(stderr, "Error: %s is not a JSON object (nor a gzip'd air-gap bundle): %s (line %d)\n",
				pos[0], receipt ? "not an object" : jerr.text, jerr.line);
			json_decref(receipt);
			att_wipe(data, len);
			free(data);
			return EX_INVALID;
		}
		ex = cli_api(c, "POST", "/api/v1/machines/import", receipt, &j, NULL);
		json_decref(receipt);
		if (ex == 0)
			import_print(c, j, false);
		json_decref(j);
	}
	att_wipe(data, len);
	free(data);
	return ex;
}
