// The port table and its state machine: attach/detach, configure, queue
// setup, start, stop, close. Every argument is checked against the
// driver's DevInfo here, so drivers see only valid requests.
#include <algorithm>
#include <atomic>
#include <cerrno>

#include "port_table.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/strformat.hpp"

namespace vfiokit::ethdev {

FastPath fast_path[kMaxPorts];

std::uint16_t idle_rx_burst(void*, mbuf::Mbuf**, std::uint16_t) { return 0; }
std::uint16_t idle_tx_burst(void*, mbuf::Mbuf**, std::uint16_t) { return 0; }

Result<int> PortOps::rx_intr_fd(std::uint16_t) {
    return fail(Error(ENOTSUP, "rx interrupts: the driver has none"));
}
Result<void> PortOps::rx_intr_enable(std::uint16_t) {
    return fail(Error(ENOTSUP, "rx interrupts: the driver has none"));
}
Result<void> PortOps::rx_intr_disable(std::uint16_t) {
    return fail(Error(ENOTSUP, "rx interrupts: the driver has none"));
}
Result<int> PortOps::lsc_fd() {
    return fail(Error(ENOTSUP, "link-state interrupts: the driver has none"));
}

namespace detail {

const char* state_name(State s) {
    switch (s) {
    case State::attached: return "attached";
    case State::configured: return "configured";
    case State::started: return "started";
    case State::stopped: return "stopped";
    }
    return "?";
}

Table& table() {
    static Table* t = new Table();
    return *t;
}

std::unique_lock<RecursiveLock> lock() {
    if (eal::Eal* e = eal::Eal::current())
        return std::unique_lock(e->vfio().control_lock());
    static RecursiveLock* own = new RecursiveLock();
    return std::unique_lock(*own);
}

std::string describe(std::uint16_t id, const Port& p) {
    return strformat("port {} ({}, {}, {})", id, p.info.device_name, p.info.driver_name,
                       state_name(p.state));
}

Error port_error(std::uint16_t id, const Port& p, int err, std::string what,
                 std::string_view hint) {
    Error e(err, std::move(what));
    e.context(describe(id, p));
    if (!hint.empty())
        e.hint(hint);
    return e;
}

Result<Port*> find_port(std::uint16_t id, std::string_view call) {
    Table& t = table();
    if (id < kMaxPorts && t.ports[id].ops)
        return &t.ports[id];
    std::string have;
    for (std::uint16_t i = 0; i < kMaxPorts; ++i)
        if (t.ports[i].ops)
            have += (have.empty() ? "" : ", ") + std::to_string(i);
    Error e(ENODEV, strformat("{}: port {}: no such port", call, id));
    e.hint(have.empty() ? "no port is attached: name the devices with -a and check that a "
                          "driver probed them"
                        : "attached ports: " + have);
    return fail(std::move(e));
}

}  // namespace detail

using detail::Port;
using detail::State;

namespace {

// Puts a port's idle functions back. The queue pointers stay (see
// FastPath): a poll loop that loaded the driver's function just before
// must still find that function's queue.
void fast_path_idle(std::uint16_t id) {
    FastPath& f = fast_path[id];
    std::atomic_ref<RxBurst>(f.rx).store(idle_rx_burst, std::memory_order_release);
    std::atomic_ref<TxBurst>(f.tx).store(idle_tx_burst, std::memory_order_release);
}

void fast_path_set(std::uint16_t id, const Port& p, RxBurst rx, TxBurst tx) {
    FastPath& f = fast_path[id];
    for (std::size_t q = 0; q < kMaxQueues; ++q) {
        std::atomic_ref<void*>(f.rxq[q]).store(p.rxq[q], std::memory_order_relaxed);
        std::atomic_ref<void*>(f.txq[q]).store(p.txq[q], std::memory_order_relaxed);
    }
    std::atomic_ref<RxBurst>(f.rx).store(rx, std::memory_order_release);
    std::atomic_ref<TxBurst>(f.tx).store(tx, std::memory_order_release);
}

void release_queues(Port& p) {
    for (std::uint16_t q = 0; q < kMaxQueues; ++q) {
        if (p.rx_desc[q] != 0)
            p.ops->rx_queue_release(q);
        if (p.tx_desc[q] != 0)
            p.ops->tx_queue_release(q);
    }
    p.rxq.fill(nullptr);
    p.txq.fill(nullptr);
    p.rx_desc.fill(0);
    p.tx_desc.fill(0);
    p.rx_pool.fill(nullptr);
}

// Stops a started port: the idle burst functions go in first, then the
// driver stops its DMA. A poll loop still inside the driver's burst
// function finishes on queues that stay allocated until release.
void stop_port(std::uint16_t id, Port& p) {
    if (p.state != State::started)
        return;
    fast_path_idle(id);
    p.ops->stop();
    p.state = State::stopped;
}

std::string flag_names(std::uint64_t bits) {
    return strformat("{:#x}", bits);
}

// Ring size rules shared by rx and tx: power of two, within [min, max],
// a multiple of align.
Result<void> check_ring(std::uint16_t id, const Port& p, const char* dir, std::uint16_t q,
                        std::uint16_t n, const DescLimits& lim) {
    const char* opt = dir[0] == 'r' ? "--rxd" : "--txd";
    if (n == 0 || (n & (n - 1)) != 0)
        return fail(port_error(id, p, EINVAL,
                               strformat("{} queue {}: ring size {} is not a power of two",
                                           dir, q, n),
                               strformat("use a power of two in [{}, {}] ({} in testpmd)",
                                           lim.min, lim.max, opt)));
    if (n < lim.min || n > lim.max)
        return fail(port_error(id, p, EINVAL,
                               strformat("{} queue {}: ring size {} is outside the driver's "
                                           "limits [{}, {}]",
                                           dir, q, n, lim.min, lim.max),
                               strformat("use a power of two in [{}, {}] ({} in testpmd)",
                                           lim.min, lim.max, opt)));
    if (lim.align > 1 && n % lim.align != 0)
        return fail(port_error(id, p, EINVAL,
                               strformat("{} queue {}: ring size {} is not a multiple of {}",
                                           dir, q, n, lim.align)));
    return {};
}

// Ring size 0 asks for the driver's default: 512 within its limits.
std::uint16_t default_ring(const DescLimits& lim) {
    std::uint16_t n = 512;
    while (n > lim.max && n > 1)
        n /= 2;
    while (n < lim.min && n < 0x8000)
        n *= 2;
    return n;
}

// Where a port may set up queues: configured or stopped.
Result<void> check_setup_state(std::uint16_t id, const Port& p, const char* call) {
    if (p.state == State::attached)
        return fail(port_error(id, p, EINVAL, strformat("{}: the port is not configured", call),
                               strformat("call configure({}, nb_rxq, nb_txq, conf) first", id)));
    if (p.state == State::started)
        return fail(port_error(id, p, EBUSY, strformat("{}: the port is started", call),
                               strformat("call stop({}) first", id)));
    return {};
}

}  // namespace

// --- driver side

Result<std::uint16_t> attach(std::unique_ptr<PortOps> ops) {
    if (!ops)
        return fail(Error(EINVAL, "ethdev attach: no PortOps"));
    auto g = detail::lock();
    detail::Table& t = detail::table();
    for (std::uint16_t id = 0; id < kMaxPorts; ++id) {
        Port& p = t.ports[id];
        if (p.ops)
            continue;
        p = Port{};
        p.info = ops->info();
        p.ops = std::move(ops);
        p.generation = t.next_generation++;
        p.state = State::attached;
        fast_path_idle(id);
        return id;
    }
    return fail(Error(ENOSPC, strformat("ethdev attach: all {} port ids are in use", kMaxPorts))
                    .context(ops->info().device_name)
                    .hint("close ports the application does not use, or allow fewer devices "
                          "(-a)"));
}

void detach(const PortOps* ops) {
    if (!ops)
        return;
    auto g = detail::lock();
    detail::Table& t = detail::table();
    for (std::uint16_t id = 0; id < kMaxPorts; ++id) {
        Port& p = t.ports[id];
        if (p.ops.get() != ops)
            continue;
        stop_port(id, p);
        release_queues(p);
        p = Port{};
        return;
    }
    // A port the application closed: its ops waited here for the driver.
    std::erase_if(t.closed, [ops](const auto& o) { return o.get() == ops; });
}

// --- application side

std::uint16_t count_avail() {
    auto g = detail::lock();
    return static_cast<std::uint16_t>(ports().size());
}

std::vector<std::uint16_t> ports() {
    auto g = detail::lock();
    std::vector<std::uint16_t> out;
    for (std::uint16_t id = 0; id < kMaxPorts; ++id)
        if (detail::table().ports[id].ops)
            out.push_back(id);
    return out;
}

bool is_valid(std::uint16_t port) {
    auto g = detail::lock();
    return port < kMaxPorts && detail::table().ports[port].ops != nullptr;
}

Result<std::uint16_t> find(PciAddress addr) {
    auto g = detail::lock();
    const std::string name = addr.str();
    for (std::uint16_t id = 0; id < kMaxPorts; ++id) {
        const Port& p = detail::table().ports[id];
        if (p.ops && p.info.device_name == name)
            return id;
    }
    return fail(Error(ENODEV, "ethdev find: no port for device " + name)
                    .hint("is it allowed (-a) and bound to vfio-pci, and did a driver probe it?"));
}

Result<DevInfo> info(std::uint16_t port) {
    auto g = detail::lock();
    auto p = detail::find_port(port, "info");
    if (!p)
        return fail(std::move(p.error()));
    return (*p)->info;
}

Result<void> configure(std::uint16_t port, std::uint16_t nb_rxq, std::uint16_t nb_txq,
                       const PortConf& conf) {
    auto g = detail::lock();
    auto pp = detail::find_port(port, "configure");
    if (!pp)
        return fail(std::move(pp.error()));
    if (auto no = detail::refuse_in_secondary(port, **pp, "configure"); !no)
        return no;
    Port& p = **pp;
    const DevInfo& di = p.info;
    if (p.state == State::started)
        return fail(port_error(port, p, EBUSY, "configure: the port is started",
                               strformat("call stop({}) first", port)));
    if (nb_rxq == 0 && nb_txq == 0)
        return fail(port_error(port, p, EINVAL, "configure: no rx and no tx queue",
                               "ask for at least one queue"));
    const std::uint16_t max_rx = std::min(di.max_rx_queues, kMaxQueues);
    const std::uint16_t max_tx = std::min(di.max_tx_queues, kMaxQueues);
    if (nb_rxq > max_rx)
        return fail(port_error(port, p, EINVAL,
                               strformat("configure: {} rx queues; the port has at most {}",
                                           nb_rxq, max_rx),
                               strformat("use --rxq={} or fewer", max_rx)));
    if (nb_txq > max_tx)
        return fail(port_error(port, p, EINVAL,
                               strformat("configure: {} tx queues; the port has at most {}",
                                           nb_txq, max_tx),
                               strformat("use --txq={} or fewer", max_tx)));
    if (std::uint64_t bad = conf.rx_offloads & ~di.rx_offload_capa)
        return fail(port_error(port, p, EINVAL,
                               "configure: rx offloads " + flag_names(bad) +
                                   " are not offered (capabilities " +
                                   flag_names(di.rx_offload_capa) + ")"));
    if (std::uint64_t bad = conf.tx_offloads & ~di.tx_offload_capa)
        return fail(port_error(port, p, EINVAL,
                               "configure: tx offloads " + flag_names(bad) +
                                   " are not offered (capabilities " +
                                   flag_names(di.tx_offload_capa) + ")"));
    if (std::uint64_t bad = conf.rss_hf & ~di.rss_offload_capa)
        return fail(port_error(port, p, EINVAL,
                               "configure: RSS hash functions " + flag_names(bad) +
                                   " are not offered (capabilities " +
                                   flag_names(di.rss_offload_capa) + ")"));
    if (conf.mtu != 0 && (conf.mtu < di.min_mtu || conf.mtu > di.max_mtu))
        return fail(port_error(port, p, EINVAL,
                               strformat("configure: MTU {} is outside [{}, {}]", conf.mtu,
                                           di.min_mtu, di.max_mtu)));
    if (conf.rxq_interrupt && !di.rxq_interrupt)
        return fail(port_error(port, p, ENOTSUP, "configure: the port has no rx interrupts"));
    if (conf.lsc_interrupt && !di.lsc_interrupt)
        return fail(port_error(port, p, ENOTSUP,
                               "configure: the port has no link-state interrupts"));
    // Reconfiguring drops the queues of the previous configuration, as in
    // DPDK; they are set up again for the new one.
    release_queues(p);
    if (auto ok = p.ops->configure(nb_rxq, nb_txq, conf); !ok) {
        p.state = State::attached;
        p.nb_rxq = p.nb_txq = 0;
        return fail(std::move(ok.error()).context(describe(port, p) + ": configure"));
    }
    p.conf = conf;
    p.nb_rxq = nb_rxq;
    p.nb_txq = nb_txq;
    p.state = State::configured;
    return {};
}

Result<void> rx_queue_setup(std::uint16_t port, std::uint16_t q, std::uint16_t nb_desc,
                            int socket, const RxConf& conf, mbuf::MbufPool& pool) {
    auto g = detail::lock();
    auto pp = detail::find_port(port, "rx_queue_setup");
    if (!pp)
        return fail(std::move(pp.error()));
    if (auto no = detail::refuse_in_secondary(port, **pp, "rx_queue_setup"); !no)
        return no;
    Port& p = **pp;
    if (auto ok = check_setup_state(port, p, "rx_queue_setup"); !ok)
        return ok;
    if (q >= p.nb_rxq)
        return fail(port_error(port, p, EINVAL,
                               strformat("rx_queue_setup: rx queue {}: the port is configured "
                                           "with {} rx queue(s) (0..{})",
                                           q, p.nb_rxq, p.nb_rxq - 1)));
    if (nb_desc == 0)
        nb_desc = default_ring(p.info.rx_desc);
    if (auto ok = check_ring(port, p, "rx", q, nb_desc, p.info.rx_desc); !ok)
        return ok;
    // Every rx ring keeps nb_desc mbufs posted: the pool must hold them all
    // (every rx ring on it, on every port) or refills fail at start.
    unsigned posted = 0;
    for (const Port& o : detail::table().ports)
        for (std::uint16_t i = 0; i < kMaxQueues; ++i)
            if (o.ops && o.rx_pool[i] == &pool && !(&o == &p && i == q))
                posted += o.rx_desc[i];
    if (posted + nb_desc > pool.size())
        return fail(port_error(
            port, p, ENOMEM,
            strformat("rx_queue_setup: rx queue {} needs {} mbufs; pool '{}' has {}, of which "
                        "{} are posted to other rx rings",
                        q, nb_desc, pool.name(), pool.size(), posted),
            "make the pool larger (--total-num-mbufs) or the rings smaller (--rxd)"));
    const unsigned min_room = mbuf::kHeadroom + 64;
    if (unsigned{pool.data_room()} < min_room)
        return fail(port_error(port, p, EINVAL,
                               strformat("rx_queue_setup: pool '{}' buffers have {} bytes, "
                                           "less than headroom + a minimum frame ({})",
                                           pool.name(), pool.data_room(), min_room),
                               "use a larger data room (--mbuf-size)"));
    if (p.rx_desc[q] != 0) {
        p.ops->rx_queue_release(q);
        p.rx_desc[q] = 0;
        p.rxq[q] = nullptr;
        p.rx_pool[q] = nullptr;
    }
    auto rq = p.ops->rx_queue_setup(q, nb_desc, socket, conf, pool);
    if (!rq)
        return fail(std::move(rq.error())
                        .context(describe(port, p) + strformat(": rx_queue_setup {}", q)));
    p.rxq[q] = *rq;
    p.rx_desc[q] = nb_desc;
    p.rx_pool[q] = &pool;
    return {};
}

Result<void> tx_queue_setup(std::uint16_t port, std::uint16_t q, std::uint16_t nb_desc,
                            int socket, const TxConf& conf) {
    auto g = detail::lock();
    auto pp = detail::find_port(port, "tx_queue_setup");
    if (!pp)
        return fail(std::move(pp.error()));
    if (auto no = detail::refuse_in_secondary(port, **pp, "tx_queue_setup"); !no)
        return no;
    Port& p = **pp;
    if (auto ok = check_setup_state(port, p, "tx_queue_setup"); !ok)
        return ok;
    if (q >= p.nb_txq)
        return fail(port_error(port, p, EINVAL,
                               strformat("tx_queue_setup: tx queue {}: the port is configured "
                                           "with {} tx queue(s) (0..{})",
                                           q, p.nb_txq, p.nb_txq - 1)));
    if (nb_desc == 0)
        nb_desc = default_ring(p.info.tx_desc);
    if (auto ok = check_ring(port, p, "tx", q, nb_desc, p.info.tx_desc); !ok)
        return ok;
    if (p.tx_desc[q] != 0) {
        p.ops->tx_queue_release(q);
        p.tx_desc[q] = 0;
        p.txq[q] = nullptr;
    }
    auto tq = p.ops->tx_queue_setup(q, nb_desc, socket, conf);
    if (!tq)
        return fail(std::move(tq.error())
                        .context(describe(port, p) + strformat(": tx_queue_setup {}", q)));
    p.txq[q] = *tq;
    p.tx_desc[q] = nb_desc;
    return {};
}

Result<void> start(std::uint16_t port) {
    auto g = detail::lock();
    auto pp = detail::find_port(port, "start");
    if (!pp)
        return fail(std::move(pp.error()));
    if (auto no = detail::refuse_in_secondary(port, **pp, "start"); !no)
        return no;
    Port& p = **pp;
    if (p.state == State::started)
        return {};
    if (p.state == State::attached)
        return fail(port_error(port, p, EINVAL, "start: the port is not configured",
                               strformat("call configure({}, nb_rxq, nb_txq, conf) and set up "
                                           "its queues first",
                                           port)));
    for (std::uint16_t q = 0; q < p.nb_rxq; ++q)
        if (p.rx_desc[q] == 0)
            return fail(port_error(
                port, p, EINVAL,
                strformat("start needs every rx queue set up; rx queue {} is not", q),
                strformat("call rx_queue_setup({}, {}, ...) first", port, q)));
    for (std::uint16_t q = 0; q < p.nb_txq; ++q)
        if (p.tx_desc[q] == 0)
            return fail(port_error(
                port, p, EINVAL,
                strformat("start needs every tx queue set up; tx queue {} is not", q),
                strformat("call tx_queue_setup({}, {}, ...) first", port, q)));
    if (auto ok = p.ops->start(); !ok)
        return fail(std::move(ok.error()).context(describe(port, p) + ": start"));
    fast_path_set(port, p, p.ops->rx_burst_fn(), p.ops->tx_burst_fn());
    p.state = State::started;
    // A started port is what secondaries may attach to: answer them.
    detail::serve_secondaries();
    return {};
}

Result<void> stop(std::uint16_t port) {
    auto g = detail::lock();
    auto pp = detail::find_port(port, "stop");
    if (!pp)
        return fail(std::move(pp.error()));
    if (auto no = detail::refuse_in_secondary(port, **pp, "stop"); !no)
        return no;
    stop_port(port, **pp);
    return {};
}

Result<void> close(std::uint16_t port) {
    auto g = detail::lock();
    auto pp = detail::find_port(port, "close");
    if (!pp)
        return fail(std::move(pp.error()));
    Port& p = **pp;
    stop_port(port, p);
    release_queues(p);
    detail::table().closed.push_back(std::move(p.ops));
    p = Port{};
    return {};
}

}  // namespace vfiokit::ethdev
