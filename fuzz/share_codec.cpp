// The share codec (lib/eal/vfio/share_codec.hpp): what a secondary decodes
// from the primary's bytes. Input: one byte of fd count, then the bytes.
// Anything decode() accepts must encode, and decode again to the same
// encoding: a snapshot it accepts is one it could have produced.
#include <vector>

#include "fuzz_util.hpp"
#include "share_codec.hpp"

using namespace vfiokit;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool quiet = fuzz::quiet_logs();
    (void)quiet;
    fuzz::Input in(data, size);
    const std::size_t fd_count = in.u8() % 65;
    const auto bytes = in.rest();
    auto s = vfio::share::decode(bytes, fd_count);
    if (!s) {
        FUZZ_CHECK(!s.error().message().empty(), "a refusal without a reason");
        return 0;
    }
    FUZZ_CHECK(s->fd_count == fd_count, "decoded fd_count %u for %zu fds", s->fd_count, fd_count);
    auto once = vfio::share::encode(*s);
    FUZZ_CHECK(once.has_value(), "an accepted snapshot does not encode: %s",
               once.error().message().c_str());
    auto again = vfio::share::decode(*once, fd_count);
    FUZZ_CHECK(again.has_value(), "its own encoding is refused: %s",
               again.error().message().c_str());
    auto twice = vfio::share::encode(*again);
    FUZZ_CHECK(twice.has_value() && *twice == *once, "encode(decode(encode(x))) differs");
    return 0;
}
