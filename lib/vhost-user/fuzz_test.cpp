// Mutation fuzzing of the session: a well-formed handshake with one
// message changed at random (a byte flipped, an fd added or taken away,
// the stream cut short). Whatever the session makes of it, it must not
// crash, and once each connection is gone nothing it received may remain:
// no fd, no mapping. The seed is fixed so a failure replays; set
// VFIOKIT_FUZZ_SEED to explore others.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <random>

#include "test_util.hpp"
#include "vfiokit/vhost_user/session.hpp"

namespace vfiokit::vhost_user {
namespace {

using namespace test;

constexpr const char* kMemName = "vhost-fuzz-test";

struct Raw {
    std::vector<std::uint8_t> bytes;  // header and payload
    int nfds = 0;                     // eventfds (or the memfd) to attach
    bool memfd = false;
};

std::vector<std::uint8_t> framed(Request r, const std::vector<std::uint8_t>& p,
                                 bool need_reply = false) {
    Header h{static_cast<std::uint32_t>(r), kVersion | (need_reply ? kFlagNeedReply : 0),
             static_cast<std::uint32_t>(p.size())};
    std::vector<std::uint8_t> b(sizeof h + p.size());
    std::memcpy(b.data(), &h, sizeof h);
    if (!p.empty())
        std::memcpy(b.data() + sizeof h, p.data(), p.size());
    return b;
}

std::vector<Raw> handshake() {
    constexpr std::uint64_t uva = 0x7f0000000000;
    const std::uint64_t f = bit(kFeatureVersion1) | bit(kFeatureProtocolFeatures);
    std::vector<Raw> m;
    m.push_back({framed(Request::get_features, {})});
    m.push_back({framed(Request::set_owner, {})});
    m.push_back({framed(Request::set_protocol_features,
                        u64_bytes(bit(ProtocolFeature::reply_ack) | bit(ProtocolFeature::mq)))});
    m.push_back({framed(Request::get_queue_num, {})});
    m.push_back({framed(Request::set_features, u64_bytes(f))});
    m.push_back({framed(Request::set_mem_table, mem_table({{0x100000, 1 << 20, uva, 0}}), true),
                 1, true});
    for (std::uint32_t q = 0; q < 2; ++q) {
        m.push_back({framed(Request::set_vring_call, u64_bytes(q)), 1});
        m.push_back({framed(Request::set_vring_num, vring_state(q, 256))});
        m.push_back({framed(Request::set_vring_base, vring_state(q, 0))});
        const std::uint64_t at = uva + q * 0x4000;
        m.push_back({framed(Request::set_vring_addr,
                            bytes_of(VringAddr{q, 0, at, at + 0x2000, at + 0x1000, 0}))});
        m.push_back({framed(Request::set_vring_kick, u64_bytes(q)), 1});
        m.push_back({framed(Request::set_vring_enable, vring_state(q, 1))});
    }
    m.push_back({framed(Request::get_vring_base, vring_state(0, 0))});
    return m;
}

TEST(SessionFuzz, MutatedHandshakesLeakNothing) {
    const char* env = std::getenv("VFIOKIT_FUZZ_SEED");
    const unsigned seed = env ? static_cast<unsigned>(std::strtoul(env, nullptr, 0)) : 20261202u;
    std::mt19937 rng(seed);
    const int fds0 = open_fds();
    int dropped = 0, survived = 0;
    for (int iter = 0; iter < 2000; ++iter) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " iteration " + std::to_string(iter));
        auto msgs = handshake();
        Raw& victim = msgs[rng() % msgs.size()];
        std::optional<std::size_t> cut;
        switch (rng() % 4) {
        case 0:
        case 1: {  // flip bits in one byte
            const std::size_t at = rng() % victim.bytes.size();
            victim.bytes[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
            break;
        }
        case 2:  // one fd more or less
            victim.nfds = victim.nfds > 0 && rng() % 2 ? victim.nfds - 1 : victim.nfds + 1;
            break;
        case 3:  // the stream ends inside this message
            cut = rng() % victim.bytes.size();
            break;
        }
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        RecordingDevice dev;
        Session s(vfio::Fd(sv[1]), dev, Config{});
        std::vector<int> mine;
        for (const Raw& r : msgs) {
            std::vector<int> fds;
            for (int i = 0; i < r.nfds; ++i) {
                int fd = r.memfd && i == 0 ? ::memfd_create(kMemName, MFD_CLOEXEC)
                                           : ::eventfd(0, EFD_CLOEXEC);
                if (r.memfd && i == 0) {
                    ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);
                }
                fds.push_back(fd);
                mine.push_back(fd);
            }
            const bool last = &r == &victim && cut;
            std::vector<std::uint8_t> b = r.bytes;
            if (last)
                b.resize(*cut);
            if (!b.empty()) {
                iovec iov{b.data(), b.size()};
                auto n = vfiokit::eal::mp::send_with_fds(sv[0], std::span<const iovec>(&iov, 1), fds);
                ASSERT_TRUE(n) << n.error().message();
                ASSERT_EQ(*n, b.size());
            }
            if (last)
                break;
        }
        // Everything is queued; the end of the stream makes any partial
        // message fail at once instead of after the stall timeout.
        ::shutdown(sv[0], SHUT_WR);
        for (int polls = 0; polls < 100 && s.connected(); ++polls)
            (void)s.poll(1000);
        ASSERT_FALSE(s.connected());
        (dev.last_why == "peer closed" ? survived : dropped)++;
        for (int fd : mine)
            ::close(fd);
        ::close(sv[0]);
        ASSERT_EQ(mappings_named(kMemName), 0);
    }
    std::printf("fuzz seed %u: %d connections dropped, %d ran to the end\n", seed, dropped,
                survived);
    EXPECT_GT(dropped, 0);
    EXPECT_EQ(open_fds(), fds0);
}

}  // namespace
}  // namespace vfiokit::vhost_user
