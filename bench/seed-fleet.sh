#!/bin/sh
# seed-fleet.sh DB_FILE N: N realistic machines in a migrated SQLite
# database for the dashboard measurements (bench/dashboard.sh): full-width
# rows (a 1.3 KB EK certificate each), every status, role, manufacturer
# and EK verdict, registrations over 90 days, contacts over two days.
set -eu
DB=$1; N=$2
sqlite3 "$DB" <<SQL
PRAGMA journal_mode=WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N),
r AS (SELECT i, abs(random()) % 100 AS p, abs(random()) % 6 AS m, abs(random()) % 90 AS d,
             abs(random()) % 172800 AS c, abs(random()) % 10 AS v FROM n)
INSERT INTO machines (machine_id, ek_fingerprint, ek_source, ek_cert_b64, ek_key_type, ek_issuer,
  hw_uuid, hw_mac, hw_serial, hw_product, role, status, locked_from, cluster_id, hostname, assigned_ip,
  registered_at, approved_at, attested_at, locked_at, revoked_at, config_delivered_at, updated_at,
  ek_verified, ek_chain_error, ek_manufacturer, ek_model, last_contact_at)
SELECT lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-a'
         || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
  lower(hex(randomblob(48))), 'cert', replace(hex(randomblob(980)), '0', 'A'), 'RSA-2048',
  'CN=TPM EK intermediate ' || m, lower(hex(randomblob(16))), printf('52:54:00:%02x:%02x:%02x', i / 65536 % 256, i / 256 % 256, i % 256),
  'SN' || i, CASE m WHEN 0 THEN 'ProLiant DL360 Gen10' WHEN 1 THEN 'PowerEdge R650' ELSE 'ThinkSystem SR630' END,
  CASE WHEN i % 20 = 0 THEN 'controlplane' WHEN i % 3 = 0 THEN 'worker-infra' ELSE 'worker-app' END,
  CASE WHEN p < 3 THEN 'pending_approval' WHEN p < 6 THEN 'registered' WHEN p < 92 THEN 'attested'
       WHEN p < 96 THEN 'locked' ELSE 'revoked' END,
  CASE WHEN p >= 92 AND p < 96 THEN 'attested' END, 'default',
  CASE WHEN p >= 3 THEN printf('node-%06d', i) END, CASE WHEN p >= 3 THEN printf('10.%d.%d.%d/16', i / 65536 % 256, i / 256 % 256, i % 256) END,
  strftime('%Y-%m-%dT%H:%M:%S', 'now', '-' || d || ' days', '-' || (c % 86400) || ' seconds'),
  CASE WHEN p >= 3 THEN strftime('%Y-%m-%dT%H:%M:%S', 'now', '-' || d || ' days') END,
  CASE WHEN p >= 6 THEN strftime('%Y-%m-%dT%H:%M:%S', 'now', '-' || d || ' days', '+600 seconds') END,
  CASE WHEN p >= 92 AND p < 96 THEN strftime('%Y-%m-%dT%H:%M:%S', 'now', '-1 days') END,
  CASE WHEN p >= 96 THEN strftime('%Y-%m-%dT%H:%M:%S', 'now', '-2 days') END,
  CASE WHEN p >= 6 THEN strftime('%Y-%m-%dT%H:%M:%S', 'now', '-' || d || ' days', '+700 seconds') END,
  strftime('%Y-%m-%dT%H:%M:%S', 'now'),
  CASE WHEN v < 7 THEN 1 WHEN v < 8 THEN 0 END, CASE WHEN v = 7 THEN 'unable to get local issuer certificate' END,
  CASE m WHEN 0 THEN 'IFX' WHEN 1 THEN 'STM' WHEN 2 THEN 'NTC' WHEN 3 THEN 'INTC' WHEN 4 THEN 'AMD' END,
  CASE m WHEN 0 THEN 'SLB9670' WHEN 1 THEN 'ST33HTPH2E32' WHEN 2 THEN 'NPCT75x' END,
  CASE WHEN p >= 3 AND c > 1800 THEN strftime('%Y-%m-%dT%H:%M:%S', 'now', '-' || (c % 600) || ' seconds')
       WHEN p >= 3 THEN strftime('%Y-%m-%dT%H:%M:%S', 'now', '-' || (c * 40) || ' seconds') END
FROM r;
COMMIT;
ANALYZE;
SQL
