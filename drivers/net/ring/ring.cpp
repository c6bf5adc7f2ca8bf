#include "ring.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <memory>

#include "vfiokit/eal/strformat.hpp"

namespace vfiokit::net::ring {

namespace {

using ethdev::kMaxQueues;
using mbuf::Mbuf;

std::uint64_t load(const std::uint64_t& v) {
    // atomic_ref<const T> is C++26: the counter is only read here.
    return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(v))
        .load(std::memory_order_relaxed);
}
// Single-writer counters: a relaxed load and store, no read-modify-write.
void bump(std::uint64_t& v, std::uint64_t by) {
    std::atomic_ref<std::uint64_t>(v).store(v + by, std::memory_order_relaxed);
}

// Frames on their way to one rx queue: a single-producer (the peer's tx
// queue of the same number) single-consumer (this rx queue) ring. The
// storage has kMaxDesc slots; `limit` is the receiving queue's size, 0
// while it is not set up (every frame is then dropped).
struct alignas(64) Wire {
    alignas(64) std::atomic<std::uint32_t> head{0};  // written by the producer
    alignas(64) std::atomic<std::uint32_t> tail{0};  // written by the consumer
    alignas(64) std::atomic<std::uint32_t> limit{0};
    std::uint64_t missed = 0;                        // written by the producer
    std::array<Mbuf*, kMaxDesc> slots{};

    // Frees what is left (control path, no burst running on either end).
    void drain() {
        std::uint32_t t = tail.load(std::memory_order_relaxed);
        const std::uint32_t h = head.load(std::memory_order_acquire);
        for (; t != h; ++t)
            slots[t % kMaxDesc]->free();
        tail.store(t, std::memory_order_release);
    }
};

// What the two ports of a pair share: toward[i] carries frames to port i.
struct Cable {
    std::array<std::array<Wire, kMaxQueues>, 2> toward;
    ~Cable() {
        for (auto& side : toward)
            for (Wire& w : side)
                w.drain();
    }
};

struct RxQueue {
    Wire* wire = nullptr;
    std::uint16_t port = 0;
    std::uint64_t packets = 0, bytes = 0;  // written by the rx thread
};

struct TxQueue {
    Wire* wire = nullptr;                  // the peer's rx wire of this number
    std::uint64_t packets = 0, bytes = 0;  // written by the tx thread
};

std::uint16_t rx_burst(void* q, Mbuf** pkts, std::uint16_t n) {
    auto* rq = static_cast<RxQueue*>(q);
    Wire& w = *rq->wire;
    const std::uint32_t t = w.tail.load(std::memory_order_relaxed);
    const std::uint32_t h = w.head.load(std::memory_order_acquire);
    const std::uint32_t avail = h - t;
    const std::uint16_t got = static_cast<std::uint16_t>(avail < n ? avail : n);
    std::uint64_t bytes = 0;
    for (std::uint16_t i = 0; i < got; ++i) {
        Mbuf* m = w.slots[(t + i) % kMaxDesc];
        m->port = rq->port;
        bytes += m->pkt_len;
        pkts[i] = m;
    }
    w.tail.store(t + got, std::memory_order_release);
    bump(rq->packets, got);
    bump(rq->bytes, bytes);
    return got;
}

// Takes every frame: those the receiving ring has room for go into it, the
// others are dropped and counted in the receiver's imissed.
std::uint16_t tx_burst(void* q, Mbuf** pkts, std::uint16_t n) {
    auto* tq = static_cast<TxQueue*>(q);
    Wire& w = *tq->wire;
    const std::uint32_t limit = w.limit.load(std::memory_order_acquire);
    const std::uint32_t h = w.head.load(std::memory_order_relaxed);
    const std::uint32_t t = w.tail.load(std::memory_order_acquire);
    const std::uint32_t room = limit > h - t ? limit - (h - t) : 0;
    const std::uint16_t fit = static_cast<std::uint16_t>(room < n ? room : n);
    std::uint64_t bytes = 0;
    for (std::uint16_t i = 0; i < n; ++i)
        bytes += pkts[i]->pkt_len;
    for (std::uint16_t i = 0; i < fit; ++i)
        w.slots[(h + i) % kMaxDesc] = pkts[i];
    w.head.store(h + fit, std::memory_order_release);
    for (std::uint16_t i = fit; i < n; ++i)
        pkts[i]->free();
    bump(w.missed, n - fit);
    bump(tq->packets, n);
    bump(tq->bytes, bytes);
    return n;
}

std::atomic<unsigned> g_pairs{0};  // numbers the pairs for their names and MACs

class RingPort final : public ethdev::PortOps {
public:
    RingPort(std::shared_ptr<Cable> c, int side, unsigned pair)
        : cable_(std::move(c)), side_(side) {
        mac_.bytes = {0x02, 0x72, 0x6e, 0x67, static_cast<std::uint8_t>(pair),
                      static_cast<std::uint8_t>(side)};
        name_ = strformat("net_ring{}", pair * 2 + static_cast<unsigned>(side));
    }
    ~RingPort() override {
        for (std::uint16_t q = 0; q < kMaxQueues; ++q)
            rx_queue_release(q);
    }
    void set_port(std::uint16_t id) { port_ = id; }

    ethdev::DevInfo info() const override {
        ethdev::DevInfo d;
        d.driver_name = "net_ring";
        d.device_name = name_;
        d.max_rx_queues = kMaxQueues;
        d.max_tx_queues = kMaxQueues;
        d.rx_desc = {kMinDesc, kMaxDesc, 1};
        d.tx_desc = {kMinDesc, kMaxDesc, 1};
        d.max_mtu = 9000;
        d.max_rx_pktlen = 9018;
        return d;
    }
    Result<void> configure(std::uint16_t, std::uint16_t, const ethdev::PortConf& c) override {
        if (c.mtu)
            mtu_ = c.mtu;
        return {};
    }
    Result<void*> rx_queue_setup(std::uint16_t q, std::uint16_t nb_desc, int,
                                 const ethdev::RxConf&, mbuf::MbufPool&) override {
        Wire& w = cable_->toward[static_cast<std::size_t>(side_)][q];
        w.drain();
        rxq_[q] = RxQueue{&w, port_, 0, 0};
        w.limit.store(nb_desc, std::memory_order_release);
        return &rxq_[q];
    }
    Result<void*> tx_queue_setup(std::uint16_t q, std::uint16_t, int,
                                 const ethdev::TxConf&) override {
        txq_[q] = TxQueue{&cable_->toward[static_cast<std::size_t>(1 - side_)][q], 0, 0};
        return &txq_[q];
    }
    void rx_queue_release(std::uint16_t q) override {
        Wire& w = cable_->toward[static_cast<std::size_t>(side_)][q];
        w.limit.store(0, std::memory_order_release);
        w.drain();
        // Keep what the queue counted in the port's totals.
        gone_.ipackets += load(rxq_[q].packets);
        gone_.ibytes += load(rxq_[q].bytes);
        rxq_[q] = RxQueue{};
    }
    void tx_queue_release(std::uint16_t q) override {
        gone_.opackets += load(txq_[q].packets);
        gone_.obytes += load(txq_[q].bytes);
        txq_[q] = TxQueue{};
    }
    Result<void> start() override { return {}; }
    void stop() override {}
    ethdev::RxBurst rx_burst_fn() const override { return rx_burst; }
    ethdev::TxBurst tx_burst_fn() const override { return tx_burst; }

    Result<ethdev::Link> link(bool) override { return ethdev::Link{true, 10000, true, false}; }
    Result<void> promiscuous(bool) override { return {}; }
    Result<void> allmulticast(bool) override { return {}; }
    ethdev::MacAddr mac() const override { return mac_; }
    Result<void> set_mac(const ethdev::MacAddr& a) override {
        mac_ = a;
        return {};
    }
    Result<void> set_mtu(std::uint32_t mtu) override {
        mtu_ = mtu;
        return {};
    }
    Result<ethdev::Stats> stats() override {
        ethdev::Stats s = raw();
        s.ipackets -= base_.ipackets;
        s.ibytes -= base_.ibytes;
        s.opackets -= base_.opackets;
        s.obytes -= base_.obytes;
        s.imissed -= base_.imissed;
        for (std::size_t q = 0; q < kMaxQueues; ++q) {
            s.q_ipackets[q] -= base_.q_ipackets[q];
            s.q_ibytes[q] -= base_.q_ibytes[q];
            s.q_opackets[q] -= base_.q_opackets[q];
            s.q_obytes[q] -= base_.q_obytes[q];
        }
        return s;
    }
    Result<void> stats_reset() override {
        base_ = raw();
        return {};
    }
    Result<std::vector<ethdev::Xstat>> xstats() override {
        auto s = stats();
        std::vector<ethdev::Xstat> x = {
            {"rx_good_packets", s->ipackets}, {"tx_good_packets", s->opackets},
            {"rx_good_bytes", s->ibytes},     {"tx_good_bytes", s->obytes},
            {"rx_missed_errors", s->imissed}, {"rx_errors", 0},
            {"tx_errors", 0},                 {"rx_mbuf_allocation_errors", 0},
        };
        for (std::size_t q = 0; q < kMaxQueues; ++q)
            if (rxq_[q].wire)
                x.insert(x.end(), {{strformat("rx_q{}_packets", q), s->q_ipackets[q]},
                                   {strformat("rx_q{}_bytes", q), s->q_ibytes[q]}});
        for (std::size_t q = 0; q < kMaxQueues; ++q)
            if (txq_[q].wire)
                x.insert(x.end(), {{strformat("tx_q{}_packets", q), s->q_opackets[q]},
                                   {strformat("tx_q{}_bytes", q), s->q_obytes[q]}});
        return x;
    }

private:
    // Totals since attach: the live queues' counters plus released ones'.
    ethdev::Stats raw() const {
        ethdev::Stats s = gone_;
        for (std::size_t q = 0; q < kMaxQueues; ++q) {
            s.q_ipackets[q] = load(rxq_[q].packets);
            s.q_ibytes[q] = load(rxq_[q].bytes);
            s.q_opackets[q] = load(txq_[q].packets);
            s.q_obytes[q] = load(txq_[q].bytes);
            s.ipackets += s.q_ipackets[q];
            s.ibytes += s.q_ibytes[q];
            s.opackets += s.q_opackets[q];
            s.obytes += s.q_obytes[q];
            s.imissed += load(cable_->toward[static_cast<std::size_t>(side_)][q].missed);
        }
        return s;
    }

    std::shared_ptr<Cable> cable_;
    int side_;
    std::uint16_t port_ = 0;
    std::string name_;
    ethdev::MacAddr mac_;
    std::uint32_t mtu_ = 1500;
    std::array<RxQueue, kMaxQueues> rxq_{};
    std::array<TxQueue, kMaxQueues> txq_{};
    ethdev::Stats gone_{};
    ethdev::Stats base_{};
};

}  // namespace

Result<Pair> attach_pair() {
    auto cable = std::make_shared<Cable>();
    const unsigned n = g_pairs++;
    auto a = std::make_unique<RingPort>(cable, 0, n);
    auto b = std::make_unique<RingPort>(cable, 1, n);
    RingPort* ra = a.get();
    RingPort* rb = b.get();
    auto ia = ethdev::attach(std::move(a));
    if (!ia)
        return fail(std::move(ia.error()).context("net_ring attach_pair"));
    auto ib = ethdev::attach(std::move(b));
    if (!ib) {
        ethdev::detach(ra);
        return fail(std::move(ib.error()).context("net_ring attach_pair"));
    }
    ra->set_port(*ia);
    rb->set_port(*ib);
    return Pair{*ia, *ib, ra, rb};
}

void detach_pair(const Pair& p) {
    ethdev::detach(p.ops_a);
    ethdev::detach(p.ops_b);
}

}  // namespace vfiokit::net::ring
