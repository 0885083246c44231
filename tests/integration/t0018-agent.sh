#!/bin/sh
# attest-agent, the node side: real software TPMs (swtpm, driven by the
# agent through tpm2-tss ESYS), a real attestd behind a proxy that can
# turn hostile (tests/helpers/hostile-proxy.c), and a stand-in talosctl
# that accepts what the real one accepts and records its arguments and
# standard input (tests/helpers/talosctl).
#   - USB registration -> approval -> `run --once`: AK activated, quote
#     verified, TPM-bound config opened and applied byte for byte
#   - the generic ISO path: self-registration, the service URL from the
#     kernel's talos.config=, ECC P-384 EK; an EK without a certificate
#   - https through nginx: verified against --ca-file, refused otherwise
#   - lock (nothing applied) and unlock; revoke with wipe (reset run once);
#     a TPM reset (resetCount reported); the service down (backoff,
#     recovery); the offline receipt imported
#   - hostile answers: malformed, oversized, for another machine, a
#     config from another URL, a redirect, plaintext for a bound AK, a
#     tampered envelope -> refused, logged, nothing applied
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/swtpm.sh"

for t in swtpm swtpm_setup tpm2_nvdefine nginx; do
	command -v $t >/dev/null 2>&1 || { echo "Bail out! $t not installed (scripts/deps.sh)"; exit 1; }
done
: "${ATTEST_AGENT:?}" "${HOSTILE_PROXY:?}"

# ---- the hostile proxy in front of attestd -------------------------------
CTL=$TMP/proxy; mkdir -p "$CTL"
echo pass > "$CTL/mode"
"$HOSTILE_PROXY" "$TMP/proxy.port" "$CTL" 2>"$TMP/proxy.log" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$TMP/proxy.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$TMP/proxy.port" ] || { echo "Bail out! hostile-proxy did not start"; exit 1; }
PROXY="http://127.0.0.1:$(cat "$TMP/proxy.port")"
mode() { echo "$1" > "$CTL/mode"; }

# ---- the node: fake sysfs, kernel command line, stand-in talosctl --------
SYS=$TMP/node
mkdir -p "$SYS/sys/class/dmi/id" "$SYS/sys/class/net/eth0/device" "$SYS/sys/class/net/eth1/device" \
	"$SYS/sys/class/net/lo" "$SYS/sys/class/net/docker0"
printf '4c4c4544-0031-3510-8052-b4c04f4e3232\n' > "$SYS/sys/class/dmi/id/product_uuid"
printf 'SVC1284AB \n' > "$SYS/sys/class/dmi/id/product_serial"
printf 'PowerEdge R650\n' > "$SYS/sys/class/dmi/id/product_name"
for n in lo docker0 eth0 eth1; do echo 1 > "$SYS/sys/class/net/$n/type"; done
echo 772 > "$SYS/sys/class/net/lo/type"
echo 02:42:ac:11:00:01 > "$SYS/sys/class/net/docker0/address"	# virtual: no device
echo 52:54:00:AB:CD:01 > "$SYS/sys/class/net/eth0/address"
echo 52:54:00:ab:cd:02 > "$SYS/sys/class/net/eth1/address"
mkdir -p "$TMP/bin"
cp "$SRCDIR/tests/helpers/talosctl" "$TMP/bin/talosctl"
TALOSCTL_DIR=$TMP/talosctl; export TALOSCTL_DIR
printf 'context: node\ncontexts:\n  node:\n    endpoints: [127.0.0.1]\n' > "$TMP/talosconfig"
TALOSCONFIG=$TMP/talosconfig; export TALOSCONFIG
: > "$TMP/cmdline"

applied() { ls "$TALOSCTL_DIR" 2>/dev/null | grep -c '^apply-'; }
calls() { grep -c "^$1" "$TALOSCTL_DIR/calls.log" 2>/dev/null || true; }

# agent CMD [args]: the agent against the proxy on the current TPM; sets
# RC, OUT (stdout), ALOG (this run's log), appends to $TMP/agent.log
AGENT_STATE=$TMP/state-A
agent() {
	PATH="$TMP/bin:$PATH" "$ATTEST_AGENT" "$@" --tcti "$TPM2TOOLS_TCTI" --state-dir "$AGENT_STATE" \
		--sysfs-root "$SYS" --cmdline "$TMP/cmdline" --timeout 10 >"$TMP/agent.out" 2>"$TMP/agent.err"
	RC=$?
	OUT=$(cat "$TMP/agent.out")
	ALOG=$(cat "$TMP/agent.err")
	cat "$TMP/agent.err" >> "$TMP/agent.log"
}
logged() { printf '%s' "$ALOG" | grep -q -- "$1"; }
mdetail() { admin GET "/api/v1/machines/$1"; }

# the config the service serves for the token of the last apply-config
# answer the proxy passed on (re-fetching within the token's lifetime)
served_config() {
	tok=$(sed -n 's|.*"config_url":"[^"]*/api/v1/config/\([A-Za-z0-9_-]*\)".*|\1|p' "$CTL/last_attest" | tail -1)
	curl -s -o "$1" "$BASE/api/v1/config/$tok"
}

tpm_manufacture A
tpm_manufacture B
tpm_manufacture N ca nocert
CAROOT="$TMP/tpmca-ca/swtpm-localca-rootca-cert.pem"
CAINT="$TMP/tpmca-ca/issuercert.pem"
mkdir -p "$TMP/bundle"; cp "$CAROOT" "$TMP/bundle/root.pem"

start_attestd ITL_SERVICE_URL="$PROXY" ITL_TPM_VERIFY_CA=true ITL_TPM_CA_BUNDLE_DIR="$TMP/bundle" \
	ITL_REGISTRATION_TOKEN=reg-token-0123456789abcdef
echo "$BASE" > "$CTL/backend"

say "--- the USB registration agent (TPM A, RSA-2048 EK), the EK chain in the TPM's NV range"
tpm_use A
tpm_ek rsa
# put the local CA's intermediate where a vendor would: NV 0x01c00100
openssl x509 -in "$CAINT" -outform der > "$TMP/int.der"
tpm2_nvdefine 0x01c00100 -C o -s "$(wc -c < "$TMP/int.der")" -a 'ownerwrite|ownerread|authread|authwrite' >/dev/null 2>&1
tpm2_nvwrite 0x01c00100 -C o -i "$TMP/int.der" >/dev/null 2>&1
tpm_flush
agent register --server "$PROXY" --output json
check "register: exit 0" test "$RC" = 0
BODY=$OUT
check "register --output json: machine id, pending status, ISO URL, installer image, the EK's canonical fingerprint" \
	sh -c "printf '%s' \"\$1\" | jq -e --arg fp '$EK_FP' '(.machine_id | length) == 36 and .status == \"pending_approval\" and (.iso_url | endswith(\"/metal-amd64.iso\")) and (.installer_image | test(\"/installer/\")) and .ek_fingerprint == \$fp' >/dev/null" _ "$OUT"
MID_A=$(printf '%s' "$OUT" | jq -r .machine_id)
mdetail "$MID_A"
expect 200 "the machine carries the node's hardware identity (first physical NIC, DMI)" \
	'.hw_uuid == "4c4c4544-0031-3510-8052-b4c04f4e3232" and .hw_serial == "SVC1284AB" and .hw_product == "PowerEdge R650" and .hw_mac == "52:54:00:ab:cd:01" and .ek_source == "cert"'
expect 200 "the EK chain verifies with the intermediate the agent read from NV 0x01c00100" '.ek_verified == true'
agent register --server "$PROXY"
check "register (text): a console can read the machine id, status and ISO" \
	sh -c "printf '%s' \"\$1\" | grep -q 'machine id *$MID_A' && printf '%s' \"\$1\" | grep -q 'status *pending_approval (waiting for an operator' && printf '%s' \"\$1\" | grep -q 'ISO *http.*metal-amd64.iso'" _ "$OUT"

say "--- the on-node loop before approval: same machine, AK bound by credential activation, quote verified"
agent run --once --server "$PROXY"
check "run --once before approval: exit 0" test "$RC" = 0
check "run: the known EK self-registers to the same machine" logged "registered with $PROXY: machine $MID_A, status pending_approval"
check "run: the AK is derived in the endorsement hierarchy and bound" logged "AK (ecc, derived in the endorsement hierarchy) bound to machine $MID_A by credential activation"
mdetail "$MID_A"
expect 200 "the service holds the AK; the machine waits for approval" '.ak_bound == true and .status == "pending_approval" and .last_quote_at != null'
check "pending: nothing applied" test "$(applied)" = 0
check "the state directory holds the state (0600) and no key material" \
	sh -c "test \"\$(stat -c %a '$AGENT_STATE/state.json')\" = 600 && test \"\$(ls '$AGENT_STATE')\" = \"\$(printf 'state.json\\nstate.lock')\""
agent status
check "status: machine id, state, AK bound" sh -c "printf '%s' \"\$1\" | grep -q 'machine id *$MID_A' && printf '%s' \"\$1\" | grep -q 'state *pending_approval' && printf '%s' \"\$1\" | grep -q 'AK bound *yes'" _ "$OUT"

say "--- approval -> attested: TPM-bound config, opened by the TPM, applied through talosctl"
admin POST "/api/v1/machines/$MID_A/approve" '{"role":"worker-app","hostname":"node-a","assigned_ip":"10.0.1.21/24"}' >/dev/null
agent run --once --server "$PROXY"
check "run --once after approval: exit 0" test "$RC" = 0
check "the attest answer asked for apply-config with a verified quote" logged "attest: status attested, action apply-config (quote verified)"
check "the config was applied once" test "$(applied)" = 1
check "talosctl ran as the maintenance-mode apply: apply-config --insecure --nodes 127.0.0.1 --file /dev/stdin" \
	grep -qx 'apply-config --insecure --nodes 127.0.0.1 --file /dev/stdin' "$TALOSCTL_DIR/calls.log"
served_config "$TMP/served-A.yaml"
check "the applied config is byte-identical to what the service serves for the token" cmp -s "$TMP/served-A.yaml" "$TALOSCTL_DIR/apply-1.yaml"
check "and it is this machine's config (hostname, address)" sh -c "grep -q 'node-a' '$TALOSCTL_DIR/apply-1.yaml' && grep -q '10.0.1.21/24' '$TALOSCTL_DIR/apply-1.yaml'"
check "it travelled sealed to the TPM (the agent asked for the envelope)" \
	grep -q "config applied: $(wc -c < "$TMP/served-A.yaml") bytes, sha256 $(sha256sum "$TMP/served-A.yaml" | cut -d' ' -f1)" "$TMP/agent.err"
check "the service answered with the TPM-bound envelope, not plaintext" \
	grep -q '^GET /api/v1/config/[A-Za-z0-9_-]* 200 pass application/vnd.itl.config.encrypted+json$' "$CTL/requests.log"
mdetail "$MID_A"
expect 200 "the machine is attested, its config delivered" '.status == "attested" and .config_delivered_at != null'
agent status --output json
check "status --output json: attested, AK bound, config applied" \
	sh -c "printf '%s' \"\$1\" | jq -e '.status == \"attested\" and .ak_bound and .config_sha256 == \"$(sha256sum "$TMP/served-A.yaml" | cut -d' ' -f1)\" and .last_action == \"apply-config\"' >/dev/null" _ "$OUT"
before=$(sql "SELECT COUNT(*) FROM audit_log")
agent run --once --server "$PROXY"
check "the next poll: already attested, nothing applied again" sh -c "[ $RC = 0 ] && [ $(applied) = 1 ]"
check "the steady-state poll writes no audit entry" test "$(sql "SELECT COUNT(*) FROM audit_log")" = "$before"

say "--- hostile answers: refused, logged, nothing applied"
undeliver() { sql "UPDATE machines SET config_delivered_at = NULL WHERE machine_id = '$1'" >/dev/null; }
hostile() { # hostile MODE LOG-TEXT DESC
	undeliver "$MID_A"
	mode "$1"
	n0=$(applied)
	agent run --once --server "$PROXY"
	mode pass
	if [ "$RC" = 4 ] && logged "$2" && [ "$(applied)" = "$n0" ]; then pass "$3"
	else fail "$3" "rc=$RC applied=$(applied) (was $n0)" "$ALOG"; fi
}
hostile malformed-json "attest: answer refused, nothing applied: answer is not valid JSON" "malformed JSON in the attest answer"
hostile huge "attest: answer refused, nothing applied: response body larger than" "an oversized attest answer"
hostile other-machine "the answer is for machine 00000000-0000-4000-8000-000000000000, this node is $MID_A" \
	"an attest answer for another machine id"
hostile foreign-url "config_url refused, nothing applied: it is not on the service $PROXY" \
	"a config URL on another origin (even the real service's own address)"
hostile foreign-path "config_url refused, nothing applied: it is not the service's /api/v1/config/<token> endpoint" \
	"a config URL on the service but outside /api/v1/config/"
hostile redirect "config: service refused (302)" "a redirect instead of the config"
hostile plaintext "plaintext config refused, nothing applied: machine $MID_A has a bound AK" \
	"a plaintext config for a machine with a bound AK"
hostile bad-ciphertext "config envelope refused, nothing applied: AES-256-GCM" "an envelope whose ciphertext was altered"
hostile bad-credential "config envelope refused, nothing applied: TPM2_ActivateCredential refused the credential" \
	"an envelope whose credential does not activate in this TPM"
hostile envelope-other "config envelope refused, nothing applied: machine_id: the envelope is for machine 00000000" \
	"an envelope for another machine id"
check "none of them reached talosctl" test "$(calls apply-config)" = 1
undeliver "$MID_A"
mode plaintext
agent run --once --server "$PROXY" --allow-plaintext
mode pass
check "--allow-plaintext accepts the plaintext config (told otherwise)" sh -c "[ $RC = 0 ] && [ $(applied) = 2 ]"
served_config "$TMP/served-A2.yaml"
check "and applies it byte for byte" cmp -s "$TMP/served-A2.yaml" "$TALOSCTL_DIR/apply-2.yaml"

say "--- the apply command fails: the config is fetched again and applied on the next poll"
undeliver "$MID_A"
TALOSCTL_FAIL=1; export TALOSCTL_FAIL
agent run --once --server "$PROXY"
unset TALOSCTL_FAIL
check "a failing apply command: exit 1, logged, the config URL kept for the next poll" \
	sh -c "[ $RC = 1 ] && printf '%s' \"\$1\" | grep -q 'apply-config failed (talosctl exited with status 1)'" _ "$ALOG"
agent status
check "status shows the pending config, never its token" sh -c "printf '%s' \"\$1\" | grep -q 'pending config *yes' && ! grep -q \"\$(jq -r .pending_config_url '$AGENT_STATE/state.json' | sed 's|.*/||')\" '$TMP/agent.out'" _ "$OUT"
agent run --once --server "$PROXY"
check "the next poll (already attested) applies the pending config" sh -c "[ $RC = 0 ] && [ $(applied) = 4 ] && cmp -s '$TALOSCTL_DIR/apply-3.yaml' '$TALOSCTL_DIR/apply-4.yaml'"
check "nothing pending any more" test "$(jq -r .pending_config_url "$AGENT_STATE/state.json")" = null

say "--- the node lost its state (maintenance mode runs from RAM, an install wipes the disk)"
mv "$AGENT_STATE" "$TMP/state-A.saved"
agent run --once --server "$PROXY"
check "with an empty state directory the agent finds its machine and its AK again" \
	sh -c "[ $RC = 0 ] && printf '%s' \"\$1\" | grep -q 'already holds an AK for machine $MID_A' && printf '%s' \"\$1\" | grep -q 'status already_attested, action none (quote verified)'" _ "$ALOG"
check "the re-derived AK is the bound one" test "$(jq -r .ak_name "$AGENT_STATE/state.json")" = "$(jq -r .ak_name "$TMP/state-A.saved/state.json")"
rm -rf "$AGENT_STATE"; mv "$TMP/state-A.saved" "$AGENT_STATE"
agent run --once --server "$PROXY" --ak-alg rsa
check "another AK type than the bound one is refused locally" \
	sh -c "[ $RC = 1 ] && printf '%s' \"\$1\" | grep -q 'is not the one the service bound'" _ "$ALOG"

say "--- a TPM reset (reboot): resetCount reported"
mdetail "$MID_A"; R0=$(jget .tpm_reset_count)
tpm_reboot
agent run --once --server "$PROXY"
check "after a TPM reset the agent attests again" test "$RC" = 0
check "the agent logs the reset" logged "TPM reset since the last quote: resetCount $R0 -> $((R0 + 1))"
mdetail "$MID_A"
expect 200 "the service recorded the higher resetCount from the quote" ".tpm_reset_count == $((R0 + 1))"

say "--- the loop: a TPM reset under a kept context, the service down (backoff), recovery"
posts() { grep -c '^POST /api/v1/attest ' "$CTL/requests.log"; }
wait_posts() { # wait_posts N: until N more attest posts went through
	w0=$(grep -c '^POST /api/v1/attest 200' "$CTL/requests.log"); i=0
	while [ "$(grep -c '^POST /api/v1/attest 200' "$CTL/requests.log")" -lt $((w0 + $1)) ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
PATH="$TMP/bin:$PATH" "$ATTEST_AGENT" run --server "$PROXY" --tcti "$TPM2TOOLS_TCTI" --state-dir "$AGENT_STATE" \
	--sysfs-root "$SYS" --cmdline "$TMP/cmdline" --interval 0.3 --retry-min 0.2 --retry-max 0.8 --timeout 5 \
	2>"$TMP/loop.log" &
LOOP=$!; PIDS="$PIDS $LOOP"
wait_posts 2
agent status
check "a second agent on the same state directory is refused" sh -c "'$ATTEST_AGENT' run --once --server '$PROXY' --state-dir '$AGENT_STATE' 2>&1 | grep -q 'another attest-agent is running'"
mdetail "$MID_A"; R1=$(jget .tpm_reset_count)
tpm_reboot
wait_posts 2
mdetail "$MID_A"
expect 200 "the running loop reopens the TPM after a reset and keeps attesting" ".tpm_reset_count == $((R1 + 1))"
mode down
n0=$(wc -l < "$CTL/requests.log")
sleep 3
n1=$(wc -l < "$CTL/requests.log")
check "service unreachable: the agent backs off (no tight loop: $((n1 - n0)) requests in 3 s)" test $((n1 - n0)) -le 12
check "the delays grow up to the cap" sh -c "grep 'next attempt in' '$TMP/loop.log' | sed 's/.*next attempt in \([0-9.]*\) s.*/\1/' | awk '\$1 > 0.8 { bad = 1 } \$1 >= 0.4 { big = 1 } END { exit bad || !big }'"
check "each failure is one log line" grep -q 'attest: service unreachable: the service closed the connection without answering\|challenge: service unreachable' "$TMP/loop.log"
mode 503
sleep 1
check "a 503 is retried as well, with the service's detail logged" grep -q 'service answered 503 busy: try again later' "$TMP/loop.log"
mode pass
wait_posts 1
sleep 0.5
check "recovery: the loop attests again and says so" grep -q 'poll succeeded after [0-9]* failed attempt(s)' "$TMP/loop.log"
kill "$LOOP"; wait "$LOOP"; rc=$?
PIDS=$(echo "$PIDS" | sed "s/ $LOOP//")
check "SIGTERM stops the loop cleanly" test "$rc" = 0

say "--- the generic ISO: service URL from talos.config=, self-registration, ECC P-384 EK (TPM B), lock and unlock"
tpm_use B
tpm_ek ecc
AGENT_STATE=$TMP/state-B
printf 'BOOT_IMAGE=/vmlinuz talos.platform=metal talos.config=%s/api/v1/config?mac=${mac}&uuid=${uuid} itl.role=worker-infra\n' "$PROXY" > "$TMP/cmdline"
api GET "/api/v1/config?mac=52%3A54%3A00%3Aab%3Acd%3A01&uuid=4c4c4544-0031-3510-8052-b4c04f4e3232"
expect 200 "what Talos fetches from talos.config= answers 200"
check "it is the partial config: the extension and the service URL" sh -c "printf '%s' \"\$1\" | grep -q 'name: itl-tpm-register' && printf '%s' \"\$1\" | grep -q 'ITL_REG_URL=$PROXY'" _ "$BODY"
agent run --once --ek ecc
check "no --server: the agent found the service in talos.config= and self-registered" \
	sh -c "[ $RC = 0 ] && printf '%s' \"\$1\" | grep -q 'registered with $PROXY: machine .*, status pending_approval'" _ "$ALOG"
MID_B=$(jq -r .machine_id "$AGENT_STATE/state.json")
mdetail "$MID_B"
expect 200 "a new pending machine with the P-384 EK, the role from itl.role=, an AK bound (high-range EK: no policy session)" \
	".status == \"pending_approval\" and .ek_key_type == \"ecc-p384\" and .role == \"worker-infra\" and .ak_bound == true and .ek_fingerprint == \"$EK_FP\""
check "self-registration is audited as such" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE machine_id='$MID_B' AND action='self_register'")" = 1
admin POST "/api/v1/machines/$MID_B/approve" '{"role":"worker-infra","hostname":"node-b"}' >/dev/null
admin POST "/api/v1/machines/$MID_B/lock" '{"reason":"rack maintenance"}' >/dev/null
n0=$(applied)
agent run --once --ek ecc
check "locked before its first config: nothing applied" sh -c "[ $RC = 0 ] && [ $(applied) = $n0 ]"
check "the lock is logged" logged "machine locked by the service: nothing is applied until it is unlocked"
agent run --once --ek ecc
check "still locked: still nothing applied, the agent keeps polling" sh -c "[ $RC = 0 ] && [ $(applied) = $n0 ]"
agent status
check "status says locked" sh -c "printf '%s' \"\$1\" | grep -q 'state *locked (locked: nothing is applied)'" _ "$OUT"
admin POST "/api/v1/machines/$MID_B/unlock" '{}' >/dev/null
agent run --once --ek ecc
check "unlocked: the agent resumes and applies the config" sh -c "[ $RC = 0 ] && [ $(applied) = $((n0 + 1)) ]" 
check "the unlock is logged" logged "machine unlocked: resuming"
served_config "$TMP/served-B.yaml"
check "P-384 EK: the TPM-bound config applied is the one the service serves" cmp -s "$TMP/served-B.yaml" "$TALOSCTL_DIR/apply-$((n0 + 1)).yaml"
check "it is node-b's" grep -q 'node-b' "$TMP/served-B.yaml"

say "--- the offline receipt (TPM B's RSA EK), imported, then the node attests"
agent receipt --ek rsa --role controlplane --file "$TMP/receipt/tpm-receipt.json" --machine-id 7b0c2f0e-1b55-4f6b-9d0e-2a1f5b9c0d11
check "receipt without a directory to write to fails" test "$RC" = 1
mkdir -p "$TMP/receipt"
agent receipt --ek rsa --role controlplane --file "$TMP/receipt/tpm-receipt.json" --machine-id 7b0c2f0e-1b55-4f6b-9d0e-2a1f5b9c0d11
tpm_ek rsa
check "receipt: written with the reference agent's fields and the EK material" \
	sh -c "[ $RC = 0 ] && jq -e --arg fp '$EK_FP' '.install_mode == \"offline\" and .machine_id == \"7b0c2f0e-1b55-4f6b-9d0e-2a1f5b9c0d11\" and .role == \"controlplane\" and .hw_mac == \"52:54:00:ab:cd:01\" and .hw_serial == \"SVC1284AB\" and .ek_fingerprint == \$fp and .ek_source == \"cert\" and (.installed_at | test(\"\\\\+00:00\$\"))' '$TMP/receipt/tpm-receipt.json' >/dev/null"
admin POST /api/v1/machines/import "$(cat "$TMP/receipt/tpm-receipt.json")"
expect 200 "POST /api/v1/machines/import takes the receipt as written" '.machine_id == "7b0c2f0e-1b55-4f6b-9d0e-2a1f5b9c0d11" and .status == "registered" and .role == "controlplane"'
AGENT_STATE=$TMP/state-B-rsa
agent run --once --ek rsa
check "the imported machine attests on first contact and applies its config" \
	sh -c "[ $RC = 0 ] && [ \"\$(jq -r .machine_id '$AGENT_STATE/state.json')\" = 7b0c2f0e-1b55-4f6b-9d0e-2a1f5b9c0d11 ] && [ \"\$(jq -r .config_sha256 '$AGENT_STATE/state.json')\" != null ]"

say "--- an EK without a certificate (TPM N): the EK public area, service URL from itl.reg_url="
tpm_use N
AGENT_STATE=$TMP/state-N
printf 'itl.reg_url=%s itl.role=worker-app\n' "$PROXY" > "$TMP/cmdline"
agent register --output json --token not-the-token
check "register with a wrong registration token: refused (exit 4), the service's answer logged" \
	sh -c "[ $RC = 4 ] && printf '%s' \"\$1\" | grep -q 'register: service refused (401)'" _ "$ALOG"
agent register --output json --token reg-token-0123456789abcdef
check "no EK certificate in NV: register sends the EK public key; the registration token pre-approves" \
	sh -c "[ $RC = 0 ] && printf '%s' \"\$1\" | jq -e '.status == \"registered\"' >/dev/null" _ "$OUT"
MID_N=$(printf '%s' "$OUT" | jq -r .machine_id)
mdetail "$MID_N"
expect 200 "the machine's EK source is the public key" '.ek_source == "pub" and .ek_key_type == "rsa-2048"'
admin POST "/api/v1/machines/$MID_N/approve" '{"role":"worker-app","hostname":"node-n"}' >/dev/null
n0=$(applied)
agent run --once
check "EK without certificate: AK bound, quote verified, TPM-bound config applied" \
	sh -c "[ $RC = 0 ] && [ $(applied) = $((n0 + 1)) ] && printf '%s' \"\$1\" | grep -q 'action apply-config (quote verified)'" _ "$ALOG"
say "--- TLS: the service behind nginx (https), verified against --ca-file"
T=$TMP/tls; mkdir -p "$T/tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" \
	-days 2 -subj "/CN=agent test CA" >/dev/null 2>&1
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" \
	-subj "/CN=attest test service" >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\n' > "$T/ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 -extfile "$T/ext" \
	-out "$T/srv.pem" >/dev/null 2>&1
n=0
while :; do
	n=$((n + 1))
	NPORT=$(( 20000 + ($(od -An -N2 -tu2 /dev/urandom) % 20000) * 2 ))
	cat > "$T/nginx.conf" <<EON
daemon off;
worker_processes 1;
pid $T/nginx.pid;
error_log $T/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $T/tmp; proxy_temp_path $T/tmp; fastcgi_temp_path $T/tmp;
	uwsgi_temp_path $T/tmp; scgi_temp_path $T/tmp;
	server {
		listen 127.0.0.1:$NPORT ssl;
		ssl_certificate $T/srv.pem;
		ssl_certificate_key $T/srv.key;
		location / { proxy_pass $PROXY; }
	}
}
EON
	nginx -p "$T" -c "$T/nginx.conf" 2>>"$T/start.log" &
	NGINX=$!
	i=0
	while [ $i -lt 50 ] && kill -0 "$NGINX" 2>/dev/null && ! curl -s --cacert "$T/ca.pem" -o /dev/null "https://127.0.0.1:$NPORT/healthz"; do
		sleep 0.05; i=$((i + 1))
	done
	if kill -0 "$NGINX" 2>/dev/null; then PIDS="$PIDS $NGINX"; break; fi
	[ $n -ge 10 ] && { echo "Bail out! nginx did not start"; cat "$T/error.log" "$T/start.log" >&2; exit 1; }
done
TLS=https://127.0.0.1:$NPORT
agent run --once --server "$TLS" --ca-file "$T/ca.pem"
check "https: the agent polls through nginx, the certificate verified against --ca-file" \
	sh -c "[ $RC = 0 ] && [ \"\$(jq -r .server '$AGENT_STATE/state.json')\" = '$TLS' ]"
agent run --once --server "$TLS"
check "https: a certificate the system store does not trust is refused (exit 3, logged)" \
	sh -c "[ $RC = 3 ] && printf '%s' \"\$1\" | grep -q 'TLS: server certificate not accepted'" _ "$ALOG"
agent run --once --server "https://localhost:$NPORT" --ca-file "$T/ca.pem"
check "https: a certificate for another name is refused" \
	sh -c "[ $RC = 3 ] && printf '%s' \"\$1\" | grep -q 'TLS: server certificate not accepted'" _ "$ALOG"
kill "$NGINX"; wait "$NGINX" 2>/dev/null
PIDS=$(echo "$PIDS" | sed "s/ $NGINX//")

AGENT_STATE=$TMP/state-A
agent run --once --server "$PROXY"
check "a state directory of another TPM is refused" sh -c "[ $RC = 1 ] && printf '%s' \"\$1\" | grep -q 'belongs to another TPM'" _ "$ALOG"

say "--- revoke with wipe (TPM A): the reset command runs exactly once, then the agent stops"
tpm_use A
admin POST "/api/v1/machines/$MID_A/revoke" '{"wipe":true,"reason":"decommissioned"}' >/dev/null
: > "$TMP/cmdline"
agent run --once --server "$PROXY"
check "the wipe: exit 5 (revoked)" test "$RC" = 5
check "the reset command ran once, as talosctl accepts it" \
	sh -c "[ $(calls reset) = 1 ] && grep -qx 'reset --graceful=false --reboot --endpoints 127.0.0.1 --nodes 127.0.0.1' '$TALOSCTL_DIR/calls.log'"
check "the wipe and the stop are logged" sh -c "printf '%s' \"\$1\" | grep -q 'wipe ordered by the service' && printf '%s' \"\$1\" | grep -q 'is revoked: the agent stops contacting the service'" _ "$ALOG"
check "the service recorded the wipe as delivered (after a verified quote)" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE machine_id='$MID_A' AND action='wipe_delivered'")" = 1
n0=$(wc -l < "$CTL/requests.log")
agent run --once --server "$PROXY"
check "revoked: the agent does not contact the service again, the reset is not repeated" \
	sh -c "[ $RC = 5 ] && [ $(wc -l < "$CTL/requests.log") = $n0 ] && [ $(calls reset) = 1 ]"
agent status
check "status: revoked, the wipe recorded" sh -c "[ $RC = 5 ] && printf '%s' \"\$1\" | grep -q 'revoked: the agent has stopped' && printf '%s' \"\$1\" | grep -q 'wipe *at .*, exit status 0'" _ "$OUT"

done_testing
