/* auth.h - what the files of `attestation auth` share: the provider
 * (auth_oidc.c), the token cache (auth_cache.c), the login flows
 * (auth_login_*.c) and revocation (auth_revoke.c).  Internal to these
 * files; cli.h has what the rest of the CLI uses (cmd_auth in auth.c,
 * cli_auth_header in auth_refresh.c). */
#ifndef ATT_CLI_AUTH_H
#define ATT_CLI_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cli.h"

/* ---- auth_oidc.c: the provider ---- */

/* Endpoints from the discovery document (malloc'd; NULL when absent). */
struct cli_disco {
	char *authz, *token, *device, *revoke, *jwks;
};
/* Fetches the issuer's discovery document; 0 with *d filled (token endpoint
 * present, issuer equal to the configured one) or an EX_* code, reported. */
int cli_oidc_discover(struct cli *c, struct cli_disco *d);
void cli_disco_free(struct cli_disco *d);
/* POST a form to the token (or device/revocation) endpoint.  Returns 0 with
 * *ret on 200; EX_AUTH with *err_code set (OAuth "error") on 4xx; other
 * EX_* on transport/5xx. */
int cli_oidc_form_post(struct cli *c, const char *url, const char *form, json_t **ret, char *err_code, size_t elen,
		       const char *bearer);
/* True when code (an err_code from cli_oidc_form_post: "error" or
 * "error: description") names the OAuth error want. */
bool cli_oauth_error_is(const char *code, const char *want);
/* Verify an ID token from the token endpoint: signature against the
 * provider's JWKS, iss, aud = client id, exp, and the login nonce. */
int cli_oidc_check_id_token(struct cli *c, const struct cli_disco *d, const char *idt, const char *nonce);

/* ---- auth_cache.c: the token cache ---- */

/* The cache file of the configured (issuer, client id) with extension ext
 * (".json", ".lock"), malloc'd. */
char *cli_cache_path(const struct cli *c, const char *ext);
/* Creates the cache directory (0700, ours) if needed; -1 after printing why. */
int cli_cache_dir_ready(const struct cli *c);
/* A cached login; NULL when absent or unsafe (reported unless quiet). */
json_t *cli_cache_read(const char *path, bool quiet);
/* Takes the exclusive lock of the configured login's cache file (waits):
 * an fd to pass to cli_cache_unlock, or -1 when it cannot be had. */
int cli_cache_lock(const struct cli *c);
void cli_cache_unlock(int fd);
/* Calls fn for each file of the cache directory: the cached logins
 * (login: name ends in ".json"), their .lock files and left-over
 * .json.tmp.* files; path is the full path.  No directory, no calls. */
void cli_cache_foreach(struct cli *c, void (*fn)(struct cli *c, const char *name, const char *path, bool login, void *arg),
		       void *arg);
/* Build and write the cache document from a token response; prev is the
 * document being refreshed (its refresh and ID tokens are kept when the
 * response has none), user_hint the username when no token names one. */
int cli_cache_store_tokens(struct cli *c, const struct cli_disco *d, const json_t *resp, const json_t *prev,
			   const char *method, const char *user_hint);

/* ---- auth_login_*.c: the login flows ----
 * Each obtains tokens from the provider described by d and stores them with
 * cli_cache_store_tokens; 0 or an EX_* code after printing why. */

/* Authorization code + PKCE; the redirect arrives on 127.0.0.1:port (0: any
 * free port).  no_browser only prints the URL; timeout_s bounds the wait. */
int cli_login_browser(struct cli *c, const struct cli_disco *d, int port, bool no_browser, int timeout_s);
/* Device authorization grant; gives up after timeout_s or the code's expiry. */
int cli_login_device(struct cli *c, const struct cli_disco *d, int timeout_s);
/* Password grant for user; the password from stdin (pw_stdin) or the terminal. */
int cli_login_password(struct cli *c, const struct cli_disco *d, const char *user, bool pw_stdin);

/* ---- auth_revoke.c ---- */

/* Revoke one cached login's refresh token; prints what happened. */
void cli_auth_revoke(struct cli *c, const json_t *doc);

#endif
