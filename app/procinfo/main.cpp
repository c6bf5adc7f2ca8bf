// vfiokit-procinfo: attach to a running primary as a secondary and print
// what it reports: pid, VFIO mode and why, IOVA mode, memory segments, and
// the VFIO side's description; with --show-port, --stats or --xstats, its
// ports (ports.cpp). DPDK's dpdk-proc-info, for vfiokit.
//
//   vfiokit-procinfo [--file-prefix NAME] [--json] [--timeout MS]
//                    [--show-port] [--stats] [--xstats] [-p PORTMASK]
//
// It only talks over the channel ("eal.info", "ethdev.ports",
// "ethdev.stats", "ethdev.xstats"): it maps no memory and opens no
// device, so it can run next to any primary, even one whose memory window
// is taken in this process. Exit status: 0 printed, 1 the primary could
// not be reached or answered with an error, 2 usage.
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ports.hpp"
#include "vfiokit/eal/mp.hpp"

namespace {

int usage(const char* argv0, FILE* to) {
    std::fprintf(to,
                 "usage: %s [--file-prefix NAME] [--json] [--timeout MS] [--runtime-dir DIR]\n"
                 "          [--show-port] [--stats] [--xstats] [-p PORTMASK]\n"
                 "Prints what a running vfiokit primary reports, over its multi-process\n"
                 "channel (it maps nothing and opens no device). Without a port option: the\n"
                 "primary's pid, VFIO and IOVA modes and memory.\n"
                 "  --file-prefix NAME  the primary's prefix (default vfiokit)\n"
                 "  --show-port         each port: device, driver, state, MAC, MTU, link,\n"
                 "                      queues, offloads (dpdk-proc-info's --show-port)\n"
                 "  --stats             each port's statistics (dpdk-proc-info's --stats)\n"
                 "  --xstats            each port's extended statistics (--xstats)\n"
                 "  -p, --portmask MASK the ports to report, a hex mask (0x3: ports 0 and 1;\n"
                 "                      default all)\n"
                 "  --json              a machine-readable document (doc/multiprocess.md;\n"
                 "                      ports with telemetry's /ethdev keys)\n"
                 "  --timeout MS        how long to wait for the primary (default 5000)\n"
                 "  --runtime-dir DIR   where runtime directories live (default: /var/run/vfiokit\n"
                 "                      for root, $XDG_RUNTIME_DIR/vfiokit for others)\n"
                 "  --                  ignored, so that dpdk-proc-info's form\n"
                 "                      '--file-prefix X -- --stats' works\n"
                 "  -h, --help          this text\n"
                 "Exit status: 0 printed; 1 no primary, or it answered with an error; 2 usage.\n",
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
    vfiokit::procinfo::PortReport ports;
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
        } else if (name == "--") {
            continue;
        } else if (name == "--show-port") {
            ports.show_port = true;
        } else if (name == "--stats") {
            ports.stats = true;
        } else if (name == "--xstats") {
            ports.xstats = true;
        } else if ((name == "-p" || name == "--portmask") && take()) {
            const std::string v(value);
            char* end = nullptr;
            errno = 0;
            ports.portmask = std::strtoull(v.c_str(), &end, 16);
            if (v.empty() || *end != '\0' || errno != 0 || ports.portmask == 0) {
                std::fprintf(stderr, "%s: -p '%s': give a non-zero hex mask of port ids\n",
                             argv[0], v.c_str());
                return usage(argv[0], stderr);
            }
        } else if (name == "-h" || name == "--help") {
            return usage(argv[0], stdout);
        } else if (name == "--file-prefix" && take()) {
            prefix = value;
        } else if (name == "--runtime-dir" && take()) {
            base = value;
        } else if (name == "--timeout" && take()) {
            // 1 ms to an hour: more would overflow the deadline arithmetic
            // (steady_clock::now() + timeout), and is no wait anyone means.
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), timeout_ms);
            if (ec != std::errc() || end != value.data() + value.size() || timeout_ms <= 0 ||
                timeout_ms > 3'600'000) {
                std::fprintf(stderr, "%s: --timeout '%.*s': give milliseconds, 1 to 3600000\n",
                             argv[0], static_cast<int>(value.size()), value.data());
                return 2;
            }
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
    if (ports.show_port || ports.stats || ports.xstats) {
        ports.json = json;
        auto out = vfiokit::procinfo::report_ports(**client, ports);
        if (!out) {
            std::fprintf(stderr, "vfiokit-procinfo: %s\n", out.error().message().c_str());
            return 1;
        }
        std::fwrite(out->data(), 1, out->size(), stdout);
        return 0;
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
