#!/bin/sh -e
# genapkovl-itl.sh - the overlay of the USB registration agent image:
# networking by DHCP, attest-agent, and itl-register.sh as a local.d
# start script.  Called by Alpine's mkimage.sh with the host name; expects
# ITL_AGENT_BIN (the agent built by packaging/build-agent.sh) and
# ITL_REGISTER_SCRIPT in the environment.
HOSTNAME="$1"
[ -n "$HOSTNAME" ] || { echo "usage: $0 hostname" >&2; exit 1; }
: "${ITL_AGENT_BIN:?}" "${ITL_REGISTER_SCRIPT:?}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/etc/local.d" "$tmp/etc/runlevels/default" "$tmp/etc/network" "$tmp/usr/local/bin"
echo "$HOSTNAME" > "$tmp/etc/hostname"
printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' > "$tmp/etc/network/interfaces"
install -m 0755 "$ITL_AGENT_BIN" "$tmp/usr/local/bin/attest-agent"
install -m 0755 "$ITL_REGISTER_SCRIPT" "$tmp/etc/local.d/itl-register.start"
ln -sf /etc/init.d/networking "$tmp/etc/runlevels/default/networking"
ln -sf /etc/init.d/local "$tmp/etc/runlevels/default/local"
tar -c -C "$tmp" etc usr | gzip -9n > "$HOSTNAME.apkovl.tar.gz"
