// The EAL option parser (parse_options): an argv of NUL-separated
// arguments. It may refuse anything, with a message, but never crash, and
// what it returns is an index into argv.
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "vfiokit/eal/options.hpp"

using namespace vfiokit;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool quiet = fuzz::quiet_logs();
    (void)quiet;
    fuzz::Input in(data, size);
    const std::string_view all = in.rest_text();
    std::vector<std::string> args{"fuzz"};
    for (std::size_t at = 0; at <= all.size() && args.size() < 64;) {
        const std::size_t end = std::min(all.find('\0', at), all.size());
        args.emplace_back(all.substr(at, end - at));
        at = end + 1;
    }
    std::vector<const char*> argv;
    for (const auto& a : args)
        argv.push_back(a.c_str());
    argv.push_back(nullptr);
    const int argc = static_cast<int>(args.size());
    eal::Options o;
    auto r = eal::parse_options(argc, argv.data(), o);
    if (!r) {
        FUZZ_CHECK(!r.error().message().empty(), "a refusal without a reason");
        return 0;
    }
    FUZZ_CHECK(*r >= 1 && *r <= argc, "returned index %d of %d arguments", *r, argc);
    return 0;
}
