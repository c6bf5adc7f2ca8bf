// The VFIO front end: mode selection, containers, device assignment.
#include "vfiokit/eal/vfio/vfio.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "../process.hpp"
#include "backend.hpp"
#include "modes.hpp"
#include "vfiokit/eal/uuid.hpp"

namespace vfiokit::vfio {

namespace {

// The nodes through which a process can hold the device of `req`: its
// group (group-style and no-IOMMU), and its cdev.
std::vector<std::string> device_nodes(const DeviceRequest& req) {
    std::vector<std::string> nodes;
    if (req.group) {
        nodes.push_back("/dev/vfio/" + std::to_string(*req.group));
        nodes.push_back("/dev/vfio/noiommu-" + std::to_string(*req.group));
    }
    if (req.vfio_dev) {
        nodes.push_back("/dev/vfio/devices/" + *req.vfio_dev);
        nodes.push_back("/dev/vfio/devices/noiommu-" + *req.vfio_dev);
    }
    return nodes;
}

}  // namespace

// --- Device -------------------------------------------------------------------

Device::Device(PciAddress a, std::optional<unsigned> g, Container* c, std::unique_ptr<BackendDevice> b)
    : addr_(a), group_(g), container_(c), backend_(b.get()),
      handle_(std::make_shared<DeviceHandle>(a, std::move(b))) {}

// Holders of the handle (Bars, IrqSets) may outlive the Device; from here
// on they get ENODEV, and nothing they do reaches the closed device fd,
// whose number the process may reuse.
Device::~Device() { handle_->release(); }

// --- Vfio ------------------------------------------------------------------------

Result<std::unique_ptr<Vfio>> Vfio::create(const Options& o) {
    std::unique_ptr<Vfio> v(new Vfio());
    v->options_ = o;
    v->root_ = sysfs::Root(o.sysroot);
    auto choice = choose_mode(v->root_, o);
    if (!choice)
        return fail(std::move(choice.error()));
    v->mode_ = choice->mode;
    v->mode_reason_ = choice->reason;
    const detail::ModeRow& row = detail::mode_row(v->mode_);
    if (row.process_iommufd) {
        auto fd = open_fd(v->root_.path("/dev/iommu"), O_RDWR);
        if (!fd) {
            Error e = std::move(fd.error());
            if (e.err() == EACCES || e.err() == EPERM)
                e.hint("run as root, or give this user read/write access to /dev/iommu");
            else if (e.err() == ENOENT)
                e.hint("build the kernel with CONFIG_IOMMUFD");
            return fail(std::move(e.context("VFIO mode " + std::string(row.name))));
        }
        v->iommufd_ = std::move(*fd);
    }
    auto b = v->make_backend();
    if (!b)
        return fail(std::move(b.error()).context("default container"));
    v->containers_.push_back(std::unique_ptr<Container>(new Container(v.get(), std::move(*b), true)));
    return v;
}

Vfio::~Vfio() {
    // Containers (and their devices) before the shared iommufd.
    containers_.clear();
}

Result<std::unique_ptr<ContainerBackend>> Vfio::make_backend() {
    BackendConfig c;
    c.type1 = options_.type1;
    c.iommufd = iommufd_.get();
    return detail::mode_row(mode_).make(c);
}

Result<Container*> Vfio::create_container() {
    std::lock_guard g(control_);
    auto b = make_backend();
    if (!b)
        return fail(std::move(b.error()).context("new container"));
    auto c = std::unique_ptr<Container>(new Container(this, std::move(*b), false));
    c->id_ = next_container_id_++;
    containers_.push_back(std::move(c));
    return containers_.back().get();
}

Result<void> Vfio::destroy_container(Container& c) {
    std::lock_guard g(control_);
    if (c.is_default())
        return fail(Error(EINVAL, "destroy the default container")
                        .hint("the default container lives as long as the VFIO subsystem"));
    auto it = std::find_if(containers_.begin(), containers_.end(),
                           [&](const auto& p) { return p.get() == &c; });
    if (it == containers_.end())
        return fail(EINVAL, "destroy container: not one of this process's containers");
    containers_.erase(it);
    return {};
}

void Vfio::set_dma_reporter(DmaReporter r) {
    std::lock_guard g(control_);
    dma_reporter_ = std::move(r);
}

Result<void> Vfio::unmap_own() {
    std::lock_guard g(control_);
    Result<void> first;
    for (const auto& c : containers_)
        if (c->imported())
            if (auto ok = c->unmap_own(); !ok && first)
                first = fail(std::move(ok.error()));
    return first;
}

Device* Vfio::find_device(PciAddress a) const {
    std::lock_guard g(control_);
    for (const auto& c : containers_)
        for (const auto& d : c->devices_)
            if (d->address() == a)
                return d.get();
    return nullptr;
}

namespace {

struct Spec {
    PciAddress addr;
    std::string vf_token;
};

Result<Spec> parse_spec(std::string_view spec) {
    auto bad = [&](std::string why) {
        return fail(Error(EINVAL, "device '" + std::string(spec) + "': " + std::move(why))
                        .hint("give a PCI address, optionally with a VF token: "
                              "\"0000:00:03.0\" or \"0000:00:03.0 vf_token=<UUID>\""));
    };
    std::string_view addr = spec.substr(0, spec.find(' '));
    auto a = PciAddress::parse(addr);
    if (!a)
        return bad("not a PCI address");
    Spec s{*a, {}};
    if (addr.size() < spec.size()) {
        std::string_view rest = spec.substr(addr.size() + 1);
        constexpr std::string_view key = "vf_token=";
        if (!rest.starts_with(key))
            return bad("unknown argument '" + std::string(rest) + "'");
        rest.remove_prefix(key.size());
        if (!parse_uuid(rest))
            return bad("vf_token is not a UUID");
        s.vf_token = rest;
    }
    return s;
}

}  // namespace

Result<Device*> Vfio::assign_device(Container& c, std::string_view spec_text) {
    return assign(c, spec_text, nullptr);
}

Result<Device*> Vfio::assign(Container& c, std::string_view spec_text, Fd* given) {
    std::lock_guard g(control_);
    auto spec = parse_spec(spec_text);
    if (!spec)
        return fail(std::move(spec.error()));
    const PciAddress addr = spec->addr;
    const std::string who = "device " + addr.str();
    const KernelSupport k = probe_kernel(root_);
    auto sup = probe_device(root_, k, addr);
    if (!sup)
        return fail(std::move(sup.error()));
    if (Device* d = find_device(addr))
        return fail(Error(EEXIST, "assign " + who + ": already assigned to " + d->container().name()));
    if (c.imported())
        return fail(Error(EPERM, "assign " + who + " to " + c.name() +
                                     ": the container was imported from another process")
                        .hint("the process that exported it assigns its devices; or create a "
                              "container of this process's own (create_container)"));

    // Refuse early, with the reason from sysfs, what the kernel would refuse
    // with a bare errno.
    const ModeStatus& st = sup->status(mode_);
    if (!st.available) {
        const int err = !sup->bound ? ENODEV : !sup->group_viable ? EPERM : EOPNOTSUPP;
        Error e(err, "assign " + who + " in " + std::string(to_string(mode_)) + " mode: " + st.reason);
        if (!sup->action.empty())
            e.hint(sup->action);
        return fail(std::move(e));
    }
    // One IOMMU group belongs to one container, in every mode (the kernel
    // attaches a group to one container / one IO page table).
    if (sup->iommu_group) {
        for (const auto& other : containers_) {
            if (other.get() == &c)
                continue;
            for (const auto& d : other->devices_)
                if (d->iommu_group() == sup->iommu_group)
                    return fail(Error(EBUSY, "assign " + who + ": its IOMMU group " +
                                                 std::to_string(*sup->iommu_group) +
                                                 " is already in " + other->name() + " (via " +
                                                 d->address().str() + ")")
                                    .hint("assign every device of a group to the same container"));
        }
    }

    DeviceRequest req;
    req.addr = addr;
    req.group = sup->iommu_group;
    req.vfio_dev = sup->vfio_dev;
    req.vf_token = spec->vf_token;
    req.root = &root_;
    req.given = given;
    const bool was_ready = c.backend_->dma_ready();
    auto bd = c.backend_->attach(req);
    if (!bd) {
        Error e = std::move(bd.error());
        if (e.err() == EADDRINUSE)
            e.hint("a mapping of this container covers an IOVA the device reserves (such as the "
                   "MSI window 0xfee00000-0xfeefffff); take IOVAs from alloc_iova()");
        else if (e.err() == ENOMEM && c.table_.size() != 0)
            // iommufd pins an IOAS's pages when its first device attaches.
            e.hint("pinning this container's " + std::to_string(c.table_.bytes() >> 20) +
                   " MiB of mappings for the device exceeds RLIMIT_MEMLOCK (raise it: ulimit -l; "
                   "or run with CAP_IPC_LOCK), or memory is short");
        // The kernel lets one set of openers have a device at a time; its
        // refusals (group open EBUSY, cdev bind EINVAL, compat's claim of
        // DMA ownership EPERM) do not say who. After a primary's crash it
        // is its secondaries: name them, from their fds.
        if (e.err() == EBUSY || e.err() == EINVAL || e.err() == EPERM)
            if (const auto holders = eal::detail::processes_holding(device_nodes(req));
                !holders.empty()) {
                Error named(e.err(), e.op() + ": " + addr.str() + " is held by " +
                                         eal::detail::pids_text(holders));
                named.hint((e.hint().empty() ? "" : e.hint() + "; ") +
                           "stop those processes (secondaries of a primary that exited), then "
                           "assign again");
                if (!e.context().empty())
                    named.context(e.context());
                e = std::move(named);
            }
        return fail(std::move(e.context("assign " + who + " to " + c.name())));
    }
    auto dev = std::unique_ptr<Device>(new Device(addr, sup->iommu_group, &c, std::move(*bd)));
    c.forget_limits();
    // An SR-IOV PF opened with a token: vfio-pci took it at the open (set
    // it with no VF open, or checked it against the open VFs); setting it
    // through the feature meant for the PF's owner makes it the PF's token
    // in every mode and on every kernel path, and says so in one place.
    if (!spec->vf_token.empty() && sup->sriov.pf && sup->bound) {
        auto token = parse_uuid(spec->vf_token);  // checked by parse_spec
        Result<void> set = token ? dev->set_vf_token(*token) : fail(std::move(token.error()));
        if (!set) {
            dev.reset();  // releases the device again
            c.forget_limits();
            return fail(std::move(set.error()).context("assign " + who + " to " + c.name()));
        }
    }
    if (!was_ready && c.backend_->dma_ready() && c.table_.size() != 0) {
        if (auto ok = c.replay(); !ok) {
            dev.reset();  // detaches; the container drops its IOMMU model again
            c.forget_limits();
            return fail(std::move(ok.error()).context("assign " + who + " to " + c.name()));
        }
    }
    // cdev no-IOMMU: attaching the first device pinned the container's
    // mappings; their physical addresses are known from now on.
    const bool first_physical = c.reports_physical() && c.devices_.empty();
    c.devices_.push_back(std::move(dev));
    if (first_physical) {
        for (IovaUser* u : c.iova_users_) {
            if (auto ok = u->physical_addresses(c, true); !ok) {
                c.devices_.pop_back();  // detaches; the kernel unpins again
                c.forget_limits();
                for (IovaUser* v : c.iova_users_)
                    (void)v->physical_addresses(c, false);
                return fail(std::move(ok.error()).context("assign " + who + " to " + c.name()));
            }
        }
    }
    return c.devices_.back().get();
}

Result<void> Vfio::release_device(Device& d) {
    std::lock_guard g(control_);
    Container& c = d.container();
    auto it = std::find_if(c.devices_.begin(), c.devices_.end(),
                           [&](const auto& p) { return p.get() == &d; });
    if (it == c.devices_.end())
        return fail(EINVAL, "release device " + d.address().str() + ": not assigned");
    c.devices_.erase(it);
    c.forget_limits();
    // cdev no-IOMMU: the last detach unpinned the container's memory.
    if (c.reports_physical() && c.devices_.empty())
        for (IovaUser* u : c.iova_users_)
            (void)u->physical_addresses(c, false);
    return {};
}

}  // namespace vfiokit::vfio
