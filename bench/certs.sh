#!/bin/sh
# make bench, part: certificate issuances per second on one core
# (tests/helpers/cert-bench: CSR check + quote check + the leaf built and
# signed), as a ratio to `openssl speed` signing for the CA's key type and
# to the OpenSSL floor (the three public-key operations of an issuance
# alone), all measured now.  BENCH_CERT_SECONDS sets the time per figure.
set -eu
BUILD=${1:-build}
S=${BENCH_CERT_SECONDS:-${BENCH_QUOTE_SECONDS:-3}}
OUT=$(mktemp -d /tmp/attest-bench-certs.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
trap 'exit 130' INT TERM HUP

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
