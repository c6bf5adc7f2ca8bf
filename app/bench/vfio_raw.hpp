// The raw side of vfiokit-bench-vfio (vfio_bench.cpp): the loops a C
// program would write around the map and unmap ioctls, and the set-up
// they need, with no vfiokit code on the timed path.
#pragma once

#include <sys/ioctl.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"
#include "vfiokit/eal/vfio/vfio.hpp"
#include "vfiokit/uapi/iommufd.hpp"
#include "vfiokit/uapi/vfio.hpp"

namespace vfiokit::bench {

constexpr std::uint64_t kPage = 4096;
constexpr unsigned kBufPages = 4;
// Below the edu's 28-bit DMA mask and the x86 MSI window; above the
// container's allocation floor (1 MiB).
constexpr std::uint64_t kIovaBase = 16ULL << 20;

// A translated mode as the benchmark runs it.
struct ModeCase {
    const char* label;         // "cdev", "group type1v2", ...
    vfio::Mode mode;
    vfio::Type1 type1;
    bool ioas;                 // IOMMU_IOAS_* (cdev) or type1 ioctls on a container
    const char* node;          // group-style: the container node
    int model;                 // group-style: VFIO_SET_IOMMU's model
};

// The kernel objects of one raw run, closed in the order the kernel wants
// (device before group or iommufd, group before container): members go in
// reverse order.
struct RawSetup {
    vfio::Fd container;  // /dev/vfio/vfio, or /dev/iommu (cdev, compat)
    vfio::Fd group;
    vfio::Fd device;
    std::uint32_t ioas = 0;
};

// Opens the mode's container (and, with `attach`, the device `bdf` in it)
// the way a C program would: no vfiokit code.
Result<RawSetup> raw_setup(const ModeCase& m, bool attach, const std::string& bdf);

// The buffer page behind mapping i: kBufPages pages, reused in turn.
inline std::uintptr_t buf_page(const char* buf, unsigned i) {
    return reinterpret_cast<std::uintptr_t>(buf) + (i % kBufPages) * kPage;
}

// The loops a C program would write: fill the struct, ioctl, check the
// return code. With `via`, the timed ioctls go to it (the null kernel)
// instead of the kernel.
struct RawOps {
    const ModeCase& m;
    RawSetup s;
    vfio::Syscalls* via = nullptr;

    int ioctl(unsigned long r, void* a) const {
        return via != nullptr ? via->ioctl(s.container.get(), r, a)
                              : ::ioctl(s.container.get(), r, a);
    }
    Result<void> map_one(const char* buf, unsigned i) const {
        int rc;
        if (m.ioas) {
            uapi::iommu_ioas_map a{};
            a.size = sizeof a;
            a.flags = uapi::kIommuIoasMapFixedIova | uapi::kIommuIoasMapReadable |
                      uapi::kIommuIoasMapWriteable;
            a.ioas_id = s.ioas;
            a.user_va = buf_page(buf, i);
            a.length = kPage;
            a.iova = kIovaBase + i * kPage;
            rc = ioctl(uapi::kIommuIoasMap, &a);
        } else {
            uapi::vfio_iommu_type1_dma_map a{};
            a.argsz = sizeof a;
            a.flags = uapi::kVfioDmaMapFlagRead | uapi::kVfioDmaMapFlagWrite;
            a.vaddr = buf_page(buf, i);
            a.iova = kIovaBase + i * kPage;
            a.size = kPage;
            rc = ioctl(uapi::kVfioIommuMapDma, &a);
        }
        if (rc < 0)
            return fail(errno, "raw map " + std::to_string(i));
        return {};
    }
    Result<void> unmap_one(unsigned i) const {
        int rc;
        if (m.ioas) {
            uapi::iommu_ioas_unmap u{};
            u.size = sizeof u;
            u.ioas_id = s.ioas;
            u.iova = kIovaBase + i * kPage;
            u.length = kPage;
            rc = ioctl(uapi::kIommuIoasUnmap, &u);
        } else {
            uapi::vfio_iommu_type1_dma_unmap u{};
            u.argsz = sizeof u;
            u.iova = kIovaBase + i * kPage;
            u.size = kPage;
            rc = ioctl(uapi::kVfioIommuUnmapDma, &u);
        }
        if (rc < 0)
            return fail(errno, "raw unmap " + std::to_string(i));
        return {};
    }
    Result<void> unmap_all() const {
        int rc;
        if (m.ioas) {
            uapi::iommu_ioas_unmap u{};
            u.size = sizeof u;
            u.ioas_id = s.ioas;
            u.iova = 0;
            u.length = UINT64_MAX;
            rc = ioctl(uapi::kIommuIoasUnmap, &u);
        } else {
            uapi::vfio_iommu_type1_dma_unmap u{};
            u.argsz = sizeof u;
            u.flags = uapi::kVfioDmaUnmapFlagAll;
            rc = ioctl(uapi::kVfioIommuUnmapDma, &u);
        }
        if (rc < 0)
            return fail(errno, "raw unmap all");
        return {};
    }
};

}  // namespace vfiokit::bench
