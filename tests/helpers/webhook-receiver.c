/* webhook-receiver.c - a webhook receiver for the tests and the bench,
 * checking what a careful receiver checks (docs/webhooks.md): both
 * signatures against the shared secret, the timestamp's age, and
 * de-duplication by X-Webhook-Delivery.  Each request is appended to the
 * log as one JSON line:
 *   {"path","event","delivery","id","sig_ok","tsig_ok","fresh","dup","recv_ms","body"}
 * The answer comes from MODE-FILE (re-read per request): ok (200, the
 * default), fail (503), reject (400), slow (sleep 3 s, then 200), lag
 * (sleep 20 ms, then 200: a backlog drains slowly enough to stop attestd
 * mid-batch), redirect (302 to the metadata address), or down (close
 * without answer).
 *
 * usage: webhook-receiver READY-FILE LOG-FILE SECRET [MODE-FILE] */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "loopback-httpd.h"

static const char *log_path, *secret, *mode_path;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_fp;
static json_t *seen;	/* delivery ids */

static void hmac_hex(const char *prefix, const char *body, size_t len, char out[65])
{
	size_t pl = prefix ? strlen(prefix) : 0;
	unsigned char *m = malloc(pl + len + 1), mac[32];
	unsigned int ml = 0;

	memcpy(m, prefix ? prefix : "", pl);
	memcpy(m + pl, body, len);
	HMAC(EVP_sha256(), secret, (int)strlen(secret), m, pl + len, mac, &ml);
	free(m);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", mac[i]);
}

static void read_mode(char *mode, size_t n)
{
	FILE *f = mode_path ? fopen(mode_path, "r") : NULL;

	snprintf(mode, n, "ok");
	if (f) {
		if (fgets(mode, (int)n, f))
			mode[strcspn(mode, "\r\n ")] = 0;
		fclose(f);
	}
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *location)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ok;

	if (location)
		MHD_add_response_header(r, "Location", location);
	MHD_add_response_header(r, "Content-Type", "application/json");
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result on_req(struct MHD_Connection *c, const char *url, const char *method, const char *body,
			      size_t len)
{
	const char *ev = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Webhook-Event");
	const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Webhook-Signature");
	const char *sig2 = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Webhook-Signature-256");
	const char *ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Webhook-Timestamp");
	const char *dl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Webhook-Delivery");
	char want[65], want2[65], pre[40], expect2[120], mode[32];
	struct timeval tv;
	json_error_t jerr;
	json_t *line, *b;
	bool sig_ok, tsig_ok, fresh, dup;
	long long age;
	char *s;

	read_mode(mode, sizeof(mode));
	if (strcmp(mode, "down") == 0)
		return MHD_NO;		/* the connection is closed without an answer */
	if (strcmp(mode, "slow") == 0)
		sleep(3);
	if (strcmp(mode, "lag") == 0)
		usleep(20000);
	hmac_hex(NULL, body, len, want);
	snprintf(pre, sizeof(pre), "%s.", ts ? ts : "");
	hmac_hex(pre, body, len, want2);
	snprintf(expect2, sizeof(expect2), "t=%s,v1=%s", ts ? ts : "", want2);
	sig_ok = sig && strlen(sig) == 71 && strncmp(sig, "sha256=", 7) == 0 && CRYPTO_memcmp(sig + 7, want, 64) == 0;
	tsig_ok = sig2 && strlen(sig2) == strlen(expect2) && CRYPTO_memcmp(sig2, expect2, strlen(expect2)) == 0;
	age = ts ? (long long)time(NULL) - atoll(ts) : 1000000;
	fresh = age >= -300 && age <= 300;
	gettimeofday(&tv, NULL);
	b = json_loadb(body, len, 0, &jerr);
	pthread_mutex_lock(&mu);
	dup = dl && json_object_get(seen, dl);
	if (dl)
		json_object_set_new(seen, dl, json_true());
	line = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:O?,s:b,s:b,s:b,s:b,s:f,s:o}", "path", url, "method", method, "mode", mode, "event", ev,
			 "delivery", dl, "id", json_object_get(b, "id"), "sig_ok", sig_ok, "tsig_ok", tsig_ok, "fresh",
			 fresh, "dup", dup, "recv_ms", tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0, "body",
			 b ? b : json_stringn(body, len));
	s = json_dumps(line, JSON_COMPACT);
	fprintf(log_fp, "%s\n", s);
	fflush(log_fp);
	pthread_mutex_unlock(&mu);
	free(s);
	json_decref(line);
	if (strcmp(mode, "fail") == 0)
		return answer(c, 503, NULL);
	if (strcmp(mode, "reject") == 0 || !sig_ok || !tsig_ok || !fresh)
		return answer(c, strcmp(mode, "reject") == 0 ? 400 : 401, NULL);
	if (strcmp(mode, "redirect") == 0)
		return answer(c, 302, "http://169.254.169.254/latest/meta-data/");
	return answer(c, 200, NULL);
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: webhook-receiver READY-FILE LOG-FILE SECRET [MODE-FILE]\n");
		return 2;
	}
	log_path = argv[2];
	secret = argv[3];
	mode_path = argc == 5 ? argv[4] : NULL;
	log_fp = fopen(log_path, "a");
	seen = json_object();
	if (!log_fp || !seen)
		return 1;
	return test_httpd_run(argv[1], on_req);
}
