/* Signed audit checkpoints (src/lib/audit/checkpoint.c) and the database
 * fault wording (att_db_unavailable_detail). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "base/err.h"
#include "base/util.h"
#include "crypto/ca.h"
#include "db/db.h"

struct fixture {
	struct att_db *db;
	struct att_ca *ca;
	struct att_checkpoint_signer sg;
	char *ca_pem;
	char dir[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char url[256], err[256];
	bool created;

	snprintf(f->dir, sizeof(f->dir), "/tmp/test-checkpoint-%d", (int)getpid());
	snprintf(url, sizeof(url), "sqlite:///%s/db/machines.db", f->dir);
	assert_int_equal(att_db_open(url, 2, &f->db, err, sizeof(err)), 0);
	assert_int_equal(att_db_migrate(f->db, NULL, err, sizeof(err)), 0);
	snprintf(url, sizeof(url), "%s/ca", f->dir);
	assert_int_equal(att_ca_init(url, "ecdsa-p384", &f->ca, &created, err, sizeof(err)), 0);
	assert_int_equal(att_ca_report_signer(f->ca, &f->sg.key, &f->sg.cert, &f->sg.ca), 0);
	f->sg.log = "http://attest.test";
	f->ca_pem = att_ca_cert_pem(f->ca);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[200];

	att_db_close(f->db);
	att_ca_free(f->ca);
	free(f->ca_pem);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void append(struct att_db *db, const char *action)
{
	struct att_dbc *c = att_db_acquire(db);

	assert_int_equal(att_dbc_begin(c), 0);
	assert_int_equal(att_audit_append(c, "SYSTEM", action, "m-1", NULL, NULL, NULL, NULL), 0);
	assert_int_equal(att_dbc_commit(c), 0);
	att_db_release(db, c);
}

static void issue(struct fixture *f, bool only_if_changed, struct att_checkpoint *cp, bool *issued)
{
	struct att_dbc *c = att_db_acquire(f->db);
	char err[200];

	assert_int_equal(att_checkpoint_issue(c, &f->sg, "test", only_if_changed, cp, issued, err, sizeof(err)), 0);
	att_db_release(f->db, c);
}

static void test_empty_log(void **state)
{
	struct fixture *f = *state;
	struct att_checkpoint cp = { 0 };
	struct att_checkpoint_claim cl;
	char err[300];
	bool issued;
	json_t *doc;

	issue(f, false, &cp, &issued);
	assert_true(issued);
	assert_int_equal(cp.entries, 0);
	assert_int_equal(cp.head_id, 0);
	assert_string_equal(cp.head_hash, ATT_AUDIT_GENESIS);
	doc = att_checkpoint_json(&cp);
	assert_int_equal(att_checkpoint_verify_doc(doc, f->ca_pem, &cl, err, sizeof(err)), 0);
	assert_true(att_checkpoint_matches(&cl, 0, NULL, err, sizeof(err)));
	json_decref(doc);
	att_checkpoint_release(&cp);
}

static void test_issue_verify_and_compare(void **state)
{
	struct fixture *f = *state;
	struct att_checkpoint cp = { 0 }, got = { 0 };
	struct att_checkpoint_claim cl;
	struct att_audit_verify v;
	struct att_dbc *c;
	char err[300], at2[65], head[65];
	bool issued;
	json_t *doc;

	append(f->db, "one");
	append(f->db, "two");
	issue(f, true, &cp, &issued);
	assert_true(issued);
	assert_int_equal(cp.entries, 2);
	c = att_db_acquire(f->db);
	assert_int_equal(att_audit_verify_probe(c, 2, at2, &v), 0);
	assert_true(v.valid);
	assert_string_equal(cp.head_hash, at2);
	assert_string_equal(cp.head_hash, v.root_hash);
	assert_int_equal(att_checkpoint_get(c, 0, &got), 0);
	assert_int_equal(got.id, cp.id);
	assert_string_equal(got.payload, cp.payload);
	att_checkpoint_release(&got);
	assert_int_equal(att_checkpoint_get(c, 999, &got), ATT_E_NOTFOUND);
	att_db_release(f->db, c);

	/* the payload is what is signed, and says what the fields say */
	doc = att_checkpoint_json(&cp);
	assert_int_equal(att_checkpoint_verify_doc(doc, f->ca_pem, &cl, err, sizeof(err)), 0);
	assert_int_equal(cl.entries, 2);
	assert_string_equal(cl.head_hash, cp.head_hash);
	assert_string_equal(cl.signer, "ITL Audit Report Signing");

	/* unchanged head: nothing new when only_if_changed */
	att_checkpoint_release(&cp);
	issue(f, true, NULL, &issued);
	assert_false(issued);
	append(f->db, "three");
	issue(f, true, NULL, &issued);
	assert_true(issued);

	/* grown log extends it; shorter is truncated; another hash is rewritten */
	c = att_db_acquire(f->db);
	assert_int_equal(att_audit_verify_probe(c, 2, at2, &v), 0);
	att_db_release(f->db, c);
	memcpy(head, v.root_hash, 65);
	assert_true(att_checkpoint_matches(&cl, 3, at2, err, sizeof(err)));
	assert_false(att_checkpoint_matches(&cl, 1, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "log truncated"));
	assert_false(att_checkpoint_matches(&cl, 3, head, err, sizeof(err)));
	assert_non_null(strstr(err, "log rewritten: entry 2"));
	json_decref(doc);
}

static void test_cut_log_not_signed(void **state)
{
	struct fixture *f = *state;
	struct att_dbc *c;
	char err[200];
	bool issued;

	append(f->db, "one");
	append(f->db, "two");
	issue(f, true, NULL, &issued);
	assert_true(issued);
	c = att_db_acquire(f->db);
	/* cut back */
	assert_int_equal(att_dbc_exec(c, "DELETE FROM audit_log WHERE id = 2", ""), 1);
	assert_int_equal(att_checkpoint_issue(c, &f->sg, "t", true, NULL, &issued, err, sizeof(err)), ATT_E_CONFLICT);
	assert_false(issued);
	assert_non_null(strstr(err, "log truncated"));
	att_db_release(f->db, c);
	/* ... and re-grown with other entries */
	append(f->db, "other");
	append(f->db, "more");
	c = att_db_acquire(f->db);
	assert_int_equal(att_checkpoint_issue(c, &f->sg, "t", false, NULL, &issued, err, sizeof(err)), ATT_E_CONFLICT);
	assert_non_null(strstr(err, "log rewritten: entry 2"));
	{
		int64_t n = 0;

		assert_int_equal(att_dbc_query_int(c, "SELECT COUNT(*) FROM audit_checkpoints", &n), 0);
		assert_int_equal(n, 1);	/* only the one before the cut */
	}
	att_db_release(f->db, c);
}

static void test_tampered_or_foreign(void **state)
{
	struct fixture *f = *state;
	struct att_checkpoint cp = { 0 };
	struct att_checkpoint_claim cl;
	struct att_ca *other;
	char err[300], dir[160], *other_pem, *p;
	bool issued, created;
	json_t *doc;

	append(f->db, "one");
	issue(f, false, &cp, &issued);
	doc = att_checkpoint_json(&cp);
	/* another CA */
	snprintf(dir, sizeof(dir), "%s/other-ca", f->dir);
	assert_int_equal(att_ca_init(dir, "ecdsa-p384", &other, &created, err, sizeof(err)), 0);
	other_pem = att_ca_cert_pem(other);
	assert_int_equal(att_checkpoint_verify_doc(doc, other_pem, &cl, err, sizeof(err)), ATT_E_CRYPTO);
	assert_non_null(strstr(err, "signature does not verify"));
	/* an altered payload */
	p = strdup(cp.payload);
	p[strlen("{\"entries\":")] = '7';
	json_object_set_new(doc, "payload", json_string(p));
	assert_int_equal(att_checkpoint_verify_doc(doc, f->ca_pem, &cl, err, sizeof(err)), ATT_E_CRYPTO);
	/* not a checkpoint */
	json_object_set_new(doc, "format", json_string("something/1"));
	assert_int_equal(att_checkpoint_verify_doc(doc, f->ca_pem, &cl, err, sizeof(err)), ATT_E_PARSE);
	assert_int_equal(att_checkpoint_verify_doc(NULL, f->ca_pem, &cl, err, sizeof(err)), ATT_E_PARSE);
	/* a payload of the wrong shape */
	assert_int_equal(att_checkpoint_parse_claim("{\"type\":\"itl-audit-checkpoint\",\"version\":1,\"entries\":-1}", &cl,
						    err, sizeof(err)),
			 ATT_E_PARSE);
	free(p);
	free(other_pem);
	att_ca_free(other);
	json_decref(doc);
	att_checkpoint_release(&cp);
}

static void test_fault_detail(void **state)
{
	(void)state;
	att_db_note_fault(ATT_DB_FAULT_NONE);
	assert_string_equal(att_db_unavailable_detail(), "Database unavailable — try again");
	att_db_note_fault(ATT_DB_FAULT_FULL);
	assert_string_equal(att_db_unavailable_detail(), "Database storage is full — try again later");
	att_db_note_fault(ATT_DB_FAULT_READONLY);
	assert_string_equal(att_db_unavailable_detail(), "Database is read-only — try again later");
	att_db_note_fault(ATT_DB_FAULT_UNREACHABLE);
	assert_string_equal(att_db_unavailable_detail(), "Database unreachable — try again");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_issue_verify_and_compare, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_log_not_signed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered_or_foreign, setup, teardown),
		cmocka_unit_test(test_fault_detail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
