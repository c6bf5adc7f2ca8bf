// Keeps a VFIO container's mappings in step with EAL memory: every segment
// added is mapped (one map per segment: contiguous in VA and IOVA) at the
// IOVA the container's policy chooses (Container::choose_iova: IOVA = VA
// where that fits, else allocated inside the kernel's ranges and under the
// devices' DMA masks); every segment removed is unmapped first. In a
// no-IOMMU container nothing is mapped (devices use physical addresses:
// --iova-mode=pa).
//
// It is also the container's IovaUser for EAL memory: when a device with a
// narrower DMA mask is probed (Container::require_dma_mask), segments above
// the mask are mapped again at IOVAs under it, the memory's table is
// switched to them, and the old mappings go. In no-IOMMU mode it checks
// the segments' physical addresses against the mask instead.
//
// Thread-safety: called by Memory and the container with the EAL lock held.
#pragma once

#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::eal {

class ContainerDmaListener final : public MemoryListener, public vfio::IovaUser {
public:
    // Registers with `c` as an IovaUser; both must outlive the listener.
    ContainerDmaListener(Memory& m, vfio::Container& c);
    ~ContainerDmaListener() override;
    ContainerDmaListener(const ContainerDmaListener&) = delete;
    ContainerDmaListener& operator=(const ContainerDmaListener&) = delete;

    [[nodiscard]] Result<void> on_add(Segment& s) override;
    void on_remove(const Segment& s) override;
    [[nodiscard]] Result<void> meet_dma_mask(vfio::Container& c, std::uint64_t mask,
                                             std::string_view who) override;

private:
    Memory& m_;
    vfio::Container& c_;
};

// The IOVA mode a process gets: pa where nothing translates, else va;
// an explicit choice that cannot work is an error that says why.
[[nodiscard]] Result<IovaMode> resolve_iova_mode(IovaMode asked, const vfio::Container& c);

}  // namespace vfiokit::eal
