/* webhooks_util.c - the webhooks module's configuration, URL and address
 * policy, secrets at rest and signatures. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "webhooks.h"

struct wh_conf wh_conf;

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int wh_conf_load(char *err, size_t errlen)
{
	const char *v = getenv("ITL_WEBHOOK_ALLOW_PRIVATE"), *t = getenv("ITL_WEBHOOK_TIMEOUT_SECONDS");
	const char *mk = getenv("ITL_SHARED_SECRET_MASTER_KEY"), *pp = getenv("ITL_SHARED_SECRET_PASSPHRASE");
	const char *al = getenv("ITL_WEBHOOK_ALLOWED_CIDRS"), *de = getenv("ITL_WEBHOOK_DENIED_CIDRS");
	const char *ca = getenv("ITL_WEBHOOK_CA_FILE");
	char *end;

	memset(&wh_conf, 0, sizeof(wh_conf));
	wh_conf.allow_private = v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0);
	if (v && *v && !wh_conf.allow_private && strcasecmp(v, "false") != 0 && strcmp(v, "0") != 0 &&
	    strcasecmp(v, "no") != 0) {
		snprintf(err, errlen, "ITL_WEBHOOK_ALLOW_PRIVATE: expected true or false, got '%.32s'", v);
		return -1;
	}
	wh_conf.timeout_seconds = 5;
	if (t && *t) {
		wh_conf.timeout_seconds = strtol(t, &end, 10);
		if (*end || wh_conf.timeout_seconds < 1 || wh_conf.timeout_seconds > 120) {
			snprintf(err, errlen, "ITL_WEBHOOK_TIMEOUT_SECONDS: expected 1-120, got '%.32s'", t);
			return -1;
		}
	}
	snprintf(wh_conf.allowed, sizeof(wh_conf.allowed), "%s", al ? al : "");
	snprintf(wh_conf.denied, sizeof(wh_conf.denied), "%s", de ? de : "");
	snprintf(wh_conf.ca_file, sizeof(wh_conf.ca_file), "%s", ca ? ca : "");
	/* the CIDR lists must parse: check them once with a harmless address */
	{
		char why[256] = "";

		(void)wh_addr_allowed("192.0.2.1", why, sizeof(why));
		if (strstr(why, "ITL_WEBHOOK_")) {
			snprintf(err, errlen, "%s", why);
			return -1;
		}
	}
	if (mk && *mk) {
		if (strlen(mk) != 64) {
			snprintf(err, errlen, "ITL_SHARED_SECRET_MASTER_KEY: expected 64 hex characters");
			return -1;
		}
		for (int i = 0; i < 32; i++) {
			int hi = hexval(mk[2 * i]), lo = hexval(mk[2 * i + 1]);

			if (hi < 0 || lo < 0) {
				snprintf(err, errlen, "ITL_SHARED_SECRET_MASTER_KEY: expected 64 hex characters");
				return -1;
			}
			wh_conf.key[i] = (uint8_t)(hi << 4 | lo);
		}
		return 1;
	}
	if (pp && *pp) {
		SHA256((const unsigned char *)pp, strlen(pp), wh_conf.key);
		return 1;
	}
	return 0;	/* no key configured: the caller uses the database-held one */
}

int wh_url_check(const char *url, char *why, size_t whylen)
{
	const char *host, *p;
	size_t n = url ? strlen(url) : 0;

	if (n == 0 || n > WH_URL_MAX) {
		snprintf(why, whylen, "url: required, at most %d characters", WH_URL_MAX);
		return -1;
	}
	if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else {
		snprintf(why, whylen, "url: must start with https:// or http://");
		return -1;
	}
	for (p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#' || *p == '\\') {
			snprintf(why, whylen, "url: spaces, control characters, '#' and '\\' are not allowed");
			return -1;
		}
	n = strcspn(host, "/?");
	if (n == 0 || memchr(host, '@', n)) {
		snprintf(why, whylen, "url: needs a host and no user:password@");
		return -1;
	}
	return 0;
}

/* ---- address policy ------------------------------------------------------------------ */

struct range {
	int family;
	uint8_t net[16];
	int bits;
};

static bool parse_cidr(const char *s, size_t len, struct range *r)
{
	char buf[64], *slash;
	long bits;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = 0;
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = 0;
	memset(r, 0, sizeof(*r));
	if (inet_pton(AF_INET, buf, r->net) == 1)
		r->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, r->net) == 1)
		r->family = AF_INET6;
	else
		return false;
	bits = r->family == AF_INET ? 32 : 128;
	if (slash) {
		char *end;
		long b = strtol(slash, &end, 10);

		if (*end || b < 0 || b > bits)
			return false;
		bits = b;
	}
	r->bits = (int)bits;
	return true;
}

static bool in_range(int family, const uint8_t *a, const struct range *r)
{
	int full = r->bits / 8, rest = r->bits % 8;

	if (family != r->family || memcmp(a, r->net, (size_t)full) != 0)
		return false;
	return rest == 0 || ((a[full] ^ r->net[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* -1: list unparsable; 1: a in list; 0: not. */
static int in_list(const char *list, int family, const uint8_t *a)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ", ");
		struct range r;

		if (n) {
			if (!parse_cidr(p, n, &r))
				return -1;
			if (in_range(family, a, &r))
				return 1;
		}
		p += n;
		while (*p == ',' || *p == ' ')
			p++;
	}
	return 0;
}

static bool in_builtin(const char *const *list, size_t n, int family, const uint8_t *a)
{
	for (size_t i = 0; i < n; i++) {
		struct range r;

		if (parse_cidr(list[i], strlen(list[i]), &r) && in_range(family, a, &r))
			return true;
	}
	return false;
}

bool wh_addr_allowed(const char *addr, char *why, size_t whylen)
{
	/* never: unspecified, link-local (cloud metadata lives there), multicast, broadcast, metadata services */
	static const char *const never[] = { "0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
					     "100.100.100.200/32", "::/128", "fe80::/10", "ff00::/8",
					     "fd00:ec2::254/128" };
	/* unless ITL_WEBHOOK_ALLOW_PRIVATE: loopback, private, shared, unique-local */
	static const char *const priv[] = { "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
					    "100.64.0.0/10", "198.18.0.0/15", "::1/128", "fc00::/7" };
	uint8_t a[16];
	int family = AF_INET, r;

	if (inet_pton(AF_INET, addr, a) != 1) {
		if (inet_pton(AF_INET6, addr, a) != 1) {
			snprintf(why, whylen, "url: unusable address %.64s", addr);
			return false;
		}
		family = AF_INET6;
		/* IPv4-mapped (::ffff:a.b.c.d) and NAT64-free forms are judged as IPv4 */
		if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
			memmove(a, a + 12, 4);
			family = AF_INET;
		}
	}
	if ((r = in_list(wh_conf.denied, family, a)) != 0) {
		snprintf(why, whylen, r < 0 ? "ITL_WEBHOOK_DENIED_CIDRS: not a list of addresses/CIDRs"
					    : "url: address %.64s is denied (ITL_WEBHOOK_DENIED_CIDRS)", addr);
		return false;
	}
	if (in_builtin(never, sizeof(never) / sizeof(never[0]), family, a)) {
		snprintf(why, whylen, "url: address %.64s is not allowed (link-local, metadata, multicast or unspecified)", addr);
		return false;
	}
	if (!wh_conf.allow_private && in_builtin(priv, sizeof(priv) / sizeof(priv[0]), family, a)) {
		snprintf(why, whylen, "url: address %.64s is loopback or private (set ITL_WEBHOOK_ALLOW_PRIVATE=true to allow)", addr);
		return false;
	}
	if (wh_conf.allowed[0] && (r = in_list(wh_conf.allowed, family, a)) != 1) {
		snprintf(why, whylen, r < 0 ? "ITL_WEBHOOK_ALLOWED_CIDRS: not a list of addresses/CIDRs"
					    : "url: address %.64s is not in ITL_WEBHOOK_ALLOWED_CIDRS", addr);
		return false;
	}
	return true;
}

int wh_url_resolve(const char *url, char *ret_resolve, size_t rlen, char *why, size_t whylen)
{
	const char *h = strncmp(url, "https://", 8) == 0 ? url + 8 : url + 7;
	size_t n = strcspn(h, "/?");
	char host[256], port[8];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	char first[64] = "";
	const char *colon;
	int e;

	if (wh_url_check(url, why, whylen) < 0)
		return -1;
	snprintf(port, sizeof(port), "%s", url[4] == 's' ? "443" : "80");
	if (h[0] == '[') {
		const char *close = memchr(h, ']', n);

		if (!close || (size_t)(close - h - 1) >= sizeof(host)) {
			snprintf(why, whylen, "url: bad IPv6 literal");
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(close - h - 1), h + 1);
		colon = close + 1 < h + n && close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = memchr(h, ':', n);
		if ((size_t)((colon ? colon : h + n) - h) >= sizeof(host)) {
			snprintf(why, whylen, "url: host too long");
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)((colon ? colon : h + n) - h), h);
	}
	if (colon) {
		size_t pl = (size_t)(h + n - colon - 1);

		if (pl == 0 || pl > 5 || strspn(colon + 1, "0123456789") < pl || atoi(colon + 1) < 1 ||
		    atoi(colon + 1) > 65535) {
			snprintf(why, whylen, "url: bad port");
			return -1;
		}
		snprintf(port, sizeof(port), "%.*s", (int)pl, colon + 1);
	}
	e = getaddrinfo(host, port, &hints, &res);
	if (e != 0) {
		snprintf(why, whylen, "url: cannot resolve %.128s: %s", host, gai_strerror(e));
		return -2;	/* maybe temporary */
	}
	for (ai = res; ai; ai = ai->ai_next) {
		char a[64];
		const void *p = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
							 : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;

		if (!inet_ntop(ai->ai_family, p, a, sizeof(a)) || !wh_addr_allowed(a, why, whylen)) {
			freeaddrinfo(res);
			return -1;
		}
		if (!first[0])
			snprintf(first, sizeof(first), ai->ai_family == AF_INET6 ? "[%s]" : "%s", a);
	}
	freeaddrinfo(res);
	if (!first[0]) {
		snprintf(why, whylen, "url: %.128s has no address", host);
		return -2;
	}
	/* pin the checked address: no second lookup between the check and the connection */
	snprintf(ret_resolve, rlen, "%s:%s:%s", host, port, first);
	return 0;
}

/* ---- secrets and signatures ------------------------------------------------------------- */

void wh_random_hex(char *out, size_t nbytes)
{
	uint8_t b[64];

	if (nbytes > sizeof(b))
		nbytes = sizeof(b);
	if (RAND_bytes(b, (int)nbytes) != 1)
		abort();
	for (size_t i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * nbytes] = 0;
	OPENSSL_cleanse(b, sizeof(b));
}

char *wh_secret_seal(const char *secret)
{
	size_t n = strlen(secret);
	uint8_t *buf = malloc(12 + n + 16);
	char *out = malloc(4 * ((12 + n + 16 + 2) / 3) + 1);
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int len = 0, ok = buf && out && x && RAND_bytes(buf, 12) == 1 &&
			  EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, wh_conf.key, buf) == 1 &&
			  EVP_EncryptUpdate(x, buf + 12, &len, (const uint8_t *)secret, (int)n) == 1 &&
			  EVP_EncryptFinal_ex(x, buf + 12 + len, &len) == 1 &&
			  EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, buf + 12 + n) == 1;

	EVP_CIPHER_CTX_free(x);
	if (ok)
		EVP_EncodeBlock((unsigned char *)out, buf, (int)(12 + n + 16));
	if (buf)
		OPENSSL_cleanse(buf, 12 + n + 16);
	free(buf);
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

char *wh_secret_open(const char *sealed)
{
	size_t sl = strlen(sealed), n;
	uint8_t *buf = malloc(sl + 1);
	char *out = NULL;
	EVP_CIPHER_CTX *x = NULL;
	int dl, len = 0, pad = sl >= 2 ? (sealed[sl - 1] == '=') + (sealed[sl - 2] == '=') : 0;

	if (!buf || sl % 4)
		goto fail;
	dl = EVP_DecodeBlock(buf, (const unsigned char *)sealed, (int)sl);
	if (dl < 0 || dl - pad < 12 + 16)
		goto fail;
	n = (size_t)(dl - pad) - 12 - 16;
	out = malloc(n + 1);
	x = EVP_CIPHER_CTX_new();
	if (!out || !x || EVP_DecryptInit_ex(x, EVP_aes_256_gcm(), NULL, wh_conf.key, buf) != 1 ||
	    EVP_DecryptUpdate(x, (uint8_t *)out, &len, buf + 12, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, buf + 12 + n) != 1 ||
	    EVP_DecryptFinal_ex(x, (uint8_t *)out + len, &len) != 1)
		goto fail;
	out[n] = 0;
	EVP_CIPHER_CTX_free(x);
	free(buf);
	return out;
fail:
	EVP_CIPHER_CTX_free(x);
	free(buf);
	free(out);
	return NULL;
}

void wh_sign(const char *secret, const char *prefix, const void *body, size_t len, char out[65])
{
	uint8_t mac[32];
	unsigned int ml = 0;

	if (prefix && *prefix) {
		size_t pl = strlen(prefix);
		uint8_t *m = malloc(pl + len);

		if (!m)
			abort();
		memcpy(m, prefix, pl);
		memcpy(m + pl, body, len);
		HMAC(EVP_sha256(), secret, (int)strlen(secret), m, pl + len, mac, &ml);
		free(m);
	} else {
		HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, mac, &ml);
	}
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", mac[i]);
	out[64] = 0;
}
