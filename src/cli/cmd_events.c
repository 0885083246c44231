/* cmd_events.c - `attestation events list|get|replay` (docs/cli.md,
 * docs/events.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "base/util.h"
#include "cli.h"

static const char events_usage[] =
	"Usage: attestation events COMMAND [options]\n"
	"\n"
	"Commands:\n"
	"  list [--event NAME] [--machine-id ID] [--status pending|delivered|dead]\n"
	"       [--after-id N] [--page N] [--per-page N]\n"
	"                 Lifecycle events, newest first (oldest first after --after-id)\n"
	"  get EVENT-ID   One event with the state of each of its deliveries\n"
	"  replay EVENT-ID [--consumer NAME]\n"
	"                 Deliver the event again, to every consumer or to one\n";

static const struct col event_cols[] = {
	{ "ID", "id", 0 },		{ "EVENT", "event", 0 },	  { "MACHINE", "machine_id", 36 },
	{ "STATUS", "status", 0 },	{ "DELIVERIES", "deliveries", 0 }, { "PENDING", "pending", 0 },
	{ "CREATED", "created_at", 26 },
};

static const struct col delivery_cols[] = {
	{ "CONSUMER", "consumer", 40 }, { "STATUS", "status", 0 },	    { "ATTEMPTS", "attempts", 0 },
	{ "UPDATED", "updated_at", 26 }, { "LAST ERROR", "last_error", 60 },
};

/* query=value pairs escaped into q. */
static int add_query(char *q, size_t qlen, const char *name, const char *val)
{
	char *e;

	if (!val)
		return 0;
	e = curl_easy_escape(NULL, val, 0);
	if (!e)
		return EX_ERR;
	snprintf(q + strlen(q), qlen - strlen(q), "%s%s=%s", *q ? "&" : "?", name, e);
	curl_free(e);
	return 0;
}

static int e_list(struct cli *c, int argc, char **argv)
{
	const char *ev = NULL, *mid = NULL, *st = NULL, *after = NULL, *page = NULL, *per = NULL;
	const struct opt o[] = {
		{ "event", 0, true, &ev, NULL },    { "machine-id", 'm', true, &mid, NULL },
		{ "status", 0, true, &st, NULL },   { "after-id", 0, true, &after, NULL },
		{ "page", 0, true, &page, NULL },   { "per-page", 0, true, &per, NULL },
	};
	char *pos[1], q[1024] = "", path[1100];
	long n;
	json_t *j = NULL;
	int ex;

	if (parse_opts("events list", argc, argv, o, ATT_ARRAY_SIZE(o), pos, 0) < 0)
		return EX_USAGE;
	if ((page && !cli_parse_int(page, 1, 1000000000, &n)) || (per && !cli_parse_int(per, 1, 200, &n)) ||
	    (after && !cli_parse_int(after, 0, 2000000000000000000L, &n))) {
		fprintf(stderr, "attestation events list: --page, --per-page (1-200) and --after-id take integers\n");
		return EX_USAGE;
	}
	if (add_query(q, sizeof(q), "event", ev) || add_query(q, sizeof(q), "machine_id", mid) ||
	    add_query(q, sizeof(q), "status", st) || add_query(q, sizeof(q), "after_id", after) ||
	    add_query(q, sizeof(q), "page", page) || add_query(q, sizeof(q), "per_page", per))
		return EX_ERR;
	snprintf(path, sizeof(path), "/api/v1/events%s", q);
	ex = cli_api(c, "GET", path, NULL, &j, NULL);
	if (ex == 0) {
		const json_t *rows = json_object_get(j, "events");

		if (c->json)
			out_json(j);
		else if (json_array_size(rows) == 0)
			printf("No events.\n");
		else
			out_table(rows, event_cols, ATT_ARRAY_SIZE(event_cols));
	}
	json_decref(j);
	return ex;
}

static bool event_id_ok(const char *id)
{
	long n;

	if (!id || !cli_parse_int(id, 1, 2000000000000000000L, &n)) {
		fprintf(stderr, "Error: an event ID (a positive integer) is required (see --help)\n");
		return false;
	}
	return true;
}

static int e_get(struct cli *c, int argc, char **argv)
{
	char *pos[1] = { NULL }, path[128];
	json_t *j = NULL;
	int ex;

	if (parse_opts("events get", argc, argv, NULL, 0, pos, 1) < 0 || !event_id_ok(pos[0]))
		return EX_USAGE;
	snprintf(path, sizeof(path), "/api/v1/events/%s", pos[0]);
	ex = cli_api(c, "GET", path, NULL, &j, NULL);
	if (ex == 0) {
		static const char *const keys[] = { "id", "event", "machine_id", "status", "created_at", "settled_at" };

		if (c->json) {
			out_json(j);
		} else {
			out_kv(j, keys, ATT_ARRAY_SIZE(keys));
			printf("\n");
			if (json_array_size(json_object_get(j, "delivery_log")))
				out_table(json_object_get(j, "delivery_log"), delivery_cols, ATT_ARRAY_SIZE(delivery_cols));
			else
				printf("No consumer wanted this event.\n");
		}
	}
	json_decref(j);
	return ex;
}

static int e_replay(struct cli *c, int argc, char **argv)
{
	const char *consumer = NULL;
	const struct opt o[] = { { "consumer", 0, true, &consumer, NULL } };
	char *pos[1] = { NULL }, path[128];
	json_t *j = NULL, *body = NULL;
	int ex;

	if (parse_opts("events replay", argc, argv, o, 1, pos, 1) < 0 || !event_id_ok(pos[0]))
		return EX_USAGE;
	snprintf(path, sizeof(path), "/api/v1/events/%s/replay", pos[0]);
	body = consumer ? json_pack("{s:s}", "consumer", consumer) : json_object();
	ex = cli_api(c, "POST", path, body, &j, NULL);
	json_decref(body);
	if (ex == 0) {
		if (c->json)
			out_json(j);
		else
			printf("Event %s queued for delivery again (%s).\n", pos[0], consumer ? consumer : "every consumer");
	}
	json_decref(j);
	return ex;
}

int cmd_events(struct cli *c, int argc, char **argv)
{
	const char *sub = argc ? argv[0] : "";
	int ex = group_help(argc, argv, events_usage);

	if (ex >= 0)
		return ex;
	if (strcmp(sub, "list") == 0)
		return e_list(c, argc - 1, argv + 1);
	if (strcmp(sub, "get") == 0)
		return e_get(c, argc - 1, argv + 1);
	if (strcmp(sub, "replay") == 0)
		return e_replay(c, argc - 1, argv + 1);
	fprintf(stderr, "attestation events: unknown command '%s'\n\n%s", sub, events_usage);
	return EX_USAGE;
}
