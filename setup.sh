#!/usr/bin/env bash
# Set up podbot here: system packages (as root), a virtualenv in .venv,
# rootless Podman (an unprivileged owner when run as root) and the base image.
#   ./setup.sh          what `podbot run` needs
#   ./setup.sh --dev    plus the test and lint tools
set -euo pipefail
cd "$(dirname "$0")"

# debootstrap builds localhost/podbot-debian (python3, curl, jq, psql) for the skills that need it.
PACKAGES="podman runc uidmap slirp4netns fuse-overlayfs busybox-static python3-venv debootstrap"
EXTRAS=""
if [ "${1:-}" = "--dev" ]; then
    EXTRAS="[test]"
    # The tests start a real PostgreSQL server (initdb, pg_ctl) for pg_query, and drive the web chat in
    # Debian's headless browser (no browser download works here).
    PACKAGES="$PACKAGES postgresql chromium chromium-driver"
fi

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if [ "$(id -u)" = 0 ]; then
    missing=""
    for pkg in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        say "installing system packages:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq $missing >/dev/null
    fi
    # Rootless containers with network (slirp4netns) open /dev/net/tun as the owner;
    # Debian's default mode is 0666, some sandboxes ship 0600.
    if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
        say "making /dev/net/tun usable by rootless containers (mode 0666, Debian's default)"
        chmod 0666 /dev/net/tun
    fi
else
    problems=""
    command -v podman >/dev/null || problems="$problems\n  podman (with runc uidmap slirp4netns fuse-overlayfs)"
    if [ -n "$EXTRAS" ] && ! command -v chromedriver >/dev/null; then
        problems="$problems\n  chromium and chromium-driver (the web chat's browser test)"
    fi
    [ -x /bin/busybox ] || problems="$problems\n  a static busybox at /bin/busybox (Debian: busybox-static)"
    grep -q "^$(id -un):" /etc/subuid 2>/dev/null || problems="$problems\n  a subordinate id range for $(id -un) in /etc/subuid and /etc/subgid"
    command -v debootstrap >/dev/null ||
        echo "note: debootstrap is missing: skills on localhost/podbot-debian (pg_query, webhook) need root to build it once (./setup.sh as root)" >&2
    if [ ! -w /dev/net/tun ]; then
        echo "note: /dev/net/tun is not writable by $(id -un): skills that ask for network (http_check, dns_lookup) will fail until root runs chmod 0666 /dev/net/tun" >&2
    fi
    if [ -n "$problems" ]; then
        printf "podbot needs, and this machine lacks:$problems\nAsk root to install them, or run ./setup.sh as root.\n" >&2
        exit 1
    fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$PYTHON" -m venv .venv
fi
say "installing podbot$EXTRAS into .venv"
.venv/bin/pip install -q --disable-pip-version-check -e ".$EXTRAS"

# Builds the base image, and the Debian base and skills' own images when loaded skills need them.
say "preparing rootless Podman and the images"
.venv/bin/podbot setup
.venv/bin/podbot models install
