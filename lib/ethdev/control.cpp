// The control calls that check the port and pass through to the driver:
// link, promiscuous/all-multicast, MAC, MTU, stats, interrupts.
#include <cerrno>
#include <chrono>
#include <thread>
#include <utility>

#include "port_table.hpp"
#include "vfiokit/eal/strformat.hpp"

namespace vfiokit::ethdev {

using detail::Port;
using detail::State;

namespace {

// Runs fn(port) under the lock on a port that exists, with errors in the
// port's words.
template <class F>
auto with_port(std::uint16_t id, std::string_view call, F&& fn)
    -> decltype(fn(std::declval<std::uint16_t>(), std::declval<Port&>())) {
    auto g = detail::lock();
    auto p = detail::find_port(id, call);
    if (!p)
        return fail(std::move(p.error()));
    return fn(id, **p);
}

template <class T>
Result<T> in_port(std::uint16_t id, const Port& p, std::string_view call, Result<T> r) {
    if (!r)
        return fail(std::move(r.error()).context(detail::describe(id, p) + ": " +
                                                 std::string(call)));
    return r;
}

Result<void> check_rxq_intr(std::uint16_t id, const Port& p, std::uint16_t q,
                            std::string_view call) {
    if (!p.conf.rxq_interrupt || p.state == State::attached)
        return fail(detail::port_error(id, p, EINVAL,
                                       strformat("{}: rx interrupts are not configured", call),
                                       "configure the port with PortConf::rxq_interrupt"));
    if (q >= p.nb_rxq)
        return fail(detail::port_error(
            id, p, EINVAL,
            strformat("{}: rx queue {}: the port has {} rx queue(s)", call, q, p.nb_rxq)));
    return {};
}

}  // namespace

Result<Link> link_get_nowait(std::uint16_t port) {
    return with_port(port, "link_get_nowait", [](std::uint16_t id, Port& p) -> Result<Link> {
        return in_port(id, p, "link", p.ops->link(false));
    });
}

// Waits without holding the lock across the sleep (other control calls go
// on meanwhile); the port is looked up again each time, by generation, so
// a port closed and re-attached meanwhile is not mistaken for this one.
Result<Link> link_get(std::uint16_t port) {
    using namespace std::chrono;
    const auto deadline = steady_clock::now() + seconds(9);
    std::uint64_t generation = 0;
    for (;;) {
        auto l = with_port(port, "link_get", [&](std::uint16_t id, Port& p) -> Result<Link> {
            if (generation == 0)
                generation = p.generation;
            else if (p.generation != generation)
                return fail(detail::port_error(id, p, ENODEV,
                                               "link_get: the port was closed while waiting"));
            return in_port(id, p, "link", p.ops->link(false));
        });
        if (!l || l->up || steady_clock::now() >= deadline)
            return l;
        std::this_thread::sleep_for(milliseconds(100));
    }
}

Result<void> promiscuous_enable(std::uint16_t port) {
    return with_port(port, "promiscuous_enable", [](std::uint16_t id, Port& p) -> Result<void> {
        if (auto no = detail::refuse_in_secondary(id, p, "promiscuous_enable"); !no)
            return no;
        return in_port(id, p, "promiscuous on", p.ops->promiscuous(true));
    });
}
Result<void> promiscuous_disable(std::uint16_t port) {
    return with_port(port, "promiscuous_disable", [](std::uint16_t id, Port& p) -> Result<void> {
        if (auto no = detail::refuse_in_secondary(id, p, "promiscuous_disable"); !no)
            return no;
        return in_port(id, p, "promiscuous off", p.ops->promiscuous(false));
    });
}
Result<void> allmulticast_enable(std::uint16_t port) {
    return with_port(port, "allmulticast_enable", [](std::uint16_t id, Port& p) -> Result<void> {
        if (auto no = detail::refuse_in_secondary(id, p, "allmulticast_enable"); !no)
            return no;
        return in_port(id, p, "all-multicast on", p.ops->allmulticast(true));
    });
}
Result<void> allmulticast_disable(std::uint16_t port) {
    return with_port(port, "allmulticast_disable", [](std::uint16_t id, Port& p) -> Result<void> {
        if (auto no = detail::refuse_in_secondary(id, p, "allmulticast_disable"); !no)
            return no;
        return in_port(id, p, "all-multicast off", p.ops->allmulticast(false));
    });
}

Result<MacAddr> macaddr_get(std::uint16_t port) {
    return with_port(port, "macaddr_get",
                     [](std::uint16_t, Port& p) -> Result<MacAddr> { return p.ops->mac(); });
}

Result<void> macaddr_set(std::uint16_t port, const MacAddr& a) {
    return with_port(port, "macaddr_set", [&](std::uint16_t id, Port& p) -> Result<void> {
        if (auto no = detail::refuse_in_secondary(id, p, "macaddr_set"); !no)
            return no;
        if (a.bytes[0] & 1)
            return fail(detail::port_error(id, p, EINVAL,
                                           "macaddr_set: " + a.str() + " is a multicast address",
                                           "a port's own address must be unicast"));
        return in_port(id, p, "set MAC " + a.str(), p.ops->set_mac(a));
    });
}

Result<void> mtu_set(std::uint16_t port, std::uint32_t mtu) {
    return with_port(port, "mtu_set", [&](std::uint16_t id, Port& p) -> Result<void> {
        if (auto no = detail::refuse_in_secondary(id, p, "mtu_set"); !no)
            return no;
        if (mtu < p.info.min_mtu || mtu > p.info.max_mtu)
            return fail(detail::port_error(
                id, p, EINVAL,
                strformat("mtu_set: MTU {} is outside [{}, {}]", mtu, p.info.min_mtu,
                            p.info.max_mtu)));
        auto r = in_port(id, p, strformat("set MTU {}", mtu), p.ops->set_mtu(mtu));
        if (r)
            p.conf.mtu = mtu;
        return r;
    });
}

Result<Stats> stats_get(std::uint16_t port) {
    return with_port(port, "stats_get", [](std::uint16_t id, Port& p) {
        return in_port(id, p, "stats", p.ops->stats());
    });
}
Result<void> stats_reset(std::uint16_t port) {
    return with_port(port, "stats_reset", [](std::uint16_t id, Port& p) -> Result<void> {
        if (auto no = detail::refuse_in_secondary(id, p, "stats_reset"); !no)
            return no;
        return in_port(id, p, "stats reset", p.ops->stats_reset());
    });
}
Result<std::vector<Xstat>> xstats_get(std::uint16_t port) {
    return with_port(port, "xstats_get", [](std::uint16_t id, Port& p) {
        return in_port(id, p, "xstats", p.ops->xstats());
    });
}

Result<void> rx_intr_enable(std::uint16_t port, std::uint16_t q) {
    return with_port(port, "rx_intr_enable", [&](std::uint16_t id, Port& p) -> Result<void> {
        if (auto no = detail::refuse_in_secondary(id, p, "rx_intr_enable"); !no)
            return no;
        if (auto ok = check_rxq_intr(id, p, q, "rx_intr_enable"); !ok)
            return ok;
        return in_port(id, p, "rx_intr_enable", p.ops->rx_intr_enable(q));
    });
}
Result<void> rx_intr_disable(std::uint16_t port, std::uint16_t q) {
    return with_port(port, "rx_intr_disable", [&](std::uint16_t id, Port& p) -> Result<void> {
        if (auto no = detail::refuse_in_secondary(id, p, "rx_intr_disable"); !no)
            return no;
        if (auto ok = check_rxq_intr(id, p, q, "rx_intr_disable"); !ok)
            return ok;
        return in_port(id, p, "rx_intr_disable", p.ops->rx_intr_disable(q));
    });
}
Result<int> rx_intr_fd(std::uint16_t port, std::uint16_t q) {
    return with_port(port, "rx_intr_fd", [&](std::uint16_t id, Port& p) -> Result<int> {
        if (auto no = detail::refuse_in_secondary(id, p, "rx_intr_fd"); !no)
            return fail(std::move(no.error()));
        if (auto ok = check_rxq_intr(id, p, q, "rx_intr_fd"); !ok)
            return fail(std::move(ok.error()));
        return in_port(id, p, "rx_intr_fd", p.ops->rx_intr_fd(q));
    });
}
Result<int> lsc_fd(std::uint16_t port) {
    return with_port(port, "lsc_fd", [](std::uint16_t id, Port& p) -> Result<int> {
        if (auto no = detail::refuse_in_secondary(id, p, "lsc_fd"); !no)
            return fail(std::move(no.error()));
        if (!p.conf.lsc_interrupt || p.state == State::attached)
            return fail(detail::port_error(id, p, EINVAL,
                                           "lsc_fd: link-state interrupts are not configured",
                                           "configure the port with PortConf::lsc_interrupt"));
        return in_port(id, p, "lsc_fd", p.ops->lsc_fd());
    });
}

}  // namespace vfiokit::ethdev
