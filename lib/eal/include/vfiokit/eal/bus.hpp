/// \file
/// The EAL's view of buses (DPDK's rte_bus): a bus scans for devices and
/// probes its drivers on them. The EAL knows no bus by name and depends on
/// none: a bus library (drivers/bus/pci) registers itself with a static
/// BusRegistration, so linking it into a program is what makes Eal::init
/// probe it. Drivers register with their bus the same way.
///
/// Eal::init, in a primary (or single) process, after memory is up:
///   for each registered bus: bus.probe(context) -> a ProbedBus it keeps
/// and in a secondary, once the primary's memory and VFIO state are in:
///   for each registered bus: bus.probe_secondary(context)
/// and destroys those before memory and VFIO (drivers go before the devices
/// they drive, devices before their container).
///
/// Which devices: -a lists them (only those are probed, each with its
/// KEY=VALUE driver arguments and vf_token); without -a every device a
/// driver matches, except -b's. A device named with -a that cannot be probed
/// fails Eal::init with the reason; without -a, devices that cannot be
/// probed (on a kernel driver, say) are only reported.
///
/// Thread-safety: registration happens during static initialization (one
/// thread); buses() is read-only after main() starts. probe() runs on the
/// thread that calls Eal::init.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/options.hpp"
#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/eal/sysfs.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::eal {

/// What happened to one device a bus looked at.
struct DeviceReport {
    std::string bus;       ///< "pci"
    PciAddress addr;
    std::string driver;    ///< the matching driver; empty when none matched
    bool probed = false;
    bool requested = false;  ///< named with -a
    std::string reason;    ///< why not probed
};

/// A device whose kernel driver asked for it back (hot-unplug, unbind):
/// see Eal::removal_requests.
struct RemovalRequest {
    std::string bus;       ///< "pci"
    PciAddress addr;
    std::string driver;    ///< the driver that has it
    std::uint64_t signals = 0;  ///< requests seen so far (the kernel repeats them)
};

/// What a bus keeps for one EAL: the devices it probed and their drivers'
/// instances. Destroying it removes them (driver first, then the device).
class ProbedBus {
public:
    virtual ~ProbedBus() = default;
    [[nodiscard]] virtual const std::vector<DeviceReport>& report() const = 0;
    /// Its devices whose removal the kernel requested, until removed. A bus
    /// without removal notification has none.
    [[nodiscard]] virtual std::vector<RemovalRequest> removal_requests() { return {}; }
    /// Removes one of its devices (the driver's remove, then the release);
    /// ENODEV when the device is not this bus's. In a secondary: the driver's
    /// secondary instance, then this process's copies of the device's fds.
    [[nodiscard]] virtual Result<void> remove(PciAddress a);
    /// Probes one more device (Eal::probe_device): `into` is the container
    /// (nullptr: the bus's choice), `bind_vfio` gives it to vfio-pci first
    /// when it is on another driver. The report of a device the bus looked
    /// at, probed or not (then with the reason); fails when the device is
    /// not this bus's (ENODEV), is probed already (EEXIST), or the bus
    /// cannot probe after init (ENOTSUP: a secondary's).
    [[nodiscard]] virtual Result<DeviceReport> probe(const AllowedDevice& device,
                                                     vfio::Container* into, bool bind_vfio);
    /// Whether it holds the device now.
    [[nodiscard]] virtual bool has(PciAddress a) const = 0;
};

/// What Eal::init gives a bus to probe with: the VFIO front end, the options and the sysfs root.
struct BusContext {
    vfio::Vfio& vfio;
    const Options& options;  ///< allow (with driver args, vf_token), block
    sysfs::Root root;
};

/// A bus (PCI): scans its devices and probes the registered drivers on those the options select.
/// Registered with register_bus() or a BusRegistration.
class Bus {
public:
    virtual ~Bus() = default;
    [[nodiscard]] virtual std::string_view name() const = 0;
    /// Scans and probes what the options select. Fails when the bus cannot
    /// be scanned or a device named with -a cannot be probed (nothing stays
    /// probed then); the rest goes into the report.
    [[nodiscard]] virtual Result<std::unique_ptr<ProbedBus>> probe(const BusContext& ctx) = 0;
    /// In a secondary process: lets the drivers attach to the devices the
    /// primary probed (ctx.vfio holds the primary's devices, received over
    /// the channel), as DPDK's secondaries probe. The same -a/-b rules: a
    /// device named with -a that cannot be attached fails Eal::init. The
    /// default has nothing to attach (nullptr).
    [[nodiscard]] virtual Result<std::unique_ptr<ProbedBus>> probe_secondary(
        const BusContext& ctx);
};

/// The registered buses, in registration order. Not owned: a registered bus
/// is a static object of its library and lives as long as the program.
[[nodiscard]] std::span<Bus* const> buses();
/// Adds `b` to buses() (not owned; a static object of its library).
void register_bus(Bus& b);

/// `static BusRegistration reg(my_bus);` in the bus library.
struct BusRegistration {
    explicit BusRegistration(Bus& b) { register_bus(b); }
};

}  // namespace vfiokit::eal
