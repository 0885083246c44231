/* exec.c - running the apply and reset commands (see exec.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/exec.h"
#include "agent/state.h"
#include "base/err.h"
#include "base/util.h"

extern char **environ;

int att_agent_exec(char *const *argv, const void *input, size_t len, int timeout_s, int *ret_status,
		   char *reterr, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	int pfd[2] = { -1, -1 }, st = 0, e;
	struct timespec t0, now;
	pid_t pid;

	if (input) {
		if (pipe2(pfd, O_CLOEXEC) < 0) {
			snprintf(reterr, errlen, "pipe: %s", strerror(errno));
			return ATT_E_IO;
		}
	}
	posix_spawn_file_actions_init(&fa);
	if (input)
		posix_spawn_file_actions_adddup2(&fa, pfd[0], 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (input)
		close(pfd[0]);
	if (e != 0) {
		if (input)
			close(pfd[1]);
		snprintf(reterr, errlen, "cannot run %s: %s", argv[0], strerror(e));
		return ATT_E_IO;
	}
	if (input) {
		struct sigaction ign = { .sa_handler = SIG_IGN }, old;

		sigaction(SIGPIPE, &ign, &old);
		/* EPIPE: the command stopped reading; its exit status tells */
		(void)att_agent_write_all(pfd[1], input, len);
		close(pfd[1]);
		sigaction(SIGPIPE, &old, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			snprintf(reterr, errlen, "waitpid: %s", strerror(errno));
			return ATT_E_IO;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= timeout_s) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			break;
		}
		nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
	}
	*ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return 0;
}
