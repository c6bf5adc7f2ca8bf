// The per-call DMA ioctls of the kernel backends, as data and inline code
// (private to lib/eal/vfio).
//
// Container::map and unmap are per-call paths meant to cost no more than
// the ioctl they wrap (doc/benchmarks.md). Through the backend interface a
// map went Container -> ContainerBackend::map -> do_ioctl -> sys() ->
// Syscalls::ioctl: four calls, two of them virtual, each with its return
// and a Result in between. In the lab's guests, where user code runs under
// QEMU's software emulation, those layers cost about as much per call as
// the rest of the front end together (measured: doc/benchmarks.md).
//
// So a kernel backend also describes its map and unmap ioctls as data, a
// DmaPath: which protocol, which fd, which IOAS, kept up to date by the
// backend as its state changes (a group container has a protocol only
// while it has an IOMMU model). The front end reads it and issues the
// ioctl through dma_path_map()/dma_path_unmap() below, inline, with no
// virtual call. The code that fills the ioctl structs is the backends' and
// is written once, here: the backends' own map() and unmap() use the same
// functions, and build their errors with map_error()/unmap_error(), which
// the front end calls when an inline ioctl fails.
//
// The syscall seam stays on this path: seam_ioctl() goes straight to the
// kernel while no Syscalls is installed (what sys() would have returned)
// and through the installed one otherwise, so fault injection and fake
// kernels see every call.
#pragma once

#include <sys/ioctl.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/uapi/iommufd.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::vfio {

namespace detail {

// The installed Syscalls, nullptr for the kernel (syscalls.cpp).
extern std::atomic<Syscalls*> g_installed_syscalls;

// ioctl(2) through the seam: the kernel itself unless a Syscalls is
// installed. -1 and errno on failure. Always inlined: an out-of-line copy
// would put a call and a return back on the path this file exists for.
[[gnu::always_inline]] inline int seam_ioctl(int fd, unsigned long request, void* arg) {
    Syscalls* s = g_installed_syscalls.load(std::memory_order_acquire);
    if (s == nullptr) [[likely]]
        return ::ioctl(fd, request, arg);
    return s->ioctl(fd, request, arg);
}

}  // namespace detail

// A container's map and unmap ioctls, as the backend keeps them.
struct DmaPath {
    enum class Protocol : std::uint8_t {
        none,    // not this way: ask the backend (map(), unmap(), dma_ready(), ...)
        record,  // no ioctl: a group container without an IOMMU model yet, whose
                 // mappings the front end only records (and replays at the
                 // first device)
        ioas,    // IOMMU_IOAS_MAP/UNMAP on an iommufd IOAS (cdev, cdev no-IOMMU)
        type1,   // VFIO_IOMMU_MAP_DMA/UNMAP_DMA on a type1 container fd (group, compat)
    };
    Protocol protocol = Protocol::none;
    int fd = -1;                 // the iommufd, or the container fd
    std::uint32_t ioas_id = 0;   // ioas
    std::uint64_t page_mask = 0; // the IOMMU page size minus one (ContainerBackend::page_size)
    // type1: set by every map and unmap, since the kernel's DMA-avail count
    // changed; the backend then asks again rather than answer from its cache.
    bool avail_stale = false;
};

// Maps [iova, iova+len) to vaddr, readable and writable. 0, or the errno.
// Precondition: p.protocol is ioas or type1.
[[gnu::always_inline]] inline int dma_path_map(DmaPath& p, std::uint64_t vaddr, std::uint64_t iova, std::uint64_t len) {
    int rc;
    if (p.protocol == DmaPath::Protocol::ioas) {
        uapi::iommu_ioas_map m{};
        m.size = sizeof m;
        m.flags = uapi::kIommuIoasMapFixedIova | uapi::kIommuIoasMapReadable |
                  uapi::kIommuIoasMapWriteable;
        m.ioas_id = p.ioas_id;
        m.user_va = vaddr;
        m.length = len;
        m.iova = iova;
        rc = detail::seam_ioctl(p.fd, uapi::kIommuIoasMap, &m);
    } else {
        uapi::vfio_iommu_type1_dma_map m{};
        m.argsz = sizeof m;
        m.flags = uapi::kVfioDmaMapFlagRead | uapi::kVfioDmaMapFlagWrite;
        m.vaddr = vaddr;
        m.iova = iova;
        m.size = len;
        rc = detail::seam_ioctl(p.fd, uapi::kVfioIommuMapDma, &m);
        p.avail_stale = true;
    }
    return rc < 0 ? errno : 0;
}

// Unmaps the whole mappings inside [iova, iova+len); `bytes` gets what the
// kernel says it unmapped. 0, or the errno. IOMMU_IOAS_UNMAP of 0 and
// UINT64_MAX is the kernel's "everything" (iommufd/ioas.c
// iommufd_ioas_unmap); type1's unmap-all has a flag of its own and is not
// issued here. Precondition: p.protocol is ioas or type1.
[[gnu::always_inline]] inline int dma_path_unmap(DmaPath& p, std::uint64_t iova, std::uint64_t len,
                          std::uint64_t& bytes) {
    if (p.protocol == DmaPath::Protocol::ioas) {
        uapi::iommu_ioas_unmap u{};
        u.size = sizeof u;
        u.ioas_id = p.ioas_id;
        u.iova = iova;
        u.length = len;
        if (detail::seam_ioctl(p.fd, uapi::kIommuIoasUnmap, &u) < 0)
            return errno;
        bytes = u.length;  // the kernel writes back the bytes it removed
        return 0;
    }
    uapi::vfio_iommu_type1_dma_unmap u{};
    u.argsz = sizeof u;
    u.iova = iova;
    u.size = len;
    const int rc = detail::seam_ioctl(p.fd, uapi::kVfioIommuUnmapDma, &u);
    p.avail_stale = true;
    if (rc < 0)
        return errno;
    bytes = u.size;  // likewise
    return 0;
}

}  // namespace vfiokit::vfio
