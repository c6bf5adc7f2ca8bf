// The binary encoding of shared VFIO state (format: vfiokit/eal/vfio/
// share.hpp). Pure: no kernel, no fds, only fd indexes; so the host unit
// tests can feed it every truncation and corruption. Private to
// lib/eal/vfio.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/eal/vfio/dma_table.hpp"
#include "vfiokit/eal/vfio/probe.hpp"
#include "vfiokit/eal/vfio/types.hpp"

namespace vfiokit::vfio::share {

inline constexpr std::uint16_t kVersion = 1;
inline constexpr std::uint32_t kNoFd = 0xffffffffu;

struct GroupEntry {
    std::uint32_t number = 0;
    std::uint32_t fd = kNoFd;  // index into the fds
    bool operator==(const GroupEntry&) const = default;
};

struct DeviceEntry {
    PciAddress addr;
    std::optional<std::uint32_t> group;
    std::uint32_t fd = kNoFd;
    bool operator==(const DeviceEntry&) const = default;
};

struct ContainerEntry {
    bool is_default = false;
    bool model_set = false;           // group-style
    std::uint32_t iommu_model = 0;    // group-style: VFIO_SET_IOMMU id
    std::uint32_t container_fd = kNoFd;  // group-style
    std::uint32_t ioas_id = 0;        // cdev
    std::vector<GroupEntry> groups;
    std::vector<DeviceEntry> devices;
    std::vector<DmaMapping> mappings;
};

struct Snapshot {
    Mode mode = Mode::group;
    Type1 type1 = Type1::automatic;
    std::uint32_t iommufd = kNoFd;  // cdev
    std::vector<ContainerEntry> containers;
    std::uint32_t fd_count = 0;
};

// E2BIG when a count does not fit its field. Does not validate: the
// exporter's state is valid by construction, and decode() checks anyway.
[[nodiscard]] Result<std::vector<std::uint8_t>> encode(const Snapshot& s);
// Parses and validates `bytes` received with `fd_count` fds. EPROTO, saying
// what is wrong, for anything share.hpp lists as malformed.
[[nodiscard]] Result<Snapshot> decode(std::span<const std::uint8_t> bytes, std::size_t fd_count);

}  // namespace vfiokit::vfio::share
