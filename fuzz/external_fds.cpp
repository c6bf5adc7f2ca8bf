// The external-fd environment parser (VFIOKIT_EXTERNAL_FDS, share.hpp):
// the text a broker puts in the environment of the process it starts.
// Whatever parses must format to text that parses to the same fds.
#include "fuzz_util.hpp"
#include "vfiokit/eal/vfio/share.hpp"

using namespace vfiokit;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool quiet = fuzz::quiet_logs();
    (void)quiet;
    fuzz::Input in(data, size);
    const std::string_view text = in.rest_text();
    auto x = vfio::parse_external_fds(text);
    if (!x) {
        FUZZ_CHECK(!x.error().message().empty(), "a refusal without a reason");
        return 0;
    }
    const std::string out = vfio::format_external_fds(*x);
    auto y = vfio::parse_external_fds(out);
    FUZZ_CHECK(y.has_value(), "\"%s\" (formatted from an accepted text) is refused: %s",
               out.c_str(), y.error().message().c_str());
    FUZZ_CHECK(y->mode == x->mode && y->iommufd == x->iommufd && y->container == x->container &&
                   y->devices == x->devices,
               "\"%s\" reads back differently", out.c_str());
    FUZZ_CHECK(vfio::format_external_fds(*y) == out, "formatting is not stable for \"%s\"",
               out.c_str());
    return 0;
}
