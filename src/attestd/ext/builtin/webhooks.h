/* webhooks.h - the built-in "webhooks" module (docs/webhooks.md).
 *
 * Written against include/attest/extension.h only, like any third-party
 * extension (plus libcurl, OpenSSL and jansson of its own):
 *   webhooks.c       registration, the /api/v1/webhooks routes, targets
 *   webhooks_send.c  one delivery: signing, address policy, the POST
 *   webhooks_util.c  secrets at rest (AES-256-GCM), ids, URL checks */
#ifndef ATTESTD_EXT_WEBHOOKS_H
#define ATTESTD_EXT_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/extension.h"

extern const struct att_ext_host *wh_host;

#define WH_SECRET_MIN 16
#define WH_SECRET_MAX 256
#define WH_URL_MAX 2048

struct wh_conf {
	bool allow_private;		/* ITL_WEBHOOK_ALLOW_PRIVATE */
	long timeout_seconds;		/* ITL_WEBHOOK_TIMEOUT_SECONDS */
	char allowed[1024];		/* ITL_WEBHOOK_ALLOWED_CIDRS (empty: any permitted address) */
	char denied[1024];		/* ITL_WEBHOOK_DENIED_CIDRS (always refused, besides the built-in ranges) */
	char ca_file[512];		/* ITL_WEBHOOK_CA_FILE */
	uint8_t key[32];		/* secrets at rest */
};
extern struct wh_conf wh_conf;

/* webhooks_util.c */
int wh_conf_load(char *err, size_t errlen);
/* 0 or -1 with why: http(s), a host, no userinfo or fragment, <= WH_URL_MAX. */
int wh_url_check(const char *url, char *why, size_t whylen);
/* Resolve the URL's host and check every address against the policy;
 * on success ret_resolve gets "host:port:addr" for CURLOPT_RESOLVE. */
int wh_url_resolve(const char *url, char *ret_resolve, size_t rlen, char *why, size_t whylen);
/* Is this textual address allowed as a target? */
bool wh_addr_allowed(const char *addr, char *why, size_t whylen);
char *wh_secret_seal(const char *secret);		/* base64 nonce|ct|tag (malloc) */
char *wh_secret_open(const char *sealed);		/* plaintext (malloc), NULL if tampered */
void wh_random_hex(char *out, size_t nbytes);		/* 2*nbytes hex + NUL */
/* HMAC-SHA256(secret, prefix || body) as 64 hex chars + NUL. */
void wh_sign(const char *secret, const char *prefix, const void *body, size_t len, char out[65]);

/* webhooks_send.c */
struct wh_result {
	long status;			/* HTTP status, 0 when none */
	long duration_ms;
	char error[256];
};
/* POST body to url; ATT_EXT_OK (2xx), ATT_EXT_ERROR (retry: network,
 * 408, 429, 5xx) or ATT_EXT_PERMANENT (other answers, refused address). */
int wh_post(const char *url, const char *secret, const char *webhook_id, const char *event, const char *delivery,
	    const char *body, size_t len, struct wh_result *res);
void wh_send_cleanup(void);

/* webhooks_hook.c: the target hook, the test route, start/stop */
extern bool wh_have_key;	/* a key came from the environment */
int wh_targets(struct att_ext *ext, const struct att_ext_event *ev, struct att_ext_targets *out, void *ud);
int wh_deliver(struct att_ext *ext, const struct att_ext_event *ev, void *ud);
void wh_h_test(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud);
int wh_start(struct att_ext *ext);
void wh_stop(struct att_ext *ext);
void wh_now_iso(char out[32]);

extern const struct att_ext_info att_ext_webhooks;

#endif
