#!/bin/sh
# build-usb.sh - build the USB registration agent image (an Alpine ISO that
# runs attest-agent register at boot; docs/agent.md "USB registration agent").
# Run on Alpine (or in an alpine container) as a user in the abuild group:
#   sh packaging/usb-agent/build-usb.sh OUT-DIR [ALPINE-BRANCH]
# Then write OUT-DIR/alpine-itl-*.iso to a stick (dd) and set the kernel
# arguments (itl.reg_url=, itl.role=, itl.reg_token=, itl.offline) in its
# boot menu.  Needs network access to the Alpine mirrors; this cannot run
# in the repository's test environment (tests/packaging/check.sh checks
# the scripts instead).
set -eu
cd "$(dirname "$0")/../.."
OUT=${1:?usage: build-usb.sh OUT-DIR [ALPINE-BRANCH]}
case $OUT in /*) ;; *) OUT=$(pwd)/$OUT ;; esac
BRANCH=${2:-v3.20}
apk add --no-cache alpine-sdk build-base apk-tools alpine-conf busybox fakeroot syslinux xorriso squashfs-tools \
	mtools dosfstools grub-efi pkgconf openssl-dev jansson-dev tpm2-tss-dev
sh packaging/build-agent.sh "$OUT/agent"
[ -d "$OUT/aports" ] || git clone --depth 1 --branch "${BRANCH#v}-stable" https://gitlab.alpinelinux.org/alpine/aports.git "$OUT/aports"
cp packaging/usb-agent/mkimg.itl.sh packaging/usb-agent/genapkovl-itl.sh "$OUT/aports/scripts/"
ITL_AGENT_BIN=$OUT/agent/attest-agent ITL_REGISTER_SCRIPT=$(pwd)/packaging/usb-agent/itl-register.sh \
	sh "$OUT/aports/scripts/mkimage.sh" --tag "$BRANCH" --outdir "$OUT" --arch x86_64 \
	--repository "https://dl-cdn.alpinelinux.org/alpine/$BRANCH/main" \
	--repository "https://dl-cdn.alpinelinux.org/alpine/$BRANCH/community" --profile itl
ls "$OUT"/*.iso
