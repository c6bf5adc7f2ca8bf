#!/bin/bash
# Build (once per machine) a lab kernel and print the cache directory that
# holds it:
#   bzImage      the kernel QEMU boots
#   config       the resolved .config
#   fragment     the options asked for (kernel.config with the version's
#                differences applied), which the guest self-test checks
#   headers/     `make headers_install` output (the kernel's exported UAPI)
#   build-seconds  wall time of the cold build
#
#   build-kernel.sh          Linux 6.12, Debian 12's linux-source-6.12
#   build-kernel.sh 7.3      Linux 7.3, linux-source-7.3 from trixie-backports
#                            (fetched through a private apt state, apt-fetch.sh)
#
# The fragment is kernel.config; kernel-<version>.config, when it exists,
# holds that version's differences ("-CONFIG_X" drops, other lines add).
# The cache lives outside the checkout, keyed by source version and by the
# fragment and recipe, so every clone on this machine shares one build.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=${1:-6.12}
cache=${VFIOKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfiokit}
# Bump when the recipe below changes in a way that alters the output.
recipe=1

case $version in
6.12)
    tarball=/usr/src/linux-source-6.12.tar.xz
    if [[ ! -r $tarball ]]; then
        echo "build-kernel: $tarball missing; run devtools/bootstrap.sh (apt-get install linux-source-6.12)" >&2
        exit 1
    fi
    srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || stat -c %Y "$tarball")
    ;;
7.3)
    debdir=$cache/kernel/deb-7.3
    deb=$("$here/apt-fetch.sh" trixie-backports linux-source-7.3 "$debdir")
    srcver=$(dpkg-deb -f "$deb" Version)
    tarball=$debdir/linux-source-7.3.tar.xz
    # The tarball is taken out of the .deb once per .deb (its name is kept
    # beside it), under a lock: lab runs call this script concurrently.
    exec 8>"$debdir/.lock"
    flock 8
    if [[ ! -f $tarball || $(cat "$tarball.from" 2>/dev/null) != "$deb" ]]; then
        rm -rf "$debdir/x" && mkdir -p "$debdir/x"
        dpkg-deb -x "$deb" "$debdir/x"
        mv "$debdir/x/usr/src/linux-source-7.3.tar.xz" "$tarball"
        echo "$deb" >"$tarball.from"
        rm -rf "$debdir/x"
    fi
    flock -u 8
    ;;
*)
    echo "build-kernel: no recipe for Linux $version (known: 6.12, 7.3)" >&2
    exit 1
    ;;
esac

# The fragment for this version: kernel.config, minus the options the
# version file drops, plus the ones it adds. With no version file it is
# kernel.config byte for byte (so 6.12's cache key is unchanged).
fragment=$(mktemp)
trap 'rm -f "$fragment"' EXIT
if [[ -f $here/kernel-$version.config ]]; then
    drops=$(sed -n 's/^-\(CONFIG_[A-Z0-9_]*\)$/\1/p' "$here/kernel-$version.config")
    while IFS= read -r line; do
        name=${line%%=*}
        [[ $line == CONFIG_* ]] && grep -qx -- "$name" <<<"$drops" && continue
        echo "$line"
    done <"$here/kernel.config" >"$fragment"
    { echo "# Linux $version (kernel-$version.config)"; grep -E '^CONFIG_' "$here/kernel-$version.config"; } >>"$fragment"
else
    cp "$here/kernel.config" "$fragment"
fi
key=$( { echo "recipe=$recipe src=$srcver"; cat "$fragment"; } | sha256sum | cut -c1-16)
out=$cache/kernel/$version-$srcver-$key

if [[ -f $out/bzImage && -d $out/headers/include/linux ]]; then
    echo "$out"
    exit 0
fi

mkdir -p "$cache/kernel"
exec 9>"$cache/kernel/.lock"
flock 9
# Another build may have finished while we waited for the lock.
if [[ -f $out/bzImage && -d $out/headers/include/linux ]]; then
    echo "$out"
    exit 0
fi

work=$cache/kernel/src-$srcver
start=$(date +%s)
if [[ ! -f $work/Makefile ]]; then
    echo "build-kernel: unpacking $tarball" >&2
    rm -rf "$work" && mkdir -p "$work"
    tar -xf "$tarball" -C "$work" --strip-components=1
fi

build=$cache/kernel/build-$key
mkdir -p "$build"
jobs=$(( $(nproc) + 1 ))
log=$build/build.log
echo "build-kernel: configuring (allnoconfig + $fragment) in $build" >&2
(
    cd "$work"
    # merge_config -n: start from allnoconfig, apply the fragment, and report
    # every requested option that Kconfig dropped.
    KCONFIG_CONFIG=$build/.config O="$build" ARCH=x86_64 \
        scripts/kconfig/merge_config.sh -n -O "$build" "$fragment"
) >"$log" 2>&1 || { tail -30 "$log" >&2; exit 1; }

# Every option of the fragment must have survived dependency resolution.
missing=0
while IFS= read -r line; do
    [[ $line =~ ^(CONFIG_[A-Z0-9_]+)=(.*)$ ]] || continue
    if ! grep -qx "${BASH_REMATCH[1]}=${BASH_REMATCH[2]}" "$build/.config"; then
        echo "build-kernel: ${BASH_REMATCH[1]}=${BASH_REMATCH[2]} requested but not in the resolved config" >&2
        missing=1
    fi
done <"$fragment"
[[ $missing == 0 ]] || exit 1

echo "build-kernel: building bzImage with -j$jobs (cold build: several minutes; log $log)" >&2
make -C "$work" O="$build" ARCH=x86_64 -j"$jobs" bzImage >>"$log" 2>&1 \
    || { tail -40 "$log" >&2; exit 1; }
make -C "$work" O="$build" ARCH=x86_64 headers_install INSTALL_HDR_PATH="$build/headers-out" >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; exit 1; }
end=$(date +%s)

tmp=$out.tmp
rm -rf "$tmp" && mkdir -p "$tmp"
cp "$build/arch/x86/boot/bzImage" "$tmp/bzImage"
cp "$build/.config" "$tmp/config"
cp "$fragment" "$tmp/fragment"
cp -r "$build/headers-out" "$tmp/headers"
echo $(( end - start )) >"$tmp/build-seconds"
rm -rf "$out" && mv "$tmp" "$out"
# The object tree is only needed to rebuild; drop it to save disk.
rm -rf "$build"
echo "build-kernel: done in $(( end - start )) s" >&2
echo "$out"
