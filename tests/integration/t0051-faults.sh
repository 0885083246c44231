#!/bin/sh
# Faults under write load (docs/operations.md "Failure behaviour"): kill -9
# of attestd in the middle of write transactions; PostgreSQL stopped and
# restarted mid-load; the database's volume full (a small tmpfs: SQLite's
# data directory, a PostgreSQL tablespace); the SQLite file read-only.  Every write the service
# acknowledged (200) survives, the audit chain verifies, failures answer 503
# with a reason (never 500), and the service recovers without a restart.
. "$SRCDIR/tests/lib/test-lib.sh"

skip() { test_count=$((test_count + 1)); echo "ok $test_count # skip $1"; }

# load TAG: three clients importing machines until $TMP/stop.TAG exists;
# every answer's status goes to codes.TAG, the machine ids answered 200 to
# acked.TAG (written only after the answer arrived).
LOADPIDS=""
load() {
	rm -f "$TMP/stop.$1"
	for k in 1 2 3; do
		(
			i=0
			while [ ! -f "$TMP/stop.$1" ]; do
				i=$((i + 1))
				fp=$(printf '%s' "$1-$k-$i-$$" | sha256sum | cut -c1-64)
				code=$(curl -s -o "$TMP/lb.$1.$k" -w '%{http_code}' --max-time 15 -H "Authorization: Bearer $ADMIN" \
					-H 'Content-Type: application/json' \
					--data-binary "{\"ek_fingerprint\":\"$fp\",\"role\":\"worker-app\"}" "$BASE/api/v1/machines/import")
				echo "$code $(head -c 200 "$TMP/lb.$1.$k" 2>/dev/null | tr '\n' ' ')" >> "$TMP/codes.$1"
				if [ "$code" = 200 ]; then jq -r .machine_id "$TMP/lb.$1.$k" >> "$TMP/acked.$1"; fi
				[ "$code" = 000 ] && sleep 0.1
			done
		) &
		LOADPIDS="$LOADPIDS $!"
	done
}
stop_load() {
	touch "$TMP/stop.$1"
	for p in $LOADPIDS; do wait "$p" 2>/dev/null; done
	LOADPIDS=""
}
acked_count() { sort -u "$TMP/acked.$1" 2>/dev/null | grep -c .; }
# every acknowledged machine is stored, with its audit entry
acked_stored() {
	ids=$(sort -u "$TMP/acked.$1" | sed "s/.*/'&'/" | paste -sd, -)
	[ -n "$ids" ] || return 1
	n=$(acked_count "$1")
	m=$(sql "SELECT COUNT(*) FROM machines WHERE machine_id IN ($ids)")
	a=$(sql "SELECT COUNT(DISTINCT machine_id) FROM audit_log WHERE machine_id IN ($ids)")
	[ "$m" = "$n" ] && [ "$a" = "$n" ] || { say "acked $n, stored $m, audited $a"; return 1; }
}
no_500() { ! grep -q '^5[0-9][0-9] ' "$TMP/codes.$1" || ! grep -v '^503 ' "$TMP/codes.$1" | grep -q '^5'; }
chain_ok() {
	admin GET /api/v1/audit/verify
	expect 200 "$1" '.valid == true'
}
wait_codes() { # wait_codes TAG REGEX SECONDS: until a new answer matching REGEX arrives
	start=$(cat "$TMP/codes.$1" 2>/dev/null | wc -l); i=0
	while [ $i -lt $(($3 * 10)) ]; do
		tail -n +"$((start + 1))" "$TMP/codes.$1" 2>/dev/null | grep -qE "$2" && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

# ---- kill -9 during write transactions ------------------------------------
if [ "$ATTEST_DB" = postgresql ]; then new_db; SHARED_DB_URL=$DB_URL; fi
start_attestd
SHARED_DB_URL=${SHARED_DB_URL:-$DB_URL}; D1=$DATA
load kill
check "load is acknowledged" wait_codes kill '^200 ' 20
sleep 3
kill -9 "$ATTESTD_PID"; wait "$ATTESTD_PID" 2>/dev/null
PIDS=$(echo "$PIDS" | sed "s/ $ATTESTD_PID//")
stop_load kill
say "$(acked_count kill) imports acknowledged before kill -9"
start_attestd
DB="$D1/machines.db"
check "after kill -9 every acknowledged write is stored, with its audit entry" acked_stored kill
chain_ok "the audit chain verifies after kill -9"
admin POST /api/v1/machines/import "{\"ek_fingerprint\":\"$(printf 'after-kill' | sha256sum | cut -c1-64)\",\"role\":\"worker-app\"}"
expect 200 "writes work after the restart"

# ---- PostgreSQL stopped and restarted mid-load ----------------------------
if [ "$ATTEST_DB" = postgresql ]; then
	load pg
	check "load is acknowledged" wait_codes pg '^200 ' 20
	pg_stop
	check "while PostgreSQL is down writes answer 503" wait_codes pg '^503 ' 20
	api GET /readyz
	expect 503 "/readyz says not ready while PostgreSQL is down"
	sleep 1
	pg_restart
	check "writes succeed again without restarting attestd" wait_codes pg '^200 ' 30
	api GET /readyz
	expect 200 "/readyz ready again"
	stop_load pg
	check "attestd kept running" kill -0 "$ATTESTD_PID"
	check "no answer was a 5xx other than 503" no_500 pg
	check "the outage answers named the database" grep -q '^503 .*[Dd]atabase' "$TMP/codes.pg"
	check "every acknowledged write is stored, with its audit entry" acked_stored pg
	chain_ok "the audit chain verifies after the PostgreSQL restart"
fi

# ---- the database's volume full ----------------------------------------------
# SQLite: the data directory on a small tmpfs.  PostgreSQL: the test
# database in a tablespace on one (its WAL stays in the cluster's directory).
MNT=""
if [ "$(id -u)" = 0 ]; then
	MNT=$(mktemp -d "$TMP/mnt.XXXXXX")
	mount -t tmpfs -o size=32m tmpfs "$MNT" 2>/dev/null || { rmdir "$MNT"; MNT=""; }
fi
if [ -n "$MNT" ]; then
	trap 'umount "$MNT" 2>/dev/null; cleanup' EXIT
	if [ "$ATTEST_DB" = postgresql ]; then
		chmod 755 "$TMP"; chown postgres "$MNT"; chmod 700 "$MNT"
		"$PG_BIN/psql" -h "$PG_DIR" -U postgres -d postgres -qAt -c "CREATE TABLESPACE small LOCATION '$MNT'" >/dev/null
		PG_NDB=$((PG_NDB + 1)); PG_DB=t$PG_NDB
		"$PG_BIN/psql" -h "$PG_DIR" -U postgres -d postgres -qAt -c "CREATE DATABASE $PG_DB TABLESPACE small" >/dev/null
		SHARED_DB_URL="postgresql:///$PG_DB?host=$PG_DIR&user=postgres"
		start_attestd
	else
		SHARED_DB_URL="sqlite:///$MNT/machines.db"
		start_attestd
		DB="$MNT/machines.db"
	fi
	load full
	check "load on the small volume is acknowledged" wait_codes full '^200 ' 20
	dd if=/dev/zero of="$MNT/filler" bs=64k 2>/dev/null
	check "with the volume full writes answer 503" wait_codes full '^503 ' 30
	admin GET /api/v1/machines
	expect 200 "reads still work on a full volume"
	rm -f "$MNT/filler"
	check "writes succeed again once space is freed, without a restart" wait_codes full '^200 ' 30
	stop_load full
	check "no answer was a 5xx other than 503 (disk full)" no_500 full
	check "the disk-full answers say the storage is full" grep -q '^503 .*Database storage is full' "$TMP/codes.full"
	check "every acknowledged write is stored (disk full)" acked_stored full
	chain_ok "the audit chain verifies after disk full"
	check "log line names the cause" grep -qiE "full|No space left" "$DATA/attestd.log"
	stop_attestd
	if [ "$ATTEST_DB" = postgresql ]; then
		"$PG_BIN/psql" -h "$PG_DIR" -U postgres -d postgres -qAt -c "DROP DATABASE $PG_DB" >/dev/null
		"$PG_BIN/psql" -h "$PG_DIR" -U postgres -d postgres -qAt -c "DROP TABLESPACE small" >/dev/null
	fi
	umount "$MNT" && MNT=""
else
	skip "disk full: mounting a tmpfs needs root"
fi

# ---- SQLite: the database file read-only -----------------------------------
# attestd runs as an unprivileged user here (root ignores file modes).  A
# mode change reaches only connections opened after it: attestd started on
# a read-only file answers writes 503 and recovers once the mode is fixed.
if [ "$ATTEST_DB" = sqlite ] && [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	RO=$(mktemp -d "$TMP/ro.XXXXXX"); chmod 755 "$TMP" "$RO"; chown nobody "$RO"
	cat > "$TMP/as-nobody" <<EOS
#!/bin/sh
for a; do [ "\$prev" = --ready-file ] && chown -R nobody "\$(dirname "\$a")"; prev=\$a; done
exec setpriv --reuid=nobody --regid=nogroup --clear-groups "$ATTESTD" "\$@"
EOS
	chmod 755 "$TMP/as-nobody"
	REAL_ATTESTD=$ATTESTD; ATTESTD="$TMP/as-nobody"
	SHARED_DB_URL="sqlite:///$RO/machines.db"
	start_attestd
	DB="$RO/machines.db"
	load ro1
	check "load as an unprivileged user is acknowledged" wait_codes ro1 '^200 ' 20
	stop_load ro1
	stop_attestd
	chmod 0444 "$RO"/machines.db*
	start_attestd
	DB="$RO/machines.db"
	admin POST /api/v1/machines/import "{\"ek_fingerprint\":\"$(printf 'ro-1' | sha256sum | cut -c1-64)\",\"role\":\"worker-app\"}"
	expect 503 "on a read-only database file writes answer 503, saying so" '.detail | test("read-only")'
	check "... with Retry-After" sh -c "printf '%s' \"\$1\" | grep -qi '^Retry-After: 5'" _ "$HEADERS"
	admin GET /api/v1/machines
	expect 200 "reads still work on a read-only database file"
	chmod 0644 "$RO"/machines.db*
	admin POST /api/v1/machines/import "{\"ek_fingerprint\":\"$(printf 'ro-2' | sha256sum | cut -c1-64)\",\"role\":\"worker-app\"}"
	expect 200 "writable again: writes succeed without a restart"
	echo "$(jget .machine_id)" >> "$TMP/acked.ro1"
	check "every acknowledged write is stored (read-only)" acked_stored ro1
	chain_ok "the audit chain verifies after read-only"
	stop_attestd
	ATTESTD=$REAL_ATTESTD
elif [ "$ATTEST_DB" = sqlite ]; then
	skip "read-only database file: needs root (to run attestd as another user) and setpriv"
fi
done_testing
