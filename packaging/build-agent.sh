#!/bin/sh
# build-agent.sh - build attest-agent alone, with a C compiler and
# pkg-config, for the images that carry it (Alpine/musl or glibc):
#   sh packaging/build-agent.sh OUT-DIR [LIBDIR-BUNDLE]
# Needs: openssl (libssl, libcrypto), jansson and tpm2-tss (esys, mu, rc,
# tctildr + the device TCTI) development files.  Alpine: apk add build-base
# pkgconf openssl-dev jansson-dev tpm2-tss-dev; Debian: scripts/deps.sh.
# Writes OUT-DIR/attest-agent.  With a second argument, also copies every
# shared library the agent loads — including the TCTI modules the TCTI
# loader opens at run time and the dynamic loader — into that directory
# tree (lib/...), so the binary runs in an otherwise empty root (a Talos
# extension container).  Meson builds the same sources (meson.build:
# libattest-agent); this script exists so an image needs no Meson and no
# server dependencies.
set -eu
cd "$(dirname "$0")/.."
OUT=${1:?usage: build-agent.sh OUT-DIR [BUNDLE-ROOT]}
BUNDLE=${2:-}
CC=${CC:-cc}
VERSION=$(sed -n "s/^  version: '\([^']*\)',/\1/p" meson.build)
PKGS="openssl jansson tss2-esys tss2-mu tss2-rc tss2-tctildr"
SRC="src/agent/main.c src/agent/cmd.c $(ls src/lib/agent/*.c)
 src/lib/base/err.c src/lib/base/util.c src/lib/base/buf.c src/lib/base/text.c src/lib/obs/log.c
 src/lib/crypto/ek.c src/lib/crypto/envelope.c src/lib/crypto/csr.c
 src/lib/tpm/tpmpub.c src/lib/tpm/credential.c src/lib/tpm/quote.c"
mkdir -p "$OUT"
# shellcheck disable=SC2086
$CC -std=gnu17 -O2 -D_GNU_SOURCE -DATT_VERSION="\"$VERSION\"" -Isrc/lib -Wall -Wextra -Wno-format-truncation \
	-fstack-protector-strong -D_FORTIFY_SOURCE=2 -o "$OUT/attest-agent" $SRC \
	$(pkg-config --cflags --libs $PKGS) -lpthread
if [ -n "$BUNDLE" ]; then
	libdir=$(pkg-config --variable=libdir tss2-esys)
	mkdir -p "$BUNDLE"
	for f in $(ldd "$OUT/attest-agent" | awk '/=>/ { print $3 } /^\t\// { print $1 }') \
		"$libdir"/libtss2-tcti-device.so.0; do
		[ -e "$f" ] || continue
		mkdir -p "$BUNDLE$(dirname "$f")"
		cp -L "$f" "$BUNDLE$f"
	done
	for f in $(ldd "$libdir/libtss2-tcti-device.so.0" | awk '/=>/ { print $3 }'); do
		mkdir -p "$BUNDLE$(dirname "$f")"; cp -L "$f" "$BUNDLE$f"
	done
fi
echo "attest-agent $VERSION built: $OUT/attest-agent"
