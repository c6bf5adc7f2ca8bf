#!/bin/sh
# The EAL memory benchmark: build, boot the lab's `iommu` machine (its own
# kernel, in QEMU) and run vfiokit-bench-memory there, which compares
# vfiokit's EAL with the raw ioctls and with Debian's DPDK 22.11 and prints a
# report table (doc/benchmarks.md). About two minutes: software emulation.
#
#   sh devtools/bench-memory.sh [vfiokit-bench-memory options, e.g. --rounds 15]
set -eu
cd "$(dirname "$0")/.."
devtools/bootstrap.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
# Only the benchmark's targets (and what they need).
if ! out=$(meson compile -C build vfiokit-bench-memory 2>&1); then
    echo "$out"
    exit 1
fi
bins="--bin build/app/bench/vfiokit-bench-memory"
# Defined only when Meson found libdpdk-dev; without it the report has no DPDK column.
if grep -q 'vfiokit-bench-dpdk:' build/build.ninja; then
    if ! out=$(meson compile -C build vfiokit-bench-dpdk 2>&1); then
        echo "$out"
        exit 1
    fi
    bins="$bins --bin build/app/bench/vfiokit-bench-dpdk"
else
    echo "bench-memory: libdpdk-dev was not found when build/ was configured: no DPDK column" >&2
fi
devtools/lab/build-kernel.sh >/dev/null

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
python3 devtools/lab/lab.py --shape iommu --job "$job" $bins --name bench-memory --timeout 1800
