#include "vfiokit/eal/vfio/dma_table.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <iterator>
#include <map>
#include <optional>
#include <random>

namespace vfiokit::vfio {
namespace {

constexpr std::uint64_t K = 4096;

TEST(DmaTable, OverlapIsRefusedOnEitherSide) {
    DmaTable t;
    ASSERT_TRUE(t.check_free(0x10000, 4 * K));
    t.insert({0x10000, 0x7f0000000000, 4 * K});
    for (auto [iova, len] : {std::pair{0x10000ULL, K}, {0xf000ULL, 2 * K}, {0x13000ULL, K},
                             {0x8000ULL, 0x20000ULL}}) {
        auto r = t.check_free(iova, len);
        ASSERT_FALSE(r) << std::hex << iova;
        EXPECT_EQ(r.error().err(), EEXIST);
        EXPECT_NE(r.error().op().find("overlaps mapping [0x10000, 0x14000)"), std::string::npos);
    }
    EXPECT_TRUE(t.check_free(0xf000, K));   // touching below
    EXPECT_TRUE(t.check_free(0x14000, K));  // touching above
}

TEST(DmaTable, UnmapTakesWholeMappingsOnly) {
    DmaTable t;
    t.insert({0x10000, 0, 2 * K});
    t.insert({0x12000, 0, 2 * K});
    t.insert({0x20000, 0, K});
    // A range made of whole mappings, with a gap: fine.
    auto w = t.whole_mappings_in(0x10000, 0x11000);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->size(), 3u);
    // Cutting the first mapping's head or tail: EINVAL naming it.
    auto cut = t.whole_mappings_in(0x11000, 3 * K);
    ASSERT_FALSE(cut);
    EXPECT_EQ(cut.error().err(), EINVAL);
    EXPECT_NE(cut.error().op().find("cuts through mapping [0x10000, 0x12000)"), std::string::npos);
    auto tail = t.whole_mappings_in(0x12000, K);
    ASSERT_FALSE(tail);
    EXPECT_EQ(tail.error().err(), EINVAL);
    // Nothing there: ENOENT.
    auto none = t.whole_mappings_in(0x30000, K);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().err(), ENOENT);
    t.erase(*t.whole_mappings_in(0x12000, 2 * K));
    EXPECT_EQ(t.size(), 2u);
    EXPECT_FALSE(t.lookup(0x12000));
}

TEST(DmaTable, LookupFindsTheContainingMapping) {
    DmaTable t;
    t.insert({0x10000, 0xa0000, 2 * K});
    EXPECT_FALSE(t.lookup(0xffff));
    ASSERT_TRUE(t.lookup(0x10000));
    EXPECT_EQ(t.lookup(0x11fff)->vaddr, 0xa0000u);
    EXPECT_FALSE(t.lookup(0x12000));
}

TEST(DmaTable, TenThousandMappingsNoLimit) {
    DmaTable t;
    for (std::uint64_t i = 0; i < 10000; ++i) {
        ASSERT_TRUE(t.check_free(i * 2 * K, K));
        t.insert({i * 2 * K, i * K, K});
    }
    EXPECT_EQ(t.size(), 10000u);
    EXPECT_EQ(t.lookup(9999 * 2 * K + 5)->vaddr, 9999 * K);
    EXPECT_EQ(t.bytes(), 10000 * K);
}

TEST(DmaTable, FindFreeRespectsRangesMaskAlignmentAndMappings) {
    DmaTable t;
    const std::vector<IovaRange> ranges = {{0, 0xfedfffff}, {0xfef00000, (1ULL << 39) - 1}};
    // Empty table: the floor, aligned.
    EXPECT_EQ(*t.find_free(ranges, K, K, 0x0fffffff, 1 << 20), 1u << 20);
    t.insert({1 << 20, 0, 8 * K});
    EXPECT_EQ(*t.find_free(ranges, K, K, 0x0fffffff, 1 << 20), (1u << 20) + 8 * K);
    // Alignment skips ahead.
    EXPECT_EQ(*t.find_free(ranges, 2 << 20, 2 << 20, ~0ULL, 1 << 20), 2u << 20);
    // Nothing fits under a tiny mask.
    auto r = t.find_free(ranges, 1 << 20, K, (1 << 20) + 8 * K - 1, 1 << 20);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENOSPC);
    // A request that does not fit below the MSI hole lands above it.
    DmaTable u;
    u.insert({0x100000, 0, 0xfed00000 - 0x100000});
    EXPECT_EQ(*u.find_free(ranges, 2 << 20, K, ~0ULL, 1 << 20), 0xfef00000u);
    // Bad arguments.
    EXPECT_FALSE(t.find_free(ranges, 0, K, ~0ULL));
    EXPECT_FALSE(t.find_free(ranges, K, 3, ~0ULL));
}

TEST(DmaTable, AllocatedRangesNeverOverlap) {
    DmaTable t;
    const std::vector<IovaRange> ranges = {{0, 0xfedfffff}, {0xfef00000, (1ULL << 39) - 1}};
    std::mt19937_64 rng(7);
    for (int i = 0; i < 2000; ++i) {
        std::uint64_t len = (1 + rng() % 16) * K;
        auto iova = t.find_free(ranges, len, K, (1ULL << 32) - 1, 1 << 20);
        ASSERT_TRUE(iova);
        ASSERT_TRUE(t.check_free(*iova, len));
        EXPECT_LE(*iova + len - 1, (1ULL << 32) - 1);
        t.insert({*iova, 0, len});
        if (rng() % 3 == 0)  // free a random earlier one to make holes
            if (auto m = t.lookup(*iova); m)
                t.erase({*m});
    }
}

// The table against a std::map model, through maps and unmaps at either
// end and in the middle (the table stores mappings in order, not as tree
// nodes: every position must still come out right).
// The array's own moves: mapping downwards (room made at the front),
// a window sliding upwards (unmapped at the front, mapped at the back:
// the array slides down rather than grow), both ends in turn, and a table
// made after another died (which may take over its array).
TEST(DmaTable, EitherEndPatternsKeepTheOrder) {
    const auto sorted_and_whole = [](const DmaTable& t, std::uint64_t bytes) {
        auto all = t.all();
        for (std::size_t i = 1; i < all.size(); ++i)
            if (all[i - 1].end() > all[i].iova)
                return false;
        return all.size() == t.size() && t.bytes() == bytes;
    };
    {
        DmaTable down;
        for (std::uint64_t i = 5000; i-- > 0;) {
            ASSERT_TRUE(down.check_free(i * K, K));
            down.insert({i * K, i, K});
        }
        EXPECT_TRUE(sorted_and_whole(down, 5000 * K));
        EXPECT_EQ(down.lookup(0)->vaddr, 0u);
        EXPECT_EQ(down.lookup(4999 * K + 5)->vaddr, 4999u);
    }
    DmaTable window;
    constexpr std::uint64_t kLive = 100;
    for (std::uint64_t i = 0; i < 100000; ++i) {
        ASSERT_TRUE(window.above_all(i * K)) << i;
        window.append({i * K, i, K});
        if (i >= kLive) {
            DmaTable::Extent x;
            ASSERT_TRUE(window.one_at_either_end((i - kLive) * K, K, x)) << i;
            EXPECT_EQ(x.first, 0u);
            window.erase(x);
        }
    }
    EXPECT_EQ(window.size(), kLive);
    EXPECT_TRUE(sorted_and_whole(window, kLive * K));
    EXPECT_EQ(window.lookup((100000 - kLive) * K)->vaddr, 100000 - kLive);
    EXPECT_FALSE(window.lookup((100000 - kLive - 1) * K));

    DmaTable both;
    std::uint64_t lo = std::uint64_t{1} << 32, hi = lo;  // next free below lo, at hi
    for (int i = 0; i < 3000; ++i) {
        if (i % 3 == 0) {
            lo -= K;
            both.insert({lo, lo, K});
        } else {
            both.insert({hi, hi, K});
            hi += K;
        }
        if (i % 7 == 6) {  // one from the middle
            const std::uint64_t mid = lo + ((hi - lo) / K / 2) * K;
            if (auto x = both.whole_extent(mid, K); x)
                both.erase(*x);
        }
    }
    std::uint64_t sum = 0;
    for (const auto& m : both.all())
        sum += m.len;
    EXPECT_TRUE(sorted_and_whole(both, sum));
    EXPECT_EQ(both.all().front().iova, lo);
    EXPECT_EQ(both.all().back().end(), hi);
    both.clear();
    EXPECT_EQ(both.size(), 0u);
    both.append({K, K, K});
    EXPECT_EQ(both.lookup(K)->vaddr, K);
}

TEST(DmaTable, AgreesWithAnOrderedMapUnderRandomMapsAndUnmaps) {
    DmaTable t;
    std::map<std::uint64_t, DmaMapping> model;
    std::uint64_t model_bytes = 0;
    std::mt19937_64 rng(11);
    for (int step = 0; step < 20000; ++step) {
        const std::uint64_t iova = (rng() % 512) * K, len = (1 + rng() % 4) * K;
        const bool overlaps = [&] {
            auto it = model.lower_bound(iova);
            if (it != model.end() && it->first < iova + len)
                return true;
            return it != model.begin() && std::prev(it)->second.end() > iova;
        }();
        if (rng() % 2 == 0) {
            auto free = t.check_free(iova, len);
            ASSERT_EQ(bool(free), !overlaps) << step;
            if (!free) {
                EXPECT_EQ(free.error().err(), EEXIST);
                continue;
            }
            t.insert({iova, iova * 3, len});
            model[iova] = {iova, iova * 3, len};
            model_bytes += len;
        } else {
            // Whole mappings from the one at or after iova: one or two of them.
            auto it = model.lower_bound(iova);
            if (it == model.end())
                continue;
            auto last = std::next(it);
            if (last != model.end() && rng() % 3 == 0)
                ++last;
            const std::uint64_t from = it->first, to = std::prev(last)->second.end();
            auto x = t.whole_extent(from, to - from);
            ASSERT_TRUE(x) << step << ": " << x.error().message();
            EXPECT_EQ(x->count, static_cast<std::size_t>(std::distance(it, last)));
            std::uint64_t bytes = 0;
            for (auto j = it; j != last; ++j)
                bytes += j->second.len;
            EXPECT_EQ(x->bytes, bytes);
            t.erase(*x);
            model.erase(it, last);
            model_bytes -= bytes;
        }
        ASSERT_EQ(t.size(), model.size()) << step;
        ASSERT_EQ(t.bytes(), model_bytes) << step;
        const std::uint64_t probe = (rng() % 520) * K + rng() % K;
        auto want = [&]() -> std::optional<DmaMapping> {
            auto it = model.upper_bound(probe);
            if (it == model.begin() || std::prev(it)->second.end() <= probe)
                return std::nullopt;
            return std::prev(it)->second;
        }();
        auto got = t.lookup(probe);
        ASSERT_EQ(bool(got), bool(want)) << step;
        if (got) {
            EXPECT_EQ(got->iova, want->iova);
        }
    }
    auto all = t.all();
    ASSERT_EQ(all.size(), model.size());
    std::size_t i = 0;
    for (const auto& [iova, m] : model)
        EXPECT_EQ(all[i++].iova, iova);
}

}  // namespace
}  // namespace vfiokit::vfio
