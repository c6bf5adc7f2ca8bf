// IgbPort: ethdev's PortOps for one 82576 PF (private to the driver).
// Control path only; the per-packet code is rxtx.cpp.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "regs.hpp"
#include "rxtx.hpp"
#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/irq.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::igb {

// One hardware counter as DPDK's igb names it in xstats.
struct HwCounter {
    const char* name;  // null: read for stats() only, not an xstat
    std::uint32_t offset;
    bool wide;  // 64-bit: low word at offset, high at offset + 4
};
// Every counter the driver accumulates, in DPDK's xstats order.
[[nodiscard]] std::span<const HwCounter> hw_counters();

class IgbPort final : public ethdev::PortOps {
public:
    [[nodiscard]] static Result<std::unique_ptr<IgbPort>> open(pci::PciDevice& dev);
    ~IgbPort() override;
    IgbPort(const IgbPort&) = delete;
    IgbPort& operator=(const IgbPort&) = delete;

    [[nodiscard]] ethdev::DevInfo info() const override;
    [[nodiscard]] Result<void> configure(std::uint16_t nb_rxq, std::uint16_t nb_txq,
                                         const ethdev::PortConf& conf) override;
    [[nodiscard]] Result<void*> rx_queue_setup(std::uint16_t q, std::uint16_t nb_desc, int socket,
                                               const ethdev::RxConf& conf,
                                               mbuf::MbufPool& pool) override;
    [[nodiscard]] Result<void*> tx_queue_setup(std::uint16_t q, std::uint16_t nb_desc, int socket,
                                               const ethdev::TxConf& conf) override;
    void rx_queue_release(std::uint16_t q) override;
    void tx_queue_release(std::uint16_t q) override;
    [[nodiscard]] Result<void> start() override;
    void stop() override;
    [[nodiscard]] ethdev::RxBurst rx_burst_fn() const override { return &rx_burst; }
    [[nodiscard]] ethdev::TxBurst tx_burst_fn() const override { return &tx_burst; }

    [[nodiscard]] Result<ethdev::Link> link(bool wait) override;
    [[nodiscard]] Result<void> promiscuous(bool on) override;
    [[nodiscard]] Result<void> allmulticast(bool on) override;
    [[nodiscard]] ethdev::MacAddr mac() const override { return mac_; }
    [[nodiscard]] Result<void> set_mac(const ethdev::MacAddr& a) override;
    [[nodiscard]] Result<void> set_mtu(std::uint32_t mtu) override;
    [[nodiscard]] Result<ethdev::Stats> stats() override;
    [[nodiscard]] Result<void> stats_reset() override;
    [[nodiscard]] Result<std::vector<ethdev::Xstat>> xstats() override;
    [[nodiscard]] Result<int> rx_intr_fd(std::uint16_t q) override;
    [[nodiscard]] Result<void> rx_intr_enable(std::uint16_t q) override;
    [[nodiscard]] Result<void> rx_intr_disable(std::uint16_t q) override;

    // Where BAR0 is mapped: a secondary maps it at the same address.
    [[nodiscard]] std::uint64_t secondary_data() const override {
        return reinterpret_cast<std::uintptr_t>(bar_.pointer(0, 1));
    }

    // The id ethdev::attach gave this port (stamped into received mbufs).
    void set_port_id(std::uint16_t id) { port_id_ = id; }

private:
    IgbPort(pci::PciDevice& dev, pci::Bar bar) : dev_(&dev), bar_(std::move(bar)) {}
    [[nodiscard]] std::string who() const;
    [[nodiscard]] Result<void> reset();
    [[nodiscard]] Result<ethdev::MacAddr> read_mac();
    void write_rar0(const ethdev::MacAddr& a);
    [[nodiscard]] Result<void> phy_write(std::uint32_t reg, std::uint16_t v);
    [[nodiscard]] Result<void> start_rx_queue(RxQueue& q);
    [[nodiscard]] Result<void> start_tx_queue(TxQueue& q);
    [[nodiscard]] Result<void> start_rx_interrupts();
    void configure_rss();
    void write_rctl(bool enable);
    [[nodiscard]] std::uint32_t max_frame() const;  // without CRC, one VLAN tag included
    [[nodiscard]] Result<void> check_buffers(std::uint32_t mtu) const;
    void disable_queues();
    void accumulate_counters();
    // Polls `done` every 100 us for up to `limit`; true once it held.
    template <class F>
    bool poll(F done, std::chrono::milliseconds limit);

    pci::PciDevice* dev_;
    pci::Bar bar_;
    ethdev::MacAddr mac_;
    std::uint16_t port_id_ = 0;
    std::uint16_t nb_rxq_ = 0, nb_txq_ = 0;
    ethdev::PortConf conf_;
    std::uint32_t mtu_ = 1500;
    bool promisc_ = false, allmulti_ = false, started_ = false;
    std::array<std::unique_ptr<RxQueue>, kMaxQueues> rxq_;
    std::array<std::unique_ptr<TxQueue>, kMaxQueues> txq_;
    std::vector<std::uint64_t> hw_;   // accumulated hw_counters(), same order
    std::uint32_t msix_vectors_ = 0;  // what the device offers
    std::optional<pci::IrqSet> irqs_; // vector 1 + q: rx queue q
};

}  // namespace vfiokit::igb
