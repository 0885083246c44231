/* exec.h - the commands the agent runs on the node: the apply command
 * (the config on its standard input) and the reset command.  No shell:
 * argv is executed directly (PATH lookup), standard output and error go
 * to the agent's standard error (its log), and a command that outlives
 * its time limit is killed. */
#ifndef ATT_AGENT_EXEC_H
#define ATT_AGENT_EXEC_H

#include <stddef.h>

/* Run argv with input (may be NULL: /dev/null) on stdin.  0 with the
 * exit status in *ret_status (128+signal when killed), or ATT_E_IO when
 * it could not be started. */
int att_agent_exec(char *const *argv, const void *input, size_t len, int timeout_s, int *ret_status,
		   char *reterr, size_t errlen);

#endif
