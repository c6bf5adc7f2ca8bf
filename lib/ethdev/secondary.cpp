// Ports shared with secondary processes: memory both processes see at the
// same addresses, the requests a primary serves about its ports, and a
// secondary's attached ports (ethdev.hpp, "secondary processes").
//
// The primary answers on its mp server thread, under the EAL lock (the
// control lock every ethdev call takes), so a port is never read half
// configured. Replies are fixed-size records copied as bytes: both ends
// are builds of this file (a secondary runs the primary's vfiokit), and
// the reader checks the size, the mark, the version, the counts, the
// strings' terminators and that every queue pointer lies in the memory it
// mapped from the primary.
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <type_traits>
#include <unistd.h>

#include "port_table.hpp"
#include "wire.hpp"
#include "vfiokit/eal/eal.hpp"
#include "vfiokit/eal/mp.hpp"
#include "vfiokit/eal/strformat.hpp"

namespace vfiokit::ethdev {

using detail::Port;
using detail::State;

// --- shared memory

namespace {

struct Block {
    eal::Heap* heap = nullptr;  // null: the C++ heap
    std::size_t align = 0;
};
std::map<void*, Block>& blocks() {
    static auto* m = new std::map<void*, Block>();
    return *m;
}

}  // namespace

void* shared_alloc(std::size_t bytes, std::size_t align) {
    if (align < alignof(std::max_align_t))
        align = alignof(std::max_align_t);
    if (bytes == 0)
        bytes = 1;
    auto g = detail::lock();
    eal::Eal* e = eal::Eal::current();
    if (e != nullptr && e->proc_type() != eal::ProcType::secondary) {
        eal::Heap& h = e->heap(-1);
        auto p = h.alloc(bytes, align);
        if (!p)
            throw std::bad_alloc();
        std::memset(*p, 0, bytes);
        blocks()[*p] = {&h, align};
        return *p;
    }
    void* p = ::operator new(bytes, std::align_val_t(align));
    blocks()[p] = {nullptr, align};
    return p;
}

void shared_free(void* p) noexcept {
    if (p == nullptr)
        return;
    auto g = detail::lock();
    auto it = blocks().find(p);
    if (it == blocks().end())
        return;  // not ours: a bug elsewhere; leaking beats freeing into the wrong heap
    const Block b = it->second;
    blocks().erase(it);
    if (b.heap != nullptr)
        (void)b.heap->free(p);
    else
        ::operator delete(p, std::align_val_t(b.align));
}

// --- the wire records

namespace {

using namespace detail::wire;

Result<std::uint16_t> port_of_payload(const std::string& s) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v >= kMaxPorts)
        return fail(Error(EINVAL, "not a port id: '" + s.substr(0, 16) + "'"));
    return static_cast<std::uint16_t>(v);
}

// A primary's started port by id (lock held).
Result<Port*> served_port(const std::string& payload, std::string_view call) {
    auto id = port_of_payload(payload);
    if (!id)
        return fail(std::move(id.error()).context(call));
    return detail::find_port(*id, call);
}

}  // namespace

namespace detail {

void serve_secondaries() {
    eal::Eal* e = eal::Eal::current();
    if (e == nullptr || e->server() == nullptr)
        return;
    serve_status_requests();
    using eal::mp::Peer;
    using eal::mp::Reply;
    using eal::mp::Request;
    e->server()->handle(std::string(kPortRequest), [](const Request& r, const Peer&)
                                                       -> Result<Reply> {
        auto g = lock();
        Table& t = table();
        for (std::uint16_t id = 0; id < kMaxPorts; ++id) {
            const Port& p = t.ports[id];
            if (!p.ops || p.from_primary || p.info.device_name != r.payload)
                continue;
            if (p.state != State::started)
                return fail(port_error(id, p, EAGAIN,
                                       "the primary has not started the port: a secondary "
                                       "polls only started ports",
                                       "start the port in the primary before the secondary "
                                       "attaches"));
            WirePort w{};
            w.magic = kPortMagic;
            w.version = kPortVersion;
            w.id = id;
            w.nb_rxq = p.nb_rxq;
            w.nb_txq = p.nb_txq;
            w.pid = static_cast<std::int32_t>(::getpid());
            for (std::size_t q = 0; q < kMaxQueues; ++q) {
                w.rxq[q] = reinterpret_cast<std::uintptr_t>(p.rxq[q]);
                w.txq[q] = reinterpret_cast<std::uintptr_t>(p.txq[q]);
            }
            w.driver_data = p.ops->secondary_data();
            encode_dev_info(w.dev, p.info, p.ops->mac());
            Reply rep;
            rep.payload = bytes_of(w);
            return rep;
        }
        return fail(Error(ENODEV, "the primary has no port for device '" +
                                      r.payload.substr(0, 64) + "'")
                        .hint("name a device the primary probed (its -a list)"));
    });
    e->server()->handle(std::string(kStatsRequest), [](const Request& r, const Peer&)
                                                        -> Result<Reply> {
        auto g = lock();
        auto p = served_port(r.payload, "ethdev.stats");
        if (!p)
            return fail(std::move(p.error()));
        auto s = (*p)->ops->stats();
        if (!s)
            return fail(std::move(s.error()));
        Reply rep;
        rep.payload = bytes_of(*s);
        return rep;
    });
    e->server()->handle(std::string(kXstatsRequest), [](const Request& r, const Peer&)
                                                         -> Result<Reply> {
        auto g = lock();
        auto p = served_port(r.payload, "ethdev.xstats");
        if (!p)
            return fail(std::move(p.error()));
        auto xs = (*p)->ops->xstats();
        if (!xs)
            return fail(std::move(xs.error()));
        Reply rep;
        rep.payload = encode_xstats(*xs);
        return rep;
    });
    e->server()->handle(std::string(kLinkRequest), [](const Request& r, const Peer&)
                                                       -> Result<Reply> {
        auto g = lock();
        auto p = served_port(r.payload, "ethdev.link");
        if (!p)
            return fail(std::move(p.error()));
        auto l = (*p)->ops->link(false);
        if (!l)
            return fail(std::move(l.error()));
        const WireLink w{l->up, l->full_duplex, l->autoneg, 0, l->speed_mbps};
        Reply rep;
        rep.payload = bytes_of(w);
        return rep;
    });
}

Result<void> refuse_in_secondary(std::uint16_t id, const Port& p, std::string_view call) {
    if (!p.from_primary)
        return {};
    return fail(port_error(id, p, EPERM,
                           strformat("{}: the port belongs to the primary (pid {}); a secondary "
                                     "polls its queues and reads its stats and link",
                                     call, p.primary_pid),
                           "make this call in the primary process"));
}

}  // namespace detail

namespace {

eal::mp::Client* channel() {
    eal::Eal* e = eal::Eal::current();
    return e != nullptr ? e->primary() : nullptr;
}

Result<std::string> ask(std::string_view request, std::uint16_t id) {
    eal::mp::Client* c = channel();
    if (c == nullptr)
        return fail(Error(ENOTCONN, std::string(request) + ": no channel to the primary"));
    auto r = c->request(request, std::to_string(id));
    if (!r)
        return fail(std::move(r.error()));
    return std::move(r->payload);
}

// A secondary's ops for a primary's port: reads go to the primary, the
// calls that change the port never get here (ethdev refuses them first).
class SecondaryOps final : public PortOps {
public:
    SecondaryOps(const PrimaryPort& p, RxBurst rx, TxBurst tx, std::shared_ptr<void> keep)
        : info_(p.info), mac_(p.mac), id_(p.id), rx_(rx), tx_(tx), keep_(std::move(keep)) {}

    [[nodiscard]] DevInfo info() const override { return info_; }
    [[nodiscard]] Result<void> configure(std::uint16_t, std::uint16_t, const PortConf&) override {
        return refused();
    }
    [[nodiscard]] Result<void*> rx_queue_setup(std::uint16_t, std::uint16_t, int, const RxConf&,
                                               mbuf::MbufPool&) override {
        return fail(refused().error());
    }
    [[nodiscard]] Result<void*> tx_queue_setup(std::uint16_t, std::uint16_t, int,
                                               const TxConf&) override {
        return fail(refused().error());
    }
    // The queues are the primary's: nothing to release or stop here.
    void rx_queue_release(std::uint16_t) override {}
    void tx_queue_release(std::uint16_t) override {}
    [[nodiscard]] Result<void> start() override { return refused(); }
    void stop() override {}
    [[nodiscard]] RxBurst rx_burst_fn() const override { return rx_; }
    [[nodiscard]] TxBurst tx_burst_fn() const override { return tx_; }

    [[nodiscard]] Result<Link> link(bool) override {
        auto r = ask(kLinkRequest, id_);
        if (!r)
            return fail(std::move(r.error()));
        WireLink w{};
        if (!from_bytes(*r, w))
            return fail(Error(EPROTO, "ethdev.link: a reply of " + std::to_string(r->size()) +
                                          " bytes"));
        return Link{w.up != 0, w.speed_mbps, w.full_duplex != 0, w.autoneg != 0};
    }
    [[nodiscard]] Result<void> promiscuous(bool) override { return refused(); }
    [[nodiscard]] Result<void> allmulticast(bool) override { return refused(); }
    [[nodiscard]] MacAddr mac() const override { return mac_; }
    [[nodiscard]] Result<void> set_mac(const MacAddr&) override { return refused(); }
    [[nodiscard]] Result<void> set_mtu(std::uint32_t) override { return refused(); }
    [[nodiscard]] Result<Stats> stats() override {
        auto r = ask(kStatsRequest, id_);
        if (!r)
            return fail(std::move(r.error()));
        return decode_stats(*r);
    }
    [[nodiscard]] Result<void> stats_reset() override { return refused(); }
    [[nodiscard]] Result<std::vector<Xstat>> xstats() override {
        auto r = ask(kXstatsRequest, id_);
        if (!r)
            return fail(std::move(r.error()));
        return decode_xstats(*r);
    }

private:
    [[nodiscard]] Result<void> refused() const {
        return fail(Error(EPERM, "a secondary's port: the call is the primary's"));
    }
    DevInfo info_;
    MacAddr mac_;
    std::uint16_t id_;
    RxBurst rx_;
    TxBurst tx_;
    std::shared_ptr<void> keep_;
};

}  // namespace

Result<PrimaryPort> primary_port(std::string_view device) {
    eal::Eal* e = eal::Eal::current();
    const std::string who = "port of device " + std::string(device) + " in the primary";
    if (e == nullptr || e->proc_type() != eal::ProcType::secondary || e->primary() == nullptr)
        return fail(Error(EPERM, who + ": this process is not a secondary")
                        .hint("start it with --proc-type=secondary (or auto) and the primary's "
                              "--file-prefix"));
    auto r = e->primary()->request(kPortRequest, device);
    if (!r && r.error().err() == ENOENT &&
        r.error().message().find("unknown request") != std::string::npos)
        // The primary registers its answers when it starts its first port.
        return fail(Error(EAGAIN, who + ": the primary has not started any port yet")
                        .hint("start the ports in the primary before the secondary attaches"));
    if (!r)
        return fail(std::move(r.error()).context(who));
    WirePort w{};
    if (!from_bytes(r->payload, w) || w.magic != kPortMagic || w.version != kPortVersion)
        return fail(Error(EPROTO, who + ": a reply of " + std::to_string(r->payload.size()) +
                                      " bytes that is not a port record (version " +
                                      std::to_string(kPortVersion) + ")")
                        .hint("run the secondary from the same vfiokit build as the primary"));
    if (w.id >= kMaxPorts || w.nb_rxq > kMaxQueues || w.nb_txq > kMaxQueues ||
        !names_terminated(w.dev))
        return fail(Error(EPROTO, who + ": the port record does not check (id " +
                                      std::to_string(w.id) + ", queues " +
                                      std::to_string(w.nb_rxq) + "/" + std::to_string(w.nb_txq) +
                                      ")"));
    PrimaryPort p;
    p.id = w.id;
    p.nb_rxq = w.nb_rxq;
    p.nb_txq = w.nb_txq;
    p.primary_pid = w.pid;
    p.driver_data = w.driver_data;
    // Every queue the port has lies in memory mapped from the primary: a
    // pointer outside it would be this process's own memory, or nothing.
    for (std::size_t q = 0; q < kMaxQueues; ++q) {
        const bool used_rx = q < w.nb_rxq, used_tx = q < w.nb_txq;
        p.rxq[q] = used_rx ? reinterpret_cast<void*>(w.rxq[q]) : nullptr;
        p.txq[q] = used_tx ? reinterpret_cast<void*>(w.txq[q]) : nullptr;
        if ((used_rx && !e->virt2iova(p.rxq[q])) || (used_tx && !e->virt2iova(p.txq[q])))
            return fail(Error(EPROTO, strformat("{}: queue {} is not in the memory mapped from "
                                                "the primary",
                                                who, q))
                            .hint("the primary's driver must keep its queues in shared memory "
                                  "(ethdev::SharedObject)"));
    }
    decode_dev_info(w.dev, p.info, p.mac);
    return p;
}

Result<const PortOps*> attach_secondary(const PrimaryPort& pp, RxBurst rx, TxBurst tx,
                                        std::shared_ptr<void> keep) {
    if (rx == nullptr || tx == nullptr)
        return fail(Error(EINVAL, "ethdev attach_secondary: no burst function"));
    auto g = detail::lock();
    detail::Table& t = detail::table();
    if (pp.id >= kMaxPorts)
        return fail(Error(EINVAL, strformat("ethdev attach_secondary: port {}", pp.id)));
    Port& p = t.ports[pp.id];
    if (p.ops)
        return fail(Error(EBUSY, strformat("ethdev attach_secondary {}: port id {} is taken in "
                                           "this process by {}",
                                           pp.info.device_name, pp.id, p.info.device_name)));
    auto ops = std::make_unique<SecondaryOps>(pp, rx, tx, std::move(keep));
    const PortOps* raw = ops.get();
    p = Port{};
    p.ops = std::move(ops);
    p.info = pp.info;
    p.generation = t.next_generation++;
    p.state = State::started;
    p.nb_rxq = pp.nb_rxq;
    p.nb_txq = pp.nb_txq;
    p.rxq = pp.rxq;
    p.txq = pp.txq;
    p.from_primary = true;
    p.primary_pid = pp.primary_pid;
    // rx_desc/tx_desc stay 0: nothing of the queues is this process's to
    // release. The fast path gets the primary's queues and our functions.
    FastPath& f = fast_path[pp.id];
    for (std::size_t q = 0; q < kMaxQueues; ++q) {
        std::atomic_ref<void*>(f.rxq[q]).store(p.rxq[q], std::memory_order_relaxed);
        std::atomic_ref<void*>(f.txq[q]).store(p.txq[q], std::memory_order_relaxed);
    }
    std::atomic_ref<RxBurst>(f.rx).store(rx, std::memory_order_release);
    std::atomic_ref<TxBurst>(f.tx).store(tx, std::memory_order_release);
    return raw;
}

bool is_attached_from_primary(std::uint16_t port) {
    auto g = detail::lock();
    return port < kMaxPorts && detail::table().ports[port].ops &&
           detail::table().ports[port].from_primary;
}

}  // namespace vfiokit::ethdev
