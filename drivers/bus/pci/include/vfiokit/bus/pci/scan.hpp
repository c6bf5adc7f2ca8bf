/// \file
/// PCI device discovery from sysfs (/sys/bus/pci/devices).
///
/// Reads identity and placement only; never opens a device. The scan is what
/// the inventory tool prints and what the PCI bus probes drivers against.
///
/// Thread-safety: pure reads of sysfs into values; callable from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/eal/sysfs.hpp"

namespace vfiokit::pci {

/// A device's PCI ids, from its sysfs files.
struct DeviceIds {
    std::uint16_t vendor = 0;
    std::uint16_t device = 0;
    std::uint16_t subsystem_vendor = 0;
    std::uint16_t subsystem_device = 0;
    std::uint32_t class_code = 0;  ///< 24 bits: base class, subclass, prog-if
};

/// One device of the scan: its ids, NUMA node, IOMMU group and driver.
struct ScannedDevice {
    PciAddress addr;
    DeviceIds ids;
    int numa_node = -1;                 ///< -1: the platform gave none
    std::optional<unsigned> iommu_group;
    std::string driver;                 ///< empty when unbound
    /// Bound to vfio-pci or a variant of it (vfio::bound_to_vfio_pci).
    bool vfio_bound = false;
    std::string driver_override;        ///< empty when unset
};

/// One device; fails when it does not exist or its ids cannot be read.
[[nodiscard]] Result<ScannedDevice> read_device(const sysfs::Root& root, PciAddress addr);

/// Every PCI device, sorted by address. Fails when sysfs has no PCI bus.
[[nodiscard]] Result<std::vector<ScannedDevice>> scan(const sysfs::Root& root);

}  // namespace vfiokit::pci
