/* service.c - opening, starting and closing the parts of attestd. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/checkpoint.h"
#include "base/err.h"
#include "base/util.h"
#include "crypto/ca.h"
#include "crypto/ekchain.h"
#include "db/db.h"
#include "ext/ext.h"
#include "factory.h"
#include "http.h"
#include "notify.h"
#include "machine/sweep.h"
#include "obs/log.h"
#include "oidc/oidc.h"
#include "routes/routes.h"
#include "service.h"
#include "vault/vault.h"
#include "approve/approve.h"
#include "worker.h"

#define LOG "attestd"
#define PKI "attestd.pki"

static int open_db(struct att_service *s, unsigned pool)
{
	char err[1024] = "";
	int applied = 0;

	if (att_db_open(s->cfg->db_url, pool, &s->db, err, sizeof(err)) < 0) {
		att_log_error(LOG, "cannot open the database: %s", err);
		return -1;
	}
	if (att_db_migrate(s->db, &applied, err, sizeof(err)) < 0) {
		att_log_error(LOG, "database migration failed: %s", err);
		return -1;
	}
	s->migrations_applied = applied;
	if (applied)
		att_log_info(LOG, "Applied %d database migration(s); schema version %d", applied,
			     att_db_latest_version());
	s->svc.db = s->db;
	if (att_service_key_load(s->db, "nonce-hmac", s->svc.nonce_key) < 0) {
		att_log_error(LOG, "cannot load the challenge key from the database");
		return -1;
	}
	return 0;
}

static int open_ca(struct att_service *s)
{
	const struct att_config *cfg = s->cfg;
	char err[1024] = "";
	bool created = false;

	const struct att_ca_key key = { cfg->enrollment_ca_key, cfg->pkcs11_module };

	if (att_ca_init_key(cfg->enrollment_ca_dir, cfg->enrollment_ca_algorithm, &key, &s->ca, &created, err,
			    sizeof(err)) < 0) {
		att_log_error(LOG, "%s", err);
		return -1;
	}
	if (att_ca_in_hsm(s->ca))
		att_log_info(PKI, "Enrollment CA key held by a PKCS#11 token (ITL_ENROLLMENT_CA_KEY)");
	if (created)
		att_log_info(PKI, "Enrollment CA generated (serial=%s)", att_ca_serial(s->ca));
	else
		att_log_info(PKI, "Enrollment CA loaded from %s (serial=%s)", cfg->enrollment_ca_dir, att_ca_serial(s->ca));
	if (!att_ca_in_hsm(s->ca) && strcmp(att_ca_algorithm(s->ca), cfg->enrollment_ca_algorithm) != 0)
		att_log_warning(PKI, "Enrollment CA in %s is %s but ITL_ENROLLMENT_CA_ALGORITHM=%s: remove the CA files to rotate",
				cfg->enrollment_ca_dir, att_ca_algorithm(s->ca), cfg->enrollment_ca_algorithm);
	s->svc.ca = s->ca;
	return 0;
}

static int open_vault(struct att_service *s)
{
	char err[256] = "";

	if (att_vault_open(s->cfg, &s->vault, err, sizeof(err)) < 0) {
		att_log_error(LOG, "%s", err[0] ? err : "cannot open the secret vault");
		return -1;
	}
	if (s->vault)
		att_log_info(LOG, "Secret vault enabled (master key id %s)", att_vault_key_id(s->vault));
	else
		att_log_info(LOG, "Secret vault disabled: no ITL_SHARED_SECRET_MASTER_KEY (its endpoints answer 503)");
	s->svc.vault = s->vault;
	return 0;
}

static int open_auto_approval(struct att_service *s)
{
	char err[512] = "";

	if (att_auto_rules_load(s->cfg, &s->auto_rules, err, sizeof(err)) < 0) {
		att_log_error(LOG, "%s", err[0] ? err : "cannot load the auto-approval rules");
		return -1;
	}
	if (s->auto_rules)
		att_log_info(LOG, "Auto-approval: %zu rule(s) from %s", att_auto_rules_count(s->auto_rules),
			     s->cfg->auto_approve_rules_file);
	if (s->cfg->auto_approve_webhook_url[0])
		att_log_info(LOG, "Auto-approval: decision webhook configured");
	s->svc.auto_rules = s->auto_rules;
	return 0;
}

static int open_ek_trust(struct att_service *s)
{
	const struct att_config *cfg = s->cfg;
	char err[1024] = "";
	int nroots = 0, ninter = 0;

	if (!cfg->tpm_verify_ca)
		return 0;
	if (att_ek_trust_load(cfg->tpm_ca_bundle_dir, &s->trust, &nroots, &ninter, err, sizeof(err)) < 0) {
		att_log_error(LOG, "%s", err);
		return -1;
	}
	att_log_info(PKI, "Loaded %d TPM manufacturer root(s) and %d intermediate(s) from %s", nroots, ninter,
		     cfg->tpm_ca_bundle_dir);
	if (nroots == 0)
		att_log_warning(PKI, "ITL_TPM_VERIFY_CA is on but %s holds no root certificate: no EK chain can verify%s",
				cfg->tpm_ca_bundle_dir, cfg->tpm_verify_ca_strict ? " and every new EK is refused" : "");
	s->svc.ek_trust = s->trust;
	return 0;
}

static int open_oidc(struct att_service *s)
{
	const struct att_config *cfg = s->cfg;
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

	if (!(cfg->oidc_enabled && cfg->oidc_issuer[0])) {
		if (cfg->oidc_issuer[0])
			att_log_warning(LOG, "ITL_OIDC_ENABLED=false: OIDC bearer tokens are not accepted (issuer %s ignored)",
					cfg->oidc_issuer);
		return 0;
	}
	if (att_config_parse_list(cfg->oidc_audience, &s->oidc_aud) < 0 || s->oidc_aud.n == 0) {
		att_log_error(LOG, "invalid configuration: ITL_OIDC_AUDIENCE must name at least one audience");
		return -1;
	}
	if (cfg->oidc_algorithms.n == 0) {
		att_log_error(LOG, "invalid configuration: ITL_OIDC_ALGORITHMS is empty");
		return -1;
	}
	oc.audiences = (const char *const *)s->oidc_aud.items;
	oc.naudiences = s->oidc_aud.n;
	if (att_oidc_new(&oc, &s->oidc, err, sizeof(err)) < 0) {
		att_log_error(LOG, "invalid configuration: %s", err);
		return -1;
	}
	if (!cfg->oidc_operator_role[0])
		att_log_warning(LOG, "ITL_OIDC_OPERATOR_ROLE is empty: every valid token of %s is an operator",
				cfg->oidc_issuer);
	if (att_oidc_prefetch(s->oidc, err, sizeof(err)) < 0)
		att_log_warning(LOG, "OIDC provider %s not reachable at start-up (%s); bearer tokens get 503 until it is",
				cfg->oidc_issuer, err);
	att_log_info(LOG, "OIDC operator authentication: issuer %s, audience %s, role %s", cfg->oidc_issuer,
		     cfg->oidc_audience, cfg->oidc_operator_role[0] ? cfg->oidc_operator_role : "(none)");
	s->svc.oidc = s->oidc;
	return 0;
}

/* Extensions: load, migrate, and (unless migrating only) their routes. */
static int open_extensions(struct att_service *s, bool migrate_only)
{
	struct att_route *routes = NULL;
	size_t n = 0;
	char err[1024] = "";
	int r;

	s->extensions_loaded = true;
	r = att_ext_load_all(&s->svc, err, sizeof(err));
	if (r == 0)
		r = att_ext_migrate(s->db, err, sizeof(err));
	if (r == 0 && !migrate_only) {
		r = att_ext_routes(&routes, &n);
		if (r == 0)
			r = att_router_build(routes, n, err, sizeof(err));
		free(routes);
		s->routes_built = r == 0;
	}
	if (r < 0) {
		att_log_error(LOG, "%s", err[0] ? err : att_strerror(r));
		return -1;
	}
	return 0;
}

int att_service_open(struct att_service *s, struct att_config *cfg, bool migrate_only)
{
	unsigned threads = cfg->threads ? (unsigned)cfg->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);

	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->svc.cfg = cfg;
	if (threads == 0)
		threads = 2;
	if (open_db(s, cfg->db_pool_size ? (unsigned)cfg->db_pool_size
						: threads + 3 + (unsigned)cfg->event_partitions) < 0)
		return -1;
	if (migrate_only)
		return open_extensions(s, true);
	if (open_ca(s) < 0)
		return -1;
	if (!cfg->admin_token[0] && !cfg->break_glass_token[0] && !(cfg->oidc_enabled && cfg->oidc_issuer[0]))
		att_log_warning(LOG, "No operator authentication configured (ITL_OIDC_ISSUER, ITL_ADMIN_TOKEN, BREAK_GLASS_TOKEN): operator endpoints answer 503");
	if (cfg->high_assurance && cfg->trusted_proxies.n == 0)
		att_log_warning(LOG, "ITL_HIGH_ASSURANCE=true but ITL_TRUSTED_PROXIES is empty: X-Forwarded-Proto is trusted from nobody and every request but /healthz is refused");
	if (open_vault(s) < 0 || open_auto_approval(s) < 0 || open_ek_trust(s) < 0 || open_oidc(s) < 0)
		return -1;
	return open_extensions(s, false);
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

/* systemd (Type=notify): READY=1 once connections are accepted, and the
 * watchdog when WatchdogSec= is set. */
static int notify_ready(struct att_service *s)
{
	char msg[256];
	uint64_t usec = att_notify_watchdog_usec();

	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=listening on %s\nMAINPID=%ld", att_server_address(s->srv),
		 (long)getpid());
	if (att_notify(msg) < 0) {
		att_log_error(LOG, "cannot send READY=1 to $NOTIFY_SOCKET (%s)", getenv("NOTIFY_SOCKET"));
		return -1;
	}
	if (att_notify_watchdog_start(att_server_address(s->srv), usec, &s->watchdog) < 0) {
		att_log_error(LOG, "cannot start the systemd watchdog thread");
		return -1;
	}
	if (s->watchdog)
		att_log_info(LOG, "systemd watchdog: every %llu ms", (unsigned long long)(usec / 2000));
	return 0;
}

static int sweep_fn(void *ctx, const char *holder)
{
	struct att_service *s = ctx;
	int r = att_sweep_run(s->db, holder), h;

	if (r >= 0 && (h = att_heartbeat_sweep(s->db, s->cfg->heartbeat_missed_seconds)) > 0) {
		att_log_info(LOG, "%d machine(s) missed their heartbeat", h);
		att_worker_kick(s->events);
	}
	return r;
}

static int auto_approve_fn(void *ctx, const char *holder)
{
	(void)holder;
	return att_auto_webhook_run(ctx);
}

/* Periodic checkpoint: only when the log grew since the newest one. */
static int checkpoint_fn(void *ctx, const char *holder)
{
	const struct att_svc *svc = ctx;
	struct att_checkpoint_signer sg;
	struct att_dbc *c;
	char issuer[160], why[200];
	bool issued = false;
	int r = att_api_checkpoint_signer(svc, &sg);

	if (r < 0)
		return r;
	c = att_db_acquire(svc->db);
	if (!c)
		return ATT_E_DB;
	snprintf(issuer, sizeof(issuer), "attestd:%s", holder);
	r = att_checkpoint_issue(c, &sg, issuer, true, NULL, &issued, why, sizeof(why));
	if (r == ATT_E_CONFLICT) {
		static char said[200];	/* only this worker's thread runs here */

		if (strcmp(said, why) != 0)
			att_log_error("attestd.audit", "Not signing an audit checkpoint: %s", why);
		snprintf(said, sizeof(said), "%s", why);
	}
	if (r == 0 && svc->cfg->audit_tsa_url[0]) {
		static bool tsa_failing;	/* only this worker's thread runs here */
		char err[300] = "";
		int n = att_checkpoint_timestamp_pending(c, svc->cfg->audit_tsa_url, 10, 8, err, sizeof(err));

		if (n < 0 && !tsa_failing)
			att_log_warning("attestd.audit", "checkpoint timestamp: %s", err);
		else if (n > 0)
			att_log_info("attestd.audit", "%d audit checkpoint(s) timestamped by %s", n, svc->cfg->audit_tsa_url);
		tsa_failing = n < 0;
	}
	att_db_release(svc->db, c);
	return r < 0 ? r : issued;
}

/* The fan-out worker: new outbox events become deliveries, then the
 * partition workers are woken. */
static int events_fn(void *ctx, const char *holder)
{
	struct att_service *s = ctx;
	int r;

	int total = 0;

	(void)holder;
	/* while there is a backlog: fan out and wake the deliverers, batch after batch */
	for (int round = 0; round < 20; round++) {
		r = att_ext_fanout(&s->svc);
		if (r <= 0)
			break;
		total += r;
		for (size_t i = 0; i < s->nparts; i++)
			att_worker_kick(s->part_workers[i]);
		if (r < ATT_EXT_FANOUT_BATCH)
			break;
	}
	return total > 0 ? total : r;
}

static int deliver_fn(void *ctx, const char *holder)
{
	return att_ext_deliver(ctx, holder);
}

static void start_event_workers(struct att_service *s)
{
	const struct att_config *cfg = s->cfg;
	struct att_worker_conf events = { "events", cfg->event_poll_ms, events_fn, s, NULL };
	size_t n = (size_t)cfg->event_partitions;

	if (!att_ext_have_hooks())
		return;
	s->parts = calloc(n, sizeof(*s->parts));
	s->part_workers = calloc(n, sizeof(*s->part_workers));
	if (!s->parts || !s->part_workers) {
		att_log_warning(LOG, "cannot start the event workers: out of memory");
		return;
	}
	s->nparts = n;
	for (size_t i = 0; i < n; i++) {
		struct att_ext_partition *p = &s->parts[i];
		struct att_worker_conf w = { p->lease, cfg->event_poll_ms, deliver_fn, p, NULL };

		p->svc = &s->svc;
		p->lo = (unsigned)(i * ATT_EVENT_SLOTS / n);
		p->hi = (unsigned)((i + 1) * ATT_EVENT_SLOTS / n);
		snprintf(p->lease, sizeof(p->lease), "events.%zu", i);
		if (att_worker_start(s->db, &w, &s->part_workers[i]) < 0)
			att_log_warning(LOG, "cannot start the event worker %s", p->lease);
	}
	if (att_worker_start(s->db, &events, &s->events) < 0)
		att_log_warning(LOG, "cannot start the event fan-out worker");
}

static void stop_event_workers(struct att_service *s)
{
	att_worker_stop(s->events);
	s->events = NULL;
	for (size_t i = 0; i < s->nparts; i++) {
		att_worker_stop(s->part_workers[i]);
		att_ext_partition_release(&s->parts[i]);
	}
	free(s->parts);
	free(s->part_workers);
	s->parts = NULL;
	s->part_workers = NULL;
	s->nparts = 0;
}

int att_service_start(struct att_service *s, const char *ready_file)
{
	const struct att_config *cfg = s->cfg;
	unsigned threads = cfg->threads ? (unsigned)cfg->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	struct att_worker_conf sweep = { "sweep", cfg->sweep_interval_seconds * 1000, sweep_fn, s,
					 "Removed %d expired nonces and config tokens" };
	struct att_worker_conf autoapp = { "auto-approve", 1000, auto_approve_fn, &s->svc,
					   "Auto-approval webhook decided %d machine(s)" };
	struct att_worker_conf checkpoints = { "audit-checkpoint", cfg->audit_checkpoint_interval_seconds * 1000,
					       checkpoint_fn, &s->svc, "Signed audit checkpoint issued (%d)" };
	char err[1024] = "";

	if (att_ext_start_all(err, sizeof(err)) < 0) {
		att_log_error(LOG, "%s", err);
		return -1;
	}
	start_event_workers(s);
	if (att_worker_start(s->db, &sweep, &s->sweeper) < 0)
		att_log_warning(LOG, "cannot start the sweep worker");
	if (att_factory_start(&s->svc) < 0)
		att_log_warning(LOG, "cannot start the Image Factory worker");
	if (cfg->audit_checkpoint_interval_seconds > 0 && att_worker_start(s->db, &checkpoints, &s->checkpointer) < 0)
		att_log_warning(LOG, "cannot start the audit checkpoint worker");
	if (cfg->auto_approve_webhook_url[0] && att_worker_start(s->db, &autoapp, &s->auto_approve) < 0)
		att_log_warning(LOG, "cannot start the auto-approval webhook worker");
	if (att_server_start(&s->svc, cfg->listen, threads ? threads : 2, &s->srv, err, sizeof(err)) < 0) {
		att_log_error(LOG, "%s", err);
		return -1;
	}
	att_log_info(LOG, "attestd %s listening on %s (threads=%u, db=%s)", ATT_VERSION, att_server_address(s->srv),
		     threads ? threads : 2, att_db_backend(s->db));
	if (ready_file && write_ready_file(ready_file, att_server_address(s->srv)) < 0) {
		att_log_error(LOG, "cannot write --ready-file %s: %s", ready_file, strerror(errno));
		return -1;
	}
	return notify_ready(s);
}

void att_service_close(struct att_service *s)
{
	if (s->srv)
		(void)att_notify("STOPPING=1");
	att_notify_watchdog_stop(s->watchdog);
	att_server_stop(s->srv);
	att_worker_stop(s->auto_approve);
	att_factory_stop();
	att_worker_stop(s->checkpointer);
	att_worker_stop(s->sweeper);
	s->sweeper = NULL;
	stop_event_workers(s);
	if (s->extensions_loaded)
		att_ext_unload_all();
	if (s->routes_built)
		att_router_free();
	att_ca_free(s->ca);
	att_vault_free(s->vault);
	att_auto_rules_free(s->auto_rules);
	att_ek_trust_free(s->trust);
	att_oidc_free(s->oidc);
	att_strlist_release(&s->oidc_aud);
	att_db_close(s->db);
	memset(s, 0, sizeof(*s));
}
