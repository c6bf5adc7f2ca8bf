// No-IOMMU: groups /dev/vfio/noiommu-<N> in a /dev/vfio/vfio container with
// the VFIO_NOIOMMU_IOMMU model. Nothing translates: the device sees physical
// addresses, so there is nothing to map. Opening the group, attaching it and
// setting the model all need CAP_SYS_RAWIO (group.c vfio_group_fops_open,
// container.c vfio_container_attach_group, vfio_noiommu_open), and the model
// is offered only while vfio.enable_unsafe_noiommu_mode is on (container.c
// vfio_noiommu_ioctl). The group-style machinery is group_style.cpp's.
#include <cerrno>

#include "group_style.hpp"

namespace vfiokit::vfio {

namespace {

constexpr std::string_view kNoTranslation =
    "no-IOMMU mode: no DMA translation, the device sees physical addresses";

class NoiommuBackend final : public detail::GroupStyleBackend {
public:
    NoiommuBackend(detail::GroupStyleTraits t, detail::OpenedContainer c)
        : GroupStyleBackend(std::move(t), std::move(c)) {}

    [[nodiscard]] std::string describe() const override {
        return "no-IOMMU container fd " + std::to_string(container_fd());
    }
    [[nodiscard]] bool translates() const override { return false; }

    [[nodiscard]] Result<void> map(std::uint64_t, std::uint64_t, std::uint64_t) override {
        return refuse("map");
    }
    [[nodiscard]] Result<std::uint64_t> unmap(std::uint64_t, std::uint64_t) override {
        return refuse("unmap");
    }
    [[nodiscard]] Result<std::uint64_t> unmap_all() override { return refuse("unmap all"); }
    [[nodiscard]] Result<std::vector<IovaRange>> iova_ranges() override {
        return refuse("IOVA ranges");
    }
    // No entry limit: nothing is mapped.
    [[nodiscard]] Result<std::optional<std::uint32_t>> dma_entries_avail() override {
        return std::optional<std::uint32_t>{};
    }
    // page_size(): the base's 4096, never refreshed since translates() is
    // false (the no-IOMMU container answers its other ioctls with ENOTTY).

private:
    static std::unexpected<Error> refuse(std::string_view what) {
        return fail(ENOTSUP, std::string(what) + ": " + std::string(kNoTranslation));
    }
};

}  // namespace

Result<std::unique_ptr<ContainerBackend>> make_noiommu_backend(const BackendConfig& c) {
    detail::GroupStyleTraits t{
        .mode = Mode::noiommu,
        .container_path = "/dev/vfio/vfio",
        .container_option = "CONFIG_VFIO_CONTAINER (or the vfio module is not loaded)",
        .group_prefix = "/dev/vfio/noiommu-",
        .other_group_prefix = "/dev/vfio/",
        .other_group_hint = "an IOMMU translates it; use group, compat or cdev mode",
        .no_group_hint = "enable no-IOMMU mode and rebind the device to vfio-pci",
        // group.c vfio_df_group_open
        .device_eperm_hint = "no-IOMMU devices need CAP_SYS_RAWIO: run as root",
        .model_hint = "no-IOMMU mode is off (or the kernel lacks CONFIG_VFIO_NOIOMMU): boot with "
                      "vfio.enable_unsafe_noiommu_mode=1 or write 1 to "
                      "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode, then rebind the "
                      "device",
    };
    const detail::IommuModel wanted[] = {detail::kNoiommu};
    auto opened = detail::open_container(t, wanted, c.given);
    if (!opened)
        return fail(std::move(opened.error()));
    return std::unique_ptr<ContainerBackend>(
        std::make_unique<NoiommuBackend>(std::move(t), std::move(*opened)));
}

}  // namespace vfiokit::vfio
