/// \file
/// Physical addresses of the process's own memory, from /proc/self/pagemap.
///
/// For no-IOMMU mode, where nothing translates and a device is given physical
/// addresses (IOVA = PA). Linux documents the format in
/// Documentation/admin-guide/mm/pagemap.rst: one 64-bit entry per virtual
/// page, bit 63 "page present", bits 0-54 the page frame number.
///
/// What the caller must guarantee:
///   - the page is present: touch it (or map it with MAP_POPULATE) first;
///     an absent page has no physical address and fails with EFAULT;
///   - for DMA, the page stays where it is for as long as the device may use
///     it: use memory the kernel will neither swap nor migrate, i.e. a
///     hugetlbfs page (mmap a file under /dev/hugepages, or memfd_create with
///     MFD_HUGETLB) or memory locked with mlock(). A present but unpinned
///     page may move after the lookup, and the device then writes into
///     someone else's memory.
///
/// Permissions: since Linux 4.2 the kernel shows PFNs only to processes with
/// CAP_SYS_ADMIN; others read 0. That gives EPERM with what to do, never a
/// physical address of 0.
///
/// Reads go through the VFIO syscall seam (vfio::sys()), so tests can make
/// them fail. Thread-safe (each call opens its own fd).
#pragma once

#include <cstdint>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::eal {

/// The physical address of the byte at `va`. Errors: EFAULT (page not
/// present), EPERM (no CAP_SYS_ADMIN), or the open/pread errno.
[[nodiscard]] Result<std::uint64_t> virt_to_phys(const void* va);

}  // namespace vfiokit::eal
