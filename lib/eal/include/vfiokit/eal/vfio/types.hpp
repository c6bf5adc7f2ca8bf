/// \file
/// Small value types shared by the VFIO API and its backends.
/// Thread-safety: plain values and constant functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/vfio/probe.hpp"

namespace vfiokit::vfio {

/// An inclusive IOVA range [start, last], as the kernel reports them.
struct IovaRange {
    std::uint64_t start = 0;
    std::uint64_t last = 0;
    bool operator==(const IovaRange&) const = default;
};

/// Which type1 IOMMU model a group-style container asks for.
enum class Type1 {
    automatic,  ///< type1v2 when the kernel has it, else type1
    v2,         ///< VFIO_TYPE1v2_IOMMU only
    v1,         ///< VFIO_TYPE1_IOMMU only (legacy unmap semantics)
};
/// "auto", "v2" or "v1", as `--vfio-type1` writes them.
[[nodiscard]] std::string_view to_string(Type1 t);

/// One way a test runs a mode, named as lab steps and test names carry it:
/// "cdev", "group-type1v2", "group-type1", "compat", "noiommu". A mode with
/// type1 flavours in the mode table runs once per flavour, with the type1
/// setting forced; the others once, with type1 left automatic.
struct ModeVariant {
    Mode mode;
    Type1 type1 = Type1::automatic;
    std::string label;
};
/// Every variant of every mode, in the table's order.
[[nodiscard]] std::vector<ModeVariant> mode_variants();

/// A DMA mapping of the front end's table: [iova, iova+len) -> [vaddr, vaddr+len).
struct DmaMapping {
    std::uint64_t iova = 0;
    std::uint64_t vaddr = 0;
    std::uint64_t len = 0;
    /// Mapped from a file (IOMMU_IOAS_MAP_FILE) rather than by address: the
    /// kernel pins the file's pages and can move their accounting to
    /// another process (IOMMU_IOAS_CHANGE_PROCESS, handover.hpp). Not
    /// carried to secondaries (share.hpp): false in an imported table.
    bool by_file = false;
    [[nodiscard]] std::uint64_t end() const { return iova + len; }
};

/// Physically contiguous memory: `len` bytes from physical address `pa`
/// (cdev no-IOMMU, where the kernel reports what a mapping pinned).
struct PhysicalRange {
    std::uint64_t pa = 0;
    std::uint64_t len = 0;
    bool operator==(const PhysicalRange&) const = default;
};

}  // namespace vfiokit::vfio
