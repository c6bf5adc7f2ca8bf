// VirtioPort: ethdev's PortOps for one modern virtio-net device (private
// to the driver). ethdev checks every argument against info() first.
//
// The device's life follows the port's (virtio 1.2, section 3.1.1): the
// queues can be given to a device only between FEATURES_OK and DRIVER_OK,
// so start() resets it, negotiates again, sets up every queue and the
// MSI-X vectors, sets DRIVER_OK and then sends the control commands the
// port's settings need (queue pairs, promiscuous, all-multicast, MAC).
// stop() resets the device, which stops its DMA at once; the transmit
// rings' packets are freed then, the receive rings keep their mbufs for
// the next start (ethdev: until the queue is released).
//
// Features: VERSION_1 is required; ACCESS_PLATFORM is required when the
// device offers it (without it the device would bypass the IOMMU);
// MAC, STATUS, MRG_RXBUF, GUEST_CSUM, CTRL_VQ, CTRL_RX, CTRL_MAC_ADDR, MQ,
// MTU and SPEED_DUPLEX are taken when offered.
//
// Interrupts (MSI-X): vector 0 carries configuration changes (link status:
// lsc_fd), vector 1 + q rx queue q; transmit queues have none. The
// eventfds exist from start() to stop().
//
// Ownership: ethdev owns the port; the port owns the transport (the BAR
// mappings), the queues and the control queue. Destroying it resets the
// device and takes bus mastering away before the rings and their mbufs go.
// Thread-safety: control calls from one thread at a time (ethdev's lock).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net.hpp"
#include "rxtx.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/irq.hpp"
#include "vfiokit/common/virtio/pci.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::virtio::net {

// What probe learnt from the device configuration.
struct DeviceConfig {
    std::uint64_t offered = 0;         // what the device offers
    std::uint64_t features = 0;        // negotiated at probe (start() negotiates again)
    ethdev::MacAddr mac;
    bool mac_from_device = false;      // MAC offered; else a random local address
    std::uint16_t max_pairs = 1;       // max_virtqueue_pairs with MQ, else 1
    std::uint16_t mtu = 1500;          // config mtu with MTU, else 1500
    std::uint16_t rx_max = 0;          // queue_max_size of receiveq1 and transmitq1
    std::uint16_t tx_max = 0;
};

// The features the driver asks for, of those `offered`, and those it
// cannot do without (VERSION_1; ACCESS_PLATFORM when offered).
[[nodiscard]] std::uint64_t wanted_features(std::uint64_t offered);
[[nodiscard]] std::uint64_t required_features(std::uint64_t offered);

// The control queue (section 5.1.6.5): one command at a time, waited for.
class CtrlQueue {
public:
    [[nodiscard]] static Result<std::unique_ptr<CtrlQueue>> create(std::uint16_t num, int socket);
    [[nodiscard]] const Vring& ring() const { return ring_; }
    // Before the device gets the ring (start, after its reset).
    void reset(Kick kick);
    // Sends class/command with `data` and waits (1 s at most) for the
    // device's ack: EIO when it answers an error, ETIMEDOUT when it does
    // not answer.
    [[nodiscard]] Result<void> command(std::uint8_t cls, std::uint8_t cmd,
                                       std::span<const std::uint8_t> data);

private:
    static constexpr std::uint32_t kCmdBytes = 64;  // class, command, data (<= 56), ack at 63
    DmaBlock mem_;
    Vring ring_;
    std::uint8_t* buf_ = nullptr;
    std::uint64_t buf_iova_ = 0;
    Kick kick_;
    std::uint16_t avail_idx_ = 0;
    std::uint16_t last_used_ = 0;
};

class VirtioPort final : public ethdev::PortOps {
public:
    VirtioPort(pci::PciDevice& dev, PciTransport transport, DeviceConfig cfg);
    ~VirtioPort() override;
    VirtioPort(const VirtioPort&) = delete;
    VirtioPort& operator=(const VirtioPort&) = delete;

    // The id ethdev gave the port (attach), stamped on received mbufs.
    void set_port_id(std::uint16_t id) { port_id_ = id; }
    // The features the device took at the last start (probe's before).
    [[nodiscard]] std::uint64_t features() const { return features_; }

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

private:
    static constexpr unsigned kConfigVector = 0;  // rx queue q: 1 + q
    [[nodiscard]] bool has(unsigned bit) const { return (features_ & feature(bit)) != 0; }
    [[nodiscard]] std::uint16_t pairs() const;
    [[nodiscard]] std::uint32_t max_frame() const { return mtu_ + 14; }
    [[nodiscard]] Result<void> check_frame_room(const mbuf::MbufPool& pool) const;
    [[nodiscard]] Result<void> start_device();
    [[nodiscard]] Result<void> apply_rx_mode();
    [[nodiscard]] Result<void> check_intr(bool configured, const char* what) const;
    [[nodiscard]] std::string who() const;

    pci::PciDevice* dev_;
    DeviceConfig cfg_;
    std::uint64_t features_;
    ethdev::MacAddr mac_;
    std::uint16_t port_id_ = 0xffff;
    ethdev::PortConf conf_;
    std::uint16_t nb_rxq_ = 0, nb_txq_ = 0;
    std::uint32_t mtu_ = 1500;
    bool promisc_ = false;
    bool allmulti_ = false;
    bool started_ = false;
    std::uint32_t msix_vectors_ = 0;
    std::optional<pci::IrqSet> irqs_;
    // Counters of released queues are lost with them, as in em and igb.
    // Declared after the transport: destroyed before it, and the device
    // reset (the destructor) comes first.
    PciTransport t_;
    std::unique_ptr<CtrlQueue> ctrl_;
    std::vector<std::unique_ptr<RxQueue>> rxq_;
    std::vector<std::unique_ptr<TxQueue>> txq_;
};

}  // namespace vfiokit::virtio::net
