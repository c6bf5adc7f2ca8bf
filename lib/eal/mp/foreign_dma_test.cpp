// The primary's record of its secondaries' own mappings (foreign_dma.hpp):
// what a crash leaves to clean up, and what one secondary can never make
// the primary unmap for another.
#include "foreign_dma.hpp"

#include <gtest/gtest.h>

#include <cerrno>

namespace vfiokit::eal::mp {
namespace {

constexpr std::uint64_t kMb = 1 << 20;

TEST(ForeignDma, RangeCodecRoundTripsAndRefusesBadPayloads) {
    const DmaRange r{2, 0x40000000, 4 * kMb};
    const std::string b = encode(r);
    ASSERT_EQ(b.size(), kDmaRangeBytes);
    auto back = decode_dma_range(b);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(*back, r);

    EXPECT_EQ(decode_dma_range(b.substr(0, 23)).error().err(), EBADMSG);
    EXPECT_EQ(decode_dma_range(b + "x").error().err(), EBADMSG);
    std::string reserved = b;
    reserved[4] = 1;
    EXPECT_EQ(decode_dma_range(reserved).error().err(), EBADMSG);
    EXPECT_EQ(decode_dma_range(encode({0, 0x1000, 0})).error().err(), EBADMSG);
    EXPECT_EQ(decode_dma_range(encode({0, ~0ULL - 0xfff, 0x2000})).error().err(), EBADMSG);
    // Every single-bit flip either decodes to some range or is refused; none crashes.
    for (std::size_t i = 0; i < b.size() * 8; ++i) {
        std::string f = b;
        f[i / 8] = static_cast<char>(f[i / 8] ^ (1 << (i % 8)));
        auto d = decode_dma_range(f);
        if (!d) {
            EXPECT_EQ(d.error().err(), EBADMSG);
        }
    }
}

TEST(ForeignDma, AnnouncedAndConfirmedRangesAreAllTakenAtDisconnect) {
    ForeignDma f;
    // Connection 7 maps three buffers; the third announcement is never
    // confirmed (it died between the map ioctl and the confirmation).
    ASSERT_TRUE(f.announce(7, {0, 0x100000, 2 * kMb}));
    ASSERT_TRUE(f.confirm(7, {0, 0x100000, 2 * kMb}));
    ASSERT_TRUE(f.announce(7, {0, 0x500000, 2 * kMb}));
    ASSERT_TRUE(f.confirm(7, {0, 0x500000, 2 * kMb}));
    ASSERT_TRUE(f.announce(7, {1, 0x100000, 2 * kMb}));  // another container, same IOVA
    ASSERT_TRUE(f.announce(8, {0, 0x900000, kMb}));
    EXPECT_EQ(f.count(7), 3u);
    EXPECT_EQ(f.count(8), 1u);
    EXPECT_EQ(f.total(), 4u);

    const auto left = f.take(7);
    ASSERT_EQ(left.size(), 3u);
    EXPECT_EQ(left[0].range, (DmaRange{0, 0x100000, 2 * kMb}));
    EXPECT_TRUE(left[0].confirmed);
    EXPECT_EQ(left[1].range, (DmaRange{0, 0x500000, 2 * kMb}));
    EXPECT_EQ(left[2].range, (DmaRange{1, 0x100000, 2 * kMb}));
    EXPECT_FALSE(left[2].confirmed);
    EXPECT_EQ(f.count(7), 0u);
    EXPECT_TRUE(f.take(7).empty());
    EXPECT_EQ(f.total(), 1u);  // connection 8's range stays
}

TEST(ForeignDma, NoConnectionMayAnnounceOverAnothersRange) {
    ForeignDma f;
    ASSERT_TRUE(f.announce(1, {0, 0x200000, 2 * kMb}));
    // Inside, across either end, covering it: refused for connection 2 ...
    for (const DmaRange r : {DmaRange{0, 0x200000, 2 * kMb}, DmaRange{0, 0x300000, 0x1000},
                             DmaRange{0, 0x1ff000, 0x2000}, DmaRange{0, 0x3ff000, 0x2000},
                             DmaRange{0, 0x100000, 8 * kMb}}) {
        auto ok = f.announce(2, r);
        ASSERT_FALSE(ok) << r.iova;
        EXPECT_EQ(ok.error().err(), EEXIST);
        EXPECT_NE(ok.error().message().find("another secondary"), std::string::npos)
            << ok.error().message();
    }
    // ... and for connection 1 itself (a second announcement of its range).
    EXPECT_EQ(f.announce(1, {0, 0x200000, 2 * kMb}).error().err(), EEXIST);
    // Touching ends are not overlaps.
    EXPECT_TRUE(f.announce(2, {0, 0x1ff000, 0x1000}));
    EXPECT_TRUE(f.announce(2, {0, 0x400000, 0x1000}));
    EXPECT_TRUE(f.overlaps(0, 0x3fffff & ~0xfffULL, 0x1000));
    EXPECT_FALSE(f.overlaps(0, 0x401000, 0x1000));
    EXPECT_FALSE(f.overlaps(3, 0x200000, 2 * kMb));
    // Taking connection 2's ranges leaves connection 1's whole.
    EXPECT_EQ(f.take(2).size(), 2u);
    EXPECT_EQ(f.count(1), 1u);
}

TEST(ForeignDma, ConfirmNeedsTheExactAnnouncedRangeOfTheSameConnection) {
    ForeignDma f;
    ASSERT_TRUE(f.announce(1, {0, 0x200000, 2 * kMb}));
    EXPECT_EQ(f.confirm(2, {0, 0x200000, 2 * kMb}).error().err(), ENOENT);
    EXPECT_EQ(f.confirm(1, {0, 0x200000, kMb}).error().err(), ENOENT);
    EXPECT_EQ(f.confirm(1, {1, 0x200000, 2 * kMb}).error().err(), ENOENT);
    EXPECT_EQ(f.confirm(1, {0, 0x400000, 2 * kMb}).error().err(), ENOENT);
    EXPECT_TRUE(f.confirm(1, {0, 0x200000, 2 * kMb}));
}

TEST(ForeignDma, ReleaseForgetsOnlyWholeRangesOfTheCaller) {
    ForeignDma f;
    ASSERT_TRUE(f.announce(1, {0, 0x100000, kMb}));
    ASSERT_TRUE(f.announce(1, {0, 0x200000, kMb}));
    ASSERT_TRUE(f.announce(1, {0, 0x300000, kMb}));
    ASSERT_TRUE(f.announce(2, {0, 0x400000, kMb}));
    // Another connection's release of the whole span forgets none of 1's.
    EXPECT_EQ(f.release(2, {0, 0x100000, 3 * kMb}), 0u);
    // A range that cuts the third one forgets the first two only.
    EXPECT_EQ(f.release(1, {0, 0x100000, 2 * kMb + 0x1000}), 2u);
    EXPECT_EQ(f.count(1), 1u);
    // Unmapping what was never announced, or a bad range, forgets nothing.
    EXPECT_EQ(f.release(1, {0, 0x800000, kMb}), 0u);
    EXPECT_EQ(f.release(1, {0, 0x300000, 0}), 0u);
    EXPECT_EQ(f.release(1, {0, 0x300000, kMb}), 1u);
    EXPECT_EQ(f.count(1), 0u);
    EXPECT_TRUE(f.take(1).empty());
    // Connection 2's range is untouched, and the freed IOVAs can be announced again.
    EXPECT_EQ(f.count(2), 1u);
    EXPECT_TRUE(f.announce(3, {0, 0x100000, 3 * kMb}));
}

TEST(ForeignDma, RefusesEmptyAndWrappingAnnouncements) {
    ForeignDma f;
    EXPECT_EQ(f.announce(1, {0, 0x1000, 0}).error().err(), EINVAL);
    EXPECT_EQ(f.announce(1, {0, ~0ULL - 0xfff, 0x2000}).error().err(), EINVAL);
    // Ending at the last byte wraps the end to 0: refused, as Container::map does.
    EXPECT_EQ(f.announce(1, {0, ~0ULL - 0xfff, 0x1000}).error().err(), EINVAL);
    EXPECT_EQ(f.total(), 0u);
}

TEST(ForeignDma, APeerCannotRecordWithoutBound) {
    ForeignDma f;
    for (std::size_t i = 0; i < ForeignDma::kMaxPerConnection; ++i)
        ASSERT_TRUE(f.announce(1, {0, 0x1000 * (i + 1), 0x1000}));
    auto over = f.announce(1, {0, 0x1000 * (ForeignDma::kMaxPerConnection + 1), 0x1000});
    ASSERT_FALSE(over);
    EXPECT_EQ(over.error().err(), ENOSPC);
    EXPECT_TRUE(f.announce(2, {0, 0x1000 * (ForeignDma::kMaxPerConnection + 1), 0x1000}));
    EXPECT_EQ(f.take(1).size(), ForeignDma::kMaxPerConnection);
    EXPECT_TRUE(f.announce(1, {0, 0x1000, 0x1000}));
}

}  // namespace
}  // namespace vfiokit::eal::mp
