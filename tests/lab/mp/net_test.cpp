// Secondaries poll the primary's NIC queues (DPDK's symmetric
// multi-process): the same binary is the primary (gtest) and, exec'd with
// "--secondary", a secondary that attaches with Eal::init
// --proc-type=secondary -a ... and finds the primary's started ports there.
//
//   em  (iommu, noiommu shapes): VFIOKIT_MPNET=em VFIOKIT_MPNET_TX=BDF
//       VFIOKIT_MPNET_RX=BDF VFIOKIT_MPNET_IDLE=BDF. The primary starts TX
//       and RX (one queue pair each, on one hub) and leaves RX's queue to the
//       secondary: it sends N frames on TX, the secondary receives exactly
//       those on RX queue 0; then the secondary sends M frames on TX's queue
//       and the primary, after the secondary exited, receives exactly M.
//   igb (modern shape): VFIOKIT_MPNET=igb VFIOKIT_MPNET_IGB=BDF
//       VFIOKIT_MPNET_PEER=BDF (the kernel's NIC on the hub). Two queue
//       pairs with RSS: the primary polls queue 0, the secondary queue 1,
//       while the peer sends N frames of many flows; each count is what the
//       RSS hash says (each > 0, the sum N). The secondary sends M frames on
//       tx queue 1, which the peer receives.
//
// Both: the secondary's control calls fail with EPERM, its stats come from
// the primary, a secondary naming a port the primary did not start fails
// Eal::init saying so, and after the secondaries exit every mbuf is back in
// the pool (checked once the primary closed its ports).
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "peer.hpp"
#include "lab_env.hpp"
#include "rss.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit {
namespace {

using namespace std::chrono_literals;
using testing::Bytes;
using testing::env;
using testing::mode_label;

constexpr const char* kPool = "mp_net";
constexpr std::uint16_t kRing = 256;
constexpr unsigned kPrimaryTx = 300;   // em: primary -> secondary
constexpr unsigned kSecondaryTx = 200; // secondary -> primary (em) or peer (igb)
constexpr std::uint16_t kMarkPort = 7777;  // UDP destination of the secondary's frames

std::string prefix() { return "mpnet-" + mode_label(); }

PciAddress bdf(const char* var) {
    auto a = PciAddress::parse(env(var));
    return a ? *a : PciAddress{};
}

std::uint16_t port_of(const char* var) {
    auto p = ethdev::find(bdf(var));
    return p ? *p : 0xffff;
}

testing::Mac mac_of(std::uint16_t port) {
    auto m = ethdev::macaddr_get(port);
    return m ? m->bytes : testing::Mac{};
}

mbuf::Mbuf* frame_mbuf(mbuf::MbufPool& pool, const Bytes& b) {
    mbuf::Mbuf* m = pool.alloc();
    if (m != nullptr)
        std::memcpy(m->append(static_cast<std::uint16_t>(b.size())), b.data(), b.size());
    return m;
}

// Sends `n` frames made by `make(i)` on (port, q); returns how many went.
template <class F>
unsigned send_frames(mbuf::MbufPool& pool, std::uint16_t port, std::uint16_t q, unsigned n,
                     F make) {
    unsigned sent = 0;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (sent < n && std::chrono::steady_clock::now() < deadline) {
        std::array<mbuf::Mbuf*, 32> ms{};
        const unsigned want = std::min(32u, n - sent);
        unsigned have = 0;
        for (; have < want; ++have)
            if ((ms[have] = frame_mbuf(pool, make(sent + have))) == nullptr)
                break;
        const std::uint16_t k = ethdev::tx_burst(port, q, ms.data(), static_cast<std::uint16_t>(have));
        for (unsigned i = k; i < have; ++i)
            ms[i]->free();
        sent += k;
        if (k < have)
            std::this_thread::sleep_for(1ms);
    }
    return sent;
}

// Polls (port, q) until `want` frames came or `limit` passed, then 300 ms
// more for any extra; `each` sees every frame before it is freed.
template <class F>
unsigned receive(std::uint16_t port, std::uint16_t q, unsigned want,
                 std::chrono::milliseconds limit, F each) {
    unsigned got = 0;
    auto deadline = std::chrono::steady_clock::now() + limit;
    bool extra = false;
    for (;;) {
        std::array<mbuf::Mbuf*, 32> pkts{};
        const std::uint16_t n = ethdev::rx_burst(port, q, pkts.data(), 32);
        for (std::uint16_t i = 0; i < n; ++i) {
            each(*pkts[i]);
            pkts[i]->free();
        }
        got += n;
        const auto now = std::chrono::steady_clock::now();
        if (got >= want && !extra) {
            extra = true;
            deadline = now + 300ms;
        }
        if (now >= deadline)
            return got;
        if (n == 0)
            std::this_thread::sleep_for(200us);
    }
}

std::uint16_t udp_dport(const mbuf::Mbuf& m) {
    const std::uint8_t* d = m.data();
    return m.data_len >= 38 ? static_cast<std::uint16_t>(d[36] << 8 | d[37]) : 0;
}

// --- the secondary: "--secondary ROLE PORT RXQ TXQ WANT"; exit 0 when
// every check held. Prints "ready" once attached and checked, then its
// counts.

int fail_with(int code, const std::string& what) {
    std::fprintf(stderr, "secondary: %s\n", what.c_str());
    return code;
}

int secondary_main(int argc, char** argv) {
    const std::string role = argv[2];  // "em" or "igb"
    const auto port = static_cast<std::uint16_t>(std::stoul(argv[3]));
    const auto rxq = static_cast<std::uint16_t>(std::stoul(argv[4]));
    const auto txq = static_cast<std::uint16_t>(std::stoul(argv[5]));
    const unsigned want = static_cast<unsigned>(std::stoul(argv[6]));
    const std::uint16_t tx_port = argc > 7 ? static_cast<std::uint16_t>(std::stoul(argv[7])) : port;
    std::vector<std::string> args = {"mp_net_lab_test", "--proc-type=secondary", "--file-prefix",
                                     prefix(), "--lcores", "1@0"};
    for (const char* v : {"VFIOKIT_MPNET_TX", "VFIOKIT_MPNET_RX", "VFIOKIT_MPNET_IGB"})
        if (!env(v).empty() && (role == "igb") == (std::string(v) == "VFIOKIT_MPNET_IGB"))
            args.insert(args.end(), {"-a", env(v)});
    std::vector<const char*> av;
    for (const auto& a : args)
        av.push_back(a.c_str());
    auto e = eal::Eal::init(static_cast<int>(av.size()), av.data());
    if (!e)
        return fail_with(10, e.error().message());
    if (!ethdev::is_attached_from_primary(port)) {
        std::size_t devs = 0;
        for (const auto& c : (*e)->vfio().containers())
            devs += c->devices().size();
        std::fprintf(stderr, "secondary: role %d, %zu -a, %zu devices from the primary, %zu ports, "
                     "%zu reports\n", static_cast<int>((*e)->proc_type()),
                     (*e)->options().allow.size(), devs, ethdev::ports().size(),
                     (*e)->device_report().size());
        for (const auto& r : (*e)->device_report())
            std::fprintf(stderr, "secondary: %s %s driver '%s' probed %d: %s\n", r.bus.c_str(),
                         r.addr.str().c_str(), r.driver.c_str(), r.probed, r.reason.c_str());
        return fail_with(11, "port " + std::to_string(port) + " is not attached from the primary");
    }
    mbuf::MbufPool* pool = mbuf::MbufPool::lookup(kPool);
    if (pool == nullptr)
        return fail_with(12, "no pool " + std::string(kPool) + " from the primary");
    // Every call that changes the port is the primary's.
    int refused = 0;
    auto expect_eperm = [&](const char* call, const Result<void>& r) {
        if (!r && r.error().err() == EPERM) {
            ++refused;
            if (refused == 1)
                std::printf("secondary: refused as expected: %s\n", r.error().message().c_str());
        } else {
            std::fprintf(stderr, "secondary: %s was not refused with EPERM: %s\n", call,
                         r ? "it succeeded" : r.error().message().c_str());
        }
    };
    expect_eperm("configure", ethdev::configure(port, 1, 1, {}));
    expect_eperm("rx_queue_setup", ethdev::rx_queue_setup(port, rxq, kRing, -1, {}, *pool));
    expect_eperm("tx_queue_setup", ethdev::tx_queue_setup(port, txq, kRing, -1, {}));
    expect_eperm("start", ethdev::start(port));
    expect_eperm("stop", ethdev::stop(port));
    expect_eperm("promiscuous_enable", ethdev::promiscuous_enable(port));
    expect_eperm("mtu_set", ethdev::mtu_set(port, 1400));
    expect_eperm("stats_reset", ethdev::stats_reset(port));
    if (refused != 8)
        return fail_with(13, std::to_string(refused) + " of 8 control calls refused");
    auto link = ethdev::link_get_nowait(port);
    if (!link || !link->up)
        return fail_with(14, "link from the primary: " +
                                 (link ? link->str() : link.error().message()));
    std::printf("ready\n");
    std::fflush(stdout);

    unsigned bad = 0;
    const unsigned got = receive(port, rxq, want, 20s, [&](const mbuf::Mbuf& m) {
        if (m.port != port || (role == "em" && udp_dport(m) != 5000))
            ++bad;
    });
    std::printf("secondary rx port %u queue %u: %u frames (%u unexpected)\n", port, rxq, got, bad);
    // Back the other way, on the tx queue given.
    const testing::Mac src = mac_of(tx_port);
    const testing::Mac dst = role == "em" ? mac_of(port) : testing::Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const unsigned sent = send_frames(*pool, tx_port, txq, kSecondaryTx, [&](unsigned i) {
        return testing::udp_frame({dst, src, 0x0a000009, 0x0a00000a,
                                   static_cast<std::uint16_t>(2000 + i), kMarkPort},
                                  46, static_cast<std::uint8_t>(i));
    });
    std::printf("secondary tx port %u queue %u: %u frames\n", tx_port, txq, sent);
    auto st = ethdev::stats_get(port);
    if (!st)
        return fail_with(15, "stats from the primary: " + st.error().message());
    std::printf("secondary stats of port %u (from the primary): rx queue %u %" PRIu64
                " packets\n", port, rxq, st->q_ipackets[rxq]);
    std::fflush(stdout);
    if (st->q_ipackets[rxq] < got)
        return fail_with(16, "the primary's stats miss the secondary's packets");
    if (got != want || bad != 0)
        return 17;
    return sent == kSecondaryTx ? 0 : 18;
}

// "--secondary probe-idle BDF": attach naming a port that is not started
// (expected to fail Eal::init with exit code 10).
int probe_idle(const char* device) {
    const std::string p = prefix();
    const char* av[] = {"mp_net_lab_test", "--proc-type=secondary", "--file-prefix", p.c_str(),
                        "--lcores", "1@0", "-a", device};
    auto e = eal::Eal::init(8, av);
    if (!e)
        return fail_with(10, e.error().message());
    return 0;
}

// --- the primary's side

struct Child {
    pid_t pid = -1;
    int out = -1;       // its stdout
    std::string text;   // everything read so far (stdout and stderr: one pipe)
};

Child spawn(const std::vector<std::string>& args) {
    const std::string exe = testing::self_exe();
    Child c;
    if (exe.empty())
        return c;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0)
        return c;
    std::fflush(stdout);
    c.pid = ::fork();
    if (c.pid == 0) {
        ::dup2(p[1], 1);
        ::dup2(p[1], 2);
        std::vector<const char*> av{exe.c_str(), "--secondary"};
        for (const auto& a : args)
            av.push_back(a.c_str());
        av.push_back(nullptr);
        ::execv(exe.c_str(), const_cast<char* const*>(av.data()));
        std::_Exit(101);
    }
    ::close(p[1]);
    c.out = p[0];
    return c;
}

// Reads the child's output until `line` appears or it ends / `limit` passes.
bool wait_for(Child& c, const std::string& line, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (c.text.find(line) == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return false;
        pollfd pf{c.out, POLLIN, 0};
        if (::poll(&pf, 1, static_cast<int>(left.count())) <= 0)
            return false;
        char buf[4096];
        const ssize_t k = ::read(c.out, buf, sizeof buf);
        if (k <= 0)
            return c.text.find(line) != std::string::npos;
        c.text.append(buf, static_cast<std::size_t>(k));
    }
    return true;
}

int finish(Child& c) {
    (void)wait_for(c, "\x01never", 60s);  // drains until it closes its output
    ::close(c.out);
    int st = 0;
    ::waitpid(c.pid, &st, 0);
    std::printf("--- secondary (pid %d) said:\n%s---\n", c.pid, c.text.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::unique_ptr<eal::Eal> g_eal;
mbuf::MbufPool* g_pool = nullptr;

class MpNet : public ::testing::TestWithParam<std::string> {
protected:
    static void bring_up(std::uint16_t port, std::uint16_t nq, const ethdev::PortConf& conf,
                         bool start = true) {
        ASSERT_NE(port, 0xffff) << "no port: is the device in the job's -a list?";
        auto c = ethdev::configure(port, nq, nq, conf);
        ASSERT_TRUE(c) << c.error().message();
        for (std::uint16_t q = 0; q < nq; ++q) {
            auto r = ethdev::rx_queue_setup(port, q, kRing, -1, {}, *g_pool);
            ASSERT_TRUE(r) << r.error().message();
            auto t = ethdev::tx_queue_setup(port, q, kRing, -1, {});
            ASSERT_TRUE(t) << t.error().message();
        }
        if (!start)
            return;
        auto s = ethdev::start(port);
        ASSERT_TRUE(s) << s.error().message();
        auto l = ethdev::link_get(port);
        ASSERT_TRUE(l && l->up) << "link of port " << port << " is not up";
    }
    static void init(const std::vector<const char*>& devices) {
        std::vector<const char*> av = {"mp_net_lab_test", "--proc-type=primary", "--file-prefix",
                                       nullptr, "-l", "0", "-m", "64"};
        const std::string p = prefix();
        av[3] = p.c_str();
        for (const char* d : devices)
            av.insert(av.end(), {"-a", d});
        auto e = eal::Eal::init(static_cast<int>(av.size()), av.data());
        ASSERT_TRUE(e) << e.error().message();
        g_eal = std::move(*e);
        auto pool = mbuf::MbufPool::create(kPool, 2047, 32, 0, mbuf::kDefaultDataRoom);
        ASSERT_TRUE(pool) << pool.error().message();
        g_pool = *pool;
    }
    // Closes every port; then every mbuf must be back.
    static void close_and_count() {
        for (std::uint16_t p : ethdev::ports())
            EXPECT_TRUE(ethdev::close(p));
        EXPECT_EQ(g_pool->in_use_count(), 0u)
            << "mbufs missing from the pool after the secondaries exited and the ports closed";
        std::printf("pool %s: %u of %u mbufs back after the secondaries exited\n", kPool,
                    g_pool->avail_count(), g_pool->size());
        EXPECT_TRUE(mbuf::MbufPool::destroy(g_pool));
        g_pool = nullptr;
        g_eal.reset();
    }
    static void not_started_is_refused(const std::string& idle) {
        Child c = spawn({"probe-idle", idle});
        const int rc = finish(c);
        EXPECT_EQ(rc, 10) << "a secondary naming a port the primary did not start must fail "
                             "Eal::init";
        EXPECT_NE(c.text.find("has not started the port"), std::string::npos) << c.text;
    }
};

TEST_P(MpNet, SecondaryPollsAQueueThePrimaryLeavesIt) {
    const std::string kind = env("VFIOKIT_MPNET");
    ASSERT_TRUE(kind == "em" || kind == "igb") << "VFIOKIT_MPNET must be em or igb";
    if (kind == "em") {
        const std::string tx = env("VFIOKIT_MPNET_TX"), rx = env("VFIOKIT_MPNET_RX"),
                          idle = env("VFIOKIT_MPNET_IDLE");
        ASSERT_NO_FATAL_FAILURE(init({tx.c_str(), rx.c_str(), idle.c_str()}));
        const std::uint16_t tp = port_of("VFIOKIT_MPNET_TX"), rp = port_of("VFIOKIT_MPNET_RX");
        ASSERT_NO_FATAL_FAILURE(bring_up(tp, 1, {}));
        ASSERT_NO_FATAL_FAILURE(bring_up(rp, 1, {}));
        ASSERT_NO_FATAL_FAILURE(bring_up(port_of("VFIOKIT_MPNET_IDLE"), 1, {}, false));
        ASSERT_TRUE(ethdev::stats_reset(rp));
        // The primary does not poll RX: its queue 0 is the secondary's.
        Child c = spawn({"em", std::to_string(rp), "0", "0", std::to_string(kPrimaryTx),
                         std::to_string(tp)});
        ASSERT_TRUE(wait_for(c, "ready\n", 60s)) << finish(c);
        const testing::Mac src = mac_of(tp), dst = mac_of(rp);
        const unsigned sent = send_frames(*g_pool, tp, 0, kPrimaryTx, [&](unsigned i) {
            return testing::udp_frame({dst, src, 0x0a000001, 0x0a000002,
                                       static_cast<std::uint16_t>(4000 + i), 5000},
                                      46, static_cast<std::uint8_t>(i));
        });
        EXPECT_EQ(sent, kPrimaryTx);
        EXPECT_EQ(finish(c), 0) << "the secondary's checks (its output is above)";
        EXPECT_NE(c.text.find("queue 0: " + std::to_string(kPrimaryTx) + " frames (0 unexpected)"),
                  std::string::npos);
        // What the secondary sent on TX's queue, now that it is gone.
        unsigned marked = 0;
        const unsigned got = receive(rp, 0, kSecondaryTx, 10s, [&](const mbuf::Mbuf& m) {
            marked += udp_dport(m) == kMarkPort;
        });
        EXPECT_EQ(got, kSecondaryTx);
        EXPECT_EQ(marked, kSecondaryTx);
        std::printf("em (%s): primary sent %u, secondary received them on queue 0; secondary "
                    "sent %u, primary received %u\n",
                    mode_label().c_str(), sent, kSecondaryTx, got);
        ASSERT_NO_FATAL_FAILURE(not_started_is_refused(idle));
    } else {
        const std::string igb = env("VFIOKIT_MPNET_IGB");
        const std::string peer_if = testing::netdev_of(env("VFIOKIT_MPNET_PEER"));
        ASSERT_FALSE(peer_if.empty()) << "the peer NIC has no kernel netdev";
        ASSERT_NO_FATAL_FAILURE(init({igb.c_str()}));
        const std::uint16_t port = port_of("VFIOKIT_MPNET_IGB");
        ethdev::PortConf conf;
        conf.rx_offloads = ethdev::offload::kRxRssHash;
        conf.rss_hf = ethdev::rss::kIpv4 | ethdev::rss::kIpv4Udp;
        ASSERT_NO_FATAL_FAILURE(bring_up(port, 2, conf));
        testing::PacketSocket peer(peer_if);
        ASSERT_GE(peer.fd(), 0) << peer.error();
        auto pm = testing::parse_mac(testing::read_line("/sys/class/net/" + peer_if + "/address"));
        ASSERT_TRUE(pm);
        const testing::Mac igb_mac = mac_of(port);
        constexpr unsigned kFlows = 64, kPerFlow = 4;
        auto flow = [&](unsigned i) {
            return testing::UdpFlow{igb_mac, *pm, 0xc6120000 + i, 0xc6130001,
                                    static_cast<std::uint16_t>(1024 + 7 * i),
                                    static_cast<std::uint16_t>(9000 + i % 3)};
        };
        std::array<unsigned, 2> expect{};
        for (unsigned f = 0; f < kFlows; ++f) {
            const auto fl = flow(f);
            expect[igb::rss_queue(igb::rss_hash_ipv4_l4(igb::kDefaultRssKey, fl.saddr, fl.daddr,
                                                        fl.sport, fl.dport),
                                  2)] += kPerFlow;
        }
        ASSERT_GT(expect[0], 0u);
        ASSERT_GT(expect[1], 0u);
        Child c = spawn({"igb", std::to_string(port), "1", "1", std::to_string(expect[1])});
        ASSERT_TRUE(wait_for(c, "ready\n", 60s)) << finish(c);
        // The peer sends while both processes poll their own queue.
        std::thread sender([&] {
            for (unsigned r = 0; r < kPerFlow; ++r)
                for (unsigned f = 0; f < kFlows; ++f)
                    (void)peer.send(testing::udp_frame(flow(f), 64, static_cast<std::uint8_t>(f)));
        });
        const unsigned got0 = receive(port, 0, expect[0], 20s, [](const mbuf::Mbuf&) {});
        sender.join();
        // The secondary's frames on tx queue 1 reach the peer.
        unsigned marked = 0;
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (marked < kSecondaryTx && std::chrono::steady_clock::now() < deadline)
            if (auto f = peer.recv(200); f && f->bytes.size() >= 38 &&
                                         (f->bytes[36] << 8 | f->bytes[37]) == kMarkPort)
                ++marked;
        EXPECT_EQ(finish(c), 0) << "the secondary's checks (its output is above)";
        const std::string want1 = "queue 1: " + std::to_string(expect[1]) + " frames (0 unexpected)";
        EXPECT_NE(c.text.find(want1), std::string::npos) << "expected '" << want1 << "'";
        EXPECT_EQ(got0, expect[0]);
        EXPECT_EQ(marked, kSecondaryTx);
        std::printf("igb (%s): peer sent %u over %u flows; primary queue 0 got %u, secondary "
                    "queue 1 expected %u (RSS); secondary sent %u on tx queue 1, peer got %u\n",
                    mode_label().c_str(), kFlows * kPerFlow, kFlows, got0, expect[1],
                    kSecondaryTx, marked);
        // The same port stopped: a secondary attaching now is refused.
        ASSERT_TRUE(ethdev::stop(port));
        ASSERT_NO_FATAL_FAILURE(not_started_is_refused(igb));
    }
    close_and_count();
}

INSTANTIATE_TEST_SUITE_P(Lab, MpNet, ::testing::Values(mode_label()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace vfiokit

int main(int argc, char** argv) {
    if (argc == 4 && std::string_view(argv[1]) == "--secondary" &&
        std::string_view(argv[2]) == "probe-idle")
        return vfiokit::probe_idle(argv[3]);
    if (argc >= 7 && std::string_view(argv[1]) == "--secondary")
        return vfiokit::secondary_main(argc, argv);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
