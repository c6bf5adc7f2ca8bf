#!/bin/sh
# The multi-process soak (not in CI): boots one lab machine and runs
# mp_soak_lab (tests/lab/mp/soak.cpp) there for SECONDS: a primary with N
# secondaries attaching and detaching in a loop (each maps and unmaps a
# buffer of its own; every 4th cycle one is SIGKILLed holding its mapping
# and the primary must clean it up), heap growth and frees, and the edu
# released and assigned again. It prints the cycles done and the primary's
# fds, /proc/self/maps lines, container mappings, HugePages_Free, Mlocked
# and VmLck/VmPin at the start, after the first cycle and at the end, and
# fails when the end differs from the first cycle's figures
# (doc/multiprocess.md "Soak").
#
#   devtools/soak.sh [--pair 6.12|7.3] [--shape iommu|noiommu] [--mode MODE]
#                    [--type1 v1|v2] [--secondaries N] [--build DIR] SECONDS
#
# Defaults: pair 6.12, shape iommu, the mode vfiokit picks (cdev there), 4
# secondaries, build dir `build`. The lab's kernels must have been built
# (devtools/lab/build-kernel.sh); this script builds only mp_soak_lab.
set -eu
cd "$(dirname "$0")/.."
pair=6.12 shape=iommu mode= type1= secondaries=4 build=build
usage() {
    echo "usage: $0 [--pair 6.12|7.3] [--shape iommu|noiommu] [--mode MODE] [--type1 v1|v2]" >&2
    echo "          [--secondaries N] [--build DIR] SECONDS" >&2
    exit 2
}
while [ $# -gt 1 ]; do
    case $1 in
    --pair) pair=$2 ;;
    --shape) shape=$2 ;;
    --mode) mode=$2 ;;
    --type1) type1=$2 ;;
    --secondaries) secondaries=$2 ;;
    --build) build=$2 ;;
    *) usage ;;
    esac
    shift 2
done
[ $# -eq 1 ] || usage
seconds=$1
case $seconds in '' | *[!0-9]*) usage ;; esac
case $secondaries in '' | *[!0-9]*) usage ;; esac
case $pair in 6.12 | 7.3) ;; *) usage ;; esac
case $shape in iommu | noiommu) ;; *) usage ;; esac

if ! out=$(meson compile -C "$build" mp_soak_lab 2>&1); then
    echo "$out"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
    echo "export VFIOKIT_LAB_SHAPE=$shape"
    [ -z "$mode" ] || echo "export VFIOKIT_VFIO_MODE=$mode"
    [ -z "$type1" ] || echo "export VFIOKIT_VFIO_TYPE1=$type1"
    echo "vfio_bind 0000:00:03.0"
    echo "run soak-$pair-$shape${mode:+-$mode}${type1:+-$type1} mp_soak_lab --seconds $seconds --secondaries $secondaries"
} > "$tmp/soak.sh"
echo "host: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# The guest boots in a minute or two under software emulation; the soak's
# last cycle may run past SECONDS.
python3 devtools/lab/lab.py --pair "$pair" --shape "$shape" --job "$tmp/soak.sh" \
    --bin "$build/tests/lab/mp/mp_soak_lab" --name soak --timeout $((seconds + 600))
