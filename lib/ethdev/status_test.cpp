// Reading a primary's ports from another process (status.hpp) against a
// channel whose "primary" sends what the test says: good records, every
// malformed shape, and each byte of a good record flipped. The reader
// believes only what checks, and never reads past what it got. The real
// primary answers in the lab (vfiokit-procinfo in net-peers-iommu).
#include "vfiokit/ethdev/status.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "vfiokit/eal/mp.hpp"
#include "wire.hpp"

namespace vfiokit::ethdev {
namespace {

using namespace detail::wire;
using eal::mp::Client;
using eal::mp::Peer;
using eal::mp::Reply;
using eal::mp::Request;
using eal::mp::Server;

WireStatus good(std::uint16_t id) {
    WireStatus w;
    std::memset(&w, 0, sizeof w);
    w.magic = kStatusMagic;
    w.version = kStatusVersion;
    w.id = id;
    w.state = 2;  // started
    w.nb_rxq = w.nb_txq = 1;
    w.mtu = 1500;
    w.dev.max_rx_queues = w.dev.max_tx_queues = 1;
    w.dev.rx_desc = {32, 4096, 8};
    w.has_link = 1;
    w.link = {1, 1, 1, 0, 1000};
    std::memcpy(w.dev.mac, "\x52\x54\x00\x12\x34\x59", 6);
    std::strcpy(w.dev.driver_name, "net_e1000_em");
    std::strcpy(w.dev.device_name, "0000:00:08.0");
    return w;
}

class RemotePorts : public ::testing::Test {
protected:
    void SetUp() override {
        auto s = Server::create();
        ASSERT_TRUE(s);
        server_ = std::move(*s);
        server_->set_logger([](std::string_view) {});
        server_->handle(std::string(kPortsRequest), [this](const Request&, const Peer&)
                                                        -> Result<Reply> {
            std::lock_guard g(mu_);
            Reply r;
            r.payload = payload_;
            return r;
        });
        server_->handle(std::string(kStatsRequest), [this](const Request&, const Peer&)
                                                        -> Result<Reply> {
            std::lock_guard g(mu_);
            Reply r;
            r.payload = payload_;
            return r;
        });
        server_->handle(std::string(kXstatsRequest), [this](const Request&, const Peer&)
                                                         -> Result<Reply> {
            std::lock_guard g(mu_);
            Reply r;
            r.payload = payload_;
            return r;
        });
        ASSERT_TRUE(server_->start());
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        ASSERT_TRUE(server_->add_connection(vfio::Fd(sv[0])));
        auto c = Client::adopt(vfio::Fd(sv[1]), "test");
        ASSERT_TRUE(c);
        client_ = std::move(*c);
    }
    void TearDown() override { server_->stop(); }
    void answer(std::string p) {
        std::lock_guard g(mu_);
        payload_ = std::move(p);
    }
    std::mutex mu_;
    std::string payload_;
    std::unique_ptr<Server> server_;
    std::unique_ptr<Client> client_;
};

TEST_F(RemotePorts, GoodRecordsDecode) {
    answer(bytes_of(good(0)) + bytes_of(good(3)));
    auto ps = remote_ports(*client_);
    ASSERT_TRUE(ps) << ps.error().message();
    ASSERT_EQ(ps->size(), 2u);
    const PortStatus& p = (*ps)[1];
    EXPECT_EQ(p.id, 3);
    EXPECT_EQ(p.state, "started");
    EXPECT_TRUE(p.started && p.configured);
    EXPECT_EQ(p.info.device_name, "0000:00:08.0");
    EXPECT_EQ(p.info.driver_name, "net_e1000_em");
    EXPECT_EQ(p.mac.str(), "52:54:00:12:34:59");
    ASSERT_TRUE(p.link);
    EXPECT_TRUE(p.link->up && p.link->full_duplex);
    EXPECT_EQ(p.link->speed_mbps, 1000u);
    answer("");
    ps = remote_ports(*client_);
    ASSERT_TRUE(ps);
    EXPECT_TRUE(ps->empty());
}

TEST_F(RemotePorts, MalformedRepliesAreRefused) {
    std::vector<std::pair<std::string, std::string>> bad;
    bad.emplace_back("a record cut short", bytes_of(good(0)).substr(1));
    std::string many;
    for (int i = 0; i <= kMaxPorts; ++i)
        many += bytes_of(good(0));
    bad.emplace_back("more records than ports", many);
    auto with = [](auto change) {
        WireStatus w = good(1);
        change(w);
        return bytes_of(w);
    };
    bad.emplace_back("bad mark", with([](WireStatus& w) { w.magic ^= 1; }));
    bad.emplace_back("other version", with([](WireStatus& w) { w.version = 2; }));
    bad.emplace_back("port id out of range", with([](WireStatus& w) { w.id = kMaxPorts; }));
    bad.emplace_back("too many queues", with([](WireStatus& w) { w.nb_rxq = kMaxQueues + 1; }));
    bad.emplace_back("unknown state", with([](WireStatus& w) { w.state = 9; }));
    bad.emplace_back("unterminated name",
                     with([](WireStatus& w) {
                         std::memset(w.dev.device_name, 'x', sizeof w.dev.device_name);
                     }));
    for (const auto& [what, p] : bad) {
        answer(p);
        auto ps = remote_ports(*client_);
        ASSERT_FALSE(ps) << what;
        EXPECT_EQ(ps.error().err(), EPROTO) << what << ": " << ps.error().message();
    }
    answer("short");
    EXPECT_EQ(remote_stats(*client_, 0).error().err(), EPROTO);
    answer("rx_good_packets\t12\nbroken line\n");
    EXPECT_EQ(remote_xstats(*client_, 0).error().err(), EPROTO);
    answer("rx_good_packets\t12x\n");
    EXPECT_EQ(remote_xstats(*client_, 0).error().err(), EPROTO);
    answer("rx_good_packets\t12\ntx_good_packets\t0\n");
    auto xs = remote_xstats(*client_, 0);
    ASSERT_TRUE(xs);
    ASSERT_EQ(xs->size(), 2u);
    EXPECT_EQ((*xs)[0].value, 12u);
}

// Every byte of a good record, set to other values: either refused, or a
// status whose strings and counts are within bounds.
TEST_F(RemotePorts, EveryByteFlippedStaysInBounds) {
    const std::string base = bytes_of(good(5));
    std::mt19937 rng(4242);
    int refused = 0, accepted = 0;
    for (std::size_t i = 0; i < base.size(); ++i)
        for (int k = 0; k < 3; ++k) {
            std::string p = base;
            p[i] = static_cast<char>(p[i] ^ static_cast<char>(1 + rng() % 255));
            answer(p);
            auto ps = remote_ports(*client_);
            if (!ps) {
                ASSERT_EQ(ps.error().err(), EPROTO) << "byte " << i;
                ++refused;
                continue;
            }
            ++accepted;
            ASSERT_EQ(ps->size(), 1u);
            const PortStatus& s = ps->front();
            ASSERT_LT(s.id, kMaxPorts);
            ASSERT_LE(s.nb_rxq, kMaxQueues);
            ASSERT_LE(s.nb_txq, kMaxQueues);
            ASSERT_LT(s.info.device_name.size(), 48u);
            ASSERT_LT(s.info.driver_name.size(), 48u);
        }
    EXPECT_GT(refused, 0);
    EXPECT_GT(accepted, 0);  // most fields are values a primary may send
}

TEST(RemotePortsNoHandler, AnUnservingPrimaryIsSaidSo) {
    auto s = Server::create();
    ASSERT_TRUE(s);
    (*s)->set_logger([](std::string_view) {});
    ASSERT_TRUE((*s)->start());
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ASSERT_TRUE((*s)->add_connection(vfio::Fd(sv[0])));
    auto c = Client::adopt(vfio::Fd(sv[1]), "test");
    ASSERT_TRUE(c);
    auto ps = remote_ports(**c);
    ASSERT_FALSE(ps);
    EXPECT_EQ(ps.error().err(), EAGAIN);
    EXPECT_NE(ps.error().message().find("the primary serves no ports yet"), std::string::npos)
        << ps.error().message();
    (*s)->stop();
}

}  // namespace
}  // namespace vfiokit::ethdev
