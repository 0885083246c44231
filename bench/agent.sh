#!/bin/sh
# attest-agent part of make bench: the node agent's peak RSS and CPU time
# per poll, against a bare tpm2_quote on the same software TPM measured in
# the same run (the ceiling: what one TPM quote costs a client process).
# One swtpm (RSA-2048 EK with certificate), one attestd on SQLite behind
# tests/helpers/hostile-proxy in pass mode (so the service URL is known
# before attestd starts), the stand-in talosctl.  The agent registers,
# binds its AK, applies its config, then polls an attested machine:
# challenge, PCR read, quote of sha256:0-7, local check, attest.
# Targets: peak RSS under 4 MiB; CPU per poll of the order of a quote.
set -eu
BUILD=${1:-build}
SRCDIR=$(pwd)
ATTESTD=$SRCDIR/$BUILD/attestd
AGENT=$SRCDIR/$BUILD/attest-agent
PROXYBIN=$SRCDIR/$BUILD/tests/hostile-proxy
POLLS=${BENCH_AGENT_POLLS:-100}
QUOTES=${BENCH_AGENT_QUOTES:-10}
for t in swtpm swtpm_setup tpm2_quote; do
	command -v $t >/dev/null 2>&1 || { echo "bench: $t missing (scripts/deps.sh), skipping the agent"; exit 0; }
done
TMP=$(mktemp -d /tmp/attest-agentbench.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
. "$SRCDIR/tests/lib/swtpm.sh"
tpm_manufacture bench >/dev/null
TCTI=$TPM2TOOLS_TCTI

mkdir -p "$TMP/ctl" "$TMP/configs" "$TMP/bin" "$TMP/talosctl"
echo pass > "$TMP/ctl/mode"
"$PROXYBIN" "$TMP/proxy.port" "$TMP/ctl" 2>/dev/null &
PIDS="$PIDS $!"
i=0; while [ ! -s "$TMP/proxy.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
PROXY="http://127.0.0.1:$(cat "$TMP/proxy.port")"
cp examples/configs/*.yaml "$TMP/configs/"
ITL_DB_URL="sqlite:///$TMP/m.db" ITL_CONFIG_CACHE_DIR="$TMP/configs" ITL_ENROLLMENT_CA_DIR="$TMP/ca" \
ITL_SERVICE_URL="$PROXY" ITL_REGISTRATION_TOKEN=bench-registration-token ITL_LOG_LEVEL=warning \
ITL_FACTORY_URL=http://127.0.0.1:9 ITL_FACTORY_TIMEOUT_SECONDS=1 ITL_CONNECTION_LIMIT_PER_CLIENT=0 \
	"$ATTESTD" --listen 127.0.0.1:0 --ready-file "$TMP/ready" 2>"$TMP/attestd.log" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$TMP/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$TMP/ready" ] || { echo "bench: attestd did not start" >&2; exit 1; }
echo "http://$(cat "$TMP/ready")" > "$TMP/ctl/backend"
cp tests/helpers/talosctl "$TMP/bin/talosctl"
export TALOSCTL_DIR="$TMP/talosctl"
agent() { PATH="$TMP/bin:$PATH" "$AGENT" "$@" --server "$PROXY" --tcti "$TCTI" --state-dir "$TMP/state" \
	--cmdline /dev/null 2>>"$TMP/agent.log"; }

# to steady state: pre-approved registration, AK bound, config applied
agent register --token bench-registration-token >/dev/null
agent run --once
agent run --once
[ "$(jq -r .status "$TMP/state/state.json")" = already_attested ] || { echo "bench: agent setup failed" >&2; cat "$TMP/agent.log" >&2; exit 1; }

# the loop: POLLS polls in one process; peak RSS (and its anonymous part,
# sampled from /proc) and CPU time
PATH="$TMP/bin:$PATH" /usr/bin/time -o "$TMP/loop.time" -f '%M %U %S %e' "$AGENT" run --server "$PROXY" \
	--tcti "$TCTI" --state-dir "$TMP/state" --cmdline /dev/null --interval 0.05 --max-polls "$POLLS" 2>>"$TMP/agent.log" &
TP=$!
sleep 0.1
AP=$(pgrep -P "$TP" attest-agent || true)
anon=0; file=0
while [ -n "$AP" ] && [ -r "/proc/$AP/status" ]; do
	set -- $(awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { print a + 0, f + 0 }' "/proc/$AP/status" 2>/dev/null || echo "0 0")
	[ "$1" -gt "$anon" ] && anon=$1
	[ "$2" -gt "$file" ] && file=$2
	sleep 0.02
done
wait "$TP"
read -r L_RSS L_U L_S L_E < "$TMP/loop.time"
# one whole process per poll (what a cron-style `run --once` costs)
PATH="$TMP/bin:$PATH" /usr/bin/time -o "$TMP/once.time" -f '%M %U %S' "$AGENT" run --once --server "$PROXY" \
	--tcti "$TCTI" --state-dir "$TMP/state" --cmdline /dev/null 2>>"$TMP/agent.log"
read -r O_RSS O_U O_S < "$TMP/once.time"

# the ceiling: tpm2_quote on the same TPM, with an AK under its EK
tpm2_createak -C 0x81010001 -c "$TMP/ak.ctx" -G ecc -g sha256 -s ecdsa -u "$TMP/ak.pub" >/dev/null 2>&1
tpm_flush
Q_RSS=0; : > "$TMP/quote.cpu"
for i in $(seq "$QUOTES"); do
	/usr/bin/time -o "$TMP/q.time" -f '%M %U %S' tpm2_quote -c "$TMP/ak.ctx" -l sha256:0,1,2,3,4,5,6,7 \
		-q "$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')" -m "$TMP/q.msg" -s "$TMP/q.sig" -g sha256 >/dev/null 2>&1
	tpm_flush
	read -r r u s < "$TMP/q.time"
	[ "$r" -gt "$Q_RSS" ] && Q_RSS=$r
	echo "$u $s" >> "$TMP/quote.cpu"
done
Q_MS=$(awk '{ t += $1 + $2 } END { printf "%.2f", t * 1000 / NR }' "$TMP/quote.cpu")
L_MS=$(awk -v u="$L_U" -v s="$L_S" -v n="$POLLS" 'BEGIN { printf "%.2f", (u + s) * 1000 / n }')
O_MS=$(awk -v u="$O_U" -v s="$O_S" 'BEGIN { printf "%.2f", (u + s) * 1000 }')
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$Q_MS" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
echo "attest-agent on swtpm (RSA-2048 EK, P-256 AK, quote of sha256:0-7) against attestd on SQLite,"
echo "an attested machine; CPU is the client process's user+system time (the TPM's work is swtpm's)"
printf '%-44s %12s %14s %10s\n' "" "peak RSS MiB" "CPU ms/poll" "ratio"
printf '%-44s %12s %14s %10s\n' "tpm2_quote, one process per quote (ceiling)" "$(mib "$Q_RSS")" "$Q_MS" "1.00"
printf '%-44s %12s %14s %10s\n' "attest-agent run, $POLLS polls in one process" "$(mib "$L_RSS")" "$L_MS" "$(ratio "$L_MS")"
printf '%-44s %12s %14s %10s\n' "attest-agent run --once, one process" "$(mib "$O_RSS")" "$O_MS" "$(ratio "$O_MS")"
echo "agent loop at its peak: $(mib "$anon") MiB anonymous (heap, stacks) + $(mib "$file") MiB file-backed: the binary and its"
echo "shared libraries, mapped whole (libcrypto alone is ~4 MiB, and tpm2-tss's ESYS needs it); see docs/agent.md"
awk -v r="$L_RSS" -v l="$L_MS" -v q="$Q_MS" 'BEGIN {
	printf "target (peak RSS < 4 MiB): %s; target (CPU per poll <= a tpm2_quote): %s\n",
		(r < 4096) ? "met" : "NOT met", (l <= q) ? "met" : "NOT met" }'
