#include <cerrno>

#include "vfiokit/eal/memory_dma.hpp"

namespace vfiokit::eal {

Result<void> ContainerDmaListener::on_add(const Segment& s) {
    if (!c_.translates())
        return {};
    if (!s.iova)
        return fail(Error(EINVAL, "map memory segment: it has physical addresses only")
                        .hint("--iova-mode=pa is for no-IOMMU mode; use --iova-mode=va"));
    // Segments are file-backed from offset 0: by fd where the kernel can.
    return c_.map_file(s.va, s.fd, 0, *s.iova, s.len);
}

void ContainerDmaListener::on_remove(const Segment& s) {
    if (c_.translates() && s.iova)
        (void)c_.unmap(*s.iova, s.len);
}

Result<IovaMode> resolve_iova_mode(IovaMode asked, const vfio::Container& c) {
    if (asked == IovaMode::automatic)
        return c.translates() ? IovaMode::va : IovaMode::pa;
    if (asked == IovaMode::va && !c.translates())
        return fail(Error(EINVAL, "--iova-mode=va in no-IOMMU mode")
                        .hint("without an IOMMU devices see physical addresses: use "
                              "--iova-mode=pa (or auto)"));
    return asked;
}

}  // namespace vfiokit::eal
