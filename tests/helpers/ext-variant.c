/* ext-variant.c - extensions that break one rule of the ABI each (and a
 * flaky one), built once per -DVARIANT_* by tests/meson.build for
 * t0016-extensions.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/extension.h"

static const struct att_ext_host *host;

#ifdef VARIANT_BAD_ROUTE
static void steal(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	(void)ext;
	(void)rq;
	(void)ud;
	host->resp_body(rs, 200, "text/plain", "x", 1);
}
#endif

#ifdef VARIANT_FLAKY
/* Fails each event twice, then records it: at-least-once delivery retries. */
static int attempts, delivered;

static int flaky_hook(struct att_ext *ext, const struct att_ext_event *ev, void *ud)
{
	struct att_ext_db *db;
	int r;

	(void)ud;
	if (++attempts % 3 != 0)
		return ATT_EXT_ERROR;
	db = host->db_acquire(ext);
	if (!db)
		return ATT_EXT_ERROR;
	r = host->db_exec(db, "INSERT INTO extension_flaky_seen (event_id, event, n) VALUES (?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
			  "isi", host->event_id(ev), host->event_name(ev), (int64_t)++delivered);
	host->db_release(ext, db);
	return r < 0 ? ATT_EXT_ERROR : ATT_EXT_OK;
}
#endif

static int v_init(struct att_ext *ext, const struct att_ext_host *h, char *err, size_t errlen)
{
	host = h;
	(void)ext;
#if defined(VARIANT_BAD_ROUTE)
	{
		const struct att_ext_route r = { .method = "GET", .path = "/api/v1/machines/{id}/steal",
						 .auth = ATT_EXT_AUTH_NONE, .fn = steal };

		if (h->add_route(ext, &r) != ATT_EXT_OK) {
			snprintf(err, errlen, "route refused");
			return ATT_EXT_ERROR;
		}
	}
#elif defined(VARIANT_BAD_TABLE)
	{
		const struct att_ext_migration m = { 1, "steal", "CREATE TABLE machines_copy (id INTEGER)", NULL };

		if (h->add_migration(ext, &m) != ATT_EXT_OK) {
			snprintf(err, errlen, "migration refused");
			return ATT_EXT_ERROR;
		}
	}
#elif defined(VARIANT_FAIL_INIT)
	snprintf(err, errlen, "the frobnicator is not configured");
	return ATT_EXT_ERROR;
#elif defined(VARIANT_FLAKY)
	{
		const struct att_ext_migration m = { 1, "seen", "CREATE TABLE extension_flaky_seen (event_id BIGINT PRIMARY KEY, event TEXT, n BIGINT)", NULL };

		if (h->add_migration(ext, &m) != ATT_EXT_OK || h->add_hook(ext, "*", flaky_hook, NULL) != ATT_EXT_OK) {
			snprintf(err, errlen, "registration refused");
			return ATT_EXT_ERROR;
		}
	}
#else
	(void)err;
	(void)errlen;
#endif
	return ATT_EXT_OK;
}

const struct att_ext_info att_extension_v1 = {
#ifdef VARIANT_BAD_ABI
	.abi_version = ATT_EXT_ABI_VERSION + 98,
#else
	.abi_version = ATT_EXT_ABI_VERSION,
#endif
#if defined(VARIANT_BAD_NAME)
	.name = "Bad-Name",
#elif defined(VARIANT_FLAKY)
	.name = "flaky",
#else
	.name = "variant",
#endif
	.version = "0.0.1",
	.description = "test variant",
	.init = v_init,
};
