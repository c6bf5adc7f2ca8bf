// IgbPort: bring-up, start/stop, link, filters (stats.cpp has the
// counters, common.cpp the rings). Section numbers are the 82576
// datasheet's.
#include "port.hpp"

#include <cerrno>
#include <thread>

#include "igb.hpp"
#include "rss.hpp"
#include "vfiokit/eal/format.hpp"

namespace vfiokit::igb {

using namespace std::chrono_literals;
namespace off = ethdev::offload;

namespace {

constexpr std::uint64_t kRxOffloads = off::kRxVlanStrip | off::kRxIpv4Cksum | off::kRxUdpCksum |
                                      off::kRxTcpCksum | off::kRxKeepCrc | off::kRxRssHash;
constexpr std::uint64_t kRssOffloads = ethdev::rss::kIpv4 | ethdev::rss::kIpv4Tcp |
                                       ethdev::rss::kIpv4Udp | ethdev::rss::kIpv6 |
                                       ethdev::rss::kIpv6Tcp | ethdev::rss::kIpv6Udp;

// Waits below a second poll every 100 us; the 9 s link wait every 10 ms.
constexpr PollSteps kPollSteps{std::chrono::microseconds(100), std::chrono::microseconds(10000)};

}  // namespace

IgbPort::IgbPort(pci::PciDevice& dev, pci::Bar bar)
    : PortBase(dev, std::move(bar), kDriverName, kPfQueues, hw_counters(), kPollSteps) {}

Result<std::unique_ptr<IgbPort>> IgbPort::open(pci::PciDevice& dev) {
    // Every register the driver uses is below 0x10000 (queues end at 0xE3FF).
    auto bar = map_bar0(dev, kDriverName, 0x10000);
    if (!bar)
        return fail(std::move(bar.error()));
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
    if (auto r = p->stats_reset(); !r)
        return fail(std::move(r.error()));
    return p;
}

IgbPort::~IgbPort() {
    stop_and_release();
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
    ethdev::DevInfo i = PortBase::info();
    i.rx_offload_capa = kRxOffloads;
    i.rss_offload_capa = kRssOffloads;
    i.rxq_interrupt = msix_vectors_ >= 2;
    i.lsc_interrupt = msix_vectors_ >= 1;
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
    nb_rxq_ = nb_rxq;
    nb_txq_ = nb_txq;
    conf_ = conf;
    if (conf.mtu != 0)
        mtu_ = conf.mtu;
    return {};
}

std::uint32_t IgbPort::max_frame() const { return mtu_ + kEtherHdr + kVlanTag; }

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
    if (auto r = start_rx_queues(); !r) {
        disable_queues();
        return r;
    }
    configure_rss();
    regs::Ctrl::read(bar_).set_vme((conf_.rx_offloads & off::kRxVlanStrip) != 0).write(bar_);
    regs::Tctl::zero().set_psp(1).write(bar_);
    if (auto r = start_tx_queues(); !r) {
        disable_queues();
        return r;
    }
    if (conf_.rxq_interrupt || conf_.lsc_interrupt) {
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
    disable_rings();
    regs::Eimc::zero().set_value(~0u).write(bar_);
    regs::Imc::zero().set_value(~0u).write(bar_);
    irqs_.reset();
}

void IgbPort::stop() {
    disable_queues();
    started_ = false;
}

Result<ethdev::Link> IgbPort::link(bool wait) {
    // Clear LSC before reading STATUS: a change after the read fires again.
    if (irqs_ && conf_.lsc_interrupt)
        (void)regs::Icr::read(bar_);
    return read_link<regs::Status>(wait);
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
    const std::uint16_t nb_vec_rxq = conf_.rxq_interrupt ? nb_rxq_ : 0;
    auto set = dev_->enable_irqs(pci::IrqType::msix, 1u + nb_vec_rxq);
    if (!set)
        return fail(std::move(set.error()).context(who() + " rx interrupts"));
    irqs_.emplace(std::move(*set));
    regs::Gpie::zero().set_msix_mode(1).set_pba(1).set_nsicr(1).set_eiame(1).write(bar_);
    std::uint32_t rx_bits = 0;
    for (std::uint16_t qi = 0; qi < nb_vec_rxq; ++qi) {
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
    if (conf_.lsc_interrupt)
        start_lsc_interrupt();
    return {};
}

// 7.3.3.2 the "other" causes (LSC among them) on vector 0 through
// IVAR_MISC, cleared from EICR as it fires (EIAC) and armed (EIMS) for as
// long as the port runs; IMS.LSC lets a link change reach it. ICR, which
// keeps LSC until read (GPIE.NSICR: any read clears), is read by link().
void IgbPort::start_lsc_interrupt() {
    regs::IvarMisc::read(bar_).set_other_vector(kLscVector).set_other_valid(1).write(bar_);
    const std::uint32_t bit = 1u << kLscVector;
    regs::Eiac::zero().set_value(regs::Eiac::read(bar_).value() | bit).write(bar_);
    (void)regs::Icr::read(bar_);
    regs::Ims::zero().set_lsc(1).write(bar_);
    regs::Eims::zero().set_value(bit).write(bar_);
}

Result<int> IgbPort::lsc_fd() {
    if (!irqs_ || !conf_.lsc_interrupt)
        return fail(Error(EINVAL, "no link-state interrupt: configure with lsc_interrupt and start")
                        .context(who()));
    return irqs_->vector(kLscVector).fd();
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
