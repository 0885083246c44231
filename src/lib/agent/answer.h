/* answer.h - the service's answers, as the node agent reads them.
 *
 * Every answer is untrusted: the body is parsed with jansson (duplicate
 * keys refused), then each field the agent uses is checked for type,
 * length and shape; anything unexpected is ATT_E_PARSE with the reason
 * in reterr (fields named as in docs/api.md), and nothing is half
 * filled.  Bodies are capped before they get here (http.h). */
#ifndef ATT_AGENT_ANSWER_H
#define ATT_AGENT_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/url.h"

#define ATT_ANSWER_MAX_BODY (64 * 1024)		/* every JSON answer but the envelope */
#define ATT_ANSWER_MAX_CONFIG (8 * 1024 * 1024)	/* a config or its envelope */

/* POST /api/v1/register and /self-register */
struct att_answer_register {
	char machine_id[65];
	char status[24];		/* pending_approval | registered | attested */
	char role[32];
	char iso_url[ATT_URL_MAX];	/* "" when the service sent none */
	char installer_image[512];
	char schematic_id[65];
	char ek_fingerprint[97];
	char message[512];
};

/* GET /api/v1/attest/challenge */
struct att_answer_challenge {
	char nonce_id[65];
	uint8_t nonce[64];
	size_t nonce_len;
};

/* POST /api/v1/machines/{id}/ak-activate */
struct att_answer_activation {
	char activation_id[65];
	char ak_name[2 * 66 + 1];	/* lowercase hex */
	uint8_t *blob;			/* credential_blob, decoded; caller frees */
	size_t blob_len;
};

/* POST /api/v1/attest */
struct att_answer_attest {
	char machine_id[65];
	char status[24];	/* pending_approval | attested | already_attested | locked | revoked */
	char action[16];	/* none | apply-config | lock | wipe */
	char config_url[ATT_URL_MAX];	/* "" unless action is apply-config */
	char hostname[254];
	char role[32];
	char message[512];
	bool quote_verified;
};

/* GET <config_url> with Accept: application/vnd.itl.config.encrypted+json */
struct att_answer_envelope {
	char format[40];	/* "tpm-credential-aes256gcm-v1" or "ek-aes256gcm-v1" */
	char machine_id[65];
	uint8_t *blob;		/* credential_blob (TPM-bound envelope only) */
	size_t blob_len;
	uint8_t iv[12];
	uint8_t *ct;		/* ciphertext || 16-byte tag */
	size_t ct_len;
};

int att_answer_register_parse(const char *body, size_t len, struct att_answer_register *ret, char *reterr,
			      size_t errlen);
int att_answer_challenge_parse(const char *body, size_t len, struct att_answer_challenge *ret, char *reterr,
			       size_t errlen);
int att_answer_activation_parse(const char *body, size_t len, struct att_answer_activation *ret, char *reterr,
				size_t errlen);
void att_answer_activation_release(struct att_answer_activation *a);
/* POST .../ak-activate/complete: ak_accepted must be true and
 * machine_id/ak_name must be the ones the agent expects. */
int att_answer_activation_done_parse(const char *body, size_t len, const char *machine_id, const char *ak_name,
				     char *reterr, size_t errlen);
int att_answer_attest_parse(const char *body, size_t len, struct att_answer_attest *ret, char *reterr,
			    size_t errlen);
int att_answer_envelope_parse(const char *body, size_t len, struct att_answer_envelope *ret, char *reterr,
			      size_t errlen);
void att_answer_envelope_release(struct att_answer_envelope *e);

/* The service's {"detail": "..."} for an error status, made safe to log
 * (printable ASCII, at most outlen-1 bytes); "" when there is none. */
void att_answer_detail(const char *body, size_t len, char *out, size_t outlen);

/* A tpm2-tools credential blob (BE32 0xBADCC0DE | BE32 1 | TPM2B_ID_OBJECT
 * | TPM2B_ENCRYPTED_SECRET), split into its two TPM2B structures (each
 * with its 2-byte size); exact length, nothing trailing. */
struct att_cred_blob {
	const uint8_t *id_object;
	size_t id_object_len;
	const uint8_t *secret;
	size_t secret_len;
};
int att_answer_cred_blob_split(const uint8_t *p, size_t len, struct att_cred_blob *ret, char *reterr,
			       size_t errlen);

/* Copy s for a log line: printable ASCII, others replaced by '?'. */
void att_answer_sanitize(const char *s, char *out, size_t outlen);

#endif
