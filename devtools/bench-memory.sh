#!/bin/sh
# The EAL memory benchmark: build, boot the lab's `iommu` machine (its own
# kernel, in QEMU) and run vfiokit-bench-memory there, which compares
# vfiokit's EAL with the raw ioctls and with Debian's DPDK 22.11 and prints a
# report table (doc/benchmarks.md). About two minutes: software emulation.
#
#   sh devtools/bench-memory.sh [--pair 6.12|7.3] [vfiokit-bench-memory options, e.g. --rounds 15]
#
# --pair picks the lab pair (kernel and QEMU; default 6.12), as lab.py's.
set -eu
cd "$(dirname "$0")/.."
pair=6.12
if [ "${1:-}" = --pair ]; then
    [ $# -ge 2 ] || { echo "bench-memory: --pair needs 6.12 or 7.3" >&2; exit 2; }
    pair=$2
    shift 2
fi
devtools/bootstrap.sh
# A release build of its own, with NDEBUG, as Debian builds DPDK (without
# RTE_LIBRTE_MEMPOOL_DEBUG): the default build (debugoptimized, no NDEBUG)
# checks every ObjectPool put for double puts, as DPDK's debug cookies do,
# and would compare a checked pool with an unchecked one. -O2, not
# buildtype=release's -O3, at which GCC 12 gives a false -Wrestrict warning
# inside std::string in lib/eal (builds stay warning-free).
b=build-bench
[ -f $b/build.ninja ] ||
    meson setup $b -Doptimization=2 -Ddebug=false -Db_ndebug=true >/dev/null
# Only the benchmark's targets (and what they need).
if ! out=$(meson compile -C $b vfiokit-bench-memory 2>&1); then
    echo "$out"
    exit 1
fi
bins="--bin $b/app/bench/vfiokit-bench-memory"
# Defined only when Meson found libdpdk-dev; without it the report has no DPDK column.
if grep -q 'vfiokit-bench-dpdk:' $b/build.ninja; then
    if ! out=$(meson compile -C $b vfiokit-bench-dpdk 2>&1); then
        echo "$out"
        exit 1
    fi
    bins="$bins --bin $b/app/bench/vfiokit-bench-dpdk"
else
    echo "bench-memory: libdpdk-dev was not found when $b/ was configured: no DPDK column" >&2
fi
if [ "$pair" = 6.12 ]; then devtools/lab/build-kernel.sh >/dev/null; else devtools/lab/build-kernel.sh "$pair" >/dev/null; fi

job=devtools/lab/jobs/bench-memory.sh
tmp=
if [ $# -gt 0 ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    { printf "BENCH_ARGS='%s'\n" "$*"; cat "$job"; } > "$tmp/bench-memory.sh"
    job=$tmp/bench-memory.sh
fi
# The guest shares the host's CPUs: a loaded host makes every number noisier.
echo "host: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086
# 7 rounds take about 3 minutes of guest time on a quiet host and over 15
# on one with a load average near 20: the timeout leaves room for that.
python3 devtools/lab/lab.py --pair "$pair" --shape iommu --job "$job" $bins --name bench-memory --timeout 1800
