// Port setup and the forwarding run: streams, workers, start and stop.
#include "testpmd.hpp"

#include <algorithm>
#include <cerrno>
#include <thread>

#include "vfiokit/eal/strformat.hpp"

namespace vfiokit::testpmd {

namespace {

class ThreadRunner final : public Runner {
public:
    explicit ThreadRunner(unsigned n) : threads_(n), rc_(n, 0) {}
    ~ThreadRunner() override {
        for (unsigned i = 0; i < threads_.size(); ++i)
            wait(i);
    }
    unsigned workers() const override { return static_cast<unsigned>(threads_.size()); }
    unsigned lcore(unsigned i) const override { return i + 1; }
    Result<void> launch(unsigned i, std::function<int()> fn) override {
        if (i >= threads_.size() || threads_[i].joinable())
            return fail(Error(EBUSY, strformat("worker {} is busy or unknown", i)));
        threads_[i] = std::thread([this, i, fn = std::move(fn)] { rc_[i] = fn(); });
        return {};
    }
    void wait(unsigned i) override {
        if (i < threads_.size() && threads_[i].joinable())
            threads_[i].join();
    }

private:
    std::vector<std::thread> threads_;
    std::vector<int> rc_;
};

}  // namespace

std::unique_ptr<Runner> thread_runner(unsigned workers) {
    return std::make_unique<ThreadRunner>(workers);
}

Testpmd::Testpmd(Params p, Runner& runner, std::ostream& out)
    : params_(std::move(p)), runner_(runner), out_(out) {}

Testpmd::~Testpmd() { close_ports(); }

unsigned Testpmd::pool_size(std::size_t nb_ports) const {
    const unsigned rings = static_cast<unsigned>(nb_ports) *
                           (unsigned{params_.rxq} * params_.rxd + unsigned{params_.txq} * params_.txd);
    // Every process's lcores have caches of the shared pool.
    const unsigned lcores = (runner_.workers() + 1) * params_.num_procs;
    const unsigned streams = static_cast<unsigned>(nb_ports) * params_.rxq;
    return rings + lcores * params_.mbcache + (streams + lcores) * params_.burst;
}

bool Testpmd::known(std::uint16_t port) {
    if (std::find(ports_.begin(), ports_.end(), port) != ports_.end())
        return true;
    std::string have;
    for (auto p : ports_)
        have += (have.empty() ? "" : ", ") + std::to_string(p);
    out_ << strformat("Invalid port {}: the ports are {}\n", port, have.empty() ? "none" : have);
    return false;
}

Result<void> Testpmd::setup_ports(const std::vector<std::uint16_t>& port_ids,
                                  mbuf::MbufPool& pool) {
    if (port_ids.empty())
        return fail(Error(ENODEV, "testpmd: no port to forward on")
                        .hint("name devices with -a BDF (bound to vfio-pci) before --"));
    // txonly, flowgen and tx_first build frames of --txpkts bytes; any
    // mode may be set later at the prompt, so the check is made here.
    if (unsigned{params_.mbuf_size} < unsigned{mbuf::kHeadroom} + params_.txpkts)
        return fail(Error(EINVAL, strformat("testpmd: --txpkts={} does not fit a {}-byte mbuf "
                                              "after its {}-byte headroom",
                                              params_.txpkts, params_.mbuf_size, mbuf::kHeadroom))
                        .hint("raise --mbuf-size or lower --txpkts"));
    pool_ = &pool;
    // On failure the ports set up so far, and the failing one, are closed:
    // their rings give every mbuf back, so the pool can be destroyed and
    // nothing leaks (testpmd exits then, as DPDK's does).
    std::vector<std::uint16_t> touched;
    auto undo = [&] {
        for (auto p : touched)
            (void)ethdev::close(p);
    };
    for (std::uint16_t port : port_ids) {
        if (params_.secondary) {
            // The primary configured and started it; a secondary only polls.
            if (!ethdev::is_attached_from_primary(port))
                return fail(Error(ENODEV, strformat("testpmd: port {} is not one of the "
                                                    "primary's started ports",
                                                    port)));
            auto mac = ethdev::macaddr_get(port);
            out_ << strformat("Port {}: {} (attached from the primary)\n", port,
                              mac ? mac->str() : "??");
            continue;
        }
        out_ << strformat("Configuring Port {}\n", port);
        touched.push_back(port);
        ethdev::PortConf pc;
        // Several rx queues: spread flows with every hash the NIC offers,
        // as DPDK's testpmd turns RSS on when --rxq > 1.
        if (params_.rxq > 1)
            if (auto di = ethdev::info(port))
                pc.rss_hf = di->rss_offload_capa;
        auto ok = ethdev::configure(port, params_.rxq, params_.txq, pc);
        for (std::uint16_t q = 0; ok && q < params_.rxq; ++q)
            ok = ethdev::rx_queue_setup(port, q, params_.rxd, -1, {}, pool);
        for (std::uint16_t q = 0; ok && q < params_.txq; ++q)
            ok = ethdev::tx_queue_setup(port, q, params_.txd, -1, {});
        if (ok)
            ok = ethdev::start(port);
        if (!ok) {
            undo();
            return fail(std::move(ok.error()).context("testpmd: port setup"));
        }
        (void)ethdev::promiscuous_enable(port);  // as DPDK's testpmd does
        auto mac = ethdev::macaddr_get(port);
        out_ << strformat("Port {}: {}\n", port, mac ? mac->str() : "??");
    }
    ports_ = port_ids;
    at_start_.assign(ethdev::kMaxPorts, {});
    shown_.assign(ethdev::kMaxPorts, {});
    out_ << "Checking link statuses...\n" << std::flush;
    for (std::uint16_t port : ports_) {
        auto l = ethdev::link_get(port);
        out_ << strformat("Port {}: {}\n", port, l ? l->str() : l.error().message());
    }
    out_ << "Done\n" << std::flush;
    return {};
}

// DPDK's default topology: ports paired in order, 0<->1, 2<->3; an odd
// last one forwards to itself.
void Testpmd::build_streams() {
    streams_.clear();
    const std::size_t np = ports_.size();
    const bool loop = params_.mode == FwdMode::icmpecho;
    for (std::size_t i = 0; i < np; ++i) {
        std::size_t peer = i;
        if (!loop && !(np % 2 == 1 && i == np - 1))
            peer = i % 2 == 0 ? i + 1 : i - 1;
        // This process's share of the queues (all of them with one process).
        const auto per_proc = static_cast<std::uint16_t>(params_.rxq / params_.num_procs);
        const auto first_q = static_cast<std::uint16_t>(params_.proc_id * per_proc);
        for (std::uint16_t q = first_q; q < first_q + per_proc; ++q) {
            Stream s;
            s.rx_port = ports_[i];
            s.rx_queue = q;
            s.tx_port = ports_[peer];
            s.tx_queue = q;  // parse_params makes --txq equal --rxq
            s.ctx.pool = pool_;
            s.ctx.burst = params_.burst;
            s.ctx.txpkts = params_.txpkts;
            auto src = ethdev::macaddr_get(s.tx_port);
            s.ctx.tx_src = src ? *src : ethdev::MacAddr{};
            auto rx = ethdev::macaddr_get(s.rx_port);
            s.ctx.rx_mac = rx ? *rx : ethdev::MacAddr{};
            s.ctx.tx_dst = params_.eth_peer[s.tx_port].value_or(
                ethdev::MacAddr{{0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(s.tx_port)}});
            streams_.push_back(s);
        }
    }
    // Streams go to workers in contiguous blocks, as DPDK assigns them.
    const unsigned cores = std::max(1u, std::min({params_.nb_cores, runner_.workers(),
                                                  static_cast<unsigned>(streams_.size())}));
    per_worker_.assign(cores, {});
    for (std::size_t i = 0; i < streams_.size(); ++i)
        per_worker_[i * cores / streams_.size()].push_back(&streams_[i]);
}

void Testpmd::print_fwd_config() {
    out_ << strformat("{} packet forwarding - ports={} - cores={} - streams={}\n",
                        to_string(params_.mode), ports_.size(), per_worker_.size(),
                        streams_.size());
    for (std::size_t w = 0; w < per_worker_.size(); ++w) {
        out_ << strformat("Logical Core {} forwards packets on {} streams:\n",
                            runner_.lcore(static_cast<unsigned>(w)), per_worker_[w].size());
        for (const Stream* s : per_worker_[w])
            out_ << strformat("  RX P={}/Q={} -> TX P={}/Q={} peer={}\n", s->rx_port,
                                s->rx_queue, s->tx_port, s->tx_queue, s->ctx.tx_dst.str());
    }
    out_ << strformat("\n  {} packet forwarding packets/burst={}\n", to_string(params_.mode),
                        params_.burst);
    out_ << strformat("  nb forwarding cores={} - nb forwarding ports={}\n", per_worker_.size(),
                        ports_.size());
    for (std::uint16_t p : ports_)
        out_ << strformat("  port {}: RX queue number: {} Tx queue number: {}\n"
                            "    RX desc={} - TX desc={}\n",
                            p, params_.rxq, params_.txq, params_.rxd, params_.txd);
}

Result<void> Testpmd::start(bool tx_first) {
    if (forwarding_) {
        out_ << "Packet forwarding already started\n";
        return {};
    }
    if (ports_.empty())
        return fail(Error(EINVAL, "testpmd start: no port is set up"));
    if (runner_.workers() == 0)
        return fail(Error(EINVAL, "testpmd start: no worker lcore to forward on")
                        .hint("give the EAL at least two lcores (-l 0-1): the main one runs "
                              "the prompt"));
    if (params_.nb_cores > runner_.workers())
        out_ << strformat("Warning: --nb-cores={} but only {} worker lcore(s): using {}\n",
                            params_.nb_cores, runner_.workers(), runner_.workers());
    build_streams();
    for (std::uint16_t p : ports_) {
        auto st = ethdev::stats_get(p);
        at_start_[p] = st ? *st : ethdev::Stats{};
    }
    print_fwd_config();
    if (tx_first)
        for (Stream& s : streams_)
            tx_first_burst(s);
    const Engine engine = engine_of(params_.mode);
    stop_flag_.store(false, std::memory_order_relaxed);
    for (std::size_t w = 0; w < per_worker_.size(); ++w) {
        std::vector<Stream*> mine = per_worker_[w];
        auto ok = runner_.launch(static_cast<unsigned>(w), [this, mine, engine] {
            while (!stop_flag_.load(std::memory_order_relaxed))
                for (Stream* s : mine)
                    engine(*s);
            return 0;
        });
        if (!ok) {
            stop_flag_.store(true, std::memory_order_relaxed);
            for (std::size_t i = 0; i < w; ++i)
                runner_.wait(static_cast<unsigned>(i));
            return fail(std::move(ok.error()).context("testpmd start"));
        }
    }
    forwarding_ = true;
    out_ << std::flush;
    return {};
}

void Testpmd::stop() {
    if (!forwarding_) {
        out_ << "Packet forwarding not started\n" << std::flush;
        return;
    }
    out_ << "Telling cores to stop...\n";
    stop_flag_.store(true, std::memory_order_relaxed);
    out_ << "Waiting for lcores to finish...\n" << std::flush;
    for (std::size_t w = 0; w < per_worker_.size(); ++w)
        runner_.wait(static_cast<unsigned>(w));
    forwarding_ = false;
    print_fwd_stats();
    out_ << "Done.\n" << std::flush;
}

Result<void> Testpmd::set_mode(FwdMode m) {
    if (forwarding_)
        return fail(Error(EBUSY, "set fwd: forwarding is running").hint("stop it first"));
    params_.mode = m;
    out_ << strformat("Set {} packet forwarding mode\n", to_string(m));
    return {};
}

void Testpmd::close_ports() {
    if (forwarding_)
        stop();
    for (std::uint16_t p : ports_) {
        if (params_.secondary)
            break;  // the primary's ports: it stops them; close forgets them here
        out_ << strformat("\nStopping port {}...\n", p);
        if (auto ok = ethdev::stop(p); !ok)
            out_ << ok.error().message() << "\n";
        out_ << "Done\n";
    }
    for (std::uint16_t p : ports_) {
        out_ << strformat("\nShutting down port {}...\n", p);
        if (auto ok = ethdev::close(p); !ok)
            out_ << ok.error().message() << "\n";
        else
            out_ << strformat("Port {} is closed\n", p);
        out_ << "Done\n";
    }
    ports_.clear();
    out_ << std::flush;
}

}  // namespace vfiokit::testpmd
