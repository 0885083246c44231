#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <unistd.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "db/db.h"

/* Vectors computed with CPython 3.11:
 * hashlib.sha256(json.dumps(d, separators=(",",":"), sort_keys=True).encode()).hexdigest() */
static void test_hash_matches_python_reference(void **state)
{
	struct att_audit_entry e = { 0 };
	char h[65], *js;
	(void)state;
	e.action = "approve";
	e.detail = "role=controlplane hostname=cp-01 \xe2\x80\x94 caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ \n\t\x01";
	e.machine_id = "m-1";
	e.new_state = "registered";
	e.operator_cn = "alice";
	e.prev_hash = ATT_AUDIT_GENESIS;
	e.prev_state = "pending_approval";
	e.timestamp = "2026-05-14T17:05:00.123456";
	js = att_audit_canonical_json(&e);
	assert_string_equal(js,
		"{\"action\":\"approve\",\"detail\":\"role=controlplane hostname=cp-01 \\u2014 caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\n\\t\\u0001\","
		"\"machine_id\":\"m-1\",\"new_state\":\"registered\",\"operator_cn\":\"alice\","
		"\"prev_hash\":\"0000000000000000000000000000000000000000000000000000000000000000\","
		"\"prev_state\":\"pending_approval\",\"timestamp\":\"2026-05-14T17:05:00.123456\"}");
	free(js);
	assert_int_equal(att_audit_compute_hash(&e, h), 0);
	assert_string_equal(h, "f35b55e7100aeb5b74bf87020a153594e977eb412d3a251a889929297255f38c");
}

static void test_hash_nulls_are_json_null(void **state)
{
	struct att_audit_entry e = { 0 };
	char h[65];
	(void)state;
	e.action = "lock";
	e.operator_cn = "SYSTEM";
	e.prev_hash = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	e.timestamp = "2026-05-14T17:05:00";
	assert_int_equal(att_audit_compute_hash(&e, h), 0);
	assert_string_equal(h, "0b035c36b982fe4947c33a696bdb15306c86c6c2ff3a2ab2b043e74eb88c9416");
}

static void test_hash_changes_with_any_field(void **state)
{
	struct att_audit_entry e = { 0 };
	char a[65], b[65];
	(void)state;
	e.action = "lock";
	e.operator_cn = "SYSTEM";
	e.prev_hash = ATT_AUDIT_GENESIS;
	e.timestamp = "2026-05-14T17:05:00";
	att_audit_compute_hash(&e, a);
	e.action = "unlock";
	att_audit_compute_hash(&e, b);
	assert_string_not_equal(a, b);
	e.action = "lock";
	e.prev_hash = "1111111111111111111111111111111111111111111111111111111111111111";
	att_audit_compute_hash(&e, b);
	assert_string_not_equal(a, b);
}

struct fixture {
	struct att_db *db;
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char url[256], err[256];

	snprintf(f->path, sizeof(f->path), "/tmp/test-audit-%d.db", (int)getpid());
	unlink(f->path);
	snprintf(url, sizeof(url), "sqlite:///%s", f->path);
	assert_int_equal(att_db_open(url, 2, &f->db, err, sizeof(err)), 0);
	assert_int_equal(att_db_migrate(f->db, NULL, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[160];

	att_db_close(f->db);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	free(f);
	return 0;
}

static void append(struct att_db *db, const char *action)
{
	struct att_dbc *c = att_db_acquire(db);

	assert_int_equal(att_dbc_begin(c), 0);
	assert_int_equal(att_audit_append(c, "SYSTEM", action, "m-1", "a", "b", "detail \xe2\x80\x94", "127.0.0.1"), 0);
	assert_int_equal(att_dbc_commit(c), 0);
	att_db_release(db, c);
}

static void test_chain_links_and_verifies(void **state)
{
	struct fixture *f = *state;
	struct att_audit_verify v;
	struct att_dbc *c = att_db_acquire(f->db);

	assert_int_equal(att_audit_verify(c, &v), 0);
	assert_true(v.valid);
	assert_int_equal(v.entries, 0);
	assert_string_equal(v.root_hash, "");
	att_db_release(f->db, c);
	append(f->db, "one");
	append(f->db, "two");
	append(f->db, "three");
	c = att_db_acquire(f->db);
	{
		struct att_stmt *s;

		assert_int_equal(att_dbc_query(c, &s, "SELECT prev_hash, entry_hash FROM audit_log ORDER BY id", ""), 0);
		assert_int_equal(att_stmt_next(s), 1);
		assert_string_equal(att_stmt_text(s, 0), ATT_AUDIT_GENESIS);
		{
			char first[65];

			snprintf(first, sizeof(first), "%s", att_stmt_text(s, 1));
			assert_int_equal(att_stmt_next(s), 1);
			assert_string_equal(att_stmt_text(s, 0), first);
		}
		att_stmt_done(s);
	}
	assert_int_equal(att_audit_verify(c, &v), 0);
	assert_true(v.valid);
	assert_int_equal(v.entries, 3);
	assert_int_equal(strlen(v.root_hash), 64);
	assert_int_equal(v.first_invalid_id, 0);
	/* tamper with a content field */
	assert_true(att_dbc_exec(c, "UPDATE audit_log SET detail = 'edited' WHERE id = 2", "") == 1);
	assert_int_equal(att_audit_verify(c, &v), 0);
	assert_false(v.valid);
	assert_int_equal(v.first_invalid_id, 2);
	assert_string_equal(v.error, "entry_hash mismatch at entry id=2");
	att_db_release(f->db, c);
}

static void test_forged_prev_hash_detected(void **state)
{
	struct fixture *f = *state;
	struct att_audit_verify v;
	struct att_dbc *c;

	append(f->db, "one");
	append(f->db, "two");
	c = att_db_acquire(f->db);
	/* re-point entry 2 and recompute its own hash: the link is still broken */
	assert_true(att_dbc_exec(c, "UPDATE audit_log SET prev_hash = '1111111111111111111111111111111111111111111111111111111111111111' WHERE id = 2", "") == 1);
	assert_int_equal(att_audit_verify(c, &v), 0);
	assert_false(v.valid);
	assert_int_equal(v.first_invalid_id, 2);
	assert_string_equal(v.error, "prev_hash mismatch at entry id=2");
	att_db_release(f->db, c);
}

static void test_fork_is_impossible(void **state)
{
	struct fixture *f = *state;
	struct att_dbc *c;

	append(f->db, "one");
	c = att_db_acquire(f->db);
	/* a second row claiming the same predecessor violates the unique index */
	assert_int_equal(att_dbc_exec(c,
		"INSERT INTO audit_log (timestamp, operator_cn, action, prev_hash, entry_hash)"
		" SELECT timestamp, operator_cn, 'fork', prev_hash, 'x' FROM audit_log WHERE id = 1", ""),
		ATT_E_CONFLICT);
	att_db_release(f->db, c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_matches_python_reference),
		cmocka_unit_test(test_hash_nulls_are_json_null),
		cmocka_unit_test(test_hash_changes_with_any_field),
		cmocka_unit_test_setup_teardown(test_chain_links_and_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_prev_hash_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_is_impossible, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
