# The EAL memory benchmark (devtools/bench-memory.sh, doc/benchmarks.md):
# vfiokit's EAL in group and cdev mode, the raw ioctl sequence and Debian's
# DPDK 22.11, in interleaved rounds. A benchmark, not a test: the step fails
# only when something could not be run. devtools/bench-memory.sh may put a
# line BENCH_ARGS='...' before this one (options of vfiokit-bench-memory).
vfio_bind 0000:00:03.0
# DPDK 22.11 keeps its runtime directory in /var/run/dpdk/<prefix> (root).
mkdir -p /var
[ -e /var/run ] || ln -s /run /var/run
# shellcheck disable=SC2086
run bench-memory vfiokit-bench-memory ${BENCH_ARGS:---rounds 7}
