#include "db/migrations.h"

#define V1_COMMON_TABLES(IDCOL) \
	"CREATE TABLE machines (" \
	" id " IDCOL "," \
	" machine_id TEXT NOT NULL UNIQUE," \
	" ek_fingerprint TEXT UNIQUE," \
	" ek_fingerprint_legacy TEXT," \
	" ek_fingerprint_agent TEXT," \
	" ek_source TEXT NOT NULL," \
	" ek_cert_b64 TEXT," \
	" ek_key_type TEXT," \
	" ek_issuer TEXT," \
	" hw_uuid TEXT NOT NULL DEFAULT 'unknown'," \
	" hw_mac TEXT NOT NULL DEFAULT 'unknown'," \
	" hw_serial TEXT NOT NULL DEFAULT 'unknown'," \
	" hw_product TEXT NOT NULL DEFAULT 'unknown'," \
	" role TEXT NOT NULL," \
	" status TEXT NOT NULL," \
	" locked_from TEXT," \
	" cluster_id TEXT NOT NULL DEFAULT 'default'," \
	" hostname TEXT," \
	" assigned_ip TEXT," \
	" registered_at TEXT NOT NULL," \
	" approved_at TEXT," \
	" attested_at TEXT," \
	" locked_at TEXT," \
	" revoked_at TEXT," \
	" wipe_pending INTEGER NOT NULL DEFAULT 0," \
	" config_delivered_at TEXT," \
	" ak_pub TEXT," \
	" updated_at TEXT NOT NULL);" \
	"CREATE INDEX machines_status ON machines(status);" \
	"CREATE INDEX machines_role ON machines(role);" \
	"CREATE INDEX machines_hostname ON machines(hostname);" \
	"CREATE INDEX machines_hw_mac ON machines(hw_mac);" \
	"CREATE INDEX machines_fp_legacy ON machines(ek_fingerprint_legacy);" \
	"CREATE INDEX machines_fp_agent ON machines(ek_fingerprint_agent);" \
	"CREATE TABLE audit_log (" \
	" id " IDCOL "," \
	" timestamp TEXT NOT NULL," \
	" operator_cn TEXT NOT NULL," \
	" action TEXT NOT NULL," \
	" machine_id TEXT," \
	" prev_state TEXT," \
	" new_state TEXT," \
	" detail TEXT," \
	" prev_hash TEXT NOT NULL UNIQUE," \
	" entry_hash TEXT NOT NULL UNIQUE," \
	" source_ip TEXT);" \
	"CREATE INDEX audit_log_machine ON audit_log(machine_id, id);" \
	"CREATE INDEX audit_log_action ON audit_log(action, id);" \
	"CREATE TABLE config_tokens (" \
	" token_hash TEXT PRIMARY KEY," \
	" machine_id TEXT NOT NULL," \
	" state TEXT NOT NULL," \
	" created_at TEXT NOT NULL," \
	" expires_at BIGINT NOT NULL," \
	" first_fetched_at TEXT," \
	" fetch_count INTEGER NOT NULL DEFAULT 0);" \
	"CREATE INDEX config_tokens_machine ON config_tokens(machine_id);" \
	"CREATE TABLE nonces (" \
	" nonce_id TEXT PRIMARY KEY," \
	" nonce TEXT NOT NULL," \
	" created_at BIGINT NOT NULL," \
	" expires_at BIGINT NOT NULL," \
	" consumed_at BIGINT);" \
	"CREATE INDEX nonces_expires ON nonces(expires_at);" \
	"CREATE TABLE factory_schematics (" \
	" schematic_id TEXT PRIMARY KEY," \
	" yaml TEXT NOT NULL," \
	" created_at TEXT NOT NULL," \
	" acknowledged_at TEXT);" \
	"CREATE TABLE outbox_events (" \
	" id " IDCOL "," \
	" event TEXT NOT NULL," \
	" machine_id TEXT," \
	" payload TEXT NOT NULL," \
	" created_at TEXT NOT NULL," \
	" delivered_at TEXT);" \
	"CREATE INDEX outbox_pending ON outbox_events(delivered_at, id);"

#define V2_LEASES \
	"CREATE TABLE leases (" \
	" name TEXT PRIMARY KEY," \
	" holder TEXT," \
	" expires_at BIGINT NOT NULL DEFAULT 0," \
	" last_run_at TEXT," \
	" last_result TEXT);" \
	"INSERT INTO leases (name) VALUES ('sweep');"

#define V3_VOTES(IDCOL) \
	"CREATE TABLE approval_votes (" \
	" id " IDCOL "," \
	" machine_id TEXT NOT NULL," \
	" operator_cn TEXT NOT NULL," \
	" role TEXT NOT NULL," \
	" hostname TEXT," \
	" assigned_ip TEXT," \
	" reason TEXT," \
	" created_at TEXT NOT NULL," \
	" expires_at BIGINT NOT NULL," \
	" consumed INTEGER NOT NULL DEFAULT 0);" \
	"CREATE INDEX approval_votes_machine ON approval_votes(machine_id, id);"

#define V4_EK_CHAIN \
	"ALTER TABLE machines ADD COLUMN ek_verified INTEGER;" \
	"ALTER TABLE machines ADD COLUMN ek_chain_error TEXT;" \
	"ALTER TABLE machines ADD COLUMN ek_manufacturer TEXT;" \
	"ALTER TABLE machines ADD COLUMN ek_model TEXT;"

#define V5_TPM \
	"ALTER TABLE machines ADD COLUMN ak_public TEXT;" \
	"ALTER TABLE machines ADD COLUMN ak_name TEXT;" \
	"ALTER TABLE machines ADD COLUMN ak_bound_at TEXT;" \
	"ALTER TABLE machines ADD COLUMN ek_public TEXT;" \
	"ALTER TABLE machines ADD COLUMN tpm_reset_count BIGINT;" \
	"ALTER TABLE machines ADD COLUMN tpm_restart_count BIGINT;" \
	"ALTER TABLE machines ADD COLUMN last_quote_at TEXT;" \
	"CREATE TABLE ak_activations (" \
	" activation_id TEXT PRIMARY KEY," \
	" machine_id TEXT NOT NULL," \
	" ak_public TEXT NOT NULL," \
	" ak_name TEXT NOT NULL," \
	" ek_public TEXT," \
	" secret_hash TEXT NOT NULL," \
	" created_at BIGINT NOT NULL," \
	" expires_at BIGINT NOT NULL," \
	" consumed_at BIGINT);" \
	"CREATE INDEX ak_activations_machine ON ak_activations(machine_id);" \
	"CREATE TABLE pcr_policies (" \
	" role TEXT PRIMARY KEY," \
	" policy TEXT NOT NULL," \
	" updated_at TEXT NOT NULL," \
	" updated_by TEXT NOT NULL);" \
	"CREATE TABLE ek_intermediates (" \
	" cert_sha256 TEXT PRIMARY KEY," \
	" subject TEXT NOT NULL," \
	" pem TEXT NOT NULL," \
	" first_seen TEXT NOT NULL);"

/* Event delivery (docs/events.md): every outbox event fans out to one
 * delivery per consumer (an extension's hook, one webhook, one exec
 * hook), each retried with backoff and dead-lettered on its own; the
 * partition keeps one machine's events on one replica, in order.
 * outbox_events.fanned_at: the deliveries exist; delivered_at: none is
 * pending any more.  Times in *_at BIGINT columns are Unix milliseconds. */
#define V8_EVENTS(IDCOL) \
	"ALTER TABLE outbox_events ADD COLUMN fanned_at TEXT;" \
	"UPDATE outbox_events SET fanned_at = delivered_at WHERE delivered_at IS NOT NULL;" \
	"CREATE INDEX outbox_unfanned ON outbox_events(fanned_at, id);" \
	"CREATE INDEX outbox_machine ON outbox_events(machine_id, id);" \
	"CREATE INDEX outbox_event_name ON outbox_events(event, id);" \
	"CREATE TABLE event_deliveries (" \
	" id " IDCOL "," \
	" event_id BIGINT NOT NULL," \
	" consumer TEXT NOT NULL," \
	" machine_id TEXT," \
	" part INTEGER NOT NULL," \
	" status TEXT NOT NULL DEFAULT 'pending'," \
	" attempts INTEGER NOT NULL DEFAULT 0," \
	" next_attempt_at BIGINT NOT NULL DEFAULT 0," \
	" held_until BIGINT NOT NULL DEFAULT 0," \
	" holder TEXT," \
	" last_error TEXT," \
	" created_at TEXT NOT NULL," \
	" updated_at TEXT NOT NULL," \
	" delivered_at TEXT," \
	" UNIQUE (event_id, consumer));" \
	"CREATE INDEX event_deliveries_due ON event_deliveries(status, part, event_id);" \
	"CREATE INDEX event_deliveries_order ON event_deliveries(consumer, machine_id, status, event_id);" \
	"ALTER TABLE machines ADD COLUMN heartbeat_missed_count INTEGER NOT NULL DEFAULT 0;" \
	"ALTER TABLE machines ADD COLUMN heartbeat_missed_for TEXT;"
/* Hardening (issue 19): service keys shared by the replicas (the
 * challenge HMAC key), and the per-source counters of unauthenticated
 * writes (replicas agree on a source's budget). */
#define V6_HARDENING \
	"CREATE TABLE service_keys (" \
	" name TEXT PRIMARY KEY," \
	" secret TEXT NOT NULL," \
	" created_at TEXT NOT NULL);" \
	"CREATE TABLE rate_limits (" \
	" source TEXT NOT NULL," \
	" window_start BIGINT NOT NULL," \
	" hits BIGINT NOT NULL," \
	" PRIMARY KEY (source, window_start));" \
	"CREATE INDEX rate_limits_window ON rate_limits(window_start);"
/* Machine certificates (docs/certificates.md): every certificate the
 * Enrollment CA issued to a machine, its revocation, and per issuing CA
 * the current CRL (shared by the replicas; regenerated after a
 * revocation and before nextUpdate). */
#define V7_CERTS \
	"CREATE TABLE issued_certs (" \
	" serial TEXT PRIMARY KEY," \
	" machine_id TEXT NOT NULL," \
	" role TEXT," \
	" ca_serial TEXT NOT NULL," \
	" kind TEXT NOT NULL," \
	" key_type TEXT NOT NULL," \
	" ek_fingerprint TEXT," \
	" issued_at TEXT NOT NULL," \
	" issued_by TEXT NOT NULL," \
	" not_after TEXT NOT NULL," \
	" not_after_epoch BIGINT NOT NULL," \
	" pem TEXT NOT NULL," \
	" revoked_at TEXT," \
	" revoked_epoch BIGINT," \
	" revocation_reason TEXT," \
	" revocation_detail TEXT);" \
	"CREATE INDEX issued_certs_machine ON issued_certs(machine_id);" \
	"CREATE INDEX issued_certs_revoked ON issued_certs(ca_serial, revoked_epoch);" \
	"CREATE TABLE ca_crls (" \
	" ca_serial TEXT PRIMARY KEY," \
	" crl_number BIGINT NOT NULL," \
	" this_update BIGINT NOT NULL," \
	" next_update BIGINT NOT NULL," \
	" stale INTEGER NOT NULL DEFAULT 1," \
	" der_b64 TEXT);"

/* Dashboard (docs/dashboard.md): the last time a machine was heard from,
 * and the indexes that keep the fleet list, its counts and the summary
 * off the wide machine rows at 100,000 machines (in SQLite the table is
 * the rowid b-tree, so id order needs an index of its own).  Case-insensitive
 * prefix search: SQLite's LIKE optimisation needs a NOCASE index,
 * PostgreSQL a text_pattern_ops index on lower(). */
#define V10_FLEET_COMMON \
	"ALTER TABLE machines ADD COLUMN last_contact_at TEXT;" \
	"CREATE INDEX machines_status_role ON machines(status, role);" \
	"CREATE INDEX machines_status_contact ON machines(status, last_contact_at);" \
	"CREATE INDEX machines_contact ON machines(last_contact_at);" \
	"CREATE INDEX machines_manufacturer ON machines(ek_manufacturer, ek_verified);" \
	"CREATE INDEX machines_registered_at ON machines(registered_at);" \
	"CREATE INDEX machines_attested_at ON machines(attested_at);" \
	"CREATE INDEX audit_log_operator ON audit_log(operator_cn, id);"
#define V10_FLEET_SQLITE V10_FLEET_COMMON \
	"CREATE INDEX machines_id ON machines(id);" /* id order off the narrow index, not the table */ \
	"CREATE INDEX machines_hostname_ci ON machines(hostname COLLATE NOCASE);" \
	"CREATE INDEX machines_machine_id_ci ON machines(machine_id COLLATE NOCASE);"
#define V10_FLEET_PG V10_FLEET_COMMON \
	"CREATE INDEX machines_hostname_ci ON machines(lower(hostname) text_pattern_ops);" \
	"CREATE INDEX machines_machine_id_ci ON machines(lower(machine_id) text_pattern_ops);"


/* Secret vault (docs/secrets.md) and auto-approval (docs/auto-approval.md).
 * Secret values are AES-256-GCM ciphertext under the master key
 * (key_id names which); auto_approvals records every automatic decision
 * (the rate limit counts them; the decision webhook's retries live there). */
#define V11_VAULT(pk) \
	"CREATE TABLE machine_secrets (" \
	" id " pk "," \
	" machine_id TEXT NOT NULL," \
	" name TEXT NOT NULL," \
	" version BIGINT NOT NULL," \
	" key_id TEXT NOT NULL," \
	" iv TEXT NOT NULL," \
	" ciphertext TEXT NOT NULL," \
	" size BIGINT NOT NULL," \
	" description TEXT," \
	" created_at TEXT NOT NULL," \
	" created_by TEXT NOT NULL," \
	" updated_at TEXT NOT NULL," \
	" updated_by TEXT NOT NULL," \
	" expires_at BIGINT," \
	" delivered_at TEXT," \
	" delivered_version BIGINT," \
	" UNIQUE (machine_id, name));" \
	"CREATE TABLE auto_approvals (" \
	" machine_id TEXT PRIMARY KEY," \
	" rule TEXT NOT NULL," \
	" decision TEXT NOT NULL," \
	" detail TEXT," \
	" attempts BIGINT NOT NULL DEFAULT 0," \
	" next_at BIGINT NOT NULL DEFAULT 0," \
	" decided_at BIGINT NOT NULL);" \
	"CREATE INDEX auto_approvals_rule ON auto_approvals(rule, decision, decided_at);"
/* Auto-approval by agent identity (docs/auto-approval.md): each identity
 * (its jti, the agent session id) approves at most one machine. */
#define V14_IDENTITY_USES \
	"CREATE TABLE agent_identity_uses (" \
	" jti TEXT PRIMARY KEY," \
	" machine_id TEXT NOT NULL," \
	" rule TEXT NOT NULL," \
	" used_at BIGINT NOT NULL);"
/* Agent attestation policies (docs/attestation-policies.md): every
 * version of each cluster's AgentAttestation document (yaml NULL: the
 * document was deleted) and the sessions agents were issued. */
#define V9_AGENT_POLICIES \
	"CREATE TABLE agent_policies (" \
	" cluster_id TEXT NOT NULL," \
	" version BIGINT NOT NULL," \
	" yaml TEXT," \
	" document TEXT," \
	" created_at TEXT NOT NULL," \
	" created_by TEXT NOT NULL," \
	" PRIMARY KEY (cluster_id, version));" \
	"CREATE TABLE agent_sessions (" \
	" session_id TEXT PRIMARY KEY," \
	" cluster_id TEXT NOT NULL," \
	" policy TEXT NOT NULL," \
	" spiffe_id TEXT NOT NULL," \
	" attributes TEXT NOT NULL," \
	" source_ip TEXT," \
	" issued_at TEXT NOT NULL," \
	" expires_at TEXT NOT NULL);" \
	"CREATE INDEX agent_sessions_cluster ON agent_sessions(cluster_id, issued_at);" \
	"CREATE INDEX agent_sessions_issued ON agent_sessions(issued_at);"
/* Signed audit checkpoints (docs/audit.md): the log's entry count and head
 * hash at a time, signed by the Enrollment CA's document-signing key. */
#define V13_CHECKPOINTS(IDCOL) \
	"CREATE TABLE audit_checkpoints (" \
	" id " IDCOL "," \
	" issued_at TEXT NOT NULL," \
	" entries BIGINT NOT NULL," \
	" head_id BIGINT NOT NULL," \
	" head_hash TEXT NOT NULL," \
	" issuer TEXT NOT NULL," \
	" payload TEXT NOT NULL," \
	" signature TEXT NOT NULL," \
	" timestamp_token TEXT);"

/* Agent X.509-SVIDs (docs/attestation-policies.md): an issued certificate
 * belongs to a machine or to an agent session (machine_id NULL); the
 * session records its certificate's serial.  SQLite cannot drop a NOT
 * NULL constraint, so it rebuilds issued_certs. */
#define V15_AGENT_SVID_TAIL \
	"CREATE INDEX issued_certs_agent ON issued_certs(agent_session);" \
	"ALTER TABLE agent_sessions ADD COLUMN cert_serial TEXT;"
#define V15_AGENT_SVID_SQLITE \
	"CREATE TABLE issued_certs_v15 (" \
	" serial TEXT PRIMARY KEY," \
	" machine_id TEXT," \
	" role TEXT," \
	" ca_serial TEXT NOT NULL," \
	" kind TEXT NOT NULL," \
	" key_type TEXT NOT NULL," \
	" ek_fingerprint TEXT," \
	" issued_at TEXT NOT NULL," \
	" issued_by TEXT NOT NULL," \
	" not_after TEXT NOT NULL," \
	" not_after_epoch BIGINT NOT NULL," \
	" pem TEXT NOT NULL," \
	" revoked_at TEXT," \
	" revoked_epoch BIGINT," \
	" revocation_reason TEXT," \
	" revocation_detail TEXT," \
	" agent_session TEXT);" \
	"INSERT INTO issued_certs_v15 (serial, machine_id, role, ca_serial, kind, key_type, ek_fingerprint," \
	" issued_at, issued_by, not_after, not_after_epoch, pem, revoked_at, revoked_epoch, revocation_reason," \
	" revocation_detail) SELECT serial, machine_id, role, ca_serial, kind, key_type, ek_fingerprint," \
	" issued_at, issued_by, not_after, not_after_epoch, pem, revoked_at, revoked_epoch, revocation_reason," \
	" revocation_detail FROM issued_certs;" \
	"DROP TABLE issued_certs;" \
	"ALTER TABLE issued_certs_v15 RENAME TO issued_certs;" \
	"CREATE INDEX issued_certs_machine ON issued_certs(machine_id);" \
	"CREATE INDEX issued_certs_revoked ON issued_certs(ca_serial, revoked_epoch);" \
	V15_AGENT_SVID_TAIL
#define V15_AGENT_SVID_PG \
	"ALTER TABLE issued_certs ALTER COLUMN machine_id DROP NOT NULL;" \
	"ALTER TABLE issued_certs ADD COLUMN agent_session TEXT;" \
	V15_AGENT_SVID_TAIL
/* Event delivery throughput (docs/events.md "Performance"): settling an
 * event asks whether any of its deliveries is still pending, and a claim
 * reads back the rows it holds; without these both scanned every pending
 * delivery (SQLite chose event_deliveries_due on status alone). */
#define V16_EVENT_INDEXES \
	"CREATE INDEX event_deliveries_event ON event_deliveries(event_id, status);" \
	"CREATE INDEX event_deliveries_holder ON event_deliveries(holder);"

const struct att_migration att_migrations[] = {
	{
		1,
		"machines, audit log, config tokens, nonces, schematics, outbox",
		V1_COMMON_TABLES("INTEGER PRIMARY KEY"),
		V1_COMMON_TABLES("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
	},
	{
		2,
		"leases for background jobs",
		V2_LEASES,
		V2_LEASES,
	},
	{
		3,
		"dual-control approval votes",
		V3_VOTES("INTEGER PRIMARY KEY"),
		V3_VOTES("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
	},
	{
		4,
		"EK chain verification result and TPM identity",
		V4_EK_CHAIN,
		V4_EK_CHAIN,
	},
	{
		5,
		"TPM proof of possession: bound AKs, activations, PCR policies, EK intermediates",
		V5_TPM,
		V5_TPM,
	},
	{
		6,
		"hardening: service keys, per-source limits of unauthenticated writes",
		V6_HARDENING,
		V6_HARDENING,
	},
	{
		7,
		"machine certificates: issued certificates, revocations, CRLs",
		V7_CERTS,
		V7_CERTS,
	},
	{
		8,
		"event delivery: per-consumer deliveries, retries, dead letters; heartbeat tracking",
		V8_EVENTS("INTEGER PRIMARY KEY"),
		V8_EVENTS("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
	},
	{
		9,
		"agent attestation policies and sessions",
		V9_AGENT_POLICIES,
		V9_AGENT_POLICIES,
	},
	{
		10,
		"dashboard: last contact, fleet list and summary indexes",
		V10_FLEET_SQLITE,
		V10_FLEET_PG,
	},
	{
		11,
		"secret vault and auto-approval decisions",
		V11_VAULT("INTEGER PRIMARY KEY"),
		V11_VAULT("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
	},
	{
		13,
		"signed audit checkpoints",
		V13_CHECKPOINTS("INTEGER PRIMARY KEY"),
		V13_CHECKPOINTS("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
	},
	{
		14,
		"auto-approval: single use of agent identities",
		V14_IDENTITY_USES,
		V14_IDENTITY_USES,
	},
	{
		15,
		"agent X.509-SVIDs: certificates of agent sessions",
		V15_AGENT_SVID_SQLITE,
		V15_AGENT_SVID_PG,
	},
	{
		16,
		"event delivery: indexes for settling events and reading back claims",
		V16_EVENT_INDEXES,
		V16_EVENT_INDEXES,
	},
};

const int att_migrations_count = (int)(sizeof(att_migrations) / sizeof(att_migrations[0]));
