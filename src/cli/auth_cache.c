/* auth_cache.c - the token cache of `attestation auth`: where a login is
 * kept, how it is read, written and locked, and the cache document built
 * from a token response.
 *
 * One JSON file per (issuer, client id) named by the hex SHA-256 of
 * "issuer\nclient_id" in ~/.itl/attestation-cache (directory 0700, files
 * 0600, written to a temporary file, fsync'd and renamed; files readable by
 * group/other or owned by someone else are refused).  A sibling .lock file
 * (flock) serialises refreshes between concurrent invocations. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "auth.h"
#include "base/util.h"
#include "oidc/jwt.h"

char *cli_cache_path(const struct cli *c, const char *ext)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char hex[65], *key = att_asprintf("%s\n%s", c->issuer, c->client_id);

	if (!key)
		return NULL;
	EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL);
	free(key);
	att_hex_encode(md, 32, hex);
	return att_asprintf("%s/%s%s", c->cache_dir, hex, ext);
}

static int mkdir_private(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		errno = EPERM;
		return -1;
	}
	if ((st.st_mode & 077) && chmod(path, 0700) < 0)
		return -1;
	return 0;
}

int cli_cache_dir_ready(const struct cli *c)
{
	char *parent = strdup(c->cache_dir), *slash;
	int r = 0;

	if (!parent)
		return -1;
	slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = 0;
		/* ~/.itl: create if missing, but only tighten it when we made it */
		if (mkdir(parent, 0700) < 0 && errno != EEXIST)
			r = -1;
	}
	free(parent);
	if (r == 0)
		r = mkdir_private(c->cache_dir);
	if (r < 0)
		fprintf(stderr, "Error: cannot use token cache directory %s: %s\n", c->cache_dir, strerror(errno));
	return r;
}

json_t *cli_cache_read(const char *path, bool quiet)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	json_t *j = NULL;
	FILE *f;

	if (fd < 0) {
		if (errno != ENOENT && !quiet)
			fprintf(stderr, "Warning: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		if (!quiet)
			fprintf(stderr, "Warning: ignoring %s: not a private file owned by you (must be mode 0600)\n", path);
		close(fd);
		return NULL;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return NULL;
	}
	j = json_loadf(f, 0, NULL);
	fclose(f);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static int cache_write(const struct cli *c, const json_t *doc)
{
	char *path = cli_cache_path(c, ".json"), *tmp = NULL, *s = NULL;
	int fd = -1, r = -1;
	size_t len;

	if (!path || cli_cache_dir_ready(c) < 0)
		goto out;
	tmp = att_asprintf("%s.tmp.%d", path, (int)getpid());
	s = json_dumps(doc, JSON_INDENT(2));
	if (!tmp || !s)
		goto out;
	len = strlen(s);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	if (write_all(fd, s, len) < 0)
		goto out;
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto out;
	{
		int dfd = open(c->cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	r = 0;
out:
	if (r < 0)
		fprintf(stderr, "Error: cannot write the token cache %s: %s\n", path ? path : "", strerror(errno));
	if (fd >= 0)
		close(fd);
	if (r < 0 && tmp)
		unlink(tmp);
	if (s) {
		att_wipe(s, strlen(s));
		free(s);
	}
	free(tmp);
	free(path);
	return r;
}

int cli_cache_lock(const struct cli *c)
{
	char *path;
	int fd;

	if (cli_cache_dir_ready(c) < 0)
		return -1;
	path = cli_cache_path(c, ".lock");
	fd = path ? open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
	free(path);
	if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

void cli_cache_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

void cli_cache_foreach(struct cli *c, void (*fn)(struct cli *c, const char *name, const char *path, bool login, void *arg),
		       void *arg)
{
	DIR *dir = opendir(c->cache_dir);
	struct dirent *e;

	while (dir && (e = readdir(dir))) {
		size_t l = strlen(e->d_name);
		bool login = l > 5 && strcmp(e->d_name + l - 5, ".json") == 0;
		char *p;

		if (!login && !strstr(e->d_name, ".json.tmp.") && !(l > 5 && strcmp(e->d_name + l - 5, ".lock") == 0))
			continue;
		p = att_asprintf("%s/%s", c->cache_dir, e->d_name);
		if (p)
			fn(c, e->d_name, p, login, arg);
		free(p);
	}
	if (dir)
		closedir(dir);
}

static const char *claim_user(const json_t *claims)
{
	const char *u = jstr(claims, "preferred_username");

	return u ? u : jstr(claims, "sub");
}

int cli_cache_store_tokens(struct cli *c, const struct cli_disco *d, const json_t *resp, const json_t *prev,
			   const char *method, const char *user_hint)
{
	const char *at = jstr(resp, "access_token"), *rt = jstr(resp, "refresh_token");
	const char *idt = jstr(resp, "id_token"), *tt = jstr(resp, "token_type");
	json_t *claims, *doc;
	int64_t now = (int64_t)time(NULL), exp;
	int r;

	if (!at) {
		fprintf(stderr, "Error: the provider's token response has no access_token\n");
		return EX_AUTH;
	}
	if (tt && strcasecmp(tt, "Bearer") != 0) {
		fprintf(stderr, "Error: unsupported token_type %s (only Bearer)\n", tt);
		return EX_AUTH;
	}
	claims = att_jwt_peek(at);
	if (json_is_integer(json_object_get(resp, "expires_in")))
		exp = now + json_integer_value(json_object_get(resp, "expires_in"));
	else if (json_is_number(json_object_get(claims, "exp")))
		exp = (int64_t)json_number_value(json_object_get(claims, "exp"));
	else
		exp = now + 300;
	if (!rt && prev)
		rt = jstr(prev, "refresh_token");	/* non-rolling refresh: keep the old one */
	if (!idt && prev)
		idt = jstr(prev, "id_token");
	doc = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?}", "issuer", c->issuer, "client_id",
			c->client_id, "access_token", at, "expires_at", (json_int_t)exp, "saved_at", (json_int_t)now,
			"refresh_token", rt, "id_token", idt, "token_endpoint", d->token, "revocation_endpoint",
			d->revoke, "scope", jstr(resp, "scope") ? jstr(resp, "scope") : c->scope, "method", method);
	if (!doc) {
		json_decref(claims);
		return EX_ERR;
	}
	{
		json_t *idc = idt ? att_jwt_peek(idt) : NULL;
		const char *u = claim_user(claims);

		if (!u && idc)
			u = claim_user(idc);
		if (!u && prev)
			u = jstr(prev, "username");
		if (!u)
			u = user_hint;
		if (u)
			json_object_set_new(doc, "username", json_string(u));
		if (json_is_integer(json_object_get(resp, "refresh_expires_in")) &&
		    json_integer_value(json_object_get(resp, "refresh_expires_in")) > 0)
			json_object_set_new(doc, "refresh_expires_at",
					    json_integer(now + json_integer_value(json_object_get(resp, "refresh_expires_in"))));
		json_decref(idc);
	}
	json_decref(claims);
	r = cache_write(c, doc);
	json_decref(doc);
	return r < 0 ? EX_ERR : 0;
}
