#include "rxtx.hpp"

#include <cerrno>
#include <cstring>
#include <string>

namespace vfiokit::virtio::net {

namespace {

// Where the header goes in a receive buffer: right before the frame,
// which starts at the mbuf's data_off (the pool's headroom).
std::uint64_t rx_buf_iova(const mbuf::Mbuf* m) { return m->buf_iova + m->data_off - kHdrLen; }

void post_rx(RxQueue& q, std::uint16_t id, mbuf::Mbuf* m, std::uint16_t& avail) {
    q.sw[id] = m;
    q.ring.desc[id] = Desc{.addr = rx_buf_iova(m), .len = q.buf_len, .flags = kDescWrite, .next = 0};
    *avail_entry(q.ring.avail, static_cast<std::uint16_t>(avail & q.ring.mask)) = id;
    ++avail;
}

// Gives the held descriptors fresh mbufs and the device. All or nothing:
// when the pool is short they wait for the next call.
void refill(RxQueue& q) {
    const std::uint16_t n = q.nb_hold;
    if (q.pool->alloc_bulk(q.staging, n) != 0) {
        q.nombuf.add(n);
        return;
    }
    std::uint16_t avail = q.avail_idx;
    for (std::uint16_t k = 0; k < n; ++k)
        post_rx(q, q.hold[k], q.staging[k], avail);
    q.avail_idx = avail;
    q.nb_hold = 0;
    q.ring.publish(avail);
    if (!q.ring.kick_suppressed()) {
        q.kick.ring();
        q.kicks.add(1);
    }
}

Result<void> check_room(const mbuf::MbufPool& pool) {
    if (pool.data_room() <= mbuf::kHeadroom || mbuf::kHeadroom < kHdrLen)
        return fail(Error(EINVAL, "rx ring: pool '" + pool.name() + "' buffers have " +
                                      std::to_string(pool.data_room()) + " bytes, no room after the " +
                                      std::to_string(mbuf::kHeadroom) + "-byte headroom")
                        .hint("use a data room larger than the headroom (mbuf::kDefaultDataRoom)"));
    return {};
}

}  // namespace

// --- receive

std::uint64_t rx_cksum(mbuf::Mbuf& m) {
    const auto* h = reinterpret_cast<const NetHdr*>(m.data() - kHdrLen);
    if (!(h->flags & kHdrNeedsCsum))
        return (h->flags & kHdrDataValid) ? mbuf::ol::kRxL4CksumGood : 0;
    const std::uint32_t len = m.data_len;
    const std::uint32_t start = h->csum_start;
    const std::uint32_t at = start + h->csum_offset;
    if (m.nb_segs != 1 || start >= len || at + 2 > len)
        return 0;
    // The field holds the pseudo-header's sum: the whole range's sum,
    // complemented, is the checksum; 0 is sent as 0xffff (the same in one's
    // complement, and UDP's "no checksum" otherwise).
    std::uint8_t* p = m.data();
    std::uint32_t sum = 0;
    std::uint32_t i = start;
    for (; i + 1 < len; i += 2)
        sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    if (i < len)
        sum += static_cast<std::uint32_t>(p[i] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    auto c = static_cast<std::uint16_t>(~sum);
    if (c == 0)
        c = 0xffff;
    p[at] = static_cast<std::uint8_t>(c >> 8);
    p[at + 1] = static_cast<std::uint8_t>(c);
    return mbuf::ol::kRxL4CksumGood;
}

Result<std::unique_ptr<RxQueue>> RxQueue::create(std::uint16_t nb_desc, int socket,
                                                 const ethdev::RxConf& conf, mbuf::MbufPool& pool) {
    if (auto r = check_room(pool); !r)
        return fail(std::move(r.error()));
    auto mem = DmaBlock::alloc(split_layout(nb_desc).total, socket);
    if (!mem)
        return fail(std::move(mem.error()).context("rx ring of " + std::to_string(nb_desc) +
                                                    " descriptors"));
    auto q = create_at(mem->va(), mem->iova(), nb_desc, conf, pool);
    if (!q)
        return q;
    (*q)->mem = std::move(*mem);
    return q;
}

Result<std::unique_ptr<RxQueue>> RxQueue::create_at(std::uint8_t* va, std::uint64_t iova,
                                                    std::uint16_t nb_desc,
                                                    const ethdev::RxConf& conf,
                                                    mbuf::MbufPool& pool) {
    if (auto r = check_room(pool); !r)
        return fail(std::move(r.error()));
    auto q = std::make_unique<RxQueue>();
    q->ring = Vring::at(va, iova, nb_desc);
    q->sw_store.assign(nb_desc, nullptr);
    q->staging_store.assign(nb_desc, nullptr);
    q->hold_store.assign(nb_desc, 0);
    q->sw = q->sw_store.data();
    q->staging = q->staging_store.data();
    q->hold = q->hold_store.data();
    q->pool = &pool;
    q->nb_desc = nb_desc;
    q->free_thresh = batch_thresh(conf.free_thresh, nb_desc);
    // The header, then the rest of the buffer after the headroom.
    q->buf_len = pool.data_room() - mbuf::kHeadroom + kHdrLen;
    if (pool.alloc_bulk(q->sw, nb_desc) != 0)
        return fail(Error(ENOMEM, "rx ring of " + std::to_string(nb_desc) + " descriptors: pool '" +
                                      pool.name() + "' has " + std::to_string(pool.avail_count()) +
                                      " free mbufs of " + std::to_string(pool.size()))
                        .hint("every descriptor of an rx ring holds an mbuf: make the pool larger "
                              "or the ring smaller"));
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
    segs_left = 0;
    // The device starts from used index 0 after its reset and writes used
    // entries only as it fills them: what the last run left must go.
    std::memset(static_cast<void*>(ring.desc), 0, split_layout(nb_desc).total);
    std::uint16_t avail = 0;
    for (std::uint16_t i = 0; i < nb_desc; ++i) {
        mbuf::Mbuf* m = sw[i];
        if (!m && !(m = pool->alloc()))
            return fail(Error(ENOMEM, "rx ring: pool '" + pool->name() + "' is empty")
                            .hint("every descriptor of an rx ring holds an mbuf: free the mbufs "
                                  "the application holds, or make the pool larger"));
        // A buffer handed out and freed again keeps no data_off of its own
        // here: the frame starts after the pool's headroom.
        m->data_off = mbuf::kHeadroom;
        post_rx(*this, i, m, avail);
    }
    avail_idx = avail;
    last_used = 0;
    nb_hold = 0;
    ring.set_interrupts(false);
    ring.publish(avail);
    return {};
}

std::uint16_t rx_burst(void* rxq, mbuf::Mbuf** pkts, std::uint16_t n) {
    RxQueue& q = *static_cast<RxQueue*>(rxq);
    const std::uint16_t used = q.ring.used_idx();
    std::uint16_t last = q.last_used;
    std::uint16_t got = 0;
    std::uint64_t bytes = 0;
    std::uint64_t errors = 0;
    mbuf::Mbuf* first = q.pkt_first;
    mbuf::Mbuf* tail = q.pkt_last;
    std::uint16_t left = q.segs_left;
    while (last != used && got < n) {
        const UsedElem e = *used_entry(q.ring.used, static_cast<std::uint16_t>(last & q.ring.mask));
        ++last;
        // A device returns only what it was given; anything else would
        // take a descriptor out of the ring for good, so it is counted.
        if (e.id >= q.nb_desc || q.sw[e.id] == nullptr || e.len > q.buf_len) [[unlikely]] {
            ++errors;
            continue;
        }
        const auto id = static_cast<std::uint16_t>(e.id);
        mbuf::Mbuf* m = q.sw[id];
        q.sw[id] = nullptr;
        q.hold[q.nb_hold++] = id;
        m->next = nullptr;
        if (first == nullptr) {
            if (e.len < kHdrLen) [[unlikely]] {
                m->free();
                ++errors;
                continue;
            }
            const auto* h = reinterpret_cast<const NetHdr*>(m->data() - kHdrLen);
            left = q.mrg && h->num_buffers > 1 ? h->num_buffers : 1;
            m->data_len = static_cast<std::uint16_t>(e.len - kHdrLen);
            m->pkt_len = m->data_len;
            m->nb_segs = 1;
            m->port = q.port;
            m->ol_flags = 0;
            first = tail = m;
        } else {
            // A following buffer of the same frame: frame bytes from the
            // buffer's start, where a first buffer has the header.
            m->data_off = static_cast<std::uint16_t>(m->data_off - kHdrLen);
            m->data_len = static_cast<std::uint16_t>(e.len);
            tail->next = m;
            tail = m;
            first->pkt_len += e.len;
            ++first->nb_segs;
        }
        if (--left != 0)
            continue;
        if (q.cksum)
            first->ol_flags = rx_cksum(*first);
        bytes += first->pkt_len;
        pkts[got++] = first;
        first = tail = nullptr;
    }
    q.last_used = last;
    q.pkt_first = first;
    q.pkt_last = tail;
    q.segs_left = left;
    if (got) {
        q.packets.add(got);
        q.bytes.add(bytes);
    }
    if (errors) [[unlikely]]
        q.errors.add(errors);
    // Re-post in batches; and when nothing came, give back what is held at
    // once, so an idle device is never short of buffers.
    if (q.nb_hold >= q.free_thresh || (got == 0 && q.nb_hold != 0))
        refill(q);
    return got;
}

// --- transmit

std::uint64_t TxQueue::mem_bytes(std::uint16_t nb_desc) {
    const std::uint64_t ring = (split_layout(nb_desc).total + 15) & ~std::uint64_t{15};
    return ring + std::uint64_t{16} * nb_desc;
}

Result<std::unique_ptr<TxQueue>> TxQueue::create(std::uint16_t nb_desc, int socket,
                                                 const ethdev::TxConf& conf) {
    auto mem = DmaBlock::alloc(mem_bytes(nb_desc), socket);
    if (!mem)
        return fail(std::move(mem.error()).context("tx ring of " + std::to_string(nb_desc) +
                                                    " descriptors"));
    auto q = create_at(mem->va(), mem->iova(), nb_desc, conf);
    q->mem = std::move(*mem);
    return q;
}

std::unique_ptr<TxQueue> TxQueue::create_at(std::uint8_t* va, std::uint64_t iova,
                                            std::uint16_t nb_desc, const ethdev::TxConf& conf) {
    auto q = std::make_unique<TxQueue>();
    q->ring = Vring::at(va, iova, nb_desc);
    const std::uint64_t hdr_off = mem_bytes(nb_desc) - std::uint64_t{16} * nb_desc;
    q->hdrs = reinterpret_cast<NetHdr*>(va + hdr_off);
    q->hdrs_iova = iova + hdr_off;
    q->sw_store.assign(nb_desc, nullptr);
    q->chain_store.assign(nb_desc, 0);
    q->sw = q->sw_store.data();
    q->chain = q->chain_store.data();
    q->nb_desc = nb_desc;
    q->free_thresh = batch_thresh(conf.free_thresh, nb_desc);
    q->reset();
    return q;
}

TxQueue::~TxQueue() {
    for (std::uint16_t i = 0; i < nb_desc; ++i)
        if (sw[i])
            sw[i]->free();
}

void TxQueue::reset() {
    for (std::uint16_t i = 0; i < nb_desc; ++i) {
        if (sw[i]) {
            sw[i]->free();
            sw[i] = nullptr;
        }
        chain[i] = 0;
    }
    // Headers included: every one stays zero (no offload).
    std::memset(static_cast<void*>(ring.desc), 0, mem_bytes(nb_desc));
    for (std::uint16_t i = 0; i < nb_desc; ++i)
        ring.desc[i].next = static_cast<std::uint16_t>((i + 1) & ring.mask);
    free_head = 0;
    nb_free = nb_desc;
    last_used = 0;
    avail_idx = 0;
    ring.set_interrupts(false);
    ring.publish(0);
}

void TxQueue::reclaim() {
    const std::uint16_t used = ring.used_idx();
    constexpr unsigned kBatch = 64;
    mbuf::Mbuf* done[kBatch];
    unsigned nd = 0;
    std::uint16_t last = last_used;
    while (last != used) {
        const UsedElem e = *used_entry(ring.used, static_cast<std::uint16_t>(last & ring.mask));
        ++last;
        if (e.id >= nb_desc || sw[e.id] == nullptr) [[unlikely]] {
            errors.add(1);
            continue;
        }
        const auto head = static_cast<std::uint16_t>(e.id);
        std::uint16_t end = head;
        for (std::uint16_t k = 1; k < chain[head]; ++k)
            end = ring.desc[end].next;
        ring.desc[end].next = free_head;
        free_head = head;
        nb_free = static_cast<std::uint16_t>(nb_free + chain[head]);
        if (nd == kBatch) {
            mbuf::free_bulk(done, nd);
            nd = 0;
        }
        done[nd++] = sw[head];
        sw[head] = nullptr;
    }
    last_used = last;
    if (nd)
        mbuf::free_bulk(done, nd);
}

std::uint16_t tx_burst(void* txq, mbuf::Mbuf** pkts, std::uint16_t n) {
    TxQueue& q = *static_cast<TxQueue*>(txq);
    if (q.nb_free < q.free_thresh)
        q.reclaim();
    Desc* const desc = q.ring.desc;
    std::uint16_t avail = q.avail_idx;
    std::uint16_t sent = 0;
    std::uint64_t bytes = 0;
    for (; sent < n; ++sent) {
        mbuf::Mbuf* m = pkts[sent];
        // The header goes into the headroom unless another owner may read
        // the buffer (refcnt > 1) or there is no room.
        const bool in_headroom = m->data_off >= kHdrLen &&
            std::atomic_ref<std::uint16_t>(m->refcnt).load(std::memory_order_relaxed) == 1;
        const auto need = static_cast<std::uint16_t>(m->nb_segs + (in_headroom ? 0 : 1));
        if (need > q.nb_free) {
            q.reclaim();
            if (need > q.nb_free) {
                if (need <= q.nb_desc)
                    break;
                // A chain longer than the ring can never go: dropped, counted.
                q.errors.add(1);
                m->free();
                continue;
            }
        }
        const std::uint16_t head = q.free_head;
        std::uint16_t id = head;
        mbuf::Mbuf* s = m;
        if (in_headroom) {
            std::memset(m->data() - kHdrLen, 0, kHdrLen);
            desc[id].addr = m->iova() - kHdrLen;
            desc[id].len = std::uint32_t{m->data_len} + kHdrLen;
            s = m->next;
        } else {
            desc[id].addr = q.hdrs_iova + std::uint64_t{16} * id;
            desc[id].len = kHdrLen;
        }
        for (; s != nullptr; s = s->next) {
            desc[id].flags = kDescNext;
            id = desc[id].next;
            desc[id].addr = s->iova();
            desc[id].len = s->data_len;
        }
        desc[id].flags = 0;
        q.free_head = desc[id].next;
        q.nb_free = static_cast<std::uint16_t>(q.nb_free - need);
        q.sw[head] = m;
        q.chain[head] = need;
        *avail_entry(q.ring.avail, static_cast<std::uint16_t>(avail & q.ring.mask)) = head;
        ++avail;
        bytes += m->pkt_len;
    }
    if (avail != q.avail_idx) {
        const auto posted = static_cast<std::uint16_t>(avail - q.avail_idx);
        q.avail_idx = avail;
        q.ring.publish(avail);
        q.packets.add(posted);
        q.bytes.add(bytes);
        if (!q.ring.kick_suppressed()) {
            q.kick.ring();
            q.kicks.add(1);
        }
    }
    return sent;
}

// --- memory

Result<DmaBlock> DmaBlock::alloc(std::uint64_t bytes, int socket) {
    auto m = ethdev::dma_alloc(bytes, 64, socket);
    if (!m)
        return fail(std::move(m.error()));
    DmaBlock b;
    b.m_ = *m;
    return b;
}

DmaBlock::~DmaBlock() {
    if (m_.va)
        ethdev::dma_free(m_);
}

DmaBlock& DmaBlock::operator=(DmaBlock&& o) noexcept {
    if (this != &o) {
        if (m_.va)
            ethdev::dma_free(m_);
        m_ = o.m_;
        o.m_ = {};
    }
    return *this;
}

}  // namespace vfiokit::virtio::net
