#!/bin/sh
# Talos Image Factory: locally computed schematic, posted once in the
# background (never by a request), never carrying a token; factory
# failures never lose or slow a registration.
. "$SRCDIR/tests/lib/test-lib.sh"

start_factory() { # start_factory MODE: sets FACTORY, FLOG
	FLOG=$(mktemp -d "$TMP/factory.XXXXXX")
	"$FAKE_FACTORY" "$FLOG/ready" "$FLOG" "$1" &
	PIDS="$PIDS $!"
	i=0; while [ ! -s "$FLOG/ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	FACTORY="http://127.0.0.1:$(cat "$FLOG/ready")"
}

wait_posts() { # wait_posts N: until the factory has seen N posts (5 s)
	i=0; while [ "$(ls "$FLOG"/post-*.yaml 2>/dev/null | wc -l)" -lt "$1" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
}

start_factory ok
start_attestd ITL_FACTORY_URL="$FACTORY" ITL_FACTORY_EXTENSIONS="siderolabs/iscsi-tools,siderolabs/gvisor"
make_ek a rsa
api POST /api/v1/register "$(node_body)"
expect 200 "register with a reachable factory" '.iso_url != null'
SID=$(jget .schematic_id)
wait_posts 1
check "one schematic posted" test "$(ls "$FLOG"/post-*.yaml | wc -l)" = 1
check "factory id equals the locally computed id" test "$(sha256sum "$FLOG/post-1.yaml" | cut -d' ' -f1)" = "$SID"
printf 'customization:\n    extraKernelArgs:\n        - talos.config=http://attest.test/api/v1/config?mac=${mac}\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/gvisor\n            - siderolabs/intel-ucode\n            - siderolabs/iscsi-tools\n' > "$TMP/want.yaml"
check "schematic is canonical: generic config URL, extensions sorted and de-duplicated" cmp -s "$TMP/want.yaml" "$FLOG/post-1.yaml"
check "no config token in the schematic" sh -c "! grep -q '/config/' \"\$1\"" _ "$FLOG/post-1.yaml"
check "ISO URL per the factory's asset layout" test "$(jget .iso_url)" = "$FACTORY/image/$SID/v1.9.5/metal-amd64.iso"
check "installer image per the factory's registry layout" test "$(jget .installer_image)" = "127.0.0.1:$(cat "$FLOG/ready")/installer/$SID:v1.9.5"
make_ek b rsa
api POST /api/v1/register "$(node_body)"
check "the schematic is posted once, not per machine" test "$(ls "$FLOG"/post-*.yaml | wc -l)" = 1
stop_attestd

start_factory fail
start_attestd ITL_FACTORY_URL="$FACTORY"
make_ek c rsa
api POST /api/v1/register "$(node_body)"
expect 200 "factory 5xx never loses a registration" '.machine_id != null and .iso_url != null'
check "the machine is stored" test "$(sql 'SELECT COUNT(*) FROM machines')" = 1
wait_posts 1
sleep 0.3
check "log line: Talos Image Factory unreachable" grep -q "ERROR attestd.factory — Talos Image Factory unreachable: HTTP 500" "$DATA/attestd.log"
make_ek d rsa
sleep 2.1	# retries are at least 2 s apart
n=$(ls "$FLOG"/post-*.yaml | wc -l)
api POST /api/v1/register "$(node_body)"
wait_posts $((n + 1))
check "an unacknowledged schematic is retried after the next registration" test "$(ls "$FLOG"/post-*.yaml | wc -l)" = $((n + 1))
api POST /api/v1/register "$(node_body)"
sleep 0.5
check "but not at once again (at least 2 s apart)" test "$(ls "$FLOG"/post-*.yaml | wc -l)" = $((n + 1))
stop_attestd

# a factory that accepts and never answers: registrations and /healthz stay
# fast (the announcement waits in the background worker, not in a request)
start_factory hang
start_attestd ITL_FACTORY_URL="$FACTORY" ITL_FACTORY_TIMEOUT_SECONDS=8
for n in 1 2 3 4; do
	make_ek "h$n" rsa
	node_body > "$TMP/h$n.json"
	curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 30 -H 'Content-Type: application/json' \
		--data-binary @"$TMP/h$n.json" "$BASE/api/v1/register" > "$TMP/h$n.out" &
	CURLS="${CURLS:-} $!"
done
sleep 0.2
H=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 30 "$BASE/healthz")
for p in $CURLS; do wait "$p"; done
check "/healthz answers promptly during four registrations ($H)" awk -v h="$H" 'BEGIN { split(h, a, " "); exit !(a[1] == 200 && a[2] < 1.5) }'
check "each registration answers promptly ($(cat "$TMP"/h?.out | tr '\n' ' '))" \
	awk '$1 != 200 || $2 >= 1.5 { bad = 1 } END { exit bad }' "$TMP"/h1.out "$TMP"/h2.out "$TMP"/h3.out "$TMP"/h4.out
stop_attestd

start_attestd ITL_FACTORY_URL="http://127.0.0.1:9"
make_ek e rsa
api POST /api/v1/register "$(node_body)"
expect 200 "unreachable factory never loses a registration"
check "connection failure logged" grep -q "Talos Image Factory unreachable: " "$DATA/attestd.log"
stop_attestd

start_attestd ITL_ISO_URL="https://mirror.example/talos.iso"
make_ek f rsa
api POST /api/v1/register "$(node_body)"
expect 200 "ITL_ISO_URL is returned verbatim" '.iso_url == "https://mirror.example/talos.iso"'
done_testing
