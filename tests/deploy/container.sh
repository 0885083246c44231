#!/bin/sh
# Containerfile, compose.yaml, compose.postgres.yaml: the files say what
# docs/deployment.md promises (checked always), and - where podman can
# build and run containers here - the image is built and run: /healthz,
# the health check, a non-root user, the CLI inside, state kept in the
# volume across a restart.  Steps that need podman are TAP-skipped with
# the reason when it cannot work on this machine.  TAP output.
#   env: SRCDIR, ATTESTD, ATTESTATION_CLI, YAML2JSON, VERSION
set -u
: "${SRCDIR:?}" "${ATTESTD:?}" "${ATTESTATION_CLI:?}" "${YAML2JSON:?}" "${VERSION:?}"
. "$SRCDIR/tests/lib/test-lib.sh"
CF=$SRCDIR/Containerfile
skip() { test_count=$((test_count + 1)); echo "ok $test_count - $1 # SKIP $2"; }

say "--- Containerfile"
check "two stages, both from Debian 12 slim" sh -c "
	[ \$(grep -c '^FROM ' '$CF') = 2 ] && grep -qx 'ARG DEBIAN_IMAGE=docker.io/library/debian:12-slim' '$CF' &&
	grep -qx 'FROM \${DEBIAN_IMAGE} AS build' '$CF' && grep -qx 'FROM \${DEBIAN_IMAGE}' '$CF'"
# the runtime stage's package list: the packages of the libraries attestd
# and attestation link (readelf NEEDED), plus ca-certificates, curl and bubblewrap
runtime_pkgs() {
	awk '/^FROM \$\{DEBIAN_IMAGE\}$/ { rt = 1 } rt && /rm -rf/ { on = 0 } rt && /apt-get install/ { on = 1 } on { print }' "$CF" |
		tr ' \\' '\n\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vxE 'apt-get|install|-y|-qq|--no-install-recommends|&&|rm|-rf' | sort -u
}
needed_pkgs() {
	for b in "$ATTESTD" "$ATTESTATION_CLI"; do
		readelf -d "$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
	done | sort -u | while read -r lib; do
		case $lib in libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|ld-linux*) continue ;; esac
		p=$(readlink -f "$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')")
		# merged /usr: dpkg may know the file under /lib instead of /usr/lib
		{ dpkg -S "$p" 2>/dev/null || dpkg -S "${p#/usr}" 2>/dev/null; } | cut -d: -f1
	done | sort -u
}
runtime_pkgs > "$TMP/runtime"; { needed_pkgs; printf 'ca-certificates\ncurl\nbubblewrap\n'; } | sort -u > "$TMP/needed"
check "the runtime stage installs exactly the libraries attestd and attestation link, plus ca-certificates, curl and bubblewrap" \
	sh -c "[ -s $TMP/needed ] && diff $TMP/runtime $TMP/needed"
say "runtime packages: $(tr '\n' ' ' < "$TMP/runtime")"
check "the build stage's -dev packages are the ones scripts/deps.sh installs" sh -c "
	for p in \$(grep -oE '[a-z0-9][a-z0-9.+]*(-[a-z0-9.+]+)*-dev' '$CF' | sort -u); do grep -q \" \$p\" '$SRCDIR/scripts/deps.sh' || { echo \$p; exit 1; }; done"
check "a numeric non-root USER, the volume, the port, attestd as entrypoint" sh -c "
	grep -qx 'USER 10001:10001' '$CF' && grep -qx 'VOLUME \[\"/var/lib/itl-reg\"\]' '$CF' &&
	grep -qx 'EXPOSE 8080' '$CF' && grep -qx 'ENTRYPOINT \[\"/usr/bin/attestd\"\]' '$CF'"
check "HEALTHCHECK asks /healthz" grep -q 'CMD \["curl", .*"http://127.0.0.1:8080/healthz"\]' "$CF"
check "only built files are copied from the build stage (attestd, attestation, docs)" grep -qx 'COPY --from=build /out/ /' "$CF"
check "the image's ITL_* defaults are valid (attestd --check-config)" sh -c "
	env -i \$(sed -n 's/^ENV //p; s/^    \(ITL_[A-Z_]*=[^ ]*\).*/\1/p' '$CF' | tr -d '\\\\') '$ATTESTD' --check-config >$TMP/cc 2>&1 &&
	grep -q 'ITL_DB_URL' $TMP/cc"
check ".containerignore keeps .git, build trees and node_modules out of the context" sh -c "
	grep -qx '.git' '$SRCDIR/.containerignore' && grep -qx 'build-\*' '$SRCDIR/.containerignore' &&
	grep -qx '\*\*/node_modules' '$SRCDIR/.containerignore' && cmp -s '$SRCDIR/.containerignore' '$SRCDIR/.dockerignore'"

say "--- compose files"
for f in compose.yaml compose.postgres.yaml; do
	F=$SRCDIR/$f
	check "$f is YAML" sh -c "'$YAML2JSON' '$F' > $TMP/$f.json"
	check "$f: the service as the reference's (OIDC, dual control, break-glass from the environment, the volume)" \
		jq -e '.services.attestation as $a | ($a.environment | has("ITL_OIDC_ISSUER") and has("ITL_OIDC_AUDIENCE") and has("ITL_OIDC_OPERATOR_ROLE") and .ITL_DUAL_CONTROL_ROLES == "controlplane" and .ITL_DUAL_CONTROL_QUORUM == "2" and (.ITL_ADMIN_TOKEN | startswith("${ITL_ADMIN_TOKEN"))) and ($a.volumes | index("itl-reg-data:/var/lib/itl-reg") != null) and $a.restart == "unless-stopped" and (.volumes | has("itl-reg-data"))' "$TMP/$f.json"
	check "$f: hardened (read-only root, no capabilities, no-new-privileges) and published on loopback only" \
		jq -e '.services.attestation | .read_only == true and .cap_drop == ["ALL"] and (.security_opt | index("no-new-privileges:true") != null) and all(.ports[]; startswith("127.0.0.1:"))' "$TMP/$f.json"
	# every variable is one attestd knows and its value valid (${X:?...} -> a dummy)
	jq -r '.services.attestation.environment | to_entries[] | "\(.key)=\(.value)"' "$TMP/$f.json" |
		sed 's/\${[A-Z_]*\(:?[^}]*\)\?}/dummy/g' > "$TMP/$f.env"
	check "$f: every variable is accepted by attestd --check-config" sh -c \
		"env -i \$(cat $TMP/$f.env) ITL_ENROLLMENT_CA_DIR=$TMP/ca '$ATTESTD' --check-config >$TMP/cc 2>&1"
done
check "compose.postgres.yaml: PostgreSQL with a health check, attestd waits for it and uses it" \
	jq -e '(.services.postgres.healthcheck.test | index("pg_isready") != null) and .services.attestation.depends_on.postgres.condition == "service_healthy" and (.services.attestation.environment.ITL_DB_URL | startswith("postgresql://attest:${POSTGRES_PASSWORD}@postgres:5432/attest")) and (.volumes | has("pg-data"))' \
	"$TMP/compose.postgres.yaml.json"
if command -v podman-compose >/dev/null 2>&1; then
	# --dry-run still creates the project's network and volumes: a private project name, removed after
	P=attestlint$$
	for f in compose.yaml compose.postgres.yaml; do
		(cd "$SRCDIR" && ITL_ADMIN_TOKEN=t POSTGRES_PASSWORD=p podman-compose -p "$P" -f "$f" --dry-run up -d) >"$TMP/pc.out" 2>&1
		check "podman-compose reads $f: the attestd container gets the volume, loopback port, read-only root, no capabilities" \
			sh -c "grep -q '^podman run --name=${P}_attestation_1 .*--read-only.*--cap-drop ALL.*-v ${P}_itl-reg-data:/var/lib/itl-reg .*-p 127.0.0.1:8080:8080 ' $TMP/pc.out"
		(cd "$SRCDIR" && POSTGRES_PASSWORD=p podman-compose -p "$P" -f "$f" --dry-run up -d) >"$TMP/pc.out" 2>&1
		check "podman-compose refuses $f without ITL_ADMIN_TOKEN" grep -q 'set ITL_ADMIN_TOKEN' "$TMP/pc.out"
	done
	podman volume rm -f "${P}_itl-reg-data" "${P}_pg-data" >/dev/null 2>&1
	podman network rm -f "${P}_default" >/dev/null 2>&1
else
	skip "podman-compose reads the compose files" "podman-compose is not installed"
fi

say "--- building and running the image"
# buildah bud --isolation chroot builds without an OCI runtime (RUN steps
# in a chroot), so it works where podman cannot start containers; --layers
# keeps the apt-get steps cached between runs.
BASE=docker.io/library/debian:12-slim
why=""
if ! command -v buildah >/dev/null 2>&1; then why="buildah is not installed (Debian: buildah)"
elif ! buildah inspect --type image "$BASE" >/dev/null 2>&1 && ! buildah pull -q "$BASE" >"$TMP/pull" 2>&1; then
	# No registry (this build machine reaches Debian's mirror only): make
	# the base from the mirror apt uses, as docs/deployment.md describes.
	MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
	if [ "$(id -u)" != 0 ] || ! command -v debootstrap >/dev/null 2>&1; then
		why="no $BASE image here, the registry is unreachable ($(tail -1 "$TMP/pull" | cut -c1-160)) and making one needs root and debootstrap"
	elif ! debootstrap --variant=minbase bookworm "$TMP/rootfs" "${MIRROR:-http://deb.debian.org/debian}" >"$TMP/debootstrap.log" 2>&1 ||
		! tar -C "$TMP/rootfs" -c . | podman import -q - "$BASE" >"$TMP/import.log" 2>&1; then
		fail "a $BASE base image made with debootstrap and podman import" "$(tail -3 "$TMP/debootstrap.log" "$TMP/import.log" 2>/dev/null)"
		why="the base image could not be made"
	else
		say "no registry: $BASE made with debootstrap --variant=minbase bookworm from ${MIRROR:-http://deb.debian.org/debian}"
	fi
	rm -rf "$TMP/rootfs"
fi
IMG=localhost/itl-attestation:test
if [ -z "$why" ]; then
	if buildah bud --isolation chroot --layers --pull=never --format docker -t "$IMG" -f "$CF" "$SRCDIR" \
		>"$TMP/build.log" 2>&1; then
		check "buildah builds the Containerfile" true
	else
		fail "buildah builds the Containerfile" "$(tail -5 "$TMP/build.log")"
		why="the build failed"
	fi
fi
if [ -z "$why" ]; then
	buildah inspect --type image "$IMG" > "$TMP/img.json"
	check "image config: user 10001, the volume, port 8080, attestd as entrypoint, the health check on /healthz" \
		jq -e '.Docker.config | .User == "10001:10001" and (.Volumes | has("/var/lib/itl-reg")) and (.ExposedPorts | has("8080/tcp")) and .Entrypoint == ["/usr/bin/attestd"] and (.Healthcheck.Test | join(" ") | contains("http://127.0.0.1:8080/healthz"))' "$TMP/img.json"
	CTR=$(buildah from --pull=never "$IMG" 2>/dev/null); MNT=$(buildah mount "$CTR" 2>/dev/null)
	check "every library attestd and attestation need is in the image" sh -c \
		"chroot '$MNT' ldd /usr/bin/attestd /usr/bin/attestation > $TMP/ldd 2>&1 && ! grep -q 'not found' $TMP/ldd"
	check "the image has only the runtime: no compiler, no headers" sh -c "[ ! -e '$MNT/usr/bin/cc' ] && [ ! -d '$MNT/usr/include/openssl' ]"
	check "the CLI is inside, with the same version" test "$(chroot "$MNT" /usr/bin/attestation --version)" = "attestation $VERSION"
	# Start the image's entrypoint with its environment as its user.  podman
	# run is tried first; where the OCI runtime cannot start containers the
	# image's filesystem is run in a chroot instead (same files, user, env).
	PORT=$(( 20000 + ($(od -An -N2 -tu2 /dev/urandom) % 20000) ))
	ENVS=$(jq -r '.Docker.config.Env[]' "$TMP/img.json" | grep '^ITL_' | sed "s/^ITL_LISTEN=.*/ITL_LISTEN=127.0.0.1:$PORT/")
	if podman run -d --name "attest-test-$$" --network=host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
		-e ITL_LISTEN="127.0.0.1:$PORT" -e ITL_ADMIN_TOKEN="$ADMIN" "$IMG" >"$TMP/run.out" 2>&1; then
		RUNNER="podman"; STOP="podman rm -f attest-test-$$"
		HC="podman healthcheck run attest-test-$$"
		UIDOF="podman exec attest-test-$$ id -u"
	else
		say "podman run cannot start containers here: $(grep -o 'Error.*' "$TMP/run.out" | head -1 | cut -c1-200); running the image's filesystem in a chroot"
		podman rm -f "attest-test-$$" >/dev/null 2>&1
		# shellcheck disable=SC2086
		chroot --userspec=10001:10001 "$MNT" env -i $ENVS ITL_ADMIN_TOKEN="$ADMIN" /usr/bin/attestd \
			>"$TMP/ctr.log" 2>&1 &
		CPID=$!; PIDS="$PIDS $CPID"
		RUNNER="chroot"; STOP="kill $CPID"
		HC="chroot --userspec=10001:10001 $MNT $(jq -r '.Docker.config.Healthcheck.Test[1:] | join(" ")' "$TMP/img.json" | sed "s/:8080/:$PORT/")"
		UIDOF="awk '/^Uid:/ { print \$2 }' /proc/$CPID/status"
	fi
	i=0; while ! curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
	check "the image's attestd serves /healthz ($RUNNER)" curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz"
	check "the image's health check command passes" sh -c "$HC"
	check "it runs as uid 10001, not root" test "$(sh -c "$UIDOF")" = 10001
	check "the state goes to /var/lib/itl-reg (database, Enrollment CA)" sh -c \
		"[ -s '$MNT/var/lib/itl-reg/ca/enrollment-ca.key' ] || podman exec attest-test-$$ test -s /var/lib/itl-reg/ca/enrollment-ca.key"
	sh -c "$STOP" >/dev/null 2>&1
	[ "$RUNNER" = chroot ] && { wait "$CPID" 2>/dev/null; PIDS=$(echo "$PIDS" | sed "s/ $CPID//"); }
	buildah umount "$CTR" >/dev/null 2>&1; buildah rm "$CTR" >/dev/null 2>&1
fi
if [ -n "$why" ]; then
	say "image: $why"
	skip "the image is built and runs (health check, non-root, CLI, state)" "$why"
fi
done_testing
