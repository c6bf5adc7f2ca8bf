#!/bin/sh
# Runs every libFuzzer target (fuzz/, doc/fuzzing.md) for SECONDS each
# (default 60) and prints, per target, the executions, the coverage
# libFuzzer reached (cov: edges, ft: features, from its final stats) and
# the findings. Exits 1 on any finding. devtools/test.sh runs it after the lab suite (doc/hardening.md).
#
#   devtools/fuzz.sh [SECONDS] [TARGET...]
#
# Builds build-fuzz (clang 16, ASan+UBSan, -Dfuzz=true) on first use. Each
# run starts from the seed corpus fuzz/corpus/TARGET, which it only reads;
# what the run learns goes to build-fuzz/fuzz-corpus/TARGET and is kept
# for the next run. A finding is saved as build-fuzz/fuzz-findings/TARGET-*;
# once fixed, copy it into fuzz/corpus/TARGET as a regression seed.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-mp_wire share_codec external_fds pci eal_options vfio_caps vhost_user telemetry}
builddir=build-fuzz

if ! command -v clang++-16 > /dev/null; then
    echo "fuzz: clang++-16 not found: run devtools/bootstrap.sh (Debian 12: clang-16 libclang-rt-16-dev)" >&2
    exit 1
fi
if [ ! -f $builddir/build.ninja ]; then
    CXX=clang++-16 meson setup $builddir -Dfuzz=true -Dwerror=true -Doptimization=1 \
        -Db_sanitize=address,undefined -Db_lundef=false \
        -Dcpp_args=-fno-sanitize-recover=undefined \
        -Dcpp_link_args=-fno-sanitize-recover=undefined > /dev/null
fi
start=$(date +%s)
meson compile -C $builddir fuzz > $builddir/fuzz-build.txt 2>&1 || {
    tail -50 $builddir/fuzz-build.txt >&2
    echo "fuzz: building the targets failed (log: $builddir/fuzz-build.txt)" >&2
    exit 1
}
echo "fuzz: targets built in $(( $(date +%s) - start )) s"

# halt_on_error: the first report is the finding; detect_leaks: a leak is
# one too (LeakSanitizer runs when each input has been tried... and at exit).
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# VFIOKIT_FUZZ_SEED=N: libFuzzer's mutations from a fixed seed, so that a
# short run (test.sh's) tries much the same inputs each time and a finding
# there is one a rerun reproduces; unset, each run picks its own seed and
# explores further.
seedarg=${VFIOKIT_FUZZ_SEED:+-seed=$VFIOKIT_FUZZ_SEED}
status=0
for t in $targets; do
    exe=$builddir/fuzz/fuzz_$t
    seeds=fuzz/corpus/$t
    work=$builddir/fuzz-corpus/$t
    found=$builddir/fuzz-findings
    log=$builddir/fuzz-$t.log
    [ -x "$exe" ] || { echo "fuzz: no target $t ($exe)" >&2; exit 1; }
    [ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; exit 1; }
    mkdir -p "$work" "$found"
    # -timeout: an input that takes longer is a finding (a hang);
    # -rss_limit_mb: so is one that eats the memory.
    # shellcheck disable=SC2086
    if "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 $seedarg \
            -print_final_stats=1 -artifact_prefix="$found/$t-" "$work" "$seeds" > "$log" 2>&1; then
        result=ok
    else
        result=FINDING
        status=1
    fi
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
    # The last status line (#N ... cov: C ft: F ...) holds the final coverage.
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    units=$(find "$work" -type f | wc -l)
    echo "fuzz $t: $result: ${runs:-0} executions in $seconds s, ${cov:-cov: ? ft: ?}, corpus $units units"
    if [ $result != ok ]; then
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*invariant broken|.*runtime error|artifact_prefix|Test unit written)' "$log" | head -20
        echo "fuzz $t: log $log"
    fi
done
exit $status
