// The mbuf part of vfiokit-bench-memory: MbufPool alloc+free on the main
// lcore (its per-lcore cache), one at a time and in bursts, the same
// workload vfiokit-bench-dpdk runs with rte_pktmbuf_* (dpdk_eal_init.c).
#pragma once

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/heap.hpp"

namespace vfiokit::bench {

// Shared with dpdk_eal_init.c: the pool and the burst.
inline constexpr unsigned kMbufPoolSize = 4095;
inline constexpr unsigned kMbufCache = 256;
inline constexpr unsigned kMbufBurst = 32;

struct MbufRun {
    double single_pairs = 0;  // alloc+free pairs per second, one mbuf per call
    double bulk_pairs = 0;    // the same with alloc_bulk/free_bulk of kMbufBurst
};

// Best of `reps` runs of `bursts` bursts each. Needs the calling thread to
// be an lcore (the EAL's main one) for the cache to be used.
[[nodiscard]] Result<MbufRun> mbuf_tests(eal::Heap& heap, unsigned bursts, unsigned reps);

}  // namespace vfiokit::bench
