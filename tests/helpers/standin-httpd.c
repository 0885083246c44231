/* standin-httpd.c - local stand-ins for the services the seeds'
 * integrations call, accepting exactly what the real ones accept (per
 * their documentation) and logging every request as a JSON line
 * {"mode","method","path","status","auth","ctype","body"}:
 *
 *   k8s    Kubernetes API server, PATCH /api/v1/nodes/{name}
 *          (https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/#patch-partially-update-the-specified-node):
 *          Authorization: Bearer <token> (401 otherwise), Content-Type one of
 *          application/merge-patch+json, application/strategic-merge-patch+json,
 *          application/apply-patch+yaml, application/json-patch+json (415 otherwise),
 *          a JSON object whose metadata.labels maps label keys ([prefix/]name, name
 *          <= 63 of [A-Za-z0-9._-] starting and ending alphanumeric) to strings or
 *          null (422 otherwise), an existing node (404 otherwise); 200 the node.
 *   slack  Slack incoming webhook (https://api.slack.com/messaging/webhooks): POST
 *          JSON with a non-empty "text" (or "blocks"): 200 "ok"; 400 "no_text",
 *          400 "invalid_payload" for non-JSON.
 *   teams  Microsoft Teams incoming webhook, MessageCard
 *          (https://learn.microsoft.com/en-us/outlook/actionable-messages/message-card-reference):
 *          "@type": "MessageCard", "@context" https://schema.org/extensions (or http:),
 *          "text" or "summary" required: 200 "1"; 400 "Summary or Text is required."
 *   cmdb   a REST inventory (the seed's CMDB sketch): PUT /api/nodes/{fp} with a JSON
 *          object carrying hostname, role, status, ek_fingerprint -> 200; PATCH of an
 *          existing node with "status" -> 200; 404 unknown, 415 non-JSON, 422 missing fields.
 *
 * usage: standin-httpd READY-FILE LOG-FILE MODE [TOKEN] [NODE...] */
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "loopback-httpd.h"

static const char *mode, *token;
static char **nodes;
static int nnodes;
static FILE *log_fp;
static json_t *cmdb;	/* fp -> node */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype, const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ok;

	MHD_add_response_header(r, "Content-Type", ctype);
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

static bool label_key_ok(const char *k)
{
	const char *slash = strrchr(k, '/'), *name = slash ? slash + 1 : k;
	size_t n = strlen(name);

	if (slash && (slash == k || slash - k > 253))
		return false;
	if (n == 0 || n > 63 || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return false;
	return isalnum((unsigned char)name[0]) && isalnum((unsigned char)name[n - 1]);
}

static unsigned k8s(struct MHD_Connection *c, const char *url, const char *method, json_t *b, const char **out)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	char want[600];
	const json_t *labels;
	const char *k;
	json_t *v;

	snprintf(want, sizeof(want), "Bearer %s", token ? token : "");
	*out = "{\"kind\":\"Status\",\"status\":\"Failure\"}";
	if (!auth || strcmp(auth, want) != 0)
		return 401;
	if (strncmp(url, "/api/v1/nodes/", 14) != 0 || strchr(url + 14, '/'))
		return 404;
	if (strcmp(method, "PATCH") != 0)
		return 405;
	if (!ct || (strcmp(ct, "application/merge-patch+json") != 0 && strcmp(ct, "application/strategic-merge-patch+json") != 0 &&
		    strcmp(ct, "application/json-patch+json") != 0 && strcmp(ct, "application/apply-patch+yaml") != 0))
		return 415;
	labels = json_object_get(json_object_get(b, "metadata"), "labels");
	if (!json_is_object(b) || !json_is_object(labels))
		return 422;
	json_object_foreach((json_t *)labels, k, v)
		if (!label_key_ok(k) || !(json_is_string(v) || json_is_null(v)))
			return 422;
	for (int i = 0; i < nnodes; i++)
		if (strcmp(nodes[i], url + 14) == 0) {
			*out = "{\"kind\":\"Node\",\"apiVersion\":\"v1\"}";
			return 200;
		}
	return 404;
}

static unsigned slack(json_t *b, const char **out)
{
	const char *t = json_string_value(json_object_get(b, "text"));

	if (!json_is_object(b)) {
		*out = "invalid_payload";
		return 400;
	}
	if ((!t || !*t) && !json_is_array(json_object_get(b, "blocks"))) {
		*out = "no_text";
		return 400;
	}
	*out = "ok";
	return 200;
}

static unsigned teams(json_t *b, const char **out)
{
	const char *type = json_string_value(json_object_get(b, "@type"));
	const char *ctx = json_string_value(json_object_get(b, "@context"));
	const char *t = json_string_value(json_object_get(b, "text")), *s = json_string_value(json_object_get(b, "summary"));

	*out = "Summary or Text is required.";
	if (!json_is_object(b) || !type || strcmp(type, "MessageCard") != 0 || !ctx ||
	    (strcmp(ctx, "https://schema.org/extensions") != 0 && strcmp(ctx, "http://schema.org/extensions") != 0)) {
		*out = "Bad payload: not a MessageCard";
		return 400;
	}
	if ((!t || !*t) && (!s || !*s))
		return 400;
	*out = "1";
	return 200;
}

static unsigned cmdb_req(struct MHD_Connection *c, const char *url, const char *method, json_t *b, const char **out)
{
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	const char *fp = url + 11;

	*out = "{}";
	if (strncmp(url, "/api/nodes/", 11) != 0 || !*fp || strchr(fp, '/'))
		return 404;
	if (!ct || strncmp(ct, "application/json", 16) != 0)
		return 415;
	if (strcmp(method, "PUT") == 0) {
		static const char *const need[] = { "hostname", "role", "status", "ek_fingerprint" };

		for (size_t i = 0; i < 4; i++)
			if (!json_is_string(json_object_get(b, need[i])))
				return 422;
		if (strcmp(json_string_value(json_object_get(b, "ek_fingerprint")), fp) != 0)
			return 422;
		json_object_set(cmdb, fp, b);
		return 200;
	}
	if (strcmp(method, "PATCH") == 0) {
		json_t *n = json_object_get(cmdb, fp);

		if (!n)
			return 404;
		if (!json_is_string(json_object_get(b, "status")))
			return 422;
		json_object_update(n, b);
		return 200;
	}
	return 405;
}

static enum MHD_Result on_req(struct MHD_Connection *c, const char *url, const char *method, const char *body,
			      size_t len)
{
	json_error_t jerr;
	json_t *b = json_loadb(body, len, 0, &jerr), *line;
	const char *out = "";
	unsigned st;
	char *s;

	pthread_mutex_lock(&mu);
	if (strcmp(mode, "k8s") == 0)
		st = k8s(c, url, method, b, &out);
	else if (strcmp(mode, "slack") == 0)
		st = strcmp(method, "POST") == 0 ? slack(b, &out) : 405;
	else if (strcmp(mode, "teams") == 0)
		st = strcmp(method, "POST") == 0 ? teams(b, &out) : 405;
	else
		st = cmdb_req(c, url, method, b, &out);
	line = json_pack("{s:s,s:s,s:s,s:i,s:s?,s:s?,s:o}", "mode", mode, "method", method, "path", url, "status", (int)st,
			 "auth", MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"), "ctype",
			 MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"), "body",
			 b ? json_incref(b) : json_stringn(body, len));
	s = json_dumps(line, JSON_COMPACT);
	fprintf(log_fp, "%s\n", s);
	fflush(log_fp);
	pthread_mutex_unlock(&mu);
	free(s);
	json_decref(line);
	json_decref(b);
	return reply(c, st, strcmp(mode, "slack") == 0 || strcmp(mode, "teams") == 0 ? "text/plain" : "application/json", out);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: standin-httpd READY-FILE LOG-FILE k8s|slack|teams|cmdb [TOKEN] [NODE...]\n");
		return 2;
	}
	mode = argv[3];
	token = argc > 4 ? argv[4] : NULL;
	nodes = argv + 5;
	nnodes = argc > 5 ? argc - 5 : 0;
	log_fp = fopen(argv[2], "a");
	cmdb = json_object();
	if (!log_fp || !cmdb)
		return 1;
	return test_httpd_run(argv[1], on_req);
}
