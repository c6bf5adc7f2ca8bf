#include "port.hpp"

#include <cerrno>
#include <string>
#include <thread>

namespace vfiokit::em {

namespace {

constexpr std::uint64_t kRxOffloads = ethdev::offload::kRxIpv4Cksum | ethdev::offload::kRxUdpCksum |
                                      ethdev::offload::kRxTcpCksum | ethdev::offload::kRxKeepCrc;
constexpr std::uint64_t kRxCksum = ethdev::offload::kRxIpv4Cksum | ethdev::offload::kRxUdpCksum |
                                   ethdev::offload::kRxTcpCksum;
constexpr std::uint64_t kTxOffloads = ethdev::offload::kTxMultiSegs;

std::uint32_t lo32(std::uint64_t v) { return static_cast<std::uint32_t>(v); }
std::uint32_t hi32(std::uint64_t v) { return static_cast<std::uint32_t>(v >> 32); }

}  // namespace

EmPort::EmPort(pci::PciDevice& dev, pci::Bar bar, ModelInfo model, ethdev::MacAddr mac)
    : dev_(&dev), model_(model), mac_(mac), bar_(std::move(bar)) {
    if (auto i = dev.irq_info(pci::IrqType::msix); i && i->eventfd)
        msix_vectors_ = i->count;
    if (auto i = dev.irq_info(pci::IrqType::intx); i && i->eventfd && i->maskable)
        intx_ = i->count >= 1;
    write_mac(bar_, mac_);
    // No multicast address is wanted until the application asks.
    for (unsigned i = 0; i < regs::kMtaWords; ++i)
        bar_.write<std::uint32_t>(regs::kMta + 4 * i, 0);
    link_setup(bar_);
    // Start counting from zero: the registers hold whatever the kernel's
    // driver left.
    hw_.collect(bar_);
    hw_ = {};
}

EmPort::~EmPort() {
    // The rings and their mbufs go with the members: the NIC must not
    // write into them any more.
    stop();
    (void)dev_->disable_bus_master();
}

std::string EmPort::who() const {
    return std::string(model_.name) + " " + dev_->address().str() + " (port " + std::to_string(port_id_) + ")";
}

ethdev::DevInfo EmPort::info() const {
    ethdev::DevInfo i;
    i.driver_name = "net_e1000_em";
    i.device_name = dev_->address().str();
    i.max_rx_queues = 1;
    i.max_tx_queues = 1;
    i.rx_desc = {kMinDesc, kMaxDesc, kRingAlignDesc};
    i.tx_desc = {kMinDesc, kMaxDesc, kRingAlignDesc};
    i.rx_offload_capa = kRxOffloads;
    i.tx_offload_capa = kTxOffloads;
    i.rss_offload_capa = 0;
    i.min_mtu = 68;
    i.max_mtu = model_.max_rx_pktlen - kFrameOverhead;
    i.max_rx_pktlen = model_.max_rx_pktlen;
    i.rxq_interrupt = has_msix() || intx_;
    i.lsc_interrupt = has_msix() || intx_;
    return i;
}

Result<void> EmPort::configure(std::uint16_t, std::uint16_t, const ethdev::PortConf& conf) {
    // One INTx line cannot tell a frame from a link change without reading
    // (and so clearing) ICR, which would lose the other's event: one of
    // them, as DPDK's em does without MSI-X.
    if (conf.rxq_interrupt && conf.lsc_interrupt && !has_msix())
        return fail(Error(EINVAL, who() + ": configure: rx queue and link-state interrupts "
                                          "together need two interrupt vectors; the " +
                                          std::string(model_.name) +
                                          " has one interrupt line (INTx) and no MSI-X")
                        .hint("configure rxq_interrupt or lsc_interrupt, not both, and poll "
                              "link_get_nowait() or rx_burst for the other"));
    if (conf.rss_hf)
        return fail(Error(ENOTSUP, who() + ": configure: RSS")
                        .hint("em has one rx queue: configure with rss_hf = 0"));
    if (conf.mtu) {
        if (auto r = set_mtu(conf.mtu); !r)
            return r;
    }
    conf_ = conf;
    if (!conf.mtu)
        conf_.mtu = mtu_;
    return {};
}

Result<void*> EmPort::rx_queue_setup(std::uint16_t, std::uint16_t nb_desc, int socket,
                                     const ethdev::RxConf& conf, mbuf::MbufPool& pool) {
    rxq_.reset();
    auto q = RxQueue::create(nb_desc, socket, conf, pool, bar_);
    if (!q)
        return fail(std::move(q.error()).context(who()));
    rxq_ = std::move(*q);
    rxq_->port = port_id_;
    rxq_->cksum = (conf_.rx_offloads & kRxCksum) != 0;
    return static_cast<void*>(rxq_.get());
}

Result<void*> EmPort::tx_queue_setup(std::uint16_t, std::uint16_t nb_desc, int socket,
                                     const ethdev::TxConf& conf) {
    txq_.reset();
    auto q = TxQueue::create(nb_desc, socket, conf, bar_);
    if (!q)
        return fail(std::move(q.error()).context(who()));
    txq_ = std::move(*q);
    return static_cast<void*>(txq_.get());
}

void EmPort::rx_queue_release(std::uint16_t) {
    if (started_)
        stop();
    rxq_.reset();
}

void EmPort::tx_queue_release(std::uint16_t) {
    if (started_)
        stop();
    txq_.reset();
}

regs::Rctl EmPort::rctl(bool enable) const {
    const std::uint32_t frame = mtu_ + kFrameOverhead;
    auto r = regs::Rctl::zero()
                 .set_en(enable)
                 .set_upe(promisc_)
                 .set_mpe(promisc_ || allmulti_)
                 .set_lpe(frame > kMaxStandardFrame)
                 .set_bam(1)
                 .set_secrc((conf_.rx_offloads & ethdev::offload::kRxKeepCrc) == 0);
    if (rxq_)
        r.set_bsize(rxq_->buf.bsize).set_bsex(rxq_->buf.bsex);
    return r;
}

Result<void> EmPort::start() {
    if (!rxq_ || !txq_)
        return fail(Error(EINVAL, who() + ": start: the rx and tx queues are not set up")
                        .hint("call rx_queue_setup and tx_queue_setup first"));
    if (auto r = rxq_->reset(); !r)
        return fail(std::move(r.error()).context(who() + ": start"));
    txq_->reset();
    rxq_->port = port_id_;
    rxq_->cksum = (conf_.rx_offloads & kRxCksum) != 0;

    regs::Imc::zero().set_causes(~0u).write(bar_);
    if (auto r = start_interrupts(); !r)
        return fail(std::move(r.error()).context(who() + ": start"));
    write_mac(bar_, mac_);

    // Receive [SDM 14.4 "Receive Initialization"; 82574 4.6.6]: ring base,
    // length, head and tail at 0 while disabled; no delay timers (no
    // interrupts); checksum offload as asked; then enable, then give the
    // NIC every slot but one.
    rctl(false).write(bar_);
    regs::Rdbal::zero().set_addr(lo32(rxq_->mem.iova())).write(bar_);
    regs::Rdbah::zero().set_addr(hi32(rxq_->mem.iova())).write(bar_);
    regs::Rdlen::zero().set_bytes(std::uint32_t{rxq_->nb_desc} * sizeof(RxDesc)).write(bar_);
    regs::Rdh::zero().write(bar_);
    regs::Rdt::zero().write(bar_);
    regs::Rdtr::zero().write(bar_);
    regs::Radv::zero().write(bar_);
    regs::Rxcsum::read(bar_)
        .set_ipofl(rxq_->cksum)
        .set_tuofl(rxq_->cksum)
        .set_pcsd(0)
        .write(bar_);
    rctl(true).write(bar_);
    regs::Rdt::zero().set_index(rxq_->mask).write(bar_);

    // Transmit [SDM 14.5 "Transmit Initialization"; 82574 4.6.7].
    regs::Tdbal::zero().set_addr(lo32(txq_->mem.iova())).write(bar_);
    regs::Tdbah::zero().set_addr(hi32(txq_->mem.iova())).write(bar_);
    regs::Tdlen::zero().set_bytes(std::uint32_t{txq_->nb_desc} * sizeof(TxDesc)).write(bar_);
    regs::Tdh::zero().write(bar_);
    regs::Tdt::zero().write(bar_);
    regs::Tidv::zero().write(bar_);
    regs::Tipg::zero().set_ipgt(model_.tipg_ipgt).set_ipgr1(8).set_ipgr2(6).write(bar_);
    const bool fd = regs::Status::read(bar_).fd() != 0;
    regs::Tctl::zero()
        .set_en(1)
        .set_psp(1)
        .set_ct(regs::kTctlCt)
        .set_cold(fd ? regs::kTctlColdFullDuplex : regs::kTctlColdHalfDuplex)
        .set_rtlc(1)
        .write(bar_);
    link_setup(bar_);
    if (irqs_ && conf_.lsc_interrupt) {
        const std::uint32_t lsc = has_msix() ? regs::kIntLsc | regs::kIntOther : regs::kIntLsc;
        regs::Ims::zero().set_causes(lsc).write(bar_);
    }
    started_ = true;
    return {};
}

// [82574 7.4.2 MSI-X]: IVAR routes rx queue 0 and "other" to their
// vectors, EIAC clears those causes as the vector fires (so the next
// event fires again), no throttling (EITR 0; QEMU's model holds every
// EITR at 500 or more, its reset value, so it throttles regardless). Without
// MSI-X the INTx line, which the kernel masks on delivery: rx_intr_enable
// and link() unmask it once the cause is cleared.
Result<void> EmPort::start_interrupts() {
    irqs_.reset();
    if (!conf_.rxq_interrupt && !conf_.lsc_interrupt)
        return {};
    auto set = has_msix() ? dev_->enable_irqs(pci::IrqType::msix, 2)
                          : dev_->enable_irqs(pci::IrqType::intx, 1);
    if (!set)
        return fail(std::move(set.error()).context("interrupts"));
    irqs_.emplace(std::move(*set));
    if (has_msix()) {
        regs::Ivar::zero()
            .set_rxq0_vector(kRxVector)
            .set_rxq0_valid(1)
            .set_other_vector(kLscVector)
            .set_other_valid(1)
            .write(bar_);
        regs::Eiac::zero().set_causes((regs::kIntRxq0 | regs::kIntOther) >> 20).write(bar_);
        for (unsigned v = 0; v < regs::kMsixVectors82574; ++v)
            bar_.write<std::uint32_t>(regs::kEitr + 4 * v, 0);
        regs::Icr::zero().set_causes(~0u).write(bar_);
    } else {
        (void)regs::Icr::read(bar_);
    }
    return {};
}

Result<void> EmPort::check_intr(bool configured, const char* what) const {
    if (!configured || !irqs_)
        return fail(Error(EINVAL, who() + ": " + what + ": not armed")
                        .hint("configure with the interrupt and start the port first; the "
                              "eventfds exist from start to stop"));
    return {};
}

Result<int> EmPort::rx_intr_fd(std::uint16_t) {
    if (auto r = check_intr(conf_.rxq_interrupt, "rx interrupt"); !r)
        return fail(std::move(r.error()));
    return irqs_->vector(has_msix() ? kRxVector : 0).fd();
}

Result<void> EmPort::rx_intr_enable(std::uint16_t) {
    if (auto r = check_intr(conf_.rxq_interrupt, "rx interrupt"); !r)
        return r;
    if (has_msix()) {
        regs::Ims::zero().set_causes(regs::kIntRxq0).write(bar_);
        return {};
    }
    regs::Ims::zero().set_causes(regs::kIntRxt0).write(bar_);
    return irqs_->unmask();
}

Result<void> EmPort::rx_intr_disable(std::uint16_t) {
    if (auto r = check_intr(conf_.rxq_interrupt, "rx interrupt"); !r)
        return r;
    if (has_msix()) {
        regs::Imc::zero().set_causes(regs::kIntRxq0).write(bar_);
        regs::Icr::zero().set_causes(regs::kIntRxq0).write(bar_);
    } else {
        regs::Imc::zero().set_causes(regs::kIntRxt0).write(bar_);
        (void)regs::Icr::read(bar_);  // clears the cause: the line goes low
    }
    return {};
}

Result<int> EmPort::lsc_fd() {
    if (auto r = check_intr(conf_.lsc_interrupt, "link-state interrupt"); !r)
        return fail(std::move(r.error()));
    return irqs_->vector(has_msix() ? kLscVector : 0).fd();
}

void EmPort::stop() {
    regs::Imc::zero().set_causes(~0u).write(bar_);
    rctl(false).write(bar_);
    regs::Tctl::zero().set_psp(1).write(bar_);
    (void)regs::Status::read(bar_);  // flushes the posted writes
    if (started_ || irqs_) {
        // Let a frame in flight land before its ring can be freed
        // [SDM 14.2: "allow any pending DMA to complete"], and let the
        // interrupt throttling window that follows a message pass before
        // the vectors go: QEMU's 82574L throttles for at least 500 x 256
        // ns (EITR), and 7.2's aborts when that timer expires with MSI-X
        // disabled.
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    irqs_.reset();
    started_ = false;
}

Result<ethdev::Link> EmPort::link(bool wait) {
    // Clear the link cause before reading STATUS, so that a change after
    // the read fires again.
    if (irqs_ && conf_.lsc_interrupt) {
        if (has_msix()) {
            regs::Icr::zero().set_causes(regs::kIntLsc | regs::kIntOther).write(bar_);
            // Arm "other" again: QEMU 11.1's 82574L also clears the IMS
            // bit of a cause EIAC clears, unless CTRL_EXT.IAME
            // (e1000e_msix_notify_one); rx_intr_enable sets RxQ0 anyway.
            regs::Ims::zero().set_causes(regs::kIntLsc | regs::kIntOther).write(bar_);
        } else {
            (void)regs::Icr::read(bar_);
            if (auto r = irqs_->unmask(); !r)
                return fail(std::move(r.error()).context(who() + ": link"));
        }
    }
    ethdev::Link l = link_status(bar_);
    for (int i = 0; wait && !l.up && i < 90; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        l = link_status(bar_);
    }
    return l;
}

Result<void> EmPort::promiscuous(bool on) {
    promisc_ = on;
    regs::Rctl::read(bar_).set_upe(promisc_).set_mpe(promisc_ || allmulti_).write(bar_);
    return {};
}

Result<void> EmPort::allmulticast(bool on) {
    allmulti_ = on;
    regs::Rctl::read(bar_).set_mpe(promisc_ || allmulti_).write(bar_);
    return {};
}

Result<void> EmPort::set_mac(const ethdev::MacAddr& a) {
    if (a.bytes[0] & 1)
        return fail(Error(EINVAL, who() + ": set MAC " + a.str() + ": a multicast address")
                        .hint("a port's address is unicast: the first byte's lowest bit is 0"));
    mac_ = a;
    write_mac(bar_, mac_);
    return {};
}

Result<void> EmPort::set_mtu(std::uint32_t mtu) {
    // Frames above one rx buffer span several descriptors (rx_burst chains
    // them), so any MTU up to the model's limit works with any pool.
    mtu_ = mtu;
    regs::Rctl::read(bar_).set_lpe(mtu_ + kFrameOverhead > kMaxStandardFrame).write(bar_);
    return {};
}

Result<ethdev::Stats> EmPort::stats() {
    hw_.collect(bar_);
    ethdev::Stats s;
    s.ipackets = hw_[stat::kGprc];
    s.opackets = hw_[stat::kGptc];
    // Bytes as the application sees them, counted by the burst functions:
    // the octet registers (GORC/GOTC, through the CRC per [SDM 13]) are
    // not kept alike by QEMU's models (7.2's e1000e leaves the CRC out of
    // GOTC, 11.1's e1000 keeps GORC and its e1000e GOTC at 0), so they
    // are in xstats only.
    s.ibytes = rxq_ ? rxq_->bytes.get() : 0;
    s.obytes = txq_ ? txq_->bytes.get() : 0;
    s.imissed = hw_[stat::kMpc];
    s.ierrors = hw_[stat::kCrcerrs] + hw_[stat::kAlgnerrc] + hw_[stat::kRxerrc] +
                hw_[stat::kRlec] + hw_[stat::kCexterr];
    s.oerrors = hw_[stat::kEcol] + hw_[stat::kLatecol];
    if (rxq_) {
        s.rx_nombuf = rxq_->nombuf.get();
        s.ierrors += rxq_->errors.get();
        s.q_ipackets[0] = rxq_->packets.get();
        s.q_ibytes[0] = rxq_->bytes.get();
    }
    if (txq_) {
        s.q_opackets[0] = txq_->packets.get();
        s.q_obytes[0] = txq_->bytes.get();
    }
    return s;
}

Result<void> EmPort::stats_reset() {
    hw_.collect(bar_);
    hw_ = {};
    if (rxq_) {
        rxq_->packets.reset();
        rxq_->bytes.reset();
        rxq_->nombuf.reset();
        rxq_->errors.reset();
    }
    if (txq_) {
        txq_->packets.reset();
        txq_->bytes.reset();
    }
    return {};
}

Result<std::vector<ethdev::Xstat>> EmPort::xstats() {
    hw_.collect(bar_);
    std::vector<ethdev::Xstat> out;
    out.reserve(kStatRegs.size());
    for (std::size_t i = 0; i < kStatRegs.size(); ++i)
        out.push_back({std::string(kStatRegs[i].name), hw_[i]});
    return out;
}

}  // namespace vfiokit::em
