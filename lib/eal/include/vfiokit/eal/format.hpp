/// \file
/// How vfiokit writes numbers and ranges in messages, logs and tool output:
/// one formatter, so an address reads the same everywhere. Pure functions;
/// thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace vfiokit {

/// "0x1f": addresses, IOVAs, lengths, register values.
[[nodiscard]] std::string hex(std::uint64_t v);
/// "00ff00" for (0xff00, 6): fixed-width lowercase digits without a prefix,
/// as PCI ids and class codes are written. Wider values keep all digits.
[[nodiscard]] std::string hex_digits(std::uint64_t v, int width);
/// "[0x1000, 0x3000)": the half-open range of `len` bytes from `start` (DMA
/// mappings, requests, memory segments).
[[nodiscard]] std::string range_text(std::uint64_t start, std::uint64_t len);
/// "[0x0, 0xfedfffff]": an inclusive range by its first and last byte, as the
/// kernel reports IOVA ranges.
[[nodiscard]] std::string inclusive_range_text(std::uint64_t first, std::uint64_t last);

}  // namespace vfiokit
