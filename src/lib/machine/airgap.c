/* airgap.c - building, opening and checking signed air-gap bundles
 * (see airgap.h; layout in docs/airgap.md). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ca.h"
#include "crypto/exporter.h"
#include "machine/airgap.h"
#include "machine/machine.h"

static void sha384_hex(const void *p, size_t n, char out[97])
{
	uint8_t md[48];
	unsigned len = 0;

	EVP_Digest(p, n, md, &len, EVP_sha384(), NULL);
	att_hex_encode(md, 48, out);
}

static int add_member(struct att_buf *tar, json_t *files, const char *name, const char *data, unsigned mode,
		      int64_t now)
{
	char hex[97];
	size_t n = strlen(data);

	sha384_hex(data, n, hex);
	if (json_array_append_new(files, json_pack("{s:s,s:I,s:s}", "name", name, "size", (json_int_t)n, "sha384",
						   hex)) < 0)
		return ATT_E_NOMEM;
	return att_tar_add(tar, name, data, n, mode, now);
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* machine.json, install.json, the PEM members and the manifest. */
static int pack_members(const struct att_svc *svc, const json_t *b, struct att_buf *tar, json_t *files,
			int64_t now)
{
	char *machine = json_dumps(json_object_get(b, "machine"), JSON_INDENT(2) | JSON_SORT_KEYS);
	char *install = NULL, *cab = att_ca_bundle_pem(svc->ca);
	json_t *inst = json_pack("{s:s?,s:s?,s:s?,s:s?,s:s?}", "iso_url", str(b, "iso_url"), "installer_image",
				 str(b, "installer_image"), "schematic_id", str(b, "schematic_id"), "talos_version",
				 svc->cfg->talos_version, "exported_from", svc->cfg->service_url);
	int r = ATT_E_NOMEM;

	install = inst ? json_dumps(inst, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(inst);
	if (!machine || !install || !cab || !str(b, "enrollment_cert_pem") || !str(b, "enrollment_key_pem"))
		goto out;
	r = add_member(tar, files, "machine.json", machine, 0644, now);
	if (r == 0 && str(b, "machineconfig"))
		r = add_member(tar, files, "machineconfig.yaml", str(b, "machineconfig"), 0600, now);
	if (r == 0)
		r = add_member(tar, files, "enrollment.crt", str(b, "enrollment_cert_pem"), 0644, now);
	if (r == 0)
		r = add_member(tar, files, "enrollment.key", str(b, "enrollment_key_pem"), 0600, now);
	if (r == 0)
		r = add_member(tar, files, "ca-bundle.pem", cab, 0644, now);
	if (r == 0)
		r = add_member(tar, files, "install.json", install, 0644, now);
out:
	free(machine);
	free(install);
	free(cab);
	return r;
}

int att_airgap_pack(const struct att_svc *svc, const json_t *b, uint8_t **ret, size_t *ret_len,
		    char ret_exporter_serial[80], char *reterr, size_t errlen)
{
	struct att_buf tar;
	json_t *files = json_array(), *man = NULL;
	char *mtext = NULL, ts[40];
	uint8_t *sig = NULL;
	size_t siglen = 0;
	int64_t now = att_now().sec;
	int r;

	att_buf_init(&tar, ATT_AIRGAP_MAX_INFLATED);
	att_time_iso_utc(att_now(), ts);
	r = files ? pack_members(svc, b, &tar, files, now) : ATT_E_NOMEM;
	if (r == 0) {
		man = json_pack("{s:s,s:s?,s:s,s:s,s:{s:s?,s:s},s:O}", "format", ATT_AIRGAP_FORMAT, "machine_id",
				str(b, "machine_id"), "exported_at", ts, "digest_algorithm", "sha-384", "exporter",
				"service_url", svc->cfg->service_url, "ca_serial", att_ca_serial(svc->ca), "files", files);
		mtext = man ? json_dumps(man, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
		r = mtext ? 0 : ATT_E_NOMEM;
	}
	if (r == 0)
		r = att_exporter_sign(svc->ca, svc->cfg->enrollment_ca_dir, (const uint8_t *)mtext, strlen(mtext), &sig,
				      &siglen, ret_exporter_serial, reterr, errlen);
	if (r == 0)
		r = att_tar_add(&tar, "manifest.json", mtext, strlen(mtext), 0644, now);
	if (r == 0)
		r = att_tar_add(&tar, "manifest.sig", sig, siglen, 0644, now);
	if (r == 0)
		r = att_tar_finish(&tar);
	if (r == 0)
		r = att_gzip((const uint8_t *)tar.p, tar.len, ret, ret_len);
	if (tar.p)
		att_wipe(tar.p, tar.len);	/* it holds the enrollment key */
	att_buf_release(&tar);
	free(mtext);
	free(sig);
	json_decref(man);
	json_decref(files);
	return r;
}

/* ---- opening ------------------------------------------------------------------------ */

static const struct att_tar_member *find(const struct att_airgap *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->m[i].name, name) == 0)
			return &a->m[i];
	return NULL;
}

static json_t *parse_json(const struct att_tar_member *m, const char *what, char *reterr, size_t errlen)
{
	json_error_t e;
	json_t *j = json_loadb((const char *)m->data, m->size, JSON_REJECT_DUPLICATES, &e);

	if (!j || !json_is_object(j)) {
		snprintf(reterr, errlen, "%s: not a JSON object (%s)", what, j ? "wrong type" : e.text);
		json_decref(j);
		return NULL;
	}
	return j;
}

static bool is_hex96(const char *s)
{
	if (!s || strlen(s) != 96)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* One manifest entry against its member; marks it seen. */
static int check_entry(struct att_airgap *a, json_t *f, bool *seen, char *reterr, size_t errlen)
{
	const char *name = str(f, "name"), *want = str(f, "sha384");
	json_t *size = json_object_get(f, "size");
	char hex[97];
	size_t i;

	if (!name || !is_hex96(want) || !json_is_integer(size) || json_object_size(f) != 3) {
		snprintf(reterr, errlen, "manifest: each file needs exactly name, size and sha384 (96 lowercase hex)");
		return ATT_E_INVAL;
	}
	for (i = 0; i < a->n && strcmp(a->m[i].name, name) != 0; i++)
		;
	if (i == a->n || strcmp(name, "manifest.json") == 0 || strcmp(name, "manifest.sig") == 0) {
		snprintf(reterr, errlen, "manifest lists '%.100s', which is not a signed member of the archive", name);
		return ATT_E_INVAL;
	}
	if (seen[i]) {
		snprintf(reterr, errlen, "manifest lists '%.100s' twice", name);
		return ATT_E_INVAL;
	}
	seen[i] = true;
	sha384_hex(a->m[i].data, a->m[i].size, hex);
	if (json_integer_value(size) != (json_int_t)a->m[i].size || strcmp(hex, want) != 0) {
		snprintf(reterr, errlen, "member '%s' does not match its SHA-384 digest in the manifest", name);
		return ATT_E_INVAL;
	}
	return 0;
}

int att_airgap_check_members(struct att_airgap *a, char *reterr, size_t errlen)
{
	const struct att_tar_member *man = find(a, "manifest.json");
	bool seen[ATT_AIRGAP_MAX_MEMBERS] = { false };
	json_t *files, *f;
	size_t i;
	int r;

	if (!man || !find(a, "manifest.sig")) {
		snprintf(reterr, errlen, "not an air-gap bundle: manifest.json and manifest.sig are required");
		return ATT_E_INVAL;
	}
	a->manifest = parse_json(man, "manifest.json", reterr, errlen);
	if (!a->manifest)
		return ATT_E_INVAL;
	files = json_object_get(a->manifest, "files");
	if (!str(a->manifest, "format") || strcmp(str(a->manifest, "format"), ATT_AIRGAP_FORMAT) != 0 ||
	    !json_is_array(files)) {
		snprintf(reterr, errlen, "manifest: format must be \"%s\" with a files array", ATT_AIRGAP_FORMAT);
		return ATT_E_INVAL;
	}
	json_array_foreach(files, i, f) {
		if (!json_is_object(f)) {
			snprintf(reterr, errlen, "manifest: files[%zu] is not an object", i);
			return ATT_E_INVAL;
		}
		r = check_entry(a, f, seen, reterr, errlen);
		if (r < 0)
			return r;
	}
	for (i = 0; i < a->n; i++)
		if (!seen[i] && strcmp(a->m[i].name, "manifest.json") != 0 && strcmp(a->m[i].name, "manifest.sig") != 0) {
			snprintf(reterr, errlen, "member '%s' is not listed in the manifest", a->m[i].name);
			return ATT_E_INVAL;
		}
	if (!find(a, "machine.json")) {
		snprintf(reterr, errlen, "not an air-gap bundle: machine.json is missing");
		return ATT_E_INVAL;
	}
	a->machine = parse_json(find(a, "machine.json"), "machine.json", reterr, errlen);
	return a->machine ? 0 : ATT_E_INVAL;
}

int att_airgap_open(const char *trusted, const uint8_t *in, size_t n, struct att_airgap *a, char *reterr,
		    size_t errlen)
{
	const struct att_tar_member *man, *sig;
	size_t len = 0;
	int r;

	memset(a, 0, sizeof(*a));
	if (n > ATT_AIRGAP_MAX_COMPRESSED) {
		snprintf(reterr, errlen, "archive larger than %u bytes", ATT_AIRGAP_MAX_COMPRESSED);
		return ATT_E_LIMIT;
	}
	r = att_gunzip(in, n, ATT_AIRGAP_MAX_INFLATED, &a->tar, &len);
	if (r == ATT_E_LIMIT) {
		snprintf(reterr, errlen, "archive inflates to more than %u bytes", ATT_AIRGAP_MAX_INFLATED);
		return r;
	}
	if (r < 0) {
		snprintf(reterr, errlen, "not a gzip archive, or truncated or corrupt");
		return r;
	}
	a->tar_len = len;
	r = att_tar_parse(a->tar, len, a->m, ATT_AIRGAP_MAX_MEMBERS, ATT_AIRGAP_MAX_MEMBER, &a->n, reterr, errlen);
	if (r < 0)
		return r;
	man = find(a, "manifest.json");
	sig = find(a, "manifest.sig");
	if (!man || !sig) {
		snprintf(reterr, errlen, "not an air-gap bundle: manifest.json and manifest.sig are required");
		return ATT_E_INVAL;
	}
	r = att_exporter_verify(trusted, man->data, man->size, sig->data, sig->size, a->signer, sizeof(a->signer),
				reterr, errlen);
	if (r < 0)
		return r;
	return att_airgap_check_members(a, reterr, errlen);
}

void att_airgap_release(struct att_airgap *a)
{
	json_decref(a->manifest);
	json_decref(a->machine);
	if (a->tar)
		att_wipe(a->tar, a->tar_len);	/* it holds the enrollment key */
	free(a->tar);
	memset(a, 0, sizeof(*a));
}
