/* node.h - what the agent says about its node: the EK material and the
 * hardware identity, and the request bodies built from them
 * (docs/api.md: /register, /self-register, /attest, /ak-activate, the
 * offline TPM receipt of /machines/import). */
#ifndef ATT_AGENT_NODE_H
#define ATT_AGENT_NODE_H

#include <stddef.h>

#include "agent/hwid.h"
#include "agent/tpmdev.h"

struct att_agent_node {
	struct att_tpm_ek ek;
	struct att_hwid hw;
	char fp[97];		/* canonical fingerprint (SHA-384 of the SPKI) */
	char *ek_b64;		/* ek_cert_pem: base64 of the NV certificate, or of the SPKI */
	const char *ek_source;	/* "cert" | "pub" */
	char *chain_b64;	/* ek_chain_nv, or NULL */
	char *ek_public_b64;	/* the EK's TPM2B_PUBLIC */
};

/* Select the EK (tpmdev.h) and collect the hardware identity. */
int att_agent_node_read(struct att_tpmdev *d, enum att_ek_pref pref, const char *sysroot,
			struct att_agent_node *ret, char *reterr, size_t errlen);
void att_agent_node_release(struct att_agent_node *n);

/* JSON bodies (caller frees); NULL on allocation failure.  role, cluster
 * may be NULL. */
char *att_agent_body_register(const struct att_agent_node *n, const char *role, const char *cluster);
/* Add "agent_identity" (the JWT from POST /api/v1/agents/attest, read
 * from file: one token, surrounding whitespace ignored, at most 16384
 * characters) to a register body.  Takes body; NULL with err on failure. */
char *att_agent_body_add_identity(char *body, const char *file, char *err, size_t errlen);
/* quote NULL: the reference-compatible attest (EK only). */
char *att_agent_body_attest(const struct att_agent_node *n, const char *role, const char *nonce_id,
			    const struct att_tpm_quote_out *quote);
char *att_agent_body_activate(const struct att_agent_node *n, const struct att_tpm_ak *ak);
char *att_agent_body_complete(const char *activation_id, const uint8_t *secret, size_t len);
/* The offline TPM receipt (what POST /api/v1/machines/import takes). */
char *att_agent_body_receipt(const struct att_agent_node *n, const char *machine_id, const char *role,
			     const char *cluster, const char *installed_at);

#endif
