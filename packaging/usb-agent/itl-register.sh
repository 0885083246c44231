#!/bin/sh
# itl-register.sh - the USB registration agent's boot script (Alpine,
# /etc/local.d/itl-register.start).  Runs attest-agent once the network is
# up and leaves its answer on the console.  Kernel arguments (docs/agent.md):
#   itl.reg_url=https://attest.example   the service (attest-agent reads it)
#   itl.role=worker-app                  desired role (attest-agent reads it)
#   itl.reg_token=<token>                pre-approve with ITL_REGISTRATION_TOKEN
#   itl.offline                          no network: write a TPM receipt instead
#   itl.receipt_dir=/media/usb/itl       where the receipt goes (on the stick)
# ITL_CMDLINE, ITL_AGENT and ITL_TRIES override the kernel command line
# file, the agent binary and the number of attempts (tests).
set -u
CMDLINE=${ITL_CMDLINE:-/proc/cmdline}
AGENT=${ITL_AGENT:-/usr/local/bin/attest-agent}
TRIES=${ITL_TRIES:-30}

# karg NAME: the value of kernel argument NAME ("" when bare); status 1 when absent
karg() {
	found=1; val=""
	for w in $(cat "$CMDLINE"); do
		case $w in
		"$1") found=0; val="" ;;
		"$1"=*) found=0; val=${w#*=} ;;
		esac
	done
	printf '%s' "$val"
	return $found
}

say() { printf '\n*** itl-register: %s\n' "$*"; }

if karg itl.offline >/dev/null; then
	dir=$(karg itl.receipt_dir) || dir=/media/usb/itl
	[ -n "$dir" ] || dir=/media/usb/itl
	mnt=$(df -P "$(dirname "$dir")" 2>/dev/null | awk 'NR == 2 { print $6 }')
	[ -n "$mnt" ] && [ "$mnt" != / ] && mount -o remount,rw "$mnt" 2>/dev/null
	mkdir -p "$dir"
	if "$AGENT" receipt --cmdline "$CMDLINE" --file "$dir/tpm-receipt.json"; then
		say "TPM receipt written to $dir/tpm-receipt.json."
		say "Import it on the service: POST /api/v1/machines/import (attestation machine import)."
		exit 0
	fi
	say "could not read the TPM: see the messages above."
	exit 1
fi

token=$(karg itl.reg_token) || token=""
n=0
while :; do
	n=$((n + 1))
	if [ -n "$token" ]; then
		"$AGENT" register --cmdline "$CMDLINE" --token "$token"
	else
		"$AGENT" register --cmdline "$CMDLINE"
	fi
	rc=$?
	case $rc in
	0) say "Registered. Remove this stick and boot the machine from the ISO shown above."; exit 0 ;;
	3) [ "$n" -lt "$TRIES" ] || { say "the service did not answer; giving up."; exit 3; }
	   say "the service is not reachable yet; retrying in 10 s ($n/$TRIES)"
	   sleep "${ITL_RETRY_SECONDS:-10}" ;;
	*) say "registration failed (exit status $rc): see the messages above."; exit "$rc" ;;
	esac
done
