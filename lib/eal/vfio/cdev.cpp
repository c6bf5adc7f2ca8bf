// The cdev backend: VFIO device cdevs (/dev/vfio/devices/vfioN) bound to the
// process's iommufd (/dev/iommu), one IOAS per container.
//
// The kernel protocol (Documentation/driver-api/vfio.rst "VFIO device cdev",
// Documentation/userspace-api/iommufd.rst):
//   container  IOMMU_IOAS_ALLOC in the shared iommufd ... IOMMU_DESTROY
//   attach     open the cdev, VFIO_DEVICE_BIND_IOMMUFD (the device joins the
//              iommufd; until then the fd accepts nothing else), then
//              VFIO_DEVICE_ATTACH_IOMMUFD_PT with the IOAS id
//   release    VFIO_DEVICE_DETACH_IOMMUFD_PT, close (which unbinds)
//   DMA        IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP / IOMMU_IOAS_IOVA_RANGES
//   P2P        IOMMU_IOAS_MAP_FILE given a BAR's dma-buf (Linux 6.19+)
//
// The IOAS exists from the container's creation, so maps work before any
// device is attached; unlike type1 there is nothing to replay.
//
// cdev no-IOMMU (Linux 7.3, CONFIG_IOMMUFD_NOIOMMU) is the same protocol on
// a no-IOMMU device's cdev, /dev/vfio/devices/noiommu-vfioN
// (vfio.rst "VFIO NOIOMMU mode"): opening it needs CAP_SYS_RAWIO
// (device_cdev.c vfio_device_fops_cdev_open); binding gives the device a
// group of its own with no IOMMU behind it (iommufd/device.c
// iommufd_bind_noiommu); attaching puts a software-only page table under
// the IOAS (iommufd/hwpt_noiommu.c), which nothing translates through.
// Maps still go in with fixed IOVAs, but an IOVA is only the key for
// IOMMU_IOAS_NOIOMMU_GET_PA, which reports the physical address the
// device must be given (io_pagetable.c iopt_get_phys). The kernel pins
// mapped memory when the first device attaches (that fills the page
// table, iopt_table_add_domain) and unpins it when the last one detaches:
// the lookup works only in between.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <vfiokit/uapi/iommufd.hpp>
#include <vfiokit/uapi/vfio.hpp>

#include "backend.hpp"
#include "dma_path.hpp"
#include "kernel_device.hpp"
#include "vf_token.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/uuid.hpp"

namespace vfiokit::vfio {

namespace {

// One IOAS in the (not owned) iommufd. Shared by the container and each of
// its devices, so the IOMMU_DESTROY comes after the last device has gone
// even if the front end destroyed the container first: the kernel refuses
// (EBUSY) to destroy an IOAS that an attached device's HWPT still uses.
// An adopted IOAS (import_shared) is another process's: never destroyed;
// a handover moves that ownership (set_adopted).
class Ioas {
public:
    Ioas(int iommufd, std::uint32_t id, bool adopted = false)
        : iommufd_(iommufd), id_(id), adopted_(adopted) {}
    Ioas(const Ioas&) = delete;
    Ioas& operator=(const Ioas&) = delete;
    ~Ioas() {
        if (adopted_)
            return;
        uapi::iommu_destroy d{};
        d.size = sizeof d;
        d.id = id_;
        // Nothing to do about a failure here; the IOAS then lives until the
        // iommufd is closed, which frees every object in it.
        (void)do_ioctl(iommufd_, uapi::kIommuDestroy, &d, "IOMMU_DESTROY");
    }

    [[nodiscard]] int iommufd() const { return iommufd_; }
    [[nodiscard]] std::uint32_t id() const { return id_; }
    void set_adopted(bool adopted) { adopted_ = adopted; }

private:
    int iommufd_;
    std::uint32_t id_;
    bool adopted_;
};

// A device cdev bound to the iommufd and, once attach succeeded, attached to
// the IOAS. Built as soon as the fd is open, so every failure later in
// attach() unwinds through this destructor.
class CdevDevice final : public detail::KernelDevice {
public:
    CdevDevice(Fd fd, std::shared_ptr<Ioas> ioas)
        : ioas_(std::move(ioas)), fd_(std::move(fd)) {}
    CdevDevice(const CdevDevice&) = delete;
    CdevDevice& operator=(const CdevDevice&) = delete;

    // Detach first, while the fd still names the device: closing would
    // detach too (vfio_iommufd_physical_unbind in drivers/vfio/iommufd.c),
    // but only when this is the file's last reference. A duplicate of the fd
    // (handed to a secondary process, inherited) would keep the device in
    // the IOAS and the IOAS alive; the explicit detach drops the device's
    // HWPT reference on the IOAS now and puts the device behind the blocking
    // domain. Then fd_ closes (members die after this body), which unbinds
    // from the iommufd and releases the group's DMA ownership
    // (drivers/vfio/device_cdev.c vfio_df_unbind_iommufd); ioas_ goes last.
    ~CdevDevice() override {
        if (attached_) {
            uapi::vfio_device_detach_iommufd_pt d{};
            d.argsz = sizeof d;
            (void)do_ioctl(fd_.get(), uapi::kVfioDeviceDetachIommufdPt, &d,
                           "VFIO_DEVICE_DETACH_IOMMUFD_PT");
        }
    }

    [[nodiscard]] int fd() const override { return fd_.get(); }
    void set_attached() { attached_ = true; }
    // The device stays attached in the kernel either way; this says
    // whether our release detaches it.
    void set_owner(bool owner) override { attached_ = owner; }

private:
    // Members die in reverse order: fd_ closes (unbinds) before this
    // device's share of the IOAS is dropped.
    std::shared_ptr<Ioas> ioas_;
    Fd fd_;
    bool attached_ = false;
};

struct RangesReply {
    std::vector<IovaRange> ranges;
    std::uint64_t alignment = 1;
};

class CdevContainer final : public ContainerBackend {
public:
    // `noiommu`: cdev no-IOMMU (the IOAS's devices are no-IOMMU devices).
    CdevContainer(std::shared_ptr<Ioas> ioas, bool noiommu)
        : ioas_(std::move(ioas)), noiommu_(noiommu) {
        // The IOAS takes maps from creation, translated or not: the path is
        // fixed for the container's life.
        path_.protocol = DmaPath::Protocol::ioas;
        path_.fd = ioas_->iommufd();
        path_.ioas_id = ioas_->id();
        path_.page_mask = page_size_ - 1;
    }

    [[nodiscard]] Mode mode() const override { return noiommu_ ? Mode::cdev_noiommu : Mode::cdev; }
    [[nodiscard]] std::string describe() const override {
        return "iommufd IOAS " + std::to_string(ioas_->id()) +
               (noiommu_ ? " without translation" : "") + " (iommufd fd " +
               std::to_string(ioas_->iommufd()) + ")";
    }

    [[nodiscard]] Result<std::unique_ptr<BackendDevice>> attach(const DeviceRequest& req) override {
        auto r = attach_device(req);
        if (!r)
            return fail(std::move(r.error().context("device " + req.addr.str())));
        return r;
    }

    // The IOAS exists from creation: maps before the first attach are kept
    // and mapped into each device's domain as it attaches.
    [[nodiscard]] bool dma_ready() const override { return true; }
    [[nodiscard]] bool translates() const override { return !noiommu_; }
    [[nodiscard]] bool maps_memory() const override { return true; }
    [[nodiscard]] Result<PhysicalRange> physical_address(std::uint64_t iova,
                                                         std::uint64_t max_len) override;

    [[nodiscard]] Result<void> map(std::uint64_t vaddr, std::uint64_t iova,
                                   std::uint64_t len) override;
    [[nodiscard]] Result<void> map_file(int fd, std::uint64_t offset, std::uint64_t iova,
                                        std::uint64_t len) override;
    // A translated IOAS maps dma-bufs; one without translation has nothing
    // to point at a BAR.
    [[nodiscard]] Result<void> maps_dma_bufs() const override {
        if (noiommu_)
            return fail(dma_bufs_unsupported());
        return {};
    }
    [[nodiscard]] Result<void> map_dma_buf(int fd, std::uint64_t iova, std::uint64_t len) override;
    // IOMMU_IOAS_MAP_FILE of [start, start + len) of `fd` (a memfd, a
    // hugetlbfs file or a dma-buf) at `iova`, readable and writable: what
    // map_file and map_dma_buf share.
    [[nodiscard]] Result<int> ioas_map_file(int fd, std::uint64_t start, std::uint64_t iova,
                                            std::uint64_t len, std::string_view what);
    [[nodiscard]] Result<std::uint64_t> unmap(std::uint64_t iova, std::uint64_t len) override;
    [[nodiscard]] Result<std::uint64_t> unmap_all() override;
    [[nodiscard]] DmaPath* dma_path() override { return &path_; }
    [[nodiscard]] Error map_error(int err, std::uint64_t vaddr, std::uint64_t iova,
                                  std::uint64_t len) const override;
    [[nodiscard]] Error unmap_error(int err, std::uint64_t iova, std::uint64_t len) const override;

    [[nodiscard]] Result<std::vector<IovaRange>> iova_ranges() override {
        auto r = query_ranges();
        if (!r)
            return fail(std::move(r.error()));
        return std::move(r->ranges);
    }
    // iommufd has no per-mapping entry limit like type1's dma_entry_limit.
    [[nodiscard]] Result<std::optional<std::uint32_t>> dma_entries_avail() override {
        return std::optional<std::uint32_t>{};
    }
    // The IOAS's out_iova_alignment is 1 before the first attach and never
    // exceeds the CPU page size (iommufd io_pagetable.c caps iova_alignment
    // at PAGE_SIZE), so the CPU page size is always a valid granule. Asking
    // the kernel here would add an ioctl to every map whose failure could
    // only be swallowed. Asked of sysconf once, not on every map.
    [[nodiscard]] std::uint64_t page_size() const override { return page_size_; }

    [[nodiscard]] SharedContainer share() const override {
        SharedContainer s;
        s.ioas_id = ioas_->id();
        return s;
    }
    // Another process bound the device to the iommufd and attached it to
    // this IOAS; the fd is a copy of its open file. Never marked attached,
    // so releasing it only closes our copy: no DETACH for everyone.
    [[nodiscard]] Result<std::unique_ptr<BackendDevice>> adopt_device(const DeviceRequest&,
                                                                      Fd device, Fd) override {
        return std::unique_ptr<BackendDevice>(
            std::make_unique<CdevDevice>(std::move(device), ioas_));
    }

    [[nodiscard]] Result<void> change_process() override;
    void set_owner(bool owner) override { ioas_->set_adopted(!owner); }

private:
    [[nodiscard]] std::string where() const { return "IOAS " + std::to_string(ioas_->id()); }
    [[nodiscard]] Result<std::unique_ptr<BackendDevice>> attach_device(const DeviceRequest& req);
    [[nodiscard]] Result<Fd> open_node(const DeviceRequest& req);
    [[nodiscard]] Result<void> bind(CdevDevice& dev, const DeviceRequest& req,
                                    const std::optional<Uuid>& token);
    [[nodiscard]] Result<void> attach_pt(CdevDevice& dev, const DeviceRequest& req);
    [[nodiscard]] Result<RangesReply> query_ranges() const;

    std::shared_ptr<Ioas> ioas_;
    bool noiommu_;
    const std::uint64_t page_size_ = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    DmaPath path_;  // IOMMU_IOAS_MAP/UNMAP on this IOAS
    // Learned at the first IOMMU_IOAS_MAP_FILE: false on kernels before 6.13.
    std::optional<bool> kernel_maps_files_;
};

std::string group_text(const DeviceRequest& req) {
    return req.group ? "IOMMU group " + std::to_string(*req.group) : "its IOMMU group";
}

Result<std::unique_ptr<BackendDevice>> CdevContainer::attach_device(const DeviceRequest& req) {
    // Bad input fails before anything is opened.
    std::optional<Uuid> token;
    if (!req.vf_token.empty()) {
        auto t = parse_uuid(req.vf_token);
        if (!t)
            return fail(std::move(t.error()).context("VF token"));
        token = *t;
    }
    // from_external_fds: the cdev was opened by whoever gave us the fd.
    auto fd = req.given ? Result<Fd>(std::move(*req.given)) : open_node(req);
    if (fd && !fd->valid())
        return fail(Error(EBADF, "take the given device cdev fd"));
    if (!fd)
        return fail(std::move(fd.error()));

    // From here on the device object owns the fd: returning an error
    // destroys it, which detaches (if attached) and closes (which unbinds).
    auto dev = std::make_unique<CdevDevice>(std::move(*fd), ioas_);
    if (auto r = bind(*dev, req, token); !r)
        return fail(std::move(r.error()));
    if (auto r = attach_pt(*dev, req); !r)
        return fail(std::move(r.error()));
    return std::unique_ptr<BackendDevice>(std::move(dev));
}

Result<Fd> CdevContainer::open_node(const DeviceRequest& req) {
    const std::string sys_dir = "/sys/bus/pci/devices/" + req.addr.str();
    if (!req.vfio_dev || req.vfio_dev->empty() ||
        req.vfio_dev->find('/') != std::string::npos) {
        // vfio-pci registers the cdev (and the vfio-dev/ entry) at probe
        // time, only with CONFIG_VFIO_DEVICE_CDEV (drivers/vfio/vfio_main.c).
        std::optional<std::string> driver;
        bool vfio_bound = false;
        if (req.root != nullptr) {
            driver = req.root->link_name(sys_dir + "/driver");
            vfio_bound = bound_to_vfio_pci(*req.root, req.addr);
        }
        Error e(ENODEV, "find the VFIO device cdev (" + sys_dir + "/vfio-dev/ is empty)");
        if (vfio_bound)
            e.hint("the device is bound to vfio-pci but the kernel has no VFIO device cdevs "
                   "(CONFIG_VFIO_DEVICE_CDEV is off): use group mode (--vfio-mode=group)");
        else
            e.hint("the device is not bound to vfio-pci" +
                   (driver ? " (driver: " + *driver + ")" : std::string()) +
                   ", or the kernel lacks CONFIG_VFIO_DEVICE_CDEV; " + bind_hint(req.addr));
        return fail(std::move(e));
    }
    const std::string node = "/dev/vfio/devices/" + *req.vfio_dev;
    auto fd = open_fd(node, O_RDWR);
    if (!fd) {
        Error& e = fd.error();
        if (e.err() == ENOENT)
            e.hint(*req.vfio_dev + " is registered but " + node +
                   " does not exist: is devtmpfs mounted on /dev?");
        else if (e.err() == EACCES)
            e.hint("run as root, or give this user read-write access to " + node);
        else if (e.err() == EPERM && noiommu_)
            // device_cdev.c vfio_device_fops_cdev_open
            e.hint("a no-IOMMU device's cdev opens only for a process with CAP_SYS_RAWIO: run "
                   "as root");
        else if (e.err() == ENODEV)
            e.hint("the device is being unbound from vfio-pci");
        return fail(std::move(e));
    }
    return fd;
}

// Errnos of VFIO_DEVICE_BIND_IOMMUFD on Linux 6.12, from the kernel source:
//   EINVAL   unknown flags (any flag: 6.12 has none), or the device is
//            already open through a cdev, by this or another process, or
//            bound twice through one fd (vfio_main.c vfio_df_open,
//            device_cdev.c), or its IOMMU does not enforce cache coherency
//            (iommufd/device.c iommufd_device_bind)
//   EBUSY    the group is open in group mode (/dev/vfio/N, anyone):
//            group.c vfio_device_block_group; the group node likewise
//            refuses to open while a cdev of the group is bound
//   EPERM    the group's DMA ownership belongs to another iommufd (a
//            group-mate bound to a different /dev/iommu fd:
//            iommu.c iommu_device_claim_dma_owner), or MSIs cannot be
//            isolated and iommufd.allow_unsafe_interrupts is off
//   EBADF    not an fd; EBADFD an fd that is not /dev/iommu
//            (iommufd/main.c iommufd_ctx_from_fd)
// Linux 6.17+ (VFIO_DEVICE_BIND_FLAG_TOKEN) checks the VF token here too,
// as the group path does (device_cdev.c vfio_df_check_token, vfio-pci's
// match_token_uuid): EACCES for a VF of a PF on vfio-pci without the
// token or with another, and for such a PF while one of its VFs is open;
// EINVAL for a token the device takes none of; EFAULT for a token pointer
// it cannot read. 6.12 checks no token on this path at all.
Result<void> CdevContainer::bind(CdevDevice& dev, const DeviceRequest& req,
                                 const std::optional<Uuid>& token) {
    Result<int> r = 0;
    if (token) {
        // 6.17+ layout: a pointer to the 16 bytes follows out_devid.
        uapi::vfio_device_bind_iommufd_token b{};
        b.argsz = sizeof b;
        b.flags = uapi::kVfioDeviceBindFlagToken;
        b.iommufd = ioas_->iommufd();
        b.token_uuid_ptr = reinterpret_cast<std::uintptr_t>(token->data());
        r = do_ioctl(dev.fd(), uapi::kVfioDeviceBindIommufd, &b,
                     "VFIO_DEVICE_BIND_IOMMUFD (VFIO_DEVICE_BIND_FLAG_TOKEN)");
        // Kernels before 6.17 check `flags` first and reject any bit with
        // EINVAL (device_cdev.c vfio_df_ioctl_bind_iommufd), before looking
        // at the device. Kernels with the flag answer EINVAL too when
        // vfio-pci refuses the token (vfio_pci_validate_vf_token: a device
        // that is neither an SR-IOV PF nor a VF) or the device is bound
        // already. Ask the kernel which it is: with the flag and no token
        // pointer, a kernel that knows the flag faults reading the token
        // (vfio_df_check_token: EFAULT), an older one says EINVAL again.
        if (!r && r.error().err() == EINVAL) {
            uapi::vfio_device_bind_iommufd_token probe = b;
            probe.token_uuid_ptr = 0;
            auto knows = do_ioctl(dev.fd(), uapi::kVfioDeviceBindIommufd, &probe,
                                  "VFIO_DEVICE_BIND_IOMMUFD (probe for the token flag)");
            if (!knows && knows.error().err() == EINVAL)
                return fail(std::move(
                    Error(EOPNOTSUPP, "ioctl VFIO_DEVICE_BIND_IOMMUFD with a VF token")
                        .hint(detail::cdev_token_unsupported_hint(req))));
            if (!detail::explain_vf_token(r.error(), req))
                r.error().hint("vf_token is only for SR-IOV PFs and VFs bound to vfio-pci; or "
                               "the device is already bound to an iommufd");
            return fail(std::move(r.error()));
        }
    } else {
        uapi::vfio_device_bind_iommufd b{};
        b.argsz = sizeof b;
        b.iommufd = ioas_->iommufd();
        r = do_ioctl(dev.fd(), uapi::kVfioDeviceBindIommufd, &b, "VFIO_DEVICE_BIND_IOMMUFD");
    }
    // out_devid (the device's id in the iommufd) is not needed: nothing
    // here addresses the device through the iommufd.
    if (r)
        return {};

    Error& e = r.error();
    const std::string group = group_text(req);
    const std::string group_node = noiommu_ ? "/dev/vfio/noiommu-" : "/dev/vfio/";
    const std::string node =
        group_node + (req.group ? std::to_string(*req.group) : std::string("<group>"));
    switch (e.err()) {
    case EBUSY:
        e.hint(group + " is open in group mode (" + node +
               ") by this or another process, which keeps its devices from being bound "
               "through their cdevs: close it (find the holder: ls -l /proc/*/fd | grep '" +
               node + "$'), or use " + (noiommu_ ? "--vfio-mode=noiommu" : "--vfio-mode=group") +
               " for this device");
        break;
    case EINVAL:
        e.hint("the device is already bound to an iommufd: opened through /dev/vfio/devices/" +
               *req.vfio_dev + " by this or another process (a cdev can be bound once at a "
               "time); or its IOMMU cannot enforce cache coherency");
        break;
    case EPERM:
        e.hint("another device of " + group + " is bound to a different iommufd (another "
               "process, or another /dev/iommu fd of this one): all devices of a group must "
               "use one iommufd; or MSIs cannot be isolated (no interrupt remapping) and "
               "iommufd.allow_unsafe_interrupts is off");
        break;
    case EBADF:
    case EBADFD:
        e.hint("fd " + std::to_string(ioas_->iommufd()) + " is not an open /dev/iommu");
        break;
    case EACCES:  // vfio_pci_core.c vfio_pci_validate_vf_token, via match_token_uuid
        if (!detail::explain_vf_token(e, req) && token)
            e.hint("the VF token does not match the one set on the PF");
        break;
    default:
        break;
    }
    return fail(std::move(e));
}

// Errnos of VFIO_DEVICE_ATTACH_IOMMUFD_PT (iommufd/device.c):
//   EINVAL      a group-mate is attached to another IOAS/HWPT: a group
//               has one domain, so all its devices share one container
//               (iommufd_hw_pagetable_attach)
//   EADDRINUSE  one of the device's reserved regions (the MSI window
//               0xfee00000-0xfeefffff on x86), or the part outside its
//               IOMMU's aperture, holds a mapping of this IOAS
//               (io_pagetable.c iopt_reserve_iova)
Result<void> CdevContainer::attach_pt(CdevDevice& dev, const DeviceRequest& req) {
    uapi::vfio_device_attach_iommufd_pt a{};
    a.argsz = sizeof a;
    a.pt_id = ioas_->id();
    auto r = do_ioctl(dev.fd(), uapi::kVfioDeviceAttachIommufdPt, &a,
                      "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
    if (r) {
        dev.set_attached();
        return {};
    }
    Error& e = r.error();
    e.context(where());
    if (e.err() == EINVAL)
        e.hint("another device of " + group_text(req) + " is attached to a different IOAS: "
               "the devices of one group must be in the same container");
    else if (e.err() == EADDRINUSE)
        e.hint("a mapping of this container covers IOVAs the device cannot use (a reserved "
               "region such as the MSI window 0xfee00000-0xfeefffff, or beyond the IOMMU's "
               "address width): unmap it before attaching the device");
    return fail(std::move(e));
}

Result<int> CdevContainer::ioas_map_file(int fd, std::uint64_t start, std::uint64_t iova,
                                        std::uint64_t len, std::string_view what) {
    uapi::iommu_ioas_map_file m{};
    m.size = sizeof m;
    m.flags = uapi::kIommuIoasMapFixedIova | uapi::kIommuIoasMapReadable |
              uapi::kIommuIoasMapWriteable;
    m.ioas_id = ioas_->id();
    m.fd = fd;
    m.start = start;
    m.length = len;
    m.iova = iova;
    return do_ioctl(ioas_->iommufd(), uapi::kIommuIoasMapFile, &m, what);
}

Result<void> CdevContainer::map_file(int fd, std::uint64_t offset, std::uint64_t iova,
                                    std::uint64_t len) {
    if (kernel_maps_files_ == false)
        return fail(ENOTSUP, "IOMMU_IOAS_MAP_FILE: not in this kernel (Linux 6.13+)");
    auto r = ioas_map_file(fd, offset, iova, len, "IOMMU_IOAS_MAP_FILE");
    if (r) {
        kernel_maps_files_ = true;
        return {};
    }
    // An iommufd without the command passes it to its vfio-compat handler,
    // which answers ENOTTY for anything it does not know
    // (drivers/iommu/iommufd/main.c, vfio_compat.c).
    if (r.error().err() == ENOTTY) {
        kernel_maps_files_ = false;
        return fail(ENOTSUP, "IOMMU_IOAS_MAP_FILE: not in this kernel (Linux 6.13+)");
    }
    return fail(std::move(r.error().context(where())));
}

// IOMMU_IOAS_MAP_FILE given a dma-buf (Linux 6.19+): io_pagetable.c
// iopt_map_file_pages tries dma_buf_get() on the fd first and keeps that
// reference for the mapping's life; pages.c iopt_alloc_dmabuf_pages and
// iopt_map_dmabuf attach to it. Its errnos:
//   EOPNOTSUPP  the dma-buf is not vfio-pci's, or has more than one range
//               (vfio_pci_dmabuf.c vfio_pci_dma_buf_iommufd_map)
//   ENODEV      the dma-buf is revoked already
//   EINVAL      the range runs past the dma-buf's end, or crosses a
//               reserved region of an attached device
//   ENOTTY      no IOMMU_IOAS_MAP_FILE at all (before 6.13)
// Such a mapping pins and accounts nothing (IOPT_PAGES_ACCOUNT_NONE) and
// cannot be split (io_pagetable.c iopt_area_split: EOPNOTSUPP), which the
// front end never asks. When the exporter revokes the dma-buf (reset,
// memory decoding off, device closed), iommufd unmaps the range from every
// IOMMU domain but keeps the area: the IOVA stays taken, DMA to it faults,
// and IOMMU_IOAS_UNMAP removes it like any other (pages.c
// iopt_revoke_notify; the map/unmap paths check iopt_dmabuf_revoked).
Result<void> CdevContainer::map_dma_buf(int fd, std::uint64_t iova, std::uint64_t len) {
    if (auto ok = maps_dma_bufs(); !ok)
        return ok;
    auto r = ioas_map_file(fd, 0, iova, len, "IOMMU_IOAS_MAP_FILE (dma-buf)");
    if (r)
        return {};
    Error& e = r.error();
    const std::string what = where() + ": map a dma-buf at " + range_text(iova, len);
    switch (e.err()) {
    case ENOTTY:
    case EOPNOTSUPP: {
        const std::string said = e.err() == ENOTTY ? "ENOTTY" : "EOPNOTSUPP";
        return fail(std::move(Error(ENOTSUP, what + ": this kernel's iommufd does not map this "
                                                    "dma-buf (it said " + said + ")")
                                  .hint("iommufd maps dma-bufs of vfio-pci BARs, one range each, "
                                        "from Linux 6.19 (CONFIG_VFIO_PCI_DMABUF)")));
    }
    case ENODEV:
        e.hint("the dma-buf is revoked: the exporting device's memory decoding is off "
               "(PCI_COMMAND_MEMORY), or it was reset or released since the export");
        break;
    case EINVAL:
        e.hint("the IOVA range crosses a reserved region of an attached device (the MSI window "
               "0xfee00000-0xfeefffff), or the length runs past the BAR slice");
        break;
    case EEXIST:
        e.hint("the IOVA range overlaps an existing mapping");
        break;
    default:
        break;
    }
    return fail(std::move(e.context(what)));
}

// IOMMU_IOAS_CHANGE_PROCESS (iommufd/ioas.c iommufd_ioas_change_process):
// every IOAS of the iommufd, not only this one. It refuses (EINVAL) if any
// mapping was made by address, since those pages belong to the mapper's
// address space; charges the caller first (ENOMEM when its RLIMIT_MEMLOCK
// cannot take them, for pages accounted per user) and only then uncharges
// the old owner, so a failure changes nothing. Pages mapped by a process
// with CAP_IPC_LOCK (iommufd/pages.c iopt_alloc_pages:
// IOPT_PAGES_ACCOUNT_NONE) are charged to nobody, yet change owner too.
Result<void> CdevContainer::change_process() {
    uapi::iommu_ioas_change_process c{};
    c.size = sizeof c;
    auto r = do_ioctl(ioas_->iommufd(), uapi::kIommuIoasChangeProcess, &c,
                      "IOMMU_IOAS_CHANGE_PROCESS");
    if (r)
        return {};
    Error& e = r.error();
    e.context("iommufd fd " + std::to_string(ioas_->iommufd()));
    switch (e.err()) {
    case ENOTTY:  // passed on to the vfio-compat handler, which knows nothing of it
        return fail(std::move(Error(ENOTSUP, "ioctl IOMMU_IOAS_CHANGE_PROCESS: not in this "
                                             "kernel (the kernel said ENOTTY)")
                                  .context("iommufd fd " + std::to_string(ioas_->iommufd()))
                                  .hint("moving pinned memory to another process needs "
                                        "IOMMU_IOAS_CHANGE_PROCESS (Linux 6.13+)")));
    case EINVAL:
        e.hint("a mapping of this iommufd (in any of its IOASes, perhaps a secondary's) was "
               "made by address (IOMMU_IOAS_MAP), whose pages cannot change process: only "
               "memory mapped by file (IOMMU_IOAS_MAP_FILE) can");
        break;
    case ENOMEM:
        e.hint("this process's RLIMIT_MEMLOCK (ulimit -l) cannot take the pinned pages; the "
               "kernel charges them here before it uncharges the old owner, so the user's "
               "locked memory counts twice for a moment");
        break;
    default:
        break;
    }
    return fail(std::move(e));
}

Result<void> CdevContainer::map(std::uint64_t vaddr, std::uint64_t iova, std::uint64_t len) {
    if (const int err = dma_path_map(path_, vaddr, iova, len); err != 0) [[unlikely]]
        return fail(map_error(err, vaddr, iova, len));
    return {};
}

// map()'s error, explained; cold, as map is a per-call path.
[[gnu::cold]] Error CdevContainer::map_error(int err, std::uint64_t vaddr, std::uint64_t iova,
                                             std::uint64_t len) const {
    Error e(err, "ioctl IOMMU_IOAS_MAP");
    e.context(where() + ": map " + range_text(iova, len) + " to vaddr " + hex(vaddr));
    switch (e.err()) {
    case ENOMEM:
        e.hint("pinning the memory exceeds RLIMIT_MEMLOCK (ulimit -l), or the kernel is out "
               "of memory");
        break;
    case EINVAL:  // io_pagetable.c iopt_check_iova
        e.hint("the IOVA range crosses a reserved region of an attached device or is not "
               "aligned to the IOAS's IOVA alignment: see the IOVA ranges");
        break;
    case EEXIST:
        e.hint("the IOVA range overlaps an existing mapping");
        break;
    case EFAULT:
        e.hint("the virtual address range is not mapped memory of this process");
        break;
    case EPERM:
        e.hint("the memory is read-only; the device may write to it");
        break;
    default:
        break;
    }
    return e;
}

// IOMMU_IOAS_UNMAP removes whole areas (earlier maps) inside the range and
// writes back the bytes removed (iommufd/ioas.c iommufd_ioas_unmap). An area
// that sticks out of the range fails the call with ENOENT, and so does a
// range that holds no area at all (unless it is the 0/UINT64_MAX
// "everything" form, which succeeds with 0). Beware: areas earlier in the
// range are already gone when ENOENT comes for a later one, and the count
// is not reported then (io_pagetable.c iopt_unmap_iova_range). The front
// end only asks for ranges made of whole mappings, so neither happens.
Result<std::uint64_t> CdevContainer::unmap(std::uint64_t iova, std::uint64_t len) {
    std::uint64_t bytes = 0;
    if (const int err = dma_path_unmap(path_, iova, len, bytes); err != 0) [[unlikely]]
        return fail(unmap_error(err, iova, len));
    return bytes;
}

// unmap()'s error, explained; cold, as unmap is a per-call path.
[[gnu::cold]] Error CdevContainer::unmap_error(int err, std::uint64_t iova,
                                               std::uint64_t len) const {
    Error e(err, "ioctl IOMMU_IOAS_UNMAP");
    e.context(where() + ": " +
              (iova == 0 && len == UINT64_MAX ? "unmap all" : "unmap " + range_text(iova, len)));
    if (e.err() == ENOENT)
        e.hint("the range holds no mapping, or cuts one: mappings can only be unmapped whole");
    return e;
}

// iova 0 with length UINT64_MAX is the kernel's "unmap everything" (ioas.c
// iommufd_ioas_unmap calls iopt_unmap_all for exactly that pair), which
// also succeeds on an empty IOAS.
Result<std::uint64_t> CdevContainer::unmap_all() {
    return unmap(0, UINT64_MAX);
}

// The allowed ranges are the holes between the reserved ranges, which every
// attached device adds to (its reserved regions: the MSI window on x86; the
// part outside its IOMMU's aperture) and a detach removes again
// (iommufd/ioas.c iommufd_ioas_iova_ranges). So they are never cached.
// Protocol: ask with room for num_iovas ranges; when there are more, the
// kernel writes the count back and fails with EMSGSIZE; ask again with room
// for that many. The first ask has room for a few (x86: two or three, the
// MSI window cutting the space), so one ioctl is the rule. The count can
// grow in between (a concurrent attach), hence the loop.
Result<RangesReply> CdevContainer::query_ranges() const {
    std::vector<uapi::iommu_iova_range> buf(8);
    for (int attempt = 0; attempt < 4; ++attempt) {
        uapi::iommu_ioas_iova_ranges q{};
        q.size = sizeof q;
        q.ioas_id = ioas_->id();
        q.num_iovas = static_cast<std::uint32_t>(buf.size());
        q.allowed_iovas = reinterpret_cast<std::uintptr_t>(buf.data());
        auto r = do_ioctl(ioas_->iommufd(), uapi::kIommuIoasIovaRanges, &q,
                          "IOMMU_IOAS_IOVA_RANGES");
        if (r) {
            RangesReply out;
            out.alignment = q.out_iova_alignment;
            for (std::uint32_t i = 0; i < q.num_iovas && i < buf.size(); ++i)
                out.ranges.push_back({buf[i].start, buf[i].last});
            return out;
        }
        if (r.error().err() != EMSGSIZE || q.num_iovas <= buf.size())
            return fail(std::move(r.error().context(where())));
        buf.resize(q.num_iovas);
    }
    return fail(std::move(Error(EMSGSIZE, "ioctl IOMMU_IOAS_IOVA_RANGES")
                              .context(where())
                              .hint("the ranges kept changing while being read")));
}

// One lookup (iommufd/ioas.c iommufd_ioas_noiommu_get_pa, io_pagetable.c
// iopt_get_phys). The answer covers at most one CPU page past the first
// physically discontiguous step, and never crosses the end of the mapping
// that holds `iova`; the caller asks again from where it stopped.
Result<PhysicalRange> CdevContainer::physical_address(std::uint64_t iova, std::uint64_t max_len) {
    if (!noiommu_)
        return fail(ENOTSUP, "physical address lookup: not in cdev mode (an IOMMU translates: "
                             "devices use IOVAs)");
    if (max_len == 0)
        return fail(EINVAL, "physical address lookup: length 0");
    uapi::iommu_ioas_noiommu_get_pa q{};
    q.size = sizeof q;
    q.ioas_id = ioas_->id();
    q.iova = iova;
    q.length = max_len;
    auto r = do_ioctl(ioas_->iommufd(), uapi::kIommuIoasNoiommuGetPa, &q,
                      "IOMMU_IOAS_NOIOMMU_GET_PA");
    if (r) {
        if (q.length == 0 || q.length > max_len)
            return fail(Error(EIO, "ioctl IOMMU_IOAS_NOIOMMU_GET_PA: the kernel answered " +
                                       hex(q.length) + " bytes for at most " + hex(max_len))
                            .context(where()));
        return PhysicalRange{q.out_phys, q.length};
    }
    Error& e = r.error();
    e.context(where() + ": physical address of IOVA " + hex(iova));
    switch (e.err()) {
    case EOPNOTSUPP:
        // No no-IOMMU page table holds the mapping: no device is attached
        // (or the mapping is a revoked dma-buf's).
        return fail(std::move(Error(EAGAIN, "ioctl IOMMU_IOAS_NOIOMMU_GET_PA: no no-IOMMU page "
                                            "table holds the mapping (the kernel said "
                                            "EOPNOTSUPP)")
                                  .context(where() + ": physical address of IOVA " + hex(iova))
                                  .hint("the kernel pins the memory of a cdev no-IOMMU container "
                                        "and knows its physical addresses only while a device is "
                                        "attached: assign a device first")));
    case EPERM:
        e.hint("IOMMU_IOAS_NOIOMMU_GET_PA needs CAP_SYS_RAWIO: run as root");
        break;
    case ENOENT:
        e.hint("nothing is mapped at this IOVA");
        break;
    case ENOTTY:
        e.hint("the kernel has no IOMMU_IOAS_NOIOMMU_GET_PA (Linux 7.3+, "
               "CONFIG_IOMMUFD_NOIOMMU)");
        break;
    default:
        break;
    }
    return fail(std::move(e));
}

Result<std::unique_ptr<ContainerBackend>> make(const BackendConfig& c, bool noiommu) {
    if (c.iommufd < 0)
        return fail(std::move(Error(EBADF, "create an IOAS")
                                  .hint("cdev mode needs the process's iommufd: open /dev/iommu "
                                        "(CONFIG_IOMMUFD) before creating a container")));
    uapi::iommu_ioas_alloc a{};
    a.size = sizeof a;
    auto r = do_ioctl(c.iommufd, uapi::kIommuIoasAlloc, &a, "IOMMU_IOAS_ALLOC");
    if (!r)
        return fail(std::move(r.error().context("iommufd fd " + std::to_string(c.iommufd))));
    auto ioas = std::make_shared<Ioas>(c.iommufd, a.out_ioas_id);
    return std::unique_ptr<ContainerBackend>(
        std::make_unique<CdevContainer>(std::move(ioas), noiommu));
}

Result<std::unique_ptr<ContainerBackend>> adopt(const BackendConfig& cfg, bool noiommu) {
    const int iommufd = cfg.iommufd;
    const std::uint32_t ioas_id = cfg.ioas_id;
    if (iommufd < 0)
        return fail(EPROTO, "adopt IOAS " + std::to_string(ioas_id) + ": no iommufd given");
    auto c = std::make_unique<CdevContainer>(std::make_shared<Ioas>(iommufd, ioas_id, true),
                                             noiommu);
    // Proves the fd is an iommufd holding that IOAS (ENOENT otherwise).
    if (auto r = c->iova_ranges(); !r)
        return fail(Error(EPROTO, "adopt IOAS " + std::to_string(ioas_id) + " of iommufd fd " +
                                      std::to_string(iommufd) + ": " + r.error().message()));
    return std::unique_ptr<ContainerBackend>(std::move(c));
}

}  // namespace

Result<std::unique_ptr<ContainerBackend>> make_cdev_backend(const BackendConfig& c) {
    return make(c, false);
}
Result<std::unique_ptr<ContainerBackend>> adopt_cdev_backend(const BackendConfig& c) {
    return adopt(c, false);
}
Result<std::unique_ptr<ContainerBackend>> make_cdev_noiommu_backend(const BackendConfig& c) {
    return make(c, true);
}
Result<std::unique_ptr<ContainerBackend>> adopt_cdev_noiommu_backend(const BackendConfig& c) {
    return adopt(c, true);
}

}  // namespace vfiokit::vfio
