/// \file
/// What a port is doing, for tools: DPDK's rte_eth_dev_info and device
/// state as telemetry's /ethdev/info shows them, and the same read by
/// another process over the multi-process channel without attaching the
/// port (vfiokit-procinfo, as dpdk-proc-info reads a primary).
///
/// \code
///   auto s = ethdev::status(0);              // this process's port 0
/// \endcode
///
/// \code
///   auto c = eal::mp::Client::connect(dir);  // another process
///   auto ports = ethdev::remote_ports(**c);  // the primary's ports
///   auto st = ethdev::remote_stats(**c, ports->front().id);
/// \endcode
///
/// The primary answers "ethdev.ports" (every port's PortStatus, its link
/// read now) beside its other ethdev requests ("ethdev.stats",
/// "ethdev.xstats": secondary.cpp), which it registers when it starts its
/// first port (ethdev::start); before that the remote calls fail with
/// EAGAIN saying so. Each reply is checked for size, version and
/// terminated strings before it is believed.
///
/// Thread-safety: as the control calls (ethdev.hpp): under the EAL lock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::eal::mp {
class Client;
}  // namespace vfiokit::eal::mp

namespace vfiokit::ethdev {

/// A port's configuration and state, as status() and remote_ports() give it.
struct PortStatus {
    std::uint16_t id = 0;
    DevInfo info;                  ///< driver's limits and capabilities
    MacAddr mac;
    std::string state;             ///< "attached", "configured", "started", "stopped"
    bool configured = false;       ///< configure() succeeded (and close() did not follow)
    bool started = false;
    std::uint16_t nb_rxq = 0, nb_txq = 0;
    std::uint32_t mtu = 0;
    std::uint64_t rx_offloads = 0, tx_offloads = 0, rss_hf = 0;  ///< as configured
    bool from_primary = false;     ///< a secondary's attached port (ethdev.hpp)
    /// Only from remote_ports(): the link as the primary's driver read it
    /// for the reply (nullopt when the driver could not).
    std::optional<Link> link;
};

/// This process's port. ENODEV naming the ports there are.
[[nodiscard]] Result<PortStatus> status(std::uint16_t port);

/// Another process's ports, over its multi-process channel. The primary's
/// own ports only (not those it attached from another primary).
[[nodiscard]] Result<std::vector<PortStatus>> remote_ports(eal::mp::Client& c);
/// The counters of port `port` of the process behind `c`, over its channel.
[[nodiscard]] Result<Stats> remote_stats(eal::mp::Client& c, std::uint16_t port);
/// The extended counters of port `port` of the process behind `c`.
[[nodiscard]] Result<std::vector<Xstat>> remote_xstats(eal::mp::Client& c, std::uint16_t port);

}  // namespace vfiokit::ethdev
