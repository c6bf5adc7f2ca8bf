// What the fuzz targets share: libFuzzer's entry point, a reader that
// carves an input into the pieces a target needs, the invariant check that
// makes a finding of a wrong answer (not only of a crash), and the fd count
// that makes one of a leak.
#pragma once

#include <dirent.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "vfiokit/eal/log.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace vfiokit::fuzz {

// Consumes an input front to back; past its end every read gives zeros
// and empty pieces, so a target never needs to check.
class Input {
public:
    Input(const std::uint8_t* data, std::size_t size) : d_(data), n_(size) {}
    [[nodiscard]] std::size_t left() const { return n_ - at_; }
    [[nodiscard]] std::uint8_t u8() { return at_ < n_ ? d_[at_++] : 0; }
    [[nodiscard]] std::uint16_t u16() {
        const std::uint16_t lo = u8();
        return static_cast<std::uint16_t>(lo | (u8() << 8));
    }
    // Up to `len` bytes (fewer at the end).
    [[nodiscard]] std::span<const std::uint8_t> bytes(std::size_t len) {
        if (len > left())
            len = left();
        std::span<const std::uint8_t> s(d_ + at_, len);
        at_ += len;
        return s;
    }
    [[nodiscard]] std::span<const std::uint8_t> rest() { return bytes(left()); }
    [[nodiscard]] std::string_view text(std::size_t len) {
        auto b = bytes(len);
        return {reinterpret_cast<const char*>(b.data()), b.size()};
    }
    [[nodiscard]] std::string_view rest_text() { return text(left()); }

private:
    const std::uint8_t* d_;
    std::size_t n_;
    std::size_t at_ = 0;
};

// A broken invariant is a finding: libFuzzer saves the input on abort.
#define FUZZ_CHECK(cond, ...)                                                      \
    do {                                                                           \
        if (!(cond)) {                                                             \
            std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
                         #cond);                                                   \
            std::fprintf(stderr, __VA_ARGS__);                                     \
            std::fputc('\n', stderr);                                              \
            std::abort();                                                          \
        }                                                                          \
    } while (0)

// Open fds of this process (-1 when /proc is missing).
inline int open_fds() {
    DIR* d = opendir("/proc/self/fd");
    if (d == nullptr)
        return -1;
    int n = 0;
    while (dirent* e = readdir(d))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;  // the directory's own fd
}

// The code under test logs what it refuses; millions of lines would only
// slow the fuzzer down. Called once per process (a static's initializer).
inline bool quiet_logs() {
    log::set_sink([](log::Level, std::string_view, std::string_view) {});
    return true;
}

}  // namespace vfiokit::fuzz
