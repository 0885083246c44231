/* cahsm.c - an Enrollment CA key held by a PKCS#11 token (an HSM;
 * SoftHSM2 in the tests), through libp11.  ITL_ENROLLMENT_CA_KEY is an
 * RFC 7512 URI:
 *   pkcs11:token=<label>;object=<label>[;id=%01]?pin-value=<pin>[&module-path=<so>]
 * (pin-source=file:<path> instead of pin-value; the module defaults to
 * ITL_PKCS11_MODULE).  The key never leaves the token: libp11 hands
 * OpenSSL an EVP_PKEY whose operations are C_Sign calls.  The PIN is
 * wiped after login and never logged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "crypto/ca-internal.h"
#include "crypto/p11wrap.h"

#ifdef ATT_HAVE_LIBP11
#include <libp11.h>
#endif


/* Percent-decode [s, s+n) into out (cap bytes incl. NUL); -1 if invalid. */
static int pct_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *ret_len)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned v = (unsigned char)s[i];

		if (s[i] == '%') {
			char hx[3];

			if (n - i < 3 || !att_is_hex(s + i + 1, 2))
				return -1;
			hx[0] = s[i + 1];
			hx[1] = s[i + 2];
			hx[2] = '\0';
			v = (unsigned)strtoul(hx, NULL, 16);
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = (unsigned char)v;
	}
	out[o] = '\0';
	if (ret_len)
		*ret_len = o;
	return 0;
}

static int set_attr(struct att_p11_uri *a, const char *k, size_t kl, const char *v, size_t vl)
{
	struct {
		const char *name;
		unsigned char *dst;
		size_t cap;
	} t[] = {
		{ "token", (unsigned char *)a->token, sizeof(a->token) },
		{ "object", (unsigned char *)a->object, sizeof(a->object) },
		{ "pin-value", (unsigned char *)a->pin, sizeof(a->pin) },
		{ "module-path", (unsigned char *)a->module, sizeof(a->module) },
		{ "pin-source", (unsigned char *)a->pin_file, sizeof(a->pin_file) },
		{ "id", a->id, sizeof(a->id) },
	};

	for (size_t i = 0; i < ATT_ARRAY_SIZE(t); i++)
		if (strlen(t[i].name) == kl && memcmp(t[i].name, k, kl) == 0)
			return pct_decode(v, vl, t[i].dst, t[i].cap, t[i].dst == a->id ? &a->id_len : NULL);
	return 0;	/* other attributes (type=private, ...) are not needed */
}

int att_p11_uri_parse(const char *uri, struct att_p11_uri *a)
{
	const char *p = uri + 7, *q = strchr(p, '?');
	const char *end = q ? q : p + strlen(p);

	memset(a, 0, sizeof(*a));
	for (int part = 0; part < 2; part++) {
		const char *s = part == 0 ? p : (q ? q + 1 : NULL), *e = part == 0 ? end : (q ? q + strlen(q) : NULL);
		char sep = part == 0 ? ';' : '&';

		while (s && s < e) {
			const char *n = memchr(s, sep, (size_t)(e - s)), *eq;
			size_t len = n ? (size_t)(n - s) : (size_t)(e - s);

			eq = memchr(s, '=', len);
			if (eq && set_attr(a, s, (size_t)(eq - s), eq + 1, len - (size_t)(eq - s) - 1) < 0)
				return -1;
			s = n ? n + 1 : e;
		}
	}
	if (strncmp(a->pin_file, "file:", 5) == 0) {
		FILE *f = fopen(a->pin_file + 5, "re");
		size_t n = f ? fread(a->pin, 1, sizeof(a->pin) - 1, f) : 0;

		if (f)
			fclose(f);
		while (n && (a->pin[n - 1] == '\n' || a->pin[n - 1] == '\r'))
			n--;
		a->pin[n] = '\0';
	}
	return 0;
}

#ifdef ATT_HAVE_LIBP11
struct att_ca_hsm {
	PKCS11_SLOT *slot;	/* the shared context's (p11wrap.c): never released here */
};

static PKCS11_KEY *find_key(PKCS11_TOKEN *tok, const struct att_p11_uri *a)
{
	PKCS11_KEY *keys = NULL;
	unsigned int n = 0;

	if (PKCS11_enumerate_keys(tok, &keys, &n) < 0)
		return NULL;
	for (unsigned int i = 0; i < n; i++) {
		bool label_ok = !a->object[0] || (keys[i].label && strcmp(keys[i].label, a->object) == 0);
		bool id_ok = !a->id_len || (keys[i].id_len == a->id_len && memcmp(keys[i].id, a->id, a->id_len) == 0);

		if (label_ok && id_ok)
			return &keys[i];
	}
	return NULL;
}

int att_ca_hsm_load(const char *uri, const char *default_module, EVP_PKEY **ret, struct att_ca_hsm **ret_hsm,
		    char *reterr, size_t errlen)
{
	struct att_ca_hsm *h = calloc(1, sizeof(*h));
	struct att_p11_uri a;
	PKCS11_KEY *key;
	EVP_PKEY *pk = NULL;
	char why[256];
	void *slot = NULL;
	int r = ATT_E_INVAL;

	if (!h)
		return ATT_E_NOMEM;
	if (att_p11_uri_parse(uri, &a) < 0 || (!a.object[0] && !a.id_len)) {
		snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_KEY: expected pkcs11:token=<label>;object=<label>?pin-value=<pin>");
		goto out;
	}
	if (!a.module[0])
		snprintf(a.module, sizeof(a.module), "%s", default_module ? default_module : "");
	if (att_p11_slot(&a, &slot, why, sizeof(why)) < 0) {
		snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_KEY: %s", why);
		goto out;
	}
	h->slot = slot;
	key = find_key(h->slot->token, &a);
	pk = key ? PKCS11_get_private_key(key) : NULL;
	if (!pk) {
		snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_KEY: no private key '%s' in token '%s'", a.object, a.token);
		goto out;
	}
	*ret = pk;
	*ret_hsm = h;
	h = NULL;
	r = 0;
out:
	att_wipe(&a, sizeof(a));
	att_ca_hsm_free(h);
	return r;
}

void att_ca_hsm_free(struct att_ca_hsm *h)
{
	free(h);
}
#else
int att_ca_hsm_load(const char *uri, const char *default_module, EVP_PKEY **ret, struct att_ca_hsm **ret_hsm,
		    char *reterr, size_t errlen)
{
	struct att_p11_uri a;

	(void)default_module;
	(void)ret;
	(void)ret_hsm;
	(void)att_p11_uri_parse(uri, &a);
	att_wipe(&a, sizeof(a));
	snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_KEY: this attestd was built without PKCS#11 support (libp11)");
	return ATT_E_UNAVAILABLE;
}

void att_ca_hsm_free(struct att_ca_hsm *h)
{
	(void)h;
}
#endif
