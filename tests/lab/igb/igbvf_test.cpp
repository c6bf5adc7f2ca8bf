// The igb VF driver on a virtual function of QEMU's 82576 whose PF stays on
// the guest kernel's igb driver (up, so it answers the VF's mailbox), once
// per VFIO mode (devtools/lab/jobs/igb-modern.sh; VFIOKIT_IGBVF names the
// VF). Its peer is the kernel's e1000e at 0000:00:05.0 on the same hub.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "igb.hpp"
#include "lab_env.hpp"
#include "peer.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit::igb {
namespace {

using namespace std::chrono_literals;
using testing::mode_label;

constexpr const char* kPeer = "0000:00:05.0";

struct VfSuite {
    int fds_before = -1;
    std::string vf;
    std::unique_ptr<eal::Eal> eal;
    mbuf::MbufPool* pool = nullptr;
    std::uint16_t port = 0;
    std::string peer_if;
    testing::Mac peer_mac{};
    std::string error;
};
VfSuite& vs() {
    static VfSuite s;
    return s;
}

class IgbVf : public ::testing::TestWithParam<std::string> {
public:
    static void SetUpTestSuite() {
        VfSuite& s = vs();
        s.fds_before = testing::open_fds();
        s.vf = testing::env("VFIOKIT_IGBVF");
        if (s.vf.empty()) {
            s.error = "VFIOKIT_IGBVF unset: the job names the VF it made";
            return;
        }
        const char* argv[] = {"igbvf_lab_test", "-a", s.vf.c_str()};
        auto e = eal::Eal::init(3, argv);
        if (!e) {
            s.error = "Eal::init -a " + s.vf + ": " + e.error().message();
            return;
        }
        s.eal = std::move(*e);
        auto addr = PciAddress::parse(s.vf);
        if (!addr) {
            s.error = "VFIOKIT_IGBVF=" + s.vf + " is not a PCI address";
            return;
        }
        auto port = ethdev::find(*addr);
        if (!port) {
            s.error = "no ethdev port for " + s.vf + ": " + port.error().message();
            return;
        }
        s.port = *port;
        auto pool = mbuf::MbufPool::create("igbvf_lab", 2047, 32, 0, mbuf::kDefaultDataRoom);
        if (!pool) {
            s.error = "mbuf pool: " + pool.error().message();
            return;
        }
        s.pool = *pool;
        s.peer_if = testing::netdev_of(kPeer);
        if (auto m = testing::parse_mac(testing::read_line("/sys/class/net/" + s.peer_if + "/address")))
            s.peer_mac = *m;
    }

protected:
    void SetUp() override {
        ASSERT_TRUE(vs().error.empty()) << vs().error;
        ASSERT_FALSE(vs().peer_if.empty()) << kPeer << " has no kernel netdev";
    }
    static std::uint16_t port() { return vs().port; }
};

TEST_P(IgbVf, ResetsThroughTheMailboxAndCarriesTrafficBothWays) {
    auto info = ethdev::info(port());
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->driver_name, "net_e1000_igb_vf");
    EXPECT_EQ(info->max_rx_queues, 2);
    auto mac = ethdev::macaddr_get(port());
    ASSERT_TRUE(mac);
    EXPECT_NE(*mac, ethdev::MacAddr{});
    EXPECT_EQ(mac->bytes[0] & 1, 0) << "a multicast address: " << mac->str();

    ASSERT_TRUE(ethdev::configure(port(), 1, 1, {}));
    ASSERT_TRUE(ethdev::rx_queue_setup(port(), 0, 256, -1, {}, *vs().pool));
    ASSERT_TRUE(ethdev::tx_queue_setup(port(), 0, 256, -1, {}));
    auto st = ethdev::start(port());
    ASSERT_TRUE(st) << st.error().message();
    auto l = ethdev::link_get(port());
    ASSERT_TRUE(l);
    EXPECT_TRUE(l->up) << "the PF's link";

    // VF -> kernel e1000e: exactly N in its rx_packets.
    const std::string& pif = vs().peer_if;
    const std::uint64_t rx0 = testing::netdev_counter(pif, "rx_packets");
    constexpr unsigned kN = 300;
    testing::UdpFlow out{vs().peer_mac, mac->bytes, 0x0a000101, 0x0a000102, 4001, 5001};
    unsigned sent = 0;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (sent < kN && std::chrono::steady_clock::now() < deadline) {
        mbuf::Mbuf* m = vs().pool->alloc();
        ASSERT_NE(m, nullptr);
        const auto f = testing::udp_frame(out, 80, static_cast<std::uint8_t>(sent));
        std::memcpy(m->append(static_cast<std::uint16_t>(f.size())), f.data(), f.size());
        while (ethdev::tx_burst(port(), 0, &m, 1) == 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
        ++sent;
    }
    ASSERT_EQ(sent, kN);
    for (int i = 0; i < 100 && testing::netdev_counter(pif, "rx_packets") - rx0 < kN; ++i)
        std::this_thread::sleep_for(100ms);
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(testing::netdev_counter(pif, "rx_packets") - rx0, kN);

    // Kernel e1000e -> VF's address: exactly M received.
    testing::PacketSocket peer(pif);
    ASSERT_GE(peer.fd(), 0) << peer.error();
    constexpr unsigned kM = 100;
    testing::UdpFlow in{mac->bytes, vs().peer_mac, 0x0a000102, 0x0a000101, 5001, 4001};
    for (unsigned i = 0; i < kM; ++i)
        ASSERT_TRUE(peer.send(testing::udp_frame(in, 64, static_cast<std::uint8_t>(i))));
    unsigned got = 0;
    auto until = std::chrono::steady_clock::now() + 10s;
    bool extra = false;
    while (std::chrono::steady_clock::now() < until) {
        std::array<mbuf::Mbuf*, 32> pkts{};
        const auto n = ethdev::rx_burst(port(), 0, pkts.data(), 32);
        for (unsigned i = 0; i < n; ++i)
            pkts[i]->free();
        got += n;
        if (got >= kM && !extra) {
            extra = true;
            until = std::chrono::steady_clock::now() + 300ms;
        }
        std::this_thread::sleep_for(1ms);
    }
    EXPECT_EQ(got, kM);
    EXPECT_TRUE(ethdev::stop(port()));
}

TEST_P(IgbVf, ClosingLeavesNothingBehind) {
    ASSERT_TRUE(ethdev::close(port()));
    EXPECT_EQ(vs().pool->in_use_count(), 0u);
    EXPECT_TRUE(mbuf::MbufPool::destroy(vs().pool));
    vs().pool = nullptr;
    vs().eal.reset();
    EXPECT_EQ(testing::open_fds(), vs().fds_before);
}

INSTANTIATE_TEST_SUITE_P(Lab, IgbVf, ::testing::Values(mode_label()),
                         [](const auto& i) { return i.param; });

}  // namespace
}  // namespace vfiokit::igb
