/// \file
/// PCI device address (domain:bus:device.function), as sysfs and the VFIO
/// ioctls spell it: "0000:00:03.0". The short form "00:03.0" (domain 0) is
/// accepted on input, as DPDK's -a/-b options accept it.
/// Thread-safety: a value type; const methods and the parsers are safe from
/// any thread.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vfiokit {

/// A PCI address (domain:bus:device.function); see the file's description.
struct PciAddress {
    std::uint32_t domain = 0;
    std::uint8_t bus = 0;
    std::uint8_t dev = 0;   ///< 0..31
    std::uint8_t func = 0;  ///< 0..7

    /// nullopt when `s` is not a well-formed address.
    static std::optional<PciAddress> parse(std::string_view s);
    /// Canonical "dddd:bb:dd.f", lower-case hex.
    [[nodiscard]] std::string str() const;

    auto operator<=>(const PciAddress&) const = default;
};

}  // namespace vfiokit
