#include "vfiokit/eal/heap.hpp"
#include "vfiokit/eal/lcore.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <thread>

#include <cerrno>
#include <cstring>
#include <random>
#include <set>

namespace vfiokit::eal {
namespace {

std::unique_ptr<Memory> memory() {
    MemoryOptions o;
    o.no_huge = true;
    o.window = 64ULL << 20;
    auto m = Memory::create(o);
    if (!m)
        ADD_FAILURE() << m.error().message();
    return m ? std::move(*m) : nullptr;
}

TEST(Heap, AllocationsAreAlignedDisjointAndTranslated) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 1 << 20);
    std::vector<std::pair<char*, std::size_t>> live;
    std::mt19937 rng(3);
    for (int i = 0; i < 500; ++i) {
        std::size_t n = 1 + rng() % 5000;
        std::uint64_t align = 64ULL << (rng() % 4);
        auto p = h.alloc(n, align);
        ASSERT_TRUE(p) << p.error().message();
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(*p) % align, 0u);
        std::memset(*p, i & 0xff, n);
        EXPECT_TRUE(m->virt2iova(*p));
        live.emplace_back(static_cast<char*>(*p), n);
        if (rng() % 3 == 0) {
            auto [q, len] = live[rng() % live.size()];
            (void)len;
            ASSERT_TRUE(h.free(q));
            live.erase(std::find_if(live.begin(), live.end(), [&](auto& e) { return e.first == q; }));
        }
    }
    // No overlap among live allocations.
    std::sort(live.begin(), live.end());
    for (std::size_t i = 1; i < live.size(); ++i)
        EXPECT_LE(live[i - 1].first + live[i - 1].second, live[i].first);
    for (auto [p, n] : live)
        ASSERT_TRUE(h.free(p));
    EXPECT_EQ(h.bytes_in_use(), 0u);
}

TEST(Heap, FreeCoalescesSoTheWholeChunkFitsAgain) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 1 << 20);
    std::vector<void*> ps;
    for (int i = 0; i < 16; ++i)
        ps.push_back(*h.alloc(64 << 10));
    EXPECT_EQ(h.segments(), 1u);
    for (int i = 0; i < 16; i += 2)
        ASSERT_TRUE(h.free(ps[i]));
    for (int i = 1; i < 16; i += 2)
        ASSERT_TRUE(h.free(ps[i]));
    auto whole = h.alloc(1 << 20);
    ASSERT_TRUE(whole);
    EXPECT_EQ(h.segments(), 1u);  // fit without growing
}

TEST(Heap, GrowsBySegmentsAndReportsLimits) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 16 << 20);
    auto too_big = h.alloc(32 << 20);
    ASSERT_FALSE(too_big);
    EXPECT_EQ(too_big.error().err(), EINVAL);
    for (int i = 0; i < 4; ++i)
        ASSERT_TRUE(h.alloc(15 << 20));
    EXPECT_EQ(h.segments(), 4u);
    auto full = h.alloc(15 << 20);  // the 64 MiB window is used up
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().err(), ENOSPC);
    EXPECT_FALSE(h.free(reinterpret_cast<void*>(0x1234)));
}

// The allocator's own invariants after every step of a random mix of sizes
// and alignments (Heap::check: blocks tile each segment, free neighbours
// merged, class lists and bitmaps agree, the address table holds exactly
// the used blocks).
TEST(HeapTlsf, InvariantsHoldThroughARandomMix) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 1 << 20);
    std::mt19937 rng(11);
    std::vector<void*> live;
    for (int i = 0; i < 3000; ++i) {
        if (live.empty() || rng() % 5 < 3) {
            const std::uint64_t n = rng() % 4 == 0 ? 1 + rng() % (200 << 10) : 1 + rng() % 2048;
            auto p = h.alloc(n, 64ULL << (rng() % 5));
            ASSERT_TRUE(p) << p.error().message();
            live.push_back(*p);
        } else {
            const std::size_t k = rng() % live.size();
            ASSERT_TRUE(h.free(live[k]));
            live[k] = live.back();
            live.pop_back();
        }
        if (i % 50 == 0) {
            auto ok = h.check();
            ASSERT_TRUE(ok) << "step " << i << ": " << ok.error().message();
        }
    }
    for (void* p : live)
        ASSERT_TRUE(h.free(p));
    ASSERT_TRUE(h.check());
    // All merged back: one free block per segment, no used one.
    const Heap::Stats st = h.stats();
    EXPECT_EQ(st.used_blocks, 0u);
    EXPECT_EQ(st.free_blocks, h.segments());
    EXPECT_EQ(h.bytes_in_use(), 0u);
}

// Freeing a block between two free ones merges all three at once, whatever
// the order of the frees: one free block remains.
TEST(HeapTlsf, FreeMergesBothNeighbours) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 1 << 20);
    void* a = *h.alloc(4096);
    void* b = *h.alloc(4096);
    void* c = *h.alloc(4096);
    void* guard = *h.alloc(64);  // keeps c's upper neighbour used
    ASSERT_TRUE(h.free(a));
    ASSERT_TRUE(h.free(c));
    EXPECT_EQ(h.stats().free_blocks, 3u);  // a, c, and the rest of the segment
    ASSERT_TRUE(h.free(b));
    EXPECT_EQ(h.stats().free_blocks, 2u);  // a+b+c, and the rest
    EXPECT_EQ(h.stats().largest_free, (1u << 20) - 3 * 4096 - 64);
    ASSERT_TRUE(h.check());
    // The merged block is reused in place for a request of its size.
    auto again = h.alloc(3 * 4096);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, a);
    ASSERT_TRUE(h.free(guard));
    ASSERT_TRUE(h.free(*again));
    EXPECT_EQ(h.stats().free_blocks, 1u);
    ASSERT_TRUE(h.check());
}

// Fragmentation: with every other 64 KiB block freed, half the segment is
// free but no 128 KiB piece: a 128 KiB request must grow the heap, and the
// holes are reused for 64 KiB requests (no growth then).
TEST(HeapTlsf, HolesAreReusedAndLargeRequestsGrow) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 1 << 20);
    std::vector<void*> ps;
    for (int i = 0; i < 16; ++i)
        ps.push_back(*h.alloc(64 << 10));
    ASSERT_EQ(h.segments(), 1u);
    for (int i = 0; i < 16; i += 2)
        ASSERT_TRUE(h.free(ps[i]));
    EXPECT_EQ(h.stats().free_blocks, 8u);
    EXPECT_EQ(h.stats().largest_free, 64u << 10);
    // Each request takes one of the holes (the class list is LIFO: the
    // last freed first), all of them before the segment's tail.
    std::set<void*> holes, got;
    for (int i = 0; i < 16; i += 2) {
        holes.insert(ps[i]);
        auto p = h.alloc(64 << 10);
        ASSERT_TRUE(p);
        got.insert(*p);
        ps[i] = *p;
    }
    EXPECT_EQ(got, holes);
    EXPECT_EQ(h.segments(), 1u);
    for (int i = 0; i < 16; i += 2)
        ASSERT_TRUE(h.free(ps[i]));
    auto big = h.alloc(128 << 10);
    ASSERT_TRUE(big);
    EXPECT_EQ(h.segments(), 2u);
    ASSERT_TRUE(h.check());
}

// A block inside the request's own class but smaller than the class's top
// is found by the near-fit look, not left for a new segment.
TEST(HeapTlsf, ExactFitInTheRequestsOwnClassIsUsed) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 1 << 20);
    // 1088 bytes = 17 units: class (1, 1) holds 17 units only at this
    // level of detail, so use a size in a wider class: 40 units (2560 B)
    // sits in a class of 2 units' width (40, 41).
    void* lo = *h.alloc(64);
    void* hole = *h.alloc(40 * 64);
    void* hi = *h.alloc(64);
    // Fill the rest of the segment so only the hole is free.
    const std::uint64_t rest = h.stats().largest_free;
    void* fill = *h.alloc(rest);
    ASSERT_EQ(h.stats().free_blocks, 0u);
    ASSERT_TRUE(h.free(hole));
    auto p = h.alloc(40 * 64);
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, hole);
    EXPECT_EQ(h.segments(), 1u);
    for (void* q : {lo, hi, fill, *p})
        ASSERT_TRUE(h.free(q));
    ASSERT_TRUE(h.check());
}

// Aligned requests: the gap before the aligned start stays free (and is
// used by later small requests); worst case alignment of a whole chunk.
TEST(HeapTlsf, AlignmentSplitsOffAFreeFront) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 1 << 20);
    void* small = *h.alloc(64);  // the segment's start is used: the next is not 64 KiB-aligned
    auto p = h.alloc(4096, 64 << 10);
    ASSERT_TRUE(p);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(*p) % (64 << 10), 0u);
    EXPECT_EQ(h.bytes_in_use(), 64u + 4096u);
    EXPECT_EQ(h.stats().free_blocks, 2u);  // the front gap and the tail
    ASSERT_TRUE(h.check());
    auto in_gap = h.alloc(128);
    ASSERT_TRUE(in_gap);
    EXPECT_LT(*in_gap, *p);
    ASSERT_TRUE(h.check());
    // Aligned to the chunk itself: needs a fresh segment.
    auto whole = h.alloc(1 << 20, 1 << 20);
    ASSERT_TRUE(whole) << whole.error().message();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(*whole) % (1 << 20), 0u);
    for (void* q : {small, *p, *in_gap, *whole})
        ASSERT_TRUE(h.free(q));
    ASSERT_TRUE(h.check());
    EXPECT_EQ(h.bytes_in_use(), 0u);
}

// Exhaustion: when Memory cannot add a segment, alloc fails with Memory's
// reason and the heap is unchanged and usable; double and foreign frees
// are refused without damage.
TEST(HeapTlsf, ExhaustionAndBadFreesLeaveTheHeapIntact) {
    auto m = memory();  // a 64 MiB window
    ASSERT_TRUE(m);
    Heap h(*m, -1, 8 << 20);
    std::vector<void*> ps;
    for (;;) {
        auto p = h.alloc(2 << 20);
        if (!p) {
            EXPECT_EQ(p.error().err(), ENOSPC) << p.error().message();
            break;
        }
        ps.push_back(*p);
        ASSERT_LT(ps.size(), 100u) << "the window never ran out";
    }
    ASSERT_TRUE(h.check());
    const std::uint64_t used = h.bytes_in_use();
    ASSERT_FALSE(ps.empty());
    ASSERT_TRUE(h.free(ps.front()));
    EXPECT_FALSE(h.free(ps.front()));  // twice
    char local = 0;
    EXPECT_FALSE(h.free(&local));
    EXPECT_FALSE(h.free(static_cast<char*>(ps.back()) + 64));  // inside a block
    EXPECT_EQ(h.bytes_in_use(), used - (2 << 20));
    ASSERT_TRUE(h.check());
    auto reuse = h.alloc(2 << 20);
    ASSERT_TRUE(reuse);
    EXPECT_EQ(*reuse, ps.front());
    ps.front() = *reuse;
    for (void* p : ps)
        ASSERT_TRUE(h.free(p));
    ASSERT_TRUE(h.check());
}

// Many live blocks (the address table grows several times) and the
// worst-case paths: every class from 64 B to 1 MiB allocated and freed.
TEST(HeapTlsf, EveryClassAndAGrowingAddressTable) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 16 << 20);
    std::vector<void*> ps;
    for (int i = 0; i < 20000; ++i) {
        auto p = h.alloc(64);
        ASSERT_TRUE(p);
        ps.push_back(*p);
    }
    ASSERT_TRUE(h.check());
    for (std::size_t i = 0; i < ps.size(); i += 2)
        ASSERT_TRUE(h.free(ps[i]));
    ASSERT_TRUE(h.check());
    for (std::size_t i = 1; i < ps.size(); i += 2)
        ASSERT_TRUE(h.free(ps[i]));
    EXPECT_EQ(h.stats().free_blocks, h.segments());
    for (std::uint64_t size = 64; size <= (1 << 20); size += size / 16 + 64) {
        auto p = h.alloc(size);
        ASSERT_TRUE(p) << size;
        ASSERT_TRUE(h.free(*p));
    }
    ASSERT_TRUE(h.check());
    EXPECT_EQ(h.stats().free_blocks, h.segments());
}

TEST(ObjectPool, GetPutConstantTimeAndBounded) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 1 << 20);
    auto pool = ObjectPool::create(h, 2048 + 128, 100);
    ASSERT_TRUE(pool) << pool.error().message();
    EXPECT_EQ(pool->object_size(), 2176u);
    std::set<void*> got;
    while (void* o = pool->get()) {
        EXPECT_TRUE(pool->owns(o));
        EXPECT_TRUE(got.insert(o).second);
    }
    EXPECT_EQ(got.size(), 100u);
    EXPECT_EQ(pool->available(), 0u);
    for (void* o : got)
        pool->put(o);
    EXPECT_EQ(pool->available(), 100u);
    EXPECT_FALSE(pool->owns(static_cast<char*>(*got.begin()) + 1));
}

// Sizes near 2^64 are refused, not wrapped into small blocks.
TEST(Heap, SizesThatWouldWrapAreRefused) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 1 << 20);
    for (std::uint64_t size : {std::uint64_t{UINT64_MAX}, UINT64_MAX - 62, UINT64_MAX / 2 + 1}) {
        auto p = h.alloc(size);
        ASSERT_FALSE(p) << size << " gave a block";
        EXPECT_EQ(p.error().err(), EINVAL) << size;
    }
    auto aligned = h.alloc(64, std::uint64_t{1} << 63);
    ASSERT_FALSE(aligned);
    EXPECT_EQ(aligned.error().err(), EINVAL);
    EXPECT_EQ(h.segments(), 0u);
}

TEST(ObjectPool, SizesThatWouldWrapAreRefused) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 1 << 20);
    auto huge_count = ObjectPool::create(h, 64, SIZE_MAX / 32);
    ASSERT_FALSE(huge_count);
    EXPECT_EQ(huge_count.error().err(), EOVERFLOW);
    auto huge_obj = ObjectPool::create(h, UINT64_MAX - 10, 2);
    ASSERT_FALSE(huge_obj);
    EXPECT_EQ(huge_obj.error().err(), EOVERFLOW);
    auto bad_align = ObjectPool::create(h, 64, 2, 96);
    ASSERT_FALSE(bad_align);
    EXPECT_EQ(bad_align.error().err(), EINVAL);
}

// On an lcore, gets and puts go through its cache: the first get refills
// cache_size + 1 from the ring, puts flush down to cache_size at 1.5 x;
// a thread that is not an lcore sees only the ring. Bulk calls are all or
// nothing.
TEST(ObjectPool, PerLcoreCacheRefillsAndFlushesInBulk) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 4 << 20);
    auto lc = Lcores::start({}, 0);  // this thread is lcore 0
    ASSERT_TRUE(lc) << lc.error().message();
    auto pool = ObjectPool::create(h, 256, 1024, 64, 64);
    ASSERT_TRUE(pool) << pool.error().message();
    EXPECT_EQ(pool->cache_size(), 64u);
    const auto in_ring = [&] {
        std::size_t n = 0;
        std::thread t([&] {
            std::vector<void*> got;
            while (void* o = pool->get())
                got.push_back(o);
            n = got.size();
            pool->put_bulk(got.data(), static_cast<unsigned>(got.size()));
        });
        t.join();
        return n;
    };
    void* objs[1024];
    ASSERT_EQ(pool->get_bulk(objs, 32), 0);
    EXPECT_EQ(in_ring(), 1024u - 96);  // one refill: 64 beyond the 32 asked
    EXPECT_EQ(pool->available(), 1024u - 32);
    std::set<void*> distinct(objs, objs + 32);
    EXPECT_EQ(distinct.size(), 32u);
    for (void* o : distinct)
        EXPECT_TRUE(pool->owns(o));
    pool->put_bulk(objs, 32);  // 96 in the cache: the threshold, flushed to 64
    EXPECT_EQ(in_ring(), 1024u - 64);
    EXPECT_EQ(pool->available(), 1024u);
    // More than the cache holds goes to the ring only: 960 are there.
    EXPECT_EQ(pool->get_bulk(objs, 961), -ENOENT);
    ASSERT_EQ(pool->get_bulk(objs, 960), 0);
    for (unsigned i = 960; i < 1024; ++i) {
        objs[i] = pool->get();  // the cache's 64
        ASSERT_NE(objs[i], nullptr) << i;
    }
    EXPECT_EQ(pool->get(), nullptr);
    void* none[4] = {};
    EXPECT_EQ(pool->get_bulk(none, 4), -ENOENT);
    EXPECT_EQ(pool->available(), 0u);
    EXPECT_EQ(std::set<void*>(objs, objs + 1024).size(), 1024u);
    pool->put_bulk(objs, 1024);
    EXPECT_EQ(pool->available(), 1024u);
}

// Several lcore threads at once, each with its cache, handing objects to
// each other through a non-lcore path and back: every object comes back
// exactly once.
TEST(ObjectPool, ConservationAcrossLcores) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 4 << 20);
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(::sched_getaffinity(0, sizeof(set), &set), 0);
    std::vector<unsigned> cpus;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set))
            cpus.push_back(c);
    std::vector<LcoreCpus> layout;
    for (unsigned i = 0; i < 3; ++i)
        layout.push_back({i, {cpus[i % cpus.size()]}});
    auto lc = Lcores::start(layout, 0);
    ASSERT_TRUE(lc) << lc.error().message();
    constexpr unsigned kN = 2048;
    auto pool = ObjectPool::create(h, 128, kN, 64, 128);
    ASSERT_TRUE(pool);
    std::atomic<unsigned> failures{0};
    const auto work = [&] {
        void* b[32];
        for (int i = 0; i < 20000; ++i) {
            if (pool->get_bulk(b, 32) != 0) {
                failures++;
                continue;
            }
            for (void* o : b)
                std::memset(o, i & 0xff, 128);
            pool->put_bulk(b, 32);
            void* one = pool->get();
            if (one != nullptr)
                pool->put(one);
        }
        return 0;
    };
    ASSERT_TRUE((*lc)->launch(1, work));
    ASSERT_TRUE((*lc)->launch(2, work));
    (void)work();
    ASSERT_TRUE((*lc)->wait(1));
    ASSERT_TRUE((*lc)->wait(2));
    EXPECT_EQ(failures.load(), 0u);
    EXPECT_EQ(pool->available(), std::size_t{kN});
    // All of them, each once: each lcore empties its own cache and then
    // the ring, in turn.
    std::vector<void*> all;
    const auto drain = [&] {
        while (void* o = pool->get())
            all.push_back(o);
        return 0;
    };
    for (unsigned w : {1u, 2u}) {
        ASSERT_TRUE((*lc)->launch(w, drain));
        ASSERT_TRUE((*lc)->wait(w));
    }
    (void)drain();
    EXPECT_EQ(all.size(), std::size_t{kN});
    EXPECT_EQ(std::set<void*>(all.begin(), all.end()).size(), std::size_t{kN});
    pool->put_bulk(all.data(), static_cast<unsigned>(all.size()));
}

TEST(ObjectPool, CacheSizeFollowsDpdksRules) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 4 << 20);
    auto too_big = ObjectPool::create(h, 64, 4096, 64, ObjectPool::kMaxCacheSize + 1);
    ASSERT_FALSE(too_big);
    EXPECT_EQ(too_big.error().err(), EINVAL);
    auto over_share = ObjectPool::create(h, 64, 100, 64, 67);  // > 100 / 1.5
    ASSERT_FALSE(over_share);
    EXPECT_EQ(over_share.error().err(), EINVAL);
    EXPECT_TRUE(ObjectPool::create(h, 64, 100, 64, 66));
    EXPECT_EQ(h.bytes_in_use(), 0u);  // nothing kept from the refusals
}

#ifndef NDEBUG
TEST(ObjectPoolDeathTest, DoublePutAborts) {
    auto m = memory();
    ASSERT_TRUE(m);
    Heap h(*m, -1, 1 << 20);
    auto pool = ObjectPool::create(h, 64, 4);
    ASSERT_TRUE(pool);
    void* o = pool->get();
    pool->put(o);
    EXPECT_DEATH(pool->put(o), "double put of object 0");
    int not_ours = 0;
    EXPECT_DEATH(pool->put(&not_ours), "which is not one of its 4 objects");
    // In a bulk put, through an lcore's cache, too.
    auto lc = Lcores::start({}, 0);
    ASSERT_TRUE(lc);
    auto cached = ObjectPool::create(h, 64, 16, 64, 4);
    ASSERT_TRUE(cached);
    void* b[2];
    ASSERT_EQ(cached->get_bulk(b, 2), 0);
    void* twice[3] = {b[0], b[1], b[0]};
    EXPECT_DEATH(cached->put_bulk(twice, 3), "double put of object");
}
#endif

}  // namespace
}  // namespace vfiokit::eal
