/* host_wrap.c - wrapping keys in an HSM for extensions (wrapkey_open ...
 * of the extension ABI), over src/lib/crypto/p11wrap.c.  Every blob is
 * bound to the calling extension's name and its context label, so one
 * extension cannot unwrap another's blobs under the same key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "config/config.h"
#include "crypto/p11wrap.h"
#include "ext/ext.h"
#include "obs/log.h"
#include "machine/machine.h"

struct att_ext_wrapkey {
	struct att_p11_wrapkey *key;
	char ext[40];
};

static int to_ext(int r)
{
	switch (r) {
	case 0: return ATT_EXT_OK;
	case ATT_E_INVAL: return ATT_EXT_INVALID;
	case ATT_E_NOTFOUND: return ATT_EXT_NOTFOUND;
	case ATT_E_UNAVAILABLE: return ATT_EXT_UNAVAILABLE;
	default: return ATT_EXT_ERROR;
	}
}

int att_ext_h_wrapkey_open(struct att_ext *ext, const char *spec, struct att_ext_wrapkey **ret, char *err,
			   size_t errlen)
{
	const struct att_config *cfg = ext->svc->cfg;
	struct att_ext_wrapkey *w;
	char why[256] = "";
	int r;

	if (!spec || !ret || !err) {
		if (err && errlen)
			snprintf(err, errlen, "wrapkey_open: no key named");
		return ATT_EXT_INVALID;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return ATT_EXT_ERROR;
	}
	snprintf(w->ext, sizeof(w->ext), "%s", ext->info->name);
	r = att_p11_wrapkey_open(spec, cfg->enrollment_ca_key, cfg->pkcs11_module, &w->key, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "%s", why);
		free(w);
		return to_ext(r);
	}
	att_log_info("attestd.ext", "extension %s: wrapping key %s opened in a PKCS#11 token", ext->info->name,
		     att_p11_wrapkey_id(w->key));
	*ret = w;
	return ATT_EXT_OK;
}

static int label(const struct att_ext_wrapkey *w, const char *context, char *out, size_t cap)
{
	int n = snprintf(out, cap, "ext/%s/%s", w->ext, context ? context : "");

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int att_ext_h_wrapkey_wrap(struct att_ext_wrapkey *w, const char *context, const uint8_t *in, size_t len,
			   uint8_t *out, size_t cap, size_t *ret_len)
{
	char l[512];

	if (!w || (!in && len) || !out || !ret_len || label(w, context, l, sizeof(l)) < 0)
		return ATT_EXT_INVALID;
	return to_ext(att_p11_wrapkey_wrap(w->key, l, in, len, out, cap, ret_len));
}

int att_ext_h_wrapkey_unwrap(struct att_ext_wrapkey *w, const char *context, const uint8_t *in, size_t len,
			     uint8_t *out, size_t cap, size_t *ret_len)
{
	char l[512];

	if (!w || !in || !out || !ret_len || label(w, context, l, sizeof(l)) < 0)
		return ATT_EXT_INVALID;
	return to_ext(att_p11_wrapkey_unwrap(w->key, l, in, len, out, cap, ret_len));
}

const char *att_ext_h_wrapkey_id(struct att_ext_wrapkey *w)
{
	return w ? att_p11_wrapkey_id(w->key) : NULL;
}

void att_ext_h_wrapkey_close(struct att_ext_wrapkey *w)
{
	if (!w)
		return;
	att_p11_wrapkey_free(w->key);
	free(w);
}
