#!/bin/sh
# The VFIO map/unmap benchmark: build, boot the lab's `iommu` machine (its
# own kernel, in QEMU) and run vfiokit-bench-vfio there, which compares
# Container::map/unmap with a raw ioctl loop in every translated mode and
# lists the ioctls of EAL init plus the first device (doc/benchmarks.md).
# A few minutes: software emulation.
#
#   sh devtools/bench-vfio.sh [--pair 6.12|7.3] [vfiokit-bench-vfio options, e.g. --rounds 9]
#
# --pair picks the lab pair (kernel and QEMU; default 6.12), as lab.py's.
set -eu
cd "$(dirname "$0")/.."
pair=6.12
if [ "${1:-}" = --pair ]; then
    [ $# -ge 2 ] || { echo "bench-vfio: --pair needs 6.12 or 7.3" >&2; exit 2; }
    pair=$2
    shift 2
fi
devtools/bootstrap.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
if ! out=$(meson compile -C build vfiokit-bench-vfio 2>&1); then
    echo "$out"
    exit 1
fi
if [ "$pair" = 6.12 ]; then devtools/lab/build-kernel.sh >/dev/null; else devtools/lab/build-kernel.sh "$pair" >/dev/null; fi

job=devtools/lab/jobs/bench-vfio.sh
tmp=
if [ $# -gt 0 ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    { printf "BENCH_ARGS='%s'\n" "$*"; cat "$job"; } > "$tmp/bench-vfio.sh"
    job=$tmp/bench-vfio.sh
fi
# The guest shares the host's CPUs: a loaded host makes every number noisier.
echo "host: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 devtools/lab/lab.py --pair "$pair" --shape iommu --job "$job" --bin build/app/bench/vfiokit-bench-vfio \
    --name bench-vfio --timeout 900
