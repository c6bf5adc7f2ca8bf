#!/bin/sh
# The installed vfiokit and the examples built against it (the unit test
# "examples"; examples-build.sh made OUT/destdir and OUT/APP-shared):
#   - the tree: headers under include/vfiokit/ that compile with nothing
#     but pkg-config's flags, libvfiokit.so.0.1.0 with SONAME
#     libvfiokit.so.0 and its two links, libvfiokit.a, vfiokit.pc at the
#     project's version, and the tools;
#   - each example linked both ways: APP-shared loads the installed
#     libvfiokit.so.0; APP-static, linked here from libvfiokit.a with
#     `pkg-config --static --libs vfiokit`, loads no libvfiokit;
#   - in both, every driver (the DECL.pmd.json names) registered exactly
#     once: `edu-dma --drivers` lists the registry without an EAL.
#
#   devtools/examples-test.sh OUT EXAMPLES_DIR VERSION "APP..." "STATIC_APP..." DECL.pmd.json...
#
# STATIC_APP: those examples-build.sh linked statically already (OUT/APP-static).
set -u
out=$1 examples=$2 version=$3 apps=$4 built_static=$5
shift 5
failed=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; failed=$((failed + 1)); }
check() {
    desc=$1
    shift
    if "$@" > "$tmp/check" 2>&1; then ok "$desc"; else bad "$desc"; cat "$tmp/check"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$out/destdir
pc=$(find "$dest" -name vfiokit.pc -path '*/pkgconfig/*' | head -1)
if [ -z "$pc" ]; then
    echo "not ok - no vfiokit.pc under $dest: did examples-build.sh run?"
    exit 1
fi
libdir=$(dirname "$(dirname "$pc")")
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR="$dest"
echo "installed tree: $dest (libdir ${libdir#"$dest"})"
echo "pkg-config --cflags --libs vfiokit: $(pkg-config --cflags --libs vfiokit)"
echo "pkg-config --static --libs vfiokit: $(pkg-config --static --libs vfiokit)"

# --- the installed tree
check "vfiokit.pc is version $version" test "$(pkg-config --modversion vfiokit)" = "$version"
check "--cflags has the C++ standard the headers need" sh -c 'pkg-config --cflags vfiokit | grep -qw -- -std=c++2b'
soname=$(readelf -d "$libdir/libvfiokit.so.$version" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
check "libvfiokit.so.$version has SONAME libvfiokit.so.0 ($soname)" test "$soname" = libvfiokit.so.0
check "libvfiokit.so.0 -> libvfiokit.so.$version" test "$(readlink "$libdir/libvfiokit.so.0")" = "libvfiokit.so.$version"
check "libvfiokit.so -> libvfiokit.so.0" test "$(readlink "$libdir/libvfiokit.so")" = libvfiokit.so.0
check "libvfiokit.a installed" test -s "$libdir/libvfiokit.a"
for t in vfiokit-info vfiokit-procinfo vfiokit-devbind vfiokit-testpmd vfiokit-vdpa vfiokit-broker \
         vfiokit-telemetry vfiokit-pmdinfo; do
    check "bin/$t installed" test -x "$(find "$dest" -path "*/bin/$t" | head -1)"
done
inc=$(find "$dest" -type d -path '*/include/vfiokit' | head -1)
nh=$(find "$inc" -name '*.hpp' | wc -l)
for h in eal/eal.hpp ethdev/ethdev.hpp mbuf/mbuf.hpp bus/pci/driver.hpp uapi/vfio.hpp testdev/edu.hpp; do
    check "include/vfiokit/$h installed" test -f "$inc/$h"
done
# Every installed header in one translation unit, with only pkg-config's
# flags and warnings as errors: what a program including them sees. (One
# unit per header would also catch a header leaning on another's
# includes, at some 9 s each on the 2-core CI machine.)
find "$inc" -name '*.hpp' | sort | sed "s|^$(dirname "$inc")/||; s|.*|#include \"&\"|" > "$tmp/all.cpp"
t0=$(date +%s)
# shellcheck disable=SC2046 # pkg-config's flags are words
if c++ $(pkg-config --cflags vfiokit) -Wall -Wextra -Werror -fsyntax-only "$tmp/all.cpp" \
        > "$tmp/headers.log" 2>&1; then
    ok "all $nh installed headers compile together with pkg-config's flags ($(( $(date +%s) - t0 )) s)"
else
    bad "the installed headers do not compile with pkg-config's flags"
    cat "$tmp/headers.log"
fi

# --- the examples, both linkages
# words LINES: the lines on one line.
words() { echo "$1" | tr '\n' ' ' | sed 's/ $//'; }
want=$(python3 -c 'import json, sys
for p in sys.argv[1:]:
    print(json.load(open(p))["name"])' "$@" | sort)
echo "drivers the library must register: $(words "$want")"
for app in $apps; do
    shared=$out/$app-shared
    check "$app-shared built out of tree" test -x "$shared"
    check "$app-shared needs libvfiokit.so.0" sh -c "readelf -d '$shared' | grep -q 'NEEDED.*\[libvfiokit.so.0\]'"
    check "$app-shared loads the installed libvfiokit.so.0" \
        sh -c "ldd '$shared' | grep -q 'libvfiokit.so.0 => $libdir/libvfiokit.so.0'"
    static=$out/$app-static
    case " $built_static " in
        *" $app "*) check "$app-static built out of tree with pkg-config --static" test -x "$static" ;;
        *)
            static=$tmp/$app-static
            t0=$(date +%s)
            if make -C "$examples/$app" O="$tmp" CXXFLAGS="-O2 -Wall -Wextra -Werror" static \
                    > "$tmp/make.log" 2>&1; then
                ok "$app-static built out of tree with pkg-config --static ($(( $(date +%s) - t0 )) s)"
            else
                bad "$app-static does not build with pkg-config --static"
                cat "$tmp/make.log"
            fi ;;
    esac
    check "$app-static loads no libvfiokit" sh -c "! readelf -d '$static' | grep -q 'NEEDED.*libvfiokit'"
    [ "$app" = edu-dma ] && edu_static=$static
done
for kind in shared static; do
    bin=$out/edu-dma-shared
    [ $kind = static ] && bin=${edu_static:-$tmp/edu-dma-static}
    got=$("$bin" --drivers 2>&1 | sort)
    if [ "$got" = "$want" ]; then
        ok "edu-dma-$kind registers every driver once: $(words "$got")"
    else
        bad "edu-dma-$kind registers: $(words "$got"); expected: $(words "$want")"
    fi
done
# The drivers read back from the installed (stripped) library by DPDK's
# dpdk-pmdinfo.py (DPDK_PMDINFO, from the meson test), and from the shared
# l2fwd by the installed vfiokit-pmdinfo, which follows the libraries a
# program loads (here through its RUNPATH into the DESTDIR).
names() { python3 -c 'import json, sys
print(" ".join(sorted(d["name"] for d in json.load(sys.stdin))))'; }
if [ -n "${DPDK_PMDINFO:-}" ]; then
    got=$("$DPDK_PMDINFO" "$libdir/libvfiokit.so.0" | names)
    check "dpdk-pmdinfo.py lists every driver from the installed libvfiokit.so.0 ($got)" \
        test "$got" = "$(words "$want")"
else
    bad "dpdk-pmdinfo.py not found (Debian package dpdk): the installed library is not read"
fi
got=$("$(find "$dest" -path '*/bin/vfiokit-pmdinfo' | head -1)" --json "$out/l2fwd-shared" | names)
check "vfiokit-pmdinfo finds every driver from l2fwd-shared through libvfiokit.so.0 ($got)" \
    test "$got" = "$(words "$want")"

if [ $failed -ne 0 ]; then
    echo "$failed check(s) failed"
    exit 1
fi
echo "all checks passed"
