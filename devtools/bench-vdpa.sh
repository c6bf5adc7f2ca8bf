#!/bin/sh
# The vDPA benchmark: the same front end (DPDK's testpmd on virtio_user),
# the same device (the modern shape's virtio-net with iommu_platform) and
# the same guest, served by vfiokit-vdpa (the device DMAs the front end's
# memory) and by DPDK's software relay (testpmd io-forwarding between
# net_vhost and its virtio PMD on the device), in interleaved rounds:
# txonly and rxonly pps, the back end's CPU time per packet, and the
# ratios (doc/benchmarks.md, "vDPA").
#
#   sh devtools/bench-vdpa.sh [--rounds N] [--secs S]
#
# Pair 7.3 (QEMU 11.1: the modern shape), DPDK 22.11 (Debian 12's: it has
# net_vhost). Default 3 rounds, 4-second windows: about 6 minutes. A
# benchmark, not a test: it fails only when something could not be run.
set -eu
cd "$(dirname "$0")/.."

rounds=3 secs=4
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --secs) secs=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "bench-vdpa: unknown option $1 (--rounds, --secs)" >&2; exit 2 ;;
    esac
done

devtools/bootstrap.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
if ! out=$(meson compile -C build vfiokit-vdpa 2>&1); then
    echo "$out"
    exit 1
fi
devtools/lab/build-root.sh >/dev/null
devtools/lab/build-kernel.sh 7.3 >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
    echo "BENCH_DPDK=22.11 BENCH_ROUNDS=$rounds BENCH_SECS=$secs"
    cat devtools/lab/jobs/bench-vdpa.sh
} > "$tmp/bench-vdpa.sh"
echo "host: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 devtools/lab/lab.py --pair 7.3 --shape modern --job "$tmp/bench-vdpa.sh" \
    --bin build/app/vdpa/vfiokit-vdpa --dpdk 22.11 --name bench-vdpa --timeout 3600
