// The command sets on real software state, in process: net_ring ports
// that moved known frames, an mbuf pool with known numbers out, host
// lcores and 4 KiB-page memory. Shapes are DPDK's; parameters are checked
// strictly; a process without VFIO says so.
#include <gtest/gtest.h>

#include <cstring>

#include "ring.hpp"
#include "vfiokit/eal/heap.hpp"
#include "vfiokit/eal/lcore.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/ethdev/status.hpp"
#include "vfiokit/mbuf/mbuf.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

namespace vfiokit::telemetry {
namespace {

bool has(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

class TelemetryCommands : public ::testing::Test {
protected:
    void SetUp() override {
        eal::MemoryOptions o;
        o.no_huge = true;
        o.window = 256ULL << 20;
        auto m = eal::Memory::create(o);
        ASSERT_TRUE(m) << m.error().message();
        mem_ = std::move(*m);
        heap_ = std::make_unique<eal::Heap>(*mem_, -1, 32ULL << 20);
        auto p = mbuf::MbufPool::create(*heap_, "tel_pool", 1024, 16, 8, mbuf::kDefaultDataRoom);
        ASSERT_TRUE(p) << p.error().message();
        pool_ = *p;
        auto pr = net::ring::attach_pair();
        ASSERT_TRUE(pr);
        pair_ = *pr;
        // Port a: configured with 2 queues each way and started; b: 1+1.
        ASSERT_TRUE(ethdev::configure(pair_.a, 2, 2, {}));
        ASSERT_TRUE(ethdev::configure(pair_.b, 2, 2, {}));
        for (std::uint16_t port : {pair_.a, pair_.b})
            for (std::uint16_t q = 0; q < 2; ++q) {
                ASSERT_TRUE(ethdev::rx_queue_setup(port, q, 256, -1, {}, *pool_));
                ASSERT_TRUE(ethdev::tx_queue_setup(port, q, 256, -1, {}));
            }
        ASSERT_TRUE(ethdev::start(pair_.a));
        ASSERT_TRUE(ethdev::start(pair_.b));
        // 5 frames of 100 bytes a -> b on queue 1, received by b.
        mbuf::Mbuf* m5[5];
        for (auto& f : m5) {
            f = pool_->alloc();
            ASSERT_NE(f, nullptr);
            std::memset(f->append(100), 1, 100);
        }
        ASSERT_EQ(ethdev::tx_burst(pair_.a, 1, m5, 5), 5);
        mbuf::Mbuf* r[8];
        ASSERT_EQ(ethdev::rx_burst(pair_.b, 1, r, 8), 5);
        for (int i = 0; i < 5; ++i)
            r[i]->free();
        // Three mbufs held out of the pool while the commands read it.
        for (auto& h : held_)
            h = pool_->alloc();
        ASSERT_TRUE(add_ethdev_commands(c_));
        ASSERT_TRUE(add_mempool_commands(c_));
    }
    void TearDown() override {
        for (auto* h : held_)
            if (h)
                h->free();
        net::ring::detach_pair(pair_);
        if (pool_) {
            EXPECT_TRUE(mbuf::MbufPool::destroy(pool_));
        }
    }
    std::string a() const { return std::to_string(pair_.a); }
    std::string b() const { return std::to_string(pair_.b); }

    std::unique_ptr<eal::Memory> mem_;
    std::unique_ptr<eal::Heap> heap_;
    mbuf::MbufPool* pool_ = nullptr;
    net::ring::Pair pair_;
    mbuf::Mbuf* held_[3] = {};
    Commands c_;
};

TEST_F(TelemetryCommands, EthdevListStatsXstatsLink) {
    EXPECT_EQ(c_.reply("/ethdev/list"), "{\"/ethdev/list\":[" + a() + "," + b() + "]}");
    const std::string sa = c_.reply("/ethdev/stats," + a());
    EXPECT_TRUE(has(sa, R"({"/ethdev/stats":{"ipackets":0,"opackets":5,"ibytes":0,"obytes":500,)"
                        R"("imissed":0,"ierrors":0,"oerrors":0,"rx_nombuf":0,)"
                        R"("q_ipackets":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],)"
                        R"("q_opackets":[0,5,0,0,0,0,0,0,0,0,0,0,0,0,0,0],)"))
        << sa;
    const std::string sb = c_.reply("/ethdev/stats," + b());
    EXPECT_TRUE(has(sb, R"("ipackets":5,"opackets":0,"ibytes":500,)")) << sb;
    const std::string xb = c_.reply("/ethdev/xstats," + b());
    EXPECT_TRUE(has(xb, R"("rx_good_packets":5,)") && has(xb, R"("rx_q1_packets":5,)")) << xb;
    const std::string xz = c_.reply("/ethdev/xstats," + b() + ",hide_zero=true");
    EXPECT_EQ(xz, R"({"/ethdev/xstats":{"rx_good_packets":5,"rx_good_bytes":500,)"
                  R"("rx_q1_packets":5,"rx_q1_bytes":500}})");
    EXPECT_EQ(c_.reply("/ethdev/link_status," + a()),
              R"({"/ethdev/link_status":{"status":"UP","speed":10000,"duplex":"full-duplex"}})");
}

TEST_F(TelemetryCommands, EthdevInfoFollowsThePortsState) {
    const std::string i = c_.reply("/ethdev/info," + a());
    auto st = ethdev::status(pair_.a);
    ASSERT_TRUE(st);
    EXPECT_TRUE(has(i, "\"name\":\"" + st->info.device_name + "\",\"driver_name\":\"net_ring\"," +
                           "\"state\":1,\"nb_rx_queues\":2,\"nb_tx_queues\":2,\"port_id\":" + a() +
                           ",\"mtu\":1500,\"mac_addr\":\"" + st->mac.str() + "\"," +
                           "\"dev_started\":1,\"dev_configured\":1," +
                           "\"rxq_state\":[1,1],\"txq_state\":[1,1],"))
        << i;
    EXPECT_TRUE(has(i, R"("rx_offloads":0,"tx_offloads":0,"ethdev_rss_hf":0,)"
                       R"("port_state":"started")"))
        << i;
    ASSERT_TRUE(ethdev::stop(pair_.a));
    ASSERT_TRUE(ethdev::mtu_set(pair_.a, 1400));
    const std::string j = c_.reply("/ethdev/info," + a());
    EXPECT_TRUE(has(j, R"("mtu":1400,)") && has(j, R"("dev_started":0,"dev_configured":1,)") &&
                has(j, R"("rxq_state":[0,0])") && has(j, R"("port_state":"stopped")"))
        << j;
}

TEST_F(TelemetryCommands, BadPortParametersSayWhatIsExpected) {
    for (const std::string cmd : {"/ethdev/stats", "/ethdev/info", "/ethdev/link_status",
                                  "/ethdev/xstats"}) {
        for (const std::string p : {"", ",", ",x", ",1x", ",-1", ",99999", ",32"}) {
            const std::string r = c_.reply(cmd + p);
            EXPECT_TRUE(r.starts_with("{\"" + cmd + "\":null,\"error\":\"")) << cmd + p << ": " << r;
        }
    }
    EXPECT_TRUE(has(c_.reply("/ethdev/stats,x"), "'x' is not a port id")) << c_.reply("/ethdev/stats,x");
    EXPECT_TRUE(has(c_.reply("/ethdev/stats,31"), "port 31: no such port"));
    EXPECT_TRUE(has(c_.reply("/ethdev/stats," + a() + ",7"), "takes a port id only"));
    EXPECT_TRUE(has(c_.reply("/ethdev/xstats," + a() + ",hide_zero=maybe"), "unknown parameter"));
}

TEST_F(TelemetryCommands, MempoolListAndInfo) {
    EXPECT_TRUE(has(c_.reply("/mempool/list"), "\"tel_pool\"")) << c_.reply("/mempool/list");
    const std::string i = c_.reply("/mempool/info,tel_pool");
    // 1024 mbufs, 3 held by the test; the others are in the ring or the
    // lcores' caches, and the two parts add up.
    const unsigned out = pool_->in_use_count();
    EXPECT_GE(out, 3u);
    EXPECT_TRUE(has(i, R"({"/mempool/info":{"name":"tel_pool","size":1024,"cache_size":16,"elt_size":)"))
        << i;
    EXPECT_TRUE(has(i, "\"private_data_size\":8,\"populated_size\":1024,\"total_cache_count\":" +
                           std::to_string(pool_->cache_count()) + ",\"common_pool_count\":" +
                           std::to_string(pool_->common_count()) + ",\"data_room_size\":" +
                           std::to_string(mbuf::kDefaultDataRoom) + ",\"in_use_count\":" +
                           std::to_string(out) + "}}"))
        << i;
    EXPECT_EQ(pool_->common_count() + pool_->cache_count() + out, 1024u);
    EXPECT_TRUE(has(c_.reply("/mempool/info,nope"), R"({"/mempool/info":null,"error":"/mempool/info: no pool 'nope')"));
    EXPECT_TRUE(has(c_.reply("/mempool/info"), "which pool?"));
}

TEST_F(TelemetryCommands, EalPartsAndNoVfio) {
    auto lc = eal::Lcores::start({}, 0);
    ASSERT_TRUE(lc) << lc.error().message();
    Commands c;
    EalParts p;
    p.eal_args = {"app", "-l", "0", "--file-prefix", "x"};
    p.app_args = {"--tx", "5"};
    p.lcores = lc->get();
    p.memory = mem_.get();
    p.heaps = [this] { return std::vector<const eal::Heap*>{heap_.get()}; };
    ASSERT_TRUE(add_eal_commands(c, p));
    ASSERT_TRUE(add_vfio_commands(c, p));
    EXPECT_EQ(c.reply("/eal/params"), R"({"/eal/params":["app","-l","0","--file-prefix","x"]})");
    EXPECT_EQ(c.reply("/eal/app_params"), R"({"/eal/app_params":["--tx","5"]})");
    EXPECT_EQ(c.reply("/eal/lcore/list"), R"({"/eal/lcore/list":[0]})");
    const std::string li = c.reply("/eal/lcore/info,0");
    EXPECT_TRUE(li.starts_with(R"({"/eal/lcore/info":{"lcore_id":0,"role":"RTE","main":true,"cpuset":[)"))
        << li;
    EXPECT_TRUE(has(c.reply("/eal/lcore/info,7"), "no lcore 7"));
    const std::string h = c.reply("/heap/info");
    EXPECT_TRUE(has(h, R"("iova_mode":"va","page_size":4096,)")) << h;
    EXPECT_TRUE(has(h, "\"heaps\":[{\"node\":-1,\"segments\":1,\"bytes_in_use\":" +
                           std::to_string(heap_->bytes_in_use()) + "}]"))
        << h;
    for (const char* v : {"/vfio/mode", "/vfio/containers", "/vfio/devices", "/vfio/mappings,0"}) {
        const std::string r = c.reply(v);
        EXPECT_TRUE(has(r, ":null,\"error\":\"") && has(r, "this process has no VFIO")) << r;
    }
    // Without lcores or memory, those commands say so too.
    Commands bare;
    ASSERT_TRUE(add_eal_commands(bare, EalParts{}));
    EXPECT_TRUE(has(bare.reply("/eal/lcore/list"), "this process has no lcores"));
    EXPECT_TRUE(has(bare.reply("/heap/info"), "this process has no EAL memory"));
}

}  // namespace
}  // namespace vfiokit::telemetry
