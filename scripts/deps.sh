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
 libcurl4-openssl-dev libcmocka-dev libpq-dev libtss2-dev libcjose-dev postgresql glewlwyd \
 swtpm swtpm-tools tpm2-tools \
 curl jq openssl sqlite3 wrk poppler-utils time procps nginx"
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
