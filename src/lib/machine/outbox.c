/* outbox.c - lifecycle events (node.registered, node.provisioned, ...)
 * written to outbox_events in the same transaction as the state change
 * they report; the event worker delivers them from there
 * (docs/events.md has the schema).
 *
 * The stored payload is the event as consumers see it, less the two
 * members only known after the insert (id) or duplicated from the row
 * (machine_id), which delivery adds: the event name, ek_fingerprint,
 * timestamp, the typed context of that event at the top level, and raw
 * {node, meta}: the machine as it is after the change and the caller's
 * details, in the reference's NodeEventPayload shape. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"

static json_t *node_snapshot(const struct att_machine *m, const char *new_status)
{
	json_t *node = json_object();

	if (!node)
		return NULL;
	att_machine_json_set_str(node, "machine_id", M(m, MACHINE_ID));
	att_machine_json_set_str(node, "hostname", M(m, HOSTNAME));
	att_machine_json_set_str(node, "role", M(m, ROLE));
	att_machine_json_set_str(node, "status", new_status);
	att_machine_json_set_str(node, "assigned_ip", M(m, ASSIGNED_IP));
	att_machine_json_set_str(node, "hw_mac", M(m, HW_MAC));
	att_machine_json_set_str(node, "hw_uuid", M(m, HW_UUID));
	att_machine_json_set_str(node, "hw_serial", M(m, HW_SERIAL));
	att_machine_json_set_str(node, "hw_product", M(m, HW_PRODUCT));
	att_machine_json_set_str(node, "cluster_id", M(m, CLUSTER_ID));
	return node;
}

/* The typed context of the event (hooks' att_ext_context). */
static void set_context(json_t *p, const char *event, const struct att_machine *m, json_t *meta)
{
	const char *k;
	json_t *v;

	att_machine_json_set_str(p, "hostname", M(m, HOSTNAME));
	att_machine_json_set_str(p, "role", M(m, ROLE));
	if (strcmp(event, "node.registered") == 0) {
		json_t *hw = json_object();

		att_machine_json_set_str(hw, "hw_uuid", M(m, HW_UUID));
		att_machine_json_set_str(hw, "hw_serial", M(m, HW_SERIAL));
		att_machine_json_set_str(hw, "hw_product", M(m, HW_PRODUCT));
		att_machine_json_set_str(hw, "hw_mac", M(m, HW_MAC));
		json_object_set_new(p, "hardware", hw);
		att_machine_json_set_str(p, "mac_address", M(m, HW_MAC));
		json_object_set_new(p, "ip_address", json_null());
		json_object_set_new(p, "tpm_available", json_true());
	} else if (strcmp(event, "node.online") == 0) {
		/* the row may predate the promotion: the transition's own time wins */
		const char *at = json_string_value(json_object_get(meta, "attested_at"));

		att_machine_json_set_str(p, "first_seen_at", at ? at : M(m, ATTESTED_AT));
	}
	/* the caller's details override (ip_address, reason, previous_role ...) */
	json_object_foreach(meta, k, v)
		if (strcmp(k, "event") != 0 && strcmp(k, "id") != 0 && strcmp(k, "machine_id") != 0 &&
		    strcmp(k, "raw") != 0 && strcmp(k, "timestamp") != 0 && strcmp(k, "ek_fingerprint") != 0)
			json_object_set(p, k, v);
}

int att_machine_outbox(struct att_dbc *c, const char *event, const struct att_machine *m,
		  const char *new_status, json_t *meta)
{
	json_t *p = json_object(), *node = node_snapshot(m, new_status), *raw = json_object();
	char ts[32], *js;
	int r;

	att_time_iso(att_now(), ts);
	if (!meta)
		meta = json_object();
	if (!p || !node || !raw || !meta) {
		json_decref(p);
		json_decref(node);
		json_decref(raw);
		json_decref(meta);
		return ATT_E_NOMEM;
	}
	json_object_set_new(p, "event", json_string(event));
	att_machine_json_set_str(p, "ek_fingerprint", M(m, EK_FINGERPRINT));
	json_object_set_new(p, "timestamp", json_string(ts));
	set_context(p, event, m, meta);
	json_object_set_new(raw, "node", node);
	json_object_set_new(raw, "meta", meta);
	json_object_set_new(p, "raw", raw);
	js = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	if (!js)
		return ATT_E_NOMEM;
	r = att_dbc_exec(c, "INSERT INTO outbox_events (event, machine_id, payload, created_at) VALUES (?, ?, ?, ?)",
			 "ssss", event, M(m, MACHINE_ID), js, ts);
	free(js);
	return r < 0 ? r : 0;
}
