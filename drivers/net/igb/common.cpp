// PortBase: the rings, their start and teardown, the queue counters and
// the common DevInfo of both 82576 ports. Section numbers are the 82576
// datasheet's.
#include "common.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vfiokit::igb {

using namespace std::chrono_literals;

std::uint32_t rx_buffer_bytes(const mbuf::MbufPool& p) {
    const std::uint32_t room = p.data_room() > mbuf::kHeadroom ? p.data_room() - mbuf::kHeadroom : 0;
    return room / 1024 * 1024;
}

Result<pci::Bar> map_bar0(pci::PciDevice& dev, const char* name, std::size_t bytes) {
    const std::string who = std::string(name) + " " + dev.address().str();
    auto bar = dev.map_bar(0);
    if (!bar)
        return fail(std::move(bar.error()).context(who));
    if (!bar->mapped(0, bytes))
        return fail(Error(ENODEV, "BAR0 registers are not mmap()able").context(who));
    if (auto r = dev.enable_memory_and_bus_master(); !r)
        return fail(std::move(r.error()).context(who));
    return bar;
}

PortBase::PortBase(pci::PciDevice& dev, pci::Bar bar, const char* name, QueueLayout layout,
                   std::span<const HwCounter> counters, PollSteps steps)
    : dev_(&dev),
      bar_(std::move(bar)),
      name_(name),
      layout_(layout),
      counters_(counters),
      steps_(steps),
      hw_(counters.size(), 0) {}

std::string PortBase::who() const { return std::string(name_) + " " + dev_->address().str(); }

ethdev::DevInfo PortBase::info() const {
    ethdev::DevInfo i;
    i.driver_name = name_;
    i.device_name = dev_->address().str();
    i.max_rx_queues = layout_.count;
    i.max_tx_queues = layout_.count;
    i.rx_desc = {kMinDesc, kMaxDesc, kDescAlign};
    i.tx_desc = {kMinDesc, kMaxDesc, kDescAlign};
    i.tx_offload_capa = ethdev::offload::kTxVlanInsert | ethdev::offload::kTxMultiSegs;
    i.min_mtu = 68;
    i.max_rx_pktlen = kMaxRxPktLen;
    i.max_mtu = kMaxRxPktLen - kEtherHdr - kVlanTag - kCrc;
    return i;
}

Result<void*> PortBase::rx_queue_setup(std::uint16_t qi, std::uint16_t nb_desc, int socket,
                                       const ethdev::RxConf& conf, mbuf::MbufPool& pool) {
    const std::string what = who() + " rx queue " + std::to_string(qi);
    if (rx_buffer_bytes(pool) < 1024)
        return fail(Error(EINVAL, "pool " + pool.name() + " has " + std::to_string(pool.data_room()) +
                                      "-byte buffers: less than 1 KiB after the " +
                                      std::to_string(mbuf::kHeadroom) + "-byte headroom")
                        .context(what)
                        .hint("SRRCTL.BSIZEPKT counts whole KiB; use data_room >= " +
                              std::to_string(1024 + mbuf::kHeadroom) + " (kDefaultDataRoom)"));
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
                        .context(what)
                        .hint("make the pool larger than the sum of the rx rings (plus caches and "
                              "packets in flight)"));
    }
    q->ring = static_cast<volatile AdvRxDesc*>(q->mem.va);
    q->sw = q->sw_storage.data();
    q->pool = &pool;
    // The tail in the mapped BAR0, wherever this function's queue block is.
    q->rdt = doorbell(bar_, regs::Rdt::offset + layout_.rx_shift(qi));
    q->mask = static_cast<std::uint16_t>(nb_desc - 1);
    q->free_thresh = std::min<std::uint16_t>(conf.free_thresh, static_cast<std::uint16_t>(nb_desc - 1));
    q->port = port_id_;
    q->index = qi;
    q->nb_desc = nb_desc;
    q->drop_en = conf.drop_en;
    RxQueue* raw = q.get();
    rxq_[qi] = std::move(q);
    return static_cast<void*>(raw);
}

Result<void*> PortBase::tx_queue_setup(std::uint16_t qi, std::uint16_t nb_desc, int socket,
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
    q->tdt = doorbell(bar_, regs::Tdt::offset + layout_.tx_shift(qi));
    q->mask = static_cast<std::uint16_t>(nb_desc - 1);
    q->nb_free = static_cast<std::uint16_t>(nb_desc - 1);
    q->free_thresh = std::min<std::uint16_t>(conf.free_thresh, static_cast<std::uint16_t>(nb_desc - 1));
    q->index = qi;
    q->nb_desc = nb_desc;
    TxQueue* raw = q.get();
    txq_[qi] = std::move(q);
    return static_cast<void*>(raw);
}

void PortBase::rx_queue_release(std::uint16_t qi) {
    if (qi >= layout_.count || !rxq_[qi])
        return;
    for (mbuf::Mbuf* m : rxq_[qi]->sw_storage)
        if (m != nullptr)
            m->free();
    ethdev::dma_free(rxq_[qi]->mem);
    rxq_[qi].reset();
}

void PortBase::tx_queue_release(std::uint16_t qi) {
    if (qi >= layout_.count || !txq_[qi])
        return;
    tx_drop_all(*txq_[qi]);
    ethdev::dma_free(txq_[qi]->mem);
    txq_[qi].reset();
}

void PortBase::stop_and_release() {
    if (started_)
        stop();
    for (std::uint16_t q = 0; q < layout_.count; ++q) {
        rx_queue_release(q);
        tx_queue_release(q);
    }
}

Result<void> PortBase::check_buffers(std::uint32_t mtu) const {
    const std::uint32_t crc = (conf_.rx_offloads & ethdev::offload::kRxKeepCrc) ? kCrc : 0;
    const std::uint32_t frame = mtu + kEtherHdr + kVlanTag + crc;
    for (std::uint16_t qi = 0; qi < nb_rxq_; ++qi) {
        if (!rxq_[qi])
            continue;
        const std::uint32_t buf = rx_buffer_bytes(*rxq_[qi]->pool);
        if (frame > buf)
            return fail(Error(EINVAL, "MTU " + std::to_string(mtu) + " means frames of up to " +
                                          std::to_string(frame) + " bytes; rx queue " +
                                          std::to_string(qi) + "'s buffers (pool " +
                                          rxq_[qi]->pool->name() + ") hold " + std::to_string(buf))
                            .context(who())
                            .hint("this driver receives a frame into one buffer: use a pool whose "
                                  "data_room is at least the frame size plus the headroom"));
    }
    return {};
}

// 4.5.9 receive queue initialization: ring registers, SRRCTL, then
// RXDCTL.ENABLE, polled until it reads 1, and only then the tail.
Result<void> PortBase::start_rx_queue(RxQueue& q) {
    const Indexed io = layout_.rx_io(bar_, q.index);
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
    // Every slot holds an mbuf; give them all to the device again (a
    // restart drops what an earlier run left unread).
    for (std::uint16_t i = 0; i < q.nb_desc; ++i) {
        q.ring[i].read.pkt_addr = q.sw[i]->iova();
        q.ring[i].read.hdr_addr = 0;
    }
    q.next = 0;
    q.nb_hold = 0;
    q.discard = false;
    q.port = port_id_;
    // What the burst function does per packet, from the port's offloads
    // (a VF admits none: its info() offers no rx offload and no RSS).
    namespace off = ethdev::offload;
    q.crc_len = (conf_.rx_offloads & off::kRxKeepCrc) ? kCrc : 0;
    q.strip_vlan = (conf_.rx_offloads & off::kRxVlanStrip) != 0;
    q.rss = conf_.rss_hf != 0;
    q.cksum = (conf_.rx_offloads & (off::kRxIpv4Cksum | off::kRxUdpCksum | off::kRxTcpCksum)) != 0;
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

// 4.5.10 transmit queue initialization, same order as receive.
Result<void> PortBase::start_tx_queue(TxQueue& q) {
    const Indexed io = layout_.tx_io(bar_, q.index);
    regs::Txdctl::read(io).set_enable(0).write(io);
    (void)poll([&] { return regs::Txdctl::read(io).enable() == 0; }, 10ms);
    tx_drop_all(q);
    std::memset(q.mem.va, 0, q.nb_desc * sizeof(AdvTxDesc));
    regs::Tdbal::zero().set_addr(static_cast<std::uint32_t>(q.mem.iova)).write(io);
    regs::Tdbah::zero().set_addr(static_cast<std::uint32_t>(q.mem.iova >> 32)).write(io);
    regs::Tdlen::zero().set_bytes(q.nb_desc * static_cast<std::uint32_t>(sizeof(AdvTxDesc))).write(io);
    regs::Tdh::zero().write(io);
    regs::Tdt::zero().write(io);
    // WTHRESH 0: write DD back as soon as a descriptor with RS is done.
    regs::Txdctl::zero().set_pthresh(8).set_hthresh(1).set_wthresh(0).set_enable(1).write(io);
    if (!poll([&] { return regs::Txdctl::read(io).enable() != 0; }, 10ms))
        return fail(Error(ETIMEDOUT, "tx queue " + std::to_string(q.index) +
                                         ": TXDCTL.ENABLE did not read back 1 within 10 ms")
                        .context(who()));
    return {};
}

Result<void> PortBase::start_rx_queues() {
    for (std::uint16_t qi = 0; qi < nb_rxq_; ++qi)
        if (auto r = start_rx_queue(*rxq_[qi]); !r)
            return r;
    return {};
}

Result<void> PortBase::start_tx_queues() {
    for (std::uint16_t qi = 0; qi < nb_txq_; ++qi)
        if (auto r = start_tx_queue(*txq_[qi]); !r)
            return r;
    return {};
}

void PortBase::disable_rings() {
    for (std::uint16_t qi = 0; qi < layout_.count; ++qi) {
        if (rxq_[qi]) {
            const Indexed io = layout_.rx_io(bar_, qi);
            regs::Rxdctl::read(io).set_enable(0).write(io);
            (void)poll([&] { return regs::Rxdctl::read(io).enable() == 0; }, 10ms);
        }
        if (txq_[qi]) {
            const Indexed io = layout_.tx_io(bar_, qi);
            regs::Txdctl::read(io).set_enable(0).write(io);
            (void)poll([&] { return regs::Txdctl::read(io).enable() == 0; }, 10ms);
        }
    }
}

Result<ethdev::Stats> PortBase::stats() {
    accumulate_counters();
    ethdev::Stats s;
    hw_stats(s);
    for (std::uint16_t q = 0; q < layout_.count; ++q) {
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

Result<void> PortBase::stats_reset() {
    accumulate_counters();
    std::fill(hw_.begin(), hw_.end(), 0);
    for (auto& r : rxq_)
        if (r)
            r->packets = r->bytes = r->nombuf = r->errors = 0;
    for (auto& t : txq_)
        if (t)
            t->packets = t->bytes = 0;
    return {};
}

Result<std::vector<ethdev::Xstat>> PortBase::xstats() {
    accumulate_counters();
    std::vector<ethdev::Xstat> out;
    out.reserve(counters_.size());
    for (std::size_t i = 0; i < counters_.size(); ++i)
        if (counters_[i].name != nullptr)
            out.push_back({counters_[i].name, hw_[i]});
    return out;
}

}  // namespace vfiokit::igb
