// What the NIC drivers' interrupt lab tests share: the host action channel
// (to take a NIC's link down and up from inside the guest), and an rx
// interrupt wait loop in the style of DPDK's l3fwd-power that measures the
// CPU time it burns. Header-only; tests only.
#pragma once

#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "vfiokit/ethdev/ethdev.hpp"
#include "vfiokit/mbuf/mbuf.hpp"

namespace vfiokit::testing {

// The host action channel (devtools/lab/actions.py): the job exports the
// guest's end of it as VFIOKIT_ACTION_FD. Sends "ACTION verb json" and
// reads the host's reply line; returns "" when the host answered "RESULT
// ok", else why not (the reply, a timeout, no channel).
inline std::string host_action(const std::string& verb, const std::string& json,
                               int timeout_ms = 120000) {
    const char* v = std::getenv("VFIOKIT_ACTION_FD");
    if (v == nullptr || *v == '\0')
        return "VFIOKIT_ACTION_FD is unset: the job names the host action channel's fd";
    const int fd = std::atoi(v);
    const std::string line = "ACTION " + verb + " " + json + "\n";
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        return "writing to the action channel (fd " + std::string(v) + ") failed";
    std::string reply;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1)
            return "no reply from the host within " + std::to_string(timeout_ms) + " ms to " + line;
        char c = 0;
        if (::read(fd, &c, 1) != 1)
            return "reading the action channel failed";
        if (c == '\n')
            break;
        if (c != '\r')
            reply += c;
    }
    return reply.rfind("RESULT ok", 0) == 0 ? "" : reply;
}

// QMP's set_link on a hub port (lab.py names them hp0, hp1, ...): the NIC
// on it sees its link go down or come back.
inline std::string host_set_link(const std::string& hubport, bool up) {
    return host_action("set_link", "{\"name\": \"" + hubport + "\", \"up\": " +
                                       (up ? "true" : "false") + "}");
}

inline std::chrono::nanoseconds thread_cpu_time() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Reads an eventfd's count without blocking (0 if it has not fired).
inline std::uint64_t drain_eventfd(int fd) {
    std::uint64_t total = 0;
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 0) != 1)
            return total;
        std::uint64_t n = 0;
        if (::read(fd, &n, sizeof n) != static_cast<ssize_t>(sizeof n))
            return total;
        total += n;
    }
}

struct IdleRun {
    std::chrono::nanoseconds wall{};
    std::chrono::nanoseconds cpu{};   // this thread's CPU time over `wall`
    unsigned waits = 0;               // rounds of enable / wait / disable / drain
    unsigned wakes = 0;               // rounds the eventfd fired in
    unsigned received = 0;            // packets the drains found
    std::string error;                // an ethdev call that failed
    [[nodiscard]] double cpu_share() const {
        return wall.count() > 0 ? static_cast<double>(cpu.count()) / static_cast<double>(wall.count())
                                : 1.0;
    }
};

// l3fwd-power's idle loop on (port, q) for `length`: arm the queue's
// interrupt, sleep on its eventfd for up to `slice`, disarm, drain the
// queue with rx_burst (freeing what comes). A queue that gets nothing
// should cost next to no CPU: the thread sleeps in poll().
inline IdleRun idle_in_interrupt_mode(std::uint16_t port, std::uint16_t q, int fd,
                                      std::chrono::milliseconds length,
                                      std::chrono::milliseconds slice) {
    IdleRun r;
    const auto t0 = std::chrono::steady_clock::now();
    const auto c0 = thread_cpu_time();
    while (std::chrono::steady_clock::now() - t0 < length) {
        if (auto e = ethdev::rx_intr_enable(port, q); !e) {
            r.error = e.error().message();
            break;
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(slice.count())) == 1) {
            ++r.wakes;
            std::uint64_t n = 0;
            // Only clears the eventfd's count; a wake is what was measured.
            if (::read(fd, &n, sizeof n) < 0) {
            }
        }
        ++r.waits;
        if (auto e = ethdev::rx_intr_disable(port, q); !e) {
            r.error = e.error().message();
            break;
        }
        mbuf::Mbuf* pkts[32];
        for (std::uint16_t n; (n = ethdev::rx_burst(port, q, pkts, 32)) > 0;) {
            r.received += n;
            for (std::uint16_t i = 0; i < n; ++i)
                pkts[i]->free();
        }
    }
    r.cpu = thread_cpu_time() - c0;
    r.wall = std::chrono::steady_clock::now() - t0;
    return r;
}

}  // namespace vfiokit::testing
