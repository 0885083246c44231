/* webhooks_send.c - one webhook delivery: the event JSON POSTed with
 * its signatures (docs/webhooks.md), to an address checked against the
 * policy and pinned for the connection, TLS verified, no redirects, a
 * timeout.  Each delivery thread keeps one curl handle, so connections
 * to a receiver are reused. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "webhooks.h"

static pthread_key_t easy_key;
static pthread_once_t easy_once = PTHREAD_ONCE_INIT;

static void easy_free(void *p)
{
	curl_easy_cleanup(p);
}

static void easy_key_init(void)
{
	(void)pthread_key_create(&easy_key, easy_free);
}

static CURL *thread_easy(void)
{
	CURL *e;

	pthread_once(&easy_once, easy_key_init);
	e = pthread_getspecific(easy_key);
	if (!e && (e = curl_easy_init()) != NULL)
		pthread_setspecific(easy_key, e);
	else if (e)
		curl_easy_reset(e);
	return e;
}

void wh_send_cleanup(void)
{
	CURL *e;

	pthread_once(&easy_once, easy_key_init);
	e = pthread_getspecific(easy_key);
	if (e) {
		curl_easy_cleanup(e);
		pthread_setspecific(easy_key, NULL);
	}
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;	/* the receiver's body is not used */
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

int wh_post(const char *url, const char *secret, const char *webhook_id, const char *event, const char *delivery,
	    const char *body, size_t len, struct wh_result *res)
{
	char resolve[320], h[6][192], sig[65], tsig[65], ts[24], pre[32];
	struct curl_slist *hdrs = NULL, *pin = NULL;
	struct timespec t0;
	CURL *e;
	CURLcode cc;
	int r;

	memset(res, 0, sizeof(*res));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = wh_url_resolve(url, resolve, sizeof(resolve), res->error, sizeof(res->error));
	if (r < 0)
		return r == -2 ? ATT_EXT_ERROR : ATT_EXT_PERMANENT;
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	snprintf(pre, sizeof(pre), "%s.", ts);
	wh_sign(secret, NULL, body, len, sig);
	wh_sign(secret, pre, body, len, tsig);
	snprintf(h[0], sizeof(h[0]), "X-Webhook-Event: %s", event);
	snprintf(h[1], sizeof(h[1]), "X-Webhook-Signature: sha256=%s", sig);
	snprintf(h[2], sizeof(h[2]), "X-Webhook-Timestamp: %s", ts);
	snprintf(h[3], sizeof(h[3]), "X-Webhook-Signature-256: t=%s,v1=%s", ts, tsig);
	snprintf(h[4], sizeof(h[4]), "X-Webhook-Delivery: %s", delivery);
	snprintf(h[5], sizeof(h[5]), "X-Webhook-Id: %s", webhook_id);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "User-Agent: attestd-webhooks/1.0");
	hdrs = curl_slist_append(hdrs, "Expect:");
	for (int i = 0; i < 6; i++)
		hdrs = curl_slist_append(hdrs, h[i]);
	pin = curl_slist_append(NULL, resolve);
	e = thread_easy();
	if (!e || !hdrs || !pin) {
		curl_slist_free_all(hdrs);
		curl_slist_free_all(pin);
		snprintf(res->error, sizeof(res->error), "out of memory");
		return ATT_EXT_ERROR;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_RESOLVE, pin);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, wh_conf.timeout_seconds);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, wh_conf.timeout_seconds);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (wh_conf.ca_file[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, wh_conf.ca_file);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(1 << 20));
	cc = curl_easy_perform(e);
	res->duration_ms = elapsed_ms(&t0);
	curl_slist_free_all(hdrs);
	curl_slist_free_all(pin);
	if (cc != CURLE_OK) {
		snprintf(res->error, sizeof(res->error), "%s", curl_easy_strerror(cc));
		return ATT_EXT_ERROR;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &res->status);
	if (res->status >= 200 && res->status < 300)
		return ATT_EXT_OK;
	if (res->status >= 300 && res->status < 400) {
		snprintf(res->error, sizeof(res->error), "HTTP %ld: redirects are not followed", res->status);
		return ATT_EXT_PERMANENT;
	}
	snprintf(res->error, sizeof(res->error), "HTTP %ld", res->status);
	if (res->status == 408 || res->status == 429 || res->status >= 500)
		return ATT_EXT_ERROR;
	return ATT_EXT_PERMANENT;
}
