#include "vfiokit/bus/pci/bus.hpp"

#include <algorithm>
#include <cerrno>

#include "vfiokit/eal/vfio/probe.hpp"

namespace vfiokit::pci {

namespace {

bool contains(const std::vector<PciAddress>& v, PciAddress a) {
    return std::find(v.begin(), v.end(), a) != v.end();
}

Driver* matching_driver(const std::vector<Driver*>& drivers, const DeviceIds& ids) {
    for (Driver* d : drivers)
        for (const IdMatch& m : d->ids())
            if (m.matches(ids))
                return d;
    return nullptr;
}

// Why a matching device on another driver (or none) is not probed, and the
// commands that would change that. probe_device() knows the group too, so a
// device whose group-mates block VFIO gets that said as well.
std::string not_bound_reason(const sysfs::Root& root, const ScannedDevice& d) {
    std::string r = d.driver.empty() ? "not bound to any driver"
                                     : "bound to kernel driver " + d.driver;
    r += ", not vfio-pci; ";
    auto support = vfio::probe_device(root, vfio::probe_kernel(root), d.addr);
    r += support && !support->action.empty() ? support->action : vfio::bind_hint(d.addr);
    return r;
}

}  // namespace

Bus::Bus(vfio::Vfio& vfio, sysfs::Root root) : vfio_(&vfio), root_(std::move(root)) {}

Bus::~Bus() {
    // Newest first: a device probed later may rely on one probed earlier
    // (a group-mate, say), never the reverse.
    while (!bound_.empty())
        (void)remove(bound_.back().pci->address());
}

void Bus::register_driver(Driver& d) {
    if (std::find(drivers_.begin(), drivers_.end(), &d) == drivers_.end())
        drivers_.push_back(&d);
}

BoundDevice* Bus::find(PciAddress a) {
    for (auto& b : bound_)
        if (b.pci->address() == a)
            return &b;
    return nullptr;
}

Result<std::vector<ProbeOutcome>> Bus::probe_all() {
    auto devices = scan(root_);
    if (!devices)
        return fail(std::move(devices.error()).context("PCI bus scan"));

    std::vector<ProbeOutcome> report;
    for (const ScannedDevice& d : *devices) {
        if (!allow_.empty() && !contains(allow_, d.addr))
            continue;
        if (find(d.addr))
            continue;  // probed by an earlier call
        Driver* drv = matching_driver(drivers_, d.ids);
        if (!drv)
            continue;  // not ours to report: no driver wants it

        ProbeOutcome& out = report.emplace_back();
        out.addr = d.addr;
        out.driver = std::string(drv->name());
        if (contains(block_, d.addr)) {
            out.reason = "blocked (-b " + d.addr.str() + ")";
            continue;
        }
        if (d.driver != "vfio-pci") {
            out.reason = not_bound_reason(root_, d);
            continue;
        }

        auto assigned = vfio_->assign_device(vfio_->default_container(), d.addr.str());
        if (!assigned) {
            out.reason = assigned.error().message();
            continue;
        }
        vfio::Device* vdev = *assigned;
        auto pci = std::make_unique<PciDevice>(*vdev);
        auto instance = drv->probe(*pci);
        if (!instance) {
            out.reason = "probe by driver " + out.driver + " failed: " + instance.error().message();
            // The instance never existed; PciDevice holds nothing the
            // kernel cares about, so only the VFIO release is left.
            pci.reset();
            if (auto r = vfio_->release_device(*vdev); !r)
                out.reason += "; releasing the device failed too: " + r.error().message();
            continue;
        }
        out.probed = true;
        bound_.push_back(BoundDevice{drv, vdev, std::move(pci), std::move(*instance)});
    }
    return report;
}

Result<void> Bus::remove(PciAddress a) {
    auto it = std::find_if(bound_.begin(), bound_.end(),
                           [&](const BoundDevice& b) { return b.pci->address() == a; });
    if (it == bound_.end())
        return fail(Error(ENODEV, "remove device " + a.str() + ": not probed on this bus"));
    // The instance first: it holds Bars and IrqSets that use the device fd.
    // Then the PciDevice, then the fd itself (vfio.release_device).
    it->instance.reset();
    it->pci.reset();
    vfio::Device* vdev = it->vfio_device;
    bound_.erase(it);
    if (auto r = vfio_->release_device(*vdev); !r)
        return fail(std::move(r.error()).context("remove device " + a.str()));
    return {};
}

}  // namespace vfiokit::pci
