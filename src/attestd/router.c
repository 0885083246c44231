/* router.c - the route table: the core slices of routes/ in matching
 * order, then the routes extensions registered.  Built once at start-up,
 * read-only afterwards.  Templates match segment by segment; "{name}"
 * captures one non-empty segment (at most ATT_ROUTE_MAX_PARAMS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "http.h"
#include "obs/metrics.h"
#include "routes/routes.h"

static const struct att_route_set *const core[] = {
	&att_routes_ops,
	&att_routes_node,
	&att_routes_attest,
	&att_routes_config,
	&att_routes_machines,
	&att_routes_certs,
	&att_routes_selfenroll,
	&att_routes_ca,
	&att_routes_tpm,
	&att_routes_pcr_policies,
	&att_routes_audit,
	&att_routes_checkpoints,
	&att_routes_extensions,
	&att_routes_fleet,
	&att_routes_events,
	&att_routes_secrets,
	&att_routes_autoapprove,
	&att_routes_ui,
	&att_routes_agents,
	&att_routes_airgap,
};

static struct att_route *table;
static int *metrics;
static size_t ntable;

/* Does path match template?  Captures {x} segments into rq (if given). */
static bool path_match(const char *tpl, const char *path, struct att_req *rq)
{
	const char *t = tpl, *p = path;
	int n = 0;
	char *caps[ATT_ROUTE_MAX_PARAMS] = { 0 };

	while (*t && *p) {
		if (*t == '{') {
			const char *te = strchr(t, '}');
			const char *pe = t[1] == '*' ? NULL : strchr(p, '/');	/* {*x}: the rest, slashes too */
			size_t len = pe ? (size_t)(pe - p) : strlen(p);

			if (!te || len == 0 || len > (t[1] == '*' ? 8192 : 256) || n >= ATT_ROUTE_MAX_PARAMS)
				goto no;
			if (rq) {
				caps[n] = att_strndup(p, len);
				if (!caps[n])
					goto no;
			}
			n++;
			t = te + 1;
			p += len;
			continue;
		}
		if (*t != *p)
			goto no;
		t++;
		p++;
	}
	if (*t || *p)
		goto no;
	if (rq) {
		for (int i = 0; i < n; i++)
			rq->params[i] = caps[i];
		rq->nparams = n;
	}
	return true;
no:
	for (int i = 0; i < ATT_ROUTE_MAX_PARAMS; i++)
		free(caps[i]);
	return false;
}

/* Two templates that can match the same path for the same method. */
static bool overlaps(const struct att_route *a, const struct att_route *b)
{
	const char *x = a->path, *y = b->path;

	if (strcmp(a->method, b->method) != 0)
		return false;
	while (*x && *y) {
		if (*x == '{' || *y == '{') {
			const char *xe = *x == '{' ? strchr(x, '}') + 1 : x + strcspn(x, "/");
			const char *ye = *y == '{' ? strchr(y, '}') + 1 : y + strcspn(y, "/");

			x = xe;
			y = ye;
			continue;
		}
		if (*x != *y)
			return false;
		x++;
		y++;
	}
	return !*x && !*y;
}

int att_router_build(const struct att_route *extra, size_t nextra, char *reterr, size_t errlen)
{
	size_t n = nextra, k = 0;

	for (size_t i = 0; i < ATT_ARRAY_SIZE(core); i++)
		n += core[i]->n;
	table = calloc(n, sizeof(*table));
	metrics = calloc(n, sizeof(*metrics));
	if (!table || !metrics) {
		att_router_free();
		return ATT_E_NOMEM;
	}
	for (size_t i = 0; i < ATT_ARRAY_SIZE(core); i++)
		for (size_t j = 0; j < core[i]->n; j++)
			table[k++] = core[i]->routes[j];
	for (size_t i = 0; i < nextra; i++) {
		for (size_t j = 0; j < k; j++) {
			if (overlaps(&extra[i], &table[j])) {
				snprintf(reterr, errlen, "route %s %s overlaps %s %s", extra[i].method, extra[i].path,
					 table[j].method, table[j].path);
				att_router_free();
				return ATT_E_CONFLICT;
			}
		}
		table[k++] = extra[i];
	}
	ntable = k;
	for (size_t i = 0; i < ntable; i++)
		metrics[i] = att_metrics_route(table[i].method, table[i].path);
	return 0;
}

void att_router_free(void)
{
	free(table);
	free(metrics);
	table = NULL;
	metrics = NULL;
	ntable = 0;
}

const struct att_route *att_router_find(const char *method, const char *url, bool *ret_known,
					char allow[128], int *ret_index)
{
	bool known = false;

	allow[0] = '\0';
	for (size_t i = 0; i < ntable; i++) {
		if (!path_match(table[i].path, url, NULL))
			continue;
		known = true;
		if (strcmp(table[i].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(table[i].method, "GET") == 0)) {
			*ret_index = (int)i;
			*ret_known = true;
			return &table[i];
		}
		if (!strstr(allow, table[i].method))
			snprintf(allow + strlen(allow), 128 - strlen(allow), "%s%s", allow[0] ? ", " : "",
				 table[i].method);
	}
	*ret_known = known;
	return NULL;
}

bool att_router_capture(const struct att_route *r, const char *url, struct att_req *rq)
{
	return path_match(r->path, url, rq);
}

const char *att_req_param(const struct att_req *rq, const char *name)
{
	const char *t = rq->route ? rq->route->path : "";
	size_t nl = strlen(name);
	int i = 0;

	for (; (t = strchr(t, '{')) != NULL; t++, i++) {
		if (strncmp(t + 1, name, nl) == 0 && t[1 + nl] == '}')
			return i < rq->nparams ? rq->params[i] : NULL;
	}
	return NULL;
}

int att_router_metric(int index)
{
	return index >= 0 && (size_t)index < ntable ? metrics[index] : 0;
}

const struct att_route *att_router_routes(size_t *ret_n)
{
	*ret_n = ntable;
	return table;
}
