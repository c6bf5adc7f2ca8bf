#!/bin/sh
# The host unit suite under AddressSanitizer and UndefinedBehaviorSanitizer
# (doc/hardening.md): a second build directory, build-asan, with
# -Db_sanitize=address,undefined at -O1 (ASan's advice: fast to build, and
# stack traces that match the source); meson test builds only what the unit
# suite needs there. Any report fails its test: ASan stops at the first
# error, UBSan too (-fno-sanitize-recover=undefined), LeakSanitizer
# reports leaks at each test program's exit. devtools/test.sh runs it after the lab suite (doc/hardening.md).
#
#   devtools/asan-unit.sh [KERNEL_HEADERS_DIR]
#
# Tests that cannot run instrumented report themselves skipped with the
# reason (examples: devtools/meson.build).
set -eu
cd "$(dirname "$0")/.."
builddir=build-asan
kh=${1:-}
opts="-Dwerror=true -Doptimization=1 -Db_sanitize=address,undefined -Db_lundef=false
      -Dcpp_args=-fno-sanitize-recover=undefined -Dcpp_link_args=-fno-sanitize-recover=undefined"
# shellcheck disable=SC2086
if [ ! -f $builddir/build.ninja ]; then
    meson setup $builddir $opts ${kh:+-Dkernel_headers="$kh"} > /dev/null
else
    meson configure $builddir $opts ${kh:+-Dkernel_headers="$kh"}
fi
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
start=$(date +%s)
if meson test -C $builddir --suite unit --num-processes "$(nproc)" --print-errorlogs \
        > $builddir/suite-unit.txt 2>&1; then
    result=passed
else
    result=FAILED
fi
grep -E '^ *[0-9]+/[0-9]+ ' $builddir/suite-unit.txt || true
[ $result = passed ] || sed -n '/^--- /,$p' $builddir/suite-unit.txt | head -200
[ $result = passed ] || grep -hE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: ' \
    $builddir/meson-logs/testlog.txt | sort | uniq -c | head -40 || true
counts=$(grep -E '^(Ok|Fail|Skipped|Timeout|Expected Fail|Unexpected Pass): ' $builddir/suite-unit.txt |
         tr -s ' ' | tr '\n' ' ')
# The skipped tests and why: each prints its reason as its first line.
awk '/^test: / {name = $0; sub(/^test: +/, "", name)} /^result: +exit status 77/ {skip = 1}
     skip && /^-+ stdout -+$/ {getline; print "skipped under ASan+UBSan: " name ": " $0; skip = 0}' \
    $builddir/meson-logs/testlog.txt
echo "suite unit (ASan+UBSan): $result in $(( $(date +%s) - start )) s (build included): $counts"
[ $result = passed ]
