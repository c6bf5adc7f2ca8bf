// IgbPort: ethdev's PortOps for one 82576 PF (private to the driver).
// Control path only; the per-packet code is rxtx.cpp, what the PF shares
// with the VF (rings, queue start, queue counters) common.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "common.hpp"
#include "regs.hpp"
#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/irq.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::igb {

// Every counter the driver accumulates, in DPDK's xstats order.
[[nodiscard]] std::span<const HwCounter> hw_counters();

class IgbPort final : public PortBase {
public:
    [[nodiscard]] static Result<std::unique_ptr<IgbPort>> open(pci::PciDevice& dev);
    ~IgbPort() override;

    [[nodiscard]] ethdev::DevInfo info() const override;
    [[nodiscard]] Result<void> configure(std::uint16_t nb_rxq, std::uint16_t nb_txq,
                                         const ethdev::PortConf& conf) override;
    [[nodiscard]] Result<void> start() override;
    void stop() override;

    [[nodiscard]] Result<ethdev::Link> link(bool wait) override;
    [[nodiscard]] Result<void> promiscuous(bool on) override;
    [[nodiscard]] Result<void> allmulticast(bool on) override;
    [[nodiscard]] Result<void> set_mac(const ethdev::MacAddr& a) override;
    [[nodiscard]] Result<void> set_mtu(std::uint32_t mtu) override;
    [[nodiscard]] Result<int> rx_intr_fd(std::uint16_t q) override;
    [[nodiscard]] Result<void> rx_intr_enable(std::uint16_t q) override;
    [[nodiscard]] Result<void> rx_intr_disable(std::uint16_t q) override;
    // Link changes on MSI-X vector 0 (PortConf::lsc_interrupt), from start
    // to stop; after it fires, link() clears the cause.
    [[nodiscard]] Result<int> lsc_fd() override;

    // Where BAR0 is mapped: a secondary maps it at the same address.
    [[nodiscard]] std::uint64_t secondary_data() const override {
        return reinterpret_cast<std::uintptr_t>(bar_.pointer(0, 1));
    }

private:
    IgbPort(pci::PciDevice& dev, pci::Bar bar);
    [[nodiscard]] Result<void> reset();
    [[nodiscard]] Result<ethdev::MacAddr> read_mac();
    void write_rar0(const ethdev::MacAddr& a);
    [[nodiscard]] Result<void> phy_write(std::uint32_t reg, std::uint16_t v);
    [[nodiscard]] Result<void> start_rx_interrupts();
    static constexpr unsigned kLscVector = 0;
    void start_lsc_interrupt();
    void configure_rss();
    void write_rctl(bool enable);
    [[nodiscard]] std::uint32_t max_frame() const;  // without CRC, one VLAN tag included
    void disable_queues();
    void accumulate_counters() override;
    void hw_stats(ethdev::Stats& s) const override;

    bool promisc_ = false, allmulti_ = false;
    std::uint32_t msix_vectors_ = 0;  // what the device offers
    std::optional<pci::IrqSet> irqs_; // vector 0: link changes; 1 + q: rx queue q
};

}  // namespace vfiokit::igb
