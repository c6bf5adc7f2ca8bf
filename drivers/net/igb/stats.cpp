// IgbPort's counters: the statistics registers (8.19) clear on read, so
// every read adds to the port's totals; PortBase's stats() and xstats()
// read them all first, stats_reset() reads them (clearing) and zeroes the
// totals.
#include <algorithm>
#include <vector>

#include "port.hpp"

namespace vfiokit::igb {

namespace {

// DPDK's igb xstats names (drivers/net/e1000/igb_ethdev.c) for the same
// registers, in the same order, so tools that know them find them.
constexpr HwCounter kCounters[] = {
    {"rx_crc_errors", stat::kCrcerrs, false},
    {"rx_align_errors", stat::kAlgnerrc, false},
    {"rx_symbol_errors", stat::kSymerrs, false},
    {"rx_missed_packets", stat::kMpc, false},
    {"tx_single_collision_packets", stat::kScc, false},
    {"tx_multiple_collision_packets", stat::kMcc, false},
    {"tx_excessive_collision_packets", stat::kEcol, false},
    {"tx_late_collisions", stat::kLatecol, false},
    {"tx_total_collisions", stat::kColc, false},
    {"tx_deferred_packets", stat::kDc, false},
    {"tx_no_carrier_sense_packets", stat::kTncrs, false},
    {"rx_carrier_ext_errors", stat::kCexterr, false},
    {"rx_length_errors", stat::kRlec, false},
    {"rx_xon_packets", stat::kXonrxc, false},
    {"tx_xon_packets", stat::kXontxc, false},
    {"rx_xoff_packets", stat::kXoffrxc, false},
    {"tx_xoff_packets", stat::kXofftxc, false},
    {"rx_flow_control_unsupported_packets", stat::kFcruc, false},
    {"rx_size_64_packets", stat::kPrc64, false},
    {"rx_size_65_to_127_packets", stat::kPrc127, false},
    {"rx_size_128_to_255_packets", stat::kPrc255, false},
    {"rx_size_256_to_511_packets", stat::kPrc511, false},
    {"rx_size_512_to_1023_packets", stat::kPrc1023, false},
    {"rx_size_1024_to_max_packets", stat::kPrc1522, false},
    {"rx_broadcast_packets", stat::kBprc, false},
    {"rx_multicast_packets", stat::kMprc, false},
    {"rx_undersize_errors", stat::kRuc, false},
    {"rx_fragment_errors", stat::kRfc, false},
    {"rx_oversize_errors", stat::kRoc, false},
    {"rx_jabber_errors", stat::kRjc, false},
    {"rx_management_packets", stat::kMgtprc, false},
    {"rx_management_dropped", stat::kMgtpdc, false},
    {"tx_management_packets", stat::kMgtptc, false},
    {"rx_total_packets", stat::kTpr, false},
    {"tx_total_packets", stat::kTpt, false},
    {"rx_total_bytes", stat::kTorl, true},
    {"tx_total_bytes", stat::kTotl, true},
    {"tx_size_64_packets", stat::kPtc64, false},
    {"tx_size_65_to_127_packets", stat::kPtc127, false},
    {"tx_size_128_to_255_packets", stat::kPtc255, false},
    {"tx_size_256_to_511_packets", stat::kPtc511, false},
    {"tx_size_512_to_1023_packets", stat::kPtc1023, false},
    {"tx_size_1023_to_max_packets", stat::kPtc1522, false},
    {"tx_multicast_packets", stat::kMptc, false},
    {"tx_broadcast_packets", stat::kBptc, false},
    {"tx_tso_packets", stat::kTsctc, false},
    {"tx_tso_errors", stat::kTsctfc, false},
    {"rx_sent_to_host_packets", stat::kRpthc, false},
    {"tx_sent_by_host_packets", stat::kHgptc, false},
    {"rx_code_violation_packets", stat::kScvpc, false},
    {"interrupt_assert_count", stat::kIac, false},
    // Not xstats of DPDK's igb (its generic rx_good_* come from these):
    // what stats() reports.
    {nullptr, stat::kGprc, false},
    {nullptr, stat::kGptc, false},
    {nullptr, stat::kGorcl, true},
    {nullptr, stat::kGotcl, true},
    {nullptr, stat::kRxerrc, false},
};

// The slot of the counter at register Off; a register missing from the
// table does not compile (a run-time miss once summed another counter).
template <std::uint32_t Off>
constexpr std::size_t kSlot = [] {
    std::size_t i = 0;
    while (i < std::size(kCounters) && kCounters[i].offset != Off)
        ++i;
    return i;
}();

template <std::uint32_t Off>
std::uint64_t total(const std::vector<std::uint64_t>& hw) {
    static_assert(kSlot<Off> < std::size(kCounters), "register not in kCounters");
    return hw[kSlot<Off>];
}

}  // namespace

std::span<const HwCounter> hw_counters() { return kCounters; }

void IgbPort::accumulate_counters() {
    for (std::size_t i = 0; i < std::size(kCounters); ++i) {
        const HwCounter& c = kCounters[i];
        std::uint64_t v = bar_.read<std::uint32_t>(c.offset);
        // The high word last: reading it clears both halves (8.19).
        if (c.wide)
            v |= std::uint64_t{bar_.read<std::uint32_t>(c.offset + 4)} << 32;
        hw_[i] += v;
    }
}

void IgbPort::hw_stats(ethdev::Stats& s) const {
    s.ipackets = total<stat::kGprc>(hw_);
    s.opackets = total<stat::kGptc>(hw_);
    // The octet counters include the 4-byte CRC of every frame (8.19.x);
    // ethdev counts frames without it, as DPDK's igb does.
    const std::uint64_t gorc = total<stat::kGorcl>(hw_), gotc = total<stat::kGotcl>(hw_);
    s.ibytes = gorc - std::min(gorc, 4 * s.ipackets);
    s.obytes = gotc - std::min(gotc, 4 * s.opackets);
    s.imissed = total<stat::kMpc>(hw_);
    s.ierrors = total<stat::kCrcerrs>(hw_) + total<stat::kRlec>(hw_) + total<stat::kRxerrc>(hw_) +
                total<stat::kAlgnerrc>(hw_) + total<stat::kRuc>(hw_) + total<stat::kRoc>(hw_) +
                total<stat::kCexterr>(hw_);
    s.oerrors = total<stat::kEcol>(hw_) + total<stat::kLatecol>(hw_);
}

}  // namespace vfiokit::igb
