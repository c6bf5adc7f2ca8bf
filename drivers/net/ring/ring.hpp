// net_ring: a software poll-mode driver for host unit tests of ethdev and
// the applications on it (testpmd's engines). No device and no DMA: two
// ports wired back to back in memory, as DPDK's net_ring and net_null
// serve its unit tests.
//
//   auto pair = net::ring::attach_pair();       // ports a and b
//   ... configure, set up queues and start both as any port ...
//   tx_burst(a, q, pkts, n)   -> n (always all: the frames are "on the wire")
//   rx_burst(b, q, pkts, 32)  -> the frames a sent on its tx queue q
//
// The wire: a tx queue q of one port feeds rx queue q of the other through
// a bounded single-producer single-consumer ring of the receiving queue's
// size (rx_queue_setup's nb_desc). A frame that finds that ring full, or
// the receiving queue not set up, is dropped (freed) and counted in the
// receiver's imissed, as a NIC counts frames it had no descriptor for. A
// tx queue without an rx queue of the same number on the peer drops all it
// sends (counted the same way).
//
// Link: always up, 10 Gbps full duplex. MAC: 02:72:6e:67:PP:SS (PP: the
// pair's number, SS: 0 for a, 1 for b). Stats and xstats (DPDK's names)
// count what the queues moved; stats_reset keeps a baseline. Limits: 16
// queues each way, rings of 32..4096 descriptors.
//
// Not for production: there is nothing behind it but memory.
//
// Thread-safety: as any PMD (ethdev.hpp): one thread per queue on the data
// path; counters are single-writer and read with relaxed atomics.
#pragma once

#include <cstdint>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::net::ring {

inline constexpr std::uint16_t kMinDesc = 32;
inline constexpr std::uint16_t kMaxDesc = 4096;

struct Pair {
    std::uint16_t a = 0;
    std::uint16_t b = 0;
    // The driver's handles of the two ports (what detach_pair detaches).
    const ethdev::PortOps* ops_a = nullptr;
    const ethdev::PortOps* ops_b = nullptr;
};

// Attaches two ports wired to each other. ENOSPC (from ethdev) when the
// port table is full; nothing stays attached then.
[[nodiscard]] Result<Pair> attach_pair();

// The driver's remove: detaches both ports (ethdev::detach), whether or not
// the application closed them already.
void detach_pair(const Pair& p);

}  // namespace vfiokit::net::ring
