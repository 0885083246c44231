/* cmd.c - attest-agent's commands: register, receipt, run, status, enroll. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent-cli.h"
#include "agent/act.h"
#include "agent/answer.h"
#include "agent/enroll.h"
#include "agent/node.h"
#include "base/err.h"
#include "base/util.h"
#include "obs/log.h"

#define LOGR "attest-agent"

static int need_server(const struct agent_cli *c)
{
	if (c->have_server)
		return 0;
	fprintf(stderr, "attest-agent: no service URL: give --server, set ITL_REG_URL, or boot with "
			"itl.reg_url=<url> or talos.config=<url>/api/v1/config\n");
	return -1;
}

static int read_node(struct agent_cli *c, struct att_tpmdev **dev, struct att_agent_node *n)
{
	char err[512];

	if (att_tpmdev_open(c->o.tcti, dev, err, sizeof(err)) < 0 ||
	    att_agent_node_read(*dev, c->o.ek_pref, c->o.sysroot, n, err, sizeof(err)) < 0) {
		att_log_error(LOGR, "TPM: %s", err);
		att_tpmdev_close(*dev);
		*dev = NULL;
		return -1;
	}
	return 0;
}

static const char *status_words(const char *st)
{
	if (strcmp(st, "pending_approval") == 0)
		return "waiting for an operator to approve it";
	if (strcmp(st, "registered") == 0)
		return "approved: boot the machine from the ISO";
	return "already attested";
}

static void print_registration(const struct agent_cli *c, const struct att_agent_node *n,
			       const struct att_answer_register *g)
{
	if (c->json) {
		json_t *o = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s,s:s}", "machine_id", g->machine_id, "status",
				      g->status, "role", g->role[0] ? g->role : NULL, "iso_url",
				      g->iso_url[0] ? g->iso_url : NULL, "installer_image",
				      g->installer_image[0] ? g->installer_image : NULL, "schematic_id",
				      g->schematic_id[0] ? g->schematic_id : NULL, "ek_fingerprint", n->fp, "server",
				      c->o.server);
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
		return;
	}
	printf("\n  Machine registered with %s\n\n", c->o.server);
	printf("    machine id       %s\n", g->machine_id);
	printf("    status           %s (%s)\n", g->status, status_words(g->status));
	if (g->role[0])
		printf("    role             %s\n", g->role);
	printf("    EK               %s, %s\n", n->ek.kind, n->ek_source[0] == 'c' ? "certificate from TPM NV" : "public key (no certificate in the TPM)");
	printf("    EK fingerprint   %.48s\n                     %s\n", n->fp, n->fp + 48);
	printf("    ISO              %s\n", g->iso_url[0] ? g->iso_url : "(none: ask the operator)");
	if (g->installer_image[0])
		printf("    installer image  %s\n", g->installer_image);
	printf("\n  Boot this machine from the ISO above; it attests with its TPM on first boot.\n\n");
}

int cmd_register(struct agent_cli *c)
{
	struct att_tpmdev *dev = NULL;
	struct att_agent_node n;
	struct att_agent a = { .o = &c->o };
	struct att_answer_register g;
	struct att_http_resp r;
	char url[ATT_URL_MAX], err[512], tok[600];
	const char *hdrs[] = { "Accept: application/json", NULL, NULL };
	char *body;
	enum att_poll p;

	if (need_server(c) < 0)
		return AX_USAGE;
	if (read_node(c, &dev, &n) < 0)
		return AX_FAILED;
	att_agent_state_init(&a.st);
	if (c->token) {
		snprintf(tok, sizeof(tok), "X-Registration-Token: %s", c->token);
		hdrs[1] = tok;
	}
	body = att_agent_body_register(&n, c->o.role, c->cluster);
	if (body && c->o.agent_identity_file &&
	    !(body = att_agent_body_add_identity(body, c->o.agent_identity_file, err, sizeof(err)))) {
		att_log_error(LOGR, "register: %s", err);
		p = ATT_POLL_FAILED;
		goto out;
	}
	if (!body || att_url_join(c->o.server, "/api/v1/register", url, sizeof(url)) < 0) {
		p = ATT_POLL_FAILED;
		goto out;
	}
	att_log_info(LOGR, "registering the %s EK (%.16s...) with %s", n.ek.kind, n.fp, c->o.server);
	p = att_agent_call(&a, "POST", url, hdrs, body, ATT_ANSWER_MAX_BODY, &r, "register");
	if (p == ATT_POLL_OK) {
		if (att_answer_register_parse(r.body, r.body_len, &g, err, sizeof(err)) < 0) {
			att_log_error(LOGR, "register: answer refused: %s", err);
			p = ATT_POLL_REFUSED;
		} else {
			att_log_info(LOGR, "registered: machine %s, status %s", g.machine_id, g.status);
			print_registration(c, &n, &g);
		}
	}
	att_http_resp_release(&r);
out:
	att_wipe(tok, sizeof(tok));
	free(body);
	att_agent_node_release(&n);
	att_tpmdev_close(dev);
	return agent_exit_for(p);
}

int cmd_receipt(struct agent_cli *c)
{
	struct att_tpmdev *dev = NULL;
	struct att_agent_node n;
	char mid[37], now[40], err[512], dir[4096];
	const char *file = c->file ? c->file : "tpm-receipt.json", *slash, *base;
	char *json;
	int rc = AX_OK;

	if (c->machine_id) {
		snprintf(mid, sizeof(mid), "%.36s", c->machine_id);
	} else if (att_uuid4(mid) < 0) {
		return AX_FAILED;
	}
	if (read_node(c, &dev, &n) < 0)
		return AX_FAILED;
	att_time_iso_utc(att_now(), now);
	json = att_agent_body_receipt(&n, mid, c->o.role, c->cluster, now);
	slash = strrchr(file, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - file) : 1, slash ? (slash == file ? "/" : file) : ".");
	base = slash ? slash + 1 : file;
	if (!json || att_agent_file_write(dir, base, json, strlen(json), 0644, err, sizeof(err)) < 0) {
		att_log_error(LOGR, "receipt: %s", json ? err : "out of memory");
		rc = AX_FAILED;
	} else {
		att_log_info(LOGR, "TPM receipt for machine %s (%s EK %.16s...) written to %s: import it with POST /api/v1/machines/import",
			     mid, n.ek.kind, n.fp, file);
	}
	free(json);
	att_agent_node_release(&n);
	att_tpmdev_close(dev);
	return rc;
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

int cmd_run(struct agent_cli *c)
{
	struct att_agent a = { .o = &c->o };
	struct sigaction sa = { .sa_handler = on_signal };
	char err[512];
	int lockfd = -1;
	enum att_poll p;

	if (need_server(c) < 0)
		return AX_USAGE;
	if (att_agent_state_dir(c->o.state_dir, err, sizeof(err)) < 0 ||
	    att_agent_state_lock(c->o.state_dir, &lockfd, err, sizeof(err)) < 0 ||
	    att_agent_state_load(c->o.state_dir, &a.st, err, sizeof(err)) < 0) {
		att_log_error(LOGR, "%s", err);
		return AX_FAILED;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	c->loop.stop = &stop_requested;
	if (!c->loop.once)
		att_log_info(LOGR, "attest-agent %s: service %s, state %s, every %g s", ATT_VERSION, c->o.server,
			     c->o.state_dir, c->loop.interval);
	p = att_agent_run(&a, &c->loop);
	att_agent_release(&a);
	close(lockfd);
	return c->loop.once ? agent_exit_for(p) : (p == ATT_POLL_STOP ? AX_REVOKED : AX_OK);
}

static void kv(const char *k, const char *v)
{
	printf("  %-18s %s\n", k, v && *v ? v : "-");
}

int cmd_status(struct agent_cli *c)
{
	struct att_agent_state st;
	char err[512], buf[200];

	if (att_agent_state_load(c->o.state_dir, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "attest-agent: %s\n", err);
		return AX_FAILED;
	}
	if (st.pending_config_url[0])	/* it holds a config token */
		snprintf(st.pending_config_url, sizeof(st.pending_config_url), "(a config is waiting to be applied)");
	if (c->json) {
		char *j = att_agent_state_render(&st);

		printf("%s\n", j ? j : "{}");
		free(j);
		return AX_OK;
	}
	printf("attest-agent state (%s)\n", c->o.state_dir);
	kv("service", st.server);
	kv("machine id", st.machine_id);
	snprintf(buf, sizeof(buf), "%s%s%s", st.status, st.locked ? " (locked: nothing is applied)" : "",
		 st.revoked ? " (revoked: the agent has stopped)" : "");
	kv("state", st.status[0] ? buf : NULL);
	kv("role", st.role);
	kv("hostname", st.hostname);
	snprintf(buf, sizeof(buf), "%s %.32s...", st.ek_kind, st.ek_fingerprint);
	kv("EK", st.ek_fingerprint[0] ? buf : NULL);
	snprintf(buf, sizeof(buf), "yes (name %.24s...)", st.ak_name);
	kv("AK bound", st.ak_bound ? buf : "no");
	kv("last attest", st.last_attest_at);
	snprintf(buf, sizeof(buf), "%s at %s", st.last_action, st.last_action_at);
	kv("last action", st.last_action[0] ? buf : NULL);
	snprintf(buf, sizeof(buf), "sha256 %.16s... at %s", st.config_sha256, st.config_applied_at);
	kv("config applied", st.config_sha256[0] ? buf : NULL);
	kv("pending config", st.pending_config_url[0] ? "yes" : NULL);
	snprintf(buf, sizeof(buf), "%lld", (long long)st.reset_count);
	kv("TPM resetCount", st.reset_count >= 0 ? buf : NULL);
	snprintf(buf, sizeof(buf), "at %s, exit status %d", st.wipe_started_at, st.wipe_exit);
	kv("wipe", st.wipe_started_at[0] ? buf : NULL);
	kv("last error", st.last_error);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)st.polls);
	kv("polls", buf);
	return st.revoked ? AX_REVOKED : AX_OK;
}

/* Write the certificate and the CA bundle (dir/base, dir/enrollment-ca.crt). */
static int write_cert(const struct agent_cli *c, const struct att_agent_cert *ct)
{
	char dir[4096], base[256], err[512];
	const char *file = c->file, *slash;

	if (!file) {
		snprintf(dir, sizeof(dir), "%s", c->o.state_dir);
		snprintf(base, sizeof(base), "enrollment.crt");
	} else {
		slash = strrchr(file, '/');
		snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - file) : 1, slash ? (slash == file ? "/" : file) : ".");
		snprintf(base, sizeof(base), "%s", slash ? slash + 1 : file);
	}
	if (att_agent_file_write(dir, base, ct->cert_pem, strlen(ct->cert_pem), 0644, err, sizeof(err)) < 0 ||
	    att_agent_file_write(dir, "enrollment-ca.crt", ct->ca_pem, strlen(ct->ca_pem), 0644, err, sizeof(err)) < 0) {
		att_log_error(LOGR, "enroll: %s", err);
		return -1;
	}
	printf("%s/%s\n", dir, base);
	return 0;
}

int cmd_enroll(struct agent_cli *c)
{
	struct att_agent a = { .o = &c->o };
	struct att_agent_cert ct;
	char err[512];
	enum att_poll p;
	int rc;

	if (need_server(c) < 0)
		return AX_USAGE;
	if (att_agent_state_load(c->o.state_dir, &a.st, err, sizeof(err)) < 0) {
		att_log_error(LOGR, "%s", err);
		return AX_FAILED;
	}
	p = att_agent_enroll(&a, c->dump_request, &ct);
	rc = agent_exit_for(p);
	if (p == ATT_POLL_OK && !c->dump_request && write_cert(c, &ct) < 0)
		rc = AX_FAILED;
	att_agent_cert_release(&ct);
	att_agent_release(&a);
	return rc;
}
