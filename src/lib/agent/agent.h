/* agent.h - the node agent's conversation with the service: one poll of
 * the on-node loop (itl-tpm-register), and the loop around it.
 *
 * A poll (docs/agent.md "What a poll does"):
 *   1. first contact: POST /api/v1/self-register (a known EK returns its
 *      machine; a locked or revoked one is a 409 and step 4 tells);
 *   2. until the service holds the AK: derive the restricted signing AK
 *      (tpmdev.h: the same one every time in this TPM), POST
 *      .../ak-activate, TPM2_ActivateCredential, POST .../complete;
 *   3. with an AK bound: GET /api/v1/attest/challenge, quote the PCRs
 *      over the nonce;
 *   4. POST /api/v1/attest, and act on the answer: apply-config (fetch
 *      the named URL — same origin as the service only — asking for the
 *      TPM-bound envelope, open it with TPM2_ActivateCredential +
 *      AES-256-GCM, pipe it to the apply command), lock (apply nothing),
 *      wipe (run the reset command, once), revoked (stop).
 * Every answer is checked before anything is done (answer.h); an answer
 * for another machine id, a config from another URL, an envelope that
 * does not open, or a plaintext config for a machine with a bound AK
 * (unless allowed) is refused, logged, and changes nothing. */
#ifndef ATT_AGENT_AGENT_H
#define ATT_AGENT_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/http.h"
#include "agent/node.h"
#include "agent/pcrsel.h"
#include "agent/state.h"
#include "agent/tpmdev.h"
#include "agent/url.h"

struct att_agent_opts {
	char server[ATT_URL_MAX];	/* the service's base URL */
	const char *state_dir;
	const char *tcti;		/* NULL: /dev/tpmrm0, then /dev/tpm0 */
	enum att_ek_pref ek_pref;
	const char *ak_alg;		/* "ecc" | "rsa" */
	struct att_pcrsel pcrs;
	const char *role;		/* desired_role, may be NULL */
	const char *sysroot;		/* "" */
	char **apply_argv;
	char **reset_argv;
	bool allow_plaintext;
	int cmd_timeout;		/* seconds */
	const char *secrets_dir;	/* NULL: secrets are not fetched (secrets.h) */
	double secrets_interval;	/* seconds between fetches after the first */
	const char *agent_identity_file;	/* register/self-register: present this agent identity (NULL: none) */
	struct att_http_client http;
};

struct att_agent {
	const struct att_agent_opts *o;
	struct att_agent_state st;
	struct att_tpmdev *dev;		/* kept open between polls of one process */
	struct att_agent_node node;
	bool have_node;			/* TPM open, EK selected, AK derived */
	struct att_tpm_ak ak;
	char ak_name[2 * ATT_TPM_MAX_NAME + 1];
	long retry_after;		/* of the last answer, -1 none */
	double secrets_next;		/* monotonic time of the next secrets fetch (0: at once) */
};

enum att_poll {
	ATT_POLL_OK = 0,	/* the service answered and the agent acted on it */
	ATT_POLL_RETRY = 1,	/* unreachable, 5xx or 429: back off */
	ATT_POLL_REFUSED = 2,	/* a 4xx, or an answer the agent refused (logged) */
	ATT_POLL_STOP = 3,	/* the machine is revoked: stop contacting the service */
	ATT_POLL_FAILED = 4,	/* a local failure: TPM, state directory, command */
};

/* a->o set, a->st loaded by the caller. */
enum att_poll att_agent_poll(struct att_agent *a);
void att_agent_release(struct att_agent *a);

struct att_agent_loop {
	double interval;	/* seconds between successful polls (jittered) */
	double retry_min, retry_max;
	uint64_t max_polls;	/* 0: unlimited */
	bool once;
	volatile sig_atomic_t *stop;	/* set by a signal handler */
};

/* The loop of `attest-agent run`.  Returns the last poll's result (with
 * --once) or ATT_POLL_OK when stopped by a signal or max_polls. */
enum att_poll att_agent_run(struct att_agent *a, const struct att_agent_loop *l);

#endif
