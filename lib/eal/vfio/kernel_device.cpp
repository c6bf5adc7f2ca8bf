// DeviceOps over a VFIO device fd, for every kernel backend.
//
// Kernel references (Linux 6.12): drivers/vfio/vfio_main.c (device fd
// ioctls, VFIO_DEVICE_FEATURE), drivers/vfio/pci/vfio_pci_core.c
// (GET_INFO, GET_REGION_INFO, GET_IRQ_INFO, SET_IRQS, RESET, mmap),
// drivers/vfio/pci/vfio_pci_rdwr.c (pread/pwrite), vfio_pci_intrs.c;
// Linux 7.3 for the dma-buf export: drivers/vfio/pci/vfio_pci_dmabuf.c.
#include "kernel_device.hpp"

#include <fcntl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "caps.hpp"
#include "vfiokit/uapi/vfio.hpp"
#include "vfiokit/eal/format.hpp"

namespace vfiokit::vfio::detail {

namespace {

std::string region_text(std::uint32_t index) { return "region " + std::to_string(index); }

std::string access_text(std::uint32_t index, std::uint64_t off, std::uint64_t len) {
    return region_text(index) + " offset " + hex(off) + " length " + std::to_string(len);
}

std::uint32_t action_flag(IrqAction a) {
    switch (a) {
    case IrqAction::trigger: return uapi::kVfioIrqSetActionTrigger;
    case IrqAction::mask: return uapi::kVfioIrqSetActionMask;
    case IrqAction::unmask: return uapi::kVfioIrqSetActionUnmask;
    }
    return 0;
}

}  // namespace

Result<DeviceInfo> KernelDevice::info() {
    uapi::vfio_device_info i{};
    i.argsz = sizeof i;
    if (auto r = do_ioctl(fd(), uapi::kVfioDeviceGetInfo, &i, "VFIO_DEVICE_GET_INFO"); !r)
        return fail(std::move(r.error()));
    return DeviceInfo{i.flags, i.num_regions, i.num_irqs,
                      (i.flags & uapi::kVfioDeviceFlagsReset) != 0,
                      (i.flags & uapi::kVfioDeviceFlagsPci) != 0};
}

Result<RegionInfo> KernelDevice::region_info(std::uint32_t index) {
    constexpr std::string_view what = "VFIO_DEVICE_GET_REGION_INFO";
    using Head = uapi::vfio_region_info;
    // With capabilities the first call only learns how big the chain is
    // (vfio_pci_core.c vfio_pci_ioctl_get_region_info); read_info asks
    // again with room for it.
    auto buf = read_info(
        sizeof(Head), uapi::kVfioRegionInfoFlagCaps,
        [&](void* p) -> Result<void> {
            static_cast<Head*>(p)->index = index;
            if (auto r = do_ioctl(fd(), uapi::kVfioDeviceGetRegionInfo, p, what); !r)
                return fail(std::move(r.error()));
            return {};
        },
        what);
    if (!buf)
        return fail(std::move(buf.error().context(region_text(index))));
    Head head;
    (void)buf->read(0, head);

    RegionInfo info;
    info.index = index;
    info.size = head.size;
    info.offset = head.offset;
    info.readable = (head.flags & uapi::kVfioRegionInfoFlagRead) != 0;
    info.writable = (head.flags & uapi::kVfioRegionInfoFlagWrite) != 0;
    info.mappable = (head.flags & uapi::kVfioRegionInfoFlagMmap) != 0;

    // cap_offset is only meaningful with the CAPS flag and a buffer that
    // held the chain.
    const std::uint32_t first =
        (head.flags & uapi::kVfioRegionInfoFlagCaps) != 0 && buf->size() > sizeof head
            ? head.cap_offset
            : 0;
    auto walked = walk_caps(
        *buf, sizeof head, first,
        [&](const Cap& cap) -> Result<void> {
            if (cap.id == uapi::kVfioRegionInfoCapSparseMmap) {
                using Area = uapi::vfio_region_sparse_mmap_area;
                uapi::vfio_region_info_cap_sparse_mmap s;
                if (!buf->read(cap.offset, s) ||
                    !buf->fits(cap.offset,
                               uapi::size_with_trailer<decltype(s), Area>(s.nr_areas)))
                    return fail(malformed(what));
                for (std::uint32_t i = 0; i < s.nr_areas; ++i) {
                    Area a;
                    (void)buf->read(cap.offset + sizeof s + i * sizeof a, a);
                    info.sparse.push_back({a.offset, a.size});
                }
            } else if (cap.id == uapi::kVfioRegionInfoCapType) {
                uapi::vfio_region_info_cap_type t;
                if (!buf->read(cap.offset, t))
                    return fail(malformed(what));
                info.type = t.type;
                info.subtype = t.subtype;
            } else if (cap.id == uapi::kVfioRegionInfoCapMsixMappable) {
                info.msix_mappable = true;
            }
            return {};
        },
        what);
    if (!walked)
        return fail(std::move(walked.error().context(region_text(index))));
    remember(index, Slot{head.offset, head.size, head.flags});
    return info;
}

void KernelDevice::remember(std::uint32_t index, const Slot& s) {
    std::lock_guard lock(mu_);
    slots_[index] = s;
}

Result<KernelDevice::Slot> KernelDevice::slot(std::uint32_t index) {
    {
        std::lock_guard lock(mu_);
        if (auto it = slots_.find(index); it != slots_.end())
            return it->second;
    }
    // Only the fixed part: offset, size and flags are all an access needs.
    uapi::vfio_region_info h{};
    h.argsz = sizeof h;
    h.index = index;
    if (auto r = do_ioctl(fd(), uapi::kVfioDeviceGetRegionInfo, &h, "VFIO_DEVICE_GET_REGION_INFO");
        !r)
        return fail(std::move(r.error().context(region_text(index))));
    Slot s{h.offset, h.size, h.flags};
    remember(index, s);
    return s;
}

Result<KernelDevice::Slot> KernelDevice::checked(std::uint32_t index, std::uint64_t off,
                                                 std::uint64_t len, std::uint32_t need,
                                                 std::string_view what) {
    auto s = slot(index);
    if (!s)
        return fail(std::move(s.error()));
    const std::string where = access_text(index, off, len);
    if (s->size == 0)
        return fail(Error(ENODEV, "region does not exist (size 0)").context(where));
    if (off > s->size || len > s->size - off)
        return fail(Error(EINVAL, "access outside the region (size " + hex(s->size) + ")")
                        .context(where));
    if ((s->flags & need) == 0)
        return fail(Error(EACCES, "region is not " + std::string(what)).context(where));
    return s;
}

Result<void> KernelDevice::read_region(std::uint32_t index, std::uint64_t off, void* buf,
                                       std::size_t len) {
    auto s = checked(index, off, len, uapi::kVfioRegionInfoFlagRead, "readable");
    if (!s)
        return fail(std::move(s.error()));
    // vfio-pci performs one access of the requested width for 1, 2, 4 and
    // 8 bytes (vfio_pci_rdwr.c vfio_pci_core_do_io_rw).
    const ssize_t n = sys().pread(fd(), buf, len, static_cast<off_t>(s->offset + off));
    if (n < 0)
        return fail(Error(errno, "pread").context(access_text(index, off, len)));
    if (static_cast<std::size_t>(n) != len)
        return fail(Error(EIO, "short pread: " + std::to_string(n) + " bytes")
                        .context(access_text(index, off, len)));
    return {};
}

Result<void> KernelDevice::write_region(std::uint32_t index, std::uint64_t off, const void* buf,
                                        std::size_t len) {
    auto s = checked(index, off, len, uapi::kVfioRegionInfoFlagWrite, "writable");
    if (!s)
        return fail(std::move(s.error()));
    const ssize_t n = sys().pwrite(fd(), buf, len, static_cast<off_t>(s->offset + off));
    if (n < 0)
        return fail(Error(errno, "pwrite").context(access_text(index, off, len)));
    if (static_cast<std::size_t>(n) != len)
        return fail(Error(EIO, "short pwrite: " + std::to_string(n) + " bytes")
                        .context(access_text(index, off, len)));
    return {};
}

Result<Mapping> KernelDevice::map_region(std::uint32_t index, std::uint64_t off, std::uint64_t len,
                                         int prot, void* at) {
    auto s = slot(index);
    if (!s)
        return fail(std::move(s.error()));
    const std::string where = access_text(index, off, len);
    if (len == 0 || off > s->size || len > s->size - off)
        return fail(Error(EINVAL, "mmap outside the region (size " + hex(s->size) + ")")
                        .context(where));
    // vfio_pci_core_mmap checks MMAP, alignment and the sparse areas itself.
    const int flags = MAP_SHARED | (at != nullptr ? MAP_FIXED_NOREPLACE : 0);
    return map_memory(at, len, prot, flags, fd(), static_cast<off_t>(s->offset + off), where);
}

Result<IrqInfo> KernelDevice::irq_info(std::uint32_t index) {
    uapi::vfio_irq_info i{};
    i.argsz = sizeof i;
    i.index = index;
    if (auto r = do_ioctl(fd(), uapi::kVfioDeviceGetIrqInfo, &i, "VFIO_DEVICE_GET_IRQ_INFO"); !r)
        return fail(std::move(r.error().context("IRQ index " + std::to_string(index))));
    IrqInfo info;
    info.index = index;
    info.count = i.count;
    info.eventfd = (i.flags & uapi::kVfioIrqInfoEventfd) != 0;
    info.maskable = (i.flags & uapi::kVfioIrqInfoMaskable) != 0;
    info.automasked = (i.flags & uapi::kVfioIrqInfoAutomasked) != 0;
    info.noresize = (i.flags & uapi::kVfioIrqInfoNoresize) != 0;
    return info;
}

Result<void> KernelDevice::set_irqs(const IrqRequest& r) {
    constexpr std::string_view what = "VFIO_DEVICE_SET_IRQS";
    const bool with_fds = !r.eventfds.empty();
    if (with_fds && r.eventfds.size() != r.count)
        return fail(EINVAL, std::string(what) + ": " + std::to_string(r.eventfds.size()) +
                                " eventfd(s) for " + std::to_string(r.count) + " vector(s)");
    // vfio_irq_set with a trailer of `count` int32 eventfds, or none.
    const std::size_t bytes =
        uapi::size_with_trailer<uapi::vfio_irq_set, std::int32_t>(with_fds ? r.count : 0);
    std::vector<std::uint64_t> buf((bytes + 7) / 8, 0);
    auto* set = static_cast<uapi::vfio_irq_set*>(static_cast<void*>(buf.data()));
    set->argsz = static_cast<std::uint32_t>(bytes);
    set->flags = (with_fds ? uapi::kVfioIrqSetDataEventfd : uapi::kVfioIrqSetDataNone) |
                 action_flag(r.action);
    set->index = r.index;
    set->start = r.start;
    set->count = r.count;
    if (with_fds)
        std::memcpy(uapi::trailer_of<std::int32_t>(set), r.eventfds.data(),
                    r.eventfds.size() * sizeof(std::int32_t));
    if (auto ok = do_ioctl(fd(), uapi::kVfioDeviceSetIrqs, set, what); !ok)
        return fail(std::move(ok.error()));
    return {};
}

Result<void> KernelDevice::ioeventfd(std::uint32_t index, std::uint64_t offset, unsigned size,
                                     std::uint64_t data, int efd) {
    const std::string what = "VFIO_DEVICE_IOEVENTFD (region " + std::to_string(index) + " + " +
                             std::to_string(offset) + ", " + std::to_string(size) + " bytes)";
    std::uint32_t width = 0;
    switch (size) {
    case 1: width = uapi::kVfioDeviceIoeventfd8; break;
    case 2: width = uapi::kVfioDeviceIoeventfd16; break;
    case 4: width = uapi::kVfioDeviceIoeventfd32; break;
    case 8: width = uapi::kVfioDeviceIoeventfd64; break;
    default: return fail(EINVAL, what + ": the width must be 1, 2, 4 or 8 bytes");
    }
    // The kernel takes a device fd offset: the region's own, plus ours.
    auto info = region_info(index);
    if (!info)
        return fail(std::move(info.error()).context(what));
    if (offset + size > info->size || offset + size < offset)
        return fail(EINVAL, what + ": outside the region's " + std::to_string(info->size) + " bytes");
    uapi::vfio_device_ioeventfd e{};
    e.argsz = sizeof e;
    e.flags = width;
    e.offset = info->offset + offset;
    e.data = data;
    e.fd = efd;
    if (auto r = do_ioctl(fd(), uapi::kVfioDeviceIoeventfd, &e, "VFIO_DEVICE_IOEVENTFD"); !r)
        return fail(std::move(r.error()).context(what));
    return {};
}

Result<void> KernelDevice::reset() {
    if (auto r = do_ioctl(fd(), uapi::kVfioDeviceReset, nullptr, "VFIO_DEVICE_RESET"); !r)
        return fail(std::move(r.error()));
    return {};
}

Result<void> KernelDevice::feature(std::uint32_t feature, FeatureOp op,
                                   std::span<std::uint8_t> payload) {
    if (feature > uapi::kVfioDeviceFeatureMask)
        return fail(EINVAL, "VFIO_DEVICE_FEATURE: feature " + std::to_string(feature) +
                                " is not a 16-bit index");
    std::uint32_t flags = feature;
    bool data = false;
    switch (op) {
    case FeatureOp::probe: flags |= uapi::kVfioDeviceFeatureProbe; break;
    case FeatureOp::probe_get:
        flags |= uapi::kVfioDeviceFeatureProbe | uapi::kVfioDeviceFeatureGet;
        break;
    case FeatureOp::probe_set:
        flags |= uapi::kVfioDeviceFeatureProbe | uapi::kVfioDeviceFeatureSet;
        break;
    case FeatureOp::get: flags |= uapi::kVfioDeviceFeatureGet; data = true; break;
    case FeatureOp::set: flags |= uapi::kVfioDeviceFeatureSet; data = true; break;
    }
    // The payload follows the header and argsz covers it
    // (vfio_main.c vfio_check_feature); a probe needs none.
    const std::size_t extra = data ? payload.size() : 0;
    const std::size_t bytes = sizeof(uapi::vfio_device_feature) + extra;
    if (bytes > kMaxInfoSize)
        return fail(EINVAL, "VFIO_DEVICE_FEATURE: payload of " + std::to_string(extra) +
                                " bytes is too large");
    std::vector<std::uint64_t> buf((bytes + 7) / 8, 0);
    auto* f = static_cast<uapi::vfio_device_feature*>(static_cast<void*>(buf.data()));
    f->argsz = static_cast<std::uint32_t>(bytes);
    f->flags = flags;
    auto* body = uapi::trailer_of<std::uint8_t>(f);
    if (op == FeatureOp::set && extra != 0)
        std::memcpy(body, payload.data(), extra);
    if (auto r = do_ioctl(fd(), uapi::kVfioDeviceFeature, f, "VFIO_DEVICE_FEATURE"); !r)
        return fail(std::move(r.error().context("feature " + std::to_string(feature))));
    if (op == FeatureOp::get && extra != 0)
        std::memcpy(payload.data(), body, extra);
    return {};
}

// VFIO_DEVICE_FEATURE, GET of DMA_BUF with one range
// (vfio_pci_dmabuf.c vfio_pci_core_feature_dma_buf). Its errnos:
//   ENOTTY      no such feature: a kernel before 6.19, or built without
//               CONFIG_VFIO_PCI_DMABUF (vfio_pci_core_ioctl_feature's
//               default case)
//   EOPNOTSUPP  the device's driver cannot export (no get_dmabuf_phys: a
//               vfio-pci variant driver)
//   EINVAL      offset or length not page-aligned, the range not inside
//               the BAR (vfio_pci_core_fill_phys_vec), or the BAR not
//               memory (pcim_p2pdma_provider gives no provider)
//   ENODEV      an index past the BARs (ROM and up), or the device is
//               being unregistered
// The new dma-buf is born revoked when the device's memory decoding is
// off; importers then fail (iommufd: ENODEV at IOMMU_IOAS_MAP_FILE).
Result<Fd> KernelDevice::export_dma_buf(std::uint32_t index, std::uint64_t offset,
                                        std::uint64_t len) {
    const std::string what = "export " + access_text(index, offset, len) + " as a dma-buf";
    // The feature header, its payload, and the payload's one range: argsz
    // covers them all (vfio_main.c vfio_ioctl_device_feature).
    struct Request {
        uapi::vfio_device_feature head;
        uapi::vfio_device_feature_dma_buf body;
        uapi::vfio_region_dma_range range;
    };
    static_assert(offsetof(Request, range) ==
                      sizeof(uapi::vfio_device_feature) + sizeof(uapi::vfio_device_feature_dma_buf),
                  "the range must follow the payload, where the kernel reads dma_ranges[]");
    Request req{};
    req.head.argsz = sizeof req;
    req.head.flags = uapi::kVfioDeviceFeatureDmaBuf | uapi::kVfioDeviceFeatureGet;
    req.body.region_index = index;
    req.body.open_flags = O_RDWR | O_CLOEXEC;
    req.body.nr_ranges = 1;
    req.range.offset = offset;
    req.range.length = len;
    auto r = ioctl_fd(fd(), uapi::kVfioDeviceFeature, &req, "VFIO_DEVICE_FEATURE (DMA_BUF)");
    if (r)
        return r;
    Error& e = r.error();
    switch (e.err()) {
    case ENOTTY:
        return fail(std::move(Error(ENOTSUP, what + ": the kernel has no "
                                                    "VFIO_DEVICE_FEATURE_DMA_BUF (it said ENOTTY)")
                                  .hint("exporting a BAR as a dma-buf needs Linux 6.19+ built "
                                        "with CONFIG_VFIO_PCI_DMABUF (which CONFIG_PCI_P2PDMA "
                                        "and the dma-buf core bring)")));
    case EOPNOTSUPP:
        return fail(std::move(Error(ENOTSUP, what + ": the device's VFIO driver cannot export "
                                                    "its BARs (it said EOPNOTSUPP)")
                                  .hint("vfio-pci can; a vfio-pci variant driver may not")));
    case EINVAL:
        e.hint("the BAR must be a memory BAR (not I/O ports), the range page-aligned and inside "
               "it");
        break;
    case ENODEV:
        e.hint("BARs are regions 0-5; or the device is being removed from vfio-pci");
        break;
    default:
        break;
    }
    return fail(std::move(e.context(what)));
}

Result<void> check_kernel_device_fd(int fd, PciAddress a) {
    uapi::vfio_device_info info{};
    info.argsz = sizeof info;
    auto ok = do_ioctl(fd, uapi::kVfioDeviceGetInfo, &info, "VFIO_DEVICE_GET_INFO");
    if (!ok)
        return fail(Error(EPROTO, "the fd given for device " + a.str() +
                                      " is not a usable VFIO device (" + ok.error().message() +
                                      ")"));
    if ((info.flags & uapi::kVfioDeviceFlagsPci) == 0)
        return fail(EPROTO, "the fd given for device " + a.str() + " is not a VFIO PCI device");
    return {};
}

}  // namespace vfiokit::vfio::detail
