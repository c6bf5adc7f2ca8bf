/// \file
/// VFIO state shared with other processes: secondaries, and fds from a broker.
///
/// Thread-safety: export_shared() takes the EAL lock, but the fds it lists
/// are borrowed and may be closed by a release on another thread once it
/// returns: a caller that sends them later holds Vfio::control_lock() across
/// the export and a dup() of each (lib/eal/eal.cpp does, for secondaries).
/// SharedState and the other structs are values.
///
/// A group can be opened once and a cdev device belongs to one iommufd, so a
/// second process that wants to drive the primary's devices needs the
/// primary's fds. Vfio::export_shared() describes every container of a
/// process as bytes plus fds; a transport (lib/eal/mp, or anything that can
/// carry fds with SCM_RIGHTS) moves them; Vfio::import_shared() rebuilds an
/// equivalent Vfio in the receiver. Vfio::from_external_fds() is for a
/// process that was handed a device and an iommufd (or a group and a
/// container) by a privileged broker (app/broker) and must not open /dev.
///
/// What is shared, per mode (the fds are the primary's open files; the
/// receiver holds copies of the same files, not new opens):
///   group, noiommu  the container fd (/dev/vfio/vfio) and its IOMMU model,
///                   each group's fd, each device's fd
///   compat          the /dev/iommu fd used as the container, groups, devices
///   cdev            the process's iommufd, each container's IOAS id, each
///                   device's cdev fd (bound and attached by the primary)
/// plus, everywhere, the mode, the type1 flavour and each container's DMA
/// mapping table (iova, vaddr, len).
///
/// Ownership rules (what an imported Vfio, the "secondary", may do):
///   - Devices are the primary's. The secondary uses them (Device::fd():
///     region and IRQ ioctls, BAR mmap) and may release them, which only
///     closes its own copies of the fds: never VFIO_GROUP_UNSET_CONTAINER,
///     VFIO_DEVICE_DETACH_IOMMUFD_PT or IOMMU_DESTROY. The device stays in
///     the primary's container. assign_device() into an imported container
///     is refused (EPERM): the primary assigns. The secondary may create
///     containers of its own (cdev: an IOAS in the shared iommufd), which it
///     owns fully.
///   - The mapping table starts as a copy of the primary's ("inherited"
///     mappings). The secondary may map into an imported container: the
///     kernel pins the pages of the calling process's memory (type1 records
///     current->mm, vfio_iommu_type1.c vfio_dma_do_map; iommufd records
///     source_mm, iommufd/pages.c iopt_alloc_pages) and charges its
///     RLIMIT_MEMLOCK. The secondary owns those mappings: it may unmap them,
///     unmap_all() removes only them, and destroying the imported Vfio
///     unmaps them (otherwise their pages would stay pinned after it exits).
///     Unmapping an inherited mapping fails with EPERM: the kernel would
///     allow it (any holder of the container/iommufd may unmap anything),
///     but the primary's table would then lie.
///   - The two tables are snapshots: neither process sees the other's later
///     maps. The kernel refuses overlaps (EEXIST), so nothing is silently
///     remapped, but hand out IOVAs from one place (the primary's
///     alloc_iova(), sent along) to avoid the refusals. The primary's
///     unmap_all() also removes what secondaries mapped (kernel unmap-all)
///     and then reports the byte mismatch (EIO).
///   - For DMA through a mapping the primary made, the secondary needs the
///     same memory: a memfd (or hugetlbfs file) the primary sends along,
///     mmap()ed MAP_SHARED, at the same virtual address if the table's vaddr
///     is to mean anything in both processes.
///   - Group-style containers that have no IOMMU model yet (no device in the
///     primary) cannot be mapped from the secondary (EAGAIN): the primary
///     replays its own table when its first device arrives, not ours.
///   - The primary must not release a device while a secondary uses it.
///     What happens then differs by mode (checked in the lab,
///     Share.PrimaryReleaseUnderASecondary): cdev detaches the device from
///     its IOAS for every holder, and the secondary's DMA no longer arrives;
///     compat: UNSET_CONTAINER succeeds (group.c checks container users for
///     the legacy container only), the open device stays bound, but the
///     primary's backend empties the compat IOAS with its last group, so the
///     DMA no longer arrives either; legacy type1 keeps the group in the
///     container (UNSET_CONTAINER fails with EBUSY while another device fd
///     is open, group.c vfio_group_ioctl_unset_container) and the
///     secondary's DMA still works until it closes its copies.
///   - Destroying the imported Vfio unmaps its own mappings and closes its
///     fd copies; the primary's objects are untouched.
///
/// Encoding (version 1): little-endian, packed, no padding. Header:
///   u32 magic "VFKS" (bytes 'V','F','K','S')   u16 version (1)
///   u16 flags (0)     u32 total length of the bytes     u32 fd count
///   u8 mode (1 group, 2 compat, 3 cdev, 4 noiommu)
///   u8 type1 (0 auto, 1 v2, 2 v1)       u16 container count
///   u32 iommufd: fd index (cdev), else 0xffffffff
/// then per container (the first is the default one, and only it):
///   u8 flags (bit 0 default, bit 1 IOMMU model set)   u8 0
///   u16 group count   u32 IOMMU model (VFIO_SET_IOMMU id; 0 for cdev)
///   u32 container fd index (0xffffffff for cdev)   u32 IOAS id (0 unless cdev)
///   u16 device count   u16 0   u32 mapping count
///   groups:   u32 number, u32 fd index                               (8 each)
///   devices:  u32 domain, u8 bus, u8 device, u8 function,
///             u8 flags (bit 0: has a group), u32 group, u32 fd index (16 each)
///   mappings: u64 iova, u64 vaddr, u64 len                           (24 each)
/// An "fd index" is a position in SharedState::fds (the order the fds travel
/// in). Decoding fails with EPROTO, naming what is wrong, for: bad magic,
/// another version, a length or fd count that disagrees with what arrived,
/// truncation, unknown mode/type1/flags, non-zero reserved fields, counts
/// larger than the bytes can hold, an fd index out of range or used twice,
/// an fd nobody uses, a device or group listed twice, a device whose group
/// its container does not list, a group without a device, fields that do not
/// belong to the mode (a container fd in cdev, an iommufd in group mode),
/// an IOMMU model that is not the mode's, and mappings that are empty,
/// unaligned (4 KiB), wrapping, overlapping, or present in no-IOMMU mode.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/pci_address.hpp"
#include "vfiokit/eal/vfio/probe.hpp"

namespace vfiokit::vfio {

/// What Vfio::export_shared() gives a transport.
struct SharedState {
    std::vector<std::uint8_t> bytes;
    /// Borrowed: the exporting Vfio keeps owning them, and they stay valid
    /// until it releases the objects they belong to. The transport dups or
    /// sends them (SCM_RIGHTS makes copies in the receiver).
    std::vector<int> fds;
};

/// Fds a process was handed instead of opening /dev itself
/// (Vfio::from_external_fds). Plain numbers: from_external_fds takes
/// ownership of every one of them (closes them on failure, or when the Vfio
/// is destroyed).
struct ExternalFds {
    /// cdev: a /dev/iommu fd and device cdev fds (/dev/vfio/devices/vfioN),
    /// neither bound nor attached: the receiver binds and attaches them to an
    /// IOAS of its own. Group-style: a container fd (/dev/vfio/vfio; compat:
    /// /dev/iommu) and, per device, its group's fd (/dev/vfio/N), both fresh:
    /// the receiver sets the container and the IOMMU model.
    Mode mode = Mode::cdev;
    int iommufd = -1;    ///< cdev
    int container = -1;  ///< group-style
    /// cdev: the device's cdev fd; group-style: its group's fd (devices of
    /// one group name the same fd).
    std::vector<std::pair<PciAddress, int>> devices;
};

/// The environment variable a broker sets for the process it starts.
inline constexpr const char* kExternalFdsEnv = "VFIOKIT_EXTERNAL_FDS";

/// "iommufd=3,0000:00:03.0=4" (cdev) or
/// "mode=group,container=3,0000:00:03.0=4,0000:00:04.0=5" (group, compat,
/// noiommu: the numbers after addresses are group fds; a device may appear
/// once, however its address is spelled). `mode=` is optional:
/// cdev when an iommufd is named, else group. EINVAL naming the bad item.
[[nodiscard]] Result<ExternalFds> parse_external_fds(std::string_view text);
/// The text parse_external_fds() reads back into `x`.
[[nodiscard]] std::string format_external_fds(const ExternalFds& x);

}  // namespace vfiokit::vfio
