/* importref.c - attestd import-reference [--dry-run] machines.db
 *
 * Brings an installation of the reference service (Python, SQLite; tables
 * in reference-service.md §1.4) across into an empty attestd database:
 *   machine          -> machines (EK material re-parsed: canonical, legacy
 *                       and agent fingerprints; the stored fingerprint must
 *                       belong to the material)
 *   approval_request -> approval_votes
 *   audit_log        -> audit_log, verbatim: the reference hashes entries
 *                       with the same recipe (docs/audit.md), so its chain is
 *                       verified here and stays verifiable as the first
 *                       segment of attestd's chain; one new entry
 *                       "import_reference", chained to the reference's root,
 *                       records the import.
 * Every row is checked; any problem (an unknown status or role, a
 * fingerprint that does not belong to its EK, an audit entry that does not
 * recompute or link, an approval for an unknown machine, ...) is reported
 * and nothing is written.  Outstanding config tokens are not carried over:
 * the reference stores them in plaintext and issues them before approval
 * (docs/deployment.md). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "backup.h"
#include "base/err.h"
#include "base/util.h"
#include "crypto/ek.h"
#include "db/db.h"
#include "importref.h"
#include "machine/machine.h"

#define MAX_REPORTED 40

struct ref {
	const char *path;
	bool dry_run;
	struct att_db *src, *dst;
	struct att_dbc *sc, *dc;
	int problems;
	int64_t machines, approvals, entries;
	int64_t ek_bound, ek_fingerprint_only;
	char root[65], sha[65], tmpdir[PATH_MAX];
};

static void problem(struct ref *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct ref *r, const char *fmt, ...)
{
	va_list ap;

	if (r->problems++ == 0)
		fprintf(stderr, "attestd import-reference: %s cannot be imported:\n", r->path);
	if (r->problems > MAX_REPORTED)
		return;
	fprintf(stderr, "  - ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- reading the reference database ----------------------------------------- */

static bool has_column(struct ref *r, const char *table, const char *col)
{
	struct att_stmt *s;
	bool yes = false;

	if (att_dbc_query(r->sc, &s, "SELECT 1 FROM pragma_table_info(?) WHERE name = ?", "ss", table, col) < 0)
		return false;
	yes = att_stmt_next(s) == 1;
	att_stmt_done(s);
	return yes;
}

/* "SELECT c1, NULL, c3 ... FROM table ORDER BY id" with NULL for the
 * optional columns the table lacks; NULL when a required one (the first
 * nreq) is missing (reported). */
static const char *select_sql(struct ref *r, const char *table, const char *const *cols, size_t n, size_t nreq)
{
	char sql[2048];
	size_t off = 0;

	off += (size_t)snprintf(sql, sizeof(sql), "SELECT ");
	for (size_t i = 0; i < n; i++) {
		bool have = has_column(r, table, cols[i]);

		if (!have && i < nreq) {
			problem(r, "table %s has no column %s", table, cols[i]);
			return NULL;
		}
		off += (size_t)snprintf(sql + off, sizeof(sql) - off, "%s%s", i ? ", " : "", have ? cols[i] : "NULL");
	}
	if (snprintf(sql + off, sizeof(sql) - off, " FROM %s ORDER BY id", table) >= (int)(sizeof(sql) - off))
		return NULL;
	return att_db_intern(sql);
}

static bool has_table(struct ref *r, const char *table)
{
	struct att_stmt *s;
	bool yes = false;

	if (att_dbc_query(r->sc, &s, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", "s", table) < 0)
		return false;
	yes = att_stmt_next(s) == 1;
	att_stmt_done(s);
	return yes;
}

/* The reference stores naive UTC datetimes as "YYYY-MM-DD HH:MM:SS.ffffff"
 * (SQLAlchemy) and hashes Python's isoformat(); both normalise to
 * att_time_iso's form.  false when s is not such a time. */
static bool norm_time(const char *s, char out[32])
{
	char buf[40];
	struct att_time t;

	if (!s || strlen(s) < 19 || strlen(s) >= sizeof(buf))
		return false;
	snprintf(buf, sizeof(buf), "%s", s);
	if (buf[10] == ' ')
		buf[10] = 'T';
	if (att_time_parse(buf, &t) < 0)
		return false;
	att_time_iso(t, out);
	return true;
}

/* Lowercase copy; '_' -> '-' when dash (enum names of roles). */
static void lower(const char *in, char *out, size_t n, bool dash)
{
	size_t i = 0;

	for (; in && in[i] && i + 1 < n; i++)
		out[i] = in[i] >= 'A' && in[i] <= 'Z' ? (char)(in[i] - 'A' + 'a') : dash && in[i] == '_' ? '-' : in[i];
	out[i] = '\0';
}

static bool valid_machine_id(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      id[i] == '-'))
			return false;
	return true;
}

/* ---- machines ------------------------------------------------------------------ */

enum { M_ID, M_MID, M_FP, M_ROLE, M_STATUS, M_REG, M_SOURCE, M_UUID, M_MAC, M_SERIAL, M_PRODUCT, M_CLUSTER,
       M_HOST, M_IP, M_ATT, M_LOCK, M_REV, M_WIPE, M_AKPUB, M_EKPEM, M_NCOLS };
static const char *const machine_cols[M_NCOLS] = {
	"id", "machine_id", "ek_fingerprint", "role", "status", "registered_at", "ek_source", "hw_uuid", "hw_mac",
	"hw_serial", "hw_product", "cluster_id", "hostname", "assigned_ip", "attested_at", "locked_at", "revoked_at",
	"wipe_pending", "ak_pub", "ek_cert_pem",
};
#define MACHINE_REQUIRED 6

struct mrow {
	const char *v[M_NCOLS];
	int64_t id;
	char status[32], role[32], reg[32], att[32], lock[32], rev[32], mac[32], ip[64], fp[97];
	struct att_ek ek;
	bool have_ek;
};

/* The EK columns: material parsed and matched to the stored fingerprint,
 * or only the fingerprint (bound at the machine's next contact). */
static void check_ek(struct ref *r, struct mrow *m)
{
	const char *pem = m->v[M_EKPEM], *src = m->v[M_SOURCE] && strcmp(m->v[M_SOURCE], "pub") == 0 ? "pub" : "cert";
	char why[256];

	lower(m->v[M_FP], m->fp, sizeof(m->fp), false);
	if (pem && pem[0]) {
		if (att_ek_parse(pem, strlen(pem), src, (time_t)att_now().sec, &m->ek, why, sizeof(why)) == 0) {
			if (m->fp[0] && !att_ek_fingerprint_matches(&m->ek, m->fp))
				problem(r, "machine id=%lld (%s): ek_fingerprint %.16s... is not the fingerprint of its ek_cert_pem",
					(long long)m->id, m->v[M_MID], m->fp);
			m->have_ek = true;
			return;
		}
		if (!strstr(why, "expired") && !strstr(why, "not yet valid")) {
			problem(r, "machine id=%lld (%s): ek_cert_pem: %s", (long long)m->id, m->v[M_MID], why);
			return;
		}
	}
	if (m->fp[0] && !att_valid_fingerprint(m->fp))
		problem(r, "machine id=%lld (%s): ek_fingerprint is not 64 or 96 hex digits", (long long)m->id, m->v[M_MID]);
}

static void check_machine(struct ref *r, struct mrow *m)
{
	const char *mid = m->v[M_MID] ? m->v[M_MID] : "";

	if (!valid_machine_id(mid))
		problem(r, "machine id=%lld: machine_id '%.64s' is not an identifier", (long long)m->id, mid);
	lower(m->v[M_STATUS], m->status, sizeof(m->status), false);
	if (!att_valid_status(m->status))
		problem(r, "machine id=%lld (%s): status '%s' has no equivalent here", (long long)m->id, mid, m->status);
	lower(m->v[M_ROLE], m->role, sizeof(m->role), true);
	if (!att_role_valid(m->role))
		problem(r, "machine id=%lld (%s): role '%s' has no equivalent here", (long long)m->id, mid, m->role);
	if (!norm_time(m->v[M_REG], m->reg))
		problem(r, "machine id=%lld (%s): registered_at is not a time", (long long)m->id, mid);
	if ((m->v[M_ATT] && !norm_time(m->v[M_ATT], m->att)) || (m->v[M_LOCK] && !norm_time(m->v[M_LOCK], m->lock)) ||
	    (m->v[M_REV] && !norm_time(m->v[M_REV], m->rev)))
		problem(r, "machine id=%lld (%s): attested_at, locked_at or revoked_at is not a time", (long long)m->id, mid);
	if (m->v[M_HOST] && m->v[M_HOST][0] && !att_valid_hostname(m->v[M_HOST]))
		problem(r, "machine id=%lld (%s): hostname is not a host name", (long long)m->id, mid);
	if (m->v[M_IP] && m->v[M_IP][0] && !att_normalize_cidr(m->v[M_IP], m->ip))
		problem(r, "machine id=%lld (%s): assigned_ip is not an address", (long long)m->id, mid);
	snprintf(m->mac, sizeof(m->mac), "unknown");
	if (m->v[M_MAC] && m->v[M_MAC][0] && !att_normalize_mac(m->v[M_MAC], m->mac))
		problem(r, "machine id=%lld (%s): hw_mac is not a MAC address", (long long)m->id, mid);
	if (m->v[M_CLUSTER] && !att_valid_cluster_id(m->v[M_CLUSTER]))
		problem(r, "machine id=%lld (%s): cluster_id is not valid", (long long)m->id, mid);
	check_ek(r, m);
}

static const char *or_unknown(const char *s)
{
	return s && s[0] ? s : "unknown";
}

static void insert_machine(struct ref *r, struct mrow *m, const char *now)
{
	const struct att_ek *ek = m->have_ek ? &m->ek : NULL;
	size_t fplen = strlen(m->fp);
	const char *locked_from = strcmp(m->status, "locked") == 0 ? (m->v[M_ATT] ? "attested" : "registered") : NULL;
	int rc;

	rc = att_dbc_exec(r->dc,
			  "INSERT INTO machines (machine_id, ek_fingerprint, ek_fingerprint_legacy, ek_fingerprint_agent,"
			  " ek_source, ek_cert_b64, ek_key_type, ek_issuer, hw_uuid, hw_mac, hw_serial, hw_product, role,"
			  " status, locked_from, cluster_id, hostname, assigned_ip, registered_at, attested_at, locked_at,"
			  " revoked_at, wipe_pending, ak_pub, updated_at)"
			  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			  "ssssssssssssssssssssssbss", m->v[M_MID], ek ? ek->fp : NULL,
			  ek ? ek->fp_legacy : (fplen == 96 ? m->fp : NULL), ek ? ek->fp_agent : (fplen == 64 ? m->fp : NULL),
			  m->v[M_SOURCE] && m->v[M_SOURCE][0] ? m->v[M_SOURCE] : "cert", ek ? m->v[M_EKPEM] : NULL,
			  ek ? ek->key_type : NULL, ek && ek->issuer[0] ? ek->issuer : NULL, or_unknown(m->v[M_UUID]), m->mac,
			  or_unknown(m->v[M_SERIAL]), or_unknown(m->v[M_PRODUCT]), m->role, m->status, locked_from,
			  m->v[M_CLUSTER] ? m->v[M_CLUSTER] : "default", m->v[M_HOST] && m->v[M_HOST][0] ? m->v[M_HOST] : NULL,
			  m->ip[0] ? m->ip : NULL, m->reg, m->v[M_ATT] ? m->att : NULL, m->v[M_LOCK] ? m->lock : NULL,
			  m->v[M_REV] ? m->rev : NULL, m->v[M_WIPE] && strcmp(m->v[M_WIPE], "0") != 0, m->v[M_AKPUB], now);
	if (rc == ATT_E_CONFLICT)
		problem(r, "machine id=%lld (%s): a second machine with this machine_id or EK", (long long)m->id,
			m->v[M_MID]);
	else if (rc < 0)
		problem(r, "machine id=%lld: cannot write it: %s", (long long)m->id, att_dbc_errmsg(r->dc));
	else if (ek)
		r->ek_bound++;
	else
		r->ek_fingerprint_only++;
}

static void import_machines(struct ref *r)
{
	const char *sql = select_sql(r, "machine", machine_cols, M_NCOLS, MACHINE_REQUIRED);
	struct att_stmt *s;
	char now[32];
	int rc;

	if (!sql)
		return;
	att_time_iso(att_now(), now);
	if (att_dbc_query(r->sc, &s, sql, "") < 0) {
		problem(r, "cannot read table machine: %s", att_dbc_errmsg(r->sc));
		return;
	}
	while ((rc = att_stmt_next(s)) == 1) {
		struct mrow m;
		int before = r->problems;

		memset(&m, 0, sizeof(m));
		for (int i = 0; i < M_NCOLS; i++)
			m.v[i] = att_stmt_text(s, i);
		m.id = att_stmt_int(s, M_ID);
		check_machine(r, &m);
		if (r->problems == before)
			insert_machine(r, &m, now);
		r->machines++;
	}
	att_stmt_done(s);
	if (rc < 0)
		problem(r, "cannot read table machine: %s", att_dbc_errmsg(r->sc));
}

/* ---- approval requests ----------------------------------------------------------- */

static const char *const approval_cols[] = {
	"id", "machine_id", "operator_cn", "role", "created_at", "expires_at", "hostname", "assigned_ip", "consumed",
};

static bool machine_known(struct ref *r, const char *mid)
{
	struct att_stmt *s;
	bool yes;

	if (!mid || att_dbc_query(r->dc, &s, "SELECT 1 FROM machines WHERE machine_id = ?", "s", mid) < 0)
		return false;
	yes = att_stmt_next(s) == 1;
	att_stmt_done(s);
	return yes;
}

static void import_approval(struct ref *r, struct att_stmt *s)
{
	int64_t id = att_stmt_int(s, 0);
	const char *mid = att_stmt_text(s, 1), *op = att_stmt_text(s, 2), *host = att_stmt_text(s, 6);
	const char *ipin = att_stmt_text(s, 7), *consumed = att_stmt_text(s, 8);
	char role[32], created[32], expires[32], ip[64] = "";
	struct att_time exp;

	lower(att_stmt_text(s, 3), role, sizeof(role), true);
	if (!machine_known(r, mid))
		problem(r, "approval_request id=%lld: machine_id %.64s is not in table machine", (long long)id,
			mid ? mid : "NULL");
	else if (!op || !op[0] || !att_role_valid(role))
		problem(r, "approval_request id=%lld: no operator_cn, or role '%s' has no equivalent here", (long long)id,
			role);
	else if (!norm_time(att_stmt_text(s, 4), created) || !norm_time(att_stmt_text(s, 5), expires) ||
		 att_time_parse(expires, &exp) < 0)
		problem(r, "approval_request id=%lld: created_at or expires_at is not a time", (long long)id);
	else if ((host && host[0] && !att_valid_hostname(host)) || (ipin && ipin[0] && !att_normalize_cidr(ipin, ip)))
		problem(r, "approval_request id=%lld: hostname or assigned_ip is not valid", (long long)id);
	else if (att_dbc_exec(r->dc,
			      "INSERT INTO approval_votes (machine_id, operator_cn, role, hostname, assigned_ip, reason,"
			      " created_at, expires_at, consumed) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)",
			      "ssssssib", mid, op, role, host && host[0] ? host : NULL, ip[0] ? ip : NULL, created,
			      exp.sec, consumed && strcmp(consumed, "0") != 0) < 0)
		problem(r, "approval_request id=%lld: cannot write it: %s", (long long)id, att_dbc_errmsg(r->dc));
	r->approvals++;
}

static void import_approvals(struct ref *r)
{
	const char *sql;
	struct att_stmt *s;
	int rc;

	if (!has_table(r, "approval_request"))
		return;
	sql = select_sql(r, "approval_request", approval_cols, 9, 6);
	if (!sql || att_dbc_query(r->sc, &s, sql, "") < 0) {
		problem(r, "cannot read table approval_request");
		return;
	}
	while ((rc = att_stmt_next(s)) == 1)
		import_approval(r, s);
	att_stmt_done(s);
	if (rc < 0)
		problem(r, "cannot read table approval_request: %s", att_dbc_errmsg(r->sc));
}

/* ---- the audit chain ------------------------------------------------------------- */

static const char *const audit_cols[] = {
	"id", "timestamp", "operator_cn", "action", "machine_id", "prev_state", "new_state", "detail", "prev_hash",
	"entry_hash", "source_ip",
};

/* Verify one entry against its predecessor (r->root) and copy it. */
static void import_entry(struct ref *r, struct att_stmt *s, bool *broken)
{
	struct att_audit_entry e = {
		.id = att_stmt_int(s, 0), .operator_cn = att_stmt_text(s, 2), .action = att_stmt_text(s, 3),
		.machine_id = att_stmt_text(s, 4), .prev_state = att_stmt_text(s, 5), .new_state = att_stmt_text(s, 6),
		.detail = att_stmt_text(s, 7), .prev_hash = att_stmt_text(s, 8), .entry_hash = att_stmt_text(s, 9),
		.source_ip = att_stmt_text(s, 10),
	};
	char ts[32], hash[65];

	r->entries++;
	if (*broken)
		return;
	if (!norm_time(att_stmt_text(s, 1), ts) || !e.operator_cn || !e.action || !e.prev_hash || !e.entry_hash) {
		problem(r, "audit_log id=%lld: timestamp, operator_cn, action or a hash is missing or malformed",
			(long long)e.id);
		*broken = true;
		return;
	}
	e.timestamp = ts;
	if (strcmp(e.prev_hash, r->root[0] ? r->root : ATT_AUDIT_GENESIS) != 0) {
		problem(r, "audit_log id=%lld: prev_hash does not link to the entry before it (the chain is broken)",
			(long long)e.id);
		*broken = true;
		return;
	}
	if (att_audit_compute_hash(&e, hash) < 0 || strcmp(hash, e.entry_hash) != 0) {
		problem(r, "audit_log id=%lld: entry_hash does not recompute (the entry was altered%s)", (long long)e.id,
			e.source_ip ? ", or hashed with source_ip as the reference SDK's variant does" : "");
		*broken = true;
		return;
	}
	snprintf(r->root, sizeof(r->root), "%s", e.entry_hash);
	if (att_dbc_exec(r->dc,
			 "INSERT INTO audit_log (timestamp, operator_cn, action, machine_id, prev_state, new_state, detail,"
			 " prev_hash, entry_hash, source_ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			 "ssssssssss", e.timestamp, e.operator_cn, e.action, e.machine_id, e.prev_state, e.new_state,
			 e.detail, e.prev_hash, e.entry_hash, e.source_ip) < 0) {
		problem(r, "audit_log id=%lld: cannot write it: %s", (long long)e.id, att_dbc_errmsg(r->dc));
		*broken = true;
	}
}

static void import_audit(struct ref *r)
{
	const char *sql = select_sql(r, "audit_log", audit_cols, 11, 10);
	struct att_stmt *s;
	bool broken = false;
	int rc;

	if (!sql || att_dbc_query(r->sc, &s, sql, "") < 0) {
		problem(r, "cannot read table audit_log");
		return;
	}
	while ((rc = att_stmt_next(s)) == 1)
		import_entry(r, s, &broken);
	att_stmt_done(s);
	if (rc < 0)
		problem(r, "cannot read table audit_log: %s", att_dbc_errmsg(r->sc));
}

/* ---- opening both sides, the anchor entry, the command ----------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* A private copy of the reference file (opening it would change it:
 * journal mode), after checking it is a quiescent SQLite database. */
static int open_source(struct ref *r)
{
	const char *tmpdir = getenv("TMPDIR");
	char head[16] = "", *wal = att_asprintf("%s-wal", r->path), *copy = NULL, *url = NULL, err[512];
	struct stat st;
	int64_t size;
	int fd, rc = -1;

	fd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, head, sizeof(head)) != (ssize_t)sizeof(head) || memcmp(head, "SQLite format 3", 16) != 0) {
		problem(r, "%s", fd < 0 ? strerror(errno) : "not an SQLite database");
		goto out;
	}
	if (wal && stat(wal, &st) == 0 && st.st_size > 0) {
		problem(r, "%s exists: stop the reference service first (or import a copy made with sqlite3 .backup)", wal);
		goto out;
	}
	snprintf(r->tmpdir, sizeof(r->tmpdir), "%s/attestd-import.XXXXXX", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
	if (!mkdtemp(r->tmpdir)) {
		problem(r, "cannot create a temporary directory: %s", strerror(errno));
		r->tmpdir[0] = '\0';
		goto out;
	}
	copy = att_asprintf("%s/reference.db", r->tmpdir);
	url = att_asprintf("sqlite:///%s", copy ? copy : "");
	if (!copy || !url || att_backup_copy_file(r->path, copy, 0600, r->sha, &size, err, sizeof(err)) < 0) {
		problem(r, "%s", copy && url ? err : "out of memory");
		goto out;
	}
	if (att_db_open(url, 1, &r->src, err, sizeof(err)) < 0 || !(r->sc = att_db_acquire(r->src)) ||
	    att_dbc_begin_read(r->sc) < 0) {
		problem(r, "cannot open it: %s", err);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(wal);
	free(copy);
	free(url);
	return rc;
}

static int open_target(struct ref *r, const char *db_url)
{
	char err[1024] = "";
	int applied = 0;
	int64_t n = 0, m = 0;

	if (att_db_open(db_url, 1, &r->dst, err, sizeof(err)) < 0 || att_db_migrate(r->dst, &applied, err, sizeof(err)) < 0 ||
	    !(r->dc = att_db_acquire(r->dst)) || att_dbc_begin(r->dc) < 0) {
		fprintf(stderr, "attestd import-reference: the database (ITL_DB_URL): %s\n", err[0] ? err : "cannot connect");
		return -1;
	}
	if (att_dbc_query_int(r->dc, "SELECT COUNT(*) FROM machines", &n) < 0 ||
	    att_dbc_query_int(r->dc, "SELECT COUNT(*) FROM audit_log", &m) < 0 || n || m) {
		fprintf(stderr, "attestd import-reference: the database (ITL_DB_URL) is not empty; import into a new one\n");
		return -1;
	}
	return 0;
}

/* The first entry of attestd's own: chained to the reference's root. */
static int anchor(struct ref *r)
{
	char *detail = att_asprintf("Imported from the reference service's database (SHA-256 %s): %lld machines,"
				    " %lld approval requests, %lld audit entries with root %s",
				    r->sha, (long long)r->machines, (long long)r->approvals, (long long)r->entries,
				    r->root[0] ? r->root : "(none)");
	struct att_audit_verify v;
	int rc;

	if (!detail)
		return ATT_E_NOMEM;
	rc = att_audit_append(r->dc, "SYSTEM", "import_reference", NULL, NULL, NULL, detail, NULL);
	free(detail);
	if (rc == 0 && (att_audit_verify(r->dc, &v) < 0 || !v.valid)) {
		fprintf(stderr, "attestd import-reference: the imported chain does not verify; nothing imported\n");
		return ATT_E_INTERNAL;
	}
	return rc;
}

int att_importref_run(const struct att_config *cfg, const char *path, bool dry_run)
{
	struct ref r = { .path = path, .dry_run = dry_run };
	int rc = 1;

	if (open_source(&r) < 0 || open_target(&r, cfg->db_url) < 0)
		goto out;
	if (!has_table(&r, "machine") || !has_table(&r, "audit_log")) {
		problem(&r, "no table machine or audit_log: not a reference service database");
		goto out;
	}
	import_machines(&r);
	import_approvals(&r);
	import_audit(&r);
	if (r.problems) {
		if (r.problems > MAX_REPORTED)
			fprintf(stderr, "  ... and %d more\n", r.problems - MAX_REPORTED);
		goto out;
	}
	if (anchor(&r) < 0 || (!dry_run && att_dbc_commit(r.dc) < 0)) {
		fprintf(stderr, "attestd import-reference: cannot commit: %s\n", att_dbc_errmsg(r.dc));
		goto out;
	}
	printf("%s %s (SHA-256 %s): %lld machines (%lld with EK material, %lld by fingerprint until their next "
	       "contact), %lld approval requests, %lld audit entries (chain verified, root %s)\n",
	       dry_run ? "checked, nothing written:" : "imported", path, r.sha, (long long)r.machines,
	       (long long)r.ek_bound, (long long)r.ek_fingerprint_only, (long long)r.approvals, (long long)r.entries,
	       r.root[0] ? r.root : "(empty)");
	rc = 0;
out:
	if (r.problems)
		fprintf(stderr, "attestd import-reference: %d problem(s); nothing imported\n", r.problems);
	if (r.dc) {
		att_dbc_rollback(r.dc);
		att_db_release(r.dst, r.dc);
	}
	if (r.sc) {
		att_dbc_rollback(r.sc);
		att_db_release(r.src, r.sc);
	}
	att_db_close(r.src);
	att_db_close(r.dst);
	if (r.tmpdir[0])
		nftw(r.tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
