#!/bin/sh
# Lab binaries under UndefinedBehaviorSanitizer (doc/hardening.md): a build
# directory of its own, build-ubsan (-O1 -Db_sanitize=undefined,
# -fno-sanitize-recover=undefined: a report ends the program with a
# non-zero status), where only the binaries the jobs below run are built,
# and those jobs on one pair and shape (6.12, iommu), with
# UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 exported in the guest
# (lab.py --env). The jobs cover VFIO (containers, devices, DMA), PCI
# (regions, config space, BARs, IRQs, reset), EAL memory and mbuf pools,
# each once per VFIO mode the shape offers. lab.py packs each binary's
# shared libraries as ldd lists them, libubsan among them; the script
# checks it is there, so the binaries in the guest are the instrumented
# ones. devtools/test.sh runs it after the lab suite (doc/hardening.md).
#
#   devtools/ubsan-lab.sh [KERNEL_HEADERS_DIR [JOB...]]
#
# JOB: a job of devtools/lab/jobs on the iommu shape among those below (by
# default all of them).
set -eu
cd "$(dirname "$0")/.."
builddir=build-ubsan
kh=${1:-}
[ $# -gt 0 ] && shift
opts="-Dwerror=true -Doptimization=1 -Db_sanitize=undefined -Db_lundef=false
      -Dcpp_args=-fno-sanitize-recover=undefined -Dcpp_link_args=-fno-sanitize-recover=undefined"
# shellcheck disable=SC2086
if [ ! -f $builddir/build.ninja ]; then
    meson setup $builddir $opts ${kh:+-Dkernel_headers="$kh"} > /dev/null
else
    meson configure $builddir $opts ${kh:+-Dkernel_headers="$kh"}
fi
pair=6.12
shape=iommu
jobs=${*:-vfio-core-iommu pci-iommu memory-iommu}
# The binaries: those of the lab suite's (--bin arguments of its tests, as
# meson knows them) whose names the jobs, or the guest library they source,
# call. A binary added to a job is found here without a list to keep.
suite_bins=$(meson introspect $builddir --tests | python3 -c '
import json, sys
bins = set()
for t in json.load(sys.stdin):
    c = t["cmd"]
    bins.update(c[i + 1] for i, a in enumerate(c) if a == "--bin")
print("\n".join(sorted(bins)))')
[ -n "$suite_bins" ] || { echo "ubsan lab: meson lists no lab binaries in $builddir" >&2; exit 1; }
bins=
for b in $suite_bins; do
    for j in $jobs; do
        if grep -qw -- "$(basename "$b")" devtools/lab/jobs/$j.sh devtools/lab/guest-lib.sh; then
            bins="$bins $b"
            break
        fi
    done
done
[ -n "$bins" ] || { echo "ubsan lab: the jobs ($jobs) call none of the lab binaries" >&2; exit 1; }
echo "ubsan lab: binaries:$bins"
start=$(date +%s)
# shellcheck disable=SC2086
meson compile -C $builddir $bins > $builddir/ubsan-build.txt 2>&1 || {
    tail -50 $builddir/ubsan-build.txt >&2
    echo "ubsan lab: building the lab binaries failed (log: $builddir/ubsan-build.txt)" >&2
    exit 1
}
built=$(( $(date +%s) - start ))
binargs=
for b in $bins; do
    if ! ldd $builddir/$b | grep -q 'libubsan\.so'; then
        echo "ubsan lab: $builddir/$b does not load libubsan: not an instrumented build" >&2
        exit 1
    fi
    binargs="$binargs --bin $builddir/$b"
done
status=0
summary=
for j in $jobs; do
    log=$builddir/lab-$j.txt
    # shellcheck disable=SC2086
    if python3 devtools/lab/lab.py --pair $pair --shape $shape --job devtools/lab/jobs/$j.sh \
            --name ubsan-$j --timeout 600 --env UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            $binargs > "$log" 2>&1; then
        result=passed
    else
        result=FAILED
        status=1
    fi
    # Each step's line (lab[6.12/iommu] STEP: PASS (N passed ...)).
    grep -E '^lab\[' "$log" || true
    if [ $result != passed ]; then
        grep -hE 'runtime error:|SUMMARY: UndefinedBehaviorSanitizer' "$log" | sort | uniq -c | head -20 || true
        echo "ubsan lab: $j failed (log: $log)"
    fi
    steps=$(grep -cE '^lab\[[^]]*\] [a-z0-9-]+: PASS' "$log" || true)
    skipped=$(grep -cE '^lab\[[^]]*\] [a-z0-9-]+: SKIPPED' "$log" || true)
    summary="$summary $j $result ($steps steps passed, $skipped skipped);"
done
echo "ubsan lab: $( [ $status = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - start )) s" \
     "(build $built s) on $pair/$shape:${summary%;}"
exit $status
