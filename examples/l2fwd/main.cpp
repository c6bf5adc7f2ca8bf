// l2fwd: a minimal layer-2 forwarder on vfiokit, in the shape of DPDK's
// examples/l2fwd. Built against an installed vfiokit with pkg-config only
// (Makefile); doc/install.md.
//
//   l2fwd-shared -l 0 -a 0000:00:08.0 -a 0000:00:0a.0 -- [--mac-updating]
//
// Exactly two ports, given with -a (ports 0 and 1 in PCI address order):
// every frame received on one port is sent on the other. Frames go out as
// they came in, unless --mac-updating: then, as DPDK's l2fwd does by
// default, the source MAC becomes the sending port's and the destination
// 02:00:00:00:00:PORT. One thread polls both ports. SIGINT or SIGTERM
// stops it; it then prints each port's counts and the NIC's statistics,
// closes the ports and exits 0.
#include <signal.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "vfiokit/eal/eal.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace {

using namespace vfiokit;

constexpr std::uint16_t kBurst = 32;
constexpr std::uint16_t kRingSize = 256;
constexpr unsigned kPoolSize = 4095;  // two rx rings, two tx rings, bursts in flight
constexpr unsigned kPoolCache = 64;

volatile std::sig_atomic_t g_quit = 0;

void on_signal(int) { g_quit = 1; }

struct PortCounts {
    std::uint64_t rx = 0, tx = 0, dropped = 0;
};

// src = the sending port's MAC, dst = 02:00:00:00:00:PORT (DPDK's l2fwd).
void update_macs(mbuf::Mbuf* m, std::uint16_t out_port, const ethdev::MacAddr& out_mac) {
    std::uint8_t* eth = m->data();
    const std::array<std::uint8_t, 6> dst{0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(out_port)};
    std::memcpy(eth, dst.data(), dst.size());
    std::memcpy(eth + 6, out_mac.bytes.data(), out_mac.bytes.size());
}

Result<void> setup_port(std::uint16_t port, mbuf::MbufPool& pool) {
    if (auto r = ethdev::configure(port, 1, 1, ethdev::PortConf{}); !r)
        return r;
    if (auto r = ethdev::rx_queue_setup(port, 0, kRingSize, -1, {}, pool); !r)
        return r;
    if (auto r = ethdev::tx_queue_setup(port, 0, kRingSize, -1, {}); !r)
        return r;
    if (auto r = ethdev::start(port); !r)
        return r;
    // Frames for the other side's hosts must come in: no MAC filter.
    return ethdev::promiscuous_enable(port);
}

void print_stats(const std::array<std::uint16_t, 2>& ports,
                 const std::array<PortCounts, 2>& counts) {
    std::printf("\nPort statistics ====================================\n");
    for (std::size_t i = 0; i < ports.size(); ++i) {
        std::printf("Statistics for port %u ------------------------------\n"
                    "Packets sent: %24llu\nPackets received: %20llu\nPackets dropped: %21llu\n",
                    unsigned{ports[i]}, static_cast<unsigned long long>(counts[i].tx),
                    static_cast<unsigned long long>(counts[i].rx),
                    static_cast<unsigned long long>(counts[i].dropped));
        if (auto s = ethdev::stats_get(ports[i]))
            std::printf("NIC: ipackets %llu opackets %llu imissed %llu ierrors %llu oerrors %llu\n",
                        static_cast<unsigned long long>(s->ipackets),
                        static_cast<unsigned long long>(s->opackets),
                        static_cast<unsigned long long>(s->imissed),
                        static_cast<unsigned long long>(s->ierrors),
                        static_cast<unsigned long long>(s->oerrors));
    }
    std::printf("====================================================\n");
}

int run(int argc, char** argv) {
    int first = argc;
    auto eal = eal::Eal::init(argc, argv, &first);
    if (!eal) {
        std::fprintf(stderr, "l2fwd: EAL: %s\n", eal.error().message().c_str());
        return 1;
    }
    bool mac_updating = false;
    for (int i = first; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--mac-updating") {
            mac_updating = true;
        } else {
            std::fprintf(stderr, "l2fwd: unknown option %s\nusage: %s [EAL options] -- "
                                 "[--mac-updating]\n", argv[i], argv[0]);
            return 1;
        }
    }
    const auto ids = ethdev::ports();
    if (ids.size() != 2) {
        std::fprintf(stderr, "l2fwd: needs exactly 2 ports, found %zu: give two NICs bound to "
                             "vfio-pci with -a BDF -a BDF\n", ids.size());
        return 1;
    }
    const std::array<std::uint16_t, 2> ports{ids[0], ids[1]};
    auto pool = mbuf::MbufPool::create("l2fwd_pool", kPoolSize, kPoolCache, 0,
                                       mbuf::kDefaultDataRoom);
    if (!pool) {
        std::fprintf(stderr, "l2fwd: mbuf pool: %s\n", pool.error().message().c_str());
        return 1;
    }
    std::array<ethdev::MacAddr, 2> macs{};
    int rc = 0;
    for (std::size_t i = 0; i < ports.size() && rc == 0; ++i) {
        if (auto r = setup_port(ports[i], **pool); !r) {
            std::fprintf(stderr, "l2fwd: port %u: %s\n", unsigned{ports[i]},
                         r.error().message().c_str());
            rc = 1;
            break;
        }
        auto mac = ethdev::macaddr_get(ports[i]);
        auto info = ethdev::info(ports[i]);
        auto link = ethdev::link_get(ports[i]);  // waits for the link to come up
        if (mac)
            macs[i] = *mac;
        std::printf("l2fwd: port %u: %s %s %s, %s\n", unsigned{ports[i]},
                    info ? info->device_name.c_str() : "?", info ? info->driver_name.c_str() : "?",
                    mac ? mac->str().c_str() : "??", link ? link->str().c_str() : "link unknown");
    }
    std::array<PortCounts, 2> counts{};
    if (rc == 0) {
        struct sigaction sa = {};
        sa.sa_handler = on_signal;
        ::sigemptyset(&sa.sa_mask);
        ::sigaction(SIGINT, &sa, nullptr);
        ::sigaction(SIGTERM, &sa, nullptr);
        std::printf("l2fwd: forwarding between ports %u and %u%s (SIGINT stops)\n",
                    unsigned{ports[0]}, unsigned{ports[1]},
                    mac_updating ? ", MAC addresses updated" : "");
        std::fflush(stdout);
        std::array<mbuf::Mbuf*, kBurst> pkts{};
        while (!g_quit) {
            for (std::size_t in = 0; in < 2; ++in) {
                const std::size_t out = in ^ 1;
                const std::uint16_t n = ethdev::rx_burst(ports[in], 0, pkts.data(), kBurst);
                if (n == 0)
                    continue;
                counts[in].rx += n;
                if (mac_updating)
                    for (std::uint16_t k = 0; k < n; ++k)
                        update_macs(pkts[k], ports[out], macs[out]);
                const std::uint16_t sent = ethdev::tx_burst(ports[out], 0, pkts.data(), n);
                counts[out].tx += sent;
                // What the ring did not take is dropped, as DPDK's l2fwd
                // does when its tx buffer cannot be flushed.
                if (sent < n) {
                    mbuf::free_bulk(pkts.data() + sent, n - sent);
                    counts[out].dropped += n - sent;
                }
            }
        }
        print_stats(ports, counts);
    }
    for (std::uint16_t p : ports) {
        (void)ethdev::stop(p);
        (void)ethdev::close(p);
    }
    if (auto d = mbuf::MbufPool::destroy(*pool); !d && rc == 0) {
        std::fprintf(stderr, "l2fwd: mbuf pool: %s\n", d.error().message().c_str());
        rc = 1;
    }
    std::printf("l2fwd: bye\n");
    return rc;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
