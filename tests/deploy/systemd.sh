#!/bin/sh
# packaging/systemd/: the unit verifies, its hardening scores what
# docs/deployment.md says, and attestd speaks the sd_notify protocol
# (READY=1, WATCHDOG=1 while /healthz answers, STOPPING=1) to a real
# AF_UNIX datagram socket.  TAP output.
#   env: SRCDIR, ATTESTD
set -u
: "${SRCDIR:?}" "${ATTESTD:?}"
. "$SRCDIR/tests/lib/test-lib.sh"
UNIT=$SRCDIR/packaging/systemd/itl-attestation.service
# the highest exposure score docs/deployment.md promises
MAX_EXPOSURE=1.5

have() { grep -qx "$1" "$UNIT"; }
for d in Type=notify NotifyAccess=main WatchdogSec=30s StateDirectory=itl-reg User=itl-attest \
	EnvironmentFile=/etc/itl-attestation/attestd.env ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes \
	CapabilityBoundingSet= SystemCallFilter=@system-service "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
	ProtectHome=yes PrivateDevices=yes MemoryDenyWriteExecute=yes UMask=0077; do
	check "the unit says $d" have "$d"
done
check "the unit runs /usr/bin/attestd and checks the configuration first" \
	sh -c "grep -qx 'ExecStart=/usr/bin/attestd' '$UNIT' && grep -qx 'ExecStartPre=/usr/bin/attestd --check-config' '$UNIT'"
check "the sysusers.d entry creates the unit's user" grep -q '^u itl-attest ' "$SRCDIR/packaging/systemd/sysusers.conf"
check "the sample environment file is only KEY=VALUE lines and comments" \
	sh -c "! grep -vE '^(#.*|[A-Z_][A-Z0-9_]*=.*|)\$' '$SRCDIR/packaging/systemd/attestd.env'"
check "every variable in the sample environment file is one attestd knows" \
	sh -c "env -i \$(grep -E '^[A-Z_]+=' '$SRCDIR/packaging/systemd/attestd.env' | tr '\n' ' ') \
		ITL_DB_URL=sqlite:///$TMP/x.db '$ATTESTD' --check-config >$TMP/cc.out 2>&1"

if command -v systemd-analyze >/dev/null 2>&1; then
	# verify needs the ExecStart binary to exist: point it at the build
	mkdir -p "$TMP/unit"
	sed "s#/usr/bin/attestd#$ATTESTD#" "$UNIT" > "$TMP/unit/itl-attestation.service"
	check "systemd-analyze verify accepts the unit" \
		sh -c "systemd-analyze verify '$TMP/unit/itl-attestation.service' >$TMP/verify.out 2>&1 && ! grep -q . $TMP/verify.out"
	systemd-analyze security --offline=true "$TMP/unit/itl-attestation.service" >"$TMP/security.out" 2>&1
	score=$(sed -n 's/.*Overall exposure level for itl-attestation.service: \([0-9.]*\).*/\1/p' "$TMP/security.out")
	say "systemd-analyze security: exposure $score"
	check "systemd-analyze security: exposure $score <= $MAX_EXPOSURE" \
		sh -c "[ -n '$score' ] && awk 'BEGIN { exit !($score <= $MAX_EXPOSURE) }'"
	check "docs/deployment.md states the exposure score" grep -q "exposure level.*$score" "$SRCDIR/docs/deployment.md"
else
	fail "systemd-analyze is installed (Debian: systemd)" "it is needed to verify the unit"
fi

# ---- sd_notify: a datagram receiver in Python stands in for systemd -------
recv() { # recv SOCKET OUT: append every datagram to OUT, one line per KEY=VALUE
	rm -f "$TMP/recv.ready"
	python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1].replace("@", "\0", 1))
with open(sys.argv[2], "a") as f:
    print("bound", flush=True)
    while True:
        m = s.recv(4096).decode()
        f.write(m + "\n--\n"); f.flush()
' "$1" "$2" > "$TMP/recv.ready" 2>&1 &
	RECV_PID=$!
	PIDS="$PIDS $RECV_PID"
	i=0; while ! grep -q bound "$TMP/recv.ready" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}
stop_recv() { kill "$RECV_PID" 2>/dev/null; wait "$RECV_PID" 2>/dev/null; PIDS=$(echo "$PIDS" | sed "s/ $RECV_PID//"); }
wait_for() { # wait_for FILE PATTERN [TENTHS]
	i=0; while ! grep -q "$2" "$1" 2>/dev/null && [ $i -lt "${3:-100}" ]; do sleep 0.1; i=$((i + 1)); done
	grep -q "$2" "$1" 2>/dev/null
}

N=$TMP/notify.log
recv "$TMP/notify.sock" "$N"
start_attestd NOTIFY_SOCKET="$TMP/notify.sock" WATCHDOG_USEC=1000000
check "READY=1 arrives once attestd accepts connections" wait_for "$N" '^READY=1$'
check "with STATUS= naming the listening address and MAINPID= its pid" \
	sh -c "grep -qx 'STATUS=listening on $(cat "$DATA/ready")' '$N' && grep -qx 'MAINPID=$ATTESTD_PID' '$N'"
api GET /healthz
expect 200 "the service answers after READY=1"
sleep 2.6
pings=$(grep -c '^WATCHDOG=1$' "$N")
check "WATCHDOG=1 every WATCHDOG_USEC/2 (500 ms): $pings pings in about 2.6 s" sh -c "[ $pings -ge 3 ] && [ $pings -le 8 ]"
check "attestd logs the watchdog interval" grep -q 'systemd watchdog: every 500 ms' "$DATA/attestd.log"
kill -STOP "$ATTESTD_PID"
before=$(grep -c '^WATCHDOG=1$' "$N"); sleep 1; after=$(grep -c '^WATCHDOG=1$' "$N")
kill -CONT "$ATTESTD_PID"
check "a stopped (hung) attestd sends no WATCHDOG=1, so systemd would restart it" [ "$before" = "$after" ]
check "the pings resume when it runs again" wait_for "$N" '^WATCHDOG=1$' 20
stop_attestd
check "STOPPING=1 on SIGTERM" wait_for "$N" '^STOPPING=1$' 20
stop_recv

# abstract socket names (@...) and a WATCHDOG_PID that names another process
N=$TMP/notify2.log
recv "@attest-notify-$$" "$N"
start_attestd NOTIFY_SOCKET="@attest-notify-$$" WATCHDOG_USEC=200000 WATCHDOG_PID=1
check "READY=1 over an abstract socket" wait_for "$N" '^READY=1$'
sleep 0.6
check "no watchdog when WATCHDOG_PID names another process" sh -c "! grep -q '^WATCHDOG=1' '$N'"
stop_attestd
stop_recv

# no NOTIFY_SOCKET: nothing to do; a bad one: refuse to start (systemd
# would otherwise wait for a READY=1 that never comes)
start_attestd
check "without NOTIFY_SOCKET attestd runs as before" kill -0 "$ATTESTD_PID"
stop_attestd
DATA=$(mktemp -d "$TMP/bad.XXXXXX")
env ITL_DB_URL="sqlite:///$DATA/m.db" ITL_ENROLLMENT_CA_DIR="$DATA/ca" NOTIFY_SOCKET=relative/path \
	"$ATTESTD" --listen 127.0.0.1:0 >"$DATA/log" 2>&1
rc=$?
check "a NOTIFY_SOCKET that is not a path or @name: attestd exits 1 and says why" \
	sh -c "[ $rc = 1 ] && grep -q 'cannot send READY=1 to \$NOTIFY_SOCKET (relative/path)' '$DATA/log'"
env ITL_DB_URL="sqlite:///$DATA/m.db" ITL_ENROLLMENT_CA_DIR="$DATA/ca" NOTIFY_SOCKET="$TMP/nobody-listens" \
	"$ATTESTD" --listen 127.0.0.1:0 >"$DATA/log2" 2>&1
rc=$?
check "a NOTIFY_SOCKET nobody listens on: exit 1" sh -c "[ $rc = 1 ] && grep -q 'cannot send READY=1' '$DATA/log2'"
done_testing
