/// \file
/// strformat: the subset of std::format that messages and tool output use,
/// for compilers whose standard library has no `<format>` (GCC 12, Debian
/// 12's). Same pattern syntax, so a later move to std::format is a rename:
///
/// \verbatim
///   strformat("port {} ({}): ring {:<6}|{:>4}|{:#x}|{:02x}", 0, name, 512, 7, 255, 10)
/// \endverbatim
///
/// Replacement fields: {} or {:SPEC}, SPEC = `[<|>][#][0][WIDTH][x]`. Numbers
/// are right-aligned by default, text left-aligned; '#' adds 0x to hex; '0'
/// pads numbers with zeros. Arguments: integers (8-bit ones as numbers, as
/// std::format), bool, text (std::string, string_view, C strings),
/// pointers (hex). "{{" and "}}" are literal braces. A pattern with more
/// fields than arguments prints the extra fields as "{?}" (no exception:
/// this formats error messages).
/// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace vfiokit {

namespace detail {

struct FmtArg {
    enum class Kind { sint, uint, text, chr, ptr } kind = Kind::text;
    std::uint64_t u = 0;
    std::int64_t i = 0;
    std::string_view s;
};

template <class T>
FmtArg fmt_arg(const T& v) {
    FmtArg a;
    using D = std::decay_t<T>;
    if constexpr (std::is_same_v<D, bool>) {
        a.s = v ? "true" : "false";
    } else if constexpr (std::is_same_v<D, char>) {
        a.kind = FmtArg::Kind::chr;
        a.u = static_cast<unsigned char>(v);
    } else if constexpr (std::is_integral_v<D> && std::is_signed_v<D>) {
        a.kind = FmtArg::Kind::sint;
        a.i = v;
    } else if constexpr (std::is_integral_v<D> || std::is_enum_v<D>) {
        a.kind = FmtArg::Kind::uint;
        a.u = static_cast<std::uint64_t>(v);
    } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        a.s = std::string_view(v);
    } else if constexpr (std::is_pointer_v<D>) {
        a.kind = FmtArg::Kind::ptr;
        a.u = reinterpret_cast<std::uintptr_t>(v);
    } else {
        static_assert(std::is_integral_v<D>, "strformat: unsupported argument type");
    }
    return a;
}

inline void fmt_one(std::string& out, std::string_view spec, const FmtArg& a) {
    char align = 0;
    bool alt = false, zero = false, hexa = false;
    std::size_t width = 0, k = 0;
    if (k < spec.size() && (spec[k] == '<' || spec[k] == '>'))
        align = spec[k++];
    if (k < spec.size() && spec[k] == '#') {
        alt = true;
        ++k;
    }
    if (k < spec.size() && spec[k] == '0') {
        zero = true;
        ++k;
    }
    while (k < spec.size() && spec[k] >= '0' && spec[k] <= '9')
        width = width * 10 + static_cast<std::size_t>(spec[k++] - '0');
    if (k < spec.size() && spec[k] == 'x')
        hexa = true;
    std::string body, sign;
    bool number = true;
    switch (a.kind) {
    case FmtArg::Kind::text:
        body = a.s;
        number = false;
        break;
    case FmtArg::Kind::chr:
        body.assign(1, static_cast<char>(a.u));
        number = false;
        break;
    case FmtArg::Kind::ptr:
        hexa = alt = true;
        [[fallthrough]];
    case FmtArg::Kind::uint:
    case FmtArg::Kind::sint: {
        std::uint64_t mag = a.u;
        if (a.kind == FmtArg::Kind::sint) {
            mag = a.i < 0 ? 0 - static_cast<std::uint64_t>(a.i) : static_cast<std::uint64_t>(a.i);
            if (a.i < 0)
                sign = "-";
        }
        if (hexa) {
            do {
                body.insert(body.begin(), "0123456789abcdef"[mag & 15]);
                mag >>= 4;
            } while (mag);
            if (alt)
                sign += "0x";
        } else {
            body = std::to_string(mag);
        }
        break;
    }
    }
    const std::size_t len = sign.size() + body.size();
    if (len >= width) {
        out += sign + body;
        return;
    }
    const std::size_t pad = width - len;
    if (number && zero && !align) {
        out += sign + std::string(pad, '0') + body;
        return;
    }
    if (align == 0)
        align = number ? '>' : '<';
    if (align == '>')
        out += std::string(pad, ' ') + sign + body;
    else
        out += sign + body + std::string(pad, ' ');
}

inline std::string vstrformat(std::string_view pat, const FmtArg* args, std::size_t n) {
    std::string out;
    std::size_t next = 0;
    for (std::size_t i = 0; i < pat.size(); ++i) {
        const char c = pat[i];
        if (c == '{' && i + 1 < pat.size() && pat[i + 1] == '{') {
            out += '{';
            ++i;
        } else if (c == '}' && i + 1 < pat.size() && pat[i + 1] == '}') {
            out += '}';
            ++i;
        } else if (c == '{') {
            const std::size_t end = pat.find('}', i);
            if (end == std::string_view::npos) {
                out += pat.substr(i);
                break;
            }
            std::string_view spec = pat.substr(i + 1, end - i - 1);
            if (!spec.empty() && spec[0] == ':')
                spec.remove_prefix(1);
            if (next < n)
                fmt_one(out, spec, args[next++]);
            else
                out += "{?}";
            i = end;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace detail

/// Formats `args` into `pattern`, whose syntax the file's description
/// gives; fields beyond the arguments print as "{?}".
template <class... A>
[[nodiscard]] std::string strformat(std::string_view pattern, const A&... args) {
    if constexpr (sizeof...(A) == 0) {
        return detail::vstrformat(pattern, nullptr, 0);
    } else {
        const detail::FmtArg a[] = {detail::fmt_arg(args)...};
        return detail::vstrformat(pattern, a, sizeof...(A));
    }
}

}  // namespace vfiokit
