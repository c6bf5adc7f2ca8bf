// Frame layouts testpmd's engines read and write: Ethernet, ARP, IPv4,
// ICMP, UDP, at their byte offsets (RFC 826, 791, 792, 768), with the
// Internet checksum (RFC 1071). Multi-byte fields are big-endian on the
// wire; the accessors convert.
//
// txonly/flowgen frames (build_udp): Ethernet + IPv4 (no options, TTL 64,
// DF clear) + UDP (checksum 0, allowed over IPv4) + payload. The payload
// begins with the stream's sequence number (8 bytes, big-endian), then
// byte i of the rest is (seq + i) & 0xff: a receiver can check every byte
// of a frame from its sequence number alone (check_udp_payload).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::testpmd::pkt {

inline constexpr std::size_t kEthLen = 14;
inline constexpr std::size_t kIpv4Len = 20;
inline constexpr std::size_t kUdpLen = 8;
inline constexpr std::size_t kArpLen = 28;
inline constexpr std::size_t kIcmpLen = 8;
inline constexpr std::size_t kSeqLen = 8;
// The shortest txonly frame: headers and the sequence number.
inline constexpr std::size_t kMinUdpFrame = kEthLen + kIpv4Len + kUdpLen + kSeqLen;

inline constexpr std::uint16_t kEtherIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherArp = 0x0806;
inline constexpr std::uint8_t kProtoIcmp = 1;
inline constexpr std::uint8_t kProtoUdp = 17;

inline std::uint16_t get16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
inline void put16(std::uint8_t* p, std::uint16_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}
inline std::uint32_t get32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}
inline void put32(std::uint8_t* p, std::uint32_t v) {
    put16(p, static_cast<std::uint16_t>(v >> 16));
    put16(p + 2, static_cast<std::uint16_t>(v));
}
inline std::uint64_t get64(const std::uint8_t* p) {
    return std::uint64_t{get32(p)} << 32 | get32(p + 4);
}
inline void put64(std::uint8_t* p, std::uint64_t v) {
    put32(p, static_cast<std::uint32_t>(v >> 32));
    put32(p + 4, static_cast<std::uint32_t>(v));
}

// The Internet checksum of len bytes (the one's complement of the one's
// complement sum of 16-bit words).
std::uint16_t checksum(const std::uint8_t* p, std::size_t len);

// Ethernet header.
inline ethdev::MacAddr eth_dst(const std::uint8_t* f) {
    ethdev::MacAddr m;
    std::memcpy(m.bytes.data(), f, 6);
    return m;
}
inline ethdev::MacAddr eth_src(const std::uint8_t* f) {
    ethdev::MacAddr m;
    std::memcpy(m.bytes.data(), f + 6, 6);
    return m;
}
inline void set_eth(std::uint8_t* f, const ethdev::MacAddr& dst, const ethdev::MacAddr& src) {
    std::memcpy(f, dst.bytes.data(), 6);
    std::memcpy(f + 6, src.bytes.data(), 6);
}
inline std::uint16_t ether_type(const std::uint8_t* f) { return get16(f + 12); }

struct UdpFlow {
    ethdev::MacAddr src_mac, dst_mac;
    std::uint32_t src_ip = 0, dst_ip = 0;  // host order
    std::uint16_t src_port = 9, dst_port = 9;
};

// Writes a len-byte UDP/IPv4 frame (len >= kMinUdpFrame) carrying seq.
void build_udp(std::uint8_t* f, std::size_t len, const UdpFlow& flow, std::uint64_t seq);
// Whether a received frame is one build_udp made with the same length:
// headers consistent, IPv4 checksum right, payload as the sequence number
// says. Writes the sequence number to *seq.
[[nodiscard]] bool check_udp_payload(const std::uint8_t* f, std::size_t len, std::uint64_t* seq);

// icmpecho: turns an ARP request (for any address) or an ICMP echo request
// into its reply in place, from `mac`. Returns false (frame unchanged) for
// anything else.
[[nodiscard]] bool make_reply(std::uint8_t* f, std::size_t len, const ethdev::MacAddr& mac);

}  // namespace vfiokit::testpmd::pkt
