// The raw baseline of vfiokit-bench-memory: the fewest syscalls that give a
// device DMA access to hugepage memory, written by hand against the kernel
// ABI (kernel-uapi/), with no framework in between. What vfiokit's EAL costs
// on top of this is framework overhead; what this costs is the kernel's.
//
//   group:  memfd_create(MFD_HUGETLB), ftruncate, mmap(MAP_POPULATE),
//           open /dev/vfio/vfio, open /dev/vfio/<group>,
//           VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU(type1v2),
//           VFIO_IOMMU_MAP_DMA, VFIO_GROUP_GET_DEVICE_FD
//   cdev:   memfd_create(MFD_HUGETLB), ftruncate, mmap(MAP_POPULATE),
//           open /dev/iommu, IOMMU_IOAS_ALLOC, IOMMU_IOAS_MAP,
//           open /dev/vfio/devices/vfioN, VFIO_DEVICE_BIND_IOMMUFD,
//           VFIO_DEVICE_ATTACH_IOMMUFD_PT
//
// The device's group number and cdev name are read from sysfs inside the
// timed region (vfiokit reads them too). IOVA = VA, with the memory placed at
// `va` so that it fits the IOMMU's address width (39 bits on QEMU's
// intel-iommu). No checks beyond what the kernel does: no group viability
// query, no API version or extension check, no IOVA-range query.
#pragma once

#include <cstdint>
#include <string>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::bench {

enum class RawMode { group_type1v2, cdev };

struct RawRun {
    std::uint64_t ns = 0;    // memfd_create .. device ready
    unsigned ioctls = 0;     // all ioctls issued
    unsigned map_ioctls = 0; // VFIO_IOMMU_MAP_DMA or IOMMU_IOAS_MAP
};

// Runs the sequence for `bdf` (bound to vfio-pci) with `bytes` of 2 MiB
// hugepages at virtual address `va`, then closes everything in the order the
// kernel wants (device, group or iommufd, container, mapping, memfd): the
// hugepages are free again when it returns.
[[nodiscard]] Result<RawRun> run_raw(RawMode mode, const std::string& bdf, std::uint64_t bytes,
                                     std::uint64_t va);

}  // namespace vfiokit::bench
