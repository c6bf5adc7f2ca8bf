// testpmd's engine room: ports set up from Params, forwarding streams run
// by worker lcores, and the statistics in DPDK testpmd's layout. main.cpp
// adds the EAL, the prompt and the signals; unit tests drive the same
// class with software ports (drivers/net/ring) and plain threads.
//
// Streams (DPDK's): one per port and rx queue, rx port P queue Q -> tx port
// peer(P) queue Q, ports paired 0<->1, 2<->3 (an odd last port forwards to
// itself). icmpecho answers on the port it received on (P -> P). Each
// stream belongs to one worker, so every rx and tx queue is polled by one
// thread and the data path takes no lock: a worker loops over its streams
// until a relaxed atomic flag tells it to stop.
//
// Thread-safety: every method is for the main thread; workers run only the
// engines, on the streams they were given.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <vector>

#include "params.hpp"
#include "vfiokit/eal/error.hpp"
#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit::testpmd {

// Where forwarding loops run: EAL worker lcores in the program, plain
// threads in unit tests.
class Runner {
public:
    virtual ~Runner() = default;
    [[nodiscard]] virtual unsigned workers() const = 0;
    // The lcore id of worker i (for the "Logical Core N" lines).
    [[nodiscard]] virtual unsigned lcore(unsigned i) const = 0;
    [[nodiscard]] virtual Result<void> launch(unsigned i, std::function<int()> fn) = 0;
    virtual void wait(unsigned i) = 0;
};
// One std::thread per launch (tests; no pinning, no EAL lcore ids).
[[nodiscard]] std::unique_ptr<Runner> thread_runner(unsigned workers);

struct Stream;
using Engine = void (*)(Stream&);

// What an engine needs besides its queues (read-only while forwarding).
struct StreamCtx {
    ethdev::MacAddr tx_src;     // the tx port's own address
    ethdev::MacAddr tx_dst;     // --eth-peer of the tx port
    ethdev::MacAddr rx_mac;     // the rx port's address (icmpecho)
    mbuf::MbufPool* pool = nullptr;
    std::uint16_t burst = 32;
    std::uint16_t txpkts = 64;
};

struct alignas(64) Stream {
    std::uint16_t rx_port = 0, rx_queue = 0, tx_port = 0, tx_queue = 0;
    StreamCtx ctx;
    // Written by the stream's worker only; read after it stopped.
    std::uint64_t rx_packets = 0, tx_packets = 0, fwd_dropped = 0;
    std::uint64_t rx_bad = 0;      // rxonly: frames whose txonly payload did not check
    std::uint64_t tx_nombuf = 0;   // txonly/flowgen: bursts cut short by an empty pool
    std::uint64_t seq = 0;         // txonly/flowgen: next sequence number
};

[[nodiscard]] Engine engine_of(FwdMode m);
// One txonly burst on the stream's tx queue (start tx_first).
void tx_first_burst(Stream& s);

class Testpmd {
public:
    Testpmd(Params p, Runner& runner, std::ostream& out);
    ~Testpmd();
    Testpmd(const Testpmd&) = delete;
    Testpmd& operator=(const Testpmd&) = delete;

    // mbufs the rings and caches need: every rx and tx ring of every port,
    // each worker's cache and a burst in flight per stream.
    [[nodiscard]] unsigned pool_size(std::size_t nb_ports) const;
    // Configures, sets up and starts `ports` with the pool (not owned; it
    // must outlive close_ports()). Prints DPDK's "Configuring Port N" lines.
    // On error, every port it touched is closed (their rings give their
    // mbufs back; the ids are free): the program is expected to exit.
    [[nodiscard]] Result<void> setup_ports(const std::vector<std::uint16_t>& port_ids,
                                           mbuf::MbufPool& pool);
    [[nodiscard]] Result<void> start(bool tx_first);
    // Stops the workers and prints the forward statistics; nothing when not
    // forwarding ("Packet forwarding not started").
    void stop();
    [[nodiscard]] bool forwarding() const { return forwarding_; }
    [[nodiscard]] Result<void> set_mode(FwdMode m);
    [[nodiscard]] FwdMode mode() const { return params_.mode; }

    // Output in DPDK's layout. port: a port id, or kAll.
    static constexpr std::uint16_t kAll = 0xffff;
    void show_port_stats(std::uint16_t port);
    void clear_port_stats(std::uint16_t port);
    void show_port_info(std::uint16_t port);
    void show_port_xstats(std::uint16_t port);
    // Stops forwarding if needed, then stops and closes every port.
    void close_ports();

    [[nodiscard]] const std::vector<std::uint16_t>& ports() const { return ports_; }
    // The streams of the current or last run (tests read their counters).
    [[nodiscard]] const std::vector<Stream>& streams() const { return streams_; }

private:
    [[nodiscard]] bool known(std::uint16_t port);
    void build_streams();
    void print_fwd_config();
    void print_fwd_stats();

    Params params_;
    Runner& runner_;
    std::ostream& out_;
    std::vector<std::uint16_t> ports_;
    mbuf::MbufPool* pool_ = nullptr;
    std::vector<Stream> streams_;
    std::vector<std::vector<Stream*>> per_worker_;
    std::atomic<bool> stop_flag_{false};
    bool forwarding_ = false;
    // Port stats when forwarding started (forward statistics are the
    // difference) and at the last `show port stats` (throughput).
    std::vector<ethdev::Stats> at_start_;
    struct Shown {
        ethdev::Stats s;
        std::chrono::steady_clock::time_point t;
        bool valid = false;
    };
    std::vector<Shown> shown_;
};

}  // namespace vfiokit::testpmd
