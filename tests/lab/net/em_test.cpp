// The em driver on QEMU's e1000 (82540EM) and e1000e (82574L), in the lab
// guest, once per VFIO mode, through Eal::init with -a as an application
// would:
//
//   VFIOKIT_EM_PORTS="0000:00:05.0=52:54:00:12:34:56 ..."  the ports to
//       probe, each with the address the guest kernel's driver showed
//       before the job bound it to vfio-pci
//   VFIOKIT_EM_PAIRS="0000:00:05.0>0000:00:08.0 ..."  sender>receiver on
//       the same QEMU hub
//   em_lab_test --gtest_filter='Lab/*'
//
// The job (devtools/lab/jobs/em-*.sh) reads the addresses and binds the
// NICs. Test names carry the mode ("Lab/EmLab.TxonlyExactCount/cdev").
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "em.hpp"
#include "lab_env.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit::em {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::env;
using testing::mode_label;
using testing::open_fds;

struct PortSpec {
    PciAddress addr;
    ethdev::MacAddr kernel_mac;
};

std::vector<std::string> words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;)
        out.push_back(w);
    return out;
}

std::vector<PortSpec> ports_from_env() {
    std::vector<PortSpec> out;
    for (const auto& w : words(env("VFIOKIT_EM_PORTS"))) {
        const auto eq = w.find('=');
        auto a = PciAddress::parse(w.substr(0, eq));
        auto m = eq == std::string::npos ? Result<ethdev::MacAddr>(fail(EINVAL, "no MAC"))
                                         : ethdev::MacAddr::parse(w.substr(eq + 1));
        if (!a || !m) {
            ADD_FAILURE() << "VFIOKIT_EM_PORTS entry '" << w << "' is not BDF=MAC";
            continue;
        }
        out.push_back({*a, *m});
    }
    return out;
}

std::vector<std::pair<PciAddress, PciAddress>> pairs_from_env() {
    std::vector<std::pair<PciAddress, PciAddress>> out;
    for (const auto& w : words(env("VFIOKIT_EM_PAIRS"))) {
        const auto gt = w.find('>');
        auto a = PciAddress::parse(w.substr(0, gt));
        auto b = gt == std::string::npos ? std::nullopt : PciAddress::parse(w.substr(gt + 1));
        if (!a || !b) {
            ADD_FAILURE() << "VFIOKIT_EM_PAIRS entry '" << w << "' is not TX>RX";
            continue;
        }
        out.emplace_back(*a, *b);
    }
    return out;
}

// The device id sysfs shows: which model the driver must have found.
std::string expected_model(PciAddress a) {
    std::ifstream f("/sys/bus/pci/devices/" + a.str() + "/device");
    std::string id;
    f >> id;
    return id == "0x100e" ? "82540EM" : id == "0x10d3" ? "82574L" : "unknown device " + id;
}

// Mappings of VFIO device fds (BARs) in this process: none before
// Eal::init and none after its teardown. Group mode's device fd is an
// anonymous inode, cdev mode's a node under /dev/vfio/devices.
int vfio_mappings() {
    std::ifstream f("/proc/self/maps");
    int n = 0;
    for (std::string line; std::getline(f, line);)
        n += line.find("[vfio-device]") != std::string::npos ||
             line.find("/dev/vfio/") != std::string::npos;
    return n;
}

Result<std::unique_ptr<eal::Eal>> init_ports(const std::vector<PortSpec>& ports) {
    std::vector<std::string> args{"em_lab_test"};
    for (const auto& p : ports) {
        args.push_back("-a");
        args.push_back(p.addr.str());
    }
    std::vector<const char*> argv;
    for (const auto& a : args)
        argv.push_back(a.c_str());
    return eal::Eal::init(static_cast<int>(argv.size()), argv.data());
}

std::uint16_t port_of(PciAddress a) {
    auto p = ethdev::find(a);
    EXPECT_TRUE(p) << p.error().message();
    return p ? *p : ethdev::kMaxPorts;
}

// --- frames: Ethernet / IPv4 / UDP with valid checksums, a sequence
// number and a pattern, 60 to 1514 bytes (no CRC).
constexpr std::size_t kEth = 14, kIp = 20, kUdp = 8;

std::uint16_t frame_len(std::uint32_t seq) { return static_cast<std::uint16_t>(60 + (seq * 37) % 1455); }

std::uint16_t csum_fold(std::uint32_t sum) {
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}
std::uint32_t csum_add(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < n; i += 2)
        sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    if (n & 1)
        sum += static_cast<std::uint32_t>(p[n - 1] << 8);
    return sum;
}
void put16(std::uint8_t* p, std::uint16_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}

std::vector<std::uint8_t> make_frame(std::uint32_t seq, const ethdev::MacAddr& dst,
                                     const ethdev::MacAddr& src) {
    const std::uint16_t len = frame_len(seq);
    std::vector<std::uint8_t> f(len, 0);
    std::memcpy(&f[0], dst.bytes.data(), 6);
    std::memcpy(&f[6], src.bytes.data(), 6);
    put16(&f[12], 0x0800);
    std::uint8_t* ip = &f[kEth];
    ip[0] = 0x45;
    put16(ip + 2, static_cast<std::uint16_t>(len - kEth));
    put16(ip + 4, static_cast<std::uint16_t>(seq));
    ip[8] = 64;
    ip[9] = 17;  // UDP
    const std::uint8_t addrs[8] = {198, 18, 0, 1, 198, 18, 0, 2};  // RFC 2544 test range
    std::memcpy(ip + 12, addrs, 8);
    put16(ip + 10, csum_fold(csum_add(ip, kIp)));
    std::uint8_t* udp = ip + kIp;
    const auto udp_len = static_cast<std::uint16_t>(len - kEth - kIp);
    put16(udp, 9);       // discard
    put16(udp + 2, 9);
    put16(udp + 4, udp_len);
    std::uint8_t* pay = udp + kUdp;
    std::memcpy(pay, &seq, 4);
    for (std::size_t i = 4; i < udp_len - kUdp; ++i)
        pay[i] = static_cast<std::uint8_t>(seq * 7 + i);
    // Pseudo-header: addresses, protocol, UDP length.
    std::uint32_t s = csum_add(ip + 12, 8) + 17 + udp_len;
    s = csum_add(udp, udp_len, s);
    std::uint16_t c = csum_fold(s);
    put16(udp + 6, c == 0 ? 0xffff : c);
    return f;
}

std::uint32_t frame_seq(const mbuf::Mbuf* m) {
    std::uint32_t seq = 0;
    if (m->data_len >= kEth + kIp + kUdp + 4)
        std::memcpy(&seq, m->data() + kEth + kIp + kUdp, 4);
    return seq;
}

Result<void> setup_port(std::uint16_t port, mbuf::MbufPool& pool, std::uint64_t rx_offloads) {
    ethdev::PortConf conf;
    conf.rx_offloads = rx_offloads;
    if (auto r = ethdev::configure(port, 1, 1, conf); !r)
        return r;
    if (auto r = ethdev::rx_queue_setup(port, 0, 256, -1, {}, pool); !r)
        return r;
    if (auto r = ethdev::tx_queue_setup(port, 0, 256, -1, {}); !r)
        return r;
    return ethdev::start(port);
}

class EmLab : public ::testing::TestWithParam<std::string> {};

// Probe through -a: every port is there, driven by net_e1000_em, with the
// model sysfs names, the address the kernel's driver read from the same
// EEPROM, and the link up. Teardown leaves no fd, mapping or port.
TEST_P(EmLab, ProbeMacAndLink) {
    const auto specs = ports_from_env();
    ASSERT_FALSE(specs.empty()) << "VFIOKIT_EM_PORTS is empty: the job names the ports";
    const int fds = open_fds();
    ASSERT_EQ(vfio_mappings(), 0);
    auto e = init_ports(specs);
    ASSERT_TRUE(e) << e.error().message();
    EXPECT_EQ(std::size_t{ethdev::count_avail()}, specs.size());
    EXPECT_GT(vfio_mappings(), 0) << "BAR0 of each port is mapped";
    for (const auto& s : specs) {
        const std::uint16_t port = port_of(s.addr);
        EmDevice* dev = driver().find(s.addr);
        ASSERT_NE(dev, nullptr) << s.addr.str() << " not probed by em";
        EXPECT_EQ(dev->port_id(), port);
        EXPECT_EQ(std::string(dev->model().name), expected_model(s.addr));
        auto info = ethdev::info(port);
        ASSERT_TRUE(info) << info.error().message();
        EXPECT_EQ(info->driver_name, "net_e1000_em");
        EXPECT_EQ(info->device_name, s.addr.str());
        auto mac = ethdev::macaddr_get(port);
        ASSERT_TRUE(mac) << mac.error().message();
        EXPECT_EQ(mac->str(), s.kernel_mac.str()) << "EEPROM address differs from the kernel's";
        auto link = ethdev::link_get(port);
        ASSERT_TRUE(link) << link.error().message();
        EXPECT_TRUE(link->up);
        EXPECT_EQ(link->speed_mbps, 1000u);
        EXPECT_TRUE(link->full_duplex);
        std::printf("%s (%s): port %u %s, MAC %s (kernel: %s), %s\n", s.addr.str().c_str(),
                    GetParam().c_str(), port, dev->model().name.data(), mac->str().c_str(),
                    s.kernel_mac.str().c_str(), link->str().c_str());
    }
    e->reset();
    EXPECT_EQ(driver().instances(), 0u);
    EXPECT_EQ(unsigned{ethdev::count_avail()}, 0u);
    EXPECT_EQ(vfio_mappings(), 0);
    EXPECT_EQ(open_fds(), fds);
}

// txonly on one port, rxonly on another on the same hub: exactly the N
// frames sent arrive, each with its length and bytes, once; the NICs'
// statistics registers count the same; every mbuf goes back to the pool.
TEST_P(EmLab, TxonlyExactCount) {
    constexpr std::uint32_t kN = 2000;
    const auto specs = ports_from_env();
    const auto pairs = pairs_from_env();
    ASSERT_FALSE(pairs.empty()) << "VFIOKIT_EM_PAIRS is empty: the job names sender>receiver";
    const int fds = open_fds();
    auto e = init_ports(specs);
    ASSERT_TRUE(e) << e.error().message();
    auto pool = mbuf::MbufPool::create("em_lab", 4095, 64, 0, mbuf::kDefaultDataRoom);
    ASSERT_TRUE(pool) << pool.error().message();
    const std::uint64_t cksum = ethdev::offload::kRxIpv4Cksum | ethdev::offload::kRxUdpCksum |
                                ethdev::offload::kRxTcpCksum;
    for (const auto& [txa, rxa] : pairs) {
        const std::uint16_t tx = port_of(txa), rx = port_of(rxa);
        ASSERT_TRUE(setup_port(tx, **pool, 0));
        auto r = setup_port(rx, **pool, cksum);
        ASSERT_TRUE(r) << r.error().message();
        auto link = ethdev::link_get(rx);
        ASSERT_TRUE(link && link->up);
        ASSERT_TRUE(ethdev::stats_reset(tx));
        ASSERT_TRUE(ethdev::stats_reset(rx));
        const auto dst = *ethdev::macaddr_get(rx), src = *ethdev::macaddr_get(tx);

        std::vector<int> seen(kN, 0);
        std::uint32_t sent = 0, received = 0, bad_len = 0, bad_bytes = 0, unknown = 0;
        std::uint32_t ck_good = 0, ck_bad = 0, ck_none = 0;
        std::uint64_t sent_bytes = 0, recv_bytes = 0;
        auto drain = [&] {
            mbuf::Mbuf* in[32];
            const std::uint16_t n = ethdev::rx_burst(rx, 0, in, 32);
            for (std::uint16_t i = 0; i < n; ++i) {
                mbuf::Mbuf* m = in[i];
                const std::uint32_t seq = frame_seq(m);
                if (seq >= kN) {
                    ++unknown;
                } else {
                    ++seen[seq];
                    const auto want = make_frame(seq, dst, src);
                    if (m->pkt_len != want.size() || m->nb_segs != 1 || m->data_len != want.size())
                        ++bad_len;
                    else if (std::memcmp(m->data(), want.data(), want.size()) != 0)
                        ++bad_bytes;
                }
                const std::uint64_t f = m->ol_flags;
                const bool good = (f & mbuf::ol::kRxIpCksumGood) && (f & mbuf::ol::kRxL4CksumGood);
                ck_good += good;
                ck_bad += (f & (mbuf::ol::kRxIpCksumBad | mbuf::ol::kRxL4CksumBad)) != 0;
                ck_none += f == 0;
                EXPECT_EQ(m->port, rx);
                recv_bytes += m->pkt_len;
                ++received;
                m->free();
            }
        };
        // No flow control: like a wire, the receiver drops what finds no
        // descriptor (MPC). Keep in flight at most what its ring takes
        // for sure: 255 descriptors, less up to 31 waiting for a refill
        // batch. (QEMU's e1000 also holds frames back for a second after
        // each RCTL write, then delivers them at once, dropping those the
        // ring cannot take.)
        constexpr std::uint32_t kWindow = 192;
        const auto deadline = Clock::now() + 30s;
        while (sent < kN && Clock::now() < deadline) {
            if (sent - received + 32 > kWindow) {
                drain();
                continue;
            }
            mbuf::Mbuf* out[32];
            std::uint16_t n = 0;
            for (; n < 32 && sent + n < kN; ++n) {
                const auto f = make_frame(sent + n, dst, src);
                out[n] = (*pool)->alloc();
                ASSERT_NE(out[n], nullptr) << "pool empty after " << sent << " sent";
                std::memcpy(out[n]->append(static_cast<std::uint16_t>(f.size())), f.data(), f.size());
            }
            const std::uint16_t took = ethdev::tx_burst(tx, 0, out, n);
            for (std::uint16_t i = 0; i < took; ++i)
                sent_bytes += out[i]->pkt_len;
            for (std::uint16_t i = took; i < n; ++i)
                out[i]->free();  // built again on the next round
            sent += took;
            drain();
        }
        ASSERT_EQ(sent, kN) << "tx ring never drained";
        // QEMU's e1000 holds frames back for a second after each RCTL
        // write (its flush timer); then they come in one go.
        while (received < kN && Clock::now() < deadline)
            drain();
        const auto quiet = Clock::now() + 500ms;  // anything beyond N would show now
        while (Clock::now() < quiet)
            drain();

        std::uint32_t missing = 0, dup = 0;
        for (int c : seen) {
            missing += c == 0;
            dup += c > 1;
        }
        const std::string rx_model(driver().find(rxa)->model().name);
        std::printf("%s -> %s (%s, %s): sent %u (%llu bytes), received %u (%llu bytes): missing %u, "
                    "duplicated %u, foreign %u, wrong length %u, wrong bytes %u; rx checksum "
                    "flags good %u bad %u none %u\n",
                    txa.str().c_str(), rxa.str().c_str(), rx_model.c_str(), GetParam().c_str(), sent,
                    static_cast<unsigned long long>(sent_bytes), received,
                    static_cast<unsigned long long>(recv_bytes), missing, dup, unknown, bad_len,
                    bad_bytes, ck_good, ck_bad, ck_none);
        EXPECT_EQ(received, kN);
        EXPECT_EQ(missing, 0u);
        EXPECT_EQ(dup, 0u);
        EXPECT_EQ(unknown, 0u);
        EXPECT_EQ(bad_len, 0u);
        EXPECT_EQ(bad_bytes, 0u);
        EXPECT_EQ(recv_bytes, sent_bytes);
        // Valid frames never get a bad verdict. The 82574L checks them
        // (RXCSUM); QEMU's 82540EM reports "not checked" (IXSM) on every
        // frame, which the driver passes on as no flag.
        EXPECT_EQ(ck_bad, 0u);
        if (rx_model == "82574L") {
            EXPECT_EQ(ck_good, received);
        }

        auto ts = ethdev::stats_get(tx);
        auto rs = ethdev::stats_get(rx);
        ASSERT_TRUE(ts && rs);
        std::printf("  stats: tx opackets %llu obytes %llu q_opackets %llu; rx ipackets %llu "
                    "ibytes %llu imissed %llu ierrors %llu rx_nombuf %llu q_ipackets %llu\n",
                    static_cast<unsigned long long>(ts->opackets),
                    static_cast<unsigned long long>(ts->obytes),
                    static_cast<unsigned long long>(ts->q_opackets[0]),
                    static_cast<unsigned long long>(rs->ipackets),
                    static_cast<unsigned long long>(rs->ibytes),
                    static_cast<unsigned long long>(rs->imissed),
                    static_cast<unsigned long long>(rs->ierrors),
                    static_cast<unsigned long long>(rs->rx_nombuf),
                    static_cast<unsigned long long>(rs->q_ipackets[0]));
        EXPECT_EQ(ts->opackets, kN);
        EXPECT_EQ(ts->q_opackets[0], kN);
        EXPECT_EQ(ts->q_obytes[0], sent_bytes);
        EXPECT_EQ(rs->ipackets, kN);
        EXPECT_EQ(rs->q_ipackets[0], kN);
        EXPECT_EQ(rs->q_ibytes[0], sent_bytes);
        EXPECT_EQ(rs->ibytes, sent_bytes);
        EXPECT_EQ(ts->obytes, sent_bytes);
        EXPECT_EQ(rs->imissed, 0u);
        EXPECT_EQ(rs->ierrors, 0u);
        auto xs = ethdev::xstats_get(rx);
        ASSERT_TRUE(xs);
        for (const auto& x : *xs)
            if (x.name == "rx_total_packets") {
                EXPECT_EQ(x.value, kN) << "TPR";
            }
        ASSERT_TRUE(ethdev::stop(tx));
        ASSERT_TRUE(ethdev::stop(rx));
    }
    for (const auto& s : specs)
        EXPECT_TRUE(ethdev::close(port_of(s.addr)));
    EXPECT_EQ((*pool)->in_use_count(), 0u) << "mbufs not back in the pool after close";
    EXPECT_TRUE(mbuf::MbufPool::destroy(*pool));
    e->reset();
    EXPECT_EQ(open_fds(), fds);
    EXPECT_EQ(vfio_mappings(), 0);
}

// Bad input: each call fails with a clear error naming what is wrong, and
// nothing stays behind (mbufs back in their pool, no fd, no mapping).
TEST_P(EmLab, BadInputClearErrorsNothingLeaked) {
    const auto specs = ports_from_env();
    ASSERT_FALSE(specs.empty());
    const int fds = open_fds();
    auto e = init_ports(specs);
    ASSERT_TRUE(e) << e.error().message();
    const std::uint16_t port = port_of(specs[0].addr);
    auto pool = mbuf::MbufPool::create("em_bad", 1023, 0, 0, mbuf::kDefaultDataRoom);
    ASSERT_TRUE(pool) << pool.error().message();
    auto small = mbuf::MbufPool::create("em_small", 100, 0, 0, mbuf::kDefaultDataRoom);
    ASSERT_TRUE(small) << small.error().message();
    auto expect_err = [&](const char* what, const Result<void>& r, int err, const char* text) {
        ASSERT_FALSE(r) << what << " succeeded";
        const std::string m = r.error().message();
        std::printf("%s (%s): %s\n", what, GetParam().c_str(), m.c_str());
        EXPECT_EQ(r.error().err(), err) << what;
        EXPECT_NE(m.find(text), std::string::npos) << what << ": no '" << text << "' in: " << m;
    };
    expect_err("start before configure", ethdev::start(port), EINVAL, "configure");
    std::uint16_t unused = 0;
    while (ethdev::is_valid(unused))
        ++unused;
    expect_err("configure an unknown port", ethdev::configure(unused, 1, 1, {}), ENODEV,
               std::to_string(unused).c_str());
    expect_err("configure two rx queues", ethdev::configure(port, 2, 1, {}), EINVAL, "queue");
    ASSERT_TRUE(ethdev::configure(port, 1, 1, {}));
    expect_err("rx queue 1 of 1", ethdev::rx_queue_setup(port, 1, 256, -1, {}, **pool), EINVAL,
               "queue 1");
    expect_err("rx ring of 100", ethdev::rx_queue_setup(port, 0, 100, -1, {}, **pool), EINVAL,
               "not a power of two");
    expect_err("rx ring of 8192", ethdev::rx_queue_setup(port, 0, 8192, -1, {}, **pool), EINVAL,
               "4096");
    expect_err("tx ring of 100", ethdev::tx_queue_setup(port, 0, 100, -1, {}), EINVAL,
               "not a power of two");
    expect_err("tx ring of 8192", ethdev::tx_queue_setup(port, 0, 8192, -1, {}), EINVAL, "4096");
    expect_err("rx ring of 128 from a pool of 100", ethdev::rx_queue_setup(port, 0, 128, -1, {}, **small),
               ENOMEM, "em_small");
    // A pool large enough on paper whose mbufs are out: the driver's own
    // refill fails, and the ring it began keeps none of them.
    std::vector<mbuf::Mbuf*> held((*pool)->size() - 100);
    ASSERT_EQ((*pool)->alloc_bulk(held.data(), static_cast<unsigned>(held.size())), 0);
    expect_err("rx ring of 256 from a drained pool", ethdev::rx_queue_setup(port, 0, 256, -1, {}, **pool),
               ENOMEM, "em_bad");
    EXPECT_EQ((*pool)->in_use_count(), held.size()) << "the failed setup kept mbufs";
    for (mbuf::Mbuf* m : held)
        m->free();
    expect_err("start without queues", ethdev::start(port), EINVAL, "rx_queue_setup");
    // And the port still works after all that.
    ASSERT_TRUE(ethdev::rx_queue_setup(port, 0, 512, -1, {}, **pool));
    ASSERT_TRUE(ethdev::tx_queue_setup(port, 0, 512, -1, {}));
    ASSERT_TRUE(ethdev::start(port));
    EXPECT_EQ((*pool)->in_use_count(), 512u) << "the rx ring holds one mbuf per slot";
    ASSERT_TRUE(ethdev::stop(port));
    ASSERT_TRUE(ethdev::close(port));
    EXPECT_EQ((*pool)->in_use_count(), 0u);
    EXPECT_EQ((*small)->in_use_count(), 0u);
    EXPECT_TRUE(mbuf::MbufPool::destroy(*pool));
    EXPECT_TRUE(mbuf::MbufPool::destroy(*small));
    e->reset();
    EXPECT_EQ(driver().instances(), 0u);
    EXPECT_EQ(open_fds(), fds);
    EXPECT_EQ(vfio_mappings(), 0);
}

INSTANTIATE_TEST_SUITE_P(Lab, EmLab, ::testing::Values(mode_label()),
                         [](const auto& i) { return i.param; });

}  // namespace
}  // namespace vfiokit::em
