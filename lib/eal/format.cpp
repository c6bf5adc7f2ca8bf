#include "vfiokit/eal/format.hpp"

#include <cstdio>

namespace vfiokit {

std::string hex(std::uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

std::string hex_digits(std::uint64_t v, int width) {
    char b[24];
    std::snprintf(b, sizeof b, "%0*llx", width, static_cast<unsigned long long>(v));
    return b;
}

std::string range_text(std::uint64_t start, std::uint64_t len) {
    return "[" + hex(start) + ", " + hex(start + len) + ")";
}

std::string inclusive_range_text(std::uint64_t first, std::uint64_t last) {
    return "[" + hex(first) + ", " + hex(last) + "]";
}

}  // namespace vfiokit
