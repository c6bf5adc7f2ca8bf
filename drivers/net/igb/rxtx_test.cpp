// Host tests of the igb burst functions: the test plays the device, writing
// write-back descriptors into plain memory and reading what the driver
// wrote, with a BAR that is anonymous memory (Bar's fast path) and mbufs
// from a real pool on a no-huge EAL heap. What the lab cannot steer (ring
// wrap, a frame over several descriptors, pool exhaustion, a full tx ring,
// context descriptors only on a tag change) is checked here.
#include <sys/mman.h>

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "rxtx.hpp"
#include "vfiokit/eal/heap.hpp"
#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::igb {
namespace {

constexpr std::uint64_t kBarSize = 0x10000;
constexpr std::uint16_t kRing = 8;

class Burst : public ::testing::Test {
protected:
    void SetUp() override {
        eal::MemoryOptions o;
        o.no_huge = true;
        o.window = 64ULL << 20;
        auto m = eal::Memory::create(o);
        ASSERT_TRUE(m) << m.error().message();
        mem_ = std::move(*m);
        heap_ = std::make_unique<eal::Heap>(*mem_, -1, 16ULL << 20);
        auto p = mbuf::MbufPool::create(*heap_, "igb_burst_test", 63, 0, 0, mbuf::kDefaultDataRoom);
        ASSERT_TRUE(p) << p.error().message();
        pool_ = *p;
        auto map = vfio::map_memory(nullptr, kBarSize, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "fake BAR0");
        ASSERT_TRUE(map) << map.error().message();
        std::vector<pci::Bar::Part> parts;
        parts.push_back({0, std::move(*map)});
        bar_ = pci::Bar(0, nullptr, kBarSize, false, std::move(parts));
    }
    void TearDown() override {
        if (pool_ != nullptr) {
            EXPECT_EQ(pool_->in_use_count(), 0u) << "mbufs left out";
            EXPECT_TRUE(mbuf::MbufPool::destroy(pool_));
        }
    }

    void make_rx(std::uint16_t free_thresh = 32) {
        rx_ring_.assign(kRing, AdvRxDesc{});
        rx_sw_.assign(kRing, nullptr);
        ASSERT_EQ(pool_->alloc_bulk(rx_sw_.data(), kRing), 0);
        for (unsigned i = 0; i < kRing; ++i) {
            rx_ring_[i].read.pkt_addr = rx_sw_[i]->iova();
            rx_ring_[i].read.hdr_addr = 0;
        }
        rx_.ring = rx_ring_.data();
        rx_.sw = rx_sw_.data();
        rx_.pool = pool_;
        rx_.rdt = doorbell(bar_, regs::Rdt::offset);
        rx_.mask = kRing - 1;
        rx_.free_thresh = free_thresh;
        rx_.port = 3;
    }
    void free_rx() {
        for (mbuf::Mbuf* m : rx_sw_)
            m->free();
        rx_sw_.clear();
    }
    // The device writes a frame of `len` bytes into descriptor i.
    void device_rx(unsigned i, std::uint16_t len, std::uint32_t status, std::uint16_t vlan = 0,
                   std::uint32_t rss = 0, std::uint16_t pkt_info = 0) {
        AdvRxDesc& d = rx_ring_[i];
        d.wb = AdvRxWb{};
        d.wb.length = len;
        d.wb.vlan = vlan;
        d.wb.rss = rss;
        d.wb.pkt_info = pkt_info;
        d.wb.status_error = status | rxd::kDd;
    }

    void make_tx(std::uint16_t free_thresh = 32) {
        tx_ring_.assign(kRing, AdvTxDesc{});
        tx_sw_.assign(kRing, TxEntry{});
        tx_.ring = tx_ring_.data();
        tx_.sw = tx_sw_.data();
        tx_.tdt = doorbell(bar_, regs::Tdt::offset);
        tx_.mask = kRing - 1;
        tx_.nb_free = kRing - 1;
        tx_.free_thresh = free_thresh;
    }
    mbuf::Mbuf* packet(std::uint16_t len) {
        mbuf::Mbuf* m = pool_->alloc();
        EXPECT_NE(m, nullptr);
        if (m != nullptr) {
            EXPECT_NE(m->append(len), nullptr);
        }
        return m;
    }
    std::uint32_t tail(std::uint32_t off) { return bar_.read<std::uint32_t>(off); }

    std::unique_ptr<eal::Memory> mem_;
    std::unique_ptr<eal::Heap> heap_;
    mbuf::MbufPool* pool_ = nullptr;
    pci::Bar bar_;
    std::vector<AdvRxDesc> rx_ring_;
    std::vector<mbuf::Mbuf*> rx_sw_;
    RxQueue rx_;
    std::vector<AdvTxDesc> tx_ring_;
    std::vector<TxEntry> tx_sw_;
    TxQueue tx_;
};

TEST_F(Burst, ReceivesWhatTheDeviceWroteAndRefills) {
    ASSERT_NO_FATAL_FAILURE(make_rx(2));
    rx_.strip_vlan = true;
    rx_.rss = true;
    mbuf::Mbuf* first = rx_sw_[0];
    const std::uint64_t old_addr = rx_ring_[0].read.pkt_addr;
    device_rx(0, 60, rxd::kEop, 0, 0x1234, 1);
    device_rx(1, 64, rxd::kEop | rxd::kVp, 0x6064, 0x5678, 1);
    device_rx(2, 1514, rxd::kEop);
    mbuf::Mbuf* pkts[8] = {};
    ASSERT_EQ(rx_burst(&rx_, pkts, 8), 3);
    EXPECT_EQ(pkts[0], first);
    EXPECT_EQ(pkts[0]->data_len, 60);
    EXPECT_EQ(pkts[0]->pkt_len, 60u);
    EXPECT_EQ(pkts[0]->port, 3);
    EXPECT_EQ(pkts[0]->rss_hash, 0x1234u);
    EXPECT_EQ(pkts[0]->ol_flags, mbuf::ol::kRxRssHash);
    EXPECT_EQ(pkts[1]->vlan_tci, 0x6064);
    EXPECT_EQ(pkts[1]->ol_flags, mbuf::ol::kRxRssHash | mbuf::ol::kRxVlan | mbuf::ol::kRxVlanStripped);
    EXPECT_EQ(pkts[2]->data_len, 1514);
    EXPECT_EQ(pkts[2]->ol_flags, 0u) << "RSS type 0: no hash";
    // Each slot holds a fresh mbuf, given back to the device (DD cleared).
    for (unsigned i = 0; i < 3; ++i) {
        EXPECT_NE(rx_sw_[i], pkts[i]);
        EXPECT_EQ(rx_ring_[i].read.pkt_addr, rx_sw_[i]->iova());
        EXPECT_EQ(rx_ring_[i].wb.status_error & rxd::kDd, 0u);
    }
    EXPECT_NE(rx_ring_[0].read.pkt_addr, old_addr);
    EXPECT_EQ(rx_.next, 3);
    // More than free_thresh refilled: the tail names the last one given back.
    EXPECT_EQ(tail(regs::Rdt::offset), 2u);
    EXPECT_EQ(rx_.packets, 3u);
    EXPECT_EQ(rx_.bytes, 60u + 64 + 1514);
    EXPECT_EQ(rx_burst(&rx_, pkts + 3, 5), 0) << "nothing more written";
    for (unsigned i = 0; i < 3; ++i)
        pkts[i]->free();
    free_rx();
}

TEST_F(Burst, KeptCrcIsNotInTheLengthAndTheRingWraps) {
    ASSERT_NO_FATAL_FAILURE(make_rx());
    rx_.crc_len = 4;
    mbuf::Mbuf* pkts[kRing] = {};
    for (unsigned round = 0; round < 3; ++round) {
        for (unsigned i = 0; i < 5; ++i)
            device_rx((rx_.next + i) & (kRing - 1), 64, rxd::kEop);
        ASSERT_EQ(rx_burst(&rx_, pkts, kRing), 5) << "round " << round;
        for (unsigned i = 0; i < 5; ++i) {
            EXPECT_EQ(pkts[i]->data_len, 60);
            pkts[i]->free();
        }
    }
    EXPECT_EQ(rx_.next, 15 % kRing);
    free_rx();
}

TEST_F(Burst, AFrameOverSeveralDescriptorsIsDroppedWhole) {
    ASSERT_NO_FATAL_FAILURE(make_rx());
    device_rx(0, 1024, 0);  // no EOP
    device_rx(1, 500, rxd::kEop);
    device_rx(2, 70, rxd::kEop);
    mbuf::Mbuf* pkts[4] = {};
    ASSERT_EQ(rx_burst(&rx_, pkts, 4), 1);
    EXPECT_EQ(pkts[0]->data_len, 70);
    EXPECT_EQ(rx_.errors, 1u);
    pkts[0]->free();
    free_rx();
}

TEST_F(Burst, AnEmptyPoolLeavesThePacketInTheRing) {
    ASSERT_NO_FATAL_FAILURE(make_rx());
    std::vector<mbuf::Mbuf*> rest;
    while (mbuf::Mbuf* m = pool_->alloc())
        rest.push_back(m);
    device_rx(0, 60, rxd::kEop);
    mbuf::Mbuf* pkts[2] = {};
    EXPECT_EQ(rx_burst(&rx_, pkts, 2), 0);
    EXPECT_EQ(rx_.nombuf, 1u);
    EXPECT_EQ(rx_.next, 0);
    rest.back()->free();
    rest.pop_back();
    ASSERT_EQ(rx_burst(&rx_, pkts, 2), 1) << "received once an mbuf is back";
    pkts[0]->free();
    for (mbuf::Mbuf* m : rest)
        m->free();
    free_rx();
}

TEST_F(Burst, SendsOneDescriptorPerSegmentAndReclaimsBurstsOnDd) {
    ASSERT_NO_FATAL_FAILURE(make_tx());
    mbuf::Mbuf* a = packet(60);
    mbuf::Mbuf* b = packet(100);
    mbuf::Mbuf* b2 = packet(40);
    ASSERT_TRUE(b->chain(b2));
    mbuf::Mbuf* pkts[] = {a, b};
    ASSERT_EQ(tx_burst(&tx_, pkts, 2), 2);
    EXPECT_EQ(tail(regs::Tdt::offset), 3u);
    const std::uint32_t base = txd::kDtypData | txd::kDext | txd::kIfcs;
    EXPECT_EQ(tx_ring_[0].read.buffer_addr, a->iova());
    EXPECT_EQ(tx_ring_[0].read.cmd_type_len, base | txd::kEop | 60) << "not the burst's last: no RS";
    EXPECT_EQ(tx_ring_[0].read.olinfo_status, 60u << txd::kPaylenShift);
    EXPECT_EQ(tx_ring_[1].read.cmd_type_len, base | 100) << "not the last segment: no EOP, no RS";
    EXPECT_EQ(tx_ring_[1].read.olinfo_status, 140u << txd::kPaylenShift);
    EXPECT_EQ(tx_ring_[2].read.buffer_addr, b2->iova());
    EXPECT_EQ(tx_ring_[2].read.cmd_type_len, base | txd::kEop | txd::kRs | 40);
    EXPECT_EQ(tx_sw_[0].last, 2) << "the burst's first slot names its RS descriptor";
    EXPECT_EQ(tx_.nb_free, kRing - 1 - 3);
    // Nothing is reclaimed before the burst's RS descriptor is done.
    tx_ring_[0].wb.status = txd::kStatusDd;
    EXPECT_EQ(tx_clean(tx_), 0);
    EXPECT_EQ(pool_->in_use_count(), 3u);
    tx_ring_[2].wb.status = txd::kStatusDd;
    EXPECT_EQ(tx_clean(tx_), 3);
    EXPECT_EQ(tx_.nb_free, kRing - 1);
    EXPECT_EQ(pool_->in_use_count(), 0u);
}

TEST_F(Burst, AFullRingTakesWhatFitsAndTheRestStaysTheCallers) {
    ASSERT_NO_FATAL_FAILURE(make_tx(0));
    std::vector<mbuf::Mbuf*> pkts;
    for (int i = 0; i < 10; ++i)
        pkts.push_back(packet(60));
    EXPECT_EQ(tx_burst(&tx_, pkts.data(), 10), kRing - 1);
    EXPECT_EQ(tx_burst(&tx_, pkts.data() + 7, 3), 0) << "nothing reclaimed yet";
    EXPECT_EQ(tx_ring_[kRing - 2].read.cmd_type_len & txd::kRs, txd::kRs);
    tx_ring_[kRing - 2].wb.status = txd::kStatusDd;
    EXPECT_EQ(tx_burst(&tx_, pkts.data() + 7, 3), 3) << "reclaimed when full";
    tx_drop_all(tx_);
    EXPECT_EQ(pool_->in_use_count(), 0u);
}

TEST_F(Burst, VlanInsertWritesAContextOnlyWhenTheTagChanges) {
    ASSERT_NO_FATAL_FAILURE(make_tx());
    const std::uint16_t tcis[] = {0x2065, 0x2065, 0x0066};
    std::vector<mbuf::Mbuf*> pkts;
    for (std::uint16_t t : tcis) {
        mbuf::Mbuf* m = packet(60);
        m->ol_flags |= mbuf::ol::kTxVlan;
        m->vlan_tci = t;
        pkts.push_back(m);
    }
    ASSERT_EQ(tx_burst(&tx_, pkts.data(), 3), 3);
    // ctx(0x2065), data, data, ctx(0x0066), data
    EXPECT_EQ(tail(regs::Tdt::offset), 5u);
    EXPECT_EQ(tx_ring_[0].ctx.type_tucmd_mlhl, txd::kDtypCtxt | txd::kDext);
    EXPECT_EQ(tx_ring_[0].ctx.vlan_macip_lens, (0x2065u << 16) | (14u << 9));
    for (unsigned i : {1u, 2u, 4u}) {
        EXPECT_TRUE(tx_ring_[i].read.cmd_type_len & txd::kVle) << i;
        EXPECT_TRUE(tx_ring_[i].read.olinfo_status & txd::kCc) << i;
    }
    EXPECT_EQ(tx_ring_[3].ctx.vlan_macip_lens >> 16, 0x0066u);
    EXPECT_EQ(tx_sw_[0].m, nullptr);
    EXPECT_EQ(tx_sw_[0].last, 4);
    tx_ring_[4].wb.status = txd::kStatusDd;
    EXPECT_EQ(tx_clean(tx_), 5);
    EXPECT_EQ(pool_->in_use_count(), 0u);
}

}  // namespace
}  // namespace vfiokit::igb
