/// \file
/// UUIDs in their canonical text form (RFC 9562, 8-4-4-4-12 hex digits), as
/// VF tokens are given (`-a BDF,vf_token=UUID`, vfio-pci's vf_token).
/// Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "vfiokit/eal/error.hpp"

namespace vfiokit {

/// The 16 bytes in text order: the kernel's uuid_t byte order (not the
/// mixed-endian guid_t), as VFIO_DEVICE_FEATURE_PCI_VF_TOKEN and
/// VFIO_DEVICE_BIND_FLAG_TOKEN take it.
using Uuid = std::array<std::uint8_t, 16>;

/// "2ab74924-c335-45f4-9b16-8569e5b08258", either case. EINVAL naming the
/// text, with the expected form as hint, for anything else (no braces, no
/// urn:uuid: prefix, no missing dashes).
[[nodiscard]] Result<Uuid> parse_uuid(std::string_view text);
/// Lowercase canonical form.
[[nodiscard]] std::string to_string(const Uuid& u);

}  // namespace vfiokit
