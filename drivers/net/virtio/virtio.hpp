// The virtio-net poll-mode driver: modern (virtio 1.x) virtio-net PCI
// devices, QEMU's virtio-net-pci (1af4:1041) in the lab; DPDK's
// net_virtio (doc/virtio.md, "virtio-net PMD").
//
//   // linked with virtio_pmd_dep: registered, so Eal::init probes them
//   auto eal = eal::Eal::init(argc, argv);        // app -a 0000:00:06.0
//   auto port = ethdev::find(*PciAddress::parse("0000:00:06.0"));
//   ... configure, rx_queue_setup, tx_queue_setup, start, rx_burst / tx_burst
//
// Probe finds the transport's capabilities (PciTransport::open: the
// common, notify, ISR and device windows, their BARs mapped, bus mastering
// on), negotiates once to read the device configuration (MAC, status,
// queue pairs, MTU), resets the device and attaches a VirtioPort
// (port.hpp). The device runs only while the port is started. A
// transitional device (1af4:1000) is taken when it shows the modern
// capabilities; one in legacy mode is refused, naming QEMU's
// disable-legacy=on.
//
// Every VFIO mode works, no-IOMMU included: the rings and buffers are EAL
// memory and mbufs whose IOVAs the device is given, physical addresses in
// no-IOMMU mode (where a device normally offers no ACCESS_PLATFORM).
//
// Ownership: a VirtioDevice keeps a plain pointer identifying its port's
// ops, which ethdev owns; the port keeps a reference to the PciDevice the
// bus made (which outlives it). Thread-safety: probe and remove run on the
// bus's thread; the port follows ethdev's rules.
#pragma once

#include <cstdint>
#include <memory>

#include "port.hpp"
#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/driver.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::virtio::net {

inline constexpr std::uint16_t kVendorVirtio = 0x1af4;
inline constexpr std::uint16_t kDeviceModernNet = 0x1041;      // 0x1040 + device type 1
inline constexpr std::uint16_t kDeviceTransitionalNet = 0x1000;

class VirtioDevice final {
public:
    // Probe: see the file comment. On failure nothing stays attached or
    // mapped, the device is reset and bus mastering is off.
    [[nodiscard]] static Result<std::unique_ptr<VirtioDevice>> open(pci::PciDevice& dev);
    // Detaches the port (ethdev stops it and frees its queues), unless the
    // application closed it already.
    ~VirtioDevice();
    VirtioDevice(const VirtioDevice&) = delete;
    VirtioDevice& operator=(const VirtioDevice&) = delete;

    [[nodiscard]] std::uint16_t port_id() const { return port_; }
    // What probe read and negotiated.
    [[nodiscard]] const DeviceConfig& config() const { return cfg_; }
    // The features the device took at the port's last start (probe's
    // before the first).
    [[nodiscard]] std::uint64_t features() const { return port_ops_->features(); }

private:
    VirtioDevice(VirtioPort* ops, std::uint16_t port, DeviceConfig cfg)
        : port_ops_(ops), port_(port), cfg_(cfg) {}
    VirtioPort* port_ops_;
    std::uint16_t port_;
    DeviceConfig cfg_;
};

class VirtioDriver final : public pci::DriverFor<VirtioDevice> {
public:
    VirtioDriver();
    [[nodiscard]] Result<std::unique_ptr<VirtioDevice>> probe(pci::PciDevice& dev,
                                                              const pci::DriverArgs& args) override;
};

// The registered driver (register.cpp, in programs linked with
// virtio_pmd_dep): the one Eal::init probes virtio-net devices with.
[[nodiscard]] VirtioDriver& driver();

}  // namespace vfiokit::virtio::net
