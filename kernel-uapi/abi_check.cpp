// Compile-time comparison of vfiokit's ABI definitions (vfiokit/uapi/*.hpp)
// with the kernel's own exported headers.
//
// Built only when meson is given -Dkernel_headers=<dir> (the lab kernel's
// `make headers_install` output, kernel 6.12). Every struct is compared for
// size and alignment, every field for offset, size and signedness, every
// constant and ioctl number for value. A mismatch is a compile error naming
// the item; running the program only reports how much was compared.
//
// Items that exist only in kernels newer than 6.12 are compared when the
// headers have them (detected by their macros) and otherwise listed as
// skipped.

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include <cstddef>
#include <cstdio>
#include <type_traits>
#include <utility>

#include <vfiokit/uapi/iommufd.hpp>
#include <vfiokit/uapi/ioctl.hpp>
#include <vfiokit/uapi/vfio.hpp>

namespace uapi = vfiokit::uapi;

namespace {

template <class A, class B>
constexpr bool same_signedness() {
    using RA = std::remove_cv_t<A>;
    using RB = std::remove_cv_t<B>;
    if constexpr (std::is_integral_v<RA> && std::is_integral_v<RB>) {
        return std::is_signed_v<RA> == std::is_signed_v<RB>;
    } else {
        return std::is_integral_v<RA> == std::is_integral_v<RB>;
    }
}

// Our constant equals the kernel's value, which must be representable in
// our constant's type.
template <class Ours, class Theirs>
constexpr bool same_value(Ours ours, Theirs theirs) {
    return std::in_range<Ours>(theirs) && ours == static_cast<Ours>(theirs);
}

// Same bit pattern in our constant's type: for the few kernel values written
// as negative numbers or as (1 << 31) that land in unsigned fields.
template <class Ours, class Theirs>
constexpr bool same_bits(Ours ours, Theirs theirs) {
    return sizeof(Theirs) <= sizeof(Ours) && ours == static_cast<Ours>(theirs);
}

}  // namespace

// Every VK_* check below advances __COUNTER__ exactly once: one item.
constexpr int kCounterStart = __COUNTER__;

// Struct: size and alignment.
#define VK_STRUCT(s)                                                                    \
    static_assert(__COUNTER__ >= 0 && sizeof(uapi::s) == sizeof(::s), #s ": size");      \
    static_assert(alignof(uapi::s) == alignof(::s), #s ": alignment")

// Field: offset, size, signedness.
#define VK_FIELD(s, f)                                                                  \
    static_assert(__COUNTER__ >= 0 && offsetof(uapi::s, f) == offsetof(::s, f),          \
                  #s "." #f ": offset");                                                \
    static_assert(sizeof(uapi::s::f) == sizeof(::s::f), #s "." #f ": size");             \
    static_assert(same_signedness<decltype(uapi::s::f), decltype(::s::f)>(),             \
                  #s "." #f ": signedness")

// Flexible array member f of the kernel struct: our trailer starts at
// sizeof(our struct), which must be where the kernel puts f.
#define VK_TRAILER(s, f)                                                                \
    static_assert(__COUNTER__ >= 0 && offsetof(::s, f) == sizeof(uapi::s),               \
                  #s "." #f "[]: trailer offset")

// One of our structs against a differently named kernel struct.
#define VK_STRUCT_AS(ours, theirs)                                                      \
    static_assert(__COUNTER__ >= 0 && sizeof(uapi::ours) == sizeof(::theirs),            \
                  #ours " vs " #theirs ": size");                                       \
    static_assert(alignof(uapi::ours) == alignof(::theirs), #ours " vs " #theirs ": alignment")

// Field of one of our structs that must sit where the kernel has a field of a
// (possibly differently named) struct.
#define VK_FIELD_AS(ours, theirs, f)                                                    \
    static_assert(__COUNTER__ >= 0 && offsetof(uapi::ours, f) == offsetof(::theirs, f),  \
                  #ours "." #f " vs " #theirs ": offset");                              \
    static_assert(sizeof(uapi::ours::f) == sizeof(::theirs::f),                         \
                  #ours "." #f " vs " #theirs ": size")

#define VK_CONST(ours, theirs) \
    static_assert(__COUNTER__ >= 0 && same_value(uapi::ours, +(theirs)), #ours " != " #theirs)
#define VK_BITS(ours, theirs) \
    static_assert(__COUNTER__ >= 0 && same_bits(uapi::ours, +(theirs)), #ours " != " #theirs)

// The encoder itself, on request numbers whose value is fixed by the kernel
// ABI (independent of VFIO): _IO, _IOR, _IOW and _IOWR forms.
static_assert(__COUNTER__ >= 0 && uapi::io('T', 0x1b) == _IO('T', 0x1b), "io()");
static_assert(__COUNTER__ >= 0 && uapi::ior<int>('T', 0x30) == _IOR('T', 0x30, int), "ior()");
static_assert(__COUNTER__ >= 0 && uapi::iow<int>('T', 0x31) == _IOW('T', 0x31, int), "iow()");
static_assert(__COUNTER__ >= 0 &&
                  uapi::iowr<uapi::vfio_region_info>(';', 0xff) ==
                      _IOWR(';', 0xff, struct vfio_region_info),
              "iowr()");
static_assert(__COUNTER__ >= 0 && uapi::ioc_dir(_IOWR('x', 1, long)) == _IOC_DIR(_IOWR('x', 1, long)) &&
                  uapi::ioc_type(_IOWR('x', 1, long)) == _IOC_TYPE(_IOWR('x', 1, long)) &&
                  uapi::ioc_nr(_IOWR('x', 1, long)) == _IOC_NR(_IOWR('x', 1, long)) &&
                  uapi::ioc_size(_IOWR('x', 1, long)) == _IOC_SIZE(_IOWR('x', 1, long)),
              "ioc_* decoders");

constexpr int kCounterStructs = __COUNTER__;

// ---- VFIO structs ----------------------------------------------------------

VK_STRUCT(vfio_info_cap_header);
VK_FIELD(vfio_info_cap_header, id);
VK_FIELD(vfio_info_cap_header, version);
VK_FIELD(vfio_info_cap_header, next);

VK_STRUCT(vfio_group_status);
VK_FIELD(vfio_group_status, argsz);
VK_FIELD(vfio_group_status, flags);

VK_STRUCT(vfio_device_info);
VK_FIELD(vfio_device_info, argsz);
VK_FIELD(vfio_device_info, flags);
VK_FIELD(vfio_device_info, num_regions);
VK_FIELD(vfio_device_info, num_irqs);
VK_FIELD(vfio_device_info, cap_offset);
VK_FIELD(vfio_device_info, pad);

VK_STRUCT(vfio_device_info_cap_pci_atomic_comp);
VK_FIELD(vfio_device_info_cap_pci_atomic_comp, header);
VK_FIELD(vfio_device_info_cap_pci_atomic_comp, flags);
VK_FIELD(vfio_device_info_cap_pci_atomic_comp, reserved);

VK_STRUCT(vfio_region_info);
VK_FIELD(vfio_region_info, argsz);
VK_FIELD(vfio_region_info, flags);
VK_FIELD(vfio_region_info, index);
VK_FIELD(vfio_region_info, cap_offset);
VK_FIELD(vfio_region_info, size);
VK_FIELD(vfio_region_info, offset);

VK_STRUCT(vfio_region_sparse_mmap_area);
VK_FIELD(vfio_region_sparse_mmap_area, offset);
VK_FIELD(vfio_region_sparse_mmap_area, size);

VK_STRUCT(vfio_region_info_cap_sparse_mmap);
VK_FIELD(vfio_region_info_cap_sparse_mmap, header);
VK_FIELD(vfio_region_info_cap_sparse_mmap, nr_areas);
VK_FIELD(vfio_region_info_cap_sparse_mmap, reserved);
VK_TRAILER(vfio_region_info_cap_sparse_mmap, areas);

VK_STRUCT(vfio_region_info_cap_type);
VK_FIELD(vfio_region_info_cap_type, header);
VK_FIELD(vfio_region_info_cap_type, type);
VK_FIELD(vfio_region_info_cap_type, subtype);

VK_STRUCT(vfio_irq_info);
VK_FIELD(vfio_irq_info, argsz);
VK_FIELD(vfio_irq_info, flags);
VK_FIELD(vfio_irq_info, index);
VK_FIELD(vfio_irq_info, count);

VK_STRUCT(vfio_irq_set);
VK_FIELD(vfio_irq_set, argsz);
VK_FIELD(vfio_irq_set, flags);
VK_FIELD(vfio_irq_set, index);
VK_FIELD(vfio_irq_set, start);
VK_FIELD(vfio_irq_set, count);
VK_TRAILER(vfio_irq_set, data);

VK_STRUCT(vfio_pci_dependent_device);
VK_FIELD(vfio_pci_dependent_device, group_id);
VK_FIELD(vfio_pci_dependent_device, devid);
VK_FIELD(vfio_pci_dependent_device, segment);
VK_FIELD(vfio_pci_dependent_device, bus);
VK_FIELD(vfio_pci_dependent_device, devfn);

VK_STRUCT(vfio_pci_hot_reset_info);
VK_FIELD(vfio_pci_hot_reset_info, argsz);
VK_FIELD(vfio_pci_hot_reset_info, flags);
VK_FIELD(vfio_pci_hot_reset_info, count);
VK_TRAILER(vfio_pci_hot_reset_info, devices);

VK_STRUCT(vfio_pci_hot_reset);
VK_FIELD(vfio_pci_hot_reset, argsz);
VK_FIELD(vfio_pci_hot_reset, flags);
VK_FIELD(vfio_pci_hot_reset, count);
VK_TRAILER(vfio_pci_hot_reset, group_fds);

VK_STRUCT(vfio_device_ioeventfd);
VK_FIELD(vfio_device_ioeventfd, argsz);
VK_FIELD(vfio_device_ioeventfd, flags);
VK_FIELD(vfio_device_ioeventfd, offset);
VK_FIELD(vfio_device_ioeventfd, data);
VK_FIELD(vfio_device_ioeventfd, fd);
VK_FIELD(vfio_device_ioeventfd, reserved);

VK_STRUCT(vfio_device_feature);
VK_FIELD(vfio_device_feature, argsz);
VK_FIELD(vfio_device_feature, flags);
VK_TRAILER(vfio_device_feature, data);

VK_STRUCT(vfio_device_low_power_entry_with_wakeup);
VK_FIELD(vfio_device_low_power_entry_with_wakeup, wakeup_eventfd);
VK_FIELD(vfio_device_low_power_entry_with_wakeup, reserved);

VK_STRUCT(vfio_device_feature_bus_master);
VK_FIELD(vfio_device_feature_bus_master, op);

#ifdef VFIO_DEVICE_FEATURE_DMA_BUF
VK_STRUCT(vfio_region_dma_range);
VK_FIELD(vfio_region_dma_range, offset);
VK_FIELD(vfio_region_dma_range, length);
VK_STRUCT(vfio_device_feature_dma_buf);
VK_FIELD(vfio_device_feature_dma_buf, region_index);
VK_FIELD(vfio_device_feature_dma_buf, open_flags);
VK_FIELD(vfio_device_feature_dma_buf, flags);
VK_FIELD(vfio_device_feature_dma_buf, nr_ranges);
VK_TRAILER(vfio_device_feature_dma_buf, dma_ranges);
#endif

#ifdef VFIO_DEVICE_BIND_FLAG_TOKEN
// 6.17+ headers: the kernel struct has grown the token pointer. It must match
// our token layout, and our plain struct must be its 6.12 prefix.
VK_STRUCT_AS(vfio_device_bind_iommufd_token, vfio_device_bind_iommufd);
VK_FIELD_AS(vfio_device_bind_iommufd_token, vfio_device_bind_iommufd, argsz);
VK_FIELD_AS(vfio_device_bind_iommufd_token, vfio_device_bind_iommufd, flags);
VK_FIELD_AS(vfio_device_bind_iommufd_token, vfio_device_bind_iommufd, iommufd);
VK_FIELD_AS(vfio_device_bind_iommufd_token, vfio_device_bind_iommufd, out_devid);
VK_FIELD_AS(vfio_device_bind_iommufd_token, vfio_device_bind_iommufd, token_uuid_ptr);
VK_FIELD_AS(vfio_device_bind_iommufd, vfio_device_bind_iommufd, argsz);
VK_FIELD_AS(vfio_device_bind_iommufd, vfio_device_bind_iommufd, flags);
VK_FIELD_AS(vfio_device_bind_iommufd, vfio_device_bind_iommufd, iommufd);
VK_FIELD_AS(vfio_device_bind_iommufd, vfio_device_bind_iommufd, out_devid);
static_assert(__COUNTER__ >= 0 &&
                  sizeof(uapi::vfio_device_bind_iommufd) ==
                      offsetof(::vfio_device_bind_iommufd, token_uuid_ptr),
              "vfio_device_bind_iommufd: must end where the token pointer starts");
#else
VK_STRUCT(vfio_device_bind_iommufd);
VK_FIELD(vfio_device_bind_iommufd, argsz);
VK_FIELD(vfio_device_bind_iommufd, flags);
VK_FIELD(vfio_device_bind_iommufd, iommufd);
VK_FIELD(vfio_device_bind_iommufd, out_devid);
// Our 6.17+ layout extends exactly this struct, the token right after it.
VK_FIELD_AS(vfio_device_bind_iommufd_token, vfio_device_bind_iommufd, argsz);
VK_FIELD_AS(vfio_device_bind_iommufd_token, vfio_device_bind_iommufd, flags);
VK_FIELD_AS(vfio_device_bind_iommufd_token, vfio_device_bind_iommufd, iommufd);
VK_FIELD_AS(vfio_device_bind_iommufd_token, vfio_device_bind_iommufd, out_devid);
static_assert(__COUNTER__ >= 0 &&
                  offsetof(uapi::vfio_device_bind_iommufd_token, token_uuid_ptr) ==
                      sizeof(::vfio_device_bind_iommufd),
              "vfio_device_bind_iommufd_token.token_uuid_ptr: must follow the 6.12 struct");
#endif

VK_STRUCT(vfio_device_attach_iommufd_pt);
VK_FIELD(vfio_device_attach_iommufd_pt, argsz);
VK_FIELD(vfio_device_attach_iommufd_pt, flags);
VK_FIELD(vfio_device_attach_iommufd_pt, pt_id);

VK_STRUCT(vfio_device_detach_iommufd_pt);
VK_FIELD(vfio_device_detach_iommufd_pt, argsz);
VK_FIELD(vfio_device_detach_iommufd_pt, flags);

VK_STRUCT(vfio_iommu_type1_info);
VK_FIELD(vfio_iommu_type1_info, argsz);
VK_FIELD(vfio_iommu_type1_info, flags);
VK_FIELD(vfio_iommu_type1_info, iova_pgsizes);
VK_FIELD(vfio_iommu_type1_info, cap_offset);
VK_FIELD(vfio_iommu_type1_info, pad);

VK_STRUCT(vfio_iova_range);
VK_FIELD(vfio_iova_range, start);
VK_FIELD(vfio_iova_range, end);

VK_STRUCT(vfio_iommu_type1_info_cap_iova_range);
VK_FIELD(vfio_iommu_type1_info_cap_iova_range, header);
VK_FIELD(vfio_iommu_type1_info_cap_iova_range, nr_iovas);
VK_FIELD(vfio_iommu_type1_info_cap_iova_range, reserved);
VK_TRAILER(vfio_iommu_type1_info_cap_iova_range, iova_ranges);

VK_STRUCT(vfio_iommu_type1_info_cap_migration);
VK_FIELD(vfio_iommu_type1_info_cap_migration, header);
VK_FIELD(vfio_iommu_type1_info_cap_migration, flags);
VK_FIELD(vfio_iommu_type1_info_cap_migration, pgsize_bitmap);
VK_FIELD(vfio_iommu_type1_info_cap_migration, max_dirty_bitmap_size);

VK_STRUCT(vfio_iommu_type1_info_dma_avail);
VK_FIELD(vfio_iommu_type1_info_dma_avail, header);
VK_FIELD(vfio_iommu_type1_info_dma_avail, avail);

VK_STRUCT(vfio_iommu_type1_dma_map);
VK_FIELD(vfio_iommu_type1_dma_map, argsz);
VK_FIELD(vfio_iommu_type1_dma_map, flags);
VK_FIELD(vfio_iommu_type1_dma_map, vaddr);
VK_FIELD(vfio_iommu_type1_dma_map, iova);
VK_FIELD(vfio_iommu_type1_dma_map, size);

VK_STRUCT(vfio_bitmap);
VK_FIELD(vfio_bitmap, pgsize);
VK_FIELD(vfio_bitmap, size);
VK_FIELD(vfio_bitmap, data);

VK_STRUCT(vfio_iommu_type1_dma_unmap);
VK_FIELD(vfio_iommu_type1_dma_unmap, argsz);
VK_FIELD(vfio_iommu_type1_dma_unmap, flags);
VK_FIELD(vfio_iommu_type1_dma_unmap, iova);
VK_FIELD(vfio_iommu_type1_dma_unmap, size);
VK_TRAILER(vfio_iommu_type1_dma_unmap, data);

// ---- IOMMUFD structs ---------------------------------------------------------

VK_STRUCT(iommu_destroy);
VK_FIELD(iommu_destroy, size);
VK_FIELD(iommu_destroy, id);

VK_STRUCT(iommu_ioas_alloc);
VK_FIELD(iommu_ioas_alloc, size);
VK_FIELD(iommu_ioas_alloc, flags);
VK_FIELD(iommu_ioas_alloc, out_ioas_id);

VK_STRUCT(iommu_iova_range);
VK_FIELD(iommu_iova_range, start);
VK_FIELD(iommu_iova_range, last);

VK_STRUCT(iommu_ioas_iova_ranges);
VK_FIELD(iommu_ioas_iova_ranges, size);
VK_FIELD(iommu_ioas_iova_ranges, ioas_id);
VK_FIELD(iommu_ioas_iova_ranges, num_iovas);
VK_FIELD(iommu_ioas_iova_ranges, __reserved);
VK_FIELD(iommu_ioas_iova_ranges, allowed_iovas);
VK_FIELD(iommu_ioas_iova_ranges, out_iova_alignment);

VK_STRUCT(iommu_ioas_allow_iovas);
VK_FIELD(iommu_ioas_allow_iovas, size);
VK_FIELD(iommu_ioas_allow_iovas, ioas_id);
VK_FIELD(iommu_ioas_allow_iovas, num_iovas);
VK_FIELD(iommu_ioas_allow_iovas, __reserved);
VK_FIELD(iommu_ioas_allow_iovas, allowed_iovas);

VK_STRUCT(iommu_ioas_map);
VK_FIELD(iommu_ioas_map, size);
VK_FIELD(iommu_ioas_map, flags);
VK_FIELD(iommu_ioas_map, ioas_id);
VK_FIELD(iommu_ioas_map, __reserved);
VK_FIELD(iommu_ioas_map, user_va);
VK_FIELD(iommu_ioas_map, length);
VK_FIELD(iommu_ioas_map, iova);

#ifdef IOMMU_IOAS_MAP_FILE
VK_STRUCT(iommu_ioas_map_file);
VK_FIELD(iommu_ioas_map_file, size);
VK_FIELD(iommu_ioas_map_file, flags);
VK_FIELD(iommu_ioas_map_file, ioas_id);
VK_FIELD(iommu_ioas_map_file, fd);
VK_FIELD(iommu_ioas_map_file, start);
VK_FIELD(iommu_ioas_map_file, length);
VK_FIELD(iommu_ioas_map_file, iova);
#endif

#ifdef IOMMU_IOAS_CHANGE_PROCESS
VK_STRUCT(iommu_ioas_change_process);
VK_FIELD(iommu_ioas_change_process, size);
VK_FIELD(iommu_ioas_change_process, __reserved);
#endif

#ifdef IOMMU_IOAS_NOIOMMU_GET_PA
VK_STRUCT(iommu_ioas_noiommu_get_pa);
VK_FIELD(iommu_ioas_noiommu_get_pa, size);
VK_FIELD(iommu_ioas_noiommu_get_pa, flags);
VK_FIELD(iommu_ioas_noiommu_get_pa, ioas_id);
VK_FIELD(iommu_ioas_noiommu_get_pa, __reserved);
VK_FIELD(iommu_ioas_noiommu_get_pa, iova);
VK_FIELD(iommu_ioas_noiommu_get_pa, length);
VK_FIELD(iommu_ioas_noiommu_get_pa, out_phys);
#endif

VK_STRUCT(iommu_ioas_copy);
VK_FIELD(iommu_ioas_copy, size);
VK_FIELD(iommu_ioas_copy, flags);
VK_FIELD(iommu_ioas_copy, dst_ioas_id);
VK_FIELD(iommu_ioas_copy, src_ioas_id);
VK_FIELD(iommu_ioas_copy, length);
VK_FIELD(iommu_ioas_copy, dst_iova);
VK_FIELD(iommu_ioas_copy, src_iova);

VK_STRUCT(iommu_ioas_unmap);
VK_FIELD(iommu_ioas_unmap, size);
VK_FIELD(iommu_ioas_unmap, ioas_id);
VK_FIELD(iommu_ioas_unmap, iova);
VK_FIELD(iommu_ioas_unmap, length);

VK_STRUCT(iommu_option);
VK_FIELD(iommu_option, size);
VK_FIELD(iommu_option, option_id);
VK_FIELD(iommu_option, op);
VK_FIELD(iommu_option, __reserved);
VK_FIELD(iommu_option, object_id);
VK_FIELD(iommu_option, val64);

VK_STRUCT(iommu_vfio_ioas);
VK_FIELD(iommu_vfio_ioas, size);
VK_FIELD(iommu_vfio_ioas, ioas_id);
VK_FIELD(iommu_vfio_ioas, op);
VK_FIELD(iommu_vfio_ioas, __reserved);

VK_STRUCT(iommu_hw_info);
VK_FIELD(iommu_hw_info, size);
VK_FIELD(iommu_hw_info, flags);
VK_FIELD(iommu_hw_info, dev_id);
VK_FIELD(iommu_hw_info, data_len);
VK_FIELD(iommu_hw_info, data_uptr);
VK_FIELD(iommu_hw_info, out_data_type);
VK_FIELD(iommu_hw_info, out_max_pasid_log2);
VK_FIELD(iommu_hw_info, __reserved);
VK_FIELD(iommu_hw_info, out_capabilities);

constexpr int kCounterConstants = __COUNTER__;

// ---- VFIO constants ----------------------------------------------------------

VK_CONST(kVfioType, VFIO_TYPE);
VK_CONST(kVfioBase, VFIO_BASE);
VK_CONST(kVfioApiVersion, VFIO_API_VERSION);
VK_CONST(kVfioType1Iommu, VFIO_TYPE1_IOMMU);
VK_CONST(kVfioType1v2Iommu, VFIO_TYPE1v2_IOMMU);
VK_CONST(kVfioDmaCcIommu, VFIO_DMA_CC_IOMMU);
VK_CONST(kVfioNoiommuIommu, VFIO_NOIOMMU_IOMMU);
VK_CONST(kVfioUnmapAll, VFIO_UNMAP_ALL);
VK_CONST(kVfioUpdateVaddr, VFIO_UPDATE_VADDR);

VK_CONST(kVfioGroupFlagsViable, VFIO_GROUP_FLAGS_VIABLE);
VK_CONST(kVfioGroupFlagsContainerSet, VFIO_GROUP_FLAGS_CONTAINER_SET);

VK_CONST(kVfioDeviceFlagsReset, VFIO_DEVICE_FLAGS_RESET);
VK_CONST(kVfioDeviceFlagsPci, VFIO_DEVICE_FLAGS_PCI);
VK_CONST(kVfioDeviceFlagsPlatform, VFIO_DEVICE_FLAGS_PLATFORM);
VK_CONST(kVfioDeviceFlagsAmba, VFIO_DEVICE_FLAGS_AMBA);
VK_CONST(kVfioDeviceFlagsCcw, VFIO_DEVICE_FLAGS_CCW);
VK_CONST(kVfioDeviceFlagsAp, VFIO_DEVICE_FLAGS_AP);
VK_CONST(kVfioDeviceFlagsFslMc, VFIO_DEVICE_FLAGS_FSL_MC);
VK_CONST(kVfioDeviceFlagsCaps, VFIO_DEVICE_FLAGS_CAPS);
VK_CONST(kVfioDeviceFlagsCdx, VFIO_DEVICE_FLAGS_CDX);
VK_CONST(kVfioDeviceInfoCapPciAtomicComp, VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP);
VK_CONST(kVfioPciAtomicComp32, VFIO_PCI_ATOMIC_COMP32);
VK_CONST(kVfioPciAtomicComp64, VFIO_PCI_ATOMIC_COMP64);
VK_CONST(kVfioPciAtomicComp128, VFIO_PCI_ATOMIC_COMP128);

VK_CONST(kVfioRegionInfoFlagRead, VFIO_REGION_INFO_FLAG_READ);
VK_CONST(kVfioRegionInfoFlagWrite, VFIO_REGION_INFO_FLAG_WRITE);
VK_CONST(kVfioRegionInfoFlagMmap, VFIO_REGION_INFO_FLAG_MMAP);
VK_CONST(kVfioRegionInfoFlagCaps, VFIO_REGION_INFO_FLAG_CAPS);
VK_CONST(kVfioRegionInfoCapSparseMmap, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
VK_CONST(kVfioRegionInfoCapType, VFIO_REGION_INFO_CAP_TYPE);
VK_CONST(kVfioRegionInfoCapMsixMappable, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE);
VK_BITS(kVfioRegionTypePciVendorType, VFIO_REGION_TYPE_PCI_VENDOR_TYPE);  // (1 << 31) in an int
VK_CONST(kVfioRegionTypePciVendorMask, VFIO_REGION_TYPE_PCI_VENDOR_MASK);
VK_CONST(kVfioRegionTypeGfx, VFIO_REGION_TYPE_GFX);
VK_CONST(kVfioRegionTypeCcw, VFIO_REGION_TYPE_CCW);

VK_CONST(kVfioIrqInfoEventfd, VFIO_IRQ_INFO_EVENTFD);
VK_CONST(kVfioIrqInfoMaskable, VFIO_IRQ_INFO_MASKABLE);
VK_CONST(kVfioIrqInfoAutomasked, VFIO_IRQ_INFO_AUTOMASKED);
VK_CONST(kVfioIrqInfoNoresize, VFIO_IRQ_INFO_NORESIZE);
VK_CONST(kVfioIrqSetDataNone, VFIO_IRQ_SET_DATA_NONE);
VK_CONST(kVfioIrqSetDataBool, VFIO_IRQ_SET_DATA_BOOL);
VK_CONST(kVfioIrqSetDataEventfd, VFIO_IRQ_SET_DATA_EVENTFD);
VK_CONST(kVfioIrqSetActionMask, VFIO_IRQ_SET_ACTION_MASK);
VK_CONST(kVfioIrqSetActionUnmask, VFIO_IRQ_SET_ACTION_UNMASK);
VK_CONST(kVfioIrqSetActionTrigger, VFIO_IRQ_SET_ACTION_TRIGGER);
VK_CONST(kVfioIrqSetDataTypeMask, VFIO_IRQ_SET_DATA_TYPE_MASK);
VK_CONST(kVfioIrqSetActionTypeMask, VFIO_IRQ_SET_ACTION_TYPE_MASK);

VK_CONST(kVfioPciBar0RegionIndex, VFIO_PCI_BAR0_REGION_INDEX);
VK_CONST(kVfioPciBar1RegionIndex, VFIO_PCI_BAR1_REGION_INDEX);
VK_CONST(kVfioPciBar2RegionIndex, VFIO_PCI_BAR2_REGION_INDEX);
VK_CONST(kVfioPciBar3RegionIndex, VFIO_PCI_BAR3_REGION_INDEX);
VK_CONST(kVfioPciBar4RegionIndex, VFIO_PCI_BAR4_REGION_INDEX);
VK_CONST(kVfioPciBar5RegionIndex, VFIO_PCI_BAR5_REGION_INDEX);
VK_CONST(kVfioPciRomRegionIndex, VFIO_PCI_ROM_REGION_INDEX);
VK_CONST(kVfioPciConfigRegionIndex, VFIO_PCI_CONFIG_REGION_INDEX);
VK_CONST(kVfioPciVgaRegionIndex, VFIO_PCI_VGA_REGION_INDEX);
VK_CONST(kVfioPciNumRegions, VFIO_PCI_NUM_REGIONS);
VK_CONST(kVfioPciIntxIrqIndex, VFIO_PCI_INTX_IRQ_INDEX);
VK_CONST(kVfioPciMsiIrqIndex, VFIO_PCI_MSI_IRQ_INDEX);
VK_CONST(kVfioPciMsixIrqIndex, VFIO_PCI_MSIX_IRQ_INDEX);
VK_CONST(kVfioPciErrIrqIndex, VFIO_PCI_ERR_IRQ_INDEX);
VK_CONST(kVfioPciReqIrqIndex, VFIO_PCI_REQ_IRQ_INDEX);
VK_CONST(kVfioPciNumIrqs, VFIO_PCI_NUM_IRQS);

VK_CONST(kVfioPciDevidOwned, VFIO_PCI_DEVID_OWNED);
VK_BITS(kVfioPciDevidNotOwned, VFIO_PCI_DEVID_NOT_OWNED);  // -1 in the kernel
VK_CONST(kVfioPciHotResetFlagDevId, VFIO_PCI_HOT_RESET_FLAG_DEV_ID);
VK_CONST(kVfioPciHotResetFlagDevIdOwned, VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED);

VK_CONST(kVfioDeviceFeatureMask, VFIO_DEVICE_FEATURE_MASK);
VK_CONST(kVfioDeviceFeatureGet, VFIO_DEVICE_FEATURE_GET);
VK_CONST(kVfioDeviceFeatureSet, VFIO_DEVICE_FEATURE_SET);
VK_CONST(kVfioDeviceFeatureProbe, VFIO_DEVICE_FEATURE_PROBE);
VK_CONST(kVfioDeviceFeaturePciVfToken, VFIO_DEVICE_FEATURE_PCI_VF_TOKEN);
VK_CONST(kVfioDeviceFeatureLowPowerEntry, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY);
VK_CONST(kVfioDeviceFeatureLowPowerEntryWithWakeup,
         VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP);
VK_CONST(kVfioDeviceFeatureLowPowerExit, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT);
VK_CONST(kVfioDeviceFeatureBusMaster, VFIO_DEVICE_FEATURE_BUS_MASTER);
VK_CONST(kVfioDeviceFeatureClearMaster, VFIO_DEVICE_FEATURE_CLEAR_MASTER);
VK_CONST(kVfioDeviceFeatureSetMaster, VFIO_DEVICE_FEATURE_SET_MASTER);
#ifdef VFIO_DEVICE_FEATURE_DMA_BUF
VK_CONST(kVfioDeviceFeatureDmaBuf, VFIO_DEVICE_FEATURE_DMA_BUF);
#endif
#ifdef VFIO_DEVICE_BIND_FLAG_TOKEN
VK_CONST(kVfioDeviceBindFlagToken, VFIO_DEVICE_BIND_FLAG_TOKEN);
#endif

VK_CONST(kVfioIommuInfoPgsizes, VFIO_IOMMU_INFO_PGSIZES);
VK_CONST(kVfioIommuInfoCaps, VFIO_IOMMU_INFO_CAPS);
VK_CONST(kVfioIommuType1InfoCapIovaRange, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
VK_CONST(kVfioIommuType1InfoCapMigration, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
VK_CONST(kVfioIommuType1InfoDmaAvail, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
VK_CONST(kVfioDmaMapFlagRead, VFIO_DMA_MAP_FLAG_READ);
VK_CONST(kVfioDmaMapFlagWrite, VFIO_DMA_MAP_FLAG_WRITE);
VK_CONST(kVfioDmaMapFlagVaddr, VFIO_DMA_MAP_FLAG_VADDR);
VK_CONST(kVfioDmaUnmapFlagGetDirtyBitmap, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP);
VK_CONST(kVfioDmaUnmapFlagAll, VFIO_DMA_UNMAP_FLAG_ALL);
VK_CONST(kVfioDmaUnmapFlagVaddr, VFIO_DMA_UNMAP_FLAG_VADDR);

// ---- IOMMUFD constants --------------------------------------------------------

VK_CONST(kIommufdType, IOMMUFD_TYPE);
VK_CONST(kIommufdCmdBase, IOMMUFD_CMD_BASE);
VK_CONST(kIommufdCmdDestroy, IOMMUFD_CMD_DESTROY);
VK_CONST(kIommufdCmdIoasAlloc, IOMMUFD_CMD_IOAS_ALLOC);
VK_CONST(kIommufdCmdIoasAllowIovas, IOMMUFD_CMD_IOAS_ALLOW_IOVAS);
VK_CONST(kIommufdCmdIoasCopy, IOMMUFD_CMD_IOAS_COPY);
VK_CONST(kIommufdCmdIoasIovaRanges, IOMMUFD_CMD_IOAS_IOVA_RANGES);
VK_CONST(kIommufdCmdIoasMap, IOMMUFD_CMD_IOAS_MAP);
VK_CONST(kIommufdCmdIoasUnmap, IOMMUFD_CMD_IOAS_UNMAP);
VK_CONST(kIommufdCmdOption, IOMMUFD_CMD_OPTION);
VK_CONST(kIommufdCmdVfioIoas, IOMMUFD_CMD_VFIO_IOAS);
VK_CONST(kIommufdCmdGetHwInfo, IOMMUFD_CMD_GET_HW_INFO);
#ifdef IOMMU_IOAS_MAP_FILE
VK_CONST(kIommufdCmdIoasMapFile, IOMMUFD_CMD_IOAS_MAP_FILE);
#endif
#ifdef IOMMU_IOAS_CHANGE_PROCESS
VK_CONST(kIommufdCmdIoasChangeProcess, IOMMUFD_CMD_IOAS_CHANGE_PROCESS);
#endif
#ifdef IOMMU_IOAS_NOIOMMU_GET_PA
VK_CONST(kIommufdCmdIoasNoiommuGetPa, IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA);
#endif

VK_CONST(kIommuIoasMapFixedIova, IOMMU_IOAS_MAP_FIXED_IOVA);
VK_CONST(kIommuIoasMapWriteable, IOMMU_IOAS_MAP_WRITEABLE);
VK_CONST(kIommuIoasMapReadable, IOMMU_IOAS_MAP_READABLE);
VK_CONST(kIommuOptionRlimitMode, IOMMU_OPTION_RLIMIT_MODE);
VK_CONST(kIommuOptionHugePages, IOMMU_OPTION_HUGE_PAGES);
VK_CONST(kIommuOptionOpSet, IOMMU_OPTION_OP_SET);
VK_CONST(kIommuOptionOpGet, IOMMU_OPTION_OP_GET);
VK_CONST(kIommuVfioIoasGet, IOMMU_VFIO_IOAS_GET);
VK_CONST(kIommuVfioIoasSet, IOMMU_VFIO_IOAS_SET);
VK_CONST(kIommuVfioIoasClear, IOMMU_VFIO_IOAS_CLEAR);
VK_CONST(kIommuHwInfoTypeNone, IOMMU_HW_INFO_TYPE_NONE);
VK_CONST(kIommuHwInfoTypeIntelVtd, IOMMU_HW_INFO_TYPE_INTEL_VTD);
VK_CONST(kIommuHwCapDirtyTracking, IOMMU_HW_CAP_DIRTY_TRACKING);
VK_CONST(kIommuHwCapPciPasidExec, IOMMU_HW_CAP_PCI_PASID_EXEC);
VK_CONST(kIommuHwCapPciPasidPriv, IOMMU_HW_CAP_PCI_PASID_PRIV);

constexpr int kCounterIoctls = __COUNTER__;

// ---- ioctl request numbers -------------------------------------------------------

VK_CONST(kVfioGetApiVersion, VFIO_GET_API_VERSION);
VK_CONST(kVfioCheckExtension, VFIO_CHECK_EXTENSION);
VK_CONST(kVfioSetIommu, VFIO_SET_IOMMU);
VK_CONST(kVfioGroupGetStatus, VFIO_GROUP_GET_STATUS);
VK_CONST(kVfioGroupSetContainer, VFIO_GROUP_SET_CONTAINER);
VK_CONST(kVfioGroupUnsetContainer, VFIO_GROUP_UNSET_CONTAINER);
VK_CONST(kVfioGroupGetDeviceFd, VFIO_GROUP_GET_DEVICE_FD);
VK_CONST(kVfioDeviceGetInfo, VFIO_DEVICE_GET_INFO);
VK_CONST(kVfioDeviceGetRegionInfo, VFIO_DEVICE_GET_REGION_INFO);
VK_CONST(kVfioDeviceGetIrqInfo, VFIO_DEVICE_GET_IRQ_INFO);
VK_CONST(kVfioDeviceSetIrqs, VFIO_DEVICE_SET_IRQS);
VK_CONST(kVfioDeviceReset, VFIO_DEVICE_RESET);
VK_CONST(kVfioDeviceGetPciHotResetInfo, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO);
VK_CONST(kVfioDevicePciHotReset, VFIO_DEVICE_PCI_HOT_RESET);
VK_CONST(kVfioDeviceFeature, VFIO_DEVICE_FEATURE);
VK_CONST(kVfioDeviceIoeventfd, VFIO_DEVICE_IOEVENTFD);
VK_CONST(kVfioDeviceIoeventfd8, VFIO_DEVICE_IOEVENTFD_8);
VK_CONST(kVfioDeviceIoeventfd16, VFIO_DEVICE_IOEVENTFD_16);
VK_CONST(kVfioDeviceIoeventfd32, VFIO_DEVICE_IOEVENTFD_32);
VK_CONST(kVfioDeviceIoeventfd64, VFIO_DEVICE_IOEVENTFD_64);
VK_CONST(kVfioDeviceBindIommufd, VFIO_DEVICE_BIND_IOMMUFD);
VK_CONST(kVfioDeviceAttachIommufdPt, VFIO_DEVICE_ATTACH_IOMMUFD_PT);
VK_CONST(kVfioDeviceDetachIommufdPt, VFIO_DEVICE_DETACH_IOMMUFD_PT);
VK_CONST(kVfioIommuGetInfo, VFIO_IOMMU_GET_INFO);
VK_CONST(kVfioIommuMapDma, VFIO_IOMMU_MAP_DMA);
VK_CONST(kVfioIommuUnmapDma, VFIO_IOMMU_UNMAP_DMA);

VK_CONST(kIommuDestroy, IOMMU_DESTROY);
VK_CONST(kIommuIoasAlloc, IOMMU_IOAS_ALLOC);
VK_CONST(kIommuIoasAllowIovas, IOMMU_IOAS_ALLOW_IOVAS);
VK_CONST(kIommuIoasCopy, IOMMU_IOAS_COPY);
VK_CONST(kIommuIoasIovaRanges, IOMMU_IOAS_IOVA_RANGES);
VK_CONST(kIommuIoasMap, IOMMU_IOAS_MAP);
VK_CONST(kIommuIoasUnmap, IOMMU_IOAS_UNMAP);
VK_CONST(kIommuOption, IOMMU_OPTION);
VK_CONST(kIommuVfioIoas, IOMMU_VFIO_IOAS);
VK_CONST(kIommuGetHwInfo, IOMMU_GET_HW_INFO);
#ifdef IOMMU_IOAS_MAP_FILE
VK_CONST(kIommuIoasMapFile, IOMMU_IOAS_MAP_FILE);
#endif
#ifdef IOMMU_IOAS_CHANGE_PROCESS
VK_CONST(kIommuIoasChangeProcess, IOMMU_IOAS_CHANGE_PROCESS);
#endif
#ifdef IOMMU_IOAS_NOIOMMU_GET_PA
VK_CONST(kIommuIoasNoiommuGetPa, IOMMU_IOAS_NOIOMMU_GET_PA);
#endif

constexpr int kCounterEnd = __COUNTER__;

// Each section marker above consumed one tick of its own.
constexpr int kEncoderItems = kCounterStructs - kCounterStart - 1;
constexpr int kLayoutItems = kCounterConstants - kCounterStructs - 1;
constexpr int kConstantItems = kCounterIoctls - kCounterConstants - 1;
constexpr int kIoctlItems = kCounterEnd - kCounterIoctls - 1;
constexpr int kTotalItems = kEncoderItems + kLayoutItems + kConstantItems + kIoctlItems;

int main() {
    std::printf("uapi-abi-check: %d items match the kernel headers "
                "(%d struct/field layouts, %d constants, %d ioctl numbers, %d encoder checks)",
                kTotalItems, kLayoutItems, kConstantItems, kIoctlItems, kEncoderItems);
    const char* sep = "; not in these headers, skipped: ";
#ifndef IOMMU_IOAS_MAP_FILE
    std::printf("%sIOMMU_IOAS_MAP_FILE (6.13+)", sep);
    sep = ", ";
#endif
#ifndef VFIO_DEVICE_BIND_FLAG_TOKEN
    std::printf("%sVFIO_DEVICE_BIND_FLAG_TOKEN (6.17+)", sep);
    sep = ", ";
#endif
#ifndef IOMMU_IOAS_NOIOMMU_GET_PA
    std::printf("%sIOMMU_IOAS_NOIOMMU_GET_PA (7.3+)", sep);
    sep = ", ";
#endif
#ifndef VFIO_DEVICE_FEATURE_DMA_BUF
    std::printf("%sVFIO_DEVICE_FEATURE_DMA_BUF (6.19+)", sep);
    sep = ", ";
#endif
    static_cast<void>(sep);
    std::printf("\n");
    return 0;
}
