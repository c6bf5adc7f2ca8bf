// Hot-unplug of a NIC while it forwards, in the lab guest, once per VFIO
// mode (devtools/lab/jobs/hotplug-modern.sh):
//
//   VFIOKIT_HOTPLUG_NIC=0000:03:00.0   the e1000e the host removes
//   VFIOKIT_HOTPLUG_PEER=0000:00:0a.0  a port on the same hub that stays
//   VFIOKIT_HOTPLUG_READY=FILE         created once traffic flows both
//                                      ways: the job then asks the host
//                                      to device_del the NIC
//   VFIOKIT_HOTPLUG_PLUG=FILE          created once the NIC is removed:
//                                      the job then asks the host to
//                                      device_add it again
//   hotplug_lab_test --gtest_filter='Lab/*'
//
// The peer sends to the NIC, the NIC echoes every frame back, the peer
// counts them. When the host removes the NIC, the kernel (pciehp, then
// vfio-pci) asks for the device back through its request interrupt; the
// test must notice that on the first request (before the kernel's 10 s
// repeat), remove the device through the EAL, and then: the NIC's pool has
// every mbuf back, no fd or mapping of the device is left, its port is
// gone and bursts on its id are idle, and the peer port still sends. The
// job checks the other half: the host's device_del returned (QEMU's
// DEVICE_DELETED, i.e. the kernel could finish the removal).
//
// The test sees the request as a remove event and the end of the removal as
// a removed event (the kernel's uevent; Eal::start_device_monitor), and
// prints their times on the guest's clock for the job's timeline. Then the
// host plugs the NIC back: the add event comes, probe_device() gives it to
// vfio-pci (the kernel's e1000e took it first) and probes it with the
// registered driver, and the new port starts and echoes the peer's frames.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
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
namespace fs = std::filesystem;

// What /proc/self/fd links to, one entry per open fd.
std::vector<std::string> fd_targets() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc/self/fd", ec)) {
        std::error_code ec2;
        auto t = fs::read_symlink(e.path(), ec2);
        if (!ec2)
            out.push_back(t.string());
    }
    return out;
}

int count_fds(const std::vector<std::string>& targets, const std::string& what) {
    return static_cast<int>(std::count_if(targets.begin(), targets.end(), [&](const auto& t) {
        return t.find(what) != std::string::npos;
    }));
}

// Device fds of any mode: group mode's device fd is an anonymous inode,
// cdev mode's a node under /dev/vfio/devices.
int device_fds(const std::vector<std::string>& t) {
    return count_fds(t, "[vfio-device]") + count_fds(t, "/dev/vfio/devices/");
}

// BAR mappings of VFIO device fds in this process.
int vfio_mappings() {
    std::ifstream f("/proc/self/maps");
    int n = 0;
    for (std::string line; std::getline(f, line);)
        n += line.find("[vfio-device]") != std::string::npos ||
             line.find("/dev/vfio/") != std::string::npos;
    return n;
}

// The kernel nodes that belong to `a`: its group node (/dev/vfio/N) and its
// device cdev (/dev/vfio/devices/vfioX). Read before the device goes: sysfs
// forgets it with the unplug.
std::vector<std::string> device_nodes(PciAddress a) {
    std::vector<std::string> out;
    const std::string dev = "/sys/bus/pci/devices/" + a.str();
    std::error_code ec;
    auto group = fs::read_symlink(dev + "/iommu_group", ec);
    if (!ec)
        out.push_back("/dev/vfio/" + group.filename().string());
    for (const auto& e : fs::directory_iterator(dev + "/vfio-dev", ec))
        out.push_back("/dev/vfio/devices/" + e.path().filename().string());
    return out;
}

std::unique_ptr<eal::Eal> init(PciAddress nic, PciAddress peer) {
    const std::string n = nic.str(), p = peer.str();
    const char* argv[] = {"hotplug_lab_test", "-a", n.c_str(), "-a", p.c_str()};
    auto e = eal::Eal::init(5, argv);
    EXPECT_TRUE(e) << e.error().message();
    return e ? std::move(*e) : nullptr;
}

Result<void> setup_port(std::uint16_t port, mbuf::MbufPool& pool) {
    if (auto r = ethdev::configure(port, 1, 1, {}); !r)
        return r;
    if (auto r = ethdev::rx_queue_setup(port, 0, 256, -1, {}, pool); !r)
        return r;
    if (auto r = ethdev::tx_queue_setup(port, 0, 256, -1, {}); !r)
        return r;
    return ethdev::start(port);
}

// A 60-byte frame from `src` to `dst`, experimental EtherType 0x88b5.
mbuf::Mbuf* make_frame(mbuf::MbufPool& pool, const ethdev::MacAddr& dst,
                       const ethdev::MacAddr& src, std::uint32_t seq) {
    mbuf::Mbuf* m = pool.alloc();
    if (m == nullptr)
        return nullptr;
    std::uint8_t* p = m->append(60);
    if (p == nullptr) {
        m->free();
        return nullptr;
    }
    std::memset(p, 0, 60);
    std::memcpy(p, dst.bytes.data(), 6);
    std::memcpy(p + 6, src.bytes.data(), 6);
    p[12] = 0x88;
    p[13] = 0xb5;
    std::memcpy(p + 14, &seq, 4);
    return m;
}

std::uint16_t send_frames(std::uint16_t port, mbuf::MbufPool& pool, const ethdev::MacAddr& dst,
                   const ethdev::MacAddr& src, std::uint32_t& seq, std::uint16_t n) {
    mbuf::Mbuf* pkts[32];
    std::uint16_t made = 0;
    for (; made < n && made < 32; ++made) {
        pkts[made] = make_frame(pool, dst, src, seq + made);
        if (pkts[made] == nullptr)
            break;
    }
    const std::uint16_t sent = ethdev::tx_burst(port, 0, pkts, made);
    for (std::uint16_t i = sent; i < made; ++i)
        pkts[i]->free();
    seq += sent;
    return sent;
}

class HotplugLab : public ::testing::TestWithParam<std::string> {};

TEST_P(HotplugLab, RemovedWhileForwarding) {
    const auto nic = PciAddress::parse(env("VFIOKIT_HOTPLUG_NIC"));
    const auto peer = PciAddress::parse(env("VFIOKIT_HOTPLUG_PEER"));
    const std::string ready = env("VFIOKIT_HOTPLUG_READY");
    const std::string plug = env("VFIOKIT_HOTPLUG_PLUG");
    ASSERT_TRUE(nic && peer && !ready.empty() && !plug.empty())
        << "the job sets VFIOKIT_HOTPLUG_NIC, VFIOKIT_HOTPLUG_PEER, VFIOKIT_HOTPLUG_READY and "
           "VFIOKIT_HOTPLUG_PLUG";
    const int fds_at_start = open_fds();
    const std::vector<std::string> nodes = device_nodes(*nic);
    ASSERT_FALSE(nodes.empty()) << nic->str() << ": no IOMMU group or device cdev in sysfs";

    auto e = init(*nic, *peer);
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->start_device_monitor());
    std::optional<eal::DeviceEvent> remove_ev;
    auto a_id = ethdev::find(*nic);
    auto b_id = ethdev::find(*peer);
    ASSERT_TRUE(a_id && b_id);
    const std::uint16_t a = *a_id, b = *b_id;
    auto a_pool = mbuf::MbufPool::create("hp_nic", 1023, 32, 0, mbuf::kDefaultDataRoom);
    auto b_pool = mbuf::MbufPool::create("hp_peer", 1023, 32, 0, mbuf::kDefaultDataRoom);
    ASSERT_TRUE(a_pool && b_pool);
    mbuf::MbufPool& ap = **a_pool;
    mbuf::MbufPool& bp = **b_pool;
    const unsigned a_in_use_before = ap.in_use_count();
    ASSERT_TRUE(setup_port(a, ap));
    ASSERT_TRUE(setup_port(b, bp));
    // The peer takes the NIC's echoes, which are addressed to the NIC.
    ASSERT_TRUE(ethdev::promiscuous_enable(b));
    for (std::uint16_t p : {a, b}) {
        auto l = ethdev::link_get(p);
        ASSERT_TRUE(l && l->up) << "port " << p << " link down";
    }
    const auto a_mac = *ethdev::macaddr_get(a);
    const auto b_mac = *ethdev::macaddr_get(b);
    EXPECT_GT(ap.in_use_count(), a_in_use_before) << "the NIC's rx ring holds mbufs";

    const auto before = fd_targets();
    const int dev_fds_before = device_fds(before);
    const int eventfds_before = count_fds(before, "[eventfd]");
    const int maps_before = vfio_mappings();
    for (const auto& n : nodes)
        std::printf("%s: %s open %d time(s)\n", nic->str().c_str(), n.c_str(), count_fds(before, n));
    EXPECT_EQ(dev_fds_before, 2) << "one device fd per port";

    // Forward until the kernel asks for the NIC: peer -> NIC, NIC echoes,
    // peer counts. The ready file tells the job to unplug.
    std::uint32_t seq = 0;
    std::uint64_t sent = 0, echoed = 0, back = 0;
    bool signalled_ready = false;
    std::optional<eal::RemovalRequest> req;
    Clock::time_point ready_at{};
    const auto deadline = Clock::now() + 150s;
    mbuf::Mbuf* pkts[32];
    while (Clock::now() < deadline) {
        sent += send_frames(b, bp, a_mac, b_mac, seq, 4);
        const std::uint16_t n = ethdev::rx_burst(a, 0, pkts, 32);
        const std::uint16_t t = ethdev::tx_burst(a, 0, pkts, n);
        for (std::uint16_t i = t; i < n; ++i)
            pkts[i]->free();
        echoed += t;
        const std::uint16_t r = ethdev::rx_burst(b, 0, pkts, 32);
        for (std::uint16_t i = 0; i < r; ++i)
            pkts[i]->free();
        back += r;
        if (!signalled_ready && back >= 200) {
            std::ofstream(ready) << "forwarding\n";
            signalled_ready = true;
            ready_at = Clock::now();
            std::printf("forwarding: %llu sent, %llu echoed by %s, %llu back; unplug now\n",
                        static_cast<unsigned long long>(sent),
                        static_cast<unsigned long long>(echoed), nic->str().c_str(),
                        static_cast<unsigned long long>(back));
            std::fflush(stdout);
        }
        auto evs = e->poll_device_events();
        ASSERT_TRUE(evs) << evs.error().message();
        for (const auto& ev : *evs)
            if (ev.type != eal::DeviceEventType::remove)
                continue;
            else if (ev.addr == *nic)
                remove_ev = ev;
            else
                ADD_FAILURE() << "removal requested for " << ev.addr.str() << ", which stays";
        if (remove_ev) {
            for (auto& rq : e->removal_requests())
                if (rq.addr == *nic)
                    req = rq;
            break;
        }
        std::this_thread::sleep_for(1ms);
    }
    ASSERT_TRUE(signalled_ready) << "no traffic came back (" << back << " of " << sent << ")";
    ASSERT_TRUE(remove_ev) << "no remove event for " << nic->str() << " within 150 s";
    ASSERT_TRUE(req) << "a remove event but no removal request listed";
    EXPECT_EQ(remove_ev->driver, "net_e1000_em");
    const auto noticed = remove_ev->seen;
    std::printf("removal of %s requested %lld ms after the unplug was asked for; %llu echoed\n",
                nic->str().c_str(),
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(noticed - ready_at).count()),
                static_cast<unsigned long long>(echoed));
    EXPECT_EQ(req->bus, "pci");
    EXPECT_EQ(req->driver, "net_e1000_em");
    // The kernel repeats the request every 10 s: 1 means the first one was
    // noticed.
    EXPECT_EQ(req->signals, 1u);

    ASSERT_TRUE(e->remove_device(*nic));
    const auto released = Clock::now();
    std::printf("%s removed in %lld ms\n", nic->str().c_str(),
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(released - noticed).count()));

    // Nothing of the NIC is left: mbufs, fds, mappings, the port.
    EXPECT_EQ(ap.in_use_count(), a_in_use_before) << "mbufs of the removed port's rings";
    const auto after = fd_targets();
    EXPECT_EQ(device_fds(after), dev_fds_before - 1);
    for (const auto& n : nodes)
        EXPECT_EQ(count_fds(after, n), 0) << n << " still open";
    EXPECT_LT(count_fds(after, "[eventfd]"), eventfds_before) << "the request eventfd is closed";
    EXPECT_LT(vfio_mappings(), maps_before) << "BAR0 of the NIC is unmapped";
    EXPECT_FALSE(ethdev::is_valid(a));
    auto gone = ethdev::find(*nic);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().err(), ENODEV);
    EXPECT_TRUE(e->removal_requests().empty());
    auto again = e->remove_device(*nic);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().err(), ENODEV);
    // A poll loop that has not caught up yet: the removed id's bursts are
    // idle and leave the caller's mbufs alone.
    EXPECT_EQ(ethdev::rx_burst(a, 0, pkts, 32), 0);
    std::uint32_t s2 = 0;
    pkts[0] = make_frame(bp, a_mac, b_mac, s2);
    ASSERT_NE(pkts[0], nullptr);
    EXPECT_EQ(ethdev::tx_burst(a, 0, pkts, 1), 0);
    pkts[0]->free();

    // The peer goes on: 200 more frames leave it (its transmit counter,
    // which the NIC updates when it has sent them).
    auto st0 = ethdev::stats_get(b);
    ASSERT_TRUE(st0);
    std::uint64_t more = 0;
    const auto until = Clock::now() + 10s;
    while (more < 200 && Clock::now() < until) {
        const auto n = static_cast<std::uint16_t>(std::min<std::uint64_t>(8, 200 - more));
        more += send_frames(b, bp, a_mac, b_mac, seq, n);
        const std::uint16_t r = ethdev::rx_burst(b, 0, pkts, 32);
        for (std::uint16_t i = 0; i < r; ++i)
            pkts[i]->free();
        std::this_thread::sleep_for(1ms);
    }
    EXPECT_EQ(more, 200u);
    std::uint64_t opackets = 0;
    for (auto until2 = Clock::now() + 5s; Clock::now() < until2; std::this_thread::sleep_for(10ms)) {
        auto st = ethdev::stats_get(b);
        ASSERT_TRUE(st);
        opackets = st->opackets - st0->opackets;
        if (opackets >= 200)
            break;
    }
    EXPECT_EQ(opackets, 200u) << "the peer port stopped sending after the removal";
    std::printf("after the removal the peer %s sent %llu more\n", peer->str().c_str(),
                static_cast<unsigned long long>(opackets));

    // The kernel finishes the removal once the device is closed: its uevent.
    std::optional<eal::DeviceEvent> removed;
    for (auto until2 = Clock::now() + 30s; !removed && Clock::now() < until2;
         std::this_thread::sleep_for(2ms)) {
        auto evs = e->poll_device_events();
        ASSERT_TRUE(evs) << evs.error().message();
        for (const auto& ev : *evs)
            if (ev.type == eal::DeviceEventType::removed && ev.addr == *nic)
                removed = ev;
    }
    EXPECT_TRUE(removed) << "no removed event (uevent) for " << nic->str() << " within 30 s";
    auto secs = [](Clock::time_point t) {
        return std::chrono::duration<double>(t.time_since_epoch()).count();
    };
    std::printf("hotplug-timeline ready %.3f\n", secs(ready_at));
    std::printf("hotplug-timeline remove-seen %.3f\n", secs(noticed));
    std::printf("hotplug-timeline released %.3f\n", secs(released));
    if (removed)
        std::printf("hotplug-timeline removed-uevent %.3f\n", secs(removed->seen));
    std::fflush(stdout);

    // Plugged back: the add event, then the probe through the bus, then a
    // port that starts and echoes.
    std::ofstream(plug) << "plug\n";
    std::optional<eal::DeviceEvent> added;
    for (auto until2 = Clock::now() + 60s; !added && Clock::now() < until2;
         std::this_thread::sleep_for(2ms)) {
        auto evs = e->poll_device_events();
        ASSERT_TRUE(evs) << evs.error().message();
        for (const auto& ev : *evs)
            if (ev.type == eal::DeviceEventType::add && ev.addr == *nic)
                added = ev;
    }
    ASSERT_TRUE(added) << "no add event for " << nic->str() << " within 60 s of asking";
    EXPECT_EQ(added->vendor, 0x8086);
    EXPECT_EQ(added->device, 0x10d3);
    auto rep = e->probe_device(nic->str(), {.bind_vfio = true});
    ASSERT_TRUE(rep) << rep.error().message();
    EXPECT_EQ(rep->driver, "net_e1000_em");
    std::printf("%s added back (kernel driver '%s' at the add event), probed by %s\n",
                nic->str().c_str(), added->driver.c_str(), rep->driver.c_str());
    auto a2_id = ethdev::find(*nic);
    ASSERT_TRUE(a2_id) << "no port for the added NIC";
    const std::uint16_t a2 = *a2_id;
    ASSERT_TRUE(setup_port(a2, ap));
    bool up = false;
    for (auto until2 = Clock::now() + 10s; !up && Clock::now() < until2;
         std::this_thread::sleep_for(10ms)) {
        auto l = ethdev::link_get(a2);
        up = l && l->up;
    }
    ASSERT_TRUE(up) << "the added port's link stays down";
    const auto a2_mac = *ethdev::macaddr_get(a2);
    std::uint64_t sent2 = 0, back2 = 0;
    for (auto until2 = Clock::now() + 20s; back2 < 200 && Clock::now() < until2;
         std::this_thread::sleep_for(1ms)) {
        sent2 += send_frames(b, bp, a2_mac, b_mac, seq, 4);
        const std::uint16_t n = ethdev::rx_burst(a2, 0, pkts, 32);
        const std::uint16_t t = ethdev::tx_burst(a2, 0, pkts, n);
        for (std::uint16_t i = t; i < n; ++i)
            pkts[i]->free();
        const std::uint16_t r = ethdev::rx_burst(b, 0, pkts, 32);
        for (std::uint16_t i = 0; i < r; ++i)
            pkts[i]->free();
        back2 += r;
    }
    EXPECT_GE(back2, 200u) << "the added port echoed too little (" << sent2 << " sent)";
    std::printf("the added port %u echoed: %llu sent by the peer, %llu back\n", a2,
                static_cast<unsigned long long>(sent2), static_cast<unsigned long long>(back2));
    ASSERT_TRUE(ethdev::stop(a2));
    ASSERT_TRUE(ethdev::close(a2));

    ASSERT_TRUE(ethdev::stop(b));
    ASSERT_TRUE(ethdev::close(b));
    EXPECT_EQ(bp.in_use_count(), 0u);
    EXPECT_EQ(ap.in_use_count(), 0u);
    EXPECT_TRUE(mbuf::MbufPool::destroy(*a_pool));
    EXPECT_TRUE(mbuf::MbufPool::destroy(*b_pool));
    e.reset();
    EXPECT_EQ(driver().instances(), 0u);
    EXPECT_EQ(vfio_mappings(), 0);
    EXPECT_EQ(open_fds(), fds_at_start);
}

INSTANTIATE_TEST_SUITE_P(Lab, HotplugLab, ::testing::Values(mode_label()),
                         [](const auto& i) { return i.param; });

}  // namespace
}  // namespace vfiokit::em
