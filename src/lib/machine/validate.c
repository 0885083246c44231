/* validate.c - input checks shared by the HTTP layer and import:
 * fingerprints, hostnames, addresses (normalized to CIDR), cluster IDs,
 * statuses and MAC addresses. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "machine/machine.h"

bool att_valid_fingerprint(const char *fp)
{
	size_t n = strlen(fp);

	return (n == 64 || n == 96) && att_is_hex(fp, n);
}

bool att_valid_hostname(const char *h)
{
	size_t n = strlen(h), label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = h[i];

		if (ch == '.') {
			if (label == 0 || h[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-'))
			return false;
		if (ch == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && h[n - 1] != '-';
}

bool att_normalize_cidr(const char *in, char out[64])
{
	char addr[64];
	const char *slash = strchr(in, '/');
	size_t alen = slash ? (size_t)(slash - in) : strlen(in);
	unsigned char buf[16];
	uint64_t prefix;
	bool v6;

	if (alen == 0 || alen >= sizeof(addr))
		return false;
	memcpy(addr, in, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, buf) == 1)
		v6 = false;
	else if (inet_pton(AF_INET6, addr, buf) == 1)
		v6 = true;
	else
		return false;
	if (slash) {
		if (att_parse_u64(slash + 1, strlen(slash + 1), 0, v6 ? 128 : 32, &prefix) < 0)
			return false;
	} else {
		prefix = v6 ? 128 : 32;
	}
	/* an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is that IPv4 address:
	 * one canonical form, so uniqueness cannot be dodged by spelling */
	if (v6 && prefix >= 96 && memcmp(buf, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		memmove(buf, buf + 12, 4);
		prefix -= 96;
		v6 = false;
	}
	{
		char norm[INET6_ADDRSTRLEN];

		if (!inet_ntop(v6 ? AF_INET6 : AF_INET, buf, norm, sizeof(norm)))
			return false;
		snprintf(out, 64, "%s/%u", norm, (unsigned)prefix);
	}
	return true;
}

bool att_valid_cluster_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || (ch == '-' && i > 0)))
			return false;
	}
	return true;
}

bool att_valid_status(const char *s)
{
	static const char *st[] = { "pending_approval", "registered", "attested", "locked", "revoked" };

	for (size_t i = 0; i < ATT_ARRAY_SIZE(st); i++)
		if (strcmp(s, st[i]) == 0)
			return true;
	return false;
}

bool att_normalize_mac(const char *in, char out[32])
{
	size_t n = strlen(in);

	if (strcmp(in, "unknown") == 0) {
		snprintf(out, 32, "unknown");
		return true;
	}
	if (n != 17)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = in[i];

		if (i % 3 == 2) {
			if (ch != ':' && ch != '-')
				return false;
			out[i] = ':';
		} else {
			if (!att_is_hex(&ch, 1))
				return false;
			out[i] = (ch >= 'A' && ch <= 'F') ? (char)(ch - 'A' + 'a') : ch;
		}
	}
	out[n] = '\0';
	return true;
}
