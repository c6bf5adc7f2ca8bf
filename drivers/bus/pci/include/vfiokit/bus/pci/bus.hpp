/// \file
/// The PCI bus: drivers declare the ids they match (driver.hpp); the bus
/// scans sysfs, applies the allow/block lists (-a/-b), assigns each matching
/// device bound to vfio-pci (or a variant, vfio::bound_to_vfio_pci) to the
/// default container (a vDPA driver's device, -a BDF,vdpa=1: to a container
/// of its own, see DriverClass) with its vf_token, checks the device's -a arguments
/// against the driver's parameters and calls the driver's probe. A matching
/// device still on a kernel driver is not probed; the report says how to bind
/// it. remove() (and the Bus destructor) destroys the driver's instance
/// before releasing the device.
///
/// Programs normally do not make a Bus: Eal::init does, with every driver
/// linked in (registered_drivers()) and the -a/-b options (eal_bus.cpp).
/// Tests and tools can run one of their own:
///
/// \code
///   pci::Bus bus(*vfio);
///   bus.register_driver(drv);
///   bus.allow(*eal::parse_allowed_device("0000:00:03.0,dma_mask=0xffffffff"));
///   auto report = bus.probe_all();
///   MyDevice* d = drv.find(addr);
/// \endcode
///
/// Thread-safety: none; the control path runs on one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/driver.hpp"
#include "vfiokit/bus/pci/scan.hpp"
#include "vfiokit/eal/options.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::pci {

/// What happened to one device probe_all() looked at.
struct ProbeOutcome {
    PciAddress addr;
    std::string driver;   ///< the matching driver; empty when none matched
    bool probed = false;
    bool requested = false;  ///< on the allow-list (-a)
    int err = 0;          ///< not probed: error().err()
    std::optional<Error> error;  ///< not probed: the failure, as an Error (reason is its message)
    std::string reason;   ///< why not probed (no driver, not bound, blocked, bad
                          ///< arguments, assign or probe error)
};

/// Gives a device to vfio-pci the way the kernel documents it
/// (Documentation/driver-api/vfio.rst, "driver_override"): driver_override
/// set to vfio-pci, unbound from its driver if it has one, then
/// drivers_probe. The override stays, so a rescan or re-add of the same
/// device never goes back to its kernel driver. Needs root; fails naming the
/// file the kernel refused.
[[nodiscard]] Result<void> bind_to_vfio_pci(const sysfs::Root& root, const ScannedDevice& d);

/// The PCI bus of one VFIO front end: its drivers, allow/block lists and
/// probed devices (see the file's description).
class Bus {
public:
    explicit Bus(vfio::Vfio& vfio, sysfs::Root root = sysfs::Root());
    ~Bus();
    Bus(const Bus&) = delete;
    Bus& operator=(const Bus&) = delete;

    void register_driver(Driver& d);  ///< not owned; must outlive the Bus
    /// Only these devices (DPDK's -a), with their driver arguments and VF
    /// token; empty = all.
    void allow(eal::AllowedDevice d) { allow_.push_back(std::move(d)); }
    void allow(PciAddress a) { allow_.push_back({a, {}, {}}); }
    /// Never these (DPDK's -b).
    void block(PciAddress a) { block_.push_back(a); }

    /// Probes every matching device not probed yet. Fails only when the bus
    /// cannot be scanned; per-device outcomes are in the report. An allowed
    /// device no driver matches is reported too (driver empty).
    [[nodiscard]] Result<std::vector<ProbeOutcome>> probe_all();
    /// Probes one device (DPDK's rte_dev_probe), whether or not it is on the
    /// allow-list: a device added after probe_all (hotplug). `into`: the
    /// container it is assigned to (nullptr: the default one, or a vDPA
    /// driver's own). `bind_vfio`: a device on another driver (or none) is
    /// first given to vfio-pci (bind_to_vfio_pci). Fails (EEXIST) when the
    /// device is probed already, or when it cannot be read or bound; a
    /// device the driver refuses is an outcome with probed false, as in
    /// probe_all.
    [[nodiscard]] Result<ProbeOutcome> probe(const eal::AllowedDevice& device,
                                             vfio::Container* into = nullptr,
                                             bool bind_vfio = false);
    /// Removes one device: driver instance first (it stops the device and
    /// gives back its queues, mbufs, BAR mappings and interrupts), then the
    /// request interrupt, then the VFIO release (device fd; the group fd or
    /// cdev binding with the group's last device).
    [[nodiscard]] Result<void> remove(PciAddress a);

    /// Hot-unplug: devices whose kernel driver (vfio-pci) asked for them
    /// back, through the request interrupt the bus enables on every device
    /// it probes. vfio-pci signals it when the device is being unplugged or
    /// unbound, then waits (re-signalling every 10 s) until the device fd is
    /// closed: the answer is to stop using the device and remove() it.
    /// Polls each device's eventfd without blocking; a device stays listed
    /// (with the signals counted so far) until it is removed.
    struct RemovalRequest {
        PciAddress addr;
        std::string driver;
        std::uint64_t signals = 0;  ///< 1: the kernel's first request
    };
    [[nodiscard]] std::vector<RemovalRequest> removal_requests();

    [[nodiscard]] const std::vector<BoundDevice>& devices() const { return bound_; }
    [[nodiscard]] BoundDevice* find(PciAddress a);

private:
    vfio::Vfio* vfio_;
    sysfs::Root root_;
    std::vector<Driver*> drivers_;
    [[nodiscard]] const eal::AllowedDevice* allowed(PciAddress a) const;
    [[nodiscard]] ProbeOutcome probe_scanned(const ScannedDevice& d, const eal::AllowedDevice* al,
                                             vfio::Container* into);
    std::vector<eal::AllowedDevice> allow_;
    std::vector<PciAddress> block_;
    std::vector<BoundDevice> bound_;
};

}  // namespace vfiokit::pci
