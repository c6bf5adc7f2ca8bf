// The session over a socketpair: a well-formed handshake reaches the
// Device with translated rings, and every malformed message drops the
// connection leaving no fd and no mapping behind (/proc/self/fd and
// /proc/self/maps prove it).
#include "vfiokit/vhost_user/session.hpp"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>

#include "test_util.hpp"

namespace vfiokit::vhost_user {
namespace {

using namespace test;

constexpr const char* kMemName = "vhost-session-test";
constexpr std::uint64_t kRegionSize = 1 << 20;
constexpr std::uint64_t kGpa = 0x100000;
constexpr std::uint64_t kUva = 0x7f0000000000;
constexpr std::uint32_t kNum = 256;
constexpr std::uint64_t kFeatures = bit(kFeatureVersion1) | bit(kFeatureProtocolFeatures);

class SessionTest : public ::testing::Test {
protected:
    void SetUp() override {
        fds0_ = open_fds();
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        client_ = sv[0];
        session_ = std::make_unique<Session>(vfio::Fd(sv[1]), dev_, Config{});
    }
    void TearDown() override {
        session_.reset();
        for (int fd : mine_)
            ::close(fd);
        ::close(client_);
        // Everything the session received went with it.
        EXPECT_EQ(open_fds(), fds0_);
        EXPECT_EQ(mappings_named(kMemName), 0);
    }

    int memfd(std::uint64_t size = kRegionSize) {
        int fd = ::memfd_create(kMemName, MFD_CLOEXEC);
        EXPECT_GE(fd, 0);
        EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
        mine_.push_back(fd);
        return fd;
    }
    int eventfd() {
        int fd = ::eventfd(0, EFD_CLOEXEC);
        mine_.push_back(fd);
        return fd;
    }
    // Serves one message; true if the session is still up.
    bool serve() {
        auto r = session_->poll(2000);
        if (!r) {
            why_ = r.error().message();
            return false;
        }
        return *r;
    }
    std::optional<Reply> ask(Request r, const std::vector<std::uint8_t>& p = {}) {
        EXPECT_TRUE(send_msg(client_, r, p));
        EXPECT_TRUE(serve()) << why_;
        return read_reply(client_);
    }
    void negotiate() {
        auto f = ask(Request::get_features);
        ASSERT_TRUE(f);
        ASSERT_EQ(f->u64() & kFeatures, kFeatures);
        const std::uint64_t proto = bit(ProtocolFeature::reply_ack) | bit(ProtocolFeature::mq);
        ASSERT_TRUE(send_msg(client_, Request::set_protocol_features, u64_bytes(proto)));
        ASSERT_TRUE(serve()) << why_;
        ASSERT_TRUE(send_msg(client_, Request::set_features, u64_bytes(kFeatures)));
        ASSERT_TRUE(serve()) << why_;
    }
    MemoryRegionDesc region(std::uint64_t gpa = kGpa, std::uint64_t uva = kUva,
                            std::uint64_t size = kRegionSize, std::uint64_t off = 0) {
        return MemoryRegionDesc{gpa, size, uva, off};
    }
    void set_table() {
        ASSERT_TRUE(send_msg(client_, Request::set_mem_table, mem_table({region()}), {memfd()}));
        ASSERT_TRUE(serve()) << why_;
        ASSERT_EQ(mappings_named(kMemName), 1);
    }
    void set_ring(unsigned index, std::uint64_t at = kUva) {
        ASSERT_TRUE(send_msg(client_, Request::set_vring_num, vring_state(index, kNum)));
        ASSERT_TRUE(serve()) << why_;
        VringAddr a{index, 0, at, at + 0x2000, at + 0x1000, 0};
        ASSERT_TRUE(send_msg(client_, Request::set_vring_addr, bytes_of(a)));
        ASSERT_TRUE(serve()) << why_;
    }
    // The bad message just sent must end the session, and the session must
    // have let go of everything.
    void expect_dropped(const std::string& reason_part) {
        EXPECT_FALSE(serve());
        EXPECT_FALSE(session_->connected());
        EXPECT_NE(why_.find(reason_part), std::string::npos) << why_;
        EXPECT_EQ(dev_.disconnects, 1);
        EXPECT_EQ(mappings_named(kMemName), 0);
        // The session's socket is closed: the front end sees EOF, or a
        // reset when the session left bytes of the bad message unread.
        char c;
        const ssize_t n = ::recv(client_, &c, 1, MSG_DONTWAIT);
        EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << n << " " << errno;
    }

    RecordingDevice dev_;
    std::unique_ptr<Session> session_;
    int client_ = -1;
    int fds0_ = 0;
    std::vector<int> mine_;
    std::string why_;
};

TEST_F(SessionTest, HandshakeReachesDeviceWithTranslatedRings) {
    auto f = ask(Request::get_features);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->hdr.flags, kVersion | kFlagReply);
    EXPECT_EQ(f->u64(), kFeatures);
    ASSERT_TRUE(send_msg(client_, Request::set_owner));
    ASSERT_TRUE(serve());
    auto p = ask(Request::get_protocol_features);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->u64(), bit(ProtocolFeature::reply_ack) | bit(ProtocolFeature::mq));
    ASSERT_TRUE(send_msg(client_, Request::set_protocol_features, u64_bytes(p->u64())));
    ASSERT_TRUE(serve());
    auto q = ask(Request::get_queue_num);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->u64(), 1u);
    ASSERT_TRUE(send_msg(client_, Request::set_features, u64_bytes(kFeatures)));
    ASSERT_TRUE(serve());
    EXPECT_EQ(dev_.features, kFeatures);

    // need_reply with REPLY_ACK negotiated: a zero u64 says success.
    const int mfd = memfd();
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table, mem_table({region()}), {mfd}, true));
    ASSERT_TRUE(serve()) << why_;
    auto ack = read_reply(client_);
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->hdr.request, static_cast<std::uint32_t>(Request::set_mem_table));
    EXPECT_EQ(ack->u64(), 0u);
    EXPECT_EQ(mappings_named(kMemName), 1);
    ASSERT_EQ(dev_.regions.size(), 1u);
    EXPECT_EQ(dev_.regions[0].gpa, kGpa);
    EXPECT_EQ(dev_.regions[0].uva, kUva);

    ASSERT_TRUE(send_msg(client_, Request::set_vring_call, u64_bytes(0), {eventfd()}));
    ASSERT_TRUE(serve());
    set_ring(0);
    ASSERT_TRUE(send_msg(client_, Request::set_vring_base, vring_state(0, 5)));
    ASSERT_TRUE(serve());
    ASSERT_TRUE(send_msg(client_, Request::set_vring_kick, u64_bytes(0), {eventfd()}));
    ASSERT_TRUE(serve());
    // With protocol features negotiated the ring waits for its enable.
    EXPECT_TRUE(dev_.ready.empty());
    ASSERT_TRUE(send_msg(client_, Request::set_vring_enable, vring_state(0, 1)));
    ASSERT_TRUE(serve());
    ASSERT_EQ(dev_.ready.size(), 1u);
    const VringInfo& v = dev_.ready[0];
    EXPECT_EQ(v.num, kNum);
    EXPECT_EQ(v.base, 5);
    EXPECT_EQ(v.desc.gpa, kGpa);
    EXPECT_EQ(v.avail.gpa, kGpa + 0x1000);
    EXPECT_EQ(v.used.gpa, kGpa + 0x2000);
    EXPECT_GE(v.kick_fd, 0);
    EXPECT_GE(v.call_fd, 0);
    // The host address reaches the front end's memory: write through the
    // front end's own mapping, read through the ring's.
    void* fe = ::mmap(nullptr, kRegionSize, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    ASSERT_NE(fe, MAP_FAILED);
    static_cast<volatile std::uint16_t*>(fe)[0x1000 / 2 + 1] = 0x1234;  // avail->idx
    EXPECT_EQ(static_cast<volatile std::uint16_t*>(v.avail.hva)[1], 0x1234);
    ::munmap(fe, kRegionSize);

    // GET_VRING_BASE stops the ring and returns the device's index.
    dev_.stop_index = 77;
    auto b = ask(Request::get_vring_base, vring_state(0, 0));
    ASSERT_TRUE(b);
    ASSERT_EQ(b->payload.size(), sizeof(VringState));
    VringState st;
    std::memcpy(&st, b->payload.data(), sizeof st);
    EXPECT_EQ(st.index, 0u);
    EXPECT_EQ(st.num, 77u);
    EXPECT_EQ(dev_.events.back(), "stopped 0 get-vring-base");
    EXPECT_FALSE(session_->vring(0));

    // A new table replaces the old one: still one mapping.
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table, mem_table({region()}), {memfd()}));
    ASSERT_TRUE(serve()) << why_;
    EXPECT_EQ(mappings_named(kMemName), 1);

    // The front end leaves: everything released, the device told.
    ::shutdown(client_, SHUT_RDWR);
    EXPECT_FALSE(serve());
    EXPECT_TRUE(why_.empty()) << why_;
    EXPECT_EQ(dev_.events.back(), "disconnected");
    EXPECT_EQ(mappings_named(kMemName), 0);
}

TEST_F(SessionTest, RingStartsEnabledWithoutProtocolFeatures) {
    ASSERT_TRUE(send_msg(client_, Request::set_features, u64_bytes(bit(kFeatureVersion1))));
    ASSERT_TRUE(serve());
    set_table();
    set_ring(1);
    ASSERT_TRUE(send_msg(client_, Request::set_vring_call, u64_bytes(1 | kVringNoFd)));
    ASSERT_TRUE(serve());
    ASSERT_TRUE(send_msg(client_, Request::set_vring_kick, u64_bytes(1), {eventfd()}));
    ASSERT_TRUE(serve());
    ASSERT_EQ(dev_.ready.size(), 1u);
    EXPECT_EQ(dev_.ready[0].index, 1u);
    EXPECT_EQ(dev_.ready[0].call_fd, -1);
    // A new call fd for a running ring: stop, then ready again with it.
    ASSERT_TRUE(send_msg(client_, Request::set_vring_call, u64_bytes(1), {eventfd()}));
    ASSERT_TRUE(serve());
    ASSERT_EQ(dev_.ready.size(), 2u);
    EXPECT_GE(dev_.ready[1].call_fd, 0);
    session_->close("test over");
    EXPECT_EQ(dev_.events[dev_.events.size() - 2], "stopped 1 disconnect");
}

TEST_F(SessionTest, UnknownRequestWithNeedReplyIsRefusedAndSkipped) {
    negotiate();
    ASSERT_TRUE(send_raw(client_, 99, kVersion | kFlagNeedReply, u64_bytes(0), {eventfd()}));
    ASSERT_TRUE(serve()) << why_;
    auto r = read_reply(client_);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->hdr.request, 99u);
    EXPECT_NE(r->u64(), 0u);
    EXPECT_TRUE(session_->connected());
}

TEST_F(SessionTest, UnknownRequestWithoutNeedReplyDrops) {
    negotiate();
    ASSERT_TRUE(send_raw(client_, 99, kVersion, u64_bytes(0), {eventfd()}));
    expect_dropped("not served");
}

TEST_F(SessionTest, FailedRequestWithNeedReplyGetsFailureThenDrop) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_vring_num, vring_state(9, kNum), {}, true));
    EXPECT_FALSE(serve());
    auto r = read_reply(client_);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->u64(), 1u);
    expect_dropped("out of range");
}

// --- truncation and header faults ---

TEST_F(SessionTest, TruncatedHeaderThenCloseDrops) {
    ASSERT_TRUE(send_raw(client_, 1, kVersion, {}, {}, {}, 6));
    ::shutdown(client_, SHUT_WR);
    expect_dropped("truncated header: 6 of 12");
}

TEST_F(SessionTest, TruncatedHeaderThenSilenceDrops) {
    ASSERT_TRUE(send_raw(client_, 1, kVersion, {}, {}, {}, 6));
    expect_dropped("then nothing for");
}

TEST_F(SessionTest, TruncatedPayloadDrops) {
    negotiate();
    set_table();
    ASSERT_TRUE(send_raw(client_, static_cast<std::uint32_t>(Request::set_features), kVersion,
                         u64_bytes(kFeatures), {}, {}, sizeof(Header) + 4));
    ::shutdown(client_, SHUT_WR);
    expect_dropped("truncated payload: 4 of 8");
}

TEST_F(SessionTest, WrongPayloadSizeDrops) {
    ASSERT_TRUE(send_raw(client_, static_cast<std::uint32_t>(Request::set_vring_num), kVersion,
                         {1, 2, 3, 4}));
    expect_dropped("payload of 4 bytes, it takes 8");
}

TEST_F(SessionTest, HugeDeclaredPayloadDrops) {
    ASSERT_TRUE(send_raw(client_, static_cast<std::uint32_t>(Request::set_features), kVersion,
                         u64_bytes(0), {}, 1u << 20));
    expect_dropped("declared");
}

TEST_F(SessionTest, BadVersionDrops) {
    ASSERT_TRUE(send_raw(client_, 1, 2, {}));
    expect_dropped("version 2");
}

TEST_F(SessionTest, ReplyFlagOnRequestDrops) {
    ASSERT_TRUE(send_raw(client_, 1, kVersion | kFlagReply, {}));
    expect_dropped("reply flag");
}

// --- fd counts ---

TEST_F(SessionTest, KickWithoutFdDrops) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_vring_kick, u64_bytes(0)));
    expect_dropped("0 fd(s) received");
}

TEST_F(SessionTest, KickWithTwoFdsDrops) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_vring_kick, u64_bytes(0), {eventfd(), eventfd()}));
    expect_dropped("2 fd(s) received");
}

TEST_F(SessionTest, KickWithNoFdFlagAndAnFdDrops) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_vring_kick, u64_bytes(kVringNoFd), {eventfd()}));
    expect_dropped("no-fd flag");
}

TEST_F(SessionTest, FdOnMessageThatTakesNoneDrops) {
    ASSERT_TRUE(send_msg(client_, Request::set_features, u64_bytes(kFeatures), {eventfd()}));
    expect_dropped("it takes none");
}

TEST_F(SessionTest, MemTableMissingFdsDrops) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table,
                         mem_table({region(), region(kGpa + kRegionSize, kUva + kRegionSize)}),
                         {memfd()}));
    expect_dropped("1 fd(s) received");
}

TEST_F(SessionTest, MemTableWithoutFdsDrops) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table, mem_table({region()})));
    expect_dropped("0 fd(s) received");
}

TEST_F(SessionTest, MoreFdsThanAnyMessageTakesDrops) {
    negotiate();
    std::vector<int> fds;
    for (int i = 0; i < 9; ++i)
        fds.push_back(eventfd());
    ASSERT_TRUE(send_msg(client_, Request::set_vring_kick, u64_bytes(0), fds));
    expect_dropped("more than 8 fds");
}

// --- memory table contents ---

TEST_F(SessionTest, TooManyRegionsDrops) {
    negotiate();
    std::vector<MemoryRegionDesc> r;
    for (std::uint64_t i = 0; i < 9; ++i)
        r.push_back(region(kGpa + i * kRegionSize, kUva + i * kRegionSize));
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table, mem_table(r), {memfd()}));
    expect_dropped("9 regions, at most 8");
}

TEST_F(SessionTest, RegionsOverlappingInGuestAddressesDrop) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table,
                         mem_table({region(), region(kGpa + kRegionSize / 2, kUva + kRegionSize)}),
                         {memfd(), memfd()}));
    expect_dropped("guest");
}

TEST_F(SessionTest, RegionsOverlappingInUserAddressesDrop) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table,
                         mem_table({region(), region(kGpa + kRegionSize, kUva + 4096)}),
                         {memfd(), memfd()}));
    expect_dropped("user");
}

TEST_F(SessionTest, RegionWrappingGuestAddressesDrops) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table,
                         mem_table({region(~std::uint64_t{0} - 4095)}), {memfd()}));
    expect_dropped("wrap past 2^64");
}

TEST_F(SessionTest, RegionWrappingUserAddressesDrops) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table,
                         mem_table({region(kGpa, ~std::uint64_t{0} - 4095)}), {memfd()}));
    expect_dropped("wrap past 2^64");
}

TEST_F(SessionTest, RegionLargerThanItsFileDrops) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table,
                         mem_table({region(kGpa, kUva, kRegionSize, 4096)}), {memfd()}));
    expect_dropped("the file has");
}

TEST_F(SessionTest, RegionFdNotAFileDrops) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table, mem_table({region()}), {eventfd()}));
    expect_dropped("not a regular file");
}

TEST_F(SessionTest, BadSecondRegionUnmapsTheFirst) {
    negotiate();
    set_table();
    // Region 0 maps; region 1's file is too short: nothing stays mapped,
    // including the table that was in place before.
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table,
                         mem_table({region(), region(kGpa + kRegionSize, kUva + kRegionSize)}),
                         {memfd(), memfd(4096)}));
    expect_dropped("region 1");
}

// --- rings ---

TEST_F(SessionTest, RingOutsideEveryRegionDrops) {
    negotiate();
    set_table();
    ASSERT_TRUE(send_msg(client_, Request::set_vring_num, vring_state(0, kNum)));
    ASSERT_TRUE(serve());
    VringAddr a{0, 0, kUva + 4 * kRegionSize, kUva + 0x2000, kUva + 0x1000, 0};
    ASSERT_TRUE(send_msg(client_, Request::set_vring_addr, bytes_of(a)));
    expect_dropped("descriptor table");
}

TEST_F(SessionTest, RingNotFittingItsRegionDrops) {
    negotiate();
    set_table();
    ASSERT_TRUE(send_msg(client_, Request::set_vring_num, vring_state(0, kNum)));
    ASSERT_TRUE(serve());
    // The used ring starts inside the region and runs past its end.
    VringAddr a{0, 0, kUva, kUva + kRegionSize - 1024, kUva + 0x1000, 0};
    ASSERT_TRUE(send_msg(client_, Request::set_vring_addr, bytes_of(a)));
    expect_dropped("used ring");
}

TEST_F(SessionTest, NewTableWithoutThePlacedRingDrops) {
    negotiate();
    set_table();
    set_ring(0);
    ASSERT_TRUE(send_msg(client_, Request::set_mem_table,
                         mem_table({region(kGpa, kUva + 8 * kRegionSize)}), {memfd()}));
    expect_dropped("new table");
}

TEST_F(SessionTest, VringIndexOutOfRangeDrops) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_vring_num, vring_state(2, kNum)));
    expect_dropped("vring 2 out of range");
}

TEST_F(SessionTest, KickIndexOutOfRangeDrops) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_vring_kick, u64_bytes(5), {eventfd()}));
    expect_dropped("vring 5 out of range");
}

TEST_F(SessionTest, RingSizeNotPowerOfTwoDrops) {
    negotiate();
    ASSERT_TRUE(send_msg(client_, Request::set_vring_num, vring_state(0, 100)));
    expect_dropped("power of two");
}

TEST_F(SessionTest, UnofferedFeatureDrops) {
    ASSERT_TRUE(send_msg(client_, Request::set_features, u64_bytes(bit(kFeatureIommuPlatform))));
    expect_dropped("never offered");
}

TEST_F(SessionTest, DropWhileRingsRunStopsThemAndUnmaps) {
    negotiate();
    set_table();
    set_ring(0);
    ASSERT_TRUE(send_msg(client_, Request::set_vring_call, u64_bytes(0), {eventfd()}));
    ASSERT_TRUE(serve());
    ASSERT_TRUE(send_msg(client_, Request::set_vring_kick, u64_bytes(0), {eventfd()}));
    ASSERT_TRUE(serve());
    ASSERT_TRUE(send_msg(client_, Request::set_vring_enable, vring_state(0, 1)));
    ASSERT_TRUE(serve());
    ASSERT_TRUE(session_->vring(0));
    ASSERT_TRUE(send_msg(client_, Request::set_vring_enable, vring_state(0, 7)));
    expect_dropped("neither 0 nor 1");
    EXPECT_EQ(dev_.events[dev_.events.size() - 2], "stopped 0 disconnect");
}

}  // namespace
}  // namespace vfiokit::vhost_user
