// The PCI bus: drivers declare the ids they match; the bus scans sysfs,
// applies the allow/block lists (-a/-b), assigns each matching device bound
// to vfio-pci to the default container and calls the driver's probe. A
// matching device still on a kernel driver is not probed; the report says
// how to bind it. remove() (and the Bus destructor) destroys the driver's
// instance before releasing the device.
//
//   struct MyDriver : pci::Driver { ... };
//   MyDriver drv;
//   pci::Bus bus(*vfio);
//   bus.register_driver(drv);
//   auto report = bus.probe_all();
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/bus/pci/device.hpp"
#include "vfiokit/bus/pci/scan.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::pci {

inline constexpr std::uint16_t kAnyId = 0xffff;

struct IdMatch {
    std::uint16_t vendor = kAnyId;
    std::uint16_t device = kAnyId;
    [[nodiscard]] bool matches(const DeviceIds& ids) const {
        return (vendor == kAnyId || vendor == ids.vendor) && (device == kAnyId || device == ids.device);
    }
};

// What a driver keeps per device it drives; destroying it is "remove".
class DriverInstance {
public:
    virtual ~DriverInstance() = default;
};

class Driver {
public:
    virtual ~Driver() = default;
    [[nodiscard]] virtual std::string_view name() const = 0;
    [[nodiscard]] virtual std::vector<IdMatch> ids() const = 0;
    // Called with the device assigned and its PciDevice ready. The device
    // must outlive nothing the instance keeps beyond the instance itself.
    [[nodiscard]] virtual Result<std::unique_ptr<DriverInstance>> probe(PciDevice& dev) = 0;
};

struct ProbeOutcome {
    PciAddress addr;
    std::string driver;   // the matching driver
    bool probed = false;
    std::string reason;   // why not probed (not bound, blocked, probe error)
};

struct BoundDevice {
    Driver* driver = nullptr;
    vfio::Device* vfio_device = nullptr;
    std::unique_ptr<PciDevice> pci;
    std::unique_ptr<DriverInstance> instance;  // destroyed before the device is released
};

class Bus {
public:
    explicit Bus(vfio::Vfio& vfio, sysfs::Root root = sysfs::Root());
    ~Bus();
    Bus(const Bus&) = delete;
    Bus& operator=(const Bus&) = delete;

    void register_driver(Driver& d);  // not owned; must outlive the Bus
    // Only these devices (DPDK's -a); empty = all.
    void allow(PciAddress a) { allow_.push_back(a); }
    // Never these (DPDK's -b).
    void block(PciAddress a) { block_.push_back(a); }

    // Probes every matching device not probed yet. Fails only when the bus
    // cannot be scanned; per-device outcomes are in the report.
    [[nodiscard]] Result<std::vector<ProbeOutcome>> probe_all();
    // Removes one device: driver instance first, then the VFIO release.
    [[nodiscard]] Result<void> remove(PciAddress a);

    [[nodiscard]] const std::vector<BoundDevice>& devices() const { return bound_; }
    [[nodiscard]] BoundDevice* find(PciAddress a);

private:
    vfio::Vfio* vfio_;
    sysfs::Root root_;
    std::vector<Driver*> drivers_;
    std::vector<PciAddress> allow_, block_;
    std::vector<BoundDevice> bound_;
};

}  // namespace vfiokit::pci
