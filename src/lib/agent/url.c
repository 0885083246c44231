/* url.c - absolute http(s) URLs for the node agent (see url.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "agent/url.h"
#include "base/err.h"
#include "base/util.h"

#define FAIL(...) (snprintf(reterr, errlen, __VA_ARGS__), ATT_E_INVAL)

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '-' || c == '_';
}

/* printable ASCII other than space */
static bool url_char(char c)
{
	return c > 0x20 && c < 0x7f;
}

static int parse_authority(const char *a, size_t n, struct att_url *u, char *reterr, size_t errlen)
{
	const char *port = NULL;
	size_t hl;

	if (memchr(a, '@', n))
		return FAIL("user information in URLs is not accepted");
	if (n > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', n);

		if (!close)
			return FAIL("unterminated IPv6 address");
		hl = (size_t)(close - a - 1);
		if (hl == 0 || hl >= sizeof(u->host))
			return FAIL("bad IPv6 address");
		for (size_t i = 1; i <= hl; i++)
			if (!(att_is_hex(&a[i], 1) || a[i] == ':' || a[i] == '.'))
				return FAIL("bad IPv6 address");
		memcpy(u->host, a + 1, hl);
		u->host[hl] = '\0';
		u->ipv6 = true;
		if ((size_t)(close - a) + 1 < n) {
			if (close[1] != ':')
				return FAIL("unexpected characters after the IPv6 address");
			port = close + 2;
		}
	} else {
		const char *colon = memchr(a, ':', n);

		hl = colon ? (size_t)(colon - a) : n;
		if (hl == 0 || hl >= sizeof(u->host))
			return FAIL("missing or overlong host");
		for (size_t i = 0; i < hl; i++)
			if (!host_char(a[i]))
				return FAIL("bad character in host name");
		memcpy(u->host, a, hl);
		u->host[hl] = '\0';
		if (colon)
			port = colon + 1;
	}
	if (port) {
		size_t pl = (size_t)(a + n - port);
		uint64_t v;

		if (pl == 0 || pl > 5 || att_parse_u64(port, pl, 1, 65535, &v) < 0)
			return FAIL("port must be 1-65535");
		snprintf(u->port, sizeof(u->port), "%u", (unsigned)v);
	} else {
		snprintf(u->port, sizeof(u->port), "%s", u->tls ? "443" : "80");
	}
	return 0;
}

int att_url_parse(const char *s, struct att_url *ret, char *reterr, size_t errlen)
{
	struct att_url u;
	const char *a, *slash;
	size_t n = s ? strlen(s) : 0;

	memset(&u, 0, sizeof(u));
	if (n == 0 || n >= ATT_URL_MAX)
		return FAIL("URL missing or longer than %d characters", ATT_URL_MAX - 1);
	for (size_t i = 0; i < n; i++)
		if (!url_char(s[i]))
			return FAIL("URL contains a space or control character");
	if (strncasecmp(s, "https://", 8) == 0) {
		u.tls = true;
		a = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		a = s + 7;
	} else {
		return FAIL("only http:// and https:// URLs are accepted");
	}
	if (strchr(a, '#'))
		return FAIL("fragments are not accepted in URLs");
	slash = a + strcspn(a, "/?");
	if (parse_authority(a, (size_t)(slash - a), &u, reterr, errlen) < 0)
		return ATT_E_INVAL;
	if (*slash == '?')
		snprintf(u.path, sizeof(u.path), "/%s", slash);
	else
		snprintf(u.path, sizeof(u.path), "%s", *slash ? slash : "/");
	*ret = u;
	return 0;
}

bool att_url_same_origin(const struct att_url *a, const struct att_url *b)
{
	return a->tls == b->tls && strcasecmp(a->host, b->host) == 0 && strcmp(a->port, b->port) == 0;
}

static void write_base(const struct att_url *u, size_t pathlen, char *out)
{
	bool dflt = strcmp(u->port, u->tls ? "443" : "80") == 0;

	snprintf(out, ATT_URL_MAX, "%s://%s%s%s%s%s%.*s", u->tls ? "https" : "http", u->ipv6 ? "[" : "", u->host,
		 u->ipv6 ? "]" : "", dflt ? "" : ":", dflt ? "" : u->port, (int)pathlen, u->path);
}

int att_url_base(const char *s, char *out, char *reterr, size_t errlen)
{
	struct att_url u;
	size_t pl;

	if (att_url_parse(s, &u, reterr, errlen) < 0)
		return ATT_E_INVAL;
	if (strchr(u.path, '?'))
		return FAIL("a service URL has no query");
	pl = strlen(u.path);
	while (pl > 0 && u.path[pl - 1] == '/')
		pl--;
	write_base(&u, pl, out);
	return 0;
}

int att_url_base_from_talos_config(const char *v, char *out)
{
	static const char api[] = "/api/v1/config";
	struct att_url u;
	char err[128];
	const char *p;
	size_t pl;

	if (att_url_parse(v, &u, err, sizeof(err)) < 0)
		return ATT_E_NOTFOUND;
	/* the last occurrence that ends the path or precedes '/' or '?' */
	for (p = u.path; (p = strstr(p, api)) != NULL; p++) {
		char next = p[sizeof(api) - 1];

		if (next == '\0' || next == '?' || next == '/')
			break;
	}
	if (!p)
		return ATT_E_NOTFOUND;
	pl = (size_t)(p - u.path);
	while (pl > 0 && u.path[pl - 1] == '/')
		pl--;
	write_base(&u, pl, out);
	return 0;
}

int att_url_join(const char *base, const char *path, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s%s", base, path);

	return (n < 0 || (size_t)n >= outlen) ? ATT_E_LIMIT : 0;
}
