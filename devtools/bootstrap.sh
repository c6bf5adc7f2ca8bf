#!/bin/sh
# Install, from Debian 12's packages, everything the build, the tests and the
# lab need. Idempotent: when every package is present it only checks (a
# second or so) and never touches the network.
set -eu

packages="meson ninja-build g++ make pkg-config libnuma-dev libgtest-dev python3 python3-pyelftools
libtsan2 qemu-system-x86 busybox-static linux-source-6.12 flex bison bc libelf-dev libssl-dev cpio xz-utils rsync uuid-dev
dpdk dpdk-dev libdpdk-dev debootstrap debian-archive-keyring valgrind doxygen
clang-16 libclang-rt-16-dev ccache"

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: missing packages:$missing; run this script as root (or: sudo apt-get install$missing)" >&2
    exit 1
fi
echo "bootstrap: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2
