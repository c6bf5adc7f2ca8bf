// The kick relay: one thread per vDPA device that waits on the front end's
// kick eventfds and writes each kicked queue's index to the device's
// notify address, and that counts each ring's progress from the used
// index the device writes into the front end's memory (the device's own
// counters are not there to read). It never touches a descriptor or a
// packet: a kick costs it one read() and one 2-byte store.
//
// Ownership: the fds and used-ring addresses are borrowed; stop() (and the
// destructor) join the thread, after which nothing is read any more.
// Threads: start/stop from one control thread; the counters may be read
// from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "hw.hpp"
#include "vfiokit/eal/vfio/syscalls.hpp"

namespace vfiokit::vdpa {

struct RelayRing {
    std::uint16_t queue = 0;
    int kick_fd = -1;
    // The used ring's index in the front end's memory (mapped here).
    const volatile std::uint16_t* used_idx = nullptr;
    // Used entries counted so far: the relay adds what the index advanced.
    std::atomic<std::uint64_t>* used = nullptr;
};

class Relay {
public:
    // `sample_ms`: how often the used indexes are read between kicks; a
    // ring must not advance 65536 entries in that time (at 10 ms: 6.5
    // million per second).
    explicit Relay(VirtioHw& hw, int sample_ms = 10) : hw_(&hw), sample_ms_(sample_ms) {}
    ~Relay() { stop(); }
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    // Starts relaying for `rings`; the used indexes count from their
    // current values. Notifies every queue once first, for kicks the front
    // end made before (they also wait in the eventfds). EMFILE/ENOMEM from
    // the wake eventfd or the thread.
    [[nodiscard]] Result<void> start(std::vector<RelayRing> rings);
    // Joins the thread after a last count. Idempotent.
    void stop();
    [[nodiscard]] bool running() const { return thread_.joinable(); }
    // Kicks relayed to the device since construction.
    [[nodiscard]] std::uint64_t kicks() const { return kicks_.load(std::memory_order_relaxed); }
    // Wakeups of the thread (kicks and sampling rounds), for the report.
    [[nodiscard]] std::uint64_t wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

private:
    void run();
    void sample();

    VirtioHw* hw_;
    int sample_ms_;
    std::vector<RelayRing> rings_;
    std::vector<std::uint16_t> last_;
    vfio::Fd wake_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> kicks_{0}, wakeups_{0};
    std::thread thread_;
};

}  // namespace vfiokit::vdpa
