/* secrets.h - the node's secrets from the attestation secret vault
 * (docs/secrets.md, docs/agent.md): a fresh quote, POST
 * /api/v1/secrets/machines/{id}/delivery, the TPM-bound answer opened by
 * TPM2_ActivateCredential, each secret written to a file of its own. */
#ifndef ATT_AGENT_SECRETS_H
#define ATT_AGENT_SECRETS_H

#include <stddef.h>
#include <stdint.h>

#include "agent/agent.h"

#define ATT_AGENT_MAX_SECRETS 1024

struct att_agent_secret {
	char name[65];		/* [A-Za-z0-9][A-Za-z0-9._-]{0,63}: a safe file name */
	uint8_t *value;
	size_t len;
};

struct att_agent_secrets {
	struct att_agent_secret *v;
	size_t n;
};

/* The opened delivery {"machine_id", "secrets": [{"name", "version",
 * "value_b64", "expires_at"}]} (untrusted: names are checked to be safe
 * file names, machine_id must be this machine's).  Values are wiped by
 * the release. */
int att_agent_secrets_parse(const char *json, size_t len, const char *machine_id, struct att_agent_secrets *ret,
			    char *reterr, size_t errlen);
void att_agent_secrets_release(struct att_agent_secrets *s);

/* Fetch the secrets (machine attested, AK bound) and write them into
 * a->o->secrets_dir: one file per secret (0600, written atomically),
 * files of secrets no longer delivered removed. */
enum att_poll att_agent_fetch_secrets(struct att_agent *a);

#endif
