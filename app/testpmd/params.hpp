// testpmd's own options (after the EAL's and "--"), in DPDK testpmd's
// names. One table (params.cpp) parses them and prints the usage.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::testpmd {

enum class FwdMode { io, mac, macswap, txonly, rxonly, icmpecho, flowgen };
inline constexpr std::array<FwdMode, 7> kFwdModes = {
    FwdMode::io,     FwdMode::mac,      FwdMode::macswap, FwdMode::txonly,
    FwdMode::rxonly, FwdMode::icmpecho, FwdMode::flowgen};
[[nodiscard]] std::string_view to_string(FwdMode m);
[[nodiscard]] std::optional<FwdMode> parse_fwd_mode(std::string_view s);
// "io mac macswap txonly rxonly icmpecho flowgen"
[[nodiscard]] std::string fwd_mode_names();

inline constexpr std::uint16_t kMaxBurst = 512;  // DPDK's MAX_PKT_BURST

struct Params {
    bool interactive = false;
    bool auto_start = false;
    bool tx_first = false;
    bool help = false;
    FwdMode mode = FwdMode::io;
    unsigned nb_cores = 1;
    std::uint16_t rxq = 1, txq = 1;
    std::uint16_t rxd = 512, txd = 512;   // DPDK's RX_DESC_DEFAULT / TX_DESC_DEFAULT
    std::uint16_t burst = 32;              // DPDK's DEF_PKT_BURST
    std::uint16_t txpkts = 64;             // txonly frame length, bytes (no CRC)
    unsigned stats_period = 0;             // seconds; 0: none
    unsigned total_num_mbufs = 0;          // 0: enough for the rings (Testpmd::pool_size)
    std::uint16_t mbuf_size = 2048 + 128;  // data room, headroom included
    unsigned mbcache = 250;                // DPDK's DEF_MBUF_CACHE
    // --eth-peer: the destination MAC of mac/txonly/flowgen per port.
    // Unset ports get DPDK's default 02:00:00:00:00:PORT.
    std::array<std::optional<ethdev::MacAddr>, ethdev::kMaxPorts> eth_peer{};
    // Multi-process (DPDK testpmd's --num-procs/--proc-id, as its
    // symmetric_mp example): every process gives the same --rxq/--txq,
    // the primary sets the ports up with that many queues, and process K
    // of N forwards queues [K*rxq/N, (K+1)*rxq/N). Secondaries (EAL
    // --proc-type=secondary) attach to the primary's ports and pool.
    unsigned num_procs = 1;
    unsigned proc_id = 0;
    // Set by main from the EAL's role: this process is a secondary.
    bool secondary = false;
};

// Parses argv[0..argc) (the application's arguments, after "--"). Errors
// name the option and what it accepts; an unknown option is refused with
// the list of options.
[[nodiscard]] Result<Params> parse_params(int argc, const char* const* argv);
[[nodiscard]] std::string params_usage();

}  // namespace vfiokit::testpmd
