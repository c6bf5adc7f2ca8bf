#!/bin/sh
# The host unit tests that run threads, under ThreadSanitizer (doc/hardening.md):
# the lcore workers, the device handle's release under concurrent use, the
# hotplug board, the mp server and client (channel, runtime, shared
# memory), the mbuf pool's lock-free ring and per-lcore caches, and the
# telemetry server's thread. A build directory of its own, build-tsan
# (-Db_sanitize=thread); only those tests' programs are built. Any report
# fails (halt_on_error). Not in devtools/test.sh: it builds the EAL, mbuf,
# ethdev and telemetry a third time (the cost is in doc/hardening.md).
# The lab's own ThreadSanitizer job (tsan-iommu, tsan-noiommu) covers the
# concurrency model on a real kernel.
#
#   devtools/tsan.sh
set -eu
cd "$(dirname "$0")/.."
builddir=build-tsan
if [ ! -f $builddir/build.ninja ]; then
    meson setup $builddir -Dwerror=true -Doptimization=1 -Db_sanitize=thread -Db_lundef=false > /dev/null
fi
# gtest reads its filter from the environment: the suites above, by name.
export GTEST_FILTER='Lcores.*:DeviceHandle.*:BoardTest.*:Wire.*:PairFixture.*:SocketFixture.*:ServerIdentity.*:Roles.*:SharedFixture.*:SharedLocal.*:MbufPool.*:TelemetryServerTest.*'
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
start=$(date +%s)
status=0
meson test -C $builddir --num-processes "$(nproc)" --print-errorlogs eal eal-mp mbuf telemetry \
    > $builddir/suite-tsan.txt 2>&1 || status=1
grep -E '^ *[0-9]+/[0-9]+ ' $builddir/suite-tsan.txt || true
grep -hE 'WARNING: ThreadSanitizer|SUMMARY: ThreadSanitizer' $builddir/meson-logs/testlog.txt |
    sort | uniq -c | head -20 || true
# Tests run per program: gtest's own count.
grep -hE '^\[  PASSED  \] [0-9]+ tests?|^\[  FAILED  \] [0-9]+ tests?' $builddir/meson-logs/testlog.txt || true
echo "tsan: $( [ $status = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - start )) s (build included)"
exit $status
