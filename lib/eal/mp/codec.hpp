// Payload encoding of the runtime requests: fixed-size integers in host
// byte order (both ends are on one machine) and length-prefixed strings.
// The Reader never reads past its input: a short or garbled payload makes
// ok() false instead. Private to lib/eal/mp.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace vfiokit::eal::mp::codec {

class Writer {
public:
    void u32(std::uint32_t v) { put(v); }
    void i32(std::int32_t v) { put(v); }
    void u64(std::uint64_t v) { put(v); }
    void str(std::string_view s) {
        u32(static_cast<std::uint32_t>(s.size()));
        out_.append(s);
    }
    // Bytes made by another Writer.
    void raw(std::string_view bytes) { out_.append(bytes); }
    [[nodiscard]] std::size_t size() const { return out_.size(); }
    [[nodiscard]] std::string take() { return std::move(out_); }

private:
    template <class T>
    void put(T v) {
        out_.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
    std::string out_;
};

class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    std::uint32_t u32() { return get<std::uint32_t>(); }
    std::int32_t i32() { return get<std::int32_t>(); }
    std::uint64_t u64() { return get<std::uint64_t>(); }
    std::string str() {
        const std::uint32_t n = u32();
        if (!ok_ || n > in_.size()) {
            ok_ = false;
            return {};
        }
        std::string s(in_.substr(0, n));
        in_.remove_prefix(n);
        return s;
    }
    [[nodiscard]] bool ok() const { return ok_; }
    [[nodiscard]] bool at_end() const { return in_.empty(); }

private:
    template <class T>
    T get() {
        T v{};
        if (in_.size() < sizeof v) {
            ok_ = false;
            return v;
        }
        std::memcpy(&v, in_.data(), sizeof v);
        in_.remove_prefix(sizeof v);
        return v;
    }
    std::string_view in_;
    bool ok_ = true;
};

}  // namespace vfiokit::eal::mp::codec
