#include "vfiokit/eal/bus.hpp"

#include <algorithm>
#include <cerrno>

namespace vfiokit::eal {

namespace {

// Function-local: buses register from static initializers in other
// translation units, in an order nobody controls.
std::vector<Bus*>& registry() {
    static std::vector<Bus*> r;
    return r;
}

}  // namespace

std::span<Bus* const> buses() { return registry(); }

Result<std::unique_ptr<ProbedBus>> Bus::probe_secondary(const BusContext&) {
    return std::unique_ptr<ProbedBus>();
}

void register_bus(Bus& b) {
    auto& r = registry();
    if (std::find(r.begin(), r.end(), &b) == r.end())
        r.push_back(&b);
}

Result<void> ProbedBus::remove(PciAddress a) {
    return fail(ENODEV, "remove device " + a.str() + ": not on this bus");
}

Result<DeviceReport> ProbedBus::probe(const AllowedDevice& device, vfio::Container*, bool) {
    return fail(ENOTSUP, "probe device " + device.addr.str() + ": this bus probes only at init");
}

}  // namespace vfiokit::eal
