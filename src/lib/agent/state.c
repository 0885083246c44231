/* state.c - the node agent's state directory (see state.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/state.h"
#include "base/err.h"
#include "base/util.h"

#define FAIL(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))

void att_agent_state_init(struct att_agent_state *s)
{
	memset(s, 0, sizeof(*s));
	s->reset_count = -1;
	s->restart_count = -1;
	s->wipe_exit = -1;
}

int att_agent_state_dir(const char *dir, char *reterr, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return FAIL(ATT_E_IO, "cannot create the state directory %s: %s", dir, strerror(errno));
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return FAIL(ATT_E_IO, "state directory %s is not a directory", dir);
	return 0;
}

int att_agent_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int att_agent_file_write(const char *dir, const char *name, const void *data, size_t len, int mode, char *reterr,
			 size_t errlen)
{
	char tmp[4096], dst[4096];
	int fd, dfd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= sizeof(tmp) ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= sizeof(dst))
		return FAIL(ATT_E_INVAL, "state path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return FAIL(ATT_E_IO, "cannot write %s: %s", tmp, strerror(errno));
	if (fchmod(fd, (mode_t)mode) < 0 || att_agent_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		int e = errno;

		close(fd);
		unlink(tmp);
		return FAIL(ATT_E_IO, "cannot write %s: %s", tmp, strerror(e));
	}
	close(fd);
	if (rename(tmp, dst) < 0) {
		int e = errno;

		unlink(tmp);
		return FAIL(ATT_E_IO, "cannot rename %s to %s: %s", tmp, dst, strerror(e));
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

int att_agent_file_read(const char *dir, const char *name, size_t max, uint8_t **ret, size_t *ret_len,
			char *reterr, size_t errlen)
{
	char path[4096];
	uint8_t *b;
	size_t n = 0;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return FAIL(ATT_E_INVAL, "state path too long");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? ATT_E_NOTFOUND : FAIL(ATT_E_IO, "cannot read %s: %s", path, strerror(errno));
	b = malloc(max + 1);
	if (!b) {
		close(fd);
		return ATT_E_NOMEM;
	}
	for (;;) {
		ssize_t r = read(fd, b + n, max + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			free(b);
			close(fd);
			return FAIL(ATT_E_IO, "cannot read %s: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			free(b);
			close(fd);
			return FAIL(ATT_E_LIMIT, "%s is larger than %zu bytes", path, max);
		}
	}
	close(fd);
	b[n] = '\0';
	*ret = b;
	*ret_len = n;
	return 0;
}

/* ---- state.json ---------------------------------------------------------- */

#define S(f) { #f, offsetof(struct att_agent_state, f), sizeof(((struct att_agent_state *)0)->f) }

static const struct sfield {
	const char *name;
	size_t off, size;
} str_fields[] = {
	S(server), S(machine_id), S(status), S(role), S(hostname), S(ek_fingerprint), S(ek_kind), S(ak_name),
	S(last_attest_at), S(last_action), S(last_action_at), S(last_error), S(config_sha256),
	S(config_applied_at), S(pending_config_url), S(wipe_started_at),
};

int att_agent_state_parse(const char *json, size_t len, struct att_agent_state *ret, char *reterr, size_t errlen)
{
	struct att_agent_state s;
	json_error_t je;
	json_t *o, *v;
	int r = ATT_E_PARSE;

	att_agent_state_init(&s);
	if (len > ATT_AGENT_STATE_MAX)
		return FAIL(ATT_E_LIMIT, "state larger than %d bytes", ATT_AGENT_STATE_MAX);
	o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(o)) {
		json_decref(o);
		return FAIL(ATT_E_PARSE, "not a JSON object (%.80s)", o ? "" : je.text);
	}
	if (json_integer_value(json_object_get(o, "version")) != 1) {
		snprintf(reterr, errlen, "unknown state version");
		goto out;
	}
	for (size_t i = 0; i < ATT_ARRAY_SIZE(str_fields); i++) {
		v = json_object_get(o, str_fields[i].name);
		if (!v || json_is_null(v))
			continue;
		if (!json_is_string(v) || json_string_length(v) >= str_fields[i].size ||
		    memchr(json_string_value(v), '\0', json_string_length(v))) {
			snprintf(reterr, errlen, "%s: not a string of at most %zu characters", str_fields[i].name,
				 str_fields[i].size - 1);
			goto out;
		}
		memcpy((char *)&s + str_fields[i].off, json_string_value(v), json_string_length(v) + 1);
	}
	s.ak_bound = json_is_true(json_object_get(o, "ak_bound"));
	s.locked = json_is_true(json_object_get(o, "locked"));
	s.revoked = json_is_true(json_object_get(o, "revoked"));
	if ((v = json_object_get(o, "reset_count")) && json_is_integer(v))
		s.reset_count = json_integer_value(v);
	if ((v = json_object_get(o, "restart_count")) && json_is_integer(v))
		s.restart_count = json_integer_value(v);
	if ((v = json_object_get(o, "wipe_exit")) && json_is_integer(v))
		s.wipe_exit = (int)json_integer_value(v);
	if ((v = json_object_get(o, "polls")) && json_is_integer(v) && json_integer_value(v) >= 0)
		s.polls = (uint64_t)json_integer_value(v);
	*ret = s;
	r = 0;
out:
	json_decref(o);
	return r;
}

char *att_agent_state_render(const struct att_agent_state *s)
{
	json_t *o = json_object();
	char *out;

	json_object_set_new(o, "version", json_integer(1));
	for (size_t i = 0; i < ATT_ARRAY_SIZE(str_fields); i++) {
		const char *v = (const char *)s + str_fields[i].off;

		json_object_set_new(o, str_fields[i].name, v[0] ? json_string(v) : json_null());
	}
	json_object_set_new(o, "ak_bound", json_boolean(s->ak_bound));
	json_object_set_new(o, "locked", json_boolean(s->locked));
	json_object_set_new(o, "revoked", json_boolean(s->revoked));
	json_object_set_new(o, "reset_count", s->reset_count >= 0 ? json_integer(s->reset_count) : json_null());
	json_object_set_new(o, "restart_count", s->restart_count >= 0 ? json_integer(s->restart_count) : json_null());
	json_object_set_new(o, "wipe_exit", s->wipe_exit >= 0 ? json_integer(s->wipe_exit) : json_null());
	json_object_set_new(o, "polls", json_integer((json_int_t)s->polls));
	out = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return out;
}

int att_agent_state_load(const char *dir, struct att_agent_state *ret, char *reterr, size_t errlen)
{
	uint8_t *b = NULL;
	size_t n = 0;
	char why[256];
	int r = att_agent_file_read(dir, "state.json", ATT_AGENT_STATE_MAX, &b, &n, reterr, errlen);

	if (r == ATT_E_NOTFOUND) {
		att_agent_state_init(ret);
		return 0;
	}
	if (r < 0)
		return r;
	r = att_agent_state_parse((const char *)b, n, ret, why, sizeof(why));
	free(b);
	if (r < 0)
		return FAIL(r, "%s/state.json is damaged (%s); move it away to start over (the AK binding is lost with it)",
			    dir, why);
	return 0;
}

int att_agent_state_save(const char *dir, const struct att_agent_state *s, char *reterr, size_t errlen)
{
	char *j = att_agent_state_render(s);
	int r;

	if (!j)
		return FAIL(ATT_E_NOMEM, "cannot render the state");
	r = att_agent_file_write(dir, "state.json", j, strlen(j), 0600, reterr, errlen);
	att_wipe(j, strlen(j));
	free(j);
	return r;
}

int att_agent_state_lock(const char *dir, int *ret_fd, char *reterr, size_t errlen)
{
	char path[4096];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/state.lock", dir) >= sizeof(path))
		return FAIL(ATT_E_INVAL, "state path too long");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return FAIL(ATT_E_IO, "cannot open %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return FAIL(ATT_E_CONFLICT, "another attest-agent is running with the state directory %s", dir);
	}
	*ret_fd = fd;
	return 0;
}
