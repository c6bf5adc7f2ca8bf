#!/bin/bash
# fresh-check.sh [--warm] [--keep] [--main]: run the README's two commands on a fresh
# Debian 12 machine, so that a missing install step shows here before CI.
#
# It debootstraps a clean Debian 12 root (minbase: less than any real
# install has, so nothing comes by chance), with the apt sources a fresh
# machine has (bookworm, bookworm-updates, bookworm-security), copies the
# committed tree (git archive HEAD) into it, and runs, as root inside it,
#   sh devtools/main.sh
#   sh devtools/test.sh
# in a private mount namespace (/proc, /sys, /dev bound; nothing stays
# mounted afterwards). By default the root has its own empty cache, so this
# is a cold first run: both lab kernels and the Debian 13 root are built.
#   --warm   bind this machine's vfiokit cache (kernels, Debian 13 root)
#            and its ccache into the root instead: checks install steps
#            and runs every stage in about the time CI takes, where a cold
#            root compiles the five build directories from nothing
#   --keep   leave the root in place (its path is printed)
#   --main   run only the first command (main.sh): checks its own install
#            steps without the whole test suite
# Prints the time of each stage; exit status is the first failing command's.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
warm=0 keep=0 cmds="sh devtools/main.sh|sh devtools/test.sh"
for a in "$@"; do
    case $a in
    --warm) warm=1 ;;
    --keep) keep=1 ;;
    --main) cmds="sh devtools/main.sh" ;;
    *) echo "usage: fresh-check.sh [--warm] [--keep] [--main]" >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "fresh-check: needs root (debootstrap, chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null ||
    { echo "fresh-check: debootstrap missing; run devtools/bootstrap.sh" >&2; exit 2; }
cache=${VFIOKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfiokit}

root=$(mktemp -d /var/tmp/vfiokit-fresh.XXXXXX)
# A real machine's / is 0755 (mktemp makes 0700, which keeps every other
# user, e.g. the mp tests' nobody, out of the whole tree).
chmod 0755 "$root"
cleanup() {
    if [[ $keep == 1 ]]; then
        echo "fresh-check: root kept at $root"
    elif grep -q " $root" /proc/mounts; then
        echo "fresh-check: $root still has mounts; not removing it" >&2
    else
        rm -rf "$root"
    fi
}
trap cleanup EXIT

t0=$(date +%s)
mirror=http://deb.debian.org/debian
echo "fresh-check: debootstrap bookworm into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
    { tail -20 "$root.debootstrap.log" >&2; exit 1; }
mv "$root.debootstrap.log" "$root/root/debootstrap.log"
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/root/vfiokit" "$root/root/.cache/vfiokit" "$root/root/.cache/ccache"
ccache_dir=$(ccache -k cache_dir 2>/dev/null || true)
ccache_max=$(ccache -k max_size 2>/dev/null || echo 5G)
git -C "$here" archive HEAD | tar -x -C "$root/root/vfiokit"
t1=$(date +%s)
echo "fresh-check: root ready in $(( t1 - t0 )) s ($(du -sm "$root" | cut -f1) MB, tree at $(git -C "$here" rev-parse --short HEAD))"

# The two commands, each timed, in the root. VFIOKIT_CACHE is unset so the
# scripts use the root's own ~/.cache (or, with --warm, this machine's).
inner='
set -u
cd /root/vfiokit
status=0
IFS="|"
for cmd in $CMDS; do
    IFS=" "
    start=$(date +%s)
    echo "fresh-check: running: $cmd"
    if $cmd; then r=passed; else r=FAILED; status=1; fi
    echo "fresh-check: $cmd: $r in $(( $(date +%s) - start )) s"
    [ $status = 0 ] || break
done
exit $status'
# In its own session, so that an interrupted check stops everything in it.
set +e
setsid unshare --mount --propagation private -- sh -c '
    root=$1 warm=$2 cache=$3 inner=$4 cmds=$5 ccache_dir=$6 ccache_max=$7
    # The root bound on itself is a mount point, as a real / is: the lab
    # runs `unshare --propagation private`, which fails on a plain directory.
    mount --bind "$root" "$root" &&
    mount -t proc proc "$root/proc" && mount -t sysfs sysfs "$root/sys" &&
        mount --rbind /dev "$root/dev" || exit 125
    warm_env=
    if [ "$warm" = 1 ]; then
        mount --bind "$cache" "$root/root/.cache/vfiokit" || exit 125
        # The compiler cache too, when there is one: the tree sits at
        # another path in the root, so the directory is left out of the
        # hash; and the root keeps the size limit this machine set.
        if [ -n "$ccache_dir" ] && [ -d "$ccache_dir" ]; then
            mount --bind "$ccache_dir" "$root/root/.cache/ccache" || exit 125
            warm_env="CCACHE_NOHASHDIR=true CCACHE_MAXSIZE=$ccache_max"
        fi
    fi
    exec chroot "$root" env -i HOME=/root TERM=dumb LANG=C.UTF-8 CMDS="$cmds" $warm_env \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -c "$inner"' \
    sh "$root" "$warm" "$cache" "$inner" "$cmds" "$ccache_dir" "$ccache_max" &
child=$!
trap 'kill -TERM -- -$child 2>/dev/null || true; wait $child || true; cleanup' EXIT
wait $child
status=$?
set -e
t2=$(date +%s)
echo "fresh-check: $([[ $status == 0 ]] && echo passed || echo FAILED) in $(( t2 - t0 )) s" \
     "(root $(( t1 - t0 )) s, commands $(( t2 - t1 )) s, $([[ $warm == 1 ]] && echo warm || echo cold) cache)"
exit $status
