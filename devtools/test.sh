#!/bin/sh
# Every test: the host unit suite, then the lab suite (QEMU guests running the
# project's kernel), then the sanitizer and fuzz stages. Installs what it
# needs, builds with warnings fatal, and prints the counts of each suite.
set -eu
cd "$(dirname "$0")/.."
devtools/bootstrap.sh

# The lab pairs' kernels and the Debian 13 root with QEMU 11.1. Cold: many
# minutes, once per machine; then cached outside the checkout. The root is
# mostly downloading, so it is made while the kernels compile.
rootlog=$(mktemp)
devtools/lab/build-root.sh > "$rootlog" 2>&1 &
root_pid=$!
kdir=$(devtools/lab/build-kernel.sh)
echo "lab kernel 6.12: $kdir (cold build took $(cat "$kdir/build-seconds") s)"
kdir73=$(devtools/lab/build-kernel.sh 7.3)
echo "lab kernel 7.3: $kdir73 (cold build took $(cat "$kdir73/build-seconds") s)"
if ! wait $root_pid; then
    cat "$rootlog" >&2
    exit 1
fi
root=$(tail -1 "$rootlog")
rm -f "$rootlog"
echo "lab root (Debian 13, $(cat "$root/../qemu-version")): $root" \
     "(cold build took $(cat "$root/../build-seconds") s, $(cat "$root/../size-mb") MB)"

builddir=build-test
if [ ! -f $builddir/build.ninja ]; then
    meson setup $builddir -Dwerror=true -Dkernel_headers="$kdir/headers/include" >/dev/null
else
    meson configure $builddir -Dwerror=true -Dkernel_headers="$kdir/headers/include"
fi
meson compile -C $builddir

status=0
# Lab guests spend much of their time waiting (pktgen rounds, link and
# hotplug timers, the peers' counters), so the lab suite runs one guest
# more than the machine has CPUs.
for suite in unit lab; do
    echo "==== suite: $suite ===="
    start=$(date +%s)
    jobs=$(nproc)
    [ $suite = lab ] && jobs=$((jobs + 1))
    if meson test -C $builddir --suite $suite --num-processes $jobs --print-errorlogs \
            > $builddir/suite-$suite.txt 2>&1; then
        result=passed
    else
        result=FAILED
        status=1
    fi
    # Per-test lines and the counts meson printed for this suite.
    grep -E '^ *[0-9]+/[0-9]+ ' $builddir/suite-$suite.txt || true
    [ $result = passed ] || sed -n '/^--- /,$p' $builddir/suite-$suite.txt | head -200
    counts=$(grep -E '^(Ok|Fail|Skipped|Timeout|Expected Fail|Unexpected Pass): ' $builddir/suite-$suite.txt |
             tr -s ' ' | tr '\n' ' ')
    echo "suite $suite: $result in $(( $(date +%s) - start )) s: $counts"
done
# One line per guest step, named with its pair and shape (lab[7.3/iommu])
# and, for device tests, mode.
log=$builddir/meson-logs/testlog.txt
grep -hE '^lab\[[a-z0-9./@-]+\] .*: (PASS|FAIL|INCOMPLETE|SKIPPED)' $log || true
# Test counts per pair, shape and VFIO mode: the steps each job ran once per
# mode (named AREA-MODE), with the gtest/check counts they printed.
echo "==== counts per lab pair, shape and VFIO mode ===="
grep -hE '^lab\[[a-z0-9./@-]+\] [a-z0-9-]+: (PASS|FAIL|SKIPPED)' $log |
    # Two expressions: a greedy prefix would read AREA-cdev-noiommu as mode
    # noiommu; `t` ends the cycle once the first one matched.
    sed -nE -e 's/^lab\[([a-z0-9./@-]+)\] [a-z0-9-]*-(cdev-noiommu): (PASS|FAIL[^(]*|SKIPPED)( \((.*)\))?$/\1 \2 \3|\5/p;t' \
            -e 's/^lab\[([a-z0-9./@-]+)\] [a-z0-9-]*-(cdev|group-type1v2|group-type1|compat|noiommu): (PASS|FAIL[^(]*|SKIPPED)( \((.*)\))?$/\1 \2 \3|\5/p' |
    awk -F'|' '{split($1, k, " "); key = k[1] " " k[2]; st = k[3]
                steps[key]++; if (st == "SKIPPED") sk[key]++; else if (st != "PASS") bad[key]++
                n = split($2, parts, ", ")
                for (i = 1; i <= n; i++) { split(parts[i], w, " "); if (w[2] == "passed") p[key] += w[1]; if (w[2] == "skipped") s[key] += w[1]; if (w[2] == "failed") f[key] += w[1] }}
         END {for (key in steps) printf "lab[%s]: %d steps run (%d failed), %d not offered by the shape; tests %d passed, %d failed, %d skipped\n",
              key, steps[key] - sk[key], bad[key], sk[key], p[key], f[key], s[key]}' | sort || true
echo "==== measured in the lab ===="
# edu DMA round trips: transfers and bytes verified, per mode.
grep -hE '^dma round trip [a-z0-9_]+: [0-9]+ bytes ok' $log |
    awk '{m=$4; sub(":", "", m); n[m]++; b[m]+=$5}
         END {for (m in n) printf "edu DMA round trips (%s): %d transfers, %d bytes compared\n", m, n[m], b[m]}' |
    sort || true
grep -hE '^(map ioctls|map by file|10000 mappings|numa \(|secondary attach time|secondary DMA)' $log | sort -u || true
echo "==== the kernel's VFIO selftests (Linux 7.3, igb; pass/fail/skip per program and mode) ===="
grep -hE '^kselftest (vfio_[a-z_]+ [a-z0-9_]+|init perf [a-z0-9_]+|dma mapping [a-z0-9_]+): ' $log | sort -u || true
# The sanitizer and fuzz stages (doc/hardening.md, doc/fuzzing.md), each in
# a build directory of its own and each ending with one summary line: the
# unit suite under ASan+UBSan, the threaded tests under TSan, every fuzz
# target for 10 s, and three lab jobs' binaries under UBSan on 6.12/iommu.
# After the lab suite, so their builds do not slow its guests.
# The fuzz stage starts libFuzzer from a fixed seed (devtools/fuzz.sh).
export VFIOKIT_FUZZ_SEED=1
for stage in "asan-unit.sh $kdir/headers/include" "tsan.sh" "fuzz.sh 10" \
             "ubsan-lab.sh $kdir/headers/include"; do
    echo "==== ${stage%% *} ===="
    # shellcheck disable=SC2086
    sh devtools/$stage || status=1
done
exit $status
