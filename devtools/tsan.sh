#!/bin/sh
# The host unit tests that run threads, under ThreadSanitizer (doc/hardening.md):
# the lcore workers, the device handle's release under concurrent use, the
# hotplug board, the mp server and client (channel, runtime, shared
# memory), the mbuf pool's lock-free ring and per-lcore caches, and the
# telemetry server's thread. A build directory of its own, build-tsan
# (-Db_sanitize=thread); only those tests' programs are built. Any report
# fails (halt_on_error), and so does a program in which the filter matched
# no test. devtools/test.sh runs it after the lab suite (its cost is in
# doc/hardening.md).
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
programs="eal eal-mp mbuf telemetry"
# shellcheck disable=SC2086
meson test -C $builddir --num-processes "$(nproc)" --print-errorlogs $programs \
    > $builddir/suite-tsan.txt 2>&1 || status=1
grep -E '^ *[0-9]+/[0-9]+ ' $builddir/suite-tsan.txt || true
grep -hE 'WARNING: ThreadSanitizer|SUMMARY: ThreadSanitizer' $builddir/meson-logs/testlog.txt |
    sort | uniq -c | head -20 || true
# Tests run per program, gtest's own count ("[==========] N tests from M
# test suites ran."): a program whose filter matched nothing exits 0 having
# run no test, which would pass unseen, so it fails here.
counts=$(awk -v progs="$programs" '
    BEGIN {n = split(progs, p, " "); for (i = 1; i <= n; i++) ran[p[i]] = -1}
    /^test: / {name = $NF}
    /^\[==========\] [0-9]+ tests? from .* ran\./ {if (name in ran) ran[name] = $2}
    END {for (i = 1; i <= n; i++) {
             printf "%s %s\n", p[i], ran[p[i]]
         }}' $builddir/meson-logs/testlog.txt)
summary=
while read -r prog n; do
    if [ "$n" -lt 0 ]; then
        echo "tsan: $prog: no gtest count in the log (did not run, or crashed before the end)"
        status=1
    elif [ "$n" -eq 0 ]; then
        echo "tsan: $prog: the filter matched no test"
        status=1
    fi
    summary="$summary $prog $n,"
done <<EOT
$counts
EOT
echo "tsan: $( [ $status = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - start )) s" \
     "(build included); tests run per program:${summary%,}"
exit $status
