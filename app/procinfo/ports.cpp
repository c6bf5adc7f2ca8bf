#include "ports.hpp"

#include <cerrno>

#include "vfiokit/eal/format.hpp"
#include "vfiokit/eal/mp.hpp"
#include "vfiokit/eal/strformat.hpp"
#include "vfiokit/ethdev/status.hpp"
#include "vfiokit/telemetry/json.hpp"

namespace vfiokit::procinfo {

namespace {

using ethdev::PortStatus;
using telemetry::Json;

const std::string kBorder = "########################";

std::string link_text(const PortStatus& p) {
    if (!p.link)
        return "unknown (the driver could not read it)";
    return p.link->str();
}

void show_port_text(std::string& out, const PortStatus& p) {
    const auto& i = p.info;
    out += strformat("  - Port {} ({}, {}): {}\n", p.id, i.device_name, i.driver_name, p.state);
    out += strformat("\t -- MAC {}, MTU {} (driver range {}..{})\n", p.mac.str(), p.mtu,
                     i.min_mtu, i.max_mtu);
    out += "\t -- link: " + link_text(p) + "\n";
    out += strformat("\t -- queues: rx {}, tx {} (driver maximum {}, {}); descriptors rx "
                     "{}..{}, tx {}..{}\n",
                     p.nb_rxq, p.nb_txq, i.max_rx_queues, i.max_tx_queues, i.rx_desc.min,
                     i.rx_desc.max, i.tx_desc.min, i.tx_desc.max);
    out += strformat("\t -- offloads: rx {} (capable {}), tx {} (capable {}), rss {} "
                     "(capable {})\n",
                     hex(p.rx_offloads), hex(i.rx_offload_capa), hex(p.tx_offloads),
                     hex(i.tx_offload_capa), hex(p.rss_hf), hex(i.rss_offload_capa));
    out += strformat("\t -- interrupts: rx queue {}, link state {}\n",
                     i.rxq_interrupt ? "yes" : "no", i.lsc_interrupt ? "yes" : "no");
}

void stats_text(std::string& out, const PortStatus& p, const ethdev::Stats& s) {
    out += strformat("\n  {} NIC statistics for port {:<2} {}\n", kBorder, p.id, kBorder);
    out += strformat("  RX-packets: {:<10}  RX-missed: {:<10}  RX-errors: {:<10}  RX-bytes: {}\n",
                     s.ipackets, s.imissed, s.ierrors, s.ibytes);
    out += strformat("  RX-nombuf:  {}\n", s.rx_nombuf);
    out += strformat("  TX-packets: {:<10}  TX-errors: {:<10}  TX-bytes:  {}\n", s.opackets,
                     s.oerrors, s.obytes);
    for (unsigned q = 0; q < p.nb_rxq; ++q)
        out += strformat("  Stats reg {:>2} RX-packets: {:<10}  RX-bytes: {}\n", q,
                         s.q_ipackets[q], s.q_ibytes[q]);
    for (unsigned q = 0; q < p.nb_txq; ++q)
        out += strformat("  Stats reg {:>2} TX-packets: {:<10}  TX-bytes: {}\n", q,
                         s.q_opackets[q], s.q_obytes[q]);
    out += "  " + kBorder + "############################" + kBorder + "\n";
}

void xstats_text(std::string& out, const PortStatus& p, const std::vector<ethdev::Xstat>& xs) {
    out += strformat("###### NIC extended statistics for port {:<2} #########\n", p.id);
    out += "#################################################\n";
    for (const auto& x : xs)
        out += strformat("{}: {}\n", x.name, x.value);
}

Json port_json(const PortStatus& p) {
    const auto& i = p.info;
    Json d = Json::object();
    d.set("port_id", p.id).set("name", i.device_name).set("driver_name", i.driver_name);
    d.set("port_state", p.state).set("mac_addr", p.mac.str()).set("mtu", p.mtu);
    d.set("nb_rx_queues", p.nb_rxq).set("nb_tx_queues", p.nb_txq);
    d.set("max_rx_queues", i.max_rx_queues).set("max_tx_queues", i.max_tx_queues);
    d.set("rx_offloads", p.rx_offloads).set("tx_offloads", p.tx_offloads);
    d.set("ethdev_rss_hf", p.rss_hf);
    d.set("rx_offload_capa", i.rx_offload_capa).set("tx_offload_capa", i.tx_offload_capa);
    Json l = Json::object();
    if (!p.link)
        l = Json();
    else if (!p.link->up)
        l.set("status", "DOWN");
    else
        l.set("status", "UP").set("speed", p.link->speed_mbps).set("duplex",
                                                                  p.link->full_duplex
                                                                      ? "full-duplex"
                                                                      : "half-duplex");
    d.set("link_status", std::move(l));
    return d;
}

Json stats_json(const ethdev::Stats& s) {
    Json d = Json::object();
    d.set("ipackets", s.ipackets).set("opackets", s.opackets).set("ibytes", s.ibytes);
    d.set("obytes", s.obytes).set("imissed", s.imissed).set("ierrors", s.ierrors);
    d.set("oerrors", s.oerrors).set("rx_nombuf", s.rx_nombuf);
    return d;
}

}  // namespace

Result<std::string> report_ports(eal::mp::Client& c, const PortReport& r) {
    auto ports = ethdev::remote_ports(c);
    if (!ports)
        return fail(std::move(ports.error()));
    std::vector<PortStatus> chosen;
    for (auto& p : *ports)
        if (p.id < 64 && (r.portmask >> p.id & 1))
            chosen.push_back(std::move(p));
    if (chosen.empty())
        return fail(Error(ENOENT, strformat("the primary (pid {}) has {} port(s), none in the "
                                            "port mask {}",
                                            c.primary_pid(), ports->size(), hex(r.portmask)))
                        .hint("-p takes a hex mask of port ids: 0x1 is port 0"));
    std::string out;
    Json doc = Json::object();
    Json arr = Json::array();
    if (r.show_port && !r.json)
        out += "\n  - Ports of the primary (pid " + std::to_string(c.primary_pid()) + ")\n";
    for (const PortStatus& p : chosen) {
        Json pj = port_json(p);
        if (r.show_port && !r.json)
            show_port_text(out, p);
        if (r.stats) {
            auto s = ethdev::remote_stats(c, p.id);
            if (!s)
                return fail(std::move(s.error()).context(strformat("port {}", p.id)));
            if (r.json)
                pj.set("stats", stats_json(*s));
            else
                stats_text(out, p, *s);
        }
        if (r.xstats) {
            auto xs = ethdev::remote_xstats(c, p.id);
            if (!xs)
                return fail(std::move(xs.error()).context(strformat("port {}", p.id)));
            if (r.json) {
                Json x = Json::object();
                for (const auto& e : *xs)
                    x.set(e.name, e.value);
                pj.set("xstats", std::move(x));
            } else {
                xstats_text(out, p, *xs);
            }
        }
        arr.push(std::move(pj));
    }
    if (r.json) {
        doc.set("format", "vfiokit-procinfo-ports").set("version", 1);
        doc.set("primary_pid", static_cast<std::int64_t>(c.primary_pid()));
        doc.set("ports", std::move(arr));
        return doc.dump() + "\n";
    }
    return out;
}

}  // namespace vfiokit::procinfo
