#!/bin/sh
# .github/workflows/: they cannot run here; check that they parse, run on
# what seed 002 says (push, pull request, manual), run the README's test
# command and build the image from the Containerfile, and that the
# release's version check works on this meson.build.  TAP output.
#   env: SRCDIR, ATTESTD, YAML2JSON, VERSION
set -u
: "${SRCDIR:?}" "${YAML2JSON:?}" "${VERSION:?}"
. "$SRCDIR/tests/lib/test-lib.sh"
W=$SRCDIR/.github/workflows
for f in ci release; do
	check "$f.yml is YAML" sh -c "'$YAML2JSON' '$W/$f.yml' > $TMP/$f.json"
done
j() { jq -e "$2" "$TMP/$1.json" >/dev/null; }
check "ci: on push, pull_request and workflow_dispatch" j ci '.on | has("push") and has("pull_request") and has("workflow_dispatch")'
check "ci: read-only token" j ci '.permissions == {"contents": "read"}'
check "ci: the test job runs the README's test command on Debian 12" \
	sh -c "j() { jq -e \"\$1\" $TMP/ci.json >/dev/null; }; j '.jobs.test.container == \"debian:12\" and any(.jobs.test.steps[]; .run == \"sh scripts/test.sh\")' && grep -q '^sh scripts/test.sh\$' '$SRCDIR/README.md'"
check "ci: the build job builds the image from the Containerfile and smoke-tests /healthz" \
	j ci 'any(.jobs.build.steps[]; (.run // "") | contains("docker build --file Containerfile")) and any(.jobs.build.steps[]; (.run // "") | contains("/healthz"))'
check "release: on v* tags (and manually), may write packages" \
	j release '.on.push.tags == ["v*"] and (.on | has("workflow_dispatch")) and .permissions.packages == "write"'
check "release: builds, smoke-tests, then pushes version and latest to ghcr.io" \
	j release '[.jobs.image.steps[] | (.run // "")] | (map(contains("docker build")) | index(true)) < (map(contains("docker push \"$IMAGE:$VERSION\"")) | index(true)) and any(.[]; contains("ghcr.io"))'
check "every action used is pinned to a major version" \
	sh -c "jq -r '.. | objects | .uses? // empty' $TMP/ci.json $TMP/release.json | grep -vE '^[a-z-]+/[a-z-]+@v[0-9]+\$' | { ! grep -q .; }"
# the release step's version extraction, run against this meson.build
v=$(jq -r '.jobs.image.steps[] | select(.name == "The version (meson.build) and the tag agree").run' "$TMP/release.json" |
	sed -n 's/^v=\$(\(.*\))$/\1/p')
check "release: its version extraction yields meson.build's version ($VERSION)" \
	sh -c "cd '$SRCDIR' && [ \"\$($v)\" = '$VERSION' ]"
check "every file the workflows name exists" sh -c "[ -f '$SRCDIR/Containerfile' ] && [ -f '$SRCDIR/scripts/test.sh' ]"
done_testing
