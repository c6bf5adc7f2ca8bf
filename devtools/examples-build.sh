#!/bin/sh
# Builds examples/ out of tree against an installed vfiokit, with nothing
# but what a user of the installed library has: `meson install` of this
# build into a DESTDIR, then each example's own Makefile, whose flags come
# from pkg-config alone (PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR point
# into the DESTDIR; doc/install.md).
#
#   devtools/examples-build.sh BUILD OUT EXAMPLES_DIR "APP..." "STATIC_APP..."
#
# leaves OUT/destdir (the installed tree, stripped as a distribution
# installs it: hundreds of MB of debug information less per build tree),
# OUT/APP-shared for each APP, linked to the installed libvfiokit.so.0 with
# a RUNPATH into the DESTDIR, so that they run from here and in the lab
# (lab.py puts every library a binary loads at the path ldd found it), and
# OUT/APP-static for each STATIC_APP, linked with libvfiokit.a. The build
# runs it (devtools/meson.build) for the lab jobs and the examples unit
# test (devtools/examples-test.sh), which links the others statically.
set -eu
build=$1 examples=$3 apps=$4 static_apps=$5
out=$(cd "$2" && pwd)
log=$out/examples-build.log
: > "$log"
fail() {
    cat "$log" >&2
    echo "examples-build: $*" >&2
    exit 1
}
rm -rf "$out/destdir"
meson install -C "$build" --no-rebuild --quiet --strip --destdir "$out/destdir" >> "$log" 2>&1 ||
    fail "meson install -C $build --destdir $out/destdir failed"
pc=$(find "$out/destdir" -name vfiokit.pc -path '*/pkgconfig/*' | head -1)
[ -n "$pc" ] || fail "the install has no vfiokit.pc"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$out/destdir"
# Warnings in an example, or from an installed header, fail the build.
flags="-O2 -Wall -Wextra -Werror"
for app in $apps; do
    # From scratch: make would keep a program older than its sources
    # although the library it was linked against was installed anew.
    rm -f "$out/$app" "$out/$app-shared"
    make -C "$examples/$app" O="$out" CXXFLAGS="$flags" LDFLAGS="-Wl,-rpath,$libdir" shared \
        >> "$log" 2>&1 ||
        fail "examples/$app does not build against the installed vfiokit (pkg-config: $(pkg-config --cflags --libs vfiokit 2>&1))"
done
for app in $static_apps; do
    rm -f "$out/$app-static"
    make -C "$examples/$app" O="$out" CXXFLAGS="$flags" static >> "$log" 2>&1 ||
        fail "examples/$app does not link statically (pkg-config --static: $(pkg-config --static --libs vfiokit 2>&1))"
done
