// The legacy group/container backend: /dev/vfio/vfio with the type1v2
// IOMMU model, falling back to type1. The group protocol is the group-style
// machinery's (group_style.cpp), the DMA ioctls type1.cpp's; this file holds
// what only the legacy container does.
//
// Kernel references (Linux 6.12): drivers/vfio/container.c,
// drivers/vfio/vfio_iommu_type1.c.
#include <cerrno>
#include <utility>

#include "group_style.hpp"
#include "vfiokit/eal/format.hpp"

namespace vfiokit::vfio {

// --- the legacy container -----------------------------------------------------

namespace {

class GroupBackend final : public detail::GroupStyleBackend {
public:
    GroupBackend(detail::GroupStyleTraits t, detail::OpenedContainer c)
        : GroupStyleBackend(std::move(t), std::move(c)) {}

    [[nodiscard]] std::string describe() const override {
        return std::string(model().name) + " container fd " + std::to_string(container_fd());
    }

protected:
    void explain_map_error(Error& e) const override {
        // type1 counts mappings against a module parameter (vfio_iommu_type1.c
        // vfio_dma_do_map: dma_avail).
        if (e.err() == ENOSPC) {
            e = Error(ENOSPC, e.op() + ": the container has as many mappings as "
                                       "vfio_iommu_type1.dma_entry_limit allows");
            e.hint("raise the module parameter (default 65535) in "
                   "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit, or map larger "
                   "regions");
        }
        GroupStyleBackend::explain_map_error(e);
    }
};

}  // namespace

Result<std::unique_ptr<ContainerBackend>> make_group_backend(const BackendConfig& c) {
    detail::GroupStyleTraits t{
        .mode = Mode::group,
        .container_path = "/dev/vfio/vfio",
        .container_option = "CONFIG_VFIO_CONTAINER (or the vfio module is not loaded)",
        .group_prefix = "/dev/vfio/",
        .other_group_prefix = "/dev/vfio/noiommu-",
        .other_group_hint = "it is a no-IOMMU group; use noiommu mode",
        .no_group_hint = "boot with the IOMMU on (intel_iommu=on or amd_iommu=on)",
        .device_eperm_hint = "",
        .model_hint = c.type1 == Type1::automatic
                          ? "the kernel is built without CONFIG_VFIO_IOMMU_TYPE1"
                          : "the kernel is built without CONFIG_VFIO_IOMMU_TYPE1, or lacks this "
                            "type1 flavour: try --vfio-type1=auto",
    };
    auto opened = detail::open_container(t, detail::type1_models(c.type1), c.given);
    if (!opened)
        return fail(std::move(opened.error()));
    return std::unique_ptr<ContainerBackend>(
        std::make_unique<GroupBackend>(std::move(t), std::move(*opened)));
}

}  // namespace vfiokit::vfio
