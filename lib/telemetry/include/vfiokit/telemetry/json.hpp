/// \file
/// The values telemetry replies carry, and their JSON text.
///
/// What DPDK's telemetry library lets a command return (rte_tel_data:
/// strings, signed and unsigned integers, arrays, objects whose keys keep
/// their insertion order) plus null and booleans, written as compact JSON
/// the way DPDK's server writes it ({"ipackets":0,...}), so that DPDK's
/// clients read vfiokit's replies unchanged.
///
/// \code
///   Json d = Json::object();
///   d.set("ipackets", std::uint64_t{12}).set("mac_addr", "52:54:00:12:34:56");
///   Json q = Json::array();
///   q.push(1).push(2);
///   d.set("q_ipackets", std::move(q));
///   d.dump();  // {"ipackets":12,"mac_addr":"52:54:00:12:34:56","q_ipackets":[1,2]}
/// \endcode
///
/// Strings are bytes: '"', '\\' and control characters are escaped, and so
/// is every byte above 0x7e (as `\u00XX`), so the text is ASCII whatever a
/// string held and a client decoding it as UTF-8 never fails.
///
/// Thread-safety: a value; distinct objects on distinct threads.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace vfiokit::telemetry {

/// A JSON value: null, bool, integer, string, array or object (members in
/// insertion order); see the file's description.
class Json {
public:
    struct Member;
    using Array = std::vector<Json>;
    using Object = std::vector<Member>;

    // The constructors are defined below Member: building the variant
    // needs Object's destructor, so Member must be complete (clang
    // instantiates it at the definition; GCC happens to wait).
    Json() = default;  ///< null
    Json(bool b);
    template <std::signed_integral T>
        requires(!std::same_as<T, bool> && !std::same_as<T, char>)
    Json(T i);
    template <std::unsigned_integral T>
        requires(!std::same_as<T, bool>)
    Json(T u);
    Json(std::string s);
    Json(std::string_view s);
    Json(const char* s);

    [[nodiscard]] static Json array();
    [[nodiscard]] static Json object();

    /// Object: appends key (a key given twice appears twice: callers give
    /// each once). Array: appends. Calling either on another kind first
    /// makes the value that kind (an empty one).
    Json& set(std::string key, Json value);
    Json& push(Json value);

    [[nodiscard]] bool is_null() const { return std::holds_alternative<std::monostate>(v_); }
    [[nodiscard]] bool is_object() const { return std::holds_alternative<Object>(v_); }
    [[nodiscard]] bool is_array() const { return std::holds_alternative<Array>(v_); }
    /// Array elements or object members (0 for the other kinds).
    [[nodiscard]] std::size_t size() const;

    /// Compact JSON text.
    [[nodiscard]] std::string dump() const;
    void dump_to(std::string& out) const;

private:
    explicit Json(Array a);
    explicit Json(Object o);
    std::variant<std::monostate, bool, std::int64_t, std::uint64_t, std::string, Array, Object> v_;
};

/// One member of a JSON object.
struct Json::Member {
    std::string key;
    Json value;
};

inline Json::Json(bool b) : v_(b) {}
template <std::signed_integral T>
    requires(!std::same_as<T, bool> && !std::same_as<T, char>)
Json::Json(T i) : v_(static_cast<std::int64_t>(i)) {}
template <std::unsigned_integral T>
    requires(!std::same_as<T, bool>)
Json::Json(T u) : v_(static_cast<std::uint64_t>(u)) {}
inline Json::Json(std::string s) : v_(std::move(s)) {}
inline Json::Json(std::string_view s) : v_(std::string(s)) {}
inline Json::Json(const char* s) : v_(std::string(s)) {}
inline Json::Json(Array a) : v_(std::move(a)) {}
inline Json::Json(Object o) : v_(std::move(o)) {}
inline Json Json::array() { return Json(Array{}); }
inline Json Json::object() { return Json(Object{}); }

/// `s` as a JSON string literal, quotes included (see the escaping above).
void append_json_string(std::string& out, std::string_view s);

/// "0x1f": how DPDK's telemetry writes flags and offload masks
/// (rte_tel_data_add_dict_uint_hex), and how vfiokit writes addresses
/// (numbers above 2^53 lose precision in JSON readers that use doubles).
[[nodiscard]] Json hex_json(std::uint64_t v);

}  // namespace vfiokit::telemetry
