// IgbVfPort: the 82576 VF through its mailbox (vf.hpp says what a VF owns).
#include "vf.hpp"

#include <array>
#include <cerrno>
#include <random>
#include <thread>

#include "igb.hpp"

namespace vfiokit::igb {

using namespace std::chrono_literals;

namespace {

// DPDK's igbvf xstats names and the counters behind them (all 32 bits).
constexpr HwCounter kVfCounters[] = {
    {"rx_multicast_packets", vfregs::kMprc, false},
    {"rx_good_loopback_packets", vfregs::kGprlbc, false},
    {"tx_good_loopback_packets", vfregs::kGptlbc, false},
    {"rx_good_loopback_bytes", vfregs::kGorlbc, false},
    {"tx_good_loopback_bytes", vfregs::kGotlbc, false},
    {nullptr, vfregs::kGprc, false},
    {nullptr, vfregs::kGptc, false},
    {nullptr, vfregs::kGorc, false},
    {nullptr, vfregs::kGotc, false},
};
constexpr std::size_t kIdxGprc = 5, kIdxGptc = 6, kIdxGorc = 7, kIdxGotc = 8;

// Every wait, the mailbox's included, polls every 500 us.
constexpr PollSteps kPollSteps{std::chrono::microseconds(500), std::chrono::microseconds(500)};

}  // namespace

IgbVfPort::IgbVfPort(pci::PciDevice& dev, pci::Bar bar)
    : PortBase(dev, std::move(bar), kVfDriverName, kVfQueues, kVfCounters, kPollSteps),
      last_(std::size(kVfCounters), 0) {}

Result<std::unique_ptr<IgbVfPort>> IgbVfPort::open(pci::PciDevice& dev) {
    // The VF's registers (mailbox, queues, counters) are below 0x4000.
    auto bar = map_bar0(dev, kVfDriverName, 0x4000);
    if (!bar)
        return fail(std::move(bar.error()));
    std::unique_ptr<IgbVfPort> p(new IgbVfPort(dev, std::move(*bar)));
    if (auto r = p->reset(); !r)
        return fail(std::move(r.error()));
    if (auto r = p->stats_reset(); !r)
        return fail(std::move(r.error()));
    return p;
}

IgbVfPort::~IgbVfPort() {
    stop_and_release();
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
    ethdev::DevInfo i = PortBase::info();
    // Stripping, CRC and RSS are the PF's to decide.
    i.rx_offload_capa = 0;
    i.rss_offload_capa = 0;
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

// The PF's 4.5.9 and 4.5.10 order, on the VF's copies of the queue
// registers; the rest of receive and transmit is the PF's.
Result<void> IgbVfPort::start() {
    if (auto r = check_buffers(mtu_); !r)
        return r;
    if (auto r = start_rx_queues(); !r) {
        disable_rings();
        return r;
    }
    if (auto r = start_tx_queues(); !r) {
        disable_rings();
        return r;
    }
    started_ = true;
    return {};
}

void IgbVfPort::stop() {
    disable_rings();
    started_ = false;
}

Result<ethdev::Link> IgbVfPort::link(bool wait) { return read_link<vfregs::Status>(wait); }

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
        hw_[i] += static_cast<std::uint32_t>(v - last_[i]);  // wraps at 2^32
        last_[i] = v;
    }
}

void IgbVfPort::hw_stats(ethdev::Stats& s) const {
    s.ipackets = hw_[kIdxGprc];
    s.opackets = hw_[kIdxGptc];
    s.ibytes = hw_[kIdxGorc];
    s.obytes = hw_[kIdxGotc];
}

}  // namespace vfiokit::igb
