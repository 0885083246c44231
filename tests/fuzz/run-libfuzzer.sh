#!/bin/sh
# make fuzz: build every target with clang + libFuzzer + ASan/UBSan and run
# each for FUZZ_SECONDS (default 30), growing its corpus in place.
set -eu
cd "$(dirname "$0")/../.."
SECONDS_EACH=${FUZZ_SECONDS:-30}
if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
	echo "fuzz: installing clang and libclang-rt-14-dev" >&2
	SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi
OUT=build-fuzz
mkdir -p "$OUT"
LIBSRC=$(ls src/lib/*/*.c)
CFLAGS="-g -O1 -D_GNU_SOURCE -Isrc/lib -fsanitize=fuzzer,address,undefined $(pkg-config --cflags libfyaml jansson libpq tss2-mu tss2-esys cjose)"
LIBS="$(pkg-config --libs openssl jansson sqlite3 libfyaml libcurl libpq tss2-mu tss2-esys tss2-tctildr tss2-rc cjose zlib) -lpthread"
for t in tests/fuzz/fuzz-*.c; do
	name=$(basename "$t" .c); corpus=tests/fuzz/corpus/${name#fuzz-}
	echo "== $name"
	src=$LIBSRC; extra=""
	# the built-in extensions use only include/ and their own files
	case $name in fuzz-pulumi-*) src=src/extensions/pulumi_state/delta.c; extra="-Iinclude -lz" ;; esac
	# shellcheck disable=SC2086
	[ "$name" = fuzz-webhook-target ] && extra="-Iinclude src/attestd/ext/builtin/webhooks_util.c"
	# shellcheck disable=SC2086
	clang $CFLAGS -o "$OUT/$name" "$t" $src $extra $LIBS
	"$OUT/$name" -max_total_time="$SECONDS_EACH" -artifact_prefix="$corpus/crash-" "$corpus" 2>&1 | tail -3
done
