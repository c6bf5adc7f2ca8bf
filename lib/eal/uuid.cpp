#include "vfiokit/eal/uuid.hpp"

#include <cerrno>

namespace vfiokit {

namespace {

constexpr bool is_dash_position(std::size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

int nibble(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

}  // namespace

Result<Uuid> parse_uuid(std::string_view text) {
    auto bad = [&] {
        return fail(Error(EINVAL, "parse UUID '" + std::string(text) + "'")
                        .hint("a UUID is 36 characters: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx "
                              "(hex digits)"));
    };
    if (text.size() != 36)
        return bad();
    Uuid out{};
    std::size_t n = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (is_dash_position(i)) {
            if (text[i] != '-')
                return bad();
            continue;
        }
        const int v = nibble(text[i]);
        if (v < 0)
            return bad();
        out[n / 2] = static_cast<std::uint8_t>(out[n / 2] | (v << (n % 2 == 0 ? 4 : 0)));
        ++n;
    }
    return out;
}

std::string to_string(const Uuid& u) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < u.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            s += '-';
        s += kDigits[u[i] >> 4];
        s += kDigits[u[i] & 0xf];
    }
    return s;
}

}  // namespace vfiokit
