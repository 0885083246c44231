/* main.c - attestd: the attestation service.
 *
 *   attestd [--listen HOST:PORT] [--ready-file PATH]   run the service
 *   attestd --check-config                             validate ITL_* and exit 0/1
 *   attestd migrate                                    apply database migrations
 *   attestd db copy --from URL --to URL                copy between databases
 *   attestd backup DIR | restore DIR                   back up / restore an installation
 *   attestd import-reference [--dry-run] machines.db   take over the reference service's database
 *
 * main reads the command line and the configuration and starts the parts
 * the configuration names (service.c). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "backup.h"
#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ca.h"
#include "db/db.h"
#include "dbcopy.h"
#include "importref.h"
#include "obs/log.h"
#include "service.h"

#define LOG "attestd"

struct args {
	const char *listen, *ready_file;
	bool check, migrate;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: attestd [--listen HOST:PORT] [--ready-file PATH]\n"
		"       attestd --check-config\n"
		"       attestd migrate\n"
		"       attestd db copy --from URL --to URL\n"
		"       attestd backup DIR\n"
		"       attestd restore DIR\n"
		"       attestd import-reference [--dry-run] machines.db\n"
		"       attestd ca rotate [--algorithm ecdsa-p384|rsa-4096]\n"
		"       attestd --version\n"
		"\n"
		"Configuration comes from ITL_* environment variables (docs/configuration.md).\n"
		"--listen overrides ITL_LISTEN; port 0 picks a free port. --ready-file receives\n"
		"the bound HOST:PORT once the service accepts connections.\n");
}

static int cmd_db_copy(int argc, char **argv)
{
	const char *from = NULL, *to = NULL;

	for (int i = 3; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--from") == 0)
			from = argv[i + 1];
		else if (strcmp(argv[i], "--to") == 0)
			to = argv[i + 1];
	}
	if (!from || !to || argc != 7) {
		fprintf(stderr, "usage: attestd db copy --from URL --to URL\n");
		return 2;
	}
	att_log_setup(ATT_LOG_WARNING, ATT_LOG_TEXT, 2);
	return att_dbcopy_run(from, to);
}

/* attestd backup DIR / attestd restore DIR (backup.c), with the
 * database, CA and config locations from the ITL_* configuration. */
static int cmd_backup(int argc, char **argv)
{
	struct att_config cfg;
	char err[1024] = "";
	int r;

	if (argc != 3 || argv[2][0] == '\0') {
		fprintf(stderr, "usage: attestd %s DIR\n", argv[1]);
		return 2;
	}
	if (att_config_load(&cfg, NULL, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "attestd: invalid configuration: %s\n", err);
		return 2;
	}
	att_log_setup(ATT_LOG_WARNING, ATT_LOG_TEXT, 2);
	r = strcmp(argv[1], "backup") == 0 ? att_backup_run(&cfg, argv[2]) : att_restore_run(&cfg, argv[2]);
	att_config_release(&cfg);
	return r;
}

static int cmd_import_reference(int argc, char **argv)
{
	struct att_config cfg;
	char err[1024] = "";
	bool dry = argc == 4 && strcmp(argv[2], "--dry-run") == 0;
	int r;

	if (!(argc == 3 || dry) || argv[argc - 1][0] == '\0' || argv[argc - 1][0] == '-') {
		fprintf(stderr, "usage: attestd import-reference [--dry-run] machines.db\n");
		return 2;
	}
	if (att_config_load(&cfg, NULL, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "attestd: invalid configuration: %s\n", err);
		return 2;
	}
	att_log_setup(ATT_LOG_WARNING, ATT_LOG_TEXT, 2);
	r = att_importref_run(&cfg, argv[argc - 1], dry);
	att_config_release(&cfg);
	return r;
}

/* attestd ca rotate: a new issuing CA in ITL_ENROLLMENT_CA_DIR, the old
 * one kept for verification, CRLs and OCSP (docs/certificates.md);
 * audited as ca_rotate. */
static int cmd_ca_rotate(int argc, char **argv, const struct att_config *cfg)
{
	const char *alg = cfg->enrollment_ca_algorithm;
	char old[80], neu[80], err[1024] = "", *detail;
	struct att_db *db = NULL;
	struct att_dbc *c;
	int r, applied;

	if (argc == 5 && strcmp(argv[3], "--algorithm") == 0 &&
	    (strcmp(argv[4], "ecdsa-p384") == 0 || strcmp(argv[4], "rsa-4096") == 0))
		alg = argv[4];
	else if (argc != 3) {
		fprintf(stderr, "usage: attestd ca rotate [--algorithm ecdsa-p384|rsa-4096]\n");
		return 2;
	}
	if (cfg->enrollment_ca_key[0]) {
		fprintf(stderr, "attestd: ca rotate manages CA keys in ITL_ENROLLMENT_CA_DIR; a PKCS#11 CA key is rotated in the token (docs/certificates.md)\n");
		return 2;
	}
	if (att_db_open(cfg->db_url, 1, &db, err, sizeof(err)) < 0 || att_db_migrate(db, &applied, err, sizeof(err)) < 0) {
		fprintf(stderr, "attestd: cannot open the database: %s\n", err);
		att_db_close(db);
		return 1;
	}
	r = att_ca_rotate(cfg->enrollment_ca_dir, alg, old, neu, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "attestd: CA rotation failed: %s\n", err);
		att_db_close(db);
		return 1;
	}
	detail = att_asprintf("Enrollment CA rotated: previous serial=%s kept for verification; new serial=%s (%s)", old,
			      neu, alg);
	c = att_db_acquire(db);
	r = c && detail ? att_dbc_begin(c) : ATT_E_DB;
	if (r >= 0)
		r = att_audit_append(c, "SYSTEM", "ca_rotate", NULL, NULL, NULL, detail, NULL);
	if (r >= 0)
		r = att_dbc_commit(c);
	else if (c)
		att_dbc_rollback(c);
	if (c)
		att_db_release(db, c);
	att_db_close(db);
	printf("%s\n", detail ? detail : "Enrollment CA rotated");
	att_log_info("attestd.pki", "%s", detail ? detail : "Enrollment CA rotated");
	free(detail);
	if (r < 0) {
		fprintf(stderr, "attestd: the rotation is done but its audit entry could not be written\n");
		return 1;
	}
	return 0;
}

/* -1: go on; otherwise the exit code. */
static int parse_args(int argc, char **argv, struct args *a)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			a->listen = argv[++i];
		else if (strncmp(argv[i], "--listen=", 9) == 0)
			a->listen = argv[i] + 9;
		else if (strcmp(argv[i], "--ready-file") == 0 && i + 1 < argc)
			a->ready_file = argv[++i];
		else if (strcmp(argv[i], "--check-config") == 0)
			a->check = true;
		else if (strcmp(argv[i], "migrate") == 0)
			a->migrate = true;
		else if (strcmp(argv[i], "--version") == 0) {
			printf("attestd %s\n", ATT_VERSION);
			return 0;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "attestd: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	return -1;
}

static void setup_logging(const struct att_config *cfg)
{
	enum att_log_level lvl = strcmp(cfg->log_level, "debug") == 0	  ? ATT_LOG_DEBUG
				 : strcmp(cfg->log_level, "warning") == 0 ? ATT_LOG_WARNING
				 : strcmp(cfg->log_level, "error") == 0	  ? ATT_LOG_ERROR
									  : ATT_LOG_INFO;

	att_log_setup(lvl, strcmp(cfg->log_format, "json") == 0 ? ATT_LOG_JSON : ATT_LOG_TEXT, 2);
}

static int check_config(struct att_config *cfg)
{
	const char *colon = strrchr(cfg->listen, ':');
	uint64_t port;

	if (!colon || att_parse_u64(colon + 1, strlen(colon + 1), 0, 65535, &port) < 0) {
		fprintf(stderr, "attestd: invalid configuration: ITL_LISTEN: expected HOST:PORT, got '%s'\n",
			cfg->listen);
		return 1;
	}
	att_config_dump(cfg, 1);
	{
		const char *w[8];
		int n = att_config_weaknesses(cfg, w, 8);

		for (int i = 0; i < n; i++)
			printf("WARNING: %s\n", w[i]);
	}
	printf("configuration OK\n");
	return 0;
}

/* Run until SIGINT/SIGTERM. */
static int serve(struct att_service *s, const char *ready_file)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (att_service_start(s, ready_file) < 0)
		return 1;
	sigwait(&set, &sig);
	att_log_info(LOG, "received signal %d, shutting down", sig);
	return 0;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	struct att_config cfg;
	struct att_service s = { 0 };
	char err[1024] = "";
	bool is_rotate;
	int r;

	if (argc >= 3 && strcmp(argv[1], "db") == 0 && strcmp(argv[2], "copy") == 0)
		return cmd_db_copy(argc, argv);
	if (argc >= 2 && (strcmp(argv[1], "backup") == 0 || strcmp(argv[1], "restore") == 0))
		return cmd_backup(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "import-reference") == 0)
		return cmd_import_reference(argc, argv);
	is_rotate = argc >= 3 && strcmp(argv[1], "ca") == 0 && strcmp(argv[2], "rotate") == 0;
	r = is_rotate ? -1 : parse_args(argc, argv, &a);
	if (r >= 0)
		return r;
	if (att_config_load(&cfg, NULL, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "attestd: invalid configuration: %s\n", err);
		return a.check ? 1 : 2;
	}
	if (is_rotate) {
		setup_logging(&cfg);
		r = cmd_ca_rotate(argc, argv, &cfg);
		att_config_release(&cfg);
		return r;
	}
	if (a.listen) {
		free(cfg.listen);
		cfg.listen = att_strdup(a.listen);
	}
	setup_logging(&cfg);
	if (a.check) {
		r = check_config(&cfg);
		att_config_release(&cfg);
		return r;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	json_object_seed(0);
	if (att_service_open(&s, &cfg, a.migrate) < 0)
		r = 1;
	else if (a.migrate) {
		printf("schema version %d (%d migration(s) applied)\n", att_db_latest_version(), s.migrations_applied);
		r = 0;
	} else {
		r = serve(&s, a.ready_file);
	}
	att_service_close(&s);
	att_config_release(&cfg);
	curl_global_cleanup();
	return r;
}
