/* enroll.h - `attest-agent enroll` (enroll.c): a client certificate for
 * the TPM-resident key of tpmdev.h, proven by a quote and a TPM2_Certify
 * of the bound AK over a server nonce. */
#ifndef ATT_AGENT_ENROLL_H
#define ATT_AGENT_ENROLL_H

#include "agent/agent.h"

struct att_agent_cert {
	char serial[80];
	char *cert_pem;
	char *ca_pem;		/* the service's trust bundle */
};

void att_agent_cert_release(struct att_agent_cert *c);
/* a->st loaded (machine id, AK bound).  dump_file: write the request body
 * there instead of sending it (debugging; the nonce stays unused). */
enum att_poll att_agent_enroll(struct att_agent *a, const char *dump_file, struct att_agent_cert *ret);

#endif
