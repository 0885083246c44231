#!/bin/sh
# Install every Debian 12 package attestation needs to build, run and test.
# Safe to re-run; uses sudo when not root.
set -eu
SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
		echo "deps.sh: run as root or install sudo" >&2; exit 1; fi
fi
PKGS="build-essential pkg-config meson ninja-build git ca-certificates \
 libmicrohttpd-dev libjansson-dev libfyaml-dev libsqlite3-dev libssl-dev \
 libcurl4-openssl-dev libcmocka-dev libpq-dev libtss2-dev libcjose-dev zlib1g-dev postgresql glewlwyd \
 swtpm swtpm-tools tpm2-tools softhsm2 libp11-dev opensc python3-cryptography \
 curl jq openssl openssh-client sqlite3 wrk poppler-utils python3 util-linux chromium time procps nginx systemd \
 prometheus podman buildah podman-compose debootstrap bubblewrap"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps.sh: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Node.js for the Pulumi provider (sdk/pulumi/nodejs), its demo and the
# dashboard's browser tests (tests/browser): Debian 12's nodejs/npm (Node 18)
# when no node is installed; a newer node that is already there (e.g. from
# NodeSource, which ships its own npm) is left alone.  The lockfiles pin
# packages that run on Node 18.19 (checked by the SDK tests).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "deps.sh: installing nodejs npm" >&2
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# npm ci from the committed package-lock.json files (the only step that needs
# the npm registry; tests run offline).  Skipped while node_modules matches
# the lockfile.  playwright-core drives Debian's chromium and never downloads
# a browser (--ignore-scripts).
cd "$(dirname "$0")/.."
for d in sdk/pulumi/nodejs examples/pulumi-demo tests/browser; do
	if ! cmp -s "$d/package-lock.json" "$d/node_modules/.ci-lock" 2>/dev/null; then
		echo "deps.sh: npm ci in $d" >&2
		flags=""
		[ "$d" = tests/browser ] && flags=--ignore-scripts
		(cd "$d" && npm ci --no-audit --no-fund $flags --loglevel=error) || exit 1
		cp "$d/package-lock.json" "$d/node_modules/.ci-lock"
	fi
done
