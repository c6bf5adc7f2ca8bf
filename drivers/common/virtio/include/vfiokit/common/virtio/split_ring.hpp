/// \file
/// The split virtqueue's memory layout (virtio 1.2, section 2.7): the
/// descriptor table, the available (driver) ring and the used (device)
/// ring. All fields are little-endian, which is the only byte order vfiokit
/// builds for (static_assert below).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace vfiokit::virtio {

static_assert(std::endian::native == std::endian::little,
              "virtio 1.x rings are little-endian; this code stores fields natively");

/// A descriptor of the descriptor table (struct virtq_desc).
struct Desc {
    std::uint64_t addr;   ///< IOVA of the buffer
    std::uint32_t len;
    std::uint16_t flags;  ///< kDescNext | kDescWrite | kDescIndirect
    std::uint16_t next;
};
static_assert(sizeof(Desc) == 16);

inline constexpr std::uint16_t kDescNext = 1;      ///< VIRTQ_DESC_F_NEXT: the chain goes on
inline constexpr std::uint16_t kDescWrite = 2;     ///< the device writes the buffer
inline constexpr std::uint16_t kDescIndirect = 4;  ///< VIRTQ_DESC_F_INDIRECT: a descriptor table

/// avail->flags: the driver does not want interrupts.
inline constexpr std::uint16_t kAvailNoInterrupt = 1;
/// used->flags: the device does not want kicks.
inline constexpr std::uint16_t kUsedNoNotify = 1;

/// The rings' headers; their entries follow (avail_entry, used_entry):
/// avail: num 16-bit descriptor heads, then used_event (with EVENT_IDX);
/// used: num UsedElem, then avail_event (with EVENT_IDX).
struct AvailRing {
    std::uint16_t flags;
    std::uint16_t idx;
};

/// An entry of the used ring (struct virtq_used_elem).
struct UsedElem {
    std::uint32_t id;   ///< head descriptor of the chain
    std::uint32_t len;  ///< bytes written into the chain
};
static_assert(sizeof(UsedElem) == 8);

/// The used ring's header (see AvailRing).
struct UsedRing {
    std::uint16_t flags;
    std::uint16_t idx;
};

/// Entry `i` of the available ring: a descriptor head.
[[nodiscard]] inline std::uint16_t* avail_entry(AvailRing* r, std::uint16_t i) {
    return reinterpret_cast<std::uint16_t*>(reinterpret_cast<std::uint8_t*>(r) + 4) + i;
}
/// Entry `i` of the used ring.
[[nodiscard]] inline UsedElem* used_entry(UsedRing* r, std::uint16_t i) {
    return reinterpret_cast<UsedElem*>(reinterpret_cast<std::uint8_t*>(r) + 4) + i;
}

///@{
/// Sizes and alignments for a queue of `num` entries (section 2.7: 16, 2
/// and 4 bytes); each part may sit anywhere that honours them.
[[nodiscard]] constexpr std::size_t desc_bytes(std::uint16_t num) { return 16u * num; }
[[nodiscard]] constexpr std::size_t avail_bytes(std::uint16_t num) { return 6u + 2u * num; }
[[nodiscard]] constexpr std::size_t used_bytes(std::uint16_t num) { return 6u + 8u * num; }
///@}

/// One contiguous block holding all three parts: the descriptor table at
/// 0, the available ring right after it, the used ring at the next 4-byte
/// (here: 64-byte, one cache line away from the driver's writes) boundary.
struct SplitLayout {
    std::size_t avail_off = 0;
    std::size_t used_off = 0;
    std::size_t total = 0;
};
/// The SplitLayout of a queue of `num` entries.
[[nodiscard]] constexpr SplitLayout split_layout(std::uint16_t num) {
    SplitLayout l;
    l.avail_off = desc_bytes(num);
    l.used_off = (l.avail_off + avail_bytes(num) + 63) & ~std::size_t{63};
    l.total = l.used_off + used_bytes(num);
    return l;
}

}  // namespace vfiokit::virtio
