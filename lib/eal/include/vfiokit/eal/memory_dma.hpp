// Keeps a VFIO container's mappings in step with EAL memory: every segment
// added is mapped (one map per segment: contiguous in VA and IOVA), every
// segment removed is unmapped first. In a no-IOMMU container nothing is
// mapped (devices use physical addresses: --iova-mode=pa).
#pragma once

#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::eal {

class ContainerDmaListener final : public MemoryListener {
public:
    explicit ContainerDmaListener(vfio::Container& c) : c_(c) {}
    [[nodiscard]] Result<void> on_add(const Segment& s) override;
    void on_remove(const Segment& s) override;

private:
    vfio::Container& c_;
};

// The IOVA mode a process gets: pa where nothing translates, else va;
// an explicit choice that cannot work is an error that says why.
[[nodiscard]] Result<IovaMode> resolve_iova_mode(IovaMode asked, const vfio::Container& c);

}  // namespace vfiokit::eal
