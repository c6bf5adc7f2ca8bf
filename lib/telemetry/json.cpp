#include "vfiokit/telemetry/json.hpp"

#include <charconv>

#include "vfiokit/eal/format.hpp"

namespace vfiokit::telemetry {

Json& Json::set(std::string key, Json value) {
    if (!is_object())
        v_ = Object{};
    std::get<Object>(v_).push_back({std::move(key), std::move(value)});
    return *this;
}

Json& Json::push(Json value) {
    if (!is_array())
        v_ = Array{};
    std::get<Array>(v_).push_back(std::move(value));
    return *this;
}

std::size_t Json::size() const {
    if (const auto* a = std::get_if<Array>(&v_))
        return a->size();
    if (const auto* o = std::get_if<Object>(&v_))
        return o->size();
    return 0;
}

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\r':
            out += "\\r";
            break;
        default:
            if (c < 0x20 || c > 0x7e) {
                out += "\\u00";
                out += kHex[c >> 4];
                out += kHex[c & 0xf];
            } else {
                out += ch;
            }
        }
    }
    out += '"';
}

namespace {

template <class T>
void append_number(std::string& out, T v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, ec == std::errc() ? end : buf);
}

}  // namespace

void Json::dump_to(std::string& out) const {
    struct Visit {
        std::string& out;
        void operator()(std::monostate) const { out += "null"; }
        void operator()(bool b) const { out += b ? "true" : "false"; }
        void operator()(std::int64_t i) const { append_number(out, i); }
        void operator()(std::uint64_t u) const { append_number(out, u); }
        void operator()(const std::string& s) const { append_json_string(out, s); }
        void operator()(const Array& a) const {
            out += '[';
            for (std::size_t i = 0; i < a.size(); ++i) {
                if (i)
                    out += ',';
                a[i].dump_to(out);
            }
            out += ']';
        }
        void operator()(const Object& o) const {
            out += '{';
            for (std::size_t i = 0; i < o.size(); ++i) {
                if (i)
                    out += ',';
                append_json_string(out, o[i].key);
                out += ':';
                o[i].value.dump_to(out);
            }
            out += '}';
        }
    };
    std::visit(Visit{out}, v_);
}

std::string Json::dump() const {
    std::string out;
    dump_to(out);
    return out;
}

Json hex_json(std::uint64_t v) { return Json(hex(v)); }

}  // namespace vfiokit::telemetry
