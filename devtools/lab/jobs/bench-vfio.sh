# The VFIO map/unmap benchmark (devtools/bench-vfio.sh, doc/benchmarks.md):
# Container::map/unmap/unmap_all against a raw ioctl loop in every
# translated mode, with the edu attached and with none, in interleaved
# rounds (the paired rows: a second edu, 00:04.0, for the raw side or
# vfiokit's); and the ioctls of EAL init plus the first device per mode. A
# benchmark, not a test: the step fails only when something could not be
# run. devtools/bench-vfio.sh may put a line BENCH_ARGS='...' before this
# one (options of vfiokit-bench-vfio).
vfio_bind 0000:00:03.0
vfio_bind 0000:00:04.0
# shellcheck disable=SC2086
run bench-vfio vfiokit-bench-vfio ${BENCH_ARGS:---rounds 5}
