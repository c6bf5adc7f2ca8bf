// VFIO state shared with other processes (share.hpp): export, import, and
// fds handed over by a broker.
//
// The kernel side of sharing, which the rules in share.hpp follow (Linux
// 6.12):
//  - An fd sent with SCM_RIGHTS is the same open file in the receiver. The
//    group, device, container and iommufd objects hang off the file, not
//    off the process, so every ioctl works from the receiver, and closing
//    the receiver's copy releases nothing while the sender holds the file
//    (group.c vfio_group_fops_release, vfio_main.c vfio_device_fops_release
//    run on the last close only).
//  - DMA map ioctls pin the pages of the calling process: type1 records
//    current->mm and the group leader in the vfio_dma and charges that
//    mm's locked_vm (vfio_iommu_type1.c vfio_dma_do_map, vfio_pin_map_dma);
//    iommufd records source_mm/source_task/source_user in the iopt_pages
//    and charges the user's locked_vm against the mapper's RLIMIT_MEMLOCK,
//    or nothing with CAP_IPC_LOCK (iommufd/pages.c iopt_alloc_pages,
//    incr_user_locked_vm). So a secondary maps its own memory; if that is
//    the same memfd the primary mapped, the pinned pages are the same.
//  - Unmap is not tied to the mapper: any holder of the container/iommufd
//    may unmap any mapping, and the pages are unpinned and uncharged from
//    the mapper's mm/user (vfio_iommu_type1.c vfio_remove_dma,
//    vfio_lock_acct with the recorded mm). Mappings outlive their mapper:
//    the recorded mm is grabbed, so a secondary that exits without
//    unmapping leaves its pages pinned until someone unmaps.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <map>
#include <set>

#include "backend.hpp"
#include "kernel_device.hpp"
#include "modes.hpp"
#include "share_codec.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio {

// --- export ----------------------------------------------------------------------

Result<SharedState> Vfio::export_shared() const {
    std::lock_guard held(control_);  // the fds it lists are borrowed: see SharedState
    share::Snapshot s;
    s.mode = mode_;
    s.type1 = options_.type1;
    SharedState out;
    auto add_fd = [&](int fd) {
        out.fds.push_back(fd);
        return static_cast<std::uint32_t>(out.fds.size() - 1);
    };
    // What travels is what the backends say they have (SharedContainer):
    // the process's iommufd where the mode has one, and per container its
    // fd, model and groups, or its IOAS id.
    if (iommufd_.valid())
        s.iommufd = add_fd(iommufd_.get());
    for (const auto& c : containers_) {
        const SharedContainer sc = c->backend_->share();
        share::ContainerEntry e;
        e.is_default = c->is_default();
        e.ioas_id = sc.ioas_id;
        if (sc.container_fd >= 0)
            e.container_fd = add_fd(sc.container_fd);
        e.iommu_model = sc.iommu_model;
        e.model_set = sc.model_set;
        for (const auto& g : sc.groups)
            e.groups.push_back({g.number, add_fd(g.fd)});
        for (const auto& d : c->devices_) {
            if (d->backend_->fd() < 0)
                return fail(not_supported("export device " + d->address().str(),
                                          std::string(to_string(mode_)) + " mode"));
            e.devices.push_back({d->address(), d->iommu_group(), add_fd(d->backend_->fd())});
        }
        e.mappings = c->table_.all();
        s.containers.push_back(std::move(e));
    }
    s.fd_count = static_cast<std::uint32_t>(out.fds.size());
    auto bytes = share::encode(s);
    if (!bytes)
        return fail(std::move(bytes.error()));
    out.bytes = std::move(*bytes);
    return out;
}

// --- import ----------------------------------------------------------------------

namespace {

// A group fd must answer VFIO_GROUP_GET_STATUS and be in a container: the
// exporter's attachment (group.c vfio_group_ioctl_get_status).
Result<void> check_group_fd(int fd, unsigned n) {
    uapi::vfio_group_status st{};
    st.argsz = sizeof st;
    auto ok = do_ioctl(fd, uapi::kVfioGroupGetStatus, &st, "VFIO_GROUP_GET_STATUS");
    if (!ok)
        return fail(Error(EPROTO, "the fd given for group " + std::to_string(n) +
                                      " is not a VFIO group (" + ok.error().message() + ")"));
    if ((st.flags & uapi::kVfioGroupFlagsContainerSet) == 0)
        return fail(EPROTO, "the fd given for group " + std::to_string(n) + " is in no container");
    return {};
}

}  // namespace

Result<std::unique_ptr<Vfio>> Vfio::import_shared(std::span<const std::uint8_t> bytes,
                                                  std::vector<Fd> fds) {
    const std::string what = "import shared VFIO state";
    auto snap = share::decode(bytes, fds.size());
    if (!snap)
        return fail(std::move(snap.error()).context(what));
    for (std::size_t i = 0; i < fds.size(); ++i)
        if (!fds[i].valid())
            return fail(Error(EBADF, "fd " + std::to_string(i) + " of the shared state is not open")
                            .context(what));

    std::unique_ptr<Vfio> v(new Vfio());
    v->mode_ = snap->mode;
    v->options_.mode = snap->mode;
    v->options_.type1 = snap->type1;
    v->mode_reason_ = "imported from another process (Vfio::import_shared)";
    const detail::ModeRow& row = detail::mode_row(snap->mode);
    // The codec checked that the iommufd is there exactly when the mode's
    // containers live in one.
    if (snap->iommufd != share::kNoFd)
        v->iommufd_ = std::move(fds[snap->iommufd]);

    // Built in place: if anything fails, destroying `v` closes what was
    // adopted so far, and adopted objects release nothing of the exporter's.
    for (auto& ce : snap->containers) {
        const std::string who = ce.is_default ? "default container" : "a container";
        BackendConfig cfg;
        cfg.type1 = snap->type1;
        cfg.iommufd = v->iommufd_.get();
        cfg.ioas_id = ce.ioas_id;
        GivenContainer given;
        if (ce.container_fd != share::kNoFd) {
            given = GivenContainer{std::move(fds[ce.container_fd]), true, ce.iommu_model,
                                   ce.model_set};
            cfg.given = &given;
        }
        auto b = row.adopt(cfg);
        // The container ioctls failing on it: not the container the bytes
        // describe (open_container asks VFIO_GET_API_VERSION; the IOAS
        // adoption asks for its ranges).
        if (!b && b.error().err() != EPROTO)
            b = fail(Error(EPROTO, "the fd given as the container is not one (" +
                                       b.error().message() + ")"));
        if (!b)
            return fail(std::move(b.error()).context(who).context(what));
        auto c = std::unique_ptr<Container>(new Container(v.get(), std::move(*b), ce.is_default));
        c->imported_ = true;
        c->import_index_ = static_cast<std::uint32_t>(v->containers_.size());
        if (!ce.is_default)
            c->id_ = v->next_container_id_++;
        for (const auto& m : ce.mappings) {
            c->table_.insert(m);
            c->inherited_.insert(m.iova);
        }
        Container& cr = *c;
        v->containers_.push_back(std::move(c));

        std::set<std::uint32_t> groups_given;
        for (const auto& de : ce.devices) {
            if (auto ok = detail::check_kernel_device_fd(fds[de.fd].get(), de.addr); !ok)
                return fail(std::move(ok.error()).context(what));
            Fd group_fd;
            // The first device of a group the container lists brings the
            // group's fd (containers of IOAS-style modes list none).
            const auto listed = std::find_if(ce.groups.begin(), ce.groups.end(), [&](const auto& g) {
                return de.group && g.number == *de.group;
            });
            if (listed != ce.groups.end() && groups_given.insert(listed->number).second) {
                group_fd = std::move(fds[listed->fd]);
                if (auto ok = check_group_fd(group_fd.get(), listed->number); !ok)
                    return fail(std::move(ok.error()).context(what));
            }
            DeviceRequest req;
            req.addr = de.addr;
            req.group = de.group;
            auto bd = cr.backend_->adopt_device(req, std::move(fds[de.fd]), std::move(group_fd));
            if (!bd)
                return fail(std::move(bd.error()).context(what));
            cr.devices_.push_back(
                std::unique_ptr<Device>(new Device(de.addr, de.group, &cr, std::move(*bd))));
        }
        cr.forget_limits();
    }
    return v;
}

// --- fds from a broker ----------------------------------------------------------

Result<std::unique_ptr<Vfio>> Vfio::from_external_fds(const ExternalFds& x, const Options& o) {
    const std::string what = "use external VFIO fds";
    // Fds 0-2 are the standard streams, never a node a broker passed (the
    // broker's socket mode numbers fds from 0, but its receiver puts them
    // where they land): refused before any is taken, since what is taken
    // is closed on failure.
    auto stdio = [](int fd) { return fd >= 0 && fd <= 2; };
    if (stdio(x.iommufd) || stdio(x.container) ||
        std::any_of(x.devices.begin(), x.devices.end(),
                    [&](const auto& d) { return stdio(d.second); }))
        return fail(Error(EBADF, "an fd of 0-2 is named: those are the standard streams, "
                                 "never a passed VFIO node")
                        .hint("pass the nodes as fds 3 and up (" +
                              std::string(kExternalFdsEnv) + "=" + format_external_fds(x) + ")")
                        .context(what));
    // Every fd named is ours from here, closed on any early return. Devices
    // of one group name one group fd: it is taken once.
    std::map<int, Fd> owned;
    auto own = [&](int fd) {
        if (fd >= 0 && !owned.contains(fd))
            owned.emplace(fd, Fd(fd));
    };
    own(x.iommufd);
    own(x.container);
    for (const auto& [addr, fd] : x.devices)
        own(fd);
    const detail::ModeRow& row = detail::mode_row(x.mode);
    const bool iommufd = row.process_iommufd;
    if (iommufd ? x.iommufd < 0 : x.container < 0)
        return fail(Error(EBADF, std::string("no ") + (iommufd ? "iommufd" : "container") +
                                     " fd given")
                        .context(what));
    if (x.devices.empty())
        return fail(Error(EINVAL, "no device fd given").context(what));
    if ((x.iommufd >= 0 && x.iommufd == x.container) ||
        std::any_of(x.devices.begin(), x.devices.end(), [&](const auto& d) {
            return d.second < 0 || d.second == x.iommufd || d.second == x.container;
        }))
        return fail(Error(EINVAL, "the same fd is named for different objects, or a device "
                                  "has no fd")
                        .context(what));

    std::unique_ptr<Vfio> v(new Vfio());
    v->options_ = o;
    v->options_.mode = x.mode;
    v->root_ = sysfs::Root(o.sysroot);
    v->mode_ = x.mode;
    v->mode_reason_ = "external fds (" + std::string(kExternalFdsEnv) + ")";
    GivenContainer given;
    BackendConfig cfg;
    cfg.type1 = v->options_.type1;
    if (iommufd) {
        v->iommufd_ = std::move(owned[x.iommufd]);
        cfg.iommufd = v->iommufd_.get();
    } else {
        given.fd = std::move(owned[x.container]);
        cfg.given = &given;
    }
    auto b = row.make(cfg);
    if (!b)
        return fail(std::move(b.error()).context("default container").context(what));
    v->containers_.push_back(
        std::unique_ptr<Container>(new Container(v.get(), std::move(*b), true)));

    std::set<int> taken;
    for (const auto& [addr, fd] : x.devices) {
        // A group-mate of a device already assigned finds its group open.
        Fd* node = taken.insert(fd).second ? &owned[fd] : nullptr;
        auto d = v->assign(v->default_container(), addr.str(), node);
        if (!d)
            return fail(std::move(d.error()).context(what));
    }
    return v;
}

Result<ExternalFds> parse_external_fds(const std::string_view all) {
    ExternalFds x;
    std::optional<Mode> mode;
    // Errors quote the whole value, not what is left of it.
    auto bad = [&](const std::string& why) {
        return fail(Error(EINVAL, std::string(kExternalFdsEnv) + "=\"" + std::string(all) +
                                      "\": " + why)
                        .hint("expected e.g. \"iommufd=3,0000:00:03.0=4\" or "
                              "\"mode=group,container=3,0000:00:03.0=4\""));
    };
    std::set<std::string_view> keys;
    // A device is one address however it is spelled (00:03.0, 0000:00:03.0).
    std::set<PciAddress> addrs;
    std::string_view text = all;
    while (!text.empty()) {
        const std::string_view item = text.substr(0, text.find(','));
        text.remove_prefix(std::min(text.size(), item.size() + 1));
        const auto eq = item.find('=');
        if (eq == std::string_view::npos)
            return bad("'" + std::string(item) + "' is not key=value");
        const std::string_view key = item.substr(0, eq), val = item.substr(eq + 1);
        if (!keys.insert(key).second)
            return bad("'" + std::string(key) + "' given twice");
        if (key == "mode") {
            mode = mode_from_string(val);
            if (!mode)
                return bad("unknown mode '" + std::string(val) + "'");
            continue;
        }
        int fd = -1;
        auto [end, ec] = std::from_chars(val.data(), val.data() + val.size(), fd);
        if (ec != std::errc() || end != val.data() + val.size() || fd < 0)
            return bad("'" + std::string(val) + "' is not an fd number");
        if (key == "iommufd")
            x.iommufd = fd;
        else if (key == "container")
            x.container = fd;
        else if (auto a = PciAddress::parse(key)) {
            if (!addrs.insert(*a).second)
                return bad("device " + a->str() + " given twice");
            x.devices.emplace_back(*a, fd);
        } else
            return bad("unknown key '" + std::string(key) + "'");
    }
    // Without mode=: the automatic choice's first mode of the kind the fds
    // are (an iommufd: cdev; a container: group).
    if (!mode) {
        for (const auto* row : detail::automatic_rows())
            if (row->process_iommufd == (x.iommufd >= 0)) {
                mode = row->mode;
                break;
            }
        if (!mode)
            return bad("no mode takes these fds; name it with mode=");
    }
    x.mode = *mode;
    const detail::ModeRow& row = detail::mode_row(x.mode);
    if (row.process_iommufd ? (x.iommufd < 0 || x.container >= 0)
                            : (x.container < 0 || x.iommufd >= 0))
        return bad(std::string(row.name) + (row.process_iommufd
                                                ? " needs iommufd= (and no container=)"
                                                : " needs container= (and no iommufd=)"));
    if (x.devices.empty())
        return bad("no device");
    return x;
}

std::string format_external_fds(const ExternalFds& x) {
    std::string s = "mode=" + std::string(to_string(x.mode));
    if (x.iommufd >= 0)
        s += ",iommufd=" + std::to_string(x.iommufd);
    if (x.container >= 0)
        s += ",container=" + std::to_string(x.container);
    for (const auto& [a, fd] : x.devices)
        s += "," + a.str() + "=" + std::to_string(fd);
    return s;
}

}  // namespace vfiokit::vfio
