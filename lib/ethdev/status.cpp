// A port's status for tools: read here (status), served to other
// processes ("ethdev.ports") and read from them (remote_*): status.hpp.
#include "vfiokit/ethdev/status.hpp"

#include <cerrno>
#include <cstring>

#include "port_table.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/mp.hpp"
#include "vfiokit/eal/strformat.hpp"
#include "wire.hpp"

namespace vfiokit::ethdev {

using detail::Port;
using detail::State;
using namespace detail::wire;

namespace {

// The MTU a port has when nothing set it (PortConf::mtu 0).
constexpr std::uint32_t kDefaultMtu = 1500;

PortStatus status_of(std::uint16_t id, const Port& p) {
    PortStatus s;
    s.id = id;
    s.info = p.info;
    s.mac = p.ops->mac();
    s.state = detail::state_name(p.state);
    s.configured = p.state != State::attached;
    s.started = p.state == State::started;
    s.nb_rxq = p.nb_rxq;
    s.nb_txq = p.nb_txq;
    s.mtu = p.conf.mtu != 0 ? p.conf.mtu : kDefaultMtu;
    s.rx_offloads = p.conf.rx_offloads;
    s.tx_offloads = p.conf.tx_offloads;
    s.rss_hf = p.conf.rss_hf;
    s.from_primary = p.from_primary;
    return s;
}


WireStatus encode(const PortStatus& s, State state) {
    WireStatus w;
    std::memset(&w, 0, sizeof w);  // padding too: the bytes go to another process
    w.magic = kStatusMagic;
    w.version = kStatusVersion;
    w.id = s.id;
    w.state = static_cast<std::uint8_t>(state);
    w.nb_rxq = s.nb_rxq;
    w.nb_txq = s.nb_txq;
    w.mtu = s.mtu;
    w.rx_offloads = s.rx_offloads;
    w.tx_offloads = s.tx_offloads;
    w.rss_hf = s.rss_hf;
    encode_dev_info(w.dev, s.info, s.mac);
    if (s.link) {
        w.has_link = 1;
        w.link = {s.link->up, s.link->full_duplex, s.link->autoneg, 0, s.link->speed_mbps};
    }
    return w;
}

Result<PortStatus> decode(const WireStatus& w) {
    if (w.magic != kStatusMagic || w.version != kStatusVersion)
        return fail(Error(EPROTO, strformat("ethdev.ports: a record that is not a port status "
                                            "(version {})",
                                            kStatusVersion))
                        .hint("read the primary with the vfiokit build it runs"));
    if (w.id >= kMaxPorts || w.nb_rxq > kMaxQueues || w.nb_txq > kMaxQueues ||
        w.state > static_cast<std::uint8_t>(State::stopped) ||
        !names_terminated(w.dev))
        return fail(Error(EPROTO, strformat("ethdev.ports: a record that does not check (port "
                                            "{}, state {}, queues {}/{})",
                                            w.id, w.state, w.nb_rxq, w.nb_txq)));
    PortStatus s;
    const auto state = static_cast<State>(w.state);
    s.id = w.id;
    s.state = detail::state_name(state);
    s.configured = state != State::attached;
    s.started = state == State::started;
    s.nb_rxq = w.nb_rxq;
    s.nb_txq = w.nb_txq;
    s.mtu = w.mtu;
    s.rx_offloads = w.rx_offloads;
    s.tx_offloads = w.tx_offloads;
    s.rss_hf = w.rss_hf;
    decode_dev_info(w.dev, s.info, s.mac);
    if (w.has_link)
        s.link = Link{w.link.up != 0, w.link.speed_mbps, w.link.full_duplex != 0,
                      w.link.autoneg != 0};
    return s;
}

// The primary registers its ethdev requests when it starts its first
// port: an unknown request means it has not yet.
Error not_served(Error e, std::string_view request) {
    if (e.err() == ENOENT && e.message().find("unknown request") != std::string::npos)
        return Error(EAGAIN, std::string(request) + ": the primary serves no ports yet")
            .hint("it answers once it has started its first port (ethdev::start)");
    return e;
}

Result<std::string> ask(eal::mp::Client& c, std::string_view request, std::string_view payload) {
    auto r = c.request(request, payload);
    if (!r)
        return fail(not_served(std::move(r.error()), request));
    return std::move(r->payload);
}

}  // namespace

Result<PortStatus> status(std::uint16_t port) {
    auto g = detail::lock();
    auto p = detail::find_port(port, "status");
    if (!p)
        return fail(std::move(p.error()));
    return status_of(port, **p);
}

namespace detail {

void serve_status_requests() {
    eal::Eal* e = eal::Eal::current();
    if (e == nullptr || e->server() == nullptr)
        return;
    e->server()->handle(std::string(kPortsRequest), [](const eal::mp::Request&,
                                                       const eal::mp::Peer&)
                                                        -> Result<eal::mp::Reply> {
        auto g = lock();
        Table& t = table();
        eal::mp::Reply rep;
        for (std::uint16_t id = 0; id < kMaxPorts; ++id) {
            const Port& p = t.ports[id];
            if (!p.ops || p.from_primary)
                continue;
            PortStatus s = status_of(id, p);
            if (auto l = p.ops->link(false))
                s.link = *l;
            rep.payload += bytes_of(encode(s, p.state));
        }
        return rep;
    });
}

}  // namespace detail

Result<std::vector<PortStatus>> remote_ports(eal::mp::Client& c) {
    auto r = ask(c, kPortsRequest, {});
    if (!r)
        return fail(std::move(r.error()));
    if (r->size() % sizeof(WireStatus) != 0 || r->size() / sizeof(WireStatus) > kMaxPorts)
        return fail(Error(EPROTO, strformat("ethdev.ports: a reply of {} bytes is not up to {} "
                                            "records of {}",
                                            r->size(), kMaxPorts, sizeof(WireStatus)))
                        .hint("read the primary with the vfiokit build it runs"));
    std::vector<PortStatus> out;
    for (std::size_t off = 0; off < r->size(); off += sizeof(WireStatus)) {
        WireStatus w;
        std::memcpy(&w, r->data() + off, sizeof w);
        auto s = decode(w);
        if (!s)
            return fail(std::move(s.error()));
        out.push_back(std::move(*s));
    }
    return out;
}

Result<Stats> remote_stats(eal::mp::Client& c, std::uint16_t port) {
    auto r = ask(c, kStatsRequest, std::to_string(port));
    if (!r)
        return fail(std::move(r.error()));
    return decode_stats(*r);
}

Result<std::vector<Xstat>> remote_xstats(eal::mp::Client& c, std::uint16_t port) {
    auto r = ask(c, kXstatsRequest, std::to_string(port));
    if (!r)
        return fail(std::move(r.error()));
    return decode_xstats(*r);
}

}  // namespace vfiokit::ethdev
