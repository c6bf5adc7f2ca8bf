// The handover's messages (handover.hpp), as bytes. Private to lib/eal.
//
// Version 1, little-endian, packed. Every message starts with
//   u32 magic "VFKH" (bytes 'V','F','K','H')   u16 version (1)   u16 kind
//   u32 total length of the bytes              u32 fd count
// OFFER (kind 1) goes on with
//   u32 region count   u32 state length   u32 sender pid   u32 0
//   regions: u64 va, u64 len, u64 offset, u32 fd index, u32 0     (32 each)
//   the state: Vfio::export_shared()'s bytes (share.hpp)
// and carries the state's fds first, then one fd per region, in order.
// READY (2), REFUSED (3) and RELEASED (4) go on with
//   u32 text length, the text (REFUSED: why), no fds.
// Decoding fails with EPROTO, naming what is wrong, for: bad magic, another
// version, an unknown kind, a length or fd count that disagrees with what
// arrived, truncation or trailing bytes, a region that is empty, not 4 KiB
// aligned (address, length, offset), wrapping, overlapping another, or whose
// fd index is not the one its position gives, and a text over 4 KiB.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::vfio::handover {

enum class Kind : std::uint16_t { offer = 1, ready = 2, refused = 3, released = 4 };

struct Region {
    std::uint64_t va = 0;
    std::uint64_t len = 0;
    std::uint64_t offset = 0;
};

struct Offer {
    std::vector<Region> regions;
    std::vector<std::uint8_t> state;
    std::uint32_t state_fds = 0;   // the first state_fds fds are the state's
    std::uint32_t sender = 0;      // the old process's pid, for messages
};

struct Note {
    Kind kind = Kind::ready;
    std::string text;
};

inline constexpr std::size_t kMaxText = 4096;

[[nodiscard]] std::vector<std::uint8_t> encode_offer(const Offer& o);
// `fd_count`: how many fds arrived with the bytes.
[[nodiscard]] Result<Offer> decode_offer(std::span<const std::uint8_t> bytes, std::size_t fd_count);
[[nodiscard]] std::vector<std::uint8_t> encode_note(const Note& n);
[[nodiscard]] Result<Note> decode_note(std::span<const std::uint8_t> bytes, std::size_t fd_count);

}  // namespace vfiokit::vfio::handover
