#!/bin/sh
# The web dashboard in a real browser: Debian's headless Chromium driven by
# playwright-core (tests/browser/package-lock.json, installed by `npm ci`
# from scripts/deps.sh), against a real attestd and glewlwyd (OIDC login
# with PKCE through glewlwyd's own login and consent pages, two operators
# and a viewer).  This script starts the servers and seeds machines, some
# with markup in every machine-provided string; dashboard.mjs drives the
# browser and reports each check, which becomes one TAP line here.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/glewlwyd.sh"
HERE="$SRCDIR/tests/browser"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$GLEW_BIN" ]; then echo "Bail out! glewlwyd is not installed (scripts/deps.sh installs it)"; exit 1; fi
if [ ! -x "$CHROMIUM" ]; then echo "Bail out! $CHROMIUM is missing (scripts/deps.sh installs Debian's chromium)"; exit 1; fi
if ! command -v node >/dev/null; then echo "Bail out! node is missing (scripts/deps.sh installs nodejs)"; exit 1; fi
if [ ! -f "$HERE/node_modules/playwright-core/package.json" ]; then
	echo "Bail out! tests/browser/node_modules is missing: run 'npm ci' in tests/browser (scripts/deps.sh does)"; exit 1
fi

CLIPORT=$(free_port)
GLEW_WEBAPP=1 glew_start "$CLIPORT"
AUD="https://attestation.test/"
start_attestd ITL_OIDC_ISSUER="$ISS" ITL_OIDC_AUDIENCE="$AUD,attestation" ITL_OIDC_ROLE_CLAIMS=/roles \
	BREAK_GLASS_TOKEN=glass-$$ ITL_DUAL_CONTROL_ROLES=controlplane ITL_UI_OIDC_SCOPE="openid attestation" \
	ITL_UI_OIDC_RESOURCE="$AUD" ITL_UI_POLL_SECONDS=2 ITL_CONTACT_RESOLUTION_SECONDS=0 ITL_CONTACT_SILENT_SECONDS=60 \
	ITL_TPM_VERIFY_CA=true ITL_TPM_CA_BUNDLE_DIR="$SRCDIR/tests/data/tpm-ca"
glew_public_client attestation-dashboard "$BASE/ui/callback"

# ---- machines ------------------------------------------------------------------
XSS_IMG='<img src=x onerror="window.__xss=1">'
XSS_SCRIPT='"><script>window.__xss=2</script>'
cat > "$TMP/san.cnf" <<'EOF'
oid_section = oids
[oids]
tpmManufacturer = 2.23.133.2.1
tpmModel = 2.23.133.2.2
[req]
distinguished_name = dn
[dn]
[ext]
keyUsage = critical,keyAgreement
subjectAltName = critical,dirName:tpm
[tpm]
tpmManufacturer = <svg onload=window.__xss=4>
tpmModel = <b>bold</b><img src=x onerror=window.__xss=5>
EOF
# an EK whose issuer, manufacturer and model are markup (the chain to the
# real vendor roots fails, non-strict: the manufacturer and model are kept)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/evil.key" -out "$TMP/evil.pem" -days 30 \
	-subj '/CN=<img src=x onerror=window.__xss=3>' -config "$TMP/san.cnf" -extensions ext >/dev/null 2>&1
register() { # NAME EXTRA-JSON -> prints the machine id
	api POST /api/v1/register "$(node_body "$2")"
	[ "$STATUS" = 200 ] || { echo "Bail out! register $1: $STATUS $BODY"; exit 1; }
	jget .machine_id
}
esc() { printf '%s' "$1" | jq -Rs .; }
EK_B64=$(base64 -w0 "$TMP/evil.pem")
EK_FP=$(openssl x509 -in "$TMP/evil.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
M_XSS=$(register evil ",\"hw_product\":$(esc "$XSS_IMG"),\"hw_serial\":$(esc "$XSS_SCRIPT")")
make_ek single ec;  M_SINGLE=$(register single ',"hw_product":"PowerEdge R650"')
make_ek dual ec;    M_DUAL=$(register dual ',"hw_product":"ProLiant DL360","desired_role":"controlplane"')
make_ek lock ec;    M_LOCK=$(register lock ',"hw_product":"ThinkSystem SR630"')
make_ek wipe ec;    M_WIPE=$(register wipe ',"hw_product":"ThinkSystem SR630"')
make_ek live ec;    M_LIVE=$(register live ',"hw_product":"ThinkSystem SR630"')
B_LIVE=$(node_body)
for i in 1 2 3 4; do make_ek "bulk$i" ec; eval "M_BULK$i=\$(register bulk$i ',\"hw_product\":\"Bulk box $i\"')"; done
n=0
for m in "$M_LOCK:lock-01" "$M_WIPE:wipe-01" "$M_LIVE:live-01" "$M_BULK1:bulk-01" "$M_BULK2:bulk-02" "$M_BULK3:bulk-03" "$M_BULK4:bulk-04" "$M_XSS:xss-01"; do
	n=$((n + 1))
	admin POST "/api/v1/machines/${m%%:*}/approve" "{\"role\":\"worker-app\",\"hostname\":\"${m#*:}\",\"assigned_ip\":\"10.0.0.$n/24\"}"
	[ "$STATUS" = 200 ] || { echo "Bail out! approve ${m#*:}: $STATUS $BODY"; exit 1; }
done
api POST /api/v1/attest "$B_LIVE" >/dev/null
admin POST "/api/v1/machines/$M_XSS/lock" "{\"reason\":$(esc "$XSS_IMG")}"
# non-ASCII (BMP and astral) in the chain: the browser must escape it as Python does
admin POST "/api/v1/machines/$M_XSS/unlock" "{\"reason\":$(esc "$XSS_SCRIPT — naïve ✓ 𝄞")}"
for i in 1 2 3; do make_ek "pend$i" rsa; register "pend$i" ",\"hw_product\":\"Queue box $i\"" >/dev/null; done
sql "UPDATE machines SET ek_manufacturer = 'IFX', ek_model = 'SLB9670', ek_verified = 1 WHERE machine_id IN ('$M_LOCK','$M_WIPE','$M_BULK1')"
sql "UPDATE machines SET ek_manufacturer = 'STM', ek_model = 'ST33', ek_verified = 0, ek_chain_error = 'unable to get local issuer certificate' WHERE machine_id = '$M_BULK2'"

cat > "$TMP/env.json" <<EOF
{"base":"$BASE","iss":"$ISS","glew":"$GLEW","admin":"$ADMIN","breakGlass":"glass-$$","db":"$DB","chromium":"$CHROMIUM",
 "tmp":"$TMP","screenshots":"${SCREENSHOTS_DIR:-}",
 "m":{"xss":"$M_XSS","single":"$M_SINGLE","dual":"$M_DUAL","lock":"$M_LOCK","wipe":"$M_WIPE","live":"$M_LIVE",
      "bulk":["$M_BULK1","$M_BULK2","$M_BULK3","$M_BULK4"]},
 "liveBody":$(printf '%s' "$B_LIVE" | jq -c .),
 "xss":[$(esc "$XSS_IMG"),$(esc "$XSS_SCRIPT"),$(esc '<img src=x onerror=window.__xss=3>'),$(esc '<svg onload=window.__xss=4>'),$(esc '<b>bold</b><img src=x onerror=window.__xss=5>')]}
EOF

# ---- the browser --------------------------------------------------------------
node "$HERE/dashboard.mjs" "$TMP/env.json" > "$TMP/results.tsv" 2> "$TMP/node.err"
rc=$?
TAB=$(printf '\t')
while IFS="$TAB" read -r kind desc detail; do
	case $kind in
	PASS) pass "$desc" ;;
	FAIL) fail "$desc" "$detail" ;;
	*) say "$kind $desc $detail" ;;
	esac
done < "$TMP/results.tsv"
if [ "$rc" != 0 ]; then fail "dashboard.mjs ran to the end (exit $rc)" "$(tail -30 "$TMP/node.err")"; fi
check "the browser checks ran ($(grep -c '^PASS\|^FAIL' "$TMP/results.tsv") of them)" test "$(grep -c '^PASS\|^FAIL' "$TMP/results.tsv")" -ge 40
done_testing
