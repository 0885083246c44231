#!/bin/sh
# attest-agent --secrets-dir: the node fetches its secrets from the
# secret vault with a fresh quote, opens the TPM-sealed answer with its
# software TPM and writes one 0600 file per secret; updates replace
# files, deleted secrets disappear, a locked machine gets nothing.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/swtpm.sh"

for t in swtpm swtpm_setup; do
	command -v $t >/dev/null 2>&1 || { echo "Bail out! $t not installed (scripts/deps.sh)"; exit 1; }
done
: "${ATTEST_AGENT:?}" "${HOSTILE_PROXY:?}"

# the service behind a pass-through proxy whose port is known up front
# (config URLs must be on the service's own origin)
CTL=$TMP/proxy; mkdir -p "$CTL"
echo pass > "$CTL/mode"
"$HOSTILE_PROXY" "$TMP/proxy.port" "$CTL" 2>"$TMP/proxy.log" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$TMP/proxy.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
PROXY="http://127.0.0.1:$(cat "$TMP/proxy.port")"

SYS=$TMP/node
mkdir -p "$SYS/sys/class/dmi/id" "$SYS/sys/class/net/eth0/device"
printf '4c4c4544-0031-3510-8052-b4c04f4e3299\n' > "$SYS/sys/class/dmi/id/product_uuid"
printf 'SEC0001\n' > "$SYS/sys/class/dmi/id/product_serial"
printf 'Virtual Machine\n' > "$SYS/sys/class/dmi/id/product_name"
echo 1 > "$SYS/sys/class/net/eth0/type"
echo 52:54:00:ab:cd:99 > "$SYS/sys/class/net/eth0/address"
mkdir -p "$TMP/bin"
cp "$SRCDIR/tests/helpers/talosctl" "$TMP/bin/talosctl"
TALOSCTL_DIR=$TMP/talosctl; export TALOSCTL_DIR
printf 'context: node\ncontexts:\n  node:\n    endpoints: [127.0.0.1]\n' > "$TMP/talosconfig"
TALOSCONFIG=$TMP/talosconfig; export TALOSCONFIG
: > "$TMP/cmdline"
mkdir -p "$TMP/run"; SECRETS=$TMP/run/secrets	# the agent creates the last component (0700)

agent() {
	PATH="$TMP/bin:$PATH" "$ATTEST_AGENT" "$@" --tcti "$TPM2TOOLS_TCTI" --state-dir "$TMP/state" \
		--sysfs-root "$SYS" --cmdline "$TMP/cmdline" --timeout 10 --server "$PROXY" >"$TMP/agent.out" 2>"$TMP/agent.err"
	RC=$?
	ALOG=$(cat "$TMP/agent.err")
	cat "$TMP/agent.err" >> "$TMP/agent.log"
}
logged() { printf '%s' "$ALOG" | grep -q -- "$1"; }
S=/api/v1/secrets/machines

tpm_manufacture A
start_attestd ITL_SERVICE_URL="$PROXY" ITL_SHARED_SECRET_MASTER_KEY="$(openssl rand -hex 32)"
echo "$BASE" > "$CTL/backend"

agent run --once --secrets-dir relative/dir
check "--secrets-dir must be absolute" test "$RC" = 2
agent run --once --secrets-dir "$SECRETS"
check "first contact: registered, AK bound" test "$RC" = 0
MID=$(sql "SELECT machine_id FROM machines")
check "pending: no secrets fetched, no directory" test ! -e "$SECRETS"

admin POST "/api/v1/machines/$MID/approve" '{"role":"worker-app","hostname":"sec-node"}' >/dev/null
admin PUT "$S/$MID/secrets/vault-token" '{"value":"hvs.node-token-1"}' >/dev/null
printf '\000\377binary\n' > "$TMP/bin.val"
admin PUT "$S/$MID/secrets/disk.key" "{\"value_b64\":\"$(base64 -w0 "$TMP/bin.val")\"}" >/dev/null
agent run --once --secrets-dir "$SECRETS"
check "attested: config applied and secrets fetched (exit 0)" test "$RC" = 0
check "the agent says where they went" logged "secrets: 2 secret(s) opened with the TPM and written to $SECRETS"
check "the text secret, byte for byte" test "$(cat "$SECRETS/vault-token")" = "hvs.node-token-1"
check "the binary secret, byte for byte" cmp -s "$TMP/bin.val" "$SECRETS/disk.key"
check "files are 0600 in a 0700 directory" \
	sh -c "test \"\$(stat -c %a '$SECRETS')\" = 700 && test \"\$(stat -c %a '$SECRETS/vault-token')\" = 600 && test \"\$(stat -c %a '$SECRETS/disk.key')\" = 600"
check "no temporary files are left" test "$(ls -A "$SECRETS" | wc -l)" = 2
check "the service audited the delivery" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='secrets_delivered' AND machine_id='$MID'")" = 1
check "no secret value in the agent's log" sh -c "! grep -q 'node-token' '$TMP/agent.log'"

admin PUT "$S/$MID/secrets/vault-token" '{"value":"hvs.node-token-2"}' >/dev/null
admin DELETE "$S/$MID/secrets/disk.key" >/dev/null
: > "$SECRETS/.keep-me"
agent run --once --secrets-dir "$SECRETS"
check "a later run fetches again (exit 0)" test "$RC" = 0
check "a replaced secret is rewritten" test "$(cat "$SECRETS/vault-token")" = "hvs.node-token-2"
check "a deleted secret's file is removed" test ! -e "$SECRETS/disk.key"
check "files that are not secret names are left alone" test -e "$SECRETS/.keep-me"

admin POST "/api/v1/machines/$MID/lock" '{"reason":"investigation"}' >/dev/null
admin PUT "$S/$MID/secrets/vault-token" '{"value":"hvs.node-token-3"}' >/dev/null
agent run --once --secrets-dir "$SECRETS"
check "locked: nothing fetched" test "$(cat "$SECRETS/vault-token")" = "hvs.node-token-2"
check "locked: the service delivered nothing" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='secrets_delivered' AND machine_id='$MID'")" = 2
stop_attestd
done_testing
