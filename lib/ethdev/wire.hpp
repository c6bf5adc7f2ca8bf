// The records ethdev's multi-process requests carry (secondary.cpp: a
// secondary's attached ports; remote.cpp: tools reading a primary's ports).
// Both ends are builds of this header (a secondary runs the primary's
// vfiokit): records are fixed-size structs copied as bytes, and the reader
// checks the size, the mark and version, and the strings' terminators.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::ethdev::detail::wire {

constexpr std::string_view kPortRequest = "ethdev.port";
constexpr std::string_view kStatsRequest = "ethdev.stats";
constexpr std::string_view kXstatsRequest = "ethdev.xstats";
constexpr std::string_view kLinkRequest = "ethdev.link";
constexpr std::string_view kPortsRequest = "ethdev.ports";
constexpr std::uint32_t kPortMagic = 0x50485445;  // "ETHP"
constexpr std::uint16_t kPortVersion = 1;

struct WireLimits {
    std::uint16_t min, max, align;
};
// A port's DevInfo and MAC, as both replies below carry them.
struct WireDevInfo {
    std::uint64_t rx_offload_capa, tx_offload_capa, rss_offload_capa;
    std::uint32_t min_mtu, max_mtu, max_rx_pktlen;
    std::uint16_t max_rx_queues, max_tx_queues;
    WireLimits rx_desc, tx_desc;
    std::uint8_t mac[6];
    std::uint8_t rxq_interrupt, lsc_interrupt;
    char driver_name[48];
    char device_name[48];
};
static_assert(std::is_trivially_copyable_v<WireDevInfo>);

struct WirePort {
    std::uint32_t magic;
    std::uint16_t version;
    std::uint16_t id;
    std::uint16_t nb_rxq, nb_txq;
    std::int32_t pid;
    std::uint64_t rxq[kMaxQueues], txq[kMaxQueues];
    std::uint64_t driver_data;
    WireDevInfo dev;
};
static_assert(std::is_trivially_copyable_v<WirePort>);
static_assert(std::is_trivially_copyable_v<Stats>);

struct WireLink {
    std::uint8_t up, full_duplex, autoneg, pad;
    std::uint32_t speed_mbps;
};

// One port in the "ethdev.ports" reply (status.cpp): the reply is a run
// of these, one per port.
constexpr std::uint32_t kStatusMagic = 0x53485445;  // "ETHS"
constexpr std::uint16_t kStatusVersion = 1;

struct WireStatus {
    std::uint32_t magic;
    std::uint16_t version;
    std::uint16_t id;
    std::uint8_t state;  // detail::State
    std::uint8_t has_link;
    std::uint16_t nb_rxq, nb_txq;
    std::uint32_t mtu;
    std::uint64_t rx_offloads, tx_offloads, rss_hf;
    WireDevInfo dev;
    WireLink link;
};
static_assert(std::is_trivially_copyable_v<WireStatus>);

template <class T>
std::string bytes_of(const T& v) {
    return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T>
bool from_bytes(std::string_view s, T& out) {
    if (s.size() != sizeof out)
        return false;
    std::memcpy(&out, s.data(), sizeof out);
    return true;
}

inline void copy_name(char (&dst)[48], const std::string& s) {
    std::memset(dst, 0, sizeof dst);
    std::memcpy(dst, s.data(), std::min(s.size(), sizeof dst - 1));
}

// `w` filled from `i` and `mac` (the record already zeroed by the caller).
inline void encode_dev_info(WireDevInfo& w, const DevInfo& i, const MacAddr& mac) {
    w.rx_offload_capa = i.rx_offload_capa;
    w.tx_offload_capa = i.tx_offload_capa;
    w.rss_offload_capa = i.rss_offload_capa;
    w.min_mtu = i.min_mtu;
    w.max_mtu = i.max_mtu;
    w.max_rx_pktlen = i.max_rx_pktlen;
    w.max_rx_queues = i.max_rx_queues;
    w.max_tx_queues = i.max_tx_queues;
    w.rx_desc = {i.rx_desc.min, i.rx_desc.max, i.rx_desc.align};
    w.tx_desc = {i.tx_desc.min, i.tx_desc.max, i.tx_desc.align};
    std::memcpy(w.mac, mac.bytes.data(), 6);
    w.rxq_interrupt = i.rxq_interrupt;
    w.lsc_interrupt = i.lsc_interrupt;
    copy_name(w.driver_name, i.driver_name);
    copy_name(w.device_name, i.device_name);
}
// Whether both names end inside their fields (a reader checks before decoding).
inline bool names_terminated(const WireDevInfo& w) {
    return w.driver_name[sizeof w.driver_name - 1] == '\0' &&
           w.device_name[sizeof w.device_name - 1] == '\0';
}
inline void decode_dev_info(const WireDevInfo& w, DevInfo& i, MacAddr& mac) {
    i.driver_name = w.driver_name;
    i.device_name = w.device_name;
    i.rx_offload_capa = w.rx_offload_capa;
    i.tx_offload_capa = w.tx_offload_capa;
    i.rss_offload_capa = w.rss_offload_capa;
    i.min_mtu = w.min_mtu;
    i.max_mtu = w.max_mtu;
    i.max_rx_pktlen = w.max_rx_pktlen;
    i.max_rx_queues = w.max_rx_queues;
    i.max_tx_queues = w.max_tx_queues;
    i.rx_desc = {w.rx_desc.min, w.rx_desc.max, w.rx_desc.align};
    i.tx_desc = {w.tx_desc.min, w.tx_desc.max, w.tx_desc.align};
    i.rxq_interrupt = w.rxq_interrupt != 0;
    i.lsc_interrupt = w.lsc_interrupt != 0;
    std::memcpy(mac.bytes.data(), w.mac, 6);
}

// xstats as "name\tvalue\n" lines.
inline std::string encode_xstats(const std::vector<Xstat>& xs) {
    std::string out;
    for (const Xstat& x : xs)
        out += x.name + "\t" + std::to_string(x.value) + "\n";
    return out;
}
inline Result<std::vector<Xstat>> decode_xstats(std::string_view rest) {
    std::vector<Xstat> out;
    while (!rest.empty()) {
        const auto nl = rest.find('\n');
        const auto tab = rest.find('\t');
        if (nl == std::string_view::npos || tab == std::string_view::npos || tab > nl)
            return fail(Error(EPROTO, "ethdev.xstats: a malformed line"));
        Xstat x;
        x.name = std::string(rest.substr(0, tab));
        auto [end, ec] = std::from_chars(rest.data() + tab + 1, rest.data() + nl, x.value);
        if (ec != std::errc() || end != rest.data() + nl)
            return fail(Error(EPROTO, "ethdev.xstats: a malformed value for " + x.name));
        out.push_back(std::move(x));
        rest.remove_prefix(nl + 1);
    }
    return out;
}
inline Result<Stats> decode_stats(std::string_view s) {
    Stats st;
    if (!from_bytes(s, st))
        return fail(Error(EPROTO, "ethdev.stats: a reply of " + std::to_string(s.size()) +
                                      " bytes, not " + std::to_string(sizeof st)));
    return st;
}

}  // namespace vfiokit::ethdev::detail::wire
