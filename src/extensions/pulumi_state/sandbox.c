/* sandbox.c - confining a server-side deployment's commands (git clone,
 * pulumi): ITL_PULUMI_DEPLOY_SANDBOX=auto|bwrap|user|none.
 *
 *   bwrap  bubblewrap (ITL_PULUMI_BWRAP): a fresh mount namespace that
 *          holds /usr read-only, a few files of /etc, the directory of the
 *          pulumi CLI read-only, a private /tmp, and the deployment's work
 *          directory (read-write, at /deploy); every namespace but the
 *          network one is new.  With ITL_PULUMI_DEPLOY_USER bwrap itself
 *          is started as that user.
 *   user   the commands run as ITL_PULUMI_DEPLOY_USER (attestd must be
 *          root): setgroups/setgid/setuid between fork and exec.
 *   none   as attestd's user (today's behaviour).
 *   auto   bwrap if its probe (`true` in the sandbox) works at start,
 *          else user when configured and attestd is root, else none with
 *          a warning.  bwrap and user are requirements: if they cannot
 *          work, every deployment fails with the reason.
 *
 * bwrap itself runs with PATH alone; the commands' environment is
 * --clearenv and one --setenv per variable, read by bwrap from a memfd
 * (--args 3), never from its command line: the deployment token would
 * otherwise show in /proc/<pid>/cmdline to every user of the host. */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy.h"
#include "pulumi.h"

enum { SB_NONE, SB_BWRAP, SB_USER };
static int mode;
static char refusal[384];		/* why no deployment can run here ("" : they can) */
static char bwrap[512], clidir[PATH_MAX], username[64];
static struct pl_creds creds;		/* .drop: switch to ITL_PULUMI_DEPLOY_USER */

/* / entries that are symlinks into /usr on merged-/usr systems, or directories */
static const char *const tops[] = { "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32" };
static char top_link[6][PATH_MAX];
static bool top_dir[6];

/* what of /etc the commands see: name resolution, CA certificates, users */
static const char *const etc_keep[] = {
	"/etc/resolv.conf", "/etc/hosts", "/etc/host.conf", "/etc/nsswitch.conf", "/etc/gai.conf",
	"/etc/services", "/etc/protocols", "/etc/passwd", "/etc/group", "/etc/localtime", "/etc/ssl",
	"/etc/ca-certificates", "/etc/pki", "/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf",
	"/etc/ld.so.conf.d",
};

const char *pl_sandbox_refusal(void)
{
	return refusal[0] ? refusal : NULL;
}

const char *pl_sandbox_name(void)
{
	static char name[128];

	if (mode == SB_NONE)
		return "none (attestd's user, no confinement)";
	snprintf(name, sizeof(name), "%s%s%s (uid %u)", mode == SB_BWRAP ? "bubblewrap" : "user",
		 mode == SB_BWRAP && creds.drop ? " as user " : mode == SB_USER ? " " : "",
		 creds.drop ? username : "", (unsigned)(creds.drop ? creds.uid : geteuid()));
	return name;
}

const char *pl_sandbox_workdir(const char *host_dir)
{
	return mode == SB_BWRAP ? PL_SANDBOX_DIR : host_dir;
}

/* Build bwrap's argv around argv (NULL-terminated) into out (cap entries). */
static int bwrap_argv(const char **out, size_t cap, const char *const argv[], const char *workdir, const char *cwd,
		      const char *ro_path)
{
	size_t n = 0;

#define A(s) do { if (n + 1 >= cap) return -1; out[n++] = (s); } while (0)
	A(bwrap);
	A("--args");
	A("3");
	A("--unshare-all");
	A("--share-net");
	A("--die-with-parent");
	A("--new-session");
	A("--ro-bind");
	A("/usr");
	A("/usr");
	for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
		if (top_link[i][0]) {
			A("--symlink");
			A(top_link[i]);
			A(tops[i]);
		} else if (top_dir[i]) {
			A("--ro-bind");
			A(tops[i]);
			A(tops[i]);
		}
	}
	for (size_t i = 0; i < sizeof(etc_keep) / sizeof(etc_keep[0]); i++) {
		A("--ro-bind-try");
		A(etc_keep[i]);
		A(etc_keep[i]);
	}
	A("--proc");
	A("/proc");
	A("--dev");
	A("/dev");
	A("--tmpfs");
	A("/tmp");
	if (clidir[0]) {
		A("--ro-bind");
		A(clidir);
		A(clidir);
	}
	if (ro_path) {
		A("--ro-bind-try");
		A(ro_path);
		A(ro_path);
	}
	if (workdir) {
		A("--bind");
		A(workdir);
		A(PL_SANDBOX_DIR);
	}
	A("--chdir");
	A(cwd ? cwd : "/");
	A("--");
	for (size_t i = 0; argv[i]; i++)
		A(argv[i]);
#undef A
	out[n] = NULL;
	return 0;
}

/* --clearenv, then --setenv NAME VALUE for each of envp, NUL-separated in a memfd. */
static int env_args(char *const envp[])
{
	int fd = memfd_create("bwrap-env", MFD_CLOEXEC);
	FILE *f;
	bool ok;

	if (fd < 0)
		return -1;
	f = fdopen(dup(fd), "w");
	ok = f && fwrite("--clearenv", 1, 11, f) == 11;
	for (size_t i = 0; ok && envp[i]; i++) {
		const char *eq = strchr(envp[i], '=');

		ok = eq && fprintf(f, "--setenv%c%.*s%c%s%c", 0, (int)(eq - envp[i]), envp[i], 0, eq + 1, 0) > 0;
	}
	if (f && fclose(f) != 0)
		ok = false;
	if (!ok || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int pl_sandbox_run(const char *const argv[], char *const envp[], const char *workdir, const char *cwd,
		   const char *ro_path, struct pl_log *log, int64_t timeout_s, bool (*cancelled)(void *), void *arg,
		   int *ret_exit)
{
	const char *outer[160];
	char path[] = "PATH=/usr/bin:/bin", *benv[] = { path, NULL };
	struct pl_creds c = creds;
	int rc;

	if (mode == SB_NONE)
		return pl_run(argv, envp, cwd, NULL, log, timeout_s, cancelled, arg, ret_exit);
	if (mode == SB_USER)
		return pl_run(argv, envp, cwd, &creds, log, timeout_s, cancelled, arg, ret_exit);
	if (bwrap_argv(outer, sizeof(outer) / sizeof(outer[0]), argv, workdir, cwd, ro_path) < 0)
		return PL_RUN_ERROR;
	c.keep_fd = env_args(envp);
	if (c.keep_fd < 0)
		return PL_RUN_ERROR;
	rc = pl_run(outer, benv, "/", &c, log, timeout_s, cancelled, arg, ret_exit);
	close(c.keep_fd);
	return rc;
}

/* The work directory (and its git configuration) belong to the user. */
int pl_sandbox_prepare(const char *workdir, const char *file_repo)
{
	char path[PATH_MAX];
	FILE *f;

	if (file_repo) {
		/* git refuses a local repository another user owns ("dubious ownership") */
		snprintf(path, sizeof(path), "%s/.gitconfig", workdir);
		f = fopen(path, "w");
		if (!f)
			return -1;
		fprintf(f, "[safe]\n\tdirectory = %s\n", file_repo);
		if (fclose(f) != 0 || (creds.drop && chown(path, creds.uid, creds.gid) < 0))
			return -1;
	}
	return creds.drop ? chown(workdir, creds.uid, creds.gid) : 0;
}

static int parse_user(struct att_ext *ext, const char *v)
{
	char buf[4096], *end;
	struct passwd pw, *p = NULL;
	unsigned long id;

	errno = 0;
	id = strtoul(v, &end, 10);
	if (isdigit((unsigned char)*v) && !*end && !errno && id > 0 && id < 0xfffffffful) {
		creds.uid = (uid_t)id;
		creds.gid = (gid_t)id;	/* a uid without a passwd entry: the same gid */
		if (getpwuid_r(creds.uid, &pw, buf, sizeof(buf), &p) == 0 && p)
			creds.gid = p->pw_gid;
	} else if (getpwnam_r(v, &pw, buf, sizeof(buf), &p) == 0 && p) {
		creds.uid = p->pw_uid;
		creds.gid = p->pw_gid;
	} else {
		pl_host->log(ext, ATT_EXT_LOG_ERROR, "ITL_PULUMI_DEPLOY_USER: no user '%.64s'", v);
		return -1;
	}
	if (creds.uid == 0) {
		pl_host->log(ext, ATT_EXT_LOG_ERROR, "ITL_PULUMI_DEPLOY_USER: must not be root");
		return -1;
	}
	snprintf(username, sizeof(username), "%s", p ? p->pw_name : v);
	creds.drop = true;
	return 0;
}

/* What the sandbox needs of the host, looked up once. */
static void layout(void)
{
	char cli[PATH_MAX], real[PATH_MAX], *slash;
	struct stat st;

	for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
		ssize_t n = readlink(tops[i], top_link[i], sizeof(top_link[i]) - 1);

		top_link[i][n > 0 ? n : 0] = 0;
		top_dir[i] = n <= 0 && lstat(tops[i], &st) == 0 && S_ISDIR(st.st_mode);
	}
	clidir[0] = 0;
	if (pl_which(pl_cfg.cli, cli, sizeof(cli)) == 0 && realpath(cli, real)) {
		slash = strrchr(real, '/');
		if (slash && slash != real) {
			*slash = 0;
			if (strcmp(real, "/usr") && strncmp(real, "/usr/", 5))
				snprintf(clidir, sizeof(clidir), "%s", real);
		}
	}
}

/* Run `true` in the sandbox: 0 when bwrap works here, else the reason in why. */
static int probe(char *why, size_t whylen)
{
	char t[PATH_MAX], dir[PATH_MAX];
	const char *argv[] = { t, NULL }, *base = getenv("TMPDIR");
	char path[] = "PATH=/usr/bin:/bin", *env[] = { path, NULL };
	struct pl_log log = { .cap = 4096 };
	int code = -1, rc;

	if (pl_which(getenv("ITL_PULUMI_BWRAP") && *getenv("ITL_PULUMI_BWRAP") ? getenv("ITL_PULUMI_BWRAP") : "bwrap",
		     bwrap, sizeof(bwrap)) < 0) {
		snprintf(why, whylen, "bubblewrap (ITL_PULUMI_BWRAP, package bubblewrap) is not installed");
		return -1;
	}
	if (pl_which("true", t, sizeof(t)) < 0)
		snprintf(t, sizeof(t), "/usr/bin/true");
	snprintf(dir, sizeof(dir), "%s/attestd-probe-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		snprintf(why, whylen, "cannot create a temporary directory for the bubblewrap probe");
		return -1;
	}
	mode = SB_BWRAP;
	rc = pl_sandbox_prepare(dir, NULL) < 0 ? PL_RUN_ERROR
					       : pl_sandbox_run(argv, env, dir, PL_SANDBOX_DIR, NULL, &log, 10, NULL, NULL, &code);
	mode = SB_NONE;
	rmdir(dir);
	if (rc == PL_RUN_EXITED && code == 0) {
		free(log.p);
		return 0;
	}
	for (size_t i = log.len; i > 0 && (log.p[i - 1] == '\n' || log.p[i - 1] == '\r'); i--)
		log.p[i - 1] = 0;
	snprintf(why, whylen, "bubblewrap (%s) does not work here (exit %d%s%.200s)", bwrap, code, log.p ? ": " : "",
		 log.p ? log.p : "");
	free(log.p);
	return -1;
}

int pl_sandbox_setup(struct att_ext *ext)
{
	const char *m = getenv("ITL_PULUMI_DEPLOY_SANDBOX"), *u = getenv("ITL_PULUMI_DEPLOY_USER");
	char why[300] = "";

	memset(&creds, 0, sizeof(creds));
	mode = SB_NONE;
	refusal[0] = 0;
	if (!m || !*m)
		m = "auto";
	if (strcmp(m, "auto") && strcmp(m, "bwrap") && strcmp(m, "user") && strcmp(m, "none")) {
		pl_host->log(ext, ATT_EXT_LOG_ERROR, "ITL_PULUMI_DEPLOY_SANDBOX: expected auto, bwrap, user or none, got '%.32s'", m);
		return -1;
	}
	if (u && *u && parse_user(ext, u) < 0)
		return -1;
	if (!strcmp(m, "user") && !creds.drop) {
		pl_host->log(ext, ATT_EXT_LOG_ERROR, "ITL_PULUMI_DEPLOY_SANDBOX=user needs ITL_PULUMI_DEPLOY_USER");
		return -1;
	}
	layout();
	if (!strcmp(m, "none")) {
		creds.drop = false;
		pl_host->log(ext, ATT_EXT_LOG_INFO, "deployments sandbox: none (ITL_PULUMI_DEPLOY_SANDBOX=none)");
		return 0;
	}
	if (creds.drop && geteuid() != 0) {
		snprintf(why, sizeof(why), "ITL_PULUMI_DEPLOY_USER needs attestd to run as root");
		if (!strcmp(m, "auto")) {
			pl_host->log(ext, ATT_EXT_LOG_WARNING, "ITL_PULUMI_DEPLOY_USER is ignored: %s", why);
			creds.drop = false;
			why[0] = 0;
		}
	}
	if (!why[0] && strcmp(m, "user") && probe(why, sizeof(why)) == 0)
		mode = SB_BWRAP;
	else if (creds.drop && geteuid() == 0 && strcmp(m, "bwrap"))
		mode = SB_USER;	/* auto without a working bwrap, or user */
	if (mode == SB_NONE && strcmp(m, "auto")) {
		snprintf(refusal, sizeof(refusal), "ITL_PULUMI_DEPLOY_SANDBOX=%s cannot work here: %s", m, why);
		pl_host->log(ext, ATT_EXT_LOG_ERROR, "every deployment will fail: %s", refusal);
	} else if (mode == SB_NONE) {
		pl_host->log(ext, ATT_EXT_LOG_WARNING,
			     "deployments are NOT sandboxed: they run as attestd's user and see its files (%s;"
			     " install bubblewrap or set ITL_PULUMI_DEPLOY_USER, see docs/pulumi-backend.md)", why);
	} else {
		pl_host->log(ext, ATT_EXT_LOG_INFO, "deployments sandbox: %s", pl_sandbox_name());
	}
	return 0;
}
