/* backup.c - attestd backup DIR, attestd restore DIR.
 *
 * A backup is a directory that holds everything an installation needs:
 *   machines.db      the whole database as SQLite, copied online by dbcopy.c
 *                    (one snapshot transaction of the source, either backend;
 *                    the copied audit chain verified before commit)
 *   ca/              the Enrollment CA's key and certificate
 *   configs/         the role base configs (ITL_CONFIG_CACHE_DIR)
 *   manifest.json    format, versions, the audit root, and every file's size
 *                    and SHA-256; written last
 * It is assembled in DIR.partial and renamed to DIR when complete, so a
 * DIR that exists is a whole backup.
 *
 * restore checks the manifest and every file's digest, refuses to replace
 * a different Enrollment CA or config, then copies the database into the
 * empty ITL_DB_URL and checks the restored audit root against the
 * manifest.  Nothing is written before the checks pass; the CA files it
 * installed are removed again if the database copy fails. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "backup.h"
#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "dbcopy.h"

#define FORMAT "itl-attestation-backup"
#define FORMAT_VERSION 1
#define MANIFEST_MAX (1024 * 1024)
#define MAX_CONFIGS 256

static const char *const ca_files[] = { "enrollment-ca.key", "enrollment-ca.crt" };

int att_backup_copy_file(const char *src, const char *dst, mode_t mode, char hex[65], int64_t *ret_size, char *err,
			 size_t errlen)
{
	struct att_sha256_stream *h = att_sha256_begin();
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	char buf[65536];
	uint8_t md[32];
	int64_t size = 0;
	ssize_t n;

	if (!h || in < 0) {
		snprintf(err, errlen, "cannot read %s: %s", src, h ? strerror(errno) : "out of memory");
		goto out;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (out < 0) {
		snprintf(err, errlen, "cannot create %s: %s", dst, strerror(errno));
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		att_sha256_update(h, buf, (size_t)n);
		size += n;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0) {
				snprintf(err, errlen, "cannot write %s: %s", dst, strerror(errno));
				goto out;
			}
			off += w;
		}
	}
	if (n < 0 || fsync(out) < 0) {
		snprintf(err, errlen, "cannot copy %s: %s", src, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && rc == 0) {
		snprintf(err, errlen, "cannot write %s: %s", dst, strerror(errno));
		rc = -1;
	}
	if (rc < 0 && out >= 0)
		unlink(dst);
	att_sha256_end(h, rc == 0 ? md : NULL);
	if (rc == 0) {
		att_hex_encode(md, 32, hex);
		*ret_size = size;
	}
	return rc;
}

static int hash_file(const char *path, char hex[65], int64_t *ret_size)
{
	struct att_sha256_stream *h;
	char buf[65536];
	uint8_t md[32];
	int64_t size = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	h = att_sha256_begin();
	if (!h) {
		close(fd);
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		att_sha256_update(h, buf, (size_t)n);
		size += n;
	}
	close(fd);
	att_sha256_end(h, n == 0 ? md : NULL);
	if (n < 0)
		return -1;
	att_hex_encode(md, 32, hex);
	*ret_size = size;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* A config file name we copy: plain, no path, not hidden. */
static bool plain_name(const char *n)
{
	if (!n[0] || n[0] == '.' || strlen(n) > 200)
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		      *p == '-' || *p == '_'))
			return false;
	return true;
}

static int add_entry(json_t *files, const char *rel, const char *hex, int64_t size)
{
	return json_array_append_new(files, json_pack("{s:s, s:I, s:s}", "path", rel, "size", (json_int_t)size,
						      "sha256", hex));
}

/* Copy dir/name to stage/sub/name and list it in files. */
static int stage_file(const char *dir, const char *name, const char *stage, const char *sub, mode_t mode,
		      json_t *files)
{
	char *src = att_asprintf("%s/%s", dir, name), *rel = att_asprintf("%s/%s", sub, name);
	char *dst = att_asprintf("%s/%s", stage, rel ? rel : "");
	char hex[65], err[512];
	int64_t size;
	int rc = -1;

	if (src && rel && dst) {
		if (att_backup_copy_file(src, dst, mode, hex, &size, err, sizeof(err)) < 0)
			fprintf(stderr, "attestd backup: %s\n", err);
		else
			rc = add_entry(files, rel, hex, size);
	}
	free(src);
	free(rel);
	free(dst);
	return rc;
}

static int stage_configs(const struct att_config *cfg, const char *stage, json_t *files)
{
	DIR *d = opendir(cfg->config_cache_dir);
	struct dirent *e;
	int n = 0, rc = 0;

	if (!d) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "attestd backup: cannot read %s: %s\n", cfg->config_cache_dir, strerror(errno));
		return -1;
	}
	while (rc == 0 && (e = readdir(d))) {
		struct stat st;
		char *p;

		if (!plain_name(e->d_name))
			continue;
		p = att_asprintf("%s/%s", cfg->config_cache_dir, e->d_name);
		if (p && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			if (++n > MAX_CONFIGS) {
				fprintf(stderr, "attestd backup: more than %d files in %s\n", MAX_CONFIGS,
					cfg->config_cache_dir);
				rc = -1;
			} else {
				rc = stage_file(cfg->config_cache_dir, e->d_name, stage, "configs", 0600, files);
			}
		}
		free(p);
	}
	closedir(d);
	return rc;
}

static int write_manifest(const char *stage, const char *backend, json_t *files,
			  const struct att_dbcopy_result *res)
{
	char when[40], *path = att_asprintf("%s/manifest.json", stage);
	json_t *m;
	int rc = -1;

	att_time_iso_utc(att_now(), when);
	m = json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:I, s:{s:I, s:s?}, s:O}", "format", FORMAT, "format_version",
		      FORMAT_VERSION, "attestd_version", ATT_VERSION, "created_at", when, "source_backend", backend,
		      "schema_version", res->schema_version, "machines", (json_int_t)res->machines, "audit",
		      "entries", (json_int_t)res->audit_entries, "root_hash",
		      res->root_hash[0] ? res->root_hash : NULL, "files", files);
	if (m && path && json_dump_file(m, path, JSON_INDENT(2) | JSON_SORT_KEYS) == 0 && chmod(path, 0600) == 0)
		rc = 0;
	else
		fprintf(stderr, "attestd backup: cannot write %s\n", path ? path : "manifest.json");
	json_decref(m);
	free(path);
	return rc;
}

/* The database, the CA and the configs into stage; then the manifest. */
static int fill_stage(const struct att_config *cfg, const char *stage, json_t *files,
		      struct att_dbcopy_result *res)
{
	char *abs = realpath(stage, NULL), *url = NULL, *db = NULL, *sub = NULL;
	char hex[65];
	int64_t size;
	int rc = -1;

	if (!abs)
		goto out;
	url = att_asprintf("sqlite:///%s/machines.db", abs);
	db = att_asprintf("%s/machines.db", abs);
	sub = att_asprintf("%s/ca", abs);
	if (!url || !db || !sub || mkdir(sub, 0700) < 0)
		goto out;
	free(sub);
	sub = att_asprintf("%s/configs", abs);
	if (!sub || mkdir(sub, 0700) < 0)
		goto out;
	if (att_dbcopy("attestd backup", cfg->db_url, url, false, res) < 0)
		goto out;
	if (chmod(db, 0600) < 0 || hash_file(db, hex, &size) < 0 || add_entry(files, "machines.db", hex, size) < 0) {
		fprintf(stderr, "attestd backup: cannot read back %s\n", db);
		goto out;
	}
	for (size_t i = 0; i < sizeof(ca_files) / sizeof(ca_files[0]); i++) {
		if (stage_file(cfg->enrollment_ca_dir, ca_files[i], abs, "ca", 0600, files) < 0) {
			fprintf(stderr, "attestd backup: the Enrollment CA (%s) is incomplete; nothing backed up\n",
				cfg->enrollment_ca_dir);
			goto out;
		}
	}
	if (stage_configs(cfg, abs, files) < 0)
		goto out;
	rc = write_manifest(abs, strncmp(cfg->db_url, "postgresql:", 11) == 0 ? "postgresql" : "sqlite", files, res);
out:
	free(abs);
	free(url);
	free(db);
	free(sub);
	return rc;
}

int att_backup_run(const struct att_config *cfg, const char *dirarg)
{
	struct att_dbcopy_result res;
	json_t *files = json_array();
	char *dir = att_strdup(dirarg), *stage = NULL;
	size_t n = dir ? strlen(dir) : 0;
	struct stat st;
	int rc = 1;

	while (n > 1 && dir[n - 1] == '/')	/* "DIR/" names DIR */
		dir[--n] = '\0';
	stage = dir ? att_asprintf("%s.partial", dir) : NULL;
	if (!files || !stage)
		goto out;
	if (stat(dir, &st) == 0) {
		fprintf(stderr, "attestd backup: %s exists; back up into a new directory\n", dir);
		goto out;
	}
	if (mkdir(stage, 0700) < 0) {
		fprintf(stderr, "attestd backup: cannot create %s: %s%s\n", stage, strerror(errno),
			errno == EEXIST ? " (left by an interrupted backup: remove it)" : "");
		goto out;
	}
	if (fill_stage(cfg, stage, files, &res) < 0 || rename(stage, dir) < 0) {
		nftw(stage, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		fprintf(stderr, "attestd backup: failed; nothing backed up\n");
		goto out;
	}
	printf("backup %s: %lld machines, %lld audit entries (root %s), Enrollment CA, %zu files\n", dir,
	       (long long)res.machines, (long long)res.audit_entries, res.root_hash[0] ? res.root_hash : "(empty)",
	       json_array_size(files));
	rc = 0;
out:
	json_decref(files);
	free(stage);
	free(dir);
	return rc;
}

/* ---- restore ---------------------------------------------------------------- */

struct restore {
	const struct att_config *cfg;
	const char *dir;
	json_t *manifest, *files;
	int problems;
	char *installed[2 + MAX_CONFIGS];
	size_t ninstalled;
};

static void problem(struct restore *r, const char *fmt, const char *a, const char *b)
{
	if (r->problems++ == 0)
		fprintf(stderr, "attestd restore: %s cannot be restored:\n", r->dir);
	fprintf(stderr, "  - ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
}

static bool is_hex64(const char *s)
{
	return s && strlen(s) == 64 && att_is_hex(s, 64);
}

/* A path the manifest may name: machines.db, ca/<CA file>, configs/<plain name>. */
static bool known_path(const char *p)
{
	if (strcmp(p, "machines.db") == 0)
		return true;
	for (size_t i = 0; i < sizeof(ca_files) / sizeof(ca_files[0]); i++)
		if (strncmp(p, "ca/", 3) == 0 && strcmp(p + 3, ca_files[i]) == 0)
			return true;
	return strncmp(p, "configs/", 8) == 0 && plain_name(p + 8);
}

static json_t *find_file(json_t *files, const char *rel)
{
	size_t i;
	json_t *f;

	json_array_foreach (files, i, f)
		if (strcmp(json_string_value(json_object_get(f, "path")), rel) == 0)
			return f;
	return NULL;
}

static int load_manifest(struct restore *r)
{
	char *path = att_asprintf("%s/manifest.json", r->dir), num[32];
	json_error_t jerr;
	json_t *m, *a, *f;
	struct stat st;
	size_t i;

	if (!path || stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MANIFEST_MAX) {
		problem(r, "%s is missing or larger than 1 MiB%s", "manifest.json", "");
		goto out;
	}
	m = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	r->manifest = m;
	if (!json_is_object(m)) {
		problem(r, "manifest.json is not a JSON object: %s%s", m ? "" : jerr.text, "");
		goto out;
	}
	if (!json_is_string(json_object_get(m, "format")) ||
	    strcmp(json_string_value(json_object_get(m, "format")), FORMAT) != 0)
		problem(r, "manifest.json: format is not \"%s\"%s", FORMAT, "");
	if (json_integer_value(json_object_get(m, "format_version")) != FORMAT_VERSION)
		problem(r, "manifest.json: format_version is not %s%s", "1", "");
	snprintf(num, sizeof(num), "%d", att_db_latest_version());
	if (!json_is_integer(json_object_get(m, "schema_version")) ||
	    json_integer_value(json_object_get(m, "schema_version")) < 1 ||
	    json_integer_value(json_object_get(m, "schema_version")) > att_db_latest_version())
		problem(r, "manifest.json: schema_version is missing or newer than this attestd's (%s)%s", num, "");
	a = json_object_get(m, "audit");
	if (!json_is_object(a) || !json_is_integer(json_object_get(a, "entries")) ||
	    json_integer_value(json_object_get(a, "entries")) < 0 ||
	    !(json_is_null(json_object_get(a, "root_hash")) ||
	      is_hex64(json_string_value(json_object_get(a, "root_hash")))))
		problem(r, "manifest.json: audit must be {entries, root_hash}%s%s", "", "");
	r->files = json_object_get(m, "files");
	if (!json_is_array(r->files) || json_array_size(r->files) > 3 + MAX_CONFIGS) {
		problem(r, "manifest.json: files must be a list of at most %s entries%s", "259", "");
		r->files = NULL;
		goto out;
	}
	json_array_foreach (r->files, i, f) {
		const char *p = json_string_value(json_object_get(f, "path"));

		if (!p || !known_path(p) || !json_is_integer(json_object_get(f, "size")) ||
		    json_integer_value(json_object_get(f, "size")) < 0 ||
		    !is_hex64(json_string_value(json_object_get(f, "sha256"))) || json_object_size(f) != 3) {
			problem(r, "manifest.json: files[] entry %s is not {path, size, sha256} with a known path%s",
				p ? p : "(no path)", "");
			r->files = NULL;
			goto out;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(json_string_value(json_object_get(json_array_get(r->files, k), "path")), p) == 0)
				problem(r, "manifest.json: %s is listed twice%s", p, "");
	}
	if (!find_file(r->files, "machines.db"))
		problem(r, "manifest.json lists no %s%s", "machines.db", "");
	for (size_t k = 0; k < sizeof(ca_files) / sizeof(ca_files[0]); k++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "ca/%s", ca_files[k]);
		if (!find_file(r->files, rel))
			problem(r, "manifest.json lists no %s (the Enrollment CA)%s", rel, "");
	}
out:
	free(path);
	return r->problems ? -1 : 0;
}

/* 1 when path holds exactly the file f describes, 0 when it is absent, -1 when it differs. */
static int same_as(const char *path, json_t *f)
{
	char hex[65];
	int64_t size;

	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (hash_file(path, hex, &size) < 0)
		return -1;
	return size == json_integer_value(json_object_get(f, "size")) &&
			       strcmp(hex, json_string_value(json_object_get(f, "sha256"))) == 0
		       ? 1
		       : -1;
}

/* Every file as the manifest says; nothing different where it would go. */
static void check_files(struct restore *r)
{
	size_t i;
	json_t *f;

	json_array_foreach (r->files, i, f) {
		const char *rel = json_string_value(json_object_get(f, "path"));
		char *src = att_asprintf("%s/%s", r->dir, rel), *dst = NULL;
		int s = src ? same_as(src, f) : -1;

		if (s == 0)
			problem(r, "%s is missing%s", rel, "");
		else if (s < 0)
			problem(r, "%s does not match its size and SHA-256 in manifest.json%s", rel, "");
		if (strncmp(rel, "ca/", 3) == 0)
			dst = att_asprintf("%s/%s", r->cfg->enrollment_ca_dir, rel + 3);
		else if (strncmp(rel, "configs/", 8) == 0)
			dst = att_asprintf("%s/%s", r->cfg->config_cache_dir, rel + 8);
		if (dst && same_as(dst, f) < 0)
			problem(r, "%s already exists and differs from the backup's %s: restore into a fresh data directory",
				dst, rel);
		free(src);
		free(dst);
	}
}

static int mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return -1;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* Install the CA files and configs that are not in place yet. */
static int install_files(struct restore *r)
{
	size_t i;
	json_t *f;

	json_array_foreach (r->files, i, f) {
		const char *rel = json_string_value(json_object_get(f, "path"));
		bool ca = strncmp(rel, "ca/", 3) == 0;
		const char *dir = ca ? r->cfg->enrollment_ca_dir : r->cfg->config_cache_dir;
		char *src, *dst, *tmp, hex[65], err[512];
		int64_t size;
		int rc = -1;

		if (strcmp(rel, "machines.db") == 0)
			continue;
		src = att_asprintf("%s/%s", r->dir, rel);
		dst = att_asprintf("%s/%s", dir, strchr(rel, '/') + 1);
		tmp = att_asprintf("%s.restore", dst ? dst : "");
		if (src && dst && tmp && same_as(dst, f) == 1) {
			rc = 0;
		} else if (src && dst && tmp && mkdir_p(dir) == 0) {
			unlink(tmp);
			if (att_backup_copy_file(src, tmp, strcmp(rel, "ca/enrollment-ca.crt") == 0 ? 0644 : 0600, hex, &size, err,
				      sizeof(err)) < 0)
				fprintf(stderr, "attestd restore: %s\n", err);
			else if (strcmp(hex, json_string_value(json_object_get(f, "sha256"))) != 0 || rename(tmp, dst) < 0)
				fprintf(stderr, "attestd restore: cannot install %s\n", dst);
			else {
				r->installed[r->ninstalled++] = dst;
				dst = NULL;
				rc = 0;
			}
			unlink(tmp);
		} else {
			fprintf(stderr, "attestd restore: cannot create %s: %s\n", dir, strerror(errno));
		}
		free(src);
		free(dst);
		free(tmp);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* The backup's database (copied aside first: dbcopy migrates its source)
 * into ITL_DB_URL; the restored audit chain must end where the manifest says. */
static int restore_db(struct restore *r, struct att_dbcopy_result *res)
{
	const char *tmpdir = getenv("TMPDIR");
	json_t *f = find_file(r->files, "machines.db"), *a = json_object_get(r->manifest, "audit");
	char dir[PATH_MAX], *src = att_asprintf("%s/machines.db", r->dir), *db = NULL, *url = NULL;
	char hex[65], err[512];
	const char *root = json_string_value(json_object_get(a, "root_hash"));
	int64_t size;
	int rc = -1;

	snprintf(dir, sizeof(dir), "%s/attestd-restore.XXXXXX", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
	if (!src || !mkdtemp(dir)) {
		fprintf(stderr, "attestd restore: cannot create a temporary directory in %s\n", dir);
		free(src);
		return -1;
	}
	db = att_asprintf("%s/machines.db", dir);
	url = att_asprintf("sqlite:///%s", db ? db : "");
	if (!db || !url || att_backup_copy_file(src, db, 0600, hex, &size, err, sizeof(err)) < 0)
		fprintf(stderr, "attestd restore: %s\n", db && url ? err : "out of memory");
	else if (strcmp(hex, json_string_value(json_object_get(f, "sha256"))) != 0)
		fprintf(stderr, "attestd restore: machines.db changed while it was being read\n");
	else if (att_dbcopy("attestd restore", url, r->cfg->db_url, false, res) == 0)
		rc = 0;
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (rc == 0 && (res->audit_entries != json_integer_value(json_object_get(a, "entries")) ||
			strcmp(res->root_hash, root ? root : "") != 0)) {
		fprintf(stderr, "attestd restore: the restored audit chain (%lld entries, root %s) is not the one the "
				"manifest names; investigate before using this installation\n",
			(long long)res->audit_entries, res->root_hash);
		rc = -1;
	}
	free(src);
	free(db);
	free(url);
	return rc;
}

int att_restore_run(const struct att_config *cfg, const char *dir)
{
	struct restore r = { .cfg = cfg, .dir = dir };
	struct att_dbcopy_result res;
	int rc = 1;

	if (load_manifest(&r) == 0)
		check_files(&r);
	if (r.problems) {
		fprintf(stderr, "attestd restore: nothing restored\n");
		goto out;
	}
	if (install_files(&r) < 0 || restore_db(&r, &res) < 0) {
		for (size_t i = 0; i < r.ninstalled; i++)
			unlink(r.installed[i]);
		fprintf(stderr, "attestd restore: failed; the files it had installed were removed\n");
		goto out;
	}
	printf("restored %s: %lld machines, %lld audit entries (root %s, as in the manifest); "
	       "Enrollment CA in %s; %zu file(s) installed\n",
	       dir, (long long)res.machines, (long long)res.audit_entries, res.root_hash[0] ? res.root_hash : "(empty)",
	       cfg->enrollment_ca_dir, r.ninstalled);
	rc = 0;
out:
	for (size_t i = 0; i < r.ninstalled; i++)
		free(r.installed[i]);
	json_decref(r.manifest);
	return rc;
}
