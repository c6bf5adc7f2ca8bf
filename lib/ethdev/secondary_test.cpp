// A secondary's attached ports without a primary: what attach_secondary
// puts in the fast path, the control calls it refuses and what close and
// detach leave; and the shared allocations without an EAL (the C++ heap).
// The real thing, two processes on a NIC, is tests/lab/mp/net_test.cpp.
#include "vfiokit/ethdev/ethdev.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <memory>

namespace vfiokit::ethdev {
namespace {

struct FakeQueue {
    int polled = 0;
};

std::uint16_t rx_fn(void* q, mbuf::Mbuf**, std::uint16_t) {
    ++static_cast<FakeQueue*>(q)->polled;
    return 3;
}
std::uint16_t tx_fn(void* q, mbuf::Mbuf**, std::uint16_t n) {
    ++static_cast<FakeQueue*>(q)->polled;
    return n;
}

PrimaryPort record(std::uint16_t id, FakeQueue* rxq1, FakeQueue* txq1) {
    PrimaryPort p;
    p.id = id;
    p.info.driver_name = "net_fake";
    p.info.device_name = "0000:00:09.0";
    p.info.max_rx_queues = p.info.max_tx_queues = 2;
    p.mac.bytes = {0x52, 0x54, 0, 0, 0, 9};
    p.nb_rxq = p.nb_txq = 2;
    p.rxq[1] = rxq1;
    p.txq[1] = txq1;
    p.primary_pid = 4242;
    return p;
}

TEST(Secondary, AttachedPortPollsThePrimarysQueuesAndRefusesControl) {
    constexpr std::uint16_t kId = 20;
    FakeQueue rq, tq;
    auto keep = std::make_shared<int>(1);
    auto ops = attach_secondary(record(kId, &rq, &tq), rx_fn, tx_fn, keep);
    ASSERT_TRUE(ops) << ops.error().message();
    EXPECT_EQ(keep.use_count(), 2) << "the port keeps the driver's state alive";
    EXPECT_TRUE(is_attached_from_primary(kId));
    EXPECT_FALSE(is_attached_from_primary(kId + 1));
    // Bursts reach our functions with the primary's queue pointers.
    mbuf::Mbuf* pkts[4] = {};
    EXPECT_EQ(rx_burst(kId, 1, pkts, 4), 3);
    EXPECT_EQ(tx_burst(kId, 1, pkts, 2), 2);
    EXPECT_EQ(rq.polled, 1);
    EXPECT_EQ(tq.polled, 1);
    // Reads work; the calls that change the port are the primary's.
    auto i = info(kId);
    ASSERT_TRUE(i);
    EXPECT_EQ(i->device_name, "0000:00:09.0");
    auto m = macaddr_get(kId);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->str(), "52:54:00:00:00:09");
    auto c = configure(kId, 1, 1, {});
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().err(), EPERM);
    EXPECT_NE(c.error().message().find("belongs to the primary (pid 4242)"), std::string::npos)
        << c.error().message();
    EXPECT_NE(c.error().message().find("port 20 (0000:00:09.0, net_fake, started)"),
              std::string::npos)
        << c.error().message();
    EXPECT_EQ(start(kId).error().err(), EPERM);
    EXPECT_EQ(stop(kId).error().err(), EPERM);
    EXPECT_EQ(tx_queue_setup(kId, 0, 512, -1, {}).error().err(), EPERM);
    EXPECT_EQ(promiscuous_enable(kId).error().err(), EPERM);
    EXPECT_EQ(allmulticast_disable(kId).error().err(), EPERM);
    EXPECT_EQ(mtu_set(kId, 1400).error().err(), EPERM);
    EXPECT_EQ(macaddr_set(kId, *MacAddr::parse("52:54:00:00:00:01")).error().err(), EPERM);
    EXPECT_EQ(stats_reset(kId).error().err(), EPERM);
    EXPECT_EQ(rx_intr_enable(kId, 0).error().err(), EPERM);
    // Stats come from the primary over the channel: none here.
    auto st = stats_get(kId);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().err(), ENOTCONN);
    // The id is taken in this process.
    FakeQueue other;
    auto again = attach_secondary(record(kId, &other, &other), rx_fn, tx_fn, nullptr);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().err(), EBUSY);
    // close forgets the port here (idle bursts); the driver's detach frees it.
    ASSERT_TRUE(close(kId));
    EXPECT_FALSE(is_valid(kId));
    EXPECT_EQ(rx_burst(kId, 1, pkts, 4), 0);
    EXPECT_EQ(rq.polled, 1) << "nothing of the closed port is polled";
    EXPECT_EQ(keep.use_count(), 2) << "the ops wait for the driver's detach";
    detach(*ops);
    EXPECT_EQ(keep.use_count(), 1);
}

TEST(Secondary, DetachWithoutCloseForgetsThePortOnly) {
    constexpr std::uint16_t kId = 21;
    FakeQueue rq, tq;
    auto ops = attach_secondary(record(kId, &rq, &tq), rx_fn, tx_fn, nullptr);
    ASSERT_TRUE(ops);
    detach(*ops);
    EXPECT_FALSE(is_valid(kId));
    mbuf::Mbuf* pkts[1] = {};
    EXPECT_EQ(rx_burst(kId, 1, pkts, 1), 0);
    EXPECT_EQ(rq.polled, 0);
}

TEST(Secondary, BadAttachesAreRefused) {
    FakeQueue q;
    auto no_fn = attach_secondary(record(22, &q, &q), nullptr, tx_fn, nullptr);
    ASSERT_FALSE(no_fn);
    EXPECT_EQ(no_fn.error().err(), EINVAL);
    auto bad_id = attach_secondary(record(kMaxPorts, &q, &q), rx_fn, tx_fn, nullptr);
    ASSERT_FALSE(bad_id);
    EXPECT_EQ(bad_id.error().err(), EINVAL);
    // Not a secondary (no EAL at all here).
    auto p = primary_port("0000:00:09.0");
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().err(), EPERM);
    EXPECT_NE(p.error().message().find("not a secondary"), std::string::npos);
}

struct SharedThing : SharedObject {
    std::uint64_t v[9] = {};
    SharedVector<std::uint32_t> xs;
};

TEST(Secondary, SharedAllocationsWithoutAnEalUseTheCppHeap) {
    auto t = std::make_unique<SharedThing>();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.get()) % alignof(std::max_align_t), 0u);
    t->xs.assign(1000, 7);
    t->xs.push_back(8);
    EXPECT_EQ(t->xs.size(), 1001u);
    EXPECT_EQ(t->xs.back(), 8u);
    void* p = shared_alloc(100, 256);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 256, 0u);
    shared_free(p);
    shared_free(nullptr);
}

TEST(Secondary, DoorbellIsOneStore) {
    volatile std::uint32_t reg = 0;
    Doorbell d{&reg};
    d.ring(0x1234);
    EXPECT_EQ(reg, 0x1234u);
}

}  // namespace
}  // namespace vfiokit::ethdev
