// Capability chains from a "kernel" that lies: every malformed shape must
// fail with EPROTO (or EAGAIN for a chain that never stops growing), never
// overrun the buffer or loop.
#include "caps.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio::detail {
namespace {

// A fixed header of 16 bytes, like vfio_region_info's first half.
struct Head {
    std::uint32_t argsz;
    std::uint32_t flags;
    std::uint32_t index;
    std::uint32_t cap_offset;
};
constexpr std::uint32_t kCaps = 1u << 3;

// The reply of a fake info ioctl: `bytes` (header and chain), written into
// the caller's buffer as the kernel would: whole when argsz allows, else
// only argsz raised (and cap_offset 0).
struct FakeInfo {
    std::vector<std::uint8_t> bytes;
    int calls = 0;
    Result<void> operator()(void* p) {
        ++calls;
        Head in;
        std::memcpy(&in, p, sizeof in);
        Head out;
        std::memcpy(&out, bytes.data(), sizeof out);
        if (in.argsz < bytes.size()) {
            out.argsz = static_cast<std::uint32_t>(bytes.size());
            out.cap_offset = 0;
            std::memcpy(p, &out, sizeof out);
        } else {
            out.argsz = in.argsz;
            std::memcpy(p, bytes.data(), bytes.size());
            std::memcpy(p, &out, sizeof out);
        }
        return {};
    }
};

// Header plus caps laid out by hand: cap(id, next, payload words).
class Chain {
public:
    Chain() : b_(sizeof(Head), 0) {
        Head h{0, kCaps, 0, 0};
        std::memcpy(b_.data(), &h, sizeof h);
    }
    // Appends a capability; returns its offset.
    std::uint32_t add(std::uint16_t id, std::uint32_t next, std::size_t payload = 8) {
        const auto off = static_cast<std::uint32_t>(b_.size());
        uapi::vfio_info_cap_header c{id, 1, next};
        b_.resize(b_.size() + sizeof c + payload, 0);
        std::memcpy(b_.data() + off, &c, sizeof c);
        return off;
    }
    void set_next(std::uint32_t at, std::uint32_t next) {
        std::memcpy(b_.data() + at + offsetof(uapi::vfio_info_cap_header, next), &next, 4);
    }
    void set_first(std::uint32_t off) { std::memcpy(b_.data() + offsetof(Head, cap_offset), &off, 4); }
    void truncate(std::size_t n) { b_.resize(n); }
    [[nodiscard]] const std::vector<std::uint8_t>& bytes() const { return b_; }

private:
    std::vector<std::uint8_t> b_;
};

struct Walked {
    Result<void> result;
    std::vector<std::uint16_t> ids;
};

Walked walk(const Chain& c) {
    FakeInfo k{c.bytes()};
    auto buf = read_info(sizeof(Head), kCaps, std::ref(k), "TEST_INFO");
    EXPECT_TRUE(buf) << buf.error().message();
    if (!buf)
        return {fail(std::move(buf.error())), {}};
    Head h;
    EXPECT_TRUE(buf->read(0, h));
    Walked w{{}, {}};
    w.result = walk_caps(
        *buf, sizeof h, h.cap_offset,
        [&](const Cap& cap) -> Result<void> {
            w.ids.push_back(cap.id);
            return {};
        },
        "TEST_INFO");
    return w;
}

TEST(Caps, GrowsOnceToWhatTheKernelAsksAndWalksInOrder) {
    Chain c;
    const auto a = c.add(7, 0);
    const auto b = c.add(9, 0);
    c.set_next(a, b);
    c.set_first(a);
    FakeInfo k{c.bytes()};
    auto buf = read_info(sizeof(Head), kCaps, std::ref(k), "TEST_INFO");
    ASSERT_TRUE(buf) << buf.error().message();
    EXPECT_EQ(k.calls, 2);
    EXPECT_EQ(buf->size(), c.bytes().size());
    auto w = walk(c);
    ASSERT_TRUE(w.result) << w.result.error().message();
    EXPECT_EQ(w.ids, (std::vector<std::uint16_t>{7, 9}));
}

TEST(Caps, NoChainMeansOneCallAndNoVisit) {
    Chain c;
    FakeInfo k{c.bytes()};
    auto buf = read_info(sizeof(Head), kCaps, std::ref(k), "TEST_INFO");
    ASSERT_TRUE(buf);
    EXPECT_EQ(k.calls, 1);
    auto w = walk(c);
    ASSERT_TRUE(w.result);
    EXPECT_TRUE(w.ids.empty());
}

TEST(Caps, WithoutTheCapsFlagOnlyTheHeaderIsRead) {
    Chain c;
    c.set_first(c.add(7, 0));
    FakeInfo k{c.bytes()};
    auto buf = read_info(sizeof(Head), 0, std::ref(k), "TEST_INFO");
    ASSERT_TRUE(buf);
    EXPECT_EQ(k.calls, 1);
    EXPECT_EQ(buf->size(), sizeof(Head));
}

TEST(Caps, AChainThatKeepsGrowingGivesEagain) {
    int calls = 0;
    auto grows = [&](void* p) -> Result<void> {
        ++calls;
        Head h;
        std::memcpy(&h, p, sizeof h);
        h.flags = kCaps;
        h.argsz += 8;  // always a little more than given
        std::memcpy(p, &h, sizeof h);
        return {};
    };
    auto buf = read_info(sizeof(Head), kCaps, grows, "TEST_INFO");
    ASSERT_FALSE(buf);
    EXPECT_EQ(buf.error().err(), EAGAIN);
    EXPECT_EQ(calls, 4);
}

TEST(Caps, AnArgszBeyondAnyChainIsRefusedBeforeAllocating) {
    for (std::uint32_t huge : {kMaxInfoSize + 1, 0xffffffffu}) {
        int calls = 0;
        auto lies = [&](void* p) -> Result<void> {
            ++calls;
            Head h{huge, kCaps, 0, 0};
            std::memcpy(p, &h, sizeof h);
            return {};
        };
        auto buf = read_info(sizeof(Head), kCaps, lies, "TEST_INFO");
        ASSERT_FALSE(buf);
        EXPECT_EQ(buf.error().err(), EPROTO);
        EXPECT_EQ(calls, 1);
    }
}

TEST(Caps, TheIoctlsErrorIsPassedOn) {
    auto err = [](void*) -> Result<void> { return fail(ENOTTY, "ioctl TEST_INFO"); };
    auto buf = read_info(sizeof(Head), kCaps, err, "TEST_INFO");
    ASSERT_FALSE(buf);
    EXPECT_EQ(buf.error().err(), ENOTTY);
}

void expect_malformed(const Chain& c, const char* why) {
    SCOPED_TRACE(why);
    auto w = walk(c);
    ASSERT_FALSE(w.result);
    EXPECT_EQ(w.result.error().err(), EPROTO);
    EXPECT_NE(w.result.error().message().find("malformed capability chain"), std::string::npos);
}

TEST(Caps, MalformedChainsFailWithEproto) {
    {
        Chain c;
        c.add(7, 0);
        c.set_first(4);  // inside the fixed header
        expect_malformed(c, "first capability inside the header");
    }
    {
        Chain c;
        c.add(7, 0);
        c.set_first(4096);  // past the end
        expect_malformed(c, "first capability past the buffer");
    }
    {
        Chain c;
        const auto a = c.add(7, 0, 0);
        c.set_first(a);
        c.truncate(a + 4);  // header cut in half (argsz follows the size)
        expect_malformed(c, "capability header straddles the end");
    }
    {
        Chain c;
        const auto a = c.add(7, 0);
        c.set_next(a, a);
        c.set_first(a);
        expect_malformed(c, "capability pointing at itself");
    }
    {
        Chain c;
        const auto a = c.add(7, 0);
        const auto b = c.add(9, a);  // back to the first: a loop
        c.set_next(a, b);
        c.set_first(a);
        expect_malformed(c, "loop of two");
    }
    {
        Chain c;
        const auto a = c.add(7, 0);
        c.set_next(a, 0xfffffff0u);  // next far outside
        c.set_first(a);
        expect_malformed(c, "next past the buffer");
    }
}

TEST(Caps, AVisitorsErrorStopsTheWalk) {
    Chain c;
    const auto a = c.add(7, 0);
    const auto b = c.add(9, 0);
    c.set_next(a, b);
    c.set_first(a);
    FakeInfo k{c.bytes()};
    auto buf = read_info(sizeof(Head), kCaps, std::ref(k), "TEST_INFO");
    ASSERT_TRUE(buf);
    int seen = 0;
    auto r = walk_caps(
        *buf, sizeof(Head), a,
        [&](const Cap&) -> Result<void> {
            ++seen;
            return fail(malformed("TEST_INFO"));
        },
        "TEST_INFO");
    ASSERT_FALSE(r);
    EXPECT_EQ(seen, 1);
}

TEST(Caps, FitsNeverOverflows) {
    InfoBuffer b(64);
    EXPECT_TRUE(b.fits(0, 64));
    EXPECT_TRUE(b.fits(64, 0));
    EXPECT_FALSE(b.fits(60, 8));
    EXPECT_FALSE(b.fits(65, 0));
    EXPECT_FALSE(b.fits(8, ~std::size_t{0}));
    EXPECT_FALSE(b.fits(~std::size_t{0}, 2));
    std::uint64_t v;
    EXPECT_FALSE(b.read(60, v));
    EXPECT_TRUE(b.read(56, v));
}

}  // namespace
}  // namespace vfiokit::vfio::detail
