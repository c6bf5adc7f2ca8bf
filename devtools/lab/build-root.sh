#!/bin/bash
# Build (once per machine) the Debian 13 root that runs the modern lab pair's
# QEMU, and print its directory. It holds, from Debian's packages alone:
#   qemu-system-x86 (trixie-backports: QEMU 11.1 with igb and iommufd)
#   dpdk (trixie: DPDK 24.11, the newer of the lab's two DPDK peers), its
#   dpdk-testpmd with the libraries it links, and the PMD plugins the lab's
#   NICs need (bundles.py puts them into guests)
# and, beside the root, `build-seconds` and `size-mb` of the cold build.
#
# debootstrap writes the root; apt inside it (chroot) installs the rest, so
# the host's apt sources, lists and cache are never touched. The cache key is
# the package list and this recipe; the root is reused by every checkout.
set -euo pipefail

cache=${VFIOKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfiokit}
# Bump when the recipe below changes in a way that alters the root.
recipe=2
suite=trixie
mirror=http://deb.debian.org/debian
backports="qemu-system-x86"
packages="dpdk"
# PMD plugins (pmds-25.0) for the lab NICs: PCI bus, mempool ring, em/igb, virtio.
plugins="librte-bus-pci25 librte-mempool-ring25 librte-net-e1000-25 librte-net-virtio25"
key=$(echo "recipe=$recipe suite=$suite backports=$backports packages=$packages plugins=$plugins" | sha256sum | cut -c1-16)
out=$cache/root/$suite-$key

if [[ -f $out/.ready ]]; then
    echo "$out/root"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    echo "build-root: debootstrap missing; run devtools/bootstrap.sh (apt-get install debootstrap)" >&2
    exit 1
fi
mkdir -p "$cache/root"
exec 9>"$cache/root/.lock"
flock 9
if [[ -f $out/.ready ]]; then
    echo "$out/root"
    exit 0
fi

start=$(date +%s)
rm -rf "$out" && mkdir -p "$out"
root=$out/root
log=$out/build.log
echo "build-root: debootstrap $suite into $root (log $log)" >&2
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$log" 2>&1 \
    || { tail -20 "$log" >&2; exit 1; }
echo "deb $mirror $suite-backports main" >"$root/etc/apt/sources.list.d/backports.list"

# apt inside the root, with /proc and /dev from a private mount namespace so
# nothing stays mounted on the host when it ends.
in_root() {
    unshare --mount --propagation private -- sh -c '
        root=$1; shift
        mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" &&
        cp /etc/resolv.conf "$root/etc/resolv.conf" &&
        exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"' \
        sh "$root" "$@"
}
# dpdk-testpmd is in dpdk-dev, whose libdpdk-dev dependency pulls in every
# PMD and -dev package (and conflicts with backports' libelf): install only
# the run-time libraries dpdk-dev depends on, and take the binary from the
# package itself.
install_testpmd() {
    # shellcheck disable=SC2016
    in_root sh -c '
        set -e
        libs=$(apt-cache depends dpdk-dev | sed -n "s/^ *Depends: \(librte-[^ ]*\)$/\1/p" | sort -u)
        [ -n "$libs" ]
        apt-get install -y -q --no-install-recommends $libs
        cd /tmp && apt-get download dpdk-dev
        dpkg-deb --fsys-tarfile dpdk-dev_*.deb | tar -x -C / ./usr/bin/dpdk-testpmd
        rm -f dpdk-dev_*.deb
        test -x /usr/bin/dpdk-testpmd'
}
echo "build-root: installing $backports ($suite-backports) and $packages" >&2
# shellcheck disable=SC2086
{
    in_root apt-get update -q &&
    in_root apt-get install -y -q --no-install-recommends -t "$suite-backports" $backports &&
    in_root apt-get install -y -q --no-install-recommends $packages $plugins &&
    install_testpmd &&
    in_root apt-get clean
} >>"$log" 2>&1 || { tail -30 "$log" >&2; exit 1; }
end=$(date +%s)
echo $(( end - start )) >"$out/build-seconds"
du -sm "$root" | cut -f1 >"$out/size-mb"
in_root /usr/bin/qemu-system-x86_64 --version | head -1 >"$out/qemu-version"
touch "$out/.ready"
echo "build-root: done in $(( end - start )) s, $(cat "$out/size-mb") MB, $(cat "$out/qemu-version")" >&2
echo "$root"
