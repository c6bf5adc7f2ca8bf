// The Linux IOMMUFD userspace ABI (/dev/iommu), the parts vfiokit uses
// (reference: kernel 6.12).
//
// Same conventions as vfio.hpp: kernel struct and field names, constants as
// "k" + the kernel's name in CamelCase (IOMMU_IOAS_MAP_FIXED_IOVA is
// kIommuIoasMapFixedIova, the IOMMU_IOAS_MAP request is kIommuIoasMap).
//
// Every request is io(';', 0x80 + n) and takes a struct whose first u32,
// `size`, the caller sets to sizeof(struct). The kernel accepts a larger size
// as long as the bytes it does not know are zero (E2BIG otherwise); unknown
// values in known fields give EOPNOTSUPP. Reserved fields and unused flags
// must be 0. Objects (IOAS, HWPT, device) are named by u32 ids, unique
// within one iommufd.
//
// Not covered: HWPT allocation, nesting, dirty tracking, invalidation, fault
// queues, vIOMMU.
#pragma once

#include <cstdint>

#include <vfiokit/uapi/ioctl.hpp>

namespace vfiokit::uapi {

static_assert(sizeof(void*) == 8 && alignof(std::uint64_t) == 8,
              "vfiokit's IOMMUFD layouts assume a 64-bit target");

inline constexpr unsigned kIommufdType = ';';

// Command numbers (the low byte of each request).
inline constexpr unsigned kIommufdCmdBase = 0x80;
inline constexpr unsigned kIommufdCmdDestroy = 0x80;
inline constexpr unsigned kIommufdCmdIoasAlloc = 0x81;
inline constexpr unsigned kIommufdCmdIoasAllowIovas = 0x82;
inline constexpr unsigned kIommufdCmdIoasCopy = 0x83;
inline constexpr unsigned kIommufdCmdIoasIovaRanges = 0x84;
inline constexpr unsigned kIommufdCmdIoasMap = 0x85;
inline constexpr unsigned kIommufdCmdIoasUnmap = 0x86;
inline constexpr unsigned kIommufdCmdOption = 0x87;
inline constexpr unsigned kIommufdCmdVfioIoas = 0x88;
inline constexpr unsigned kIommufdCmdGetHwInfo = 0x8a;
// Kernel 6.13+ only (not in the 6.12 reference headers, so abi_check can
// compare it only when built against newer ones). ENOTTY on older kernels.
inline constexpr unsigned kIommufdCmdIoasMapFile = 0x8f;
// Kernel 6.13+ only, like MAP_FILE (compared by abi_check when built
// against headers that have it). ENOTTY on older kernels.
inline constexpr unsigned kIommufdCmdIoasChangeProcess = 0x92;
// Kernel 7.3+ with CONFIG_IOMMUFD_NOIOMMU only (compared by abi_check when
// built against headers that have it). Older kernels: ENOTTY; a 7.3 kernel
// built without CONFIG_IOMMUFD_NOIOMMU: EOPNOTSUPP.
inline constexpr unsigned kIommufdCmdIoasNoiommuGetPa = 0x95;

[[nodiscard]] constexpr unsigned long iommufd_ioctl(unsigned cmd) {
    return io(kIommufdType, cmd);
}

// ---- Objects ---------------------------------------------------------------

// Destroy any destroyable object by id.
struct iommu_destroy {
    std::uint32_t size;
    std::uint32_t id;
};
inline constexpr unsigned long kIommuDestroy = iommufd_ioctl(kIommufdCmdDestroy);

// ---- IO address spaces (IOAS) -----------------------------------------------

// Create an empty IOAS: an IOVA -> user memory map that devices attach to.
struct iommu_ioas_alloc {
    std::uint32_t size;
    std::uint32_t flags;  // must be 0
    std::uint32_t out_ioas_id;
};
inline constexpr unsigned long kIommuIoasAlloc = iommufd_ioctl(kIommufdCmdIoasAlloc);

// Inclusive IOVA interval [start, last].
struct iommu_iova_range {
    alignas(8) std::uint64_t start;
    alignas(8) std::uint64_t last;
};

// Read the IOVA ranges currently usable in an IOAS. They narrow as devices
// attach (each adds its hardware's limits) and may widen on detach, so query
// after each attach. allowed_iovas points to num_iovas entries; if that is too
// few the call fails with EMSGSIZE and num_iovas says how many exist.
// out_iova_alignment: every mapped iova and iova + length must be a multiple
// of it (1 = any; never above the CPU page size).
struct iommu_ioas_iova_ranges {
    std::uint32_t size;
    std::uint32_t ioas_id;
    std::uint32_t num_iovas;
    std::uint32_t __reserved;
    alignas(8) std::uint64_t allowed_iovas;  // user pointer to iommu_iova_range[]
    alignas(8) std::uint64_t out_iova_alignment;
};
inline constexpr unsigned long kIommuIoasIovaRanges = iommufd_ioctl(kIommufdCmdIoasIovaRanges);

// Reserve the given ranges as always usable: later attaches that would
// narrow them fail, and automatic IOVA placement stays inside them. Replaces
// any previous list; fails if the IOAS is already narrower.
struct iommu_ioas_allow_iovas {
    std::uint32_t size;
    std::uint32_t ioas_id;
    std::uint32_t num_iovas;
    std::uint32_t __reserved;
    alignas(8) std::uint64_t allowed_iovas;  // user pointer to iommu_iova_range[]
};
inline constexpr unsigned long kIommuIoasAllowIovas = iommufd_ioctl(kIommufdCmdIoasAllowIovas);

// Flags of map, map_file and copy.
inline constexpr std::uint32_t kIommuIoasMapFixedIova = 1u << 0;  // use `iova` as given; else kernel picks and returns it
inline constexpr std::uint32_t kIommuIoasMapWriteable = 1u << 1;  // device may write
inline constexpr std::uint32_t kIommuIoasMapReadable = 1u << 2;   // device may read

// Map user memory [user_va, user_va + length) and pin it. With FIXED_IOVA the
// target range must be free; existing mappings are never replaced.
struct iommu_ioas_map {
    std::uint32_t size;
    std::uint32_t flags;
    std::uint32_t ioas_id;
    std::uint32_t __reserved;
    alignas(8) std::uint64_t user_va;
    alignas(8) std::uint64_t length;
    alignas(8) std::uint64_t iova;  // in with FIXED_IOVA, else out
};
inline constexpr unsigned long kIommuIoasMap = iommufd_ioctl(kIommufdCmdIoasMap);

// Kernel 6.13+ only. Like iommu_ioas_map, but the memory is given as a memfd
// and a byte offset into it rather than a user address. Layout taken from the
// upstream uapi header (not present in the 6.12 reference sources).
struct iommu_ioas_map_file {
    std::uint32_t size;
    std::uint32_t flags;
    std::uint32_t ioas_id;
    std::int32_t fd;
    alignas(8) std::uint64_t start;  // byte offset into the file
    alignas(8) std::uint64_t length;
    alignas(8) std::uint64_t iova;
};
inline constexpr unsigned long kIommuIoasMapFile = iommufd_ioctl(kIommufdCmdIoasMapFile);

// Map, in dst_ioas_id, memory already mapped in src_ioas_id, sharing the
// pins. [src_iova, src_iova + length) must be exactly one earlier map.
struct iommu_ioas_copy {
    std::uint32_t size;
    std::uint32_t flags;
    std::uint32_t dst_ioas_id;
    std::uint32_t src_ioas_id;
    alignas(8) std::uint64_t length;
    alignas(8) std::uint64_t dst_iova;  // in with FIXED_IOVA, else out
    alignas(8) std::uint64_t src_iova;
};
inline constexpr unsigned long kIommuIoasCopy = iommufd_ioctl(kIommufdCmdIoasCopy);

// Unmap whole earlier mappings inside [iova, iova + length); cutting a
// mapping in two fails. iova 0 with length UINT64_MAX unmaps everything.
// length returns the bytes unmapped.
struct iommu_ioas_unmap {
    std::uint32_t size;
    std::uint32_t ioas_id;
    alignas(8) std::uint64_t iova;
    alignas(8) std::uint64_t length;
};
inline constexpr unsigned long kIommuIoasUnmap = iommufd_ioctl(kIommufdCmdIoasUnmap);

// Kernel 7.3+ (CONFIG_IOMMUFD_NOIOMMU): where the memory mapped at `iova`
// lies in physical memory, for a device without an IOMMU (cdev no-IOMMU:
// /dev/vfio/devices/noiommu-vfioN attached to this IOAS). There the IOVA is
// only the key the lookup goes by; the device is given the physical address.
// In: `length` > 0, the most bytes to describe from `iova` on. Out:
// `out_phys`, the physical address of the byte at `iova`, and `length`, how
// many bytes from there are physically contiguous (at most the length
// asked for, and never past the end of the mapping that holds `iova`).
// The caller needs CAP_SYS_RAWIO (EPERM). ENOENT: nothing is mapped at
// `iova`; EOPNOTSUPP: the mapping has no no-IOMMU page table behind it
// (no no-IOMMU device is attached to the IOAS, so nothing is pinned yet),
// or flags/__reserved are not 0; EINVAL: `length` is 0.
struct iommu_ioas_noiommu_get_pa {
    std::uint32_t size;
    std::uint32_t flags;  // must be 0
    std::uint32_t ioas_id;
    std::uint32_t __reserved;
    alignas(8) std::uint64_t iova;
    alignas(8) std::uint64_t length;    // in: the most to describe; out: contiguous bytes
    alignas(8) std::uint64_t out_phys;
};
inline constexpr unsigned long kIommuIoasNoiommuGetPa = iommufd_ioctl(kIommufdCmdIoasNoiommuGetPa);

// Kernel 6.13+ only. Moves the pinned-page accounting of every mapping in
// every IOAS of this iommufd to the calling process (its mm's pinned_vm,
// and, for a caller without CAP_IPC_LOCK, its user's locked_vm checked
// against its RLIMIT_MEMLOCK): for a process that took over another's
// iommufd. Only mappings made by IOMMU_IOAS_MAP_FILE can move: one made by
// user address fails the whole call with EINVAL. ENOMEM: the caller's
// RLIMIT_MEMLOCK cannot take the pages. On failure nothing changed
// (iommufd/ioas.c iommufd_ioas_change_process). EOPNOTSUPP: __reserved
// is not 0.
struct iommu_ioas_change_process {
    std::uint32_t size;
    std::uint32_t __reserved;  // must be 0
};
inline constexpr unsigned long kIommuIoasChangeProcess =
    iommufd_ioctl(kIommufdCmdIoasChangeProcess);

// ---- Options ---------------------------------------------------------------

// Get or set one option value.
struct iommu_option {
    std::uint32_t size;
    std::uint32_t option_id;
    std::uint16_t op;
    std::uint16_t __reserved;
    std::uint32_t object_id;  // 0 for global options, else the object's id
    alignas(8) std::uint64_t val64;
};
// option_id values.
// Global, privileged: how pinned memory counts against RLIMIT_MEMLOCK,
// 0 = per user (default), 1 = per process.
inline constexpr std::uint32_t kIommuOptionRlimitMode = 0;
// Per IOAS (object_id = IOAS id): 1 = combine contiguous pages into large
// IOMMU pages (default), 0 = map everything with CPU-page granularity.
inline constexpr std::uint32_t kIommuOptionHugePages = 1;
// op values.
inline constexpr std::uint16_t kIommuOptionOpSet = 0;
inline constexpr std::uint16_t kIommuOptionOpGet = 1;

inline constexpr unsigned long kIommuOption = iommufd_ioctl(kIommufdCmdOption);

// ---- VFIO container compatibility -------------------------------------------

// Choose the IOAS a VFIO group uses when the iommufd stands in for a
// /dev/vfio/vfio container (kVfioGroupSetContainer with the iommufd). Without
// a SET, the first such group creates one automatically.
struct iommu_vfio_ioas {
    std::uint32_t size;
    std::uint32_t ioas_id;  // in for SET, out for GET
    std::uint16_t op;
    std::uint16_t __reserved;
};
inline constexpr std::uint16_t kIommuVfioIoasGet = 0;
inline constexpr std::uint16_t kIommuVfioIoasSet = 1;
inline constexpr std::uint16_t kIommuVfioIoasClear = 2;  // turn compatibility off; no IOAS is destroyed

inline constexpr unsigned long kIommuVfioIoas = iommufd_ioctl(kIommufdCmdVfioIoas);

// ---- Hardware info ------------------------------------------------------------

// Describe the IOMMU behind a bound device (dev_id from
// kVfioDeviceBindIommufd). Driver-specific data, out_data_type telling its
// format, goes to data_uptr; data_len is in: buffer size (0 allowed), out:
// the size the kernel has (a larger buffer is zero-filled past it).
struct iommu_hw_info {
    std::uint32_t size;
    std::uint32_t flags;  // must be 0
    std::uint32_t dev_id;
    std::uint32_t data_len;
    alignas(8) std::uint64_t data_uptr;
    std::uint32_t out_data_type;
    // As in the 6.12 reference sources. Kernels before the PASID reporting
    // have a u32 __reserved covering these 4 bytes (same layout, reads 0).
    std::uint8_t out_max_pasid_log2;  // PASID width; 0 = no PASID
    std::uint8_t __reserved[3];
    alignas(8) std::uint64_t out_capabilities;
};
// out_data_type values.
inline constexpr std::uint32_t kIommuHwInfoTypeNone = 0;
inline constexpr std::uint32_t kIommuHwInfoTypeIntelVtd = 1;
// out_capabilities bits.
inline constexpr std::uint64_t kIommuHwCapDirtyTracking = 1u << 0;
// The two PASID bits mean nothing when out_max_pasid_log2 is 0.
inline constexpr std::uint64_t kIommuHwCapPciPasidExec = 1u << 1;
inline constexpr std::uint64_t kIommuHwCapPciPasidPriv = 1u << 2;

inline constexpr unsigned long kIommuGetHwInfo = iommufd_ioctl(kIommufdCmdGetHwInfo);

}  // namespace vfiokit::uapi
