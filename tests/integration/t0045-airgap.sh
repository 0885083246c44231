#!/bin/sh
# Signed air-gap bundles (docs/airgap.md): a machine with a software TPM
# (swtpm) is approved on instance A, exported as a signed archive
# (GET /machines/{id}/bundle, `attestation machine bundle --output`),
# checked with openssl (CMS signature, certificate chain, SHA-384 digests),
# imported into instance B (another data dir and database) that trusts A's
# CA through ITL_TRUSTED_EXPORTERS, and attests there with a quote by an AK
# activated against its EK.  Tampered, untrusted, truncated, hostile
# (traversal, links, devices, duplicates) and oversized archives get a 4xx
# and write nothing.  Also: ?include_key=true on offline-bundle.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/swtpm.sh"
: "${ATTESTATION_CLI:?}"

for t in swtpm swtpm_setup tpm2_createak python3; do
	command -v $t >/dev/null 2>&1 || { echo "Bail out! $t not installed (scripts/deps.sh)"; exit 1; }
done

b64() { base64 -w0 "$1"; }
save() { eval "${1}_BASE=\$BASE ${1}_DATA=\$DATA ${1}_DB=\$DB ${1}_PG=\${PG_DB:-} ${1}_PID=\$ATTESTD_PID"; }
use() { eval "BASE=\$${1}_BASE DATA=\$${1}_DATA DB=\$${1}_DB PG_DB=\$${1}_PG ATTESTD_PID=\$${1}_PID"; }
counts_b() { use B; echo "$(sql 'SELECT COUNT(*) FROM machines'):$(sql 'SELECT COUNT(*) FROM audit_log'):$(sql 'SELECT COUNT(*) FROM issued_certs')"; }

# mktar OUT.tar.gz SPEC...: a gzip'd ustar archive; SPEC is file:NAME=PATH,
# sym:NAME=TARGET, hard:NAME=TARGET, chr:NAME or dir:NAME (names verbatim).
cat > "$TMP/mktar.py" <<'EOF'
import gzip, io, sys, tarfile
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    for spec in sys.argv[2:]:
        kind, rest = spec.split(":", 1)
        name, _, arg = rest.partition("=")
        ti = tarfile.TarInfo(name)
        ti.mode = 0o644
        data = None
        if kind == "file":
            data = open(arg, "rb").read()
            ti.size = len(data)
        elif kind == "sym":
            ti.type, ti.linkname = tarfile.SYMTYPE, arg
        elif kind == "hard":
            ti.type, ti.linkname = tarfile.LNKTYPE, arg
        elif kind == "chr":
            ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
        elif kind == "dir":
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
open(sys.argv[1], "wb").write(gzip.compress(buf.getvalue()))
EOF
mktar() { python3 "$TMP/mktar.py" "$@"; }

# ---- instance A: the machine is registered and approved there ------------------------
tpm_manufacture A
tpm_use A
tpm_ek rsa
start_attestd
save A
api POST /api/v1/register "$(node_body)"
expect 200 "A: the swtpm machine registers with its EK certificate"
MID=$(jget .machine_id)
admin POST "/api/v1/machines/$MID/approve" '{"role":"worker-infra","hostname":"edge-07","assigned_ip":"10.20.0.7/24"}'
expect 200 "A: approved with hostname and address" '.status == "registered"'
api GET /api/v1/ca
printf '%s\n' "$BODY" > "$TMP/a-ca.pem"
check "A's CA bundle fetched from GET /api/v1/ca" grep -q "BEGIN CERTIFICATE" "$TMP/a-ca.pem"

say "--- offline-bundle: the private key only with ?include_key=true"
admin GET "/api/v1/machines/$MID/offline-bundle"
expect 200 "without include_key: no key, no certificate" \
	'.enrollment_key_included == false and .enrollment_key_pem == null and .enrollment_cert_pem == null and (.machineconfig | contains("enrollment.key") | not)'
check "... audited as offline_bundle without the key" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'offline_bundle' AND detail LIKE '%without the enrollment key%'")" = 1
admin GET "/api/v1/machines/$MID/offline-bundle?include_key=true"
expect 200 "include_key=true: certificate and key" \
	'.enrollment_key_included == true and (.enrollment_key_pem | startswith("-----BEGIN PRIVATE KEY")) and (.machineconfig | contains("enrollment.key"))'
check "... audited with a distinct detail" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'offline_bundle' AND detail LIKE '%private key returned (include_key=true)%'")" = 1
admin GET "/api/v1/machines/$MID/offline-bundle?include_key=yes"
expect 422 "include_key=yes is not a boolean" '.detail | test("include_key")'

say "--- export (API and CLI)"
api GET "/api/v1/machines/$MID/bundle"
expect 401 "GET /machines/{id}/bundle needs an operator"
curl -sS -o "$TMP/bundle.tar.gz" -D "$TMP/bundle.h" -w '%{http_code}' -H "Authorization: Bearer $ADMIN" \
	"$BASE/api/v1/machines/$MID/bundle" > "$TMP/bundle.status"
check "GET /machines/{id}/bundle: 200 application/gzip" sh -c \
	"test \"\$(cat '$TMP/bundle.status')\" = 200 && grep -qi '^content-type: application/gzip' '$TMP/bundle.h'"
check "... audited as airgap_export (the archive carries the key)" test \
	"$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'airgap_export' AND machine_id = '$MID' AND detail LIKE '%carries the enrollment private key%'")" = 1
check "... the exporter key is kept next to the CA, mode 0600" test "$(stat -c %a "$DATA/ca/bundle-exporter.key")" = 600
ATTESTATION_TOKEN=$ADMIN ATTESTATION_API_URL=$BASE "$ATTESTATION_CLI" machine bundle "$MID" --output "$TMP/cli.tar.gz" 2>"$TMP/cli.err"
check "attestation machine bundle ID --output FILE.tar.gz writes the archive, mode 0600" sh -c \
	"test -s '$TMP/cli.tar.gz' && test \"\$(stat -c %a '$TMP/cli.tar.gz')\" = 600 && gzip -t '$TMP/cli.tar.gz'"

X="$TMP/x"; mkdir -p "$X"
tar -xzf "$TMP/bundle.tar.gz" -C "$X"
check "archive layout" test "$(tar -tzf "$TMP/bundle.tar.gz" | tr '\n' ' ')" = \
	"machine.json machineconfig.yaml enrollment.crt enrollment.key ca-bundle.pem install.json manifest.json manifest.sig "
check "enrollment.key is mode 0600 in the archive" sh -c "tar -tvzf '$TMP/bundle.tar.gz' enrollment.key | grep -q '^-rw-------'"
check "openssl cms verifies the detached manifest signature against A's CA" \
	openssl cms -verify -binary -inform DER -in "$X/manifest.sig" -content "$X/manifest.json" -CAfile "$TMP/a-ca.pem" -out /dev/null
openssl pkcs7 -inform DER -in "$X/manifest.sig" -print_certs 2>/dev/null | sed -n '/BEGIN/,/END/p' > "$TMP/exporter.pem"
check "the signer is the bundle exporter (EKU 2.25.2512..., issued by A's CA)" sh -c \
	"openssl x509 -in '$TMP/exporter.pem' -noout -text | grep -q '2.25.251240790766048780531157725286639233413' && openssl verify -CAfile '$TMP/a-ca.pem' -purpose any '$TMP/exporter.pem' >/dev/null"
check "every member's SHA-384 matches the manifest" sh -c "cd '$X' && jq -r '.files[] | .sha384 + \"  \" + .name' manifest.json | sha384sum -c --quiet"
check "openssl verifies the enrollment certificate against the bundled CA (client auth)" \
	sh -c "openssl verify -CAfile '$X/ca-bundle.pem' -purpose sslclient '$X/enrollment.crt' >/dev/null"
check "... it names the machine and carries the EK SAN" sh -c \
	"openssl x509 -in '$X/enrollment.crt' -noout -text | grep -q 'URI:urn:itl:ek:$EK_FP' && openssl x509 -in '$X/enrollment.crt' -noout -subject | grep -q 'CN = $MID'"
check "... and the key is its key" test "$(openssl x509 -in "$X/enrollment.crt" -noout -pubkey)" = "$(openssl pkey -in "$X/enrollment.key" -pubout)"
check "machineconfig.yaml holds cert and key as machine.files" sh -c \
	"grep -q '/var/lib/itl-tpm/enrollment.key' '$X/machineconfig.yaml' && grep -q '/var/lib/itl-tpm/enrollment.crt' '$X/machineconfig.yaml'"
check "machine.json: id, role, hostname, address, EK" sh -c \
	"jq -e '.machine_id == \"$MID\" and .role == \"worker-infra\" and .hostname == \"edge-07\" and .assigned_ip == \"10.20.0.7/24\" and .ek_fingerprint == \"$EK_FP\"' '$X/machine.json' >/dev/null"
check "install.json has the ISO/installer fields" sh -c "jq -e 'has(\"iso_url\") and has(\"installer_image\")' '$X/install.json' >/dev/null"

# ---- instance C: another CA, whose bundles B does not trust ----------------------------
start_attestd
save C
api POST /api/v1/register "$(node_body)"
MID_C=$(jget .machine_id)
admin POST "/api/v1/machines/$MID_C/approve" '{"role":"worker-infra","hostname":"edge-07"}' >/dev/null
curl -sS -o "$TMP/foreign.tar.gz" -H "Authorization: Bearer $ADMIN" "$BASE/api/v1/machines/$MID_C/bundle"

# ---- instance B: trusts A's CA as exporter -----------------------------------------------
start_attestd ITL_TRUSTED_EXPORTERS="$TMP/a-ca.pem"
save B
BEFORE=$(counts_b)

# post_bundle FILE [content-type]: POST /machines/import as the admin
post_bundle() {
	STATUS=$(curl -sS -o "$TMP/resp.body" -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN" \
		-H "Content-Type: ${2:-application/gzip}" --data-binary @"$1" "$BASE/api/v1/machines/import")
	BODY=$(cat "$TMP/resp.body")
}
# rejected FILE STATUS DESC [jq]: nothing written on B
rejected() {
	post_bundle "$1"
	expect "$2" "$3" "${4:-true}"
	check "... nothing written" test "$(counts_b)" = "$BEFORE"
}

say "--- tampered and hostile archives (B)"
M="file:machine.json=$X/machine.json file:machineconfig.yaml=$X/machineconfig.yaml file:enrollment.crt=$X/enrollment.crt file:enrollment.key=$X/enrollment.key file:ca-bundle.pem=$X/ca-bundle.pem file:install.json=$X/install.json"
S="file:manifest.json=$X/manifest.json file:manifest.sig=$X/manifest.sig"
jq '.role = "controlplane"' "$X/machine.json" > "$TMP/evil-machine.json"
# shellcheck disable=SC2086
mktar "$TMP/t1.tar.gz" file:machine.json="$TMP/evil-machine.json" $(echo "$M" | cut -d' ' -f2-) $S
rejected "$TMP/t1.tar.gz" 422 "a member changed after signing (digest mismatch)" '.detail | test("machine.json.*SHA-384")'

EVIL=$(sha384sum "$TMP/evil-machine.json" | cut -d' ' -f1)
jq --arg d "$EVIL" '(.files[] | select(.name == "machine.json") | .sha384) = $d | (.files[] | select(.name == "machine.json") | .size) = '"$(wc -c < "$TMP/evil-machine.json")" \
	"$X/manifest.json" > "$TMP/evil-manifest.json"
# shellcheck disable=SC2086
mktar "$TMP/t2.tar.gz" file:machine.json="$TMP/evil-machine.json" $(echo "$M" | cut -d' ' -f2-) \
	file:manifest.json="$TMP/evil-manifest.json" file:manifest.sig="$X/manifest.sig"
rejected "$TMP/t2.tar.gz" 403 "manifest changed to match (signature no longer verifies)" '.detail | test("signature")'

cp "$X/manifest.sig" "$TMP/bad.sig"
n=$(wc -c < "$TMP/bad.sig")
printf '\001' | dd of="$TMP/bad.sig" bs=1 seek=$((n - 5)) conv=notrunc 2>/dev/null
printf '\376' | dd of="$TMP/bad.sig" bs=1 seek=$((n - 4)) conv=notrunc 2>/dev/null
# shellcheck disable=SC2086
mktar "$TMP/t3.tar.gz" $M file:manifest.json="$X/manifest.json" file:manifest.sig="$TMP/bad.sig"
rejected "$TMP/t3.tar.gz" 403 "signature bytes changed" '.detail | test("signature")'

rejected "$TMP/foreign.tar.gz" 403 "a bundle signed by an instance B does not trust" '.detail | test("ITL_TRUSTED_EXPORTERS")'

head -c $(( $(wc -c < "$TMP/bundle.tar.gz") / 2 )) "$TMP/bundle.tar.gz" > "$TMP/trunc.tar.gz"
rejected "$TMP/trunc.tar.gz" 422 "a truncated archive" '.detail | test("truncated")'
gzip -dc "$TMP/bundle.tar.gz" | head -c 3000 | gzip -c > "$TMP/trunc2.tar.gz"
rejected "$TMP/trunc2.tar.gz" 422 "a truncated tar inside a whole gzip stream" '.detail | test("truncated")'

printf 'x\n' > "$TMP/x.txt"
# shellcheck disable=SC2086
mktar "$TMP/t4.tar.gz" $M $S file:../x="$TMP/x.txt"
rejected "$TMP/t4.tar.gz" 422 "path traversal (../x)" '.detail | test("traversal")'
# shellcheck disable=SC2086
mktar "$TMP/t5.tar.gz" $M $S file:/etc/x="$TMP/x.txt"
rejected "$TMP/t5.tar.gz" 422 "absolute path (/etc/x)" '.detail | test("absolute")'
# shellcheck disable=SC2086
mktar "$TMP/t6.tar.gz" $M $S sym:evil=/etc/shadow
rejected "$TMP/t6.tar.gz" 422 "a symlink member" '.detail | test("symbolic link")'
# shellcheck disable=SC2086
mktar "$TMP/t7.tar.gz" $M $S hard:evil=machine.json
rejected "$TMP/t7.tar.gz" 422 "a hard link member" '.detail | test("hard link")'
# shellcheck disable=SC2086
mktar "$TMP/t8.tar.gz" $M $S chr:null
rejected "$TMP/t8.tar.gz" 422 "a device member" '.detail | test("device")'
# shellcheck disable=SC2086
mktar "$TMP/t9.tar.gz" $M $S file:machine.json="$X/machine.json"
rejected "$TMP/t9.tar.gz" 422 "duplicate member names" '.detail | test("duplicate")'
# shellcheck disable=SC2086
mktar "$TMP/t10.tar.gz" $M $S file:extra.txt="$TMP/x.txt"
rejected "$TMP/t10.tar.gz" 422 "a member the manifest does not list" '.detail | test("not listed")'

head -c 17000000 /dev/zero > "$TMP/zeros"
# shellcheck disable=SC2086
mktar "$TMP/bomb.tar.gz" $M $S file:zeros="$TMP/zeros"
check "the gzip bomb is small" test "$(wc -c < "$TMP/bomb.tar.gz")" -lt 100000
rejected "$TMP/bomb.tar.gz" 413 "inflates past the cap (gzip bomb)" '.detail | test("inflates to more than")'
head -c 5000000 /dev/urandom > "$TMP/big.bin"
rejected "$TMP/big.bin" 413 "more than the compressed cap"

api POST /api/v1/machines/import 'not json' -H "Authorization: Bearer $ADMIN"
expect 422 "malformed JSON receipt"
api POST /api/v1/machines/import "" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: text/plain' --data-binary 'hello'
expect 415 "wrong content type"
printf 'plain text' > "$TMP/plain"
rejected "$TMP/plain" 422 "application/gzip that is not gzip" '.detail | test("gzip")'
check "nothing at all was written on B by any rejected import" test "$(counts_b)" = "$BEFORE"

say "--- import into B, then the machine attests there"
ATTESTATION_TOKEN=$ADMIN ATTESTATION_API_URL=$BASE "$ATTESTATION_CLI" machine import "$TMP/bundle.tar.gz" -o json > "$TMP/imp.json" 2>"$TMP/imp.err"
check "attestation machine import bundle.tar.gz" sh -c \
	"jq -e '.machine_id == \"$MID\" and .status == \"registered\" and .role == \"worker-infra\" and .hostname == \"edge-07\" and .assigned_ip == \"10.20.0.7/24\"' '$TMP/imp.json' >/dev/null"
check "... audited as airgap_import with the signer" test \
	"$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'airgap_import' AND machine_id = '$MID' AND detail LIKE '%ITL Bundle Exporter%'")" = 1
check "... EK material carried across (canonical fingerprint)" test "$(sql "SELECT ek_fingerprint FROM machines WHERE machine_id = '$MID'")" = "$EK_FP"
AFTER=$(counts_b)
post_bundle "$TMP/bundle.tar.gz"
expect 409 "importing it again: conflict" '.detail | test("conflicts")'
check "... nothing written" test "$(counts_b)" = "$AFTER"

tpm_ak rsa ak
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak.pub")\"}"
expect 200 "B: AK activation challenge against the imported EK"
ACT=$(jget .activation_id)
jget .credential_blob | base64 -d > "$TW/cred.blob"
tpm_activate ak "$TW/cred.blob" "$TW/secret.bin"
api POST "/api/v1/machines/$MID/ak-activate/complete" "{\"activation_id\":\"$ACT\",\"secret\":\"$(b64 "$TW/secret.bin")\"}"
expect 200 "B: the TPM proves its EK and binds the AK"
api GET /api/v1/attest/challenge
NID=$(jget .nonce_id); NHEX=$(jget .nonce | base64 -d | od -An -v -tx1 | tr -d ' \n')
tpm_quote ak "$NHEX" sha256:0,1,2,3,7
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$NID\",\"pcr_quote\":\"$(b64 "$TW/quote.msg")\",\"pcr_signature\":\"$(b64 "$TW/quote.sig")\",\"pcr_values\":$PCR_JSON")"
expect 200 "B: the imported machine attests with a quote and gets its config" \
	'.status == "attested" and .action == "apply-config" and .hostname == "edge-07" and .role == "worker-infra"'

use C
post_bundle "$TMP/bundle.tar.gz"
expect 403 "an instance without ITL_TRUSTED_EXPORTERS refuses every archive" '.detail | test("ITL_TRUSTED_EXPORTERS is not set")'
stop_attestd
use A; stop_attestd
use B; stop_attestd
done_testing
