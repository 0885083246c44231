/* tsa.h - RFC 3161 timestamps for audit checkpoints (docs/audit.md).
 *
 * The timestamped data is the checkpoint's payload (SHA-256 message
 * imprint).  The token is the TSA's TimeStampToken (CMS SignedData), DER,
 * base64: `openssl ts -verify -token_in -in TOKEN.der -data PAYLOAD
 * -CAfile TSA-CA.pem` checks it. */
#ifndef ATT_AUDIT_TSA_H
#define ATT_AUDIT_TSA_H

#include <stddef.h>

/* Ask the TSA at url to timestamp payload; *ret_token_b64 (malloc'd) on
 * success.  The answer must be granted and carry our imprint and nonce.
 * ATT_E_UNAVAILABLE (unreachable, refused) or ATT_E_PARSE, with err set. */
int att_tsa_request(const char *url, const char *payload, long timeout_seconds, char **ret_token_b64, char *err,
		    size_t errlen);

/* Check a token against payload: the imprint always, the TSA's signature
 * and chain too when ca_pem is given.  gen_time gets the TSA's time
 * (YYYYMMDDHHMMSSZ as the token states it).  0, or ATT_E_CRYPTO /
 * ATT_E_PARSE with err set. */
int att_tsa_check(const char *token_b64, const char *payload, const char *ca_pem, char *gen_time, size_t timelen,
		  char *err, size_t errlen);

#endif
