#!/bin/sh
# make bench, part: certificate issuances per second on one core
# (tests/helpers/cert-bench: CSR check + quote check + the leaf built and
# signed), as a ratio to `openssl speed` signing for the CA's key type and
# to the OpenSSL floor (the three public-key operations of an issuance
# alone), all measured now; then the same end to end through attestd.
# BENCH_CERT_SECONDS sets the time per figure, BENCH_CERT_REQUESTS the
# number of enrollments over HTTP.
set -eu
BUILD=${1:-build}
S=${BENCH_CERT_SECONDS:-${BENCH_QUOTE_SECONDS:-3}}
OUT=$(mktemp -d /tmp/attest-bench-certs.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
. bench/lib.sh

"$BUILD/tests/cert-bench" "$S" | sort > "$OUT/issue.txt"
# "alg sign/s verify/s" (openssl speed counts user CPU time, as cert-bench does)
openssl speed -mr -seconds "$S" ecdsap384 ecdsap256 rsa4096 2>/dev/null | awk -F: '
	/^\+F2:/ && $3 == 4096 { print "rsa4096", $4, $5 }
	/^\+F4:/ && $3 == 384 { print "ecdsap384", $4, $5 }
	/^\+F4:/ && $3 == 256 { print "ecdsap256", $4, $5 }' | sort > "$OUT/speed.txt"
P384V=$(awk '$1 == "ecdsap384" { print $3 }' "$OUT/speed.txt")
P256V=$(awk '$1 == "ecdsap256" { print $3 }' "$OUT/speed.txt")
[ -n "$P384V" ] && [ -n "$P256V" ] || { echo "bench: openssl speed gave no ECDSA figures" >&2; exit 1; }

echo
echo "Certificate issuance, one core (tests/helpers/cert-bench, 16 machines in turn, no database): parse and"
echo "verify the CSR (P-384 key), the bound P-256 AK's quote over the nonce (8 PCRs), build and sign the leaf"
echo "(floor: the rate openssl speed allows for the CA signature + one P-384 and one P-256 verify alone)"
printf '%-10s %10s %12s %16s %7s %16s %7s\n' "CA key" "issued/s" "leaf sign/s" "openssl sign/s" "ratio" "openssl floor/s" "ratio"
join "$OUT/issue.txt" "$OUT/speed.txt" | awk -v v384="$P384V" -v v256="$P256V" '{
	floor = 1 / (1 / $4 + 1 / v384 + 1 / v256)
	printf "%-10s %10s %12s %16.0f %7.2f %16.0f %7.2f\n", $1, $2, $3, $4, $2 / $4, floor, $2 / floor
	if ($2 / floor < 0.7) bad = 1; n++ }
	END { printf "target (issued >= 0.7 of the openssl floor, each CA key): %s\n", (bad || n < 2) ? "NOT met" : "met" }'

# End to end: POST /api/v1/machines/{id}/enroll through attestd on SQLite
# (2 worker threads), BENCH_CERT_REQUESTS enrollments of one attested
# machine, each over its own challenge, 8 at a time from one curl.  The
# AK is bound by writing its row (AK activation needs a TPM; the agent
# bench covers it); every request is a real enrollment: nonce consumed,
# certificate issued and recorded, audited.
N=${BENCH_CERT_REQUESTS:-500}
ATTESTD=$(pwd)/$BUILD/attestd
bench_attestd ITL_ADMIN_TOKEN=bench-admin ITL_LOG_LEVEL=error ITL_UNAUTH_WRITE_LIMIT=0
bench_machine bench-admin
curl -s -o /dev/null -H 'Content-Type: application/json' -d "$BODY" "$BASE/api/v1/attest"
mkdir "$OUT/bodies"
i=0; while [ $i -lt "$N" ]; do echo "url = \"$BASE/api/v1/attest/challenge\""; i=$((i + 1)); done > "$OUT/challenges.cfg"
curl -s -w '\n' -K "$OUT/challenges.cfg" | "$BUILD/tests/cert-bench" --bodies "$OUT/bodies" > "$OUT/ak.txt"
read -r AKPUB AKNAME < "$OUT/ak.txt"
sqlite3 -cmd '.timeout 10000' "$OUT/m.db" "UPDATE machines SET ak_public = '$AKPUB', ak_name = '$AKNAME', ak_bound_at = '2026-01-01T00:00:00' WHERE machine_id = '$MID'"
i=0; while [ $i -lt "$N" ]; do
	[ $i -gt 0 ] && echo next
	printf 'url = "%s/api/v1/machines/%s/enroll"\nheader = "Content-Type: application/json"\ndata-binary = "@%s/bodies/%d.json"\noutput = "/dev/null"\nsilent\nwrite-out = "%%{http_code}\\n"\n' \
		"$BASE" "$MID" "$OUT" "$i"
	i=$((i + 1))
done > "$OUT/curl.cfg"
cpu() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
c0=$(cpu); t0=$(date +%s.%N)
curl -s --no-progress-meter --parallel --parallel-max 8 -K "$OUT/curl.cfg" > "$OUT/codes.txt"
t1=$(date +%s.%N); c1=$(cpu)
OK=$(grep -c '^200$' "$OUT/codes.txt" || true)
ROWS=$(sqlite3 -cmd '.timeout 10000' "$OUT/m.db" "SELECT COUNT(*) FROM issued_certs WHERE machine_id = '$MID'")
SIGN=$(awk '$1 == "ecdsap384" { print $2 }' "$OUT/speed.txt")
echo
echo "End to end: $N x POST /api/v1/machines/{id}/enroll (ECDSA P-384 CA, SQLite, ITL_THREADS=${ITL_THREADS:-2}, 8 in flight)"
awk -v ok="$OK" -v n="$N" -v rows="$ROWS" -v t="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
	-v cpu="$(( c1 - c0 ))" -v hz="$HZ" -v sign="$SIGN" 'BEGIN {
	cs = cpu / hz; r = cs > 0 ? ok / cs : 0
	printf "%d of %d answered 200, %d certificates recorded; %.0f issuances/s wall, %.0f per attestd CPU second\n", ok, n, rows, ok / t, r
	printf "ratio to openssl speed ecdsap384 sign/s (%.0f): %.2f\n", sign, r / sign }'
[ "$OK" = "$N" ] && [ "$ROWS" = "$N" ] || { echo "bench: not every enrollment succeeded:" >&2; sort "$OUT/codes.txt" | uniq -c >&2; exit 1; }
