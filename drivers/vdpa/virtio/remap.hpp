// The vDPA device's view of the front end's memory: the pieces of the
// memory table as mapped into the device's IO address space, how a new
// table replaces them without leaving the device a hole, and whether the
// table fits the IOMMU's IOVA space at all. Pure functions (plus fstat in
// pieces_for); private to drivers/vdpa/virtio; thread-safe.
//
// IOVA = the front end's guest-physical address. DPDK's virtio_user sets
// that to its own virtual address, up to 47 bits on x86-64, which is why
// the IOMMU's width matters (check_fits).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/types.hpp"
#include "vfiokit/vhost_user/device.hpp"

namespace vfiokit::vdpa {

// One mapping of the device's IO address space: [iova, iova+len) is the
// file (dev, ino) from `offset`, mapped in this process at `hva`.
struct Piece {
    std::uint64_t iova = 0;
    std::uint64_t len = 0;
    std::uint64_t hva = 0;
    std::uint64_t dev = 0, ino = 0;  // the file behind it (st_dev, st_ino)
    std::uint64_t offset = 0;        // where the piece starts in the file
    int fd = -1;                     // borrowed; valid only while a table is applied
    bool operator==(const Piece& o) const {
        return iova == o.iova && len == o.len && dev == o.dev && ino == o.ino &&
               offset == o.offset;
    }
};

// The regions of a memory table as page-aligned pieces (rounded out to
// `page`), with their files identified by fstat. EINVAL naming the region
// when its guest address and its mapping here are not at the same offset
// inside a page (the IOMMU maps whole pages), or when two regions share a
// page.
[[nodiscard]] Result<std::vector<Piece>> pieces_for(std::span<const vhost_user::Region> regions,
                                                    std::uint64_t page);

// Whether every piece lies inside one of the IOMMU's usable IOVA ranges.
// ERANGE naming the first that does not: above the last usable IOVA it
// names the IOMMU's width in bits, the address and the bits it needs, with
// the fix (an IOMMU with 48 address bits: QEMU's intel-iommu aw-bits=48);
// inside a reserved window (the MSI window) it names the window.
[[nodiscard]] Result<void> check_fits(std::span<const Piece> pieces,
                                      std::span<const vfio::IovaRange> ranges);
// The IOVA width the ranges give: bits of the highest usable IOVA + 1
// (39 for 0x7fffffffff).
[[nodiscard]] unsigned iova_bits(std::span<const vfio::IovaRange> ranges);

// How the device's mappings go from `current` to `wanted` (a new memory
// table) so that the device never meets an IOVA that is unmapped but
// mapped in both tables (the order DPDK and QEMU keep: new before old):
//   keep:      current pieces that still hold what the new table puts
//              there (same file, same offset): left as they are. The
//              IOMMU pinned the file's pages when they were mapped, so the
//              old table's mapping here may go (their hva goes stale; it
//              is not used again);
//   map_first: the rest of the new table, where nothing else is mapped:
//              mapped before anything is unmapped;
//   unmap:     current pieces the new table does not keep;
//   map_after: the parts of the new table that lie where an unmapped piece
//              was (an IOVA whose backing changes): only these can be
//              absent for a moment, since one IOVA cannot translate to two
//              pages at once.
// Pieces of `map_first`/`map_after` carry the wanted piece's hva, file and
// fd, cut to their part.
struct RemapPlan {
    std::vector<Piece> keep, map_first, unmap, map_after;
};
[[nodiscard]] RemapPlan plan_remap(std::span<const Piece> current, std::span<const Piece> wanted);

}  // namespace vfiokit::vdpa
