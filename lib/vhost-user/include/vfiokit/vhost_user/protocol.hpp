/// \file
/// The vhost-user wire format: request numbers, header flags, feature bits
/// and payload layouts, as QEMU's docs/interop/vhost-user.rst ("Message
/// Specification", "Protocol features", "Front-end message types") defines
/// them. Every number is in the machine's native byte order, since both
/// ends run on one host.
///
/// Only data here: the checks live in the codec (codec.hpp) and the actions
/// in the session (session.hpp). Thread-safety: constants and plain structs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace vfiokit::vhost_user {

/// Front-end requests ("Front-end message types", the ids).
enum class Request : std::uint32_t {
    none = 0,
    get_features = 1,
    set_features = 2,
    set_owner = 3,
    reset_owner = 4,
    set_mem_table = 5,
    set_log_base = 6,
    set_log_fd = 7,
    set_vring_num = 8,
    set_vring_addr = 9,
    set_vring_base = 10,
    get_vring_base = 11,
    set_vring_kick = 12,
    set_vring_call = 13,
    set_vring_err = 14,
    get_protocol_features = 15,
    set_protocol_features = 16,
    get_queue_num = 17,
    set_vring_enable = 18,
    send_rarp = 19,
    net_set_mtu = 20,
    set_backend_req_fd = 21,
    iotlb_msg = 22,
    set_vring_endian = 23,
    get_config = 24,
    set_config = 25,
    // ... requests this library does not serve (crypto sessions, postcopy,
    // inflight tracking, GPU socket) ...
    reset_device = 34,
    vring_kick = 35,
    get_max_mem_slots = 36,
    add_mem_reg = 37,
    rem_mem_reg = 38,
    set_status = 39,
    get_status = 40,
};

/// One past the highest request number above: the size of per-request tables.
inline constexpr std::size_t kRequestSlots = 41;

/// "VHOST_USER_GET_FEATURES" for logs; "request 77" for unknown numbers is
/// built by the caller.
[[nodiscard]] std::string_view to_string(Request r);

/// Header flags: bits 0-1 the version (1), bit 2 set on every reply from the
/// back end, bit 3 the front end's need_reply (see REPLY_ACK).
inline constexpr std::uint32_t kVersion = 0x1;
inline constexpr std::uint32_t kVersionMask = 0x3;        ///< the version bits
inline constexpr std::uint32_t kFlagReply = 1u << 2;      ///< set on every reply from the back end
inline constexpr std::uint32_t kFlagNeedReply = 1u << 3;  ///< need_reply (see REPLY_ACK)

/// The header of every message ("Message Specification").
struct Header {
    std::uint32_t request;
    std::uint32_t flags;
    std::uint32_t size;  ///< payload bytes that follow
};
static_assert(sizeof(Header) == 12);

/// "A vring state description".
struct VringState {
    std::uint32_t index;
    std::uint32_t num;
};
static_assert(sizeof(VringState) == 8);

/// "A vring address description": user addresses of the three parts of a
/// split ring (IOVAs under VIRTIO_F_IOMMU_PLATFORM, which this library does
/// not offer).
struct VringAddr {
    std::uint32_t index;
    std::uint32_t flags;  ///< kVringFlagLog
    std::uint64_t desc;
    std::uint64_t used;
    std::uint64_t avail;
    std::uint64_t log;
};
static_assert(sizeof(VringAddr) == 40);
inline constexpr std::uint32_t kVringFlagLog = 1u << 0;  ///< in VringAddr::flags: log writes

/// One entry of "Memory regions description".
struct MemoryRegionDesc {
    std::uint64_t guest_addr;
    std::uint64_t size;
    std::uint64_t user_addr;
    std::uint64_t mmap_offset;
};
static_assert(sizeof(MemoryRegionDesc) == 32);

/// "Memory regions description": a count and padding, then `nregions`
/// entries. The table holds at most kMaxMemRegions without
/// VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS.
inline constexpr std::size_t kMaxMemRegions = 8;
/// The head of "Memory regions description" (see kMaxMemRegions).
struct MemoryHeader {
    std::uint32_t nregions;
    std::uint32_t padding;
};
static_assert(sizeof(MemoryHeader) == 8);

/// SET_VRING_KICK/CALL/ERR payload (a u64): bits 0-7 the vring index, bit 8
/// "no fd in the ancillary data" (poll instead).
inline constexpr std::uint64_t kVringIndexMask = 0xff;
inline constexpr std::uint64_t kVringNoFd = 1u << 8;  ///< no fd sent: poll instead

/// Feature bit 30 (reserved by virtio, reused by vhost-user): the back end
/// speaks GET/SET_PROTOCOL_FEATURES.
inline constexpr unsigned kFeatureProtocolFeatures = 30;
/// Virtio feature bits the session itself cares about.
inline constexpr unsigned kFeatureRingEventIdx = 29;  ///< VIRTIO_RING_F_EVENT_IDX
inline constexpr unsigned kFeatureVersion1 = 32;      ///< VIRTIO_F_VERSION_1
inline constexpr unsigned kFeatureIommuPlatform = 33;  ///< VIRTIO_F_IOMMU_PLATFORM
inline constexpr unsigned kFeatureRingPacked = 34;    ///< VIRTIO_F_RING_PACKED

/// Protocol feature bits ("Protocol features").
enum class ProtocolFeature : unsigned {
    mq = 0,
    log_shmfd = 1,
    rarp = 2,
    reply_ack = 3,
    mtu = 4,
    backend_req = 5,
    cross_endian = 6,
    crypto_session = 7,
    pagefault = 8,
    config = 9,
    backend_send_fd = 10,
    host_notifier = 11,
    inflight_shmfd = 12,
    reset_device = 13,
    inband_notifications = 14,
    configure_mem_slots = 15,
    status = 16,
};

///@{
/// The mask of feature bit `b`.
[[nodiscard]] constexpr std::uint64_t bit(unsigned b) { return std::uint64_t{1} << b; }
[[nodiscard]] constexpr std::uint64_t bit(ProtocolFeature f) {
///@}
    return bit(static_cast<unsigned>(f));
}

/// A split virtqueue holds at most 32768 entries (virtio 1.1, 2.6).
inline constexpr std::uint32_t kMaxVringNum = 32768;

///@{
/// Bytes of each part of a split ring of `num` entries (virtio 1.1, 2.6):
/// descriptor table 16 per entry; avail ring flags, idx and 2-byte entries;
/// used ring flags, idx and 8-byte entries. With VIRTIO_RING_F_EVENT_IDX
/// each ring ends with one more 16-bit word (used_event, avail_event).
[[nodiscard]] constexpr std::uint64_t desc_bytes(std::uint32_t num) { return 16ull * num; }
[[nodiscard]] constexpr std::uint64_t avail_bytes(std::uint32_t num, bool event_idx) {
    return 4ull + 2ull * num + (event_idx ? 2 : 0);
}
[[nodiscard]] constexpr std::uint64_t used_bytes(std::uint32_t num, bool event_idx) {
///@}
    return 4ull + 8ull * num + (event_idx ? 2 : 0);
}

}  // namespace vfiokit::vhost_user
