/* metrics.h - Prometheus text exposition (format 0.0.4).
 *
 * A fixed registry: request counters by route template and status
 * code, and a latency histogram per route template.  Labels never come
 * from request values (route templates are compile-time strings). */
#ifndef ATT_OBS_METRICS_H
#define ATT_OBS_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct att_buf;

#define ATT_METRICS_MAX_ROUTES 64

/* Register route templates once at start-up; returns the index. */
int att_metrics_route(const char *method, const char *template);
void att_metrics_observe(int route, int status, double seconds);
/* Append the exposition to b. */
int att_metrics_render(struct att_buf *b);

#endif
