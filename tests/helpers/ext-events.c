/* ext-events.c - the "evtest" extension of t0019-events.sh: typed hooks
 * that record the contexts they get, a hook that overruns its timeout
 * (node.locked), one that always fails (node.unlocked) and one that gives
 * up at once (node.decommissioned). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attest/extension.h"

static const struct att_ext_host *host;

static int record(struct att_ext *ext, int64_t id, const char *kind, const char *a, const char *b, const char *c)
{
	struct att_ext_db *db = host->db_acquire(ext);
	int r;

	if (!db)
		return ATT_EXT_ERROR;
	r = host->db_exec(db,
			  "INSERT INTO extension_evtest_seen (event_id, kind, a, b, c) VALUES (?, ?, ?, ?, ?)"
			  " ON CONFLICT (event_id, kind) DO NOTHING",
			  "issss", id, kind, a, b, c);
	host->db_release(ext, db);
	return r < 0 ? ATT_EXT_ERROR : ATT_EXT_OK;
}

static int on_registered(struct att_ext *ext, const struct att_ext_context *c, void *ud)
{
	char extra[256];

	(void)ud;
	snprintf(extra, sizeof(extra), "tpm=%d ip=%s uuid=%s", c->tpm_available, c->ip_address ? c->ip_address : "-",
		 c->hardware.hw_uuid ? c->hardware.hw_uuid : "-");
	return record(ext, c->id, "registered", c->mac_address, c->hardware.hw_product, extra);
}

static int on_role_changed(struct att_ext *ext, const struct att_ext_context *c, void *ud)
{
	(void)ud;
	return record(ext, c->id, "role_changed", c->previous_role, c->new_role, c->hostname);
}

static int on_any(struct att_ext *ext, const struct att_ext_context *c, void *ud)
{
	char common[256];

	(void)ud;
	snprintf(common, sizeof(common), "%s|%s|%s", c->machine_id ? c->machine_id : "-",
		 c->ek_fingerprint ? "fp" : "-", c->timestamp && c->raw[0] == '{' ? "ts,raw" : "-");
	return record(ext, c->id, "any", c->event, common, NULL);
}

static int on_locked(struct att_ext *ext, const struct att_ext_event *ev, void *ud)
{
	(void)ud;
	sleep(3);	/* beyond ITL_EVENT_HOOK_TIMEOUT_SECONDS=1 of the test */
	return record(ext, host->event_id(ev), "locked_late", NULL, NULL, NULL);
}

static int on_unlocked(struct att_ext *ext, const struct att_ext_event *ev, void *ud)
{
	(void)ext;
	(void)ud;
	host->event_error(ev, "receiver said no (attempt %d)", host->event_attempt(ev));
	return ATT_EXT_ERROR;
}

static int on_decommissioned(struct att_ext *ext, const struct att_ext_event *ev, void *ud)
{
	(void)ext;
	(void)ud;
	host->event_error(ev, "no such node in the inventory");
	return ATT_EXT_PERMANENT;
}

static int init(struct att_ext *ext, const struct att_ext_host *h, char *err, size_t errlen)
{
	static const struct att_ext_migration m = {
		1, "contexts seen",
		"CREATE TABLE extension_evtest_seen (event_id BIGINT NOT NULL, kind TEXT NOT NULL, a TEXT, b TEXT,"
		" c TEXT, PRIMARY KEY (event_id, kind))",
		NULL,
	};

	host = h;
	if (!ATT_EXT_HOST_HAS(h, add_context_hook) || h->add_migration(ext, &m) != ATT_EXT_OK ||
	    att_ext_on_registered(h, ext, on_registered, NULL) != ATT_EXT_OK ||
	    att_ext_on_role_changed(h, ext, on_role_changed, NULL) != ATT_EXT_OK ||
	    att_ext_on_any_event(h, ext, on_any, NULL) != ATT_EXT_OK ||
	    h->add_hook(ext, "node.locked", on_locked, NULL) != ATT_EXT_OK ||
	    h->add_hook(ext, "node.unlocked", on_unlocked, NULL) != ATT_EXT_OK ||
	    h->add_hook(ext, "node.decommissioned", on_decommissioned, NULL) != ATT_EXT_OK) {
		snprintf(err, errlen, "registration refused");
		return ATT_EXT_ERROR;
	}
	return ATT_EXT_OK;
}

const struct att_ext_info att_extension_v1 = {
	.abi_version = ATT_EXT_ABI_VERSION,
	.name = "evtest",
	.version = "0.0.1",
	.description = "records typed event contexts; slow, failing and giving-up hooks",
	.init = init,
};
