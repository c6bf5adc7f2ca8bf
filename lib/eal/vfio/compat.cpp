// The iommufd-compat container: a /dev/iommu fd stands in for /dev/vfio/vfio.
// Groups are attached to it with VFIO_GROUP_SET_CONTAINER, and the type1
// ioctls on it are served by iommufd's emulation (drivers/iommu/iommufd/
// vfio_compat.c, reached for every ioctl number below iommufd's own range,
// main.c iommufd_fops_ioctl). The group-style machinery is group_style.cpp's.
//
// How the emulation differs from the legacy container (Linux 6.12):
//  - the first SET_CONTAINER creates a "compat IOAS" in the iommufd; devices
//    are bound to the iommufd and attached to it at GET_DEVICE_FD, which is
//    also where group viability is enforced (GET_STATUS says VIABLE once the
//    container is set);
//  - SET_IOMMU accepts type1 and type1v2 (type1 is emulated by turning off
//    large IOPTEs so any range can be cut), needs the compat IOAS, may be
//    repeated, and never goes away by itself: the IOAS, with its mappings
//    and pinned pages, outlives the last group and lives as long as the
//    iommufd. To keep the group-mode contract (mappings go with the last
//    group, the front end replays them), this backend unmaps everything when
//    its last group leaves (and again before the next first group is
//    usable, if that failed);
//  - CHECK_EXTENSION: type1, type1v2, UNMAP_ALL yes; UPDATE_VADDR no;
//  - UNMAP_DMA: only the ALL flag; a range cutting a mapping fails with
//    ENOENT (type1v2: EINVAL);
//  - GET_INFO: DMA-avail capability always U32_MAX (a placeholder: iommufd
//    limits pinning through the memory cgroup, not an entry count), then the
//    IOVA ranges: the holes between reserved regions, which include those of
//    the attached devices only (the MSI window appears once a device is
//    open);
//  - no dirty tracking (VFIO_IOMMU_DIRTY_PAGES), no dma_entry_limit.
#include <cerrno>

#include "group_style.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio {

namespace {

class CompatBackend final : public detail::GroupStyleBackend {
public:
    CompatBackend(detail::GroupStyleTraits t, detail::OpenedContainer c)
        : GroupStyleBackend(std::move(t), std::move(c)) {}

    [[nodiscard]] std::string describe() const override {
        return "iommufd compat (" + std::string(model().name) + ") fd " +
               std::to_string(container_fd());
    }

    // The emulation reports U32_MAX, which is no limit (see above).
    [[nodiscard]] Result<std::optional<std::uint32_t>> dma_entries_avail() override {
        if (auto ok = require_ready("DMA entries available"); !ok)
            return fail(std::move(ok.error()));
        return std::optional<std::uint32_t>{};
    }

protected:
    void last_group_left() override {
        // The compat IOAS keeps its mappings without groups; drop them as the
        // legacy container would. This runs in destructors: if it fails, the
        // next first attach retries before the front end replays its table.
        stale_ = !unmap_everything();
    }
    [[nodiscard]] Result<void> model_was_set() override {
        if (stale_) {
            if (auto ok = unmap_everything(); !ok)
                return fail(std::move(ok.error())
                                .context("clearing mappings the compat IOAS kept from before"));
            stale_ = false;
        }
        return {};
    }

private:
    [[nodiscard]] Result<void> unmap_everything() {
        uapi::vfio_iommu_type1_dma_unmap u{};
        u.argsz = sizeof u;
        u.flags = uapi::kVfioDmaUnmapFlagAll;
        auto ok =
            do_ioctl(container_fd(), uapi::kVfioIommuUnmapDma, &u, "VFIO_IOMMU_UNMAP_DMA(ALL)");
        if (!ok)
            return fail(std::move(ok.error()));
        return {};
    }

    bool stale_ = false;  // mappings from before may still be in the IOAS
};

}  // namespace

Result<std::unique_ptr<ContainerBackend>> make_compat_backend(const BackendConfig& c) {
    detail::GroupStyleTraits t{
        .mode = Mode::compat,
        .container_path = "/dev/iommu",
        .container_option = "CONFIG_IOMMUFD",
        .group_prefix = "/dev/vfio/",
        .other_group_prefix = "/dev/vfio/noiommu-",
        .other_group_hint = "it is a no-IOMMU group; use noiommu mode",
        .no_group_hint = "boot with the IOMMU on (intel_iommu=on or amd_iommu=on)",
        // iommufd claims DMA ownership at GET_DEVICE_FD, not at SET_CONTAINER.
        .device_eperm_hint = "a device of the group is bound to a host driver that does DMA; "
                             "give it to vfio-pci too (or unbind it)",
        .model_hint = "iommufd offers type1 and type1v2 unless no-IOMMU groups use this iommufd",
    };
    auto opened = detail::open_container(t, detail::type1_models(c.type1), c.given);
    if (!opened)
        return fail(std::move(opened.error()));
    return std::unique_ptr<ContainerBackend>(
        std::make_unique<CompatBackend>(std::move(t), std::move(*opened)));
}

}  // namespace vfiokit::vfio
