#!/bin/sh
# Node.js SDK tests (sdk/pulumi/nodejs/test, node's own test runner, TAP):
# the typed client, the dynamic providers driven through the stand-in
# engine, and examples/pulumi-demo, all against a real attestd on loopback.
# Needs the npm packages that scripts/deps.sh installs with `npm ci`; no
# network here.
set -u
: "${SRCDIR:?}" "${ATTESTD:?}" "${JWTMINT:?}"
SDK=$SRCDIR/sdk/pulumi/nodejs
DEMO=$SRCDIR/examples/pulumi-demo
for d in "$SDK" "$DEMO"; do
	if [ ! -f "$d/node_modules/.package-lock.json" ]; then
		echo "Bail out! $d/node_modules is missing: run scripts/deps.sh (it runs npm ci there)"
		exit 1
	fi
done
# bin/ is what the tests and the demo load; the lock serialises two builds' runs.
if ! flock "$SDK/.build.lock" node "$SDK/node_modules/typescript/bin/tsc" -p "$SDK" >&2; then
	echo "Bail out! the SDK does not compile"
	exit 1
fi
cd "$SDK" || exit 1
exec node --test --test-reporter=tap test/*.test.mjs
