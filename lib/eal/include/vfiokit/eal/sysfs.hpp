/// \file
/// Read-only view of sysfs and /dev, rooted at a prefix.
///
/// The real system uses the empty prefix. Tests point a Root at a directory
/// tree that mimics /sys and /dev, so the logic that interprets sysfs (device
/// scan, IOMMU groups, mode availability) is tested on the host without a
/// kernel. Paths passed in are absolute system paths ("/sys/bus/pci/...").
/// Thread-safe: a Root holds only its prefix.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::sysfs {

/// Where sysfs and /dev are read: the real ones (empty prefix) or a test's tree.
class Root {
public:
    explicit Root(std::string prefix = {}) : prefix_(std::move(prefix)) {}

    /// The host path for a system path: prefix + path.
    [[nodiscard]] std::string path(std::string_view sys_path) const;

    /// Whole contents of a (small) file, trailing newline removed. The file
    /// is opened close-on-exec: a child another thread starts meanwhile
    /// inherits nothing.
    [[nodiscard]] Result<std::string> read(std::string_view sys_path) const;
    /// Unsigned integer in a file, decimal or 0x-prefixed hexadecimal.
    [[nodiscard]] Result<unsigned long> read_uint(std::string_view sys_path) const;
    /// Signed decimal integer in a file (numa_node is -1 when unknown).
    [[nodiscard]] Result<long> read_int(std::string_view sys_path) const;

    /// Last component of a symlink's target ("vfio-pci" for .../driver),
    /// or nullopt when the link does not exist.
    [[nodiscard]] std::optional<std::string> link_name(std::string_view sys_path) const;
    // The same, read as a decimal number (iommu_group links end in the
    // group's number); nullopt when the link is absent or its name is not
    // a number.
    [[nodiscard]] std::optional<unsigned> link_number(std::string_view sys_path) const;

    [[nodiscard]] bool exists(std::string_view sys_path) const;

    /// Writes `value` to an attribute in one write() (sysfs takes a store
    /// whole: driver_override, bind, drivers_probe); the kernel's errno when
    /// it refuses.
    [[nodiscard]] Result<void> write(std::string_view sys_path, std::string_view value) const;

    /// Entry names of a directory, sorted; empty when it does not exist.
    [[nodiscard]] std::vector<std::string> list(std::string_view sys_path) const;

private:
    std::string prefix_;
};

}  // namespace vfiokit::sysfs
