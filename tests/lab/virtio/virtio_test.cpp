// The virtio-net PMD on QEMU's modern virtio-net-pci, once per VFIO mode
// (devtools/lab/jobs/em-iommu.sh, em-noiommu.sh, igb-modern.sh: every
// shape with the device, no-IOMMU included). The program goes through
// Eal::init -a BDF with the registered driver, like an application. Its
// peer is a NIC on the same QEMU hub left on the guest kernel's driver:
// its counters and an AF_PACKET socket say what it received, it sends what
// the port must receive, and busybox ping on it goes through the kernel's
// IPv4 stack to the test's own ARP and ICMP responder on the port.
//
//   VFIOKIT_VIRTIO=0000:00:06.0                 the device, on vfio-pci
//   VFIOKIT_VIRTIO_KERNEL_MAC=52:54:00:...      what the kernel's virtio_net
//                                               showed before the job bound it
//   VFIOKIT_VIRTIO_PEER=0000:00:05.0            the peer, on its kernel driver,
//                                               up with VFIOKIT_VIRTIO_PEER_IP
//   VFIOKIT_VIRTIO_PEER_IP=198.18.20.1  VFIOKIT_VIRTIO_IP=198.18.20.2
//   VFIOKIT_VIRTIO_HUBPORT=hp2  VFIOKIT_ACTION_FD=4  the device's QEMU hub port,
//                                               whose link the host sets
//   virtio_lab_test --gtest_filter='Lab/*'
//
// One EAL and one mbuf pool for the suite (ethdev::close frees a port's
// id for good, so every test but the last stops the port); the last test
// closes it and checks that nothing is left: every mbuf back, the pool
// destroyed, no fd or BAR mapping more than before.
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lab_env.hpp"
#include "net_intr.hpp"
#include "peer.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/mbuf/mbuf.hpp"
#include "virtio.hpp"

namespace vfiokit::virtio::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::Bytes;
using testing::env;
using testing::mode_label;

constexpr std::uint16_t kRing = 256;
constexpr std::uint16_t kUdpPort = 7400;   // the test's frames: UDP to this port
constexpr unsigned kFrames = 1000;         // per direction
constexpr unsigned kRound = 100;           // in flight at most (the peer's ring takes it)

struct Suite {
    int fds_before = -1;
    int maps_before = -1;
    std::unique_ptr<eal::Eal> eal;
    mbuf::MbufPool* pool = nullptr;
    PciAddress addr{};
    std::uint16_t port = 0;
    std::string peer_if;
    testing::Mac peer_mac{};
    testing::Mac port_mac{};
    std::string setup_error;
};
Suite& suite() {
    static Suite s;
    return s;
}

// Mappings of VFIO device fds (BARs) in this process.
int vfio_mappings() {
    std::ifstream f("/proc/self/maps");
    int n = 0;
    for (std::string line; std::getline(f, line);)
        n += line.find("[vfio-device]") != std::string::npos ||
             line.find("/dev/vfio/") != std::string::npos;
    return n;
}

std::uint32_t ipv4(const std::string& s) {
    in_addr a{};
    return ::inet_pton(AF_INET, s.c_str(), &a) == 1 ? ntohl(a.s_addr) : 0;
}

// The test's frames: UDP to kUdpPort, the sequence number in the first
// four payload bytes, lengths from 60 to 1514.
std::size_t payload_of(unsigned seq) { return 60 - 42 + (seq * 97) % (1514 - 60 + 1); }
Bytes test_frame(unsigned seq, const testing::Mac& dst, const testing::Mac& src) {
    testing::UdpFlow f{dst, src, 0xc6121401, 0xc6121402, 5000, kUdpPort};
    Bytes b = testing::udp_frame(f, payload_of(seq), static_cast<std::uint8_t>(seq));
    std::memcpy(&b[42], &seq, 4);
    return b;
}
// The sequence number of a test frame; -1 for any other frame.
long seq_of(const std::uint8_t* p, std::size_t len) {
    if (len < 46 || p[12] != 0x08 || p[13] != 0x00 || p[23] != 17 ||
        (p[36] << 8 | p[37]) != kUdpPort)
        return -1;
    unsigned seq = 0;
    std::memcpy(&seq, p + 42, 4);
    return seq;
}

Bytes bytes_of(const mbuf::Mbuf* m) {
    Bytes b;
    for (const mbuf::Mbuf* s = m; s != nullptr; s = s->next)
        b.insert(b.end(), s->data(), s->data() + s->data_len);
    return b;
}

class VirtioLab : public ::testing::TestWithParam<std::string> {
public:
    static void SetUpTestSuite() {
        Suite& s = suite();
        s.fds_before = testing::open_fds();
        s.maps_before = vfio_mappings();
        const std::string bdf = env("VFIOKIT_VIRTIO");
        auto a = PciAddress::parse(bdf);
        if (!a) {
            s.setup_error = "VFIOKIT_VIRTIO '" + bdf + "' is not a PCI address: the job names the device";
            return;
        }
        s.addr = *a;
        const char* argv[] = {"virtio_lab_test", "-a", bdf.c_str()};
        auto e = eal::Eal::init(3, argv);
        if (!e) {
            s.setup_error = "Eal::init -a " + bdf + ": " + e.error().message();
            return;
        }
        s.eal = std::move(*e);
        auto port = ethdev::find(s.addr);
        if (!port) {
            s.setup_error = "no ethdev port for " + bdf + ": " + port.error().message();
            return;
        }
        s.port = *port;
        auto pool = mbuf::MbufPool::create("virtio_lab", 2047, 64, 0, mbuf::kDefaultDataRoom);
        if (!pool) {
            s.setup_error = "mbuf pool: " + pool.error().message();
            return;
        }
        s.pool = *pool;
        s.peer_if = testing::netdev_of(env("VFIOKIT_VIRTIO_PEER"));
        if (auto m = testing::parse_mac(testing::read_line("/sys/class/net/" + s.peer_if + "/address")))
            s.peer_mac = *m;
        if (auto m = ethdev::macaddr_get(s.port))
            s.port_mac = m->bytes;
    }

protected:
    void SetUp() override {
        ASSERT_TRUE(suite().setup_error.empty()) << suite().setup_error;
        ASSERT_FALSE(suite().peer_if.empty())
            << "VFIOKIT_VIRTIO_PEER (" << env("VFIOKIT_VIRTIO_PEER")
            << ") has no kernel netdev: the job leaves the peer on its kernel driver";
        (void)ethdev::stop(port());  // a failed earlier test may have left it started
    }
    static std::uint16_t port() { return suite().port; }
    static mbuf::MbufPool& pool() { return *suite().pool; }

    static void bring_up(const ethdev::PortConf& conf = {}) {
        auto c = ethdev::configure(port(), 1, 1, conf);
        ASSERT_TRUE(c) << c.error().message();
        auto r = ethdev::rx_queue_setup(port(), 0, kRing, -1, {}, pool());
        ASSERT_TRUE(r) << r.error().message();
        auto t = ethdev::tx_queue_setup(port(), 0, kRing, -1, {});
        ASSERT_TRUE(t) << t.error().message();
        auto s = ethdev::start(port());
        ASSERT_TRUE(s) << s.error().message();
        auto l = ethdev::link_get(port());
        ASSERT_TRUE(l) << l.error().message();
        ASSERT_TRUE(l->up) << "link down after 9 s: " << l->str();
        ASSERT_TRUE(ethdev::stats_reset(port()));
    }

    static mbuf::Mbuf* mbuf_of(const Bytes& b) {
        mbuf::Mbuf* m = pool().alloc();
        if (m != nullptr)
            std::memcpy(m->append(static_cast<std::uint16_t>(b.size())), b.data(), b.size());
        return m;
    }

    // Sends every frame, retrying while the ring is full (10 s at most).
    static unsigned send_all(const std::vector<Bytes>& frames) {
        std::vector<mbuf::Mbuf*> ms;
        for (const auto& f : frames)
            ms.push_back(mbuf_of(f));
        if (std::count(ms.begin(), ms.end(), nullptr) != 0) {
            for (auto* m : ms)
                if (m)
                    m->free();
            ADD_FAILURE() << "pool empty";
            return 0;
        }
        unsigned sent = 0;
        const auto deadline = Clock::now() + 10s;
        while (sent < ms.size() && Clock::now() < deadline) {
            const auto n = static_cast<std::uint16_t>(std::min<std::size_t>(32, ms.size() - sent));
            sent += ethdev::tx_burst(port(), 0, ms.data() + sent, n);
        }
        for (std::size_t i = sent; i < ms.size(); ++i)
            ms[i]->free();
        return sent;
    }

    // What the port receives in the test's frames (seq -> times seen, with
    // the bytes checked against `dst`/`src`) until `want` of them came or
    // `limit` passed, and `settle` more to catch extras. Others are
    // counted as foreign; every mbuf is freed.
    struct Received {
        std::map<long, unsigned> seen;
        unsigned frames = 0, foreign = 0, bad_bytes = 0, flagged = 0;
        std::uint64_t bytes = 0;
    };
    static void receive(Received& r, unsigned want, std::chrono::milliseconds limit,
                        const testing::Mac& dst, const testing::Mac& src,
                        std::chrono::milliseconds settle = 300ms) {
        auto deadline = Clock::now() + limit;
        bool extra = false;
        for (;;) {
            mbuf::Mbuf* pkts[32];
            const std::uint16_t n = ethdev::rx_burst(port(), 0, pkts, 32);
            for (std::uint16_t i = 0; i < n; ++i) {
                const Bytes b = bytes_of(pkts[i]);
                EXPECT_EQ(pkts[i]->port, port());
                r.flagged += pkts[i]->ol_flags != 0;
                ++r.frames;
                const long seq = seq_of(b.data(), b.size());
                if (seq < 0) {
                    ++r.foreign;
                } else {
                    ++r.seen[seq];
                    r.bytes += b.size();
                    r.bad_bytes += b != test_frame(static_cast<unsigned>(seq), dst, src);
                }
                pkts[i]->free();
            }
            const auto now = Clock::now();
            if (r.seen.size() >= want && !extra) {
                extra = true;
                deadline = now + settle;
            }
            if (now >= deadline)
                return;
            if (n == 0)
                std::this_thread::sleep_for(200us);
        }
    }
};

// Probe through -a: driven by net_virtio, with the address the kernel's
// virtio_net read from the same device, the link up, VERSION_1
// negotiated, and ACCESS_PLATFORM exactly where the shape's device has
// iommu_platform=on (the IOMMU shapes): without it that device would
// bypass the IOMMU.
TEST_P(VirtioLab, ProbesWithTheKernelsMacAndFeatures) {
    auto info = ethdev::info(port());
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->driver_name, "net_virtio");
    EXPECT_EQ(info->device_name, suite().addr.str());
    VirtioDevice* dev = driver().find(suite().addr);
    ASSERT_NE(dev, nullptr) << "not probed by net_virtio";
    const DeviceConfig& cfg = dev->config();
    const std::string kernel_mac = env("VFIOKIT_VIRTIO_KERNEL_MAC");
    ASSERT_FALSE(kernel_mac.empty())
        << "VFIOKIT_VIRTIO_KERNEL_MAC unset: the job records the kernel's address before binding";
    auto mac = ethdev::macaddr_get(port());
    ASSERT_TRUE(mac) << mac.error().message();
    EXPECT_EQ(mac->str(), kernel_mac);
    EXPECT_TRUE(cfg.mac_from_device);
    EXPECT_TRUE(cfg.features & feature(kFVersion1));
    EXPECT_EQ((cfg.features & feature(kFAccessPlatform)) != 0, testing::iommu_shape())
        << "shape " << testing::shape() << ": negotiated " << feature_names(cfg.features);
    EXPECT_EQ(cfg.features & ~cfg.offered & ~required_features(cfg.offered), 0u);
    ASSERT_NO_FATAL_FAILURE(bring_up());
    auto l = ethdev::link_get_nowait(port());
    ASSERT_TRUE(l) << l.error().message();
    EXPECT_TRUE(l->up);
    std::printf("%s (%s): port %u MAC %s (kernel: %s), %s, queues %u/%u of %u descriptors\n"
                "  offered:    %s\n  negotiated: %s\n",
                suite().addr.str().c_str(), GetParam().c_str(), port(), mac->str().c_str(),
                kernel_mac.c_str(), l->str().c_str(), info->max_rx_queues, info->max_tx_queues,
                info->rx_desc.max, feature_names(cfg.offered).c_str(),
                feature_names(dev->features()).c_str());
    EXPECT_TRUE(ethdev::stop(port()));
}

// The port sends kFrames counted frames to the peer in rounds of kRound
// (so the peer's ring never overflows): the peer's rx_packets grows by
// exactly that, its capture shows each frame once with its bytes, and the
// port's counters say the same.
TEST_P(VirtioLab, TxExactCountToTheKernelPeer) {
    const Suite& s = suite();
    testing::PacketSocket sock(s.peer_if);
    ASSERT_GE(sock.fd(), 0) << sock.error();
    ASSERT_NO_FATAL_FAILURE(bring_up());
    const std::uint64_t rx0 = testing::netdev_counter(s.peer_if, "rx_packets");
    const std::uint64_t err0 = testing::netdev_counter(s.peer_if, "rx_errors") +
                               testing::netdev_counter(s.peer_if, "rx_dropped");
    std::map<long, unsigned> seen;
    unsigned sent = 0, bad = 0, foreign = 0;
    std::uint64_t sent_bytes = 0;
    const auto t0 = Clock::now();
    for (unsigned base = 0; base < kFrames; base += kRound) {
        std::vector<Bytes> frames;
        for (unsigned k = base; k < base + kRound; ++k) {
            frames.push_back(test_frame(k, s.peer_mac, s.port_mac));
            sent_bytes += frames.back().size();
        }
        const unsigned n = send_all(frames);
        sent += n;
        ASSERT_EQ(n, kRound) << "the tx ring never drained";
        // The peer takes the round before the next one goes.
        unsigned got = 0;
        while (got < kRound) {
            auto f = sock.recv(2000);
            if (!f)
                break;
            const long seq = seq_of(f->bytes.data(), f->bytes.size());
            if (seq < 0) {
                ++foreign;
                continue;
            }
            ++got;
            ++seen[seq];
            bad += f->bytes != test_frame(static_cast<unsigned>(seq), s.peer_mac, s.port_mac);
        }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    // Anything beyond kFrames would show now.
    while (auto f = sock.recv(300)) {
        const long seq = seq_of(f->bytes.data(), f->bytes.size());
        if (seq < 0)
            ++foreign;
        else
            ++seen[seq];
    }
    const std::uint64_t peer_rx = testing::netdev_counter(s.peer_if, "rx_packets") - rx0;
    const std::uint64_t peer_err = testing::netdev_counter(s.peer_if, "rx_errors") +
                                   testing::netdev_counter(s.peer_if, "rx_dropped") - err0;
    unsigned dup = 0;
    for (auto [seq, c] : seen)
        dup += c > 1;
    auto st = ethdev::stats_get(port());
    ASSERT_TRUE(st) << st.error().message();
    std::printf("tx %s -> %s (%s): sent %u frames (%llu bytes) in %.2f s; peer rx_packets +%llu, "
                "captured %zu distinct, %u duplicated, %u wrong bytes, %u foreign, rx errors +%llu; "
                "port opackets %llu obytes %llu oerrors %llu\n",
                s.addr.str().c_str(), s.peer_if.c_str(), GetParam().c_str(), sent,
                static_cast<unsigned long long>(sent_bytes), secs,
                static_cast<unsigned long long>(peer_rx), seen.size(), dup, bad, foreign,
                static_cast<unsigned long long>(peer_err),
                static_cast<unsigned long long>(st->opackets),
                static_cast<unsigned long long>(st->obytes),
                static_cast<unsigned long long>(st->oerrors));
    EXPECT_EQ(sent, kFrames);
    EXPECT_EQ(peer_rx, kFrames) << "the peer's own counter";
    EXPECT_EQ(seen.size(), kFrames);
    EXPECT_EQ(dup, 0u);
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(peer_err, 0u);
    EXPECT_EQ(st->opackets, kFrames);
    EXPECT_EQ(st->obytes, sent_bytes);
    EXPECT_EQ(st->q_opackets[0], kFrames);
    EXPECT_EQ(st->oerrors, 0u);
    EXPECT_TRUE(ethdev::stop(port()));
    EXPECT_EQ(pool().in_use_count(), kRing) << "stopped: the rx ring keeps its mbufs, tx none";
}

// The peer sends kFrames counted frames to the port's address (rounds of
// kRound through its kernel driver): exactly those arrive, once each, with
// their bytes; the port's counters match what it handed out; no checksum
// verdict unless GUEST_CSUM was negotiated (the lab's device, on a hub
// port without a vnet header, does not offer it).
TEST_P(VirtioLab, RxExactCountFromTheKernelPeer) {
    const Suite& s = suite();
    testing::PacketSocket sock(s.peer_if);
    ASSERT_GE(sock.fd(), 0) << sock.error();
    ASSERT_NO_FATAL_FAILURE(bring_up());
    Received r;
    std::uint64_t sent_bytes = 0;
    unsigned sent = 0;
    for (unsigned base = 0; base < kFrames; base += kRound) {
        for (unsigned k = base; k < base + kRound; ++k) {
            const Bytes f = test_frame(k, s.port_mac, s.peer_mac);
            if (sock.send(f)) {
                ++sent;
                sent_bytes += f.size();
            }
        }
        receive(r, base + kRound, 10s, s.port_mac, s.peer_mac, 0ms);
    }
    receive(r, kFrames, 0ms, s.port_mac, s.peer_mac);  // anything beyond kFrames shows now
    unsigned dup = 0;
    for (auto [seq, c] : r.seen)
        dup += c > 1;
    auto st = ethdev::stats_get(port());
    ASSERT_TRUE(st) << st.error().message();
    VirtioDevice* dev = driver().find(s.addr);
    ASSERT_NE(dev, nullptr);
    std::printf("rx %s -> %s (%s): peer sent %u frames (%llu bytes); received %zu distinct "
                "(%llu bytes), %u duplicated, %u wrong bytes, %u foreign, %u with checksum "
                "flags; port ipackets %llu ibytes %llu ierrors %llu rx_nombuf %llu\n",
                s.peer_if.c_str(), s.addr.str().c_str(), GetParam().c_str(), sent,
                static_cast<unsigned long long>(sent_bytes), r.seen.size(),
                static_cast<unsigned long long>(r.bytes), dup, r.bad_bytes, r.foreign, r.flagged,
                static_cast<unsigned long long>(st->ipackets),
                static_cast<unsigned long long>(st->ibytes),
                static_cast<unsigned long long>(st->ierrors),
                static_cast<unsigned long long>(st->rx_nombuf));
    EXPECT_EQ(sent, kFrames) << "the peer's socket refused frames";
    EXPECT_EQ(r.seen.size(), kFrames);
    EXPECT_EQ(dup, 0u);
    EXPECT_EQ(r.bad_bytes, 0u);
    EXPECT_EQ(r.bytes, sent_bytes);
    EXPECT_EQ(st->ipackets, r.frames) << "the port counts what it handed out";
    EXPECT_EQ(st->q_ipackets[0], r.frames);
    EXPECT_EQ(st->ierrors, 0u);
    EXPECT_EQ(st->rx_nombuf, 0u);
    if (!(dev->features() & feature(kFGuestCsum))) {
        EXPECT_EQ(r.flagged, 0u) << "checksum flags without GUEST_CSUM";
    }
    auto xs = ethdev::xstats_get(port());
    ASSERT_TRUE(xs) << xs.error().message();
    bool found = false;
    for (const auto& x : *xs)
        if (x.name == "rx_q0_good_packets") {
            found = true;
            EXPECT_EQ(x.value, r.frames);
        }
    EXPECT_TRUE(found) << "no rx_q0_good_packets in xstats";
    EXPECT_TRUE(ethdev::stop(port()));
}

// The receive filter through the control queue (CTRL_RX): with
// promiscuous mode off the device drops frames for another unicast
// address, with it on they come; frames for the port's own address come
// either way.
TEST_P(VirtioLab, PromiscuousModeThroughTheControlQueue) {
    const Suite& s = suite();
    VirtioDevice* dev = driver().find(s.addr);
    ASSERT_NE(dev, nullptr);
    if (!(dev->config().offered & feature(kFCtrlRx)))
        GTEST_SKIP() << "the device offers no CTRL_RX (" << feature_names(dev->config().offered)
                     << ")";
    testing::PacketSocket sock(s.peer_if);
    ASSERT_GE(sock.fd(), 0) << sock.error();
    ASSERT_NO_FATAL_FAILURE(bring_up());
    ASSERT_TRUE(dev->features() & feature(kFCtrlRx)) << "offered but not negotiated";
    const testing::Mac other{0x02, 0x00, 0x00, 0x00, 0x77, 0x01};
    auto burst = [&](unsigned base, const testing::Mac& dst) {
        unsigned ok = 0;
        for (unsigned k = base; k < base + 20; ++k)
            ok += sock.send(test_frame(k, dst, s.peer_mac));
        return ok;
    };
    unsigned counts[3][2] = {};
    const bool modes[3] = {false, true, false};
    for (int i = 0; i < 3; ++i) {
        auto r = modes[i] ? ethdev::promiscuous_enable(port()) : ethdev::promiscuous_disable(port());
        ASSERT_TRUE(r) << r.error().message();
        ASSERT_EQ(burst(100 * i, other), 20u);
        ASSERT_EQ(burst(100 * i + 50, s.port_mac), 20u);
        Received got_other;
        // The frames for the port come after those for the other address:
        // once they are in, so is anything of the others that passed (and
        // receive() waits 300 ms more for stragglers).
        receive(got_other, modes[i] ? 40 : 20, 3s, other, s.peer_mac);
        for (auto [seq, c] : got_other.seen)
            ++counts[i][seq % 100 >= 50 ? 1 : 0];
        std::printf("promiscuous %s (%s): %u of 20 frames for %s, %u of 20 for the port\n",
                    modes[i] ? "on" : "off", GetParam().c_str(), counts[i][0], "02:00:00:00:77:01",
                    counts[i][1]);
    }
    EXPECT_EQ(counts[0][0], 0u) << "promiscuous off let other addresses in";
    EXPECT_EQ(counts[1][0], 20u) << "promiscuous on";
    EXPECT_EQ(counts[2][0], 0u) << "off again";
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(counts[i][1], 20u) << "frames for the port itself, round " << i;
    EXPECT_TRUE(ethdev::stop(port()));
}

// busybox ping on the peer, through the kernel's IPv4 stack, to the port:
// the test answers ARP requests and ICMP echo requests for
// VFIOKIT_VIRTIO_IP on the port (swap the addresses, reply) while ping
// runs; every echo request is answered.
TEST_P(VirtioLab, PingFromTheKernelPeerGetsEveryReply) {
    const Suite& s = suite();
    const std::string my_ip = env("VFIOKIT_VIRTIO_IP"), peer_ip = env("VFIOKIT_VIRTIO_PEER_IP");
    ASSERT_TRUE(ipv4(my_ip) && ipv4(peer_ip))
        << "VFIOKIT_VIRTIO_IP and VFIOKIT_VIRTIO_PEER_IP name the port's and the peer's addresses";
    ASSERT_NO_FATAL_FAILURE(bring_up());
    // The peer forgets the port's address, so the port answers its ARP first.
    // An empty table is not an error: the flush's status is not checked.
    if (std::system(("ip neigh flush dev " + s.peer_if + " >/dev/null 2>&1").c_str()) != 0) {
    }
    constexpr int kPings = 10;
    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::dup2(out[1], 1);
        ::dup2(out[1], 2);
        const std::string n = std::to_string(kPings);
        ::execlp("ping", "ping", "-A", "-c", n.c_str(), "-w", "20", "-I", s.peer_if.c_str(),
                 my_ip.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(out[1]);
    ::fcntl(out[0], F_SETFL, O_NONBLOCK);
    const std::uint32_t me = ipv4(my_ip);
    unsigned arp = 0, echo = 0, other = 0;
    std::string text;
    int status = -1;
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
        mbuf::Mbuf* pkts[32];
        const std::uint16_t n = ethdev::rx_burst(port(), 0, pkts, 32);
        std::vector<mbuf::Mbuf*> replies;
        for (std::uint16_t i = 0; i < n; ++i) {
            mbuf::Mbuf* m = pkts[i];
            std::uint8_t* p = m->data();
            const std::size_t len = m->data_len;
            auto be32 = [](const std::uint8_t* q) {
                return std::uint32_t{q[0]} << 24 | q[1] << 16 | q[2] << 8 | q[3];
            };
            bool reply = false;
            if (len >= 42 && p[12] == 0x08 && p[13] == 0x06 && p[21] == 1 && be32(p + 38) == me) {
                // ARP request for our address: becomes the reply.
                std::memcpy(p, p + 6, 6);
                std::memcpy(p + 6, s.port_mac.data(), 6);
                p[21] = 2;
                std::uint8_t sender[10];
                std::memcpy(sender, p + 22, 10);             // sender MAC and IP
                std::memcpy(p + 22, s.port_mac.data(), 6);
                std::memcpy(p + 28, p + 38, 4);              // our IP as the sender's
                std::memcpy(p + 32, sender, 10);             // they are the target
                reply = true;
                ++arp;
            } else if (len >= 42 && p[12] == 0x08 && p[13] == 0x00 && p[23] == 1 &&
                       be32(p + 30) == me && p[14 + (p[14] & 0xf) * 4] == 8) {
                // ICMP echo request: swap the addresses, type 0, adjust the
                // checksum for the type's change (RFC 1624).
                const std::size_t icmp = 14 + (p[14] & 0xf) * 4;
                std::uint8_t t[6];
                std::memcpy(t, p, 6);
                std::memcpy(p, p + 6, 6);
                std::memcpy(p + 6, t, 6);
                std::uint8_t ip[4];
                std::memcpy(ip, p + 26, 4);
                std::memcpy(p + 26, p + 30, 4);
                std::memcpy(p + 30, ip, 4);
                p[icmp] = 0;
                std::uint32_t c = (p[icmp + 2] << 8 | p[icmp + 3]) + 0x0800;
                c = (c & 0xffff) + (c >> 16);
                p[icmp + 2] = static_cast<std::uint8_t>(c >> 8);
                p[icmp + 3] = static_cast<std::uint8_t>(c);
                reply = true;
                ++echo;
            } else {
                ++other;
            }
            if (reply)
                replies.push_back(m);
            else
                m->free();
        }
        if (!replies.empty()) {
            const auto sent = ethdev::tx_burst(port(), 0, replies.data(),
                                               static_cast<std::uint16_t>(replies.size()));
            for (std::size_t i = sent; i < replies.size(); ++i)
                replies[i]->free();
        }
        char buf[512];
        for (ssize_t k; (k = ::read(out[0], buf, sizeof buf)) > 0;)
            text.append(buf, static_cast<std::size_t>(k));
        if (::waitpid(pid, &status, WNOHANG) == pid)
            break;
        if (n == 0)
            std::this_thread::sleep_for(200us);
    }
    if (status == -1) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
    }
    char buf[512];
    for (ssize_t k; (k = ::read(out[0], buf, sizeof buf)) > 0;)
        text.append(buf, static_cast<std::size_t>(k));
    ::close(out[0]);
    int replies = -1;
    if (auto at = text.find(" packets received"); at != std::string::npos) {
        auto from = text.rfind(' ', at - 1);
        replies = std::atoi(text.c_str() + from + 1);
    }
    std::printf("%s", text.c_str());
    std::printf("ping %s -> %s (%s): %d of %d replies; the port answered %u ARP and %u echo "
                "requests (%u other frames)\n",
                s.peer_if.c_str(), my_ip.c_str(), GetParam().c_str(), replies, kPings, arp, echo,
                other);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "ping's status " << status;
    EXPECT_EQ(replies, kPings);
    EXPECT_GE(arp, 1u);
    EXPECT_EQ(echo, static_cast<unsigned>(kPings));
    EXPECT_TRUE(ethdev::stop(port()));
}

// Rx interrupts (MSI-X, vector 1 for queue 0): an idle armed queue sleeps
// at next to no CPU; a frame from the peer wakes it and is received.
TEST_P(VirtioLab, RxInterruptWakesForAFrameAndIdlesCheaply) {
    const Suite& s = suite();
    auto info = ethdev::info(port());
    ASSERT_TRUE(info);
    ASSERT_TRUE(info->rxq_interrupt) << "the device has MSI-X: rx interrupts must be offered";
    testing::PacketSocket sock(s.peer_if);
    ASSERT_GE(sock.fd(), 0) << sock.error();
    ethdev::PortConf conf;
    conf.rxq_interrupt = true;
    ASSERT_NO_FATAL_FAILURE(bring_up(conf));
    auto fd = ethdev::rx_intr_fd(port(), 0);
    ASSERT_TRUE(fd) << fd.error().message();
    // Idle: nothing for the port (frames to others are filtered).
    const auto idle = testing::idle_in_interrupt_mode(port(), 0, *fd, 1000ms, 500ms);
    EXPECT_TRUE(idle.error.empty()) << idle.error;
    // A frame while armed.
    ASSERT_TRUE(ethdev::rx_intr_enable(port(), 0));
    (void)testing::drain_eventfd(*fd);
    ASSERT_TRUE(ethdev::rx_intr_enable(port(), 0));
    ASSERT_TRUE(sock.send(test_frame(1, s.port_mac, s.peer_mac)));
    pollfd p{*fd, POLLIN, 0};
    const auto t0 = Clock::now();
    const int woke = ::poll(&p, 1, 3000);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    ASSERT_TRUE(ethdev::rx_intr_disable(port(), 0));
    (void)testing::drain_eventfd(*fd);
    Received r;
    receive(r, 1, 2s, s.port_mac, s.peer_mac);
    std::printf("rx interrupt (%s): idle %.2f s at %.1f%% CPU, %u wakes in %u waits; a frame "
                "woke the queue after %.1f ms (%s), received %zu\n",
                GetParam().c_str(), std::chrono::duration<double>(idle.wall).count(),
                100 * idle.cpu_share(), idle.wakes, idle.waits, ms, woke == 1 ? "woke" : "no wake",
                r.seen.size());
    EXPECT_EQ(woke, 1) << "no interrupt within 3 s";
    EXPECT_EQ(r.seen.size(), 1u);
    EXPECT_LT(idle.cpu_share(), 0.2) << "an idle armed queue burns CPU";
    EXPECT_TRUE(ethdev::stop(port()));
}

// Link-state interrupts (MSI-X vector 0, the configuration vector): the
// host takes the virtio-net's link down (set_link on its hub port,
// VFIOKIT_VIRTIO_HUBPORT) and up; QEMU changes the STATUS field and
// signals a configuration change each time, lsc_fd fires and
// link_get_nowait follows. The rx queue's vector (1) stays quiet.
TEST_P(VirtioLab, LinkStateInterruptFollowsTheHost) {
    const std::string hp = env("VFIOKIT_VIRTIO_HUBPORT");
    ASSERT_FALSE(hp.empty()) << "VFIOKIT_VIRTIO_HUBPORT unset: the job names the device's hub port";
    ethdev::PortConf conf;
    conf.lsc_interrupt = true;
    conf.rxq_interrupt = true;
    ASSERT_NO_FATAL_FAILURE(bring_up(conf));
    auto fd = ethdev::lsc_fd(port());
    ASSERT_TRUE(fd) << fd.error().message();
    auto rfd = ethdev::rx_intr_fd(port(), 0);
    ASSERT_TRUE(rfd) << rfd.error().message();
    EXPECT_NE(*fd, *rfd);
    (void)testing::drain_eventfd(*fd);
    auto await = [&](bool up, ethdev::Link& last) {
        unsigned events = 0;
        const auto deadline = Clock::now() + 10s;
        while (Clock::now() < deadline) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            pollfd p{*fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) != 1)
                break;
            events += testing::drain_eventfd(*fd) > 0;
            auto l = ethdev::link_get_nowait(port());
            if (!l)
                break;
            last = *l;
            if (last.up == up)
                return events;
        }
        if (auto l = ethdev::link_get_nowait(port()))
            last = *l;
        return events;
    };
    ethdev::Link last{};
    last.up = true;
    ASSERT_EQ(testing::host_set_link(hp, false), "") << "set_link " << hp << " off";
    const unsigned down = await(false, last);
    const bool went_down = !last.up;
    const std::string up_err = testing::host_set_link(hp, true);
    const unsigned upev = await(true, last);
    std::printf("link (%s): down %u event(s)%s, up %u event(s), now %s\n", GetParam().c_str(), down,
                went_down ? "" : " but still up", upev, last.str().c_str());
    EXPECT_GE(down, 1u) << "lsc_fd did not fire as the link went down";
    EXPECT_TRUE(went_down) << "link_get_nowait never read down";
    EXPECT_EQ(up_err, "");
    EXPECT_GE(upev, 1u) << "lsc_fd did not fire as the link came back";
    EXPECT_TRUE(last.up);
    EXPECT_EQ(testing::drain_eventfd(*rfd), 0u) << "the rx vector fired without a frame";
    EXPECT_TRUE(ethdev::stop(port()));
}

// Bad input fails with a clear error naming what is wrong, and nothing
// stays behind.
TEST_P(VirtioLab, BadInputClearErrorsNothingLeaked) {
    auto small = mbuf::MbufPool::create("virtio_small", 100, 0, 0, mbuf::kDefaultDataRoom);
    ASSERT_TRUE(small) << small.error().message();
    auto expect_err = [&](const char* what, const Result<void>& r, int err, const char* text) {
        ASSERT_FALSE(r) << what << " succeeded";
        const std::string m = r.error().message();
        std::printf("%s (%s): %s\n", what, GetParam().c_str(), m.c_str());
        EXPECT_EQ(r.error().err(), err) << what;
        EXPECT_NE(m.find(text), std::string::npos) << what << ": no '" << text << "' in: " << m;
    };
    auto info = ethdev::info(port());
    ASSERT_TRUE(info);
    expect_err("configure more queue pairs than offered",
               ethdev::configure(port(), static_cast<std::uint16_t>(info->max_rx_queues + 1), 1, {}),
               EINVAL, "rx queues");
    ethdev::PortConf rss;
    rss.rss_hf = ethdev::rss::kIpv4;
    expect_err("configure RSS", ethdev::configure(port(), 1, 1, rss), EINVAL, "RSS");
    ASSERT_TRUE(ethdev::configure(port(), 1, 1, {}));
    const unsigned before = pool().in_use_count();  // configure released the last rings
    const auto too_big = static_cast<std::uint16_t>(info->rx_desc.max * 2);
    expect_err("rx ring larger than the device's queue",
               ethdev::rx_queue_setup(port(), 0, too_big, -1, {}, pool()), EINVAL,
               std::to_string(info->rx_desc.max).c_str());
    expect_err("rx ring of 256 from a pool of 100",
               ethdev::rx_queue_setup(port(), 0, 256, -1, {}, **small), ENOMEM, "virtio_small");
    ethdev::MacAddr mc;
    mc.bytes = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
    expect_err("a multicast MAC", ethdev::macaddr_set(port(), mc), EINVAL, "multicast");
    EXPECT_EQ(pool().in_use_count(), before) << "the failed setups kept mbufs";
    EXPECT_EQ((*small)->in_use_count(), 0u);
    EXPECT_TRUE(mbuf::MbufPool::destroy(*small));
}

// Stop and start again (the device is reset and set up anew, the rx ring
// posted again from the mbufs it kept): traffic flows both ways after
// each restart. Last: the port closed, every mbuf back in the pool, the
// pool destroyed, the EAL torn down with no fd or BAR mapping left.
TEST_P(VirtioLab, ZRestartsAndCloseLeavesNothing) {
    const Suite& s = suite();
    auto sock = std::make_unique<testing::PacketSocket>(s.peer_if);
    ASSERT_GE(sock->fd(), 0) << sock->error();
    ASSERT_NO_FATAL_FAILURE(bring_up());
    for (int run = 0; run < 3; ++run) {
        if (run > 0) {
            ASSERT_TRUE(ethdev::stop(port()));
            EXPECT_EQ(pool().in_use_count(), kRing) << "stopped: the rx ring's mbufs only";
            auto r = ethdev::start(port());
            ASSERT_TRUE(r) << r.error().message();
            ASSERT_TRUE(ethdev::stats_reset(port()));
        }
        const std::uint64_t rx0 = testing::netdev_counter(s.peer_if, "rx_packets");
        std::vector<Bytes> out;
        for (unsigned k = 0; k < 50; ++k)
            out.push_back(test_frame(1000 * run + k, s.peer_mac, s.port_mac));
        EXPECT_EQ(send_all(out), 50u);
        for (unsigned k = 0; k < 50; ++k)
            EXPECT_TRUE(sock->send(test_frame(1000 * run + 500 + k, s.port_mac, s.peer_mac)));
        Received r;
        receive(r, 50, 5s, s.port_mac, s.peer_mac, 100ms);
        // The peer counts the port's 50 (no more come: the port sends nothing else).
        for (int i = 0; i < 50 && testing::netdev_counter(s.peer_if, "rx_packets") - rx0 < 50; ++i)
            std::this_thread::sleep_for(20ms);
        const std::uint64_t peer = testing::netdev_counter(s.peer_if, "rx_packets") - rx0;
        std::printf("run %d (%s): sent 50, the peer counted %llu; the peer sent 50, received %zu\n",
                    run, GetParam().c_str(), static_cast<unsigned long long>(peer), r.seen.size());
        EXPECT_EQ(peer, 50u) << "run " << run;
        EXPECT_EQ(r.seen.size(), 50u) << "run " << run;
    }
    sock.reset();
    ASSERT_TRUE(ethdev::close(port()));
    EXPECT_EQ(pool().in_use_count(), 0u) << "mbufs not back in the pool after close";
    EXPECT_TRUE(mbuf::MbufPool::destroy(&pool()));
    suite().pool = nullptr;
    suite().eal.reset();
    EXPECT_EQ(driver().instances(), 0u);
    EXPECT_EQ(vfio_mappings(), suite().maps_before);
    EXPECT_EQ(testing::open_fds(), suite().fds_before);
}

INSTANTIATE_TEST_SUITE_P(Lab, VirtioLab, ::testing::Values(mode_label()),
                         [](const auto& i) { return i.param; });

}  // namespace
}  // namespace vfiokit::virtio::net
