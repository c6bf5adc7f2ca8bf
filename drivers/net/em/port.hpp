// One em port: the ethdev::PortOps of an 82540EM or 82574L. ethdev checks
// every argument against info() first (queue counts, ring sizes, MTU), so
// the calls here implement only valid requests.
//
// Ownership: ethdev owns the EmPort (attach); the EmPort owns the BAR0
// mapping and the queues. Destroying it stops the NIC's DMA and takes bus
// mastering away before the rings and their mbufs are freed. `dev` must
// outlive it (the driver instance, which the bus destroys before the
// device, detaches the port first).
// Interrupts (PortConf::rxq_interrupt, lsc_interrupt): with MSI-X (the
// 82574L) vector 0 carries link changes ("other" cause) and vector 1 rx
// queue 0, both at once. Without MSI-X (the 82540EM) the one interrupt
// line (INTx) carries either, not both. The eventfds exist from start()
// to stop(). rx: rx_intr_enable arms, rx_intr_disable disarms and clears
// the cause, so a frame that lands between them fires as soon as the
// queue is armed again. Link: after lsc_fd() fires, link() clears the
// cause and re-arms (INTx: unmasks the line).
//
// Thread-safety: control calls from one thread at a time (ethdev's lock).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "hw.hpp"
#include "rxtx.hpp"
#include "stats.hpp"
#include "vfiokit/bus/pci/bar.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::em {

class EmPort final : public ethdev::PortOps {
public:
    EmPort(pci::PciDevice& dev, pci::Bar bar, ModelInfo model, ethdev::MacAddr mac);
    ~EmPort() override;
    EmPort(const EmPort&) = delete;
    EmPort& operator=(const EmPort&) = delete;

    // The id ethdev gave the port (attach), stamped on received mbufs.
    void set_port_id(std::uint16_t id) { port_id_ = id; }

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
    [[nodiscard]] ethdev::RxBurst rx_burst_fn() const override { return rx_burst; }
    [[nodiscard]] ethdev::TxBurst tx_burst_fn() const override { return tx_burst; }

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
    [[nodiscard]] Result<int> lsc_fd() override;
    // Where BAR0 is mapped: a secondary maps it at the same address.
    [[nodiscard]] std::uint64_t secondary_data() const override {
        return reinterpret_cast<std::uintptr_t>(bar_.pointer(0, 1));
    }

private:
    // MSI-X vectors: link changes ("other") and rx queue 0.
    static constexpr unsigned kLscVector = 0, kRxVector = 1;
    [[nodiscard]] bool has_msix() const { return msix_vectors_ >= 2; }
    // Enables the vectors start() needs (a no-op without interrupts).
    [[nodiscard]] Result<void> start_interrupts();
    // EINVAL unless start() enabled the interrupt `what` asks for.
    [[nodiscard]] Result<void> check_intr(bool configured, const char* what) const;
    // RCTL as the port's settings ask (enabled or not).
    [[nodiscard]] regs::Rctl rctl(bool enable) const;
    [[nodiscard]] std::string who() const;

    pci::PciDevice* dev_;
    ModelInfo model_;
    ethdev::MacAddr mac_;
    std::uint16_t port_id_ = 0xffff;
    ethdev::PortConf conf_;
    std::uint32_t mtu_ = 1500;
    bool promisc_ = false;
    bool allmulti_ = false;
    bool started_ = false;
    Counters hw_;
    std::uint32_t msix_vectors_ = 0;   // what the device offers
    bool intx_ = false;                // an INTx line (the fallback without MSI-X)
    std::optional<pci::IrqSet> irqs_;  // while started with interrupts
    // Declared last: destroyed before the BAR they write to.
    pci::Bar bar_;
    std::unique_ptr<RxQueue> rxq_;
    std::unique_ptr<TxQueue> txq_;
};

}  // namespace vfiokit::em
