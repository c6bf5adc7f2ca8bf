// IgbPort: bring-up, queues, start/stop, link, filters (stats.cpp has the
// counters). Section numbers are the 82576 datasheet's.
#include "port.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "igb.hpp"
#include "rss.hpp"
#include "vfiokit/eal/format.hpp"

namespace vfiokit::igb {

using namespace std::chrono_literals;
namespace off = ethdev::offload;

namespace {

constexpr std::uint32_t kEtherHdr = 14, kVlanTag = 4, kCrc = 4;
// RLPML is 14 bits wide (8.10.6).
constexpr std::uint32_t kMaxRxPktLen = 0x3FFF;
constexpr std::uint64_t kRxOffloads = off::kRxVlanStrip | off::kRxIpv4Cksum | off::kRxUdpCksum |
                                      off::kRxTcpCksum | off::kRxKeepCrc | off::kRxRssHash;
constexpr std::uint64_t kTxOffloads = off::kTxVlanInsert | off::kTxMultiSegs;
constexpr std::uint64_t kRssOffloads = ethdev::rss::kIpv4 | ethdev::rss::kIpv4Tcp |
                                       ethdev::rss::kIpv4Udp | ethdev::rss::kIpv6 |
                                       ethdev::rss::kIpv6Tcp | ethdev::rss::kIpv6Udp;

// What SRRCTL.BSIZEPKT can describe of a pool's buffers: the bytes after
// the headroom, in whole KiB (the device writes at the mbuf's data offset).
std::uint32_t rx_buffer_bytes(const mbuf::MbufPool& p) {
    const std::uint32_t room = p.data_room() > mbuf::kHeadroom ? p.data_room() - mbuf::kHeadroom : 0;
    return room / 1024 * 1024;
}

}  // namespace

template <class F>
bool IgbPort::poll(F done, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (done())
            return true;
        if (std::chrono::steady_clock::now() >= deadline)
            return done();
        std::this_thread::sleep_for(limit >= 1s ? std::chrono::microseconds(10000)
                                                : std::chrono::microseconds(100));
    }
}

std::string IgbPort::who() const { return std::string(kDriverName) + " " + dev_->address().str(); }

Result<std::unique_ptr<IgbPort>> IgbPort::open(pci::PciDevice& dev) {
    const std::string name = std::string(kDriverName) + " " + dev.address().str();
    auto bar = dev.map_bar(0);
    if (!bar)
        return fail(std::move(bar.error()).context(name));
    // Every register the driver uses is below 0x10000 (queues end at 0xE3FF).
    if (!bar->mapped(0, 0x10000))
        return fail(Error(ENODEV, "BAR0 registers are not mmap()able").context(name));
    if (auto r = dev.enable_memory_and_bus_master(); !r)
        return fail(std::move(r.error()).context(name));
    std::unique_ptr<IgbPort> p(new IgbPort(dev, std::move(*bar)));
    if (auto info = dev.irq_info(pci::IrqType::msix))
        p->msix_vectors_ = info->count;
    if (auto r = p->reset(); !r)
        return fail(std::move(r.error()));
    auto mac = p->read_mac();
    if (!mac)
        return fail(std::move(mac.error()));
    p->mac_ = *mac;
    // Link (4.5.7.2 copper link setup): CTRL.SLU, then restart the PHY's
    // auto-negotiation; STATUS.LU rises when it completes (QEMU: 500 ms
    // of virtual time after the restart, igb_set_phy_ctrl).
    regs::Ctrl::read(p->bar_).set_slu(1).write(p->bar_);
    if (auto r = p->phy_write(regs::kPhyBmcr, regs::kBmcrAutoNeg | regs::kBmcrRestartAn |
                                                  regs::kBmcrSpeed1000 | regs::kBmcrFullDuplex);
        !r)
        return fail(std::move(r.error()));
    p->hw_.assign(hw_counters().size(), 0);
    if (auto r = p->stats_reset(); !r)
        return fail(std::move(r.error()));
    return p;
}

IgbPort::~IgbPort() {
    if (started_)
        stop();
    for (std::uint16_t q = 0; q < kMaxQueues; ++q) {
        rx_queue_release(q);
        tx_queue_release(q);
    }
    // Leave the device quiet (no DMA into memory that goes away) and tell
    // firmware no driver owns it any more.
    regs::CtrlExt::read(bar_).set_drv_load(0).write(bar_);
    (void)reset();
    (void)dev_->disable_bus_master();
}

// 4.3.1 software reset: stop master requests first (5.2.x "master disable")
// so no DMA is in flight, then CTRL.RST, which restores every register
// but the PCI configuration and reloads the MAC address from the EEPROM.
Result<void> IgbPort::reset() {
    regs::Imc::zero().set_value(~0u).write(bar_);
    regs::Rctl::zero().write(bar_);
    regs::Tctl::zero().set_psp(1).write(bar_);
    regs::Ctrl::read(bar_).set_gio_master_disable(1).write(bar_);
    // The kernel's igb gives the master 800 x 100 us; go on regardless, as
    // it does: the reset stops the master anyway.
    (void)poll([&] { return regs::Status::read(bar_).gio_master_enable() == 0; }, 80ms);
    regs::Ctrl::read(bar_).set_rst(1).write(bar_);
    std::this_thread::sleep_for(1ms);
    if (!poll([&] { return regs::Ctrl::read(bar_).rst() == 0; }, 100ms))
        return fail(Error(ETIMEDOUT, "device reset: CTRL.RST still set after 100 ms").context(who()));
    regs::Imc::zero().set_value(~0u).write(bar_);
    (void)regs::Icr::read(bar_);
    // Driver loaded (firmware hand-off), and PF reset done so that VFs'
    // mailboxes work (7.8.2.9.2).
    regs::CtrlExt::read(bar_).set_drv_load(1).set_pfrstd(1).write(bar_);
    return {};
}

Result<ethdev::MacAddr> IgbPort::read_mac() {
    ethdev::MacAddr a;
    const Indexed rar0(bar_, 0, regs::kRarStride);
    const auto rah = regs::Rah::read(rar0);
    if (rah.av()) {
        const std::uint32_t lo = regs::Ral::read(rar0).addr();
        for (unsigned i = 0; i < 4; ++i)
            a.bytes[i] = static_cast<std::uint8_t>(lo >> (8 * i));
        a.bytes[4] = static_cast<std::uint8_t>(rah.addr());
        a.bytes[5] = static_cast<std::uint8_t>(rah.addr() >> 8);
        return a;
    }
    // RAH0 not valid: words 0-2 of the EEPROM hold the address (6.1).
    for (std::uint32_t w = 0; w < 3; ++w) {
        regs::Eerd::zero().set_addr(w).set_start(1).write(bar_);
        if (!poll([&] { return regs::Eerd::read(bar_).done() != 0; }, 10ms))
            return fail(Error(ETIMEDOUT, "EEPROM read of word " + std::to_string(w) +
                                             " (EERD.DONE never set)")
                            .context(who()));
        const auto v = static_cast<std::uint16_t>(regs::Eerd::read(bar_).data());
        a.bytes[2 * w] = static_cast<std::uint8_t>(v);
        a.bytes[2 * w + 1] = static_cast<std::uint8_t>(v >> 8);
    }
    return a;
}

void IgbPort::write_rar0(const ethdev::MacAddr& a) {
    const Indexed rar0(bar_, 0, regs::kRarStride);
    const auto& b = a.bytes;
    regs::Ral::zero()
        .set_addr(b[0] | (std::uint32_t{b[1]} << 8) | (std::uint32_t{b[2]} << 16) |
                  (std::uint32_t{b[3]} << 24))
        .write(rar0);
    regs::Rah::zero().set_addr(b[4] | (std::uint32_t{b[5]} << 8)).set_av(1).write(rar0);
}

Result<void> IgbPort::phy_write(std::uint32_t reg, std::uint16_t v) {
    regs::Mdic::zero()
        .set_data(v)
        .set_regadd(reg)
        .set_phyadd(regs::kPhyAddr)
        .set_op(regs::kMdicWrite)
        .write(bar_);
    if (!poll([&] { return regs::Mdic::read(bar_).ready() != 0; }, 10ms))
        return fail(Error(ETIMEDOUT, "PHY register " + std::to_string(reg) + " write (MDIC.R never set)")
                        .context(who()));
    if (regs::Mdic::read(bar_).error())
        return fail(Error(EIO, "PHY register " + std::to_string(reg) + " write: MDIC.E set")
                        .context(who()));
    return {};
}

ethdev::DevInfo IgbPort::info() const {
    ethdev::DevInfo i;
    i.driver_name = kDriverName;
    i.device_name = dev_->address().str();
    i.max_rx_queues = kMaxQueues;
    i.max_tx_queues = kMaxQueues;
    i.rx_desc = {kMinDesc, kMaxDesc, kDescAlign};
    i.tx_desc = {kMinDesc, kMaxDesc, kDescAlign};
    i.rx_offload_capa = kRxOffloads;
    i.tx_offload_capa = kTxOffloads;
    i.rss_offload_capa = kRssOffloads;
    i.min_mtu = 68;
    i.max_rx_pktlen = kMaxRxPktLen;
    i.max_mtu = kMaxRxPktLen - kEtherHdr - kVlanTag - kCrc;
    i.rxq_interrupt = msix_vectors_ >= 2;
    i.lsc_interrupt = false;
    return i;
}

Result<void> IgbPort::configure(std::uint16_t nb_rxq, std::uint16_t nb_txq,
                                const ethdev::PortConf& conf) {
    if (conf.rss_hf & ~kRssOffloads)
        return fail(Error(EINVAL, "RSS hash functions " + hex(conf.rss_hf & ~kRssOffloads) +
                                      " are not ones the 82576 hashes on")
                        .context(who()));
    if (conf.rxq_interrupt && msix_vectors_ < nb_rxq + 1u)
        return fail(Error(EINVAL, "rx interrupts for " + std::to_string(nb_rxq) + " queues need " +
                                      std::to_string(nb_rxq + 1) + " MSI-X vectors; the device has " +
                                      std::to_string(msix_vectors_))
                        .context(who()));
    if (conf.lsc_interrupt)
        return fail(Error(ENOTSUP, "link-state interrupts are not implemented by this driver")
                        .context(who())
                        .hint("poll link_get_nowait()"));
    nb_rxq_ = nb_rxq;
    nb_txq_ = nb_txq;
    conf_ = conf;
    if (conf.mtu != 0)
        mtu_ = conf.mtu;
    return {};
}

Result<void*> IgbPort::rx_queue_setup(std::uint16_t qi, std::uint16_t nb_desc, int socket,
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
    q->rdt = doorbell(bar_, regs::Rdt::offset + kQueueStride * qi);
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

Result<void*> IgbPort::tx_queue_setup(std::uint16_t qi, std::uint16_t nb_desc, int socket,
                                      const ethdev::TxConf& conf) {
    const std::string what = who() + " tx queue " + std::to_string(qi);
    tx_queue_release(qi);
    auto mem = ethdev::dma_alloc(std::uint64_t{nb_desc} * sizeof(AdvTxDesc), kRingAlign, socket);
    if (!mem)
        return fail(std::move(mem.error()).context(what));
    auto q = std::make_unique<TxQueue>();
    q->mem = *mem;
    q->sw_storage.assign(nb_desc, TxEntry{});
    q->ring = static_cast<volatile AdvTxDesc*>(q->mem.va);
    q->sw = q->sw_storage.data();
    q->tdt = doorbell(bar_, regs::Tdt::offset + kQueueStride * qi);
    q->mask = static_cast<std::uint16_t>(nb_desc - 1);
    q->nb_free = static_cast<std::uint16_t>(nb_desc - 1);
    q->free_thresh = std::min<std::uint16_t>(conf.free_thresh, static_cast<std::uint16_t>(nb_desc - 1));
    q->index = qi;
    q->nb_desc = nb_desc;
    TxQueue* raw = q.get();
    txq_[qi] = std::move(q);
    return static_cast<void*>(raw);
}

void IgbPort::rx_queue_release(std::uint16_t qi) {
    if (qi >= kMaxQueues || !rxq_[qi])
        return;
    RxQueue& q = *rxq_[qi];
    for (mbuf::Mbuf* m : q.sw_storage)
        if (m != nullptr)
            m->free();
    ethdev::dma_free(q.mem);
    rxq_[qi].reset();
}

void IgbPort::tx_queue_release(std::uint16_t qi) {
    if (qi >= kMaxQueues || !txq_[qi])
        return;
    tx_drop_all(*txq_[qi]);
    ethdev::dma_free(txq_[qi]->mem);
    txq_[qi].reset();
}

std::uint32_t IgbPort::max_frame() const { return mtu_ + kEtherHdr + kVlanTag; }

Result<void> IgbPort::check_buffers(std::uint32_t mtu) const {
    const std::uint32_t crc = (conf_.rx_offloads & off::kRxKeepCrc) ? kCrc : 0;
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

void IgbPort::write_rctl(bool enable) {
    regs::Rctl::zero()
        .set_en(enable)
        .set_bam(1)
        .set_upe(promisc_)
        .set_mpe(promisc_ || allmulti_)
        // Long packets up to RLPML, so the MTU alone decides (8.10.1, 8.10.6).
        .set_lpe(1)
        .set_secrc((conf_.rx_offloads & off::kRxKeepCrc) == 0)
        .write(bar_);
}

// 4.5.9 receive queue initialization: ring registers, SRRCTL, then
// RXDCTL.ENABLE, polled until it reads 1, and only then the tail.
Result<void> IgbPort::start_rx_queue(RxQueue& q) {
    const Queue io(bar_, q.index);
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
Result<void> IgbPort::start_tx_queue(TxQueue& q) {
    const Queue io(bar_, q.index);
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

void IgbPort::configure_rss() {
    if (conf_.rss_hf == 0) {
        regs::Mrqc::zero().write(bar_);  // every packet to queue 0
        return;
    }
    for (unsigned i = 0; i < regs::kRssKeyBytes / 4; ++i) {
        const auto* k = &kDefaultRssKey[4 * i];
        const Indexed rssrk(bar_, i, 4);
        regs::Rssrk::zero()
            .set_key(k[0] | (std::uint32_t{k[1]} << 8) | (std::uint32_t{k[2]} << 16) |
                     (std::uint32_t{k[3]} << 24))
            .write(rssrk);
    }
    for (unsigned w = 0; w < regs::kRetaEntries / 4; ++w) {
        std::uint32_t v = 0;
        for (unsigned b = 0; b < 4; ++b)
            v |= std::uint32_t{reta_entry(4 * w + b, nb_rxq_)} << (8 * b);
        const Indexed reta(bar_, w, 4);
        regs::Reta::zero().set_entries(v).write(reta);
    }
    regs::Mrqc::from_raw(mrqc_fields(conf_.rss_hf)).set_enable(regs::kMrqcRss).write(bar_);
}

Result<void> IgbPort::start() {
    if (auto r = check_buffers(mtu_); !r)
        return r;
    write_rctl(false);
    // PCSD: the descriptor's checksum field carries the RSS hash instead
    // (8.10.5); QEMU's model computes no hash without it (igb_rss_enabled).
    regs::Rxcsum::zero().set_ipofld(1).set_tuofld(1).set_pcsd(1).write(bar_);
    regs::Rlpml::zero().set_len(max_frame() + kCrc).write(bar_);
    for (std::uint16_t qi = 0; qi < nb_rxq_; ++qi) {
        if (auto r = start_rx_queue(*rxq_[qi]); !r) {
            disable_queues();
            return r;
        }
    }
    configure_rss();
    regs::Ctrl::read(bar_).set_vme((conf_.rx_offloads & off::kRxVlanStrip) != 0).write(bar_);
    regs::Tctl::zero().set_psp(1).write(bar_);
    for (std::uint16_t qi = 0; qi < nb_txq_; ++qi) {
        if (auto r = start_tx_queue(*txq_[qi]); !r) {
            disable_queues();
            return r;
        }
    }
    if (conf_.rxq_interrupt) {
        if (auto r = start_rx_interrupts(); !r) {
            disable_queues();
            return r;
        }
    }
    // Collision threshold and distance as the kernel's igb sets them for
    // full duplex (8.12.1).
    regs::Tctl::zero().set_en(1).set_psp(1).set_ct(15).set_cold(63).set_rtlc(1).write(bar_);
    write_rctl(true);
    started_ = true;
    return {};
}

void IgbPort::disable_queues() {
    regs::Rctl::read(bar_).set_en(0).write(bar_);
    regs::Tctl::read(bar_).set_en(0).write(bar_);
    for (std::uint16_t qi = 0; qi < kMaxQueues; ++qi) {
        const Queue io(bar_, qi);
        if (rxq_[qi]) {
            regs::Rxdctl::read(io).set_enable(0).write(io);
            (void)poll([&] { return regs::Rxdctl::read(io).enable() == 0; }, 10ms);
        }
        if (txq_[qi]) {
            regs::Txdctl::read(io).set_enable(0).write(io);
            (void)poll([&] { return regs::Txdctl::read(io).enable() == 0; }, 10ms);
        }
    }
    regs::Eimc::zero().set_value(~0u).write(bar_);
    irqs_.reset();
}

void IgbPort::stop() {
    disable_queues();
    started_ = false;
}

Result<ethdev::Link> IgbPort::link(bool wait) {
    if (wait)
        (void)poll([&] { return regs::Status::read(bar_).lu() != 0; }, 9000ms);
    const auto s = regs::Status::read(bar_);
    ethdev::Link l;
    l.up = s.lu() != 0;
    if (l.up) {
        l.speed_mbps = s.speed() == 0 ? 10 : s.speed() == 1 ? 100 : 1000;
        l.full_duplex = s.fd() != 0;
        l.autoneg = true;
    }
    return l;
}

Result<void> IgbPort::promiscuous(bool on) {
    promisc_ = on;
    regs::Rctl::read(bar_).set_upe(promisc_).set_mpe(promisc_ || allmulti_).write(bar_);
    return {};
}

Result<void> IgbPort::allmulticast(bool on) {
    allmulti_ = on;
    regs::Rctl::read(bar_).set_mpe(promisc_ || allmulti_).write(bar_);
    return {};
}

Result<void> IgbPort::set_mac(const ethdev::MacAddr& a) {
    if (a.bytes[0] & 1)
        return fail(Error(EINVAL, "MAC " + a.str() + " is a multicast address").context(who()));
    write_rar0(a);
    mac_ = a;
    return {};
}

Result<void> IgbPort::set_mtu(std::uint32_t mtu) {
    if (started_) {
        if (auto r = check_buffers(mtu); !r)
            return r;
        regs::Rlpml::zero().set_len(mtu + kEtherHdr + kVlanTag + kCrc).write(bar_);
    }
    mtu_ = mtu;
    return {};
}

// 7.3.4 MSI-X: GPIE in MSI-X mode, rx queue q's cause on vector 1 + q
// (IVAR), no throttling (EITR 0), EICR bits cleared when the vector fires
// (EIAC) so the next packet fires it again; armed by rx_intr_enable (EIMS).
Result<void> IgbPort::start_rx_interrupts() {
    auto set = dev_->enable_irqs(pci::IrqType::msix, 1u + nb_rxq_);
    if (!set)
        return fail(std::move(set.error()).context(who() + " rx interrupts"));
    irqs_.emplace(std::move(*set));
    regs::Gpie::zero().set_msix_mode(1).set_pba(1).set_nsicr(1).set_eiame(1).write(bar_);
    std::uint32_t rx_bits = 0;
    for (std::uint16_t qi = 0; qi < nb_rxq_; ++qi) {
        const unsigned vec = 1u + qi;
        const Indexed ivar(bar_, qi % 8, 4);
        auto v = regs::Ivar::read(ivar);
        if (qi < 8)
            v.set_rx_vector(vec).set_rx_valid(1);
        else
            v.set_rx_hi_vector(vec).set_rx_hi_valid(1);
        v.write(ivar);
        const Indexed eitr(bar_, vec, 4);
        regs::Eitr::zero().write(eitr);
        rx_bits |= 1u << vec;
    }
    regs::Eimc::zero().set_value(~0u).write(bar_);
    regs::Eiac::zero().set_value(rx_bits).write(bar_);
    return {};
}

Result<int> IgbPort::rx_intr_fd(std::uint16_t q) {
    if (!irqs_ || q >= nb_rxq_)
        return fail(Error(EINVAL, "rx queue " + std::to_string(q) +
                                      " has no interrupt: configure with rxq_interrupt and start")
                        .context(who()));
    return irqs_->vector(1u + q).fd();
}

Result<void> IgbPort::rx_intr_enable(std::uint16_t q) {
    if (!irqs_ || q >= nb_rxq_)
        return fail(Error(EINVAL, "rx queue " + std::to_string(q) + " has no interrupt").context(who()));
    regs::Eims::zero().set_value(1u << (1u + q)).write(bar_);
    return {};
}

Result<void> IgbPort::rx_intr_disable(std::uint16_t q) {
    if (!irqs_ || q >= nb_rxq_)
        return fail(Error(EINVAL, "rx queue " + std::to_string(q) + " has no interrupt").context(who()));
    regs::Eimc::zero().set_value(1u << (1u + q)).write(bar_);
    return {};
}

}  // namespace vfiokit::igb
