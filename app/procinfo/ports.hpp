// vfiokit-procinfo's port reports (--show-port, --stats, --xstats): a
// primary's ports read over the multi-process channel (ethdev/status.hpp),
// printed as dpdk-proc-info prints them, or as JSON with the keys of
// telemetry's /ethdev/* commands.
#pragma once

#include <cstdint>
#include <string>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::eal::mp {
class Client;
}  // namespace vfiokit::eal::mp

namespace vfiokit::procinfo {

struct PortReport {
    bool show_port = false;
    bool stats = false;
    bool xstats = false;
    std::uint64_t portmask = ~0ULL;  // -p: bit N selects port N
    bool json = false;
};

// The report's text. ENOENT when the mask selects none of the primary's
// ports; EAGAIN when the primary serves no ports yet.
[[nodiscard]] Result<std::string> report_ports(eal::mp::Client& c, const PortReport& r);

}  // namespace vfiokit::procinfo
