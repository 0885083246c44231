/* act.h - acting on the attest answer (act.c), and the helpers poll.c
 * and act.c share. */
#ifndef ATT_AGENT_ACT_H
#define ATT_AGENT_ACT_H

#include <stdbool.h>

#include "agent/agent.h"
#include "agent/answer.h"

/* apply-config, lock, unlock, wipe, revoked (see agent.h). */
enum att_poll att_agent_act(struct att_agent *a, const struct att_answer_attest *ans, bool quoted);

/* One HTTP exchange with the service: ATT_POLL_OK for a 2xx (r filled),
 * RETRY for unreachable/5xx/429, REFUSED for other statuses (r filled,
 * the service's detail logged).  The caller releases r. */
enum att_poll att_agent_call(struct att_agent *a, const char *method, const char *url, const char *const *headers,
			     const char *body, size_t max, struct att_http_resp *r, const char *what);
int att_agent_save(struct att_agent *a);
/* Open a TPM-bound envelope (tpm-credential-aes256gcm-v1) for this
 * machine with TPM2_ActivateCredential; refused (logged as what) when it
 * does not parse, is for another machine or does not open. */
enum att_poll att_agent_open_envelope(struct att_agent *a, const struct att_http_resp *r, const char *what, uint8_t **ret,
				      size_t *ret_len);
/* Open the TPM, select the EK, derive the AK and check them against the
 * state (once per process). */
enum att_poll att_agent_ensure_tpm(struct att_agent *a);
/* Log "<what> refused, nothing applied: <why>", note it; ATT_POLL_REFUSED. */
enum att_poll att_agent_refuse(struct att_agent *a, const char *what, const char *why);
void att_agent_note(struct att_agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
