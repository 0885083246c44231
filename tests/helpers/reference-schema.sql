-- The reference service's SQLite schema (SQLModel create_all), as listed in
-- reference-service.md §1.4: machine (with migrations 001 and 002 applied),
-- audit_log, approval_request.  Used by t0041-import-reference.sh.
CREATE TABLE machine (
	id INTEGER NOT NULL,
	machine_id VARCHAR NOT NULL,
	ek_fingerprint VARCHAR NOT NULL,
	ek_source VARCHAR NOT NULL,
	hw_uuid VARCHAR NOT NULL,
	hw_mac VARCHAR NOT NULL,
	hw_serial VARCHAR NOT NULL,
	hw_product VARCHAR NOT NULL,
	role VARCHAR(12) NOT NULL,
	status VARCHAR(16) NOT NULL,
	hostname VARCHAR,
	assigned_ip VARCHAR,
	config_token VARCHAR,
	token_consumed BOOLEAN NOT NULL,
	registered_at DATETIME NOT NULL,
	attested_at DATETIME,
	locked_at DATETIME,
	revoked_at DATETIME,
	wipe_pending BOOLEAN NOT NULL,
	ak_pub VARCHAR,
	ek_cert_pem VARCHAR,
	ek_fingerprint_sha384 VARCHAR,
	cluster_id TEXT NOT NULL DEFAULT 'default',
	PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_machine_machine_id ON machine (machine_id);
CREATE UNIQUE INDEX ix_machine_ek_fingerprint ON machine (ek_fingerprint);
CREATE INDEX ix_machine_config_token ON machine (config_token);
CREATE INDEX ix_machine_ek_fingerprint_sha384 ON machine (ek_fingerprint_sha384);
CREATE INDEX ix_machine_cluster_id ON machine (cluster_id);
CREATE TABLE audit_log (
	id INTEGER NOT NULL,
	timestamp DATETIME NOT NULL,
	operator_cn VARCHAR NOT NULL,
	action VARCHAR NOT NULL,
	machine_id VARCHAR,
	prev_state VARCHAR,
	new_state VARCHAR,
	detail VARCHAR,
	prev_hash VARCHAR NOT NULL,
	entry_hash VARCHAR NOT NULL,
	PRIMARY KEY (id)
);
CREATE TABLE approval_request (
	id INTEGER NOT NULL,
	machine_id VARCHAR NOT NULL,
	operator_cn VARCHAR NOT NULL,
	role VARCHAR(12) NOT NULL,
	hostname VARCHAR,
	assigned_ip VARCHAR,
	created_at DATETIME NOT NULL,
	expires_at DATETIME NOT NULL,
	consumed BOOLEAN NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_approval_request_machine_id ON approval_request (machine_id);
