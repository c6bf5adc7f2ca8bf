#!/bin/bash
# Build (once per machine) the lab kernel from Debian's linux-source-6.12 and
# the fragment in kernel.config, and print the cache directory that holds it:
#   bzImage      the kernel QEMU boots
#   config       the resolved .config
#   headers/     `make headers_install` output (the kernel's exported UAPI)
#   build-seconds  wall time of the cold build
# The cache lives outside the checkout, keyed by source version and by the
# fragment and recipe, so every clone on this machine shares one build.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/kernel.config
tarball=/usr/src/linux-source-6.12.tar.xz
# Bump when the recipe below changes in a way that alters the output.
recipe=1

if [[ ! -r $tarball ]]; then
    echo "build-kernel: $tarball missing; run devtools/bootstrap.sh (apt-get install linux-source-6.12)" >&2
    exit 1
fi
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || stat -c %Y "$tarball")
key=$( { echo "recipe=$recipe src=$srcver"; cat "$fragment"; } | sha256sum | cut -c1-16)
cache=${VFIOKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfiokit}
out=$cache/kernel/6.12-$srcver-$key

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
cp -r "$build/headers-out" "$tmp/headers"
echo $(( end - start )) >"$tmp/build-seconds"
rm -rf "$out" && mv "$tmp" "$out"
# The object tree is only needed to rebuild; drop it to save disk.
rm -rf "$build"
echo "build-kernel: done in $(( end - start )) s" >&2
echo "$out"
