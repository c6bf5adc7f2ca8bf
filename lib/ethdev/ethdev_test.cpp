// ethdev's state machine and argument checks, against a fake driver that
// records what reaches it: a bad request must fail before the driver sees
// it, with an error that names the port and what to do.
#include "vfiokit/ethdev/ethdev.hpp"

#include <gtest/gtest.h>

#include <cerrno>

#include "vfiokit/eal/heap.hpp"
#include "vfiokit/eal/strformat.hpp"

namespace vfiokit::ethdev {
namespace {

std::uint16_t fake_rx(void*, mbuf::Mbuf**, std::uint16_t) { return 7; }
std::uint16_t fake_tx(void*, mbuf::Mbuf**, std::uint16_t n) { return n; }

struct Calls {
    int configure = 0, rx_setup = 0, tx_setup = 0, rx_release = 0, tx_release = 0;
    int start = 0, stop = 0, destroyed = 0;
    std::uint16_t last_desc = 0;
};

class FakeOps final : public PortOps {
public:
    explicit FakeOps(Calls& c, std::string name = "0000:00:05.0") : c_(c), name_(std::move(name)) {}
    ~FakeOps() override { ++c_.destroyed; }
    DevInfo info() const override {
        DevInfo d;
        d.driver_name = "net_fake";
        d.device_name = name_;
        d.max_rx_queues = 2;
        d.max_tx_queues = 2;
        d.rx_desc = {32, 4096, 8};
        d.tx_desc = {32, 4096, 8};
        d.rx_offload_capa = offload::kRxIpv4Cksum;
        d.max_mtu = 9000;
        return d;
    }
    Result<void> configure(std::uint16_t, std::uint16_t, const PortConf&) override {
        ++c_.configure;
        return {};
    }
    Result<void*> rx_queue_setup(std::uint16_t q, std::uint16_t n, int, const RxConf&,
                                 mbuf::MbufPool&) override {
        ++c_.rx_setup;
        c_.last_desc = n;
        return &rxq_[q];
    }
    Result<void*> tx_queue_setup(std::uint16_t q, std::uint16_t n, int, const TxConf&) override {
        ++c_.tx_setup;
        c_.last_desc = n;
        return &txq_[q];
    }
    void rx_queue_release(std::uint16_t) override { ++c_.rx_release; }
    void tx_queue_release(std::uint16_t) override { ++c_.tx_release; }
    Result<void> start() override {
        ++c_.start;
        return {};
    }
    void stop() override { ++c_.stop; }
    RxBurst rx_burst_fn() const override { return fake_rx; }
    TxBurst tx_burst_fn() const override { return fake_tx; }
    Result<Link> link(bool) override { return Link{true, 1000, true, true}; }
    Result<void> promiscuous(bool) override { return {}; }
    Result<void> allmulticast(bool) override { return {}; }
    MacAddr mac() const override { return MacAddr{{0x52, 0x54, 0, 0x12, 0x34, 0x56}}; }
    Result<void> set_mac(const MacAddr&) override { return {}; }
    Result<void> set_mtu(std::uint32_t) override { return {}; }
    Result<Stats> stats() override { return Stats{}; }
    Result<void> stats_reset() override { return {}; }
    Result<std::vector<Xstat>> xstats() override { return std::vector<Xstat>{}; }

private:
    Calls& c_;
    std::string name_;
    int rxq_[2]{}, txq_[2]{};
};

class EthdevTest : public ::testing::Test {
protected:
    void SetUp() override {
        eal::MemoryOptions o;
        o.no_huge = true;
        o.window = 256ULL << 20;
        auto m = eal::Memory::create(o);
        ASSERT_TRUE(m) << m.error().message();
        mem_ = std::move(*m);
        heap_ = std::make_unique<eal::Heap>(*mem_, -1, 32ULL << 20);
        auto p = mbuf::MbufPool::create(*heap_, "ethdev_test", 1024, 0, 0, mbuf::kDefaultDataRoom);
        ASSERT_TRUE(p) << p.error().message();
        pool_ = *p;
        auto ops = std::make_unique<FakeOps>(calls_);
        ops_ = ops.get();
        auto id = attach(std::move(ops));
        ASSERT_TRUE(id) << id.error().message();
        port_ = *id;
    }
    void TearDown() override {
        detach(ops_);
        if (pool_) {
            EXPECT_TRUE(mbuf::MbufPool::destroy(pool_));
        }
    }
    void ready() {
        ASSERT_TRUE(configure(port_, 1, 1, {}));
        ASSERT_TRUE(rx_queue_setup(port_, 0, 256, -1, {}, *pool_));
        ASSERT_TRUE(tx_queue_setup(port_, 0, 256, -1, {}));
    }

    std::unique_ptr<eal::Memory> mem_;
    std::unique_ptr<eal::Heap> heap_;
    mbuf::MbufPool* pool_ = nullptr;
    Calls calls_;
    const PortOps* ops_ = nullptr;
    std::uint16_t port_ = 0;
};

TEST_F(EthdevTest, StartBeforeConfigureSaysWhatToCallFirst) {
    auto r = start(port_);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), EINVAL);
    const std::string m = r.error().message();
    EXPECT_NE(m.find("port " + std::to_string(port_) + " (0000:00:05.0, net_fake, attached)"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("call configure"), std::string::npos) << m;
    EXPECT_EQ(calls_.start, 0);
}

TEST_F(EthdevTest, StartNeedsEveryQueue) {
    ASSERT_TRUE(configure(port_, 2, 1, {}));
    ASSERT_TRUE(rx_queue_setup(port_, 0, 256, -1, {}, *pool_));
    ASSERT_TRUE(tx_queue_setup(port_, 0, 256, -1, {}));
    auto r = start(port_);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("rx queue 1 is not"), std::string::npos)
        << r.error().message();
    EXPECT_NE(r.error().message().find("rx_queue_setup"), std::string::npos);
    EXPECT_EQ(calls_.start, 0);
}

TEST_F(EthdevTest, RingSizesAreCheckedBeforeTheDriverSeesThem) {
    ASSERT_TRUE(configure(port_, 1, 1, {}));
    for (std::uint16_t bad : {100, 8192, 16}) {
        auto r = rx_queue_setup(port_, 0, bad, -1, {}, *pool_);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().err(), EINVAL);
        const std::string m = r.error().message();
        EXPECT_NE(m.find(std::to_string(bad)), std::string::npos) << m;
        EXPECT_NE(m.find(bad == 100 ? "not a power of two" : "outside"), std::string::npos) << m;
        auto t = tx_queue_setup(port_, 0, bad, -1, {});
        ASSERT_FALSE(t) << bad;
    }
    EXPECT_EQ(calls_.rx_setup, 0);
    EXPECT_EQ(calls_.tx_setup, 0);
    // 0 asks for the default.
    ASSERT_TRUE(rx_queue_setup(port_, 0, 0, -1, {}, *pool_));
    EXPECT_EQ(calls_.last_desc, 512);
}

TEST_F(EthdevTest, QueueIdsAndCountsAreChecked) {
    auto c = configure(port_, 3, 1, {});
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("at most 2"), std::string::npos) << c.error().message();
    ASSERT_TRUE(configure(port_, 1, 1, {}));
    auto r = rx_queue_setup(port_, 1, 256, -1, {}, *pool_);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("rx queue 1"), std::string::npos) << r.error().message();
    auto t = tx_queue_setup(port_, 5, 256, -1, {});
    ASSERT_FALSE(t);
    EXPECT_EQ(calls_.rx_setup + calls_.tx_setup, 0);
}

TEST_F(EthdevTest, OffloadsAndMtuOutsideTheCapabilitiesAreRefused) {
    PortConf pc;
    pc.rx_offloads = offload::kRxVlanStrip;
    EXPECT_FALSE(configure(port_, 1, 1, pc));
    pc = {};
    pc.mtu = 10000;
    EXPECT_FALSE(configure(port_, 1, 1, pc));
    pc = {};
    pc.rxq_interrupt = true;
    auto r = configure(port_, 1, 1, pc);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENOTSUP);
    EXPECT_EQ(calls_.configure, 0);
    EXPECT_FALSE(mtu_set(port_, 20));
    EXPECT_TRUE(mtu_set(port_, 9000));
}

TEST_F(EthdevTest, APoolTooSmallForTheRingsIsRefused) {
    ASSERT_TRUE(configure(port_, 2, 1, {}));
    ASSERT_TRUE(rx_queue_setup(port_, 0, 512, -1, {}, *pool_));
    auto r = rx_queue_setup(port_, 1, 1024, -1, {}, *pool_);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENOMEM);
    EXPECT_NE(r.error().message().find("--total-num-mbufs"), std::string::npos)
        << r.error().message();
    // Setting queue 0 up again replaces its ring: it does not count twice.
    EXPECT_TRUE(rx_queue_setup(port_, 0, 512, -1, {}, *pool_));
    EXPECT_TRUE(rx_queue_setup(port_, 1, 512, -1, {}, *pool_));
}

TEST_F(EthdevTest, UnknownPortNamesThePortsThereAre) {
    auto r = start(kMaxPorts - 1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENODEV);
    EXPECT_NE(r.error().message().find("attached ports: " + std::to_string(port_)),
              std::string::npos)
        << r.error().message();
    EXPECT_FALSE(stats_get(kMaxPorts + 3));
    EXPECT_FALSE(is_valid(kMaxPorts + 3));
}

TEST_F(EthdevTest, FastPathIsTheDriversWhileStartedOnly) {
    mbuf::Mbuf* pkts[4];
    EXPECT_EQ(rx_burst(port_, 0, pkts, 4), 0);
    ready();
    ASSERT_TRUE(start(port_));
    EXPECT_EQ(rx_burst(port_, 0, pkts, 4), 7);
    EXPECT_EQ(tx_burst(port_, 0, pkts, 3), 3);
    auto again = configure(port_, 1, 1, {});
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().err(), EBUSY);
    ASSERT_TRUE(stop(port_));
    EXPECT_EQ(calls_.stop, 1);
    EXPECT_EQ(rx_burst(port_, 0, pkts, 4), 0);
    EXPECT_EQ(tx_burst(port_, 0, pkts, 3), 0);
    // Restart without new setup.
    ASSERT_TRUE(start(port_));
    EXPECT_EQ(rx_burst(port_, 0, pkts, 4), 7);
    ASSERT_TRUE(close(port_));
    EXPECT_EQ(rx_burst(port_, 0, pkts, 4), 0);
    EXPECT_EQ(calls_.rx_release, 1);
    EXPECT_EQ(calls_.tx_release, 1);
    EXPECT_FALSE(is_valid(port_));
}

TEST_F(EthdevTest, DetachAfterCloseCannotHitAReusedId) {
    ready();
    ASSERT_TRUE(close(port_));
    EXPECT_EQ(calls_.destroyed, 0);  // the driver still holds its handle
    Calls other;
    auto ops2 = std::make_unique<FakeOps>(other, "0000:00:06.0");
    const PortOps* h2 = ops2.get();
    EXPECT_NE(h2, ops_);
    auto id2 = attach(std::move(ops2));
    ASSERT_TRUE(id2);
    EXPECT_EQ(*id2, port_);  // the lowest free id is reused
    detach(ops_);            // the first driver's remove
    EXPECT_EQ(calls_.destroyed, 1);
    EXPECT_TRUE(is_valid(*id2));
    auto f = find(*PciAddress::parse("0000:00:06.0"));
    ASSERT_TRUE(f);
    EXPECT_EQ(*f, *id2);
    detach(h2);
    EXPECT_EQ(other.destroyed, 1);
    EXPECT_FALSE(is_valid(*id2));
    ops_ = nullptr;
}

TEST_F(EthdevTest, DetachOfAStartedPortStopsAndReleases) {
    ready();
    ASSERT_TRUE(start(port_));
    detach(ops_);
    ops_ = nullptr;
    EXPECT_EQ(calls_.stop, 1);
    EXPECT_EQ(calls_.rx_release, 1);
    EXPECT_EQ(calls_.destroyed, 1);
    mbuf::Mbuf* pkts[1];
    EXPECT_EQ(rx_burst(port_, 0, pkts, 1), 0);
}

TEST_F(EthdevTest, RxInterruptsNeedTheirConfiguration) {
    ready();
    auto r = rx_intr_fd(port_, 0);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("rxq_interrupt"), std::string::npos);
    EXPECT_FALSE(lsc_fd(port_));
}

TEST(EthdevTypes, MacAddrRoundTrips) {
    auto m = MacAddr::parse("52:54:00:AB:cd:0f");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->str(), "52:54:00:ab:cd:0f");
    EXPECT_TRUE(MacAddr::parse("02-00-00-00-00-01"));
    for (const char* bad : {"", "52:54:00:ab:cd", "52:54:00:ab:cd:0g", "52:54-00:ab:cd:0f",
                            "52:54:00:ab:cd:0f:"})
        EXPECT_FALSE(MacAddr::parse(bad)) << bad;
}

TEST(EthdevTypes, LinkInDpdksWords) {
    EXPECT_EQ((Link{true, 1000, true, true}).str(), "Link up at 1 Gbps FDX Autoneg");
    EXPECT_EQ((Link{true, 100, false, false}).str(), "Link up at 100 Mbps HDX Fixed");
    EXPECT_EQ((Link{true, 2500, true, true}).str(), "Link up at 2.5 Gbps FDX Autoneg");
    EXPECT_EQ((Link{}).str(), "Link down");
}

// strformat (vfiokit/eal/strformat.hpp) is what ethdev's messages and
// testpmd's output are written with: the std::format subset they use.
TEST(StrFormat, TheSubsetOfStdFormat) {
    EXPECT_EQ(strformat("port {} ({}, {})", 3, std::string("0000:00:05.0"), "net_x"),
              "port 3 (0000:00:05.0, net_x)");
    EXPECT_EQ(strformat("[{:<6}|{:>4}|{:#x}|{:02x}|{:x}]", 512, 7, 255, std::uint8_t{10}, 0),
              "[512   |   7|0xff|0a|0]");
    EXPECT_EQ(strformat("{:<5}|{:>5}|{}", "ab", "cd", 'c'), "ab   |   cd|c");
    EXPECT_EQ(strformat("{} {} {}", -5, true, std::uint64_t{18446744073709551615ull}),
              "-5 true 18446744073709551615");
    EXPECT_EQ(strformat("{{}} {} {}", 1), "{} 1 {?}");
    EXPECT_EQ(strformat("no fields"), "no fields");
}

TEST(EthdevDma, NeedsAnEal) {
    auto r = dma_alloc(4096, 4096, -1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENODEV);
}

}  // namespace
}  // namespace vfiokit::ethdev
