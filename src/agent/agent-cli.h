/* agent-cli.h - the attest-agent executable: options (main.c) and the
 * commands (cmd.c).  The work happens in src/lib/agent/.
 *
 * Exit codes (docs/agent.md): 0 ok, 1 local failure (TPM, state, a
 * command), 2 usage, 3 service unreachable or unavailable, 4 refused (a
 * 4xx, or an answer the agent refused), 5 the machine is revoked. */
#ifndef ATT_AGENT_CLI_H
#define ATT_AGENT_CLI_H

#include <stdbool.h>

#include "agent/agent.h"

enum {
	AX_OK = 0,
	AX_FAILED = 1,
	AX_USAGE = 2,
	AX_UNAVAILABLE = 3,
	AX_REFUSED = 4,
	AX_REVOKED = 5,
};

struct agent_cli {
	struct att_agent_opts o;
	bool have_server;
	const char *token;		/* register: X-Registration-Token */
	const char *cluster;
	bool json;			/* --output json */
	const char *file;		/* receipt: where to write it */
	const char *machine_id;		/* receipt */
	const char *dump_request;	/* enroll: write the request instead of sending it */
	struct att_agent_loop loop;
};

int agent_exit_for(enum att_poll p);

/* cmd.c */
int cmd_register(struct agent_cli *c);
int cmd_receipt(struct agent_cli *c);
int cmd_run(struct agent_cli *c);
int cmd_status(struct agent_cli *c);
int cmd_enroll(struct agent_cli *c);

#endif
