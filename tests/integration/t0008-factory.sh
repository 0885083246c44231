#!/bin/sh
# Talos Image Factory: locally computed schematic, posted once, never
# carrying a token; factory failures never lose a registration.
. "$SRCDIR/tests/lib/test-lib.sh"

start_factory() { # start_factory MODE: sets FACTORY, FLOG
	FLOG=$(mktemp -d "$TMP/factory.XXXXXX")
	"$FAKE_FACTORY" "$FLOG/ready" "$FLOG" "$1" &
	PIDS="$PIDS $!"
	i=0; while [ ! -s "$FLOG/ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	FACTORY="http://127.0.0.1:$(cat "$FLOG/ready")"
}

start_factory ok
start_attestd ITL_FACTORY_URL="$FACTORY" ITL_FACTORY_EXTENSIONS="siderolabs/iscsi-tools,siderolabs/gvisor"
make_ek a rsa
api POST /api/v1/register "$(node_body)"
expect 200 "register with a reachable factory" '.iso_url != null'
SID=$(jget .schematic_id)
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
check "log line: Talos Image Factory unreachable" grep -q "ERROR attestd.factory — Talos Image Factory unreachable: HTTP 500" "$DATA/attestd.log"
make_ek d rsa
api POST /api/v1/register "$(node_body)"
check "an unacknowledged schematic is retried on the next registration" test "$(ls "$FLOG"/post-*.yaml | wc -l)" = 2
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
