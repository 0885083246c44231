/* exec.c - the built-in "exec" module (docs/exec-hooks.md): configured
 * commands run for lifecycle events, out of attestd's process.  Each
 * hook is a target of one target hook ("exec/all:<name>" in the deliveries), so each has its
 * own retries and dead letter.  The command is an argv list run with
 * posix_spawn — never a shell — with the event JSON on stdin and a small,
 * fixed environment; event fields never become part of a command line.
 * Like the webhooks module it uses only include/attest/extension.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "attest/extension.h"

#define MAX_HOOKS 32
#define MAX_ARGS 32
#define EXIT_PERMANENT 100	/* the command gives the event up */

static const struct att_ext_host *host;

struct exec_hook {
	char name[65];
	char *argv[MAX_ARGS + 1];
	json_t *events;		/* array of names or "*" */
	json_t *env;		/* extra environment {"NAME": "value"} */
	int timeout;
};

static struct exec_hook hooks[MAX_HOOKS];
static size_t nhooks;

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int parse_hook(const json_t *o, struct exec_hook *h, char *err, size_t errlen)
{
	const json_t *cmd = json_object_get(o, "command"), *ev = json_object_get(o, "events"),
		     *to = json_object_get(o, "timeout_seconds"), *v;
	const char *name = json_string_value(json_object_get(o, "name"));
	size_t i;

	if (!json_is_object(o) || !name || !name_ok(name)) {
		snprintf(err, errlen, "ITL_EXEC_HOOKS: each hook needs a \"name\" of [A-Za-z0-9._-]{1,64}");
		return -1;
	}
	snprintf(h->name, sizeof(h->name), "%s", name);
	if (!json_is_array(cmd) || json_array_size(cmd) == 0 || json_array_size(cmd) > MAX_ARGS) {
		snprintf(err, errlen, "ITL_EXEC_HOOKS %s: \"command\" must be a list of 1 to %d strings (argv, no shell)", name, MAX_ARGS);
		return -1;
	}
	json_array_foreach(cmd, i, v) {
		if (!json_is_string(v) || (i == 0 && json_string_value(v)[0] != '/')) {
			snprintf(err, errlen, "ITL_EXEC_HOOKS %s: \"command\" must be strings, the first an absolute path", name);
			return -1;
		}
		h->argv[i] = strdup(json_string_value(v));
	}
	if (ev && (!json_is_array(ev) || json_array_size(ev) == 0)) {
		snprintf(err, errlen, "ITL_EXEC_HOOKS %s: \"events\" must be a non-empty list", name);
		return -1;
	}
	h->events = ev ? json_incref((json_t *)ev) : json_pack("[s]", "*");
	{
		const json_t *env = json_object_get(o, "env");
		const char *k;
		json_t *x;

		if (env && (!json_is_object(env) || json_object_size(env) > 16)) {
			snprintf(err, errlen, "ITL_EXEC_HOOKS %s: \"env\" must be an object of at most 16 strings", name);
			return -1;
		}
		json_object_foreach((json_t *)env, k, x)
			if (!json_is_string(x) || strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(k) || !*k ||
			    strncmp(k, "ITL_", 4) == 0 || strcmp(k, "PATH") == 0 || strncmp(k, "LD_", 3) == 0) {
				snprintf(err, errlen, "ITL_EXEC_HOOKS %s: env %.64s: names [A-Z0-9_] (not ITL_*, PATH, LD_*), string values", name, k);
				return -1;
			}
		h->env = env ? json_incref((json_t *)env) : json_object();
	}
	h->timeout = to ? (int)json_integer_value(to) : 30;
	if ((to && !json_is_integer(to)) || h->timeout < 1 || h->timeout > 3600) {
		snprintf(err, errlen, "ITL_EXEC_HOOKS %s: \"timeout_seconds\" must be 1-3600", name);
		return -1;
	}
	if (access(h->argv[0], X_OK) != 0) {
		snprintf(err, errlen, "ITL_EXEC_HOOKS %s: %s is not an executable file", name, h->argv[0]);
		return -1;
	}
	return 0;
}

static struct exec_hook *find(const char *name)
{
	for (size_t i = 0; i < nhooks; i++)
		if (strcmp(hooks[i].name, name) == 0)
			return &hooks[i];
	return NULL;
}

static int targets(struct att_ext *ext, const struct att_ext_event *ev, struct att_ext_targets *out, void *ud)
{
	(void)ext;
	(void)ud;
	for (size_t i = 0; i < nhooks; i++) {
		size_t j;
		json_t *e;

		json_array_foreach(hooks[i].events, j, e)
			if (json_is_string(e) && (strcmp(json_string_value(e), "*") == 0 ||
						  strcmp(json_string_value(e), host->event_name(ev)) == 0)) {
				if (host->add_target(out, hooks[i].name) != ATT_EXT_OK)
					return ATT_EXT_ERROR;
				break;
			}
	}
	return ATT_EXT_OK;
}

/* NAME=value with value reduced to printable ASCII (no newlines). */
static char *env_var(const char *name, const char *value)
{
	size_t n = strlen(name), m = value ? strlen(value) : 0;
	char *s = malloc(n + m + 2);

	if (!s)
		return NULL;
	memcpy(s, name, n);
	s[n] = '=';
	for (size_t i = 0; i < m; i++)
		s[n + 1 + i] = value[i] >= 0x20 && value[i] < 0x7f ? value[i] : '_';
	s[n + 1 + m] = 0;
	return s;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)((t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000);
}

/* Feed stdin, collect the output's tail, wait up to the timeout. */
static int supervise(pid_t pid, int in, int out, const char *body, size_t len, int timeout, char *tail, size_t taillen,
		     int *ret_status)
{
	struct timespec t0;
	size_t off = 0, tl = 0;
	bool out_open = true;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (in >= 0 || out_open) {
		struct pollfd p[2] = { { in, POLLOUT, 0 }, { out_open ? out : -1, POLLIN, 0 } };
		long left = timeout * 1000L - ms_since(&t0);

		if (left <= 0)
			break;
		if (poll(p, 2, (int)left) < 0 && errno != EINTR)
			break;
		if (in >= 0 && p[0].revents) {
			ssize_t w = (p[0].revents & POLLOUT) ? write(in, body + off, len - off) : -1;

			if (w > 0)
				off += (size_t)w;
			if (w < 0 || off == len) {
				close(in);
				in = -1;
			}
		}
		if (out_open && p[1].revents) {
			char buf[512];
			ssize_t r = read(out, buf, sizeof(buf));

			if (r <= 0) {
				out_open = false;
				continue;
			}
			for (ssize_t i = 0; i < r; i++) {	/* keep the last taillen-1 bytes */
				if (tl == taillen - 1) {
					memmove(tail, tail + 1, tl - 1);
					tl--;
				}
				tail[tl++] = buf[i] == '\n' ? ' ' : buf[i];
			}
			tail[tl] = 0;
		}
	}
	if (in >= 0)
		close(in);
	for (;;) {
		pid_t w = waitpid(pid, ret_status, WNOHANG);

		if (w == pid)
			return 0;
		if (ms_since(&t0) >= timeout * 1000L) {
			kill(-pid, SIGKILL);	/* its whole process group */
			waitpid(pid, ret_status, 0);
			return -1;
		}
		usleep(10000);
	}
}

static int run(struct att_ext *ext, const struct att_ext_event *ev, void *ud)
{
	struct exec_hook *h = find(host->event_target(ev));
	const char *name = host->event_name(ev);
	char *envp[32] = { 0 }, idbuf[24], attempt[12], tail[256] = "";
	int inp[2] = { -1, -1 }, outp[2] = { -1, -1 }, status = 0, r;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	size_t len, ne = 0;
	const char *body = host->event_json(ev, &len);
	pid_t pid;

	(void)ext;
	(void)ud;
	if (!h) {
		host->event_error(ev, "exec hook %s is no longer configured", host->event_target(ev));
		return ATT_EXT_PERMANENT;
	}
	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)host->event_id(ev));
	snprintf(attempt, sizeof(attempt), "%d", host->event_attempt(ev));
	envp[ne++] = env_var("PATH", "/usr/local/bin:/usr/bin:/bin");
	envp[ne++] = env_var("ITL_EVENT", name);
	envp[ne++] = env_var("ITL_EVENT_ID", idbuf);
	envp[ne++] = env_var("ITL_MACHINE_ID", host->event_field(ev, "machine_id"));
	envp[ne++] = env_var("ITL_EK_FINGERPRINT", host->event_field(ev, "ek_fingerprint"));
	envp[ne++] = env_var("ITL_HOSTNAME", host->event_field(ev, "hostname"));
	envp[ne++] = env_var("ITL_ROLE", host->event_field(ev, "role"));
	envp[ne++] = env_var("ITL_DELIVERY_ATTEMPT", attempt);
	envp[ne++] = env_var("ITL_SERVICE_URL", host->service_url(ext));
	{
		const char *k;
		json_t *x;

		json_object_foreach(h->env, k, x)
			if (ne < 31)
				envp[ne++] = env_var(k, json_string_value(x));
	}
	if (pipe2(inp, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
		r = ATT_EXT_ERROR;
		host->event_error(ev, "cannot create pipes: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, inp[0], 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 2);
	posix_spawnattr_init(&at);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	r = posix_spawn(&pid, h->argv[0], &fa, &at, h->argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(inp[0]);
	close(outp[1]);
	if (r != 0) {
		close(inp[1]);
		close(outp[0]);
		host->event_error(ev, "cannot run %s: %s", h->argv[0], strerror(r));
		r = ATT_EXT_ERROR;
		goto out;
	}
	fcntl(inp[1], F_SETFL, O_NONBLOCK);
	if (supervise(pid, inp[1], outp[0], body, len, h->timeout, tail, sizeof(tail), &status) < 0) {
		host->event_error(ev, "%s timed out after %d s (killed)%s%s", h->name, h->timeout, tail[0] ? ": " : "", tail);
		r = ATT_EXT_ERROR;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		r = ATT_EXT_OK;
	} else {
		if (WIFEXITED(status))
			host->event_error(ev, "%s exited with %d%s%s", h->name, WEXITSTATUS(status), tail[0] ? ": " : "", tail);
		else
			host->event_error(ev, "%s killed by signal %d", h->name, WTERMSIG(status));
		r = WIFEXITED(status) && WEXITSTATUS(status) == EXIT_PERMANENT ? ATT_EXT_PERMANENT : ATT_EXT_ERROR;
	}
	close(outp[0]);
out:
	for (size_t i = 0; i < ne; i++)
		free(envp[i]);
	return r;
}

static void release(void)
{
	for (size_t i = 0; i < nhooks; i++) {
		for (size_t j = 0; hooks[i].argv[j]; j++)
			free(hooks[i].argv[j]);
		json_decref(hooks[i].events);
		json_decref(hooks[i].env);
	}
	memset(hooks, 0, sizeof(hooks));
	nhooks = 0;
}

static int exec_init(struct att_ext *ext, const struct att_ext_host *h, char *err, size_t errlen)
{
	const char *cfg = getenv("ITL_EXEC_HOOKS");
	json_error_t jerr;
	json_t *a, *o;
	size_t i;

	host = h;
	release();
	if (!cfg || !*cfg)
		return ATT_EXT_OK;	/* nothing configured: no hook, nothing to do */
	a = json_loads(cfg, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_array(a) || json_array_size(a) > MAX_HOOKS) {
		json_decref(a);
		snprintf(err, errlen, "ITL_EXEC_HOOKS: expected a JSON list of at most %d hooks", MAX_HOOKS);
		return ATT_EXT_ERROR;
	}
	json_array_foreach(a, i, o) {
		if (parse_hook(o, &hooks[nhooks], err, errlen) < 0 || find(hooks[nhooks].name)) {
			if (!err[0] || find(hooks[nhooks].name))
				snprintf(err, errlen, "ITL_EXEC_HOOKS: hook %s is defined twice", hooks[nhooks].name);
			nhooks++;
			release();
			json_decref(a);
			return ATT_EXT_ERROR;
		}
		nhooks++;
	}
	json_decref(a);
	if (h->add_target_hook(ext, "*", targets, run, NULL) != ATT_EXT_OK) {
		snprintf(err, errlen, "hook refused");
		release();
		return ATT_EXT_ERROR;
	}
	return ATT_EXT_OK;
}

static void exec_stop(struct att_ext *ext)
{
	(void)ext;
	release();
}

const struct att_ext_info att_ext_exec = {
	.abi_version = ATT_EXT_ABI_VERSION,
	.name = "exec",
	.version = "1.0.0",
	.description = "runs configured commands (ITL_EXEC_HOOKS) with the event JSON on stdin",
	.prefixes = NULL,
	.init = exec_init,
	.stop = exec_stop,
};
