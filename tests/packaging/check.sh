#!/bin/sh
# The packaging files (packaging/): they parse, say what Talos and Alpine
# accept (the rules of Talos' extension loader and validator,
# pkg/machinery/extensions), and reference what exists — the images
# themselves cannot be built here.  TAP output.
#   env: SRCDIR, ATTEST_AGENT, YAML2JSON
set -u
: "${SRCDIR:?}" "${ATTEST_AGENT:?}" "${YAML2JSON:?}"
P=$SRCDIR/packaging
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attest-packaging.XXXXXX")
n=0; failed=0
trap 'rm -rf "$TMP"' EXIT
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
check() { d=$1; shift; if "$@" >"$TMP/out" 2>&1; then ok "$d"; else nok "$d" "command: $*" "$(head -c 400 "$TMP/out")"; fi; }
jqf() { "$YAML2JSON" "$1" | jq -e "$2" >/dev/null; }

VERSION=$(sed -n "s/^  version: '\([^']*\)',/\1/p" "$SRCDIR/meson.build")
SERVICE=$(sed -n 's/^#define ATT_MC_AGENT_SERVICE "\(.*\)"$/\1/p' "$SRCDIR/src/lib/talos/machineconfig.h")
EXT=$P/talos-extension
SPEC=$EXT/itl-tpm-register.yaml

echo "# Talos system extension"
check "manifest.yaml is YAML" "$YAML2JSON" "$EXT/manifest.yaml"
check "manifest: version v1alpha1, name, this release's version, author, description" \
	jqf "$EXT/manifest.yaml" ".version == \"v1alpha1\" and .metadata.name == \"$SERVICE\" and .metadata.version == \"$VERSION\" and (.metadata.author | length) > 0 and (.metadata.description | length) > 0"
check "manifest: the Talos version constraint parses as a semver range (>= v1.7: extension services with mounts)" \
	jqf "$EXT/manifest.yaml" '.metadata.compatibility.talos.version | test("^(>=|>|<=|<|=)? ?v?[0-9]+\\.[0-9]+\\.[0-9]+$")'
check "the service spec is YAML" "$YAML2JSON" "$SPEC"
check "service: its name is the extension's and the one the service's partial config names ($SERVICE)" \
	jqf "$SPEC" ".name == \"$SERVICE\" and (.name | test(\"^[-_a-z0-9]+$\"))"
check "service: restart always (a valid restart kind)" jqf "$SPEC" '.restart == "always"'
check "service: a container entrypoint relative to the container root" jqf "$SPEC" '.container.entrypoint | startswith("./")'
check "service: every dependency is exactly one kind; network statuses are Talos'; absolute paths" \
	jqf "$SPEC" '[.depends[] | ((keys | length) == 1) and (if .network then all(.network[]; IN("addresses","connectivity","hostname","etcfiles")) else true end) and (if .path then (.path | startswith("/")) else true end)] | all'
check "service: it waits for the network and the TPM, never for a complete configuration (it must run in maintenance mode)" \
	jqf "$SPEC" '(any(.depends[]; .network)) and (any(.depends[]; .path == "/dev/tpmrm0")) and (all(.depends[]; .configuration != true))'
check "service: mounts /dev/tpmrm0 and the state directory's parent" \
	jqf "$SPEC" '(any(.container.mounts[]; .source == "/dev/tpmrm0" and .destination == "/dev/tpmrm0" and .type == "bind")) and (any(.container.mounts[]; .destination == "/var/lib"))'
check "service: environment entries are KEY=VALUE" jqf "$SPEC" 'all(.container.environment[]; test("^[A-Za-z_][A-Za-z0-9_]*="))'
"$YAML2JSON" "$SPEC" | jq -r '.container.args[]' > "$TMP/args"
STATE=$(awk 'prev == "--state-dir" { print } { prev = $0 }' "$TMP/args")
check "service: the state directory ($STATE) is inside a mount" sh -c "case '$STATE' in /var/lib/*) exit 0 ;; *) exit 1 ;; esac"
# the agent accepts the spec's arguments: with them (and a TPM that is not
# there) it fails reading the TPM (1), not on its command line (2)
set -- $(cat "$TMP/args")
"$ATTEST_AGENT" "$@" --once --server http://127.0.0.1:9 --tcti "swtpm:host=127.0.0.1,port=9" --state-dir "$TMP/state" >"$TMP/agent.out" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q 'TPM' "$TMP/agent.out"; then ok "attest-agent accepts the service's arguments ($*)"
else nok "attest-agent accepts the service's arguments ($*)" "exit $rc" "$(cat "$TMP/agent.out")"; fi
check "service: the entrypoint's name is the agent the Containerfile installs" \
	grep -q "^RUN sh packaging/build-agent.sh /out /out/root && cp /out/attest-agent /out/root/$(jq -rn --arg e "$("$YAML2JSON" "$SPEC" | jq -r .container.entrypoint)" '$e | ltrimstr("./")')$" "$EXT/Containerfile"
check "Containerfile: installs the manifest, the spec under /usr/local/etc/containers/<name>.yaml, the root under /usr/local/lib/containers/<name>/" \
	sh -c "grep -q '^COPY packaging/talos-extension/manifest.yaml /manifest.yaml$' '$EXT/Containerfile' &&
		grep -q '^COPY packaging/talos-extension/itl-tpm-register.yaml /rootfs/usr/local/etc/containers/$SERVICE.yaml$' '$EXT/Containerfile' &&
		grep -q '^COPY --from=build /out/root/ /rootfs/usr/local/lib/containers/$SERVICE/$' '$EXT/Containerfile'"
missing=""
for src in $(awk '$1 == "COPY" && $2 !~ /^--from/ { print $2 }' "$EXT/Containerfile"); do
	[ -e "$SRCDIR/$src" ] || missing="$missing $src"
done
if [ -z "$missing" ]; then ok "Containerfile: every file it copies from the repository exists"; else nok "Containerfile: every file it copies from the repository exists" "missing:$missing"; fi
check "Containerfile: talosctl is where the spec's PATH finds it" \
	sh -c "jqf() { '$YAML2JSON' \"\$1\" | jq -e \"\$2\" >/dev/null; }; jqf '$SPEC' 'any(.container.environment[]; . == \"PATH=/\")' && grep -q '/rootfs/usr/local/lib/containers/$SERVICE/talosctl$' '$EXT/Containerfile'"

echo "# the agent's standalone build (what both images run)"
check "build-agent.sh is valid sh" sh -n "$P/build-agent.sh"
if sh "$P/build-agent.sh" "$TMP/build" "$TMP/root" >"$TMP/build.log" 2>&1 && [ "$("$TMP/build/attest-agent" version)" = "attest-agent $VERSION" ]; then
	ok "build-agent.sh builds attest-agent $VERSION from the sources it lists, without warnings" 
	grep -q 'warning' "$TMP/build.log" && nok "no compiler warnings" "$(grep -m3 warning "$TMP/build.log")"
else
	nok "build-agent.sh builds attest-agent $VERSION from the sources it lists" "$(tail -20 "$TMP/build.log")"
fi
check "the bundle holds the dynamic loader and the TCTI module the loader opens at run time" \
	sh -c "ls '$TMP/root'/lib*/ld-* >/dev/null 2>&1 && find '$TMP/root' -name 'libtss2-tcti-device.so*' | grep -q ."

echo "# the USB registration agent"
for f in "$P"/usb-agent/*.sh; do check "$(basename "$f") is valid sh" sh -n "$f"; done
# the boot script, driven by kernel command lines, with the real agent
# (a TPM that is not there: exit 1 proves the arguments were accepted)
cat > "$TMP/agent-wrap" <<EOW
#!/bin/sh
echo "\$*" >> "$TMP/agent-calls"
exec "$ATTEST_AGENT" "\$@" --tcti "swtpm:host=127.0.0.1,port=9"
EOW
chmod +x "$TMP/agent-wrap"
usb() { # usb CMDLINE: run the boot script; sets RC
	printf '%s\n' "$1" > "$TMP/cmdline"
	ITL_CMDLINE=$TMP/cmdline ITL_AGENT=$TMP/agent-wrap ITL_TRIES=1 ITL_RETRY_SECONDS=0 \
		sh "$P/usb-agent/itl-register.sh" >"$TMP/usb.out" 2>&1
	RC=$?
}
usb "BOOT_IMAGE=/boot/vmlinuz-lts itl.reg_url=http://127.0.0.1:9 itl.role=controlplane itl.reg_token=tok-123"
check "online: the boot script runs attest-agent register with the token, which accepts its arguments" \
	sh -c "[ $RC = 1 ] && tail -1 '$TMP/agent-calls' | grep -qx 'register --cmdline $TMP/cmdline --token tok-123' && grep -q 'registration failed (exit status 1)' '$TMP/usb.out'"
usb "itl.offline itl.receipt_dir=$TMP/stick/itl itl.role=worker-infra"
check "offline: the boot script writes the receipt with attest-agent receipt onto the stick" \
	sh -c "[ $RC = 1 ] && tail -1 '$TMP/agent-calls' | grep -qx 'receipt --cmdline $TMP/cmdline --file $TMP/stick/itl/tpm-receipt.json' && [ -d '$TMP/stick/itl' ]"
check "the image profile installs the libraries the agent loads, and the overlay the agent and the script" \
	sh -c "grep -q 'tpm2-tss-tcti-device' '$P/usb-agent/mkimg.itl.sh' && grep -q 'apkovl=\"genapkovl-itl.sh\"' '$P/usb-agent/mkimg.itl.sh' && grep -q 'etc/local.d/itl-register.start' '$P/usb-agent/genapkovl-itl.sh' && grep -q 'packaging/build-agent.sh' '$P/usb-agent/build-usb.sh'"

echo "1..$n"
[ "$failed" = 0 ]
