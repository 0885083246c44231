#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "base/err.h"
#include "base/util.h"

char *att_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *att_strndup(const char *s, size_t n)
{
	char *r = malloc(n + 1);

	if (!r)
		return NULL;
	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

char *att_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *r = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&r, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : r;
}

void att_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool att_is_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (hexval(s[i]) < 0)
			return false;
	return true;
}

int att_hex_decode(const char *s, size_t len, uint8_t *out)
{
	if (len % 2)
		return ATT_E_INVAL;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);

		if (hi < 0 || lo < 0)
			return ATT_E_INVAL;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static const char b64_std[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const uint8_t *in, size_t len, const char *alpha, bool pad)
{
	size_t olen = 4 * ((len + 2) / 3) + 1;
	char *out, *o;
	size_t i;

	if (len > SIZE_MAX / 2)
		return NULL;
	out = malloc(olen);
	if (!out)
		return NULL;
	o = out;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		*o++ = alpha[v >> 18];
		*o++ = alpha[(v >> 12) & 63];
		*o++ = alpha[(v >> 6) & 63];
		*o++ = alpha[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		*o++ = alpha[v >> 18];
		*o++ = alpha[(v >> 12) & 63];
		if (i + 1 < len)
			*o++ = alpha[(v >> 6) & 63];
		else if (pad)
			*o++ = '=';
		if (pad)
			*o++ = '=';
	}
	*o = '\0';
	return out;
}

char *att_b64_encode(const uint8_t *in, size_t len)
{
	return b64_encode(in, len, b64_std, true);
}

char *att_b64url_encode(const uint8_t *in, size_t len)
{
	return b64_encode(in, len, b64_url, false);
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int att_b64_decode(const char *in, size_t len, uint8_t **ret_out, size_t *ret_len)
{
	uint8_t *out;
	size_t n = 0, pad = 0, quads = 0;
	uint32_t acc = 0;
	int k = 0;

	out = malloc(len / 4 * 3 + 3);
	if (!out)
		return ATT_E_NOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			if (pad > 2)
				goto bad;
			acc <<= 6;
			k++;
		} else {
			if (pad)
				goto bad; /* data after padding */
			v = b64val(c);
			if (v < 0)
				goto bad;
			acc = acc << 6 | (uint32_t)v;
			k++;
		}
		if (k == 4) {
			out[n++] = (uint8_t)(acc >> 16);
			if (pad < 2)
				out[n++] = (uint8_t)(acc >> 8);
			if (pad < 1)
				out[n++] = (uint8_t)acc;
			acc = 0;
			k = 0;
			quads++;
		}
	}
	if (k != 0 || (pad && quads == 0))
		goto bad;
	*ret_out = out;
	*ret_len = n;
	return 0;
bad:
	free(out);
	return ATT_E_INVAL;
}

bool att_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return false;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

void att_sha256(const void *p, size_t len, uint8_t out[32])
{
	SHA256(p, len, out);
}

void att_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32])
{
	unsigned int n = 32;

	if (!HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &n))
		memset(out, 0, 32);
}

int att_random(void *buf, size_t len)
{
	if (len > (size_t)INT32_MAX || RAND_bytes(buf, (int)len) != 1)
		return ATT_E_CRYPTO;
	return 0;
}

int att_uuid4(char out[37])
{
	uint8_t b[16];
	char hex[33];
	int r;

	r = att_random(b, sizeof(b));
	if (r < 0)
		return r;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	att_hex_encode(b, sizeof(b), hex);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
	return 0;
}

struct att_time att_now(void)
{
	struct timeval tv;
	struct att_time t;

	gettimeofday(&tv, NULL);
	t.sec = tv.tv_sec;
	t.usec = (int32_t)tv.tv_usec;
	return t;
}

void att_time_iso(struct att_time t, char out[32])
{
	struct tm tm;
	time_t s = (time_t)t.sec;

	gmtime_r(&s, &tm);
	if (t.usec)
		snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%06d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)t.usec);
	else
		snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void att_time_iso_utc(struct att_time t, char out[40])
{
	char base[32];

	att_time_iso(t, base);
	snprintf(out, 40, "%s+00:00", base);
}

static int digits(const char *s, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return ATT_E_INVAL;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return 0;
}

int att_time_parse(const char *s, struct att_time *ret)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, se, us = 0;
	size_t len = strlen(s), pos = 19;
	time_t t;

	if (len < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return ATT_E_INVAL;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
		return ATT_E_INVAL;
	if (pos < len && s[pos] == '.') {
		if (len < pos + 7 || digits(s + pos + 1, 6, &us))
			return ATT_E_INVAL;
		pos += 7;
	}
	if (pos < len && !(strcmp(s + pos, "Z") == 0 || strcmp(s + pos, "+00:00") == 0))
		return ATT_E_INVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return ATT_E_INVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	ret->sec = t;
	ret->usec = us;
	return 0;
}

int att_parse_u64(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return ATT_E_INVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return ATT_E_INVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return ATT_E_INVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v < min || v > max)
		return ATT_E_INVAL;
	*ret = v;
	return 0;
}

void att_wipe(void *p, size_t len)
{
	if (p)
		OPENSSL_cleanse(p, len);
}
