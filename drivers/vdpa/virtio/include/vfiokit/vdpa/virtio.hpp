/// \file
/// The vDPA driver for virtio-net PCI devices (driver "vdpa_virtio", class
/// vdpa): serves a vhost-user front end with a virtio device that moves the
/// packets itself. doc/vdpa.md has the whole story.
///
/// \verbatim
///   -a 0000:00:06.0,vdpa=1          the bus assigns the device to a
///                                   container of its own and probes this
///                                   driver (pci::DriverClass::vdpa)
///   auto* d = vdpa::vdpa_virtio_driver().find(addr);
///   auto srv = vhost_user::Server::listen("/run/vdpa0", d->device(), d->config());
///   for (;;) (void)srv->poll(-1);   // the device now DMAs to the front end
/// \endverbatim
///
/// What the driver needs of the device: virtio 1.x (modern) net, VERSION_1
/// and ACCESS_PLATFORM offered (QEMU: virtio-net-pci,disable-legacy=on,
/// iommu_platform=on; without ACCESS_PLATFORM the device would bypass the
/// IOMMU), two queues and two MSI-X vectors. Of VFIO: a translating mode
/// (cdev, group, compat); no-IOMMU mode is refused, since the device must
/// reach the front end's guest-physical addresses through the IOMMU.
///
/// Threads: the vhost_user::Device is driven by the thread that polls its
/// server; stats() and describe() may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/driver.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/vhost_user/device.hpp"
#include "vfiokit/vhost_user/session.hpp"

namespace vfiokit::vdpa {

/// What a vDPA device has done, from the control path alone (the driver
/// sees no packet): ring progress is the used index the device writes into
/// the front end's memory, read between kicks.
struct EngineStats {
    std::uint64_t rx_used = 0;     ///< used entries of the receive rings (even vrings)
    std::uint64_t tx_used = 0;     ///< used entries of the transmit rings (odd vrings)
    std::uint64_t kicks = 0;       ///< kicks relayed to the device by the relay thread
    bool kernel_kicks = false;     ///< the kernel rings the doorbell instead (VFIO ioeventfd)
    std::uint64_t relay_wakeups = 0;
    std::uint64_t starts = 0;      ///< device started (DRIVER_OK)
    std::uint64_t stops = 0;       ///< device reset
    std::uint64_t sessions = 0;    ///< front ends that came and went
    std::uint64_t maps = 0, unmaps = 0;  ///< IOMMU mappings made and removed
    std::uint64_t mapped_bytes = 0;      ///< now
    bool running = false;
};

class Engine;
class PciHw;
class ContainerDma;

/// The driver's instance for one device.
class VirtioVdpa {
public:
    /// Checks mode, device and features (errors say which and what to do),
    /// resets the device and readies the engine. `dev` must outlive it.
    [[nodiscard]] static Result<std::unique_ptr<VirtioVdpa>> probe(pci::PciDevice& dev);
    ~VirtioVdpa();
    VirtioVdpa(const VirtioVdpa&) = delete;
    VirtioVdpa& operator=(const VirtioVdpa&) = delete;

    /// The vhost-user device to serve, and the session configuration it
    /// needs (features offered, vrings).
    [[nodiscard]] vhost_user::Device& device();
    [[nodiscard]] vhost_user::Config config() const;
    [[nodiscard]] EngineStats stats() const;
    [[nodiscard]] PciAddress address() const { return addr_; }
    /// "0000:00:06.0: virtio-net 52:54:00:12:34:58, 2 queues of 256, container 2
    ///  (cdev), IOVA 48 bits"
    [[nodiscard]] const std::string& describe() const { return describe_; }

private:
    VirtioVdpa() = default;
    PciAddress addr_{};
    std::string describe_;
    // Member order: the engine (it stops the device and unmaps) before
    // what it drives.
    std::unique_ptr<PciHw> hw_;
    std::unique_ptr<ContainerDma> dma_;
    std::unique_ptr<Engine> engine_;
};

/// The registered driver: its instances by device address.
[[nodiscard]] pci::DriverFor<VirtioVdpa>& vdpa_virtio_driver();

}  // namespace vfiokit::vdpa
