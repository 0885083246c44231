#!/bin/sh
# The attestation CLI against a real attestd (admin/break-glass tokens; the
# OIDC logins are t0015): every machine/audit command, table and JSON output
# against golden files, exit codes, --help, bash completion, the token cache
# file rules and client-side audit verification (incl. a tampered row).
. "$SRCDIR/tests/lib/test-lib.sh"
: "${ATTESTATION_CLI:?}"
CLI=$ATTESTATION_CLI
GOLDEN="$SRCDIR/tests/golden"

start_attestd BREAK_GLASS_TOKEN=glass ITL_DUAL_CONTROL_ROLES=controlplane
export HOME="$TMP/home" ATTESTATION_API_URL="$BASE" ATTESTATION_OIDC_ISSUER="http://127.0.0.1:9/idp"
mkdir -p "$HOME"
unset ATTESTATION_TOKEN ATTESTATION_BREAK_GLASS_TOKEN BROWSER DISPLAY WAYLAND_DISPLAY 2>/dev/null || true

# run [env...] -- args: runs the CLI, sets OUT, ERR, RC
run() {
	if [ "$1" = "--env" ]; then shift; e=$1; shift; else e=""; fi
	# shellcheck disable=SC2086
	env $e "$CLI" "$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	OUT=$(cat "$TMP/out"); ERR=$(cat "$TMP/err")
}
adm() { run --env "ATTESTATION_TOKEN=$ADMIN" "$@"; }
rc_is() { # WANT DESC
	if [ "$RC" = "$1" ]; then pass "$2"; else fail "$2" "exit $RC, want $1" "stdout: $OUT" "stderr: $ERR"; fi
}
# Same-length placeholders keep table columns aligned.
normalize() {
	perl -pe 's/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?/"T" x length($&)/ge;
		s/\b[0-9a-f]{40,}\b/"h" x length($&)/ge;
		s/\b[0-9A-F]{32}\b/"S" x length($&)/ge;
		s/"expires_at": \d+/"expires_at": 0/g' "$@"
}
golden() { # NAME DESC: compare normalized stdout with tests/golden/NAME
	normalize "$TMP/out" > "$TMP/got.$1"
	if [ -n "${UPDATE_GOLDEN:-}" ]; then cp "$TMP/got.$1" "$GOLDEN/$1"; fi
	if [ "$RC" = 0 ] && diff -u "$GOLDEN/$1" "$TMP/got.$1" > "$TMP/diff" 2>&1; then pass "$2"
	else fail "$2" "exit $RC" "$(head -40 "$TMP/diff")" "stderr: $ERR"; fi
}

# fixed machines from receipts, so output is deterministic
i=0
for spec in "m-0001:worker-app:aa" "m-0002:controlplane:bb" "m-0003:worker-infra:cc"; do
	i=$((i + 1))
	id=${spec%%:*}; rest=${spec#*:}; role=${rest%%:*}; b=${rest#*:}
	fp=$(printf "$b%.0s" $(seq 48))
	printf '{"machine_id":"%s","role":"%s","ek_fingerprint":"%s","hw_uuid":"uuid-%d","hw_mac":"52:54:00:00:00:0%d","hw_serial":"SN%d","hw_product":"Test Box","install_mode":"offline","installed_at":"2026-01-01"}' \
		"$id" "$role" "$fp" $i $i $i > "$TMP/receipt$i.json"
done
adm machine import "$TMP/receipt1.json"
golden cli-import.txt "machine import FILE: table"
adm machine import - < "$TMP/receipt2.json" --output json	# controlplane is under dual control: pending
rc_is 0 "machine import - reads stdin"
printf '%s' "$OUT" | jq -e '.machine_id == "m-0002" and .status == "pending_approval"' >/dev/null && pass "import json output" || fail "import json output" "$OUT"
adm --output json machine import "$TMP/receipt3.json"
rc_is 0 "global --output before the command"
adm machine import "$TMP/receipt1.json"
rc_is 6 "importing the same receipt again: exit 6 (conflict)"
printf '{"role":' > "$TMP/bad.json"
adm machine import "$TMP/bad.json"
rc_is 7 "a receipt that is not JSON: exit 7, nothing sent"
case $ERR in *"not a JSON object"*) pass "bad receipt: clear message" ;; *) fail "bad receipt: clear message" "$ERR" ;; esac
adm machine import "$TMP/nope.json"
rc_is 7 "a missing receipt file: exit 7"
echo '{"role":"worker-app"}' > "$TMP/nofp.json"
adm machine import "$TMP/nofp.json"
rc_is 7 "a receipt without ek_fingerprint: the service's 422 is exit 7"

adm machine approve m-0001 --role worker-app --hostname w-01 --assigned-ip 10.0.1.11/24 --reason "rack 4"
golden cli-approve.txt "machine approve with --role --hostname --assigned-ip --reason: machine detail"
adm machine approve m-0003 --role worker-infra --hostname bad_host
rc_is 7 "approve with an invalid hostname: exit 7"
case $ERR in *hostname*) pass "the service's detail is printed" ;; *) fail "detail printed" "$ERR" ;; esac
adm machine approve m-0003
rc_is 2 "approve without --role: usage error"
adm machine approve nope-404 --role worker-app
rc_is 5 "approve an unknown machine: exit 5"

# dual control: SYSTEM votes, then the break-glass identity completes
adm machine approve m-0002 --role controlplane --hostname cp-01 --assigned-ip 10.0.0.1/24
rc_is 0 "first dual-control vote: exit 0"
case $OUT in *"Vote recorded for m-0002: 1 of 2"*) pass "first vote reported as 1 of 2" ;; *) fail "vote message" "$OUT" ;; esac
adm machine approve m-0002 --role controlplane --hostname cp-01 --assigned-ip 10.0.0.1/24
rc_is 6 "the same operator voting twice: exit 6 (409)"
run --env "ATTESTATION_BREAK_GLASS_TOKEN=glass" machine approve m-0002 --role controlplane --output json
rc_is 0 "second operator (break-glass) completes the quorum"
printf '%s' "$OUT" | jq -e '.status == "registered" and .hostname == "cp-01"' >/dev/null && pass "quorum reached: registered" || fail "quorum" "$OUT"
adm machine approvals m-0002
golden cli-approvals.txt "machine approvals: table"
adm machine approvals m-0002 -o json
printf '%s' "$OUT" | jq -e 'length == 2 and all(.[]; .consumed)' >/dev/null && pass "machine approvals: json" || fail "approvals json" "$OUT"

adm machine list
golden cli-list.txt "machine list: table"
adm machine list --output json
golden cli-list.json "machine list: json"
adm machine list --status registered --role controlplane
golden cli-list-filtered.txt "machine list --status --role"
adm machine list --status locked
case $OUT in "No machines with status locked.") pass "empty list: a sentence, exit 0" ;; *) fail "empty list" "$OUT" ;; esac
adm machine get m-0001
golden cli-get.txt "machine get: table"
adm machine get m-0001 --output json
printf '%s' "$OUT" | jq -e '.machine_id == "m-0001" and .assigned_ip == "10.0.1.11/24" and .approvals == []' >/dev/null && pass "machine get: json" || fail "get json" "$OUT"
adm machine get m-0002 --output json
printf '%s' "$OUT" | jq -e '.approvals | length == 2' >/dev/null && pass "machine get --output json | jq .approvals (as in the seeds)" || fail "get approvals" "$OUT"
adm machine get does-not-exist
rc_is 5 "machine get unknown: exit 5"
adm machine get
rc_is 2 "machine get without an ID: usage"

adm machine lock m-0001 --reason "disk swap"
rc_is 0 "machine lock --reason"
adm machine unlock m-0003
rc_is 6 "unlock a machine that is not locked: exit 6"
case $ERR in *"is not locked"*) pass "wrong state is explained" ;; *) fail "wrong state message" "$ERR" ;; esac
adm machine unlock m-0001
rc_is 0 "machine unlock"
adm machine revoke m-0003 --wipe --reason "decommissioned" -o json
printf '%s' "$OUT" | jq -e '.status == "revoked" and .wipe_pending == true' >/dev/null && pass "machine revoke --wipe" || fail "revoke" "$OUT"
adm machine lock m-0003
rc_is 6 "lock a revoked machine: exit 6"

# offline bundle: owner-only file, cert chains to the enrollment CA, key matches
adm machine bundle m-0001 --file "$TMP/nokey.json"
rc_is 0 "machine bundle --file (no --include-key)"
check "... the enrollment key only when asked: none issued" sh -c \
	"jq -e '.enrollment_key_included == false and .enrollment_key_pem == null and .enrollment_cert_pem == null' '$TMP/nokey.json' >/dev/null"
check "... and the machineconfig carries no enrollment key" sh -c "! jq -r .machineconfig '$TMP/nokey.json' | grep -q enrollment.key"
adm machine bundle m-0001 --file "$TMP/bundle.json" --include-key
rc_is 0 "machine bundle --file --include-key"
check "bundle file is mode 0600" test "$(stat -c %a "$TMP/bundle.json")" = 600
jq -r .enrollment_cert_pem "$TMP/bundle.json" > "$TMP/leaf.pem"
jq -r .enrollment_ca_pem "$TMP/bundle.json" > "$TMP/eca.pem"
jq -r .enrollment_key_pem "$TMP/bundle.json" > "$TMP/leaf.key"
check "bundle cert verifies against the enrollment CA for client auth (openssl)" \
	sh -c "openssl verify -CAfile '$TMP/eca.pem' -purpose sslclient '$TMP/leaf.pem' >/dev/null"
check "bundle key matches the certificate" test "$(openssl x509 -in "$TMP/leaf.pem" -noout -pubkey)" = "$(openssl pkey -in "$TMP/leaf.key" -pubout)"
check "bundle cert subject names the machine and role" sh -c "openssl x509 -in '$TMP/leaf.pem' -noout -subject | grep -q 'OU = worker-app, CN = m-0001'"
check "bundle cert carries the urn:itl:ek SAN" sh -c "openssl x509 -in '$TMP/leaf.pem' -noout -ext subjectAltName | grep -q 'URI:urn:itl:ek:aaaaaaaa'"
check "bundle machineconfig embeds cert and key as machine.files" sh -c \
	"jq -r .machineconfig '$TMP/bundle.json' | grep -q 'path: \"/var/lib/itl-tpm/enrollment.key\"'"
check "bundle: install_mode offline, config_url with the new token" sh -c \
	"jq -e '.install_mode == \"offline\" and (.config_token as \$t | .config_url | endswith(\$t))' '$TMP/bundle.json' >/dev/null"
adm machine bundle m-0001 --output "$TMP/bundle2.json" --include-key
check "machine bundle --output PATH (the seeds' spelling) writes the file" test -s "$TMP/bundle2.json"
adm machine bundle m-0003
rc_is 6 "bundle for a revoked machine: exit 6"
api GET "/api/v1/machines/m-0001/offline-bundle"
expect 401 "offline-bundle needs operator auth"

# signed PDF audit report (seeds 000, "Compliance reporting")
pdf_check() { # PDF CA: 0 when poppler and openssl both accept the signature over the byte ranges
	pdfsig "$1" 2>&1 | grep -q "Signature is Valid" || return 1
	perl -0777 -ne '/\/ByteRange \[0 (\d+) (\d+) (\d+)\]/ or die "no ByteRange";
		open(my $d, ">", "$ARGV.signed") or die; print $d substr($_, 0, $1) . substr($_, $2, $3); close $d;
		open(my $s, ">", "$ARGV.sig") or die; print $s pack("H*", substr($_, $1 + 1, $2 - $1 - 2)); close $s;' "$1" || return 1
	openssl cms -verify -binary -inform DER -in "$1.sig" -content "$1.signed" -CAfile "$2" -purpose any -out /dev/null 2>/dev/null
}
adm audit report m-0002 --file "$TMP/report.pdf"
rc_is 0 "audit report ID --file: written"
check "report file is mode 0600" test "$(stat -c %a "$TMP/report.pdf")" = 600
check "report signature valid for pdfsig and for openssl cms against the Enrollment CA" pdf_check "$TMP/report.pdf" "$TMP/eca.pem"
pdftotext -layout "$TMP/report.pdf" "$TMP/report.txt"
check "report text: machine, chain verdict, both votes with their operators" sh -c \
	"grep -q 'machine m-0002' '$TMP/report.txt' && grep -q 'VALID' '$TMP/report.txt' && grep -q 'SYSTEM approve_vote' '$TMP/report.txt' && grep -q 'BREAK_GLASS approve ' '$TMP/report.txt'"
check "report lists each entry with its entry_hash" sh -c "test \$(grep -c 'entry_hash [0-9a-f]\{64\}' '$TMP/report.txt') -eq 4"
# flip one byte inside the signed range (page text): both verifiers must notice
perl -0777 -pe 's/SYSTEM  approve_vote/SYSTEM  approve_void/' "$TMP/report.pdf" > "$TMP/forged.pdf"
check "a forged report differs from the original" sh -c "! cmp -s '$TMP/report.pdf' '$TMP/forged.pdf'"
check "a report altered after signing fails verification (pdfsig)" sh -c "! (pdfsig '$TMP/forged.pdf' 2>&1 | grep -q 'Signature is Valid')"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/other.key" -out "$TMP/other-ca.pem" -subj /CN=other -days 2 >/dev/null 2>&1
check "the report does not verify against another CA" sh -c "! openssl cms -verify -binary -inform DER -in '$TMP/report.pdf.sig' -content '$TMP/report.pdf.signed' -CAfile '$TMP/other-ca.pem' -purpose any -out /dev/null 2>/dev/null"
adm audit report m-0002 --file - > "$TMP/stdout.pdf"
check "audit report --file - writes the PDF to stdout" sh -c "head -c 5 '$TMP/out' | grep -q '%PDF-'"
api GET "/api/v1/machines/m-0002/audit-report"
expect 401 "audit-report needs operator auth"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN" "$BASE/api/v1/machines/nope/audit-report")
check "audit-report of an unknown machine: 404" test "$STATUS" = 404
HDRS=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $ADMIN" "$BASE/api/v1/machines/m-0001/audit-report")
case $HDRS in *"Content-Type: application/pdf"*'filename="machine-audit-m-0001.pdf"'*) pass "curl: application/pdf with a download file name" ;; *) fail "report headers" "$HDRS" ;; esac
adm audit report nope
rc_is 5 "audit report of an unknown machine: exit 5"

# audit
adm audit list --machine-id m-0002
golden cli-audit-m2.txt "audit list --machine-id: table"
adm audit list --machine m-0002 -o json
printf '%s' "$OUT" | jq -e '.count == 4 and .page == 1 and .per_page == 50 and .entries[0].action == "approve" and .entries[3].action == "import"' >/dev/null && pass "audit list --machine (seeds' spelling): json {entries,count,page,per_page}" || fail "audit json" "$OUT"
adm audit list --per-page 2 --page 2 -o json
printf '%s' "$OUT" | jq -e '(.entries | length) == 2 and .page == 2' >/dev/null && pass "audit list --page --per-page" || fail "paging" "$OUT"
adm audit list --per-page x
rc_is 2 "audit list --per-page x: usage"
adm audit list --all -o json
ALL=$(printf '%s' "$OUT" | jq '.entries | length')
check "audit list --all returns every entry ($ALL)" test "$ALL" = "$(sql 'SELECT COUNT(*) FROM audit_log')"
adm audit verify
case $OUT in "Audit chain valid: $ALL entries verified locally, head "*) pass "audit verify: valid, computed on the client" ;; *) fail "audit verify" "$OUT" "$ERR" ;; esac
adm audit verify -o json
printf '%s' "$OUT" | jq -e ".valid and .entries == $ALL and .verified_by == \"client\"" >/dev/null && pass "audit verify: json" || fail "verify json" "$OUT"
# tamper with one row behind the service's back (an insider with DB access)
sql "UPDATE audit_log SET detail = 'role=worker-app hostname=evil' WHERE action = 'approve' AND machine_id = 'm-0001'"
adm audit verify
rc_is 1 "audit verify of a tampered log: exit 1"
case $OUT in "AUDIT CHAIN BROKEN: entry "*"entry_hash does not recompute"*) pass "the altered entry is named" ;; *) fail "tamper report" "$OUT" ;; esac
adm audit report m-0001 --file "$TMP/broken.pdf"
pdftotext -layout "$TMP/broken.pdf" "$TMP/broken.txt"
check "a report made after the tampering says the chain is BROKEN" grep -q "BROKEN at entry" "$TMP/broken.txt"

# credentials and exit codes
run machine list
rc_is 3 "no login and no token: exit 3"
case $ERR in *"Not logged in"*"attestation auth login"*) pass "not-logged-in message says what to do" ;; *) fail "not logged in msg" "$ERR" ;; esac
run --env "ATTESTATION_TOKEN=wrong" machine list
rc_is 3 "a wrong token: exit 3 (401)"
run --env "ATTESTATION_BREAK_GLASS_TOKEN=wrong" machine list
rc_is 3 "a wrong break-glass token: exit 3"
run --env "ATTESTATION_TOKEN=$ADMIN ATTESTATION_API_URL=http://127.0.0.1:9" machine list
rc_is 8 "service unreachable: exit 8"
adm --api-url "$BASE/" auth whoami --output json
printf '%s' "$OUT" | jq -e '.service_identity == "SYSTEM" and .service_operator == true and .source == "ATTESTATION_TOKEN"' >/dev/null && pass "whoami with ATTESTATION_TOKEN (break-glass path for scripts)" || fail "whoami token" "$OUT" "$ERR"
run --env "ATTESTATION_OIDC_ISSUER= KEYCLOAK_URL=http://127.0.0.1:9/ KEYCLOAK_REALM=itl" auth login --method device
rc_is 8 "login with an unreachable provider: exit 8"
case $ERR in *"http://127.0.0.1:9/realms/itl"*) pass "issuer derived from KEYCLOAK_URL + KEYCLOAK_REALM" ;; *) fail "keycloak issuer" "$ERR" ;; esac
run auth login --method password
rc_is 2 "password login without --username: usage"
run auth login --method magic
rc_is 2 "unknown login method: usage"
run auth login --listen-port 70000
rc_is 2 "--listen-port out of range: usage"
adm bogus
rc_is 2 "unknown command: exit 2"
adm machine list --bogus
rc_is 2 "unknown option: exit 2"
case $ERR in *"unknown option '--bogus'"*) pass "unknown option is named" ;; *) fail "unknown option msg" "$ERR" ;; esac
adm machine list --output yaml
rc_is 2 "--output yaml: usage error"

# --help for every command
for c in "" "auth" "auth login" "auth whoami" "auth token" "auth logout" "auth cache-list" "auth clear-cache" \
	"machine" "machine list" "machine get" "machine approve" "machine lock" "machine unlock" "machine revoke" \
	"machine approvals" "machine bundle" "machine import" "audit" "audit list" "audit verify" "audit report" "completion"; do
	# shellcheck disable=SC2086
	"$CLI" $c --help >"$TMP/out" 2>&1; rc=$?
	if [ $rc = 0 ] && grep -q "Usage: attestation" "$TMP/out"; then :; else fail "--help for '$c'" "exit $rc" "$(cat "$TMP/out")"; fi
done
pass "--help works for every command"
"$CLI" --version | grep -q "^attestation [0-9]" && pass "--version" || fail "--version"

# bash completion: valid bash, completes commands and options
"$CLI" completion bash > "$TMP/compl.bash"
check "completion script is valid bash" bash -n "$TMP/compl.bash"
COMPL=$(bash -c ". '$TMP/compl.bash'; COMP_WORDS=(attestation machine ap); COMP_CWORD=2; _attestation; echo \"\${COMPREPLY[*]}\"")
check "completion: 'machine ap' -> approve approvals" test "$COMPL" = "approve approvals"
COMPL=$(bash -c ". '$TMP/compl.bash'; COMP_WORDS=(attestation machine approve m-1 --h); COMP_CWORD=4; _attestation; echo \"\${COMPREPLY[*]}\"")
check "completion: approve options" test "$COMPL" = "--help --hostname"
COMPL=$(bash -c ". '$TMP/compl.bash'; COMP_WORDS=(attestation machine list --status re); COMP_CWORD=4; _attestation; echo \"\${COMPREPLY[*]}\"")
check "completion: --status values" test "$COMPL" = "registered revoked"

# token cache file rules (no provider needed)
CD="$HOME/.itl/attestation-cache"
mkdir -p "$CD"; chmod 700 "$CD"
HASH=$(printf 'http://127.0.0.1:9/idp\nattestation-cli' | sha256sum | cut -d' ' -f1)
printf '{"issuer":"http://127.0.0.1:9/idp","client_id":"attestation-cli","access_token":"%s","expires_at":%d,"username":"cached-op","method":"password"}' \
	"$ADMIN" $(( $(date +%s) + 3600 )) > "$CD/$HASH.json"
chmod 644 "$CD/$HASH.json"
run machine list
rc_is 3 "a cache file readable by others is refused"
case $ERR in *"must be mode 0600"*) pass "the refusal says why" ;; *) fail "perm refusal msg" "$ERR" ;; esac
chmod 600 "$CD/$HASH.json"
run machine list --output json
rc_is 0 "a private cache file is used (its token is sent)"
run auth cache-list
golden cli-cache-list.txt "auth cache-list: table, no tokens shown"
case $OUT in *"$ADMIN"*) fail "cache-list never prints tokens" ;; *) pass "cache-list never prints tokens" ;; esac
run auth token
check "auth token prints the cached access token" test "$OUT" = "$ADMIN"
ln -sf "$TMP/elsewhere.json" "$CD/$HASH.json"
run machine list
rc_is 3 "a symlinked cache file is not followed"
rm -f "$CD/$HASH.json"
printf '{"issuer":"http://127.0.0.1:9/idp","client_id":"attestation-cli","access_token":"x","expires_at":1,"refresh_token":"r","token_endpoint":"http://127.0.0.1:9/token"}' > "$CD/$HASH.json"
chmod 600 "$CD/$HASH.json"
run machine list
rc_is 8 "expired token, provider unreachable: exit 8, cache kept"
check "cache kept when the provider is only unreachable" test -f "$CD/$HASH.json"
run auth clear-cache
case $OUT in "Removed 1 cached login(s)"*) pass "auth clear-cache" ;; *) fail "clear-cache" "$OUT" ;; esac
check "clear-cache left no token files" sh -c "! ls '$CD'/*.json 2>/dev/null | grep -q ."
check "cache dir is 0700" test "$(stat -c %a "$CD")" = 700
run auth logout
case $OUT in "Not logged in"*) pass "logout when not logged in: a sentence, exit 0" ;; *) fail "logout not logged in" "$OUT" ;; esac

done_testing
