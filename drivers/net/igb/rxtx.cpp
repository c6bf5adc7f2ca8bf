#include "rxtx.hpp"

#include <atomic>

namespace vfiokit::igb {

namespace {

inline std::uint64_t rx_flags(const RxQueue& q, std::uint32_t status, std::uint16_t pkt_info) {
    std::uint64_t f = 0;
    // VP with CTRL.VME: the device took the tag out and put it in wb.vlan
    // (7.1.5.2, 7.4.4).
    if (q.strip_vlan && (status & rxd::kVp))
        f |= mbuf::ol::kRxVlan | mbuf::ol::kRxVlanStripped;
    if (q.rss && (pkt_info & rxd::kRssTypeMask) != 0)
        f |= mbuf::ol::kRxRssHash;
    if (q.cksum) {
        if (status & rxd::kIpcs)
            f |= (status & rxd::kErrIpe) ? mbuf::ol::kRxIpCksumBad : mbuf::ol::kRxIpCksumGood;
        if (status & rxd::kL4cs)
            f |= (status & rxd::kErrL4e) ? mbuf::ol::kRxL4CksumBad : mbuf::ol::kRxL4CksumGood;
    }
    return f;
}

}  // namespace

std::uint16_t rx_burst(void* rxq, mbuf::Mbuf** pkts, std::uint16_t n) {
    RxQueue& q = *static_cast<RxQueue*>(rxq);
    std::uint16_t got = 0;
    std::uint16_t i = q.next;
    while (got < n) {
        volatile AdvRxDesc& d = q.ring[i];
        const std::uint32_t status = d.wb.status_error;
        if (!(status & rxd::kDd))
            break;
        // The rest of the descriptor (and the buffer) was written before DD.
        std::atomic_thread_fence(std::memory_order_acquire);
        mbuf::Mbuf* fresh = q.pool->alloc();
        if (fresh == nullptr) {
            ++q.nombuf;
            break;
        }
        mbuf::Mbuf* m = q.sw[i];
        const std::uint16_t len = d.wb.length;
        const std::uint16_t pkt_info = d.wb.pkt_info;
        const std::uint32_t rss = d.wb.rss;
        const std::uint16_t vlan = d.wb.vlan;

        q.sw[i] = fresh;
        d.read.pkt_addr = fresh->iova();
        d.read.hdr_addr = 0;  // clears DD
        i = static_cast<std::uint16_t>((i + 1) & q.mask);
        ++q.nb_hold;

        // A frame larger than one buffer spans descriptors; start() sizes
        // buffers so that cannot happen, so such a frame is an error:
        // drop it up to its last descriptor.
        const bool eop = (status & rxd::kEop) != 0;
        if (q.discard || !eop || (status & rxd::kErrRxe)) {
            q.discard = !eop;
            if (eop)
                ++q.errors;  // one per frame, at its last descriptor
            m->free();
            continue;
        }
        const std::uint16_t data_len =
            static_cast<std::uint16_t>(len > q.crc_len ? len - q.crc_len : 0);
        m->data_len = data_len;
        m->pkt_len = data_len;
        m->port = q.port;
        m->ol_flags = rx_flags(q, status, pkt_info);
        m->vlan_tci = (m->ol_flags & mbuf::ol::kRxVlan) ? vlan : 0;
        m->rss_hash = rss;
        q.bytes += data_len;
        pkts[got++] = m;
    }
    q.next = i;
    q.packets += got;
    if (q.nb_hold > q.free_thresh) {
        // RDT: the last descriptor given back, one behind the next to read.
        q.rdt.ring(static_cast<std::uint16_t>((i - 1) & q.mask));
        q.nb_hold = 0;
    }
    return got;
}

std::uint16_t tx_clean(TxQueue& q) {
    std::uint16_t freed = 0;
    while (q.clean != q.tail) {
        const std::uint16_t last = q.sw[q.clean].last;
        if (!(q.ring[last].wb.status & txd::kStatusDd))
            break;
        std::atomic_thread_fence(std::memory_order_acquire);
        const std::uint16_t end = static_cast<std::uint16_t>((last + 1) & q.mask);
        for (std::uint16_t j = q.clean; j != end; j = static_cast<std::uint16_t>((j + 1) & q.mask)) {
            if (q.sw[j].m != nullptr) {
                (void)q.sw[j].m->free_seg();
                q.sw[j].m = nullptr;
            }
            ++freed;
        }
        q.clean = end;
    }
    q.nb_free = static_cast<std::uint16_t>(q.nb_free + freed);
    return freed;
}

void tx_drop_all(TxQueue& q) {
    for (std::uint16_t j = q.clean; j != q.tail; j = static_cast<std::uint16_t>((j + 1) & q.mask)) {
        if (q.sw[j].m != nullptr) {
            (void)q.sw[j].m->free_seg();
            q.sw[j].m = nullptr;
        }
    }
    q.clean = q.tail = 0;
    q.nb_free = static_cast<std::uint16_t>(q.mask);  // nb_desc - 1
    q.ctx_valid = false;
}

std::uint16_t tx_burst(void* txq, mbuf::Mbuf** pkts, std::uint16_t n) {
    TxQueue& q = *static_cast<TxQueue*>(txq);
    if (q.nb_free < q.free_thresh)
        (void)tx_clean(q);
    std::uint16_t sent = 0;
    std::uint16_t t = q.tail;
    const std::uint16_t burst_first = t;
    for (; sent < n; ++sent) {
        mbuf::Mbuf* p = pkts[sent];
        const bool vlan = (p->ol_flags & mbuf::ol::kTxVlan) != 0;
        const bool new_ctx = vlan && (!q.ctx_valid || q.ctx_vlan != p->vlan_tci);
        const unsigned need = p->nb_segs + (new_ctx ? 1u : 0u);
        if (need > q.nb_free) {
            (void)tx_clean(q);
            if (need > q.nb_free)
                break;
        }
        if (new_ctx) {
            volatile AdvTxDesc& c = q.ring[t];
            c.ctx.vlan_macip_lens = (std::uint32_t{p->vlan_tci} << txd::kVlanShift) |
                                    (std::uint32_t{14} << txd::kMaclenShift);
            c.ctx.seqnum_seed = 0;
            c.ctx.type_tucmd_mlhl = txd::kDtypCtxt | txd::kDext;
            c.ctx.mss_l4len_idx = 0;  // context slot 0
            q.sw[t].m = nullptr;
            q.ctx_vlan = p->vlan_tci;
            q.ctx_valid = true;
            t = static_cast<std::uint16_t>((t + 1) & q.mask);
        }
        const std::uint32_t olinfo = (p->pkt_len << txd::kPaylenShift) | (vlan ? txd::kCc : 0u);
        const std::uint32_t cmd = txd::kDtypData | txd::kDext | txd::kIfcs | (vlan ? txd::kVle : 0u);
        for (mbuf::Mbuf* s = p; s != nullptr; s = s->next) {
            volatile AdvTxDesc& d = q.ring[t];
            const bool eop = s->next == nullptr;
            d.read.buffer_addr = s->iova();
            d.read.cmd_type_len = cmd | s->data_len | (eop ? txd::kEop : 0u);
            d.read.olinfo_status = olinfo;
            q.sw[t].m = s;
            t = static_cast<std::uint16_t>((t + 1) & q.mask);
        }
        q.nb_free = static_cast<std::uint16_t>(q.nb_free - need);
        q.bytes += p->pkt_len;
    }
    if (sent > 0) {
        // One RS per burst, on its last descriptor: the device writes DD
        // back only there (7.2.3.2.2), and tx_clean frees the whole burst
        // when it sees it. A device model writes a descriptor back into
        // guest memory for every RS, so one per packet costs a DMA write
        // per frame.
        const std::uint16_t rs = static_cast<std::uint16_t>((t - 1) & q.mask);
        q.ring[rs].read.cmd_type_len = q.ring[rs].read.cmd_type_len | txd::kRs;
        q.sw[burst_first].last = rs;
        q.tail = t;
        q.packets += sent;
        // The doorbell orders the descriptor stores before it.
        q.tdt.ring(t);
    }
    return sent;
}

}  // namespace vfiokit::igb
