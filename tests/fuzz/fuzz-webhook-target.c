/* The webhooks module's target checks (src/attestd/ext/builtin/
 * webhooks_util.c): URL syntax, address literals and the CIDR lists of
 * ITL_WEBHOOK_ALLOWED/DENIED_CIDRS.  Input: three NUL-separated parts
 * (URL, address, CIDR list).  Invariants: no crash, and a link-local or
 * metadata address is never allowed whatever the lists say. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/attestd/ext/builtin/webhooks.h"

const struct att_ext_host *wh_host;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[4096], why[256], *url, *addr, *list, *p;

	if (size >= sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	url = buf;
	p = memchr(buf, 0, size + 1);
	addr = p < buf + size ? p + 1 : buf + size;
	p = strchr(addr, 0);
	list = p < buf + size ? p + 1 : buf + size;
	(void)wh_url_check(url, why, sizeof(why));
	memset(&wh_conf, 0, sizeof(wh_conf));
	snprintf(wh_conf.allowed, sizeof(wh_conf.allowed), "%s", list);
	wh_conf.allow_private = size & 1;
	(void)wh_addr_allowed(addr, why, sizeof(why));
	snprintf(wh_conf.denied, sizeof(wh_conf.denied), "%s", list);
	wh_conf.allowed[0] = 0;
	(void)wh_addr_allowed(addr, why, sizeof(why));
	/* whatever the lists say, these stay refused */
	snprintf(wh_conf.allowed, sizeof(wh_conf.allowed), "%s", list);
	wh_conf.denied[0] = 0;
	wh_conf.allow_private = 1;
	if (wh_addr_allowed("169.254.169.254", why, sizeof(why)) || wh_addr_allowed("::ffff:169.254.169.254", why, sizeof(why)) ||
	    wh_addr_allowed("fe80::1", why, sizeof(why)) || wh_addr_allowed("0.0.0.0", why, sizeof(why)))
		abort();
	return 0;
}
