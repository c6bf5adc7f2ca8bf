// The handover's messages (handover_codec.hpp): round trips, and every
// malformed form the decoder must refuse, including every single-bit flip
// of a good OFFER. The protocol itself runs on the real kernel in the lab
// (tests/lab/vfio/handover_test.cpp).
#include "handover_codec.hpp"

#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cerrno>

#include "fake_backend.hpp"
#include "fake_sysfs.hpp"
#include "vfiokit/eal/vfio/handover.hpp"

namespace vfiokit::vfio::handover {
namespace {

Offer sample() {
    Offer o;
    o.regions = {{0x5a0000000000, 0x400000, 0}, {0x5a0000800000, 0x200000, 0x200000}};
    o.state = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    o.state_fds = 3;
    o.sender = 1234;
    return o;
}

TEST(HandoverCodec, OfferRoundTrip) {
    const Offer o = sample();
    const auto b = encode_offer(o);
    auto d = decode_offer(b, 5);
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->state_fds, 3u);
    EXPECT_EQ(d->sender, 1234u);
    EXPECT_EQ(d->state, o.state);
    ASSERT_EQ(d->regions.size(), 2u);
    EXPECT_EQ(d->regions[1].va, 0x5a0000800000u);
    EXPECT_EQ(d->regions[1].len, 0x200000u);
    EXPECT_EQ(d->regions[1].offset, 0x200000u);
}

TEST(HandoverCodec, NoteRoundTrip) {
    auto d = decode_note(encode_note({Kind::refused, "RLIMIT_MEMLOCK"}), 0);
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->kind, Kind::refused);
    EXPECT_EQ(d->text, "RLIMIT_MEMLOCK");
    EXPECT_FALSE(decode_note(encode_note({Kind::ready, ""}), 1)) << "a note carries no fd";
    EXPECT_FALSE(decode_offer(encode_note({Kind::ready, ""}), 0)) << "a note is not an offer";
    EXPECT_FALSE(decode_note(encode_offer(sample()), 5)) << "an offer is not a note";
}

void expect_refused(const Offer& o, std::size_t fds, const char* what) {
    auto d = decode_offer(encode_offer(o), fds);
    ASSERT_FALSE(d) << what;
    EXPECT_EQ(d.error().err(), EPROTO) << what;
}

TEST(HandoverCodec, RefusesBadOffers) {
    expect_refused(sample(), 4, "one fd fewer than the header says");
    Offer o = sample();
    o.regions[0].len = 0;
    expect_refused(o, 5, "empty region");
    o = sample();
    o.regions[0].va += 1;
    expect_refused(o, 5, "unaligned address");
    o = sample();
    o.regions[1].offset = 0x1000 + 1;
    expect_refused(o, 5, "unaligned offset");
    o = sample();
    o.regions[1].va = o.regions[0].va + 0x1000;
    expect_refused(o, 5, "overlapping regions");
    o = sample();
    o.regions[0].va = ~0ULL - 0xfff;
    expect_refused(o, 5, "wrapping region");

    auto b = encode_offer(sample());
    for (std::size_t n = 0; n < b.size(); ++n)
        EXPECT_FALSE(decode_offer(std::span(b.data(), n), 5)) << "truncated to " << n;
    b.push_back(0);
    EXPECT_FALSE(decode_offer(b, 5)) << "trailing byte";
}

// Every bit of a good OFFER flipped: refused with EPROTO, or decoded into
// something still within the rules (a flipped state byte or address bit
// that keeps alignment); never a crash or an out-of-bounds read.
TEST(HandoverCodec, EveryBitFlip) {
    const auto good = encode_offer(sample());
    std::size_t refused = 0;
    for (std::size_t i = 0; i < good.size() * 8; ++i) {
        auto b = good;
        b[i / 8] ^= static_cast<std::uint8_t>(1u << (i % 8));
        auto d = decode_offer(b, 5);
        if (!d) {
            EXPECT_EQ(d.error().err(), EPROTO);
            ++refused;
            continue;
        }
        for (const auto& r : d->regions) {
            EXPECT_NE(r.len, 0u);
            EXPECT_EQ((r.va | r.len | r.offset) % 4096, 0u);
        }
    }
    EXPECT_GT(refused, good.size());
}

}  // namespace
}  // namespace vfiokit::vfio::handover

// The refusals that come before anything is sent, on a fake backend.
namespace vfiokit::vfio {
namespace {

using fake::FakeBackend;
using fake::FakeIommu;

constexpr std::uint64_t kVa = 0x7f0000000000ULL;

std::unique_ptr<Vfio> make_fake(Mode m, const std::shared_ptr<FakeIommu>& k, testing::FakeSysfs& fs) {
    k->group_style = m != Mode::cdev;  // cdev: maps go to the fake kernel at once
    return VfioTesting::make(fs.root(), m, std::make_unique<FakeBackend>(k, m));
}

TEST(Handover, RefusedOutsideCdevNamingWhatItNeeds) {
    testing::FakeSysfs fs;
    auto k = std::make_shared<FakeIommu>();
    auto v = make_fake(Mode::group, k, fs);
    auto r = can_hand_over(*v);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENOTSUP);
    EXPECT_NE(r.error().message().find("cdev"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("6.13"), std::string::npos) << r.error().message();
}

TEST(Handover, RefusesAMappingByAddressAndSendsNothing) {
    testing::FakeSysfs fs;
    auto k = std::make_shared<FakeIommu>();
    auto v = make_fake(Mode::cdev, k, fs);
    // The fake has no map by file: map_file falls back to an address.
    ASSERT_TRUE(v->default_container().map_file(kVa, 0, 0, 1 << 20, 64 << 10));
    EXPECT_FALSE(v->default_container().mappings().front().by_file);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    Fd a(sv[0]), b(sv[1]);
    bool quiesced = false;
    const FileRegion region{kVa, 64 << 10, 0, 0};
    auto r = hand_over(*v, a.get(), std::span(&region, 1), [&] { quiesced = true; });
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENOTSUP);
    EXPECT_NE(r.error().message().find("by address"), std::string::npos) << r.error().message();
    EXPECT_FALSE(quiesced);
    char byte;
    EXPECT_EQ(::recv(b.get(), &byte, 1, MSG_DONTWAIT), -1) << "nothing sent";
}

TEST(Handover, NeedsASeqpacketSocket) {
    testing::FakeSysfs fs;
    auto k = std::make_shared<FakeIommu>();
    auto v = make_fake(Mode::cdev, k, fs);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    Fd a(sv[0]), b(sv[1]);
    auto r = hand_over(*v, a.get(), {}, {});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), EINVAL);
    auto t = take_over(b.get(), std::chrono::milliseconds(10));
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().err(), EINVAL) << t.error().message();
}

}  // namespace
}  // namespace vfiokit::vfio
