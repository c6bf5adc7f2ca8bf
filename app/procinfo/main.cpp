// vfiokit-procinfo: attach to a running primary as a secondary and print
// what it reports: pid, VFIO mode and why, IOVA mode, memory segments, and
// the VFIO side's description. DPDK's dpdk-proc-info, for vfiokit.
//
//   vfiokit-procinfo [--file-prefix NAME] [--json] [--timeout MS]
//
// It only talks over the channel (the "eal.info" request): it maps no
// memory and opens no device, so it can run next to any primary, even one
// whose memory window is taken in this process. Exit status: 0 printed,
// 1 the primary could not be reached or answered with an error, 2 usage.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vfiokit/eal/mp.hpp"

namespace {

int usage(const char* argv0, FILE* to) {
    std::fprintf(to,
                 "usage: %s [--file-prefix NAME] [--json] [--timeout MS] [--runtime-dir DIR]\n"
                 "  --file-prefix NAME  the primary's prefix (default vfiokit)\n"
                 "  --json              a machine-readable document (doc/multiprocess.md)\n"
                 "  --timeout MS        how long to wait for the primary (default 5000)\n"
                 "  --runtime-dir DIR   where runtime directories live (default: /var/run/vfiokit\n"
                 "                      for root, $XDG_RUNTIME_DIR/vfiokit for others)\n",
                 argv0);
    return to == stdout ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace vfiokit::eal;
    std::string prefix = Options().file_prefix;
    std::string base;
    bool json = false;
    long timeout_ms = 5000;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i], name = a, value;
        bool has_value = false;
        if (auto eq = a.find('='); a.starts_with("--") && eq != std::string_view::npos) {
            name = a.substr(0, eq);
            value = a.substr(eq + 1);
            has_value = true;
        }
        auto take = [&]() -> bool {
            if (has_value)
                return true;
            if (i + 1 >= argc)
                return false;
            value = argv[++i];
            return true;
        };
        if (name == "--json") {
            json = true;
        } else if (name == "-h" || name == "--help") {
            return usage(argv[0], stdout);
        } else if (name == "--file-prefix" && take()) {
            prefix = value;
        } else if (name == "--runtime-dir" && take()) {
            base = value;
        } else if (name == "--timeout" && take()) {
            timeout_ms = std::strtol(std::string(value).c_str(), nullptr, 10);
            if (timeout_ms <= 0)
                return usage(argv[0], stderr);
        } else {
            std::fprintf(stderr, "%s: unknown or incomplete option '%s'\n", argv[0], argv[i]);
            return usage(argv[0], stderr);
        }
    }

    auto dir = mp::open_runtime_dir(prefix, base);
    if (!dir) {
        std::fprintf(stderr, "vfiokit-procinfo: %s\n", dir.error().message().c_str());
        return 1;
    }
    mp::ClientOptions o;
    o.timeout = std::chrono::milliseconds(timeout_ms);
    auto client = mp::Client::connect(*dir, o);
    if (!client) {
        std::fprintf(stderr, "vfiokit-procinfo: %s\n", client.error().message().c_str());
        return 1;
    }
    auto info = mp::query_info(**client);
    if (!info) {
        std::fprintf(stderr, "vfiokit-procinfo: %s\n", info.error().message().c_str());
        return 1;
    }
    const std::string out = json ? mp::to_json(*info) : mp::to_text(*info);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}
