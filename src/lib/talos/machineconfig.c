#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfyaml.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "talos/machineconfig.h"

/* s as a YAML double-quoted scalar (caller frees); NULL on OOM. */
static char *yaml_dq(const char *s)
{
	struct att_buf b;
	int r;

	att_buf_init(&b, 1 << 20);
	r = att_buf_puts(&b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p && r == 0; p++) {
		if (*p == '"' || *p == '\\')
			r = att_buf_printf(&b, "\\%c", *p);
		else if (*p == '\n')
			r = att_buf_puts(&b, "\\n");
		else if (*p < 0x20 || *p == 0x7f)
			r = att_buf_printf(&b, "\\x%02x", *p);
		else
			r = att_buf_append(&b, p, 1);
	}
	if (r == 0)
		r = att_buf_puts(&b, "\"");
	if (r < 0) {
		att_buf_release(&b);
		return NULL;
	}
	return att_buf_steal(&b, NULL);
}

/* A double-quoted YAML scalar node for any UTF-8 string. */
static struct fy_node *qstr(struct fy_document *d, const char *s)
{
	char *src = yaml_dq(s);
	struct fy_node *n;

	if (!src)
		return NULL;
	/* the node keeps pointing into the buffer: hand ownership to libfyaml */
	n = fy_node_build_from_malloc_string(d, src, strlen(src));
	if (!n)
		free(src);
	return n;
}

static struct fy_node *plain(struct fy_document *d, const char *s)
{
	return fy_node_create_scalar_copy(d, s, strlen(s));
}

/* Set map[key] = val, replacing an existing value. */
static int map_set(struct fy_document *d, struct fy_node *map, const char *key, struct fy_node *val)
{
	struct fy_node_pair *pr;

	if (!val)
		return ATT_E_NOMEM;
	pr = fy_node_mapping_lookup_pair_by_string(map, key, FY_NT);
	if (pr)
		return fy_node_pair_set_value(pr, val) == 0 ? 0 : ATT_E_PARSE;
	return fy_node_mapping_append(map, plain(d, key), val) == 0 ? 0 : ATT_E_NOMEM;
}

/* map[key] as a mapping, created when absent; NULL if it is another type. */
static struct fy_node *map_child(struct fy_document *d, struct fy_node *map, const char *key)
{
	struct fy_node *v = fy_node_mapping_lookup_by_string(map, key, FY_NT);

	if (v && fy_node_is_mapping(v))
		return v;
	if (v && !(fy_node_is_scalar(v) && fy_node_get_scalar0(v) &&
		   (strcmp(fy_node_get_scalar0(v), "") == 0 || strcmp(fy_node_get_scalar0(v), "null") == 0 ||
		    strcmp(fy_node_get_scalar0(v), "~") == 0)))
		return NULL;
	v = fy_node_create_mapping(d);
	if (!v || map_set(d, map, key, v) < 0)
		return NULL;
	return v;
}

static int patch_doc(struct fy_document *d, const struct att_mc_params *p, bool hostname_doc,
		     char *reterr, size_t errlen)
{
	struct fy_node *root = fy_document_root(d), *machine, *install, *net, *labels, *ann;
	char ek16[17] = "";

	if (!root || !fy_node_is_mapping(root)) {
		snprintf(reterr, errlen, "base config: document root is not a mapping");
		return ATT_E_PARSE;
	}
	machine = map_child(d, root, "machine");
	if (!machine)
		goto bad;
	install = map_child(d, machine, "install");
	if (!install)
		goto bad;
	if (p->installer_image && *p->installer_image &&
	    !fy_node_mapping_lookup_by_string(install, "image", FY_NT) &&
	    map_set(d, install, "image", qstr(d, p->installer_image)) < 0)
		goto bad;
	if ((!hostname_doc && p->hostname && *p->hostname) || (p->assigned_ip && *p->assigned_ip)) {
		net = map_child(d, machine, "network");
		if (!net)
			goto bad;
		if (!hostname_doc && p->hostname && *p->hostname &&
		    map_set(d, net, "hostname", qstr(d, p->hostname)) < 0)
			goto bad;
		if (p->assigned_ip && *p->assigned_ip) {
			struct fy_node *ifs = fy_node_mapping_lookup_by_string(net, "interfaces", FY_NT);
			struct fy_node *first = NULL;

			if (ifs && fy_node_is_sequence(ifs) && fy_node_sequence_item_count(ifs) > 0)
				first = fy_node_sequence_get_by_index(ifs, 0);
			if (first && fy_node_is_mapping(first)) {
				struct fy_node *addrs = fy_node_mapping_lookup_by_string(first, "addresses", FY_NT);

				if (!addrs || !fy_node_is_sequence(addrs)) {
					addrs = fy_node_create_sequence(d);
					if (!addrs || map_set(d, first, "addresses", addrs) < 0)
						goto bad;
				}
				if (fy_node_sequence_append(addrs, qstr(d, p->assigned_ip)) != 0)
					goto bad;
			} else {
				struct fy_node *seq = fy_node_create_sequence(d);
				struct fy_node *ifm = fy_node_create_mapping(d);
				struct fy_node *addrs = fy_node_create_sequence(d);
				struct fy_node *routes = fy_node_build_from_string(d, "[]", 2);

				if (!seq || !ifm || !addrs || !routes)
					goto bad;
				if (map_set(d, ifm, "interface", qstr(d, "eth0")) < 0 ||
				    fy_node_sequence_append(addrs, qstr(d, p->assigned_ip)) != 0 ||
				    map_set(d, ifm, "addresses", addrs) < 0 ||
				    map_set(d, ifm, "routes", routes) < 0 ||
				    fy_node_sequence_append(seq, ifm) != 0 ||
				    map_set(d, net, "interfaces", seq) < 0)
					goto bad;
			}
		}
	}
	if (p->ek_fingerprint)
		snprintf(ek16, sizeof(ek16), "%.16s", p->ek_fingerprint);
	labels = map_child(d, machine, "nodeLabels");
	if (!labels || map_set(d, labels, "itl.io/machine-id", qstr(d, p->machine_id)) < 0 ||
	    map_set(d, labels, "itl.io/tpm-ek", qstr(d, ek16)) < 0 ||
	    map_set(d, labels, "itl.io/attested", qstr(d, "true")) < 0)
		goto bad;
	ann = map_child(d, machine, "nodeAnnotations");
	if (!ann ||
	    map_set(d, ann, "itl.io/tpm-ek-full", qstr(d, p->ek_fingerprint ? p->ek_fingerprint : "")) < 0 ||
	    map_set(d, ann, "itl.io/machine-id", qstr(d, p->machine_id)) < 0)
		goto bad;
	if (p->nfiles) {
		struct fy_node *files = fy_node_mapping_lookup_by_string(machine, "files", FY_NT);

		if (!files) {
			files = fy_node_create_sequence(d);
			if (!files || map_set(d, machine, "files", files) < 0)
				goto bad;
		}
		if (!fy_node_is_sequence(files))
			goto bad;
		for (size_t i = 0; i < p->nfiles; i++) {
			struct fy_node *f = fy_node_create_mapping(d);
			char perm[16];

			snprintf(perm, sizeof(perm), "%d", p->files[i].permissions);
			if (!f || map_set(d, f, "content", qstr(d, p->files[i].content)) < 0 ||
			    map_set(d, f, "op", qstr(d, "create")) < 0 || map_set(d, f, "path", qstr(d, p->files[i].path)) < 0 ||
			    map_set(d, f, "permissions", plain(d, perm)) < 0 || fy_node_sequence_append(files, f) != 0)
				goto bad;
		}
	}
	return 0;
bad:
	snprintf(reterr, errlen, "base config: cannot apply machine patches (unexpected structure under 'machine')");
	return ATT_E_PARSE;
}

static bool is_kind(struct fy_node *root, const char *kind)
{
	struct fy_node *k = fy_node_mapping_lookup_by_string(root, "kind", FY_NT);
	const char *v = k && fy_node_is_scalar(k) ? fy_node_get_scalar0(k) : NULL;

	return v && strcmp(v, kind) == 0;
}

/* Talos >= 1.12: the hostname lives in a HostnameConfig document, where
 * an explicit hostname needs "auto: off" (talos.md section 2.1). */
static int patch_hostname_doc(struct fy_document *d, const char *hostname)
{
	struct fy_node *root = fy_document_root(d);

	if (map_set(d, root, "hostname", qstr(d, hostname)) < 0 ||
	    map_set(d, root, "auto", plain(d, "off")) < 0)
		return ATT_E_PARSE;
	return 0;
}

/* libfyaml diagnostics go to a buffer (the first message is kept for
 * the operator-facing error), never to stderr. */
struct diag_buf {
	char msg[256];
};

static void diag_out(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	struct diag_buf *d = user;
	size_t n = strlen(d->msg);

	(void)diag;
	if (n == 0) {
		/* drop the "<memory-@0x...>:" source prefix, keep "line:col: error: ..." */
		if (len && buf[0] == '<') {
			const char *e = memchr(buf, '>', len);

			if (e && (size_t)(e - buf) + 2 <= len && e[1] == ':') {
				len -= (size_t)(e - buf) + 2;
				buf = e + 2;
			}
		}
		while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
			len--;
		if (len >= sizeof(d->msg))
			len = sizeof(d->msg) - 1;
		memcpy(d->msg, buf, len);
		d->msg[len] = '\0';
		for (char *q = d->msg; *q; q++)
			if (*q == '\n' || (unsigned char)*q < 0x20)
				*q = ' ';
	}
}

int att_machineconfig_patch(const char *base, size_t len, const struct att_mc_params *p,
			    char **ret_yaml, char *reterr, size_t errlen)
{
	struct diag_buf dbuf = { "" };
	struct fy_diag_cfg dcfg;
	struct fy_diag *diag;
	struct fy_parse_cfg cfg = { .flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_AUTO };
	struct fy_parser *fyp;
	struct fy_document *d;
	struct att_buf out;
	int r = 0, ndocs = 0;
	bool patched = false, hostname_doc = false;

	if (len > ATT_MC_MAX_BASE) {
		snprintf(reterr, errlen, "base config larger than %d bytes", ATT_MC_MAX_BASE);
		return ATT_E_PARSE;
	}
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_out;
	dcfg.user = &dbuf;
	dcfg.colorize = false;
	dcfg.show_source = false;
	diag = fy_diag_create(&dcfg);
	if (!diag)
		return ATT_E_NOMEM;
	cfg.diag = diag;
	fyp = fy_parser_create(&cfg);
	if (!fyp) {
		fy_diag_destroy(diag);
		return ATT_E_NOMEM;
	}
	if (fy_parser_set_string(fyp, base, len) != 0) {
		fy_parser_destroy(fyp);
		fy_diag_destroy(diag);
		return ATT_E_NOMEM;
	}
	att_buf_init(&out, 16 * 1024 * 1024);
	/* first pass: is there a HostnameConfig document? */
	{
		struct fy_parser *scan = fy_parser_create(&cfg);

		if (!scan || fy_parser_set_string(scan, base, len) != 0) {
			fy_parser_destroy(scan);
			fy_parser_destroy(fyp);
			fy_diag_destroy(diag);
			return ATT_E_NOMEM;
		}
		while ((d = fy_parse_load_document(scan)) != NULL) {
			struct fy_node *root = fy_document_root(d);

			if (root && fy_node_is_mapping(root) && is_kind(root, "HostnameConfig"))
				hostname_doc = true;
			fy_parse_document_destroy(scan, d);
		}
		fy_parser_destroy(scan);
	}
	if (!(p->hostname && *p->hostname))
		hostname_doc = false;
	while ((d = fy_parse_load_document(fyp)) != NULL) {
		struct fy_node *root = fy_document_root(d);
		char *text;

		if (!root) {
			fy_parse_document_destroy(fyp, d);
			continue;
		}
		if (!patched && fy_node_is_mapping(root) &&
		    (fy_node_mapping_lookup_by_string(root, "machine", FY_NT) ||
		     fy_node_mapping_lookup_by_string(root, "version", FY_NT))) {
			r = patch_doc(d, p, hostname_doc, reterr, errlen);
			patched = true;
		} else if (hostname_doc && fy_node_is_mapping(root) && is_kind(root, "HostnameConfig")) {
			r = patch_hostname_doc(d, p->hostname);
			if (r < 0)
				snprintf(reterr, errlen, "base config: cannot set the hostname in HostnameConfig");
		}
		if (r == 0) {
			text = fy_emit_document_to_string(d, FYECF_MODE_BLOCK | FYECF_INDENT_2 |
							       FYECF_WIDTH_INF | FYECF_DOC_START_MARK_OFF);
			if (!text)
				r = ATT_E_NOMEM;
			else {
				if (ndocs)
					r = att_buf_puts(&out, "---\n");
				if (r == 0)
					r = att_buf_puts(&out, text);
				free(text);
			}
		}
		fy_parse_document_destroy(fyp, d);
		ndocs++;
		if (r < 0)
			break;
	}
	if (r == 0 && fy_parser_get_stream_error(fyp)) {
		snprintf(reterr, errlen, "base config: invalid YAML%s%s", dbuf.msg[0] ? ": " : "", dbuf.msg);
		r = ATT_E_PARSE;
	}
	if (r == 0 && !patched) {
		snprintf(reterr, errlen, "base config: no v1alpha1 document with a 'machine' section");
		r = ATT_E_PARSE;
	}
	fy_parser_destroy(fyp);
	fy_diag_destroy(diag);
	if (r < 0) {
		att_buf_release(&out);
		return r;
	}
	*ret_yaml = att_buf_steal(&out, NULL);
	return *ret_yaml ? 0 : ATT_E_NOMEM;
}

int att_machineconfig_render(const char *cache_dir, const struct att_mc_params *p,
			     char **ret_yaml, char *reterr, size_t errlen)
{
	char path[4096];
	struct att_buf b;
	char chunk[8192];
	FILE *f;
	size_t n;
	int r = 0;

	if (snprintf(path, sizeof(path), "%s/%s-final.yaml", cache_dir, p->role) >= (int)sizeof(path))
		return ATT_E_INVAL;
	f = fopen(path, "re");
	if (!f) {
		snprintf(reterr, errlen, "Base config not available — ensure CI configs are downloaded (%s: %s)",
			 path, strerror(errno));
		return ATT_E_UNAVAILABLE;
	}
	att_buf_init(&b, ATT_MC_MAX_BASE);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		r = att_buf_append(&b, chunk, n);
		if (r < 0)
			break;
	}
	if (ferror(f) && r == 0)
		r = ATT_E_IO;
	fclose(f);
	if (r < 0) {
		snprintf(reterr, errlen, "Base config not available — cannot read %s", path);
		att_buf_release(&b);
		return ATT_E_UNAVAILABLE;
	}
	r = att_machineconfig_patch(b.p ? b.p : "", b.len, p, ret_yaml, reterr, errlen);
	att_buf_release(&b);
	return r;
}

int att_machineconfig_partial(const char *service_url, char **ret_yaml)
{
	char *env = att_asprintf("ITL_REG_URL=%s", service_url);
	char *q = env ? yaml_dq(env) : NULL;
	char *y;

	free(env);
	if (!q)
		return ATT_E_NOMEM;
	y = att_asprintf("# attestd: partial Talos config for machines booting the generic ISO\n"
			 "# (talos.config=<service>/api/v1/config).  It has no v1alpha1 machine\n"
			 "# document, so Talos stays in maintenance mode, where the %s\n"
			 "# extension attests with the TPM and applies this machine's real config.\n"
			 "apiVersion: v1alpha1\n"
			 "kind: ExtensionServiceConfig\n"
			 "name: %s\n"
			 "environment:\n"
			 "    - %s\n",
			 ATT_MC_AGENT_SERVICE, ATT_MC_AGENT_SERVICE, q);
	free(q);
	if (!y)
		return ATT_E_NOMEM;
	*ret_yaml = y;
	return 0;
}
