// Where a pool puts its parts inside its one heap allocation. Pure
// arithmetic, so it is unit-tested on its own.
//
//   [MbufPool][ring + slots][kMaxLcores caches][mbufs ...]
//
// Mbufs are packed back to back with 4 KiB pages (--no-huge; va mode,
// where each heap allocation lies in one IOVA-contiguous segment). In pa
// mode only a page is contiguous, and with huge pages in va mode emulated
// devices may still need a buffer inside one page (mbuf.cpp says why), so
// there no object straddles a page boundary (DPDK's rule in pa mode): the
// mbuf area starts on a page and each page holds floor(page / stride)
// objects.
//
// Private to lib/mbuf.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vfiokit/eal/pool_core.hpp"

namespace vfiokit::mbuf::detail {

struct PoolLayout {
    std::uint64_t ring_off = 0;
    std::uint64_t caches_off = 0;
    std::uint64_t objs_off = 0;
    std::uint64_t bytes = 0;      // the whole allocation
    std::uint64_t align = 64;     // of the allocation
    std::uint32_t ring_size = 0;  // slots, a power of two >= n
    std::uint32_t cache_stride = 0;
    std::uint32_t flush_threshold = 0;
    std::uint32_t obj_stride = 0;
    std::uint32_t per_page = 0;   // objects per page when `page`, else 0
    std::uint64_t page = 0;       // 0: packed

    // Offset of object i from the start of the mbuf area.
    [[nodiscard]] std::uint64_t obj_offset(std::uint64_t i) const {
        if (page == 0)
            return i * obj_stride;
        return (i / per_page) * page + (i % per_page) * obj_stride;
    }
};

constexpr std::uint64_t round_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

// `pool_bytes`/`ring_header`/`slot`: sizeof(MbufPool), sizeof(PtrRing<Mbuf>),
// sizeof(Mbuf*); `obj_bytes`: header + priv + data room of one mbuf;
// `page`: the page size when objects must stay inside pages (pa), else 0.
// false when an object is larger than a page that must hold it.
[[nodiscard]] inline bool compute_layout(PoolLayout& l, std::uint64_t pool_bytes,
                                         std::uint64_t ring_header, std::uint64_t slot,
                                         unsigned n, unsigned cache_size, unsigned max_lcores,
                                         std::uint64_t obj_bytes, std::uint64_t page) {
    l.ring_size = 1;
    while (l.ring_size < n)
        l.ring_size <<= 1;
    l.ring_off = round_up(pool_bytes, 64);
    l.caches_off = round_up(l.ring_off + ring_header + l.ring_size * slot, 64);
    // A cache is flushed down to cache_size once it reaches the threshold
    // (1.5 x cache_size, DPDK's), and a bulk put or refill adds at most
    // cache_size at once: threshold + cache_size slots always suffice.
    l.flush_threshold = eal::detail::flush_threshold(cache_size);
    l.cache_stride = eal::detail::cache_stride(cache_size, slot);
    const std::uint64_t caches_end = l.caches_off + std::uint64_t{l.cache_stride} * max_lcores;
    l.obj_stride = static_cast<std::uint32_t>(round_up(obj_bytes, 64));
    l.page = page;
    if (page == 0) {
        l.per_page = 0;
        l.align = 64;
        l.objs_off = round_up(caches_end, 64);
        l.bytes = l.objs_off + std::uint64_t{n} * l.obj_stride;
        return true;
    }
    if (l.obj_stride > page)
        return false;
    l.per_page = static_cast<std::uint32_t>(page / l.obj_stride);
    l.align = page;
    l.objs_off = round_up(caches_end, page);
    l.bytes = l.objs_off + (std::uint64_t{n} + l.per_page - 1) / l.per_page * page;
    return true;
}

}  // namespace vfiokit::mbuf::detail
