// The byte codec of vfiokit's wire formats (the multi-process channel's
// payloads, lib/eal/mp; shared VFIO state, lib/eal/vfio/share_codec):
// fixed-size little-endian integers, raw bytes and u32-length-prefixed
// strings.
//
// Writer appends; patch_u32() fills in a length once it is known. Reader
// never reads past its input: past the end it records what it was reading
// and where, returns zeros from then on, and ok() turns false, so a decoder
// can check once per section and report the first failure. Both ends of
// every user run on one machine, but the order is fixed anyway, so a
// message means the same on any host. Private to lib/eal (and its tests).
// Not thread-safe: one Writer or Reader per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vfiokit::codec {

class Writer {
public:
    void u8(std::uint8_t v) { out_.push_back(v); }
    void u16(std::uint16_t v) { le(v, 2); }
    void u32(std::uint32_t v) { le(v, 4); }
    void i32(std::int32_t v) { le(static_cast<std::uint32_t>(v), 4); }
    void u64(std::uint64_t v) { le(v, 8); }
    void bytes(const void* p, std::size_t n) {
        const auto* b = static_cast<const std::uint8_t*>(p);
        out_.insert(out_.end(), b, b + n);
    }
    // Bytes made by another Writer, or any raw bytes.
    void raw(std::string_view s) { bytes(s.data(), s.size()); }
    // A u32 length, then the bytes.
    void str(std::string_view s) {
        u32(static_cast<std::uint32_t>(s.size()));
        raw(s);
    }
    // Overwrites the u32 at byte `at` (written earlier as a placeholder).
    void patch_u32(std::size_t at, std::uint32_t v) {
        for (std::size_t i = 0; i < 4; ++i)
            out_[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
    [[nodiscard]] std::size_t size() const { return out_.size(); }
    [[nodiscard]] std::vector<std::uint8_t> take() { return std::move(out_); }
    [[nodiscard]] std::string take_string() {
        std::string s(out_.begin(), out_.end());
        out_.clear();
        return s;
    }

private:
    void le(std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i)
            out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    std::vector<std::uint8_t> out_;
};

class Reader {
public:
    explicit Reader(std::span<const std::uint8_t> b) : b_(b) {}
    explicit Reader(std::string_view s)
        : b_(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()) {}

    // `what` names the field in the error ("truncated: 10 bytes end inside
    // mapping count at byte 8").
    std::uint8_t u8(const char* what = "a field") { return static_cast<std::uint8_t>(le(1, what)); }
    std::uint16_t u16(const char* what = "a field") {
        return static_cast<std::uint16_t>(le(2, what));
    }
    std::uint32_t u32(const char* what = "a field") {
        return static_cast<std::uint32_t>(le(4, what));
    }
    std::int32_t i32(const char* what = "a field") {
        return static_cast<std::int32_t>(static_cast<std::uint32_t>(le(4, what)));
    }
    std::uint64_t u64(const char* what = "a field") { return le(8, what); }
    // A u32 length, then that many bytes; "" once failed.
    std::string str(const char* what = "a string") {
        const std::uint32_t n = u32(what);
        if (!ok())
            return {};
        if (n > left()) {
            fail_at(what, n);
            return {};
        }
        std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
        pos_ += n;
        return s;
    }

    [[nodiscard]] bool ok() const { return error_.empty(); }
    // What went wrong first; "" while ok().
    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] std::size_t pos() const { return pos_; }
    [[nodiscard]] std::size_t left() const { return b_.size() - pos_; }
    [[nodiscard]] bool at_end() const { return pos_ == b_.size(); }

private:
    void fail_at(const char* what, std::size_t need) {
        error_ = "truncated: " + std::to_string(b_.size()) + " bytes end inside " + what +
                 " at byte " + std::to_string(pos_) + " (" + std::to_string(need) +
                 " needed, " + std::to_string(left()) + " left)";
        pos_ = b_.size();
    }
    std::uint64_t le(std::size_t n, const char* what) {
        if (!ok())
            return 0;
        if (left() < n) {
            fail_at(what, n);
            return 0;
        }
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i)
            v |= std::uint64_t{b_[pos_ + i]} << (8 * i);
        pos_ += n;
        return v;
    }
    std::span<const std::uint8_t> b_;
    std::size_t pos_ = 0;
    std::string error_;
};

}  // namespace vfiokit::codec
