/* outbox.c - lifecycle events (node.registered, node.provisioned, ...)
 * written to outbox_events in the same transaction as the state change
 * they report; delivery reads them from there. */
#include <stdlib.h>

#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"

int att_machine_outbox(struct att_dbc *c, const char *event, const struct att_machine *m,
		  const char *new_status, json_t *meta)
{
	json_t *p = json_object(), *node = json_object();
	char ts[32], *js;
	int r;

	att_time_iso(att_now(), ts);
	if (!p || !node) {
		json_decref(p);
		json_decref(node);
		json_decref(meta);
		return ATT_E_NOMEM;
	}
	att_machine_json_set_str(node, "machine_id", M(m, MACHINE_ID));
	att_machine_json_set_str(node, "hostname", M(m, HOSTNAME));
	att_machine_json_set_str(node, "role", M(m, ROLE));
	att_machine_json_set_str(node, "status", new_status);
	att_machine_json_set_str(node, "assigned_ip", M(m, ASSIGNED_IP));
	att_machine_json_set_str(node, "hw_mac", M(m, HW_MAC));
	json_object_set_new(p, "event", json_string(event));
	att_machine_json_set_str(p, "ek_fingerprint", M(m, EK_FINGERPRINT));
	json_object_set_new(p, "timestamp", json_string(ts));
	json_object_set_new(p, "node", node);
	json_object_set_new(p, "meta", meta ? meta : json_object());
	js = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	if (!js)
		return ATT_E_NOMEM;
	r = att_dbc_exec(c, "INSERT INTO outbox_events (event, machine_id, payload, created_at) VALUES (?, ?, ?, ?)",
			 "ssss", event, M(m, MACHINE_ID), js, ts);
	free(js);
	return r < 0 ? r : 0;
}
