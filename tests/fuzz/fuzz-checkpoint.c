/* Signed audit checkpoints as `attestation audit verify --checkpoint`
 * reads them (an untrusted file): the export document (JSON, base64 DER
 * CMS), the payload parser and the chain comparison, and the RFC 3161
 * token.  Input starting with 'P' is a bare payload, with 'T' a DER
 * TimeStampToken; anything else is an export document. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/checkpoint.h"
#include "audit/tsa.h"
#include "base/util.h"

static const char ca_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBczCCARmgAwIBAgIUHUgr8wpmCGzkrFdh8reeKt/6r+swCgYIKoZIzj0EAwIw\n"
	"DzENMAsGA1UEAwwEZnV6ejAeFw0yNjEyMDIxMDExMzVaFw0zNjExMjkxMDExMzVa\n"
	"MA8xDTALBgNVBAMMBGZ1enowWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATpSnTW\n"
	"t3cXLTP4N6nAuNbvFK8FCXBUPYgkEla1NM8v/EkPQBjQgueLcVIXSI8aAnqTf7Mu\n"
	"S1WeXWFMUv2rlD0Bo1MwUTAdBgNVHQ4EFgQUuD1YFTdgl8fSz/0OTMR6COXx6EMw\n"
	"HwYDVR0jBBgwFoAUuD1YFTdgl8fSz/0OTMR6COXx6EMwDwYDVR0TAQH/BAUwAwEB\n"
	"/zAKBggqhkjOPQQDAgNIADBFAiEAtPwUrd8hRZnuTUT5m9drtYWJCD7XkvU41Mor\n"
	"PIr1FsYCIFh18j4LmPDJSA0hTNhH7aGe15lr0VyaZr85j/Owosmr\n"
	"-----END CERTIFICATE-----\n"
	;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct att_checkpoint_claim cl = { 0 };
	char err[300], *s;
	json_t *doc;

	if (size > 0 && data[0] == 'P') {
		s = malloc(size);
		if (!s)
			return 0;
		memcpy(s, data + 1, size - 1);
		s[size - 1] = '\0';
		if (att_checkpoint_parse_claim(s, &cl, err, sizeof(err)) == 0) {
			(void)att_checkpoint_matches(&cl, 3, cl.head_hash, err, sizeof(err));
			(void)att_checkpoint_matches(&cl, 0, NULL, err, sizeof(err));
		}
		free(s);
		return 0;
	}
	if (size > 0 && data[0] == 'T') {
		char when[64], *b64 = att_b64_encode(data + 1, size - 1);

		if (b64) {
			(void)att_tsa_check(b64, "payload", NULL, when, sizeof(when), err, sizeof(err));
			(void)att_tsa_check(b64, "payload", ca_pem, when, sizeof(when), err, sizeof(err));
			free(b64);
		}
		return 0;
	}
	doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (doc) {
		(void)att_checkpoint_verify_doc(doc, ca_pem, &cl, err, sizeof(err));
		json_decref(doc);
	}
	return 0;
}
