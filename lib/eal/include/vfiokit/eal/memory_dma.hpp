/// \file
/// Keeps a VFIO container's mappings in step with EAL memory: every segment
/// added is mapped (one map per segment: contiguous in VA and IOVA) at the
/// IOVA the container's policy chooses (Container::choose_iova: IOVA = VA
/// where that fits, else allocated inside the kernel's ranges and under the
/// devices' DMA masks); every segment removed is unmapped first. In a
/// no-IOMMU container nothing is mapped (devices use physical addresses:
/// `--iova-mode=pa`).
///
/// It is also the container's IovaUser for EAL memory: when a device with a
/// narrower DMA mask is probed (Container::require_dma_mask), segments above
/// the mask are mapped again at IOVAs under it, the memory's table is
/// switched to them, and the old mappings go. In no-IOMMU mode it checks
/// the segments' physical addresses against the mask instead.
///
/// cdev no-IOMMU (pa mode, Container::reports_physical): each segment is
/// mapped into the container too, which pins it, at a key IOVA (its VA
/// where free), and its physical addresses come from the kernel
/// (Container::physical_ranges, IOMMU_IOAS_NOIOMMU_GET_PA), never from
/// /proc/self/pagemap: at once when the container has a device, else when
/// it gets its first one; forgotten when it loses its last
/// (physical_addresses).
///
/// Removal: the unmap's error is returned (Memory quarantines the segment).
/// Without an IOMMU nothing stands between a device and freed memory, so
/// the primary's listener first stops every device of the container from
/// mastering the bus (Container::stop_bus_mastering), and only then lets
/// the segment go; in a secondary the memory stays the primary's and
/// nothing is stopped.
///
/// Thread-safety: called by Memory and the container with the EAL lock held.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "vfiokit/eal/memory.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"

namespace vfiokit::eal {

/// Maps every EAL memory segment into a VFIO container for DMA, and unmaps
/// it before the segment goes; see the file's description.
class ContainerDmaListener final : public MemoryListener, public vfio::IovaUser {
public:
    /// Registers with `c` as an IovaUser; both must outlive the listener.
    ContainerDmaListener(Memory& m, vfio::Container& c);
    ~ContainerDmaListener() override;
    ContainerDmaListener(const ContainerDmaListener&) = delete;
    ContainerDmaListener& operator=(const ContainerDmaListener&) = delete;

    [[nodiscard]] Result<void> on_add(Segment& s) override;
    [[nodiscard]] Result<void> on_remove(const Segment& s) override;
    [[nodiscard]] Result<void> meet_dma_mask(vfio::Container& c, std::uint64_t mask,
                                             std::string_view who) override;
    [[nodiscard]] bool gives_physical() const override { return c_.reports_physical(); }
    [[nodiscard]] Result<std::vector<std::uint64_t>> physical_pages(const Segment& s) override;
    [[nodiscard]] Result<void> physical_addresses(vfio::Container& c, bool known) override;

private:
    // The physical address of each page of `s`, asked of the container by
    // the key IOVA it is mapped at.
    [[nodiscard]] Result<std::vector<std::uint64_t>> ask_physical(const Segment& s) const;

    Memory& m_;
    vfio::Container& c_;
    // cdev no-IOMMU: the key IOVA of each segment, by VA (pa mode keeps no
    // IOVA in the Segment: each page has its physical address).
    std::map<std::uint64_t, std::uint64_t> keys_;
};

/// The physical address of each `page`-sized page of [iova, iova+len) in a
/// cdev no-IOMMU container, from the kernel (Container::physical_ranges).
/// For the EAL's listener and secondaries (Memory::attach's lookup).
[[nodiscard]] Result<std::vector<std::uint64_t>> physical_pages(const vfio::Container& c,
                                                                std::uint64_t iova,
                                                                std::uint64_t len,
                                                                std::uint64_t page);
/// A secondary's PhysicalLookup (Memory::attach) in a cdev no-IOMMU
/// container imported from the primary: the segment's key IOVA is that of
/// the container's mapping at the segment's vaddr; the addresses are the
/// kernel's, none while the primary has no device attached.
[[nodiscard]] Result<std::vector<std::uint64_t>> container_physical(const vfio::Container& c,
                                                                    const Segment& s);

/// The IOVA mode a process gets: pa where nothing translates, else va;
/// an explicit choice that cannot work is an error that says why.
[[nodiscard]] Result<IovaMode> resolve_iova_mode(IovaMode asked, const vfio::Container& c);

}  // namespace vfiokit::eal
