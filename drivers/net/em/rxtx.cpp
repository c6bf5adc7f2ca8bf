#include "rxtx.hpp"

#include <cerrno>
#include <string>

namespace vfiokit::em {

namespace {

// The NIC writes status last; everything else in the descriptor is read
// after this acquire load saw DD.
std::uint8_t load_status(std::uint8_t& s) {
    return std::atomic_ref<std::uint8_t>(s).load(std::memory_order_acquire);
}

std::uint64_t rx_cksum_flags(std::uint8_t status, std::uint8_t errors) {
    // IXSM: the NIC did not check anything (QEMU's e1000 sets it on every
    // frame). IPCS/TCPCS/UDPCS say which checks ran; IPE/TCPE their
    // verdicts [SDM 3.2.3; 82574 7.1].
    if (status & rxd::kIxsm)
        return 0;
    std::uint64_t f = 0;
    if (status & rxd::kIpcs)
        f |= (errors & rxd::kErrIpe) ? mbuf::ol::kRxIpCksumBad : mbuf::ol::kRxIpCksumGood;
    if (status & (rxd::kTcpcs | rxd::kUdpcs))
        f |= (errors & rxd::kErrTcpe) ? mbuf::ol::kRxL4CksumBad : mbuf::ol::kRxL4CksumGood;
    return f;
}

// Transmit buffers are cut at every 4 KiB IOVA boundary, one data
// descriptor per piece. Behind an IOMMU, adjacent IOVA pages need not be
// adjacent in the memory behind them (a guest's 2 MiB pages rarely are),
// and a NIC model that maps each descriptor's buffer in one piece cannot
// follow that: QEMU's 82574L (e1000e_process_tx_desc, through
// net_tx_pkt_add_raw_fragment_pci) takes a buffer only when pci_dma_map
// maps all of it, and otherwise skips the whole frame while still writing
// DD, so the frame is lost without GPTC counting it. A packet may span
// several data descriptors on every part this driver runs [SDM 3.3;
// 82574 7.2], and 4 KiB is the smallest page an IOMMU maps, so no piece
// crosses into memory that is not adjacent.
constexpr std::uint64_t kTxPieceBytes = 4096;

std::uint16_t pieces(std::uint64_t iova, std::uint16_t len) {
    if (len == 0)
        return 1;
    return static_cast<std::uint16_t>((iova + len - 1) / kTxPieceBytes - iova / kTxPieceBytes + 1);
}

// Gives the taken slots [next - nb_hold, next) fresh mbufs and the NIC
// everything up to the slot before `next`. All or nothing: when the pool
// is short the slots wait for the next call.
void refill(RxQueue& q) {
    const std::uint16_t n = q.nb_hold;
    if (q.pool->alloc_bulk(q.staging, n) != 0) {
        q.nombuf.add(n);
        return;
    }
    std::uint16_t i = ring_sub(q.next, n, q.mask);
    for (std::uint16_t k = 0; k < n; ++k) {
        mbuf::Mbuf* m = q.staging[k];
        // The NIC fills buf.bytes from iova(): the data must start after
        // the headroom, whatever the mbuf's last user did.
        m->data_off = mbuf::kHeadroom;
        q.sw[i] = m;
        q.ring[i] = RxDesc{.buffer_addr = m->iova(), .length = 0, .checksum = 0, .status = 0,
                           .errors = 0, .special = 0};
        i = ring_add(i, 1, q.mask);
    }
    q.nb_hold = 0;
    // RDT: one past the last slot the NIC may fill [SDM 3.2.6].
    q.rdt.ring(regs::Rdt::zero().set_index(ring_sub(q.next, 1, q.mask)).raw());
}

}  // namespace

Result<DmaRing> DmaRing::alloc(std::uint64_t bytes, int socket) {
    auto m = ethdev::dma_alloc(bytes, kRingAlignBytes, socket);
    if (!m)
        return fail(std::move(m.error()));
    DmaRing r;
    r.m_ = *m;
    return r;
}

DmaRing::~DmaRing() {
    if (m_.va)
        ethdev::dma_free(m_);
}

DmaRing& DmaRing::operator=(DmaRing&& o) noexcept {
    if (this != &o) {
        if (m_.va)
            ethdev::dma_free(m_);
        m_ = o.m_;
        o.m_ = {};
    }
    return *this;
}

Result<std::unique_ptr<RxQueue>> RxQueue::create(std::uint16_t nb_desc, int socket,
                                                 const ethdev::RxConf& conf, mbuf::MbufPool& pool,
                                                 pci::Bar& bar) {
    const std::uint32_t room =
        pool.data_room() > mbuf::kHeadroom ? pool.data_room() - mbuf::kHeadroom : 0;
    const regs::RxBufferSize buf = regs::rx_buffer_size(room);
    if (buf.bytes == 0)
        return fail(Error(EINVAL, "rx ring: pool '" + pool.name() + "' buffers have " + std::to_string(room) +
                                  " bytes after the " + std::to_string(mbuf::kHeadroom) +
                                  "-byte headroom")
                        .hint("em receive buffers are 256 bytes at least (RCTL.BSIZE): use a "
                              "larger data room"));
    auto q = std::make_unique<RxQueue>();
    auto mem = DmaRing::alloc(std::uint64_t{nb_desc} * sizeof(RxDesc), socket);
    if (!mem)
        return fail(std::move(mem.error()).context("rx ring of " + std::to_string(nb_desc) + " descriptors"));
    q->mem = std::move(*mem);
    q->sw_store.assign(nb_desc, nullptr);
    q->staging_store.assign(nb_desc, nullptr);
    q->ring = static_cast<RxDesc*>(q->mem.va());
    q->sw = q->sw_store.data();
    q->staging = q->staging_store.data();
    q->rdt = doorbell(bar, regs::Rdt::offset);
    q->pool = &pool;
    q->nb_desc = nb_desc;
    q->mask = static_cast<std::uint16_t>(nb_desc - 1);
    q->free_thresh = batch_thresh(conf.free_thresh, nb_desc);
    q->buf = buf;
    if (pool.alloc_bulk(q->sw, nb_desc) != 0)
        return fail(Error(ENOMEM, "rx ring of " + std::to_string(nb_desc) + " descriptors: pool '" + pool.name() +
                                  "' has " + std::to_string(pool.avail_count()) + " free mbufs of " +
                                  std::to_string(pool.size()))
                        .hint("every slot of an rx ring holds an mbuf: make the pool larger or "
                              "the ring smaller"));
    return q;
}

RxQueue::~RxQueue() {
    if (pkt_first)
        pkt_first->free();
    for (std::uint16_t i = 0; i < nb_desc; ++i)
        if (sw[i])
            sw[i]->free();
}

Result<void> RxQueue::reset() {
    if (pkt_first) {
        pkt_first->free();
        pkt_first = pkt_last = nullptr;
    }
    for (std::uint16_t i = 0; i < nb_desc; ++i) {
        if (!sw[i] && !(sw[i] = pool->alloc()))
            return fail(Error(ENOMEM, "rx ring: pool '" + pool->name() + "' is empty")
                            .hint("every slot of an rx ring holds an mbuf: free the mbufs the "
                                  "application holds, or make the pool larger"));
        sw[i]->data_off = mbuf::kHeadroom;
        ring[i] = RxDesc{.buffer_addr = sw[i]->iova(), .length = 0, .checksum = 0, .status = 0,
                         .errors = 0, .special = 0};
    }
    next = 0;
    nb_hold = 0;
    return {};
}

Result<std::unique_ptr<TxQueue>> TxQueue::create(std::uint16_t nb_desc, int socket,
                                                 const ethdev::TxConf& conf, pci::Bar& bar) {
    auto q = std::make_unique<TxQueue>();
    auto mem = DmaRing::alloc(std::uint64_t{nb_desc} * sizeof(TxDesc), socket);
    if (!mem)
        return fail(std::move(mem.error()).context("tx ring of " + std::to_string(nb_desc) + " descriptors"));
    q->mem = std::move(*mem);
    q->sw_store.assign(nb_desc, nullptr);
    q->last_store.assign(nb_desc, 0);
    q->ring = static_cast<TxDesc*>(q->mem.va());
    q->sw = q->sw_store.data();
    q->last = q->last_store.data();
    q->tdt = doorbell(bar, regs::Tdt::offset);
    q->nb_desc = nb_desc;
    q->mask = static_cast<std::uint16_t>(nb_desc - 1);
    q->free_thresh = batch_thresh(conf.free_thresh, nb_desc);
    q->reset();
    return q;
}

TxQueue::~TxQueue() {
    for (std::uint16_t i = 0; i < nb_desc; ++i)
        if (sw[i])
            sw[i]->free_seg();
}

void TxQueue::reset() {
    // Stopped: whatever is still in the ring was sent or never will be.
    for (std::uint16_t i = 0; i < nb_desc; ++i) {
        if (sw[i]) {
            sw[i]->free_seg();
            sw[i] = nullptr;
        }
        ring[i] = TxDesc{};
    }
    tail = clean = 0;
    nb_free = static_cast<std::uint16_t>(nb_desc - 1);
}

void TxQueue::reclaim() {
    std::uint16_t c = clean;
    // c is always a burst's first slot; last[c] its RS slot.
    while (c != tail) {
        const std::uint16_t rs = last[c];
        if (!(load_status(ring[rs].status) & txd::kStaDd))
            break;
        const std::uint16_t end = ring_add(rs, 1, mask);
        do {
            if (sw[c]) {  // null: a piece before a segment's last
                sw[c]->free_seg();
                sw[c] = nullptr;
            }
            c = ring_add(c, 1, mask);
            ++nb_free;
        } while (c != end);
    }
    clean = c;
}

std::uint16_t rx_burst(void* rxq, mbuf::Mbuf** pkts, std::uint16_t n) {
    RxQueue& q = *static_cast<RxQueue*>(rxq);
    std::uint16_t idx = q.next;
    std::uint16_t got = 0;
    std::uint64_t bytes = 0;
    mbuf::Mbuf* first = q.pkt_first;
    mbuf::Mbuf* last = q.pkt_last;
    while (got < n) {
        RxDesc& d = q.ring[idx];
        const std::uint8_t status = load_status(d.status);
        if (!(status & rxd::kDd))
            break;
        mbuf::Mbuf* m = q.sw[idx];
        q.sw[idx] = nullptr;
        idx = ring_add(idx, 1, q.mask);
        ++q.nb_hold;
        m->data_len = d.length;
        m->next = nullptr;
        if (!first) {
            first = m;
            m->pkt_len = d.length;
            m->nb_segs = 1;
        } else {
            last->next = m;
            first->pkt_len += d.length;
            ++first->nb_segs;
        }
        last = m;
        if (!(status & rxd::kEop))
            continue;
        if (d.errors & rxd::kErrFrame) {
            first->free();
            q.errors.add(1);
        } else {
            first->port = q.port;
            first->ol_flags = q.cksum ? rx_cksum_flags(status, d.errors) : 0;
            bytes += first->pkt_len;
            pkts[got++] = first;
        }
        first = last = nullptr;
    }
    q.next = idx;
    q.pkt_first = first;
    q.pkt_last = last;
    if (got) {
        q.packets.add(got);
        q.bytes.add(bytes);
    }
    // Refill in batches; and when the ring had nothing, give back what is
    // held at once, so an idle NIC is never short of descriptors (QEMU's
    // models also resume delivering held-back frames only on an RDT write).
    if (q.nb_hold >= q.free_thresh || (got == 0 && q.nb_hold != 0))
        refill(q);
    return got;
}

std::uint16_t tx_burst(void* txq, mbuf::Mbuf** pkts, std::uint16_t n) {
    TxQueue& q = *static_cast<TxQueue*>(txq);
    if (q.nb_free < q.free_thresh)
        q.reclaim();
    std::uint16_t tail = q.tail;
    const std::uint16_t burst_first = tail;
    std::uint16_t sent = 0;
    std::uint64_t bytes = 0;
    for (; sent < n; ++sent) {
        mbuf::Mbuf* m = pkts[sent];
        const std::uint16_t segs = m->nb_segs;
        std::uint16_t need = 0;
        mbuf::Mbuf* s = m;
        for (std::uint16_t k = 0; k < segs; ++k, s = s->next)
            need = static_cast<std::uint16_t>(need + pieces(s->iova(), s->data_len));
        if (need > q.nb_free) {
            q.reclaim();
            if (need > q.nb_free)
                break;
        }
        s = m;
        for (std::uint16_t k = 0; k < segs; ++k, s = s->next) {
            std::uint64_t iova = s->iova();
            std::uint16_t left = s->data_len;
            do {
                const auto room = static_cast<std::uint16_t>(kTxPieceBytes - iova % kTxPieceBytes);
                const std::uint16_t len = left < room ? left : room;
                left = static_cast<std::uint16_t>(left - len);
                const bool eop = k + 1 == segs && left == 0;
                // IFCS: the NIC appends the CRC [SDM 3.3.3.1]; RS comes
                // after the loop, on the burst's last descriptor.
                q.ring[tail] = TxDesc{
                    .buffer_addr = iova,
                    .length = len,
                    .cso = 0,
                    .cmd = static_cast<std::uint8_t>(txd::kCmdIfcs | (eop ? txd::kCmdEop : 0)),
                    .status = 0,
                    .css = 0,
                    .special = 0,
                };
                // The segment is freed with its last piece.
                q.sw[tail] = left == 0 ? s : nullptr;
                tail = ring_add(tail, 1, q.mask);
                iova += len;
            } while (left != 0);
        }
        q.nb_free = static_cast<std::uint16_t>(q.nb_free - need);
        bytes += m->pkt_len;
    }
    if (sent) {
        // One RS per burst, on its last descriptor: the NIC writes DD back
        // only there [SDM 3.3.3.1], and reclaim frees the whole burst when
        // it sees it (last[] of the burst's first slot). A device model
        // writes a descriptor back into guest memory for every RS, so one
        // per packet costs a DMA write per frame.
        const std::uint16_t rs = ring_sub(tail, 1, q.mask);
        q.ring[rs].cmd = static_cast<std::uint8_t>(q.ring[rs].cmd | txd::kCmdRs);
        q.last[burst_first] = rs;
        q.tail = tail;
        q.packets.add(sent);
        q.bytes.add(bytes);
        // The doorbell: descriptors are visible before the NIC sees TDT
        // (Bar::write's release fence).
        q.tdt.ring(regs::Tdt::zero().set_index(tail).raw());
    }
    return sent;
}

}  // namespace vfiokit::em
