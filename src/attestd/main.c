/* main.c - attestd: the attestation service.
 *
 *   attestd [--listen HOST:PORT] [--ready-file PATH]   run the service
 *   attestd --check-config                             validate ITL_* and exit 0/1
 *   attestd migrate                                    apply database migrations
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ca.h"
#include "crypto/ekchain.h"
#include "db/db.h"
#include "dbcopy.h"
#include "http.h"
#include "machine/sweep.h"
#include "machine/machine.h"
#include "oidc/oidc.h"
#include "obs/log.h"
#include "obs/metrics.h"

#define LOG "attestd"
#define VERSION "0.1.0"

/* ---- background sweeper ------------------------------------------------ */

struct sweeper {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct att_db *db;
	int64_t interval;
	char holder[128];
};

static void *sweeper_main(void *arg)
{
	struct sweeper *sw = arg;
	bool held = false, failing = false;

	pthread_mutex_lock(&sw->mu);
	while (!sw->stop) {
		struct timespec until;
		bool claimed = false;
		int r;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += sw->interval;
		while (!sw->stop && pthread_cond_timedwait(&sw->cv, &sw->mu, &until) == 0)
			;
		if (sw->stop)
			break;
		pthread_mutex_unlock(&sw->mu);
		r = att_lease_claim(sw->db, "sweep", sw->holder, 3 * sw->interval, &claimed);
		if (r == 0 && claimed != held) {
			att_log_info("attestd.sweep", "%s the sweep lease (holder %s)", claimed ? "Acquired" : "Lost",
				     sw->holder);
			held = claimed;
		}
		if (r == 0 && claimed) {
			r = att_sweep_run(sw->db, sw->holder);
			if (r > 0)
				att_log_info("attestd.sweep", "Removed %d expired nonces and config tokens", r);
		}
		if (r < 0 && !failing)
			att_log_warning("attestd.sweep", "sweep skipped: %s", att_strerror(r));
		failing = r < 0;
		pthread_mutex_lock(&sw->mu);
	}
	pthread_mutex_unlock(&sw->mu);
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: attestd [--listen HOST:PORT] [--ready-file PATH]\n"
		"       attestd --check-config\n"
		"       attestd migrate\n"
		"       attestd db copy --from URL --to URL\n"
		"       attestd --version\n"
		"\n"
		"Configuration comes from ITL_* environment variables (docs/configuration.md).\n"
		"--listen overrides ITL_LISTEN; port 0 picks a free port. --ready-file receives\n"
		"the bound HOST:PORT once the service accepts connections.\n");
}

static int write_ready_file(const char *path, const char *addr)
{
	char tmp[4096];
	int fd;
	ssize_t w;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	w = dprintf(fd, "%s\n", addr);
	if (w < 0 || close(fd) < 0)
		return -1;
	return rename(tmp, path);
}

static int oidc_setup(const struct att_config *cfg, struct att_strlist *aud, struct att_oidc **ret)
{
	struct att_oidc_conf oc = {
		.issuer = cfg->oidc_issuer,
		.operator_role = cfg->oidc_operator_role,
		.role_claims = (const char *const *)cfg->oidc_role_claims.items,
		.nrole_claims = cfg->oidc_role_claims.n,
		.algs = (const char *const *)cfg->oidc_algorithms.items,
		.nalgs = cfg->oidc_algorithms.n,
		.clients = (const char *const *)cfg->oidc_allowed_clients.items,
		.nclients = cfg->oidc_allowed_clients.n,
		.leeway = cfg->oidc_leeway_seconds,
		.jwks_ttl = cfg->oidc_jwks_cache_seconds,
		.min_refresh = cfg->oidc_jwks_min_refresh_seconds,
		.http_timeout = (long)cfg->oidc_http_timeout_seconds,
		.ca_file = cfg->oidc_ca_file,
		.allow_http = cfg->oidc_allow_http,
	};
	char err[512] = "";

	if (att_config_parse_list(cfg->oidc_audience, aud) < 0 || aud->n == 0) {
		att_log_error(LOG, "invalid configuration: ITL_OIDC_AUDIENCE must name at least one audience");
		return -1;
	}
	if (cfg->oidc_algorithms.n == 0) {
		att_log_error(LOG, "invalid configuration: ITL_OIDC_ALGORITHMS is empty");
		return -1;
	}
	oc.audiences = (const char *const *)aud->items;
	oc.naudiences = aud->n;
	if (att_oidc_new(&oc, ret, err, sizeof(err)) < 0) {
		att_log_error(LOG, "invalid configuration: %s", err);
		return -1;
	}
	if (!cfg->oidc_operator_role[0])
		att_log_warning(LOG, "ITL_OIDC_OPERATOR_ROLE is empty: every valid token of %s is an operator",
				cfg->oidc_issuer);
	if (att_oidc_prefetch(*ret, err, sizeof(err)) < 0)
		att_log_warning(LOG, "OIDC provider %s not reachable at start-up (%s); bearer tokens get 503 until it is",
				cfg->oidc_issuer, err);
	att_log_info(LOG, "OIDC operator authentication: issuer %s, audience %s, role %s", cfg->oidc_issuer,
		     cfg->oidc_audience, cfg->oidc_operator_role[0] ? cfg->oidc_operator_role : "(none)");
	return 0;
}

int main(int argc, char **argv)
{
	struct att_config cfg;
	struct att_svc svc = { 0 };
	struct att_db *db = NULL;
	struct att_server *srv = NULL;
	struct att_ca *ca = NULL;
	struct att_ek_trust *trust = NULL;
	struct att_oidc *oidc = NULL;
	struct att_strlist oidc_aud = { 0 };
	struct sweeper sw = { .stop = false };
	bool sweeping = false;
	const char *listen_arg = NULL, *ready_file = NULL;
	bool check = false, migrate = false;
	char err[1024] = "";
	unsigned threads;
	int r, applied = 0;

	if (argc >= 3 && strcmp(argv[1], "db") == 0 && strcmp(argv[2], "copy") == 0) {
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
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			listen_arg = argv[++i];
		else if (strncmp(argv[i], "--listen=", 9) == 0)
			listen_arg = argv[i] + 9;
		else if (strcmp(argv[i], "--ready-file") == 0 && i + 1 < argc)
			ready_file = argv[++i];
		else if (strcmp(argv[i], "--check-config") == 0)
			check = true;
		else if (strcmp(argv[i], "migrate") == 0)
			migrate = true;
		else if (strcmp(argv[i], "--version") == 0) {
			printf("attestd %s\n", VERSION);
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
	if (att_config_load(&cfg, NULL, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "attestd: invalid configuration: %s\n", err);
		return check ? 1 : 2;
	}
	if (listen_arg) {
		free(cfg.listen);
		cfg.listen = att_strdup(listen_arg);
	}
	{
		enum att_log_level lvl = strcmp(cfg.log_level, "debug") == 0 ? ATT_LOG_DEBUG
					 : strcmp(cfg.log_level, "warning") == 0 ? ATT_LOG_WARNING
					 : strcmp(cfg.log_level, "error") == 0 ? ATT_LOG_ERROR
										: ATT_LOG_INFO;

		att_log_setup(lvl, strcmp(cfg.log_format, "json") == 0 ? ATT_LOG_JSON : ATT_LOG_TEXT, 2);
	}
	if (check) {
		const char *colon = strrchr(cfg.listen, ':');
		uint64_t port;

		if (!colon || att_parse_u64(colon + 1, strlen(colon + 1), 0, 65535, &port) < 0) {
			fprintf(stderr, "attestd: invalid configuration: ITL_LISTEN: expected HOST:PORT, got '%s'\n",
				cfg.listen);
			att_config_release(&cfg);
			return 1;
		}
		att_config_dump(&cfg, 1);
		printf("configuration OK\n");
		att_config_release(&cfg);
		return 0;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	json_object_seed(0);
	threads = cfg.threads ? (unsigned)cfg.threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads == 0)
		threads = 2;
	r = att_db_open(cfg.db_url, cfg.db_pool_size ? (unsigned)cfg.db_pool_size : threads + 2, &db, err,
			sizeof(err));
	if (r < 0) {
		att_log_error(LOG, "cannot open the database: %s", err);
		r = 1;
		goto out;
	}
	r = att_db_migrate(db, &applied, err, sizeof(err));
	if (r < 0) {
		att_log_error(LOG, "database migration failed: %s", err);
		r = 1;
		goto out;
	}
	if (applied)
		att_log_info(LOG, "Applied %d database migration(s); schema version %d", applied,
			     att_db_latest_version());
	if (migrate) {
		printf("schema version %d (%d migration(s) applied)\n", att_db_latest_version(), applied);
		r = 0;
		goto out;
	}
	{
		bool created = false;

		r = att_ca_init(cfg.enrollment_ca_dir, cfg.enrollment_ca_algorithm, &ca, &created, err, sizeof(err));
		if (r < 0) {
			att_log_error(LOG, "%s", err);
			r = 1;
			goto out;
		}
		if (created)
			att_log_info("attestd.pki", "Enrollment CA generated (serial=%s)", att_ca_serial(ca));
		else
			att_log_info("attestd.pki", "Enrollment CA loaded from %s (serial=%s)", cfg.enrollment_ca_dir,
				     att_ca_serial(ca));
		if (strcmp(att_ca_algorithm(ca), cfg.enrollment_ca_algorithm) != 0)
			att_log_warning("attestd.pki",
					"Enrollment CA in %s is %s but ITL_ENROLLMENT_CA_ALGORITHM=%s: remove the CA files to rotate",
					cfg.enrollment_ca_dir, att_ca_algorithm(ca), cfg.enrollment_ca_algorithm);
	}
	if (!cfg.admin_token[0] && !cfg.break_glass_token[0] && !(cfg.oidc_enabled && cfg.oidc_issuer[0]))
		att_log_warning(LOG, "No operator authentication configured (ITL_OIDC_ISSUER, ITL_ADMIN_TOKEN, BREAK_GLASS_TOKEN): operator endpoints answer 503");
	if (cfg.tpm_verify_ca) {
		int nroots = 0, ninter = 0;

		r = att_ek_trust_load(cfg.tpm_ca_bundle_dir, &trust, &nroots, &ninter, err, sizeof(err));
		if (r < 0) {
			att_log_error(LOG, "%s", err);
			r = 1;
			goto out;
		}
		att_log_info("attestd.pki", "Loaded %d TPM manufacturer root(s) and %d intermediate(s) from %s", nroots,
			     ninter, cfg.tpm_ca_bundle_dir);
		if (nroots == 0)
			att_log_warning("attestd.pki", "ITL_TPM_VERIFY_CA is on but %s holds no root certificate: no EK chain can verify%s",
					cfg.tpm_ca_bundle_dir, cfg.tpm_verify_ca_strict ? " and every new EK is refused" : "");
	}
	if (cfg.oidc_enabled && cfg.oidc_issuer[0]) {
		r = oidc_setup(&cfg, &oidc_aud, &oidc);
		if (r < 0) {
			r = 1;
			goto out;
		}
	} else if (cfg.oidc_issuer[0]) {
		att_log_warning(LOG, "ITL_OIDC_ENABLED=false: OIDC bearer tokens are not accepted (issuer %s ignored)",
				cfg.oidc_issuer);
	}
	svc.cfg = &cfg;
	svc.db = db;
	svc.ek_trust = trust;
	svc.oidc = oidc;
	svc.ca = ca;
	for (size_t i = 0; i < att_nroutes; i++)
		att_routes[i].metric = att_metrics_route(att_routes[i].method, att_routes[i].path);
	{
		sigset_t set;
		int sig;

		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		signal(SIGPIPE, SIG_IGN);
		pthread_mutex_init(&sw.mu, NULL);
		pthread_cond_init(&sw.cv, NULL);
		sw.db = db;
		sw.interval = cfg.sweep_interval_seconds;
		{
			char host[64] = "host";
			uint8_t rnd[4] = { 0 };

			gethostname(host, sizeof(host) - 1);
			(void)att_random(rnd, sizeof(rnd));
			snprintf(sw.holder, sizeof(sw.holder), "%s:%d:%02x%02x%02x%02x", host, (int)getpid(), rnd[0],
				 rnd[1], rnd[2], rnd[3]);
		}
		sweeping = pthread_create(&sw.th, NULL, sweeper_main, &sw) == 0;
		r = att_server_start(&svc, cfg.listen, threads, &srv, err, sizeof(err));
		if (r < 0) {
			att_log_error(LOG, "%s", err);
			r = 1;
			goto out;
		}
		att_log_info(LOG, "attestd %s listening on %s (threads=%u, db=%s)", VERSION,
			     att_server_address(srv), threads,
			     strncmp(cfg.db_url, "sqlite", 6) == 0 ? "sqlite" : "postgresql");
		if (ready_file && write_ready_file(ready_file, att_server_address(srv)) < 0) {
			att_log_error(LOG, "cannot write --ready-file %s: %s", ready_file, strerror(errno));
			r = 1;
			goto out;
		}
		sigwait(&set, &sig);
		att_log_info(LOG, "received signal %d, shutting down", sig);
	}
	r = 0;
out:
	if (sweeping) {
		pthread_mutex_lock(&sw.mu);
		sw.stop = true;
		pthread_cond_signal(&sw.cv);
		pthread_mutex_unlock(&sw.mu);
		pthread_join(sw.th, NULL);
	}
	att_server_stop(srv);
	att_ca_free(ca);
	att_ek_trust_free(trust);
	att_oidc_free(oidc);
	att_strlist_release(&oidc_aud);
	att_db_close(db);
	att_config_release(&cfg);
	curl_global_cleanup();
	return r;
}
