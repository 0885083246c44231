/* run.c - running one command of a server-side deployment: its own
 * process group (so cancel and timeouts kill everything it started),
 * stdout and stderr captured together into a capped log, a deadline,
 * and a cancel check between reads. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deploy.h"

void pl_log_add(struct pl_log *l, const char *p, size_t n)
{
	size_t room = l->cap > l->len ? l->cap - l->len : 0;
	char *grown;

	if (n > room) {
		n = room;
		l->truncated = true;
	}
	if (!n)
		return;
	grown = realloc(l->p, l->len + n + 1);
	if (!grown) {
		l->truncated = true;
		return;
	}
	l->p = grown;
	memcpy(l->p + l->len, p, n);
	l->len += n;
	l->p[l->len] = 0;
}

void pl_log_printf(struct pl_log *l, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		pl_log_add(l, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kill_group(pid_t pid)
{
	int st;

	kill(-pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			kill(-pid, SIGKILL);	/* what it left behind */
			return;
		}
		usleep(100 * 1000);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, &st, 0);
}

/* In the child: become creds' user; async-signal-safe calls only. */
static void drop_to(const struct pl_creds *c)
{
	static const char msg[] = "sandbox: cannot switch to ITL_PULUMI_DEPLOY_USER\n";

	if (setgroups(1, &c->gid) < 0 || setgid(c->gid) < 0 || setuid(c->uid) < 0 || setuid(0) == 0) {
		if (write(1, msg, sizeof(msg) - 1) < 0)
			_exit(126);
		_exit(126);
	}
}

int pl_run(const char *const argv[], char *const envp[], const char *cwd, const struct pl_creds *creds,
	   struct pl_log *log, int64_t timeout_s, bool (*cancelled)(void *), void *arg, int *ret_exit)
{
	int fds[2], st = 0, rc = PL_RUN_EXITED;
	int64_t deadline = mono_ms() + timeout_s * 1000, next_check = 0;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return PL_RUN_ERROR;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return PL_RUN_ERROR;
	}
	if (pid == 0) {
		/* async-signal-safe only: this process has one thread */
		setpgid(0, 0);
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		if (creds && creds->keep_fd > 0 &&
		    (creds->keep_fd == 3 ? fcntl(3, F_SETFD, 0) : dup2(creds->keep_fd, 3)) < 0)
			_exit(127);
		for (int fd = creds && creds->keep_fd > 0 ? 4 : 3; fd < 4096; fd++)
			close(fd);	/* attestd's sockets and database stay here */
		if (cwd && chdir(cwd) < 0)
			_exit(127);
		if (creds && creds->drop)
			drop_to(creds);
		if (execve(argv[0], (char *const *)(uintptr_t)argv, envp) < 0)
			_exit(127);
	}
	setpgid(pid, pid);
	close(fds[1]);
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		char buf[8192];
		int64_t now = mono_ms();
		ssize_t n;

		if (now >= deadline) {
			rc = PL_RUN_TIMEOUT;
			break;
		}
		if (now >= next_check) {
			if (cancelled && cancelled(arg)) {
				rc = PL_RUN_CANCELLED;
				break;
			}
			next_check = now + 1000;
		}
		if (poll(&p, 1, 200) < 0 && errno != EINTR) {
			rc = PL_RUN_ERROR;
			break;
		}
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		n = read(fds[0], buf, sizeof(buf));
		if (n > 0) {
			pl_log_add(log, buf, (size_t)n);
		} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			break;	/* every writer closed: the child (and its group) is done writing */
		}
	}
	close(fds[0]);
	if (rc != PL_RUN_EXITED) {
		kill_group(pid);
		return rc;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	kill(-pid, SIGKILL);	/* nothing of it outlives it */
	*ret_exit = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return PL_RUN_EXITED;
}

/* The absolute path of prog: as given when it has a '/', else from PATH. */
int pl_which(const char *prog, char *out, size_t outlen)
{
	const char *path = getenv("PATH"), *p;

	if (strchr(prog, '/')) {
		snprintf(out, outlen, "%s", prog);
		return access(out, X_OK) == 0 ? 0 : -1;
	}
	for (p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");

		snprintf(out, outlen, "%.*s/%s", (int)n, p, prog);
		if (n && access(out, X_OK) == 0)
			return 0;
		p += n + (p[n] == ':');
	}
	return -1;
}
