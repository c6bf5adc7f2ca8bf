#include "vfiokit/eal/heap.hpp"

#include <gtest/gtest.h>

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
}
#endif

}  // namespace
}  // namespace vfiokit::eal
