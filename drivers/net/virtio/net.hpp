// The virtio network device (virtio 1.2, section 5.1): feature bits, the
// device configuration layout, the per-packet header and the control
// queue's commands. Facts only; the PMD is in port.hpp and rxtx.hpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vfiokit/common/virtio/pci.hpp"

namespace vfiokit::virtio::net {

// Feature bits (section 5.1.3); bit numbers, as virtio::feature() takes.
inline constexpr unsigned kFCsum = 0;            // the device takes partial checksums (tx)
inline constexpr unsigned kFGuestCsum = 1;       // the driver takes partial checksums (rx)
inline constexpr unsigned kFMtu = 3;             // config mtu is valid
inline constexpr unsigned kFMac = 5;             // config mac is valid
inline constexpr unsigned kFMrgRxbuf = 15;       // a packet may span several rx buffers
inline constexpr unsigned kFStatus = 16;         // config status is valid
inline constexpr unsigned kFCtrlVq = 17;         // a control queue
inline constexpr unsigned kFCtrlRx = 18;         // rx mode commands (promiscuous, all-multicast)
inline constexpr unsigned kFCtrlVlan = 19;
inline constexpr unsigned kFGuestAnnounce = 21;
inline constexpr unsigned kFMq = 22;             // several queue pairs
inline constexpr unsigned kFCtrlMacAddr = 23;    // MAC_ADDR_SET
inline constexpr unsigned kFSpeedDuplex = 63;    // config speed and duplex are valid
// "MAC|STATUS|MRG_RXBUF|VERSION_1|bit 40", naming the net bits too.
[[nodiscard]] std::string feature_names(std::uint64_t features);

// struct virtio_net_config (section 5.1.4): offsets into the device
// configuration window; all fields little-endian.
namespace config {
inline constexpr std::uint32_t kMac = 0;                 // u8[6], with MAC
inline constexpr std::uint32_t kStatus = 6;              // le16, with STATUS
inline constexpr std::uint32_t kMaxVirtqueuePairs = 8;   // le16, with MQ
inline constexpr std::uint32_t kMtu = 10;                // le16, with MTU
inline constexpr std::uint32_t kSpeed = 12;              // le32 Mbit/s, with SPEED_DUPLEX
inline constexpr std::uint32_t kDuplex = 16;             // u8: 1 full, 0 half, 0xff unknown
}  // namespace config
inline constexpr std::uint16_t kStatusLinkUp = 1;
inline constexpr std::uint32_t kSpeedUnknown = 0xffffffff;

// struct virtio_net_hdr (section 5.1.6): before every packet in both
// directions. With VERSION_1 it always has num_buffers: 12 bytes.
struct NetHdr {
    std::uint8_t flags;
    std::uint8_t gso_type;
    std::uint16_t hdr_len;
    std::uint16_t gso_size;
    std::uint16_t csum_start;
    std::uint16_t csum_offset;
    std::uint16_t num_buffers;  // rx with MRG_RXBUF: buffers this packet spans
};
static_assert(sizeof(NetHdr) == 12);
static_assert(offsetof(NetHdr, num_buffers) == 10);
inline constexpr std::uint16_t kHdrLen = sizeof(NetHdr);

// NetHdr::flags (section 5.1.6.2 and 5.1.6.4.1).
inline constexpr std::uint8_t kHdrNeedsCsum = 1;  // partial checksum: csum_start/offset say where
inline constexpr std::uint8_t kHdrDataValid = 2;  // the device validated the checksum
inline constexpr std::uint8_t kGsoNone = 0;

// Queue indexes (section 5.1.2): receiveq1 0, transmitq1 1, ...,
// receiveqN 2(N-1), transmitqN 2(N-1)+1, controlq 2N, where N is
// max_virtqueue_pairs with MQ and 1 without.
[[nodiscard]] constexpr std::uint16_t rx_vq(std::uint16_t pair) {
    return static_cast<std::uint16_t>(2 * pair);
}
[[nodiscard]] constexpr std::uint16_t tx_vq(std::uint16_t pair) {
    return static_cast<std::uint16_t>(2 * pair + 1);
}
[[nodiscard]] constexpr std::uint16_t ctrl_vq(std::uint16_t max_pairs) {
    return static_cast<std::uint16_t>(2 * max_pairs);
}

// The control queue (section 5.1.6.5): a command is class, command,
// command-specific data (device-readable), then one ack byte the device
// writes.
namespace ctrl {
inline constexpr std::uint8_t kOk = 0;
inline constexpr std::uint8_t kErr = 1;
inline constexpr std::uint8_t kClassRx = 0;       // with CTRL_RX; data: u8 on
inline constexpr std::uint8_t kRxPromisc = 0;
inline constexpr std::uint8_t kRxAllmulti = 1;
inline constexpr std::uint8_t kClassMac = 1;
inline constexpr std::uint8_t kMacAddrSet = 1;    // with CTRL_MAC_ADDR; data: u8[6]
inline constexpr std::uint8_t kClassMq = 4;       // with MQ
inline constexpr std::uint8_t kMqVqPairsSet = 0;  // data: le16 virtqueue_pairs
}  // namespace ctrl

}  // namespace vfiokit::virtio::net
