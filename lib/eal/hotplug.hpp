// Device removal across processes: how a primary gets its secondaries to
// let go of a device the kernel wants back.
//
// A secondary holds its own copies of a device's fds (share.hpp), and the
// kernel's unplug waits for every copy, so the primary alone cannot
// complete a removal. The protocol, over the mp channel:
//
//   secondary                                primary
//   start_device_monitor():
//     "eal.hotplug.subscribe" + an eventfd   keeps the eventfd (and the pid)
//                                            remove_device(A):
//                                              A is listed as removing; every
//                                              subscriber's eventfd is written
//   poll_device_events(): the eventfd fired
//     "eal.hotplug.removing" -> [A, ...]
//     A held by a driver: a remove event;
//       the application's remove_device(A)
//       releases its copies, then
//     "eal.hotplug.released" A               counts A's acknowledgements
//     (A held by no driver: released and       waits until every live
//      acknowledged at once)                   subscriber acknowledged A (at
//                                              most kSecondaryWait), then
//                                              releases its own
//
// Secondaries go first: in legacy type1 the primary cannot take the group
// out of its container while another process has the device open
// (VFIO_GROUP_UNSET_CONTAINER fails with EBUSY). A subscriber that does not
// answer in time (its application does not poll) is named on stderr and
// the primary releases its own; the kernel then waits for that secondary
// to close its copies or exit, repeating its request every 10 s. A
// secondary that never subscribed is not waited for (it has not asked to
// hear of removals).
//
// Thread-safety: the handlers run on the server thread and take only the
// board's own mutex, never the EAL lock, so a primary waiting under the EAL
// lock in remove_device() cannot block them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "vfiokit/eal/error.hpp"
#include "vfiokit/eal/mp.hpp"
#include "vfiokit/eal/pci_address.hpp"

namespace vfiokit::eal::hotplug {

inline constexpr std::string_view kSubscribe = "eal.hotplug.subscribe";
inline constexpr std::string_view kRemoving = "eal.hotplug.removing";
inline constexpr std::string_view kReleased = "eal.hotplug.released";
inline constexpr std::chrono::milliseconds kSecondaryWait{5000};

// The primary's side.
class Board {
public:
    // Registers the three handlers on `s`; the Board must outlive it.
    void serve(mp::Server& s);
    // Lists `a` as removing, rings every subscriber and waits for the live
    // ones to acknowledge it. Returns the pids that did not in time.
    [[nodiscard]] std::vector<pid_t> ask_secondaries(PciAddress a,
                                                     std::chrono::milliseconds wait = kSecondaryWait);
    // `a` is released by the primary: no longer listed.
    void done(PciAddress a);
    [[nodiscard]] std::size_t subscribers() const;

private:
    struct Subscriber {
        pid_t pid = 0;
        vfio::Fd doorbell;
    };
    struct Removing {
        PciAddress addr;
        std::vector<pid_t> acked;
    };
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Subscriber> subs_;
    std::vector<Removing> removing_;
};

// The secondary's side: subscribes with a doorbell eventfd of its own.
class Subscription {
public:
    [[nodiscard]] static Result<Subscription> subscribe(mp::Client& c);
    // Without blocking: the devices the primary is removing, if the
    // doorbell rang since the last call (empty otherwise).
    [[nodiscard]] Result<std::vector<PciAddress>> poll(mp::Client& c);
    // Tells the primary this process let go of `a`.
    [[nodiscard]] Result<void> released(mp::Client& c, PciAddress a);

private:
    explicit Subscription(vfio::Fd fd) : doorbell_(std::move(fd)) {}
    vfio::Fd doorbell_;
};

}  // namespace vfiokit::eal::hotplug
