#!/bin/sh
# Python SDK tests (sdk/pulumi/python/tests, standard library only): the
# client and the provider logic against a real attestd on loopback.
set -u
: "${SRCDIR:?}" "${ATTESTD:?}" "${JWTMINT:?}"
cd "$SRCDIR/sdk/pulumi/python" || exit 1
PYTHONPATH="$SRCDIR/sdk/pulumi/python/src:$SRCDIR/sdk/pulumi/python/tests/stubs" \
	PYTHONDONTWRITEBYTECODE=1 exec python3 -m unittest discover -v -s tests -p 'test_*.py'
