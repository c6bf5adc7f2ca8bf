#include "vfiokit/bus/pci/bus.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/vfio/probe.hpp"
#include "vfiokit/eal/log.hpp"

namespace vfiokit::pci {

namespace {

// Probe-time events of the PCI bus.
const log::Component kLog("pci");

bool contains(const std::vector<PciAddress>& v, PciAddress a) {
    return std::find(v.begin(), v.end(), a) != v.end();
}

// The first driver of the wanted class matching the ids (see DriverClass).
Driver* matching_driver(const std::vector<Driver*>& drivers, const DeviceIds& ids, bool vdpa) {
    for (Driver* d : drivers)
        if (d->matches(ids) && (d->info().cls == DriverClass::vdpa) == vdpa)
            return d;
    return nullptr;
}

// Whether -a BDF,vdpa=1 asks for a vDPA driver. The key is the bus's: it is
// taken out of `args`, which then holds only the driver's.
Result<bool> take_vdpa_arg(PciAddress a, std::vector<eal::DeviceArg>& args) {
    bool vdpa = false;
    for (auto it = args.begin(); it != args.end();) {
        if (it->key != "vdpa") {
            ++it;
            continue;
        }
        if (it->value != "0" && it->value != "1")
            return fail(Error(EINVAL, "-a " + a.str() + ",vdpa=" + it->value +
                                          ": give vdpa=1 (a vDPA driver) or vdpa=0"));
        vdpa = it->value == "1";
        it = args.erase(it);
    }
    return vdpa;
}

// Before the driver may start DMA, the container's IOVA policy learns what
// this device can address: it moves EAL memory under the mask, or fails
// naming the mask and the range that cannot move (Container::require_dma_mask).
Result<void> require_dma_mask(vfio::Device& dev, std::uint64_t mask) {
    return dev.container().require_dma_mask(mask, "device " + dev.address().str());
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

// The device request interrupt (VFIO_PCI_REQ_IRQ_INDEX): vfio-pci's
// request callback (vfio_pci_core_request) signals it when the kernel
// wants the device back, and vfio_unregister_group_dev repeats the request
// every 10 s until the device fd is closed. Without it the kernel only
// warns "No device request channel registered, blocked until released by
// user" and the unplug hangs. Every vfio-pci device offers one vector
// (vfio_pci_get_irq_count), independent of INTx/MSI/MSI-X; a backend that
// has none (vfio-user) leaves the device without a removal channel.
std::optional<IrqSet> enable_request(const PciDevice& pci) {
    auto info = pci.irq_info(IrqType::req);
    if (!info || info->count == 0 || !info->eventfd)
        return std::nullopt;
    auto set = pci.enable_irqs(IrqType::req, 1);
    if (!set) {
        kLog.warning("{}: no removal notification ({})", pci.address().str(), set.error().message());
        return std::nullopt;
    }
    return std::move(*set);
}

}  // namespace

Result<void> bind_to_vfio_pci(const sysfs::Root& root, const ScannedDevice& d) {
    const std::string dev = "/sys/bus/pci/devices/" + d.addr.str();
    auto hint = [&](Error e) {
        return fail(std::move(e.hint("as root: " + vfio::bind_hint(d.addr))));
    };
    // driver_override first, so that nothing but vfio-pci can take the
    // device between the unbind and the probe.
    if (auto r = root.write(dev + "/driver_override", "vfio-pci"); !r)
        return hint(std::move(r.error()).context("bind " + d.addr.str() + " to vfio-pci"));
    if (!d.driver.empty())
        if (auto r = root.write(dev + "/driver/unbind", d.addr.str()); !r)
            return hint(std::move(r.error())
                            .context("bind " + d.addr.str() + " to vfio-pci: unbind from " +
                                     d.driver));
    // A device read right after its "add" uevent may not be matchable yet:
    // pci_bus_add_device() (drivers/pci/bus.c) sets match_driver and
    // attaches drivers after device_add() sent the uevent, and until then
    // drivers_probe binds nothing. Ask again for up to 2 s (the override
    // makes the kernel's own attach pick vfio-pci meanwhile too).
    for (int i = 0; i < 100 && !vfio::bound_to_vfio_pci(root, d.addr); ++i) {
        if (i != 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (auto r = root.write("/sys/bus/pci/drivers_probe", d.addr.str()); !r)
            return hint(std::move(r.error()).context("bind " + d.addr.str() + " to vfio-pci"));
    }
    if (!vfio::bound_to_vfio_pci(root, d.addr)) {
        auto now = root.link_name(dev + "/driver");
        return hint(Error(ENODEV, "bind " + d.addr.str() + " to vfio-pci: the device is on " +
                                      (now ? "driver " + *now : std::string("no driver")) +
                                      " after drivers_probe")
                        .hint("is vfio-pci built in (CONFIG_VFIO_PCI)?"));
    }
    // The driver link appears before vfio-pci's probe has run (really_probe
    // in drivers/base/dd.c adds it first), so the kernel's own attach can
    // still be registering the VFIO device when the loop above ends. The
    // device's vfio-dev/ entry comes near the end of that registration
    // (__vfio_register_dev); the open paths cover the last few steps.
    for (int i = 0; i < 100 && root.list(dev + "/vfio-dev").empty(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return {};
}

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

const eal::AllowedDevice* Bus::allowed(PciAddress a) const {
    for (const auto& al : allow_)
        if (al.addr == a)
            return &al;
    return nullptr;
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
        const eal::AllowedDevice* al = allowed(d.addr);
        if (!allow_.empty() && al == nullptr)
            continue;
        if (find(d.addr))
            continue;  // probed by an earlier call
        std::vector<eal::DeviceArg> driver_args = al ? al->args : std::vector<eal::DeviceArg>{};
        auto vdpa = take_vdpa_arg(d.addr, driver_args);
        Driver* drv = matching_driver(drivers_, d.ids, vdpa && *vdpa);
        if (!drv && al == nullptr)
            continue;  // not ours to report: no driver wants it, nobody asked for it
        report.push_back(probe_scanned(d, al, nullptr));
    }
    return report;
}

Result<ProbeOutcome> Bus::probe(const eal::AllowedDevice& al, vfio::Container* into,
                                bool bind_vfio) {
    if (find(al.addr))
        return fail(Error(EEXIST, "probe " + al.addr.str() + ": already probed on this bus"));
    auto d = read_device(root_, al.addr);
    if (!d)
        return fail(std::move(d.error()).context("probe " + al.addr.str()));
    if (bind_vfio && !d->vfio_bound && !contains(block_, d->addr)) {
        if (auto b = bind_to_vfio_pci(root_, *d); !b)
            return fail(std::move(b.error()).context("probe " + al.addr.str()));
        d = read_device(root_, al.addr);
        if (!d)
            return fail(std::move(d.error()).context("probe " + al.addr.str()));
    }
    return probe_scanned(*d, &al, into);
}

ProbeOutcome Bus::probe_scanned(const ScannedDevice& d, const eal::AllowedDevice* al,
                                vfio::Container* into) {
    std::vector<eal::DeviceArg> driver_args = al ? al->args : std::vector<eal::DeviceArg>{};
    auto vdpa = take_vdpa_arg(d.addr, driver_args);
    Driver* drv = matching_driver(drivers_, d.ids, vdpa && *vdpa);
    ProbeOutcome out;
    out.addr = d.addr;
    out.requested = al != nullptr;
    auto failed = [&out](Error e) {
        out.reason = e.message();
        out.err = e.err();
        out.error = std::move(e);
    };
    if (!vdpa) {
        failed(std::move(vdpa.error()));
        return out;
    }
    if (!drv) {
        failed(Error(ENODEV, std::string("no ") + (*vdpa ? "vDPA " : "") +
                                 "driver linked in matches " + hex_digits(d.ids.vendor, 4) +
                                 ":" + hex_digits(d.ids.device, 4))
                   .hint(*vdpa ? "link a vDPA driver (vdpa_virtio) into the program, or drop "
                                 "vdpa=1"
                               : "link the device's driver into the program, or leave it "
                                 "out of -a"));
        return out;
    }
    out.driver = std::string(drv->name());
    if (contains(block_, d.addr)) {
        failed(Error(EPERM, "blocked (-b " + d.addr.str() + ")"));
        return out;
    }
    if (!d.vfio_bound) {
        failed(Error(ENODEV, not_bound_reason(root_, d)));
        return out;
    }
    // Bad arguments fail before anything is opened.
    auto args = DriverArgs::parse(drv->info(), d.addr, driver_args);
    if (!args) {
        failed(std::move(args.error()));
        return out;
    }
    auto mask = drv->dma_mask(*args);
    if (!mask) {
        failed(std::move(mask.error()));
        return out;
    }

    // vfio-pci takes the token with the device name (vfio.hpp).
    std::string spec = d.addr.str();
    if (al && !al->vf_token.empty())
        spec += " vf_token=" + al->vf_token;
    // A vDPA device gets a container of its own (DriverClass::vdpa); a
    // device probed into a container the caller gave goes there.
    vfio::Container* own = nullptr;
    if (drv->info().cls == DriverClass::vdpa && into == nullptr) {
        auto c = vfio_->create_container();
        if (!c) {
            failed(std::move(c.error()).context("a container for vDPA device " +
                                                d.addr.str()));
            return out;
        }
        own = *c;
    }
    auto drop_own = [&](Error& e) {
        if (own != nullptr)
            if (auto r = vfio_->destroy_container(*own); !r)
                e.context("destroying its container failed too (" + r.error().message() + ")");
    };
    vfio::Container& target = own ? *own : into ? *into : vfio_->default_container();
    auto assigned = vfio_->assign_device(target, spec);
    if (!assigned) {
        Error e = std::move(assigned.error());
        drop_own(e);
        failed(std::move(e));
        return out;
    }
    vfio::Device* vdev = *assigned;
    auto release = [&](Error e) {
        if (auto r = vfio_->release_device(*vdev); !r)
            e.context("releasing the device failed too (" + r.error().message() + ")");
        drop_own(e);
        failed(std::move(e));
    };
    if (auto ok = require_dma_mask(*vdev, *mask); !ok) {
        release(std::move(ok.error()));
        return out;
    }
    auto pci = std::make_unique<PciDevice>(*vdev);
    // Before the driver's probe, so that a removal requested while it
    // runs is not missed.
    std::optional<IrqSet> request = enable_request(*pci);
    auto instance = drv->probe_instance(*pci, *args);
    if (!instance) {
        // The instance never existed; PciDevice holds nothing the
        // kernel cares about, so only the VFIO release is left.
        request.reset();
        pci.reset();
        release(std::move(instance.error()).context("probe by driver " + out.driver));
        return out;
    }
    out.probed = true;
    bound_.push_back(BoundDevice{drv, vdev, own, std::move(pci), std::move(*instance), *mask,
                                 std::move(request), 0});
    return out;
}

Result<void> Bus::remove(PciAddress a) {
    auto it = std::find_if(bound_.begin(), bound_.end(),
                           [&](const BoundDevice& b) { return b.pci->address() == a; });
    if (it == bound_.end())
        return fail(Error(ENODEV, "remove device " + a.str() + ": not probed on this bus"));
    // The instance first: it holds Bars and IrqSets that use the device fd.
    // Then the request interrupt and the PciDevice, then the fd itself
    // (vfio.release_device): closing it is what lets an unplug complete.
    it->instance.reset();
    it->request.reset();
    it->pci.reset();
    vfio::Device* vdev = it->vfio_device;
    vfio::Container* own = it->own_container;
    bound_.erase(it);
    if (auto r = vfio_->release_device(*vdev); !r)
        return fail(std::move(r.error()).context("remove device " + a.str()));
    // Its own container (vDPA) goes with it, once empty.
    if (own != nullptr)
        if (auto r = vfio_->destroy_container(*own); !r)
            return fail(std::move(r.error()).context("remove device " + a.str()));
    return {};
}

std::vector<Bus::RemovalRequest> Bus::removal_requests() {
    std::vector<RemovalRequest> out;
    for (BoundDevice& b : bound_) {
        if (b.request) {
            // A read error would mean a broken eventfd: report nothing new.
            if (auto n = b.request->vector(0).poll(); n)
                b.request_signals += *n;
        }
        if (b.request_signals != 0)
            out.push_back({b.pci->address(), std::string(b.driver->name()), b.request_signals});
    }
    return out;
}

}  // namespace vfiokit::pci
