// ethdev's private port table: what each port id refers to, its state and
// the queues set up, under one lock. Shared by ethdev.cpp (the state
// machine) and link.cpp (the calls that only read or pass through).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vfiokit/eal/recursive_lock.hpp"
#include "vfiokit/ethdev/ethdev.hpp"

namespace vfiokit::ethdev::detail {

enum class State { attached, configured, started, stopped };
[[nodiscard]] const char* state_name(State s);

struct Port {
    std::unique_ptr<PortOps> ops;  // null: the id is free
    std::uint64_t generation = 0;  // which attach this is (never reused)
    State state = State::attached;
    DevInfo info;                  // read once at attach
    PortConf conf;
    std::uint16_t nb_rxq = 0;
    std::uint16_t nb_txq = 0;
    std::array<void*, kMaxQueues> rxq{};
    std::array<void*, kMaxQueues> txq{};
    std::array<std::uint16_t, kMaxQueues> rx_desc{};  // 0: queue not set up
    std::array<std::uint16_t, kMaxQueues> tx_desc{};
    std::array<mbuf::MbufPool*, kMaxQueues> rx_pool{};
    // A secondary's view of its primary's port (attach_secondary): the
    // queues are the primary's, and so are the calls that change the port.
    bool from_primary = false;
    int primary_pid = 0;
};

struct Table {
    std::array<Port, kMaxPorts> ports;
    // Ops of closed ports whose driver has not detached them yet. They live
    // until detach(), so their address cannot be reused by a later attach
    // while the driver still holds it (detach by address stays exact).
    std::vector<std::unique_ptr<PortOps>> closed;
    std::uint64_t next_generation = 1;
};

// The table, never destroyed (a driver instance that detaches during static
// destruction still finds it).
[[nodiscard]] Table& table();
// The control lock: the EAL's while an EAL is up (control calls and EAL
// memory growth serialize on one lock, as eal.hpp says), ethdev's own
// otherwise (host tests with software ports).
[[nodiscard]] std::unique_lock<RecursiveLock> lock();

// "port 0 (0000:00:05.0, net_e1000_em, configured)"
[[nodiscard]] std::string describe(std::uint16_t id, const Port& p);
// An error about port `id`: its description as context, `hint` as advice.
[[nodiscard]] Error port_error(std::uint16_t id, const Port& p, int err, std::string what,
                               std::string_view hint = {});
// EPERM when `p` is a primary's port attached in this secondary: `call`
// changes the port, which only the primary may do.
[[nodiscard]] Result<void> refuse_in_secondary(std::uint16_t id, const Port& p,
                                               std::string_view call);
// Registers the requests secondaries send ("ethdev.port", "ethdev.stats",
// "ethdev.xstats", "ethdev.link") with the EAL's server, if this process is
// a primary that serves secondaries (secondary.cpp).
void serve_secondaries();
// Registers "ethdev.ports" (status.cpp), which tools read a primary's
// ports with (status.hpp); serve_secondaries() calls it.
void serve_status_requests();

// The port, or ENODEV naming the id and the ports there are (caller holds
// the lock).
[[nodiscard]] Result<Port*> find_port(std::uint16_t id, std::string_view call);

}  // namespace vfiokit::ethdev::detail
