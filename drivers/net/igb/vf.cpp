// IgbVfPort: the 82576 VF through its mailbox (vf.hpp says what a VF owns).
#include "vf.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include "igb.hpp"

namespace vfiokit::igb {

using namespace std::chrono_literals;

namespace {

constexpr char kVfName[] = "net_e1000_igb_vf";
constexpr std::uint32_t kEtherHdr = 14, kVlanTag = 4, kCrc = 4;

std::uint32_t rx_buffer_bytes(const mbuf::MbufPool& p) {
    const std::uint32_t room = p.data_room() > mbuf::kHeadroom ? p.data_room() - mbuf::kHeadroom : 0;
    return room / 1024 * 1024;
}

// DPDK's igbvf xstats names and the counters behind them.
struct VfCounter {
    const char* name;  // null: for stats() only
    std::uint32_t offset;
};
constexpr VfCounter kVfCounters[] = {
    {"rx_multicast_packets", vfregs::kMprc},
    {"rx_good_loopback_packets", vfregs::kGprlbc},
    {"tx_good_loopback_packets", vfregs::kGptlbc},
    {"rx_good_loopback_bytes", vfregs::kGorlbc},
    {"tx_good_loopback_bytes", vfregs::kGotlbc},
    {nullptr, vfregs::kGprc},
    {nullptr, vfregs::kGptc},
    {nullptr, vfregs::kGorc},
    {nullptr, vfregs::kGotc},
};
constexpr std::size_t kIdxGprc = 5, kIdxGptc = 6, kIdxGorc = 7, kIdxGotc = 8;

}  // namespace

template <class F>
bool IgbVfPort::poll(F done, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (done())
            return true;
        if (std::chrono::steady_clock::now() >= deadline)
            return done();
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
}

std::string IgbVfPort::who() const { return std::string(kVfName) + " " + dev_->address().str(); }

Result<std::unique_ptr<IgbVfPort>> IgbVfPort::open(pci::PciDevice& dev) {
    const std::string name = std::string(kVfName) + " " + dev.address().str();
    auto bar = dev.map_bar(0);
    if (!bar)
        return fail(std::move(bar.error()).context(name));
    if (!bar->mapped(0, 0x4000))
        return fail(Error(ENODEV, "BAR0 registers are not mmap()able").context(name));
    if (auto r = dev.enable_memory_and_bus_master(); !r)
        return fail(std::move(r.error()).context(name));
    std::unique_ptr<IgbVfPort> p(new IgbVfPort(dev, std::move(*bar)));
    if (auto r = p->reset(); !r)
        return fail(std::move(r.error()));
    p->last_.assign(std::size(kVfCounters), 0);
    p->total_.assign(std::size(kVfCounters), 0);
    if (auto r = p->stats_reset(); !r)
        return fail(std::move(r.error()));
    return p;
}

IgbVfPort::~IgbVfPort() {
    if (started_)
        stop();
    for (std::uint16_t q = 0; q < vfregs::kQueues; ++q) {
        rx_queue_release(q);
        tx_queue_release(q);
    }
    // A VF reset disables its queues in the PF (VFRE/VFTE) and tells it.
    vfregs::Ctrl::zero().set_rst(1).write(bar_);
    (void)dev_->disable_bus_master();
}

bool IgbVfPort::mbx_bit(std::uint32_t mask) {
    const std::uint32_t v = vfregs::V2pMailbox::read(bar_).raw() | mbx_sticky_;
    mbx_sticky_ |= v & vfregs::kMailboxReadClear;
    const bool hit = (v & mask) != 0;
    mbx_sticky_ &= ~mask;
    return hit;
}

bool IgbVfPort::mbx_lock() {
    vfregs::V2pMailbox::zero().set_vfu(1).write(bar_);
    const std::uint32_t v = vfregs::V2pMailbox::read(bar_).raw();
    mbx_sticky_ |= v & vfregs::kMailboxReadClear;
    return vfregs::V2pMailbox::from_raw(v).vfu() != 0;
}

Result<void> IgbVfPort::mbx_write(std::span<const std::uint32_t> msg) {
    if (!poll([&] { return mbx_lock(); }, 1000ms))
        return fail(Error(EBUSY, "mailbox: the PF holds the buffer (VFU never took)").context(who()));
    // Stale acknowledgements and messages go: the buffer is overwritten.
    (void)mbx_bit(vfregs::V2pMailbox::zero().set_pfack(1).raw());
    (void)mbx_bit(vfregs::V2pMailbox::zero().set_pfsts(1).raw());
    for (std::size_t i = 0; i < msg.size(); ++i)
        bar_.write<std::uint32_t>(vfregs::kMbmem + 4 * i, msg[i]);
    // REQ without VFU: gives the buffer up and interrupts the PF.
    vfregs::V2pMailbox::zero().set_req(1).write(bar_);
    if (!poll([&] { return mbx_bit(vfregs::V2pMailbox::zero().set_pfack(1).raw()); }, 1000ms))
        return fail(Error(ETIMEDOUT, "mailbox: the PF did not acknowledge message " +
                                         std::to_string(msg[0] & 0xffff) + " within 1 s")
                        .context(who())
                        .hint("the PF's driver answers VFs only while its interface is up"));
    return {};
}

Result<void> IgbVfPort::mbx_read(std::span<std::uint32_t> msg) {
    if (!poll([&] { return mbx_bit(vfregs::V2pMailbox::zero().set_pfsts(1).raw()); }, 1000ms))
        return fail(Error(ETIMEDOUT, "mailbox: no message from the PF within 1 s").context(who()));
    if (!poll([&] { return mbx_lock(); }, 1000ms))
        return fail(Error(EBUSY, "mailbox: the PF holds the buffer").context(who()));
    for (std::size_t i = 0; i < msg.size(); ++i)
        msg[i] = bar_.read<std::uint32_t>(vfregs::kMbmem + 4 * i);
    // ACK: the message was read; the buffer goes back.
    vfregs::V2pMailbox::zero().set_ack(1).write(bar_);
    return {};
}

Result<void> IgbVfPort::mbx_request(std::span<std::uint32_t> msg, const char* what) {
    const std::uint32_t type = msg[0] & 0xffff;
    if (auto r = mbx_write(msg); !r)
        return r;
    if (auto r = mbx_read(msg); !r)
        return r;
    if ((msg[0] & 0xffff) != type || (msg[0] & vfregs::kMsgNack))
        return fail(Error(EPERM, std::string(what) + ": the PF refused (reply " + std::to_string(msg[0]) + ")")
                        .context(who()));
    if (!(msg[0] & vfregs::kMsgAck))
        return fail(Error(EPROTO, std::string(what) + ": the PF's reply is no acknowledgement")
                        .context(who()));
    return {};
}

// 7.8.2.9.x VF reset: CTRL.RST, wait for the PF to be out of reset, then
// VF_RESET; the PF answers with the VF's MAC address in words 1-2 and
// enables the VF's queues.
Result<void> IgbVfPort::reset() {
    vfregs::Ctrl::zero().set_rst(1).write(bar_);
    std::this_thread::sleep_for(1ms);
    if (!poll([&] { return vfregs::V2pMailbox::read(bar_).rsti() == 0; }, 2000ms))
        return fail(Error(ETIMEDOUT, "the PF stayed in reset (V2PMAILBOX.RSTI) for 2 s").context(who()));
    std::array<std::uint32_t, 3> msg{vfregs::kMsgReset, 0, 0};
    if (auto r = mbx_write(std::span<const std::uint32_t>(msg.data(), 1)); !r)
        return r;
    if (auto r = mbx_read(msg); !r)
        return r;
    if ((msg[0] & 0xffff) != vfregs::kMsgReset)
        return fail(Error(EPROTO, "VF reset: the PF answered message " + std::to_string(msg[0] & 0xffff))
                        .context(who()));
    // ACK carries the address the PF assigned; the kernel's igb answers
    // NACK when it has none for this VF (the reset itself is done).
    if (msg[0] & vfregs::kMsgAck) {
        for (unsigned i = 0; i < 6; ++i)
            mac_.bytes[i] = static_cast<std::uint8_t>(msg[1 + i / 4] >> (8 * (i % 4)));
        if (mac_ != ethdev::MacAddr{})
            return {};
    }
    // The PF assigned none: pick a random locally administered unicast
    // address and ask the PF to filter it for this VF, as the kernel's
    // igbvf and DPDK's do.
    std::random_device rd;
    ethdev::MacAddr a;
    for (auto& b : a.bytes)
        b = static_cast<std::uint8_t>(rd());
    a.bytes[0] = static_cast<std::uint8_t>((a.bytes[0] & 0xfe) | 0x02);
    if (auto r = set_mac(a); !r)
        return fail(std::move(r.error()).context("the PF gave this VF no MAC address"));
    return {};
}

ethdev::DevInfo IgbVfPort::info() const {
    ethdev::DevInfo i;
    i.driver_name = kVfName;
    i.device_name = dev_->address().str();
    i.max_rx_queues = vfregs::kQueues;
    i.max_tx_queues = vfregs::kQueues;
    i.rx_desc = {kMinDesc, kMaxDesc, kDescAlign};
    i.tx_desc = {kMinDesc, kMaxDesc, kDescAlign};
    // Stripping, CRC and RSS are the PF's to decide.
    i.rx_offload_capa = 0;
    i.tx_offload_capa = ethdev::offload::kTxVlanInsert | ethdev::offload::kTxMultiSegs;
    i.rss_offload_capa = 0;
    i.min_mtu = 68;
    i.max_rx_pktlen = 0x3FFF;
    i.max_mtu = 0x3FFF - kEtherHdr - kVlanTag - kCrc;
    return i;
}

Result<void> IgbVfPort::configure(std::uint16_t nb_rxq, std::uint16_t nb_txq,
                                  const ethdev::PortConf& conf) {
    if (conf.rss_hf != 0 || conf.rxq_interrupt || conf.lsc_interrupt)
        return fail(Error(ENOTSUP, "RSS and interrupts are not implemented for VFs").context(who()));
    nb_rxq_ = nb_rxq;
    nb_txq_ = nb_txq;
    conf_ = conf;
    if (conf.mtu != 0)
        mtu_ = conf.mtu;
    return {};
}

Result<void*> IgbVfPort::rx_queue_setup(std::uint16_t qi, std::uint16_t nb_desc, int socket,
                                        const ethdev::RxConf& conf, mbuf::MbufPool& pool) {
    const std::string what = who() + " rx queue " + std::to_string(qi);
    if (rx_buffer_bytes(pool) < 1024)
        return fail(Error(EINVAL, "pool " + pool.name() + "'s buffers hold less than 1 KiB after the headroom")
                        .context(what));
    rx_queue_release(qi);
    auto mem = ethdev::dma_alloc(std::uint64_t{nb_desc} * sizeof(AdvRxDesc), kRingAlign, socket);
    if (!mem)
        return fail(std::move(mem.error()).context(what));
    auto q = std::make_unique<RxQueue>();
    q->mem = *mem;
    q->sw_storage.assign(nb_desc, nullptr);
    if (pool.alloc_bulk(q->sw_storage.data(), nb_desc) != 0) {
        ethdev::dma_free(q->mem);
        return fail(Error(ENOMEM, "filling the ring: pool " + pool.name() + " has " +
                                      std::to_string(pool.avail_count()) + " mbufs free, the ring needs " +
                                      std::to_string(nb_desc))
                        .context(what));
    }
    q->ring = static_cast<volatile AdvRxDesc*>(q->mem.va);
    q->sw = q->sw_storage.data();
    q->pool = &pool;
    q->rdt = doorbell(bar_, vfregs::kRxBase + vfregs::kQueueStride * qi +
                                (regs::Rdt::offset - regs::Rdbal::offset));
    q->mask = static_cast<std::uint16_t>(nb_desc - 1);
    q->free_thresh = std::min<std::uint16_t>(conf.free_thresh, static_cast<std::uint16_t>(nb_desc - 1));
    q->index = qi;
    q->nb_desc = nb_desc;
    q->drop_en = conf.drop_en;
    RxQueue* raw = q.get();
    rxq_[qi] = std::move(q);
    return static_cast<void*>(raw);
}

Result<void*> IgbVfPort::tx_queue_setup(std::uint16_t qi, std::uint16_t nb_desc, int socket,
                                        const ethdev::TxConf& conf) {
    tx_queue_release(qi);
    auto mem = ethdev::dma_alloc(std::uint64_t{nb_desc} * sizeof(AdvTxDesc), kRingAlign, socket);
    if (!mem)
        return fail(std::move(mem.error()).context(who() + " tx queue " + std::to_string(qi)));
    auto q = std::make_unique<TxQueue>();
    q->mem = *mem;
    q->sw_storage.assign(nb_desc, TxEntry{});
    q->ring = static_cast<volatile AdvTxDesc*>(q->mem.va);
    q->sw = q->sw_storage.data();
    q->tdt = doorbell(bar_, vfregs::kTxBase + vfregs::kQueueStride * qi +
                                (regs::Tdt::offset - regs::Tdbal::offset));
    q->mask = static_cast<std::uint16_t>(nb_desc - 1);
    q->nb_free = static_cast<std::uint16_t>(nb_desc - 1);
    q->free_thresh = std::min<std::uint16_t>(conf.free_thresh, static_cast<std::uint16_t>(nb_desc - 1));
    q->index = qi;
    q->nb_desc = nb_desc;
    TxQueue* raw = q.get();
    txq_[qi] = std::move(q);
    return static_cast<void*>(raw);
}

void IgbVfPort::rx_queue_release(std::uint16_t qi) {
    if (qi >= vfregs::kQueues || !rxq_[qi])
        return;
    for (mbuf::Mbuf* m : rxq_[qi]->sw_storage)
        if (m != nullptr)
            m->free();
    ethdev::dma_free(rxq_[qi]->mem);
    rxq_[qi].reset();
}

void IgbVfPort::tx_queue_release(std::uint16_t qi) {
    if (qi >= vfregs::kQueues || !txq_[qi])
        return;
    tx_drop_all(*txq_[qi]);
    ethdev::dma_free(txq_[qi]->mem);
    txq_[qi].reset();
}

// The PF's 4.5.9 order, on the VF's copies of the queue registers.
Result<void> IgbVfPort::start_rx_queue(RxQueue& q) {
    const VfQueue io(bar_, q.index, false);
    regs::Rxdctl::read(io).set_enable(0).write(io);
    (void)poll([&] { return regs::Rxdctl::read(io).enable() == 0; }, 10ms);
    regs::Rdbal::zero().set_addr(static_cast<std::uint32_t>(q.mem.iova)).write(io);
    regs::Rdbah::zero().set_addr(static_cast<std::uint32_t>(q.mem.iova >> 32)).write(io);
    regs::Rdlen::zero().set_bytes(q.nb_desc * static_cast<std::uint32_t>(sizeof(AdvRxDesc))).write(io);
    regs::Srrctl::zero()
        .set_bsizepkt(rx_buffer_bytes(*q.pool) / 1024)
        .set_desctype(regs::kDescTypeAdvOneBuf)
        .set_drop_en(q.drop_en)
        .write(io);
    for (std::uint16_t i = 0; i < q.nb_desc; ++i) {
        q.ring[i].read.pkt_addr = q.sw[i]->iova();
        q.ring[i].read.hdr_addr = 0;
    }
    q.next = 0;
    q.nb_hold = 0;
    q.discard = false;
    q.port = port_id_;
    q.crc_len = 0;
    q.strip_vlan = false;
    q.rss = false;
    q.cksum = false;
    regs::Rdh::zero().write(io);
    regs::Rdt::zero().write(io);
    regs::Rxdctl::zero().set_pthresh(8).set_hthresh(8).set_wthresh(4).set_enable(1).write(io);
    if (!poll([&] { return regs::Rxdctl::read(io).enable() != 0; }, 10ms))
        return fail(Error(ETIMEDOUT, "rx queue " + std::to_string(q.index) +
                                         ": RXDCTL.ENABLE did not read back 1 within 10 ms")
                        .context(who()));
    regs::Rdt::zero().set_tail(q.nb_desc - 1u).write(io);
    return {};
}

Result<void> IgbVfPort::start_tx_queue(TxQueue& q) {
    const VfQueue io(bar_, q.index, true);
    regs::Txdctl::read(io).set_enable(0).write(io);
    (void)poll([&] { return regs::Txdctl::read(io).enable() == 0; }, 10ms);
    tx_drop_all(q);
    std::memset(q.mem.va, 0, q.nb_desc * sizeof(AdvTxDesc));
    regs::Tdbal::zero().set_addr(static_cast<std::uint32_t>(q.mem.iova)).write(io);
    regs::Tdbah::zero().set_addr(static_cast<std::uint32_t>(q.mem.iova >> 32)).write(io);
    regs::Tdlen::zero().set_bytes(q.nb_desc * static_cast<std::uint32_t>(sizeof(AdvTxDesc))).write(io);
    regs::Tdh::zero().write(io);
    regs::Tdt::zero().write(io);
    regs::Txdctl::zero().set_pthresh(8).set_hthresh(1).set_wthresh(0).set_enable(1).write(io);
    if (!poll([&] { return regs::Txdctl::read(io).enable() != 0; }, 10ms))
        return fail(Error(ETIMEDOUT, "tx queue " + std::to_string(q.index) +
                                         ": TXDCTL.ENABLE did not read back 1 within 10 ms")
                        .context(who()));
    return {};
}

Result<void> IgbVfPort::start() {
    for (std::uint16_t qi = 0; qi < nb_rxq_; ++qi) {
        if (rx_buffer_bytes(*rxq_[qi]->pool) < mtu_ + kEtherHdr + kVlanTag)
            return fail(Error(EINVAL, "MTU " + std::to_string(mtu_) + ": rx queue " + std::to_string(qi) +
                                          "'s buffers are too small for its frames")
                            .context(who()));
        if (auto r = start_rx_queue(*rxq_[qi]); !r) {
            disable_queues();
            return r;
        }
    }
    for (std::uint16_t qi = 0; qi < nb_txq_; ++qi) {
        if (auto r = start_tx_queue(*txq_[qi]); !r) {
            disable_queues();
            return r;
        }
    }
    started_ = true;
    return {};
}

void IgbVfPort::disable_queues() {
    for (std::uint16_t qi = 0; qi < vfregs::kQueues; ++qi) {
        if (rxq_[qi]) {
            const VfQueue io(bar_, qi, false);
            regs::Rxdctl::read(io).set_enable(0).write(io);
            (void)poll([&] { return regs::Rxdctl::read(io).enable() == 0; }, 10ms);
        }
        if (txq_[qi]) {
            const VfQueue io(bar_, qi, true);
            regs::Txdctl::read(io).set_enable(0).write(io);
            (void)poll([&] { return regs::Txdctl::read(io).enable() == 0; }, 10ms);
        }
    }
}

void IgbVfPort::stop() {
    disable_queues();
    started_ = false;
}

Result<ethdev::Link> IgbVfPort::link(bool wait) {
    if (wait)
        (void)poll([&] { return vfregs::Status::read(bar_).lu() != 0; }, 9000ms);
    const auto s = vfregs::Status::read(bar_);
    ethdev::Link l;
    l.up = s.lu() != 0;
    if (l.up) {
        l.speed_mbps = s.speed() == 0 ? 10 : s.speed() == 1 ? 100 : 1000;
        l.full_duplex = s.fd() != 0;
        l.autoneg = true;
    }
    return l;
}

Result<void> IgbVfPort::promiscuous(bool) {
    return fail(Error(ENOTSUP, "a VF's receive filters are the PF's to set").context(who()));
}

Result<void> IgbVfPort::allmulticast(bool) {
    return fail(Error(ENOTSUP, "a VF's receive filters are the PF's to set").context(who()));
}

Result<void> IgbVfPort::set_mac(const ethdev::MacAddr& a) {
    std::array<std::uint32_t, 3> msg{vfregs::kMsgSetMac, 0, 0};
    for (unsigned i = 0; i < 6; ++i)
        msg[1 + i / 4] |= std::uint32_t{a.bytes[i]} << (8 * (i % 4));
    if (auto r = mbx_request(msg, "set MAC address"); !r)
        return r;
    mac_ = a;
    return {};
}

Result<void> IgbVfPort::set_mtu(std::uint32_t mtu) {
    std::array<std::uint32_t, 2> msg{vfregs::kMsgSetLpe, mtu + kEtherHdr + kCrc};
    if (auto r = mbx_request(msg, "set max frame size"); !r)
        return r;
    mtu_ = mtu;
    return {};
}

void IgbVfPort::accumulate_counters() {
    for (std::size_t i = 0; i < std::size(kVfCounters); ++i) {
        const std::uint32_t v = bar_.read<std::uint32_t>(kVfCounters[i].offset);
        total_[i] += static_cast<std::uint32_t>(v - last_[i]);  // wraps at 2^32
        last_[i] = v;
    }
}

Result<ethdev::Stats> IgbVfPort::stats() {
    accumulate_counters();
    ethdev::Stats s;
    s.ipackets = total_[kIdxGprc];
    s.opackets = total_[kIdxGptc];
    s.ibytes = total_[kIdxGorc];
    s.obytes = total_[kIdxGotc];
    for (std::uint16_t q = 0; q < vfregs::kQueues; ++q) {
        if (const auto& r = rxq_[q]) {
            s.q_ipackets[q] = r->packets;
            s.q_ibytes[q] = r->bytes;
            s.rx_nombuf += r->nombuf;
            s.ierrors += r->errors;
        }
        if (const auto& t = txq_[q]) {
            s.q_opackets[q] = t->packets;
            s.q_obytes[q] = t->bytes;
        }
    }
    return s;
}

Result<void> IgbVfPort::stats_reset() {
    accumulate_counters();
    std::fill(total_.begin(), total_.end(), 0);
    for (auto& r : rxq_)
        if (r)
            r->packets = r->bytes = r->nombuf = r->errors = 0;
    for (auto& t : txq_)
        if (t)
            t->packets = t->bytes = 0;
    return {};
}

Result<std::vector<ethdev::Xstat>> IgbVfPort::xstats() {
    accumulate_counters();
    std::vector<ethdev::Xstat> out;
    for (std::size_t i = 0; i < std::size(kVfCounters); ++i)
        if (kVfCounters[i].name != nullptr)
            out.push_back({kVfCounters[i].name, total_[i]});
    return out;
}

}  // namespace vfiokit::igb
