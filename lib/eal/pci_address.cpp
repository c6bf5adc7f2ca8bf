#include "vfiokit/eal/pci_address.hpp"

#include <cctype>
#include <charconv>
#include <cstdio>

namespace vfiokit {

namespace {

// Parses exactly `digits` hex digits (or 1..digits when !exact) from the
// front of `s`, advancing it.
std::optional<unsigned> take_hex(std::string_view& s, std::size_t max_digits) {
    std::size_t n = 0;
    while (n < s.size() && n < max_digits && std::isxdigit(static_cast<unsigned char>(s[n])))
        ++n;
    if (n == 0)
        return std::nullopt;
    unsigned v = 0;
    std::from_chars(s.data(), s.data() + n, v, 16);
    s.remove_prefix(n);
    return v;
}

bool take(std::string_view& s, char c) {
    if (s.empty() || s.front() != c)
        return false;
    s.remove_prefix(1);
    return true;
}

}  // namespace

std::optional<PciAddress> PciAddress::parse(std::string_view s) {
    PciAddress a;
    // Domain present when there are two ':' separators.
    const bool has_domain = s.find(':') != s.rfind(':');
    if (has_domain) {
        auto d = take_hex(s, 8);
        if (!d || !take(s, ':'))
            return std::nullopt;
        a.domain = *d;
    }
    auto b = take_hex(s, 2);
    if (!b || !take(s, ':'))
        return std::nullopt;
    auto d = take_hex(s, 2);
    if (!d || *d > 31 || !take(s, '.'))
        return std::nullopt;
    auto f = take_hex(s, 1);
    if (!f || *f > 7 || !s.empty())
        return std::nullopt;
    a.bus = static_cast<std::uint8_t>(*b);
    a.dev = static_cast<std::uint8_t>(*d);
    a.func = static_cast<std::uint8_t>(*f);
    return a;
}

std::string PciAddress::str() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", domain, bus, dev, func);
    return buf;
}

}  // namespace vfiokit
