#!/bin/sh
# attestd backup DIR / attestd restore DIR: an online backup of a running
# installation (database of either backend as SQLite, Enrollment CA, role
# configs, manifest), restored into a fresh data directory and database:
# the audit chain verifies and ends where it did, the CA is the same, a
# machine still attests and the chain goes on.  Damaged or mismatching
# backups are refused before anything is written.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd
make_ek node1 rsa
E1_BODY=$(node_body)
api POST /api/v1/register "$E1_BODY"
MID=$(jget .machine_id)
admin POST "/api/v1/machines/$MID/approve" '{"role":"controlplane","hostname":"cp-01","reason":"backup test"}'
api POST /api/v1/attest "$E1_BODY"
expect 200 "a machine attested before the backup" '.status == "attested" and .action == "apply-config"'
admin POST "/api/v1/machines/$MID/lock" '{"reason":"x"}'
admin POST "/api/v1/machines/$MID/unlock"
printf 'section: AgentAttestation\nschema: v1\nspec:\n  policies:\n    - {name: p, requiredAttestors: [{type: http_dns, config: {allowedDomains: [a.example]}}]}\n' > "$TMP/policy.yaml"
admin PUT /api/v1/clusters/c1/config/AgentAttestation "" -H 'Content-Type: application/yaml' --data-binary @"$TMP/policy.yaml"
expect 200 "an agent attestation policy is set"
admin GET /api/v1/audit/verify
expect 200 "the chain verifies before the backup" '.valid == true and .entries >= 3'
ROOT=$(jget .root_hash); ENTRIES=$(jget .entries)
SERIAL=$(openssl x509 -in "$DATA/ca/enrollment-ca.crt" -noout -serial)
ORIG_DATA=$DATA; ORIG_URL=$DB_URL
run() { # run ARGS...: attestd with the original installation's locations
	env ITL_DB_URL="${R_URL:-$ORIG_URL}" ITL_ENROLLMENT_CA_DIR="${R_CA:-$ORIG_DATA/ca}" \
		ITL_CONFIG_CACHE_DIR="${R_CONFIGS:-$ORIG_DATA/configs}" "$ATTESTD" "$@" >"$TMP/out" 2>&1
	RC=$?
}

say "--- backup, online"
B=$TMP/backup-1
run backup "$B"
check "attestd backup exits 0 while the service runs" sh -c "[ $RC = 0 ] && grep -q '^backup $B: 1 machines, $ENTRIES audit entries (root $ROOT)' $TMP/out"
check "the backup directory is private (0700) and no .partial is left" \
	sh -c "[ \$(stat -c %a '$B') = 700 ] && [ ! -e '$B.partial' ]"
check "manifest: format, versions, backend, the audit root" jq -e --arg r "$ROOT" --argjson e "$ENTRIES" --arg b "$ATTEST_DB" \
	'.format == "itl-attestation-backup" and .format_version == 1 and (.attestd_version | test("^[0-9]+\\.")) and .source_backend == $b and .schema_version >= 10 and .machines == 1 and .audit.entries == $e and .audit.root_hash == $r' "$B/manifest.json"
check "manifest: every file with its size and SHA-256, as on disk" sh -c "
	cd '$B' && jq -r '.files[] | \"\(.sha256)  \(.path)\"' manifest.json > $TMP/sums && sha256sum -c --quiet $TMP/sums &&
	jq -e '[.files[].path] | (index(\"machines.db\") != null) and (index(\"ca/enrollment-ca.key\") != null) and (index(\"ca/enrollment-ca.crt\") != null) and (map(select(startswith(\"configs/\"))) | length) >= 3' manifest.json >/dev/null &&
	jq -e 'all(.files[]; .size >= 0)' manifest.json >/dev/null"
check "the CA key in the backup is 0600" sh -c "[ \$(stat -c %a '$B/ca/enrollment-ca.key') = 600 ] && cmp -s '$B/ca/enrollment-ca.key' '$ORIG_DATA/ca/enrollment-ca.key'"
check "the database in the backup is SQLite with the machine" \
	sh -c "[ \"\$(sqlite3 '$B/machines.db' \"SELECT status FROM machines WHERE machine_id='$MID'\")\" = attested ]"
run backup "$B"
check "backup into an existing directory: exit 1, the backup untouched" \
	sh -c "[ $RC = 1 ] && grep -q 'exists; back up into a new directory' $TMP/out && cd '$B' && sha256sum -c --quiet $TMP/sums"
R_CA=$TMP/no-such-ca run backup "$TMP/backup-noca"
check "backup without an Enrollment CA: exit 1, nothing left behind" \
	sh -c "[ $RC = 1 ] && grep -q 'Enrollment CA' $TMP/out && [ ! -e '$TMP/backup-noca' ] && [ ! -e '$TMP/backup-noca.partial' ]"
run backup "$TMP/backup-2/"
check "DIR/ with a trailing slash names DIR" sh -c "[ $RC = 0 ] && [ -s '$TMP/backup-2/manifest.json' ] && [ ! -e '$TMP/backup-2/.partial' ]"
run backup
check "backup without DIR: usage, exit 2" sh -c "[ $RC = 2 ] && grep -q 'usage: attestd backup DIR' $TMP/out"

# a change after the backup, which the restore must not bring back
make_ek node2 rsa
api POST /api/v1/register "$(node_body)"
expect 200 "a second machine registered after the backup"
stop_attestd

say "--- restore: refused before anything is written"
fresh() { # a fresh data directory and database: R_DIR, R_URL, R_CA, R_CONFIGS
	R_DIR=$(mktemp -d "$TMP/restored.XXXXXX")
	if [ "$ATTEST_DB" = postgresql ]; then new_db; R_URL=$DB_URL; else R_URL="sqlite:///$R_DIR/machines.db"; fi
	R_CA=$R_DIR/ca; R_CONFIGS=$R_DIR/configs
}
untouched() { # nothing written: no CA, no configs, no machines
	[ ! -e "$R_CA" ] && [ ! -e "$R_CONFIGS" ] || return 1
	if [ "$ATTEST_DB" = postgresql ]; then
		[ "$("$PG_BIN/psql" -h "$PG_DIR" -U postgres -d "$PG_DB" -qAt -c "SELECT to_regclass('machines') IS NULL")" = t ] ||
			[ "$("$PG_BIN/psql" -h "$PG_DIR" -U postgres -d "$PG_DB" -qAt -c "SELECT COUNT(*) FROM machines")" = 0 ]
	else [ ! -s "$R_DIR/machines.db" ] || [ "$(sqlite3 "$R_DIR/machines.db" 'SELECT COUNT(*) FROM machines')" = 0 ]; fi
}
bad() { # bad NAME: a copy of the backup to damage
	rm -rf "$TMP/$1"; cp -a "$B" "$TMP/$1"; BAD=$TMP/$1
}
fresh
bad flipped; printf 'X' | dd of="$BAD/machines.db" bs=1 seek=200 conv=notrunc 2>/dev/null
run restore "$BAD"
check "a changed byte in machines.db: exit 1, reported, nothing written" \
	sh -c "[ $RC = 1 ] && grep -q 'machines.db does not match its size and SHA-256' $TMP/out && grep -q 'nothing restored' $TMP/out" && check "... nothing written" untouched
bad noca; rm "$BAD/ca/enrollment-ca.key"
run restore "$BAD"
check "the CA key missing: exit 1, reported" sh -c "[ $RC = 1 ] && grep -q 'ca/enrollment-ca.key is missing' $TMP/out" && check "... nothing written" untouched
bad nomanifest; rm "$BAD/manifest.json"
run restore "$BAD"
check "no manifest: exit 1" sh -c "[ $RC = 1 ] && grep -q 'manifest.json is missing' $TMP/out"
bad escape; jq '.files += [{"path":"../../etc/passwd","size":1,"sha256":"'"$(printf %064d 0)"'"}]' "$B/manifest.json" > "$BAD/manifest.json"
run restore "$BAD"
check "a manifest naming a path outside the backup: refused" sh -c "[ $RC = 1 ] && grep -q 'not {path, size, sha256} with a known path' $TMP/out" && check "... nothing written" untouched
bad newer; jq '.schema_version = 9999' "$B/manifest.json" > "$BAD/manifest.json"
run restore "$BAD"
check "a backup from a newer schema: refused" sh -c "[ $RC = 1 ] && grep -q 'newer than this attestd' $TMP/out"
bad format; jq '.format = "something-else" | .format_version = 2' "$B/manifest.json" > "$BAD/manifest.json"
run restore "$BAD"
check "another format or format version: refused, both reported" \
	sh -c "[ $RC = 1 ] && grep -q 'format is not' $TMP/out && grep -q 'format_version is not 1' $TMP/out"
bad notjson; echo '{"format":' > "$BAD/manifest.json"
run restore "$BAD"
check "a manifest that is not JSON: refused" sh -c "[ $RC = 1 ] && grep -q 'not a JSON object' $TMP/out"
mkdir -p "$R_CA"; openssl ecparam -name secp384r1 -genkey -noout -out "$R_CA/enrollment-ca.key" 2>/dev/null
run restore "$B"
check "a data directory holding a different Enrollment CA: refused, the CA left alone" \
	sh -c "[ $RC = 1 ] && grep -q 'enrollment-ca.key already exists and differs' $TMP/out && ! cmp -s '$R_CA/enrollment-ca.key' '$B/ca/enrollment-ca.key'"
rm -rf "$R_CA"
check "... and no database written" untouched

say "--- restore into a fresh data directory"
run restore "$B"
check "attestd restore exits 0 and names the audit root" \
	sh -c "[ $RC = 0 ] && grep -q 'restored $B: 1 machines, $ENTRIES audit entries (root $ROOT, as in the manifest)' $TMP/out"
check "the CA files are installed as backed up (key 0600)" \
	sh -c "cmp -s '$R_CA/enrollment-ca.key' '$ORIG_DATA/ca/enrollment-ca.key' && cmp -s '$R_CA/enrollment-ca.crt' '$ORIG_DATA/ca/enrollment-ca.crt' && [ \$(stat -c %a '$R_CA/enrollment-ca.key') = 600 ]"
check "the role configs are installed" sh -c "[ \$(ls '$R_CONFIGS' | wc -l) -ge 3 ] && diff -r '$R_CONFIGS' '$ORIG_DATA/configs' >/dev/null"
check "the backup itself is unchanged by the restore" sh -c "cd '$B' && sha256sum -c --quiet $TMP/sums"
run restore "$B"
check "restoring again into the now non-empty database: exit 1, the CA files kept" \
	sh -c "[ $RC = 1 ] && grep -q 'not empty' $TMP/out && cmp -s '$R_CA/enrollment-ca.key' '$B/ca/enrollment-ca.key'"

SHARED_DB_URL=$R_URL start_attestd ITL_ENROLLMENT_CA_DIR="$R_CA" ITL_CONFIG_CACHE_DIR="$R_CONFIGS"
check "attestd on the restored data loads the same Enrollment CA" \
	sh -c "grep -q 'Enrollment CA loaded from $R_CA' '$DATA/attestd.log' && [ \"\$(openssl x509 -in '$R_CA/enrollment-ca.crt' -noout -serial)\" = '$SERIAL' ]"
admin GET /api/v1/audit/verify
expect 200 "the restored chain verifies and ends where it did at backup time" \
	".valid == true and .entries == $ENTRIES and .root_hash == \"$ROOT\""
admin GET /api/v1/clusters/c1/config/AgentAttestation
expect 200 "the agent attestation policy is restored" '(tostring | contains("a.example"))'
admin GET /api/v1/machines
expect 200 "the machine is there, the one registered after the backup is not" \
	"(map(.machine_id) == [\"$MID\"]) and .[0].status == \"attested\" and .[0].hostname == \"cp-01\""
api POST /api/v1/attest "$E1_BODY"
expect 200 "the machine still attests (unlocked before the backup: a new config token)" \
	".status == \"attested\" and .machine_id == \"$MID\" and .action == \"apply-config\" and (.config_token | length) == 43"
api GET "/api/v1/config/$(jget .config_token)"
expect 200 "its config is served from the restored role configs"
admin GET /api/v1/audit/verify
expect 200 "the chain verifies with the new entries" ".valid == true and .entries > $ENTRIES"
admin GET "/api/v1/audit?per_page=200"
expect 200 "the first new entry is chained to the restored root" \
	"[.. | objects | select(has(\"prev_hash\")) | select(.prev_hash == \"$ROOT\")] | length == 1"
api POST /api/v1/attest "$E1_BODY"
expect 200 "later polls: already_attested" '.status == "already_attested"'
done_testing
