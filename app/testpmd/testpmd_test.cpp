// testpmd's engines, output and commands on software ports (net_ring),
// with plain threads as workers. The layout: two wire pairs,
//
//   test -> inject (port x0) ==ring== port a  [testpmd]  port b ==ring== x1 (port) -> test
//
// so the test puts frames in on one side and takes them out on the other,
// and can count exactly what testpmd moved.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "packet.hpp"
#include "ring.hpp"
#include "shell.hpp"
#include "testpmd.hpp"
#include "vfiokit/eal/heap.hpp"
#include "vfiokit/eal/strformat.hpp"

namespace vfiokit::testpmd {
namespace {

using mbuf::Mbuf;

class TestpmdTest : public ::testing::Test {
protected:
    void SetUp() override {
        eal::MemoryOptions o;
        o.no_huge = true;
        o.window = 512ULL << 20;
        auto m = eal::Memory::create(o);
        ASSERT_TRUE(m) << m.error().message();
        mem_ = std::move(*m);
        heap_ = std::make_unique<eal::Heap>(*mem_, -1, 64ULL << 20);
        auto p = mbuf::MbufPool::create(*heap_, "testpmd_test", 8192, 0, 0,
                                        mbuf::kDefaultDataRoom);
        ASSERT_TRUE(p) << p.error().message();
        pool_ = *p;
        auto left = net::ring::attach_pair();
        auto right = net::ring::attach_pair();
        ASSERT_TRUE(left && right);
        left_ = *left;
        right_ = *right;
        for (std::uint16_t port : {left_.a, right_.b}) {
            ASSERT_TRUE(ethdev::configure(port, 1, 1, {}));
            ASSERT_TRUE(ethdev::rx_queue_setup(port, 0, 1024, -1, {}, *pool_));
            ASSERT_TRUE(ethdev::tx_queue_setup(port, 0, 1024, -1, {}));
            ASSERT_TRUE(ethdev::start(port));
        }
    }
    void TearDown() override {
        tp_.reset();
        runner_.reset();
        net::ring::detach_pair(left_);
        net::ring::detach_pair(right_);
        if (pool_) {
            EXPECT_EQ(pool_->in_use_count(), 0u) << "mbufs leaked";
            EXPECT_TRUE(mbuf::MbufPool::destroy(pool_));
        }
    }
    std::uint16_t x0() const { return left_.a; }
    std::uint16_t a() const { return left_.b; }
    std::uint16_t b() const { return right_.a; }
    std::uint16_t x1() const { return right_.b; }

    Testpmd& make(Params p, std::vector<std::uint16_t> ports, unsigned workers = 1) {
        runner_ = thread_runner(workers);
        tp_ = std::make_unique<Testpmd>(p, *runner_, out_);
        auto ok = tp_->setup_ports(ports, *pool_);
        EXPECT_TRUE(ok) << (ok ? "" : ok.error().message());
        return *tp_;
    }

    // Sends n txonly frames (len bytes, sequence from `first`) into `port`.
    void inject(std::uint16_t port, unsigned n, std::uint16_t len = 100, unsigned first = 0) {
        pkt::UdpFlow flow;
        flow.src_mac = {{0x52, 0x54, 0, 0, 0, 0x99}};
        flow.dst_mac = {{0x52, 0x54, 0, 0, 0, 0x98}};
        flow.src_ip = 0x0a000001;
        flow.dst_ip = 0x0a000002;
        for (unsigned i = 0; i < n; ++i) {
            Mbuf* m = pool_->alloc();
            ASSERT_NE(m, nullptr);
            pkt::build_udp(m->append(len), len, flow, first + i);
            ASSERT_EQ(ethdev::tx_burst(port, 0, &m, 1), 1);
        }
    }
    // Every frame that arrives at `port` within `ms` ms, until `want`.
    std::vector<Mbuf*> collect(std::uint16_t port, std::size_t want, int ms = 3000) {
        std::vector<Mbuf*> got;
        const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (got.size() < want && std::chrono::steady_clock::now() < end) {
            Mbuf* pkts[32];
            const auto n = ethdev::rx_burst(port, 0, pkts, 32);
            got.insert(got.end(), pkts, pkts + n);
            if (n == 0)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return got;
    }
    static void free_all(std::vector<Mbuf*>& v) {
        for (Mbuf* m : v)
            m->free();
        v.clear();
    }
    // What guest-lib.sh's dpdk_rx_packets prints for our output.
    std::string awk_rx_packets(std::uint16_t port) {
        const char* lib = std::getenv("VFIOKIT_GUEST_LIB");
        EXPECT_NE(lib, nullptr) << "VFIOKIT_GUEST_LIB is not set (meson sets it)";
        if (!lib)
            return "";
        char path[] = "/tmp/testpmd_out_XXXXXX";
        const int fd = ::mkstemp(path);
        EXPECT_GE(fd, 0);
        ::close(fd);
        std::ofstream(path) << out_.str();
        const std::string cmd =
            strformat("sh -c '. {} && dpdk_rx_packets {} {}'", lib, path, port);
        std::string r;
        if (FILE* f = ::popen(cmd.c_str(), "r")) {
            char buf[128];
            while (std::fgets(buf, sizeof buf, f))
                r += buf;
            ::pclose(f);
        }
        ::unlink(path);
        while (!r.empty() && r.back() == '\n')
            r.pop_back();
        return r;
    }

    std::unique_ptr<eal::Memory> mem_;
    std::unique_ptr<eal::Heap> heap_;
    mbuf::MbufPool* pool_ = nullptr;
    net::ring::Pair left_, right_;
    std::unique_ptr<Runner> runner_;
    std::unique_ptr<Testpmd> tp_;
    std::ostringstream out_;
};

TEST_F(TestpmdTest, IoMovesExactlyWhatEnters) {
    Params p;
    Testpmd& tp = make(p, {a(), b()});
    ASSERT_TRUE(tp.start(false));
    // In rounds of 100: the rings (512) never overflow, so every frame
    // must come out.
    std::vector<Mbuf*> got;
    for (unsigned round = 0; round < 10; ++round) {
        inject(x0(), 100, 100, round * 100);
        auto part = collect(x1(), 100);
        got.insert(got.end(), part.begin(), part.end());
    }
    tp.stop();
    if (got.size() != 1000u)
        free_all(got);
    ASSERT_EQ(got.size(), 1000u);
    for (std::size_t i = 0; i < got.size(); ++i) {
        std::uint64_t seq = ~0ull;
        ASSERT_TRUE(pkt::check_udp_payload(got[i]->data(), got[i]->data_len, &seq));
        EXPECT_EQ(seq, i);
    }
    free_all(got);
    EXPECT_TRUE(collect(x1(), 1, 50).empty()) << "io sent more than entered";
    std::uint64_t rx = 0, tx = 0;
    for (const Stream& s : tp.streams()) {
        rx += s.rx_packets;
        tx += s.tx_packets;
    }
    EXPECT_EQ(rx, 1000u);
    EXPECT_EQ(tx, 1000u);
    // The lab's awk reads our forward statistics as it reads DPDK's.
    EXPECT_EQ(awk_rx_packets(a()), "1000") << out_.str();
    EXPECT_EQ(awk_rx_packets(b()), "0") << out_.str();
    EXPECT_NE(out_.str().find("Accumulated forward statistics for all ports"), std::string::npos);
    EXPECT_NE(out_.str().find("TX-packets: 1000 "), std::string::npos) << out_.str();
}

TEST_F(TestpmdTest, MacRewritesBothAddresses) {
    Params p;
    p.mode = FwdMode::mac;
    p.eth_peer[b()] = ethdev::MacAddr{{0x52, 0x54, 0, 0xaa, 0xbb, 0xcc}};
    Testpmd& tp = make(p, {a(), b()});
    ASSERT_TRUE(tp.start(false));
    inject(x0(), 64);
    auto got = collect(x1(), 64);
    tp.stop();
    ASSERT_EQ(got.size(), 64u);
    const auto bmac = *ethdev::macaddr_get(b());
    for (Mbuf* m : got) {
        EXPECT_EQ(pkt::eth_dst(m->data()).str(), "52:54:00:aa:bb:cc");
        EXPECT_EQ(pkt::eth_src(m->data()), bmac);
        EXPECT_TRUE(pkt::check_udp_payload(m->data(), m->data_len, nullptr));
    }
    free_all(got);
}

TEST_F(TestpmdTest, MacswapSwaps) {
    Params p;
    p.mode = FwdMode::macswap;
    Testpmd& tp = make(p, {a(), b()});
    ASSERT_TRUE(tp.start(false));
    inject(x0(), 10);
    auto got = collect(x1(), 10);
    tp.stop();
    ASSERT_EQ(got.size(), 10u);
    for (Mbuf* m : got) {
        EXPECT_EQ(pkt::eth_dst(m->data()).str(), "52:54:00:00:00:99");
        EXPECT_EQ(pkt::eth_src(m->data()).str(), "52:54:00:00:00:98");
    }
    free_all(got);
}

TEST_F(TestpmdTest, TxonlyFramesCarryTheirSequence) {
    Params p;
    p.mode = FwdMode::txonly;
    p.txpkts = 128;
    Testpmd& tp = make(p, {a()});  // one port: it sends on itself
    ASSERT_TRUE(tp.start(false));
    auto got = collect(x0(), 500);
    tp.stop();
    ASSERT_GE(got.size(), 500u);
    const auto amac = *ethdev::macaddr_get(a());
    std::uint64_t want = 0;
    for (Mbuf* m : got) {
        ASSERT_EQ(m->pkt_len, 128u);
        std::uint64_t seq = 0;
        ASSERT_TRUE(pkt::check_udp_payload(m->data(), m->data_len, &seq));
        // The ring drops what does not fit, so sequence numbers only grow.
        EXPECT_GE(seq, want);
        want = seq + 1;
        EXPECT_EQ(pkt::eth_dst(m->data()),
                  (ethdev::MacAddr{{0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(a())}}));
        EXPECT_EQ(pkt::eth_src(m->data()), amac);
        EXPECT_EQ(pkt::get32(m->data() + pkt::kEthLen + 12), 0xc6120001u);  // 198.18.0.1
    }
    free_all(got);
    // Drain what was sent after collect stopped looking.
    for (auto rest = collect(x0(), 1 << 20, 50); !rest.empty(); rest = collect(x0(), 1 << 20, 50))
        free_all(rest);
}

TEST_F(TestpmdTest, RxonlyCountsAndFrees) {
    Params p;
    p.mode = FwdMode::rxonly;
    Testpmd& tp = make(p, {a()});
    ASSERT_TRUE(tp.start(false));
    inject(x0(), 300);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (pool_->in_use_count() != 0 && std::chrono::steady_clock::now() < end)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    tp.stop();
    ASSERT_EQ(tp.streams().size(), 1u);
    EXPECT_EQ(tp.streams()[0].rx_packets, 300u);
    EXPECT_EQ(tp.streams()[0].rx_bad, 0u);
    EXPECT_EQ(awk_rx_packets(a()), "300") << out_.str();
}

std::vector<std::uint8_t> arp_request() {
    std::vector<std::uint8_t> f(60, 0);
    const ethdev::MacAddr me{{0x52, 0x54, 0, 0, 0, 0x99}};
    pkt::set_eth(f.data(), ethdev::MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, me);
    pkt::put16(&f[12], pkt::kEtherArp);
    std::uint8_t* a = &f[14];
    pkt::put16(a, 1);
    pkt::put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    pkt::put16(a + 6, 1);
    std::memcpy(a + 8, me.bytes.data(), 6);
    pkt::put32(a + 14, 0x0a000001);
    pkt::put32(a + 24, 0x0a000002);
    return f;
}

std::vector<std::uint8_t> echo_request() {
    std::vector<std::uint8_t> f(14 + 20 + 8 + 32, 0);
    pkt::set_eth(f.data(), ethdev::MacAddr{{0x02, 0x72, 0x6e, 0x67, 0, 1}},
                 ethdev::MacAddr{{0x52, 0x54, 0, 0, 0, 0x99}});
    pkt::put16(&f[12], pkt::kEtherIpv4);
    std::uint8_t* ip = &f[14];
    ip[0] = 0x45;
    pkt::put16(ip + 2, 20 + 8 + 32);
    ip[8] = 64;
    ip[9] = pkt::kProtoIcmp;
    pkt::put32(ip + 12, 0x0a000001);
    pkt::put32(ip + 16, 0x0a000002);
    pkt::put16(ip + 10, pkt::checksum(ip, 20));
    std::uint8_t* icmp = ip + 20;
    icmp[0] = 8;
    pkt::put16(icmp + 4, 0x1234);
    pkt::put16(icmp + 6, 1);
    for (int i = 0; i < 32; ++i)
        icmp[8 + i] = static_cast<std::uint8_t>(i);
    pkt::put16(icmp + 2, pkt::checksum(icmp, 40));
    return f;
}

TEST_F(TestpmdTest, IcmpechoAnswersArpAndPing) {
    Params p;
    p.mode = FwdMode::icmpecho;
    Testpmd& tp = make(p, {a()});
    ASSERT_TRUE(tp.start(false));
    auto send_frame = [&](const std::vector<std::uint8_t>& f) {
        Mbuf* m = pool_->alloc();
        ASSERT_NE(m, nullptr);
        std::memcpy(m->append(static_cast<std::uint16_t>(f.size())), f.data(), f.size());
        ASSERT_EQ(ethdev::tx_burst(x0(), 0, &m, 1), 1);
    };
    send_frame(arp_request());
    send_frame(echo_request());
    std::vector<std::uint8_t> junk(60, 0xee);
    pkt::put16(&junk[12], 0x86dd);
    send_frame(junk);  // not for icmpecho: dropped
    auto got = collect(x0(), 2);
    tp.stop();
    ASSERT_EQ(got.size(), 2u);
    const auto amac = *ethdev::macaddr_get(a());
    const std::uint8_t* r = got[0]->data();
    EXPECT_EQ(pkt::ether_type(r), pkt::kEtherArp);
    EXPECT_EQ(pkt::eth_dst(r).str(), "52:54:00:00:00:99");
    EXPECT_EQ(pkt::eth_src(r), amac);
    EXPECT_EQ(pkt::get16(r + 14 + 6), 2);                       // reply
    EXPECT_EQ(std::memcmp(r + 14 + 8, amac.bytes.data(), 6), 0);  // sender: us
    EXPECT_EQ(pkt::get32(r + 14 + 14), 0x0a000002u);
    EXPECT_EQ(pkt::get32(r + 14 + 24), 0x0a000001u);
    const std::uint8_t* e = got[1]->data();
    const std::uint8_t* ip = e + 14;
    EXPECT_EQ(pkt::eth_dst(e).str(), "52:54:00:00:00:99");
    EXPECT_EQ(pkt::get32(ip + 12), 0x0a000002u);
    EXPECT_EQ(pkt::get32(ip + 16), 0x0a000001u);
    EXPECT_EQ(pkt::checksum(ip, 20), 0);
    EXPECT_EQ(ip[20], 0);  // echo reply
    EXPECT_EQ(pkt::checksum(ip + 20, 40), 0);
    EXPECT_EQ(pkt::get16(ip + 24), 0x1234);
    EXPECT_EQ(ip[20 + 8 + 31], 31);
    free_all(got);
    EXPECT_EQ(tp.streams()[0].rx_packets, 3u);
    EXPECT_EQ(tp.streams()[0].tx_packets, 2u);
}

TEST_F(TestpmdTest, TxFirstStartsTheLoop) {
    Params p;
    p.burst = 16;
    Testpmd& tp = make(p, {a(), b()});
    ASSERT_TRUE(tp.start(true));
    // a's and b's first bursts come out at x0 and x1.
    auto at_x0 = collect(x0(), 16);
    auto at_x1 = collect(x1(), 16);
    tp.stop();
    EXPECT_EQ(at_x0.size(), 16u);
    EXPECT_EQ(at_x1.size(), 16u);
    free_all(at_x0);
    free_all(at_x1);
}

TEST_F(TestpmdTest, ShowPortStatsInDpdksLayout) {
    Testpmd& tp = make(Params{}, {a(), b()});
    ASSERT_TRUE(tp.start(false));
    inject(x0(), 5);
    auto got = collect(x1(), 5);
    free_all(got);
    out_.str("");
    EXPECT_TRUE(execute(tp, "show port stats all", out_));
    const std::string s = out_.str();
    EXPECT_NE(s.find(strformat("NIC statistics for port {}", a())), std::string::npos) << s;
    EXPECT_NE(s.find("RX-packets: 5          RX-missed: 0          RX-bytes:  500"),
              std::string::npos)
        << s;
    EXPECT_NE(s.find("RX-nombuf:"), std::string::npos);
    EXPECT_NE(s.find("Throughput (since last show)"), std::string::npos);
    EXPECT_NE(s.find("Rx-pps:"), std::string::npos);
    EXPECT_NE(s.find("Tx-pps:"), std::string::npos);
    EXPECT_TRUE(execute(tp, "stop", out_));
}

TEST_F(TestpmdTest, CommandsAndTheirErrors) {
    Testpmd& tp = make(Params{}, {a(), b()});
    out_.str("");
    EXPECT_TRUE(execute(tp, "stop", out_));
    EXPECT_NE(out_.str().find("Packet forwarding not started"), std::string::npos);
    EXPECT_TRUE(execute(tp, "set fwd bogus", out_));
    EXPECT_NE(out_.str().find("Invalid forwarding mode 'bogus'"), std::string::npos);
    EXPECT_TRUE(execute(tp, "set fwd macswap", out_));
    EXPECT_EQ(tp.mode(), FwdMode::macswap);
    EXPECT_TRUE(execute(tp, "show port info 9", out_));
    EXPECT_NE(out_.str().find("Invalid port 9"), std::string::npos) << out_.str();
    EXPECT_TRUE(execute(tp, "show port stats x", out_));
    EXPECT_NE(out_.str().find("Invalid port 'x'"), std::string::npos);
    EXPECT_TRUE(execute(tp, "frobnicate", out_));
    EXPECT_NE(out_.str().find("Command not found"), std::string::npos);
    out_.str("");
    EXPECT_TRUE(execute(tp, strformat("show port info {}", a()), out_));
    EXPECT_NE(out_.str().find("Driver name: net_ring"), std::string::npos) << out_.str();
    EXPECT_NE(out_.str().find("Link status: up"), std::string::npos);
    EXPECT_NE(out_.str().find("Link speed: 10 Gbps"), std::string::npos);
    EXPECT_TRUE(execute(tp, "start", out_));
    EXPECT_TRUE(tp.forwarding());
    EXPECT_TRUE(execute(tp, "set fwd io", out_));  // refused while running
    EXPECT_EQ(tp.mode(), FwdMode::macswap);
    EXPECT_FALSE(execute(tp, "quit", out_));
}

TEST_F(TestpmdTest, StartWithoutWorkersSaysWhy) {
    Testpmd& tp = make(Params{}, {a()}, 0);
    auto r = tp.start(false);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("-l 0-1"), std::string::npos);
}

TEST_F(TestpmdTest, PoolTooSmallFailsAndLeavesNothingStarted) {
    auto small = mbuf::MbufPool::create(*heap_, "small", 100, 0, 0, mbuf::kDefaultDataRoom);
    ASSERT_TRUE(small);
    runner_ = thread_runner(1);
    tp_ = std::make_unique<Testpmd>(Params{}, *runner_, out_);
    auto r = tp_->setup_ports({a(), b()}, **small);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ENOMEM);
    EXPECT_NE(r.error().message().find("--total-num-mbufs"), std::string::npos)
        << r.error().message();
    tp_.reset();
    EXPECT_TRUE(mbuf::MbufPool::destroy(*small));
}

TEST_F(TestpmdTest, BadRingSizeNamesTheLimit) {
    Params p;
    p.rxd = 1000;
    runner_ = thread_runner(1);
    tp_ = std::make_unique<Testpmd>(p, *runner_, out_);
    auto r = tp_->setup_ports({a()}, *pool_);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("not a power of two"), std::string::npos);
    EXPECT_NE(r.error().message().find("--rxd"), std::string::npos);
}

TEST(TestpmdParams, DpdksOptionNames) {
    const char* argv[] = {"-i",          "--forward-mode=macswap", "--nb-cores", "2",
                          "--rxd=256",   "--txd=1024",             "--burst=64", "--txpkts=128",
                          "--eth-peer=1,52:54:00:12:34:57", "--total-num-mbufs=4096",
                          "--stats-period", "3", "--tx-first", "--auto-start"};
    auto p = parse_params(static_cast<int>(std::size(argv)), argv);
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_TRUE(p->interactive);
    EXPECT_TRUE(p->auto_start);
    EXPECT_TRUE(p->tx_first);
    EXPECT_EQ(p->mode, FwdMode::macswap);
    EXPECT_EQ(p->nb_cores, 2u);
    EXPECT_EQ(p->rxd, 256);
    EXPECT_EQ(p->txd, 1024);
    EXPECT_EQ(p->burst, 64);
    EXPECT_EQ(p->txpkts, 128);
    EXPECT_EQ(p->stats_period, 3u);
    EXPECT_EQ(p->total_num_mbufs, 4096u);
    ASSERT_TRUE(p->eth_peer[1]);
    EXPECT_EQ(p->eth_peer[1]->str(), "52:54:00:12:34:57");
}

TEST(TestpmdParams, BadInputIsRefusedWithTheReason) {
    auto refuse = [](std::vector<const char*> a, std::string_view want) {
        auto p = parse_params(static_cast<int>(a.size()), a.data());
        ASSERT_FALSE(p) << a[0];
        EXPECT_NE(p.error().message().find(want), std::string::npos) << p.error().message();
    };
    refuse({"--bogus"}, "--interactive, --auto-start");
    refuse({"--forward-mode=warp"}, "io mac macswap txonly rxonly icmpecho flowgen");
    refuse({"--burst=0"}, "[1, 512]");
    refuse({"--burst=600"}, "[1, 512]");
    refuse({"--rxd=abc"}, "--rxd");
    refuse({"--txpkts=64,64"}, "multi-segment");
    refuse({"--eth-peer=0"}, "PORT,MAC");
    refuse({"--eth-peer=0,zz:00:00:00:00:00"}, "MAC address");
    refuse({"--nb-cores"}, "needs a value");
    refuse({"-i=1"}, "unknown option");
    refuse({"--interactive=1"}, "takes no value");
    refuse({"--rxq=2"}, "--rxq=2 and --txq=1 differ");
    refuse({"--num-procs=2", "--proc-id=2"}, "process ids go from 0 to --num-procs - 1");
    refuse({"--rxq=3", "--txq=3", "--num-procs=2"}, "not a multiple of --num-procs=2");
}

TEST(TestpmdParams, MultiProcessOptions) {
    const char* argv[] = {"--rxq=4", "--txq=4", "--num-procs=2", "--proc-id=1"};
    auto p = parse_params(static_cast<int>(std::size(argv)), argv);
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->num_procs, 2u);
    EXPECT_EQ(p->proc_id, 1u);
    EXPECT_FALSE(p->secondary) << "the EAL's role decides, not an option";
}

// Process K of N forwards its share of every port's queues, and says so
// per stream.
TEST_F(TestpmdTest, ProcessForwardsItsShareOfTheQueues) {
    Params p;
    p.mode = FwdMode::rxonly;
    p.rxq = p.txq = 4;
    p.rxd = p.txd = 256;
    p.num_procs = 2;
    p.proc_id = 1;
    Testpmd& tp = make(p, {a(), b()});
    ASSERT_TRUE(tp.start(false));
    tp.stop();
    ASSERT_EQ(tp.streams().size(), 4u);
    for (const Stream& s : tp.streams()) {
        EXPECT_TRUE(s.rx_queue == 2 || s.rx_queue == 3) << s.rx_queue;
        EXPECT_EQ(s.tx_queue, s.rx_queue);
    }
    EXPECT_NE(out_.str().find("Forward Stats for RX Port="), std::string::npos) << out_.str();
}

TEST(TestpmdPacket, UdpFramesCheckAndCorruptionShows) {
    std::vector<std::uint8_t> f(200);
    pkt::UdpFlow flow;
    flow.src_ip = 1;
    flow.dst_ip = 2;
    pkt::build_udp(f.data(), f.size(), flow, 0x1122334455667788ull);
    std::uint64_t seq = 0;
    ASSERT_TRUE(pkt::check_udp_payload(f.data(), f.size(), &seq));
    EXPECT_EQ(seq, 0x1122334455667788ull);
    f[150] ^= 1;
    EXPECT_FALSE(pkt::check_udp_payload(f.data(), f.size(), &seq));
    f[150] ^= 1;
    f[14 + 8] = 1;  // TTL: the IPv4 checksum no longer matches
    EXPECT_FALSE(pkt::check_udp_payload(f.data(), f.size(), &seq));
}

}  // namespace
}  // namespace vfiokit::testpmd
