#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <unistd.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ek.h"
#include "db/db.h"
#include "machine/machine.h"
#include "obs/log.h"

#define NOW ((time_t)1795000000)

struct fx {
	struct att_config cfg;
	struct att_db *db;
	struct att_svc svc;
	char path[128];
	struct att_ek ek;
	char *ek_b64;
};

static const char *noenv(const char *n, void *ud)
{
	(void)ud;
	if (strcmp(n, "ITL_CONFIG_TOKEN_TTL_SECONDS") == 0)
		return "60";
	return NULL;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char url[256], err[256], path[1024];
	FILE *fp;
	size_t n;

	att_log_setup(ATT_LOG_ERROR, ATT_LOG_TEXT, 2);
	assert_int_equal(att_config_load(&f->cfg, noenv, NULL, err, sizeof(err)), 0);
	snprintf(f->path, sizeof(f->path), "/tmp/test-machine-%d.db", (int)getpid());
	unlink(f->path);
	snprintf(url, sizeof(url), "sqlite:///%s", f->path);
	assert_int_equal(att_db_open(url, 2, &f->db, err, sizeof(err)), 0);
	assert_int_equal(att_db_migrate(f->db, NULL, err, sizeof(err)), 0);
	f->svc.cfg = &f->cfg;
	f->svc.db = f->db;
	snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/ek/base64-pem.txt", SRCDIR);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	f->ek_b64 = calloc(1, 8192);
	n = fread(f->ek_b64, 1, 8191, fp);
	fclose(fp);
	assert_int_equal(att_ek_parse(f->ek_b64, n, "cert", NOW, &f->ek, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[160];

	att_db_close(f->db);
	att_config_release(&f->cfg);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	free(f->ek_b64);
	free(f);
	return 0;
}

static const struct att_actor OP = { "alice", true, "127.0.0.1", NULL };
static const struct att_actor NODE = { "machine", false, "127.0.0.2", NULL };

static char *reg(struct fx *f, const struct att_actor *who, const char *want_status)
{
	struct att_node_claims cl = { .ek_b64 = f->ek_b64, .ek_source = "cert" };
	struct att_node_result res;
	char err[256], *id;

	assert_int_equal(att_machine_register(&f->svc, &f->ek, &cl, who, false, &res, err, sizeof(err)), 0);
	assert_string_equal(M(&res.m, STATUS), want_status);
	id = att_strdup(M(&res.m, MACHINE_ID));
	att_node_result_release(&res);
	return id;
}

static int64_t audit_count(struct fx *f)
{
	struct att_dbc *c = att_db_acquire(f->db);
	struct att_stmt *s;
	int64_t n = -1;

	assert_int_equal(att_dbc_query(c, &s, "SELECT COUNT(*) FROM audit_log", ""), 0);
	if (att_stmt_next(s) == 1)
		n = att_stmt_int(s, 0);
	att_stmt_done(s);
	att_db_release(f->db, c);
	return n;
}

static void test_lifecycle_and_invalid_transitions(void **state)
{
	struct fx *f = *state;
	struct att_approval a = { "worker-app", "w-1", "10.0.0.9/32", "rack 3" };
	struct att_machine m;
	struct att_node_result res;
	struct att_node_claims cl = { .ek_b64 = f->ek_b64, .ek_source = "cert" };
	char err[256];
	char *id = reg(f, &NODE, "pending_approval");
	int64_t n;

	/* attest never promotes pending_approval */
	assert_int_equal(att_machine_attest(&f->svc, &f->ek, &cl, &NODE, &res, err, sizeof(err)), 0);
	assert_string_equal(res.status, "pending_approval");
	assert_string_equal(res.action, "none");
	assert_string_equal(res.token, "");
	att_node_result_release(&res);
	/* lock/unlock are not valid from pending_approval */
	assert_int_equal(att_machine_lock(&f->svc, id, NULL, &OP, &m, err, sizeof(err)), ATT_E_CONFLICT);
	assert_non_null(strstr(err, "'pending_approval'"));
	assert_int_equal(att_machine_unlock(&f->svc, id, NULL, &OP, &m, err, sizeof(err)), ATT_E_CONFLICT);
	assert_string_equal(err + strlen(err) - strlen("is not locked (status=pending_approval)"),
			    "is not locked (status=pending_approval)");
	n = audit_count(f);
	assert_int_equal(att_machine_approve(&f->svc, id, &a, &OP, &m, NULL, err, sizeof(err)), 0);
	assert_string_equal(M(&m, STATUS), "registered");
	assert_string_equal(M(&m, HOSTNAME), "w-1");
	att_machine_release(&m);
	assert_int_equal(audit_count(f), n + 1);
	/* lock from registered, unlock restores registered (not attested) */
	assert_int_equal(att_machine_lock(&f->svc, id, "maint", &OP, &m, err, sizeof(err)), 0);
	assert_string_equal(M(&m, LOCKED_FROM), "registered");
	att_machine_release(&m);
	assert_int_equal(att_machine_lock(&f->svc, id, NULL, &OP, &m, err, sizeof(err)), ATT_E_CONFLICT);
	assert_int_equal(att_machine_approve(&f->svc, id, &a, &OP, &m, NULL, err, sizeof(err)), ATT_E_CONFLICT);
	assert_non_null(strstr(err, "state 'locked'"));
	assert_int_equal(att_machine_unlock(&f->svc, id, NULL, &OP, &m, err, sizeof(err)), 0);
	assert_string_equal(M(&m, STATUS), "registered");
	att_machine_release(&m);
	/* attest: registered -> attested with a token */
	assert_int_equal(att_machine_attest(&f->svc, &f->ek, &cl, &NODE, &res, err, sizeof(err)), 0);
	assert_string_equal(res.status, "attested");
	assert_string_equal(res.action, "apply-config");
	assert_int_equal(strlen(res.token), 43);
	{
		struct att_machine tm;
		bool refetch = true;

		assert_int_equal(att_config_token_lookup(&f->svc, res.token, &tm, err, sizeof(err)), 0);
		assert_string_equal(M(&tm, MACHINE_ID), id);
		assert_int_equal(att_config_token_record_fetch(&f->svc, res.token, &tm, &NODE, &refetch, err, sizeof(err)), 0);
		assert_false(refetch);
		assert_int_equal(att_config_token_record_fetch(&f->svc, res.token, &tm, &NODE, &refetch, err, sizeof(err)), 0);
		assert_true(refetch);
		att_machine_release(&tm);
	}
	{
		char tok[64];

		snprintf(tok, sizeof(tok), "%s", res.token);
		att_node_result_release(&res);
		/* a delivered config makes the poll read-only */
		n = audit_count(f);
		assert_int_equal(att_machine_attest(&f->svc, &f->ek, &cl, &NODE, &res, err, sizeof(err)), 0);
		assert_string_equal(res.status, "already_attested");
		att_node_result_release(&res);
		assert_int_equal(audit_count(f), n);
		/* lock invalidates the token */
		assert_int_equal(att_machine_lock(&f->svc, id, NULL, &OP, &m, err, sizeof(err)), 0);
		att_machine_release(&m);
		assert_int_equal(att_config_token_lookup(&f->svc, tok, &m, err, sizeof(err)), ATT_E_NOTFOUND);
	}
	assert_int_equal(att_machine_attest(&f->svc, &f->ek, &cl, &NODE, &res, err, sizeof(err)), 0);
	assert_string_equal(res.action, "lock");
	att_node_result_release(&res);
	assert_int_equal(att_machine_unlock(&f->svc, id, NULL, &OP, &m, err, sizeof(err)), 0);
	assert_string_equal(M(&m, STATUS), "attested");
	att_machine_release(&m);
	/* revoke with wipe: delivered once */
	assert_int_equal(att_machine_revoke(&f->svc, id, true, "incident", &OP, &m, err, sizeof(err)), 0);
	assert_true(m.wipe_pending);
	att_machine_release(&m);
	assert_int_equal(att_machine_revoke(&f->svc, id, false, NULL, &OP, &m, err, sizeof(err)), ATT_E_CONFLICT);
	assert_int_equal(att_machine_attest(&f->svc, &f->ek, &cl, &NODE, &res, err, sizeof(err)), 0);
	assert_string_equal(res.action, "wipe");
	att_node_result_release(&res);
	assert_int_equal(att_machine_attest(&f->svc, &f->ek, &cl, &NODE, &res, err, sizeof(err)), 0);
	assert_string_equal(res.status, "revoked");
	assert_string_equal(res.action, "none");
	att_node_result_release(&res);
	/* the revoked EK cannot re-register */
	{
		struct att_node_result rr;

		assert_int_equal(att_machine_register(&f->svc, &f->ek, &cl, &OP, false, &rr, err, sizeof(err)), ATT_E_CONFLICT);
		assert_non_null(strstr(err, "revoked"));
	}
	assert_int_equal(att_machine_approve(&f->svc, "nope", &a, &OP, &m, NULL, err, sizeof(err)), ATT_E_NOTFOUND);
	assert_string_equal(err, "Machine nope not found");
	{
		struct att_dbc *c = att_db_acquire(f->db);
		struct att_audit_verify v;

		assert_int_equal(att_audit_verify(c, &v), 0);
		assert_true(v.valid);
		att_db_release(f->db, c);
	}
	free(id);
}

static void test_hostname_and_ip_unique_among_live_machines(void **state)
{
	struct fx *f = *state;
	struct att_approval a = { "worker-app", "dup-host", "10.0.0.1/32", NULL };
	struct att_receipt rc = { .ek_fingerprint = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", .role = "worker-app" };
	struct att_machine m;
	char err[256], *id1 = reg(f, &OP, "registered"), *id2;

	assert_int_equal(att_machine_import(&f->svc, &rc, &OP, &m, err, sizeof(err)), 0);
	id2 = att_strdup(M(&m, MACHINE_ID));
	att_machine_release(&m);
	assert_int_equal(att_machine_approve(&f->svc, id1, &a, &OP, &m, NULL, err, sizeof(err)), 0);
	att_machine_release(&m);
	assert_int_equal(att_machine_approve(&f->svc, id2, &a, &OP, &m, NULL, err, sizeof(err)), ATT_E_CONFLICT);
	assert_non_null(strstr(err, "hostname 'dup-host' is already assigned to machine"));
	/* hardware replacement: revoke the old one, the name is free again */
	assert_int_equal(att_machine_revoke(&f->svc, id1, false, "hardware failure", &OP, &m, err, sizeof(err)), 0);
	att_machine_release(&m);
	assert_int_equal(att_machine_approve(&f->svc, id2, &a, &OP, &m, NULL, err, sizeof(err)), 0);
	att_machine_release(&m);
	/* same receipt twice is a conflict */
	assert_int_equal(att_machine_import(&f->svc, &rc, &OP, &m, err, sizeof(err)), ATT_E_CONFLICT);
	free(id1);
	free(id2);
}

static void test_import_binds_ek_on_first_contact(void **state)
{
	struct fx *f = *state;
	struct att_receipt rc = { .ek_fingerprint = f->ek.fp_agent, .role = "controlplane", .machine_id = "receipt-1" };
	struct att_node_claims cl = { .ek_b64 = f->ek_b64, .ek_source = "cert" };
	struct att_node_result res;
	struct att_machine m;
	char err[256];

	assert_int_equal(att_machine_import(&f->svc, &rc, &OP, &m, err, sizeof(err)), 0);
	assert_string_equal(M(&m, STATUS), "registered");
	assert_null(M(&m, EK_FINGERPRINT));
	att_machine_release(&m);
	assert_int_equal(att_machine_attest(&f->svc, &f->ek, &cl, &NODE, &res, err, sizeof(err)), 0);
	assert_string_equal(M(&res.m, MACHINE_ID), "receipt-1");
	assert_string_equal(M(&res.m, EK_FINGERPRINT), f->ek.fp);
	assert_string_equal(res.status, "attested");
	att_node_result_release(&res);
}

static void test_nonces_single_use(void **state)
{
	struct fx *f = *state;
	char id[65], id2[65], nonce[48], err[256];
	uint8_t raw[32], raw2[32], *want = NULL;
	size_t wantlen = 0;
	int64_t exp;

	assert_int_equal(att_nonce_issue(&f->svc, id, nonce, &exp, err, sizeof(err)), 0);
	assert_int_equal(strlen(id), 64);
	assert_int_equal(att_b64_decode(nonce, strlen(nonce), &want, &wantlen), 0);
	assert_int_equal(wantlen, 32);
	assert_int_equal(att_nonce_consume(&f->svc, id, NULL, raw, err, sizeof(err)), 0);
	assert_memory_equal(raw, want, 32);	/* the nonce is derived from the id */
	free(want);
	assert_int_equal(att_nonce_consume(&f->svc, id, NULL, raw, err, sizeof(err)), ATT_E_CONFLICT);
	assert_string_equal(err, "Attestation nonce has already been used — replay detected");
	assert_int_equal(att_nonce_consume(&f->svc, "00000000000000000000000000000000", NULL, raw, err, sizeof(err)), ATT_E_INVAL);
	assert_int_equal(att_nonce_consume(&f->svc, "zz", NULL, raw, err, sizeof(err)), ATT_E_INVAL);
	/* the same challenge spelled in uppercase is not a second one */
	for (size_t i = 0; i < 64; i++)
		id2[i] = (char)(id[i] >= 'a' ? id[i] - 'a' + 'A' : id[i]);
	id2[64] = '\0';
	assert_int_equal(att_nonce_consume(&f->svc, id2, NULL, raw2, err, sizeof(err)), ATT_E_INVAL);
	/* a forged tag or an altered expiry is unknown */
	assert_int_equal(att_nonce_issue(&f->svc, id2, nonce, &exp, err, sizeof(err)), 0);
	id2[63] = id2[63] == '0' ? '1' : '0';
	assert_int_equal(att_nonce_consume(&f->svc, id2, NULL, raw2, err, sizeof(err)), ATT_E_INVAL);
	id2[63] = id2[63] == '0' ? '1' : '0';
	id2[15] = id2[15] == 'f' ? 'e' : 'f';
	assert_int_equal(att_nonce_consume(&f->svc, id2, NULL, raw2, err, sizeof(err)), ATT_E_INVAL);
	/* another key does not accept this service's challenges */
	f->svc.nonce_key[0] ^= 1;
	assert_int_equal(att_nonce_issue(&f->svc, id2, nonce, &exp, err, sizeof(err)), 0);
	f->svc.nonce_key[0] ^= 1;
	assert_int_equal(att_nonce_consume(&f->svc, id2, NULL, raw2, err, sizeof(err)), ATT_E_INVAL);
	/* an expired challenge: 410 */
	f->cfg.nonce_ttl_seconds = -5;
	assert_int_equal(att_nonce_issue(&f->svc, id2, nonce, &exp, err, sizeof(err)), 0);
	f->cfg.nonce_ttl_seconds = 60;
	assert_int_equal(att_nonce_consume(&f->svc, id2, NULL, raw2, err, sizeof(err)), ATT_E_GONE);
	/* issuing stores nothing */
	{
		struct att_dbc *c = att_db_acquire(f->db);
		struct att_stmt *s;

		assert_int_equal(att_dbc_query(c, &s, "SELECT COUNT(*) FROM nonces", ""), 0);
		assert_int_equal(att_stmt_next(s), 1);
		assert_int_equal(att_stmt_int(s, 0), 1);
		att_stmt_done(s);
		att_db_release(f->db, c);
	}
}

static void test_validators(void **state)
{
	char out[64];
	(void)state;
	assert_true(att_valid_hostname("k8s-worker-03"));
	assert_true(att_valid_hostname("a.b.example"));
	assert_false(att_valid_hostname("-bad"));
	assert_false(att_valid_hostname("bad-"));
	assert_false(att_valid_hostname("a..b"));
	assert_false(att_valid_hostname("under_score"));
	assert_false(att_valid_hostname(""));
	assert_true(att_normalize_cidr("10.0.1.13/24", out));
	assert_string_equal(out, "10.0.1.13/24");
	assert_true(att_normalize_cidr("10.0.1.13", out));
	assert_string_equal(out, "10.0.1.13/32");
	assert_true(att_normalize_cidr("2001:DB8::1/64", out));
	assert_string_equal(out, "2001:db8::1/64");
	assert_true(att_normalize_cidr("::ffff:10.0.0.5", out));	/* IPv4-mapped: the IPv4 address */
	assert_string_equal(out, "10.0.0.5/32");
	assert_true(att_normalize_cidr("::FFFF:10.0.0.5/120", out));
	assert_string_equal(out, "10.0.0.5/24");
	assert_true(att_normalize_cidr("::ffff:10.0.0.5/64", out));	/* wider than the mapped range: stays IPv6 */
	assert_string_equal(out, "::ffff:10.0.0.5/64");
	assert_false(att_normalize_cidr("10.0.1.300/24", out));
	assert_false(att_normalize_cidr("10.0.1.1/33", out));
	assert_false(att_normalize_cidr("10.0.1.1/", out));
	assert_false(att_normalize_cidr("host", out));
	assert_true(att_normalize_mac("52-54-00-AA-bb-01", out));
	assert_string_equal(out, "52:54:00:aa:bb:01");
	assert_false(att_normalize_mac("52:54:00:aa:bb", out));
	assert_false(att_normalize_mac("52:54:00:aa:bb:zz", out));
	assert_true(att_valid_fingerprint("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_false(att_valid_fingerprint("abc"));
	assert_true(att_valid_cluster_id("prod-1"));
	assert_false(att_valid_cluster_id("-prod"));
	assert_false(att_valid_cluster_id("Prod"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lifecycle_and_invalid_transitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostname_and_ip_unique_among_live_machines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_binds_ek_on_first_contact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonces_single_use, setup, teardown),
		cmocka_unit_test(test_validators),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
