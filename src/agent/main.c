/* main.c - attest-agent: the command line (docs/agent.md).  Options and
 * defaults, where the service URL comes from, logging; the commands are
 * in cmd.c, the work in src/lib/agent/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-cli.h"
#include "agent/cmdline.h"
#include "agent/url.h"
#include "base/err.h"
#include "base/util.h"
#include "obs/log.h"

#define DEFAULT_APPLY "talosctl apply-config --insecure --nodes 127.0.0.1 --file /dev/stdin"
#define DEFAULT_RESET "talosctl reset --graceful=false --reboot --endpoints 127.0.0.1 --nodes 127.0.0.1"

static const char usage[] =
	"usage: attest-agent <command> [options]\n"
	"\n"
	"commands:\n"
	"  register   read the TPM's EK and the hardware identity, POST /api/v1/register,\n"
	"             print the machine id, its state, the ISO URL and the installer image\n"
	"  receipt    write the offline TPM receipt that POST /api/v1/machines/import takes\n"
	"  run        the on-node loop (itl-tpm-register): register, bind an AK, attest with\n"
	"             a quote every --interval, apply the config, obey lock and wipe\n"
	"  status     what the agent knows (from the state directory)\n"
	"  enroll     a client certificate for a key in the TPM, certified by the bound AK\n"
	"             (after `run` attested the machine); written to --file\n"
	"  version    print the version\n"
	"\n"
	"options:\n"
	"  --server URL        the service (else ITL_REG_URL, kernel itl.reg_url=, kernel\n"
	"                      talos.config=<service>/api/v1/config, the state directory)\n"
	"  --ca-file FILE      trust these CAs for https (default: the system store)\n"
	"  --tcti CONF         TPM access, tpm2-tools syntax (default device:/dev/tpmrm0,\n"
	"                      then device:/dev/tpm0; or ITL_TPM_TCTI)\n"
	"  --state-dir DIR     agent state (default /var/lib/itl-tpm)\n"
	"  --role ROLE         desired_role: controlplane|worker-infra|worker-app (else itl.role=)\n"
	"  --token TOKEN       register: the registration token (else ITL_REGISTRATION_TOKEN)\n"
	"  --cluster ID        register/receipt: cluster_id\n"
	"  --agent-identity FILE  register/run: send the agent identity token in FILE (from\n"
	"                      POST /api/v1/agents/attest) for auto-approval by attributes\n"
	"  --ek auto|rsa|ecc   which EK (default auto: RSA-2048, then P-256, then P-384)\n"
	"  --ak-alg ecc|rsa    AK key type (default ecc: P-256 ECDSA-SHA256)\n"
	"  --pcrs SEL          PCRs to quote (default sha256:0-7)\n"
	"  --interval S        run: seconds between polls, +-10% (default 60)\n"
	"  --retry-min S       run: first retry delay after a failure (default 5)\n"
	"  --retry-max S       run: retry delay cap (default 300)\n"
	"  --once              run: one poll, then exit with its result\n"
	"  --max-polls N       run: stop after N polls\n"
	"  --apply-cmd CMD     run: applies the config given on stdin\n"
	"                      (default: " DEFAULT_APPLY ")\n"
	"  --reset-cmd CMD     run: the wipe (default: " DEFAULT_RESET ")\n"
	"  --allow-plaintext   run: accept a plaintext config although the AK is bound\n"
	"  --secrets-dir DIR   run: fetch the machine's secrets (sealed to the TPM) into DIR,\n"
	"                      one 0600 file each, when attested (docs/secrets.md)\n"
	"  --secrets-interval S  run: seconds between secret fetches (default 600)\n"
	"  --timeout S         seconds per HTTP request (default 30)\n"
	"  --cmd-timeout S     seconds the apply/reset command may take (default 300)\n"
	"  --output text|json  register/status output (default text)\n"
	"  --file PATH         receipt: output file (default tpm-receipt.json); enroll: the\n"
	"                      certificate (default STATE-DIR/enrollment.crt, the CA bundle\n"
	"                      next to it as enrollment-ca.crt)\n"
	"  --dump-request FILE enroll: write the request body to FILE instead of sending it\n"
	"  --machine-id ID     receipt: machine id (default: a new UUID)\n"
	"  --cmdline FILE      kernel command line to read (default /proc/cmdline)\n"
	"  --sysfs-root DIR    read DMI and NICs under DIR/sys (default /)\n"
	"  --log-format F      text|json (default text)   --verbose   debug logging\n"
	"\n"
	"exit status: 0 ok, 1 local failure, 2 usage, 3 service unreachable/unavailable,\n"
	"4 refused, 5 revoked\n";

int agent_exit_for(enum att_poll p)
{
	switch (p) {
	case ATT_POLL_OK: return AX_OK;
	case ATT_POLL_RETRY: return AX_UNAVAILABLE;
	case ATT_POLL_REFUSED: return AX_REFUSED;
	case ATT_POLL_STOP: return AX_REVOKED;
	default: return AX_FAILED;
	}
}

static bool parse_seconds(const char *s, double min, double max, double *ret)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	v = strtod(s, &end);
	if (*end || !(v >= min && v <= max))
		return false;
	*ret = v;
	return true;
}

struct raw {
	const char *server, *role, *ek, *pcrs, *apply, *reset, *output, *cmdline, *log_format;
	const char *interval, *retry_min, *retry_max, *max_polls, *timeout, *cmd_timeout, *secrets_interval;
	bool verbose;
};

static int set_opt(struct agent_cli *c, struct raw *w, const char *name, const char *val)
{
	static const struct {
		const char *name;
		size_t off;
		bool in_cli;
	} opts[] = {
		{ "server", offsetof(struct raw, server), false }, { "role", offsetof(struct raw, role), false },
		{ "ek", offsetof(struct raw, ek), false }, { "pcrs", offsetof(struct raw, pcrs), false },
		{ "apply-cmd", offsetof(struct raw, apply), false }, { "reset-cmd", offsetof(struct raw, reset), false },
		{ "output", offsetof(struct raw, output), false }, { "cmdline", offsetof(struct raw, cmdline), false },
		{ "log-format", offsetof(struct raw, log_format), false },
		{ "interval", offsetof(struct raw, interval), false },
		{ "retry-min", offsetof(struct raw, retry_min), false },
		{ "retry-max", offsetof(struct raw, retry_max), false },
		{ "max-polls", offsetof(struct raw, max_polls), false },
		{ "timeout", offsetof(struct raw, timeout), false },
		{ "cmd-timeout", offsetof(struct raw, cmd_timeout), false },
		{ "secrets-interval", offsetof(struct raw, secrets_interval), false },
		{ "secrets-dir", offsetof(struct agent_cli, o.secrets_dir), true },
		{ "ca-file", offsetof(struct agent_cli, o.http.ca_file), true },
		{ "tcti", offsetof(struct agent_cli, o.tcti), true },
		{ "state-dir", offsetof(struct agent_cli, o.state_dir), true },
		{ "ak-alg", offsetof(struct agent_cli, o.ak_alg), true },
		{ "sysfs-root", offsetof(struct agent_cli, o.sysroot), true },
		{ "token", offsetof(struct agent_cli, token), true },
		{ "cluster", offsetof(struct agent_cli, cluster), true },
		{ "file", offsetof(struct agent_cli, file), true },
		{ "machine-id", offsetof(struct agent_cli, machine_id), true },
		{ "dump-request", offsetof(struct agent_cli, dump_request), true },
		{ "agent-identity", offsetof(struct agent_cli, o.agent_identity_file), true },
	};

	for (size_t i = 0; i < ATT_ARRAY_SIZE(opts); i++)
		if (strcmp(opts[i].name, name) == 0) {
			*(const char **)((char *)(opts[i].in_cli ? (void *)c : (void *)w) + opts[i].off) = val;
			return 0;
		}
	return -1;
}

static int parse_args(int argc, char **argv, struct agent_cli *c, struct raw *w)
{
	const char *a = "";

	for (int i = 2; i < argc; i++) {
		const char *eq;

		a = argv[i];
		char name[32];

		if (strncmp(a, "--", 2) != 0)
			goto bad;
		a += 2;
		if (strcmp(a, "once") == 0) {
			c->loop.once = true;
			continue;
		}
		if (strcmp(a, "allow-plaintext") == 0) {
			c->o.allow_plaintext = true;
			continue;
		}
		if (strcmp(a, "verbose") == 0) {
			w->verbose = true;
			continue;
		}
		eq = strchr(a, '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
		if (!eq && i + 1 >= argc)
			goto bad;
		if (set_opt(c, w, name, eq ? eq + 1 : argv[++i]) < 0)
			goto bad;
	}
	return 0;
bad:
	fprintf(stderr, "attest-agent: unknown option or missing value: %s (attest-agent --help)\n", a);
	return -1;
}

/* The kernel command line (empty when unreadable). */
static void read_cmdline(const char *path, char *out, size_t outlen)
{
	FILE *f = fopen(path, "re");
	size_t n = 0;

	if (f) {
		n = fread(out, 1, outlen - 1, f);
		fclose(f);
	}
	out[n] = '\0';
}

/* --server, ITL_REG_URL, itl.reg_url=, talos.config=, the state. */
static int resolve_server(struct agent_cli *c, const struct raw *w, const char *kcl)
{
	char v[ATT_URL_MAX], err[256], from_state[ATT_URL_MAX] = "";
	const char *src = NULL, *val = NULL;
	struct att_agent_state st;

	if (w->server) {
		val = w->server;
		src = "--server";
	} else if (getenv("ITL_REG_URL") && *getenv("ITL_REG_URL")) {
		val = getenv("ITL_REG_URL");
		src = "ITL_REG_URL";
	} else if (att_cmdline_get(kcl, strlen(kcl), "itl.reg_url", v, sizeof(v)) == 1 && v[0]) {
		val = v;
		src = "kernel argument itl.reg_url";
	} else if (att_cmdline_get(kcl, strlen(kcl), "talos.config", v, sizeof(v)) == 1 &&
		   att_url_base_from_talos_config(v, c->o.server) == 0) {
		c->have_server = true;
		att_log_debug("attest-agent", "service %s (from kernel argument talos.config)", c->o.server);
		return 0;
	} else if (att_agent_state_load(c->o.state_dir, &st, err, sizeof(err)) == 0 && st.server[0]) {
		snprintf(from_state, sizeof(from_state), "%s", st.server);
		val = from_state;
		src = "the state directory";
	}
	if (!val)
		return 0;
	if (att_url_base(val, c->o.server, err, sizeof(err)) < 0) {
		fprintf(stderr, "attest-agent: service URL from %s: %s\n", src, err);
		return -1;
	}
	c->have_server = true;
	return 0;
}

static int finish_options(struct agent_cli *c, struct raw *w)
{
	static char kcl[8192], role[64];
	char err[256];
	const char *apply = w->apply ? w->apply : DEFAULT_APPLY, *reset = w->reset ? w->reset : DEFAULT_RESET;
	double d;

	att_log_setup(w->verbose ? ATT_LOG_DEBUG : ATT_LOG_INFO,
		      w->log_format && strcmp(w->log_format, "json") == 0 ? ATT_LOG_JSON : ATT_LOG_TEXT, 2);
	if (w->log_format && strcmp(w->log_format, "json") != 0 && strcmp(w->log_format, "text") != 0)
		return fprintf(stderr, "attest-agent: --log-format must be text or json\n"), -1;
	if (!c->o.state_dir)
		c->o.state_dir = "/var/lib/itl-tpm";
	if (!c->o.tcti && getenv("ITL_TPM_TCTI") && *getenv("ITL_TPM_TCTI"))
		c->o.tcti = getenv("ITL_TPM_TCTI");
	if (!c->token && getenv("ITL_REGISTRATION_TOKEN") && *getenv("ITL_REGISTRATION_TOKEN"))
		c->token = getenv("ITL_REGISTRATION_TOKEN");
	if (!c->o.ak_alg)
		c->o.ak_alg = "ecc";
	if (strcmp(c->o.ak_alg, "ecc") != 0 && strcmp(c->o.ak_alg, "rsa") != 0)
		return fprintf(stderr, "attest-agent: --ak-alg must be ecc or rsa\n"), -1;
	if (!c->o.sysroot)
		c->o.sysroot = "";
	if (!w->ek || strcmp(w->ek, "auto") == 0)
		c->o.ek_pref = ATT_EK_AUTO;
	else if (strcmp(w->ek, "rsa") == 0)
		c->o.ek_pref = ATT_EK_RSA;
	else if (strcmp(w->ek, "ecc") == 0)
		c->o.ek_pref = ATT_EK_ECC;
	else
		return fprintf(stderr, "attest-agent: --ek must be auto, rsa or ecc\n"), -1;
	if (att_pcrsel_parse(w->pcrs ? w->pcrs : "sha256:0-7", &c->o.pcrs, err, sizeof(err)) < 0)
		return fprintf(stderr, "attest-agent: --pcrs: %s\n", err), -1;
	if (att_cmdline_split(apply, &c->o.apply_argv, err, sizeof(err)) < 0)
		return fprintf(stderr, "attest-agent: --apply-cmd: %s\n", err), -1;
	if (att_cmdline_split(reset, &c->o.reset_argv, err, sizeof(err)) < 0)
		return fprintf(stderr, "attest-agent: --reset-cmd: %s\n", err), -1;
	c->json = w->output && strcmp(w->output, "json") == 0;
	if (w->output && !c->json && strcmp(w->output, "text") != 0)
		return fprintf(stderr, "attest-agent: --output must be text or json\n"), -1;
	c->loop.interval = 60;
	c->loop.retry_min = 5;
	c->loop.retry_max = 300;
	if ((w->interval && !parse_seconds(w->interval, 0.05, 86400, &c->loop.interval)) ||
	    (w->retry_min && !parse_seconds(w->retry_min, 0.05, 86400, &c->loop.retry_min)) ||
	    (w->retry_max && !parse_seconds(w->retry_max, 0.05, 86400, &c->loop.retry_max)))
		return fprintf(stderr, "attest-agent: --interval/--retry-min/--retry-max: seconds, 0.05 to 86400\n"), -1;
	if (c->loop.retry_max < c->loop.retry_min)
		return fprintf(stderr, "attest-agent: --retry-max must not be below --retry-min\n"), -1;
	if (w->max_polls) {
		if (!parse_seconds(w->max_polls, 1, 1e9, &d) || d != (double)(uint64_t)d)
			return fprintf(stderr, "attest-agent: --max-polls: a positive integer\n"), -1;
		c->loop.max_polls = (uint64_t)d;
	}
	d = 30;
	if (w->timeout && !parse_seconds(w->timeout, 1, 3600, &d))
		return fprintf(stderr, "attest-agent: --timeout: seconds, 1 to 3600\n"), -1;
	c->o.http.timeout_ms = (int)(d * 1000);
	d = 300;
	if (w->cmd_timeout && !parse_seconds(w->cmd_timeout, 1, 86400, &d))
		return fprintf(stderr, "attest-agent: --cmd-timeout: seconds, 1 to 86400\n"), -1;
	c->o.cmd_timeout = (int)d;
	c->o.secrets_interval = 600;
	if (w->secrets_interval && !parse_seconds(w->secrets_interval, 1, 86400 * 7, &c->o.secrets_interval))
		return fprintf(stderr, "attest-agent: --secrets-interval: seconds, 1 to 604800\n"), -1;
	if (c->o.secrets_dir && c->o.secrets_dir[0] != '/')
		return fprintf(stderr, "attest-agent: --secrets-dir: an absolute path\n"), -1;
	c->o.http.user_agent = "attest-agent/" ATT_VERSION;
	read_cmdline(w->cmdline ? w->cmdline : "/proc/cmdline", kcl, sizeof(kcl));
	if (w->role) {
		c->o.role = w->role;
	} else if (att_cmdline_get(kcl, strlen(kcl), "itl.role", role, sizeof(role)) == 1 && role[0]) {
		c->o.role = role;
	}
	return resolve_server(c, w, kcl);
}

int main(int argc, char **argv)
{
	static struct agent_cli c;
	struct raw w = { 0 };
	const char *cmd = argc > 1 ? argv[1] : "";
	int rc;

	/* tpm2-tss logs to stderr on its own; the agent reports TPM errors */
	setenv("TSS2_LOG", "all+NONE", 0);
	if (argc < 2 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? AX_USAGE : AX_OK;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("attest-agent %s\n", ATT_VERSION);
		return AX_OK;
	}
	if (cmd[0] == '-') {
		fprintf(stderr, "attest-agent: the command comes first: attest-agent <command> [options] (attest-agent --help)\n");
		return AX_USAGE;
	}
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return AX_OK;
		}
	if (parse_args(argc, argv, &c, &w) < 0 || finish_options(&c, &w) < 0)
		return AX_USAGE;
	if (strcmp(cmd, "register") == 0)
		rc = cmd_register(&c);
	else if (strcmp(cmd, "receipt") == 0)
		rc = cmd_receipt(&c);
	else if (strcmp(cmd, "run") == 0)
		rc = cmd_run(&c);
	else if (strcmp(cmd, "status") == 0)
		rc = cmd_status(&c);
	else if (strcmp(cmd, "enroll") == 0)
		rc = cmd_enroll(&c);
	else {
		fprintf(stderr, "attest-agent: unknown command '%s' (attest-agent --help)\n", cmd);
		rc = AX_USAGE;
	}
	free(c.o.apply_argv);
	free(c.o.reset_argv);
	return rc;
}
