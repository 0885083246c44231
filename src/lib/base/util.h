/* util.h - small helpers: spans, hex, base64, constant-time compare,
 * time formatting, random identifiers.  Every helper works on
 * length-delimited input and never relies on NUL termination of
 * untrusted bytes. */
#ifndef ATT_BASE_UTIL_H
#define ATT_BASE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
/* system headers that declare banned functions come before banned.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct att_span {
	const uint8_t *p;
	size_t len;
};

#define ATT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation helpers: abort on OOM is reserved for executables; these
 * return NULL and callers map that to ATT_E_NOMEM. */
char *att_strdup(const char *s);
char *att_strndup(const char *s, size_t n);
char *att_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void att_hex_encode(const uint8_t *in, size_t len, char *out);
/* True when s (len chars) is all [0-9a-fA-F]. */
bool att_is_hex(const char *s, size_t len);
/* Decode hex; returns 0 or ATT_E_INVAL.  out must hold len/2 bytes. */
int att_hex_decode(const char *s, size_t len, uint8_t *out);

/* Standard base64 (RFC 4648, with padding). */
char *att_b64_encode(const uint8_t *in, size_t len);
/* Strict decode: ASCII whitespace is skipped, any other non-alphabet
 * character or wrong padding is an error (ATT_E_INVAL).  Caller frees
 * *ret_out. */
int att_b64_decode(const char *in, size_t len, uint8_t **ret_out, size_t *ret_len);
/* URL-safe base64 without padding (tokens). */
char *att_b64url_encode(const uint8_t *in, size_t len);

/* Constant-time comparison of two byte strings (length leaks only). */
bool att_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* SHA-256 of len bytes. */
void att_sha256(const void *p, size_t len, uint8_t out[32]);

/* HMAC-SHA256 of msg under key. */
void att_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32]);

/* Cryptographic randomness; 0 or ATT_E_CRYPTO. */
int att_random(void *buf, size_t len);
/* Random RFC 4122 version-4 UUID string (37 bytes incl. NUL). */
int att_uuid4(char out[37]);

/* Wall-clock time with microseconds. */
struct att_time {
	int64_t sec;
	int32_t usec;
};
struct att_time att_now(void);
/* Python-style naive UTC isoformat: YYYY-MM-DDTHH:MM:SS[.ffffff]
 * (fraction omitted when usec == 0).  out: 32 bytes. */
void att_time_iso(struct att_time t, char out[32]);
/* Same with "+00:00" suffix. */
void att_time_iso_utc(struct att_time t, char out[40]);
/* Parse the format written by att_time_iso (optionally with Z/+00:00). */
int att_time_parse(const char *s, struct att_time *ret);

/* Parse an unsigned decimal in [min,max]; whole string must match. */
int att_parse_u64(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *ret);

/* Wipe memory that held a secret. */
void att_wipe(void *p, size_t len);

#include "base/banned.h"

#endif
