// /ethdev/*: this process's ports, in the shapes of DPDK's ethdev
// telemetry (lib/ethdev/rte_ethdev_telemetry.c): the same keys where the
// meaning is the same. Where vfiokit does not know a value DPDK reports
// (rx_mbuf_size_min, scattered_rx, lro, numa_node, dev_flags,
// promiscuous, all_multicast, q_errors) the key is left out rather than
// guessed.
#include <cerrno>

#include "params.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/ethdev/status.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

namespace vfiokit::telemetry {

namespace {

// "N" or "N,rest": the port, and what follows its comma.
struct PortParams {
    std::uint16_t port = 0;
    std::string_view rest;
};
Result<PortParams> port_params(std::string_view cmd, std::string_view params) {
    const auto comma = params.find(',');
    auto n = detail::number_param(cmd, "port id", params.substr(0, comma), ethdev::kMaxPorts);
    if (!n)
        return fail(std::move(n.error()));
    PortParams p{static_cast<std::uint16_t>(*n), {}};
    if (comma != std::string_view::npos)
        p.rest = params.substr(comma + 1);
    return p;
}

// Commands that take a port id and nothing else refuse anything after it.
Result<std::uint16_t> port_only(std::string_view cmd, std::string_view params) {
    auto p = port_params(cmd, params);
    if (!p)
        return fail(std::move(p.error()));
    if (!p->rest.empty() || params.find(',') != std::string_view::npos)
        return fail(Error(EINVAL, std::string(cmd) + ": takes a port id only, not '" +
                                      std::string(params.substr(0, 32)) + "'"));
    return p->port;
}

Json queue_array(const std::array<std::uint64_t, ethdev::kMaxQueues>& q) {
    Json a = Json::array();
    for (std::uint64_t v : q)
        a.push(v);
    return a;
}

Result<Json> stats_json(std::string_view params) {
    auto port = port_only("/ethdev/stats", params);
    if (!port)
        return fail(std::move(port.error()));
    auto s = ethdev::stats_get(*port);
    if (!s)
        return fail(std::move(s.error()));
    Json d = Json::object();
    d.set("ipackets", s->ipackets).set("opackets", s->opackets);
    d.set("ibytes", s->ibytes).set("obytes", s->obytes);
    d.set("imissed", s->imissed).set("ierrors", s->ierrors).set("oerrors", s->oerrors);
    d.set("rx_nombuf", s->rx_nombuf);
    d.set("q_ipackets", queue_array(s->q_ipackets)).set("q_opackets", queue_array(s->q_opackets));
    d.set("q_ibytes", queue_array(s->q_ibytes)).set("q_obytes", queue_array(s->q_obytes));
    return d;
}

Result<Json> xstats_json(std::string_view params) {
    auto p = port_params("/ethdev/xstats", params);
    if (!p)
        return fail(std::move(p.error()));
    bool hide_zero = false;
    if (!p->rest.empty()) {
        if (p->rest == "hide_zero=true")
            hide_zero = true;
        else if (p->rest != "hide_zero=false")
            return fail(Error(EINVAL, "/ethdev/xstats: unknown parameter '" +
                                          std::string(p->rest.substr(0, 32)) + "'")
                            .hint("give a port id, then optionally hide_zero=true"));
    }
    auto xs = ethdev::xstats_get(p->port);
    if (!xs)
        return fail(std::move(xs.error()));
    Json d = Json::object();
    for (const auto& x : *xs)
        if (!hide_zero || x.value != 0)
            d.set(x.name, x.value);
    return d;
}

Result<Json> link_json(std::string_view params) {
    auto port = port_only("/ethdev/link_status", params);
    if (!port)
        return fail(std::move(port.error()));
    auto l = ethdev::link_get_nowait(*port);
    if (!l)
        return fail(std::move(l.error()));
    Json d = Json::object();
    if (!l->up)
        return d.set("status", "DOWN");
    d.set("status", "UP").set("speed", l->speed_mbps);
    d.set("duplex", l->full_duplex ? "full-duplex" : "half-duplex");
    return d;
}

Result<Json> info_json(std::string_view params) {
    auto port = port_only("/ethdev/info", params);
    if (!port)
        return fail(std::move(port.error()));
    auto s = ethdev::status(*port);
    if (!s)
        return fail(std::move(s.error()));
    Json d = Json::object();
    d.set("name", s->info.device_name);
    d.set("driver_name", s->info.driver_name);
    // DPDK's enum rte_eth_dev_state: 1 is RTE_ETH_DEV_ATTACHED.
    d.set("state", 1);
    d.set("nb_rx_queues", s->nb_rxq).set("nb_tx_queues", s->nb_txq);
    d.set("port_id", s->id).set("mtu", s->mtu);
    d.set("mac_addr", s->mac.str());
    d.set("dev_started", s->started ? 1 : 0).set("dev_configured", s->configured ? 1 : 0);
    // Per queue, DPDK's RTE_ETH_QUEUE_STATE_STARTED (1) or _STOPPED (0):
    // vfiokit starts and stops a port's queues together.
    Json rxq = Json::array(), txq = Json::array();
    for (unsigned q = 0; q < s->nb_rxq; ++q)
        rxq.push(s->started ? 1 : 0);
    for (unsigned q = 0; q < s->nb_txq; ++q)
        txq.push(s->started ? 1 : 0);
    d.set("rxq_state", std::move(rxq)).set("txq_state", std::move(txq));
    // Numbers, as DPDK 22.11 writes them (later versions write hex strings).
    d.set("rx_offloads", s->rx_offloads).set("tx_offloads", s->tx_offloads);
    d.set("ethdev_rss_hf", s->rss_hf);
    // vfiokit's: the state by name, and the driver's limits.
    d.set("port_state", s->state);
    d.set("max_rx_queues", s->info.max_rx_queues).set("max_tx_queues", s->info.max_tx_queues);
    d.set("min_mtu", s->info.min_mtu).set("max_mtu", s->info.max_mtu);
    return d;
}

}  // namespace

Result<void> add_ethdev_commands(Commands& c) {
    if (auto ok = c.add("/ethdev/list", "Returns list of available ethdev ports. Takes no parameters",
                        [](std::string_view) -> Result<Json> {
                            Json a = Json::array();
                            for (std::uint16_t id : ethdev::ports())
                                a.push(id);
                            return a;
                        });
        !ok)
        return ok;
    if (auto ok = c.add("/ethdev/stats",
                        "Returns the common stats for a port. Parameters: int port_id", stats_json);
        !ok)
        return ok;
    if (auto ok = c.add("/ethdev/xstats",
                        "Returns the extended stats for a port. Parameters: int port_id,"
                        "hide_zero=true|false(Optional for indicates hide zero xstats)",
                        xstats_json);
        !ok)
        return ok;
    if (auto ok = c.add("/ethdev/link_status",
                        "Returns the link status for a port. Parameters: int port_id", link_json);
        !ok)
        return ok;
    return c.add("/ethdev/info", "Returns the device info for a port. Parameters: int port_id",
                 info_json);
}

}  // namespace vfiokit::telemetry
