#!/bin/sh
# One version source: meson.build's project version, compiled into every
# executable as ATT_VERSION.  TAP output.
#   env: SRCDIR, ATTESTD, ATTESTATION_CLI, ATTEST_AGENT, VERSION (meson.project_version())
set -u
: "${SRCDIR:?}" "${ATTESTD:?}" "${ATTESTATION_CLI:?}" "${ATTEST_AGENT:?}" "${VERSION:?}"
. "$SRCDIR/tests/lib/test-lib.sh"

check "the version is semver ($VERSION)" sh -c "echo '$VERSION' | grep -Eq '^[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?\$'"
check "attestd --version prints 'attestd $VERSION'" sh -c "[ \"\$('$ATTESTD' --version)\" = 'attestd $VERSION' ]"
check "attestation --version prints 'attestation $VERSION'" sh -c "[ \"\$('$ATTESTATION_CLI' --version)\" = 'attestation $VERSION' ]"
check "attest-agent --version prints 'attest-agent $VERSION'" sh -c "[ \"\$('$ATTEST_AGENT' --version)\" = 'attest-agent $VERSION' ]"
check "no executable carries a version of its own (only ATT_VERSION from meson.build)" \
	sh -c "! grep -rnE '#define +(ATT_)?VERSION ' '$SRCDIR/src'"
check "the Talos extension's manifest carries the same version" \
	grep -q "version: \"$VERSION\"" "$SRCDIR/packaging/talos-extension/manifest.yaml"
done_testing
