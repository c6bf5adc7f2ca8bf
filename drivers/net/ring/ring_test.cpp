// net_ring's wire: what one port sends the other receives, in order; what
// does not fit the receiving ring is dropped and counted as imissed.
#include "ring.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "vfiokit/eal/heap.hpp"

namespace vfiokit::net::ring {
namespace {

using mbuf::Mbuf;

class RingTest : public ::testing::Test {
protected:
    void SetUp() override {
        eal::MemoryOptions o;
        o.no_huge = true;
        o.window = 128ULL << 20;
        auto m = eal::Memory::create(o);
        ASSERT_TRUE(m) << m.error().message();
        mem_ = std::move(*m);
        heap_ = std::make_unique<eal::Heap>(*mem_, -1, 32ULL << 20);
        auto p = mbuf::MbufPool::create(*heap_, "ring_test", 1024, 0, 0, mbuf::kDefaultDataRoom);
        ASSERT_TRUE(p) << p.error().message();
        pool_ = *p;
        auto pr = attach_pair();
        ASSERT_TRUE(pr) << pr.error().message();
        pair_ = *pr;
        for (std::uint16_t port : {pair_.a, pair_.b}) {
            ASSERT_TRUE(ethdev::configure(port, 1, 1, {}));
            ASSERT_TRUE(ethdev::rx_queue_setup(port, 0, 64, -1, {}, *pool_));
            ASSERT_TRUE(ethdev::tx_queue_setup(port, 0, 64, -1, {}));
            ASSERT_TRUE(ethdev::start(port));
        }
    }
    void TearDown() override {
        detach_pair(pair_);
        if (pool_) {
            EXPECT_EQ(pool_->in_use_count(), 0u) << "mbufs leaked";
            EXPECT_TRUE(mbuf::MbufPool::destroy(pool_));
        }
    }
    unsigned send(std::uint16_t port, unsigned n) {
        std::vector<Mbuf*> v(n);
        for (unsigned i = 0; i < n; ++i) {
            v[i] = pool_->alloc();
            *v[i]->append(60) = static_cast<std::uint8_t>(i);
        }
        return ethdev::tx_burst(port, 0, v.data(), static_cast<std::uint16_t>(n));
    }

    std::unique_ptr<eal::Memory> mem_;
    std::unique_ptr<eal::Heap> heap_;
    mbuf::MbufPool* pool_ = nullptr;
    Pair pair_;
};

TEST_F(RingTest, WhatASendsBReceivesInOrder) {
    EXPECT_EQ(send(pair_.a, 10), 10u);
    Mbuf* got[32];
    EXPECT_EQ(ethdev::rx_burst(pair_.a, 0, got, 32), 0);  // nothing loops back
    ASSERT_EQ(ethdev::rx_burst(pair_.b, 0, got, 32), 10);
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(*got[i]->data(), i);
        EXPECT_EQ(got[i]->port, pair_.b);
        got[i]->free();
    }
    auto sa = ethdev::stats_get(pair_.a);
    auto sb = ethdev::stats_get(pair_.b);
    EXPECT_EQ(sa->opackets, 10u);
    EXPECT_EQ(sa->obytes, 600u);
    EXPECT_EQ(sb->ipackets, 10u);
    EXPECT_EQ(sb->ibytes, 600u);
    EXPECT_EQ(sb->q_ipackets[0], 10u);
}

TEST_F(RingTest, AFullRingDropsAndCountsImissed) {
    EXPECT_EQ(send(pair_.a, 100), 100u);  // the wire takes all
    Mbuf* got[128];
    EXPECT_EQ(ethdev::rx_burst(pair_.b, 0, got, 128), 64);  // the ring holds 64
    for (int i = 0; i < 64; ++i)
        got[i]->free();
    auto sb = ethdev::stats_get(pair_.b);
    EXPECT_EQ(sb->imissed, 36u);
    EXPECT_EQ(sb->ipackets, 64u);
    auto xs = ethdev::xstats_get(pair_.b);
    ASSERT_TRUE(xs);
    auto it = std::find_if(xs->begin(), xs->end(),
                           [](const ethdev::Xstat& x) { return x.name == "rx_missed_errors"; });
    ASSERT_NE(it, xs->end());
    EXPECT_EQ(it->value, 36u);
    ASSERT_TRUE(ethdev::stats_reset(pair_.b));
    EXPECT_EQ(ethdev::stats_get(pair_.b)->imissed, 0u);
}

TEST_F(RingTest, AStoppedPortNeitherSendsNorReceives) {
    ASSERT_TRUE(ethdev::stop(pair_.b));
    EXPECT_EQ(send(pair_.a, 5), 5u);
    Mbuf* got[8];
    EXPECT_EQ(ethdev::rx_burst(pair_.b, 0, got, 8), 0);  // idle burst function
    std::vector<Mbuf*> v{pool_->alloc()};
    EXPECT_EQ(ethdev::tx_burst(pair_.b, 0, v.data(), 1), 0);
    v[0]->free();
    ASSERT_TRUE(ethdev::start(pair_.b));
    EXPECT_EQ(ethdev::rx_burst(pair_.b, 0, got, 8), 5);  // still in the ring
    for (int i = 0; i < 5; ++i)
        got[i]->free();
}

TEST_F(RingTest, LinkAndInfo) {
    auto l = ethdev::link_get(pair_.a);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->str(), "Link up at 10 Gbps FDX Fixed");
    auto di = ethdev::info(pair_.a);
    EXPECT_EQ(di->driver_name, "net_ring");
    EXPECT_NE(ethdev::macaddr_get(pair_.a)->str(), ethdev::macaddr_get(pair_.b)->str());
}

}  // namespace
}  // namespace vfiokit::net::ring
