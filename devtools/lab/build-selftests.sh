#!/bin/bash
# Build (once per machine) the kernel's own VFIO selftests
# (tools/testing/selftests/vfio of a lab kernel's source) and print the cache
# directory that holds them:
#   vfio_*_test    the test programs, linked statically so the lab guest
#                  needs no shared library for them
#   programs       their names, one a line
#   build-seconds  wall time of the cold build
#
#   build-selftests.sh [VERSION]   default 7.3 (the first lab kernel with the
#                                  VFIO selftests and their igb driver)
#
# They are compiled on the host with its own toolchain against that kernel's
# exported UAPI headers (build-kernel.sh VERSION: headers/include), from the
# source tree build-kernel.sh unpacks. Nothing of them enters the checkout:
# the cache is keyed by source version, compiler, C library and this recipe,
# so every clone on this machine shares one build.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=${1:-7.3}
cache=${VFIOKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfiokit}
# Bump when the recipe below changes in a way that alters the output.
recipe=1

kdir=$("$here/build-kernel.sh" "$version" | tail -1)
{ read -r src; read -r srcver; } < <("$here/build-kernel.sh" --source "$version")
tests=$src/tools/testing/selftests/vfio
if [[ ! -f $tests/Makefile ]]; then
    echo "build-selftests: Linux $version has no VFIO selftests ($tests)" >&2
    exit 1
fi
if [[ ! -f /usr/lib/x86_64-linux-gnu/libuuid.a ]]; then
    echo "build-selftests: libuuid.a missing; run devtools/bootstrap.sh (apt-get install uuid-dev)" >&2
    exit 1
fi

toolchain="$(gcc --version | head -1) libc=$(dpkg-query -W -f='${Version}' libc6-dev 2>/dev/null || true)"
toolchain+=" uuid=$(dpkg-query -W -f='${Version}' uuid-dev 2>/dev/null || true)"
key=$(echo "recipe=$recipe src=$srcver $toolchain" | sha256sum | cut -c1-16)
out=$cache/selftests/$version-$srcver-$key

if [[ -f $out/programs ]]; then
    echo "$out"
    exit 0
fi
mkdir -p "$cache/selftests"
exec 9>"$cache/selftests/.lock"
flock 9
if [[ -f $out/programs ]]; then
    echo "$out"
    exit 0
fi

build=$cache/selftests/build-$key
rm -rf "$build" && mkdir -p "$build"
log=$build/build.log
start=$(date +%s)
echo "build-selftests: building $tests against $kdir/headers (log $log)" >&2
# The selftests' Makefile as the kernel ships it; only make variables differ:
#   OUTPUT         objects and programs go to the cache, never into the tree
#   KHDR_INCLUDES  the lab kernel's exported headers (the default,
#                  <tree>/usr/include, needs `make headers` in the tree)
#   LDFLAGS        static, so lab.py copies the programs alone; the
#                  Makefile's own `LDFLAGS += -pthread` is overridden by a
#                  command-line LDFLAGS, so -pthread is repeated here
make -C "$tests" -j"$(( $(nproc) + 1 ))" OUTPUT="$build" \
    KHDR_INCLUDES="-isystem $kdir/headers/include" LDFLAGS="-static -pthread" \
    >"$log" 2>&1 || { tail -30 "$log" >&2; exit 1; }
end=$(date +%s)

# The programs the Makefile builds (TEST_GEN_PROGS), each checked static.
programs=$(make -s -C "$tests" OUTPUT="$build" -f Makefile -f - print-programs <<'EOF'
print-programs:
	@echo $(notdir $(TEST_GEN_PROGS))
EOF
)
tmp=$out.tmp
rm -rf "$tmp" && mkdir -p "$tmp"
for p in $programs; do
    if readelf -l "$build/$p" | grep -q 'program interpreter'; then
        echo "build-selftests: $p is not statically linked" >&2
        exit 1
    fi
    cp "$build/$p" "$tmp/$p"
    echo "$p" >>"$tmp/programs"
done
[[ -s $tmp/programs ]] || { echo "build-selftests: no programs built" >&2; exit 1; }
echo $(( end - start )) >"$tmp/build-seconds"
rm -rf "$out" && mv "$tmp" "$out"
rm -rf "$build"
echo "build-selftests: $(wc -l <"$out/programs") programs in $(( end - start )) s" >&2
echo "$out"
