/* common.c - what every route file shares: identifier shapes, paging,
 * machine replies, boot image URLs (Image Factory schematic). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "factory.h"
#include "routes/routes.h"
#include "talos/factory.h"
#include "talos/schematic.h"


json_t *att_api_str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

bool att_api_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 64)
		return false;
	/* a letter or digit first: ".", ".." and "-x" are never ids */
	if (!((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z') || (id[0] >= '0' && id[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_' || ch == '.'))
			return false;
	}
	return true;
}

bool att_api_paging(struct att_req *rq, struct att_resp *rs, int64_t *page, int64_t *per_page,
			 int64_t def_per_page)
{
	const char *p = att_req_query(rq, "page"), *pp = att_req_query(rq, "per_page");
	uint64_t v;

	*page = 1;
	*per_page = def_per_page;
	if (p) {
		if (att_parse_u64(p, strlen(p), 1, 1000000000, &v) < 0) {
			att_resp_error(rs, 422, "page: must be an integer >= 1");
			return false;
		}
		*page = (int64_t)v;
	}
	if (pp) {
		if (att_parse_u64(pp, strlen(pp), 1, 200, &v) < 0) {
			att_resp_error(rs, 422, "per_page: must be an integer between 1 and 200");
			return false;
		}
		*per_page = (int64_t)v;
	}
	return true;
}

void att_api_reply_machine(struct att_resp *rs, int r, struct att_machine *m, const char *err)
{
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, att_machine_detail(m));
	att_machine_release(m);
}

void att_api_db_unavailable(struct att_resp *rs)
{
	att_resp_error(rs, 503, "%s", att_db_unavailable_detail());
	att_resp_header(rs, "Retry-After", "5");
}

/* ---- Image Factory -------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The one schematic every machine boots: generic talos.config URL (no
 * token), official extensions sorted and de-duplicated. */
int att_api_schematic(const struct att_config *cfg, char **ret_yaml, char ret_id[65])
{
	const char *exts[64];
	size_t n = 0, k = 0;
	char *karg = att_asprintf("talos.config=%s/api/v1/config?mac=${mac}", cfg->service_url);
	const char *kargs[1];
	struct att_schematic s = { 0 };
	int r;

	if (!karg)
		return ATT_E_NOMEM;
	exts[n++] = "siderolabs/gvisor";
	exts[n++] = "siderolabs/intel-ucode";
	for (size_t i = 0; i < cfg->factory_extensions.n && n < 64; i++)
		exts[n++] = cfg->factory_extensions.items[i];
	qsort(exts, n, sizeof(exts[0]), cmp_str);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || strcmp(exts[k - 1], exts[i]) != 0)
			exts[k++] = exts[i];
	kargs[0] = karg;
	s.kernel_args = kargs;
	s.n_kernel_args = 1;
	s.extensions = exts;
	s.n_extensions = k;
	r = att_schematic_yaml(&s, ret_yaml);
	free(karg);
	if (r == 0)
		att_schematic_id(*ret_yaml, ret_id);
	return r;
}

void att_api_boot_urls(const struct att_svc *svc, json_t *o)
{
	char *yaml = NULL, id[65];

	if (svc->cfg->iso_url[0]) {
		json_object_set_new(o, "iso_url", json_string(svc->cfg->iso_url));
		return;
	}
	if (att_api_schematic(svc->cfg, &yaml, id) < 0) {
		json_object_set_new(o, "iso_url", json_null());
		return;
	}
	att_factory_kick();	/* announced by the factory worker, never in a request */
	{
		char *iso = att_factory_iso_url(svc->cfg->factory_url, id, svc->cfg->talos_version);
		char *inst = att_factory_installer_image(svc->cfg->factory_url, id, svc->cfg->talos_version);

		json_object_set_new(o, "iso_url", att_api_str_or_null(iso));
		json_object_set_new(o, "schematic_id", json_string(id));
		json_object_set_new(o, "installer_image", att_api_str_or_null(inst));
		free(iso);
		free(inst);
	}
	free(yaml);
}
