#!/bin/sh
# The doorbell benchmark: instructions per tail-register write, counted by
# callgrind on the host, for a raw volatile 32-bit store, the typed register
# through pci::Bar::write, and an ethdev::Doorbell (what the em and igb
# burst functions use), over a memfd standing in for a NIC's BAR
# (app/bench/doorbell_bench.cpp, doc/benchmarks.md). Instruction counts do
# not depend on the machine's load; the times printed last do.
#
#   sh devtools/bench-doorbell.sh [--writes N]     (default 100000)
set -eu
cd "$(dirname "$0")/.."
writes=100000
case ${1:-} in
    --writes) writes=$2 ;;
    "") ;;
    *) echo "usage: $0 [--writes N]" >&2; exit 2 ;;
esac

devtools/bootstrap.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
if ! out=$(meson compile -C build vfiokit-bench-doorbell 2>&1); then
    echo "$out"
    exit 1
fi
bin=build/app/bench/vfiokit-bench-doorbell

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$bin" --writes "$writes" \
    > "$tmp/run.txt" 2> "$tmp/valgrind.txt" ||
    { cat "$tmp/valgrind.txt" "$tmp/run.txt"; exit 1; }
# Inclusive counts: whatever a variant calls counts as its own.
callgrind_annotate --inclusive=yes --threshold=100 "$tmp/cg.out" > "$tmp/annotate.txt"

echo "instructions per tail-register write (callgrind, $writes writes each, call and return included)"
printf '%-10s %12s %10s  %s\n' variant instructions per-write what
rc=0
for v in "raw write_raw a volatile 32-bit store through a pointer the queue keeps" \
         "bar-write write_bar Tdt::zero().set_index(i).write(bar): pci::Bar::write" \
         "doorbell write_doorbell ethdev::Doorbell::ring (what em and igb keep)"; do
    set -- $v
    name=$1 fn=$2
    shift 2
    ir=$(awk -v fn="::$fn(" 'index($0, fn) { gsub(",", "", $1); print $1; exit }' "$tmp/annotate.txt")
    if [ -z "$ir" ]; then
        echo "bench-doorbell: no count for $fn in callgrind's output" >&2
        rc=1
        continue
    fi
    printf '%-10s %12s %10s  %s\n' "$name" "$ir" "$(awk -v i="$ir" -v n="$writes" 'BEGIN { printf "%.2f", i / n }')" "$*"
    eval "ir_$fn=$ir"
done
[ $rc -eq 0 ] || exit 1
echo
if [ "$ir_write_doorbell" -eq "$ir_write_raw" ]; then
    echo "doorbell = raw: the same instructions as the raw store"
else
    echo "doorbell != raw: $ir_write_doorbell vs $ir_write_raw instructions"
fi
echo
echo "the three functions as compiled (objdump):"
objdump -d -C --no-show-raw-insn "$bin" |
    awk '/^[0-9a-f]+ <.*::write_(raw|bar|doorbell)\(/ { on = 1 } on && /^$/ { on = 0; print "" } on'
echo "under callgrind (times are the emulator's, not the CPU's):"
cat "$tmp/run.txt"
echo "natively:"
"$bin" --writes $((writes * 100))
