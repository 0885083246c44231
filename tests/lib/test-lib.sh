# test-lib.sh - TAP helpers for attestd integration tests (git t/ style).
#
# Source it, call start_attestd, then use api/expect_* helpers.  Every
# process a test starts is recorded and killed (by PID) on exit.
set -u

: "${ATTESTD:?ATTESTD must point to the attestd binary}"
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attest-$TEST_NAME.XXXXXX")
PIDS=""
test_count=0
test_failed=0
ADMIN=test-admin-token-$$

cleanup() {
	for p in $PIDS; do
		[ "$p" = "${PG_PID:-}" ] && continue
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	if [ -n "$PG_DIR" ]; then
		[ -n "${PG_PID:-}" ] && kill -INT "$PG_PID" 2>/dev/null
		i=0; while [ -f "$PG_DIR/data/postmaster.pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
		rm -rf "$PG_DIR"
	fi
	if [ "$test_failed" -eq 0 ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

say() { printf '# %s\n' "$*"; }

pass() { test_count=$((test_count + 1)); echo "ok $test_count - $1"; }
fail() {
	test_count=$((test_count + 1)); test_failed=$((test_failed + 1))
	echo "not ok $test_count - $1"
	shift
	for line in "$@"; do printf '%s\n' "$line" | sed 's/^/#   /'; done
	printf '#   last status=%s body=%s\n' "${STATUS:-}" "$(printf '%s' "${BODY:-}" | head -c 600 | tr '\n' ' ')"
}

done_testing() {
	if [ -n "${ATTESTD_PID:-}" ] && kill -0 "$ATTESTD_PID" 2>/dev/null; then stop_attestd; fi
	echo "1..$test_count"
	[ "$test_failed" -eq 0 ]
	exit $?
}

# ---- database backend -----------------------------------------------------
# ATTEST_DB=postgresql runs the same tests against a throwaway PostgreSQL
# cluster (initdb + pg_ctl, unix socket only), one database per attestd start.
ATTEST_DB=${ATTEST_DB:-sqlite}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PG_DIR=""
PG_NDB=0
if [ "$(id -u)" = 0 ]; then RUNAS="runuser -u postgres --"; else RUNAS=""; fi

pg_start() {
	PG_DIR=$(mktemp -d /tmp/attest-pg.XXXXXX)
	chmod 755 "$PG_DIR"
	[ -n "$RUNAS" ] && chown postgres "$PG_DIR"
	$RUNAS "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 ||
		{ echo "Bail out! initdb failed"; cat "$PG_DIR/initdb.log" >&2; exit 1; }
	$RUNAS "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
		-o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -c fsync=off -c max_connections=200" \
		start >/dev/null 2>&1 || { echo "Bail out! postgres did not start"; cat "$PG_DIR/server.log" >&2; exit 1; }
	PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
	PIDS="$PIDS $PG_PID"
}

# pg_stop / pg_restart: stop or start the server (fault tests).
pg_stop() {
	$RUNAS "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1
	PIDS=$(echo "$PIDS" | sed "s/ $PG_PID//")
}
pg_restart() {
	$RUNAS "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
		-o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -c fsync=off -c max_connections=200" \
		start >/dev/null 2>&1
	PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
	PIDS="$PIDS $PG_PID"
}

# new_db: create a fresh empty database; sets PG_DB and DB_URL
new_db() {
	PG_NDB=$((PG_NDB + 1))
	PG_DB=t$PG_NDB
	"$PG_BIN/psql" -h "$PG_DIR" -U postgres -d postgres -qAt -c "CREATE DATABASE $PG_DB" >/dev/null
	DB_URL="postgresql:///$PG_DB?host=$PG_DIR&user=postgres"
}

if [ "$ATTEST_DB" = postgresql ]; then pg_start; fi

# start_attestd [VAR=value ...]: start a fresh attestd on 127.0.0.1:0
# (or $LISTEN).
# Sets BASE, ATTESTD_PID, DATA; the log is $DATA/attestd.log.
start_attestd() {
	DATA=$(mktemp -d "$TMP/attestd.XXXXXX")
	mkdir -p "$DATA/configs"
	if [ -n "${SHARED_DB_URL:-}" ]; then DB_URL=$SHARED_DB_URL
	elif [ "$ATTEST_DB" = postgresql ]; then new_db
	else DB_URL="sqlite:///$DATA/machines.db"; fi
	cp "$SRCDIR/examples/configs/"*.yaml "$DATA/configs/"
	rm -f "$DATA/ready"
	env ITL_DB_URL="$DB_URL" \
		ITL_CONFIG_CACHE_DIR="$DATA/configs" \
		ITL_ENROLLMENT_CA_DIR="$DATA/ca" \
		ITL_SERVICE_URL="http://attest.test" \
		ITL_FACTORY_URL="http://127.0.0.1:9" \
		ITL_FACTORY_TIMEOUT_SECONDS=2 \
		ITL_ADMIN_TOKEN="$ADMIN" \
		ITL_THREADS=2 \
		"$@" "$ATTESTD" --listen "${LISTEN:-127.0.0.1:0}" --ready-file "$DATA/ready" \
		>"$DATA/attestd.log" 2>&1 &
	ATTESTD_PID=$!
	PIDS="$PIDS $ATTESTD_PID"
	i=0
	while [ ! -s "$DATA/ready" ] && [ $i -lt 200 ]; do
		if ! kill -0 "$ATTESTD_PID" 2>/dev/null; then break; fi
		sleep 0.05; i=$((i + 1))
	done
	if [ ! -s "$DATA/ready" ]; then
		echo "Bail out! attestd did not start"; cat "$DATA/attestd.log" >&2; exit 1
	fi
	BASE="http://$(cat "$DATA/ready")"
	DB="$DATA/machines.db"
}

# stop_attestd: SIGTERM, then check it shut down cleanly (under ASan a
# leak or memory error makes the exit status non-zero).
stop_attestd() {
	kill "$ATTESTD_PID" 2>/dev/null
	wait "$ATTESTD_PID" 2>/dev/null
	rc=$?
	PIDS=$(echo "$PIDS" | sed "s/ $ATTESTD_PID//")
	if [ "$rc" = 0 ]; then pass "attestd shut down cleanly"
	else fail "attestd shut down cleanly" "exit status $rc; log tail:" "$(tail -20 "$DATA/attestd.log")"; fi
	ATTESTD_PID=""
}

# api METHOD PATH [JSON-BODY] [curl args...]: sets STATUS, BODY, HEADERS.
api() {
	method=$1; path=$2; shift 2
	body=""
	if [ $# -gt 0 ]; then body=$1; shift; fi
	if [ -n "$body" ]; then
		printf '%s' "$body" > "$TMP/req.body"
		set -- -H 'Content-Type: application/json' --data-binary @"$TMP/req.body" "$@"
	fi
	STATUS=$(curl -sS -o "$TMP/resp.body" -D "$TMP/resp.headers" -w '%{http_code}' \
		-X "$method" --max-time 20 "$@" "$BASE$path")
	BODY=$(cat "$TMP/resp.body")
	HEADERS=$(cat "$TMP/resp.headers")
}

# admin METHOD PATH [BODY] [curl args...]: api with the break-glass admin token.
admin() {
	m=$1; p=$2; shift 2
	b=""
	if [ $# -gt 0 ]; then b=$1; shift; fi
	api "$m" "$p" "$b" -H "Authorization: Bearer $ADMIN" "$@"
}

jget() { printf '%s' "$BODY" | jq -r "$1"; }

# expect STATUS DESC [JQ-BOOLEAN]
expect() {
	want=$1; desc=$2
	if [ "$STATUS" != "$want" ]; then fail "$desc" "expected HTTP $want, got $STATUS"; return 1; fi
	if [ $# -ge 3 ]; then
		if ! printf '%s' "$BODY" | jq -e "$3" >/dev/null 2>&1; then
			fail "$desc" "jq check failed: $3"; return 1
		fi
	fi
	pass "$desc"
}

check() { # check DESC COMMAND...
	desc=$1; shift
	if "$@" >&2; then pass "$desc"; else fail "$desc" "command failed: $*"; fi
}

sql() {
	if [ "$ATTEST_DB" = postgresql ]; then "$PG_BIN/psql" -h "$PG_DIR" -U postgres -d "$PG_DB" -qAt -c "$1"
	else sqlite3 -cmd ".timeout 10000" "$DB" "$1"; fi
}

# make_ek NAME [rsa|ec|ec384|rsa3072] [extra openssl req args]: writes
# $TMP/NAME.pem, sets EK_B64 and EK_FP (canonical SHA-384 of the SPKI).
make_ek() {
	name=$1; kind=${2:-rsa}
	case $kind in
	rsa) kopt="-newkey rsa:2048"; ku="keyEncipherment" ;;
	rsa3072) kopt="-newkey rsa:3072"; ku="keyEncipherment" ;;
	ec) kopt="-newkey ec -pkeyopt ec_paramgen_curve:P-256"; ku="keyAgreement" ;;
	ec384) kopt="-newkey ec -pkeyopt ec_paramgen_curve:P-384"; ku="keyAgreement" ;;
	esac
	# shellcheck disable=SC2086
	openssl req -x509 $kopt -nodes -keyout "$TMP/$name.key" -out "$TMP/$name.pem" -days 30 \
		-subj "/CN=test EK $name" -addext "keyUsage=critical,$ku" >/dev/null 2>&1
	EK_B64=$(base64 -w0 "$TMP/$name.pem")
	EK_FP=$(openssl x509 -in "$TMP/$name.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
}

node_body() { # node_body [extra json fields]: register/attest body for the current EK
	extra=${1:-}
	printf '{"ek_fingerprint":"%s","ek_cert_pem":"%s"%s}' "$EK_FP" "$EK_B64" "$extra"
}

counts() { # machines, audit entries
	echo "$(sql 'SELECT COUNT(*) FROM machines'):$(sql 'SELECT COUNT(*) FROM audit_log')"
}

# make_cert_window NAME NOT_BEFORE NOT_AFTER (YYYYMMDDHHMMSSZ): an RSA EK
# certificate with an explicit validity window, signed by a throwaway CA.
make_cert_window() {
	name=$1
	d="$TMP/ca-$name"
	mkdir -p "$d/newcerts"; : > "$d/index.txt"; echo 01 > "$d/serial"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/CN=test ca" -days 36500 >/dev/null 2>&1
	openssl req -new -newkey rsa:2048 -nodes -keyout "$TMP/$name.key" -out "$d/req.csr" -subj "/CN=$name" >/dev/null 2>&1
	cat > "$d/ca.cnf" <<EOC
[ca]
default_ca = d
[d]
dir = $d
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
default_md = sha256
policy = p
[p]
commonName = supplied
[ext]
keyUsage = critical,keyEncipherment
EOC
	openssl ca -batch -notext -config "$d/ca.cnf" -extensions ext -startdate "$2" -enddate "$3" \
		-in "$d/req.csr" -out "$TMP/$name.pem" >/dev/null 2>&1
	EK_B64=$(base64 -w0 "$TMP/$name.pem")
	EK_FP=$(openssl x509 -in "$TMP/$name.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
}
