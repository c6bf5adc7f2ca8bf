// The Linux VFIO userspace ABI, as vfiokit uses it (reference: kernel 6.12).
//
// Structs keep the kernel's struct and field names so the two can be compared
// side by side (kernel-uapi/abi_check.cpp does so, field by field). Constants
// and ioctl numbers are spelled differently from the kernel's macros, so that
// this header and <linux/vfio.h> can share a translation unit: the rule is
// "k" + the macro name in CamelCase, e.g. VFIO_GROUP_FLAGS_VIABLE is
// kVfioGroupFlagsViable and VFIO_DEVICE_GET_INFO is kVfioDeviceGetInfo.
//
// Layouts assume a 64-bit target with the generic ioctl encoding (x86-64,
// arm64). Fields the kernel declares __aligned_u64 carry alignas(8).
//
// Variable-length trailers: where the kernel struct ends in a flexible array,
// ours stops before it. The trailer begins at sizeof(struct) (abi_check
// asserts this); use trailer_of<T>() to reach it and size_with_trailer<>() to
// size the buffer. Capability chains: `cap_offset` in an info struct and
// `next` in each vfio_info_cap_header are byte offsets from the start of the
// whole info buffer; 0 ends the chain. If argsz was too small for the chain
// the ioctl still succeeds, with cap_offset 0 and argsz raised to the size
// needed: retry with a buffer that large.
//
// Not covered: migration (v1 region and v2 features), device and IOMMU dirty
// tracking, SPAPR/EEH, s390 (zPCI, CCW, AP), graphics planes, ioeventfd.
#pragma once

#include <cstddef>
#include <cstdint>

#include <vfiokit/uapi/ioctl.hpp>

namespace vfiokit::uapi {

static_assert(sizeof(void*) == 8 && alignof(std::uint64_t) == 8,
              "vfiokit's VFIO layouts assume a 64-bit target");

// ---- Trailing-data helpers ------------------------------------------------

// Bytes needed for a Header followed by `count` Trailer entries.
template <class Header, class Trailer>
[[nodiscard]] constexpr std::size_t size_with_trailer(std::size_t count) {
    return sizeof(Header) + count * sizeof(Trailer);
}

// The first trailer entry after `h`. The buffer behind `h` must be at least
// size_with_trailer<Header, Trailer>(n) bytes and aligned for both types.
// (Going through void* keeps -Wcast-align=strict quiet; the static_assert
// plus the caller's buffer alignment are what make the result aligned.)
template <class Trailer, class Header>
[[nodiscard]] inline Trailer* trailer_of(Header* h) {
    static_assert(sizeof(Header) % alignof(Trailer) == 0,
                  "trailer would be misaligned right after the header");
    return static_cast<Trailer*>(static_cast<void*>(h + 1));
}
template <class Trailer, class Header>
[[nodiscard]] inline const Trailer* trailer_of(const Header* h) {
    static_assert(sizeof(Header) % alignof(Trailer) == 0,
                  "trailer would be misaligned right after the header");
    return static_cast<const Trailer*>(static_cast<const void*>(h + 1));
}

// ---- Common ----------------------------------------------------------------

// All VFIO requests are io(';', 100 + n): no size or direction encoded.
inline constexpr unsigned kVfioType = ';';
inline constexpr unsigned kVfioBase = 100;

[[nodiscard]] constexpr unsigned long vfio_ioctl(unsigned n) {
    return io(kVfioType, kVfioBase + n);
}

// Header of every entry in an info capability chain.
struct vfio_info_cap_header {
    std::uint16_t id;       // capability id, meaning depends on the info ioctl
    std::uint16_t version;  // per-capability layout version
    std::uint32_t next;     // offset of the next capability, 0 = last
};

// ---- Container: /dev/vfio/vfio ---------------------------------------------

// VFIO_GET_API_VERSION returns this; anything else is an unknown API.
inline constexpr int kVfioApiVersion = 0;

// Extension ids for CHECK_EXTENSION; the IOMMU model ids double as the
// argument of SET_IOMMU.
inline constexpr int kVfioType1Iommu = 1;
inline constexpr int kVfioType1v2Iommu = 3;
inline constexpr int kVfioDmaCcIommu = 4;     // DMA is cache coherent (may change as groups come and go)
inline constexpr int kVfioNoiommuIommu = 8;   // no translation or isolation; taints the kernel
inline constexpr int kVfioUnmapAll = 9;       // kVfioDmaUnmapFlagAll supported
inline constexpr int kVfioUpdateVaddr = 10;   // kVfioDmaMapFlagVaddr / kVfioDmaUnmapFlagVaddr supported

inline constexpr unsigned long kVfioGetApiVersion = vfio_ioctl(0);  // arg: none; returns version
inline constexpr unsigned long kVfioCheckExtension = vfio_ioctl(1); // arg: extension id; returns >0 if present
inline constexpr unsigned long kVfioSetIommu = vfio_ioctl(2);       // arg: IOMMU model id; needs a group attached

// ---- Group: /dev/vfio/<group> ----------------------------------------------

struct vfio_group_status {
    std::uint32_t argsz;
    std::uint32_t flags;
};
inline constexpr std::uint32_t kVfioGroupFlagsViable = 1u << 0;        // usable: no device in the group is held by a non-VFIO host driver
inline constexpr std::uint32_t kVfioGroupFlagsContainerSet = 1u << 1;  // group is attached to a container

inline constexpr unsigned long kVfioGroupGetStatus = vfio_ioctl(3);      // arg: vfio_group_status*
inline constexpr unsigned long kVfioGroupSetContainer = vfio_ioctl(4);   // arg: int* (container fd)
inline constexpr unsigned long kVfioGroupUnsetContainer = vfio_ioctl(5); // arg: none
inline constexpr unsigned long kVfioGroupGetDeviceFd = vfio_ioctl(6);    // arg: char* device name; returns a device fd

// ---- Device: info ----------------------------------------------------------

struct vfio_device_info {
    std::uint32_t argsz;
    std::uint32_t flags;
    std::uint32_t num_regions;  // highest region index + 1
    std::uint32_t num_irqs;     // highest irq index + 1
    std::uint32_t cap_offset;   // first capability, valid with kVfioDeviceFlagsCaps
    std::uint32_t pad;
};
inline constexpr std::uint32_t kVfioDeviceFlagsReset = 1u << 0;  // kVfioDeviceReset is supported
inline constexpr std::uint32_t kVfioDeviceFlagsPci = 1u << 1;
inline constexpr std::uint32_t kVfioDeviceFlagsPlatform = 1u << 2;
inline constexpr std::uint32_t kVfioDeviceFlagsAmba = 1u << 3;
inline constexpr std::uint32_t kVfioDeviceFlagsCcw = 1u << 4;
inline constexpr std::uint32_t kVfioDeviceFlagsAp = 1u << 5;
inline constexpr std::uint32_t kVfioDeviceFlagsFslMc = 1u << 6;
inline constexpr std::uint32_t kVfioDeviceFlagsCaps = 1u << 7;   // cap_offset is valid
inline constexpr std::uint32_t kVfioDeviceFlagsCdx = 1u << 8;

inline constexpr unsigned long kVfioDeviceGetInfo = vfio_ioctl(7);  // arg: vfio_device_info*

// Device info capability: PCIe AtomicOp completer support of the root port.
inline constexpr std::uint16_t kVfioDeviceInfoCapPciAtomicComp = 5;
struct vfio_device_info_cap_pci_atomic_comp {
    vfio_info_cap_header header;
    std::uint32_t flags;
    std::uint32_t reserved;
};
inline constexpr std::uint32_t kVfioPciAtomicComp32 = 1u << 0;
inline constexpr std::uint32_t kVfioPciAtomicComp64 = 1u << 1;
inline constexpr std::uint32_t kVfioPciAtomicComp128 = 1u << 2;

// ---- Device: regions -------------------------------------------------------

// Set `index` and argsz; the kernel fills the rest. A region is accessed by
// pread/pwrite/mmap on the device fd at `offset`.
struct vfio_region_info {
    std::uint32_t argsz;
    std::uint32_t flags;
    std::uint32_t index;
    std::uint32_t cap_offset;        // first capability, valid with kVfioRegionInfoFlagCaps
    alignas(8) std::uint64_t size;   // bytes; 0 = region not implemented
    alignas(8) std::uint64_t offset; // position of the region in the device fd
};
inline constexpr std::uint32_t kVfioRegionInfoFlagRead = 1u << 0;
inline constexpr std::uint32_t kVfioRegionInfoFlagWrite = 1u << 1;
inline constexpr std::uint32_t kVfioRegionInfoFlagMmap = 1u << 2;
inline constexpr std::uint32_t kVfioRegionInfoFlagCaps = 1u << 3;

inline constexpr unsigned long kVfioDeviceGetRegionInfo = vfio_ioctl(8);  // arg: vfio_region_info*

// Region capability ids.
inline constexpr std::uint16_t kVfioRegionInfoCapSparseMmap = 1;
inline constexpr std::uint16_t kVfioRegionInfoCapType = 2;
// No payload beyond the header: the MSI-X table/PBA inside this BAR may be
// mmapped (MSI-X itself is still programmed through kVfioDeviceSetIrqs).
inline constexpr std::uint16_t kVfioRegionInfoCapMsixMappable = 3;

// Sparse mmap: only the listed windows of the region may be mmapped.
struct vfio_region_sparse_mmap_area {
    alignas(8) std::uint64_t offset;  // from the start of the region
    alignas(8) std::uint64_t size;
};
// Trailer: nr_areas x vfio_region_sparse_mmap_area.
struct alignas(8) vfio_region_info_cap_sparse_mmap {
    vfio_info_cap_header header;
    std::uint32_t nr_areas;
    std::uint32_t reserved;
};

// Device-specific region type (regions past the fixed per-bus indexes).
struct vfio_region_info_cap_type {
    vfio_info_cap_header header;
    std::uint32_t type;     // bus-driver defined
    std::uint32_t subtype;  // type defined
};
// For PCI, a type with the top bit set is vendor-specific: the low 16 bits are
// the PCI vendor id.
inline constexpr std::uint32_t kVfioRegionTypePciVendorType = 1u << 31;
inline constexpr std::uint32_t kVfioRegionTypePciVendorMask = 0xffff;
inline constexpr std::uint32_t kVfioRegionTypeGfx = 1;
inline constexpr std::uint32_t kVfioRegionTypeCcw = 2;

// ---- Device: interrupts ----------------------------------------------------

struct vfio_irq_info {
    std::uint32_t argsz;
    std::uint32_t flags;
    std::uint32_t index;  // input: which irq index
    std::uint32_t count;  // number of vectors; 0 = not supported
};
inline constexpr std::uint32_t kVfioIrqInfoEventfd = 1u << 0;     // can signal an eventfd
inline constexpr std::uint32_t kVfioIrqInfoMaskable = 1u << 1;    // mask/unmask actions work
inline constexpr std::uint32_t kVfioIrqInfoAutomasked = 1u << 2;  // level-triggered: masked on delivery, unmask to rearm
inline constexpr std::uint32_t kVfioIrqInfoNoresize = 1u << 3;    // vector count fixed once enabled

inline constexpr unsigned long kVfioDeviceGetIrqInfo = vfio_ioctl(9);  // arg: vfio_irq_info*

// Set, trigger, mask or unmask vectors [start, start + count) of one index.
// Flags hold exactly one DATA type and one ACTION. Trailer depends on the
// data type: none, count x std::uint8_t (bool), or count x std::int32_t
// (eventfds; -1 releases that vector, or skips it if unassigned).
// TRIGGER with eventfds enables the index; DATA_NONE | ACTION_TRIGGER with
// count 0 disables the whole index. MASK/UNMASK with eventfds installs
// irqfds (userspace -> kernel), TRIGGER signals kernel -> userspace.
struct vfio_irq_set {
    std::uint32_t argsz;
    std::uint32_t flags;
    std::uint32_t index;
    std::uint32_t start;
    std::uint32_t count;
};
inline constexpr std::uint32_t kVfioIrqSetDataNone = 1u << 0;
inline constexpr std::uint32_t kVfioIrqSetDataBool = 1u << 1;
inline constexpr std::uint32_t kVfioIrqSetDataEventfd = 1u << 2;
inline constexpr std::uint32_t kVfioIrqSetActionMask = 1u << 3;
inline constexpr std::uint32_t kVfioIrqSetActionUnmask = 1u << 4;
inline constexpr std::uint32_t kVfioIrqSetActionTrigger = 1u << 5;
inline constexpr std::uint32_t kVfioIrqSetDataTypeMask =
    kVfioIrqSetDataNone | kVfioIrqSetDataBool | kVfioIrqSetDataEventfd;
inline constexpr std::uint32_t kVfioIrqSetActionTypeMask =
    kVfioIrqSetActionMask | kVfioIrqSetActionUnmask | kVfioIrqSetActionTrigger;

inline constexpr unsigned long kVfioDeviceSetIrqs = vfio_ioctl(10);  // arg: vfio_irq_set* + trailer

// Function-level reset; only if kVfioDeviceFlagsReset. arg: none.
inline constexpr unsigned long kVfioDeviceReset = vfio_ioctl(11);

// ---- ioeventfds ---------------------------------------------------------------

// VFIO_DEVICE_IOEVENTFD: when `fd` (an eventfd) is signalled, the kernel
// writes `data` (the width in flags) at `offset` of the device fd; fd -1
// removes the one registered for that offset, data and width. vfio-pci
// serves BAR regions except the MSI-X table (include/uapi/linux/vfio.h).
struct vfio_device_ioeventfd {
    std::uint32_t argsz;
    std::uint32_t flags;  // kVfioDeviceIoeventfd8..64: the write's width
    std::uint64_t offset;
    std::uint64_t data;
    std::int32_t fd;
    std::uint32_t reserved;
};
static_assert(sizeof(vfio_device_ioeventfd) == 32);
inline constexpr std::uint32_t kVfioDeviceIoeventfd8 = 1u << 0;
inline constexpr std::uint32_t kVfioDeviceIoeventfd16 = 1u << 1;
inline constexpr std::uint32_t kVfioDeviceIoeventfd32 = 1u << 2;
inline constexpr std::uint32_t kVfioDeviceIoeventfd64 = 1u << 3;
inline constexpr unsigned long kVfioDeviceIoeventfd = vfio_ioctl(16);  // arg: vfio_device_ioeventfd*

// ---- vfio-pci fixed indexes --------------------------------------------------

inline constexpr std::uint32_t kVfioPciBar0RegionIndex = 0;
inline constexpr std::uint32_t kVfioPciBar1RegionIndex = 1;
inline constexpr std::uint32_t kVfioPciBar2RegionIndex = 2;
inline constexpr std::uint32_t kVfioPciBar3RegionIndex = 3;
inline constexpr std::uint32_t kVfioPciBar4RegionIndex = 4;
inline constexpr std::uint32_t kVfioPciBar5RegionIndex = 5;
inline constexpr std::uint32_t kVfioPciRomRegionIndex = 6;
inline constexpr std::uint32_t kVfioPciConfigRegionIndex = 7;
// Legacy VGA ranges (I/O 0x3b0-0x3bb, 0x3c0-0x3df, memory 0xa0000-0xbffff),
// each at its own address as offset into the region.
inline constexpr std::uint32_t kVfioPciVgaRegionIndex = 8;
// Fixed indexes end here; higher ones are described by kVfioRegionInfoCapType.
inline constexpr std::uint32_t kVfioPciNumRegions = 9;

inline constexpr std::uint32_t kVfioPciIntxIrqIndex = 0;
inline constexpr std::uint32_t kVfioPciMsiIrqIndex = 1;
inline constexpr std::uint32_t kVfioPciMsixIrqIndex = 2;
inline constexpr std::uint32_t kVfioPciErrIrqIndex = 3;  // AER error reported
inline constexpr std::uint32_t kVfioPciReqIrqIndex = 4;  // kernel asks userspace to release the device
inline constexpr std::uint32_t kVfioPciNumIrqs = 5;

// ---- vfio-pci hot reset ----------------------------------------------------

// One device affected by a bus/slot reset of the queried device.
struct vfio_pci_dependent_device {
    union {
        std::uint32_t group_id;  // group interface (flags lack kVfioPciHotResetFlagDevId)
        std::uint32_t devid;     // cdev interface: device id (> 0) in the caller's iommufd, or one of the two below
    };
    std::uint16_t segment;
    std::uint8_t bus;
    std::uint8_t devfn;  // slot << 3 | function
};
// devid values when the id itself is not reported.
inline constexpr std::uint32_t kVfioPciDevidOwned = 0;             // no id of ours, but in an IOMMU group we hold
inline constexpr std::uint32_t kVfioPciDevidNotOwned = 0xffffffff; // kernel spells it -1; blocks a cdev hot reset

// Trailer: count x vfio_pci_dependent_device. ENOSPC: buffer too small,
// count now says how many entries are needed.
struct vfio_pci_hot_reset_info {
    std::uint32_t argsz;
    std::uint32_t flags;
    std::uint32_t count;
};
inline constexpr std::uint32_t kVfioPciHotResetFlagDevId = 1u << 0;       // entries carry devid
// Only with FlagDevId: every affected device is owned through this iommufd,
// so kVfioDevicePciHotReset may be called with no group fds.
inline constexpr std::uint32_t kVfioPciHotResetFlagDevIdOwned = 1u << 1;

// Trailer: count x std::int32_t group fds proving ownership (count 0 on the
// cdev interface, where the bound iommufd proves it).
struct vfio_pci_hot_reset {
    std::uint32_t argsz;
    std::uint32_t flags;
    std::uint32_t count;
};

inline constexpr unsigned long kVfioDeviceGetPciHotResetInfo = vfio_ioctl(12);
inline constexpr unsigned long kVfioDevicePciHotReset = vfio_ioctl(13);

// ---- Device features ---------------------------------------------------------

// Generic get/set/probe of a numbered feature. flags = feature index (low 16
// bits) | GET or SET (not both), or | PROBE, optionally with GET and/or SET,
// to ask whether the feature (and those operations) are supported.
// Trailer: the feature's payload, covered by argsz; not needed to probe.
struct vfio_device_feature {
    std::uint32_t argsz;
    std::uint32_t flags;
};
inline constexpr std::uint32_t kVfioDeviceFeatureMask = 0xffff;
inline constexpr std::uint32_t kVfioDeviceFeatureGet = 1u << 16;
inline constexpr std::uint32_t kVfioDeviceFeatureSet = 1u << 17;
inline constexpr std::uint32_t kVfioDeviceFeatureProbe = 1u << 18;

inline constexpr unsigned long kVfioDeviceFeature = vfio_ioctl(17);  // arg: vfio_device_feature* + payload

// Feature indexes (migration and DMA logging ones omitted).
inline constexpr std::uint32_t kVfioDeviceFeaturePciVfToken = 0;   // SET on a PF; payload 16-byte UUID
inline constexpr std::uint32_t kVfioDeviceFeatureLowPowerEntry = 3;
inline constexpr std::uint32_t kVfioDeviceFeatureLowPowerEntryWithWakeup = 4;
inline constexpr std::uint32_t kVfioDeviceFeatureLowPowerExit = 5;
inline constexpr std::uint32_t kVfioDeviceFeatureBusMaster = 10;   // SET; payload vfio_device_feature_bus_master

struct vfio_device_low_power_entry_with_wakeup {
    std::int32_t wakeup_eventfd;
    std::uint32_t reserved;
};

struct vfio_device_feature_bus_master {
    std::uint32_t op;
};
inline constexpr std::uint32_t kVfioDeviceFeatureClearMaster = 0;
inline constexpr std::uint32_t kVfioDeviceFeatureSetMaster = 1;

// Kernel 6.19+ with CONFIG_VFIO_PCI_DMABUF only (compared by abi_check when
// built against headers that have it; older kernels answer ENOTTY). GET
// exports slices of one region (a memory BAR) as a dma-buf: the ioctl
// returns the new fd. flags must be 0; each range's offset and length are
// page-aligned and lie inside the region (vfio_pci_dmabuf.c
// validate_dmabuf_input, vfio_pci_core_fill_phys_vec). Trailer:
// nr_ranges vfio_region_dma_range entries.
inline constexpr std::uint32_t kVfioDeviceFeatureDmaBuf = 11;

struct vfio_region_dma_range {
    alignas(8) std::uint64_t offset;  // in the region
    alignas(8) std::uint64_t length;
};

// 8-aligned as the kernel's, whose trailer of u64 pairs makes it so.
struct alignas(8) vfio_device_feature_dma_buf {
    std::uint32_t region_index;  // the BAR number for vfio-pci
    std::uint32_t open_flags;    // of the new fd: O_RDWR, O_CLOEXEC
    std::uint32_t flags;
    std::uint32_t nr_ranges;
};

// ---- Device cdev: /dev/vfio/devices/vfioN + iommufd -------------------------

// Binds an opened device cdev to an iommufd; until this succeeds the device fd
// accepts nothing else. out_devid names the device in iommufd ioctls.
struct vfio_device_bind_iommufd {
    std::uint32_t argsz;
    std::uint32_t flags;   // 6.12: must be 0
    std::int32_t iommufd;
    std::uint32_t out_devid;
};
// Kernel 6.17+ only (older kernels reject any flag with EINVAL): the struct
// grows an aligned u64 `token_uuid_ptr` at offset 16, pointing to the 16-byte
// SR-IOV VF token (the UUID set on the PF with kVfioDeviceFeaturePciVfToken).
// Use vfio_device_bind_iommufd_token for that layout.
inline constexpr std::uint32_t kVfioDeviceBindFlagToken = 1u << 0;

// Not a kernel struct name: the 6.17+ layout of vfio_device_bind_iommufd,
// kept separate so the plain struct matches the 6.12 reference kernel.
struct vfio_device_bind_iommufd_token {
    std::uint32_t argsz;
    std::uint32_t flags;
    std::int32_t iommufd;
    std::uint32_t out_devid;
    alignas(8) std::uint64_t token_uuid_ptr;
};

// Attach the bound device to an IOAS or HWPT (pt_id); attaching again
// replaces the current one. On return pt_id holds the IOAS id given or the
// HWPT actually attached (possibly one the kernel created for the IOAS).
struct vfio_device_attach_iommufd_pt {
    std::uint32_t argsz;
    std::uint32_t flags;  // 6.12: must be 0 (PASID attach is a later addition)
    std::uint32_t pt_id;
};

struct vfio_device_detach_iommufd_pt {
    std::uint32_t argsz;
    std::uint32_t flags;  // 6.12: must be 0
};

inline constexpr unsigned long kVfioDeviceBindIommufd = vfio_ioctl(18);
inline constexpr unsigned long kVfioDeviceAttachIommufdPt = vfio_ioctl(19);
inline constexpr unsigned long kVfioDeviceDetachIommufdPt = vfio_ioctl(20);

// ---- Type1 IOMMU (container after kVfioSetIommu) ----------------------------

struct vfio_iommu_type1_info {
    std::uint32_t argsz;
    std::uint32_t flags;
    alignas(8) std::uint64_t iova_pgsizes;  // bitmap of supported page sizes
    std::uint32_t cap_offset;               // first capability, valid with kVfioIommuInfoCaps
    std::uint32_t pad;
};
inline constexpr std::uint32_t kVfioIommuInfoPgsizes = 1u << 0;  // iova_pgsizes is valid
inline constexpr std::uint32_t kVfioIommuInfoCaps = 1u << 1;     // cap_offset is valid

inline constexpr unsigned long kVfioIommuGetInfo = vfio_ioctl(12);  // arg: vfio_iommu_type1_info*

// Type1 info capability ids.
inline constexpr std::uint16_t kVfioIommuType1InfoCapIovaRange = 1;
inline constexpr std::uint16_t kVfioIommuType1InfoCapMigration = 2;
inline constexpr std::uint16_t kVfioIommuType1InfoDmaAvail = 3;

// Inclusive range [start, end] of usable IOVAs.
struct vfio_iova_range {
    std::uint64_t start;
    std::uint64_t end;
};
// Trailer: nr_iovas x vfio_iova_range. Mapping outside them fails.
struct alignas(8) vfio_iommu_type1_info_cap_iova_range {
    vfio_info_cap_header header;
    std::uint32_t nr_iovas;
    std::uint32_t reserved;
};

// Dirty page tracking parameters (vfiokit reads it, does not use tracking).
struct vfio_iommu_type1_info_cap_migration {
    vfio_info_cap_header header;
    std::uint32_t flags;
    std::uint64_t pgsize_bitmap;          // page sizes usable for dirty bitmaps
    std::uint64_t max_dirty_bitmap_size;  // bytes
};

// How many more DMA mappings the container accepts right now.
struct vfio_iommu_type1_info_dma_avail {
    vfio_info_cap_header header;
    std::uint32_t avail;
};

// Map [vaddr, vaddr + size) of this process at iova and pin the pages.
// READ and/or WRITE is required.
struct vfio_iommu_type1_dma_map {
    std::uint32_t argsz;
    std::uint32_t flags;
    std::uint64_t vaddr;
    std::uint64_t iova;
    std::uint64_t size;  // bytes
};
inline constexpr std::uint32_t kVfioDmaMapFlagRead = 1u << 0;   // device may read
inline constexpr std::uint32_t kVfioDmaMapFlagWrite = 1u << 1;  // device may write
// Give an existing mapping, invalidated with kVfioDmaUnmapFlagVaddr, its new
// process address: same iova and size, READ/WRITE must be 0, vaddr must
// address the same memory object. Needs kVfioUpdateVaddr.
inline constexpr std::uint32_t kVfioDmaMapFlagVaddr = 1u << 2;

inline constexpr unsigned long kVfioIommuMapDma = vfio_ioctl(13);  // arg: vfio_iommu_type1_dma_map*

// Dirty bitmap descriptor, the trailer of an unmap with
// kVfioDmaUnmapFlagGetDirtyBitmap.
struct vfio_bitmap {
    std::uint64_t pgsize;  // bytes per bit
    std::uint64_t size;    // bitmap bytes
    std::uint64_t* data;
};

// Unmap [iova, iova + size); size returns the bytes actually unmapped.
// Partial unmaps of an earlier mapping are not guaranteed to work.
// Trailer: a vfio_bitmap only with kVfioDmaUnmapFlagGetDirtyBitmap.
struct vfio_iommu_type1_dma_unmap {
    std::uint32_t argsz;
    std::uint32_t flags;
    std::uint64_t iova;
    std::uint64_t size;
};
inline constexpr std::uint32_t kVfioDmaUnmapFlagGetDirtyBitmap = 1u << 0;
// Unmap everything; iova and size must be 0. Needs kVfioUnmapAll.
// Neither ALL nor VADDR may be combined with GET_DIRTY_BITMAP.
inline constexpr std::uint32_t kVfioDmaUnmapFlagAll = 1u << 1;
// Keep the mappings in range but invalidate their process addresses (e.g.
// across exec); DMA continues, no group may join meanwhile. Needs
// kVfioUpdateVaddr.
inline constexpr std::uint32_t kVfioDmaUnmapFlagVaddr = 1u << 2;

inline constexpr unsigned long kVfioIommuUnmapDma = vfio_ioctl(14);  // arg: vfio_iommu_type1_dma_unmap*

}  // namespace vfiokit::uapi
