/* auth_login_browser.c - `attestation auth login --method browser` (the
 * default): the authorization code flow with PKCE (S256), state and nonce.
 * A listener on 127.0.0.1 receives the provider's redirect to /callback;
 * the browser is started with $BROWSER or xdg-open when there is a display,
 * else the URL is printed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "auth.h"
#include "base/util.h"

static char *rand_b64url(size_t n)
{
	uint8_t b[64];

	if (n > sizeof(b) || att_random(b, n) < 0)
		return NULL;
	return att_b64url_encode(b, n);
}

static void http_reply(int fd, int status, const char *title, const char *msg)
{
	char body[1024], out[1536];
	int n;

	/* msg is ours, never echoed from the request */
	snprintf(body, sizeof(body),
		 "<!doctype html><html><head><meta charset=\"utf-8\"><title>%s</title></head>"
		 "<body><h1>%s</h1><p>%s</p></body></html>\n", title, title, msg);
	n = snprintf(out, sizeof(out),
		     "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
		     "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
		     status, status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request", strlen(body), body);
	if (n > 0)
		(void)!write(fd, out, (size_t)n);
}

/* Value of key in a query string (percent-decoded, malloc'd) or NULL. */
static char *query_get(const char *q, const char *key)
{
	size_t kl = strlen(key);

	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);

		if (len > kl && strncmp(q, key, kl) == 0 && q[kl] == '=') {
			int outlen = 0;
			char *raw = strndup(q + kl + 1, len - kl - 1), *dec;

			for (char *p = raw; p && *p; p++)
				if (*p == '+')
					*p = ' ';
			dec = raw ? curl_easy_unescape(NULL, raw, 0, &outlen) : NULL;
			free(raw);
			if (!dec)
				return NULL;
			raw = strndup(dec, (size_t)outlen);
			curl_free(dec);
			return raw;
		}
		q = amp ? amp + 1 : NULL;
	}
	return NULL;
}

static pid_t open_browser(const char *url)
{
	const char *browser = getenv("BROWSER");
	pid_t pid;

	if (!browser || !*browser) {
		if ((!getenv("DISPLAY") || !*getenv("DISPLAY")) && (!getenv("WAYLAND_DISPLAY") || !*getenv("WAYLAND_DISPLAY")))
			return -1;
		browser = "xdg-open";
	}
	pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);

		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
		}
		execl("/bin/sh", "sh", "-c", "exec $0 \"$1\"", browser, url, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Wait for the redirect; returns the code (malloc'd) or NULL with *ex set. */
static char *await_callback(int lfd, const char *state, int timeout_s, int *ex)
{
	time_t deadline = time(NULL) + timeout_s;

	for (;;) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		int left = (int)(deadline - time(NULL)), fd, n;
		char req[8192], *line_end, *target, *sp, *q;
		size_t got = 0;
		char *st, *code, *err;

		if (left <= 0 || poll(&p, 1, left * 1000) <= 0) {
			if (errno == EINTR && left > 0)
				continue;
			fprintf(stderr, "Error: no login callback within %d s (use --timeout, or --method device)\n",
				timeout_s);
			*ex = EX_AUTH;
			return NULL;
		}
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		{
			struct timeval tv = { .tv_sec = 5 };

			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		}
		while (got < sizeof(req) - 1 && (n = (int)read(fd, req + got, sizeof(req) - 1 - got)) > 0) {
			got += (size_t)n;
			req[got] = 0;
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[got] = 0;
		line_end = strstr(req, "\r\n");
		if (!line_end || strncmp(req, "GET ", 4) != 0) {
			http_reply(fd, 400, "Bad request", "Expected the login redirect.");
			close(fd);
			continue;
		}
		*line_end = 0;
		target = req + 4;
		sp = strchr(target, ' ');
		if (sp)
			*sp = 0;
		if (strncmp(target, "/callback", 9) != 0 || (target[9] != '?' && target[9] != 0)) {
			http_reply(fd, 404, "Not found", "This listener only serves the login callback.");
			close(fd);
			continue;
		}
		q = target[9] == '?' ? target + 10 : NULL;
		st = query_get(q, "state");
		code = query_get(q, "code");
		err = query_get(q, "error");
		/* state first: a callback we did not ask for changes nothing */
		if (!st || !att_ct_equal(st, strlen(st), state, strlen(state))) {
			http_reply(fd, 400, "Login failed", "The state parameter does not match this login attempt.");
			close(fd);
			fprintf(stderr, "Error: login callback state does not match (possible CSRF); nothing was stored\n");
			free(st);
			free(code);
			free(err);
			*ex = EX_AUTH;
			return NULL;
		}
		free(st);
		if (err || !code) {
			char *desc = query_get(q, "error_description");

			http_reply(fd, 400, "Login failed", "The identity provider refused the login. See the terminal.");
			close(fd);
			fprintf(stderr, "Error: the provider refused the login: %s%s%s\n", err ? err : "no code",
				desc ? ": " : "", desc ? desc : "");
			free(desc);
			free(err);
			free(code);
			*ex = EX_AUTH;
			return NULL;
		}
		free(err);
		http_reply(fd, 200, "Login complete", "You are logged in to attestation. You can close this window.");
		close(fd);
		return code;
	}
}

int cli_login_browser(struct cli *c, const struct cli_disco *d, int port, bool no_browser, int timeout_s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	char *verifier = NULL, *state = NULL, *nonce = NULL, *challenge = NULL, *url = NULL, *redirect = NULL;
	char *code = NULL, *form = NULL, ecode[512];
	unsigned char md[32];
	unsigned int mdlen;
	json_t *resp = NULL;
	pid_t bpid = -1;
	int lfd, ex = EX_ERR, one = 1;

	if (!d->authz) {
		fprintf(stderr, "Error: the provider has no authorization_endpoint; use --method device or password\n");
		return EX_ERR;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return EX_ERR;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_port = htons((uint16_t)port);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 8) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
		fprintf(stderr, "Error: cannot listen on 127.0.0.1:%d for the login callback: %s\n", port, strerror(errno));
		close(lfd);
		return EX_ERR;
	}
	verifier = rand_b64url(32);
	state = rand_b64url(24);
	nonce = rand_b64url(24);
	if (!verifier || !state || !nonce)
		goto out;
	EVP_Digest(verifier, strlen(verifier), md, &mdlen, EVP_sha256(), NULL);
	challenge = att_b64url_encode(md, 32);
	redirect = att_asprintf("http://127.0.0.1:%d/callback", ntohs(sa.sin_port));
	form = cli_form("response_type", "code", "client_id", c->client_id, "redirect_uri", redirect, "scope",
			c->scope, "state", state, "nonce", nonce, "code_challenge", challenge,
			"code_challenge_method", "S256", "resource", c->resource, (char *)NULL);
	if (!challenge || !redirect || !form)
		goto out;
	url = att_asprintf("%s%c%s", d->authz, strchr(d->authz, '?') ? '&' : '?', form);
	free(form);
	form = NULL;
	if (!url)
		goto out;
	if (!no_browser)
		bpid = open_browser(url);
	if (bpid > 0)
		fprintf(stderr, "Opening your browser to log in. If it does not open, visit:\n\n  %s\n\n", url);
	else
		fprintf(stderr, "Open this URL in your browser to log in:\n\n  %s\n\n", url);
	fprintf(stderr, "Waiting for the login to complete (listening on %s)...\n", redirect);
	code = await_callback(lfd, state, timeout_s, &ex);
	if (!code)
		goto out;
	form = cli_form("grant_type", "authorization_code", "code", code, "redirect_uri", redirect, "code_verifier",
			verifier, "client_id", c->client_secret ? NULL : c->client_id, "resource", c->resource,
			(char *)NULL);
	ex = form ? cli_oidc_form_post(c, d->token, form, &resp, ecode, sizeof(ecode), NULL) : EX_ERR;
	if (ex) {
		if (ecode[0])
			fprintf(stderr, "Error: the code exchange failed: %s\n", ecode);
		goto out;
	}
	if (jstr(resp, "id_token")) {
		ex = cli_oidc_check_id_token(c, d, jstr(resp, "id_token"), nonce);
		if (ex)
			goto out;
	}
	ex = cli_cache_store_tokens(c, d, resp, NULL, "browser", NULL);
out:
	if (bpid > 0)
		waitpid(bpid, NULL, WNOHANG);
	close(lfd);
	if (resp)
		json_decref(resp);
	free(verifier);
	free(state);
	free(nonce);
	free(challenge);
	free(url);
	free(redirect);
	free(code);
	free(form);
	return ex;
}
