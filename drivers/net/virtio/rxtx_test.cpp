// Host tests of the virtio-net burst functions: the test plays the device
// on plain memory (IOVA = VA), taking what the driver put in the
// available ring and returning it through the used ring as QEMU's
// virtio-net does, with mbufs from a real pool on a no-huge EAL heap.
// What the lab cannot steer is checked here: ring wrap, a frame over
// several buffers (and over two bursts), the pool running dry, a full
// transmit ring, packets without headroom or shared, kick suppression.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "rxtx.hpp"
#include "vfiokit/eal/heap.hpp"
#include "vfiokit/eal/memory.hpp"

namespace vfiokit::virtio::net {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes pattern(std::size_t n, std::uint8_t seed) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i)
        b[i] = static_cast<std::uint8_t>(seed + i * 7);
    return b;
}

// Ring memory the "device" reads with IOVA = VA.
struct RingMem {
    void* p = nullptr;
    explicit RingMem(std::size_t bytes) {
        p = std::aligned_alloc(64, (bytes + 63) & ~std::size_t{63});
        std::memset(p, 0xa5, bytes);  // the queue must zero what it needs
    }
    ~RingMem() { std::free(p); }
    RingMem(const RingMem&) = delete;
    RingMem& operator=(const RingMem&) = delete;
    std::uint8_t* va() const { return static_cast<std::uint8_t*>(p); }
    std::uint64_t iova() const { return reinterpret_cast<std::uintptr_t>(p); }
};

// The device's side of one split ring.
struct DeviceSide {
    Vring r;
    std::uint16_t last_avail = 0;
    std::uint16_t used = 0;

    std::uint16_t avail_idx() const {
        return std::atomic_ref<std::uint16_t>(r.avail->idx).load(std::memory_order_acquire);
    }
    bool has_avail() const { return last_avail != avail_idx(); }
    std::uint16_t pop() { return *avail_entry(r.avail, static_cast<std::uint16_t>(last_avail++ & r.mask)); }
    void push(std::uint16_t id, std::uint32_t len) {
        *used_entry(r.used, static_cast<std::uint16_t>(used & r.mask)) = UsedElem{id, len};
        ++used;
    }
    void publish() {
        std::atomic_ref<std::uint16_t>(r.used->idx).store(used, std::memory_order_release);
    }
    void suppress_kicks(bool on) { r.used->flags = on ? kUsedNoNotify : 0; }
};

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
        auto p = mbuf::MbufPool::create(*heap_, "virtio_burst", 127, 0, 0, mbuf::kDefaultDataRoom);
        ASSERT_TRUE(p) << p.error().message();
        pool_ = *p;
    }
    void TearDown() override {
        rx_.reset();
        tx_.reset();
        if (pool_ != nullptr) {
            EXPECT_EQ(pool_->in_use_count(), 0u) << "mbufs left out";
            EXPECT_TRUE(mbuf::MbufPool::destroy(pool_));
        }
    }

    void make_rx(std::uint16_t num, bool mrg, std::uint16_t free_thresh = 4) {
        rx_mem_ = std::make_unique<RingMem>(split_layout(num).total);
        ethdev::RxConf c;
        c.free_thresh = free_thresh;
        auto q = RxQueue::create_at(rx_mem_->va(), rx_mem_->iova(), num, c, *pool_);
        ASSERT_TRUE(q) << q.error().message();
        rx_ = std::move(*q);
        rx_->mrg = mrg;
        rx_->port = 7;
        rx_->kick = {&rx_kick_, 0};
        ASSERT_TRUE(rx_->reset());
        rxd_ = {Vring::at(rx_mem_->va(), rx_mem_->iova(), num)};
    }
    void make_tx(std::uint16_t num, std::uint16_t free_thresh = 4) {
        tx_mem_ = std::make_unique<RingMem>(TxQueue::mem_bytes(num));
        ethdev::TxConf c;
        c.free_thresh = free_thresh;
        tx_ = TxQueue::create_at(tx_mem_->va(), tx_mem_->iova(), num, c);
        tx_->kick = {&tx_kick_, 1};
        txd_ = {Vring::at(tx_mem_->va(), tx_mem_->iova(), num)};
    }

    // The device receives `frame` into as many buffers as it needs (all of
    // one when !mrg) and returns them; false when it had too few.
    bool device_rx(const Bytes& frame, bool mrg, std::uint8_t hdr_flags = 0,
                   std::uint16_t csum_start = 0, std::uint16_t csum_offset = 0) {
        NetHdr h{};
        h.flags = hdr_flags;
        h.csum_start = csum_start;
        h.csum_offset = csum_offset;
        Bytes all(kHdrLen);
        std::memcpy(all.data(), &h, kHdrLen);
        all.insert(all.end(), frame.begin(), frame.end());
        std::size_t off = 0;
        std::vector<std::pair<std::uint16_t, std::uint32_t>> got;
        while (off < all.size()) {
            if (!rxd_.has_avail())
                return false;
            const std::uint16_t id = rxd_.pop();
            const Desc& d = rxd_.r.desc[id];
            EXPECT_EQ(d.flags, kDescWrite);
            const std::size_t n = std::min<std::size_t>(d.len, all.size() - off);
            std::memcpy(reinterpret_cast<void*>(d.addr), all.data() + off, n);
            got.emplace_back(id, static_cast<std::uint32_t>(n));
            off += n;
            if (!mrg && off < all.size())
                return false;
        }
        if (mrg) {
            const auto nb = static_cast<std::uint16_t>(got.size());
            const Desc& d = rxd_.r.desc[got[0].first];
            std::memcpy(reinterpret_cast<std::uint8_t*>(d.addr) + offsetof(NetHdr, num_buffers), &nb, 2);
        }
        for (auto [id, len] : got)
            rxd_.push(id, len);
        return true;
    }

    // The device sends every chain the driver made available; returns the
    // frames (without their headers) and checks each header is zero.
    std::vector<Bytes> device_tx(bool complete = true) {
        std::vector<Bytes> out;
        while (txd_.has_avail()) {
            const std::uint16_t head = txd_.pop();
            Bytes all;
            std::uint16_t id = head;
            for (int guard = 0; guard < 1024; ++guard) {
                const Desc& d = txd_.r.desc[id];
                EXPECT_EQ(d.flags & kDescWrite, 0) << "a transmit buffer marked device-writable";
                const auto* p = reinterpret_cast<const std::uint8_t*>(d.addr);
                all.insert(all.end(), p, p + d.len);
                if (!(d.flags & kDescNext))
                    break;
                id = d.next;
            }
            EXPECT_GE(all.size(), kHdrLen);
            EXPECT_EQ(Bytes(all.begin(), all.begin() + kHdrLen), Bytes(kHdrLen, 0))
                << "transmit header not zero";
            out.emplace_back(all.begin() + kHdrLen, all.end());
            if (complete)
                txd_.push(head, 0);
        }
        txd_.publish();
        return out;
    }

    mbuf::Mbuf* frame_mbuf(const Bytes& b) {
        mbuf::Mbuf* m = pool_->alloc();
        EXPECT_NE(m, nullptr);
        if (m)
            std::memcpy(m->append(static_cast<std::uint16_t>(b.size())), b.data(), b.size());
        return m;
    }

    std::vector<mbuf::Mbuf*> receive(unsigned max = 64) {
        std::vector<mbuf::Mbuf*> got(max);
        got.resize(rx_burst(rx_.get(), got.data(), static_cast<std::uint16_t>(max)));
        return got;
    }

    static Bytes bytes_of(const mbuf::Mbuf* m) {
        Bytes b;
        for (const mbuf::Mbuf* s = m; s != nullptr; s = s->next)
            b.insert(b.end(), s->data(), s->data() + s->data_len);
        return b;
    }

    std::unique_ptr<eal::Memory> mem_;
    std::unique_ptr<eal::Heap> heap_;
    mbuf::MbufPool* pool_ = nullptr;
    std::unique_ptr<RingMem> rx_mem_, tx_mem_;
    std::unique_ptr<RxQueue> rx_;
    std::unique_ptr<TxQueue> tx_;
    DeviceSide rxd_, txd_;
    volatile std::uint16_t rx_kick_ = 0xffff, tx_kick_ = 0xffff;
};

TEST_F(Burst, RxPostsEveryBufferWithRoomForTheHeader) {
    make_rx(8, false);
    EXPECT_EQ(rxd_.avail_idx(), 8) << "every descriptor posted at reset";
    EXPECT_EQ(pool_->in_use_count(), 8u);
    EXPECT_EQ(rxd_.r.avail->flags, kAvailNoInterrupt) << "polling: no interrupts";
    EXPECT_EQ(rxd_.r.used->idx, 0) << "used ring zeroed";
    for (std::uint16_t i = 0; i < 8; ++i) {
        const Desc& d = rxd_.r.desc[i];
        EXPECT_EQ(d.addr, rx_->sw[i]->buf_iova + mbuf::kHeadroom - kHdrLen);
        EXPECT_EQ(d.len, mbuf::kDefaultDataRoom - mbuf::kHeadroom + kHdrLen);
    }
    EXPECT_TRUE(receive().empty());
}

TEST_F(Burst, RxFramesArriveWhole) {
    make_rx(8, false);
    std::vector<Bytes> sent;
    for (int k = 0; k < 3; ++k) {
        sent.push_back(pattern(60 + 500 * k, static_cast<std::uint8_t>(k)));
        ASSERT_TRUE(device_rx(sent.back(), false));
    }
    rxd_.publish();
    auto got = receive();
    ASSERT_EQ(got.size(), 3u);
    for (int k = 0; k < 3; ++k) {
        EXPECT_EQ(got[k]->pkt_len, sent[k].size());
        EXPECT_EQ(got[k]->nb_segs, 1);
        EXPECT_EQ(got[k]->data_off, mbuf::kHeadroom);
        EXPECT_EQ(got[k]->port, 7);
        EXPECT_EQ(got[k]->ol_flags, 0u);
        EXPECT_EQ(bytes_of(got[k]), sent[k]);
        got[k]->free();
    }
    EXPECT_EQ(rx_->packets.get(), 3u);
    EXPECT_EQ(rx_->bytes.get(), 60u + 560 + 1060);
}

TEST_F(Burst, RxRefillsInBatchesAndKicksOnlyWhenAsked) {
    make_rx(8, false, 4);
    // Many more frames than the ring: the ring wraps several times.
    rxd_.suppress_kicks(true);
    unsigned total = 0;
    for (int round = 0; round < 10; ++round) {
        for (int k = 0; k < 4; ++k)
            ASSERT_TRUE(device_rx(pattern(64, static_cast<std::uint8_t>(round)), false)) << round;
        rxd_.publish();
        auto got = receive();
        ASSERT_EQ(got.size(), 4u);
        total += 4;
        for (auto* m : got)
            m->free();
    }
    EXPECT_EQ(total, 40u);
    EXPECT_EQ(rx_->kicks.get(), 0u) << "the device suppressed kicks";
    EXPECT_EQ(rx_kick_, 0xffff);
    // The device wants a kick (it ran out of buffers): the next refill rings.
    rxd_.suppress_kicks(false);
    for (int k = 0; k < 4; ++k)
        ASSERT_TRUE(device_rx(pattern(64, 1), false));
    rxd_.publish();
    for (auto* m : receive())
        m->free();
    EXPECT_EQ(rx_->kicks.get(), 1u);
    EXPECT_EQ(rx_kick_, 0) << "the kick writes the queue's index";
    EXPECT_EQ(pool_->in_use_count(), 8u) << "the ring holds one mbuf per descriptor, no more";
}

TEST_F(Burst, RxMergeableFrameSpansBuffersAndBursts) {
    make_rx(8, true);
    const std::uint32_t buf = rx_->buf_len;
    const Bytes big = pattern(2 * buf + 100, 3);  // three buffers
    ASSERT_TRUE(device_rx(big, true));
    ASSERT_TRUE(device_rx(pattern(70, 9), true));
    // The device publishes the first two used entries only: the frame is
    // not whole yet.
    const std::uint16_t all = rxd_.used;
    std::atomic_ref<std::uint16_t>(rxd_.r.used->idx).store(2, std::memory_order_release);
    EXPECT_TRUE(receive().empty());
    std::atomic_ref<std::uint16_t>(rxd_.r.used->idx).store(all, std::memory_order_release);
    auto got = receive();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0]->nb_segs, 3);
    EXPECT_EQ(got[0]->pkt_len, big.size());
    EXPECT_EQ(bytes_of(got[0]), big);
    EXPECT_EQ(got[1]->nb_segs, 1);
    EXPECT_EQ(bytes_of(got[1]), pattern(70, 9));
    for (auto* m : got)
        m->free();
}

// An IPv4/UDP frame with a correct checksum.
Bytes udp_frame(std::size_t payload) {
    Bytes f(14 + 20 + 8 + payload, 0);
    f[12] = 0x08;
    std::uint8_t* ip = &f[14];
    ip[0] = 0x45;
    const auto tot = static_cast<std::uint16_t>(20 + 8 + payload);
    ip[2] = static_cast<std::uint8_t>(tot >> 8);
    ip[3] = static_cast<std::uint8_t>(tot);
    ip[8] = 64;
    ip[9] = 17;
    const std::uint8_t a[8] = {10, 0, 0, 1, 10, 0, 0, 2};
    std::memcpy(ip + 12, a, 8);
    std::uint8_t* udp = ip + 20;
    const auto ulen = static_cast<std::uint16_t>(8 + payload);
    udp[0] = 0x30;
    udp[1] = 0x39;
    udp[3] = 9;
    udp[4] = static_cast<std::uint8_t>(ulen >> 8);
    udp[5] = static_cast<std::uint8_t>(ulen);
    for (std::size_t i = 0; i < payload; ++i)
        udp[8 + i] = static_cast<std::uint8_t>(i * 13 + 1);
    auto sum16 = [](const std::uint8_t* p, std::size_t n, std::uint32_t s) {
        for (std::size_t i = 0; i + 1 < n; i += 2)
            s += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
        if (n & 1)
            s += static_cast<std::uint32_t>(p[n - 1] << 8);
        return s;
    };
    std::uint32_t s = sum16(ip + 12, 8, 17u + ulen);
    s = sum16(udp, ulen, s);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    auto c = static_cast<std::uint16_t>(~s);
    if (c == 0)
        c = 0xffff;
    udp[6] = static_cast<std::uint8_t>(c >> 8);
    udp[7] = static_cast<std::uint8_t>(c);
    return f;
}

TEST_F(Burst, RxChecksumVerdictsAndPartialChecksumsCompleted) {
    make_rx(8, false);
    rx_->cksum = true;
    const Bytes good = udp_frame(33);
    // DATA_VALID: good as it is. No flag: no verdict.
    ASSERT_TRUE(device_rx(good, false, kHdrDataValid));
    ASSERT_TRUE(device_rx(good, false, 0));
    // NEEDS_CSUM: the sender left the pseudo-header's sum in the field
    // (Linux's CHECKSUM_PARTIAL); the driver must complete it.
    Bytes partial = good;
    std::uint32_t ph = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + (8 + 33);
    while (ph >> 16)
        ph = (ph & 0xffff) + (ph >> 16);
    partial[14 + 20 + 6] = static_cast<std::uint8_t>(ph >> 8);
    partial[14 + 20 + 7] = static_cast<std::uint8_t>(ph);
    ASSERT_TRUE(device_rx(partial, false, kHdrNeedsCsum, 14 + 20, 6));
    // NEEDS_CSUM pointing past the frame: left alone, no verdict.
    ASSERT_TRUE(device_rx(partial, false, kHdrNeedsCsum, 14 + 20, 200));
    rxd_.publish();
    auto got = receive();
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0]->ol_flags, mbuf::ol::kRxL4CksumGood);
    EXPECT_EQ(got[1]->ol_flags, 0u);
    EXPECT_EQ(got[2]->ol_flags, mbuf::ol::kRxL4CksumGood);
    EXPECT_EQ(bytes_of(got[2]), good) << "the completed checksum is the sender's full one";
    EXPECT_EQ(got[3]->ol_flags, 0u);
    EXPECT_EQ(bytes_of(got[3]), partial);
    for (auto* m : got)
        m->free();
}

TEST_F(Burst, RxEmptyPoolDelaysRefillAndCounts) {
    make_rx(8, false, 4);
    std::vector<mbuf::Mbuf*> held(pool_->avail_count());
    ASSERT_EQ(pool_->alloc_bulk(held.data(), static_cast<unsigned>(held.size())), 0);
    for (int k = 0; k < 4; ++k)
        ASSERT_TRUE(device_rx(pattern(64, 1), false));
    rxd_.publish();
    auto got = receive();
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(rx_->nombuf.get(), 4u) << "the refill found the pool empty";
    EXPECT_EQ(rxd_.avail_idx(), 8) << "nothing re-posted";
    for (auto* m : got)
        m->free();
    for (auto* m : held)
        m->free();
    EXPECT_TRUE(receive().empty());
    EXPECT_EQ(rxd_.avail_idx(), 12) << "re-posted once the pool had mbufs";
}

TEST_F(Burst, RxResetAfterAStopPostsEverythingAgain) {
    make_rx(8, false);
    for (int k = 0; k < 3; ++k)
        ASSERT_TRUE(device_rx(pattern(64, 1), false));
    rxd_.publish();
    auto got = receive(2);
    ASSERT_EQ(got.size(), 2u);
    for (auto* m : got)
        m->free();
    // A device reset: its indexes restart at 0 and the ring is posted again.
    ASSERT_TRUE(rx_->reset());
    rxd_ = {Vring::at(rx_mem_->va(), rx_mem_->iova(), 8)};
    EXPECT_EQ(rxd_.avail_idx(), 8);
    EXPECT_EQ(pool_->in_use_count(), 8u);
    EXPECT_TRUE(receive().empty()) << "nothing of the last run is seen again";
    ASSERT_TRUE(device_rx(pattern(64, 5), false));
    rxd_.publish();
    got = receive();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(bytes_of(got[0]), pattern(64, 5));
    got[0]->free();
}

TEST_F(Burst, TxHeaderInHeadroomOneDescriptorPerPacket) {
    make_tx(8);
    std::vector<Bytes> sent;
    std::vector<mbuf::Mbuf*> ms;
    for (int k = 0; k < 5; ++k) {
        sent.push_back(pattern(60 + 100 * k, static_cast<std::uint8_t>(k)));
        ms.push_back(frame_mbuf(sent.back()));
    }
    EXPECT_EQ(tx_burst(tx_.get(), ms.data(), 5), 5);
    EXPECT_EQ(tx_->nb_free, 3) << "one descriptor each";
    EXPECT_EQ(tx_->kicks.get(), 1u) << "one kick per burst";
    EXPECT_EQ(tx_kick_, 1);
    EXPECT_EQ(device_tx(), sent);
    tx_->reclaim();
    EXPECT_EQ(tx_->nb_free, 8);
    EXPECT_EQ(pool_->in_use_count(), 0u) << "sent packets freed";
    EXPECT_EQ(tx_->packets.get(), 5u);
}

TEST_F(Burst, TxSharedOrHeadroomlessAndChainedPackets) {
    make_tx(16);
    const Bytes a = pattern(100, 1), b = pattern(200, 2), c1 = pattern(50, 3), c2 = pattern(70, 4);
    mbuf::Mbuf* shared = frame_mbuf(a);
    shared->refcnt_add(1);  // another owner: its headroom is not ours
    mbuf::Mbuf* tight = pool_->alloc();
    ASSERT_NE(tight, nullptr);
    tight->data_off = 0;  // no headroom left
    std::memcpy(tight->append(static_cast<std::uint16_t>(b.size())), b.data(), b.size());
    mbuf::Mbuf* chain = frame_mbuf(c1);
    ASSERT_TRUE(chain->chain(frame_mbuf(c2)));
    mbuf::Mbuf* ms[] = {shared, tight, chain};
    EXPECT_EQ(tx_burst(tx_.get(), ms, 3), 3);
    EXPECT_EQ(tx_->nb_free, 16 - 2 - 2 - 2);
    Bytes c = c1;
    c.insert(c.end(), c2.begin(), c2.end());
    EXPECT_EQ(device_tx(), (std::vector<Bytes>{a, b, c}));
    tx_->reclaim();
    EXPECT_EQ(tx_->nb_free, 16);
    EXPECT_EQ(shared->refcnt, 1) << "the driver dropped its reference only";
    EXPECT_EQ(Bytes(shared->data(), shared->data() + shared->data_len), a)
        << "the shared buffer was not written";
    shared->free();
}

TEST_F(Burst, TxFullRingTakesWhatFitsAndResetFreesTheRest) {
    make_tx(8, 4);
    std::vector<mbuf::Mbuf*> ms;
    for (int k = 0; k < 12; ++k)
        ms.push_back(frame_mbuf(pattern(64, static_cast<std::uint8_t>(k))));
    EXPECT_EQ(tx_burst(tx_.get(), ms.data(), 12), 8) << "eight descriptors";
    // The device sends them; the next burst reclaims and takes the rest.
    EXPECT_EQ(device_tx().size(), 8u);
    EXPECT_EQ(tx_burst(tx_.get(), ms.data() + 8, 4), 4);
    // Not sent by the device: a stop (reset) frees them.
    EXPECT_EQ(device_tx(false).size(), 4u);
    EXPECT_EQ(pool_->in_use_count(), 4u);
    tx_->reset();
    EXPECT_EQ(pool_->in_use_count(), 0u);
    EXPECT_EQ(tx_->nb_free, 8);
    // And the ring works again from index 0.
    txd_ = {Vring::at(tx_mem_->va(), tx_mem_->iova(), 8)};
    mbuf::Mbuf* m = frame_mbuf(pattern(64, 42));
    EXPECT_EQ(tx_burst(tx_.get(), &m, 1), 1);
    EXPECT_EQ(device_tx(), (std::vector<Bytes>{pattern(64, 42)}));
    tx_->reclaim();
}

TEST_F(Burst, TxNoKickWhenTheDeviceSuppressesThem) {
    make_tx(8);
    txd_.suppress_kicks(true);
    mbuf::Mbuf* m = frame_mbuf(pattern(64, 1));
    EXPECT_EQ(tx_burst(tx_.get(), &m, 1), 1);
    EXPECT_EQ(tx_->kicks.get(), 0u);
    EXPECT_EQ(tx_kick_, 0xffff);
    EXPECT_EQ(device_tx().size(), 1u);
    tx_->reclaim();
}

}  // namespace
}  // namespace vfiokit::virtio::net
