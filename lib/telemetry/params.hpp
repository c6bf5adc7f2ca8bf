// Parsing commands' parameters: strict, with errors that say what was
// expected (DPDK's handlers accept "0junk" as port 0; these do not).
#pragma once

#include <charconv>
#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::telemetry::detail {

// A decimal number below `limit`; EINVAL naming the command and what it wants.
inline Result<std::uint64_t> number_param(std::string_view cmd, std::string_view what,
                                          std::string_view v, std::uint64_t limit) {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n, 10);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n >= limit)
        return fail(Error(EINVAL, std::string(cmd) + ": '" + std::string(v.substr(0, 32)) +
                                      "' is not a " + std::string(what))
                        .hint("give it after a comma: " + std::string(cmd) + ",0"));
    return n;
}

}  // namespace vfiokit::telemetry::detail
