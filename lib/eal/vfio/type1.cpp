// The type1 DMA protocol on a group-style container fd, shared by group
// and compat (whose /dev/iommu fd serves the same ioctls through iommufd's
// emulation, drivers/iommu/iommufd/vfio_compat.c): VFIO_IOMMU_GET_INFO with
// its capability chain, MAP_DMA, UNMAP_DMA (and unmap-all), IOVA ranges and
// the DMA-entry count. noiommu overrides all of them (nothing translates).
//
// Kernel references (Linux 6.12): drivers/vfio/vfio_iommu_type1.c
// (MAP/UNMAP/GET_INFO).
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

#include "caps.hpp"
#include "group_style.hpp"
#include "vfiokit/eal/format.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio::detail {

Result<IommuInfo> query_iommu_info(int container_fd, bool caps) {
    constexpr std::string_view what = "VFIO_IOMMU_GET_INFO";
    using Head = uapi::vfio_iommu_type1_info;
    // A too-small argsz still succeeds, with argsz raised to what the chain
    // needs and cap_offset 0 (vfio_iommu_type1.c vfio_iommu_type1_get_info,
    // vfio_compat.c iommufd_vfio_iommu_get_info); read_info asks again.
    // Room for the usual chain (IOVA ranges, migration, DMA-avail: well
    // under 512 bytes with a few ranges) in the first call: a larger argsz
    // is fine with the kernel, a smaller one costs a second ioctl.
    constexpr std::uint32_t kInfoGuess = 512;
    auto buf = read_info(
        caps ? kInfoGuess : sizeof(Head), caps ? uapi::kVfioIommuInfoCaps : 0,
        [&](void* p) -> Result<void> {
            if (auto r = do_ioctl(container_fd, uapi::kVfioIommuGetInfo, p, what); !r)
                return fail(std::move(r.error()));
            return {};
        },
        what);
    if (!buf)
        return fail(std::move(buf.error()));
    Head h;
    (void)buf->read(0, h);
    IommuInfo info;
    if ((h.flags & uapi::kVfioIommuInfoPgsizes) != 0)
        info.iova_pgsizes = h.iova_pgsizes;
    // cap_offset counts only when the buffer held the chain.
    const bool chain = (h.flags & uapi::kVfioIommuInfoCaps) != 0 && buf->size() > sizeof h;
    auto walked = walk_caps(
        *buf, sizeof h, chain ? h.cap_offset : 0,
        [&](const Cap& cap) -> Result<void> {
            if (cap.id == uapi::kVfioIommuType1InfoCapIovaRange) {
                using Range = uapi::vfio_iova_range;
                uapi::vfio_iommu_type1_info_cap_iova_range r;
                if (!buf->read(cap.offset, r) ||
                    !buf->fits(cap.offset, uapi::size_with_trailer<decltype(r), Range>(r.nr_iovas)))
                    return fail(malformed(what));
                std::vector<IovaRange> ranges;
                for (std::uint32_t i = 0; i < r.nr_iovas; ++i) {
                    Range one;
                    (void)buf->read(cap.offset + sizeof r + i * sizeof one, one);
                    ranges.push_back({one.start, one.end});
                }
                info.ranges = std::move(ranges);
            } else if (cap.id == uapi::kVfioIommuType1InfoDmaAvail) {
                uapi::vfio_iommu_type1_info_dma_avail a;
                if (!buf->read(cap.offset, a))
                    return fail(malformed(what));
                info.dma_avail = a.avail;
            }
            return {};
        },
        what);
    if (!walked)
        return fail(std::move(walked.error()));
    return info;
}

// --- type1 DMA on the container fd -------------------------------------------

Result<void> GroupStyleBackend::require_ready(std::string_view what) const {
    if (model_set_)
        return {};
    return fail(Error(EAGAIN, std::string(what) + ": the container has no IOMMU model yet")
                    .hint("the kernel sets it when the first device is attached"));
}

void GroupStyleBackend::explain_map_error(Error& e) const {
    switch (e.err()) {
    case ENOMEM:
        e.hint("pinning the pages would exceed RLIMIT_MEMLOCK (raise it: ulimit -l), or memory "
               "is short");
        break;
    case EEXIST:
        e.hint("the IOVA range overlaps a mapping the kernel already has");
        break;
    case EINVAL:
        e.hint("unaligned to the IOMMU page size, or outside the container's IOVA ranges");
        break;
    default:
        break;
    }
}

Result<void> GroupStyleBackend::map(std::uint64_t vaddr, std::uint64_t iova, std::uint64_t len) {
    if (const int err = dma_path_map(path_, vaddr, iova, len); err != 0) [[unlikely]]
        return fail(map_error(err, vaddr, iova, len));
    return {};
}

[[gnu::cold]] Error GroupStyleBackend::map_error(int err, std::uint64_t, std::uint64_t,
                                                 std::uint64_t) const {
    Error e(err, "ioctl VFIO_IOMMU_MAP_DMA");
    explain_map_error(e);
    return e;
}

Result<std::uint64_t> GroupStyleBackend::unmap(std::uint64_t iova, std::uint64_t len) {
    std::uint64_t bytes = 0;
    if (const int err = dma_path_unmap(path_, iova, len, bytes); err != 0) [[unlikely]]
        return fail(unmap_error(err, iova, len));
    return bytes;
}

[[gnu::cold]] Error GroupStyleBackend::unmap_error(int err, std::uint64_t iova,
                                                   std::uint64_t len) const {
    Error e(err, "ioctl VFIO_IOMMU_UNMAP_DMA");
    // type1v2 refuses a range that cuts a mapping with EINVAL, iommufd
    // with ENOENT (vfio_iommu_type1.c vfio_dma_do_unmap, io_pagetable.c
    // iopt_unmap_iova_range).
    if (e.err() == EINVAL || e.err() == ENOENT)
        e.hint("the range must cover whole mappings");
    e.context("unmap " + range_text(iova, len));
    return e;
}

Result<std::uint64_t> GroupStyleBackend::unmap_all() {
    if (!unmap_all_ext_) {
        auto all = do_ioctl(container_.get(), uapi::kVfioCheckExtension,
                            int_arg(uapi::kVfioUnmapAll), "VFIO_CHECK_EXTENSION(VFIO_UNMAP_ALL)");
        if (!all)
            return fail(std::move(all.error()).context("unmap all"));
        unmap_all_ext_ = *all > 0;
    }
    if (*unmap_all_ext_) {
        uapi::vfio_iommu_type1_dma_unmap u{};
        u.argsz = sizeof u;
        u.flags = uapi::kVfioDmaUnmapFlagAll;  // iova and size must be 0
        if (auto ok = do_ioctl(container_.get(), uapi::kVfioIommuUnmapDma, &u,
                               "VFIO_IOMMU_UNMAP_DMA(ALL)");
            !ok)
            return fail(std::move(ok.error()).context("unmap all"));
        path_.avail_stale = true;
        return u.size;
    }
    // Without VFIO_UNMAP_ALL, sweep [0, 2^64) in two ranges: type1 refuses a
    // zero size and a range whose last byte wraps (vfio_dma_do_unmap), and
    // iommufd a range whose last byte overflows (iopt_unmap_iova), so
    // [0, 2^64 - pg) and [2^64 - pg, 2^64) is the fewest that both accept.
    // Starting at 0 matters for type1 v1, which stops at a mapping that
    // begins before the range.
    const std::uint64_t pg = page_size();
    const std::uint64_t top = ~std::uint64_t{0} - pg + 1;
    std::uint64_t total = 0;
    for (auto [iova, len] : {std::pair{std::uint64_t{0}, top}, std::pair{top, pg}}) {
        auto done = unmap(iova, len);
        if (!done)
            return fail(std::move(done.error()).context("unmap all"));
        total += *done;
    }
    return total;
}

Result<std::vector<IovaRange>> GroupStyleBackend::iova_ranges() {
    if (auto ok = require_ready("IOVA ranges"); !ok)
        return fail(std::move(ok.error()));
    if (!info_) {
        auto info = query_iommu_info(container_.get(), true);
        if (!info)
            return fail(std::move(info.error()).context("IOVA ranges"));
        info_ = *info;
        path_.avail_stale = false;
    }
    const auto& info = info_;
    // No range capability (kernels before 5.4): everything goes.
    if (!info->ranges)
        return std::vector<IovaRange>{{0, ~std::uint64_t{0}}};
    return *info->ranges;
}

Result<std::optional<std::uint32_t>> GroupStyleBackend::dma_entries_avail() {
    if (auto ok = require_ready("DMA entries available"); !ok)
        return fail(std::move(ok.error()));
    if (!info_ || path_.avail_stale) {
        auto info = query_iommu_info(container_.get(), true);
        if (!info)
            return fail(std::move(info.error()).context("DMA entries available"));
        info_ = *info;
        path_.avail_stale = false;
    }
    return info_->dma_avail;
}

}  // namespace vfiokit::vfio::detail
