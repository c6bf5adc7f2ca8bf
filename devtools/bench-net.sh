#!/bin/sh
# The packet benchmark: vfiokit-testpmd against DPDK's testpmd on the same
# emulated NICs in one lab guest, in interleaved rounds, per NIC model:
# txonly, rxonly (the kernel's pktgen as the source) and io forwarding
# between the two hubs, in packets per second and CPU time per packet, and
# the ratios per round and their medians (doc/benchmarks.md).
#
#   sh devtools/bench-net.sh [--pair 6.12|7.3|all] [--rounds N] [--secs S] [--base BIN]
#
# --base BIN: another vfiokit-testpmd (e.g. built before a driver change)
# runs beside the two as a third column, "base".
#
#   pair 6.12 (QEMU 7.2), shape iommu,  DPDK 22.11: e1000 (82540EM), e1000e (82574L)
#   pair 7.3 (QEMU 11.1), shape modern, DPDK 24.11: igb (82576), virtio-net
#
# Default: both pairs, 3 rounds, 4-second windows. About 15 minutes a pair
# under software emulation; a benchmark, not a test: it fails only when
# something could not be run.
set -eu
cd "$(dirname "$0")/.."

pairs="6.12 7.3" rounds=3 secs=4 base=
while [ $# -gt 0 ]; do
    case $1 in
        --pair) pairs=$2; [ "$pairs" = all ] && pairs="6.12 7.3"; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --secs) secs=$2; shift 2 ;;
        --base) base=$2; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "bench-net: unknown option $1 (--pair, --rounds, --secs, --base)" >&2; exit 2 ;;
    esac
done

devtools/bootstrap.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
if ! out=$(meson compile -C build vfiokit-testpmd 2>&1); then
    echo "$out"
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bins="--bin build/app/testpmd/vfiokit-testpmd"
if [ -n "$base" ]; then
    cp "$base" "$tmp/vfiokit-testpmd-base"
    bins="$bins --bin $tmp/vfiokit-testpmd-base"
fi
rc=0
for pair in $pairs; do
    # NAME,A,B,K0: A (hub 0) and B (hub 1) go to the testpmds, K0 (hub 0)
    # stays on the kernel's driver and runs pktgen (doc/lab.md has the shapes).
    case $pair in
        6.12) shape=iommu dpdk=22.11
              nics="e1000,0000:00:05.0,0000:00:0b.0,0000:00:06.0 e1000e,0000:00:08.0,0000:00:0a.0,0000:00:06.0" ;;
        # Not the e1000e as A here: it is hub 0's only NIC left on the
        # kernel's driver for pktgen. The modern-only virtio-net with
        # iommu_platform (net_virtio) is A on hub 0 after the igb.
        7.3)  shape=modern dpdk=24.11
              nics="igb,0000:00:04.0,0000:00:0a.0,0000:00:05.0 virtio,0000:00:06.0,0000:00:0a.0,0000:00:05.0" ;;
        *) echo "bench-net: no pair $pair (6.12, 7.3)" >&2; exit 2 ;;
    esac
    [ "$pair" = 7.3 ] && devtools/lab/build-root.sh >/dev/null
    devtools/lab/build-kernel.sh "$pair" >/dev/null
    {
        echo "BENCH_DPDK=$dpdk BENCH_ROUNDS=$rounds BENCH_SECS=$secs"
        echo "BENCH_NICS='$nics'"
        cat devtools/lab/jobs/bench-net.sh
    } > "$tmp/bench-net.sh"
    # The guest shares the host's CPUs: a loaded host makes every number
    # noisier; the interleaved rounds make both programs share the noise.
    echo "host: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    # shellcheck disable=SC2086
    python3 devtools/lab/lab.py --pair "$pair" --shape "$shape" --job "$tmp/bench-net.sh" \
        $bins --dpdk "$dpdk" --name bench-net --timeout 3600 || rc=1
done
exit $rc
