// Receive-side scaling for the 82576 (datasheet 7.1.2.8): the hash the
// device computes, the key it starts with, and how ethdev's RSS requests
// become MRQC bits and a redirection table. Pure functions, no device
// access, so the unit tests check them against published vectors and the
// lab test predicts which queue each flow lands in.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace vfiokit::igb {

// The key the driver programs unless told otherwise: the 40-byte key of
// Microsoft's RSS verification suite, which Intel's drivers use as their
// default (so hashes match what DPDK's igb reports for the same flows).
inline constexpr std::array<std::uint8_t, 40> kDefaultRssKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

// The Toeplitz hash of `input` under `key` (7.1.2.8.1): for every set bit
// of the input, XOR in the 32 key bits starting at that bit's position.
// The input is in network order: source address, destination address,
// then source and destination port for the L4 hashes.
[[nodiscard]] std::uint32_t toeplitz(std::span<const std::uint8_t> key,
                                     std::span<const std::uint8_t> input);

// The IPv4 hash inputs, addresses and ports in host order.
[[nodiscard]] std::uint32_t rss_hash_ipv4(std::span<const std::uint8_t> key, std::uint32_t src,
                                          std::uint32_t dst);
[[nodiscard]] std::uint32_t rss_hash_ipv4_l4(std::span<const std::uint8_t> key, std::uint32_t src,
                                             std::uint32_t dst, std::uint16_t sport,
                                             std::uint16_t dport);

// MRQC hash-field bits (8.10.13) for ethdev::rss::* bits; the RSS enable
// value is added by the caller.
[[nodiscard]] std::uint32_t mrqc_fields(std::uint64_t rss_hf);

// Redirection table entry i (of 128) for `nb_queues` queues: i mod n, as
// DPDK's igb lays it out. The device uses the hash's low 7 bits as i.
[[nodiscard]] constexpr std::uint8_t reta_entry(unsigned i, unsigned nb_queues) {
    return static_cast<std::uint8_t>(i % nb_queues);
}
[[nodiscard]] constexpr unsigned rss_queue(std::uint32_t hash, unsigned nb_queues) {
    return reta_entry(hash & 0x7f, nb_queues);
}

}  // namespace vfiokit::igb
