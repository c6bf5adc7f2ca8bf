#include "mbuf_bench.hpp"

#include <algorithm>
#include <chrono>

#include "vfiokit/eal/lcore.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit::bench {
namespace {

using Clock = std::chrono::steady_clock;

double pairs_per_s(unsigned bursts, Clock::time_point t0) {
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    return kMbufBurst * double(bursts) / s;
}

// Bursts of kMbufBurst alloc() then kMbufBurst free(): rte_pktmbuf_alloc /
// rte_pktmbuf_free on DPDK's side.
Result<double> single(mbuf::MbufPool& p, unsigned bursts) {
    mbuf::Mbuf* m[kMbufBurst];
    const auto t0 = Clock::now();
    for (unsigned b = 0; b < bursts; ++b) {
        for (unsigned j = 0; j < kMbufBurst; ++j)
            if (!(m[j] = p.alloc()))
                return fail(ENOMEM, "mbuf test: pool empty");
        for (unsigned j = 0; j < kMbufBurst; ++j)
            m[j]->free();
    }
    return pairs_per_s(bursts, t0);
}

// alloc_bulk then free_bulk of kMbufBurst: rte_pktmbuf_alloc_bulk /
// rte_pktmbuf_free_bulk.
Result<double> bulk(mbuf::MbufPool& p, unsigned bursts) {
    mbuf::Mbuf* m[kMbufBurst];
    const auto t0 = Clock::now();
    for (unsigned b = 0; b < bursts; ++b) {
        if (p.alloc_bulk(m, kMbufBurst) != 0)
            return fail(ENOMEM, "mbuf test: pool empty");
        mbuf::free_bulk(m, kMbufBurst);
    }
    return pairs_per_s(bursts, t0);
}

}  // namespace

Result<MbufRun> mbuf_tests(eal::Heap& heap, unsigned bursts, unsigned reps) {
    if (eal::lcore_id() == eal::kLcoreIdAny)
        return fail(EINVAL, "mbuf test: not on an lcore (no per-lcore cache)");
    auto pool = mbuf::MbufPool::create(heap, "bench_mbuf", kMbufPoolSize, kMbufCache, 0,
                                       mbuf::kDefaultDataRoom);
    if (!pool)
        return fail(std::move(pool.error()).context("mbuf test"));
    MbufRun r;
    for (unsigned rep = 0; rep < reps; ++rep) {
        auto s = single(**pool, bursts);
        auto b = s ? bulk(**pool, bursts) : Result<double>(0.0);
        if (!s || !b) {
            (void)mbuf::MbufPool::destroy(*pool);
            return fail(std::move(s ? b.error() : s.error()));
        }
        r.single_pairs = std::max(r.single_pairs, *s);
        r.bulk_pairs = std::max(r.bulk_pairs, *b);
    }
    if (auto ok = mbuf::MbufPool::destroy(*pool); !ok)
        return fail(std::move(ok.error()).context("mbuf test"));
    return r;
}

}  // namespace vfiokit::bench
