/* url.h - the URLs the node agent talks to: the service base URL
 * (--server, ITL_REG_URL, itl.reg_url=, or derived from Talos'
 * talos.config=) and the config URLs the service names.
 *
 * Only absolute http:// and https:// URLs without userinfo or fragment;
 * hosts are DNS names, IPv4 or bracketed IPv6 literals.  Anything else
 * (spaces, control characters, an empty host, a port outside 1-65535)
 * is ATT_E_INVAL with a reason. */
#ifndef ATT_AGENT_URL_H
#define ATT_AGENT_URL_H

#include <stdbool.h>
#include <stddef.h>

#define ATT_URL_MAX 2048

struct att_url {
	bool tls;		/* https */
	char host[256];		/* without brackets for IPv6 */
	bool ipv6;
	char port[6];		/* always set: 80/443 when the URL has none */
	char path[ATT_URL_MAX];	/* path and query, starts with '/' */
};

int att_url_parse(const char *s, struct att_url *ret, char *reterr, size_t errlen);

/* Same scheme, host (case-insensitive) and port. */
bool att_url_same_origin(const struct att_url *a, const struct att_url *b);

/* A service base URL: parsed, without query, trailing '/' removed
 * (out: ATT_URL_MAX bytes, "https://host[:port][/prefix]"). */
int att_url_base(const char *s, char *out, char *reterr, size_t errlen);

/* The service base URL in a Talos talos.config= value pointing at
 * <base>/api/v1/config[?...] (the generic ISO's kernel argument);
 * ATT_E_NOTFOUND when the value is not such a URL. */
int att_url_base_from_talos_config(const char *talos_config, char *out);

/* base + path (path starts with '/'); ATT_E_LIMIT when too long. */
int att_url_join(const char *base, const char *path, char *out, size_t outlen);

#endif
