/* hostile-proxy - the "hostile server" of the agent tests: a reverse
 * proxy in front of a real attestd that passes requests through, or
 * tampers with the answers the agent must refuse.
 *
 *   hostile-proxy READY-FILE CONTROL-DIR
 * Listens on 127.0.0.1:0 and writes the port to READY-FILE.  Before each
 * request it reads CONTROL-DIR/backend (attestd's base URL) and
 * CONTROL-DIR/mode, and logs "METHOD PATH STATUS MODE CONTENT-TYPE" to
 * CONTROL-DIR/requests.log;
 * the last genuine attest answer is kept in CONTROL-DIR/last_attest.
 * Modes:
 *   pass            forward unchanged (Accept, Content-Type, registration
 *                   token and Authorization headers go along)
 *   down            close every connection without an answer
 *   503, 429        answer that status with Retry-After: 1
 *   malformed-json  cut the attest answer in half
 *   huge            an attest answer of 200 kB
 *   other-machine   the attest answer names another machine id
 *   foreign-url     config_url points at attestd directly (another origin)
 *   foreign-path    config_url is on the proxy but not /api/v1/config/
 *   redirect        the config answer is a 302 to attestd
 *   plaintext       the config is fetched without the envelope Accept header
 *   bad-ciphertext  one ciphertext byte of the envelope flipped
 *   bad-credential  one byte of the envelope's encrypted secret flipped
 *   envelope-other  the envelope names another machine id */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "agent/http.h"
#include "base/util.h"
#include "loopback-httpd.h"

static const char *ctl;

static void read_ctl(const char *name, char *out, size_t n, const char *dflt)
{
	char p[4096];
	FILE *f;
	size_t l = 0;

	snprintf(p, sizeof(p), "%s/%s", ctl, name);
	f = fopen(p, "r");
	if (f) {
		l = fread(out, 1, n - 1, f);
		fclose(f);
	}
	out[l] = '\0';
	while (l > 0 && (out[l - 1] == '\n' || out[l - 1] == ' '))
		out[--l] = '\0';
	if (!l)
		snprintf(out, n, "%s", dflt);
}

static void log_req(const char *method, const char *url, int status, const char *mode, const char *ctype)
{
	char p[4096];
	FILE *f;

	snprintf(p, sizeof(p), "%s/requests.log", ctl);
	f = fopen(p, "a");
	if (f) {
		fprintf(f, "%s %s %d %s %s\n", method, url, status, mode, ctype && *ctype ? ctype : "-");
		fclose(f);
	}
}

/* b64 field: flip one byte at offset off (from the end when negative) */
static void flip_b64(json_t *o, const char *key, long off)
{
	const char *v = json_string_value(json_object_get(o, key));
	uint8_t *d = NULL;
	size_t n = 0;

	if (!v || att_b64_decode(v, strlen(v), &d, &n) < 0 || n == 0)
		return;
	d[off < 0 ? n + (size_t)off : (size_t)off] ^= 0x01;
	{
		char *e = att_b64_encode(d, n);

		json_object_set_new(o, key, json_string(e));
		free(e);
	}
	free(d);
}

/* Tamper with a 200 answer's body according to the mode. */
static char *tamper(const char *mode, const char *path, const char *backend, const char *self, char *body)
{
	json_t *o;
	char *out;

	if (strcmp(mode, "malformed-json") == 0 && strcmp(path, "/api/v1/attest") == 0) {
		body[strlen(body) / 2] = '\0';
		return body;
	}
	if (strcmp(mode, "huge") == 0 && strcmp(path, "/api/v1/attest") == 0) {
		out = malloc(200 * 1024 + 3);
		memset(out, ' ', 200 * 1024 + 2);
		out[0] = '{';
		out[200 * 1024 + 1] = '}';
		out[200 * 1024 + 2] = '\0';
		free(body);
		return out;
	}
	o = json_loads(body, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return body;
	}
	if (strcmp(path, "/api/v1/attest") == 0 && json_is_string(json_object_get(o, "config_url"))) {
		const char *cu = json_string_value(json_object_get(o, "config_url"));
		const char *tok = strrchr(cu, '/');
		char *nu = NULL;

		if (strcmp(mode, "foreign-url") == 0)
			nu = att_asprintf("%s/api/v1/config%s", backend, tok);
		else if (strcmp(mode, "foreign-path") == 0)
			nu = att_asprintf("%s/elsewhere%s", self, tok);
		if (nu)
			json_object_set_new(o, "config_url", json_string(nu));
		free(nu);
	}
	if (strcmp(mode, "other-machine") == 0 && strcmp(path, "/api/v1/attest") == 0)
		json_object_set_new(o, "machine_id", json_string("00000000-0000-4000-8000-000000000000"));
	if (strncmp(path, "/api/v1/config/", 15) == 0) {
		if (strcmp(mode, "bad-ciphertext") == 0)
			flip_b64(o, "ciphertext", 3);
		else if (strcmp(mode, "bad-credential") == 0)
			flip_b64(o, "credential_blob", -5);
		else if (strcmp(mode, "envelope-other") == 0)
			json_object_set_new(o, "machine_id", json_string("00000000-0000-4000-8000-000000000000"));
	}
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(body);
	return out;
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *ctype, char *body,
			     const char *loc, long retry_after)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ok;
	char ra[32];

	if (ctype && *ctype)
		MHD_add_response_header(resp, "Content-Type", ctype);
	if (loc)
		MHD_add_response_header(resp, "Location", loc);
	if (retry_after >= 0) {
		snprintf(ra, sizeof(ra), "%ld", retry_after);
		MHD_add_response_header(resp, "Retry-After", ra);
	}
	ok = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result forward(struct MHD_Connection *c, const char *url, const char *method, const char *reqbody,
			       size_t reqlen, const char *mode)
{
	static const char *const pass_headers[] = { "Accept", "Authorization", "X-Registration-Token" };
	struct att_http_client hc = { .timeout_ms = 20000, .user_agent = "hostile-proxy" };
	struct att_http_resp resp = { 0 };
	char backend[1024], self[64], target[4096], err[256], hdr[3][1100];
	const char *hdrs[4] = { NULL };
	const char *q = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	int nh = 0;
	struct att_http_req rq = { .method = method, .url = target, .headers = hdrs,
				   .body = reqlen ? reqbody : NULL, .body_len = reqlen, .max_body = 16 << 20 };

	read_ctl("backend", backend, sizeof(backend), "http://127.0.0.1:9");
	snprintf(self, sizeof(self), "http://%s", q ? q : "127.0.0.1");
	snprintf(target, sizeof(target), "%s%s", backend, url);
	for (size_t i = 0; i < 3; i++) {
		const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, pass_headers[i]);

		if (!v || (i == 0 && strcmp(mode, "plaintext") == 0 && strncmp(url, "/api/v1/config/", 15) == 0))
			continue;
		snprintf(hdr[nh], sizeof(hdr[nh]), "%s: %s", pass_headers[i], v);
		hdrs[nh] = hdr[nh];
		nh++;
	}
	if (att_http_exchange(&hc, &rq, &resp, err, sizeof(err)) < 0) {
		log_req(method, url, 502, mode, NULL);
		return reply(c, 502, "application/json", att_strdup("{\"detail\":\"backend unreachable\"}"), NULL, -1);
	}
	if (resp.status == 200 && strcmp(url, "/api/v1/attest") == 0) {
		/* the genuine answer, for the test to compare with */
		char p[4096];
		FILE *f;

		snprintf(p, sizeof(p), "%s/last_attest", ctl);
		f = fopen(p, "w");
		if (f) {
			fputs(resp.body, f);
			fclose(f);
		}
	}
	if (resp.status == 200)
		resp.body = tamper(mode, url, backend, self, resp.body);
	log_req(method, url, resp.status, mode, resp.content_type);
	{
		enum MHD_Result ok = reply(c, resp.status, resp.content_type, resp.body, NULL, resp.retry_after);

		resp.body = NULL;
		att_http_resp_release(&resp);
		return ok;
	}
}

static enum MHD_Result on_req(struct MHD_Connection *c, const char *url, const char *method, const char *reqbody,
			      size_t reqlen)
{
	char mode[64], backend[1024];

	read_ctl("mode", mode, sizeof(mode), "pass");
	if (strcmp(mode, "down") == 0) {
		log_req(method, url, 0, mode, NULL);
		return MHD_NO;	/* connection closed, no answer */
	}
	if (strcmp(mode, "503") == 0 || strcmp(mode, "429") == 0) {
		int st = mode[0] == '5' ? 503 : 429;

		log_req(method, url, st, mode, NULL);
		return reply(c, st, "application/json", att_strdup("{\"detail\":\"busy: try again later\"}"), NULL, 1);
	}
	if (strcmp(mode, "redirect") == 0 && strncmp(url, "/api/v1/config/", 15) == 0) {
		char loc[2048];
		enum MHD_Result ok;

		read_ctl("backend", backend, sizeof(backend), "http://127.0.0.1:9");
		snprintf(loc, sizeof(loc), "%s%s", backend, url);
		log_req(method, url, 302, mode, NULL);
		ok = reply(c, 302, "text/plain", att_strdup("moved"), loc, -1);
		return ok;
	}
	return forward(c, url, method, reqbody, reqlen, mode);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: hostile-proxy READY-FILE CONTROL-DIR\n");
		return 2;
	}
	ctl = argv[2];
	return test_httpd_run(argv[1], on_req);
}
