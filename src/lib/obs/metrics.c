#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "obs/metrics.h"

static const int statuses[] = { 200, 201, 202, 204, 400, 401, 403, 404, 405, 406, 409,
				410, 413, 415, 422, 429, 500, 502, 503 };
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))
static const double buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 };
#define NBUCKET (sizeof(buckets) / sizeof(buckets[0]))

struct route_metrics {
	const char *method;
	const char *template;
	atomic_uint_fast64_t count[NSTATUS + 1]; /* last: other */
	atomic_uint_fast64_t bucket[NBUCKET];
	atomic_uint_fast64_t total;
	atomic_uint_fast64_t sum_us;
};

static struct route_metrics routes[ATT_METRICS_MAX_ROUTES];
static int nroutes;

int att_metrics_route(const char *method, const char *template)
{
	for (int i = 0; i < nroutes; i++)
		if (strcmp(routes[i].method, method) == 0 && strcmp(routes[i].template, template) == 0)
			return i;
	if (nroutes >= ATT_METRICS_MAX_ROUTES)
		return ATT_METRICS_MAX_ROUTES - 1;
	routes[nroutes].method = method;
	routes[nroutes].template = template;
	return nroutes++;
}

void att_metrics_observe(int route, int status, double seconds)
{
	struct route_metrics *m;
	size_t si = NSTATUS;

	if (route < 0 || route >= nroutes)
		return;
	m = &routes[route];
	for (size_t i = 0; i < NSTATUS; i++)
		if (statuses[i] == status) {
			si = i;
			break;
		}
	atomic_fetch_add_explicit(&m->count[si], 1, memory_order_relaxed);
	for (size_t i = 0; i < NBUCKET; i++)
		if (seconds <= buckets[i])
			atomic_fetch_add_explicit(&m->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->total, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->sum_us, (uint_fast64_t)(seconds * 1e6), memory_order_relaxed);
}

int att_metrics_render(struct att_buf *b)
{
	int r = 0;

	r = att_buf_puts(b, "# HELP attestd_http_requests_total HTTP requests by route and status.\n"
			    "# TYPE attestd_http_requests_total counter\n");
	for (int i = 0; i < nroutes && r == 0; i++)
		for (size_t s = 0; s <= NSTATUS && r == 0; s++) {
			uint_fast64_t v = atomic_load_explicit(&routes[i].count[s], memory_order_relaxed);

			if (!v)
				continue;
			if (s < NSTATUS)
				r = att_buf_printf(b, "attestd_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n",
						   routes[i].method, routes[i].template, statuses[s],
						   (unsigned long long)v);
			else
				r = att_buf_printf(b, "attestd_http_requests_total{method=\"%s\",route=\"%s\",status=\"other\"} %llu\n",
						   routes[i].method, routes[i].template, (unsigned long long)v);
		}
	if (r == 0)
		r = att_buf_puts(b, "# HELP attestd_http_request_duration_seconds HTTP request latency by route.\n"
				    "# TYPE attestd_http_request_duration_seconds histogram\n");
	for (int i = 0; i < nroutes && r == 0; i++) {
		uint_fast64_t total = atomic_load_explicit(&routes[i].total, memory_order_relaxed);

		if (!total)
			continue;
		for (size_t k = 0; k < NBUCKET && r == 0; k++)
			r = att_buf_printf(b, "attestd_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} %llu\n",
					   routes[i].method, routes[i].template, buckets[k],
					   (unsigned long long)atomic_load_explicit(&routes[i].bucket[k], memory_order_relaxed));
		if (r == 0)
			r = att_buf_printf(b,
					   "attestd_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n"
					   "attestd_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n"
					   "attestd_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n",
					   routes[i].method, routes[i].template, (unsigned long long)total,
					   routes[i].method, routes[i].template,
					   (double)atomic_load_explicit(&routes[i].sum_us, memory_order_relaxed) / 1e6,
					   routes[i].method, routes[i].template, (unsigned long long)total);
	}
	return r;
}
