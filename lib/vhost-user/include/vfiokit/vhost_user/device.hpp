/// \file
/// The device side of a vhost-user back end: what the session tells the
/// code that actually serves the rings (a vDPA driver, a software device).
///
/// The session (session.hpp) checks and applies every message; a Device only
/// hears about state that is complete and valid: the negotiated features,
/// the memory table once mapped, a vring once it can run, a vring that must
/// stop, and the end of the connection. Nothing here knows about VFIO: a
/// vDPA driver maps Region::gpa..+size of Region::fd into its own container.
///
/// Ownership: every fd and host address handed to a Device is borrowed. It
/// stays valid until the session says otherwise: regions until the next
/// memory_set() returns or disconnected() is called; a vring's kick/call fds
/// until the vring is stopped or reported ready again. A Device that needs
/// an fd longer dup()s it.
///
/// Threads: every call comes from the thread that drives the session
/// (Session::poll, Server::poll). A Device that serves rings on another
/// thread must make that thread let go of a vring before vring_stopped()
/// returns, and of the old regions before memory_set() returns.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::vhost_user {

/// One mapped region of the front end's memory table.
struct Region {
    std::uint64_t gpa = 0;          ///< guest-physical address (the IOVA a device uses)
    std::uint64_t size = 0;
    std::uint64_t uva = 0;          ///< the front end's user address
    std::uint64_t mmap_offset = 0;  ///< where the region starts in `fd`
    void* hva = nullptr;            ///< where it is mapped in this process
    int fd = -1;                    ///< the front end's memory, borrowed
};

/// Where one part of a ring is, in each of the three address spaces.
struct RingAddr {
    std::uint64_t uva = 0;
    std::uint64_t gpa = 0;
    void* hva = nullptr;
};

/// A vring that can run: all of it is in the memory table.
struct VringInfo {
    unsigned index = 0;
    std::uint32_t num = 0;     ///< entries (a power of two)
    std::uint16_t base = 0;    ///< the avail index to start from
    RingAddr desc, avail, used;
    std::uint32_t flags = 0;   ///< VringAddr::flags (log)
    int kick_fd = -1;          ///< -1: the front end asked for polling
    int call_fd = -1;          ///< -1: the front end polls the used ring
};

/// Why a vring stopped running.
enum class StopReason {
    get_vring_base,  ///< the front end stops the ring (and wants its index)
    disabled,        ///< SET_VRING_ENABLE 0
    reconfigured,    ///< a new kick fd, call fd or address for a running ring
    disconnect,      ///< the connection ended
};
/// "get-vring-base", "disabled", "reconfigured", "disconnect".
[[nodiscard]] std::string_view to_string(StopReason r);

/// Observer interface. Every method has a default that accepts and does
/// nothing, so a device overrides only what it uses. A method returning an
/// Error refuses the request: the session then drops the connection (after
/// a failure reply when the front end asked for one).
class Device {
public:
    virtual ~Device() = default;

    /// SET_FEATURES accepted (a subset of what the session offered).
    virtual Result<void> features_set(std::uint64_t features) {
        (void)features;
        return {};
    }
    /// A new memory table is mapped. Called before the previous table is
    /// unmapped, so a device can move to the new one without a hole.
    virtual Result<void> memory_set(std::span<const Region> regions) {
        (void)regions;
        return {};
    }
    /// The vring can run: addresses set and inside the table, kick and call
    /// decided, enabled. Called again (after vring_stopped with
    /// StopReason::reconfigured) when the front end changes any of them.
    virtual Result<void> vring_ready(const VringInfo& vring) {
        (void)vring;
        return {};
    }
    /// A ready vring must stop. Returns the next avail index the device
    /// would have consumed: the session hands it to GET_VRING_BASE and
    /// restarts from it. The default (a device that consumed nothing)
    /// returns `base`, the index the ring started from.
    virtual std::uint16_t vring_stopped(unsigned index, StopReason why, std::uint16_t base) {
        (void)index;
        (void)why;
        return base;
    }
    /// The connection is gone (`why`: "peer closed" or the reason it was
    /// dropped). Every ready vring was stopped before; the regions are
    /// unmapped right after this returns.
    virtual void disconnected(std::string_view why) { (void)why; }
};

/// The host address of [gpa, gpa+len) when one region holds all of it,
/// else nullptr. For devices that walk rings in software.
[[nodiscard]] void* gpa_to_hva(std::span<const Region> regions, std::uint64_t gpa,
                               std::uint64_t len);

}  // namespace vfiokit::vhost_user
