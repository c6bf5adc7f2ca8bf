// The group-style container machinery that group, compat and noiommu share
// (group_style.hpp): opening the container node and checking its IOMMU
// models, groups attached with VFIO_GROUP_SET_CONTAINER, the IOMMU model set
// by the first group, device fds from VFIO_GROUP_GET_DEVICE_FD, and sharing
// with other processes. The type1 DMA ioctls are in type1.cpp.
//
// Kernel references (Linux 6.12): drivers/vfio/group.c (group fd ioctls),
// drivers/vfio/container.c (container ioctls, IOMMU model lifetime).
#include "group_style.hpp"
#include "vfiokit/eal/format.hpp"
#include "kernel_device.hpp"
#include "vf_token.hpp"

#include <fcntl.h>

#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <thread>
#include <utility>

#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio::detail {

namespace {

std::string permission_hint(const std::string& path) {
    return "run as root or give the user the node (chown/chmod " + path + ")";
}

// Why a group is not viable, from sysfs: the group-mates held by drivers
// that do kernel DMA.
Error not_viable(const DeviceRequest& req, unsigned n) {
    const std::string g = std::to_string(n);
    std::string blockers;
    if (req.root != nullptr) {
        if (auto d = probe_device(*req.root, probe_kernel(*req.root), req.addr)) {
            for (const auto& m : d->group_members)
                if (m.blocks)
                    blockers += (blockers.empty() ? "" : ", ") + m.addr.str() + " is bound to " +
                                m.driver;
        }
    }
    if (blockers.empty()) {
        // Every group-mate is VFIO's (sysfs says so), yet the kernel
        // refused: the DMA ownership of the group is still held, by an
        // open device file of an earlier container (another process, e.g.
        // a secondary that has not let go of its copy yet).
        return Error(EPERM, "group " + g + " is refused although every device of it is bound "
                                           "to vfio-pci: another container or process still "
                                           "holds one of its devices open")
            .hint("close the device there (a secondary that imported it must detach) and retry");
    }
    Error e(EPERM, "group " + g + " is not viable: " + blockers);
    e.hint("give every device of /sys/kernel/iommu_groups/" + g +
           "/devices to vfio-pci too (or unbind them)");
    return e;
}

Error explain_group_open(Error e, const DeviceRequest& req, const GroupStyleTraits& t,
                         const std::string& path, unsigned n) {
    const std::string g = std::to_string(n);
    switch (e.err()) {
    case ENOENT: {
        // The node of the other kind exists: the device is fine, the mode is wrong.
        const std::string other = t.other_group_prefix + g;
        if (req.root != nullptr && req.root->exists(other))
            e.hint("group " + g + " has " + other + " instead: " + t.other_group_hint);
        else
            e.hint("no " + path + ": is " + req.addr.str() + " bound to vfio-pci? " +
                   bind_hint(req.addr));
        break;
    }
    case EBUSY:
        return Error(EBUSY, "open " + path + ": group " + g +
                                " is already open in another process or container (or the "
                                "device is open through its cdev)")
            .hint("a group belongs to one container of one process at a time; release it there");
    case EACCES:
        e.hint(permission_hint(path));
        break;
    case EPERM:  // group.c vfio_group_fops_open: no-IOMMU groups need CAP_SYS_RAWIO
        e.hint("no-IOMMU groups need CAP_SYS_RAWIO: run as root");
        break;
    case ENODEV:
        e.hint("the group is going away: its device was unbound from vfio-pci meanwhile");
        break;
    default:
        break;
    }
    return e;
}

Error explain_get_device_fd(Error e, const DeviceRequest& req, const GroupStyleTraits& t,
                            unsigned n) {
    const bool token = !req.vf_token.empty();
    switch (e.err()) {
    case ENODEV:  // group.c vfio_device_get_from_name: no device of that name
        e.hint(req.addr.str() + " is not a VFIO device of group " + std::to_string(n) + "; " +
               bind_hint(req.addr));
        break;
    case EACCES:  // vfio_pci_core.c vfio_pci_validate_vf_token
        if (!explain_vf_token(e, req))
            e.hint(token ? "the VF token does not match the one set on the PF"
                         : "the device's PF is on vfio-pci and its owner set a VF token: "
                           "pass vf_token=<UUID>");
        break;
    case EINVAL:
        if (token && !explain_vf_token(e, req))
            e.hint("vf_token is only for SR-IOV PFs and VFs bound to vfio-pci (and must be a "
                   "UUID)");
        break;
    case EPERM:
        if (!t.device_eperm_hint.empty())
            e.hint(t.device_eperm_hint);
        break;
    default:
        break;
    }
    return e.context("device " + req.addr.str());
}

}  // namespace

std::span<const IommuModel> type1_models(Type1 t) {
    static constexpr IommuModel v2[] = {kType1v2};
    static constexpr IommuModel v1[] = {kType1};
    static constexpr IommuModel any[] = {kType1v2, kType1};
    switch (t) {
    case Type1::v2: return v2;
    case Type1::v1: return v1;
    case Type1::automatic: break;
    }
    return any;
}

Result<OpenedContainer> open_container(const GroupStyleTraits& t,
                                       std::span<const IommuModel> wanted, GivenContainer* given) {
    const std::string& path = t.container_path;
    const std::string who = std::string(to_string(t.mode)) + " container " + path;
    auto fd = given ? Result<Fd>(std::move(given->fd)) : open_fd(path, O_RDWR);
    if (fd && !fd->valid())
        return fail(Error(EBADF, "take the given container fd").context(who));
    if (!fd) {
        Error e = std::move(fd.error());
        if (e.err() == ENOENT || e.err() == ENODEV || e.err() == ENXIO)
            e.hint("no " + path + ": the kernel is built without " + t.container_option);
        else if (e.err() == EACCES || e.err() == EPERM)
            e.hint(permission_hint(path));
        return fail(std::move(e).context(who));
    }
    auto version = do_ioctl(fd->get(), uapi::kVfioGetApiVersion, nullptr, "VFIO_GET_API_VERSION");
    if (!version)
        return fail(std::move(version.error()).context(who));
    if (*version != uapi::kVfioApiVersion)
        return fail(Error(EPROTO, "VFIO_GET_API_VERSION returned " + std::to_string(*version) +
                                      ", vfiokit speaks version " +
                                      std::to_string(uapi::kVfioApiVersion))
                        .context(who));
    if (given && given->adopted) {
        // Another process set the model (or will): the one it named is the
        // one to use, and must be one this process's type1 setting accepts.
        for (const IommuModel& m : wanted)
            if (static_cast<std::uint32_t>(m.id) == given->iommu_model)
                return OpenedContainer{std::move(*fd), m, true, given->model_set};
        return fail(Error(EPROTO, "adopt a container with IOMMU model " +
                                      std::to_string(given->iommu_model) +
                                      ": not one this mode and type1 setting use")
                        .context(who));
    }
    // With no group attached the container asks every registered IOMMU
    // driver (container.c vfio_container_ioctl_check_extension).
    std::string names;
    for (const IommuModel& m : wanted) {
        auto has = do_ioctl(fd->get(), uapi::kVfioCheckExtension, int_arg(m.id),
                            "VFIO_CHECK_EXTENSION(" + std::string(m.name) + ")");
        if (!has)
            return fail(std::move(has.error()).context(who));
        if (*has > 0)
            return OpenedContainer{std::move(*fd), m};
        names += (names.empty() ? "" : " or ") + std::string(m.name);
    }
    return fail(Error(ENOTSUP, "VFIO_CHECK_EXTENSION: IOMMU model " + names + " not offered")
                    .context(who)
                    .hint(t.model_hint));
}

// --- groups and devices -------------------------------------------------------

// One group attached to the container. Owns the group fd; its destructor
// takes the group out of the container and closes it.
class GroupStyleBackend::Group {
public:
    Group(GroupStyleBackend& b, unsigned n, Fd fd) : backend_(b), number_(n), fd_(std::move(fd)) {}
    Group(const Group&) = delete;
    Group& operator=(const Group&) = delete;
    ~Group() {
        // UNSET_CONTAINER is the inverse of SET_CONTAINER. Closing alone would
        // detach too (group.c vfio_group_fops_release), but only once every
        // holder of the open file (e.g. a secondary process given the group
        // fd) closed it; and if the ioctl fails, the close still detaches.
        // An adopted group is another process's: only our copy is closed.
        if (!backend_.adopted_)
            (void)do_ioctl(fd_.get(), uapi::kVfioGroupUnsetContainer, nullptr,
                           "VFIO_GROUP_UNSET_CONTAINER");
        fd_.reset();
        backend_.group_left(number_);
    }
    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] GroupStyleBackend& backend() const { return backend_; }

private:
    GroupStyleBackend& backend_;
    unsigned number_;
    Fd fd_;
};

namespace {

class GroupDevice final : public KernelDevice {
public:
    GroupDevice(std::shared_ptr<GroupStyleBackend::Group> g, Fd fd)
        : group_(std::move(g)), fd_(std::move(fd)) {}
    GroupDevice(const GroupDevice&) = delete;
    GroupDevice& operator=(const GroupDevice&) = delete;
    ~GroupDevice() override {
        fd_.reset();
        group_->backend().device_left();
    }
    [[nodiscard]] int fd() const override { return fd_.get(); }

private:
    // Members are destroyed in reverse order: the device fd is closed before
    // the group reference is dropped. A group can leave its container only
    // when none of its device fds is open: each open device counts as a
    // container user and VFIO_GROUP_UNSET_CONTAINER fails with EBUSY while
    // there are others (group.c vfio_group_ioctl_unset_container).
    std::shared_ptr<GroupStyleBackend::Group> group_;
    Fd fd_;
};

}  // namespace

GroupStyleBackend::GroupStyleBackend(GroupStyleTraits t, OpenedContainer c)
    : traits_(std::move(t)),
      container_(std::move(c.fd)),
      model_(c.model),
      model_set_(c.model_set),
      adopted_(c.adopted) {
    sync_path();
}

GroupStyleBackend::~GroupStyleBackend() = default;

Result<std::shared_ptr<GroupStyleBackend::Group>> GroupStyleBackend::open_group(
    const DeviceRequest& req, unsigned n) {
    const std::string path = traits_.group_prefix + std::to_string(n);
    const std::string who = "group " + std::to_string(n);
    // from_external_fds: the group node was opened by whoever gave us the fd.
    auto fd = req.given ? Result<Fd>(std::move(*req.given)) : open_fd(path, O_RDWR);
    if (fd && !fd->valid())
        return fail(Error(EBADF, "take the given fd of " + who)
                        .hint("name one group fd for the devices of one group"));
    if (!fd)
        return fail(
            explain_group_open(std::move(fd.error()), req, traits_, path, n).context(who));

    uapi::vfio_group_status st{};
    st.argsz = sizeof st;
    if (auto ok = do_ioctl(fd->get(), uapi::kVfioGroupGetStatus, &st, "VFIO_GROUP_GET_STATUS"); !ok)
        return fail(std::move(ok.error()).context(who));
    // Checked before SET_CONTAINER: on an iommufd (compat) the kernel reports
    // VIABLE once the container is set and fails only at GET_DEVICE_FD
    // (group.c vfio_group_ioctl_get_status).
    if ((st.flags & uapi::kVfioGroupFlagsViable) == 0)
        return fail(not_viable(req, n));

    // Legacy container: claims DMA ownership of the whole group and attaches
    // it to the IOMMU model if one is set (container.c
    // vfio_container_attach_group). iommufd: creates the compat IOAS on the
    // first group (vfio_compat.c iommufd_vfio_compat_ioas_create).
    int container = container_.get();
    if (auto ok = do_ioctl(fd->get(), uapi::kVfioGroupSetContainer, &container,
                           "VFIO_GROUP_SET_CONTAINER");
        !ok) {
        Error e = std::move(ok.error());
        if (e.err() == EPERM)
            e.hint("a host driver holds a device of the group, the container already holds "
                   "groups of the other kind (no-IOMMU and IOMMU groups cannot mix), or "
                   "CAP_SYS_RAWIO is missing for no-IOMMU");
        return fail(std::move(e).context(who));
    }
    // From here the Group owns the attachment: destroying it undoes it.
    auto g = std::make_shared<Group>(*this, n, std::move(*fd));
    groups_[n] = g;
    return g;
}

void GroupStyleBackend::group_left(unsigned n) {
    groups_.erase(n);
    if (adopted_)  // the owner's groups keep the model; nothing changed
        return;
    if (!groups_.empty()) {
        device_left();  // its IOMMU domain went with it
        return;
    }
    // The last group out deprivileges the container: the kernel releases the
    // IOMMU model and with it every mapping (container.c
    // vfio_group_detach_container).
    page_size_ = kDefaultPageSize;
    unmap_all_ext_.reset();
    info_.reset();
    const bool had_model = std::exchange(model_set_, false);
    sync_path();
    if (had_model)
        last_group_left();
}

void GroupStyleBackend::device_left() {
    // Best effort (destructors): a stale value errs on the strict side, as
    // the granule only shrinks when a domain goes.
    if (model_set_)
        (void)refresh_page_size();
}

Result<void> GroupStyleBackend::refresh_page_size() {
    if (!translates())
        return {};
    info_.reset();
    // With the capabilities: the same one ioctl also gives the IOVA ranges
    // and DMA-avail count the front end asks for next.
    auto info = query_iommu_info(container_.get(), true);
    if (!info)
        return fail(std::move(info.error()).context("IOMMU page sizes"));
    info_ = *info;
    path_.avail_stale = false;
    page_size_ = info->iova_pgsizes == 0
                     ? kDefaultPageSize
                     : std::uint64_t{1} << std::countr_zero(info->iova_pgsizes);
    sync_path();
    return {};
}

void GroupStyleBackend::sync_path() {
    // No-IOMMU sets a model too, but maps nothing (its backend refuses).
    // Without a model the front end records mappings for the replay.
    using P = DmaPath::Protocol;
    path_.protocol = traits_.mode == Mode::noiommu ? P::none : model_set_ ? P::type1 : P::record;
    path_.fd = container_.get();
    path_.page_mask = page_size_ - 1;
}

Result<std::unique_ptr<BackendDevice>> GroupStyleBackend::attach(const DeviceRequest& req) {
    if (!req.group)
        return fail(Error(ENODEV, "device " + req.addr.str() + " has no IOMMU group")
                        .hint(traits_.no_group_hint));
    const unsigned n = *req.group;

    // What this call acquires is owned by locals, so an early return undoes
    // it in reverse: the device fd (not yet), then `group`, which, when it
    // was opened here and is its only holder, leaves the container and takes
    // the IOMMU model along if it was the container's only group.
    std::shared_ptr<Group> group;
    if (auto it = groups_.find(n); it != groups_.end())
        group = it->second.lock();
    if (!group) {
        auto g = open_group(req, n);
        if (!g)
            return fail(std::move(g.error()));
        group = std::move(*g);
    }
    if (!model_set_) {
        // Only now: SET_IOMMU needs a group in the container (container.c
        // vfio_ioctl_set_iommu; vfio_compat.c needs the compat IOAS, which
        // the first SET_CONTAINER created).
        auto ok = do_ioctl(container_.get(), uapi::kVfioSetIommu, int_arg(model_.id),
                           "VFIO_SET_IOMMU(" + std::string(model_.name) + ")");
        if (!ok) {
            Error e = std::move(ok.error());
            if (e.err() == EPERM)  // container.c vfio_noiommu_open
                e.hint("the no-IOMMU model needs CAP_SYS_RAWIO: run as root");
            return fail(std::move(e).context(traits_.container_path));
        }
        model_set_ = true;
        sync_path();
        if (auto ready = model_was_set(); !ready)
            return fail(std::move(ready.error()).context(traits_.container_path));
    }

    // vfio-pci matches "<BDF>" or "<BDF> vf_token=<UUID>"
    // (vfio_pci_core.c vfio_pci_core_match). The token stays out of messages.
    std::string name = req.addr.str();
    std::string what = "VFIO_GROUP_GET_DEVICE_FD \"" + name + "\"";
    if (!req.vf_token.empty()) {
        name += " vf_token=" + req.vf_token;
        what = "VFIO_GROUP_GET_DEVICE_FD \"" + req.addr.str() + " vf_token=...\"";
    }
    auto fd = ioctl_fd(group->fd(), uapi::kVfioGroupGetDeviceFd, name.data(), what);
    // A device vfio-pci is still probing (bound a moment ago, by us or by
    // the kernel after a hotplug) joins its group's device list last of all
    // (__vfio_register_dev): ENODEV while sysfs already shows vfio-pci is
    // that window, so ask again for up to a second.
    for (int i = 0; !fd && fd.error().err() == ENODEV && req.root &&
                    bound_to_vfio_pci(*req.root, req.addr) && i < 100;
         ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        fd = ioctl_fd(group->fd(), uapi::kVfioGroupGetDeviceFd, name.data(), what);
    }
    if (!fd)
        return fail(explain_get_device_fd(std::move(fd.error()), req, traits_, n)
                        .context("group " + std::to_string(n)));
    auto dev = std::make_unique<GroupDevice>(std::move(group), std::move(*fd));
    // The page sizes are those every IOMMU domain of the container supports,
    // and a group (legacy) or device (compat) may have added a domain.
    if (auto ok = refresh_page_size(); !ok)
        return fail(std::move(ok.error()).context("device " + req.addr.str()));
    return std::unique_ptr<BackendDevice>(std::move(dev));
}

// --- sharing with other processes (share.cpp) ----------------------------------

SharedContainer GroupStyleBackend::share() const {
    SharedContainer s;
    s.container_fd = container_.get();
    s.iommu_model = static_cast<std::uint32_t>(model_.id);
    s.model_set = model_set_;
    for (const auto& [n, weak] : groups_)
        if (auto g = weak.lock())
            s.groups.push_back({n, g->fd()});
    return s;
}

Result<std::unique_ptr<BackendDevice>> GroupStyleBackend::adopt_device(const DeviceRequest& req,
                                                                       Fd device, Fd group_fd) {
    const std::string who = "adopt device " + req.addr.str();
    if (!adopted_ || !req.group)
        return fail(EINVAL, who + ": not a group device of an adopted container");
    const unsigned n = *req.group;
    std::shared_ptr<Group> group;
    if (auto it = groups_.find(n); it != groups_.end())
        group = it->second.lock();
    if (!group) {
        if (!group_fd)
            return fail(EPROTO, who + ": no fd for its group " + std::to_string(n));
        group = std::make_shared<Group>(*this, n, std::move(group_fd));
        groups_[n] = group;
    }
    auto dev = std::make_unique<GroupDevice>(std::move(group), std::move(device));
    if (auto ok = refresh_page_size(); !ok)
        return fail(std::move(ok.error()).context(who));
    return std::unique_ptr<BackendDevice>(std::move(dev));
}

}  // namespace vfiokit::vfio::detail
