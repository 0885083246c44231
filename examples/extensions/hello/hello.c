/* hello.c - the smallest useful attestd extension (ABI v1).
 *
 * It shows the three things an extension registers:
 *   - a migration: its own table extension_hello_events;
 *   - a hook on every lifecycle event ("*") that records the event there;
 *   - a route, GET /api/v1/ext/hello/greeting?name=..., answering JSON
 *     with the number of events seen so far (operators only).
 *
 * Build:  cc -shared -fPIC -I<attestation>/include -o hello.so hello.c
 * Load:   ITL_EXTENSIONS=/path/to/hello.so attestd
 * It uses only include/attest/extension.h. */
#include <stdio.h>
#include <string.h>

#include "attest/extension.h"

static const struct att_ext_host *host;

static const struct att_ext_migration v1 = {
	.version = 1,
	.name = "events seen by the hello extension",
	.sqlite = "CREATE TABLE extension_hello_events (event_id INTEGER PRIMARY KEY, event TEXT NOT NULL,"
		  " machine_id TEXT, seen_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
	.postgresql = "CREATE TABLE extension_hello_events (event_id BIGINT PRIMARY KEY, event TEXT NOT NULL,"
		      " machine_id TEXT, seen_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
};

/* Events arrive at least once: the primary key makes a repeat a no-op. */
static int on_any_event(struct att_ext *ext, const struct att_ext_event *ev, void *ud)
{
	struct att_ext_db *db = host->db_acquire(ext);
	int r;

	(void)ud;
	if (!db)
		return ATT_EXT_ERROR;
	r = host->db_exec(db,
			  "INSERT INTO extension_hello_events (event_id, event, machine_id) VALUES (?, ?, ?)"
			  " ON CONFLICT (event_id) DO NOTHING",
			  "iss", host->event_id(ev), host->event_name(ev), host->event_field(ev, "machine_id"));
	host->db_release(ext, db);
	if (r < 0)
		return ATT_EXT_ERROR;
	host->log(ext, ATT_EXT_LOG_INFO, "saw %s for machine %s", host->event_name(ev),
		  host->event_field(ev, "machine_id") ? host->event_field(ev, "machine_id") : "-");
	return ATT_EXT_OK;
}

/* Only letters, digits and '-' go into the reply, so no JSON escaping is needed. */
static int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '-'))
			return 0;
	return 1;
}

static void greeting(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	const char *name = host->req_query(rq, "name");
	struct att_ext_db *db;
	struct att_ext_rows *rows;
	long long seen = -1;
	char body[256];
	int n;

	(void)ud;
	if (!name)
		name = "operator";
	if (!name_ok(name)) {
		host->resp_error(rs, 422, "name: 1-64 letters, digits or '-'");
		return;
	}
	db = host->db_acquire(ext);
	if (!db) {
		host->resp_error(rs, 503, "Database unavailable");
		return;
	}
	if (host->db_query(db, &rows, "SELECT COUNT(*) FROM extension_hello_events", "") == ATT_EXT_OK) {
		if (host->rows_next(rows) == 1)
			seen = (long long)host->rows_int(rows, 0);
		host->rows_done(rows);
	}
	host->db_release(ext, db);
	if (seen < 0) {
		host->resp_error(rs, 503, "Database unavailable");
		return;
	}
	n = snprintf(body, sizeof(body), "{\"greeting\":\"hello, %s\",\"caller\":\"%s\",\"events_seen\":%lld}", name,
		     host->req_identity(rq) ? "operator" : "anonymous", seen);
	host->resp_body(rs, 200, "application/json", body, (size_t)n);
}

static int hello_init(struct att_ext *ext, const struct att_ext_host *h, char *err, size_t errlen)
{
	const struct att_ext_route route = {
		.method = "GET",
		.path = "/api/v1/ext/hello/greeting",
		.auth = ATT_EXT_AUTH_OPERATOR,
		.fn = greeting,
	};

	host = h;
	if (h->add_migration(ext, &v1) != ATT_EXT_OK || h->add_route(ext, &route) != ATT_EXT_OK ||
	    h->add_hook(ext, "*", on_any_event, NULL) != ATT_EXT_OK) {
		snprintf(err, errlen, "registration refused");
		return ATT_EXT_ERROR;
	}
	return ATT_EXT_OK;
}

const struct att_ext_info att_extension_v1 = {
	.abi_version = ATT_EXT_ABI_VERSION,
	.name = "hello",
	.version = "1.0.0",
	.description = "records every lifecycle event and greets operators",
	.init = hello_init,
};
