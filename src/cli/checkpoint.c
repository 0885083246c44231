/* checkpoint.c - `attestation audit checkpoint ...` and the checkpoint
 * half of `attestation audit verify --checkpoint FILE` (docs/audit.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/checkpoint.h"
#include "audit/tsa.h"
#include "base/util.h"
#include "cli.h"

static const char checkpoint_usage[] =
	"Usage: attestation audit checkpoint COMMAND [options]\n"
	"\n"
	"  create [--file PATH]      Have the service sign a checkpoint of the log now\n"
	"                            and save it (default audit-checkpoint-ID.json)\n"
	"  get ID|latest [--file PATH]\n"
	"                            Export a stored checkpoint ('-' writes to stdout)\n"
	"  list [--page N] [--per-page N]\n"
	"                            Stored checkpoints, newest first\n"
	"\n"
	"Keep exported checkpoints away from the service; check the log against\n"
	"one with: attestation audit verify --checkpoint FILE --enrollment-ca CA.crt\n";

static const struct col checkpoint_cols[] = {
	{ "ID", "id", 0 },		{ "ISSUED", "issued_at", 19 }, { "ENTRIES", "entries", 0 },
	{ "HEAD HASH", "head_hash", 16 }, { "ISSUER", "issuer", 40 },
};

static char *read_file(const char *path, size_t max)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(max + 1);
	n = buf ? fread(buf, 1, max + 1, f) : 0;
	if (f != stdin)
		fclose(f);
	if (!buf || n > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

/* Save an export document: PATH, '-' (stdout) or the default name. */
static int save_doc(const struct cli *c, const json_t *doc, const char *file)
{
	char def[64], *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	FILE *f;
	int ok;

	if (!s)
		return EX_ERR;
	if (!file) {
		snprintf(def, sizeof(def), "audit-checkpoint-%lld.json",
			 (long long)json_integer_value(json_object_get(doc, "id")));
		file = def;
	}
	f = strcmp(file, "-") == 0 ? stdout : fopen(file, "w");
	ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
	if (f && f != stdout)
		ok = fclose(f) == 0 && ok;
	free(s);
	if (!ok) {
		fprintf(stderr, "Error: cannot write %s: %s\n", file, strerror(errno));
		return EX_ERR;
	}
	if (strcmp(file, "-") == 0)
		return EX_OK;
	if (c->json) {
		json_t *j = json_pack("{s:O,s:O,s:O,s:s}", "id", json_object_get(doc, "id"), "entries",
				      json_object_get(doc, "entries"), "head_hash", json_object_get(doc, "head_hash"),
				      "file", file);

		out_json(j);
		json_decref(j);
	} else {
		printf("Checkpoint %lld (%lld entries, head %.16s...) written to %s\n",
		       (long long)json_integer_value(json_object_get(doc, "id")),
		       (long long)json_integer_value(json_object_get(doc, "entries")),
		       jstr(doc, "head_hash") ? jstr(doc, "head_hash") : "", file);
	}
	return EX_OK;
}

static int cp_create(struct cli *c, int argc, char **argv)
{
	const char *file = NULL;
	const struct opt o[] = { { "file", 'f', true, &file, NULL } };
	char *pos[1];
	json_t *j = NULL;
	int ex;

	if (parse_opts("audit checkpoint create", argc, argv, o, 1, pos, 0) < 0)
		return EX_USAGE;
	ex = cli_api(c, "POST", "/api/v1/audit/checkpoints", NULL, &j, NULL);
	if (ex == 0)
		ex = save_doc(c, j, file);
	json_decref(j);
	return ex;
}

static int cp_get(struct cli *c, int argc, char **argv)
{
	const char *file = NULL;
	const struct opt o[] = { { "file", 'f', true, &file, NULL } };
	char *pos[1] = { NULL }, path[96];
	long id = 0;
	json_t *j = NULL;
	int ex;

	if (parse_opts("audit checkpoint get", argc, argv, o, 1, pos, 1) != 1 ||
	    (strcmp(pos[0], "latest") != 0 && !cli_parse_int(pos[0], 1, 2000000000L, &id))) {
		fprintf(stderr, "attestation audit checkpoint get: an ID or 'latest' is required\n");
		return EX_USAGE;
	}
	snprintf(path, sizeof(path), "/api/v1/audit/checkpoints/%s", pos[0]);
	ex = cli_api(c, "GET", path, NULL, &j, NULL);
	if (ex == 0)
		ex = save_doc(c, j, file);
	json_decref(j);
	return ex;
}

static int cp_list(struct cli *c, int argc, char **argv)
{
	const char *page = NULL, *per = NULL;
	const struct opt o[] = { { "page", 0, true, &page, NULL }, { "per-page", 0, true, &per, NULL } };
	char *pos[1], path[96];
	long pg = 1, pp = 50;
	json_t *j = NULL;
	int ex;

	if (parse_opts("audit checkpoint list", argc, argv, o, 2, pos, 0) < 0)
		return EX_USAGE;
	if ((page && !cli_parse_int(page, 1, 1000000000, &pg)) || (per && !cli_parse_int(per, 1, 200, &pp))) {
		fprintf(stderr, "attestation audit checkpoint list: --page takes a positive integer, --per-page 1-200\n");
		return EX_USAGE;
	}
	snprintf(path, sizeof(path), "/api/v1/audit/checkpoints?page=%ld&per_page=%ld", pg, pp);
	ex = cli_api(c, "GET", path, NULL, &j, NULL);
	if (ex == 0) {
		if (c->json)
			out_json(j);
		else if (json_array_size(j) == 0)
			printf("No checkpoints.\n");
		else
			out_table(j, checkpoint_cols, ATT_ARRAY_SIZE(checkpoint_cols));
	}
	json_decref(j);
	return ex;
}

int cmd_audit_checkpoint(struct cli *c, int argc, char **argv)
{
	const char *sub = argc ? argv[0] : "";
	int ex = group_help(argc, argv, checkpoint_usage);

	if (ex >= 0)
		return ex;
	if (strcmp(sub, "create") == 0)
		return cp_create(c, argc - 1, argv + 1);
	if (strcmp(sub, "get") == 0)
		return cp_get(c, argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0)
		return cp_list(c, argc - 1, argv + 1);
	fprintf(stderr, "attestation audit checkpoint: unknown command '%s'\n\n%s", sub, checkpoint_usage);
	return EX_USAGE;
}

/* The checkpoint's RFC 3161 timestamp, if it has one: res.checkpoint.timestamp. */
static bool check_timestamp(const json_t *doc, const char *tsa_ca_file, json_t *verdict)
{
	const char *tok = jstr(doc, "timestamp_token"), *payload = jstr(doc, "payload");
	char *ca = NULL, when[64], err[300] = "";
	bool ok;

	if (!tok)
		return true;
	if (tsa_ca_file && !(ca = read_file(tsa_ca_file, 1 << 20))) {
		snprintf(err, sizeof(err), "cannot read %s: %s", tsa_ca_file, strerror(errno));
		ok = false;
	} else {
		ok = att_tsa_check(tok, payload, ca, when, sizeof(when), err, sizeof(err)) == 0;
	}
	json_object_set_new(verdict, "timestamp",
			    json_pack("{s:s?,s:b,s:b,s:s?}", "time", ok ? when : NULL, "valid", ok,
				      "tsa_signature_checked", ok && ca, "error", ok ? NULL : err));
	free(ca);
	return ok;
}

int cli_checkpoint_check(const char *file, const char *ca_file, const char *tsa_ca_file, const json_t *chain,
			 json_t *res)
{
	char *doc_s = read_file(file, 1 << 20), *ca_pem = doc_s ? read_file(ca_file, 1 << 20) : NULL;
	json_t *doc = doc_s ? json_loads(doc_s, JSON_REJECT_DUPLICATES, NULL) : NULL, *v;
	struct att_checkpoint_claim cl;
	char err[300] = "";
	const char *hash_at = NULL;
	int64_t n = (int64_t)json_array_size(chain);
	bool ok = false;
	int ex = EX_ERR;

	if (!doc_s || !ca_pem) {
		fprintf(stderr, "Error: cannot read %s: %s\n", doc_s ? ca_file : file, strerror(errno));
		ex = EX_USAGE;
		goto out;
	}
	if (att_checkpoint_verify_doc(doc, ca_pem, &cl, err, sizeof(err)) < 0) {
		json_object_set_new(res, "checkpoint", json_pack("{s:s,s:b,s:s}", "file", file, "signature_valid", 0,
								 "error", err));
		goto out;
	}
	if (cl.entries > 0 && cl.entries <= n)
		hash_at = jstr(json_array_get(chain, (size_t)(cl.entries - 1)), "entry_hash");
	ok = att_checkpoint_matches(&cl, n, hash_at, err, sizeof(err));
	v = json_pack("{s:s,s:b,s:s,s:I,s:s,s:s,s:b,s:s?}", "file", file, "signature_valid", 1, "signer", cl.signer,
		      "entries", (json_int_t)cl.entries, "head_hash", cl.head_hash, "issued_at", cl.issued_at, "matches",
		      ok, "error", ok ? NULL : err);
	if (!check_timestamp(doc, tsa_ca_file, v))
		ok = false;
	json_object_set_new(res, "checkpoint", v);
	ex = ok ? EX_OK : EX_ERR;
out:
	json_decref(doc);
	free(doc_s);
	free(ca_pem);
	return ex;
}

void cli_checkpoint_print(const json_t *v)
{
	if (!v)
		return;
	if (!json_is_true(json_object_get(v, "signature_valid")))
		printf("CHECKPOINT REFUSED: %s\n", jstr(v, "error") ? jstr(v, "error") : "invalid");
	else if (json_is_true(json_object_get(v, "matches")))
		printf("Checkpoint of %s (signed by %s): the log extends it (%lld entries, head %.16s...)\n",
		       jstr(v, "issued_at"), jstr(v, "signer"), (long long)json_integer_value(json_object_get(v, "entries")),
		       jstr(v, "head_hash"));
	else
		printf("CHECKPOINT MISMATCH: %s\n", jstr(v, "error") ? jstr(v, "error") : "the log does not extend it");
	v = json_object_get(v, "timestamp");
	if (v && json_is_true(json_object_get(v, "valid")))
		printf("RFC 3161 timestamp: %s (%s)\n", jstr(v, "time"),
		       json_is_true(json_object_get(v, "tsa_signature_checked")) ? "TSA signature verified with --tsa-ca"
										: "imprint only; pass --tsa-ca to check the TSA");
	else if (v)
		printf("TIMESTAMP REFUSED: %s\n", jstr(v, "error") ? jstr(v, "error") : "invalid");
}
